"""Transcript records in the formats the AI tools write, for tests and benchmarks.

Shapes follow what each tool writes (and what wakatime-cli 2.x reads, pkg/ai): Claude
Code's JSONL lines with `toolUseResult`, Codex's rollout lines (`session_meta`,
`turn_context`, `response_item`, `event_msg`), Gemini CLI's session documents, opencode's
storage parts, Copilot CLI's `events.jsonl`. Our own minimal fixtures, not copies.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def append(path: Path, records: list[dict[str, Any]], tail: str = "") -> None:
    """Append records as JSON lines (and an unfinished `tail`, as a writer mid-line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as file:
        file.write("".join(json.dumps(record) + "\n" for record in records) + tail)


# -- Claude Code ------------------------------------------------------------------------


def claude_path(home: Path, cwd: str, session: str) -> Path:
    return home / ".claude" / "projects" / cwd.replace("/", "-") / f"{session}.jsonl"


def claude_prompt(session: str, cwd: str, text: str, at: float) -> dict[str, Any]:
    return {
        "type": "user",
        "sessionId": session,
        "cwd": cwd,
        "version": "2.0.14",
        "timestamp": iso(at),
        "isSidechain": False,
        "message": {"role": "user", "content": text},
    }


def claude_assistant(
    session: str, message_id: str, at: float, input_tokens: int, output_tokens: int
) -> dict[str, Any]:
    return {
        "type": "assistant",
        "sessionId": session,
        "version": "2.0.14",
        "timestamp": iso(at),
        "message": {
            "id": message_id,
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "usage": {
                "input_tokens": input_tokens,
                "cache_read_input_tokens": 0,
                "output_tokens": output_tokens,
            },
            "content": [{"type": "tool_use", "name": "Edit", "input": {}}],
        },
    }


def claude_edit(session: str, path: str, at: float, old: str, new: str) -> dict[str, Any]:
    """The tool-result line Claude Code writes after an Edit."""
    return {
        "type": "user",
        "sessionId": session,
        "version": "2.0.14",
        "timestamp": iso(at),
        "message": {"role": "user", "content": [{"type": "tool_result", "content": "ok"}]},
        "toolUseResult": {  # Claude Code's FileEditOutput (its sdk-tools.d.ts)
            "filePath": path,
            "oldString": old,
            "newString": new,
            "originalFile": old,
            "structuredPatch": [
                {
                    "oldStart": 1,
                    "oldLines": old.count("\n") + 1,
                    "newStart": 1,
                    "newLines": new.count("\n") + 1,
                    "lines": [f"-{line}" for line in old.split("\n")]
                    + [f"+{line}" for line in new.split("\n")],
                }
            ],
            "userModified": False,
            "replaceAll": False,
        },
    }


def claude_create(session: str, path: str, at: float, content: str) -> dict[str, Any]:
    return {
        "type": "user",
        "sessionId": session,
        "timestamp": iso(at),
        "toolUseResult": {  # FileWriteOutput of a new file
            "type": "create",
            "filePath": path,
            "content": content,
            "structuredPatch": [],
            "originalFile": None,
        },
    }


# -- Codex CLI ------------------------------------------------------------------------


def codex_path(home: Path, session: str, at: float) -> Path:
    day = datetime.fromtimestamp(at, UTC)
    stamp = day.strftime("%Y-%m-%dT%H-%M-%S")
    return (
        home / ".codex" / "sessions" / day.strftime("%Y/%m/%d") / f"rollout-{stamp}-{session}.jsonl"
    )


def codex_start(session: str, cwd: str, at: float) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": iso(at),
            "type": "session_meta",
            "payload": {"id": session, "cwd": cwd, "cli_version": "0.46.0", "source": "cli"},
        },
        {
            "timestamp": iso(at),
            "type": "turn_context",
            "payload": {"model": "gpt-5-codex", "effort": "high"},
        },
    ]


def codex_prompt(text: str, at: float) -> dict[str, Any]:
    return {
        "timestamp": iso(at),
        "type": "event_msg",
        "payload": {"type": "user_message", "message": text},
    }


def codex_patch(
    call_id: str, patch: str, at: float, output: str = "Success. Updated files"
) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": iso(at),
            "type": "response_item",
            "payload": {
                "type": "custom_tool_call",
                "name": "apply_patch",
                "call_id": call_id,
                "input": patch,
            },
        },
        {
            "timestamp": iso(at + 0.5),
            "type": "response_item",
            "payload": {"type": "custom_tool_call_output", "call_id": call_id, "output": output},
        },
    ]


def codex_tokens(at: float, input_tokens: int, cached: int, output_tokens: int) -> dict[str, Any]:
    return {
        "timestamp": iso(at),
        "type": "event_msg",
        "payload": {
            "type": "token_count",
            "info": {
                "total_token_usage": {
                    "input_tokens": input_tokens,
                    "cached_input_tokens": cached,
                    "output_tokens": output_tokens,
                }
            },
            "rate_limits": {"plan_type": "plus"},
        },
    }


# -- opencode's SQLite store ----------------------------------------------------------------


class OpencodeStore:
    """`~/.local/share/opencode/opencode.db` with the tables wakatime-cli reads; rows are
    updated in place as opencode does (a row keeps its rowid)."""

    def __init__(self, home: Path, directory: str, session: str = "ses_1") -> None:
        path = home / ".local" / "share" / "opencode" / "opencode.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.session = session
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS session (id TEXT PRIMARY KEY, directory TEXT,"
            " version TEXT);"
            "CREATE TABLE IF NOT EXISTS message (id TEXT PRIMARY KEY, session_id TEXT, data TEXT,"
            " time_created INTEGER);"
            "CREATE TABLE IF NOT EXISTS part (id TEXT PRIMARY KEY, message_id TEXT,"
            " session_id TEXT, data TEXT, time_created INTEGER);"
        )
        self.db.execute(
            "INSERT OR IGNORE INTO session VALUES (?, ?, '1.0.150')", (session, directory)
        )

    def put(
        self, table: str, row_id: str, document: dict[str, Any], message: str = "msg_2"
    ) -> None:
        created = int(time_of(document) * 1000)
        if table == "part":
            columns, values = (
                "(id, message_id, session_id, data, time_created)",
                (
                    row_id,
                    message,
                    self.session,
                    json.dumps(document),
                    created,
                ),
            )
        else:
            columns = "(id, session_id, data, time_created)"
            values = (row_id, self.session, json.dumps(document), created)
        marks = "?" + ", ?" * (len(values) - 1)
        self.db.execute(
            f"INSERT INTO {table} {columns} VALUES ({marks})"
            " ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            values,
        )


def time_of(document: dict[str, Any]) -> float:
    times = document.get("time") or (document.get("state") or {}).get("time") or {}
    return (times.get("created") or times.get("start") or 0) / 1000
