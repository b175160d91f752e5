"""watchdog events → "this file was written at this time". Nothing else: the policy decides.

A write is a file created, closed after writing, modified (where the platform has no close
event), or the destination of a rename — so an atomic save (write a temporary file, rename it
over the real one) is a write of the real file. A file deleted or renamed away is reported to
``on_remove``, which lets the policy forget a temporary file written moments before.
Folders, reads (open, close without writing, access), attribute changes and the events watchdog
makes up for the contents of a folder moved in (``is_synthetic``) are not writes.

On Linux, watchdog's inotify observer is replaced by a hooked one (``agent.sources.inotify``:
ignored folders get no watch, a burst is read at once, file events skip watchdog's queue and
reach ``FileWatcher.report`` straight from its reader). Where those internals are missing
(another watchdog release, another platform) every folder is watched, watchdog's own observer
delivers every event through ``_WriteTranslator``, and the same rules filter them.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable, Sequence

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from agent.sources import inotify
from agent.sources.authorship import Signal, signals_of
from agent.sources.ignore import IgnoreRules

logger = logging.getLogger(__name__)

WriteCallback = Callable[[str, float], None]
SignalCallback = Callable[[Signal, str, float], None]

# inotify reports the close of a file written, so the many IN_MODIFY of one save are not needed;
# elsewhere a modification is the only sign of a write in place.
_WRITE_EVENTS: list[type[FileSystemEvent]] = (
    [FileCreatedEvent, FileClosedEvent, FileMovedEvent, FileDeletedEvent]
    if inotify.CAN_PRUNE
    else [FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileDeletedEvent]
)


class _WriteTranslator(FileSystemEventHandler):
    """One per root: turns its events into on_write / on_remove calls."""

    def __init__(self, root: str, watcher: FileWatcher) -> None:
        self._root = root
        self._watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.is_synthetic:
            return
        removed = written = None
        if isinstance(event, FileMovedEvent):
            removed, written = event.src_path, event.dest_path
        elif isinstance(event, FileDeletedEvent):
            removed = event.src_path
        elif isinstance(event, FileCreatedEvent | FileClosedEvent | FileModifiedEvent):
            written = event.src_path
        self._watcher.report(
            self._root,
            removed=os.fsdecode(removed) if removed else None,
            written=os.fsdecode(written) if written else None,
        )


def watch_limit_hint(exc: OSError) -> str:
    """An inotify failure in words, naming the limit to raise."""
    if exc.errno == errno.EMFILE:
        return "inotify instance limit reached (raise fs.inotify.max_user_instances)"
    if exc.errno == errno.ENOSPC:
        return "inotify watch limit reached (raise fs.inotify.max_user_watches)"
    return f"cannot watch: {exc.strerror or exc}"


def _distinct_roots(roots: Sequence[str]) -> list[str]:
    """Absolute roots, without those inside another (they would report every event twice)."""
    absolute = sorted({os.path.abspath(root) for root in roots})
    kept: list[str] = []
    for root in absolute:
        if not any(root == k or root.startswith(k.rstrip(os.sep) + os.sep) for k in kept):
            kept.append(root)
    return kept


class FileWatcher:
    """Watches roots with watchdog; calls on_write(path, time) for each write of a file a
    person may have made, on_remove(path, time) for each file deleted or renamed away, and
    on_signal(signal, where, time) for each VCS lock, ref or lock file write (who is writing).

    The callbacks run on one of watchdog's threads (on Linux, one per root: with several
    roots, they may run at once): hop them onto your own loop.
    """

    def __init__(
        self,
        roots: Sequence[str],
        ignore: IgnoreRules,
        on_write: WriteCallback,
        *,
        clock: Callable[[], float] = time.time,
        follow_symlinks: bool = False,
        on_remove: WriteCallback | None = None,
        on_signal: SignalCallback | None = None,
    ) -> None:
        self.roots = _distinct_roots(roots)
        self.watching: list[str] = []
        # Why some folders are not watched (the inotify watch limit), for `agent status`.
        self.problem: str | None = None
        self._unwatched = 0
        self.ignore = ignore
        self._on_write = on_write
        self._on_remove = on_remove
        self._on_signal = on_signal
        self._clock = clock
        self._follow_symlinks = follow_symlinks
        self._observer: BaseObserver | None = None

    @property
    def prunes_ignored_folders(self) -> bool:
        """Whether ignored folders get no watch at all (else their events are only filtered)."""
        return inotify.CAN_PRUNE

    def start(self) -> None:
        """Watch every root that exists; returns once they are all being watched."""
        if self._observer is not None:
            return
        observer = inotify.PrunedInotifyObserver(self) if inotify.CAN_PRUNE else Observer()
        for root in self.roots:
            if not os.path.isdir(root):
                logger.warning("not watching %s: no such folder", root)
                continue
            observer.schedule(
                _WriteTranslator(root, self),
                root,
                recursive=True,
                event_filter=_WRITE_EVENTS,
                follow_symlink=self._follow_symlinks,
            )
            self.watching.append(root)
        try:
            observer.start()  # adds the watches: past the inotify limits it raises OSError
        except OSError:
            observer.stop()  # the roots it did start, and the inotify instance
            self.watching = []
            raise
        self._observer = observer
        if inotify.CAN_PRUNE:  # the watch group reports every change the ignore rules depend on
            for root in self.watching:
                self.ignore.track(root)

    def stop(self) -> None:
        """Stop watching and join watchdog's threads. Safe to call twice."""
        observer, self._observer = self._observer, None
        if observer is None:
            return
        observer.stop()
        observer.join()
        for root in self.watching:
            self.ignore.untrack(root)
        self.watching = []

    def watch_failed(self, folder: str, exc: OSError) -> None:
        """A folder inotify would not watch: the rest goes on, and status says so."""
        self._unwatched += 1
        first = self.problem is None
        self.problem = (
            f"{watch_limit_hint(exc)}: {self._unwatched} folder(s) not watched, such as"
            f" {folder}; reload (SIGHUP) once it is raised"
        )
        if first:
            logger.error("%s", self.problem)

    def report(self, root: str, *, removed: str | None = None, written: str | None = None) -> None:
        """Pass one translated event on (a move is both), unless the ignore rules reject it;
        signals (``authorship.signals_of``) first, though their paths are ignored."""
        if self._on_signal is not None:
            for kind, where in signals_of(removed, written):
                self._on_signal(kind, where, self._clock())
        for path, callback in ((removed, self._on_remove), (written, self._on_write)):
            if path is None or callback is None:
                continue
            try:
                if not self.ignore.ignored(path, root=root):
                    callback(path, self._clock())
            except Exception:
                logger.exception("file watcher callback failed for %s", path)
