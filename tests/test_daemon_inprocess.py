"""The whole daemon built in-process: `Daemon(settings).serve()` on this test's event loop,
with its real socket, store, watcher and delivery to a fake WakaTime on 127.0.0.1. Faster
than `agent run` in a subprocess, and it reaches the supervisor's own logic: start order,
reload handed to every component, a plugin's server and key, stop in reverse."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from wakaserver import FakeWakaTime

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


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ~/.wakatime.cfg of the machine's, no home to watch."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WAKATIME_HOME", str(home))


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


def test_a_plugin_heartbeat_is_stored_then_delivered(tmp_path: Path, waka: FakeWakaTime) -> None:
    settings = settings_for(tmp_path, waka.url)
    entity = str(tmp_path / "code" / "a.py")

    async def test(daemon: Daemon) -> dict[str, Any]:
        answer = await ask(settings, {"op": "heartbeat", "heartbeat": heartbeat(entity)})
        await asyncio.to_thread(waka.wait_for, 1)
        return answer

    answer = with_daemon(settings, test)
    assert answer["ok"] is True and answer["queued"] == 1
    assert [hb["entity"] for hb in waka.received] == [entity]


def test_a_save_in_a_watched_folder_is_delivered(tmp_path: Path, waka: FakeWakaTime) -> None:
    settings = settings_for(tmp_path, waka.url)
    saved = tmp_path / "code" / "saved.py"

    async def test(daemon: Daemon) -> None:
        saved.write_text("print('saved')\n")
        await asyncio.to_thread(waka.wait_for, 1)

    with_daemon(settings, test)
    assert [(hb["entity"], hb["is_write"]) for hb in waka.received] == [(str(saved), True)]


def test_a_reload_reaches_every_component(tmp_path: Path, waka: FakeWakaTime) -> None:
    """New server, new watch folder: delivery, the router and the watcher follow; the queue
    and the socket stay."""
    settings = settings_for(tmp_path, "http://127.0.0.1:9/api/v1")  # nothing listens there
    moved = tmp_path / "moved"
    moved.mkdir()
    reloaded = settings_for(tmp_path, waka.url)
    reloaded.watch = WatchSettings(paths=[str(moved)])
    entity = str(moved / "b.py")

    async def test(daemon: Daemon) -> dict[str, Any]:
        assert await daemon.reload() is True
        assert daemon.activity.roots == [str(moved)]
        (moved / "b.py").write_text("b = 1\n")
        await asyncio.to_thread(waka.wait_for, 1)
        return await ask(settings, {"op": "status"})

    status = with_daemon(settings, test, reload=lambda: reloaded)
    assert [hb["entity"] for hb in waka.received] == [entity]
    assert status["watching"] == [str(moved)]


def test_a_reload_that_fails_keeps_the_running_configuration(
    tmp_path: Path, waka: FakeWakaTime, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path, waka.url)

    def broken() -> Settings:
        raise ValueError("config.toml: [api] url: not a URL")

    async def test(daemon: Daemon) -> bool:
        refused = await daemon.reload()
        await ask(settings, {"op": "heartbeat", "heartbeat": heartbeat("/x/still.py")})
        await asyncio.to_thread(waka.wait_for, 1)
        return refused

    with caplog.at_level(logging.ERROR):
        assert with_daemon(settings, test, reload=broken) is False
    assert "reload refused, keeping the running configuration" in caplog.text
    assert [hb["entity"] for hb in waka.received] == ["/x/still.py"]


def test_a_plugins_key_is_used_while_none_is_configured(tmp_path: Path, waka: FakeWakaTime) -> None:
    settings = settings_for(tmp_path, waka.url, key=None)

    async def test(daemon: Daemon) -> tuple[dict[str, Any], dict[str, Any]]:
        first = await ask(settings, {"op": "heartbeat", "heartbeat": heartbeat("/x/one.py")})
        second = await ask(
            settings,
            {"op": "heartbeat", "heartbeat": heartbeat("/x/two.py"), "api_key": "waka_test_key"},
        )
        await asyncio.to_thread(waka.wait_for, 2)
        return first, second

    first, second = with_daemon(settings, test)
    assert first["ok"] and first.get("delivery") == "paused"
    assert second["ok"]
    assert sorted(hb["entity"] for hb in waka.received) == ["/x/one.py", "/x/two.py"]


def test_a_server_a_plugin_names_gets_its_heartbeats(tmp_path: Path, waka: FakeWakaTime) -> None:
    settings = settings_for(tmp_path, waka.url)
    with FakeWakaTime(api_key="waka_other_key") as other:

        async def test(daemon: Daemon) -> list[str]:
            await ask(
                settings,
                {
                    "op": "heartbeat",
                    "heartbeat": heartbeat("/x/elsewhere.py"),
                    "api_url": other.url,
                    "api_key": "waka_other_key",
                },
            )
            await asyncio.to_thread(other.wait_for, 1)
            return daemon.deliveries.names()

        names = with_daemon(settings, test)
        assert [hb["entity"] for hb in other.received] == ["/x/elsewhere.py"]
    assert waka.received == []
    assert len(names) == 2


def test_an_unknown_op_is_refused_and_the_daemon_serves_on(
    tmp_path: Path, waka: FakeWakaTime
) -> None:
    settings = settings_for(tmp_path, waka.url)

    async def test(daemon: Daemon) -> tuple[dict[str, Any], dict[str, Any]]:
        return await ask(settings, {"op": "dance"}), await ask(settings, {"op": "ping"})

    refused, ping = with_daemon(settings, test)
    assert refused == {"ok": False, "error": refused["error"]}
    assert refused["error"].startswith("op: must be one of heartbeat, heartbeats,")
    assert ping["ok"] is True
