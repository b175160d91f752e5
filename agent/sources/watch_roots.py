"""Which folders the file watcher watches, and why.

A home folder is never watched whole: it holds shell histories, browser profiles,
downloads and caches, none of it coding. Where the configuration names the home folder (or
a folder above it), or names nothing and `agent run` starts there (as a service does),
the watcher takes the code folders found in it instead: folders holding a VCS root
(`.git`, `.hg`, `.svn`) or a `.wakatime-project`, looked for a few levels down, never in a
hidden folder, never in an ignored one (`node_modules`, ...), within a bounded number of
folders. A configured folder that does not exist yet waits, and is watched once it does:
the daemon plans again every `[watch] rescan_interval` seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

CODE_MARKERS = (".git", ".hg", ".svn", ".wakatime-project")
SCAN_DEPTH = 4  # levels below the home folder searched for code folders (~/src/host/org/repo)
SCAN_FOLDERS = 5000  # folders listed at most by one search


@dataclass(frozen=True)
class WatchRoot:
    path: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class WatchPlan:
    roots: tuple[WatchRoot, ...]
    waiting: tuple[str, ...]  # configured folders that do not exist yet
    notes: tuple[str, ...] = ()  # what the plan had to decide (a home folder not watched whole)

    @property
    def paths(self) -> list[str]:
        return [root.path for root in self.roots]


def plan_watch(
    configured: Sequence[str | os.PathLike[str]],
    started_in: str,
    home: str,
    skip_names: Iterable[str] = (),
) -> WatchPlan:
    """The roots to watch for the configured paths (none: the folder `agent run` started in)."""
    home = os.path.abspath(home)
    skip = frozenset(skip_names)
    roots: list[WatchRoot] = []
    waiting: list[str] = []
    notes: list[str] = []
    wanted = [
        (os.path.abspath(os.path.expanduser(os.fspath(p))), "configured in [watch] paths")
        for p in configured
    ] or [(os.path.abspath(started_in), "the folder `agent run` started in")]
    for path, reason in wanted:
        if _is_home_or_above(path, home):
            notes.append(
                f"{path} is {'your home folder' if path == home else 'above your home folder'}:"
                " watching the code folders in your home folder instead"
            )
            roots += [
                WatchRoot(found, f"a code folder in your home folder (holds {marker})")
                for found, marker in find_code_folders(home, skip)
            ]
        elif os.path.isdir(path):
            roots.append(WatchRoot(path, reason))
        else:
            waiting.append(path)
    return WatchPlan(tuple(_distinct(roots)), tuple(dict.fromkeys(waiting)), tuple(notes))


def _is_home_or_above(path: str, home: str) -> bool:
    return home == path or home.startswith(path.rstrip(os.sep) + os.sep)


def _distinct(roots: list[WatchRoot]) -> list[WatchRoot]:
    """Each folder once, and none inside another that is watched (recursive watches)."""
    kept: list[WatchRoot] = []
    for root in sorted(roots, key=lambda r: r.path):
        if not any(
            root.path == k.path or root.path.startswith(k.path.rstrip(os.sep) + os.sep)
            for k in kept
        ):
            kept.append(root)
    return kept


def find_code_folders(
    home: str, skip: frozenset[str] = frozenset(), depth: int = SCAN_DEPTH
) -> list[tuple[str, str]]:
    """(folder, the marker it holds) below home, breadth first: never home itself (a
    dotfiles repository would make it one), hidden or skipped folders, symlinks, or what
    lies inside a code folder already found; at most SCAN_FOLDERS folders are listed."""
    found: list[tuple[str, str]] = []
    level = [home]
    listed = 0
    for _ in range(depth):
        below: list[str] = []
        for folder in level:
            if listed >= SCAN_FOLDERS:
                return found
            listed += 1
            try:
                with os.scandir(folder) as entries:
                    children = [
                        entry.path
                        for entry in entries
                        if not entry.name.startswith(".")
                        and entry.name not in skip
                        and entry.is_dir(follow_symlinks=False)
                    ]
            except OSError:
                continue
            for child in sorted(children):
                marker = next(
                    (m for m in CODE_MARKERS if os.path.lexists(os.path.join(child, m))), None
                )
                if marker is not None:
                    found.append((child, marker))
                else:
                    below.append(child)
        level = below
    return found


def watch_report(plan: WatchPlan | None) -> dict[str, Any]:
    """`agent status`'s account of the watch: each root and why, what waits to exist."""
    return {
        "watch_roots": [root.to_json() for root in plan.roots] if plan else [],
        "watch_waiting": list(plan.waiting) if plan else [],
        "watch_notes": list(plan.notes) if plan else [],
    }
