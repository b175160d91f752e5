"""Replay recorded file-system traces through the watcher and the policy, against declared truth.

A trace (``traces/*.jsonl``) is JSON lines. The first line is the header::

    {"trace": "vim", "description": "...", "setup": [op, ...],
     "truth": {"tracked_seconds": 180, "max_heartbeats": 8, "min_heartbeats": 2,
               "paths": ["src/app.py"]}}

``setup`` ops build the folder before watching starts. Every other line is one op at a time
offset ``t`` (seconds), paths relative to the trace folder:

    write   {"path", "text"?}   open for writing (create or truncate), write, close
    create  {"path", "text"?}   create a new file (exclusive), write, close
    rename  {"path", "to"}      rename, replacing ``to``
    delete  {"path"}            unlink a file
    mkdir   {"path"}            create a folder (and its parents)
    symlink {"path", "to"}      create a symbolic link (emacs lock files are these)
    save    {"path", "editor"}  one save of ``path`` the way ``editor`` does it (SAVE_RECIPES)

A path may hold one ``{A..B}`` range: the op is repeated for each number, spread evenly over
``spread`` seconds (so a trace can say "2,000 files in 3 seconds" in one line).

Modes:
  watch     (default) the real FileWatcher, IgnoreRules and ActivityPolicy on a temp folder. Time
            is virtual: every op group happens at its trace time, and a barrier file written after
            each group waits until watchdog delivered all of its events, so an hour-long trace
            takes as long as its operations, not an hour.
  realtime  the same, but ops happen at their real times (``--speed`` compresses) and the clock
            is real: the daemon's situation, including watchdog's latency.
  simulate  no watcher: each op is turned into the write/remove it causes, filtered by the same
            IgnoreRules. For checking hour-long sessions quickly; the watch mode proves the model.

Truth: heartbeats only for ``paths`` (the files a person really edited), at most
``max_heartbeats`` (and at least ``min_heartbeats``), and tracked time (stats.durations of the
heartbeat times) within ±5 % of ``tracked_seconds``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from agent.pipeline.stats import durations  # noqa: E402
from agent.sources.authorship import Signal, signals_of  # noqa: E402
from agent.sources.ignore import IgnoreRules  # noqa: E402
from agent.sources.policy import ActivityPolicy, CountedWrite, PolicySettings  # noqa: E402
from agent.sources.watcher import FileWatcher  # noqa: E402

TRACES = REPO / "traces"
TOLERANCE = 0.05
# Op groups closer than this (virtual seconds) are applied together and share one time stamp.
RESOLUTION = 0.01
BARRIER_TIMEOUT = 30.0

_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")


def _vim_save(path: str) -> list[dict[str, str]]:
    folder, name = os.path.split(path)
    return [  # vim 9 defaults: writebackup, backupcopy=auto (observed with inotifywait)
        {"op": "write", "path": os.path.join(folder, "4913")},
        {"op": "delete", "path": os.path.join(folder, "4913")},
        {"op": "rename", "path": path, "to": path + "~"},
        {"op": "write", "path": os.path.join(folder, f".{name}.swp")},
        {"op": "create", "path": path},
        {"op": "delete", "path": path + "~"},
    ]


def _emacs_save(path: str) -> list[dict[str, str]]:
    folder, name = os.path.split(path)
    lock, autosave = os.path.join(folder, f".#{name}"), os.path.join(folder, f"#{name}#")
    return [  # after the first save of a session: lock, auto-save, in-place write, cleanup
        {"op": "symlink", "path": lock, "to": f"user@host.{os.getpid()}:0"},
        {"op": "write", "path": autosave},
        {"op": "write", "path": path},
        {"op": "delete", "path": autosave},
        {"op": "delete", "path": lock},
    ]


def _jetbrains_save(path: str) -> list[dict[str, str]]:
    return [  # "safe write": new content beside, old moved aside, swap, drop the old
        {"op": "write", "path": path + "___jb_tmp___"},
        {"op": "rename", "path": path, "to": path + "___jb_old___"},
        {"op": "rename", "path": path + "___jb_tmp___", "to": path},
        {"op": "delete", "path": path + "___jb_old___"},
    ]


def _in_place_save(path: str) -> list[dict[str, str]]:
    return [{"op": "write", "path": path}]  # VS Code, nano, most IDE autosaves


def _gio_save(path: str) -> list[dict[str, str]]:
    temp = os.path.join(os.path.dirname(path), ".goutputstream-Q2ZK61")
    return [{"op": "write", "path": temp}, {"op": "rename", "path": temp, "to": path}]


def _sed_save(path: str) -> list[dict[str, str]]:
    temp = os.path.join(os.path.dirname(path), "sedAb3xQz")  # GNU sed -i: sedXXXXXX + rename
    return [{"op": "write", "path": temp}, {"op": "rename", "path": temp, "to": path}]


SAVE_RECIPES: dict[str, Callable[[str], list[dict[str, str]]]] = {
    "vim": _vim_save,
    "emacs": _emacs_save,
    "jetbrains": _jetbrains_save,
    "vscode": _in_place_save,
    "gedit": _gio_save,
    "sed": _sed_save,
}


@dataclass(frozen=True)
class Truth:
    tracked_seconds: float
    max_heartbeats: int
    min_heartbeats: int = 0
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class Op:
    t: float
    op: str
    path: str
    to: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class Trace:
    name: str
    description: str
    truth: Truth
    setup: tuple[Op, ...]
    ops: tuple[Op, ...]

    @property
    def duration(self) -> float:
        return self.ops[-1].t if self.ops else 0.0


@dataclass
class ReplayResult:
    trace: Trace
    heartbeats: list[CountedWrite]
    root: str
    problems: list[str] = field(default_factory=list)

    @property
    def tracked(self) -> float:
        return durations(activity.time for activity in self.heartbeats)

    @property
    def relative_paths(self) -> list[str]:
        return [os.path.relpath(activity.path, self.root) for activity in self.heartbeats]

    @property
    def ok(self) -> bool:
        return not self.problems


def _expand(raw: dict[str, object], t: float) -> Iterator[Op]:
    """One trace line → ops: ranges and editor saves unrolled."""
    kind, path = str(raw["op"]), str(raw["path"])
    to = str(raw["to"]) if "to" in raw else None
    text = str(raw["text"]) if "text" in raw else None
    match = _RANGE.search(path)
    if match:
        first, last = int(match[1]), int(match[2])
        count = last - first + 1
        spread = float(str(raw.get("spread", 0.0)))
        for index in range(count):
            numbered = _RANGE.sub(str(first + index), path, count=1)
            step = spread * index / max(count - 1, 1)
            yield from _expand({**raw, "path": numbered}, t + step)
    elif kind == "save":
        for step in SAVE_RECIPES[str(raw["editor"])](path):
            yield Op(t=t, op=step["op"], path=step["path"], to=step.get("to"))
    else:
        yield Op(t=t, op=kind, path=path, to=to, text=text)


def load_trace(path: Path) -> Trace:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    header, body = lines[0], lines[1:]
    truth = header["truth"]
    setup = tuple(op for raw in header.get("setup", ()) for op in _expand(raw, 0.0))
    ops = sorted(
        (op for raw in body for op in _expand(raw, float(raw["t"]))),
        key=lambda op: op.t,
    )
    return Trace(
        name=header["trace"],
        description=header["description"],
        truth=Truth(
            tracked_seconds=float(truth["tracked_seconds"]),
            max_heartbeats=int(truth["max_heartbeats"]),
            min_heartbeats=int(truth.get("min_heartbeats", 0)),
            paths=tuple(truth.get("paths", ())),
        ),
        setup=setup,
        ops=tuple(ops),
    )


def _content(op: Op) -> bytes:
    return (op.text if op.text is not None else f"{op.op} {op.path} at {op.t:.3f}\n").encode()


def apply(op: Op, root: str) -> None:
    """Do one op on the folder, the way the tool it stands for does it."""
    target = os.path.join(root, op.path)
    if op.op in ("write", "create"):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if op.op == "create" else os.O_TRUNC)
        descriptor = os.open(target, flags, 0o644)
        try:
            os.write(descriptor, _content(op))
        finally:
            os.close(descriptor)
    elif op.op == "rename":
        assert op.to is not None
        os.replace(target, os.path.join(root, op.to))
    elif op.op == "delete":
        os.unlink(target)
    elif op.op == "mkdir":
        os.makedirs(target, exist_ok=True)
    elif op.op == "symlink":
        assert op.to is not None
        os.symlink(op.to, target)
    else:
        raise ValueError(f"unknown op {op.op!r}")


def _groups(ops: Sequence[Op]) -> Iterator[tuple[float, list[Op]]]:
    """Ops within RESOLUTION of a group's first op belong to it and share its time."""
    group: list[Op] = []
    for op in ops:
        if group and op.t - group[0].t > RESOLUTION:
            yield group[0].t, group
            group = []
        group.append(op)
    if group:
        yield group[0].t, group


