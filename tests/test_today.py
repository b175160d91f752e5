"""Today's coding time: the arithmetic as tables (gaps, the timeout edge, midnight in the
user's timezone, heartbeats out of order), then `agent today` as a subprocess."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from agentproc import AgentProcess, agent_env
from test_ops import cli, cli_json, heartbeat, send, store_directly, today_at, workdir
from wakaserver import FakeWakaTime

from agent.pipeline.stats import (
    DEFAULT_TIMEOUT,
    day_bounds,
    durations,
    editor_name,
    summarize,
    today_summary,
)

DAY = 86400.0


@dataclass(frozen=True)
class Row:
    time: float
    project: str | None = "shop"
    language: str | None = "Python"
    category: str = "coding"
    entity: str = "/code/shop/a.py"
    branch: str | None = "main"
    user_agent: str | None = "wakatime/1.0 (linux-6.1-x86_64) Python3.11 vim/9.1 vim-wakatime/11.0"


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        pytest.param([], 0.0, id="nothing"),
        pytest.param([600.0], 0.0, id="a lone heartbeat"),
        pytest.param([0.0, 60.0, 180.0, 300.0], 300.0, id="short gaps join"),
        pytest.param([0.0, 100.0, 1001.0, 1051.0], 150.0, id="a long gap is a break"),
        pytest.param([0.0, 900.0], 900.0, id="exactly the timeout joins"),
        pytest.param([0.0, 900.5], 0.0, id="just over the timeout breaks"),
        pytest.param([300.0, 0.0, 120.0, 120.0], 300.0, id="out of order with a duplicate"),
    ],
)
def test_totals(times: list[float], expected: float) -> None:
    summary = summarize([Row(t + 1000) for t in times], 0.0, DAY)
    assert summary.total_seconds == expected
    assert summary.total_seconds == durations([t + 1000 for t in times])


@pytest.mark.parametrize(
    ("times", "start", "end", "expected"),
    [
        pytest.param([-300.0, 300.0], 0.0, DAY, 300.0, id="yesterday's session counts from 0:00"),
        pytest.param([DAY - 300, DAY + 300], 0.0, DAY, 300.0, id="and ends at midnight"),
        pytest.param([-1200.0, -600.0], 0.0, DAY, 0.0, id="yesterday alone is not today"),
        pytest.param([-600.0, 600.0], 0.0, DAY, 0.0, id="a break across midnight"),
    ],
)
def test_the_day_is_clipped_at_midnight(
    times: list[float], start: float, end: float, expected: float
) -> None:
    assert summarize([Row(t) for t in times], start, end).total_seconds == expected


def test_the_timeout_is_configurable() -> None:
    rows = [Row(0.0), Row(50.0), Row(150.0)]
    assert summarize(rows, 0.0, DAY, timeout=60.0).total_seconds == 50.0
    assert summarize(rows, 0.0, DAY, timeout=120.0).total_seconds == 150.0


def test_time_goes_to_the_earlier_heartbeat_and_breakdowns_are_ranked() -> None:
    rows = [
        Row(0.0, project="shop", language="Python"),
        Row(600.0, project="docs", language=None, category="writing docs"),
        Row(900.0, project=None, language="Go", user_agent="x heartbeat-agent/0.1.0"),
        Row(960.0, project="shop"),
    ]
    summary = summarize(reversed(rows), 0.0, DAY)
    projects = {item.name: item.total_seconds for item in summary.breakdowns["projects"]}
    assert projects == {"shop": 600.0, "docs": 300.0, "Unknown Project": 60.0}
    assert summary.breakdowns["languages"][1].name == "Other"
    assert summary.breakdowns["categories"][1].name == "writing docs"
    assert {item.name for item in summary.breakdowns["editors"]} == {"Vim", "heartbeat-agent"}
    assert sum(item.percent for item in summary.breakdowns["projects"]) == pytest.approx(100.0)
    assert summary.to_json(limit=1)["projects"] == [
        {"name": "shop", "total_seconds": 600.0, "percent": 62.5, "text": "10 mins"}
    ]


@pytest.mark.parametrize(
    ("user_agent", "editor"),
    [
        ("wakatime/1.0 (linux) Python3.11 vim/9.1 vim-wakatime/11.0", "Vim"),
        ("wakatime/1.0 (darwin) Python3.11 vscode/1.90 vscode-wakatime/24.0", "VS Code"),
        ("emacs-wakatime/1.0", "Emacs"),
        ("wakatime/1.0 (linux) Python3.11 kate/23 kate-wakatime/1.0", "kate"),
        (None, "Unknown Editor"),
    ],
)
def test_editor_names(user_agent: str | None, editor: str) -> None:
    assert editor_name(user_agent) == editor


@pytest.fixture
def timezone(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Tokyo (no DST, far from UTC), set through TZ as for the real process."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield "Asia/Tokyo"
    monkeypatch.undo()
    time.tzset()


def local(zone: str, *fields: int) -> float:
    return dt.datetime(*fields, tzinfo=ZoneInfo(zone)).timestamp()  # type: ignore[misc]


def test_today_starts_at_midnight_in_the_users_timezone(timezone: str) -> None:
    rows = [
        Row(local(timezone, 2025, 6, 1, 23, 50)),
        Row(local(timezone, 2025, 6, 1, 23, 58)),
        Row(local(timezone, 2025, 6, 2, 0, 4)),
        Row(local(timezone, 2025, 6, 2, 0, 10)),
    ]

    def history(start: float, end: float) -> list[Row]:
        return [row for row in rows if start <= row.time < end]

    after_midnight = today_summary(history, local(timezone, 2025, 6, 2, 0, 30), DEFAULT_TIMEOUT)
    before_midnight = today_summary(history, local(timezone, 2025, 6, 1, 23, 59), DEFAULT_TIMEOUT)
    assert after_midnight.total_seconds == 600.0
    assert before_midnight.total_seconds == 600.0
    assert after_midnight.start == local(timezone, 2025, 6, 2, 0, 0)


def test_a_daylight_saving_day_is_23_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        start, end = day_bounds(local("America/New_York", 2024, 3, 10, 12, 0))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert start == local("America/New_York", 2024, 3, 10, 0, 0)
    assert end - start == 23 * 3600


# ----- `agent today` ---------------------------------------------------------------------------


def test_today_shows_the_servers_figure_when_it_answers(tmp_path: Path, waka: FakeWakaTime) -> None:
    env = agent_env(tmp_path, waka.url, TZ="UTC")
    with AgentProcess(env, workdir(tmp_path)) as agent:
        send(
            env,
            [
                heartbeat("/code/shop/a.py", today_at(t), project="shop", language="Python")
                for t in (60, 360, 660)
            ],
        )
        waka.wait_for(3)
        code, report = cli_json(env, "today")
        human = cli(env, "today")
        assert agent.stop() == 0
    assert code == 0
    assert report["source"] == "server"
    assert report["total_seconds"] == report["server_seconds"] == report["local_seconds"] == 600.0
    assert report["text"] == "10 mins"
    assert report["projects"][0]["name"] == "shop"
    lines = human.stdout.splitlines()
    assert lines[0].startswith("Today  10 mins  (server")
    assert any(line.strip().startswith("shop") and "█" in line for line in lines)


def test_today_works_offline_from_the_daemon(tmp_path: Path) -> None:
    server = FakeWakaTime(port=FakeWakaTime.reserve_port())  # never started: unreachable
    env = agent_env(tmp_path, server.url, TZ="UTC")
    with AgentProcess(env, workdir(tmp_path)) as agent:
        send(env, [heartbeat("/code/a.py", today_at(t), project="shop") for t in (0, 120)])
        code, report = cli_json(env, "today")
        assert agent.stop() == 0
    assert code == 0
    assert report["source"] == "local"
    assert report["total_seconds"] == 120.0
    assert report["text"] == "2 mins"
    assert report["server_error"].startswith("cannot reach")


def test_today_with_no_daemon_reads_the_database(tmp_path: Path) -> None:
    env = agent_env(tmp_path, None, api_key=None, TZ="UTC")
    env["HEARTBEAT_AGENT_HEARTBEATS__DURATION_TIMEOUT"] = "100"
    at = [0, 60, 300, 360]  # the 240 s gap is over the configured 100 s
    store_directly(
        env, [heartbeat("/code/a.py", today_at(t), project="shop") for t in at], ["default"]
    )
    code, report = cli_json(env, "today")
    assert code == 0
    assert report["source"] == "local"
    assert report["total_seconds"] == 120.0
    assert "credentials" in report["server_error"]
    offline = cli(env, "today", "--offline")
    assert offline.returncode == 0
    assert offline.stdout.startswith("Today  2 mins  (local history)")


def test_an_editors_today_counts_as_agent_today_does(tmp_path: Path) -> None:
    """One day total everywhere: `agent today` and a plugin's `--today` (the status bar)
    both count with [heartbeats] duration_timeout with no daemon (through one:
    test_reports.py, in-process)."""
    env = agent_env(tmp_path, None, api_key=None, TZ="UTC")
    env["HEARTBEAT_AGENT_HEARTBEATS__DURATION_TIMEOUT"] = "100"
    at = [0, 60, 300, 360]  # the 240 s gap is over the configured 100 s
    store_directly(
        env, [heartbeat("/code/a.py", today_at(t), project="shop") for t in at], ["default"]
    )

    def editor_today() -> float:
        done = cli(env, "--today", "--output", "raw-json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["data"]["grand_total"]["total_seconds"]

    _, offline = cli_json(env, "today", "--offline")
    assert (offline["total_seconds"], editor_today()) == (120.0, 120.0)


def test_today_with_nothing_recorded_is_zero(tmp_path: Path) -> None:
    env = agent_env(tmp_path, None, api_key=None)
    code, report = cli_json(env, "today", "--offline")
    assert code == 0
    assert report["total_seconds"] == 0
    assert report["text"] == "0 secs"
    assert not os.path.exists(env["HEARTBEAT_AGENT_QUEUE__PATH"])
