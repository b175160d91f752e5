"""The AI-activity source on real transcript files: what each tool's records become, and
reading only what is new across restarts, truncation, rotation, corrupt and half lines."""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from aitranscripts import (
    OpencodeStore,
    append,
    claude_assistant,
    claude_create,
    claude_edit,
    claude_path,
    claude_prompt,
    codex_patch,
    codex_path,
    codex_prompt,
    codex_start,
    codex_tokens,
    iso,
)

from agent.pipeline.heartbeat import Heartbeat
from agent.sources.ai.parsers import model_token, patch_changes
from agent.sources.ai.positions import PositionStore
from agent.sources.ai.source import AiActivitySource, SyncBusy
from agent.sources.ai.tools import tools

T0 = 1_790_000_000.0
CWD = "/work/shop"


class Reader:
    """An AI source over a temp home, collecting what it would send; `restart()` is a
    new source on the same positions database (as a daemon restart is)."""

    def __init__(self, root: Path, after: float = 0.0, fail: bool = False) -> None:
        self.root = root
        self.home = root / "home"
        self.home.mkdir(exist_ok=True)
        self.sent: list[Heartbeat] = []
        self.after = after
        self.fail = fail
        self.source = self._source()

    def _source(self) -> AiActivitySource:
        return AiActivitySource(
            self._sink,
            PositionStore(self.root / "ai.sqlite3"),
            lock_path=self.root / "ai.lock",
            known_tools=tools(env={}, home=str(self.home)),
            after=self.after,
        )

    def _sink(self, heartbeats: list[Heartbeat]) -> Future[int]:
        future: Future[int] = Future()
        if self.fail:
            future.set_exception(OSError("disk full"))
        else:
            self.sent.extend(heartbeats)
            future.set_result(len(heartbeats))
        return future

    def sync(self) -> list[dict[str, object]]:
        start = len(self.sent)
        self.source.sync()
        return [hb.to_api() for hb in self.sent[start:]]

    def restart(self) -> None:
        self.source.close()
        self.source = self._source()


@pytest.fixture
def reader(tmp_path: Path) -> Reader:
    return Reader(tmp_path)


def test_claude_code_session_becomes_ai_heartbeats(reader: Reader) -> None:
    path = claude_path(reader.home, CWD, "s-1")
    append(
        path,
        [
            claude_prompt("s-1", CWD, "<ide_opened_file>x</ide_opened_file> add a cart", T0),
            claude_assistant("s-1", "msg_1", T0 + 1, 1200, 80),
            claude_assistant("s-1", "msg_1", T0 + 1.5, 1200, 95),  # streamed: replaces
            claude_edit("s-1", f"{CWD}/cart.py", T0 + 2, "a\nb", "a\nb\nc\nd\ne"),
            claude_create("s-1", f"{CWD}/test_cart.py", T0 + 3, "x\ny\n"),
            claude_prompt("s-1", CWD, "thanks", T0 + 4),
            {
                "type": "user",
                "sessionId": "s-1",
                "timestamp": iso(T0 + 5),
                "toolUseResult": {
                    "type": "text",
                    "file": {"filePath": f"{CWD}/db.py", "content": "x"},
                },
            },
        ],
    )
    staged = claude_edit("s-1", f"{CWD}/cart.py", T0 + 6, "a", "b")
    staged["toolUseResult"]["staged"] = True  # held for review: nothing written
    notebook = {
        "type": "user",
        "sessionId": "s-1",
        "timestamp": iso(T0 + 7),
        "toolUseResult": {
            "notebook_path": f"{CWD}/eda.ipynb",
            "new_source": "import pandas\ndf = 1",
            "cell_type": "code",
            "language": "python",
            "edit_mode": "insert",
            "original_file": "{}",
            "updated_file": "{}",
        },
    }
    append(path, [staged, notebook])
    prompt, edit, create, thanks, read, held, cell = reader.sync()
    assert prompt == {
        "entity": "Claude s-1",
        "time": T0,
        "type": "app",
        "category": "ai coding",
        "is_write": False,
        "ai_session": "s-1",
        "ai_prompt_length": len("add a cart"),
        "user_agent": "claude-code/2.0.14",
    }
    assert edit["entity"] == f"{CWD}/cart.py"
    assert edit["is_write"] is True
    assert edit["ai_line_changes"] == 3
    assert (edit["ai_input_tokens"], edit["ai_output_tokens"]) == (1200, 95)
    assert edit["user_agent"] == "sonnet/4-5-20250929 claude-code/2.0.14"
    assert create["ai_line_changes"] == 3
    assert "ai_input_tokens" not in create  # tokens are carried once
    # After a file was edited, the session's turns land on it (wakatime-cli does the same).
    assert thanks["entity"] == f"{CWD}/test_cart.py" and thanks["is_write"] is False
    assert (read["entity"], read["is_write"], read["ai_line_changes"]) == (f"{CWD}/db.py", False, 0)
    assert (held["is_write"], held.get("ai_line_changes")) == (False, None)
    assert (cell["entity"], cell["is_write"], cell["ai_line_changes"]) == (
        f"{CWD}/eda.ipynb",
        True,
        2,
    )


