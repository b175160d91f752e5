"""The whole daemon built in-process: `Daemon(settings).serve()` on this test's event loop,
with its real socket, store, watcher and delivery to a fake WakaTime on 127.0.0.1. Faster
than `agent run` in a subprocess, and it reaches the supervisor's own logic: start order,
reload handed to every component, a plugin's server and key, stop in reverse."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from inprocess import ask, heartbeat, settings_for, with_daemon
from wakaserver import FakeWakaTime

from agent.daemon import Daemon

pytestmark = pytest.mark.usefixtures("isolated_home")


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
