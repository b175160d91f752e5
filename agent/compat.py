"""The wakatime-cli-compatible command line: flags, stdin extras, heartbeats, exit codes.

Every WakaTime plugin spawns this on each save, so it imports only what Python loads at
startup: no dataclasses, enum, typing or re (together ~15 ms of a ~20 ms budget). The
heartbeats it builds are plain dicts; the daemon validates them, and only the offline
fallback (`build_heartbeats`) imports `agent.heartbeat`. Arguments are read the way
wakatime-cli's Go pflag reads them, except where that breaks plugins (DESIGN §2a): unknown
flags are ignored instead of failing the command, and a bare `--hide-file-names` means "true".
"""

from __future__ import annotations

import os

from agent.ipc.protocol import loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO, TextIO

    from agent.heartbeat import Heartbeat


class ExitCode:
    """wakatime-cli's exit codes (pkg/exitcode), which plugins act on."""

    SUCCESS = 0
    ERR_GENERIC = 1
    # The API could not be reached or failed: the heartbeats were queued offline.
    ERR_API = 102
    ERR_CONFIG_FILE_PARSE = 103
    ERR_AUTH = 104
    # `--config-read` of a key that is empty or missing.
    ERR_CONFIG_FILE_READ = 110
    ERR_CONFIG_FILE_WRITE = 111
    ERR_BACKOFF = 112


# Flag kinds. OPTIONAL is a string flag whose value may be left out (then "true"):
# Sublime sends a bare `--hidefilenames`, which real wakatime-cli rejects.
_BOOL, _STR, _INT, _FLOAT, _LIST, _MAP, _OPTIONAL = (
    "bool",
    "str",
    "int",
    "float",
    "list",
    "map",
    "optional",
)

# (attribute, kind, flag names). Of aliases, the first name with a non-empty value wins,
# as wakatime-cli reads them (`FirstNonEmptyString(v, "entity", "file")`).
_SPECS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("entity", _STR, ("entity", "file")),
    ("entity_type", _STR, ("entity-type",)),
    ("category", _STR, ("category",)),
    ("time", _FLOAT, ("time",)),
    ("write", _BOOL, ("write",)),
    ("is_unsaved_entity", _BOOL, ("is-unsaved-entity",)),
    ("plugin", _STR, ("plugin",)),
    ("lineno", _INT, ("lineno",)),
    ("cursorpos", _INT, ("cursorpos",)),
    ("lines_in_file", _INT, ("lines-in-file",)),
    ("project", _STR, ("project",)),
    ("alternate_project", _STR, ("alternate-project",)),
    ("project_folder", _STR, ("project-folder",)),
    ("language", _STR, ("language",)),
    ("alternate_language", _STR, ("alternate-language",)),
    ("guess_language", _BOOL, ("guess-language",)),
    ("branch", _STR, ("branch",)),
    ("alternate_branch", _STR, ("alternate-branch",)),
    ("local_file", _STR, ("local-file",)),
    ("ai_line_changes", _INT, ("ai-line-changes",)),
    ("human_line_changes", _INT, ("human-line-changes",)),
    ("line_additions", _INT, ("line-additions",)),
    ("line_deletions", _INT, ("line-deletions",)),
    ("extra_heartbeats", _BOOL, ("extra-heartbeats",)),
    ("exclude", _LIST, ("exclude",)),
    ("include", _LIST, ("include",)),
    ("exclude_unknown_project", _BOOL, ("exclude-unknown-project",)),
    ("include_only_with_project_file", _BOOL, ("include-only-with-project-file",)),
    ("hide_file_names", _OPTIONAL, ("hide-file-names", "hide-filenames", "hidefilenames")),
    ("hide_branch_names", _OPTIONAL, ("hide-branch-names",)),
    ("hide_project_names", _OPTIONAL, ("hide-project-names",)),
    ("hide_dependencies", _OPTIONAL, ("hide-dependencies",)),
    ("hide_project_folder", _BOOL, ("hide-project-folder",)),
    ("key", _STR, ("key",)),
    ("api_url", _STR, ("api-url", "apiurl")),
    ("hostname", _STR, ("hostname",)),
    ("timeout", _INT, ("timeout",)),
    ("proxy", _STR, ("proxy",)),
    ("no_ssl_verify", _BOOL, ("no-ssl-verify",)),
    ("ssl_certs_file", _STR, ("ssl-certs-file",)),
    ("config", _STR, ("config",)),
    ("internal_config", _STR, ("internal-config",)),
    ("log_file", _STR, ("log-file", "logfile")),
    ("log_to_stdout", _BOOL, ("log-to-stdout",)),
    ("verbose", _BOOL, ("verbose",)),
    ("disable_offline", _BOOL, ("disable-offline", "disableoffline")),
    ("offline_queue_file", _STR, ("offline-queue-file",)),
    ("offline_queue_file_legacy", _STR, ("offline-queue-file-legacy",)),
    ("heartbeat_rate_limit_seconds", _INT, ("heartbeat-rate-limit-seconds",)),
    ("metrics", _BOOL, ("metrics",)),
    ("send_diagnostics_on_errors", _BOOL, ("send-diagnostics-on-errors",)),
    ("today", _BOOL, ("today",)),
    ("today_hide_categories", _STR, ("today-hide-categories",)),
    ("today_max_categories", _INT, ("today-max-categories",)),
    ("today_goal", _STR, ("today-goal",)),
    ("output", _STR, ("output",)),
    ("offline_count", _BOOL, ("offline-count",)),
    ("print_offline_heartbeats", _INT, ("print-offline-heartbeats",)),
    ("sync_offline_activity", _INT, ("sync-offline-activity",)),
    ("config_read", _STR, ("config-read",)),
    ("config_write", _MAP, ("config-write",)),
    ("config_section", _STR, ("config-section",)),
    ("version", _BOOL, ("version",)),
    ("user_agent", _BOOL, ("user-agent", "useragent")),
    ("file_experts", _BOOL, ("file-experts",)),
    ("sync_ai_activity", _BOOL, ("sync-ai-activity", "sync-ai-heartbeats")),
    ("sync_ai_disabled", _BOOL, ("sync-ai-disabled", "sync-ai-disable")),
    ("sync_ai_after", _STR, ("sync-ai-after",)),
    ("codex_source", _STR, ("codex-source",)),
    ("help", _BOOL, ("help",)),
)
_ATTRIBUTES = tuple(attr for attr, _kind, _names in _SPECS)


