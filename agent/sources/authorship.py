"""Who wrote a file: a person, a version-control operation, or a tool. Pure: no I/O, no clock.

The watcher sees writes, not writers; these signals tell them apart (measured on real tools,
figures in BENCHMARKS.md):

* **VCS operations.** git writes the working tree only while it holds ``.git/index.lock``
  (checkout, switch, pull, merge, rebase, reset, stash: the lock file is created before the
  first file and renamed to ``index`` or deleted after the last), and moves ``HEAD`` or
  ``ORIG_HEAD`` when the operation changes the checked-out commit. Mercurial holds
  ``.hg/wlock`` the same way. A write between the lock's creation and its removal is the
  operation's; so is one within ``vcs_grace`` after an operation that moved a ref (a hook, the
  ref's own update). The watcher reports these events in the order the kernel saw them, so a
  save the person made just before ``git status`` took the lock is still theirs. A lock left
  behind by a crashed git covers at most ``vcs_max_open`` seconds.
* **Tool runs.** A person saves one file at a time, seconds apart; formatters, linters with
  --fix, codemods, generators and package managers write many files at a machine's pace. When
  one project sees ``tool_files`` distinct files written within less than ``tool_window``
  seconds, those writes and every one that follows within ``tool_window`` of the previous are a
  tool run.
* **Package managers.** Nobody edits a lock file by hand: a manifest (``package.json``,
  ``Cargo.toml``, …) written within ``PAIR_WINDOW`` seconds of a lock file in its folder was
  written by the package manager too, even alone (``npm install pkg``); and a manifest written
  with any other file within ``tool_window`` is a generator's (``cargo new``, ``npm init``).

The policy asks at two moments: when a write arrives (``write``: an operation already under
way takes it at once) and when a held write is about to become an activity (``covering``: an
operation detected since, e.g. a tool run whose third file came later, takes it back).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from enum import StrEnum

from agent.sources.ignore import TOOL_WRITTEN_NAMES

PAIR_WINDOW = 5.0  # seconds between a manifest and its lock file written by one install
OPERATIONS_KEPT = 4  # per project: recent operations a held write may still be checked against


class Writer(StrEnum):
    """Who wrote a file; only a person's writes become heartbeats."""

    PERSON = "person"
    VCS = "vcs"
    TOOL = "tool"
    PLUGIN = "plugin"  # a plugin reported the same save; its heartbeat is the one kept


class Signal(StrEnum):
    """Writes outside the files a person edits that tell who writes the rest."""

    VCS_LOCK = "vcs-lock"
    VCS_UNLOCK = "vcs-unlock"
    VCS_REF = "vcs-ref"
    LOCK_FILE = "lock-file"


# The lock file each VCS holds while it writes the working tree, by its metadata folder.
VCS_LOCKS = {".git": "index.lock", ".hg": "wlock"}
# Files in .git whose change means the checked-out commit moved.
VCS_REFS = frozenset({"HEAD", "ORIG_HEAD"})
# Manifests package managers rewrite beside their lock files (TOOL_WRITTEN_NAMES).
MANIFESTS = frozenset(
    {
        "package.json",
        "Cargo.toml",
        "pyproject.toml",
        "Pipfile",
        "go.mod",
        "Gemfile",
        "composer.json",
    }
)


def signals_of(removed: str | None, written: str | None) -> list[tuple[Signal, str]]:
    """What one watcher event says about who is writing: ``(signal, where)`` pairs, where being
    the repository for a VCS signal and the file for a lock file."""
    signals = []
    if removed is not None:
        meta, name = os.path.split(removed)
        if VCS_LOCKS.get(os.path.basename(meta)) == name:
            signals.append((Signal.VCS_UNLOCK, os.path.dirname(meta)))
    if written is not None:
        meta, name = os.path.split(written)
        vcs = os.path.basename(meta)
        if VCS_LOCKS.get(vcs) == name:
            signals.append((Signal.VCS_LOCK, os.path.dirname(meta)))
        elif vcs == ".git" and name in VCS_REFS:
            signals.append((Signal.VCS_REF, os.path.dirname(meta)))
        elif name in TOOL_WRITTEN_NAMES:
            signals.append((Signal.LOCK_FILE, written))
    return signals


