"""Saves seen in the watched folders, judged by the policy, as file heartbeats.

watchdog's threads report writes, removals and VCS signals (`FileWatcher`); they cross onto
the event loop a batch at a time, where the policy (pure, on this component's clock) decides
what a person wrote. When a file's quiet period ends, its heartbeat, marked with who wrote
it, goes to the sink (the ingest in the daemon, a list in tests). The watch itself is planned
from `[watch]` and planned again every `rescan_interval`, so a folder made later is watched.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from agent.config import Settings
from agent.pipeline.heartbeat import Heartbeat
from agent.sources.ai.attribution import WriteClassifier
from agent.sources.ai.tools import tools as ai_tools
from agent.sources.authorship import Signal
from agent.sources.ignore import IgnoreRules
from agent.sources.policy import ActivityPolicy, PolicySettings
from agent.sources.watch_roots import WatchPlan, plan_watch, watch_report
from agent.sources.watcher import FileWatcher, watch_limit_hint
from agent.tasks import BackgroundTasks

log = logging.getLogger(__name__)

Sink = Callable[[Sequence[Heartbeat]], Any]
PROJECT_MARKERS = (".git", ".hg", ".svn", ".wakatime-project")
WATCHED_BATCH_DELAY = 0.05  # seconds the watcher's events gather before the policy takes them
WRITTEN, REMOVED = "written", "removed"  # the watcher's events that are not signals
WatchedEvent = Signal | str


class FileActivity:
    def __init__(
        self,
        settings: Settings,
        sink: Sink,
        *,
        clock: Callable[[], float] = time.time,
        plugins_in_use: bool = False,
        attribution: WriteClassifier | None = None,
        started_in: str | None = None,
    ) -> None:
        """`plugins_in_use`: editor plugins report saves here, so the watcher's heartbeats
        wait a moment for theirs. `started_in` is watched when no paths are configured."""
        self.settings = settings
        self.sink = sink
        self.clock = clock
        self.attribution = attribution or WriteClassifier()
        self.started_in = started_in or os.getcwd()
        self.policy = ActivityPolicy(
            policy_settings(settings), self._project_key, plugins_in_use=plugins_in_use
        )
        self.watcher: FileWatcher | None = None
        self.plan: WatchPlan | None = None
        self.problem: str | None = None  # why the watcher is not running
        self._own_prefixes: tuple[str, ...] = ()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: BackgroundTasks | None = None
        self._restarting = asyncio.Lock()
        # The watcher's events on their way to the loop: (what, path, time), in its order.
        self._watched: list[tuple[WatchedEvent, str, float]] = []
        self._watched_lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks = BackgroundTasks(self._loop)
        await asyncio.to_thread(self._start_watcher)
        self._tasks.every(
            self.settings.watch.rescan_interval,
            self.rescan,
            "the watch folder rescan",
            now=False,
        )

    async def stop(self) -> None:
        """Stop watching, and hand over what the policy still holds (a save made just before
        the stop counts)."""
        if self._tasks:
            self._tasks.stop()
        if self.watcher:
            await asyncio.to_thread(self.watcher.stop)
        self._take_events()
        self.flush(final=True)

    async def reconfigure(self, settings: Settings) -> None:
        self.settings = settings
        self.policy.reconfigure(policy_settings(settings))
        await self._restart(self._plan_watch())

    async def rescan(self) -> bool:
        """Plan the watch again; restart the watcher if the plan changed (a configured folder
        created since, a new repository in ~). True when it did."""
        plan = await asyncio.to_thread(self._plan_watch)
        if plan == self.plan:
            return False
        await self._restart(plan)
        return True

    async def _restart(self, plan: WatchPlan) -> None:
        async with self._restarting:
            if self.watcher:
                await asyncio.to_thread(self.watcher.stop)
            self._project_of_folder.cache_clear()
            await asyncio.to_thread(self._start_watcher, plan)

    def _plan_watch(self) -> WatchPlan:
        watch = self.settings.watch
        return plan_watch(watch.paths, self.started_in, os.path.expanduser("~"), watch.ignored_dirs)

    def _start_watcher(self, plan: WatchPlan | None = None) -> None:
        self.plan = plan = plan or self._plan_watch()
        for note in plan.notes:
            log.info("%s", note)
        for missing in plan.waiting:
            log.warning("watch path %s does not exist (yet); watching it once it does", missing)
        watch = self.settings.watch
        ignore = IgnoreRules(
            ignored_dirs=watch.ignored_dirs,
            exclude=watch.exclude,
            include=watch.include,
            use_gitignore=watch.use_gitignore,
        )
        self._own_prefixes = own_files(self.settings)
        watcher = FileWatcher(
            plan.paths,
            ignore,
            self._on_write,
            clock=self.clock,
            follow_symlinks=watch.follow_symlinks,
            on_remove=self._on_remove,
            on_signal=self._from_watcher,
        )
        try:
            watcher.start()
        except OSError as exc:
            # Plugins' heartbeats still count: run without the watcher, and say so.
            self.problem = f"file watcher off: {watch_limit_hint(exc)}"
            log.error("%s; reload (SIGHUP) to try again", self.problem)
            self.watcher = None
            return
        self.watcher, self.problem = watcher, None
        log.info("watching %s", ", ".join(plan.paths) or "nothing")

    # -- what others ask --------------------------------------------------------------

    @property
    def roots(self) -> list[str]:
        return self.watcher.roots if self.watcher else []

    def status(self) -> dict[str, Any]:
        """The watch's part of `agent status`: roots, trouble, and each folder and why."""
        return {
            "watching": self.roots,
            "watch_problem": self.problem or (self.watcher and self.watcher.problem),
            "watch": watch_report(self.plan),
        }

    def plugin_heartbeat(self, path: str, at: float) -> None:
        """A plugin reported a save of `path`: the watcher's copy of it is not counted."""
        self.policy.plugin_heartbeat(path, at)

    def why(self, path: str) -> dict[str, Any]:
        """Why the latest writes to the absolute `path` counted or not: the ignore rules'
        verdict and the policy's latest decision (`agent why`)."""
        watching = self.watcher.watching if self.watcher else []
        root = next((r for r in watching if path.startswith(os.path.join(r, ""))), None)
        if root is None or self.watcher is None:
            ignored: str | None = "not below a watched folder"
        else:
            ignored = self.watcher.ignore.reason(path, root=root)
        decision = self.policy.why(path)
        return {
            "path": path,
            "ignored": ignored,
            "held": self.policy.holds(path),
            "decision": None
            if decision is None
            else {
                "time": decision.time,
                "writer": decision.writer.value,
                "counted": decision.counted,
                "reason": decision.reason,
            },
        }

    # -- from the watcher to the policy -----------------------------------------------

    def _on_write(self, path: str, at: float) -> None:
        """From the watcher's thread: hand over to the loop, where the policy lives."""
        if not path.startswith(self._own_prefixes):
            self._from_watcher(WRITTEN, path, at)

    def _on_remove(self, path: str, at: float) -> None:
        """A file deleted or renamed away: a temp file that must not count if still held."""
        self._from_watcher(REMOVED, path, at)

    def _from_watcher(self, what: WatchedEvent, path: str, at: float) -> None:
        """Queue one event for the loop; the first of a batch wakes it to take the batch a
        moment later: a burst of 20,000 files is a few hundred wakeups, not 40,000."""
        if self._loop is None:
            return
        with self._watched_lock:
            wake = not self._watched
            self._watched.append((what, path, at))
        if wake:
            self._loop.call_soon_threadsafe(
                self._loop.call_later, WATCHED_BATCH_DELAY, self._policy_events
            )

    def _take_events(self) -> None:
        with self._watched_lock:
            events, self._watched = self._watched, []
        for what, path, at in events:
            if what == WRITTEN:
                self.policy.file_written(path, at)
            elif what == REMOVED:
                self.policy.file_removed(path, at)
            else:
                self.policy.signal(what, path, at)

    def _policy_events(self) -> None:
        self._take_events()
        self._schedule()

    def _schedule(self) -> None:
        """One timer, only while the policy holds pending activity."""
        deadline = self.policy.next_deadline()
        if self._tasks is None:
            return
        if deadline is None:
            self._tasks.cancel("the policy's deadline")
        else:
            delay = max(0.0, deadline - self.clock())
            self._tasks.later(delay, self.flush, "the policy's deadline")

    def flush(self, final: bool = False) -> list[Heartbeat]:
        """Hand the heartbeats whose quiet period has ended (all of them, when `final`) to
        the sink; the ones handed over."""
        due = self.policy.due(self.clock() if not final else float("inf"))
        heartbeats = [
            Heartbeat(entity=a.path, time=a.time, type="file", is_write=a.is_write) for a in due
        ]
        if heartbeats:
            heartbeats = self.attribution.attribute(heartbeats)
            self.sink(heartbeats)
        for op in self.policy.finished_operations():
            log.info("not coding: %s, %d file write(s) dropped", op.describe(), op.writes)
        if not final:
            self._schedule()
        return heartbeats

    def _project_key(self, path: str) -> str:
        """The folder a path's project lives in, for storm detection: the nearest folder
        with a VCS or project marker below a watch root, else the watch root."""
        return self._project_of_folder(os.path.dirname(path))

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one per component, as long-lived
    def _project_of_folder(self, folder: str) -> str:
        """Cached per folder, not per file: a burst of new files costs no stat calls."""
        roots = self.plan.paths if self.plan is not None else []
        while True:
            if any(os.path.exists(os.path.join(folder, m)) for m in PROJECT_MARKERS):
                return folder
            parent = os.path.dirname(folder)
            if folder in roots or parent == folder:
                return folder
            folder = parent


def own_files(settings: Settings) -> tuple[str, ...]:
    """Path prefixes of the agent's own files (database, tokens, log), never activity; nor
    are the AI tools' transcripts (they are read as AI activity, not watched)."""
    own = [os.path.join(settings.database_path().parent, "")]
    own += [os.path.join(root, "") for tool in ai_tools() for root in tool.roots]
    if settings.log.file:
        own.append(os.path.abspath(os.path.expanduser(settings.log.file)))
    return tuple(own)


def policy_settings(settings: Settings) -> PolicySettings:
    hb = settings.heartbeats
    return PolicySettings(
        debounce_seconds=hb.debounce_seconds,
        autosave_interval=hb.autosave_interval,
        heartbeat_interval=hb.heartbeat_interval,
        storm_files=hb.storm_files,
        storm_window=hb.storm_window,
        plugin_grace=hb.plugin_grace,
        plugin_wait=hb.plugin_wait,
    )
