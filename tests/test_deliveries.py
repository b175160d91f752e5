"""The deliveries component in-process (agent.delivery.deliveries.Deliveries): one delivery
loop a destination over a real SQLite queue, to fake WakaTime servers on 127.0.0.1; what a
plugin offers (its key, its server), a reconfiguration, a stop that leaves the queue whole."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from wakaserver import FakeWakaTime

from agent.config import ApiSettings, QueueSettings, Settings
from agent.delivery.deliveries import Deliveries
from agent.pipeline.destinations import DEFAULT, Destination, plugin_server
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.store import HeartbeatStore

KEY = "waka_test_key"


@pytest.fixture(autouse=True)
def no_wakatime_cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAKATIME_HOME", str(tmp_path))


def settings_for(tmp_path: Path, url: str, key: str | None = KEY) -> Settings:
    return Settings(
        api=ApiSettings(url=url, key=key, allow_insecure_http=True),
        queue=QueueSettings(path=tmp_path / "heartbeats.sqlite3"),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HeartbeatStore]:
    with HeartbeatStore(tmp_path / "heartbeats.sqlite3") as opened:
        yield opened


def queue(store: HeartbeatStore, destination: str, *entities: str) -> None:
    now = time.time()
    store.destination_id(destination, destination)
    store.add(
        [(Heartbeat(entity=e, time=now - 10 + i), [destination]) for i, e in enumerate(entities)]
    )


def running(
    settings: Settings, destinations: Sequence[Destination]
) -> tuple[Deliveries, list[list[str]]]:
    heard: list[list[str]] = []
    deliveries = Deliveries(
        settings, destinations, on_destinations=lambda ds: heard.append([d.name for d in ds])
    )
    deliveries.start()
    return deliveries, heard


def test_each_destination_gets_its_queue(tmp_path: Path, store: HeartbeatStore) -> None:
    with FakeWakaTime() as main, FakeWakaTime(api_key="waka_other") as other:
        settings = settings_for(tmp_path, main.url)
        destinations = [
            Destination(DEFAULT, main.url, key=KEY),
            Destination("backup", other.url, key="waka_other"),
        ]
        queue(store, DEFAULT, "/code/a.py", "/code/b.py")
        queue(store, "backup", "/code/c.py")
        deliveries, _ = running(settings, destinations)
        deliveries.wake()
        main.wait_for(2)
        other.wait_for(1)
        deliveries.stop()
    assert sorted(hb["entity"] for hb in main.received) == ["/code/a.py", "/code/b.py"]
    assert [hb["entity"] for hb in other.received] == ["/code/c.py"]
    assert deliveries.names() == [DEFAULT, "backup"]
    assert store.counts(among=[DEFAULT, "backup"]).queued == 0


def test_a_plugins_key_resumes_a_destination_paused_for_want_of_one(
    tmp_path: Path, store: HeartbeatStore
) -> None:
    with FakeWakaTime() as server:
        settings = settings_for(tmp_path, server.url, key=None)
        queue(store, DEFAULT, "/code/a.py")
        deliveries, _ = running(settings, [Destination(DEFAULT, server.url)])
        deliveries.wake()
        deadline = time.monotonic() + 10
        while deliveries.trouble() != "paused" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert deliveries.trouble() == "paused"
        assert server.received == []
        deliveries.take_plugin_key(KEY)
        server.wait_for(1)
        deliveries.stop()
    assert deliveries.trouble() is None


def test_a_server_a_plugin_names_becomes_a_destination_until_stopped(
    tmp_path: Path, store: HeartbeatStore
) -> None:
    with FakeWakaTime() as main, FakeWakaTime(api_key="waka_plugin") as own:
        settings = settings_for(tmp_path, main.url)
        deliveries, heard = running(settings, [Destination(DEFAULT, main.url, key=KEY)])
        server = plugin_server(own.url, "waka_plugin", deliveries.destinations)
        assert server is not None
        deliveries.serve_plugin_server(server)
        deliveries.serve_plugin_server(server)  # the same again: nothing to change
        queue(store, server.name, "/code/theirs.py")
        deliveries.wake()
        own.wait_for(1)
        # A reload keeps it: the configured destinations change, the plugin's server stays.
        deliveries.reconfigure(settings, [Destination(DEFAULT, main.url, key=KEY)])
        deliveries.stop()
    assert [hb["entity"] for hb in own.received] == ["/code/theirs.py"]
    assert main.received == []
    assert heard == [[DEFAULT, server.name], [DEFAULT, server.name]]


def test_a_destination_with_a_problem_sends_nothing_and_keeps_its_queue(
    tmp_path: Path, store: HeartbeatStore
) -> None:
    with FakeWakaTime() as server:
        settings = settings_for(tmp_path, server.url)
        broken = Destination(DEFAULT, server.url, key=KEY, problem="[api] url: plain http")
        queue(store, DEFAULT, "/code/a.py")
        deliveries, _ = running(settings, [broken])
        deliveries.wake()
        deliveries.flush()
        assert deliveries.problem() == "[api] url: plain http"
        assert deliveries.statuses() == {}
        deliveries.stop()
    assert server.received == []
    assert store.counts(among=[DEFAULT]).queued == 1
