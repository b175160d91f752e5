"""The AI-activity source: follows the AI tools' transcripts as they grow.

A watchdog observer (inotify on Linux) on each tool's transcript folder marks the files
written; one worker thread reads what is new in them (`positions`), turns it into
heartbeats (`parsers`), hands them to the sink and, once the sink says they are durable,
records how far the file was read. A full scan runs at start, on `nudge()` (the plugins'
`--sync-ai-activity`) and every `rescan_interval` seconds: it catches folders created
later and anything the kernel's event queue dropped, and costs a stat per transcript.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from agent.pipeline.heartbeat import Heartbeat
from agent.sources.ai import opencode_db
from agent.sources.ai.attribution import WriteClassifier
from agent.sources.ai.parsers import BadRecord, Session, decode
from agent.sources.ai.positions import Position, PositionStore, read_document, read_lines, unchanged
from agent.sources.ai.tools import Tool, tool_for, tools
from agent.wakatime_cli import cfg as wakatime_cfg
from agent.wakatime_cli.private_files import try_open_locked

log = logging.getLogger(__name__)

Sink = Callable[[Sequence[Heartbeat]], "Future[int]"]
RESCAN_INTERVAL = 60.0
SINK_TIMEOUT = 60.0  # seconds to wait for the sink's commit before trying again later
POSITIONS_FILE = "ai-transcripts.sqlite3"
SETTLE = 1.0  # seconds after an SQLite store's last write before a read of it is final


class SyncBusy(RuntimeError):
    """Another process (the daemon, or another sync) is reading the transcripts."""


def positions_path(database: Path) -> Path:
    return database.parent / POSITIONS_FILE


def ai_sync_disabled(cfg_path: Path | None = None) -> bool:
    """wakatime-cli's `[settings] sync_ai_disabled` in ~/.wakatime.cfg."""
    value = wakatime_cfg.read_value("sync_ai_disabled", "settings", cfg_path)
    return value.strip().lower() in ("1", "t", "true", "yes", "on")


