"""watchdog events → "this file was written at this time". Nothing else: the policy decides.

A write is a file created, closed after writing, modified (where the platform has no close
event), or the destination of a rename — so an atomic save (write a temporary file, rename it
over the real one) is a write of the real file. A file deleted or renamed away is reported to
``on_remove``, which lets the policy forget a temporary file written moments before.
Folders, reads (open, close without writing, access), attribute changes and the events watchdog
makes up for the contents of a folder moved in (``is_synthetic``) are not writes.

On Linux, folders the ignore rules reject are not even watched: watchdog's inotify observer
walks a recursive watch itself, so this module gives it a watch group whose walk skips them (a
``node_modules`` of 5,000 folders costs no inotify watch). That hooks watchdog internals; where
they are missing (another watchdog release, another platform) every folder is watched and the
same rules filter the events instead.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

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

from agent.ignore import IgnoreRules

logger = logging.getLogger(__name__)

WriteCallback = Callable[[str, float], None]

try:
    from watchdog.observers.inotify import InotifyEmitter, InotifyObserver, InotifyWatchGroup

    _CAN_PRUNE = all(
        hasattr(InotifyWatchGroup, name)
        for name in ("_add_all_callbacks", "_recursive_simulate", "_add_callback")
    ) and hasattr(InotifyEmitter, "get_event_mask_from_filter")
except ImportError:  # not Linux
    _CAN_PRUNE = False


if _CAN_PRUNE:

    @dataclass(eq=False)
    class _PrunedWatchGroup(InotifyWatchGroup):
        """A recursive inotify watch group that never descends into an ignored folder."""

        prune: Callable[[bytes], bool] = lambda _path: False

        def _add_all_callbacks(self, path: bytes) -> None:
            if path != self.path and self.prune(path):
                return
            if path not in self._active_callbacks_by_path:
                self._add_callback(path)
            if not (self.is_recursive and os.path.isdir(path)):
                return
            for folder, dirnames, _ in os.walk(path, followlinks=self.follow_symlink):
                kept = []
                for name in dirnames:
                    full = os.path.join(folder, name)
                    if (not self.follow_symlink and os.path.islink(full)) or self.prune(full):
                        continue
                    # `mkdir -p a/b` reports b after a's walk already watched it
                    if full not in self._active_callbacks_by_path:
                        self._add_callback(full)
                    kept.append(name)
                dirnames[:] = kept

        def _recursive_simulate(self, src_path: bytes) -> list[Any]:
            if src_path != self.path and self.prune(src_path):
                return []
            return super()._recursive_simulate(src_path)

    class _PrunedInotifyEmitter(InotifyEmitter):
        def __init__(self, *args: Any, ignore: IgnoreRules, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._ignore = ignore

        def on_thread_start(self) -> None:
            root = os.fsdecode(self.watch.path)

            def prune(folder: bytes) -> bool:
                return self._ignore.ignored_dir(os.fsdecode(folder), root=root)

            self._inotify = _PrunedWatchGroup(
                self._inotify_fd,
                os.fsencode(self.watch.path),
                is_recursive=self.watch.is_recursive,
                event_mask=self.get_event_mask_from_filter(),
                follow_symlink=self.watch.follow_symlink,
                prune=prune,
            )

        def queue_events(self, timeout: float, *, full_events: bool = False) -> None:
            # Stopping: the group is gone; watchdog would log this loop's last turn as an error.
            if self._inotify is not None:
                super().queue_events(timeout, full_events=full_events)

    class _PrunedInotifyObserver(InotifyObserver):
        def __init__(self, ignore: IgnoreRules) -> None:
            super().__init__()
            self._emitter_class = _PrunedInotifyEmitter
            self._emitter_kwargs = {**self._emitter_kwargs, "ignore": ignore}


# inotify reports the close of a file written, so the many IN_MODIFY of one save are not needed;
# elsewhere a modification is the only sign of a write in place.
_WRITE_EVENTS: list[type[FileSystemEvent]] = (
    [FileCreatedEvent, FileClosedEvent, FileMovedEvent, FileDeletedEvent]
    if _CAN_PRUNE
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
        written = removed = None
        if isinstance(event, FileMovedEvent):
            removed, written = event.src_path, event.dest_path
        elif isinstance(event, FileDeletedEvent):
            removed = event.src_path
        elif isinstance(event, FileCreatedEvent | FileClosedEvent | FileModifiedEvent):
            written = event.src_path
        if removed:
            self._watcher.report(os.fsdecode(removed), self._root, written=False)
        if written:
            self._watcher.report(os.fsdecode(written), self._root, written=True)


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
    person may have made, and on_remove(path, time) for each file deleted or renamed away.

    Both callbacks run on watchdog's thread: hop them onto your own loop.
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
    ) -> None:
        self.roots = _distinct_roots(roots)
        self.watching: list[str] = []
        self._ignore = ignore
        self._on_write = on_write
        self._on_remove = on_remove
        self._clock = clock
        self._follow_symlinks = follow_symlinks
        self._observer: BaseObserver | None = None

    @property
    def prunes_ignored_folders(self) -> bool:
        """Whether ignored folders get no watch at all (else their events are only filtered)."""
        return _CAN_PRUNE

    def start(self) -> None:
        """Watch every root that exists; returns once they are all being watched."""
        if self._observer is not None:
            return
        observer = _PrunedInotifyObserver(self._ignore) if _CAN_PRUNE else Observer()
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
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        """Stop watching and join watchdog's threads. Safe to call twice."""
        observer, self._observer = self._observer, None
        if observer is None:
            return
        observer.stop()
        observer.join()
        self.watching = []

    def report(self, path: str, root: str, *, written: bool) -> None:
        """Pass one translated event on, unless the ignore rules reject the path."""
        callback = self._on_write if written else self._on_remove
        if callback is None or self._ignore.ignored(path, root=root):
            return
        try:
            callback(path, self._clock())
        except Exception:
            logger.exception("file watcher callback failed for %s", path)