def is_signal_path(path: str) -> bool:
    """Whether a path's events can be signals (the watcher reports them before ignoring)."""
    meta, name = os.path.split(path)
    vcs = os.path.basename(meta)
    return (
        VCS_LOCKS.get(vcs) == name
        or (vcs == ".git" and name in VCS_REFS)
        or name in TOOL_WRITTEN_NAMES
    )


@dataclass(frozen=True)
class AuthorshipSettings:
    tool_files: int = 3
    tool_window: float = 2.0
    vcs_grace: float = 1.0
    vcs_max_open: float = 60.0


@dataclass
class Operation:
    """A VCS operation or a tool run in one project: the writes it covers, for the log."""

    writer: Writer
    project: str
    start: float
    # A VCS operation: its lock's release (+inf while held); a tool run: its latest write.
    end: float = -math.inf
    ref_moved: bool = False
    writes: int = 0

    @property
    def open(self) -> bool:
        return self.end == math.inf

    def describe(self) -> str:
        what = "a git/hg operation" if self.writer is Writer.VCS else "a tool run"
        return f"{what} in {self.project}"


@dataclass
class _ProjectState:
    # Distinct paths written within the tool window, oldest first (capped at tool_files).
    recent: OrderedDict[str, float] = field(default_factory=OrderedDict)
    operations: deque[Operation] = field(default_factory=lambda: deque(maxlen=OPERATIONS_KEPT))
    vcs: Operation | None = None  # the latest VCS operation
    run: Operation | None = None  # the latest tool run