def _project_key(root: str) -> Callable[[str], str]:
    @lru_cache(maxsize=4096)
    def folder_project(folder: str) -> str:
        if os.path.isdir(os.path.join(folder, ".git")) or folder == root or len(folder) <= 1:
            return folder
        return folder_project(os.path.dirname(folder))

    return lambda path: folder_project(os.path.dirname(path))


WRITTEN, REMOVED = "written", "removed"


def deliver(policy: ActivityPolicy, what: str, path: str, at: float) -> None:
    """One watcher event to the policy, as the daemon hands it over."""
    if what == WRITTEN:
        policy.file_written(path, at)
    elif what == REMOVED:
        policy.file_removed(path, at)
    else:
        policy.signal(Signal(what), path, at)


class Events:
    """Watcher callbacks → a queue the replay loop drains; barrier files are answered here."""

    BARRIER = ".replay-barrier-"

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[str, str, float]] = queue.Queue()
        self._barrier_seen = threading.Condition()
        self._barrier_count = -1

    def write(self, path: str, at: float) -> None:
        name = os.path.basename(path)
        if name.startswith(self.BARRIER):
            with self._barrier_seen:
                self._barrier_count = max(self._barrier_count, int(name[len(self.BARRIER) :]))
                self._barrier_seen.notify_all()
        else:
            self.queue.put((WRITTEN, path, at))

    def remove(self, path: str, at: float) -> None:
        if not os.path.basename(path).startswith(self.BARRIER):
            self.queue.put((REMOVED, path, at))

    def signal(self, kind: Signal, where: str, at: float) -> None:
        self.queue.put((str(kind), where, at))

    def watcher(self, root: str, ignore: IgnoreRules, clock: Callable[[], float]) -> FileWatcher:
        """A FileWatcher on ``root`` reporting here."""
        return FileWatcher(
            [root], ignore, self.write, clock=clock, on_remove=self.remove, on_signal=self.signal
        )

    def barrier(self, root: str, number: int) -> None:
        """Write barrier file ``number``; wait until watchdog delivered it (so all before it)."""
        path = os.path.join(root, f"{self.BARRIER}{number}")
        with open(path, "w"):
            pass
        with self._barrier_seen:
            if not self._barrier_seen.wait_for(
                lambda: self._barrier_count >= number, BARRIER_TIMEOUT
            ):
                raise TimeoutError(f"the watcher did not report {path}")
        os.unlink(path)

    def feed(self, policy: ActivityPolicy) -> None:
        while True:
            try:
                what, path, at = self.queue.get_nowait()
            except queue.Empty:
                return
            deliver(policy, what, path, at)