class CompatArgs:
    """wakatime-cli's flags after parsing; None means the flag was not given."""

    # The heartbeat.
    entity: str | None
    entity_type: str | None
    category: str | None
    time: float | None
    write: bool | None
    is_unsaved_entity: bool | None
    plugin: str | None
    lineno: int | None
    cursorpos: int | None
    lines_in_file: int | None
    project: str | None
    alternate_project: str | None
    project_folder: str | None
    language: str | None
    alternate_language: str | None
    guess_language: bool | None
    branch: str | None
    alternate_branch: str | None
    local_file: str | None
    ai_line_changes: int | None
    human_line_changes: int | None
    line_additions: int | None
    line_deletions: int | None
    extra_heartbeats: bool | None
    # Filters and privacy.
    exclude: list[str] | None
    include: list[str] | None
    exclude_unknown_project: bool | None
    include_only_with_project_file: bool | None
    hide_file_names: str | None
    hide_branch_names: str | None
    hide_project_names: str | None
    hide_dependencies: str | None
    hide_project_folder: bool | None
    # Server, network, files.
    key: str | None
    api_url: str | None
    hostname: str | None
    timeout: int | None
    proxy: str | None
    no_ssl_verify: bool | None
    ssl_certs_file: str | None
    config: str | None
    internal_config: str | None
    log_file: str | None
    log_to_stdout: bool | None
    verbose: bool | None
    disable_offline: bool | None
    offline_queue_file: str | None
    offline_queue_file_legacy: str | None
    heartbeat_rate_limit_seconds: int | None
    metrics: bool | None
    send_diagnostics_on_errors: bool | None
    # Commands that print something and exit.
    today: bool | None
    today_hide_categories: str | None
    today_max_categories: int | None
    today_goal: str | None
    output: str | None
    offline_count: bool | None
    print_offline_heartbeats: int | None
    sync_offline_activity: int | None
    config_read: str | None
    config_write: dict[str, str] | None
    config_section: str | None
    version: bool | None
    user_agent: bool | None
    file_experts: bool | None
    sync_ai_activity: bool | None
    sync_ai_disabled: bool | None
    sync_ai_after: str | None
    codex_source: str | None
    help: bool | None
    # What was not used, for a debug log line.
    positional: list[str]
    unknown: list[str]
    invalid: list[str]

    __slots__ = (*_ATTRIBUTES, "invalid", "positional", "unknown")

    def __init__(self) -> None:
        for attr in _ATTRIBUTES:
            setattr(self, attr, None)
        self.positional = []
        self.unknown = []
        self.invalid = []

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompatArgs):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        given = {
            attr: getattr(self, attr) for attr in _ATTRIBUTES if getattr(self, attr) is not None
        }
        return f"CompatArgs({given})"


