"""The database under trouble: corrupt or truncated at startup (moved aside, a fresh one
started, status says so), locked by another process (waited out), and writes failing as on
a full disk (heartbeats refused with `ok:false`, never acknowledged, and recovery after)."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from agentproc import AgentProcess, agent_env
from inprocess import InProcessAgent
from support import ask, database_of, identities, make_heartbeats, send, socket_of, wait_until
from wakaserver import FakeWakaTime

from agent.ipc.client import IpcClient
from agent.ipc.protocol import encode
from agent.pipeline.builder import HeartbeatBuilder
from agent.pipeline.destinations import Destination, Router
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.ingest import Ingest
from agent.pipeline.store import HeartbeatStore

HOLD_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
"""


class WriteLock:
    """Another process holding the database's write lock, from creation until released."""

    def __init__(self, database: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "locked"

    def release(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        self.process.wait(10)


def filled_database(path: Path, count: int = 3000) -> Path:
    store = HeartbeatStore(path)
    store.add(
        [(Heartbeat(entity=f"/src/f{i}.py", time=1.8e9 + i), ["default"]) for i in range(count)]
    )
    store.close()  # the last connection checkpoints the WAL into the file
    return path


def asides(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.broken-*"))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "zeroed-page"])
def test_a_damaged_database_is_moved_aside_and_a_fresh_one_started(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = filled_database(tmp_path / "heartbeats.sqlite3")
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"this is not a database, it is a text file\n" * 200)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:  # a page in the middle overwritten with zeros, as a torn write leaves it
        page = 4096
        middle = len(data) // page // 2 * page
        path.write_bytes(data[:middle] + bytes(page) + data[middle + page :])
    damaged = path.read_bytes()
    store, aside = HeartbeatStore.open_or_reset(path)
    try:
        assert aside is not None and asides(path) == [aside]
        assert aside.read_bytes() == damaged  # kept as it was, for whoever wants to look
        salvaged = store.counts().queued  # what could still be read is queued again
        assert salvaged == 0 if damage == "garbage" else 0 < salvaged < 3000
        store.add([(Heartbeat(entity="/src/new.py", time=1.8e9), ["default"])])
        assert store.counts().queued == salvaged + 1
    finally:
        store.close()
    [line] = [r.getMessage() for r in caplog.records if "cannot be used" in r.getMessage()]
    assert str(path) in line and str(aside) in line


def test_daemon_reports_a_database_reset(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = agent_env(tmp_path, waka.url)
    database = database_of(env)
    database.parent.mkdir(parents=True)
    database.write_bytes(b"\x00garbage" * 1000)
    workdir = tmp_path / "work"
    workdir.mkdir()
    with InProcessAgent(env, workdir, monkeypatch) as agent:
        status = ask(env, "status")
        assert status["database_reset"] and Path(status["database_reset"]).exists()
        assert send(env, make_heartbeats(3, time.time() - 60)) == 3
        waka.wait_for(3)
        assert agent.stop() == 0
    [line] = [line for line in agent.lines if "cannot be used" in line]
    assert status["database_reset"] in line
    assert "Traceback" not in agent.log


def test_a_locked_database_is_waited_out(tmp_path: Path, waka: FakeWakaTime) -> None:
    env = agent_env(tmp_path, waka.url)
    database = filled_database(database_of(env), count=10)
    workdir = tmp_path / "work"
    workdir.mkdir()
    agent = AgentProcess(env, workdir)
    locker = WriteLock(database)
    try:
        # Startup needs a write (it registers destinations): it must wait, not die.
        starter = threading.Thread(target=agent.start, daemon=True)
        starter.start()
        wait_until(
            lambda: agent.proc is not None and _has_open(agent.proc.pid, database),
            "the daemon to open the database",
        )
        assert agent.proc is not None and agent.proc.poll() is None
        locker.release()
        starter.join(30)
        agent.wait_for_log("ready")
        # Locked again while a heartbeat arrives: the answer waits for the lock.
        locker = WriteLock(database)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(socket_of(env)))
            request = {"op": "heartbeats", "heartbeats": make_heartbeats(2, time.time())}
            client.sendall(encode(request))
            client.settimeout(0.5)
            with pytest.raises(TimeoutError):  # no answer while the lock is held
                client.recv(4096)
            locker.release()
            client.settimeout(30)
            assert json.loads(client.makefile("rb").readline()) == {"ok": True, "queued": 2}
        waka.wait_for(12)
        assert agent.stop() == 0
        assert "Traceback" not in agent.log
    finally:
        locker.process.kill()
        agent.kill()


def _has_open(pid: int, path: Path) -> bool:
    try:
        return any(
            os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd")
        )
    except OSError:
        return False


def test_write_errors_refuse_heartbeats_and_recover(tmp_path: Path, waka: FakeWakaTime) -> None:
    """A full disk, played by RLIMIT_FSIZE on the running daemon: no file may grow. What
    the daemon cannot store it refuses (`ok:false`, a clear error); nothing refused is
    delivered, everything acknowledged is; and once there is room it accepts again."""
    env = agent_env(tmp_path, waka.url)
    workdir = tmp_path / "work"
    workdir.mkdir()
    dependencies = [f"dependency-{n:04d}" for n in range(200)]  # ~3 KiB a heartbeat
    big = [
        {**hb, "dependencies": dependencies}
        for hb in make_heartbeats(400, time.time() - 3600, "/work/big/f")
    ]
    with AgentProcess(env, workdir) as agent:
        assert agent.proc is not None
        pid = agent.proc.pid
        acked: list[dict] = []
        refused: list[dict] = []
        _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        sizes = [p.stat().st_size for p in database_of(env).parent.iterdir()]
        # Room for a few requests' worth, then no file may grow.
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (max(sizes) + 400_000, hard))
        with IpcClient(socket_of(env), timeout=30) as client:
            for offset in range(0, len(big), 50):
                chunk = big[offset : offset + 50]
                answer = client.request({"op": "heartbeats", "heartbeats": chunk})
                (acked if answer["ok"] else refused).extend(chunk)
                if not answer["ok"]:
                    error = answer["error"]
            assert acked and refused, "the size limit never bit, or bit at once"
            assert error.startswith("not stored: ") and "disk" in error
            assert ask(env, "ping")["ok"]  # still up
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))  # room again
            after = make_heartbeats(20, time.time() - 60, "/work/after/f")
            answer = client.request({"op": "heartbeats", "heartbeats": after})
            assert answer == {"ok": True, "queued": 20}
            acked += after
        assert ask(env, "flush")["ok"]
        wanted = identities(acked)
        wait_until(lambda: set(wanted) <= set(identities(waka.received)), "acknowledged ones")
        assert agent.stop() == 0
    assert not set(identities(refused)) & set(identities(waka.received))
    print(f"\nCHAOS write errors: {len(acked)} acknowledged and delivered, {len(refused)} refused")
    assert "Traceback" not in agent.log


def test_one_unstorable_request_does_not_fail_the_others_in_its_group_commit(
    tmp_path: Path,
) -> None:
    """Requests that arrive together are committed together; when that commit fails
    because of one of them (here a lone surrogate, which SQLite cannot store, slipped past
    validation), the others are committed alone and only the culprit gets the error."""
    ingest = Ingest(
        tmp_path / "hb.sqlite3", HeartbeatBuilder(), Router((Destination("default", "u"),))
    )
    good = [ingest.submit([Heartbeat(entity=f"/ok/{i}", time=1.8e9 + i)]) for i in range(3)]
    bad = ingest.submit([Heartbeat(entity="/bad/\ud800", time=1.8e9)])
    more = ingest.submit([Heartbeat(entity="/ok/last", time=1.8e9 + 9)])
    ingest.start()  # all five are waiting: they form one group
    try:
        assert [f.result(10) for f in [*good, more]] == [1, 1, 1, 1]
        with pytest.raises(UnicodeEncodeError):
            bad.result(10)
    finally:
        ingest.stop()
    store = HeartbeatStore(tmp_path / "hb.sqlite3")
    assert store.counts().queued == 4
    store.close()
