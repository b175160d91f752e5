"""The whole daemon in-process: `Daemon(settings).serve()` on the test's own event loop, with
its real socket, store, watcher and delivery; requests go over the real socket from a thread.
Use it with conftest's `isolated_home` (HOME and WAKATIME_HOME in the test's folder)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
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
        serving = asyncio.create_task(daemon.serve())
        ready = asyncio.create_task(daemon.ready.wait())
        await asyncio.wait([serving, ready], return_when=asyncio.FIRST_COMPLETED)
        if serving.done():
            serving.result()  # it failed to start: say why
        try:
            return await test(daemon)
        finally:
            daemon.stop()
            await asyncio.wait_for(serving, 15)

    return asyncio.run(main())


def ask(settings: Settings, message: dict[str, Any]) -> Any:
    """A plugin's request, from a thread (the client blocks)."""

    def call() -> dict[str, Any]:
        with IpcClient(settings.socket_path()) as client:
            return client.request(message)

    return asyncio.to_thread(call)


def heartbeat(entity: str, **fields: Any) -> dict[str, Any]:
    return {"entity": entity, "type": "file", "time": time.time(), **fields}
