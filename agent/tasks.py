"""Work a daemon component starts beside the event loop: tasks kept referenced until done,
their failures logged, and timers that repeat. Each component holds its own, so stopping it
cancels exactly what it started."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class BackgroundTasks:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def spawn(self, work: Coroutine[Any, Any, Any], what: str) -> None:
        """Run `work` as a task; a failure is logged under `what`, never lost silently."""
        task = self.loop.create_task(work, name=what)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def in_thread(self, work: Callable[[], Any], what: str) -> None:
        """Run blocking `work` off the loop, as a task named `what`."""
        self.spawn(asyncio.to_thread(work), what)

    def every(
        self,
        interval: float,
        work: Callable[[], Coroutine[Any, Any, Any]],
        what: str,
        *,
        now: bool,
    ) -> None:
        """Run `work()` as a task every `interval` seconds (first `now`, or after one
        interval): a timer, no polling loop. Blocking work: `lambda: asyncio.to_thread(f)`."""

        def due() -> None:
            self.spawn(work(), what)
            self._timers[what] = self.loop.call_later(interval, due)

        if now:
            due()
        else:
            self._timers[what] = self.loop.call_later(interval, due)

    def later(self, delay: float, call: Callable[[], None], what: str) -> None:
        """Call `call` on the loop after `delay` seconds, replacing the timer of that name."""
        self.cancel(what)
        self._timers[what] = self.loop.call_later(delay, call)

    def cancel(self, what: str) -> None:
        if (timer := self._timers.pop(what, None)) is not None:
            timer.cancel()

    def stop(self) -> None:
        """Cancel the timers; tasks already running finish on their own."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s failed: %s", task.get_name(), exc, exc_info=exc)
