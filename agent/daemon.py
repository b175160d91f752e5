"""The daemon: wiring, lifecycle, signals.

`Daemon(settings).run()` starts every part (store, ingest, delivery loops, watcher,
socket), serves until SIGTERM/SIGINT, reloads on SIGHUP, then stops them in reverse
order. The data flows one way: sources → ingest (builder, router, store) → delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent import __version__
from agent.autostart import hold_instance_lock
from agent.config import Settings, load_settings
from agent.delivery.deliveries import build_sender
from agent.delivery.sender import DeliveryLoop
from agent.ipc.protocol import ProtocolError
from agent.ipc.server import IpcServer, SocketInUse, prepare_socket_path
from agent.pipeline.builder import HeartbeatBuilder, detect_options, privacy_for
from agent.pipeline.destinations import (
    DEFAULT,
    PLUGIN_PREFIX,
    Destination,
    Router,
    configured_destinations,
    plugin_server,
)
from agent.pipeline.detect import Detector
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.ingest import Ingest
from agent.pipeline.privacy import flags_problem
from agent.pipeline.store import HeartbeatStore, StoreError
from agent.pipeline.useragent import AGENT_PLUGIN
from agent.reports import DaemonReports, DaemonState
from agent.sources.ai import WriteClassifier
from agent.sources.ai.tools import tools as ai_tools
from agent.sources.authorship import Signal
from agent.sources.ignore import IgnoreRules
from agent.sources.offline_adopt import adopt_offline_requests, read_heartbeat_request
from agent.sources.policy import ActivityPolicy, PolicySettings
from agent.sources.watch_roots import WatchPlan, plan_watch, watch_report
from agent.sources.watcher import FileWatcher, watch_limit_hint
from agent.wakatime_cli import cfg as wakatime_cfg

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The daemon cannot start: its files cannot be used (a folder where the database
    goes, no permission, a read-only or full disk). One line says why; restarting it
    unchanged would fail the same way."""


