"""The daemon: a supervisor of components, in the spirit of uvicorn's Config → Server.

`Daemon(settings).run()` starts each component in the order data flows backwards (the
store, the ingest, delivery, then the sources that feed them), serves until SIGTERM/SIGINT,
reloads on SIGHUP (or when ~/.wakatime.cfg changes) by handing each component the new
settings, and stops them in reverse. Signals are handled here and nowhere else; what each
component does is in its own module (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.autostart import hold_instance_lock
from agent.config import Settings, load_settings
from agent.delivery.deliveries import Deliveries
from agent.ipc.server import IpcServer, SocketInUse, prepare_socket_path
from agent.pipeline.builder import HeartbeatBuilder, detect_options, privacy_for
from agent.pipeline.destinations import Destination, Router, configured_destinations
from agent.pipeline.detect import Detector
from agent.pipeline.ingest import Ingest
from agent.pipeline.store import HeartbeatStore, StoreError
from agent.pipeline.upkeep import RETENTION_INTERVAL, StoreUpkeep
from agent.pipeline.useragent import AGENT_PLUGIN
from agent.reports import DaemonReports, DaemonState
from agent.service import notify_systemd
from agent.sources.ai.attribution import WriteClassifier
from agent.sources.file_activity import FileActivity
from agent.sources.offline_adopt import OFFLINE_CHECK_INTERVAL, OfflineAdoption
from agent.sources.requests import PluginRequests, Reports
from agent.tasks import BackgroundTasks
from agent.wakatime_cli import cfg as wakatime_cfg

if TYPE_CHECKING:  # imported when enabled: it loads its parsers and watchdog observer
    from agent.sources.ai.source import AiActivitySource

log = logging.getLogger(__name__)

PLUGINS_REMEMBERED = 7 * 86400.0  # seconds of history in which a plugin heartbeat counts
WAKATIME_CFG_POLL = 2.0  # seconds between looks (one stat) at ~/.wakatime.cfg for changes


class StartupError(Exception):
    """The daemon cannot start: its files cannot be used (a folder where the database
    goes, no permission, a read-only or full disk). One line says why; restarting it
    unchanged would fail the same way."""


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        reload: Callable[[], Settings] | None = None,
        clock: Callable[[], float] = time.time,
        handle_signals: bool = True,
    ) -> None:
        """`handle_signals`: SIGTERM/SIGINT stop it and SIGHUP reloads it (only a daemon on
        the main thread can take them; one embedded elsewhere is stopped with `stop()`)."""
        self.settings = settings
        self.handle_signals = handle_signals
        self._reload_settings = reload or (lambda: load_settings(settings.config_file))
        self.clock = clock
        self.started = clock()
        self.wakatime_cfg = wakatime_cfg.CfgWatch()
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()  # set once every component has started
        self._reloading = asyncio.Lock()
        self._instance_lock: int | None = None
        self.ai: AiActivitySource | None = None  # the AI-transcript source, when enabled

    # -- lifecycle --------------------------------------------------------------------

    def run(self) -> None:
        asyncio.run(self.serve())

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        self.tasks = BackgroundTasks(loop)
        try:
            await self.startup()
        except (StoreError, sqlite3.Error, OSError) as exc:
            where = self.settings.database_path()
            text = str(exc) if isinstance(exc, StoreError | OSError) else f"{where}: {exc}"
            raise StartupError(f"cannot start: {text}") from exc
        try:
            if self.handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, self._stop.set)
                loop.add_signal_handler(signal.SIGHUP, self.request_reload)
            notify_systemd("READY=1")
            log.info("heartbeat-agent %s ready (pid %d)", __version__, os.getpid())
            self.ready.set()
            await self._stop.wait()
            notify_systemd("STOPPING=1")
        finally:
            await self.shutdown()

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
        database = settings.database_path()
        self.store, self.database_reset = HeartbeatStore.open_or_reset(database)
        self._read_wakatime_cfg()
        destinations = configured_destinations(settings)
        self.reports = DaemonReports(settings, destinations, self.clock)
        self.ingest = Ingest(
            database, _builder(settings), Router(tuple(destinations)), self._committed, self._heal
        )
        self.ingest.start()
        self.deliveries = Deliveries(
            settings,
            destinations,
            clock=self.clock,
            on_destinations=self._destinations_changed,
            on_damaged=self.ingest.request_heal,
        )
        self.deliveries.start()
        self.upkeep = StoreUpkeep(settings, self.deliveries.names, self.clock)
        self.attribution = WriteClassifier()
        # Plugins in use (every WakaTime plugin needs ~/.wakatime.cfg, or one reported lately):
        # the watcher's heartbeats wait for their late reports from the start.
        self.activity = FileActivity(
            settings,
            self.ingest.submit,
            clock=self.clock,
            attribution=self.attribution,
            plugins_in_use=self.wakatime_cfg.read_as is not None
            or self.store.has_heartbeats_not_from(AGENT_PLUGIN, self.clock() - PLUGINS_REMEMBERED),
        )
        self.offline = OfflineAdoption(
            database, self.ingest, self._take_plugin_key_threadsafe, self._committed
        )
        # What plugins queued while no daemon ran is stored before the socket opens, so the
        # first answers (`--today`, status) already count it.
        try:
            await asyncio.to_thread(self.offline.adopt)
        except Exception as exc:  # they stay waiting in their file for the next check
            log.error("completing offline requests failed: %s", exc, exc_info=exc)
        self.ipc = IpcServer(settings.socket_path(), self._requests())
        await self.ipc.start()
        await self.activity.start()
        await asyncio.to_thread(self._start_ai)
        prune, adopt = _in_thread(self.upkeep.prune_history), _in_thread(self.offline.adopt)
        self.tasks.every(RETENTION_INTERVAL, prune, "pruning the history", now=True)
        self.tasks.every(OFFLINE_CHECK_INTERVAL, adopt, "completing offline requests", now=False)
        self.tasks.every(WAKATIME_CFG_POLL, self._wakatime_cfg_due, "the cfg check", now=True)
        self.tasks.in_thread(self.upkeep.check_queue_size, "the queue size check")

    async def shutdown(self) -> None:
        """Stop in reverse: the sources first (what the policy still holds is handed over),
        then the ingest (every heartbeat committed), delivery, the store."""
        self.tasks.stop()
        await self.ipc.stop()
        await self.activity.stop()
        if self.ai:
            await asyncio.to_thread(self.ai.stop)
        await asyncio.to_thread(self.ingest.stop)
        await asyncio.to_thread(self.deliveries.stop)
        self.store.close()
        if self._instance_lock is not None:
            os.close(self._instance_lock)
        log.info("stopped")

    def stop(self) -> None:
        self.tasks.loop.call_soon_threadsafe(self._stop.set)

    def _requests(self) -> PluginRequests:
        """The socket's ops, answered from the components."""
        return PluginRequests(
            self.ingest.submit_from_loop,
            self.deliveries,
            Reports(self.status, self.reports.today, self.reports.status_bar),
            delivery_trouble=self._delivery_trouble,
            config_problem=self.config_problem,
            flush=self.flush,
            plugin_saved=self.activity.plugin_heartbeat,
            why=self.activity.why,
            sync_ai=self._sync_ai,
            clock=self.clock,
        )

    def _start_ai(self) -> None:
        from agent.sources.ai.source import start_in_daemon

        if self.ai:
            self.ai.stop()
        self.ai = start_in_daemon(self.settings, self.ingest.submit, self.attribution, self.clock())

    def _sync_ai(self) -> bool:
        if self.ai is not None:
            self.ai.nudge()
        return self.ai is not None

    # -- reload -----------------------------------------------------------------------

    def request_reload(self) -> None:
        self.tasks.spawn(self.reload(), "the reload")

    async def reload(self) -> bool:
        """Re-read the configuration and hand it to each component; the queue stays.
        Reloads run one at a time; a configuration that does not load is refused whole.
        The database and the socket stay where they are (moving them needs a restart)."""
        async with self._reloading:
            try:
                settings = await asyncio.to_thread(self._reload_settings)
                destinations = configured_destinations(settings)
                builder = _builder(settings)
            except Exception as exc:
                log.error("reload refused, keeping the running configuration: %s", exc)
                return False
            for kept in settings.keep_locations_of(self.settings):
                log.warning("%s", kept)
            self._read_wakatime_cfg()
            self.settings = settings
            self.ingest.reconfigure(builder, self.ingest.router)  # the router follows below
            await asyncio.to_thread(self.deliveries.reconfigure, settings, destinations)
            await self.activity.reconfigure(settings)
            await asyncio.to_thread(self._start_ai)
            await asyncio.to_thread(self.upkeep.reconfigure, settings)
            log.info("configuration reloaded")
            return True

    def _destinations_changed(self, destinations: Sequence[Destination]) -> None:
        """The router and the reports follow the deliveries' destinations (a reload, a
        server a plugin named)."""
        self.ingest.reconfigure(self.ingest.builder, Router(tuple(destinations)))
        self.reports.reconfigure(self.settings, destinations)

    async def _wakatime_cfg_due(self) -> None:
        if self.wakatime_cfg.changed():
            log.info("%s changed: reloading the configuration", wakatime_cfg.default_path())
            self.request_reload()

    def _read_wakatime_cfg(self) -> None:
        if problem := self.wakatime_cfg.read():
            log.error("%s; its other lines are used", problem)

    # -- delivery ---------------------------------------------------------------------

    def config_problem(self) -> str | None:
        """What in the configuration keeps the default server from getting heartbeats."""
        return self.wakatime_cfg.problem or self.deliveries.problem()

    def _delivery_trouble(self) -> str | None:
        """The default destination's trouble. While it is paused, a ~/.wakatime.cfg that
        changed since the configuration was read is read again: that is where a plugin
        writes the key it asked its user for."""
        trouble = self.deliveries.trouble()
        if trouble == "paused":
            self.tasks.spawn(self._wakatime_cfg_due(), "the cfg check")
        return trouble

    def _take_plugin_key_threadsafe(self, key: str) -> None:
        self.tasks.loop.call_soon_threadsafe(self.deliveries.take_plugin_key, key)

    def flush(self) -> int:
        """Deliver now (`agent queue flush`), after taking what waits offline; how many
        heartbeats wait."""
        self.tasks.in_thread(self.offline.adopt, "offline requests")
        self.deliveries.flush()
        return self.store.counts(among=self.deliveries.names()).queued

    def _committed(self) -> None:
        """From the ingest thread, after each commit: deliver, and watch the queue's size."""
        self.reports.history_changed()
        self.deliveries.wake()
        self.upkeep.committed()

    def _heal(self) -> None:
        """In the ingest's writer thread, its connection closed, once the database turned
        out damaged while running: the delivery threads let go of it, it is set aside with
        every heartbeat still readable copied into a fresh one, and they start again."""
        path = self.settings.database_path()
        self.deliveries.stop()
        self.store.close()
        try:
            self.store, self.database_reset = HeartbeatStore.set_aside(
                path, "damaged while running"
            )
        except Exception:
            self.store = HeartbeatStore(path)
            raise
        finally:
            self.deliveries.start()

    # -- reports ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        state = DaemonState(
            pid=os.getpid(),
            version=__version__,
            uptime_seconds=self.clock() - self.started,
            database_reset=str(self.database_reset) if self.database_reset else None,
            delivery=self.deliveries.statuses(),
            config_problem=self.config_problem(),
            **self.activity.status(),
        )
        return self.reports.status(state)


def _in_thread(work: Callable[[], Any]) -> Callable[[], Any]:
    """Blocking `work` as a coroutine function, for BackgroundTasks.every."""
    return lambda: asyncio.to_thread(work)


def _builder(settings: Settings) -> HeartbeatBuilder:
    return HeartbeatBuilder(Detector(detect_options(settings)), privacy_for(settings))
