"""opencode's SQLite store (`opencode*.db` in its data folder, newer opencode releases),
read incrementally: new rows by rowid, and again the rows still in progress.

The tables, as wakatime-cli 2.x reads them: `session(id, directory, version)`,
`message(id, session_id, data, time_created)` and `part(id, message_id, session_id, data,
time_created)`, `data` being the JSON document the older storage kept in files. A message
or a tool part is written when it starts and updated in place as it completes, so the
rows seen unfinished are remembered (`pending`) and read again until they are done.
The records come out as the storage files' documents, grouped by session, each group
opened by its session's facts (`directory`, `version`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from typing import Any

from agent.sources.ai.positions import Chunk, Position

MAX_ROWS = 5000  # new rows read at once; more are read by the next call
MAX_PENDING = 1000  # unfinished rows remembered


def read_database(path: str, position: Position | None) -> Chunk:
    """What is new or newly finished since the position; the position after it."""
    stat = os.stat(path)
    current = position or Position()
    state = dict(current.state)
    if (stat.st_dev, stat.st_ino) != (current.dev, current.ino):
        state = {key: value for key, value in state.items() if key == "seen"}
    with contextlib.closing(
        sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    ) as database:
        messages = _rows(database, "message", "session_id", state, "message_rowid")
        parts = _rows(database, "part", "session_id, message_id", state, "part_rowid")
        sessions = _sessions(database, {row["sessionID"] for row in messages + parts})
    records: list[bytes] = []
    for session_id in sorted(sessions):
        records.append(json.dumps({"sessionID": session_id, **sessions[session_id]}).encode())
        for row in messages + parts:
            if row["sessionID"] == session_id:
                records.append(json.dumps(row).encode())
    for table, rows in (("message", messages), ("part", parts)):
        unfinished = [row["id"] for row in rows if not _finished(row)]
        state[f"pending_{table}"] = list(dict.fromkeys(unfinished))[-MAX_PENDING:]
    more = len(messages) >= MAX_ROWS or len(parts) >= MAX_ROWS
    wal = _stat_or_none(path + "-wal")
    return Chunk(
        records,
        Position(
            stat.st_dev,
            stat.st_ino,
            stat.st_size + (wal.st_size if wal else 0),
            max(stat.st_mtime_ns, wal.st_mtime_ns if wal else 0),
            0,
            0,
            b"",
            state,
        ),
        more=more,
    )


def identity(path: str) -> tuple[int, int, int, int]:
    """Changes whenever opencode commits: its writes land in the `-wal` file first."""
    stat = os.stat(path)
    wal = _stat_or_none(path + "-wal")
    return (
        stat.st_ino,
        stat.st_mtime_ns,
        wal.st_size if wal else -1,
        wal.st_mtime_ns if wal else -1,
    )


def _rows(
    database: sqlite3.Connection, table: str, columns: str, state: dict[str, Any], key: str
) -> list[dict[str, Any]]:
    """New rows of a table (by rowid), then its pending rows again; as documents."""
    last = int(state.get(key, 0))
    pending = list(dict.fromkeys(state.get(f"pending_{table}", [])))
    query = f"SELECT rowid, id, {columns}, CAST(data AS TEXT) FROM {table}"
    found = database.execute(f"{query} WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, MAX_ROWS))
    rows = list(found)
    if pending:
        marks = ",".join("?" * len(pending))
        rows = list(database.execute(f"{query} WHERE id IN ({marks})", pending)) + rows
    if rows:
        state[key] = max(last, *(row[0] for row in rows))
    return list(_documents(rows, table))


def _documents(rows: list[tuple[Any, ...]], table: str) -> Iterator[dict[str, Any]]:
    for _, row_id, session_id, *rest in rows:
        try:
            data = json.loads(rest[-1])
        except (TypeError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        document = {**data, "id": data.get("id") or row_id, "sessionID": session_id}
        if table == "part":
            document["messageID"] = data.get("messageID") or rest[0]
        yield document


def _sessions(database: sqlite3.Connection, ids: set[str]) -> dict[str, dict[str, str]]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    found = database.execute(
        f"SELECT id, COALESCE(directory, ''), COALESCE(version, '') FROM session"
        f" WHERE id IN ({marks})",
        sorted(ids),
    )
    sessions = {row[0]: {"directory": row[1], "version": row[2]} for row in found}
    return {session_id: sessions.get(session_id, {}) for session_id in ids}


def _finished(document: dict[str, Any]) -> bool:
    if "role" in document:  # a message: an assistant's is finished once completed
        return document["role"] != "assistant" or bool(
            (document.get("time") or {}).get("completed")
        )
    status = (document.get("state") or {}).get("status")
    return document.get("type") != "tool" or status in ("completed", "error")


def _stat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None
