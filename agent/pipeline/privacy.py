"""wakatime-cli's filters and privacy rules, in one place for every heartbeat.

The settings come from `~/.wakatime.cfg` (`[settings]` exclude, include, hide_file_names,
hide_project_names, hide_branch_names, exclude_unknown_project,
include_only_with_project_file), the agent's own `[heartbeats]` switches, and a plugin's
flags (`--exclude`, `--hide-file-names`, …), merged as wakatime-cli v1.90 merges them
(cmd/params): a flag's value comes before the file's, exclude and include lists add up.
The builder applies them to every heartbeat, watcher's and plugin's alike.

Standard library only: the compat command's no-daemon path uses it too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

Patterns = tuple[re.Pattern[str], ...]
_MATCH_ALL: Patterns = (re.compile(".*"),)
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})

# The flags a plugin may send with its heartbeats (IPC `privacy`), by wakatime-cli's names.
FLAG_LISTS = ("exclude", "include")
FLAG_SWITCHES = ("exclude_unknown_project", "include_only_with_project_file")
FLAG_HIDES = ("hide_file_names", "hide_project_names", "hide_branch_names")
# Each hide setting under the names wakatime-cli reads it in ~/.wakatime.cfg.
_CFG_HIDE_NAMES = {
    "hide_file_names": ("hide_file_names", "hide_filenames", "hidefilenames"),
    "hide_project_names": ("hide_project_names", "hide_projectnames", "hideprojectnames"),
    "hide_branch_names": ("hide_branch_names", "hide_branchnames", "hidebranchnames"),
}


class Privacy:
    """What to drop and what to hide. A hide rule is None when unset, () when "false"
    (they differ: an unset branch rule lets the file and project rules hide the branch)."""

    __slots__ = (
        "exclude",
        "exclude_unknown_project",
        "hide_branch_names",
        "hide_file_names",
        "hide_project_names",
        "include",
        "include_only_with_project_file",
    )

    def __init__(
        self,
        exclude: Patterns = (),
        include: Patterns = (),
        hide_file_names: Patterns | None = None,
        hide_project_names: Patterns | None = None,
        hide_branch_names: Patterns | None = None,
        exclude_unknown_project: bool = False,
        include_only_with_project_file: bool = False,
    ) -> None:
        self.exclude = exclude
        self.include = include
        self.hide_file_names = hide_file_names
        self.hide_project_names = hide_project_names
        self.hide_branch_names = hide_branch_names
        self.exclude_unknown_project = exclude_unknown_project
        self.include_only_with_project_file = include_only_with_project_file

    def excludes(self, entity: str) -> bool:
        """`exclude` matches and no `include` does (include wins, as in wakatime-cli)."""
        if not entity or any(p.search(entity) for p in self.include):
            return False
        return any(p.search(entity) for p in self.exclude)

    def hides_project_of(self, folder: str) -> bool:
        """Whether a project detected in `folder` gets an invented name instead of its own."""
        return _matches(self.hide_project_names, folder)

    def sanitize(self, hb: Any) -> None:
        """wakatime-cli's sanitizer, in place on a Heartbeat: a hidden file name becomes
        `HIDDEN.<ext>`; a hidden file or project loses what could tell it (lines, cursor,
        dependencies) and its branch unless a branch rule says otherwise."""
        if not hb.dependencies:
            hb.dependencies = None
        if _matches(self.hide_file_names, hb.entity):
            hb.entity = "HIDDEN" + (_extension(hb.entity) if hb.type == "file" else "")
            self._strip(hb)
        elif _matches(self.hide_project_names, hb.project or ""):
            self._strip(hb)
        elif hb.branch is not None and _matches(self.hide_branch_names, hb.branch):
            hb.branch = None

    def _strip(self, hb: Any) -> None:
        hb.cursorpos = hb.dependencies = hb.lineno = hb.lines = hb.project_root_count = None
        rule = self.hide_branch_names
        if hb.branch is not None and (rule is None or _matches(rule, hb.branch)):
            hb.branch = None


def _matches(patterns: Patterns | None, subject: str) -> bool:
    return bool(patterns) and any(p.search(subject) for p in patterns or ())


def _extension(entity: str) -> str:
    """Go's filepath.Ext: from the last dot of the last path element (`.bashrc` included)."""
    base = entity.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    return base[dot:] if dot >= 0 else ""


