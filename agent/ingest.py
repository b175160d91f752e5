"""Ingest: builder → router → store, in one writer thread with group commit.

Every source hands its heartbeats here. Requests that arrive while a commit is under way
are committed together in the next transaction, so one fsync serves many clients; each
caller's future resolves only once its heartbeats are durable.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path

from agent.builder import HeartbeatBuilder
from agent.destinations import Router
from agent.heartbeat import Heartbeat
from agent.store import HeartbeatStore

log = logging.getLogger(__name__)

MAX_GROUP = 5000  # heartbeats in one transaction at most

# Told the outcome of one request: how many heartbeats were stored, or what prevented it.
Settle = Callable[[int | BaseException], None]


class Ingest:
    def __init__(
        self,
        store_path: Path,
        builder: HeartbeatBuilder,
        router: Router,
        on_committed: Callable[[], None] = lambda: None,
    ) -> None:
        self.store_path = store_path
        self.builder = builder
        self.router = router
        self.on_committed = on_committed
        self._requests: queue.SimpleQueue[tuple[Sequence[Heartbeat], Settle] | None] = (
            queue.SimpleQueue()
        )
        self._notifiers: dict[asyncio.AbstractEventLoop, _LoopNotifier] = {}
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)

    def start(self) -> None:
        self._thread.start()

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

    async def store(self, heartbeats: Sequence[Heartbeat]) -> int:
        """`submit` for the event loop: the loop is woken once per committed group, not
        once per request, which is what lets many pipelined clients share a commit cheaply."""
        loop = asyncio.get_running_loop()
        if (notifier := self._notifiers.get(loop)) is None:
            notifier = self._notifiers[loop] = _LoopNotifier(loop)
        future: asyncio.Future[int] = loop.create_future()
        self._requests.put((heartbeats, lambda outcome: notifier.settle(future, outcome)))
        return await future

    def stop(self) -> None:
        """Commit what was submitted, then end the thread."""
        self._requests.put(None)
        self._thread.join()

    def _run(self) -> None:
        store = HeartbeatStore(self.store_path)
        try:
            while (first := self._requests.get()) is not None:
                group = [first]
                size = len(first[0])
                stop = False
                while size < MAX_GROUP:
                    try:
                        more = self._requests.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    group.append(more)
                    size += len(more[0])
                self._commit(store, group)
                if stop:
                    break
        finally:
            store.close()

    def _commit(
        self, store: HeartbeatStore, group: list[tuple[Sequence[Heartbeat], Settle]]
    ) -> None:
        rows = []
        counts = []
        for heartbeats, _ in group:
            built = []
            for hb in heartbeats:
                try:
                    complete = self.builder.complete(hb)
                except Exception:  # detection must never cost a heartbeat
                    log.exception("detection failed for %s; storing it as sent", hb.entity)
                    complete = hb
                if complete is not None:
                    built.append((complete, self.router.route(complete)))
            rows += built
            counts.append(len(built))
        try:
            store.add(rows)
        except Exception as exc:
            if len(group) > 1:
                # One client's bad request must not cost the others theirs: commit each alone.
                for request in group:
                    self._commit(store, [request])
                return
            log.error("cannot store %d heartbeat(s): %s", len(rows), exc)
            group[0][1](exc)
            return
        for (_, settle), count in zip(group, counts, strict=True):
            settle(count)
        if rows:
            self.on_committed()


class _LoopNotifier:
    """Settles an event loop's futures from the ingest thread with one wakeup per batch."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._pending: list[tuple[asyncio.Future[int], int | BaseException]] = []

    def settle(self, future: asyncio.Future[int], outcome: int | BaseException) -> None:
        with self._lock:
            first = not self._pending
            self._pending.append((future, outcome))
        if first:
            self.loop.call_soon_threadsafe(self._run)

    def _run(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        for future, outcome in batch:
            if future.cancelled():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
