"""Which project a folder belongs to: `.wakatime-project`, the user's project map, version control.

wakatime-cli's order: a `.wakatime-project` anywhere up the tree wins (line 1 the project,
line 2 an optional branch; an empty file means the folder's name, an empty first line defers
the name to version control), then the project map, then the nearest repository. Folder
lookups are cached per folder and reuse the parent's answer, so a new file in a known tree
costs a few stats; entries expire after a short time so new markers are noticed.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from agent.pipeline.detect.cache import LRU
from agent.pipeline.detect.vcs import Repository, repository_at

log = logging.getLogger(__name__)

PROJECT_FILE = ".wakatime-project"


@dataclass(frozen=True)
class ProjectFile:
    """A `.wakatime-project` file: where it is and what it says."""

    folder: str
    project: str | None  # None: an empty first line, the name comes from version control
    branch: str | None


@dataclass(frozen=True)
class FolderInfo:
    """What surrounds a folder: the nearest project file and the nearest repository."""

    project_file: ProjectFile | None
    repository: Repository | None


def read_project_file(folder: str) -> ProjectFile | None:
    path = os.path.join(folder, PROJECT_FILE)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [f.readline(), f.readline()]
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as error:
        log.debug("cannot read %s: %s", path, error)
        return None
    if not lines[0]:  # empty file: the folder's name
        return ProjectFile(folder, os.path.basename(folder), None)
    return ProjectFile(folder, lines[0].strip() or None, lines[1].strip() or None)


class FolderResolver:
    """Cached FolderInfo per folder, each built from its own markers and its parent's info."""

    def __init__(self, capacity: int, ttl: float, clock: Callable[[], float]) -> None:
        self._cache: LRU[str, tuple[float, FolderInfo]] = LRU(capacity)
        self._ttl = ttl
        self._clock = clock

    def info(self, folder: str) -> FolderInfo:
        now = self._clock()
        pending: list[str] = []
        info = FolderInfo(None, None)
        current = folder
        while True:
            cached = self._cache.get(current)
            if cached is not None and cached[0] > now:
                info = cached[1]
                break
            pending.append(current)
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
        for path in reversed(pending):
            info = FolderInfo(
                read_project_file(path) or info.project_file,
                repository_at(path) or info.repository,
            )
            self._cache.put(path, (now + self._ttl, info))
        return info

    def fresh(self, folder: str) -> FolderInfo | None:
        """The folder's cached info while it has not expired, without looking at the disk."""
        cached = self._cache.get(folder)
        return cached[1] if cached is not None and cached[0] > self._clock() else None

    def clear(self) -> None:
        self._cache.clear()


class ProjectMap:
    """The user's `[projects]` map: path regex → name, `{0}`-style captures filled in.

    Patterns are searched in the file's path in order, the first match wins (wakatime-cli's
    [projectmap]); an invalid pattern is logged once and left out.
    """

    def __init__(self, entries: tuple[tuple[str, str], ...]) -> None:
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        for pattern, name in entries:
            try:
                self._patterns.append((re.compile(pattern), name))
            except re.error as error:
                log.warning("project map pattern %r is not a regex: %s", pattern, error)

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def match(self, path: str) -> str | None:
        for pattern, name in self._patterns:
            found = pattern.search(path)
            if found is None:
                continue
            groups = [group or "" for group in found.groups()]
            try:
                return name.format(*groups).strip() or None
            except (IndexError, KeyError, ValueError) as error:
                log.warning("project map name %r does not fit %r: %s", name, pattern.pattern, error)
        return None


_ADJECTIVES = (
    "amber", "brave", "calm", "clever", "coral", "crisp", "dusty", "eager", "fuzzy", "gentle",
    "golden", "hazy", "humble", "icy", "jolly", "keen", "lucky", "mellow", "misty", "nimble",
    "olive", "quiet", "rapid", "rustic", "silver", "sleepy", "snowy", "sunny", "swift", "tidy",
    "velvet", "witty",
)  # fmt: skip
_NOUNS = (
    "anchor", "badger", "canyon", "cedar", "comet", "delta", "ember", "falcon", "fjord", "garden",
    "glacier", "harbor", "heron", "island", "lantern", "maple", "meadow", "nebula", "orchard",
    "otter", "pebble", "prairie", "quartz", "reef", "river", "spruce", "summit", "thistle",
    "tundra", "valley", "willow", "zephyr",
)  # fmt: skip


def obfuscated_name(root: str) -> str:
    """A stable stand-in for a project's name, derived from its folder (`Quiet Harbor 42`).

    wakatime-cli invents a random name and writes it into a `.wakatime-project` in the user's
    tree; we derive it instead, so nothing is written into watched folders and the name stays
    the same across restarts. Only the folder path feeds the hash, never the real name.
    """
    import hashlib

    digest = hashlib.sha256(os.fsencode(root)).digest()
    adjective = _ADJECTIVES[digest[0] % len(_ADJECTIVES)]
    noun = _NOUNS[digest[1] % len(_NOUNS)]
    number = int.from_bytes(digest[2:4], "big") % 100
    return f"{adjective.title()} {noun.title()} {number}"


def project_root_count(folder: str) -> int:
    """How deep a project folder is, as wakatime-cli counts it: slashes, with a trailing one."""
    folder = folder.replace("\\", "/")
    return folder.count("/") + (0 if folder.endswith("/") else 1)
