"""Ingest: builder → router → store, in one writer thread with group commit.

Every source hands its heartbeats here. Requests that arrive while a commit is under way
are committed together in the next transaction, so one fsync serves many clients; each
caller's future resolves only once its heartbeats are durable.
"""

from __future__ import annotations

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
        self._requests: queue.SimpleQueue[tuple[Sequence[Heartbeat], Future[int]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, heartbeats: Sequence[Heartbeat]) -> Future[int]:
        """Queue heartbeats for building and commit; the future gives how many were stored
        (privacy rules may skip some) once they are durable, or the error that prevented it."""
        future: Future[int] = Future()
        self._requests.put((heartbeats, future))
        return future

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
        self, store: HeartbeatStore, group: list[tuple[Sequence[Heartbeat], Future[int]]]
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
            log.error("cannot store %d heartbeat(s): %s", len(rows), exc)
            for _, future in group:
                future.set_exception(exc)
            return
        for (_, future), count in zip(group, counts, strict=True):
            future.set_result(count)
        if rows:
            self.on_committed()
