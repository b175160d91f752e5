"""Turns raw file writes into the few activities that are a person's saves. Pure: no I/O, no clock.

Every write is held before it may become an activity, for ``max(debounce_seconds,
storm_window)`` of quiet on that path. The hold does three jobs at once:

* debounce — more writes to the path restart the quiet period, so a save that touches the file
  several times (truncate, write, chmod, rename) is one activity; under continuous writes the
  path is still released ``autosave_interval`` after its first held write;
* storms — a checkout, install, formatter or generator writes many files at once; when one
  project sees more than ``storm_files`` distinct files written within ``storm_window`` seconds,
  the held writes of that window are dropped, the first ones too (they are still held because
  the hold is at least the storm window), and so is every write while the burst goes on;
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
own heartbeat interval: a plugin active on a file reports it at least that often, and
reports every save of it immediately.

Memory is bounded whatever the burst: per project at most ``storm_files + 1`` recent paths are
remembered, and ``max_held`` caps the writes held across all projects (beyond it, every
project is treated as being in a storm for ``storm_window``).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

FORGET_INTERVAL = 1.0  # seconds of heartbeat time between scans for stale entries


@dataclass(frozen=True)
class PolicySettings:
    debounce_seconds: float = 2.0
    autosave_interval: float = 30.0
    heartbeat_interval: float = 120.0
    storm_files: int = 25
    storm_window: float = 2.0
    plugin_grace: float = 120.0
    max_held: int = 1000


@dataclass(frozen=True)
class FileActivity:
    path: str
    time: float
    is_write: bool = True


@dataclass
class _Held:
    """A path written and not yet released: its first and latest write since the last release."""

    project: str
    first: float
    last: float
    removed: bool = False


@dataclass
class _Project:
    # Distinct paths written within the storm window, oldest first (capped at storm_files + 1).
    recent: OrderedDict[str, float] = field(default_factory=OrderedDict)
    held: set[str] = field(default_factory=set)
    storm_until: float = -math.inf


class ActivityPolicy:
    """Debounce, storm filter, throttle and plugin precedence for the watcher's writes.

    Not thread-safe: the daemon calls it from one event loop.
    """

    def __init__(self, settings: PolicySettings, project_key: Callable[[str], str]) -> None:
        self._project_key = project_key
        self.reconfigure(settings)
        self._held: dict[str, _Held] = {}
        self._projects: dict[str, _Project] = {}
        self._last_emitted: dict[str, float] = {}
        self._plugin_seen: dict[str, float] = {}
        self._global_storm_until = -math.inf
        self._forgot_at = -math.inf

    def reconfigure(self, settings: PolicySettings) -> None:
        """New settings (a reload), with what derives from them; held activity stays held
        and is released by the new ones."""
        self.settings = settings
        self._quiet = max(settings.debounce_seconds, settings.storm_window)
        self._spacing = min(settings.autosave_interval, settings.heartbeat_interval)

    def file_written(self, path: str, at: float) -> None:
        """The watcher saw ``path`` written at ``at``."""
        path = os.path.normpath(path)
        seen = self._plugin_seen.get(path)
        if seen is not None and at - seen < self.settings.plugin_grace:
            return
        key = self._project_key(path)
        project = self._projects.setdefault(key, _Project())
        self._note_recent(project, path, at)
        if len(project.recent) > self.settings.storm_files:
            project.storm_until = at + self.settings.storm_window
            self._drop_recent_held(project)
            project.recent.popitem(last=False)
        if at < project.storm_until or at < self._global_storm_until:
            return
        held = self._held.get(path)
        if held is None:
            if len(self._held) >= self.settings.max_held:
                self._start_global_storm(at)
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

    def plugin_heartbeat(self, entity: str, at: float) -> None:
        """A plugin reported ``entity``: the watcher's writes of it are dropped for a while."""
        entity = os.path.normpath(entity)
        seen = self._plugin_seen.get(entity)
        if seen is None or at > seen:
            self._plugin_seen[entity] = at
        if entity in self._held:
            self._release(entity)
        # Forgetting scans every table: once a second of heartbeat time, not on every call
        # (a plugin may send thousands a second); a time out of that second scans at once.
        if not self._forgot_at <= at < self._forgot_at + FORGET_INTERVAL:
            self._forgot_at = at
            self._forget_stale(at)

    def due(self, now: float) -> list[FileActivity]:
        """Activities ready to become heartbeats at ``now``, oldest first. ``due(math.inf)``
        (shutting down) releases everything held."""
        activities: list[FileActivity] = []
        while ready := self._ready(now):
            activities += self._emit(ready, now)
        self._forget_stale(now)
        return sorted(activities, key=lambda activity: activity.time)

    def _ready(self, now: float) -> list[str]:
        return [path for path, held in self._held.items() if self._release_time(path, held) <= now]

    def _emit(self, ready: list[str], now: float) -> list[FileActivity]:
        activities = []
        for path in ready:
            held = self._release(path)
            if held.removed:
                continue
            if (
                path not in self._last_emitted
                and held.last - held.first > self.settings.debounce_seconds
            ):
                # A run of writes that opens a session: its start is the activity, and its end
                # stays held (spaced like any later write) so neither end of the run is lost.
                activities.append(FileActivity(path=path, time=held.first))
                self._hold(path, held.project, held.last)
            else:
                activities.append(FileActivity(path=path, time=held.last))
            self._last_emitted[path] = now
        return activities

    @property
    def pending(self) -> int:
        """Writes held right now (for status and for checking that memory stays bounded)."""
        return len(self._held)

    def next_deadline(self) -> float | None:
        """When ``due`` may next return something; None while nothing is held."""
        return min(
            (self._release_time(path, held) for path, held in self._held.items()),
            default=None,
        )

    def _release_time(self, path: str, held: _Held) -> float:
        quiet = min(held.last + self._quiet, held.first + self.settings.autosave_interval)
        # A removed path waits only for its quiet period: it will be dropped, not emitted.
        if held.removed:
            return quiet
        spaced = self._last_emitted.get(path, -math.inf) + self._spacing
        return max(quiet, spaced)

    def _note_recent(self, project: _Project, path: str, at: float) -> None:
        recent = project.recent
        horizon = at - self.settings.storm_window
        while recent and next(iter(recent.values())) < horizon:
            recent.popitem(last=False)
        recent[path] = at
        recent.move_to_end(path)

    def _drop_recent_held(self, project: _Project) -> None:
        for path in project.recent:
            if path in project.held:
                self._release(path)

    def _start_global_storm(self, at: float) -> None:
        self._global_storm_until = at + self.settings.storm_window
        for path in list(self._held):
            self._release(path)

    def _hold(self, path: str, project: str, at: float) -> None:
        self._held[path] = _Held(project=project, first=at, last=at)
        self._projects.setdefault(project, _Project()).held.add(path)

    def _release(self, path: str) -> _Held:
        held = self._held.pop(path)
        project = self._projects.get(held.project)
        if project is not None:
            project.held.discard(path)
        return held

    def _forget_stale(self, now: float) -> None:
        """Drop what can no longer change a decision, so an idle policy holds nothing."""
        horizon = now - self.settings.storm_window
        for key in [
            key
            for key, project in self._projects.items()
            if not project.held
            and project.storm_until <= now
            and all(at < horizon for at in project.recent.values())
        ]:
            del self._projects[key]
        for table, keep in (
            (self._last_emitted, self._spacing),
            (self._plugin_seen, self.settings.plugin_grace),
        ):
            for key in [key for key, at in table.items() if now - at >= keep]:
                del table[key]
