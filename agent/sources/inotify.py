"""watchdog's Linux inotify observer, hooked for what a burst of 20,000 new files costs (less
than the bare observer's CPU, measured in BENCHMARKS.md):

* folders the ignore rules reject are not even watched: the recursive watch's walk skips them
  (a ``node_modules`` of 5,000 folders costs no inotify watch);
* a new file is one event, not two: a file created with open() is always closed after
  writing too, so IN_CREATE is dropped as it is read and IN_CLOSE_WRITE is the write;
* the reader lets a burst's events gather before it reads them, so they cross to the next
  thread a batch at a time, not one thread wakeup each;
* file events are translated and filtered on watchdog's emitter thread, without its event
  objects, its queue and its dispatcher thread: they go straight to ``FileWatcher.report``;
* the ignore rules are told of every folder, ``.gitignore`` and ``.git`` change the watch sees
  (``IgnoreRules.track``), so they need not stat those again for every event;
* a ``.git`` or ``.hg`` folder is watched on its own, not below: its lock files and refs tell
  when the VCS itself writes the working tree (``agent.sources.authorship``), for one watch a
  repository.

The hooks override watchdog's private methods: ``CAN_PRUNE`` says whether this watchdog has
every one of them (and is on Linux). Where it has not, ``FileWatcher``
(``agent.sources.watcher``) falls back on watchdog's own observer.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from watchdog.observers.api import BaseObserver

if TYPE_CHECKING:
    from agent.sources.watcher import FileWatcher

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
    CAN_PRUNE = all(hasattr(cls, name) for cls, names in _HOOKED.items() for name in names)
except ImportError:  # not Linux
    CAN_PRUNE = False

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


if CAN_PRUNE:
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

    class PrunedInotifyObserver(InotifyObserver):
        def __init__(self, watcher: FileWatcher) -> None:
            # InotifyObserver.__init__, with our reader and emitter in place of watchdog's.
            self._inotify_fd = _GatheringInotifyFD()
            self._inotify_fd.start()
            BaseObserver.__init__(
                self, _PrunedInotifyEmitter, inotify_fd=self._inotify_fd, watcher=watcher
            )
