"""The SQLite store: every heartbeat (the offline queue and the local history) and its
delivery state per destination.

A heartbeat is committed before it counts as received, and a delivery row leaves the
`queued` state only when that destination accepted it (`delivered`) or refused it as
invalid (`rejected`, kept with the server's reason). Several processes may use one file
(the daemon and the compat command's offline fallback): WAL mode and a busy timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.stats import iso_time
from agent.pipeline.wal import foreign_wal
from agent.wakatime_cli.private_files import open_private

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
QUEUED, DELIVERED, REJECTED = 0, 1, 2
STATE_NAMES = {QUEUED: "queued", DELIVERED: "delivered", REJECTED: "rejected"}

_SCHEMA = """
CREATE TABLE heartbeats (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    entity TEXT NOT NULL,
    type TEXT NOT NULL,
    category TEXT NOT NULL,
    project TEXT,
    branch TEXT,
    language TEXT,
    user_agent TEXT,
    payload TEXT NOT NULL,          -- the API JSON, exactly what is delivered
    received REAL NOT NULL
);
CREATE INDEX heartbeats_by_time ON heartbeats (time);
CREATE TABLE destinations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL
);
CREATE TABLE deliveries (
    destination_id INTEGER NOT NULL REFERENCES destinations (id),
    heartbeat_id INTEGER NOT NULL REFERENCES heartbeats (id) ON DELETE CASCADE,
    time REAL NOT NULL,             -- the heartbeat's, so the queue drains oldest first
    state INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    updated REAL NOT NULL,
    PRIMARY KEY (destination_id, heartbeat_id)
) WITHOUT ROWID;
CREATE INDEX deliveries_by_state ON deliveries (destination_id, state, time);
"""
# Version 2: a heartbeat's identity, so the same one is never queued twice, and the
# database's own identity, stamped into every write so a stranger's WAL is recognised.
_SCHEMA_2 = """
ALTER TABLE heartbeats ADD COLUMN identity BLOB;
CREATE UNIQUE INDEX heartbeats_by_identity ON heartbeats (identity);
CREATE TABLE store_identity (id BLOB NOT NULL, writes INTEGER NOT NULL);
"""


def payload(hb: Heartbeat) -> str:
    """What the store keeps and delivers of a heartbeat: its API JSON."""
    return _dumps(hb.to_api())


def identity(
    entity: str,
    type: str,
    category: str,
    time: float,
    is_write: bool,
    project: str | None,
    branch: str | None,
    language: str | None,
) -> bytes:
    """What makes two heartbeats the same one, as servers deduplicate them (Wakapi hashes
    these fields, the time to the millisecond): a second copy is never queued."""
    key = _dumps([entity, type, category, round(time * 1000), is_write, project, branch, language])
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


def heartbeat_identity(hb: Heartbeat) -> bytes:
    return identity(
        hb.entity, hb.type, hb.category, hb.time, hb.is_write, hb.project, hb.branch, hb.language
    )


class StoreError(Exception):
    """The database cannot be used; `unusable` when its file is corrupt or of a foreign
    schema (then it is moved aside), not for passing trouble such as a lock or a full disk."""

    def __init__(self, message: str, *, unusable: bool = False) -> None:
        super().__init__(message)
        self.unusable = unusable


try:  # CPython's C encoder made once: json.dumps builds a new one on every call
    from _json import encode_basestring, make_encoder

    def _not_serializable(value: object) -> object:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    _encoder = make_encoder(
        None, _not_serializable, encode_basestring, None, ":", ",", False, False, True
    )

    def _dumps(value: Any) -> str:
        """Compact JSON text, UTF-8 kept as it is (what the payload column holds)."""
        return "".join(_encoder(value, 0))

except ImportError:  # not CPython
    _dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
INSERT_CHUNK = 256  # rows in one INSERT statement at most (and within SQLite's parameter limit)


class _RowInsert:
    """`INSERT INTO table (columns) VALUES (…), (…)` for n rows, its text made once per n
    (powers of two only, so SQLite's statement cache keeps a handful)."""

    def __init__(self, table: str, columns: str, values: str) -> None:
        self.head = f"INSERT INTO {table} ({columns}) VALUES "
        self.values = values
        self.width = values.count("?")
        self._sql: dict[int, str] = {}

    def sql(self, rows: int) -> str:
        if (text := self._sql.get(rows)) is None:
            text = self._sql[rows] = self.head + ", ".join([self.values] * rows)
        return text


_HEARTBEAT_ROW = _RowInsert(
    "heartbeats",
    "id, time, entity, type, category, project, branch, language, user_agent, payload, received,"
    " identity",
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
)
_DELIVERY_ROW = _RowInsert(
    "deliveries", "destination_id, heartbeat_id, time, state, updated", "(?, ?, ?, 0, ?)"
)


def _store_error(path: Path, exc: sqlite3.DatabaseError | OSError) -> StoreError:
    """OperationalError is trouble around the file (lock, permissions, disk); any other
    DatabaseError is the file itself (not a database, malformed)."""
    if isinstance(exc, OSError | sqlite3.OperationalError):
        return StoreError(f"{path}: {_access_problem(path) or exc}")
    return StoreError(f"{path}: {exc}", unusable=True)


def is_damage(exc: BaseException) -> bool:
    """Whether an error says the database file itself is damaged (not a lock, a full disk)."""
    return isinstance(exc, sqlite3.DatabaseError) and getattr(exc, "sqlite_errorname", None) in (
        "SQLITE_CORRUPT",
        "SQLITE_NOTADB",
    )


def _access_problem(path: Path) -> str | None:
    """Why the database's file or folder cannot be used, in words SQLite does not have."""
    if path.is_dir():
        return "a folder is where the database file goes; move it away or set [queue] path"
    for target in (path, path.parent):
        try:
            info = target.stat()
        except OSError:
            continue
        if info.st_uid != os.getuid() and not os.access(target, os.R_OK | os.W_OK):
            return f"{target} belongs to uid {info.st_uid}; it must be yours"
        if not os.access(target, os.W_OK):
            return f"{target} is read-only; the queue needs to write there"
    return None


@dataclass(frozen=True, slots=True)
class QueuedHeartbeat:
    id: int
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeliveryCounts:
    queued: int = 0
    delivered: int = 0
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One heartbeat's delivery to one destination, for `agent queue list` and `export`."""

    destination: str
    state: str  # a STATE_NAMES value
    attempts: int
    reason: str | None
    heartbeat: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "state": self.state,
            "attempts": self.attempts,
            "reason": self.reason,
            "heartbeat": self.heartbeat,
        }


