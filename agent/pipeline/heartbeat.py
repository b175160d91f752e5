"""The Heartbeat record: one moment of activity on one entity, as the WakaTime API names it.

Standard library only: the plugin fast path and the IPC protocol validate with it.
Every source (watcher, socket, compat command) produces these; the store keeps them as
their API JSON, so what is delivered is exactly what was acknowledged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

ENTITY_TYPES = ("file", "app", "domain", "url", "event")
CATEGORIES = (
    "coding",
    "building",
    "indexing",
    "debugging",
    "browsing",
    "running tests",
    "writing tests",
    "manual testing",
    "writing docs",
    "code reviewing",
    "communicating",
    "researching",
    "learning",
    "designing",
    "ai coding",
    "notes",
    "meeting",
    "planning",
    "supporting",
    "translating",
    "advising",
)
MAX_TEXT = 4096
# Times before 2000 or far in the future are a client's bug, not activity.
MIN_TIME = 946_684_800.0
MAX_TIME = 4_102_444_800.0
# What servers accept (WakaTime; Wakapi at most this far ahead too): heartbeats outside it
# are refused at the door, not acknowledged and then rejected by the server for ever.
MAX_AHEAD = 3600.0
MAX_AGE = 365 * 86400.0


class HeartbeatError(ValueError):
    """A heartbeat that cannot be accepted; `problems` names each field at fault."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


@dataclass(slots=True)
class Heartbeat:
    """A heartbeat with the API's field names; None means "not known"."""

    entity: str
    time: float
    type: str = "file"
    category: str = "coding"
    is_write: bool = False
    project: str | None = None
    branch: str | None = None
    language: str | None = None
    dependencies: list[str] | None = None
    lines: int | None = None
    lineno: int | None = None
    cursorpos: int | None = None
    is_debugging: bool | None = None
    is_unsaved_entity: bool | None = None
    project_root_count: int | None = None
    line_additions: int | None = None
    line_deletions: int | None = None
    ai_line_changes: int | None = None
    human_line_changes: int | None = None
    # An AI tool's session facts, as wakatime-cli 2.x sends them from transcripts.
    ai_session: str | None = None
    ai_input_tokens: int | None = None
    ai_output_tokens: int | None = None
    ai_prompt_length: int | None = None
    ai_subscription_plan: str | None = None
    # The editor's user agent (`vim/9.0 vim-wakatime/11.0`); servers read editor and OS from it.
    user_agent: str | None = None
    # Hints that only shape detection: used where detection finds nothing, never sent.
    alternate_project: str | None = field(default=None, metadata={"local": True})
    alternate_branch: str | None = field(default=None, metadata={"local": True})
    alternate_language: str | None = field(default=None, metadata={"local": True})
    project_folder: str | None = field(default=None, metadata={"local": True})
    # A plugin's privacy flags (`--exclude`, `--hide-file-names`, …: agent.pipeline.privacy), which
    # the builder merges with ~/.wakatime.cfg's; set by the daemon from the request.
    privacy: dict[str, Any] | None = field(default=None, metadata={"local": True})
    # The destination a plugin named with its own server (`--api-url`), in the default's
    # place (agent.pipeline.destinations.plugin_server); set by the daemon from the request.
    server: str | None = field(default=None, metadata={"local": True})

    def to_api(self) -> dict[str, Any]:
        """The JSON object the heartbeats endpoints take (unknown fields left out)."""
        return {name: value for name in _API_FIELDS if (value := getattr(self, name)) is not None}

    def to_dict(self) -> dict[str, Any]:
        """Every known field, the local hints included: the whole record, for inspection."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_mapping(cls, data: Any) -> Heartbeat:
        """Validate untrusted input (a plugin's JSON, a stored row) into a Heartbeat.

        Unknown keys are ignored; `plugin` is an alias of `user_agent`. Raises
        HeartbeatError naming every field at fault.
        """
        if not isinstance(data, Mapping):
            raise HeartbeatError({"heartbeat": "must be a JSON object"})
        problems: dict[str, str] = {}
        values: dict[str, Any] = {}
        # Only the keys sent are looked at: a plugin sends a few of the two dozen fields.
        for key, value in data.items():
            if value is None or (check := _CHECKS.get(key)) is None:
                continue
            name = _ALIASES.get(key, key)
            if name is not key and name in data:
                continue  # the field under its own name wins over its alias
            try:
                values[name] = check(value)
            except (TypeError, ValueError) as exc:
                problems[name] = str(exc)
        if "entity" not in values or "time" not in values:
            for required in ("entity", "time"):
                if required not in values and required not in problems:
                    problems[required] = "is required"
        if problems:
            raise HeartbeatError({name: problems[name] for name in _FIELDS if name in problems})
        return cls(**values)


_FIELDS = tuple(f.name for f in fields(Heartbeat))
# The fields sent to servers (the hints marked local are not), in declaration order.
_API_FIELDS = tuple(f.name for f in fields(Heartbeat) if not f.metadata.get("local"))
_ALIASES = {"plugin": "user_agent"}


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"must be a string, not {_kind(value)}")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if len(value) > MAX_TEXT:
        raise ValueError(f"must be at most {MAX_TEXT} characters")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:  # a lone surrogate: SQLite would refuse the whole commit
            raise ValueError("must be valid Unicode text") from None
    return value


def _entity(value: Any) -> str:
    value = _text(value)
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _choice(options: tuple[str, ...]) -> Any:
    def check(value: Any) -> str:
        value = _text(value)
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return check


def _time(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"must be a number of seconds since the epoch, not {_kind(value)}")
    value = float(value)
    if not math.isfinite(value) or not MIN_TIME <= value <= MAX_TIME:
        raise ValueError("must be a UNIX time in seconds between 2000 and 2100")
    return value


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"must be an integer, not {_kind(value)}")
    if not -(2**31) <= value < 2**31:
        raise ValueError("is out of range")
    return value


def _tokens(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"must be an integer, not {_kind(value)}")
    if not 0 <= value < 2**53:
        raise ValueError("must be a count of tokens, 0 or more")
    return value


def _position(value: Any) -> int:
    """A line, a cursor position, a count: never negative (servers refuse it)."""
    value = _count(value)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def timeliness_problems(hb: Heartbeat, now: float) -> dict[str, str]:
    """The heartbeat's time against what servers accept, by the clock of this machine."""
    if hb.time > now + MAX_AHEAD:
        return {"time": "is more than an hour ahead of this machine's clock"}
    if hb.time < now - MAX_AGE:
        return {"time": "is more than a year old; servers refuse it"}
    return {}


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"must be true or false, not {_kind(value)}")
    return value