PROJECT_MARKERS = (".git", ".hg", ".svn", ".wakatime-project")
RETENTION_INTERVAL = 86400.0  # the history is pruned at startup and then daily
QUEUE_CHECK_INTERVAL = 60.0  # the queue is measured against [queue] max_queued at most this often
WATCHED_BATCH_DELAY = 0.05  # seconds the watcher's events gather before the policy takes them
OFFLINE_CHECK_INTERVAL = 30.0  # seconds between looks for requests queued without a daemon
PLUGINS_REMEMBERED = 7 * 86400.0  # seconds of history in which a plugin heartbeat counts
WRITTEN, REMOVED = "written", "removed"  # the watcher's events that are not signals
WatchedEvent = Signal | str
WAKATIME_CFG_POLL = 2.0  # seconds between looks (one stat) at ~/.wakatime.cfg for changes


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        reload: Callable[[], Settings] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._reload_settings = reload or (lambda: load_settings(settings.config_file))
        # ~/.wakatime.cfg as the configuration was read from it (see _delivery_trouble).
        self._wakatime_cfg_read = wakatime_cfg.signature()
        # The API key plugins send (wakatime-cli's --key): used only while none is configured.
        self.plugin_api_key: str | None = None
        # The servers plugins named with --api-url (and their --key), by destination name.
        self.plugin_servers: dict[str, Destination] = {}
        self._cfg_poll: asyncio.TimerHandle | None = None
        # What is wrong with ~/.wakatime.cfg (a line that is not INI), for status and plugins.
        self.wakatime_cfg_problem: str | None = None
        self.clock = clock
        self.started = clock()
        self.database_reset: Path | None = None
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        # The watcher's events on their way to the loop: (what, path, time), in its order.
        self._watched: list[tuple[WatchedEvent, str, float]] = []
        self._watched_lock = threading.Lock()
        self.deliveries: dict[str, DeliveryLoop] = {}
        self.destinations: list[Destination] = []
        self.watcher: FileWatcher | None = None
        self.watch_plan: WatchPlan | None = None
        self.started_in = os.getcwd()  # watched when no paths are configured (not ~, though)
        self._rescan: asyncio.TimerHandle | None = None
        self.watch_problem: str | None = None  # why the watcher is not running
        self.ipc: IpcServer | None = None
        self.ai: Any = None  # the AI-transcript source, when enabled
        self.attribution = WriteClassifier()
        self._retention: asyncio.TimerHandle | None = None
        self._offline_check: asyncio.TimerHandle | None = None
        self._adopting = threading.Lock()
        self._instance_lock: int | None = None
        self._reloading = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._queue_checked = float("-inf")
        self.over_max_queued = False

    # -- lifecycle --------------------------------------------------------------------

    def run(self) -> None:
        asyncio.run(self.serve())

    async def serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            await self.startup()
        except (StoreError, sqlite3.Error, OSError) as exc:
            where = self.settings.database_path()
            text = str(exc) if isinstance(exc, StoreError | OSError) else f"{where}: {exc}"
            raise StartupError(f"cannot start: {text}") from exc
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self._stop.set)
            self._loop.add_signal_handler(signal.SIGHUP, self._request_reload)
            notify_systemd("READY=1")
            log.info("heartbeat-agent %s ready (pid %d)", __version__, os.getpid())
            await self._stop.wait()
            notify_systemd("STOPPING=1")
        finally:
            await self.shutdown()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    async def startup(self) -> None:
        settings = self.settings
        # A second daemon must stop before it touches the queue or sends anything: the
        # lock stops one started at the same moment, before either has a socket.
        self._instance_lock = hold_instance_lock(os.fspath(settings.socket_path()))
        if self._instance_lock is None:
            raise SocketInUse(
                f"another heartbeat-agent daemon is already running ({settings.socket_path()})"
            )
        prepare_socket_path(settings.socket_path())
        db_path = settings.database_path()
        self.store, self.database_reset = HeartbeatStore.open_or_reset(db_path)
        self._check_wakatime_cfg_lines()
        self.destinations = configured_destinations(settings)
        self.reports = DaemonReports(settings, self.destinations, self.clock)
        self.ingest = Ingest(
            db_path,
            _builder(settings),
            Router(tuple(self.destinations)),
            self._on_committed,
            self._heal_database,
        )
        self.ingest.start()
        self._start_deliveries()
        # Plugins in use (every WakaTime plugin needs ~/.wakatime.cfg, or one reported lately):
        # the watcher's heartbeats wait for their late reports from the start.
        self.policy = ActivityPolicy(
            _policy_settings(settings),
            self._project_key,
            plugins_in_use=self._wakatime_cfg_read is not None
            or self.store.has_heartbeats_not_from(AGENT_PLUGIN, self.clock() - PLUGINS_REMEMBERED),
        )
        # What plugins queued while no daemon ran is stored before the socket opens, so the
        # first answers (`--today`, status) already count it.
        try:
            await asyncio.to_thread(self.adopt_offline_requests)
        except Exception as exc:  # they stay waiting in their file for the next check
            log.error("completing offline requests failed: %s", exc, exc_info=exc)
        self.ipc = IpcServer(settings.socket_path(), self.handle_request)
        await self.ipc.start()
        await asyncio.to_thread(self._start_watcher)
        await asyncio.to_thread(self._start_ai)
        self._retention_due()
        self._offline_check = self._loop.call_later(OFFLINE_CHECK_INTERVAL, self._offline_due)
        self._rescan = self._loop.call_later(settings.watch.rescan_interval, self._rescan_due)
        self._poll_wakatime_cfg()
        self._spawn(asyncio.to_thread(self._check_queue_size), "the queue size check")

    async def shutdown(self) -> None:
        if self._timer:
            self._timer.cancel()
        if self._retention:
            self._retention.cancel()
        if self._offline_check:
            self._offline_check.cancel()
        if self._rescan:
            self._rescan.cancel()
        if self._cfg_poll:
            self._cfg_poll.cancel()
        if self.watcher:
            await asyncio.to_thread(self.watcher.stop)
        if self.ai:
            await asyncio.to_thread(self.ai.stop)
        if self.ipc:
            await self.ipc.stop()
        self._flush_policy(final=True)
        await asyncio.to_thread(self.ingest.stop)
        await asyncio.to_thread(self._stop_deliveries)
        self.store.close()
        if self._instance_lock is not None:
            os.close(self._instance_lock)
        log.info("stopped")

    # -- sources ----------------------------------------------------------------------

    def watch_roots(self) -> list[str]:
        return self.watch_plan.paths if self.watch_plan is not None else []

    def _plan_watch(self) -> WatchPlan:
        watch = self.settings.watch
        return plan_watch(watch.paths, self.started_in, os.path.expanduser("~"), watch.ignored_dirs)

    def _rescan_due(self) -> None:
        """Plan the watch again every [watch] rescan_interval: a folder created since (a
        configured one, a new repository in ~) is picked up without a reload."""
        assert self._loop is not None
        self._spawn(self._rescan_watch(), "the watch folder rescan")
        self._rescan = self._loop.call_later(self.settings.watch.rescan_interval, self._rescan_due)

    async def _rescan_watch(self) -> None:
        async with self._reloading:
            plan = await asyncio.to_thread(self._plan_watch)
            if plan == self.watch_plan:
                return
            if self.watcher:
                await asyncio.to_thread(self.watcher.stop)
            self._project_of_folder.cache_clear()
            await asyncio.to_thread(self._start_watcher, plan)

    def _start_watcher(self, plan: WatchPlan | None = None) -> None:
        self.watch_plan = plan = plan or self._plan_watch()
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
        self._own_prefixes = self._own_files()
        roots = plan.paths
        watcher = FileWatcher(
            roots,
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
            self.watch_problem = f"file watcher off: {watch_limit_hint(exc)}"
            log.error("%s; reload (SIGHUP) to try again", self.watch_problem)
            self.watcher = None
            return
        self.watcher, self.watch_problem = watcher, None
        log.info("watching %s", ", ".join(roots) or "nothing")

    def _start_ai(self) -> None:
        """Follow the AI tools' transcripts unless `[ai] enabled = false` or wakatime-cli's
        `sync_ai_disabled` says not to; its heartbeats take the plugins' path (ingest)."""
        from agent.sources.ai.positions import PositionStore
        from agent.sources.ai.source import (
            AiActivitySource,
            SyncBusy,
            ai_sync_disabled,
            backfill_start,
            positions_path,
        )

        if not self.settings.ai.enabled or ai_sync_disabled():
            log.info("AI coding activity: off (settings)")
            return
        database = self.settings.database_path()
        try:
            self.ai = AiActivitySource(
                self.ingest.submit,
                PositionStore(positions_path(database)),
                lock_path=positions_path(database).with_suffix(".lock"),
                classifier=self.attribution,
                after=backfill_start(self.settings.ai.backfill_days, self.clock()),
            )
        except SyncBusy as exc:
            log.warning("AI coding activity: not read by this daemon: %s", exc)
            return
        self.ai.start()

    def _restart_ai(self) -> None:
        if self.ai:
            self.ai.stop()
            self.ai = None
        self._start_ai()

    def _own_files(self) -> tuple[str, ...]:
        """Path prefixes of the agent's own files (database, tokens, log), never activity;
        nor are the AI tools' transcripts (they are read as AI activity, not watched)."""
        own = [os.path.join(self.settings.database_path().parent, "")]
        own += [os.path.join(root, "") for tool in ai_tools() for root in tool.roots]
        if self.settings.log.file:
            own.append(os.path.abspath(os.path.expanduser(self.settings.log.file)))
        return tuple(own)

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

    def _policy_events(self) -> None:
        with self._watched_lock:
            events, self._watched = self._watched, []
        for what, path, at in events:
            if what == WRITTEN:
                self.policy.file_written(path, at)
            elif what == REMOVED:
                self.policy.file_removed(path, at)
            else:
                self.policy.signal(what, path, at)
        self._schedule_policy()

    def _schedule_policy(self) -> None:
        """One timer, only while the policy holds pending activity."""
        if self._timer:
            self._timer.cancel()
            self._timer = None
        deadline = self.policy.next_deadline()
        if deadline is not None and self._loop is not None:
            delay = max(0.0, deadline - self.clock())
            self._timer = self._loop.call_later(delay, self._flush_policy)

    def _flush_policy(self, final: bool = False) -> None:
        self._timer = None
        now = self.clock()
        due = self.policy.due(now if not final else float("inf"))
        heartbeats = [
            Heartbeat(entity=a.path, time=a.time, type="file", is_write=a.is_write) for a in due
        ]
        if heartbeats:
            self.ingest.submit(self.attribution.attribute(heartbeats))
        for op in self.policy.finished_operations():
            log.info("not coding: %s, %d file write(s) dropped", op.describe(), op.writes)
        if not final:
            self._schedule_policy()

    def _project_key(self, path: str) -> str:
        """The folder a path's project lives in, for storm detection: the nearest folder
        with a VCS or project marker below a watch root, else the watch root."""
        return self._project_of_folder(os.path.dirname(path))

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one daemon per process
    def _project_of_folder(self, folder: str) -> str:
        """Cached per folder, not per file: a burst of new files costs no stat calls."""
        roots = self.watch_roots()
        while True:
            if any(os.path.exists(os.path.join(folder, m)) for m in PROJECT_MARKERS):
                return folder
            parent = os.path.dirname(folder)
            if folder in roots or parent == folder:
                return folder
            folder = parent

    # -- requests (the socket) --------------------------------------------------------

    def handle_request(self, request: dict[str, Any]) -> dict[str, Any] | Awaitable[dict[str, Any]]:
        """Served on the loop without a task: an answer now, or a future of one."""
        op = request["op"]
        if op in ("heartbeat", "heartbeats"):
            return self._accept(request)
        if op == "ping":
            return {"ok": True, "version": __version__, "pid": os.getpid()}
        if op == "status":
            return self._in_thread(self.status)
        if op == "today":
            if request.get("status_bar") is True:  # the plugins' `--today` (DESIGN §2a)
                return self._in_thread(self.reports.status_bar)
            return self._in_thread(self.reports.today)
        if op == "sync_ai":  # the plugins' --sync-ai-activity: a nudge, answered at once
            if self.ai is not None:
                self.ai.nudge()
            return {"ok": True, "enabled": self.ai is not None}
        if op == "why":
            return self.why(request.get("path"))
        if op == "flush":
            self._spawn(asyncio.to_thread(self.adopt_offline_requests), "offline requests")
            self.flush()
            return {"ok": True, "queued": self.store.counts(among=self.destination_names()).queued}
        raise ProtocolError(f"op: unknown op {op!r}")

    def why(self, path: object) -> dict[str, Any]:
        """Why the latest writes to ``path`` counted or not: the ignore rules' verdict and the
        policy's latest decision (`agent why`)."""
        if not isinstance(path, str) or not os.path.isabs(path):
            raise ProtocolError("path: must be an absolute path")
        path = os.path.normpath(path)
        watching = self.watcher.watching if self.watcher else []
        root = next((r for r in watching if path.startswith(os.path.join(r, ""))), None)
        if root is None:
            ignored: str | None = "not below a watched folder"
        else:
            assert self.watcher is not None
            ignored = self.watcher.ignore.reason(path, root=root)
        decision = self.policy.why(path)
        return {
            "ok": True,
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

    @staticmethod
    async def _in_thread(report: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return {"ok": True, **await asyncio.to_thread(report)}

    def _accept(self, request: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        """Validate on the loop (errors are answered at once); the answer comes after the
        commit."""
        heartbeats, problems, key = read_heartbeat_request(request, self.clock())
        privacy = request.get("privacy")
        if privacy is not None and (problem := flags_problem(privacy)):
            raise ProtocolError(problem)
        offered_url = request.get("api_url")
        server = None
        if offered_url is not None:
            if not isinstance(offered_url, str):
                raise ProtocolError("api_url: must be a string")
            try:
                server = plugin_server(offered_url, key, self.destinations)
            except ValueError as exc:
                raise ProtocolError(f"api_url: {exc}") from None
        if server is not None:
            self._serve_plugin_server(server)
        elif key:
            self._take_plugin_key(key)
        if privacy or server:  # the plugin's flags and server go with its heartbeats
            name = server.name if server else None
            heartbeats = [replace(hb, privacy=privacy, server=name) for hb in heartbeats]
        # `skip_invalid` (the compat command's extras): store the good ones, name the rest.
        skip_invalid = request.get("skip_invalid") is True
        plugin_heartbeat = self.policy.plugin_heartbeat
        for hb in heartbeats:
            if hb.type == "file":
                plugin_heartbeat(hb.entity, hb.time)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        def settle(stored: int | BaseException) -> None:
            if isinstance(stored, BaseException):
                answer.set_result({"ok": False, "error": f"not stored: {stored}"})
            else:
                stored_answer: dict[str, Any] = {"ok": True, "queued": stored}
                if skip_invalid:
                    stored_answer["skipped"] = [
                        {"index": index, "error": message} for index, message in problems
                    ]
                if trouble := self._delivery_trouble():
                    stored_answer["delivery"] = trouble
                    if trouble == "misconfigured":
                        stored_answer["problem"] = self.config_problem()
                answer.set_result(stored_answer)

        self.ingest.submit_from_loop(heartbeats, settle)
        return answer

    # -- delivery ---------------------------------------------------------------------

    def _serve_plugin_server(self, server: Destination) -> None:
        """Deliver to the server a plugin named (its own destination, with its own key),
        from now on and after reloads; a new key from that plugin replaces the old one."""
        if not server.name.startswith(PLUGIN_PREFIX):
            return  # a configured destination: delivered already
        if self.plugin_servers.get(server.name) == server:
            return
        self.plugin_servers[server.name] = server
        self.destinations = [d for d in self.destinations if d.name != server.name] + [server]
        self.ingest.reconfigure(self.ingest.builder, Router(tuple(self.destinations)))
        self.reports.reconfigure(self.settings, self.destinations)
        if (old := self.deliveries.pop(server.name, None)) is not None:
            self._spawn(asyncio.to_thread(self._stop_delivery, old), "stopping a delivery")
        self._start_delivery(server)

    def _take_plugin_key(self, key: str) -> None:
        """A plugin's key (never logged): kept for the default destination, which tries it
        at once if it was paused for want of credentials."""
        if not key or key == self.plugin_api_key:
            return
        self.plugin_api_key = key
        loop = self.deliveries.get(DEFAULT)
        if loop is not None:
            loop.credentials_offered()

    def _delivery_trouble(self) -> str | None:
        """The default destination's trouble, if any (DeliveryStatus.trouble). While it is
        paused, a ~/.wakatime.cfg that changed since the configuration was read is read
        again: that is where a plugin writes the key it asked its user for."""
        if self.config_problem():
            return "misconfigured"
        loop = self.deliveries.get(DEFAULT)
        trouble = loop.sender.status.trouble if loop is not None else None
        if trouble == "paused":
            self._reload_if_wakatime_cfg_changed()
        return trouble

    def config_problem(self) -> str | None:
        """What in the configuration keeps the default server from getting heartbeats."""
        default = self.destinations[0].problem if self.destinations else None
        return self.wakatime_cfg_problem or default

    def _poll_wakatime_cfg(self) -> None:
        """Look at ~/.wakatime.cfg every few seconds (one stat): a key or URL written there
        (by the user, or by a plugin that asked for it) is taken without a SIGHUP."""
        assert self._loop is not None
        self._reload_if_wakatime_cfg_changed()
        self._cfg_poll = self._loop.call_later(WAKATIME_CFG_POLL, self._poll_wakatime_cfg)

    def _reload_if_wakatime_cfg_changed(self) -> None:
        signature = wakatime_cfg.signature()
        if signature != self._wakatime_cfg_read:
            self._wakatime_cfg_read = signature
            log.info("%s changed: reloading the configuration", wakatime_cfg.default_path())
            self._request_reload()

    def _check_wakatime_cfg_lines(self) -> None:
        try:
            wakatime_cfg.load_checked()
        except wakatime_cfg.CfgError as exc:
            if str(exc) != self.wakatime_cfg_problem:
                log.error("%s; its other lines are used", exc)
            self.wakatime_cfg_problem = str(exc)
        else:
            self.wakatime_cfg_problem = None

    def _start_deliveries(self) -> None:
        for destination in self.destinations:
            self._start_delivery(destination)

    def _start_delivery(self, destination: Destination) -> None:
        if destination.problem:  # nothing may be sent there: its heartbeats wait queued
            log.error("%s: delivery paused: %s", destination.name, destination.problem)
            return
        sender = build_sender(self.settings, destination, self.clock, lambda: self.plugin_api_key)
        loop = DeliveryLoop(sender, self.ingest.request_heal)
        self.deliveries[destination.name] = loop
        loop.start()

    def _stop_deliveries(self) -> None:
        for loop in self.deliveries.values():
            self._stop_delivery(loop)
        self.deliveries.clear()

    @staticmethod
    def _stop_delivery(loop: DeliveryLoop) -> None:
        loop.stop()
        loop.sender.close()

    def _heal_database(self) -> None:
        """In the ingest's writer thread, its connection closed, once the database turned
        out damaged while running: the delivery threads let go of it, it is set aside with
        every heartbeat still readable copied into a fresh one, and they start again."""
        path = self.settings.database_path()
        self._stop_deliveries()
        self.store.close()
        try:
            self.store, self.database_reset = HeartbeatStore.set_aside(
                path, "damaged while running"
            )
        except Exception:
            self.store = HeartbeatStore(path)
            raise
        finally:
            self._start_deliveries()

    def _wake_deliveries(self) -> None:
        for loop in list(self.deliveries.values()):
            loop.wake()

    def flush(self) -> None:
        """Deliver now: no backoff wait, refused credentials tried again. The errors shown
        until then are cleared, so what `status` reports afterwards is this attempt's."""
        for loop in list(self.deliveries.values()):
            loop.flush()

    def _on_committed(self) -> None:
        """From the ingest thread, after each commit: deliver, and watch the queue's size."""
        self.reports.history_changed()
        self._wake_deliveries()
        now = self.clock()
        if now - self._queue_checked >= QUEUE_CHECK_INTERVAL:
            self._queue_checked = now
            self._check_queue_size()

    def _check_queue_size(self) -> None:
        """Warn, loudly and once, when undelivered heartbeats pass [queue] max_queued; none
        is ever dropped for it."""
        limit = self.settings.queue.max_queued
        with self._reader() as store:
            queued = store.queued_total(self.destination_names())
        was_over, self.over_max_queued = self.over_max_queued, queued > limit  # before the log
        if self.over_max_queued and not was_over:
            log.error(
                "the queue holds %d undelivered heartbeats, more than [queue] max_queued = %d;"
                " none is dropped, but delivery is not keeping up: see `agent status`",
                queued,
                limit,
            )
        elif was_over and not self.over_max_queued:
            log.info("the queue is back under [queue] max_queued: %d undelivered", queued)

    # -- requests queued while no daemon ran ------------------------------------------

    def _offline_due(self) -> None:
        """Take what the compat command queued without a daemon, every
        OFFLINE_CHECK_INTERVAL after startup's (one that found this daemon busy may add more)."""
        assert self._loop is not None
        self._spawn(asyncio.to_thread(self.adopt_offline_requests), "completing offline requests")
        self._offline_check = self._loop.call_later(OFFLINE_CHECK_INTERVAL, self._offline_due)

    def adopt_offline_requests(self) -> int:
        """Complete what the compat command queued without a daemon; how many heartbeats
        were stored. One adoption at a time (startup, timer and `flush` may overlap)."""
        if not self._adopting.acquire(blocking=False):
            return 0
        try:
            with self._reader() as store:
                stored = adopt_offline_requests(
                    store, self.ingest.builder, self.ingest.router, self._take_plugin_key_threadsafe
                )
        finally:
            self._adopting.release()
        if stored:
            self._on_committed()
        return stored

    def _take_plugin_key_threadsafe(self, key: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._take_plugin_key, key)

    # -- history retention ------------------------------------------------------------

    def _retention_due(self) -> None:
        """Prune the history now (off the loop) and again in a day: a timer, no polling."""
        assert self._loop is not None
        self._spawn(asyncio.to_thread(self.prune_history), "pruning the history")
        self._retention = self._loop.call_later(RETENTION_INTERVAL, self._retention_due)

    def prune_history(self) -> int:
        """Forget delivered heartbeats older than [queue] history_days."""
        days = self.settings.queue.history_days
        with self._reader() as store:
            removed = store.prune(self.clock() - days * 86400)
        if removed:
            log.info("history: forgot %d delivered heartbeat(s) older than %d days", removed, days)
        return removed

    def _spawn(self, work: Any, what: str) -> None:
        """Run a coroutine as a task that is kept referenced and whose failure is logged."""
        assert self._loop is not None
        task = self._loop.create_task(work, name=what)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s failed: %s", task.get_name(), exc, exc_info=exc)

    # -- reload -----------------------------------------------------------------------

    def _request_reload(self) -> None:
        self._spawn(self.reload(), "the reload")

    async def reload(self) -> bool:
        """Re-read the configuration: new roots, keys and destinations; the queue stays.
        Reloads run one at a time; a configuration that does not load is refused whole.
        The database and the socket stay where they are (moving them needs a restart)."""
        async with self._reloading:
            try:
                self._wakatime_cfg_read = wakatime_cfg.signature()
                settings = await asyncio.to_thread(self._reload_settings)
                destinations = configured_destinations(settings)
                destinations += self.plugin_servers.values()
                builder = _builder(settings)
            except Exception as exc:
                log.error("reload refused, keeping the running configuration: %s", exc)
                return False
            self._keep_locations(settings)
            self._check_wakatime_cfg_lines()
            self.settings = settings
            self.destinations = destinations
            self.ingest.reconfigure(builder, Router(tuple(destinations)))
            self.reports.reconfigure(settings, destinations)
            self.policy.reconfigure(_policy_settings(settings))
            await asyncio.to_thread(self._stop_deliveries)
            self._start_deliveries()
            if self.watcher:
                await asyncio.to_thread(self.watcher.stop)
            self._project_of_folder.cache_clear()
            await asyncio.to_thread(self._start_watcher)
            await asyncio.to_thread(self._restart_ai)
            await asyncio.to_thread(self._check_queue_size)
            log.info("configuration reloaded")
            return True

    def _keep_locations(self, settings: Settings) -> None:
        running = (self.settings.database_path(), self.settings.socket_path())
        wanted = (settings.database_path(), settings.socket_path())
        for name, old, new in zip(("[queue] path", "[ipc] socket"), running, wanted, strict=True):
            if old != new:
                log.warning("%s changed to %s: takes effect at the next restart", name, new)
        settings.queue.path, settings.ipc.socket = running

    # -- reports ----------------------------------------------------------------------

    def destination_names(self) -> list[str]:
        """The configured destinations: queued rows of others (since removed) are kept but
        never counted."""
        return [destination.name for destination in self.destinations]

    def status(self) -> dict[str, Any]:
        state = DaemonState(
            pid=os.getpid(),
            version=__version__,
            uptime_seconds=self.clock() - self.started,
            watching=self.watcher.roots if self.watcher else [],
            watch_problem=self.watch_problem or (self.watcher and self.watcher.problem),
            database_reset=str(self.database_reset) if self.database_reset else None,
            delivery={name: loop.sender.status for name, loop in self.deliveries.items()},
            watch=watch_report(self.watch_plan),
            config_problem=self.config_problem(),
        )
        return self.reports.status(state)

    def _reader(self) -> HeartbeatStore:
        """A connection of its own for the thread it is used in (queue check, pruning)."""
        return HeartbeatStore(self.settings.database_path())


def _builder(settings: Settings) -> HeartbeatBuilder:
    return HeartbeatBuilder(Detector(detect_options(settings)), privacy_for(settings))


def _policy_settings(settings: Settings) -> PolicySettings:
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


def notify_systemd(state: str) -> None:
    """sd_notify without a dependency: one datagram to $NOTIFY_SOCKET, if set."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
        sock.sendto(state.encode(), address)
