"""Reports: `status`, `today` and the plugins' status bar, made in one place for the daemon
(its socket answers) and for the commands that read the database when no daemon runs, so
the two can never count differently.

Every figure for a day comes from `day_summary`, which counts with the configured
`[heartbeats] duration_timeout`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.pipeline.stats import Summary, day_bounds, iso_time, status_bar, today_summary
from agent.sources.watch_roots import watch_report

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.delivery.sender import DeliveryStatus
    from agent.pipeline.destinations import Destination
    from agent.pipeline.store import HeartbeatStore

log = logging.getLogger(__name__)

TODAY_ROWS = 10  # rows of each breakdown in the daemon's `today` answer
STATUS_BAR_MAX_AGE = 60.0  # seconds the server's `--today` figure is reused


def day_summary(store: HeartbeatStore | None, settings: Settings, now: float) -> Summary:
    """Today's coding time and where it went, from the local history (None: no database
    yet, so nothing was ever recorded)."""
    if store is None:
        return Summary(now, now, 0.0, {})
    return today_summary(store.history, now, settings.heartbeats.duration_timeout)


def today_report(
    store: HeartbeatStore | None, settings: Settings, now: float, rows: int = TODAY_ROWS
) -> dict[str, Any]:
    """The `today` answer: the total, its text and the top ``rows`` of each breakdown."""
    return {**day_summary(store, settings, now).to_json(limit=rows), "source": "local"}


def status_bar_report(
    store: HeartbeatStore | None, settings: Settings, now: float
) -> dict[str, Any]:
    """What `--today --output raw-json` prints (the server's `status_bar/today` shape), made
    from the local history."""
    from agent.pipeline.useragent import local_timezone

    return status_bar(day_summary(store, settings, now), now, local_timezone())


def status_bar_answer(local: dict[str, Any], server: dict[str, Any] | None) -> dict[str, Any]:
    """The `today` answer with the status bar plugins print for `--today`: the server's when
    it counts at least as much for the same day (it also knows other machines), else the
    local one (which knows what is not sent yet)."""
    chosen, source = local, "local"
    if server is not None:
        server_data, local_data = server.get("data") or {}, local["data"]
        server_day = (server_data.get("range") or {}).get("date")
        same_day = server_day in (None, local_data["range"]["date"])
        server_total = (server_data.get("grand_total") or {}).get("total_seconds") or 0
        if same_day and server_total >= local_data["grand_total"]["total_seconds"]:
            chosen, source = server, "server"
    total = (chosen.get("data") or {}).get("grand_total") or {}
    return {
        "total_seconds": total.get("total_seconds", 0),
        "text": total.get("text", ""),
        "source": source,
        "status_bar": chosen,
    }


@dataclass(frozen=True)
class DaemonState:
    """What only a running daemon knows, added to the database's figures in its `status`."""

    pid: int
    version: str
    uptime_seconds: float
    watching: Sequence[str]
    # Why nothing (or not everything) is watched, e.g. the inotify watch limit.
    watch_problem: str | None = None
    database_reset: str | None = None
    # Each destination's live delivery state, by destination name.
    delivery: Mapping[str, DeliveryStatus] = field(default_factory=dict)
    # Each watched folder and why, folders waiting to exist
    # (agent.sources.watch_roots.watch_report).
    watch: Mapping[str, Any] = field(default_factory=dict)
    # What in the configuration keeps heartbeats from the default server (a URL, a cfg line).
    config_problem: str | None = None


def status_report(
    store: HeartbeatStore | None,
    settings: Settings,
    destinations: Sequence[Destination],
    now: float,
    daemon: DaemonState | None = None,
) -> dict[str, Any]:
    """`agent status --json`: what the database knows, and with a running daemon its live
    state; the same keys either way. Queued rows of destinations no longer configured are
    kept but not counted."""
    from agent.delivery.sender import display_url

    report: dict[str, Any] = {
        "running": daemon is not None,
        "pid": daemon.pid if daemon else None,
        "version": daemon.version if daemon else None,
        "uptime_seconds": round(daemon.uptime_seconds, 3) if daemon else None,
        "watching": list(daemon.watching) if daemon else [],
        "watch_problem": daemon.watch_problem if daemon else None,
        **(daemon.watch if daemon else watch_report(None)),
        "queued": 0,
        "rejected": 0,
        "delivered_total": 0,
        "last_delivery": None,
        "last_error": None,
        "max_queued": settings.queue.max_queued,
        "today_seconds": round(day_summary(store, settings, now).total_seconds, 3),
        "database": str(settings.database_path()),
        "database_reset": daemon.database_reset if daemon else None,
        "socket": str(settings.socket_path()),
        "destinations": [],
        "config_problem": daemon.config_problem if daemon else _default_problem(destinations),
    }
    if store is None:
        return report
    counts = store.counts(among=[destination.name for destination in destinations])
    live = daemon.delivery if daemon else {}
    last_error = report["config_problem"]
    for destination in destinations:
        entry = store.destination_report(destination.name, display_url(destination.url))
        if destination.problem:  # nothing may be sent there: its heartbeats wait queued
            entry.update(last_error=None, paused=destination.problem)
            last_error = last_error or destination.problem
        elif (state := live.get(destination.name)) is not None:
            entry.update(last_error=state.last_error, paused=state.paused)
            last_error = last_error or state.paused or state.last_error
        report["destinations"].append(entry)
    report.update(
        queued=counts.queued,
        rejected=counts.rejected,
        delivered_total=counts.delivered,
        last_delivery=iso_time(store.last_delivery()),
        last_error=last_error,
    )
    return report


def _default_problem(destinations: Sequence[Destination]) -> str | None:
    return destinations[0].problem if destinations else None


# ----- the daemon's reports ------------------------------------------------------------------


class DaemonReports:
    """The daemon's report answers, each read through a store connection of its own in the
    thread it runs in. The server's status bar is fetched off the request path, at most once
    per STATUS_BAR_MAX_AGE; the local one is made again only after a commit or at midnight
    (status lines poll often). Built with its clock, the server fetch and the way that
    fetch runs, so it is tested in-process."""

    def __init__(
        self,
        settings: Settings,
        destinations: Sequence[Destination],
        clock: Callable[[], float] = time.time,
        *,
        server_status_bar: Callable[[], dict[str, Any] | None] | None = None,
        run: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.destinations = list(destinations)
        self.clock = clock
        self.server_today = CachedFetch(
            server_status_bar or (lambda: fetch_server_status_bar(self.settings)), clock, run=run
        )
        self._history = 0  # commits seen: the local history changed
        self._local_status_bar: tuple[tuple[int, str], dict[str, Any]] | None = None

    def reconfigure(self, settings: Settings, destinations: Sequence[Destination]) -> None:
        self.settings, self.destinations = settings, list(destinations)

    def history_changed(self) -> None:
        """After each commit (any thread): cached figures of the history are stale."""
        self._history += 1

    def status(self, daemon: DaemonState) -> dict[str, Any]:
        with self._reader() as store:
            return status_report(store, self.settings, self.destinations, self.clock(), daemon)

    def today(self) -> dict[str, Any]:
        with self._reader() as store:
            return today_report(store, self.settings, self.clock())

    def status_bar(self) -> dict[str, Any]:
        """The `today` answer for the plugins' `--today` (status_bar_answer)."""
        return status_bar_answer(self._local_status_bar_today(), self.server_today.get())

    def _local_status_bar_today(self) -> dict[str, Any]:
        now = self.clock()
        key = (self._history, time.strftime("%Y-%m-%d", time.localtime(day_bounds(now)[0])))
        cached = self._local_status_bar
        if cached is not None and cached[0] == key:
            return cached[1]
        with self._reader() as store:
            local = status_bar_report(store, self.settings, now)
        self._local_status_bar = (key, local)
        return local

    def _reader(self) -> HeartbeatStore:
        from agent.pipeline.store import HeartbeatStore

        return HeartbeatStore(self.settings.database_path())


def fetch_server_status_bar(settings: Settings) -> dict[str, Any] | None:
    """The server's status bar for today, or None (logged) when it cannot be read."""
    from agent.config import ConfigError
    from agent.delivery.api import ApiError, WakaTimeApi

    try:
        with WakaTimeApi.from_settings(settings) as api:
            return api.status_bar_today()
    except (ApiError, ConfigError) as exc:
        log.debug("status bar: %s", exc)
    except Exception:  # only a nicety for `--today`: never worth more than a log line
        log.exception("status bar: the server's figure could not be read")
    return None


def _in_a_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="fetch", daemon=True).start()


class CachedFetch:
    """A value fetched off the caller's path (`run`: in a thread of its own) at most once per
    `max_age` seconds; readers get the last good one at once, so no request waits on the
    network."""

    def __init__(
        self,
        fetch: Callable[[], dict[str, Any] | None],
        clock: Callable[[], float],
        max_age: float = STATUS_BAR_MAX_AGE,
        run: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self.max_age = max_age
        self._run = run or _in_a_thread
        self._lock = threading.Lock()
        self._value: dict[str, Any] | None = None
        self._fetched_at = float("-inf")
        self._running = False

    def get(self) -> dict[str, Any] | None:
        with self._lock:
            start = not self._running and self._clock() - self._fetched_at >= self.max_age
            self._running = self._running or start
        if start:
            self._run(self._refresh)
        return self._value

    def _refresh(self) -> None:
        try:
            value = self._fetch()
        finally:
            with self._lock:
                self._fetched_at = self._clock()
                self._running = False
        if value is not None:
            self._value = value
