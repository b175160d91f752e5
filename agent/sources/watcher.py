"""watchdog events → "this file was written at this time". Nothing else: the policy decides.

A write is a file created, closed after writing, modified (where the platform has no close
event), or the destination of a rename — so an atomic save (write a temporary file, rename it
over the real one) is a write of the real file. A file deleted or renamed away is reported to
``on_remove``, which lets the policy forget a temporary file written moments before.
Folders, reads (open, close without writing, access), attribute changes and the events watchdog
makes up for the contents of a folder moved in (``is_synthetic``) are not writes.

On Linux this module hooks watchdog's inotify observer, for what a burst of 20,000 new files
costs (less than the bare observer's CPU, measured in BENCHMARKS.md):

* folders the ignore rules reject are not even watched: the recursive watch's walk skips them
  (a ``node_modules`` of 5,000 folders costs no inotify watch);
* a new file is one event, not two: a file created with open() is always closed after
  writing too, so IN_CREATE is dropped as it is read and IN_CLOSE_WRITE is the write;
* the reader lets a burst's events gather before it reads them, so they cross to the next
  thread a batch at a time, not one thread wakeup each;
* file events are translated and filtered on watchdog's emitter thread, without its event
  objects, its queue and its dispatcher thread;
* the ignore rules are told of every folder, ``.gitignore`` and ``.git`` change the watch sees
  (``IgnoreRules.track``), so they need not stat those again for every event;
* a ``.git`` or ``.hg`` folder is watched on its own, not below: its lock files and refs tell
  when the VCS itself writes the working tree (``agent.sources.authorship``), for one watch a
  repository.

Where those internals are missing (another watchdog release, another platform) every folder is
watched, watchdog's own observer delivers every event, and the same rules filter them.
"""

from __future__ import annotations

import errno
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

from agent.sources.authorship import Signal, signals_of
from agent.sources.ignore import IgnoreRules

logger = logging.getLogger(__name__)

WriteCallback = Callable[[str, float], None]
SignalCallback = Callable[[Signal, str, float], None]

try:
    import array
    import fcntl
    import termios

    from watchdog.observers.inotify import InotifyEmitter, InotifyObserver, InotifyWatchGroup
    from watchdog.observers.inotify_c import InotifyConstants, InotifyEvent, InotifyFD
    from watchdog.observers.inotify_move_event_grouper import (
        GroupedInotifyEvent,
        PathedInotifyEvent,
    )

    _HOOKED = {
        InotifyFD: ("_check_inotify_fd", "_read_event_buffer", "_parse_event_buffer"),
        InotifyWatchGroup: (
            "_add_all_callbacks",
            "_find_node_by_path",
            "_recursive_simulate",
            "_add_callback",
            "_build_event_source_path",
            "on_event",
            "on_queue_overflow",
        ),
        InotifyEmitter: ("get_event_mask_from_filter", "build_and_queue_event"),
    }
    _CAN_PRUNE = all(hasattr(cls, name) for cls, names in _HOOKED.items() for name in names)
except ImportError:  # not Linux
    _CAN_PRUNE = False

# Files whose change can change what the ignore rules say about the folders around them.
_RULE_NAMES = (b".gitignore", b".git")
# Files whose creation is a signal (a VCS taking its lock); other creations are not read.
_SIGNAL_CREATES = (b"index.lock", b"wlock")
# Ignored folders watched on their own all the same, for their signals.
_VCS_META = (b".git", b".hg")

# Once inotify has something to say, its reader waits while more keeps coming: it looks again
# after GATHER_STEP, then after twice as long each time, GATHER_MAX in all, and reads as soon
# as a look finds nothing new (a lone save waits one step; the policy holds it seconds anyway).
GATHER_STEP = 0.002
GATHER_MAX = 0.03
# Bytes read at once: inotify's whole default queue (16,384 events) of typical names.
_READ_BUFFER_SIZE = 16384 * 32