def test_codex_patches_count_only_when_applied(reader: Reader) -> None:
    path = codex_path(reader.home, "019a-abc", T0)
    patch = (
        "*** Begin Patch\n*** Update File: src/app.py\n@@\n-old\n+new\n+more\n"
        "*** Add File: src/util.py\n+def f():\n+    return 1\n*** End Patch"
    )
    append(
        path,
        [
            *codex_start("019a-abc", CWD, T0),
            codex_prompt("make it faster", T0 + 1),
            codex_tokens(T0 + 2, 5000, 4000, 300),
            *codex_patch("call_1", patch, T0 + 3),
            *codex_patch("call_2", patch, T0 + 4, output="apply_patch failed: invalid context"),
            codex_patch("call_3", patch, T0 + 4.5)[0],
            {
                "timestamp": iso(T0 + 4.6),
                "type": "event_msg",
                "payload": {"type": "patch_apply_end", "call_id": "call_3", "success": False},
            },
            codex_tokens(T0 + 5, 9000, 7000, 500),
        ],
    )
    prompt, app, util = reader.sync()
    assert prompt["ai_prompt_length"] == len("make it faster")
    assert prompt["ai_session"] == "019a-abc"
    assert (app["entity"], app["ai_line_changes"]) == (f"{CWD}/src/app.py", 1)
    assert (util["entity"], util["ai_line_changes"]) == (f"{CWD}/src/util.py", 2)
    assert (app["ai_input_tokens"], app["ai_output_tokens"]) == (1000, 300)  # minus cached
    assert app["ai_subscription_plan"] == "plus"
    assert app["user_agent"] == "gpt/5-codex-high codex-cli/0.46.0"
    # The failed patch sent nothing; its tokens wait for the next heartbeat.
    append(path, [codex_prompt("again", T0 + 6)])
    [again] = reader.sync()
    assert (again["ai_input_tokens"], again["ai_output_tokens"]) == (1000, 200)


def test_codex_call_and_output_split_across_reads(reader: Reader) -> None:
    path = codex_path(reader.home, "s2", T0)
    call, output = codex_patch(
        "c9", "*** Begin Patch\n*** Add File: /abs/x.txt\n+1\n*** End Patch", T0
    )
    append(path, [*codex_start("s2", CWD, T0), call])
    assert reader.sync() == []
    reader.restart()  # the pending call is part of the persisted state
    append(path, [output])
    [written] = reader.sync()
    assert (written["entity"], written["ai_line_changes"]) == ("/abs/x.txt", 1)


def test_gemini_session_document_rewritten_as_it_grows(reader: Reader) -> None:
    chats = reader.home / ".gemini" / "tmp" / "a1b2" / "chats"
    chats.mkdir(parents=True)
    path = chats / "session-2026-01-01T10-00-abc.json"
    messages = [
        {"id": "u1", "type": "user", "timestamp": iso(T0), "content": "write hello"},
        {
            "id": "g1",
            "type": "gemini",
            "timestamp": iso(T0 + 1),
            "content": "Done.",
            "model": "gemini-2.5-pro",
            "tokens": {"input": 900, "output": 40, "cached": 100, "thoughts": 10, "tool": 0},
            "toolCalls": [
                {
                    "id": "write_file-1",
                    "name": "write_file",
                    "args": {"file_path": "/p/hello.py", "content": "print('hi')\n"},
                    "status": "success",
                    "timestamp": iso(T0 + 1),
                }
            ],
        },
    ]
    path.write_text(json.dumps({"sessionId": "abc", "messages": messages[:1]}))
    [prompt] = reader.sync()
    assert prompt["ai_prompt_length"] == len("write hello")
    # Gemini rewrites the whole file (here by replacing it): only the new message counts.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"sessionId": "abc", "messages": messages}))
    os.replace(tmp, path)
    turn, write = reader.sync()
    assert turn["ai_input_tokens"] == 800 and turn["ai_output_tokens"] == 50
    assert (write["entity"], write["ai_line_changes"]) == ("/p/hello.py", 2)
    assert write["user_agent"] == "gemini/2.5-pro gemini-cli/unknown"
    path.write_text(path.read_text() + " ")  # touched, nothing new
    assert reader.sync() == []


