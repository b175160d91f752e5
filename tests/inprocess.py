"""The whole daemon in-process: `Daemon(settings).serve()` with its real socket, store,
watcher and delivery, on the test's own event loop (`with_daemon`) or on one of its own
thread (`serving_in_thread`, for tests that talk to its socket synchronously). Use it with
conftest's `isolated_home` (HOME and WAKATIME_HOME in the test's folder)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.commands.common import TIMED_FORMAT, add_config_option
from agent.config import (
    ApiSettings,
    HeartbeatSettings,
    IpcSettings,
    QueueSettings,
    Settings,
    WatchSettings,
    load_settings,
)
from agent.daemon import Daemon
from agent.ipc.client import IpcClient


def settings_for(tmp_path: Path, url: str, *, key: str | None = "waka_test_key") -> Settings:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    return Settings(
        api=ApiSettings(url=url, key=key, allow_insecure_http=True),
        watch=WatchSettings(paths=[str(code)]),
        heartbeats=HeartbeatSettings(debounce_seconds=0.0, plugin_wait=0.0, storm_window=0.2),
        queue=QueueSettings(path=tmp_path / "data" / "heartbeats.sqlite3"),
        ipc=IpcSettings(socket=tmp_path / "run" / "agent.sock"),
    )


def with_daemon(
    settings: Settings,
    test: Callable[[Daemon], Coroutine[Any, Any, Any]],
    reload: Callable[[], Settings] | None = None,
) -> Any:
    """Serve, run `test` once every component has started, stop; the test's result."""

    async def main() -> Any:
        daemon = Daemon(settings, reload=reload)
        serving = await started(daemon)
        try:
            return await test(daemon)
        finally:
            daemon.stop()
            await asyncio.wait_for(serving, 15)

    return asyncio.run(main())


async def started(daemon: Daemon) -> asyncio.Task[None]:
    """Start serving; return once every component runs (or raise why it could not)."""
    serving = asyncio.create_task(daemon.serve())
    ready = asyncio.create_task(daemon.ready.wait())
    await asyncio.wait([serving, ready], return_when=asyncio.FIRST_COMPLETED)
    if serving.done():
        ready.cancel()
        serving.result()
    return serving


@contextlib.contextmanager
def serving_in_thread(settings: Settings) -> Iterator[Daemon]:
    """The daemon on an event loop of its own thread, until the block ends; a failure to
    start or to stop is raised here."""
    daemon = Daemon(settings, handle_signals=False)
    up = threading.Event()
    failed: list[BaseException] = []

    async def main() -> None:
        serving = await started(daemon)
        up.set()
        await serving

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            failed.append(exc)
        finally:
            up.set()

    thread = threading.Thread(target=run, name="daemon")
    thread.start()
    up.wait(30)
    try:
        if failed:
            raise failed[0]
        yield daemon
    finally:
        if not failed:
            daemon.stop()
        thread.join(30)
    if failed:
        raise failed[0]


def ask(settings: Settings, message: dict[str, Any]) -> Any:
    """A plugin's request, from a thread (the client blocks)."""

    def call() -> dict[str, Any]:
        with IpcClient(settings.socket_path()) as client:
            return client.request(message)

    return asyncio.to_thread(call)


def heartbeat(entity: str, **fields: Any) -> dict[str, Any]:
    return {"entity": entity, "type": "file", "time": time.time(), **fields}


_ALSO_LOGGED = {
    "asyncio": logging.NOTSET,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "watchdog": logging.WARNING,
}


class InProcessAgent:
    """`agent run` as tests/agentproc.AgentProcess drives it (an environment, a folder to
    start in, its log lines, `wait_for_log`, `stop`), served in this process instead: the
    settings are loaded from `env` as the command loads them, the daemon runs on a thread of
    its own. For tests about what the daemon does, not about its process (signals, exit
    codes, kill -9 keep `agent run`)."""

    def __init__(
        self, env: dict[str, str], cwd: Path | str, monkeypatch: pytest.MonkeyPatch, *args: str
    ):
        self.env = env
        self.cwd = cwd
        self.monkeypatch = monkeypatch
        self.args = args  # agent run's own: --config FILE, --verbose
        self.pid = os.getpid()
        self.lines: list[str] = []
        self._logged = threading.Condition()
        self._handler = _Lines(self)
        self._serving: contextlib.ExitStack | None = None

    def start(self) -> InProcessAgent:
        for name in list(os.environ):
            if name.startswith(("HEARTBEAT_AGENT_", "WAKATIME_", "XDG_")) and name not in self.env:
                self.monkeypatch.delenv(name)
        for name, value in self.env.items():
            self.monkeypatch.setenv(name, value)
        self.monkeypatch.chdir(self.cwd)  # where `agent run` starts: watched with no paths
        parser = argparse.ArgumentParser(prog="agent run")
        add_config_option(parser)
        args = parser.parse_args(self.args)
        logger = logging.getLogger("agent")
        self._serving = contextlib.ExitStack()
        self._serving.callback(logger.setLevel, logger.level)
        self._serving.callback(logger.removeHandler, self._handler)
        logger.setLevel(logging.WARNING)  # what loading says, before logging is set up
        logger.addHandler(self._handler)
        # What else reaches agent run's stderr: a task's exception nobody awaited (asyncio's
        # log), its libraries' warnings (setup_logging's levels) and a thread's uncaught
        # exception, with their tracebacks.
        for name, level in _ALSO_LOGGED.items():
            other = logging.getLogger(name)
            self._serving.callback(other.setLevel, other.level)
            self._serving.callback(other.removeHandler, self._handler)
            other.setLevel(level)
            other.addHandler(self._handler)
        self._excepthook = threading.excepthook
        self.monkeypatch.setattr(threading, "excepthook", self._thread_died)
        try:
            settings = load_settings(args.config)
            logger.setLevel(logging.DEBUG if args.verbose else settings.log.level.upper())
            self._serving.enter_context(serving_in_thread(settings))
        except BaseException:
            self.stop()
            raise
        return self

    def wait_for_log(self, text: str, timeout: float = 20.0, count: int = 1) -> str:
        """Block until `count` log lines containing text appeared; the last of them."""
        with self._logged:
            if not self._logged.wait_for(
                lambda: sum(text in line for line in self.lines) >= count, timeout
            ):
                raise AssertionError(f"no log line with {text!r} within {timeout}s:\n{self.log}")
            return [line for line in self.lines if text in line][count - 1]

    def stop(self) -> int:
        """Stop every component; 0, as `agent run` exits (a failure to stop is raised)."""
        if self._serving is not None:
            serving, self._serving = self._serving, None
            serving.close()
        return 0

    def _thread_died(self, args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "?"
        self._handler.handle(
            logging.LogRecord(
                "threading",
                logging.ERROR,
                __file__,
                0,
                f"uncaught exception in thread {name}",
                None,
                (args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
            )
        )
        self._excepthook(args)  # pytest's own hook still hears of it

    @property
    def log(self) -> str:
        with self._logged:
            return "\n".join(self.lines)

    def __enter__(self) -> InProcessAgent:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class _Lines(logging.Handler):
    """The agent's log records as `agent run` writes them, for one InProcessAgent."""

    def __init__(self, agent: InProcessAgent) -> None:
        super().__init__()
        self.agent = agent
        self.setFormatter(logging.Formatter(TIMED_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        with self.agent._logged:
            self.agent.lines.extend(line.splitlines())
            self.agent._logged.notify_all()