class _VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _simulated_events(op: Op, root: str) -> list[tuple[bool, str]]:
    """What the watcher reports for one op, decided before the op is applied (the model that the
    watch mode checks): (written?, absolute path) pairs, before the ignore rules."""
    path = os.path.join(root, op.path)
    if op.op in ("write", "create", "symlink"):
        return [(True, path)]
    if op.op == "delete":
        return [(False, path)]
    if op.op == "rename" and op.to is not None and not os.path.isdir(path):
        return [(False, path), (True, os.path.join(root, op.to))]
    return []  # mkdir, and a folder renamed (its files' moves are synthetic)


def _drain_due(policy: ActivityPolicy, until: float, out: list[CountedWrite]) -> None:
    """Run the policy's timers up to ``until``, as the daemon's loop would."""
    while (deadline := policy.next_deadline()) is not None and deadline <= until:
        out.extend(policy.due(deadline))


def replay(
    trace: Trace,
    *,
    mode: str = "watch",
    settings: PolicySettings | None = None,
    speed: float = 1.0,
    workdir: str | None = None,
) -> ReplayResult:
    """Apply ``trace`` in a fresh folder and return the heartbeats the policy let through."""
    base = tempfile.mkdtemp(prefix=f"replay-{trace.name}-", dir=workdir)
    root = os.path.realpath(base)
    try:
        for op in trace.setup:
            apply(op, root)
        ignore = IgnoreRules()
        policy = ActivityPolicy(settings or PolicySettings(), _project_key(root))
        heartbeats: list[CountedWrite] = []
        if mode == "simulate":
            _replay_simulated(trace, root, ignore, policy, heartbeats)
        elif mode == "watch":
            _replay_watched(trace, root, ignore, policy, heartbeats)
        elif mode == "realtime":
            _replay_realtime(trace, root, ignore, policy, heartbeats, speed)
        else:
            raise ValueError(f"unknown mode {mode!r}")
        result = ReplayResult(trace=trace, heartbeats=heartbeats, root=root)
        result.problems = judge(result)
        return result
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _replay_simulated(
    trace: Trace,
    root: str,
    ignore: IgnoreRules,
    policy: ActivityPolicy,
    heartbeats: list[CountedWrite],
) -> None:
    for at, ops in _groups(trace.ops):
        _drain_due(policy, at, heartbeats)
        for op in ops:
            events = _simulated_events(op, root)
            apply(op, root)
            for written, path in events:
                for kind, where in signals_of(None if written else path, path if written else None):
                    policy.signal(kind, where, at)
                if not ignore.ignored(path, root=root):
                    (policy.file_written if written else policy.file_removed)(path, at)
    _drain_due(policy, math.inf, heartbeats)