_KIND_OF_FLAG = {name: kind for _attr, kind, names in _SPECS for name in names}
# Cobra's only shorthand; wakatime-cli defines none of its own.
_SHORTHANDS = {"h": "help"}

_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_QUOTES = "\"'"
# Beyond this a `--time` is in milliseconds (1e11 seconds is the year 5138).
_MILLISECONDS_ABOVE = 1e11
# One stdin line larger than this is not a plugin's heartbeat buffer.
MAX_EXTRA_HEARTBEATS_BYTES = 32 * 1024 * 1024


def parse_args(argv: list[str]) -> CompatArgs:
    """Read wakatime-cli's flags from `argv` (without the program name); never raises."""
    args = CompatArgs()
    given: dict[str, Any] = {}
    words = list(argv)
    while words:
        word = words.pop(0)
        if word == "--":
            args.positional.extend(words)
            break
        if len(word) < 2 or not word.startswith("-"):
            args.positional.append(word)
            continue
        if word.startswith("--"):
            name, has_value, inline = word[2:].partition("=")
            if name.startswith("-"):
                name = ""  # pflag: bad flag syntax
        else:
            shorthand, has_value, inline = word[1:].partition("=")
            name = _SHORTHANDS.get(shorthand, "")
        kind = _KIND_OF_FLAG.get(name)
        if kind is None:
            _skip_unknown(word, has_value, words, args)
            continue
        if has_value:
            value: str | None = inline
        elif kind == _BOOL:
            value = "true"
        elif kind == _OPTIONAL:
            value = words.pop(0) if words and not words[0].startswith("-") else "true"
        else:
            value = words.pop(0) if words else None
        if value is None:
            args.invalid.append(f"{word}: flag needs an argument")
            continue
        try:
            _store(given, name, kind, value)
        except ValueError as exc:
            args.invalid.append(f"{word} {value!r}: {exc}")
    for attr, _kind, names in _SPECS:
        values = [given[name] for name in names if name in given]
        if values:
            setattr(args, attr, next((v for v in values if v), values[0]))
    return args


def _skip_unknown(word: str, equals: str, words: list[str], args: CompatArgs) -> None:
    """Ignore an unknown flag as pflag does when unknown flags are allowed.

    wakatime-cli itself fails on them, which breaks a plugin newer than the CLI; pflag's
    allow-list mode drops `--flag value` together, but keeps a word after `--flag=value`
    or before another flag.
    """
    if not equals and words and not words[0].startswith("-"):
        args.unknown.append(f"{word} {words.pop(0)}")
    else:
        args.unknown.append(word)


def _store(given: dict[str, Any], name: str, kind: str, value: str) -> None:
    if kind == _BOOL:
        given[name] = _go_bool(value.strip(_QUOTES))
    elif kind == _INT:
        given[name] = _go_int(value.strip(_QUOTES))
    elif kind == _FLOAT:  # --time is the only one
        given[name] = parse_time(value.strip(_QUOTES))
    elif kind == _LIST:
        items = [item.strip(_QUOTES) for item in _split_csv(value)]
        given[name] = [*given.get(name, []), *items]
    elif kind == _MAP:
        given[name] = {**given.get(name, {}), **_key_values(value)}
    else:
        given[name] = value.strip(_QUOTES)


