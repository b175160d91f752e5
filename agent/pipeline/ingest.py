"""Ingest: builder → router → store, in two threads with group commit.

Every source hands its heartbeats here. The build thread completes them (detection, routes)
while the writer thread commits what was built before: the commit's fsync, which releases
the GIL, overlaps the next group's Python work. Requests built while a commit is under way
are committed together in the next transaction, so one fsync serves many clients; each
caller's future resolves only once its heartbeats are durable.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from agent.pipeline.builder import DetectionMemo, HeartbeatBuilder
from agent.pipeline.destinations import Router
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.store import HeartbeatStore, is_damage, payload

log = logging.getLogger(__name__)

MAX_GROUP = 5000  # heartbeats in one transaction at most

# Told the outcome of one request: how many heartbeats were stored, or what prevented it.
Settle = Callable[[int | BaseException], None]
Request = tuple[Sequence[Heartbeat], Settle]
# One request built: its heartbeats, each with its destinations and its payload; its settle.
Built = tuple[list[tuple[Heartbeat, list[str], str]], Settle]


class Ingest:
    def __init__(
        self,
        store_path: Path,
        builder: HeartbeatBuilder,
        router: Router,
        on_committed: Callable[[], None] = lambda: None,
        heal: Callable[[], None] | None = None,
    ) -> None:
        self.store_path = store_path
        self.builder = builder
        self.router = router
        self.on_committed = on_committed
        # Sets a database found damaged aside and starts a fresh one (the daemon's), called
        # in the writer thread with its own connection closed.
        self.heal = heal
        self._heal_requested = threading.Event()
        self._requests: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self._built: queue.SimpleQueue[list[Built] | None] = queue.SimpleQueue()
        self._notifiers: dict[asyncio.AbstractEventLoop, _LoopNotifier] = {}
        self._build_thread = threading.Thread(target=self._build, name="ingest-build", daemon=True)
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)

    def start(self) -> None:
        self._build_thread.start()
        self._thread.start()

    def reconfigure(self, builder: HeartbeatBuilder, router: Router) -> None:
        """Build and route with these from the next request on (a reload); what is already
        built is committed as it was."""
        self.builder, self.router = builder, router

    def submit(self, heartbeats: Sequence[Heartbeat]) -> Future[int]:
        """Queue heartbeats for building and commit; the future gives how many were stored
        (privacy rules may skip some) once they are durable, or the error that prevented it."""
        future: Future[int] = Future()

        def settle(outcome: int | BaseException) -> None:
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

        self._requests.put((heartbeats, settle))
        return future

    def submit_from_loop(self, heartbeats: Sequence[Heartbeat], settle: Settle) -> None:
        """`submit` for code on an event loop, without a task: `settle` is called on that
        loop once the heartbeats are durable. The loop is woken once per committed group,
        not once per request, which lets many pipelined clients share a commit cheaply."""
        loop = asyncio.get_running_loop()
        if (notifier := self._notifiers.get(loop)) is None:
            notifier = self._notifiers[loop] = _LoopNotifier(loop)
        self._requests.put((heartbeats, functools.partial(notifier.settle, settle)))

    def stop(self) -> None:
        """Commit what was submitted, then end the threads."""
        self._requests.put(None)
        self._build_thread.join()
        self._thread.join()

    def _build(self) -> None:
        """The build thread: completes every request waiting, as one batch, for the writer."""
        try:
            ended = False
            while not ended:
                batch, ended = _take(self._requests, _request_size)
                if batch:
                    seen: DetectionMemo = {}  # a file sent many times in a batch: looked at once
                    self._built.put([(self._complete(hbs, seen), settle) for hbs, settle in batch])
        finally:
            self._built.put(None)

    def _complete(
        self, heartbeats: Sequence[Heartbeat], seen: DetectionMemo
    ) -> list[tuple[Heartbeat, list[str], str]]:
        built = []
        for hb in heartbeats:
            complete = self.builder.complete(hb, seen)
            if complete is not None:
                built.append((complete, self.router.route(complete), payload(complete)))
        return built

    def request_heal(self) -> None:
        """The database was found damaged elsewhere (delivery): heal it in the writer
        thread, the one place that may swap the file under the heartbeats coming in."""
        self._heal_requested.set()
        self._built.put([])

    def _run(self) -> None:
        """The writer thread: commits everything built so far in one transaction."""
        self._store = HeartbeatStore(self.store_path)
        try:
            ended = False
            while not ended:
                batches, ended = _take(self._built, _built_size)
                if self._heal_requested.is_set():
                    self._heal()
                if batches:
                    self._commit([request for batch in batches for request in batch])
        finally:
            self._store.close()

    def _heal(self) -> bool:
        """Have the damaged database set aside and reopen; whether it was."""
        self._heal_requested.clear()
        if self.heal is None:
            return False
        self._store.close()
        try:
            self.heal()
        except Exception:  # the writer must outlive it: heartbeats are refused, not lost
            log.exception("the damaged database could not be set aside")
            return False
        finally:
            self._store = HeartbeatStore(self.store_path)
        return True

    def _commit(self, group: list[Built], healed: bool = False) -> None:
        rows = [(hb, routes) for built, _ in group for hb, routes, _ in built]
        try:
            self._store.add(rows, [hb_payload for built, _ in group for _, _, hb_payload in built])
        except Exception as exc:
            if is_damage(exc) and not healed and self._heal():
                self._commit(group, healed=True)  # once, into the fresh database
                return
            if len(group) > 1:
                # One client's bad request must not cost the others theirs: commit each alone.
                for request in group:
                    self._commit([request], healed)
                return
            log.error("cannot store %d heartbeat(s): %s", len(rows), exc)
            group[0][1](exc)
            return
        for built, settle in group:
            settle(len(built))
        if rows:
            log.debug("stored %d heartbeat(s)", len(rows))
            self.on_committed()


def _request_size(request: Request) -> int:
    return len(request[0])


def _built_size(batch: list[Built]) -> int:
    return sum(len(built) for built, _ in batch)


def _take(source: queue.SimpleQueue[Any], size: Callable[[Any], int]) -> tuple[list[Any], bool]:
    """Wait for an item, then take every item waiting, up to MAX_GROUP heartbeats; and
    whether the end marker (None) was reached."""
    items: list[Any] = []
    total = 0
    item = source.get()
    while item is not None:
        items.append(item)
        total += size(item)
        if total >= MAX_GROUP:
            break
        try:
            item = source.get_nowait()
        except queue.Empty:
            break
    return items, item is None


class _LoopNotifier:
    """Runs an event loop's settle callbacks from the ingest thread, one wakeup a batch."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._pending: list[tuple[Settle, int | BaseException]] = []

    def settle(self, settle: Settle, outcome: int | BaseException) -> None:
        with self._lock:
            first = not self._pending
            self._pending.append((settle, outcome))
        if first:
            self.loop.call_soon_threadsafe(self._run)

    def _run(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        for settle, outcome in batch:
            try:
                settle(outcome)
            except Exception:
                log.exception("settling a stored request failed")


def store_directly(settings: Any, heartbeats: Sequence[Heartbeat]) -> int:
    """Build, route and commit heartbeats in this process, without a daemon (WAL and a
    busy timeout make it safe beside one); how many were stored."""
    from agent.pipeline.builder import detect_options
    from agent.pipeline.destinations import configured_destinations
    from agent.pipeline.detect import Detector

    builder = HeartbeatBuilder(Detector(detect_options(settings)))
    router = Router(tuple(configured_destinations(settings)))
    rows = [(hb, router.route(hb)) for hb in map(builder.complete, heartbeats) if hb is not None]
    with HeartbeatStore(settings.database_path()) as store:
        store.add(rows)
    return len(rows)