def _replay_watched(
    trace: Trace,
    root: str,
    ignore: IgnoreRules,
    policy: ActivityPolicy,
    heartbeats: list[CountedWrite],
) -> None:
    events, clock = Events(), _VirtualClock()
    watcher = events.watcher(root, ignore, clock)
    watcher.start()
    try:
        for number, (at, ops) in enumerate(_groups(trace.ops)):
            _drain_due(policy, at, heartbeats)
            clock.now = at
            for op in ops:
                apply(op, root)
            events.barrier(root, number)
            events.feed(policy)
    finally:
        watcher.stop()
    _drain_due(policy, math.inf, heartbeats)


def _replay_realtime(
    trace: Trace,
    root: str,
    ignore: IgnoreRules,
    policy: ActivityPolicy,
    heartbeats: list[CountedWrite],
    speed: float,
) -> None:
    events = Events()
    started = time.monotonic()

    def clock() -> float:
        return (time.monotonic() - started) * speed

    def run_until(moment: float) -> None:
        """Feed events and fire the policy's timers until trace time ``moment``."""
        while (now := clock()) < moment:
            deadline = policy.next_deadline()
            if deadline is not None and deadline <= now:
                heartbeats.extend(policy.due(now))
                continue
            wake = min(moment, deadline if deadline is not None else math.inf)
            try:
                what, path, at = events.queue.get(timeout=(wake - now) / speed)
            except queue.Empty:
                continue
            deliver(policy, what, path, at)

    watcher = events.watcher(root, ignore, clock)
    watcher.start()
    try:
        for at, ops in _groups(trace.ops):
            run_until(at)
            for op in ops:
                apply(op, root)
        events.barrier(root, 0)  # every event of the trace is queued now
        while (deadline := policy.next_deadline()) is not None or not events.queue.empty():
            run_until(max(clock(), deadline or 0.0) + RESOLUTION)
    finally:
        watcher.stop()


