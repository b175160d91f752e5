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


def parse(text: str) -> dict[str, dict[str, str]]:
    """Sections → {key: value}. Keys keep their case (the `[api_urls]` keys are regexes)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if match := _SECTION.match(line):
            current = sections.setdefault(match["name"].strip(), {})
        elif current is not None and (match := _ENTRY.match(line)):
            current[match["key"]] = match["value"]
    return sections


def load(path: Path | None = None) -> dict[str, dict[str, str]]:
    """The parsed file, or {} when it does not exist or cannot be read."""
    try:
        return parse((path or default_path()).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return {}


def read_value(key: str, section: str = "settings", path: Path | None = None) -> str:
    """One value, or "" when absent."""
    return load(path).get(section, {}).get(key, "")


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
