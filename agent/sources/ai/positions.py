"""How far each transcript has been read, durably, and reading only what is new.

A small SQLite file of its own (`ai-transcripts.sqlite3`, next to the heartbeat queue)
rather than a table in the queue's database: the queue's schema, its reset on corruption
and its retention belong to the store, and a transcript position is worthless without the
file it points into, so losing it costs one re-read, never a heartbeat. The price is that
a position is committed just after its heartbeats, not in the same transaction: a crash
between the two re-reads those lines once (at-least-once, the server drops duplicates).

A position is (device, inode, size, mtime, offset, hash of the first bytes, parser state).
A file replaced (another inode), truncated (shorter than the offset) or rewritten (its
first bytes differ) is read again from the start; only complete lines are taken, so a
half-written last line waits for its newline.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEAD_BYTES = 4096  # bytes hashed to notice a file rewritten under the same name
MAX_READ = 8 * 1024 * 1024  # bytes read at once; a transcript bigger is read in steps
MAX_LINE = MAX_READ  # a longer line is dropped as corrupt (wakatime-cli's cap is 10 MB)

SCHEMA = """
CREATE TABLE IF NOT EXISTS transcripts (
    path TEXT PRIMARY KEY,
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    head_len INTEGER NOT NULL,
    head BLOB NOT NULL,
    state TEXT NOT NULL
)
"""


@dataclass
class Position:
    dev: int = 0
    ino: int = 0
    size: int = -1
    mtime_ns: int = 0
    offset: int = 0
    head_len: int = 0  # how many first bytes `head` (their SHA-256) covers
    head: bytes = b""
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Chunk:
    """What one read found: complete records, and the position after them."""

    records: list[bytes]
    position: Position
    restarted: str | None = None  # why the file is read again from its start
    more: bool = False  # stopped at MAX_READ: call again


class PositionStore:
    """Thread-safe; one connection, short transactions."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        old = os.umask(0o077)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        finally:
            os.umask(old)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # No fsync per position: a power cut can lose the last positions, which costs
            # re-reading those lines (the server drops the duplicates), never a heartbeat.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute(SCHEMA)

    def get(self, path: str) -> Position | None:
        with self._lock:
            row = self._db.execute(
                "SELECT dev, ino, size, mtime_ns, offset, head_len, head, state FROM transcripts"
                " WHERE path = ?",
                (path,),
            ).fetchone()
        if row is None:
            return None
        *numbers, head, state = row
        return Position(*numbers, bytes(head), json.loads(state))

    def put(self, path: str, position: Position) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO transcripts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    path,
                    position.dev,
                    position.ino,
                    position.size,
                    position.mtime_ns,
                    position.offset,
                    position.head_len,
                    position.head,
                    json.dumps(position.state, separators=(",", ":")),
                ),
            )

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()


def unchanged(stat: os.stat_result, position: Position | None) -> bool:
    """Nothing to read: the same file, as big and as old as when it was last read."""
    return (
        position is not None
        and (stat.st_dev, stat.st_ino) == (position.dev, position.ino)
        and stat.st_size == position.size
        and stat.st_mtime_ns == position.mtime_ns
    )


def read_lines(path: str, position: Position | None) -> Chunk:
    """The complete lines after the position (from the start if the file is not the one
    the position was taken in)."""
    with open(path, "rb") as file:
        stat = os.fstat(file.fileno())
        current = position or Position()
        restarted = _restart_reason(file, stat, position)
        if restarted is not None:
            current = Position()
        file.seek(current.offset)
        data = file.read(MAX_READ)
        skipping = bool(current.state.get("skip_line"))
        end = data.rfind(b"\n") + 1
        records: list[bytes] = []
        state = dict(current.state)
        if end == 0 and len(data) >= MAX_LINE:
            end, state["skip_line"] = len(data), True  # inside a line over the cap
        elif end:
            records = data[:end].split(b"\n")[:-1]
            if skipping:
                records, state["skip_line"] = records[1:], False
        offset = current.offset + end
        head_len, head = current.head_len, current.head
        if head_len < HEAD_BYTES and offset > head_len:
            file.seek(0)
            head_len = min(offset, HEAD_BYTES)
            head = hashlib.sha256(file.read(head_len)).digest()
        return Chunk(
            [record for record in records if record.strip()],
            Position(
                stat.st_dev,
                stat.st_ino,
                stat.st_size,
                stat.st_mtime_ns,
                offset,
                head_len,
                head,
                state,
            ),
            restarted,
            more=offset < stat.st_size and end > 0 and len(data) == MAX_READ,
        )


def read_document(path: str, position: Position | None, is_json: bool = True) -> Chunk:
    """A document rewritten in place: all of it, when it parses (a half-written JSON one
    waits). Its state (the ids already taken) survives a replacement: the same session."""
    with open(path, "rb") as file:
        stat = os.fstat(file.fileno())
        data = file.read()
    current = position or Position()
    try:
        if is_json:
            json.loads(data)
    except ValueError:
        return Chunk([], current)
    return Chunk(
        [data],
        Position(
            stat.st_dev,
            stat.st_ino,
            stat.st_size,
            stat.st_mtime_ns,
            len(data),
            0,
            b"",
            current.state,
        ),
    )


def _restart_reason(file: Any, stat: os.stat_result, position: Position | None) -> str | None:
    if position is None:
        return None
    if (stat.st_dev, stat.st_ino) != (position.dev, position.ino):
        return "replaced"
    if stat.st_size < position.offset:
        return "truncated"
    if position.head_len:
        file.seek(0)
        if hashlib.sha256(file.read(position.head_len)).digest() != position.head:
            return "rewritten"
    return None
