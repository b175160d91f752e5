"""SIGHUP: the daemon re-reads its configuration (watch roots, key, destinations) without
losing a queued heartbeat, refuses a broken one whole, and keeps its database."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from agentproc import SHORT_HOLD, AgentProcess, agent_env, git_repo
from test_ops import cli, cli_json, heartbeat, send, workdir
from wakaserver import FakeWakaTime


def config(path: Path, key: str, watch: Path, extra: str = "") -> dict[str, str]:
    path.write_text(f'[api]\nkey = "{key}"\n[watch]\npaths = ["{watch}"]\n{extra}')
    return {"HEARTBEAT_AGENT_CONFIG": str(path)}


def test_a_new_key_and_new_roots_apply_and_the_queue_is_kept(tmp_path: Path) -> None:
    first, second = git_repo(tmp_path / "first"), git_repo(tmp_path / "second")
    settings = tmp_path / "agent.toml"
    now = time.time()
    with FakeWakaTime(api_key="waka_new_key") as waka:
        env = agent_env(tmp_path, waka.url, api_key=None, **config(settings, "waka_old_key", first))
        # The watcher's heartbeat leaves at once, not a minute later for plugins' late reports.
        env.update(SHORT_HOLD, HEARTBEAT_AGENT_HEARTBEATS__PLUGIN_WAIT="0")
        with AgentProcess(env, workdir(tmp_path)) as agent:
            send(env, [heartbeat(f"/code/f{i}.py", now - 100 + i) for i in range(30)])
            agent.wait_for_log("delivery paused")  # the old key is refused: all stay queued
            assert cli_json(env, "queue", "count")[1]["queued"] == 30

            config(settings, "waka_new_key", second)
            agent.proc.send_signal(signal.SIGHUP)
            agent.wait_for_log("configuration reloaded")
            waka.wait_for(30, timeout=15)
            (second / "main.go").write_text("package main\n")
            delivered = waka.wait_for(31, timeout=15)
            _, status = cli_json(env, "status")
            assert agent.stop() == 0
    assert status["watching"] == [str(second)]
    assert status["queued"] == 0
    assert status["last_error"] is None
    assert delivered[-1]["entity"] == str(second / "main.go")
    assert sorted(hb["entity"] for hb in delivered[:30]) == sorted(
        f"/code/f{i}.py" for i in range(30)
    )


def test_a_broken_configuration_is_refused_and_the_old_one_kept(
    tmp_path: Path, waka: FakeWakaTime
) -> None:
    repo = git_repo(tmp_path / "repo")
    settings = tmp_path / "agent.toml"
    env = agent_env(
        tmp_path, waka.url, api_key=None, **config(settings, "waka_test_key", repo), **SHORT_HOLD
    )
    with AgentProcess(env, workdir(tmp_path)) as agent:
        settings.write_text("[api]\ntimeout = -5\n")
        agent.proc.send_signal(signal.SIGHUP)
        line = agent.wait_for_log("reload refused")
        (repo / "app.py").write_text("print(1)\n")
        [hb] = waka.wait_for(1, timeout=15)
        assert agent.stop() == 0
    assert "api.timeout" in line
    assert hb["entity"] == str(repo / "app.py")


def test_reloads_one_after_another_leave_it_delivering(tmp_path: Path, waka: FakeWakaTime) -> None:
    repo = git_repo(tmp_path / "repo")
    settings = tmp_path / "agent.toml"
    env = agent_env(tmp_path, waka.url, api_key=None, **config(settings, "waka_test_key", repo))
    with AgentProcess(env, workdir(tmp_path)) as agent:
        for count in (1, 2, 3):
            agent.proc.send_signal(signal.SIGHUP)
            agent.wait_for_log("configuration reloaded", count=count)
        send(env, [heartbeat("/code/a.py", time.time())])
        waka.wait_for(1, timeout=15)
        assert agent.stop() == 0
    assert agent.log.count("watching ") == 4  # at startup, then once a reload
    assert "Traceback" not in agent.log


def test_the_database_stays_where_it_is_until_a_restart(tmp_path: Path, waka: FakeWakaTime) -> None:
    repo = git_repo(tmp_path / "repo")
    settings = tmp_path / "agent.toml"
    env = agent_env(tmp_path, waka.url, api_key=None, **config(settings, "waka_test_key", repo))
    del env["HEARTBEAT_AGENT_QUEUE__PATH"]
    config(settings, "waka_test_key", repo, f'[queue]\npath = "{tmp_path / "one.sqlite3"}"\n')
    with AgentProcess(env, workdir(tmp_path)) as agent:
        config(settings, "waka_test_key", repo, f'[queue]\npath = "{tmp_path / "two.sqlite3"}"\n')
        agent.proc.send_signal(signal.SIGHUP)
        line = agent.wait_for_log("takes effect at the next restart")
        send(env, [heartbeat("/code/a.py", time.time())])
        waka.wait_for(1, timeout=15)
        status = cli(env, "status", "--json")
        assert agent.stop() == 0
    assert "[queue] path" in line
    assert str(tmp_path / "one.sqlite3") in status.stdout
    assert not (tmp_path / "two.sqlite3").exists()
