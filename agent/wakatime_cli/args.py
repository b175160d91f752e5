"""wakatime-cli's flags, read the way its Go pflag reads them, except where that breaks plugins
(DESIGN §2a): unknown flags are ignored instead of failing the command, and a bare
`--hide-file-names` means "true".

Every WakaTime plugin spawns the compat command on each save, so this package imports only
what Python loads at startup: no dataclasses, enum, typing or re (together ~15 ms of a
~20 ms budget). Heartbeats are plain dicts here; the daemon validates them, and only the
offline fallback (`heartbeats.build_heartbeats`) imports `agent.pipeline.heartbeat`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


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
        given[name] = go_bool(value.strip(_QUOTES))
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


def go_bool(text: str) -> bool:
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
    if not is_finite(seconds):
        raise ValueError("must be a finite number of seconds")
    return seconds / 1000 if seconds > _MILLISECONDS_ABOVE else seconds


def is_finite(number: float) -> bool:
    """math.isfinite without importing math: inf - inf and nan - nan are nan."""
    return number - number == 0


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