def test_gemini_jsonl_message_completed_later(reader: Reader) -> None:
    path = reader.home / ".gemini/tmp/a1b2/chats/session-2026-01-01T10-00-def.jsonl"
    path.parent.mkdir(parents=True)
    (reader.home / ".gemini/projects.json").write_text(json.dumps({"projects": {CWD: "a1b2"}}))
    reply = {"id": "g1", "type": "gemini", "timestamp": iso(T0 + 1), "content": "Working"}
    append(
        path,
        [
            {"sessionId": "def", "projectHash": "a1b2", "startTime": iso(T0)},
            {"id": "u1", "type": "user", "timestamp": iso(T0), "content": [{"text": "fix it"}]},
            reply,
        ],
    )
    prompt, turn = reader.sync()
    assert (prompt["ai_prompt_length"], prompt["ai_session"]) == (6, "def")
    assert "ai_output_tokens" not in turn
    # The same message, written again once complete: its tokens and its edit count once.
    done = reply | {
        "tokens": {"input": 100, "output": 20, "cached": 0, "thoughts": 5, "tool": 0},
        "toolCalls": [
            {
                "id": "replace-1",
                "name": "replace",
                "args": {"file_path": "src/a.py", "old_string": "a", "new_string": "a\nb"},
                "resultDisplay": {"diffStat": {"model_added_lines": 1, "model_removed_lines": 0}},
                "status": "success",
            }
        ],
    }
    append(path, [done, done])
    [edit] = reader.sync()
    assert (edit["ai_line_changes"], edit["ai_input_tokens"], edit["ai_output_tokens"]) == (
        1,
        100,
        25,
    )
    assert edit["entity"] == f"{CWD}/src/a.py"  # relative to the project Gemini names


def test_opencode_tool_part_counts_once_completed(reader: Reader) -> None:
    part = reader.home / ".local/share/opencode/storage/part/msg_1/prt_1.json"
    part.parent.mkdir(parents=True)
    body = {
        "id": "prt_1",
        "messageID": "msg_1",
        "sessionID": "ses_9",
        "type": "tool",
        "tool": "edit",
        "state": {
            "status": "running",
            "input": {"filePath": "/p/a.ts", "oldString": "a", "newString": "a\nb"},
        },
    }
    part.write_text(json.dumps(body))
    assert reader.sync() == []
    body["state"] |= {
        "status": "completed",
        "metadata": {"filediff": {"additions": 3, "deletions": 1}},
        "time": {"start": int(T0 * 1000), "end": int(T0 * 1000) + 20},
    }
    part.write_text(json.dumps(body))
    [edit] = reader.sync()
    assert (edit["entity"], edit["ai_line_changes"], edit["ai_session"]) == ("/p/a.ts", 2, "ses_9")
    assert edit["time"] == pytest.approx(T0 + 0.02)


def test_opencode_sqlite_store_rows_new_and_finished_later(reader: Reader) -> None:
    put = OpencodeStore(reader.home, CWD).put
    ms = int(T0 * 1000)
    reply: dict[str, Any] = {"role": "assistant", "modelID": "gpt-5", "time": {"created": ms}}
    tool: dict[str, Any] = {"type": "tool", "tool": "write", "state": {"status": "running"}}
    put("message", "msg_1", {"role": "user", "time": {"created": ms}})
    put("message", "msg_2", reply)
    put("part", "prt_1", tool)
    assert reader.sync() == []  # the reply and its tool call are still running
    tool["state"] = {
        "status": "completed",
        "input": {"filePath": "app/new.ts", "content": "a\nb\nc"},
        "metadata": {"exists": False},
        "time": {"start": ms + 100, "end": ms + 200},
    }
    put("part", "prt_1", tool)
    reply |= {"time": {"created": ms, "completed": ms + 300}, "tokens": {"input": 70, "output": 9}}
    put("message", "msg_2", reply)
    turn, write = reader.sync()
    assert (turn["ai_input_tokens"], turn["ai_output_tokens"], turn["ai_session"]) == (
        70,
        9,
        "ses_1",
    )
    assert (write["entity"], write["ai_line_changes"]) == (f"{CWD}/app/new.ts", 3)
    assert write["user_agent"] == "gpt/5 opencode-cli/1.0.150"
    reader.restart()
    assert reader.sync() == []
    put("part", "prt_2", tool | {"id": "prt_2"})
    [again] = reader.sync()
    assert again["entity"] == f"{CWD}/app/new.ts"


