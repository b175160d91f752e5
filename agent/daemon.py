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
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from agent import __version__
from agent.builder import HeartbeatBuilder, detect_options
from agent.config import ConfigError, Settings, load_settings
from agent.destinations import Destination, KeySource, Router, configured_destinations
from agent.detect import Detector
from agent.heartbeat import Heartbeat, HeartbeatError
from agent.ignore import IgnoreRules
from agent.ingest import Ingest
from agent.ipc.protocol import MAX_BATCH, ProtocolError
from agent.ipc.server import IpcServer
from agent.policy import ActivityPolicy, PolicySettings
from agent.sender import DeliveryLoop, Endpoint, Sender, basic_authorization
from agent.store import HeartbeatStore
from agent.useragent import machine_name
from agent.watcher import FileWatcher

log = logging.getLogger(__name__)

PROJECT_MARKERS = (".git", ".hg", ".svn", ".wakatime-project")


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
        self.clock = clock
        self.started = clock()
        self.database_reset: Path | None = None
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.deliveries: dict[str, DeliveryLoop] = {}
        self.destinations: list[Destination] = []
        self.watcher: FileWatcher | None = None
        self.ipc: IpcServer | None = None

    # -- lifecycle --------------------------------------------------------------------

    def run(self) -> None:
        asyncio.run(self.serve())

    async def serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.startup()
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
        db_path = settings.database_path()
        self.store, self.database_reset = HeartbeatStore.open_or_reset(db_path)
        self.detector = Detector(detect_options(settings))
        self.builder = HeartbeatBuilder(self.detector)
        self.destinations = configured_destinations(settings)
        self.ingest = Ingest(
            db_path, self.builder, Router(tuple(self.destinations)), self._wake_deliveries
        )
        self.ingest.start()
        self._start_deliveries()
        self.policy = ActivityPolicy(_policy_settings(settings), self._project_key)
        self.ipc = IpcServer(settings.socket_path(), self.handle_request)
        await self.ipc.start()
        await asyncio.to_thread(self._start_watcher)

    async def shutdown(self) -> None:
        if self._timer:
            self._timer.cancel()
        if self.watcher:
            await asyncio.to_thread(self.watcher.stop)
        if self.ipc:
            await self.ipc.stop()
        self._flush_policy(final=True)
        await asyncio.to_thread(self.ingest.stop)
        await asyncio.to_thread(self._stop_deliveries)
        self.store.close()
        log.info("stopped")

    # -- sources ----------------------------------------------------------------------

    def watch_roots(self) -> list[str]:
        paths = self.settings.watch.paths or [Path.cwd()]
        return [os.path.abspath(os.path.expanduser(p)) for p in paths]

    def _start_watcher(self) -> None:
        watch = self.settings.watch
        ignore = IgnoreRules(
            ignored_dirs=watch.ignored_dirs,
            exclude=watch.exclude,
            include=watch.include,
            use_gitignore=watch.use_gitignore,
        )
        roots = [r for r in self.watch_roots() if os.path.isdir(r)]
        for missing in set(self.watch_roots()) - set(roots):
            log.warning("watch path %s is not a folder; not watching it", missing)
        self.watcher = FileWatcher(
            roots, ignore, self._on_write, clock=self.clock, follow_symlinks=watch.follow_symlinks
        )
        self.watcher.start()
        log.info("watching %s", ", ".join(roots) or "nothing")

    def _on_write(self, path: str, at: float) -> None:
        """From the watcher's thread: hop onto the loop, where the policy lives."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._policy_write, path, at)

    def _policy_write(self, path: str, at: float) -> None:
        self.policy.file_written(path, at)
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
            self.ingest.submit(heartbeats)
        if not final:
            self._schedule_policy()

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one daemon per process
    def _project_key(self, path: str) -> str:
        """The folder a path's project lives in, for storm detection: the nearest folder
        with a VCS or project marker below a watch root, else the watch root."""
        roots = self.watch_roots()
        folder = os.path.dirname(path)
        while True:
            if any(os.path.exists(os.path.join(folder, m)) for m in PROJECT_MARKERS):
                return folder
            parent = os.path.dirname(folder)
            if folder in roots or parent == folder:
                return folder
            folder = parent

    # -- requests (the socket) --------------------------------------------------------

    async def handle_request(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request["op"]
        if op == "ping":
            return {"ok": True, "version": __version__, "pid": os.getpid()}
        if op in ("heartbeat", "heartbeats"):
            return await self._accept(request)
        if op == "status":
            return {"ok": True, **await asyncio.to_thread(self.status)}
        if op == "today":
            return {"ok": True, **await asyncio.to_thread(self.today)}
        if op == "flush":
            self._wake_deliveries(force=True)
            return {"ok": True, "queued": self.store.counts().queued}
        raise ProtocolError(f"op: unknown op {op!r}")

    async def _accept(self, request: dict[str, Any]) -> dict[str, Any]:
        if request["op"] == "heartbeat":
            items = [request.get("heartbeat")]
        else:
            items = request.get("heartbeats")
            if not isinstance(items, list):
                raise ProtocolError("heartbeats: must be a list of heartbeat objects")
            if len(items) > MAX_BATCH:
                raise ProtocolError(f"heartbeats: at most {MAX_BATCH} in one request")
        heartbeats = []
        problems = []
        for index, item in enumerate(items):
            try:
                heartbeats.append(Heartbeat.from_mapping(item))
            except HeartbeatError as exc:
                prefix = "heartbeat" if request["op"] == "heartbeat" else f"heartbeats[{index}]"
                problems.append(
                    "; ".join(f"{prefix}.{k}: {v}" for k, v in exc.problems.items())
                    if exc.problems.get("heartbeat") is None
                    else f"{prefix}: {exc.problems['heartbeat']}"
                )
        if problems:
            raise ProtocolError("; ".join(problems))
        for hb in heartbeats:
            if hb.type == "file":
                self.policy.plugin_heartbeat(hb.entity, hb.time)
        try:
            stored = await asyncio.wrap_future(self.ingest.submit(heartbeats))
        except Exception as exc:
            return {"ok": False, "error": f"not stored: {exc}"}
        return {"ok": True, "queued": stored}

    # -- delivery ---------------------------------------------------------------------

    def _start_deliveries(self) -> None:
        hostname = machine_name(self.settings.api.hostname)
        api = self.settings.api
        for destination in self.destinations:
            store = HeartbeatStore(self.settings.database_path())
            store.destination_id(destination.name, destination.url)
            key = KeySource(destination)
            client = httpx.Client(
                timeout=api.timeout,
                verify=str(api.ca_bundle) if api.ca_bundle else True,
                proxy=api.proxy,
                follow_redirects=True,
                headers={"Accept": "application/json"},
            )
            sender = Sender(
                store,
                Endpoint(destination.name, destination.url, _authorization(key)),
                client,
                hostname,
                batch_size=self.settings.queue.batch_size,
                clock=self.clock,
            )
            loop = DeliveryLoop(sender)
            self.deliveries[destination.name] = loop
            loop.start()

    def _stop_deliveries(self) -> None:
        for loop in self.deliveries.values():
            loop.stop()
            loop.sender.client.close()
            loop.sender.store.close()
        self.deliveries.clear()

    def _wake_deliveries(self, force: bool = False) -> None:
        for loop in list(self.deliveries.values()):
            loop.wake(force=force)

    # -- reload -----------------------------------------------------------------------

    def _request_reload(self) -> None:
        assert self._loop is not None
        self._loop.create_task(self.reload())

    async def reload(self) -> None:
        """Re-read the configuration: new roots, keys and destinations; the queue stays."""
        try:
            settings = await asyncio.to_thread(self._reload_settings)
            destinations = configured_destinations(settings)
        except ConfigError as exc:
            log.error("reload refused, keeping the running configuration: %s", exc)
            return
        self.settings = settings
        self.destinations = destinations
        self.ingest.router = Router(tuple(destinations))
        self.detector = Detector(detect_options(settings))
        self.builder.detector = self.detector
        self.policy.settings = _policy_settings(settings)
        await asyncio.to_thread(self._stop_deliveries)
        self._start_deliveries()
        if self.watcher:
            await asyncio.to_thread(self.watcher.stop)
        self._project_key.cache_clear()
        await asyncio.to_thread(self._start_watcher)
        log.info("configuration reloaded")

    # -- reports ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self._reader() as store:
            counts = store.counts()
            destinations = []
            last_error = None
            for destination in self.destinations:
                loop = self.deliveries.get(destination.name)
                state = loop.sender.status if loop else None
                c = store.counts(destination.name)
                last = store.last_delivery(destination.name)
                error = state.paused or state.last_error if state else None
                last_error = last_error or error
                destinations.append(
                    {
                        "name": destination.name,
                        "url": destination.url,
                        "queued": c.queued,
                        "delivered": c.delivered,
                        "rejected": c.rejected,
                        "last_delivery": _iso(last),
                        "last_error": state.last_error if state else None,
                        "paused": state.paused if state else None,
                    }
                )
            return {
                "pid": os.getpid(),
                "version": __version__,
                "uptime_seconds": round(self.clock() - self.started, 3),
                "watching": self.watcher.roots if self.watcher else [],
                "queued": counts.queued,
                "rejected": counts.rejected,
                "delivered_total": counts.delivered,
                "last_delivery": _iso(store.last_delivery()),
                "last_error": last_error,
                "today_seconds": self.today()["total_seconds"],
                "database": str(self.settings.database_path()),
                "database_reset": str(self.database_reset) if self.database_reset else None,
                "socket": str(self.settings.socket_path()),
                "destinations": destinations,
            }

    def today(self) -> dict[str, Any]:
        from agent.stats import durations, format_duration

        start, end = _today_bounds(self.clock())
        with self._reader() as store:
            rows = store.history(start, end)
        total = durations([row.time for row in rows])
        return {"total_seconds": round(total, 3), "text": format_duration(total), "source": "local"}

    @contextlib.contextmanager
    def _reader(self) -> Any:
        store = HeartbeatStore(self.settings.database_path())
        try:
            yield store
        finally:
            store.close()


def _authorization(key: KeySource) -> Callable[[], str | None]:
    def authorization() -> str | None:
        value = key()
        return basic_authorization(value) if value else None

    return authorization


def _policy_settings(settings: Settings) -> PolicySettings:
    hb = settings.heartbeats
    return PolicySettings(
        debounce_seconds=hb.debounce_seconds,
        autosave_interval=hb.autosave_interval,
        heartbeat_interval=hb.heartbeat_interval,
        storm_files=hb.storm_files,
        storm_window=hb.storm_window,
        plugin_grace=hb.plugin_grace,
    )


def _today_bounds(now: float) -> tuple[float, float]:
    """Local midnight to midnight around now."""
    local = time.localtime(now)
    start = time.mktime((local.tm_year, local.tm_mon, local.tm_mday, 0, 0, 0, 0, 0, -1))
    end = time.mktime((local.tm_year, local.tm_mon, local.tm_mday + 1, 0, 0, 0, 0, 0, -1))
    return start, end


def _iso(value: float | None) -> str | None:
    if value is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(value))


def notify_systemd(state: str) -> None:
    """sd_notify without a dependency: one datagram to $NOTIFY_SOCKET, if set."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
        sock.sendto(state.encode(), address)
