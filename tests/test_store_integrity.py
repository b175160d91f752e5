"""The queue's integrity: a heartbeat is stored once however often it arrives, a WAL that
another database wrote is never replayed over this one, and what the server took is never
sent again because the disk was full when it was to be recorded."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from diskfull import fill, small_disk
from test_sender import make_sender
from wakaserver import FakeWakaTime

from agent.delivery.sender import Step
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.store import _SCHEMA, SCHEMA_VERSION, HeartbeatStore, payload

NOW = time.time()


def beats(count: int, start: float = NOW, prefix: str = "/src/f") -> list[Heartbeat]:
    return [Heartbeat(entity=f"{prefix}{i}.py", time=start + i) for i in range(count)]


def queue(store: HeartbeatStore, heartbeats: list[Heartbeat]) -> list[int]:
    return store.add([(hb, ["default"]) for hb in heartbeats])


def test_the_same_heartbeat_is_queued_once(tmp_path: Path) -> None:
    with HeartbeatStore(tmp_path / "q.sqlite3") as store:
        first = beats(3)
        assert len(queue(store, first)) == 3
        assert queue(store, beats(3)) == []  # the compat command's fallback and the daemon
        assert len(queue(store, [*beats(1, NOW + 10), *beats(1, NOW + 10)])) == 1
        # The same moment with another field the servers tell apart is another heartbeat;
        # one differing under a millisecond is the same (Wakapi keeps milliseconds).
        other = [
            Heartbeat(entity="/src/f0.py", time=NOW, is_write=True),
            Heartbeat(entity="/src/f0.py", time=NOW, project="p"),
            Heartbeat(entity="/src/f1.py", time=NOW + 1.0000001),
        ]
        assert len(queue(store, other)) == 2
        assert store.counts().queued == 3 + 1 + 2


def test_a_version_1_database_gets_identities(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(_SCHEMA)
    hb = beats(1)[0]
    for row_id in (1, 2):  # a repeat stored before identities existed
        db.execute(
            "INSERT INTO heartbeats (id, time, entity, type, category, payload, received)"
            " VALUES (?, ?, ?, 'file', 'coding', ?, 0)",
            (row_id, hb.time, hb.entity, payload(hb)),
        )
    db.execute("PRAGMA user_version = 1")
    db.close()
    with HeartbeatStore(path) as store:
        (version,) = store._db.execute("PRAGMA user_version").fetchone()
        assert version == SCHEMA_VERSION
        assert queue(store, [hb]) == []
        assert queue(store, beats(2))[0] == 3  # the other one is new


def _open_copy(path: Path) -> bytes:
    """The WAL of a database as a crash leaves it: read while a connection holds it."""
    return Path(f"{path}-wal").read_bytes()


def test_another_databases_wal_is_set_aside_unread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ours = tmp_path / "ours.sqlite3"
    with HeartbeatStore(ours) as store:
        queue(store, beats(300))
    other = tmp_path / "other.sqlite3"
    with HeartbeatStore(other) as store:
        queue(store, beats(50, prefix="/other/g"))
        foreign = _open_copy(other)
    Path(f"{ours}-wal").write_bytes(foreign)
    store, aside = HeartbeatStore.open_or_reset(ours)
    with store:
        assert aside is not None and aside.read_bytes() == foreign
        assert store.counts().queued == 300
        entities = {row.heartbeat["entity"] for row in store.deliveries([0])}
        assert not any(entity.startswith("/other/") for entity in entities)
    [line] = [r.getMessage() for r in caplog.records if "write-ahead log" in r.getMessage()]
    assert str(aside) in line and "another database" in line


def test_the_databases_own_wal_is_replayed(tmp_path: Path) -> None:
    path = tmp_path / "ours.sqlite3"
    with HeartbeatStore(path) as store:
        queue(store, beats(100))
    with HeartbeatStore(path) as store:
        queue(store, beats(7, NOW + 1000))
        crashed = {suffix: Path(f"{path}{suffix}").read_bytes() for suffix in ("", "-wal")}
    for suffix, data in crashed.items():  # the files as a kill -9 leaves them
        Path(f"{path}{suffix}").write_bytes(data)
    store, aside = HeartbeatStore.open_or_reset(path)
    with store:
        assert aside is None
        assert store.counts().queued == 107


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk", "2m") as mount:
        yield mount


def test_a_full_disk_while_recording_a_delivery_sends_nothing_twice(
    disk: Path, waka: FakeWakaTime
) -> None:
    store = HeartbeatStore(disk / "q.sqlite3")
    sent = beats(60)
    queue(store, sent)
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # any write now needs new space
    sender = make_sender(store, waka)
    filler = fill(disk)
    try:
        result = sender.step()
        assert result.step is Step.RETRY and len(waka.received) == 25
        error = sender.status.last_error or ""
        assert "cannot record" in error and "not sent again" in error
        for _ in range(5):  # however often it is woken meanwhile: nothing goes out
            assert sender.step().step is Step.RETRY
        assert len(waka.requests) == 1
    finally:
        filler.unlink()
    while sender.step().step is not Step.IDLE:
        pass
    received = Counter((hb["entity"], hb["time"]) for hb in waka.received)
    assert received == Counter((hb.entity, hb.time) for hb in sent)  # each once
    assert store.counts().delivered == 60 and sender.status.last_error is None
    store.close()


def test_a_full_disk_after_a_failed_write_still_lets_delivery_read_the_queue(
    disk: Path, waka: FakeWakaTime
) -> None:
    """A write the full disk refused rolls back and forgets the known destinations; finding
    them again is a read, so the queue can still be sent (the chaos suite found it stuck)."""
    store = HeartbeatStore(disk / "q.sqlite3")
    sent = beats(10)
    queue(store, sent)
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # any write now needs new space
    filler = fill(disk)
    try:
        with pytest.raises(sqlite3.OperationalError, match="full"):
            store.add([(Heartbeat("/work/more.py", time.time()), ["default"])])
        assert len(store.pending("default", 25)) == 10
    finally:
        filler.unlink()
    store.close()


def test_setting_a_damaged_database_aside_keeps_every_readable_heartbeat(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    with HeartbeatStore(path) as store:
        queue(store, beats(300))
        store.mark_delivered("default", range(1, 11))  # history: not to be sent again
        pages = store._db.execute(
            "SELECT pageno, ncell FROM dbstat WHERE name = 'heartbeats' AND pagetype = 'leaf'"
            " ORDER BY pageno"
        ).fetchall()
        (page_size,) = store._db.execute("PRAGMA page_size").fetchone()
    pageno, cells = pages[len(pages) // 2]  # a leaf in the middle, zeroed as a torn write
    data = bytearray(path.read_bytes())
    data[(pageno - 1) * page_size : pageno * page_size] = bytes(page_size)
    path.write_bytes(bytes(data))
    store, aside = HeartbeatStore.open_or_reset(path)
    with store:
        assert aside is not None
        counts = store.counts()
        assert counts.queued == 300 - 10 - cells  # all but the rows of the zeroed page
        assert counts.delivered == 0
        assert len(store.history(0, NOW + 1000)) == 300 - cells
