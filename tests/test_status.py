"""`agent status`: against a real daemon and the fake server, and with no daemon at all."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from agentproc import AgentProcess, agent_env
from inprocess import InProcessAgent
from test_ops import cli, cli_json, heartbeat, send, store_directly, today_at, workdir
from wakaserver import FakeWakaTime

DESIGN_KEYS = {
    "pid",
    "uptime_seconds",
    "watching",
    "queued",
    "rejected",
    "delivered_total",
    "last_delivery",
    "last_error",
    "today_seconds",
    "destinations",
}


def test_status_json_has_the_documented_keys(tmp_path: Path, waka: FakeWakaTime) -> None:
    env = agent_env(tmp_path, waka.url, TZ="UTC")
    work = workdir(tmp_path)
    with AgentProcess(env, work) as agent:
        send(env, [heartbeat("/code/a.py", today_at(10)), heartbeat("/code/a.py", today_at(70))])
        waka.wait_for(2)
        code, report = cli_json(env, "status")
        assert agent.stop() == 0
    offline_code, offline = cli_json(env, "status")
    assert code == 0
    assert set(report) >= DESIGN_KEYS
    assert offline_code == 1 and offline["running"] is False
    assert set(offline) == set(report)  # one report, with a daemon or without
    assert offline["today_seconds"] == report["today_seconds"]
    assert report["running"] is True
    assert report["pid"] == agent.proc.pid
    assert report["watching"] == [str(work)]
    assert report["delivered_total"] == 2
    assert report["queued"] == 0
    assert report["last_delivery"] is not None
    assert report["last_error"] is None
    assert report["today_seconds"] == 60.0
    [default] = report["destinations"]
    assert default["name"] == "default"
    assert default["delivered"] == 2


def test_status_shows_a_refused_key_and_never_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeWakaTime(api_key="the_right_key") as waka:
        env = agent_env(tmp_path, waka.url, api_key="waka_wrong_secret")
        with InProcessAgent(env, workdir(tmp_path), monkeypatch) as agent:
            send(env, [heartbeat("/code/a.py", time.time())])
            agent.wait_for_log("delivery paused")
            human = cli(env, "status")
            code, report = cli_json(env, "status")
            assert agent.stop() == 0
    assert human.returncode == code == 0
    assert "refused the credentials" in human.stdout
    assert "1 queued" in human.stdout
    assert report["queued"] == 1
    assert "refused the credentials" in report["destinations"][0]["paused"]
    assert "waka_wrong_secret" not in human.stdout + str(report)


def test_with_no_daemon_status_says_so_in_one_line(tmp_path: Path) -> None:
    env = agent_env(tmp_path, None)
    done = cli(env, "status")
    assert done.returncode == 1
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert "no daemon is running" in line and "agent run" in line


def test_with_no_daemon_status_json_reports_the_database(tmp_path: Path) -> None:
    env = agent_env(tmp_path, None, TZ="UTC")
    at = [today_at(10), today_at(70)]
    store_directly(env, [heartbeat("/code/a.py", t) for t in at], ["default"])
    code, report = cli_json(env, "status")
    assert code == 1
    assert report["running"] is False
    assert report["pid"] is None
    assert report["queued"] == 2
    assert report["today_seconds"] == 60.0
    assert set(report) >= DESIGN_KEYS


def test_rows_kept_for_a_removed_destination_are_not_counted_as_queued(tmp_path: Path) -> None:
    """A destination taken out of the configuration leaves its rows (`agent queue` still
    shows and purges them), but `queued` means what is still to be delivered."""
    unreachable = "http://127.0.0.1:9/api/v1"  # nothing listens: the queue only grows
    env = agent_env(tmp_path, unreachable, TZ="UTC")
    store_directly(env, [heartbeat("/code/a.py", today_at(10))], ["default", "removed"])
    store_directly(env, [heartbeat("/code/b.py", today_at(20))], ["removed"])

    _, offline = cli_json(env, "status")
    assert offline["queued"] == 1
    assert [d["name"] for d in offline["destinations"]] == ["default"]
    assert cli(env, "--offline-count").stdout.strip() == "1"
    # The daemon counts the same way (reports.status_report serves both; in-process:
    # test_reports.py).
    _, counted = cli_json(env, "queue", "count")
    assert counted["destinations"]["removed"]["queued"] == 2  # kept, and there to purge