def _go_bool(text: str) -> bool:
    """Go's strconv.ParseBool, which pflag uses for `--flag=value`."""
    if text in _GO_TRUE:
        return True
    if text in _GO_FALSE:
        return False
    raise ValueError("must be true or false")


def _go_int(text: str) -> int:
    """An integer as pflag reads it (0x, 0o, 0b prefixes), but "010" is ten, not eight."""
    try:
        return int(text, 0)
    except ValueError:
        try:
            return int(text, 10)
        except ValueError:
            raise ValueError("must be an integer") from None


def _split_csv(value: str) -> list[str]:
    """pflag reads a list flag's value as one CSV record: `--exclude "a,b"` is two items."""
    if "," not in value and '"' not in value:
        return [value] if value else []
    import csv  # only here: the common value has no comma and the hot path stays lean

    return next(csv.reader([value]), [])


def _key_values(value: str) -> dict[str, str]:
    """`--config-write key=value` (or several pairs as CSV), as pflag's StringToString."""
    pairs = [value.strip('"')] if value.count("=") == 1 else _split_csv(value)
    if not pairs or any("=" not in pair for pair in pairs):
        raise ValueError("must be formatted as key=value")
    result: dict[str, str] = {}
    for pair in pairs:
        key, _sep, item = pair.partition("=")
        result[key.strip(_QUOTES)] = item.strip(_QUOTES)
    return result


def parse_time(text: str | float) -> float:
    """Seconds since the epoch from what plugins send for a time.

    Integers, floats with 2–6 decimals, and JavaScript's `Date.now() / 1000`; a value in
    milliseconds is divided by 1000. Raises ValueError for anything else.
    """
    if isinstance(text, bool):
        raise ValueError("must be a number of seconds")
    try:
        seconds = float(text.strip(_QUOTES) if isinstance(text, str) else text)
    except (TypeError, ValueError):
        raise ValueError("must be a number of seconds") from None
    if not _is_finite(seconds):
        raise ValueError("must be a finite number of seconds")
    return seconds / 1000 if seconds > _MILLISECONDS_ABOVE else seconds


def _is_finite(number: float) -> bool:
    """math.isfinite without importing math: inf - inf and nan - nan are nan."""
    return number - number == 0


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
        if not _is_finite(value):
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
        return _go_bool(value.strip())
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError("not a boolean")


# CompatArgs attribute → Heartbeat field, for the heartbeat the flags describe.
_MAIN_FIELDS = {
    "entity_type": "type",
    "category": "category",
    "write": "is_write",
    "lineno": "lineno",
    "cursorpos": "cursorpos",
    "lines_in_file": "lines",
    "project": "project",
    "branch": "branch",
    "language": "language",
    "alternate_project": "alternate_project",
    "alternate_branch": "alternate_branch",
    "alternate_language": "alternate_language",
    "project_folder": "project_folder",
    "is_unsaved_entity": "is_unsaved_entity",
    "ai_line_changes": "ai_line_changes",
    "human_line_changes": "human_line_changes",
    "line_additions": "line_additions",
    "line_deletions": "line_deletions",
    "plugin": "user_agent",
}


def heartbeat_dicts(
    args: CompatArgs, extras: list[dict[str, Any]], now: float
) -> list[tuple[str, dict[str, Any]]]:
    """The heartbeat the flags describe, then the extras: (label for logs, fields by
    Heartbeat name).

    Not validated (the daemon or `build_heartbeats` does that, item by item). `--time`
    absent or 0 means `now`, as in wakatime-cli. Extras without a `plugin` of their own
    carry the command's `--plugin`. `<<LAST_PROJECT>>`-style placeholders pass through
    untouched: the server resolves them. File entities are made absolute with symlinks
    resolved (`existing` then leaves out those that do not exist).
    """
    main: dict[str, Any] = {"entity": _expand_home(args.entity), "time": args.time or now}
    for attr, name in _MAIN_FIELDS.items():
        value = getattr(args, attr)
        if value is not None and value != "":
            main[name] = value
    if args.local_file:
        main["local_file"] = args.local_file
    items = [("heartbeat", main)]
    for index, extra in enumerate(extras):
        item = {**extra, "entity": _expand_home(extra.get("entity"))}
        if args.plugin and "user_agent" not in item:
            item["user_agent"] = args.plugin
        items.append((f"extra heartbeat {index}", item))
    for _label, item in items:
        _format_path(item)
    return items