if _CAN_PRUNE:
    _FILE_CREATED = InotifyConstants.IN_CREATE | InotifyConstants.IN_ISDIR

    def _pending_bytes(fd: int) -> int:
        """Bytes of events waiting on an inotify descriptor."""
        count = array.array("i", [0])
        fcntl.ioctl(fd, termios.FIONREAD, count)
        return count[0]

    class _GatheringInotifyFD(InotifyFD):
        """watchdog's inotify reader, reading a burst's events at once, without file creations
        (a new ``.gitignore`` or ``.git`` is kept: it tells the ignore rules)."""

        def _check_inotify_fd(self, timeout_ms: int | None = None) -> bool:
            readable = super()._check_inotify_fd(timeout_ms)  # watchdog 7 passes a timeout
            if readable:
                self._gather()
            return readable

        def _gather(self) -> None:
            pending = _pending_bytes(self._inotify_fd)
            step, waited = GATHER_STEP, 0.0
            while pending < _READ_BUFFER_SIZE // 2 and waited < GATHER_MAX:
                time.sleep(step)
                waited += step
                before, pending = pending, _pending_bytes(self._inotify_fd)
                if pending == before:
                    return
                step *= 2

        def read_events(self, *, event_buffer_size: int = _READ_BUFFER_SIZE) -> list[InotifyEvent]:
            events = self._parse_event_buffer(self._read_event_buffer(event_buffer_size))
            return [
                InotifyEvent(wd, mask, cookie, name)
                for wd, mask, cookie, name in events
                # As watchdog: the only event with no watch that matters is an overflow.
                if (wd != -1 or mask & InotifyConstants.IN_Q_OVERFLOW)
                and (
                    mask & _FILE_CREATED != InotifyConstants.IN_CREATE
                    or name in _RULE_NAMES
                    or name in _SIGNAL_CREATES
                )
            ]

    @dataclass(eq=False)
    class _PrunedWatchGroup(InotifyWatchGroup):
        """A recursive inotify watch group that never descends into an ignored folder, and
        tells the ignore rules of every change that can change what they say."""

        prune: Callable[[bytes], bool] = lambda _path: False
        rules_changed: Callable[[bytes], None] = lambda _path: None
        # A folder that could not be watched (the inotify watch limit), below the root.
        watch_failed: Callable[[bytes, OSError], None] = lambda _path, _exc: None

        def on_event(self, event: InotifyEvent) -> None:
            """Runs on the inotify reader thread, before any later event is even queued."""
            if event.is_directory or event.is_delete_self or event.name in _RULE_NAMES:
                changed = self._build_event_source_path(event)
            else:
                changed = None
            # The only file creations read are of rule files (their IN_CLOSE_WRITE is the write)
            # and of VCS locks (a signal).
            if event.is_directory or not event.is_create or event.name in _SIGNAL_CREATES:
                super().on_event(event)
            if changed is not None:
                # After a new folder's walk: whatever the walk found is not evented again.
                self.rules_changed(changed)

        def on_queue_overflow(self) -> None:
            self.rules_changed(self.path)
            super().on_queue_overflow()

        def _skipped(self, path: bytes) -> bool:
            """Whether not to descend into ``path``: an ignored folder gets no watch, except a
            VCS metadata folder, which gets one of its own (for its lock files)."""
            if not self.prune(path):
                return False
            if os.path.basename(path) in _VCS_META and path not in self._active_callbacks_by_path:
                self._add_callback(path)
            return True

        def _add_all_callbacks(self, path: bytes) -> None:
            if path != self.path and self._skipped(path):
                return
            if path not in self._active_callbacks_by_path and not self._watched(path):
                return
            if not (self.is_recursive and os.path.isdir(path)):
                return
            for folder, dirnames, _ in os.walk(path, followlinks=self.follow_symlink):
                kept = []
                for name in dirnames:
                    full = os.path.join(folder, name)
                    if (not self.follow_symlink and os.path.islink(full)) or self._skipped(full):
                        continue
                    # `mkdir -p a/b` reports b after a's walk already watched it
                    if full not in self._active_callbacks_by_path and not self._watched(full):
                        continue  # past the limit: what fits stays watched
                    kept.append(name)
                dirnames[:] = kept

        def _watched(self, path: bytes) -> bool:
            """Add a watch; a folder below the root that inotify refuses is reported and
            left out (the root itself failing fails the watcher's start)."""
            try:
                self._add_callback(path)
            except OSError as exc:
                if path == self.path:
                    raise
                self.watch_failed(path, exc)
                return False
            node = self._find_node_by_path(path)
            if (node is None or node.wd < 0) and os.access(path, os.R_OK | os.X_OK):
                # Running, watchdog only logs the refusal: a folder still there, readable
                # and not watched was refused for the watch limit (add_watch's only other
                # failures are for folders gone or unreadable).
                self.watch_failed(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
                return False
            return True

        def _recursive_simulate(self, src_path: bytes) -> list[Any]:
            if src_path != self.path and self.prune(src_path):
                return []
            return super()._recursive_simulate(src_path)

    class _PrunedInotifyEmitter(InotifyEmitter):
        """Prunes ignored folders, and reports file events straight from its own thread: they
        skip watchdog's event objects, its queue and its dispatcher thread."""

        def __init__(self, *args: Any, watcher: FileWatcher, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._watcher = watcher
            self._root = os.fsdecode(self.watch.path)

        def on_thread_start(self) -> None:
            root = self._root
            ignore = self._watcher.ignore

            def prune(folder: bytes) -> bool:
                return ignore.ignored_dir(os.fsdecode(folder), root=root)

            def rules_changed(path: bytes) -> None:
                ignore.changed(os.fsdecode(path))

            def watch_failed(path: bytes, exc: OSError) -> None:
                self._watcher.watch_failed(os.fsdecode(path), exc)

            self._inotify = _PrunedWatchGroup(
                self._inotify_fd,
                os.fsencode(self.watch.path),
                is_recursive=self.watch.is_recursive,
                event_mask=self.get_event_mask_from_filter(),
                follow_symlink=self.watch.follow_symlink,
                prune=prune,
                rules_changed=rules_changed,
                watch_failed=watch_failed,
            )

        def queue_events(self, timeout: float, *, full_events: bool = False) -> None:
            # Stopping: the group is gone; watchdog would log this loop's last turn as an error.
            if self._inotify is not None:
                super().queue_events(timeout, full_events=full_events)

        def build_and_queue_event(
            self, event: GroupedInotifyEvent, *, full_events: bool = False
        ) -> None:
            removed = written = None
            if not isinstance(event, PathedInotifyEvent):  # a rename inside the watch
                if not event[0].ev.is_directory:
                    removed, written = event[0].path, event[1].path
            elif not event.ev.is_directory:
                inotify = event.ev
                # IN_CREATE reaches here only for files a new folder's walk found in it.
                if inotify.is_close_write or inotify.is_create or inotify.is_moved_to:
                    written = event.path
                elif inotify.is_delete or inotify.is_moved_from:
                    removed = event.path
            if removed is None and written is None:
                # Folders (none of their events is a write) and the root's own deletion.
                super().build_and_queue_event(event, full_events=full_events)
                return
            self._watcher.report(
                self._root,
                removed=os.fsdecode(removed) if removed else None,
                written=os.fsdecode(written) if written else None,
            )

    class _PrunedInotifyObserver(InotifyObserver):
        def __init__(self, watcher: FileWatcher) -> None:
            # InotifyObserver.__init__, with our reader and emitter in place of watchdog's.
            self._inotify_fd = _GatheringInotifyFD()
            self._inotify_fd.start()
            BaseObserver.__init__(
                self, _PrunedInotifyEmitter, inotify_fd=self._inotify_fd, watcher=watcher
            )


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
        return _CAN_PRUNE

    def start(self) -> None:
        """Watch every root that exists; returns once they are all being watched."""
        if self._observer is not None:
            return
        observer = _PrunedInotifyObserver(self) if _CAN_PRUNE else Observer()
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
        if _CAN_PRUNE:  # the watch group reports every change the ignore rules depend on
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