@dataclass(frozen=True, slots=True)
class HistoryRow:
    time: float
    entity: str
    type: str
    category: str
    project: str | None
    branch: str | None
    language: str | None
    user_agent: str | None


def connect(path: Path, *, timeout: float = 30.0) -> sqlite3.Connection:
    """A connection in WAL mode; the folder and file are private to the user."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(open_private(path, os.O_WRONLY, follow_symlinks=True))
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError:
        conn.close()
        raise
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class HeartbeatStore:
    """One connection to the database; each method is one transaction.

    Not shared between threads: give every thread its own store on the same file.
    """

    def __init__(self, path: Path, *, timeout: float = 30.0) -> None:
        self.path = path
        self._destination_ids: dict[str, int] = {}
        try:
            self._db = connect(path, timeout=timeout)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise _store_error(path, exc) from exc
        self._max_parameters = self._db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        try:
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise _store_error(path, exc) from exc
        except StoreError:
            self._db.close()
            raise

    @classmethod
    def open_or_reset(cls, path: Path) -> tuple[HeartbeatStore, Path | None]:
        """Open the store; a database that cannot be used is renamed aside (kept) and a
        fresh one started, so the agent never crash-loops on its own files. A WAL of
        another database is renamed aside before SQLite could replay it over this one.
        Only where no other process has the database open (the daemon, at startup)."""
        wal_aside = _set_foreign_wal_aside(path)
        try:
            return cls._open_checked(path), wal_aside
        except StoreError as exc:
            if not exc.unusable:
                raise
            return cls.set_aside(path, exc)

    @classmethod
    def wal_checked(cls, path: Path) -> HeartbeatStore:
        """Open, after setting aside a WAL another database wrote (for the commands that
        open the queue without a daemon: the compat command's fallback, `agent queue`)."""
        _set_foreign_wal_aside(path)
        return cls(path)

    @classmethod
    def set_aside(cls, path: Path, why: object) -> tuple[HeartbeatStore, Path]:
        """Rename a damaged database aside (kept, for whoever wants to look), start a fresh
        one, and copy into it every heartbeat that can still be read, still queued where
        it was. Only where no other connection writes to it."""
        from agent.pipeline.salvage import Salvaged, salvage

        aside = path.with_name(f"{path.name}.broken-{_moment()}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(path) + suffix)
            if src.exists():
                src.replace(Path(str(aside) + suffix))
        store = cls(path)
        try:
            saved = salvage(aside, store)
        except Exception:  # best effort: the fresh database must start all the same
            log.exception("salvaging %s failed; it is kept as it is", aside)
            saved = Salvaged()
        log.error(
            "database %s cannot be used (%s); moved it to %s and started a fresh one with"
            " the %d heartbeat(s) still readable in it (%d queued; %d unreadable)",
            path,
            why,
            aside,
            saved.heartbeats,
            saved.queued,
            saved.lost,
        )
        return store, aside

    @classmethod
    def _open_checked(cls, path: Path) -> HeartbeatStore:
        """Open and run SQLite's quick_check: a truncated or damaged file can open fine and
        fail only when its broken pages are read, which would refuse every heartbeat."""
        store = cls(path)
        try:
            (verdict,) = store._db.execute("PRAGMA quick_check(1)").fetchone()
        except sqlite3.DatabaseError as exc:
            store.close()
            raise _store_error(path, exc) from exc
        if verdict != "ok":
            store.close()
            raise StoreError(f"{path}: damaged ({verdict})", unusable=True)
        return store

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HeartbeatStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version == SCHEMA_VERSION:
            try:
                for table in ("heartbeats", "destinations", "deliveries", "store_identity"):
                    self._db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise
                raise StoreError(
                    f"{self.path}: not this agent's schema ({exc})", unusable=True
                ) from exc
            return
        if version not in (0, 1):
            raise StoreError(
                f"{self.path}: unknown schema version {version}"
                f" (this agent knows {SCHEMA_VERSION})",
                unusable=True,
            )
        with self._transaction():
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version == 0:  # another process may have created it meanwhile
                _run_script(self._db, _SCHEMA)
            if version in (0, 1):
                _run_script(self._db, _SCHEMA_2)
                self._db.execute("INSERT INTO store_identity VALUES (?, 0)", (os.urandom(16),))
                self._identify_stored()
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _identify_stored(self) -> None:
        """Give heartbeats stored before version 2 their identity; a repeat among them keeps
        none (it stays, and is delivered at most as often as before)."""
        rows = self._db.execute(
            "SELECT id, entity, type, category, time, payload, project, branch, language"
            " FROM heartbeats"
        ).fetchall()
        self._db.executemany(
            "UPDATE OR IGNORE heartbeats SET identity = ? WHERE id = ?",
            [
                (identity(e, t, c, at, bool(json.loads(p).get("is_write")), pr, b, lang), i)
                for i, e, t, c, at, p, pr, b, lang in rows
            ],
        )

    def _transaction(self) -> sqlite3.Connection:
        # Ids cached inside a transaction that rolls back may name rows that never were.
        return _Transaction(self._db, self._destination_ids.clear)  # type: ignore[return-value]

    def _identities_unseen(self, identities: Sequence[bytes]) -> list[int]:
        """Indexes of the identities not stored yet, the first of any repeated among them.
        Inside the write transaction: no other writer can store one meanwhile."""
        seen: set[bytes] = set()
        for start in range(0, len(identities), INSERT_CHUNK):
            chunk = identities[start : start + INSERT_CHUNK]
            seen.update(
                row[0]
                for row in self._db.execute(
                    f"SELECT identity FROM heartbeats WHERE identity IN ({_marks(chunk)})", chunk
                )
            )
        unseen = []
        for index, key in enumerate(identities):
            if key not in seen:
                seen.add(key)
                unseen.append(index)
        return unseen

    # -- destinations -----------------------------------------------------------------

    def destination_id(self, name: str, url: str | None = None) -> int:
        """The id for a destination name, registering it (or updating its URL) as needed."""
        if name in self._destination_ids and url is None:
            return self._destination_ids[name]
        if url is None:  # a known one is only read: delivery must not need a write to start
            known = self._db.execute("SELECT id FROM destinations WHERE name = ?", (name,))
            if (row := known.fetchone()) is not None:
                self._destination_ids[name] = row[0]
                return row[0]
        if not self._db.in_transaction:
            with self._transaction():
                return self.destination_id(name, url)
        self._db.execute(
            "INSERT OR IGNORE INTO destinations (name, url) VALUES (?, ?)", (name, url or "")
        )
        row = self._db.execute(
            "SELECT id, url FROM destinations WHERE name = ?", (name,)
        ).fetchone()
        if url is not None and row[1] != url:
            self._db.execute("UPDATE destinations SET url = ? WHERE id = ?", (url, row[0]))
        self._destination_ids[name] = row[0]
        return row[0]

    def destinations(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT name, url FROM destinations ORDER BY id"))

    # -- writing ----------------------------------------------------------------------

    def add(
        self,
        items: Sequence[tuple[Heartbeat, Iterable[str]]],
        payloads: Sequence[str] | None = None,
    ) -> list[int]:
        """Commit heartbeats, each queued for the named destinations; durable on return.
        A heartbeat already stored (the same identity) is not stored again: the ids are
        those of the new ones.

        `payloads`, each heartbeat's `payload()`, when it was made beforehand (the ingest
        makes them while the previous group commits).
        """
        if payloads is None:
            payloads = [payload(hb) for hb, _ in items]
        identities = [heartbeat_identity(hb) for hb, _ in items]
        now = time.time()
        with self._transaction():
            unseen = self._identities_unseen(identities)
            if len(unseen) < len(items):
                items = [items[i] for i in unseen]
                payloads = [payloads[i] for i in unseen]
                identities = [identities[i] for i in unseen]
            # The transaction holds the write lock, so the next ids are ours to assign.
            (last,) = self._db.execute("SELECT coalesce(max(id), 0) FROM heartbeats").fetchone()
            ids = range(last + 1, last + 1 + len(items))
            self._insert(
                _HEARTBEAT_ROW,
                [
                    (
                        heartbeat_id,
                        hb.time,
                        hb.entity,
                        hb.type,
                        hb.category,
                        hb.project,
                        hb.branch,
                        hb.language,
                        hb.user_agent,
                        hb_payload,
                        now,
                        hb_identity,
                    )
                    for heartbeat_id, (hb, _), hb_payload, hb_identity in zip(
                        ids, items, payloads, identities, strict=True
                    )
                ],
            )
            self._insert(
                _DELIVERY_ROW,
                [
                    (self.destination_id(name), heartbeat_id, hb.time, now)
                    for heartbeat_id, (hb, destinations) in zip(ids, items, strict=True)
                    for name in destinations
                ],
            )
        return list(ids)

    def _insert(self, row: _RowInsert, rows: list[tuple[Any, ...]]) -> None:
        """Insert rows a chunk a statement: each statement is one step, and so one release
        of the GIL, where executemany would take one a row (and wait to get it back)."""
        most = min(INSERT_CHUNK, self._max_parameters // row.width)
        start = 0
        while start < len(rows):
            size = 1 << (min(most, len(rows) - start).bit_length() - 1)
            chunk = rows[start : start + size]
            self._db.execute(row.sql(size), list(itertools.chain.from_iterable(chunk)))
            start += size

    def mark_delivered(self, destination: str, ids: Iterable[int]) -> None:
        self._set_state(destination, [(i, None) for i in ids], DELIVERED)

    def mark_rejected(self, destination: str, reasons: dict[int, str]) -> None:
        self._set_state(destination, list(reasons.items()), REJECTED)

    def mark_attempted(self, destination: str, ids: Iterable[int]) -> None:
        dest = self.destination_id(destination)
        with self._transaction():
            self._db.executemany(
                "UPDATE deliveries SET attempts = attempts + 1 WHERE destination_id = ?"
                " AND heartbeat_id = ?",
                [(dest, i) for i in ids],
            )

    def _set_state(self, destination: str, rows: list[tuple[int, str | None]], state: int) -> None:
        dest = self.destination_id(destination)
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "UPDATE deliveries SET state = ?, reason = ?, updated = ?"
                " WHERE destination_id = ? AND heartbeat_id = ? AND state = 0",
                [(state, reason, now, dest, i) for i, reason in rows],
            )

    def requeue_rejected(self, destination: str | None = None) -> int:
        """Put rejected heartbeats back in the queue (after the user fixed the cause); how
        many. The daemon sends them once woken (a new heartbeat or a `flush`)."""
        sql = "UPDATE deliveries SET state = 0, reason = NULL, updated = ? WHERE state = 2"
        args: tuple[Any, ...] = (time.time(),)
        if destination is not None:
            sql += " AND destination_id = (SELECT id FROM destinations WHERE name = ?)"
            args += (destination,)
        with self._transaction():
            return self._db.execute(sql, args).rowcount

    def prune(self, older_than: float) -> int:
        """Forget history before a time; heartbeats still queued anywhere, or kept aside as
        rejected (until `agent queue purge --rejected`), are kept."""
        with self._transaction():
            return self._db.execute(
                "DELETE FROM heartbeats WHERE time < ? AND id NOT IN"
                " (SELECT heartbeat_id FROM deliveries WHERE state != 1)",
                (older_than,),
            ).rowcount

    def purge(self, states: Sequence[int], destination: str | None = None) -> int:
        """Drop deliveries in the given states (the queue, the rejected): those heartbeats
        are never sent there; the history keeps them until it is pruned."""
        sql, args = self._delivery_filter(states, destination)
        with self._transaction():
            return self._db.execute(f"DELETE FROM deliveries WHERE {sql}", args).rowcount

    # -- reading ----------------------------------------------------------------------

    def pending(self, destination: str, limit: int = 25) -> list[QueuedHeartbeat]:
        """The oldest queued heartbeats for a destination."""
        rows = self._db.execute(
            "SELECT h.id, h.payload FROM deliveries d JOIN heartbeats h ON h.id = d.heartbeat_id"
            " WHERE d.destination_id = ? AND d.state = 0 ORDER BY d.time, d.heartbeat_id LIMIT ?",
            (self.destination_id(destination), limit),
        ).fetchall()
        return [QueuedHeartbeat(row[0], json.loads(row[1])) for row in rows]

    def counts(
        self, destination: str | None = None, *, among: Sequence[str] | None = None
    ) -> DeliveryCounts:
        """Delivery rows by state, of one destination or of those named in `among` (the
        configured ones: rows kept for a destination since removed do not count); an
        unknown destination has none (and is not created)."""
        names = [destination] if destination is not None else among
        sql = "SELECT state, count(*) FROM deliveries"
        args: tuple[Any, ...] = ()
        if names is not None:
            sql += f" WHERE destination_id IN ({_DESTINATION_IDS.format(_marks(names))})"
            args = tuple(names)
        found = dict(self._db.execute(sql + " GROUP BY state", args).fetchall())
        return DeliveryCounts(found.get(QUEUED, 0), found.get(DELIVERED, 0), found.get(REJECTED, 0))

    def rejected(
        self, destination: str | None = None, limit: int = 100
    ) -> list[tuple[str, str, dict]]:
        """(destination, reason, payload) of heartbeats kept aside, oldest first."""
        sql = (
            "SELECT t.name, d.reason, h.payload FROM deliveries d"
            " JOIN heartbeats h ON h.id = d.heartbeat_id"
            " JOIN destinations t ON t.id = d.destination_id WHERE d.state = 2"
        )
        args: list[Any] = []
        if destination is not None:
            sql += " AND t.name = ?"
            args.append(destination)
        sql += " ORDER BY d.time, d.heartbeat_id LIMIT ?"
        args.append(limit)
        return [(n, r or "", json.loads(p)) for n, r, p in self._db.execute(sql, args)]

    def deliveries(
        self, states: Sequence[int], destination: str | None = None, limit: int | None = None
    ) -> Iterator[DeliveryRow]:
        """Deliveries in the given states, oldest heartbeat first, read lazily (an export of
        a big backlog never sits in memory). Do not write with this store while iterating."""
        where, args = self._delivery_filter(states, destination, alias="d.")
        sql = (
            "SELECT t.name, d.state, d.attempts, d.reason, h.payload FROM deliveries d"
            " JOIN heartbeats h ON h.id = d.heartbeat_id"
            f" JOIN destinations t ON t.id = d.destination_id WHERE {where}"
            " ORDER BY d.time, d.heartbeat_id, t.id"
        )
        if limit is not None:
            sql += " LIMIT ?"
            args = (*args, limit)
        for name, state, attempts, reason, payload in self._db.execute(sql, args):
            yield DeliveryRow(name, STATE_NAMES[state], attempts, reason, json.loads(payload))

    def queued_total(self, among: Sequence[str]) -> int:
        """Undelivered heartbeats of the destinations named, counted through the state index."""
        (total,) = self._db.execute(
            "SELECT coalesce(sum((SELECT count(*) FROM deliveries d"
            " WHERE d.destination_id = t.id AND d.state = 0)), 0) FROM destinations t"
            f" WHERE t.name IN ({_marks(among)})",
            tuple(among),
        ).fetchone()
        return int(total)

    def _delivery_filter(
        self, states: Sequence[int], destination: str | None, alias: str = ""
    ) -> tuple[str, tuple[Any, ...]]:
        """A WHERE clause on deliveries for some states and, optionally, one destination."""
        if not states:
            raise ValueError("no delivery state given")
        sql = f"{alias}state IN ({_marks(states)})"
        args: tuple[Any, ...] = tuple(states)
        if destination is not None:
            sql += f" AND {alias}destination_id = ?"
            args = (*args, self.destination_id(destination))
        return sql, args

    def history(self, start: float, end: float) -> list[HistoryRow]:
        """Heartbeats with start <= time < end, in time order (for local durations)."""
        rows = self._db.execute(
            "SELECT time, entity, type, category, project, branch, language, user_agent"
            " FROM heartbeats WHERE time >= ? AND time < ? ORDER BY time",
            (start, end),
        )
        return [HistoryRow(*row) for row in rows]

    def has_heartbeats_not_from(self, user_agent_word: str, since: float) -> bool:
        """Whether a heartbeat since ``since`` has a user agent without ``user_agent_word``
        (a plugin's, when the word is the watcher's own)."""
        row = self._db.execute(
            "SELECT EXISTS (SELECT 1 FROM heartbeats WHERE time >= ?"
            " AND instr(coalesce(user_agent, ''), ?) = 0)",
            (since, user_agent_word),
        ).fetchone()
        return bool(row[0])

    def destination_report(self, name: str, url: str) -> dict[str, Any]:
        """A destination's entry in `agent status`, as far as the database knows it; the
        daemon adds its live error state (last_error, paused)."""
        counts = self.counts(name)
        return {
            "name": name,
            "url": url,
            "queued": counts.queued,
            "delivered": counts.delivered,
            "rejected": counts.rejected,
            "last_delivery": iso_time(self.last_delivery(name)),
            "last_error": None,
            "paused": None,
        }

    def last_delivery(self, destination: str | None = None) -> float | None:
        sql = "SELECT max(updated) FROM deliveries WHERE state = 1"
        args: tuple[Any, ...] = ()
        if destination is not None:
            sql += " AND destination_id = (SELECT id FROM destinations WHERE name = ?)"
            args = (destination,)
        (value,) = self._db.execute(sql, args).fetchone()
        return value


_DESTINATION_IDS = "SELECT id FROM destinations WHERE name IN ({})"


def _moment() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _set_foreign_wal_aside(path: Path) -> Path | None:
    """Rename the database's WAL (and its index) aside if another database wrote it."""
    why = foreign_wal(path)
    if why is None:
        return None
    aside = Path(f"{path}-wal.foreign-{_moment()}")
    # Its index (-shm) stays: the first connection rebuilds it from the WAL now absent, and
    # removing it under a process that has it mapped would split their views of the file.
    Path(f"{path}-wal").replace(aside)
    log.error(
        "%s-wal is another database's write-ahead log (%s); moved it to %s unread",
        path,
        why,
        aside,
    )
    return aside


# Run before every commit: each transaction's pages then carry the database's identity.
_STAMP = "UPDATE store_identity SET writes = writes + 1"


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Statements one by one: executescript would commit the transaction they are part of."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _marks(values: Sequence[object]) -> str:
    """SQL parameter marks for a list of values."""
    return ", ".join("?" * len(values))


class _Transaction:
    """`with` block = one IMMEDIATE transaction (autocommit connection underneath)."""

    def __init__(self, db: sqlite3.Connection, on_rollback: Callable[[], None]) -> None:
        self.db = db
        self.on_rollback = on_rollback

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        if not exc_type:
            try:
                self.db.execute(_STAMP)
                self.db.execute("COMMIT")
                return
            except sqlite3.Error:
                self._rollback()  # a failed COMMIT (full disk) leaves the transaction open
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self.db.in_transaction:
            # SQLite may have rolled back already (a full disk, an I/O error); a failed
            # ROLLBACK must not hide the error that caused it.
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
        self.on_rollback()