class AiActivitySource:
    def __init__(
        self,
        sink: Sink,
        positions: PositionStore,
        *,
        lock_path: Path,
        classifier: WriteClassifier | None = None,
        known_tools: list[Tool] | None = None,
        after: float = 0.0,
        rescan_interval: float = RESCAN_INTERVAL,
    ) -> None:
        self.sink = sink
        self.positions = positions
        self.classifier = classifier
        self.tools = known_tools if known_tools is not None else tools()
        self.after = after  # transcript events older than this are not sent
        self.rescan_interval = rescan_interval
        self.sent = 0  # heartbeats stored since start
        self._lock_file: IO[bytes] | None = _take_lock(lock_path)
        self._dirty: set[str] = set()
        self._full_scan = True
        self._state_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="ai-transcripts", daemon=True)
        self._observer: Any = None
        self._watched: set[tuple[str, bool]] = set()
        self._seen: dict[str, tuple[int, int, int, int]] = {}  # path → identity last read

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._observer = Observer()
        self._observer.start()
        self._watch_roots()
        self._wake.set()  # the first full scan: what was written while no daemon ran
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join()
        self.close()

    def close(self) -> None:
        self.positions.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def nudge(self) -> None:
        """Look at every transcript soon (cheap: the worker does it, not the caller)."""
        with self._state_lock:
            self._full_scan = True
        self._wake.set()

    def changed(self, path: str) -> None:
        path = path.removesuffix("-wal")  # an SQLite store's commits land in its WAL
        if tool_for(path, self.tools) is not None:
            with self._state_lock:
                self._dirty.add(path)
            self._wake.set()

    # -- the worker -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            woke = self._wake.wait(self.rescan_interval)
            self._wake.clear()
            if self._stopping:
                break
            with self._state_lock:
                full, self._full_scan = self._full_scan or not woke, False
                dirty, self._dirty = self._dirty, set()
            try:
                if full:
                    self._watch_roots()
                    self.sync()
                for path in sorted(dirty):
                    self.take(path)
            except Exception:  # a bug in one transcript must not stop the source
                log.exception("reading AI transcripts failed")

    def _watch_roots(self) -> None:
        """Each tool's folder, recursively; for a folder not there yet (the tool not used
        yet), its nearest existing parent alone, to notice when it is created."""
        if self._observer is None:
            return
        for root in sorted({root for tool in self.tools for root in tool.roots}):
            if os.path.isdir(root):
                if self._watch(root, recursive=True):
                    log.info("following AI transcripts in %s", root)
                continue
            parent = os.path.dirname(root)
            while parent != os.path.dirname(parent) and not os.path.isdir(parent):
                parent = os.path.dirname(parent)
            self._watch(parent, recursive=False)

    def _watch(self, folder: str, recursive: bool) -> bool:
        key = (folder, recursive)
        if key in self._watched:
            return False
        try:
            self._observer.schedule(_Handler(self), folder, recursive=recursive)
        except OSError as exc:
            log.warning("cannot watch %s: %s", folder, exc)
            return False
        self._watched.add(key)
        return True

    def folder_created(self) -> None:
        """A folder appeared where a tool's folder may now be: look again."""
        self.nudge()

    def sync(self) -> int:
        """Read what is new in every transcript; the number of heartbeats stored."""
        before = self.sent
        for tool in self.tools:
            for root in tool.roots:
                for folder, _, files in os.walk(root):
                    for name in files:
                        path = os.path.join(folder, name)
                        if tool.matches(path):
                            self.take(path, tool)
        return self.sent - before

    def take(self, path: str, tool: Tool | None = None) -> None:
        """Read one transcript up to its last complete record."""
        tool = tool or tool_for(path, self.tools)
        if tool is None:
            return
        try:
            stat = os.stat(path)
            identity = (
                opencode_db.identity(path)
                if tool.database
                else (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
            )
        except OSError:
            return
        if self._seen.get(path) == identity:
            return
        position = self.positions.get(path)
        if not tool.database and unchanged(stat, position):
            self._seen[path] = identity
            return
        while not self._stopping:
            try:
                if tool.database:
                    chunk = opencode_db.read_database(path, position)
                elif tool.whole_file:
                    chunk = read_document(path, position, is_json=not tool.plain_text)
                else:
                    chunk = read_lines(path, position)
            except (OSError, sqlite3.Error) as exc:
                log.debug("cannot read %s: %s", path, exc)
                return
            if chunk.restarted:
                log.info("%s was %s; reading it again from the start", path, chunk.restarted)
            if not self._deliver(path, tool, chunk.records, chunk.position):
                return
            self.positions.put(path, chunk.position)
            position = chunk.position
            if not chunk.more:
                break
        if tool.database and time.time() - max(identity[1], identity[3]) / 1e9 < SETTLE:
            # A commit's WAL frames are written (the event) before its index is updated:
            # what this read missed becomes visible a moment later, with no event. Look again.
            timer = threading.Timer(SETTLE, self.changed, (path,))
            timer.daemon = True
            timer.start()
            return
        self._seen[path] = identity

    def _deliver(self, path: str, tool: Tool, raw: list[bytes], position: Position) -> bool:
        state = position.state
        state["mtime"] = position.mtime_ns / 1e9
        if tool.context is not None and not state.get("context"):
            state.update(tool.context(path), context=True)
        session = Session(state, tool.name, state.get("editor") or tool.editor, self.after)
        records: list[Any] = []
        corrupt = 0
        for line in raw:
            try:
                records.append(line.decode("utf-8", "replace") if tool.plain_text else decode(line))
            except BadRecord:
                corrupt += 1
        if corrupt:
            log.warning("%s: skipped %d line(s) that are not JSON", path, corrupt)
        tool.parser(records, session)
        if not session.out:
            return True
        if self.classifier is not None:
            for hb in session.out:
                if hb.is_write and hb.type == "file":
                    self.classifier.note_ai_write(hb.entity, hb.time)
        try:
            self.sent += self.sink(session.out).result(SINK_TIMEOUT)
        except Exception as exc:
            log.warning("AI heartbeats from %s not stored yet: %s", path, exc)
            return False
        return True


class _Handler(FileSystemEventHandler):
    def __init__(self, source: AiActivitySource) -> None:
        self.source = source

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("created", "modified", "moved", "closed"):
            return
        if event.is_directory:
            if event.event_type in ("created", "moved"):
                self.source.folder_created()
            return
        path = getattr(event, "dest_path", "") or event.src_path
        self.source.changed(os.fsdecode(path))


def _take_lock(path: Path) -> IO[bytes]:
    """One reader of the transcripts at a time (the daemon, or one `--sync-ai-activity`)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = try_open_locked(path, os.O_WRONLY | os.O_APPEND)
    if fd is None:
        raise SyncBusy(f"{path} is held by another process")
    return os.fdopen(fd, "ab")


def backfill_start(days: float, now: float | None = None) -> float:
    return (time.time() if now is None else now) - days * 86400.0


def sync_once(settings: Any) -> int:
    """`--sync-ai-activity` without a daemon: one pass, heartbeats written straight into
    the queue through the same builder and router as the daemon's."""
    from agent.pipeline.ingest import store_directly

    database = settings.database_path()
    with contextlib.ExitStack() as stack:
        source = AiActivitySource(
            lambda heartbeats: _done(store_directly(settings, heartbeats)),
            PositionStore(positions_path(database)),
            lock_path=positions_path(database).with_suffix(".lock"),
            after=backfill_start(settings.ai.backfill_days),
        )
        stack.callback(source.close)
        return source.sync()


def _done(value: int) -> Future[int]:
    future: Future[int] = Future()
    future.set_result(value)
    return future


def start_in_daemon(
    settings: Any, sink: Sink, classifier: WriteClassifier, now: float
) -> AiActivitySource | None:
    """The daemon's AI source, started; None (and logged why) when `[ai] enabled = false`,
    wakatime-cli's `sync_ai_disabled`, or another process reads the transcripts."""
    if not settings.ai.enabled or ai_sync_disabled():
        log.info("AI coding activity: off (settings)")
        return None
    database = settings.database_path()
    try:
        source = AiActivitySource(
            sink,
            PositionStore(positions_path(database)),
            lock_path=positions_path(database).with_suffix(".lock"),
            classifier=classifier,
            after=backfill_start(settings.ai.backfill_days, now),
        )
    except SyncBusy as exc:
        log.warning("AI coding activity: not read by this daemon: %s", exc)
        return None
    source.start()
    return source
