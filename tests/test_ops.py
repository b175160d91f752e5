"""Operations: logging (one line per state change, the rotating file), history retention,
the queue cap. Also the helpers the other operations tests share: running `agent COMMAND`
as a subprocess, talking to the daemon's socket, filling a database directly."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from agentproc import AGENT, AgentProcess, agent_env
from inprocess import InProcessAgent
from wakaserver import FakeWakaTime

from agent.commands.common import LOG_FILE_BYTES, setup_logging
from agent.ipc.client import request
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.store import HeartbeatStore

PLUGIN = "vim/9.1 vim-wakatime/11.0"


def cli(
    env: dict[str, str], *args: str, stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`agent ARGS…` as a subprocess in the test's environment."""
    return subprocess.run(
        [AGENT, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )


def cli_json(env: dict[str, str], *args: str) -> tuple[int, Any]:
    done = cli(env, *args, "--json")
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def socket_of(env: dict[str, str]) -> str:
    return os.path.join(env["XDG_RUNTIME_DIR"], "heartbeat-agent", "agent.sock")


def database_of(env: dict[str, str]) -> Path:
    return Path(env["HEARTBEAT_AGENT_QUEUE__PATH"])


def workdir(root: Path) -> Path:
    """Where `agent run` starts (and so what it watches): apart from its own database."""
    folder = root / "work"
    folder.mkdir(exist_ok=True)
    return folder


def today_at(seconds: float) -> float:
    """A time today in UTC (the zone these tests run the agent in), seconds after midnight."""
    now = time.time()
    return now - now % 86400 + seconds


def heartbeat(entity: str, at: float, **fields: Any) -> dict[str, Any]:
    return {"entity": entity, "time": at, "plugin": PLUGIN, **fields}


def send(env: dict[str, str], heartbeats: Sequence[dict[str, Any]]) -> None:
    """Hand heartbeats to the running daemon; on return they are durable."""
    answer = request({"op": "heartbeats", "heartbeats": list(heartbeats)}, socket_of(env))
    assert answer["ok"], answer


def store_directly(
    env: dict[str, str], heartbeats: Sequence[dict[str, Any]], destinations: Sequence[str]
) -> None:
    """Queue heartbeats in the database with no daemon (what `agent heartbeat` does offline)."""
    store = HeartbeatStore(database_of(env))
    try:
        store.add([(Heartbeat.from_mapping(h), destinations) for h in heartbeats])
    finally:
        store.close()


@pytest.fixture
def ops_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An isolated environment in UTC (the fake server's day is UTC too)."""
    yield agent_env(tmp_path, None, TZ="UTC")


# ----- logging -------------------------------------------------------------------------------


def test_the_log_has_a_line_per_state_change_not_per_heartbeat(tmp_path: Path) -> None:
    server = FakeWakaTime(port=FakeWakaTime.reserve_port())
    env = agent_env(tmp_path, server.url)
    now = time.time()
    with AgentProcess(env, workdir(tmp_path)) as agent:
        send(env, [heartbeat("/code/a.py", now - 60)])
        agent.wait_for_log("cannot reach")  # offline: said once
        with server:
            server.wait_for(1, timeout=30)
            agent.wait_for_log("delivering again")  # online again: said once
            for index in range(40):
                send(env, [heartbeat(f"/code/f{index}.py", now - 50 + index)])
            server.wait_for(41, timeout=30)
            # the server has them before its answer is written: stop it only once the daemon
            # has read the answers, or a cut answer is a (correct) second "cannot reach"
            assert cli(env, "queue", "flush").returncode == 0
        assert agent.stop() == 0
    assert agent.log.count("cannot reach") == 1
    assert agent.log.count("delivering again") == 1
    assert len(agent.lines) < 10, agent.log


def test_the_log_file_is_private_rotated_and_has_times(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "agent.log"
    try:
        setup_logging("info", file=log_file)
        logging.getLogger("agent.test").info("delivering again")
        handler = next(h for h in logging.getLogger().handlers if hasattr(h, "maxBytes"))
        assert handler.maxBytes == LOG_FILE_BYTES
    finally:
        logging.basicConfig(force=True, handlers=[logging.NullHandler()])
    text = log_file.read_text()
    assert text.endswith("INFO agent.test: delivering again\n")
    assert text[:4].isdigit()  # the time leads each line: no journal adds it here
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600


def test_an_unwritable_log_file_is_a_configuration_error(tmp_path: Path) -> None:
    from agent.commands.common import CommandError

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(CommandError) as caught:
        setup_logging("info", file=blocker / "agent.log")
    assert caught.value.code == 78
    assert "[log] file" in str(caught.value)
    logging.basicConfig(force=True, handlers=[logging.NullHandler()])


# ----- retention and the queue cap ----------------------------------------------------------


def test_history_is_pruned_at_startup_keeping_the_undelivered(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = agent_env(tmp_path, waka.url, HEARTBEAT_AGENT_QUEUE__HISTORY_DAYS="30")
    old = time.time() - 40 * 86400
    store = HeartbeatStore(database_of(env))
    store.destination_id("default", waka.url)
    ids = store.add(
        [
            (Heartbeat("/code/old-delivered.py", old), ["default"]),
            (Heartbeat("/code/old-rejected.py", old + 1), ["default"]),
            (Heartbeat("/code/old-for-a-gone-server.py", old + 2), ["gone"]),
            (Heartbeat("/code/recent.py", time.time() - 3600), ["default"]),
        ]
    )
    store.mark_delivered("default", [ids[0], ids[3]])
    store.mark_rejected("default", {ids[1]: "HTTP 400: invalid"})
    store.close()
    with InProcessAgent(env, workdir(tmp_path), monkeypatch) as agent:
        agent.wait_for_log("forgot 1 delivered heartbeat(s) older than 30 days")
        assert agent.stop() == 0
    store = HeartbeatStore(database_of(env))
    try:
        entities = {row.entity for row in store.history(0, time.time() + 1)}
    finally:
        store.close()
    assert entities == {
        "/code/old-rejected.py",
        "/code/old-for-a-gone-server.py",
        "/code/recent.py",
    }


def test_a_queue_over_its_cap_is_warned_about_and_nothing_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = agent_env(tmp_path, "http://127.0.0.1:9/api/v1", api_key=None)
    env["HEARTBEAT_AGENT_QUEUE__MAX_QUEUED"] = "1000"
    now = time.time()
    with InProcessAgent(env, workdir(tmp_path), monkeypatch) as agent:
        send(env, [heartbeat(f"/code/f{i}.py", now - 2000 + i) for i in range(1001)])
        line = agent.wait_for_log("max_queued")
        assert "1001 undelivered" in line and "none is dropped" in line
        assert "ERROR" in line
        status = cli(env, "status")
        assert "more than [queue] max_queued = 1,000" in status.stdout
        assert agent.stop() == 0
    code, counts = cli_json(env, "queue", "count")
    assert code == 0
    assert counts["queued"] == 1001
