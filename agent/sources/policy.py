"""Turns raw file writes into the few activities that are a person's saves. Pure: no I/O, no clock.

Every write is held before it may become an activity, for ``max(debounce_seconds,
storm_window)`` of quiet on that path. The hold does three jobs at once:

* debounce — more writes to the path restart the quiet period, so a save that touches the file
  several times (truncate, write, chmod, rename) is one activity; under continuous writes the
  path is still released ``autosave_interval`` after its first held write;
* who wrote it — a git checkout, a formatter, an install or a generator is not a person
  (``agent.sources.authorship``: VCS locks, tool runs of more than ``storm_files`` files within
  ``storm_window`` seconds, manifests beside lock files); a write found to be theirs, even
  after it arrived (the hold is at least the tool window), is dropped;
* temp files — a file written and then deleted or renamed away before release (an editor's
  temporary or backup file the ignore rules did not know) never counts: ``file_removed``.

Throttle. WakaTime's rule sends a heartbeat when the entity changes, when
``heartbeat_interval`` passed for the same entity, or on a write. The watcher only reports
writes, and an autosaving editor writes every second or two, so the watcher's writes to one
entity are spaced by ``min(autosave_interval, heartbeat_interval)``: a write arriving sooner
waits (trailing edge) and leaves with the time of the latest write, so the end of a session
is not lost to the throttle. A run of writes that opens a session (no activity for the file
within that spacing) leaves with the time of its first write, and its latest write stays held
as the next one, so its start is not lost either.

Plugin precedence: a plugin that reported an entity over IPC knows more than the watcher
(cursor, unsaved buffers, its own writes). For ``plugin_grace`` seconds after a plugin's
heartbeat the watcher's writes of that entity are dropped. The default, 120 s, is WakaTime's
own heartbeat interval: a plugin active on a file reports it at least that often. A plugin may
also report a save late (vim-wakatime sends its heartbeats in batches every 30 s), after the
watcher's write of it was released, and before it has reported anything at all. So once
plugins are in use (``plugins_in_use``: the daemon sets it from its history, and any plugin
heartbeat does), an activity waits ``plugin_wait`` more seconds before it leaves; a plugin
heartbeat of the same file within ``plugin_wait`` of it drops it: one save, one heartbeat, the
plugin's. Waiting here, rather than merging duplicates in the store, keeps the store and
delivery ignorant of where a heartbeat came from and never delays a plugin's own heartbeats;
the price is that the watcher's heartbeats reach the queue a minute late for plugin users.

Every decision on a path is remembered (the latest ``DECISIONS_KEPT`` paths) for ``agent why``.

Memory is bounded whatever the burst: per project at most ``storm_files`` recent paths are
remembered, and ``max_held`` caps the writes held across all projects (beyond it, every write
is taken for a tool's for ``storm_window``).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from agent.sources.authorship import Authorship, AuthorshipSettings, Operation, Signal, Writer

FORGET_INTERVAL = 1.0  # seconds of heartbeat time between scans for stale entries
DECISIONS_KEPT = 512  # paths whose latest decision `agent why` can tell


@dataclass(frozen=True)
class PolicySettings:
    debounce_seconds: float = 2.0
    autosave_interval: float = 30.0
    heartbeat_interval: float = 120.0
    storm_files: int = 2
    storm_window: float = 2.0
    plugin_grace: float = 120.0
    plugin_wait: float = 60.0
    max_held: int = 1000


@dataclass(frozen=True)
class CountedWrite:
    """A write the policy counts as coding: one file heartbeat."""

    path: str
    time: float
    is_write: bool = True


@dataclass(frozen=True)
class Decision:
    """What became of the latest write of a path, and why: `agent why`."""

    path: str
    time: float  # of the write
    writer: Writer
    counted: bool
    reason: str


@dataclass
class _Held:
    """A path written and not yet released: its first and latest write since the last release."""

    project: str
    first: float
    last: float
    removed: bool = False


class ActivityPolicy:
    """Debounce, who-wrote filter, throttle and plugin precedence for the watcher's writes.

    Not thread-safe: the daemon calls it from one event loop.
    """

    def __init__(
        self,
        settings: PolicySettings,
        project_key: Callable[[str], str],
        *,
        plugins_in_use: bool = False,
    ) -> None:
        self._project_key = project_key
        self._held: dict[str, _Held] = {}
        self._last_emitted: dict[str, float] = {}
        self._plugin_seen: dict[str, float] = {}
        # Activities released and waiting for a plugin's late report: (leave at, activity).
        self._waiting: deque[tuple[float, CountedWrite]] = deque()
        self.plugins_in_use = plugins_in_use
        self._overflow_until = -math.inf
        self._forgot_at = -math.inf
        self.decisions: OrderedDict[str, Decision] = OrderedDict()
        self.authorship = Authorship(_authorship_settings(settings))
        self.settings = settings

    @property
    def settings(self) -> PolicySettings:
        return self._settings

    @settings.setter
    def settings(self, settings: PolicySettings) -> None:
        """Settings may change on reload; what was learnt so far is kept."""
        self._settings = settings
        self._quiet = max(settings.debounce_seconds, settings.storm_window)
        self._spacing = min(settings.autosave_interval, settings.heartbeat_interval)
        # How long after its last write a write may still be held: what a VCS operation or a
        # tool run must be remembered for.
        self._keep = max(self._quiet, self._spacing)
        self.authorship.settings = _authorship_settings(settings)

    def reconfigure(self, settings: PolicySettings) -> None:
        """A reload: the supervisor's one verb for every component (the settings setter)."""
        self.settings = settings

    def file_written(self, path: str, at: float) -> None:
        """The watcher saw ``path`` written at ``at``."""
        path = os.path.normpath(path)
        seen = self._plugin_seen.get(path)
        if seen is not None and at - seen < self.settings.plugin_grace:
            self._decide(path, at, Writer.PLUGIN, f"a plugin reported this file at {seen:.0f}")
            return
        key = self._project_key(path)
        op = self.authorship.write(path, key, at)
        if op is not None:
            self._dropped(path, at, op)
            return
        if at < self._overflow_until:
            self._decide(path, at, Writer.TOOL, "more files held at once than [max_held]")
            return
        held = self._held.get(path)
        if held is None:
            if len(self._held) >= self.settings.max_held:
                self._overflow(at)
                self._decide(path, at, Writer.TOOL, "more files held at once than [max_held]")
                return
            self._hold(path, key, at)
        else:
            held.last = max(held.last, at)
            held.removed = False

    def file_removed(self, path: str, at: float) -> None:
        """``path`` was deleted or renamed away: if it is not written again before its release,
        it was a temporary file and never counts."""
        held = self._held.get(os.path.normpath(path))
        if held is not None and at >= held.last:
            held.removed = True

    def signal(self, kind: Signal, where: str, at: float) -> None:
        """A VCS lock or ref, or a lock file, seen by the watcher (``authorship.signals_of``)."""
        self.authorship.signal(kind, where, self._project_key(os.path.join(where, "")), at)

    def plugin_heartbeat(self, entity: str, at: float) -> None:
        """A plugin reported ``entity``: the watcher's copies of the same activity are dropped,
        and its writes of the file for ``plugin_grace``."""
        entity = os.path.normpath(entity)
        self.plugins_in_use = True
        seen = self._plugin_seen.get(entity)
        if seen is None or at > seen:
            self._plugin_seen[entity] = at
        reason = "a plugin reported this file too"
        if entity in self._held:
            self._decide(entity, self._release(entity).last, Writer.PLUGIN, reason)
        if any(activity.path == entity for _, activity in self._waiting):
            wait = self.settings.plugin_wait
            for item in [
                item
                for item in self._waiting
                if item[1].path == entity and abs(item[1].time - at) <= wait
            ]:
                self._waiting.remove(item)
                self._decide(entity, item[1].time, Writer.PLUGIN, reason)
        # Forgetting scans every table: once a second of heartbeat time, not on every call
        # (a plugin may send thousands a second); a time out of that second scans at once.
        if not self._forgot_at <= at < self._forgot_at + FORGET_INTERVAL:
            self._forgot_at = at
            self._forget_stale(at)

    def due(self, now: float) -> list[CountedWrite]:
        """Activities ready to become heartbeats at ``now``, oldest first. ``due(math.inf)``
        (shutting down) releases everything held."""
        activities: list[CountedWrite] = []
        while ready := self._ready(now):
            activities += self._emit(ready, now)
        if now == math.inf:
            self.authorship.end_all()
        self._forget_stale(now)
        activities.sort(key=lambda activity: activity.time)
        if not self.plugins_in_use or self.settings.plugin_wait <= 0:
            return activities
        leave = now + self.settings.plugin_wait
        self._waiting += ((leave, activity) for activity in activities)
        left = []
        while self._waiting and self._waiting[0][0] <= now:
            left.append(self._waiting.popleft()[1])
        return sorted(left, key=lambda activity: activity.time)

    def why(self, path: str) -> Decision | None:
        """The latest decision on ``path``, if it is still remembered."""
        return self.decisions.get(os.path.normpath(path))

    def holds(self, path: str) -> bool:
        """Whether a write of ``path`` is held, its fate not decided yet."""
        return os.path.normpath(path) in self._held

    def finished_operations(self) -> list[Operation]:
        """VCS operations and tool runs over since the last call, with the writes they made."""
        finished, self.authorship.finished = self.authorship.finished, []
        return finished

    def _ready(self, now: float) -> list[str]:
        return [path for path, held in self._held.items() if self._release_time(path, held) <= now]

    def _emit(self, ready: list[str], now: float) -> list[CountedWrite]:
        activities = []
        for path in ready:
            held = self._release(path)
            if held.removed:
                self._decide(path, held.last, Writer.PERSON, "a temporary file: removed", False)
                continue
            op = self.authorship.covering(path, held.project, held.last)
            if op is not None:
                self._dropped(path, held.last, op)
                continue
            if (
                path not in self._last_emitted
                and held.last - held.first > self.settings.debounce_seconds
            ):
                # A run of writes that opens a session: its start is the activity, and its end
                # stays held (spaced like any later write) so neither end of the run is lost.
                activities.append(CountedWrite(path=path, time=held.first))
                self._hold(path, held.project, held.last)
            else:
                activities.append(CountedWrite(path=path, time=held.last))
            self._decide(path, held.last, Writer.PERSON, "a person's save: a heartbeat", True)
            self._last_emitted[path] = now
        return activities

    @property
    def pending(self) -> int:
        """Writes held right now (for status and for checking that memory stays bounded)."""
        return len(self._held)

    def next_deadline(self) -> float | None:
        """When ``due`` may next return something, or report an operation over; None while
        there is neither."""
        return min(
            (
                *(self._release_time(path, held) for path, held in self._held.items()),
                *filter(None, [self.authorship.next_forget(self._keep)]),
                *([self._waiting[0][0]] if self._waiting else []),
            ),
            default=None,
        )

    def _release_time(self, path: str, held: _Held) -> float:
        quiet = min(held.last + self._quiet, held.first + self.settings.autosave_interval)
        # A removed path waits only for its quiet period: it will be dropped, not emitted.
        if held.removed:
            return quiet
        spaced = self._last_emitted.get(path, -math.inf) + self._spacing
        return max(quiet, spaced)

    def _dropped(self, path: str, at: float, op: Operation) -> None:
        reason = f"written by {op.describe()} from {op.start:.1f}"
        self._decide(path, at, op.writer, reason)

    def _decide(
        self, path: str, at: float, writer: Writer, reason: str, counted: bool = False
    ) -> None:
        self.decisions[path] = Decision(path, at, writer, counted, reason)
        self.decisions.move_to_end(path)
        if len(self.decisions) > DECISIONS_KEPT:
            self.decisions.popitem(last=False)

    def _overflow(self, at: float) -> None:
        """Too many writes held at once: every project is taken to be in a tool run."""
        self._overflow_until = at + self.settings.storm_window
        for path in list(self._held):
            held = self._release(path)
            self._decide(path, held.last, Writer.TOOL, "more files held at once than [max_held]")

    def _hold(self, path: str, project: str, at: float) -> _Held:
        held = self._held[path] = _Held(project=project, first=at, last=at)
        return held

    def _release(self, path: str) -> _Held:
        return self._held.pop(path)

    def _forget_stale(self, now: float) -> None:
        """Drop what can no longer change a decision, so an idle policy holds nothing."""
        self.authorship.forget(now, self._keep)
        for table, kept in (
            (self._last_emitted, self._spacing),
            (self._plugin_seen, self.settings.plugin_grace),
        ):
            for key in [key for key, at in table.items() if now - at >= kept]:
                del table[key]


def _authorship_settings(settings: PolicySettings) -> AuthorshipSettings:
    """A tool run is more than ``storm_files`` files within ``storm_window``: one setting
    for the user, read by the who-wrote step."""
    return AuthorshipSettings(
        tool_files=settings.storm_files + 1, tool_window=settings.storm_window
    )
