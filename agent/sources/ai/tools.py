"""Where each AI tool keeps its transcripts, and how to read them.

Locations are those wakatime-cli 2.x reads (pkg/ai), plus the tools' own overrides:
`CLAUDE_CONFIG_DIR` (Claude Code), `CODEX_HOME` (Codex), `XDG_DATA_HOME` (opencode).
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.sources.ai import parsers


@dataclass(frozen=True)
class Tool:
    name: str  # what the app entity and logs call it
    editor: str  # the user-agent product: the editor servers show
    roots: tuple[str, ...]  # folders watched, recursively
    patterns: tuple[str, ...]  # path patterns below a root (fnmatch, `*` crosses `/`)
    parser: parsers.Parser
    whole_file: bool = False  # a JSON document rewritten in place, not appended lines
    plain_text: bool = False  # a text document rewritten in place (whole_file, not JSON)
    database: bool = False  # an SQLite store (opencode's), read by rowid
    # Facts a transcript does not hold itself, looked up beside it (Gemini's project root).
    context: Callable[[str], dict[str, str]] | None = None

    def matches(self, path: str) -> bool:
        for root in self.roots:
            if path.startswith(root + os.sep):
                relative = path[len(root) + 1 :]
                return any(fnmatch.fnmatchcase(relative, pattern) for pattern in self.patterns)
        return False


def tools(env: dict[str, str] | None = None, home: str | None = None) -> list[Tool]:
    env = dict(os.environ if env is None else env)
    home = home or env.get("HOME") or str(Path.home())

    def under(*parts: str) -> str:
        return os.path.join(home, *parts)

    claude = [under(".claude", "projects")]
    if config := env.get("CLAUDE_CONFIG_DIR"):
        claude.insert(0, os.path.join(os.path.expanduser(config), "projects"))
    codex_home = os.path.expanduser(env.get("CODEX_HOME") or under(".codex"))
    opencode = [under(".local", "share", "opencode")]
    if data := env.get("XDG_DATA_HOME"):
        opencode.insert(0, os.path.join(os.path.expanduser(data), "opencode"))
    return [
        Tool(
            "Claude",
            "claude-code",
            _unique(claude),
            ("*.jsonl",),
            parsers.claude,
            context=session_from_name,
        ),
        Tool(
            "Codex",
            "codex-cli",
            (os.path.join(codex_home, "sessions"), os.path.join(codex_home, "archived_sessions")),
            ("*rollout-*.jsonl",),
            parsers.codex,
        ),
        *_lines_or_document(
            "Gemini",
            "gemini-cli",
            under(".gemini", "tmp"),
            "*/chats/*",
            ".json",
            parsers.gemini,
            gemini_project,
        ),
        Tool(
            "OpenCode",
            "opencode-cli",
            _unique(opencode),
            ("storage/message/*.json", "storage/part/*.json"),
            parsers.opencode,
            whole_file=True,
        ),
        Tool(
            "OpenCode",
            "opencode-cli",
            _unique(opencode),
            ("opencode*.db",),
            parsers.opencode,
            database=True,
        ),
        *_lines_or_document(
            "Cursor Agent",
            "cursor-agent",
            under(".cursor", "projects"),
            "*/agent-transcripts/*",
            ".txt",
            parsers.cursor_agent,
            session_from_name,
        ),
        Tool(
            "Copilot CLI",
            "github-copilot-cli",
            (under(".copilot", "session-state"),),
            ("*/events.jsonl",),
            parsers.copilot_cli,
            context=session_from_folder,
        ),
    ]


def _lines_or_document(
    name: str,
    editor: str,
    root: str,
    stem: str,
    document: str,
    parser: parsers.Parser,
    context: Callable[[str], dict[str, str]],
) -> tuple[Tool, Tool]:
    """A tool whose transcripts are appended lines (`.jsonl`) or one document rewritten
    whole (`.json`, or plain `.txt`)."""
    return (
        Tool(name, editor, (root,), (f"{stem}.jsonl",), parser, context=context),
        Tool(
            name,
            editor,
            (root,),
            (f"{stem}{document}",),
            parser,
            whole_file=True,
            plain_text=document == ".txt",
            context=context,
        ),
    )


def _unique(paths: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(os.path.abspath(p) for p in paths))


def tool_for(path: str, known: list[Tool]) -> Tool | None:
    return next((tool for tool in known if tool.matches(path)), None)


def gemini_project(path: str) -> dict[str, str]:
    """Gemini names a project's folder by a hash; the project root is in the folder's
    `.project_root`, or in `~/.gemini/projects.json` (root → folder name)."""
    folder = os.path.dirname(os.path.dirname(path))
    while os.path.basename(os.path.dirname(folder)) != "tmp" and folder != os.path.dirname(folder):
        folder = os.path.dirname(folder)  # a sub-agent's chat lies deeper
    try:
        with open(os.path.join(folder, ".project_root"), encoding="utf-8") as file:
            if root := file.read().strip():
                return {"cwd": root}
    except OSError:
        pass
    try:
        with open(os.path.join(os.path.dirname(os.path.dirname(folder)), "projects.json")) as file:
            projects = json.load(file).get("projects") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    slug = os.path.basename(folder)
    return next(({"cwd": root} for root, name in projects.items() if name == slug), {})


def session_from_name(path: str) -> dict[str, str]:
    """The session a transcript is until its records say (`<session>.jsonl`)."""
    return {"session": os.path.splitext(os.path.basename(path))[0]}


def session_from_folder(path: str) -> dict[str, str]:
    """`<session>/events.jsonl`."""
    return {"session": os.path.basename(os.path.dirname(path))}
