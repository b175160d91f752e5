"""A real daemon against hostile answers and storage: a proxy answering 200 HTML, a server
redirecting to a login page, a server trickling its answer a byte at a time, a full disk
while a delivery is recorded, another database's WAL, and a daemon too slow for the
compat command. Every case ends with each heartbeat at the server exactly once."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from agentproc import WAKATIME_CLI, AgentProcess, agent_env
from diskfull import fill, small_disk
from inprocess import InProcessAgent
from support import ask, database_of, identities, make_heartbeats, send, wait_until
from test_chaos_storage import WriteLock
from wakaserver import FakeWakaTime, Fault

from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.store import HeartbeatStore

LOGIN_PAGE = b"<!DOCTYPE html><html><body><form action=/login>Sign in</form></body></html>"
COUNT = 120


def hostile_fault(kind: str, login: FakeWakaTime) -> Fault:
    if kind == "proxy answering 200 HTML":
        return Fault.raw(200, LOGIN_PAGE, {"Content-Type": "text/html"})
    if kind == "redirect to a login page":
        return Fault.raw(302, b"", {"Location": f"{login.base_url}/login?api_key=waka_leak"})
    return Fault.trickle(0.2)  # a byte every 0.2 s: each read is quick, the answer endless


def queued(env: dict[str, str]) -> int:
    return int(ask(env, "status")["queued"])


@pytest.mark.parametrize(
    "kind", ["proxy answering 200 HTML", "redirect to a login page", "trickling server"]
)
def test_hostile_answers_lose_and_duplicate_nothing(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Wakapi's flavor: like the real servers it drops a copy it already has. A trickled
    # answer comes after the server took the batch, so a re-send is the only safe course.
    with FakeWakaTime(flavor="wakapi") as waka, FakeWakaTime() as login:
        hostile = [True]
        fault = hostile_fault(kind, login)
        waka.fault_plan(lambda _: fault if hostile[0] else None)
        # A whole request may take 2 × [api] timeout: 1 s here.
        env = agent_env(tmp_path, waka.url, HEARTBEAT_AGENT_API__TIMEOUT="0.5")
        workdir = tmp_path / "work"
        workdir.mkdir()
        sent = make_heartbeats(COUNT, time.time() - 3600)
        with InProcessAgent(env, workdir, monkeypatch) as agent:
            assert send(env, sent) == COUNT
            wait_until(lambda: len(waka.requests) >= 2, "a retry of the hostile answer")
            status = ask(env, "status")
            assert status["queued"] == COUNT and status["delivered_total"] == 0
            assert status["last_error"], status
            hostile[0] = False
            assert ask(env, "flush")["ok"]
            wait_until(lambda: queued(env) == 0, "the queue to drain", timeout=60)
            assert agent.stop() == 0
        assert identities(waka.received) == identities(sent)  # none lost, none twice
        assert login.requests == []
        if kind != "trickling server":
            assert waka.duplicates == 0  # nothing was even sent twice
        assert "waka_leak" not in agent.log and "Traceback" not in agent.log


def test_a_full_disk_while_a_delivery_is_recorded(tmp_path: Path, waka: FakeWakaTime) -> None:
    with small_disk(tmp_path / "disk") as disk:
        waiting = [True]
        waka.fault_plan(lambda _: Fault.fail(503) if waiting[0] else None)
        env = agent_env(tmp_path, waka.url)
        env["HEARTBEAT_AGENT_QUEUE__PATH"] = str(disk / "heartbeats.sqlite3")
        workdir = tmp_path / "work"
        workdir.mkdir()
        sent = make_heartbeats(COUNT, time.time() - 3600)
        with AgentProcess(env, workdir) as agent:
            assert send(env, sent) == COUNT
            waka.wait_for_requests(1)
            # The WAL emptied into the database: recording anything now needs new space. A
            # reader of the daemon's can hold the checkpoint back (busy): try until it is done.
            with sqlite3.connect(database_of(env)) as db:
                wait_until(
                    lambda: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0,
                    "a checkpoint that empties the WAL",
                )
            filler = fill(disk)
            waiting[0] = False
            for _ in range(5):  # woken again and again while the disk is full
                ask(env, "flush")
                wait_until(
                    lambda: "cannot record" in (ask(env, "status")["last_error"] or ""),
                    "the recording error in status",
                )
            assert len(waka.received) == 25  # one batch taken, never sent again
            filler.unlink()
            ask(env, "flush")
            wait_until(lambda: queued(env) == 0, "the queue to drain")
            status = ask(env, "status")
            assert agent.stop() == 0
        assert identities(waka.received) == identities(sent)
        assert status["last_error"] is None and status["delivered_total"] == COUNT


def plant_foreign_wal(database: Path, now: float) -> None:
    """300 heartbeats queued in the database, and beside it the WAL of another one with 50,
    as a crash leaves it."""
    database.parent.mkdir(parents=True)
    with HeartbeatStore(database) as store:
        store.add(
            [(Heartbeat(f"/work/ours/f{i}.py", now - 600 + i), ["default"]) for i in range(300)]
        )
    other = database.parent.parent / "other.sqlite3"
    with HeartbeatStore(other) as store:
        store.add(
            [(Heartbeat(f"/work/theirs/g{i}.py", now - 300 + i), ["default"]) for i in range(50)]
        )
        Path(f"{database}-wal").write_bytes(Path(f"{other}-wal").read_bytes())  # as left by a crash


def test_another_databases_wal_is_not_replayed_by_the_daemon(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = agent_env(tmp_path, waka.url)
    database = database_of(env)
    plant_foreign_wal(database, time.time())
    workdir = tmp_path / "work"
    workdir.mkdir()
    with InProcessAgent(env, workdir, monkeypatch) as agent:
        received = waka.wait_for(300)
        wait_until(lambda: queued(env) == 0, "the queue to drain")
        status = ask(env, "status")
        assert agent.stop() == 0
    assert len(received) == 300
    assert all(hb["entity"].startswith("/work/ours/") for hb in received)
    aside = status["database_reset"]
    assert aside and aside.startswith(f"{database}-wal.foreign-") and Path(aside).exists()
    assert "another database's write-ahead log" in agent.log


def test_another_databases_wal_is_not_replayed_by_the_compat_command(tmp_path: Path) -> None:
    env = agent_env(tmp_path, "http://127.0.0.1:9/api/v1")
    database = database_of(env)
    plant_foreign_wal(database, time.time())
    entity = tmp_path / "offline.py"
    entity.touch()  # the command skips missing files, as wakatime-cli
    done = subprocess.run(
        [WAKATIME_CLI, "--entity", str(entity), "--write"], env=env, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 102  # queued offline, as wakatime-cli says it
    # The request waits in the spool; the first process to open the queue takes it.
    subprocess.run([WAKATIME_CLI, "--offline-count"], env=env, capture_output=True, check=True)
    with sqlite3.connect(database) as db:
        entities = [entity for (entity,) in db.execute("SELECT entity FROM heartbeats")]
    assert len(entities) == 301 and str(entity) in entities
    assert not any(entity.startswith("/work/theirs/") for entity in entities)
    assert list(database.parent.glob(f"{database.name}-wal.foreign-*"))


def test_a_slow_daemon_and_the_compat_fallback_store_one_copy(
    tmp_path: Path, waka: FakeWakaTime
) -> None:
    env = agent_env(tmp_path, waka.url)
    workdir = tmp_path / "work"
    workdir.mkdir()
    entity = workdir / "slow.py"
    entity.touch()  # a file that exists: the command skips missing ones, as wakatime-cli
    log = tmp_path / "wakatime.log"
    with AgentProcess(env, workdir) as agent:
        lock = WriteLock(database_of(env))  # the daemon cannot commit while it is held
        compat = subprocess.Popen(
            [WAKATIME_CLI, "--entity", str(entity), "--write", "--log-file", str(log), "--verbose"],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        try:
            # The command gives up waiting for the daemon and writes the queue itself.
            wait_until(
                lambda: log.exists() and "writing to the queue directly" in log.read_text(),
                "the compat command to fall back",
                timeout=60,
            )
        finally:
            lock.release()
        assert compat.wait(60) in (0, 102)
        waka.wait_for(1)
        wait_until(lambda: queued(env) == 0, "the queue to drain")
        assert agent.stop() == 0
    with sqlite3.connect(database_of(env)) as db:
        (rows,) = db.execute("SELECT count(*) FROM heartbeats WHERE entity = ?", (str(entity),))
        assert rows == (1,)
    assert [hb["entity"] for hb in waka.received] == [str(entity)]


def test_a_database_damaged_while_running_is_healed(tmp_path: Path, waka: FakeWakaTime) -> None:
    waiting = [True]
    waka.fault_plan(lambda _: Fault.fail(503) if waiting[0] else None)
    env = agent_env(tmp_path, waka.url)
    workdir = tmp_path / "work"
    workdir.mkdir()
    before = make_heartbeats(300, time.time() - 3600)
    after = make_heartbeats(5, time.time() - 60, "/work/after/f")
    with AgentProcess(env, workdir) as agent:
        assert send(env, before) == 300
        database = database_of(env)
        with sqlite3.connect(database) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            index_pages = [
                pageno
                for (pageno,) in db.execute(
                    "SELECT pageno FROM dbstat WHERE name = 'heartbeats_by_identity'"
                )
            ]
            (page_size,) = db.execute("PRAGMA page_size").fetchone()
        with open(database, "r+b") as file:  # the index every new heartbeat is checked in
            for pageno in index_pages:
                file.seek((pageno - 1) * page_size)
                file.write(bytes(page_size))
        with sqlite3.connect(database) as db:  # a write elsewhere: the daemon reads afresh
            db.execute("UPDATE store_identity SET writes = writes + 1")
        assert send(env, after) == 5  # stored, in a fresh database
        status = ask(env, "status")
        assert status["database_reset"] and status["queued"] == 305
        waiting[0] = False
        assert ask(env, "flush")["ok"]
        wait_until(lambda: queued(env) == 0, "the queue to drain")
        assert agent.stop() == 0
    assert identities(waka.received) == identities(before + after)
    assert "Traceback" not in agent.log
    [line] = [line for line in agent.lines if "cannot be used" in line]
    assert "damaged while running" in line and "305" not in line and "300 heartbeat(s)" in line
