"""Transcript records → AI heartbeats, one parser per tool. Pure: no I/O, no clock.

A parser takes the new complete records of one transcript and that transcript's state (a
JSON-able dict the caller persists with the file's offset), and returns the heartbeats the
records mean, updating the state in place. What each tool writes, and what wakatime-cli 2.x
sends for it, is summarised in the README ("AI coding activity"); the rules are:

* a file edit the AI made (Edit/Write/NotebookEdit results, apply_patch, write_file/replace,
  edit/write tool parts, tool telemetry) is a write heartbeat on that file, category
  `ai coding`, with `ai_line_changes` = lines added minus lines removed;
* a prompt is a heartbeat with `ai_prompt_length` (characters), an assistant turn one that
  carries the tokens used since the last heartbeat (`ai_input_tokens`, `ai_output_tokens`);
  both land on the session's last edited file when there is one (wakatime-cli does the
  same), else on an `app` entity named after the tool and session;
* every heartbeat names the session (`ai_session`) and has the tool as the editor in its
  user agent: `<model>/<version> <tool>/<version>`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from agent.pipeline.heartbeat import Heartbeat

State = dict[str, Any]
AI_CODING = "ai coding"
MAX_SEEN = 20_000  # ids remembered per transcript (whole-file formats), oldest dropped


class BadRecord(ValueError):
    """A record that is not JSON (a corrupt line): skipped, counted, never fatal."""


def parse_time(value: Any) -> float | None:
    """ISO 8601 text or epoch milliseconds → epoch seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value / 1000.0 if value > 1e11 else float(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def count_lines(text: str) -> int:
    """Lines in a piece of text, counted as wakatime-cli counts them (newlines + 1)."""
    return text.count("\n") + 1


def patch_changes(patch: str, cwd: str | None) -> list[tuple[str, int]]:
    """(file, added - removed) for each file of an apply_patch envelope."""
    changes: list[tuple[str, int]] = []
    current: str | None = None
    delta = 0
    for line in patch.split("\n"):
        if line.startswith("*** Move to: ") and current is not None:
            current = _resolve(cwd, line.removeprefix("*** Move to: "))
        elif line.startswith(("*** Update File: ", "*** Add File: ", "*** Delete File: ")):
            if current is not None:
                changes.append((current, delta))
            current, delta = _resolve(cwd, line.split(": ", 1)[1]), 0
        elif current is not None and line.startswith("+"):
            delta += 1
        elif current is not None and line.startswith("-"):
            delta -= 1
    if current is not None:
        changes.append((current, delta))
    return changes


def _resolve(cwd: str | None, path: str) -> str:
    path = path.strip()
    if not path or os.path.isabs(path) or not cwd:
        return path
    return os.path.join(cwd, path)


def model_token(model: str | None, effort: str | None = None) -> str:
    """`claude-sonnet-4-5` → `sonnet/4-5`, `gpt-5-codex` + `high` → `gpt/5-codex-high`:
    the model as a product/version word, as wakatime-cli puts it in the user agent."""
    model = "-".join((model or "").split()).strip("/")
    if not model:
        return ""
    effort = "-".join((effort or "").split()).strip("-_/.")
    if effort and not model.lower().endswith("-" + effort.lower()):
        model = f"{model}-{effort}"
    product, _, version = model.partition("/")
    if version[:1].isdigit() and product:
        return f"{product}/{version}"
    model = model.rsplit("/", 1)[-1].strip("-_.")
    parts = [part for part in re.split(r"[-_]", model) if part]
    for index, part in enumerate(parts):
        digit = next((i for i, char in enumerate(part) if char.isdigit()), None)
        if digit is None:
            continue
        if digit == 0:
            return f"{parts[index - 1]}/{'-'.join(parts[index:])}" if index else ""
        return f"{part[:digit]}/{'-'.join([part[digit:], *parts[index + 1 :]])}"
    return ""


class Session:
    """One transcript's running facts, kept in its persisted state: who wrote it (tool,
    version, model), where (cwd), the session id, the last file edited, and the token
    counters (cumulative so far, and how much of it heartbeats already carried)."""

    def __init__(self, state: State, tool: str, editor: str, after: float) -> None:
        self.state = state
        self.tool = tool
        self.editor = editor  # the user-agent product of the tool: `claude-code`, ...
        self.after = after
        self.out: list[Heartbeat] = []
        self._seen: set[str] | None = None
        state.setdefault("tin", 0)
        state.setdefault("tout", 0)
        state.setdefault("sin", 0)
        state.setdefault("sout", 0)

    def first_time(self, key: str) -> bool:
        """Whether a record id (of a format rewritten whole) is new; remembers it."""
        if self._seen is None:
            self._seen = set(self.state.setdefault("seen", []))
        if key in self._seen:
            return False
        self._seen.add(key)
        seen = self.state["seen"]
        seen.append(key)
        if len(seen) > MAX_SEEN:
            self._seen.difference_update(seen[:-MAX_SEEN])
            del seen[:-MAX_SEEN]
        return True

    def set(self, **facts: Any) -> None:
        for key, value in facts.items():
            if value:
                self.state[key] = value

    def add_tokens(self, input_tokens: int, output_tokens: int) -> None:
        self.state["tin"] += max(0, input_tokens)
        self.state["tout"] += max(0, output_tokens)

    def set_tokens(self, input_tokens: int, output_tokens: int) -> None:
        """Cumulative counters as the tool reports them (a lower value starts a new count)."""
        for key, sent, value in (("tin", "sin", input_tokens), ("tout", "sout", output_tokens)):
            if value < self.state[key]:
                self.state[sent] = 0
            self.state[key] = max(0, value)

    def user_agent(self) -> str:
        version = self.state.get("version") or "unknown"
        model = model_token(self.state.get("model"), self.state.get("effort"))
        return f"{model} {self.editor}/{version}".strip()

    def file_edit(
        self, at: float | None, path: str, line_changes: int | None, is_write: bool = True
    ) -> None:
        if not path:
            return
        path = _resolve(self.state.get("cwd"), path)
        self.state["file"] = path
        self._emit(at, path, is_write=is_write, line_changes=line_changes)

    def turn(self, at: float | None, prompt_length: int = 0) -> None:
        """A prompt (its length) or an assistant turn: a heartbeat for the session."""
        self._emit(at, None, is_write=False, prompt_length=prompt_length or None)

    def skip(self) -> None:
        """Tokens counted before the cut-off are not sent later."""
        self.state["sin"], self.state["sout"] = self.state["tin"], self.state["tout"]

    def _emit(
        self,
        at: float | None,
        path: str | None,
        *,
        is_write: bool,
        line_changes: int | None = None,
        prompt_length: int | None = None,
    ) -> None:
        if at is None or at < self.after:
            self.skip()
            return
        session = self.state.get("session") or ""
        entity = path or self.state.get("file")
        cwd = self.state.get("cwd")
        hb = Heartbeat(
            entity=entity or f"{self.tool} {session}".strip(),
            time=at,
            type="file" if entity else "app",
            category=AI_CODING,
            is_write=is_write,
            ai_line_changes=line_changes,
            ai_session=session or None,
            ai_prompt_length=prompt_length,
            ai_subscription_plan=self.state.get("plan"),
            user_agent=self.user_agent(),
            project_folder=cwd,
            alternate_project=None if entity or not cwd else os.path.basename(cwd.rstrip("/")),
        )
        spent_in = self.state["tin"] - self.state["sin"]
        spent_out = self.state["tout"] - self.state["sout"]
        if spent_in > 0 or spent_out > 0:
            hb.ai_input_tokens, hb.ai_output_tokens = max(0, spent_in), max(0, spent_out)
        self.skip()
        self.out.append(hb)


def _loads(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRecord(str(exc)) from None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text_of(content: Any) -> str:
    """The text of a message content: a string, or the `text` of its text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            item if isinstance(item, str) else _str(_dict(item).get("text"))
            for item in content
            if isinstance(item, str) or _dict(item).get("type") in ("text", "input_text", None)
        )
    return ""


def _prompt_length(text: str) -> int:
    """Characters of what the person typed, without the harness's `<tag>…</tag>` blocks."""
    text = text.strip()
    while text.startswith("<"):
        match = re.match(r"<([A-Za-z_][\w-]*)[^>]*>.*?</\1>\s*", text, re.S)
        if match is None:
            break
        text = text[match.end() :]
    return len(text.strip())


# -- Claude Code: ~/.claude/projects/<project>/<session>.jsonl ------------------------------


def claude(records: Iterable[Any], session: Session) -> None:
    state = session.state
    for record in records:
        line = _dict(record)
        message = _dict(line.get("message"))
        session.set(
            version=_str(line.get("version")),
            session=_str(line.get("sessionId")),
            cwd=_str(line.get("cwd")),
            model=_str(message.get("model")),
        )
        usage = _dict(message.get("usage"))
        if usage:
            input_tokens = _int(usage.get("input_tokens"))
            input_tokens += _int(usage.get("cache_creation_input_tokens"))
            input_tokens += _int(usage.get("cache_read_input_tokens"))
            output_tokens = _int(usage.get("output_tokens"))
            last_id, last_in, last_out = state.get("msg") or ("", 0, 0)
            if message.get("id") and message.get("id") == last_id:  # a streamed update
                session.add_tokens(input_tokens - last_in, output_tokens - last_out)
            else:
                session.add_tokens(input_tokens, output_tokens)
            state["msg"] = (_str(message.get("id")), input_tokens, output_tokens)
        at = parse_time(line.get("timestamp"))
        result = line.get("toolUseResult")
        if isinstance(result, dict) and result.get("staged"):
            session.turn(at)  # held for review: the file is unchanged
        elif isinstance(result, dict) and (path := _claude_path(result)):
            if _claude_is_write(result):
                session.file_edit(at, path, _claude_line_changes(result))
            else:  # a Read: the AI at work on that file, nothing written
                session.file_edit(at, path, 0, is_write=False)
        elif result:
            session.turn(at)  # a command's or a search's output: the AI is at work
        elif length := _claude_prompt(line, message):
            session.turn(at, length)


def _claude_prompt(line: dict[str, Any], message: dict[str, Any]) -> int:
    """The length of what the person typed, if the line is a prompt (not a sub-agent's)."""
    if line.get("type") != "user" or line.get("isSidechain") or message.get("role") != "user":
        return 0
    return _prompt_length(_text_of(message.get("content")))


def _claude_path(result: dict[str, Any]) -> str:
    """The file a tool result names: Edit/Write/Read (`filePath`), NotebookEdit."""
    return (
        _str(result.get("filePath"))
        or _str(_dict(result.get("file")).get("filePath"))
        or _str(result.get("notebook_path"))
    )


def _claude_is_write(result: dict[str, Any]) -> bool:
    if result.get("structuredPatch") or result.get("type") in ("create", "update", "delete"):
        return True
    if "new_source" in result:
        return not result.get("error")
    return "newString" in result or "oldString" in result


def _claude_line_changes(result: dict[str, Any]) -> int:
    if isinstance(source := result.get("new_source"), str):  # a notebook cell
        old = _str(result.get("old_source"))
        return count_lines(source) - (count_lines(old) if old else 0)
    patches = result.get("structuredPatch")
    if isinstance(patches, list) and patches:
        return sum(_int(_dict(p).get("newLines")) - _int(_dict(p).get("oldLines")) for p in patches)
    if isinstance(new := result.get("newString"), str):
        old = result.get("oldString")
        return count_lines(new) - (count_lines(old) if isinstance(old, str) else 0)
    if result.get("originalFile"):
        return 0
    content = result.get("content")
    return count_lines(content) if isinstance(content, str) else 0


# -- Codex CLI: $CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl --------------------


def codex(records: Iterable[Any], session: Session) -> None:
    state = session.state
    pending: dict[str, list[str]] = state.setdefault("pending", {})
    for record in records:
        line = _dict(record)
        kind = line.get("type")
        payload = _dict(line.get("payload"))
        at = parse_time(line.get("timestamp"))
        if kind == "session_meta":
            source = payload.get("source")
            session.set(
                session=_str(payload.get("id")),
                cwd=_str(payload.get("cwd")),
                version=_str(payload.get("cli_version")),
            )
            if isinstance(source, str) and source and source != "cli":
                session.editor = "codex-" + re.sub(r"[/\\ ]", "-", source.lower()).strip("-")
                state["editor"] = session.editor
            continue
        if kind == "turn_context":
            session.set(model=_str(payload.get("model")), effort=_str(payload.get("effort")))
            session.set(cwd=_str(payload.get("cwd")))
            continue
        ptype = payload.get("type")
        call_id = _str(payload.get("call_id"))
        patches = _codex_patches(payload)
        if patches and call_id:
            pending[call_id] = patches
        elif call_id in pending and ptype in ("patch_apply_end", "custom_tool_call_output"):
            patches = pending.pop(call_id)
            if _codex_succeeded(payload):
                for patch in patches:
                    for path, delta in patch_changes(patch, state.get("cwd")):
                        session.file_edit(at, path, delta)
        elif ptype == "token_count":
            info = _dict(payload.get("info"))
            total = _dict(info.get("total_token_usage"))
            if total:
                cached = _int(total.get("cached_input_tokens"))
                session.set_tokens(
                    _int(total.get("input_tokens")) - cached, _int(total.get("output_tokens"))
                )
            plan = _dict(payload.get("rate_limits")).get("plan_type")
            session.set(plan=_str(plan).strip())
        elif ptype == "user_message" and kind == "event_msg":
            if length := _prompt_length(_str(payload.get("message"))):
                session.turn(at, length)
        elif ptype == "agent_message" and kind == "event_msg":
            session.turn(at)


def _codex_patches(payload: dict[str, Any]) -> list[str]:
    name, given = payload.get("name"), payload.get("input")
    return [given] if name == "apply_patch" and isinstance(given, str) else []


def _codex_succeeded(payload: dict[str, Any]) -> bool:
    if payload.get("type") == "patch_apply_end":
        return payload.get("success") is True
    output = payload.get("output")
    text = _text_of(output).lower() if not isinstance(output, str) else output.lower()
    return not any(word in text for word in ("failed", "error", "invalid patch"))


# -- Gemini CLI: ~/.gemini/tmp/<project>/chats/session-*.json(l) -----------------------------


def gemini(records: Iterable[Any], session: Session) -> None:
    """Records are messages (JSONL) or whole session documents (.json, rewritten as the
    chat grows); each message and each tool call is taken once, by its id."""
    for record in records:
        item = _dict(record)
        if isinstance(item.get("$set"), dict):
            item = item["$set"]
        if "messages" in item or "sessionId" in item:
            session.set(session=_str(item.get("sessionId")))
            for message in item.get("messages") or []:
                _gemini_message(_dict(message), session)
        elif item.get("id") and item.get("type"):
            _gemini_message(item, session)


def _gemini_message(message: dict[str, Any], session: Session) -> None:
    key = _str(message.get("id"))
    if not key:
        return
    at = parse_time(message.get("timestamp"))
    session.set(model=_str(message.get("model")))
    kind = message.get("type")
    if tokens := _dict(message.get("tokens")):
        # A message is written again as it completes: count what its counts grew by.
        counted: dict[str, list[int]] = session.state.setdefault("counted", {})
        now = [
            max(0, _int(tokens.get("input")) - _int(tokens.get("cached")))
            + _int(tokens.get("tool")),
            _int(tokens.get("output")) + _int(tokens.get("thoughts")),
        ]
        before = counted.pop(key, [0, 0])
        session.add_tokens(now[0] - before[0], now[1] - before[1])
        counted[key] = [max(a, b) for a, b in zip(now, before, strict=True)]
        for old in list(counted)[:-MAX_SEEN]:
            del counted[old]
    if session.first_time(key):
        text = _text_of(message.get("content"))
        if kind == "user" and (length := _prompt_length(text)):
            session.turn(at, length)
        elif kind == "gemini" and text.strip():
            session.turn(at)
    if kind != "gemini":
        return
    for call in message.get("toolCalls") or []:
        call = _dict(call)
        name = (_str(call.get("name")) or _str(call.get("displayName"))).lower()
        if name not in ("write_file", "writefile", "replace", "edit"):
            continue
        if call.get("status") not in (None, "", "success"):
            continue
        if not session.first_time(f"{key}/{call.get('id') or name}"):
            continue
        args = _dict(call.get("args"))
        display = _dict(call.get("resultDisplay"))
        path = _str(display.get("filePath")) or _str(args.get("file_path"))
        stat = _dict(display.get("diffStat"))
        if name in ("write_file", "writefile"):
            changes = count_lines(_str(args.get("content")))
        elif stat:
            changes = _int(stat.get("model_added_lines")) - _int(stat.get("model_removed_lines"))
        else:
            changes = count_lines(_str(args.get("new_string"))) - count_lines(
                _str(args.get("old_string"))
            )
        session.file_edit(parse_time(call.get("timestamp")) or at, path, changes)


# -- opencode: ~/.local/share/opencode/storage/{message,part}/... ---------------------------


def opencode(records: Iterable[Any], session: Session) -> None:
    """Records are opencode's storage documents: a message (role, model, tokens, path) or a
    part (a tool call with its state). A tool part counts once it is `completed`."""
    for record in records:
        item = _dict(record)
        session.set(session=_str(item.get("sessionID")))
        if "directory" in item:  # a session's facts (the SQLite store)
            session.set(cwd=_str(item.get("directory")), version=_str(item.get("version")))
            continue
        if "role" in item:
            path = _dict(item.get("path"))
            session.set(
                cwd=_str(path.get("cwd")) or _str(path.get("root")), model=_str(item.get("modelID"))
            )
            tokens = _dict(item.get("tokens"))
            at = parse_time(_dict(item.get("time")).get("created"))
            done = _dict(item.get("time")).get("completed")
            if (
                item.get("role") == "assistant"
                and done
                and session.first_time(_str(item.get("id")))
            ):
                cache = _dict(tokens.get("cache"))
                session.add_tokens(
                    _int(tokens.get("input")) + _int(cache.get("write")),
                    _int(tokens.get("output")) + _int(tokens.get("reasoning")),
                )
                session.turn(at)
            continue
        tool_state = _dict(item.get("state"))
        if item.get("type") != "tool" or tool_state.get("status") != "completed":
            continue
        if not session.first_time(_str(item.get("id"))):
            continue
        times = _dict(tool_state.get("time"))
        at = parse_time(times.get("end")) or parse_time(times.get("start"))
        given = _dict(tool_state.get("input"))
        meta = _dict(tool_state.get("metadata"))
        tool = item.get("tool")
        if tool == "edit":
            diff = _dict(meta.get("filediff"))
            changes = count_lines(_str(given.get("newString"))) - count_lines(
                _str(given.get("oldString"))
            )
            if _int(diff.get("additions")) or _int(diff.get("deletions")):
                changes = _int(diff.get("additions")) - _int(diff.get("deletions"))
            session.file_edit(at, _str(given.get("filePath")), changes)
        elif tool == "write":
            changes = 0 if meta.get("exists") else count_lines(_str(given.get("content")))
            session.file_edit(at, _str(given.get("filePath")), changes)
        elif tool in ("apply_patch", "patch"):
            files = meta.get("files")
            if isinstance(files, list) and files:
                for file in map(_dict, files):
                    delta = _int(file.get("additions")) - _int(file.get("deletions"))
                    session.file_edit(at, _str(file.get("filePath")), delta)
            else:
                for path, delta in patch_changes(
                    _str(given.get("patchText")), session.state.get("cwd")
                ):
                    session.file_edit(at, path, delta)


# -- GitHub Copilot CLI: ~/.copilot/session-state/<session>/events.jsonl --------------------


def copilot_cli(records: Iterable[Any], session: Session) -> None:
    state = session.state
    tools: dict[str, str] = state.setdefault("tools", {})
    for record in records:
        event = _dict(record)
        data = _dict(event.get("data"))
        at = parse_time(event.get("timestamp"))
        kind = event.get("type")
        if kind == "session.start":
            context = _dict(data.get("context"))
            session.set(
                session=_str(data.get("sessionId")),
                version=_str(data.get("copilotVersion")),
                cwd=_str(context.get("gitRoot")) or _str(context.get("cwd")),
            )
        elif kind == "session.model_change":
            session.set(model=_str(data.get("newModel")))
        elif kind == "user.message":
            if length := _prompt_length(_str(data.get("content")) or _str(data.get("message"))):
                session.turn(at, length)
        elif kind == "assistant.message":
            session.set(model=_str(data.get("model")))
            session.add_tokens(0, _int(data.get("outputTokens")))
            session.turn(at)
        elif kind == "tool.execution_start":
            if call := _str(data.get("toolCallId")):
                tools[call] = _str(data.get("toolName")) or _str(data.get("name"))
        elif kind == "tool.execution_complete" and data.get("success") is not False:
            name = _str(data.get("toolName")) or tools.pop(_str(data.get("toolCallId")), "")
            telemetry = _dict(
                data.get("toolTelemetry") or _dict(data.get("result")).get("toolTelemetry")
            )
            _copilot_edits(session, at, name, telemetry)


def _copilot_edits(
    session: Session, at: float | None, name: str, telemetry: dict[str, Any]
) -> None:
    restricted = _dict(telemetry.get("restrictedProperties"))
    metrics = _dict(telemetry.get("metrics"))
    paths: list[str] = []
    for key in ("filePaths", "addedPaths", "deletedPaths"):
        for path in _string_list(restricted.get(key)):
            if path.strip() and path not in paths:
                paths.append(path)
    has_counts = "linesAdded" in metrics or "linesRemoved" in metrics
    if not paths or not (name in ("apply_patch", "edit", "write", "create") or has_counts):
        return
    blocks = [_dict(b) for b in _json_list(_dict(telemetry.get("properties")).get("codeBlocks"))]
    for index, path in enumerate(paths):
        changes: int | None = None
        if len(blocks) == len(paths):
            changes = _int(blocks[index].get("linesAdded")) - _int(
                blocks[index].get("linesRemoved")
            )
        elif len(paths) == 1 and has_counts:
            changes = _int(metrics.get("linesAdded")) - _int(metrics.get("linesRemoved"))
        session.file_edit(at, path, changes)


def _json_list(value: Any) -> list[Any]:
    """A list, or a list encoded as a JSON string (Copilot's telemetry does both)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return value if isinstance(value, list) else []


def _string_list(value: Any) -> list[str]:
    return [item for item in _json_list(value) if isinstance(item, str)]


# -- Cursor agent: ~/.cursor/projects/<project>/agent-transcripts/*.jsonl ---------------------

_CURSOR_EDIT_TOOLS = {
    "edit_file",
    "write",
    "search_replace",
    "strreplace",
    "edit",
    "multiedit",
    "apply_patch",
}
_PATH_KEYS = ("file_path", "filePath", "target_file", "path")


def cursor_agent(records: Iterable[Any], session: Session) -> None:
    """Cursor publishes no schema for these files; like wakatime-cli's generic reader this
    looks for a role, tool calls naming a file, and token counts, wherever they appear."""
    for record in records:
        if isinstance(record, str):
            _cursor_text(record, session)
            continue
        item = _dict(record)
        message = _dict(item.get("message")) or item
        at = parse_time(item.get("timestamp") or item.get("createdAt")) or session.state.get(
            "mtime"
        )
        session.set(
            session=_str(item.get("session_id") or item.get("sessionId")),
            model=_str(message.get("model")),
        )
        usage = _dict(message.get("usage") or item.get("usage"))
        session.add_tokens(_int(usage.get("input_tokens")), _int(usage.get("output_tokens")))
        role = message.get("role") or item.get("role")
        content = message.get("content")
        if role == "user" and (length := _prompt_length(_text_of(content))):
            session.turn(at, length)
            continue
        edits = 0
        for block in content if isinstance(content, list) else []:
            block = _dict(block)
            name = _str(block.get("name") or block.get("toolName")).lower()
            args = _dict(block.get("input") or block.get("args") or block.get("arguments"))
            path = next((_str(args.get(key)) for key in _PATH_KEYS if args.get(key)), "")
            if (
                block.get("type") in ("tool_use", "tool_call", "tool-call")
                and name in _CURSOR_EDIT_TOOLS
                and path
            ):
                new = _str(args.get("new_string") or args.get("contents") or args.get("content"))
                old = _str(args.get("old_string"))
                changes = count_lines(new) - (count_lines(old) if old else 0) if new else None
                session.file_edit(at, path, changes)
                edits += 1
        if role == "assistant" and not edits:
            session.turn(at)


def _cursor_text(text: str, session: Session) -> None:
    """A plain-text transcript (`user:` … `A:` …): each `<user_query>` is a prompt, at the
    file's time (the text has none of its own)."""
    for index, match in enumerate(re.finditer(r"<user_query>(.*?)</user_query>", text, re.S)):
        if session.first_time(f"query/{index}") and (length := _prompt_length(match[1])):
            session.turn(session.state.get("mtime"), length)


Parser = Callable[[Iterable[Any], Session], None]


def decode(raw: bytes | str) -> Any:
    """One JSON record; BadRecord if it is not one."""
    return _loads(raw)