def test_copilot_cli_events(reader: Reader) -> None:
    path = reader.home / ".copilot/session-state/4f2e/events.jsonl"
    append(
        path,
        [
            {
                "type": "session.start",
                "timestamp": iso(T0),
                "data": {"sessionId": "4f2e", "copilotVersion": "0.0.339", "context": {"cwd": CWD}},
            },
            {"type": "user.message", "timestamp": iso(T0 + 1), "data": {"content": "rename foo"}},
            {
                "type": "assistant.message",
                "timestamp": iso(T0 + 2),
                "data": {"model": "claude-sonnet-4.5", "outputTokens": 42},
            },
            {
                "type": "tool.execution_start",
                "timestamp": iso(T0 + 3),
                "data": {"toolCallId": "t1", "toolName": "edit"},
            },
            {
                "type": "tool.execution_complete",
                "timestamp": iso(T0 + 4),
                "data": {
                    "toolCallId": "t1",
                    "success": True,
                    "toolTelemetry": {
                        "restrictedProperties": {"filePaths": json.dumps([f"{CWD}/foo.go"])},
                        "metrics": {"linesAdded": 4, "linesRemoved": 4},
                    },
                },
            },
        ],
    )
    prompt, turn, edit = reader.sync()
    assert prompt["ai_prompt_length"] == len("rename foo")
    assert turn["ai_output_tokens"] == 42
    assert (edit["entity"], edit["ai_line_changes"]) == (f"{CWD}/foo.go", 0)
    assert edit["user_agent"] == "sonnet/4.5 github-copilot-cli/0.0.339"


def test_cursor_agent_transcript(reader: Reader) -> None:
    """Cursor publishes no schema: records as wakatime-cli's tests show them (role, content,
    session_id, timestamp), and tool calls naming a file, read loosely."""
    path = reader.home / ".cursor/projects/home-me-shop/agent-transcripts/c0/c0.jsonl"
    append(
        path,
        [
            {"timestamp": iso(T0), "role": "user", "content": "add tests", "session_id": "c0"},
            {
                "role": "assistant",
                "message": {
                    "content": [
                        {
                            "type": "tool_use",
                            "name": "Write",
                            "input": {"path": "/p/t.py", "contents": "a\nb\n"},
                        }
                    ]
                },
            },
        ],
    )
    prompt, write = reader.sync()
    assert (prompt["ai_prompt_length"], prompt["time"], prompt["ai_session"]) == (9, T0, "c0")
    assert (write["entity"], write["ai_line_changes"], write["is_write"]) == ("/p/t.py", 3, True)
    assert write["user_agent"] == "cursor-agent/unknown"
    assert write["time"] == pytest.approx(path.stat().st_mtime)  # no timestamp in the record


def test_cursor_agent_plain_text_transcript(reader: Reader) -> None:
    path = reader.home / ".cursor/projects/shop/agent-transcripts/agent-1.txt"
    path.parent.mkdir(parents=True)
    path.write_text("user:\n<user_query>Implement this parser</user_query>\nA:\nDone\n")
    [first] = reader.sync()
    with open(path, "a") as file:
        file.write("user:\n<user_query>and its tests</user_query>\nA:\n")
    [second] = reader.sync()
    assert (first["ai_prompt_length"], second["ai_prompt_length"]) == (21, 13)
    assert second["entity"] == "Cursor Agent agent-1"
    assert second["time"] == pytest.approx(path.stat().st_mtime)  # the text has no times


def test_environment_overrides_move_the_folders(tmp_path: Path) -> None:
    found = tools(
        env={"CODEX_HOME": str(tmp_path / "cx"), "CLAUDE_CONFIG_DIR": str(tmp_path / "cl")},
        home="/h",
    )
    roots = {tool.name: tool.roots for tool in found}
    assert roots["Codex"][0] == str(tmp_path / "cx" / "sessions")
    assert roots["Claude"] == (str(tmp_path / "cl" / "projects"), "/h/.claude/projects")


