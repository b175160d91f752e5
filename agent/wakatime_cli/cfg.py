"""The user's existing `~/.wakatime.cfg` (INI), read and edited the way wakatime-cli does.

Standard library only: the compat command's `--config-read`/`--config-write` use it.
Edits keep every other line, comment and section exactly as they were.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*$")
_ENTRY = re.compile(r"^\s*(?P<key>[^=:#;\s][^=:]*?)\s*[=:]\s?(?P<value>.*?)\s*$")


def default_path() -> Path:
    """`$WAKATIME_HOME/.wakatime.cfg`, else `~/.wakatime.cfg`."""
    home = os.environ.get("WAKATIME_HOME")
    base = Path(home).expanduser() if home else Path.home()
    return base / ".wakatime.cfg"


def signature(path: Path | None = None) -> tuple[int, int, int] | None:
    """Changes whenever the file is written, replaced or removed."""
    try:
        stat = (path or default_path()).stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


class CfgError(ValueError):
    """A line of the file that is neither a section, a `key = value` nor a comment."""


def parse(text: str) -> dict[str, dict[str, str]]:
    """Sections → {key: value}; lines that cannot be read are left out (see `parse_checked`)."""
    return parse_checked(text)[0]


def parse_checked(text: str) -> tuple[dict[str, dict[str, str]], list[tuple[int, str]]]:
    """Sections → {key: value}, and the (line number, line) of each line that is not INI.

    As wakatime-cli's INI reader (go-ini with Python multi-line values): section and key
    names are case-insensitive (kept lower-case for sections; keys keep their case, the
    `[api_urls]` and `[projectmap]` keys being regexes), and an indented line continues
    the value above it, joined with a newline (`exclude =` then one pattern a line).
    """
    sections: dict[str, dict[str, str]] = {}
    garbled: list[tuple[int, str]] = []
    current: dict[str, str] | None = None
    last_key: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if current is not None and last_key is not None and line[0] in " \t":
            previous = current[last_key]
            current[last_key] = f"{previous}\n{stripped}" if previous else stripped
        elif match := _SECTION.match(line):
            current = sections.setdefault(match["name"].strip().lower(), {})
            last_key = None
        elif current is not None and (match := _ENTRY.match(line)):
            last_key = match["key"]
            current[last_key] = match["value"]
        else:
            garbled.append((number, stripped))
    return sections, garbled


def unquoted(value: str) -> str:
    """A value without the quotes around it, as wakatime-cli reads every string setting
    (`api_key = "…"` and `'…'` mean the key itself)."""
    return value.strip().strip("\"'")


def setting(sections: dict[str, dict[str, str]], section: str, *keys: str) -> str:
    """The first non-empty of `keys` in `section` (names compared case-insensitively),
    unquoted; "" when none is set."""
    found = {key.lower(): value for key, value in sections.get(section, {}).items()}
    for key in keys:
        if value := unquoted(found.get(key, "")):
            return value
    return ""


def load(path: Path | None = None) -> dict[str, dict[str, str]]:
    """The parsed file, or {} when it does not exist or cannot be read."""
    try:
        return parse((path or default_path()).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return {}


def load_checked(path: Path | None = None) -> dict[str, dict[str, str]]:
    """The parsed file ({} when absent); raises CfgError naming the file and the first line
    that is not INI (wakatime-cli refuses such a file whole: exit 103)."""
    path = path or default_path()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CfgError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    sections, garbled = parse_checked(text)
    if garbled:
        number, line = garbled[0]
        more = f" (and {len(garbled) - 1} more)" if len(garbled) > 1 else ""
        raise CfgError(
            f"{path}, line {number}: {line[:80]!r} is not `key = value`, a [section]"
            f" or a comment{more}"
        )
    return sections


def read_value(key: str, section: str = "settings", path: Path | None = None) -> str:
    """One value, unquoted, or "" when absent."""
    return setting(load(path), section.lower(), key.lower())


def write_value(key: str, value: str, section: str = "settings", path: Path | None = None) -> None:
    """Set `key = value` in `section`, keeping all other lines; creates what is missing."""
    path = path or default_path()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    entry = f"{key} = {value}"
    current = None
    last_in_section = None
    for index, line in enumerate(lines):
        if match := _SECTION.match(line):
            current = match["name"].strip()
            if current == section:
                last_in_section = index
            continue
        if current != section or not line.strip() or line.strip()[0] in "#;":
            continue
        last_in_section = index
        match = _ENTRY.match(line)
        if match and match["key"] == key:
            lines[index] = entry
            break
    else:
        if last_in_section is None:
            if lines and lines[-1].strip():
                lines.append("")
            lines += [f"[{section}]", entry]
        else:
            lines.insert(last_in_section + 1, entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class CfgWatch:
    """~/.wakatime.cfg as a running daemon read it: whether it changed since (one stat: a
    key or URL a plugin wrote there is taken without a SIGHUP), and what is wrong with its
    lines (for `agent status` and the plugins' answers)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.read_as = signature(path)
        self.problem: str | None = None

    def changed(self) -> bool:
        """True once for each change since the last read."""
        now = signature(self.path)
        if now == self.read_as:
            return False
        self.read_as = now
        return True

    def read(self) -> str | None:
        """Mark the file read now and check its lines; the problem, if it is a new one."""
        self.read_as = signature(self.path)
        try:
            load_checked(self.path)
        except CfgError as exc:
            new = str(exc) if str(exc) != self.problem else None
            self.problem = str(exc)
            return new
        self.problem = None
        return None