def judge(result: ReplayResult) -> list[str]:
    """Where the replay departs from the trace's truth (empty: it met every goal)."""
    truth, problems = result.trace.truth, []
    noise = sorted({path for path in result.relative_paths if path not in truth.paths})
    if noise:
        problems.append(f"heartbeats for files nobody edited: {', '.join(noise)}")
    count = len(result.heartbeats)
    if count > truth.max_heartbeats:
        problems.append(f"{count} heartbeats, at most {truth.max_heartbeats} expected")
    if count < truth.min_heartbeats:
        problems.append(f"{count} heartbeats, at least {truth.min_heartbeats} expected")
    if abs(result.tracked - truth.tracked_seconds) > TOLERANCE * truth.tracked_seconds:
        problems.append(
            f"tracked {result.tracked:.0f} s, truth {truth.tracked_seconds:.0f} s (±5 %)"
        )
    return problems


def trace_files(names: Sequence[str], everything: bool) -> list[Path]:
    if everything:
        return sorted(TRACES.glob("*.jsonl"))
    return [Path(name) if name.endswith(".jsonl") else TRACES / f"{name}.jsonl" for name in names]


def markdown(results: Sequence[ReplayResult], mode: str) -> str:
    rows = [
        f"| trace ({mode}) | truth (s) | tracked (s) | heartbeats (max) | result |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for result in results:
        truth = result.trace.truth
        verdict = "ok" if result.ok else "FAIL: " + "; ".join(result.problems)
        rows.append(
            f"| {result.trace.name} | {truth.tracked_seconds:.0f} | {result.tracked:.0f} "
            f"| {len(result.heartbeats)} ({truth.max_heartbeats}) | {verdict} |"
        )
    return "\n".join(rows)


def _print_result(result: ReplayResult) -> None:
    print(f"# {result.trace.name}: {result.trace.description}")
    for activity, path in zip(result.heartbeats, result.relative_paths, strict=True):
        print(f"  heartbeat t={activity.time:9.2f}  {path}")
    truth = result.trace.truth
    print(
        f"  heartbeats {len(result.heartbeats)} (max {truth.max_heartbeats}), "
        f"tracked {result.tracked:.1f} s (truth {truth.tracked_seconds:.1f} s): "
        + ("ok" if result.ok else "FAIL: " + "; ".join(result.problems))
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("traces", nargs="*", help="trace names (in traces/) or .jsonl files")
    parser.add_argument("--all", action="store_true", help="every trace in traces/")
    parser.add_argument("--mode", choices=("watch", "realtime", "simulate"), default="watch")
    parser.add_argument("--speed", type=float, default=1.0, help="realtime: trace s per real s")
    parser.add_argument("--markdown", action="store_true", help="print one summary table")
    parser.add_argument("--workdir", help="where the temp folders go (a tmpfs is fastest)")
    args = parser.parse_args(argv)
    files = trace_files(args.traces, args.all)
    if not files:
        parser.error("name a trace or pass --all")
    results = [
        replay(load_trace(path), mode=args.mode, speed=args.speed, workdir=args.workdir)
        for path in files
    ]
    if args.markdown:
        print(markdown(results, args.mode))
    else:
        for result in results:
            _print_result(result)
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
