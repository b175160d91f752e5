"""Benchmark: a burst of generated files inside a watched project — what the daemon spends.

Starts `agent run` as a subprocess watching a git repository, then writes N files into a new
folder of it at full speed (as `npm install`, an archive extraction or a code generator
would), waits until the daemon's CPU time stops moving, and reads from /proc the CPU it
spent and from its SQLite store the heartbeats the burst became. One save afterwards checks
the watcher still works. Side by side, the same burst under a bare watchdog observer with a
handler that does nothing: the floor any watchdog-based daemon pays on this machine.
Linux only (/proc). Goals: ≤ 4 s CPU, ≤ 2 heartbeats.

    .venv/bin/python scripts/bench/bench_burst.py [--files 20000] [--folder generated]
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_watch import (
    SETTLE,
    git_init,
    memory_mib,
    pid_of,
    row,
    running_daemon,
    sample,
)
from machine import machine_line

from agent.sources.policy import PolicySettings

FILES_PER_FOLDER = 100
POLL = 0.1  # seconds between readings while waiting (the daemon is another process)
SAVE_TIMEOUT = 30.0
STORM_MARGIN = 0.5  # seconds past the storm window before the save that checks the watcher


def generate(folder: Path, files: int) -> float:
    """Write `files` small modules, 100 to a subfolder, as fast as a generator; seconds taken."""
    started = time.perf_counter()
    for index in range(files):
        subfolder = folder / f"part{index // FILES_PER_FOLDER:04d}"
        if index % FILES_PER_FOLDER == 0:
            subfolder.mkdir(parents=True)
        (subfolder / f"gen{index:06d}.js").write_text(f"export const v{index} = {index};\n")
    return time.perf_counter() - started


def wait_until_quiet(pid: int, quiet: float) -> float:
    """Block until the process has used no CPU for `quiet` seconds; its CPU seconds then."""
    last = sample(pid).cpu
    still_since = time.monotonic()
    while time.monotonic() - still_since < quiet:
        time.sleep(POLL)
        now = sample(pid).cpu
        if now != last:
            last, still_since = now, time.monotonic()
    return last


def stored_heartbeats(database: Path) -> int:
    if not database.exists():
        return 0
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM heartbeats").fetchone()[0])


def wait_for_heartbeats(database: Path, count: int) -> float | None:
    """Seconds until the store holds `count` heartbeats, or None if it never does."""
    started = time.monotonic()
    while time.monotonic() - started < SAVE_TIMEOUT:
        if stored_heartbeats(database) >= count:
            return time.monotonic() - started
        time.sleep(POLL)
    return None


@dataclass(frozen=True)
class DaemonBurst:
    writing: float  # seconds the burst took to write
    cpu: float  # the daemon's CPU seconds for it
    heartbeats: int  # heartbeats it became
    peak_mib: float
    save: float | None  # seconds until a later save was stored; None if never


def burst_under_daemon(work: Path, files: int, folder: str, quiet: float) -> DaemonBurst:
    project = work / "watched" / "webapp"
    git_init(project)
    (project / "index.js").write_text("export {};\n")
    database = work / "agent" / "data" / "heartbeats.sqlite3"
    with running_daemon(work / "agent", project.parent, project) as (agent, _):
        pid = pid_of(agent)
        time.sleep(SETTLE)
        before = sample(pid)
        writing = generate(project / folder, files)
        spent = wait_until_quiet(pid, quiet) - before.cpu
        emitted = stored_heartbeats(database)
        peak = memory_mib(pid)["VmHWM"]
        # A save inside the storm window is part of the storm: wait until that window is over.
        time.sleep(max(0.0, PolicySettings().storm_window + STORM_MARGIN - quiet))
        (project / "index.js").write_text("export const ready = true;\n")
        save = wait_for_heartbeats(database, emitted + 1)
    return DaemonBurst(writing, spent, emitted, peak, save)


def burst_under_watchdog(work: Path, files: int, folder: str, quiet: float) -> tuple[float, float]:
    """The same burst under `--watchdog-floor`: (seconds writing, observer's CPU seconds)."""
    watched = work / "floor"
    watched.mkdir()
    observer = subprocess.Popen(
        [sys.executable, __file__, "--watchdog-floor", str(watched)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert observer.stdout is not None
        observer.stdout.readline()  # "watching": the watch is in place
        before = sample(observer.pid)
        writing = generate(watched / folder, files)
        spent = wait_until_quiet(observer.pid, quiet) - before.cpu
    finally:
        observer.send_signal(signal.SIGTERM)
        observer.wait()
    return writing, spent


def watchdog_floor(folder: str) -> None:
    """A bare watchdog observer, recursive, with the daemon's event filter and a handler
    that does nothing; runs until SIGTERM."""
    from watchdog.events import (
        FileClosedEvent,
        FileCreatedEvent,
        FileDeletedEvent,
        FileMovedEvent,
        FileSystemEvent,
        FileSystemEventHandler,
    )
    from watchdog.observers import Observer

    class Nothing(FileSystemEventHandler):
        def dispatch(self, event: FileSystemEvent) -> None:
            pass

    # watchdog warns when `mkdir -p` reports a folder its walk already watches: noise here.
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="watchdog")
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
    observer = Observer()
    events = [FileCreatedEvent, FileClosedEvent, FileMovedEvent, FileDeletedEvent]
    observer.schedule(Nothing(), folder, recursive=True, event_filter=events)
    observer.start()
    print("watching", flush=True)
    signal.sigwait([signal.SIGTERM])
    observer.stop()
    observer.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--folder", default="generated", help="new folder the burst lands in")
    parser.add_argument(
        "--quiet",
        type=float,
        default=3.0,
        help="seconds without CPU use that end the burst (above the policy's 2 s hold)",
    )
    parser.add_argument("--watchdog-floor", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.watchdog_floor:
        watchdog_floor(args.watchdog_floor)
        return
    with tempfile.TemporaryDirectory() as tmp:
        daemon = burst_under_daemon(Path(tmp), args.files, args.folder, args.quiet)
        floor_writing, floor_cpu = burst_under_watchdog(
            Path(tmp), args.files, args.folder, args.quiet
        )
    print(machine_line())
    print(
        f"{args.files:,} files written into {args.folder}/ of a watched git repository"
        f" in {daemon.writing:.1f} s (beside a bare watchdog observer: {floor_writing:.1f} s)"
    )
    print("| measure | figure | goal |")
    print("| --- | --- | --- |")
    row("daemon CPU for the burst", f"{daemon.cpu:.2f} s", "≤ 4 s", daemon.cpu <= 4)
    row("bare watchdog observer, same burst (the floor)", f"{floor_cpu:.2f} s")
    row("heartbeats from the burst", f"{daemon.heartbeats}", "≤ 2", daemon.heartbeats <= 2)
    row("daemon peak RSS (VmHWM)", f"{daemon.peak_mib:.1f} MiB")
    stored = daemon.save is not None
    saved = f"stored after {daemon.save:.1f} s" if stored else "NOT stored"
    row("one save after the burst", saved, "stored", stored)
    if not stored:
        raise SystemExit("the save after the burst never became a heartbeat")


if __name__ == "__main__":
    main()
