"""The SQLite store: commit, acknowledge, reject, requeue, per-destination state, safety."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.store import HeartbeatStore, StoreError


def hb(entity: str, at: float, **fields: object) -> Heartbeat:
    return Heartbeat(entity=entity, time=at, **fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> HeartbeatStore:
    s = HeartbeatStore(tmp_path / "data" / "hb.sqlite3")
    s.destination_id("default", "https://wakatime.com/api/v1")
    s.destination_id("wakapi", "https://wakapi.example/api")
    return s


def test_committed_heartbeats_survive_a_reopen(store: HeartbeatStore) -> None:
    store.add([(hb("/a.py", 1_700_000_000.0, language="Python"), ["default"])])
    store.close()
    again = HeartbeatStore(store.path)
    [queued] = again.pending("default")
    assert queued.payload["entity"] == "/a.py"
    assert queued.payload["language"] == "Python"
    assert "alternate_project" not in queued.payload


def test_pending_is_oldest_first_and_limited(store: HeartbeatStore) -> None:
    store.add([(hb(f"/{i}", 1_700_000_000.0 + (10 - i)), ["default"]) for i in range(10)])
    batch = store.pending("default", limit=3)
    assert [q.payload["entity"] for q in batch] == ["/9", "/8", "/7"]


def test_delivery_state_is_per_destination(store: HeartbeatStore) -> None:
    ids = store.add([(hb("/a", 1_700_000_000.0), ["default", "wakapi"])])
    store.mark_delivered("default", ids)
    assert store.pending("default") == []
    assert [q.id for q in store.pending("wakapi")] == ids
    assert store.counts("default").delivered == 1
    assert store.counts("wakapi").queued == 1
    assert store.counts() == type(store.counts())(queued=1, delivered=1, rejected=0)


def test_rejected_are_kept_aside_with_the_reason_and_can_be_requeued(
    store: HeartbeatStore,
) -> None:
    ids = store.add(
        [(hb("/old", 1_700_000_000.0), ["wakapi"]), (hb("/new", 1_700_000_100.0), ["wakapi"])]
    )
    store.mark_rejected("wakapi", {ids[0]: "HTTP 400: heartbeat too old"})
    store.mark_delivered("wakapi", [ids[1]])
    [(name, reason, payload)] = store.rejected()
    assert (name, reason, payload["entity"]) == ("wakapi", "HTTP 400: heartbeat too old", "/old")
    assert store.requeue_rejected("wakapi") == 1
    assert [q.payload["entity"] for q in store.pending("wakapi")] == ["/old"]


def test_a_settled_row_is_not_settled_again(store: HeartbeatStore) -> None:
    ids = store.add([(hb("/a", 1_700_000_000.0), ["default"])])
    store.mark_delivered("default", ids)
    store.mark_rejected("default", {ids[0]: "late answer"})
    assert store.counts("default").delivered == 1
    assert store.rejected() == []


def test_history_and_prune_keep_what_is_queued(store: HeartbeatStore) -> None:
    ids = store.add(
        [(hb("/a", 1_700_000_000.0), ["default"]), (hb("/b", 1_700_000_050.0), ["default"])]
    )
    assert [r.entity for r in store.history(1_699_999_999, 1_700_000_100)] == ["/a", "/b"]
    store.mark_delivered("default", ids[:1])
    assert store.prune(older_than=1_700_001_000) == 1
    assert [r.entity for r in store.history(0, 2e9)] == ["/b"]


def test_file_and_folder_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "hb.sqlite3"
    HeartbeatStore(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_wal_mode(store: HeartbeatStore) -> None:
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    "content",
    [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000],
)
def test_a_corrupt_database_is_moved_aside(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "hb.sqlite3"
    path.write_bytes(content)
    store, aside = HeartbeatStore.open_or_reset(path)
    assert aside is not None and aside.read_bytes() == content
    store.add([(hb("/a", 1_700_000_000.0), ["default"])])
    assert store.counts().queued == 1


def test_a_foreign_schema_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "hb.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE other (x)")
    db.execute("PRAGMA user_version = 7")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="unknown schema version 7"):
        HeartbeatStore(path)
    store, aside = HeartbeatStore.open_or_reset(path)
    assert aside is not None and aside.exists()
    assert store.counts().queued == 0


def test_a_locked_database_is_not_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "hb.sqlite3"
    HeartbeatStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError) as error:
            HeartbeatStore(path, timeout=0.1).add([(hb("/a", 1_700_000_000.0), ["default"])])
    except sqlite3.OperationalError:
        pass  # the lock surfaced from add(), not from opening: also not a reset
    else:
        assert not error.value.unusable
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not list(tmp_path.glob("*.broken-*"))
    assert os.path.exists(path)
