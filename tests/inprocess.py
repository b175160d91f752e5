"""The whole daemon in-process: `Daemon(settings).serve()` with its real socket, store,
watcher and delivery, on the test's own event loop (`with_daemon`) or on one of its own
thread (`serving_in_thread`, for tests that talk to its socket synchronously). Use it with
conftest's `isolated_home` (HOME and WAKATIME_HOME in the test's folder)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

from agent.config import (
    ApiSettings,
    HeartbeatSettings,
    IpcSettings,
    QueueSettings,
    Settings,
    WatchSettings,
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
