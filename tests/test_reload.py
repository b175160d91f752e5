"""A reload: the daemon re-reads its configuration (watch roots, key, destinations) without
losing a queued heartbeat, refuses a broken one whole, and keeps its database. The first test
sends a real SIGHUP to `agent run`; the others reload a daemon built in-process (tests/inprocess.py)
from a real configuration file."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from pathlib import Path

import pytest
from agentproc import SHORT_HOLD, AgentProcess, agent_env, git_repo
from inprocess import ask, with_daemon
from inprocess import heartbeat as beat
from test_ops import cli_json, heartbeat, send, workdir
from wakaserver import FakeWakaTime

from agent.config import Settings, load_settings
from agent.daemon import Daemon
from agent.pipeline.store import HeartbeatStore


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


def agent_toml(tmp_path: Path, url: str, watch: Path, database: str = "heartbeats") -> Path:
    """A configuration file for an in-process daemon: its server, folder, queue, socket."""
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[api]\nurl = "{url}"\nkey = "waka_test_key"\nallow_insecure_http = true\n'
        f'[watch]\npaths = ["{watch}"]\n'
        "[heartbeats]\ndebounce_seconds = 0\nplugin_wait = 0\nstorm_window = 0.2\n"
        f'[queue]\npath = "{tmp_path / "data" / database}.sqlite3"\n'
        f'[ipc]\nsocket = "{tmp_path / "run" / "agent.sock"}"\n'
    )
    return path


def in_process(config: Path) -> Settings:
    return load_settings(config)


pytestmark = pytest.mark.usefixtures("isolated_home")


def test_a_reload_reaches_every_component(tmp_path: Path, waka: FakeWakaTime) -> None:
    """New server, new watch folder: delivery, the router and the watcher follow; the queue
    and the socket stay."""
    first, moved = tmp_path / "first", tmp_path / "moved"
    first.mkdir()
    moved.mkdir()
    config = agent_toml(tmp_path, "http://127.0.0.1:9/api/v1", first)  # nothing listens there

    async def test(daemon: Daemon) -> dict[str, object]:
        await ask(daemon.settings, {"op": "heartbeat", "heartbeat": beat("/x/queued.py")})
        agent_toml(tmp_path, waka.url, moved)
        assert await daemon.reload() is True
        assert daemon.activity.roots == [str(moved)]
        (moved / "b.py").write_text("b = 1\n")
        await asyncio.to_thread(waka.wait_for, 2)
        return await ask(daemon.settings, {"op": "status"})

    status = with_daemon(in_process(config), test)
    assert sorted(hb["entity"] for hb in waka.received) == sorted(
        ["/x/queued.py", str(moved / "b.py")]
    )
    assert status["watching"] == [str(moved)]
    with HeartbeatStore(tmp_path / "data" / "heartbeats.sqlite3") as store:
        assert store.counts().queued == 0  # the one queued before the reload went too


def test_a_broken_configuration_is_refused_and_the_old_one_kept(
    tmp_path: Path, waka: FakeWakaTime, caplog: pytest.LogCaptureFixture
) -> None:
    repo = git_repo(tmp_path / "repo")
    config = agent_toml(tmp_path, waka.url, repo)

    async def test(daemon: Daemon) -> bool:
        config.write_text("[api]\ntimeout = -5\n")
        refused = await daemon.reload()
        (repo / "app.py").write_text("print(1)\n")
        await asyncio.to_thread(waka.wait_for, 1)
        return refused

    with caplog.at_level(logging.ERROR, logger="agent.daemon"):
        assert with_daemon(in_process(config), test) is False
    [line] = [r.getMessage() for r in caplog.records if "reload refused" in r.getMessage()]
    assert "api.timeout" in line and "keeping the running configuration" in line
    assert [hb["entity"] for hb in waka.received] == [str(repo / "app.py")]


def test_reloads_at_once_run_one_after_another_and_leave_it_delivering(
    tmp_path: Path, waka: FakeWakaTime, caplog: pytest.LogCaptureFixture
) -> None:
    repo = git_repo(tmp_path / "repo")
    config = agent_toml(tmp_path, waka.url, repo)

    async def test(daemon: Daemon) -> list[bool]:
        done = await asyncio.gather(daemon.reload(), daemon.reload(), daemon.reload())
        await ask(daemon.settings, {"op": "heartbeat", "heartbeat": beat("/code/a.py")})
        await asyncio.to_thread(waka.wait_for, 1)
        return done

    with caplog.at_level(logging.INFO):
        assert with_daemon(in_process(config), test) == [True, True, True]
    messages = [record.getMessage() for record in caplog.records]
    assert sum(m.startswith("watching ") for m in messages) == 4  # at startup, then a reload
    assert messages.count("configuration reloaded") == 3
    assert not [r for r in caplog.records if r.exc_info]


def test_the_database_stays_where_it_is_until_a_restart(
    tmp_path: Path, waka: FakeWakaTime, caplog: pytest.LogCaptureFixture
) -> None:
    repo = git_repo(tmp_path / "repo")
    config = agent_toml(tmp_path, waka.url, repo, database="one")

    async def test(daemon: Daemon) -> dict[str, object]:
        agent_toml(tmp_path, waka.url, repo, database="two")
        assert await daemon.reload() is True
        await ask(daemon.settings, {"op": "heartbeat", "heartbeat": beat("/code/a.py")})
        await asyncio.to_thread(waka.wait_for, 1)
        return await ask(daemon.settings, {"op": "status"})

    with caplog.at_level(logging.WARNING, logger="agent.daemon"):
        status = with_daemon(in_process(config), test)
    [line] = [r.getMessage() for r in caplog.records if "takes effect" in r.getMessage()]
    two = tmp_path / "data" / "two.sqlite3"
    assert line == f"[queue] path changed to {two}: takes effect at the next restart"
    assert str(tmp_path / "data" / "one.sqlite3") in json.dumps(status)
    assert not two.exists()
