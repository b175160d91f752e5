"""The extra heartbeats a plugin writes to stdin as one JSON line (`--extra-heartbeats`),
normalised to Heartbeat field names the way wakatime-cli reads them."""

from __future__ import annotations

from agent.ipc.protocol import loads
from agent.wakatime_cli.args import go_bool, is_finite, parse_time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO, TextIO

# One stdin line larger than this is not a plugin's heartbeat buffer.
MAX_EXTRA_HEARTBEATS_BYTES = 32 * 1024 * 1024


def read_extra_heartbeats(stream: BinaryIO | TextIO) -> tuple[list[dict[str, Any]], list[str]]:
    """Read ONE line from `stream` (a plugin's stdin) and normalise the JSON array on it.

    Never waits for end of file: vim's job keeps stdin open after the line. A buffered
    reader's readline returns as soon as the newline has arrived (each underlying read
    takes what the pipe holds), so nothing here blocks once the line is complete.
    Returns (items keyed by Heartbeat field names, problems); items still need validating.
    """
    source = getattr(stream, "buffer", stream)
    try:
        line = source.readline(MAX_EXTRA_HEARTBEATS_BYTES + 1)
    except (OSError, ValueError) as exc:
        return [], [f"extra heartbeats: cannot read stdin: {exc}"]
    if len(line) > MAX_EXTRA_HEARTBEATS_BYTES:
        return [], [f"extra heartbeats: line longer than {MAX_EXTRA_HEARTBEATS_BYTES} bytes"]
    text = line.decode("utf-8-sig", errors="replace") if isinstance(line, bytes) else line
    if not text.strip():
        return [], []
    try:
        data = loads(text)
    except (ValueError, RecursionError) as exc:
        return [], [f"extra heartbeats: not valid JSON: {exc}"]
    if data is None:
        return [], []
    if not isinstance(data, list):
        return [], ["extra heartbeats: must be a JSON array"]
    items: list[dict[str, Any]] = []
    problems: list[str] = []
    for index, item in enumerate(data):
        if isinstance(item, dict):
            items.append(_normalise_extra(item))
        else:
            problems.append(f"extra heartbeat {index}: must be a JSON object")
    return items, problems


# Heartbeat field → the keys plugins use for it, first non-empty wins (wakatime-cli
# prefers `type` over `entity_type` and `time` over `timestamp`).
_EXTRA_KEYS: dict[str, tuple[str, ...]] = {
    "entity": ("entity",),
    "type": ("type", "entity_type"),
    "category": ("category",),
    "time": ("time", "timestamp"),
    "is_write": ("is_write",),
    "lineno": ("lineno",),
    "cursorpos": ("cursorpos",),
    "lines": ("lines", "lines_in_file"),
    "language": ("language",),
    "alternate_language": ("alternate_language",),
    "project": ("project",),
    "alternate_project": ("alternate_project",),
    "branch": ("branch",),
    "alternate_branch": ("alternate_branch",),
    "project_folder": ("project_folder",),
    "is_unsaved_entity": ("is_unsaved_entity",),
    "ai_line_changes": ("ai_line_changes",),
    "human_line_changes": ("human_line_changes",),
    "line_additions": ("line_additions",),
    "line_deletions": ("line_deletions",),
    "project_root_count": ("project_root_count",),
    # VS Code puts the AI agent's user agent on a heartbeat as `plugin`.
    "user_agent": ("user_agent", "plugin"),
}
_EXTRA_COUNTS = frozenset(
    {
        "lineno",
        "cursorpos",
        "lines",
        "ai_line_changes",
        "human_line_changes",
        "line_additions",
        "line_deletions",
        "project_root_count",
    }
)
_EXTRA_FLAGS = frozenset({"is_write", "is_unsaved_entity"})


def _normalise_extra(item: dict[str, Any]) -> dict[str, Any]:
    """Map one plugin item to Heartbeat field names, turning "12"/"true" into 12/True.

    Values that cannot be converted are kept as they are, so validation names them.
    """
    result: dict[str, Any] = {}
    for name, keys in _EXTRA_KEYS.items():
        present = [item[key] for key in keys if item.get(key) not in (None, "")]
        if not present:
            continue
        value = next((v for v in present if v != 0), present[0])
        if name == "time":
            value = _or_unchanged(parse_time, value)
        elif name in _EXTRA_COUNTS:
            value = _or_unchanged(_json_count, value)
        elif name in _EXTRA_FLAGS:
            value = _or_unchanged(_json_flag, value)
        result[name] = value
    return result


def _or_unchanged(convert: Callable[[Any], Any], value: Any) -> Any:
    try:
        return convert(value)
    except ValueError:
        return value


def _json_count(value: Any) -> int:
    """An integer from a JSON number or numeric string; fractions truncate, as in Go."""
    if isinstance(value, bool):
        raise ValueError("not a count")
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            value = float(value)
    if isinstance(value, float):
        if not is_finite(value):
            raise ValueError("not a count")
        return int(value)
    if isinstance(value, int):
        return value
    raise ValueError("not a count")


def _json_flag(value: Any) -> bool:
    """A boolean from JSON true/false, Go's boolean strings, or 0/1."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return go_bool(value.strip())
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError("not a boolean")