def _format_path(item: dict[str, Any]) -> None:
    """wakatime-cli's formatting, in place: a saved file's entity (and its project folder)
    made absolute against the current folder with symlinks resolved, so detection sees the
    real file. Unsaved buffers, remote `ssh://` files and other entities stay as sent."""
    entity = item.get("entity")
    if not _is_local_saved_file(item) or not isinstance(entity, str):
        return
    item["entity"] = os.path.realpath(entity)
    folder = item.get("project_folder")
    if isinstance(folder, str) and folder:
        item["project_folder"] = os.path.realpath(_expand_home(folder))


def _is_local_saved_file(item: dict[str, Any]) -> bool:
    entity = item.get("entity")
    return (
        item.get("type", "file") == "file"
        and isinstance(entity, str)
        and bool(entity)
        and item.get("is_unsaved_entity") is not True
        and "://" not in entity
    )


def existing(
    items: list[tuple[str, dict[str, Any]]],
) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """wakatime-cli's file filter: heartbeats for saved files that do not exist (checked at
    `--local-file` when given) are left out; (kept, labels left out)."""
    kept: list[tuple[str, dict[str, Any]]] = []
    missing: list[str] = []
    for label, item in items:
        local = item.pop("local_file", None)
        if _is_local_saved_file(item):
            path = local if isinstance(local, str) and local else item["entity"]
            if not os.path.exists(path):
                missing.append(f"{label}: {path}")
                continue
        kept.append((label, item))
    return kept, missing


def privacy_flags(args: CompatArgs) -> dict[str, Any]:
    """The filter and privacy flags given (agent.privacy names them), for the daemon to
    merge with ~/.wakatime.cfg's as wakatime-cli does."""
    flags: dict[str, Any] = {}
    for name in (
        "exclude",
        "include",
        "hide_file_names",
        "hide_project_names",
        "hide_branch_names",
    ):
        if value := getattr(args, name):
            flags[name] = value
    for name in ("exclude_unknown_project", "include_only_with_project_file"):
        if getattr(args, name):
            flags[name] = True
    return flags


def build_heartbeats(
    items: list[tuple[str, dict[str, Any]]], privacy: dict[str, Any] | None = None
) -> tuple[list[Heartbeat], list[str]]:
    """`heartbeat_dicts` validated into Heartbeats carrying the plugin's `privacy` flags,
    for the offline fallback.

    A heartbeat that fails validation is left out with a problem line; the rest count.
    """
    from agent.heartbeat import Heartbeat, HeartbeatError

    heartbeats: list[Heartbeat] = []
    problems: list[str] = []
    for label, item in items:
        try:
            heartbeat = Heartbeat.from_mapping(item)
        except HeartbeatError as exc:
            problems.append(f"{label}: {exc}")
            continue
        heartbeat.privacy = privacy or None
        heartbeats.append(heartbeat)
    return heartbeats, problems


def _expand_home(entity: Any) -> Any:
    """`~` and `~/…` become the home folder, as wakatime-cli's homedir.Expand does."""
    if isinstance(entity, str) and (entity == "~" or entity.startswith(("~/", "~" + os.sep))):
        return os.path.expanduser(entity)
    return entity


def is_wakatime_cli_name(argv0: str) -> bool:
    """True when run as `wakatime-cli` or `wakatime-cli-<os>-<arch>` (`.exe` or not).

    Under that name `--version` answers `<local-build>`, which stops plugins from
    replacing this program with a downloaded wakatime-cli.
    """
    name = argv0.replace("\\", "/").rsplit("/", 1)[-1].lower()
    name = name.removesuffix(".exe")
    if name == "wakatime-cli":
        return True
    parts = name.split("-")
    return (
        len(parts) == 4
        and name.startswith("wakatime-cli-")
        and all(part and _is_platform_word(part) for part in parts[2:])
    )


def _is_platform_word(word: str) -> bool:
    return all(ch.isdigit() or "a" <= ch <= "z" or ch == "_" for ch in word)