def bool_or_regexes(value: str, where: str) -> Patterns | None:
    """wakatime-cli's bool-or-regex-list (the hide settings, `[git] submodules_disabled`):
    "true", "false", or regexes one a line (case-sensitive, as there); None when empty.
    A regex that does not compile is logged and left out."""
    text = value.replace("\r", "\n").strip("\n\t ")
    if not text:
        return None
    if text.lower() == "true":
        return _MATCH_ALL
    if text.lower() == "false":
        return ()
    return _compiled((line.strip() for line in text.split("\n")), 0, where)


def path_patterns(values: Sequence[str], where: str) -> Patterns:
    """Exclude/include regexes: case-insensitive, searched anywhere in the path."""
    return _compiled(values, re.IGNORECASE, where)


def _compiled(values: Any, flags: int, where: str) -> Patterns:
    found = []
    for value in values:
        if not value:
            continue
        try:
            found.append(re.compile(value, flags))
        except re.error as exc:
            log.warning("%s: regular expression %r skipped: %s", where, value, exc)
    return tuple(found)


def _cfg_bool(value: str) -> bool:
    return value.strip().strip("\"'") in _GO_TRUE


def privacy_rules(
    cfg: Mapping[str, str],
    own: Mapping[str, bool] | None = None,
    flags: Mapping[str, Any] | None = None,
    where: str = "~/.wakatime.cfg",
) -> Privacy:
    """The rules from ~/.wakatime.cfg's `[settings]` (`cfg`, keys lower-case), the agent's
    `[heartbeats]` switches (`own`: a true one always hides) and a plugin's `flags`."""
    own = own or {}
    flags = flags or {}
    cfg = {key.lower(): value for key, value in cfg.items()}

    def listed(name: str, *cfg_names: str) -> Patterns:
        values = [str(item) for item in flags.get(name) or ()]
        for cfg_name in cfg_names:  # viper reads a list setting as whitespace-separated words
            values += cfg.get(cfg_name, "").split()
        return path_patterns(values, f"{where}: {name}")

    def switch(name: str) -> bool:
        return bool(flags.get(name)) or _cfg_bool(cfg.get(name, "")) or bool(own.get(name))

    hides: dict[str, Patterns | None] = {}
    for name, cfg_names in _CFG_HIDE_NAMES.items():
        if own.get(name):
            hides[name] = _MATCH_ALL
            continue
        given = str(flags.get(name) or "").strip("\"'")
        given = given or next(
            (v for n in cfg_names if (v := cfg.get(n, "").strip().strip("\"'"))), ""
        )
        hides[name] = bool_or_regexes(given, f"{where}: {name}")
    return Privacy(
        exclude=listed("exclude", "exclude", "ignore"),
        include=listed("include", "include"),
        exclude_unknown_project=switch("exclude_unknown_project"),
        include_only_with_project_file=switch("include_only_with_project_file"),
        **hides,
    )


def flags_problem(flags: Any) -> str | None:
    """What is wrong with a plugin's `privacy` object (IPC), or None."""
    if not isinstance(flags, dict):
        return "privacy: must be an object"
    for key, value in flags.items():
        if key in FLAG_LISTS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return f"privacy.{key}: must be a list of strings"
        elif key in FLAG_SWITCHES:
            if not isinstance(value, bool):
                return f"privacy.{key}: must be true or false"
        elif key in FLAG_HIDES:
            if not isinstance(value, str):
                return f"privacy.{key}: must be a string (true, false or regexes)"
        else:
            return f"privacy.{key}: unknown rule"
    return None


class RulesCache:
    """The rules for each distinct set of plugin flags, built once (a plugin sends the same
    flags on every call); `base` is the rules without flags."""

    def __init__(self, build: Callable[[Mapping[str, Any] | None], Privacy]) -> None:
        self._build = build
        self.base = build(None)
        self._by_flags: dict[str, Privacy] = {}

    def get(self, flags: Mapping[str, Any] | None) -> Privacy:
        if not flags:
            return self.base
        key = repr(sorted(flags.items()))
        found = self._by_flags.get(key)
        if found is None:
            if len(self._by_flags) > 64:
                self._by_flags.clear()
            found = self._by_flags[key] = self._build(flags)
        return found
