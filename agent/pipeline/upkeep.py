"""The queue's housekeeping in the daemon: delivered history older than `[queue]
history_days` is forgotten (at startup, then daily), and undelivered heartbeats past
`[queue] max_queued` are warned of, loudly and once; none is ever dropped for it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from agent.config import Settings
from agent.pipeline.store import HeartbeatStore

log = logging.getLogger(__name__)

RETENTION_INTERVAL = 86400.0  # the history is pruned at startup and then daily
QUEUE_CHECK_INTERVAL = 60.0  # after commits, the queue is measured at most this often


class StoreUpkeep:
    def __init__(
        self,
        settings: Settings,
        destination_names: Callable[[], list[str]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.destination_names = destination_names
        self.clock = clock
        self.over_max_queued = False
        self._checked = float("-inf")

    def reconfigure(self, settings: Settings) -> None:
        self.settings = settings
        self.check_queue_size()

    def committed(self) -> None:
        """After a commit (any thread): measure the queue, at most once a QUEUE_CHECK_INTERVAL."""
        now = self.clock()
        if now - self._checked >= QUEUE_CHECK_INTERVAL:
            self._checked = now
            self.check_queue_size()

    def check_queue_size(self) -> None:
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

    def prune_history(self) -> int:
        """Forget delivered heartbeats older than [queue] history_days; how many."""
        days = self.settings.queue.history_days
        with self._reader() as store:
            removed = store.prune(self.clock() - days * 86400)
        if removed:
            log.info("history: forgot %d delivered heartbeat(s) older than %d days", removed, days)
        return removed

    def _reader(self) -> HeartbeatStore:
        """A connection of its own for the thread it is used in."""
        return HeartbeatStore(self.settings.database_path())
