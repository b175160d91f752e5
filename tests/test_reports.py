"""The daemon's reports in-process: a real database, the fake server for the server's
figure, an injected clock, and the server fetch run in the caller (no thread, no wait)."""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from moved_clock import Clock
from pydantic import SecretStr
from wakaserver import FakeWakaTime

from agent.config import ApiSettings, HeartbeatSettings, QueueSettings, Settings
from agent.pipeline.destinations import configured_destinations
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.stats import day_bounds
from agent.pipeline.store import HeartbeatStore
from agent.reports import (
    DaemonReports,
    DaemonState,
    status_bar_report,
    status_report,
    today_report,
)

NOON = 1_748_779_200.0  # 2025-06-01 12:00 UTC


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def settings_for(tmp_path: Path, url: str, key: str, duration_timeout: float = 900.0) -> Settings:
    return Settings(
        api=ApiSettings(url=url, key=SecretStr(key)),
        heartbeats=HeartbeatSettings(duration_timeout=duration_timeout),
        queue=QueueSettings(path=tmp_path / "heartbeats.sqlite3"),
    )


def record(settings: Settings, times: list[float]) -> None:
    with HeartbeatStore(settings.database_path()) as store:
        store.add([(Heartbeat(entity="/code/a.py", time=t), ["default"]) for t in times])


def run_here(work: Callable[[], None]) -> None:
    """The server fetch, run in the caller instead of a thread of its own."""
    work()


def test_every_report_counts_the_day_with_the_configured_timeout(tmp_path: Path, utc: None) -> None:
    """One day total everywhere: `agent status`, `agent today` and the plugins' `--today`,
    from the database alone and from the daemon."""
    settings = settings_for(tmp_path, "http://127.0.0.1:9/api/v1", "waka_k", duration_timeout=100)
    midnight = day_bounds(NOON)[0]
    record(settings, [midnight + t for t in (0, 60, 300, 360)])  # the 240 s gap is a break
    destinations = configured_destinations(settings)
    reports = DaemonReports(settings, destinations, Clock(NOON), server_status_bar=lambda: None)
    state = DaemonState(pid=1, version="x", uptime_seconds=1.0, watching=[])

    with HeartbeatStore(settings.database_path()) as store:
        offline = (
            status_report(store, settings, destinations, NOON)["today_seconds"],
            today_report(store, settings, NOON)["total_seconds"],
            status_bar_report(store, settings, NOON)["data"]["grand_total"]["total_seconds"],
        )
    daemon = (
        reports.status(state)["today_seconds"],
        reports.today()["total_seconds"],
        reports.status_bar()["total_seconds"],
    )
    assert offline == daemon == (120.0, 120.0, 120.0)


def test_the_status_bar_prefers_the_servers_larger_figure_fetched_once_a_minute(
    tmp_path: Path, utc: None
) -> None:
    clock = Clock(NOON)
    with FakeWakaTime(now=clock) as waka:
        offsets = (3600, 3000, 2400, 1800, 1200, 600, 60)  # 59 minutes another machine sent
        post_to_server(
            waka, [{"entity": "/elsewhere/x.go", "type": "file", "time": NOON - s} for s in offsets]
        )
        settings = settings_for(tmp_path, waka.url, waka.api_key)
        record(settings, [NOON - 120, NOON - 60])  # 1 minute here
        reports = DaemonReports(settings, configured_destinations(settings), clock, run=run_here)

        answer = reports.status_bar()
        assert (answer["source"], answer["text"]) == ("server", "59 mins")
        clock.now += 59
        assert reports.status_bar()["text"] == "59 mins"
        assert len(status_bar_requests(waka)) == 1  # one round trip for every call in the minute

        waka.reset()  # the server forgets: its figure is now smaller than the local one
        clock.now += 1
        answer = reports.status_bar()
        assert (answer["source"], answer["text"]) == ("local", "1 min")
        assert len(status_bar_requests(waka)) == 1


def status_bar_requests(waka: FakeWakaTime) -> list[object]:
    return [r for r in waka.requests if r.path.endswith("status_bar/today")]


def post_to_server(waka: FakeWakaTime, heartbeats: list[dict]) -> None:
    request = urllib.request.Request(
        f"{waka.url}/users/current/heartbeats.bulk",
        data=json.dumps(heartbeats).encode(),
        headers={
            "Authorization": "Basic " + base64.b64encode(waka.api_key.encode()).decode(),
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (201, 202)


def test_rows_of_a_removed_destination_are_kept_but_not_counted(tmp_path: Path) -> None:
    """`queued` is what is still to be delivered to the destinations configured now."""
    settings = settings_for(tmp_path, "http://127.0.0.1:9/api/v1", "waka_k")
    with HeartbeatStore(settings.database_path()) as store:
        store.add([(Heartbeat(entity="/code/a.py", time=NOON), ["default", "removed"])])
        store.add([(Heartbeat(entity="/code/b.py", time=NOON + 10), ["removed"])])
    reports = DaemonReports(settings, configured_destinations(settings), Clock(NOON))
    state = DaemonState(pid=1, version="x", uptime_seconds=1.0, watching=[])
    running = reports.status(state)
    assert running["queued"] == 1
    assert [d["name"] for d in running["destinations"]] == ["default"]
