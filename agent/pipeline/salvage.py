"""What can still be read from a damaged database, for the fresh one that replaces it.

A damaged page costs the rows on it, not the queue: rows are read a range of ids at a
time, and a range that fails is halved until the unreadable rows are skipped one by one.
Each heartbeat read is queued again for the destinations its readable delivery rows say
it was still waiting for; where those rows themselves cannot be read, for every
destination the database knew (a server drops a copy it already has: a duplicate sent
beats a heartbeat lost).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.pipeline.destinations import DEFAULT
from agent.pipeline.heartbeat import Heartbeat, HeartbeatError

if TYPE_CHECKING:
    from agent.pipeline.store import HeartbeatStore

log = logging.getLogger(__name__)

CHUNK = 512  # ids read in one query while nothing fails
STORE_BATCH = 5000  # heartbeats stored in one transaction
MIN_ROW_BYTES = 64  # no row is smaller: bounds the ids a file can hold
MAX_PADDED = 1 << 31  # bytes a truncated copy is padded to at most
GIVE_UP_AFTER = 8  # chunks in a row with nothing readable, past the last known id
QUEUED = 0


@dataclass
class Salvaged:
    heartbeats: int = 0  # read and stored again
    queued: int = 0  # of which queued for delivery
    lost: int = 0  # ids that could not be read


def salvage(source: Path, into: HeartbeatStore) -> Salvaged:
    """Copy every readable heartbeat of the database at `source` into `into`."""
    result = Salvaged()
    # Read from a copy: the damaged file stays as it was, for whoever wants to look.
    with tempfile.TemporaryDirectory(prefix=".salvage-", dir=source.parent) as scratch:
        copy = Path(scratch) / source.name
        for suffix in ("", "-wal"):
            if Path(f"{source}{suffix}").exists():
                shutil.copyfile(f"{source}{suffix}", f"{copy}{suffix}")
        _pad_to_declared_size(copy)
        try:
            db = sqlite3.connect(copy)
        except sqlite3.Error:
            return result
        try:
            _salvage(db, into, result)
        finally:
            db.close()
    return result


def _pad_to_declared_size(path: Path) -> None:
    """A truncated file padded with zeros to the size its header declares: SQLite refuses
    a file shorter than that whole, and reads the pages that are left of a padded one."""
    with open(path, "rb") as file:
        header = file.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    declared = int.from_bytes(header[28:32], "big") * page_size
    if path.stat().st_size < declared <= MAX_PADDED:  # a damaged header may claim anything
        with contextlib.suppress(OSError):  # sparse: the zeros take no space
            os.truncate(path, declared)


def _salvage(db: sqlite3.Connection, into: HeartbeatStore, result: Salvaged) -> None:
    try:
        names = dict(_readable(db, "SELECT id, name FROM destinations"))
        waiting, seen, complete = _deliveries(db, names)
        everywhere = list(names.values()) or [DEFAULT]
        batch: list[tuple[Heartbeat, list[str]]] = []
        payloads: list[str] = []
        for heartbeat_id, payload in _Ranges(db, "heartbeats", "id, payload").read(result):
            try:
                heartbeat = Heartbeat.from_mapping(json.loads(payload))
            except (ValueError, TypeError, HeartbeatError):
                result.lost += 1
                continue
            if heartbeat_id in seen or complete:
                destinations = waiting.get(heartbeat_id, [])
            else:  # its delivery rows are unreadable: sent again rather than lost
                destinations = everywhere
            batch.append((heartbeat, destinations))
            payloads.append(payload)
            result.queued += bool(destinations)
            if len(batch) >= STORE_BATCH:
                result.heartbeats += _store(into, batch, payloads)
        result.heartbeats += _store(into, batch, payloads)
    except sqlite3.DatabaseError:
        log.exception("salvaging stopped early")


def _store(into: HeartbeatStore, batch: list[Any], payloads: list[str]) -> int:
    if batch:
        into.add(batch, payloads)
    count = len(batch)
    batch.clear()
    payloads.clear()
    return count


def _deliveries(
    db: sqlite3.Connection, names: dict[int, str]
) -> tuple[dict[int, list[str]], set[int], bool]:
    """Heartbeat id → destinations it still waits for; the ids with any delivery row read;
    and whether every delivery row could be read."""
    waiting: dict[int, list[str]] = {}
    seen: set[int] = set()
    complete = bool(names)
    for destination_id, name in names.items():
        ranges = _Ranges(
            db,
            "deliveries",
            "heartbeat_id, state",
            key="heartbeat_id",
            where=f"destination_id = {int(destination_id)}",
        )
        for heartbeat_id, state in ranges.read(Salvaged()):
            seen.add(heartbeat_id)
            if state == QUEUED:
                waiting.setdefault(heartbeat_id, []).append(name)
        complete = complete and ranges.failed == 0
    return waiting, seen, complete


@dataclass
class _Ranges:
    """`SELECT columns FROM table` over ranges of `key`, skipping what cannot be read."""

    db: sqlite3.Connection
    table: str
    columns: str
    key: str = "id"
    where: str = "1"
    failed: int = 0  # single ids that could not be read (some may never have existed)

    def read(self, result: Salvaged) -> Iterator[tuple[Any, ...]]:
        low, high = self._bound("min"), self._bound("max")
        if low is None and high is None and not self._empty():
            low = 1  # the index is damaged at both ends: look from the start …
        if low is None:
            return
        known_end = high is not None
        if high is None:  # … up to as many rows as the file could hold
            pages = _readable(self.db, "PRAGMA page_count")
            size = _readable(self.db, "PRAGMA page_size")
            file_bytes = (pages[0][0] if pages else 1) * (size[0][0] if size else 4096)
            high = low + file_bytes // MIN_ROW_BYTES
        start, empty, unsure = low, 0, Salvaged()
        while start <= high and (known_end or empty < GIVE_UP_AFTER):
            end = min(start + CHUNK - 1, high)
            found = list(self._range(start, end, result if known_end else unsure))
            yield from found
            if found and unsure.lost:  # failures before a row read were rows lost
                result.lost, unsure.lost = result.lost + unsure.lost, 0
            empty = 0 if found else empty + 1
            start = end + 1

    def _bound(self, which: str) -> int | None:
        rows = _readable(
            self.db, f"SELECT {which}({self.key}) FROM {self.table} WHERE {self.where}"
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def _empty(self) -> bool:
        rows = _readable(self.db, f"SELECT count(*) FROM {self.table} WHERE {self.where}")
        return bool(rows) and rows[0][0] == 0

    def _range(self, low: int, high: int, result: Salvaged) -> Iterator[tuple[Any, ...]]:
        # One id is looked up, not scanned to: a scan steps on to the next row to see where
        # the range ends, and that row may be on the damaged page.
        span = f"{self.key} = ?" if low == high else f"{self.key} BETWEEN ? AND ?"
        try:
            rows = self.db.execute(
                f"SELECT {self.columns} FROM {self.table} WHERE {self.where} AND {span}"
                f" ORDER BY {self.key}",
                (low,) if low == high else (low, high),
            ).fetchall()
        except sqlite3.DatabaseError:
            if low == high:
                self.failed += 1
                result.lost += 1
                return
            middle = (low + high) // 2
            yield from self._range(low, middle, result)
            yield from self._range(middle + 1, high, result)
            return
        yield from rows


def _readable(db: sqlite3.Connection, sql: str) -> list[Any]:
    try:
        return db.execute(sql).fetchall()
    except sqlite3.DatabaseError:
        return []