class Authorship:
    """Tracks VCS operations, tool runs and lock files per project; says who wrote a write.

    Not thread-safe: the policy's caller owns it."""

    def __init__(self, settings: AuthorshipSettings) -> None:
        self.settings = settings
        self._projects: dict[str, _ProjectState] = {}
        self._lock_files: dict[str, float] = {}  # folder → latest lock file write
        self.finished: list[Operation] = []  # operations over, with writes: for a log line each

    def signal(self, kind: Signal, where: str, project: str, at: float) -> None:
        """A signal from the watcher (``signals_of``), in the order it saw them."""
        if kind is Signal.LOCK_FILE:  # a tool's write: it counts towards a tool run too
            self._lock_files[os.path.dirname(where)] = at
            self._note_write(project, where, at)
            return
        state = self._projects.setdefault(project, _ProjectState())
        op = state.vcs
        if kind is Signal.VCS_LOCK:
            # Locks taken back to back (stash, rebase) are one operation for the log.
            if op is None or not (op.open or at <= self._vcs_until(op)):
                op = state.vcs = Operation(Writer.VCS, project, start=at)
                self._add(state, op)
            op.end = math.inf
        elif kind is Signal.VCS_UNLOCK:
            if op is not None and op.open:
                op.end = at
        elif op is not None and (op.open or at <= op.end + self.settings.vcs_grace):
            op.ref_moved = True
            op.end = max(op.end, at)
        else:  # a ref moved on its own (`git switch` between identical trees)
            op = state.vcs = Operation(Writer.VCS, project, start=at, end=at, ref_moved=True)
            self._add(state, op)

    def write(self, path: str, project: str, at: float) -> Operation | None:
        """A write arrives: the operation it belongs to, if that is known already."""
        state = self._projects.setdefault(project, _ProjectState())
        op = state.vcs
        if op is not None and self._vcs_covers(op, at):
            op.writes += 1
            return op
        run = self._note_write(project, path, at)
        if run is not None:
            run.writes += 1
            return run
        return self._package_manager(path, project, at)

    def covering(self, path: str, project: str, at: float) -> Operation | None:
        """At release: the operation that wrote ``path`` at ``at``, if one is known now."""
        state = self._projects.get(project)
        for op in state.operations if state else ():
            covers = (
                self._vcs_covers(op, at)
                if op.writer is Writer.VCS
                else op.start <= at <= op.end + self.settings.tool_window
            )
            if covers:
                op.writes += 1
                return op
        return self._package_manager(path, project, at)

    def forget(self, now: float, keep: float) -> None:
        """Drop what can no longer change a decision on a write held up to ``keep`` seconds;
        operations over are moved to ``finished``."""
        horizon = now - keep - self.settings.tool_window
        for key, state in list(self._projects.items()):
            over = [op for op in state.operations if self._forget_at(op, keep) <= now]
            for op in over:
                state.operations.remove(op)
                if op.writes:
                    self.finished.append(op)
            while state.recent and next(iter(state.recent.values())) < horizon:
                state.recent.popitem(last=False)
            if not state.operations and not state.recent:
                del self._projects[key]
        for folder in [f for f, at in self._lock_files.items() if at < now - keep - PAIR_WINDOW]:
            del self._lock_files[folder]

    def next_forget(self, keep: float) -> float | None:
        """When ``forget(now, keep)`` will next report an operation over (its log line)."""
        return min(
            (
                self._forget_at(op, keep)
                for state in self._projects.values()
                for op in state.operations
                if op.writes
            ),
            default=None,
        )

    def _forget_at(self, op: Operation, keep: float) -> float:
        """When no write held ``keep`` seconds can still be ``op``'s (one expression for
        ``forget`` and ``next_forget``, so they agree to the last bit)."""
        return self._until(op) + keep + self.settings.tool_window

    def end_all(self) -> None:
        """Shutting down: every operation with writes is reported as finished."""
        for state in self._projects.values():
            self.finished += [op for op in state.operations if op.writes]
        self._projects.clear()

    @property
    def size(self) -> int:
        """Entries remembered (for checking that memory stays bounded)."""
        return len(self._lock_files) + sum(
            len(state.recent) + len(state.operations) for state in self._projects.values()
        )

    def _note_write(self, project: str, path: str, at: float) -> Operation | None:
        """Count a write towards tool-run detection: the run it belongs to, if any."""
        state = self._projects.setdefault(project, _ProjectState())
        window = self.settings.tool_window
        run = state.run
        if run is not None and at <= run.end + window:
            run.end = max(run.end, at)
            return run
        recent = state.recent
        while recent and next(iter(recent.values())) <= at - window:
            recent.popitem(last=False)
        recent[path] = at
        recent.move_to_end(path)
        # Project generators (cargo new, npm init) write a manifest and one more file.
        needed = self.settings.tool_files
        if any(os.path.basename(written) in MANIFESTS for written in recent):
            needed = min(needed, 2)
        if len(recent) < needed:
            return None
        run = state.run = Operation(Writer.TOOL, project, start=min(recent.values()), end=at)
        self._add(state, run)
        recent.clear()
        return run

    def _add(self, state: _ProjectState, op: Operation) -> None:
        """Remember a new operation; the oldest, if pushed out, still gets its log line."""
        if len(state.operations) == state.operations.maxlen and state.operations[0].writes:
            self.finished.append(state.operations[0])
        state.operations.append(op)

    def _package_manager(self, path: str, project: str, at: float) -> Operation | None:
        folder, name = os.path.split(path)
        locked = self._lock_files.get(folder)
        if name not in MANIFESTS or locked is None or abs(at - locked) > PAIR_WINDOW:
            return None
        state = self._projects.setdefault(project, _ProjectState())
        run = state.run
        if run is None or not run.start - PAIR_WINDOW <= at <= run.end + PAIR_WINDOW:
            run = state.run = Operation(
                Writer.TOOL, project, start=min(at, locked), end=max(at, locked)
            )
            self._add(state, run)
        run.writes += 1
        return run

    def _vcs_until(self, op: Operation) -> float:
        if op.open:
            return op.start + self.settings.vcs_max_open
        return op.end + (self.settings.vcs_grace if op.ref_moved else 0.0)

    def _vcs_covers(self, op: Operation, at: float) -> bool:
        return op.start <= at <= self._vcs_until(op)

    def _until(self, op: Operation) -> float:
        if op.writer is Writer.VCS:
            return self._vcs_until(op)
        return op.end + self.settings.tool_window
