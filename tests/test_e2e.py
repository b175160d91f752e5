"""End to end: `agent run` as a subprocess, a real git repo, a real watcher, the fake server.
The first test keeps every default; the others hold a save only briefly (SHORT_HOLD). Those
about what the daemon does, not its process, serve it in-process (tests/inprocess.py)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from agentproc import SHORT_HOLD, AgentProcess, agent_env, git_repo
from inprocess import InProcessAgent
from wakaserver import FakeWakaTime


def test_a_save_becomes_a_delivered_heartbeat(tmp_path: Path, waka: FakeWakaTime) -> None:
    repo = git_repo(tmp_path / "shop-api", branch="feature/checkout")
    with AgentProcess(agent_env(tmp_path, waka.url), repo) as agent:
        before = time.time()
        (repo / "cart.py").write_text("import os\n\nprint(os.getcwd())\n")
        [hb] = waka.wait_for(1, timeout=15)
        assert agent.stop() == 0

    assert hb["entity"] == str(repo / "cart.py")
    assert hb["type"] == "file"
    assert hb["category"] == "coding"
    assert hb["is_write"] is True
    assert hb["project"] == "shop-api"
    assert hb["branch"] == "feature/checkout"
    assert hb["language"] == "Python"
    assert hb["lines"] == 3
    assert before - 1 <= hb["time"] <= time.time()
    request = next(r for r in waka.requests if r.path.endswith("heartbeats.bulk"))
    assert request.headers["user-agent"].startswith("wakatime/")
    assert request.headers["user-agent"].endswith("heartbeat-agent/0.1.0")
    assert request.headers["authorization"].startswith("Basic ")
    assert request.headers["x-machine-name"]
    assert request.headers["timezone"]


def test_server_down_at_first_then_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = FakeWakaTime.reserve_port()
    server = FakeWakaTime(port=port)
    repo = git_repo(tmp_path / "repo")
    with InProcessAgent(agent_env(tmp_path, server.url, **SHORT_HOLD), repo, monkeypatch) as agent:
        (repo / "main.go").write_text("package main\n")
        agent.wait_for_log("cannot reach")  # the first attempt failed: nothing listens
        with server:
            [hb] = server.wait_for(1, timeout=30)
        assert agent.stop() == 0
    assert hb["entity"].endswith("main.go")
    assert hb["language"] == "Go"


def test_sigint_stops_cleanly_and_the_queue_survives(tmp_path: Path, waka: FakeWakaTime) -> None:
    repo = git_repo(tmp_path / "repo")
    env = agent_env(tmp_path, waka.url, api_key=None, **SHORT_HOLD)  # no key: record locally
    with AgentProcess(env, repo, "--verbose") as agent:
        agent.wait_for_log("no API key configured")  # said at start, before any activity
        (repo / "a.rs").write_text("fn main() {}\n")
        agent.wait_for_log("stored 1 heartbeat")
        assert agent.stop(signal.SIGINT) == 0
    assert "Traceback" not in agent.log
    assert agent.log.count("no API key configured") == 1
    assert waka.received == []
    # With a key the next start delivers what was recorded while it had none.
    with AgentProcess(agent_env(tmp_path, waka.url), repo) as agent:
        [hb] = waka.wait_for(1, timeout=15)
        assert agent.stop() == 0
    assert hb["entity"].endswith("a.rs")
    assert hb["language"] == "Rust"


def test_the_agents_own_files_never_count(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Watching a folder that holds the agent's database (e.g. the home folder)."""
    home = git_repo(tmp_path / "home-as-repo")
    env = agent_env(tmp_path, waka.url, **SHORT_HOLD)
    env["HEARTBEAT_AGENT_QUEUE__PATH"] = str(home / "state" / "heartbeats.sqlite3")
    with InProcessAgent(env, home, monkeypatch) as agent:
        (home / "one.py").write_text("x = 1\n")
        waka.wait_for(1, timeout=15)
        (home / "two.py").write_text("y = 2\n")  # after the database wrote its first delivery
        received = waka.wait_for(2, timeout=15)
        assert agent.stop() == 0
    assert sorted(Path(hb["entity"]).name for hb in received) == ["one.py", "two.py"]