def _dependencies(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part]
    if not isinstance(value, list):
        raise TypeError(f"must be a list of strings, not {_kind(value)}")
    if len(value) > 1000:
        raise ValueError("must have at most 1000 items")
    return [_text(item) for item in value]


def _kind(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }.get(type(value), type(value).__name__)


_CHECKS: dict[str, Any] = {
    "entity": _entity,
    "time": _time,
    "type": _choice(ENTITY_TYPES),
    "category": _choice(CATEGORIES),
    "is_write": _flag,
    "is_debugging": _flag,
    "is_unsaved_entity": _flag,
    "dependencies": _dependencies,
    **dict.fromkeys(
        ("lines", "lineno", "cursorpos", "project_root_count", "ai_prompt_length"), _position
    ),
    **dict.fromkeys(
        (
            "line_additions",
            "line_deletions",
            "ai_line_changes",
            "human_line_changes",
        ),
        _count,
    ),
    **dict.fromkeys(("ai_input_tokens", "ai_output_tokens"), _tokens),
    **dict.fromkeys(
        (
            "project",
            "branch",
            "language",
            "user_agent",
            "ai_session",
            "ai_subscription_plan",
            "alternate_project",
            "alternate_branch",
            "alternate_language",
            "project_folder",
        ),
        _text,
    ),
}
_CHECKS["plugin"] = _CHECKS["user_agent"]