# -- reading only what is new ----------------------------------------------------------


def test_nothing_read_twice_across_restarts_and_half_lines(reader: Reader) -> None:
    path = claude_path(reader.home, CWD, "s")
    first = claude_prompt("s", CWD, "one", T0)
    second = json.dumps(claude_prompt("s", CWD, "two", T0 + 1))
    append(path, [first], tail=second[:40])  # the writer is mid-line
    assert [hb["ai_prompt_length"] for hb in reader.sync()] == [3]
    reader.restart()
    assert reader.sync() == []
    with open(path, "a") as file:
        file.write(second[40:] + "\n")
    assert [hb["ai_prompt_length"] for hb in reader.sync()] == [3]  # "two", once
    reader.restart()
    append(path, [claude_prompt("s", CWD, "three!", T0 + 2)])
    assert [hb["ai_prompt_length"] for hb in reader.sync()] == [6]


def test_corrupt_line_is_skipped_and_the_rest_read(
    reader: Reader, caplog: pytest.LogCaptureFixture
) -> None:
    path = claude_path(reader.home, CWD, "s")
    append(path, [claude_prompt("s", CWD, "a", T0)])
    with open(path, "a") as file:
        file.write('{"type": "user", "message": \n')  # a crash left half a record
    append(path, [claude_prompt("s", CWD, "bb", T0 + 1)])
    assert [hb["ai_prompt_length"] for hb in reader.sync()] == [1, 2]
    assert "skipped 1 line(s) that are not JSON" in caplog.text


def test_truncated_rotated_and_rewritten_files_are_read_again(
    reader: Reader, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    path = claude_path(reader.home, CWD, "s")
    append(path, [claude_prompt("s", CWD, "first session, long prompt", T0)])
    assert len(reader.sync()) == 1
    path.write_text("")  # truncated, then written again
    append(path, [claude_prompt("s", CWD, "new", T0 + 5)])
    assert [hb["ai_prompt_length"] for hb in reader.sync()] == [3]
    assert "was truncated" in caplog.text
    os.rename(path, path.with_suffix(".old"))  # rotated: a new file under the old name
    append(path, [claude_prompt("s", CWD, "rotated!", T0 + 9)])
    assert [hb["ai_prompt_length"] for hb in reader.sync()] == [8]
    assert "was replaced" in caplog.text
    with open(path, "r+") as file:  # the same inode, longer, other first bytes
        file.write(json.dumps(claude_prompt("s", CWD, "rewritten in place", T0 + 10)) + "\n")
    assert [hb["ai_prompt_length"] for hb in reader.sync()] == [18]
    assert "was rewritten" in caplog.text


def test_a_failed_store_keeps_the_position(tmp_path: Path) -> None:
    reader = Reader(tmp_path, fail=True)
    append(claude_path(reader.home, CWD, "s"), [claude_prompt("s", CWD, "keep me", T0)])
    assert reader.sync() == []
    reader.fail = False
    reader.source._seen.clear()  # as the next scan after the failure
    assert [hb["ai_prompt_length"] for hb in reader.sync()] == [7]


def test_history_before_the_backfill_window_is_not_sent(tmp_path: Path) -> None:
    reader = Reader(tmp_path, after=T0 + 10)
    path = claude_path(reader.home, CWD, "s")
    append(path, [claude_assistant("s", "m", T0, 500, 50), claude_prompt("s", CWD, "old", T0)])
    append(path, [claude_prompt("s", CWD, "new", T0 + 20)])
    [new] = reader.sync()
    assert new["ai_prompt_length"] == 3 and "ai_input_tokens" not in new


def test_one_reader_at_a_time_and_its_files_are_private(reader: Reader) -> None:
    with pytest.raises(SyncBusy):
        Reader(reader.root)
    for name in ("ai.sqlite3", "ai.lock"):
        assert (reader.root / name).stat().st_mode & 0o777 == 0o600


def test_patch_and_model_rules() -> None:
    assert patch_changes("*** Update File: a\n*** Move to: b\n+x\n-y\n-z", "/r") == [("/r/b", -1)]
    assert model_token("claude-opus-4-1-20250805") == "opus/4-1-20250805"
    assert model_token("gpt-5", "medium") == "gpt/5-medium"
    assert model_token("openai/gpt-4o") == "gpt/4o"
    assert model_token("") == ""
