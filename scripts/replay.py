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
  watch     (default) the daemon's file-activity component (agent.sources.file_activity: the
            real FileWatcher, ignore rules and ActivityPolicy) on a temp folder. Time is virtual:
            every op group happens at its trace time, the component's timers fire at theirs,
            and after each group ``FileActivity.caught_up`` waits until watchdog delivered all
            of its events, so an hour-long trace takes as long as its operations, not an hour.
  realtime  the component as the daemon runs it: ops at their real times, on an event loop
            whose clock is the component's and whose timers flush it; ``--speed`` makes that
            loop's seconds pass faster (watchdog's latency does not shrink with them).
  simulate  no watcher: each op is turned into the move, write or removal the watcher reports
            for it (``FileWatcher.report``: the same ignore rules and signals), handed to the
            same component's policy. For checking hour-long sessions quickly; the watch mode
            proves the model.

Every mode runs the agent's default settings, watching the trace folder. Truth: heartbeats
only for ``paths`` (the files a person really edited), at most ``max_heartbeats`` (and at least
``min_heartbeats``), and tracked time (stats.durations of the heartbeat times) within ±5 % of
``tracked_seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import os
import re
import selectors
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from agent.config import QueueSettings, Settings, WatchSettings  # noqa: E402
from agent.pipeline.heartbeat import Heartbeat  # noqa: E402
from agent.pipeline.stats import durations  # noqa: E402
from agent.sources.file_activity import (  # noqa: E402
    REMOVED,
    WRITTEN,
    FileActivity,
    Sink,
    WatchedEvent,
    ignore_rules,
)
from agent.sources.watcher import FileWatcher  # noqa: E402

TRACES = REPO / "traces"
TOLERANCE = 0.05
# Op groups closer than this (virtual seconds) are applied together and share one time stamp.
RESOLUTION = 0.01

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
    heartbeats: list[Heartbeat]
    root: str
    problems: list[str] = field(default_factory=list)

    @property
    def tracked(self) -> float:
        return durations(heartbeat.time for heartbeat in self.heartbeats)

    @property
    def relative_paths(self) -> list[str]:
        return [os.path.relpath(heartbeat.entity, self.root) for heartbeat in self.heartbeats]

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


class TraceClock:
    """Trace time, seconds from the start: moved by the replay (`set`), and in between either
    standing still (`pace` 0) or running at real pace (1: a real tool at work)."""

    def __init__(self, pace: float = 0.0) -> None:
        self.pace = pace
        self._at, self._since = 0.0, time.monotonic()

    def __call__(self) -> float:
        return self._at + (time.monotonic() - self._since) * self.pace

    def set(self, moment: float) -> None:
        self._at, self._since = moment, time.monotonic()


def settings_for(root: str, data: str) -> Settings:
    """The agent's defaults, watching ``root``; its own files (never written) in ``data``."""
    return Settings(
        watch=WatchSettings(paths=[root]),
        queue=QueueSettings(path=Path(data) / "heartbeats.sqlite3"),
    )


class SeenActivity(FileActivity):
    """The daemon's file-activity component, also keeping every path its watcher handed the
    policy as written (what a tool run wrote, for scripts/tool_runs.py)."""

    def __init__(self, settings: Settings, sink: Sink, *, clock: Callable[[], float]) -> None:
        super().__init__(settings, sink, clock=clock)
        self.written: set[str] = set()

    def to_policy(self, what: WatchedEvent, path: str, at: float) -> None:
        if what == WRITTEN:
            self.written.add(path)
        super().to_policy(what, path, at)


class TracedActivity:
    """The file-activity component on a folder, on a clock the replay moves: time passes in
    `advance`, which fires the component's timers each at its own moment, as the daemon's
    loop does while real time passes. ``async with`` starts and stops its watcher."""

    def __init__(self, root: str, data: str, clock: TraceClock | None = None) -> None:
        self.clock = clock or TraceClock()
        self.heartbeats: list[Heartbeat] = []
        self.activity = SeenActivity(
            settings_for(root, data), self.heartbeats.extend, clock=self.clock
        )

    async def __aenter__(self) -> TracedActivity:
        await self.activity.start()
        if self.activity.problem:
            raise RuntimeError(self.activity.problem)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.activity.stop()

    def advance(self, to: float) -> None:
        """Let time pass until ``to`` (``math.inf``: until the policy holds nothing)."""
        while (deadline := self.activity.policy.next_deadline()) is not None and deadline <= to:
            self.clock.set(max(deadline, self.clock()))
            self.activity.flush()
        if to != math.inf:
            self.clock.set(max(to, self.clock()))

    async def settle(self) -> None:
        """Wait until the watcher delivered everything so far into the policy; fire what is
        due by now."""
        await self.activity.caught_up()
        self.advance(self.clock())


class FastForwardLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock, and every timer on it, runs ``speed`` times real time."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        super().__init__(_FastForwardSelector(speed))

    def time(self) -> float:
        return super().time() * self.speed


class _FastForwardSelector(selectors.DefaultSelector):
    """Waits real seconds for its loop's fast ones."""

    def __init__(self, speed: float) -> None:
        super().__init__()
        self.speed = speed

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        return super().select(None if timeout is None else timeout / self.speed)


def _watcher_report(op: Op, root: str) -> tuple[str | None, str | None]:
    """What the watcher reports for one op, decided before the op is applied (the model that
    the watch mode checks): the absolute paths (removed, written), before the ignore rules."""
    path = os.path.join(root, op.path)
    if op.op in ("write", "create", "symlink"):
        return None, path
    if op.op == "delete":
        return path, None
    if op.op == "rename" and op.to is not None and not os.path.isdir(path):
        return path, os.path.join(root, op.to)
    return None, None  # mkdir, and a folder renamed (its files' moves are synthetic)


def replay(
    trace: Trace,
    *,
    mode: str = "watch",
    speed: float = 1.0,
    workdir: str | None = None,
) -> ReplayResult:
    """Apply ``trace`` in a fresh folder and return the heartbeats the component handed on."""
    base = os.path.realpath(tempfile.mkdtemp(prefix=f"replay-{trace.name}-", dir=workdir))
    root, data = os.path.join(base, "trace"), os.path.join(base, "agent")
    try:
        os.mkdir(root)
        for op in trace.setup:
            apply(op, root)
        if mode == "simulate":
            heartbeats = _replay_simulated(trace, root, data)
        elif mode == "watch":
            heartbeats = asyncio.run(_replay_watched(trace, root, data))
        elif mode == "realtime":
            with asyncio.Runner(loop_factory=lambda: FastForwardLoop(speed)) as runner:
                heartbeats = runner.run(_replay_realtime(trace, root, data))
        else:
            raise ValueError(f"unknown mode {mode!r}")
        result = ReplayResult(trace=trace, heartbeats=heartbeats, root=root)
        result.problems = judge(result)
        return result
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _replay_simulated(trace: Trace, root: str, data: str) -> list[Heartbeat]:
    traced = TracedActivity(root, data)
    to_policy = traced.activity.to_policy
    watcher = FileWatcher(
        [root],
        ignore_rules(traced.activity.settings.watch),
        functools.partial(to_policy, WRITTEN),
        clock=traced.clock,
        on_remove=functools.partial(to_policy, REMOVED),
        on_signal=to_policy,
    )
    for at, ops in _groups(trace.ops):
        traced.advance(at)
        for op in ops:
            removed, written = _watcher_report(op, root)
            apply(op, root)
            watcher.report(root, removed=removed, written=written)
    traced.advance(math.inf)
    return traced.heartbeats


async def _replay_watched(trace: Trace, root: str, data: str) -> list[Heartbeat]:
    async with TracedActivity(root, data) as traced:
        for at, ops in _groups(trace.ops):
            traced.advance(at)
            for op in ops:
                apply(op, root)
            await traced.settle()
        traced.advance(math.inf)
    return traced.heartbeats


async def _replay_realtime(trace: Trace, root: str, data: str) -> list[Heartbeat]:
    loop = asyncio.get_running_loop()
    started = loop.time()

    def clock() -> float:
        return loop.time() - started

    heartbeats: list[Heartbeat] = []
    activity = FileActivity(settings_for(root, data), heartbeats.extend, clock=clock)
    await activity.start()
    try:
        for at, ops in _groups(trace.ops):
            await asyncio.sleep(at - clock())
            for op in ops:
                apply(op, root)
        await activity.caught_up()  # every event of the trace is in the policy now
        while (deadline := activity.policy.next_deadline()) is not None:
            await asyncio.sleep(deadline - clock() + RESOLUTION)  # its timer flushes it
    finally:
        await activity.stop()
    return heartbeats


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
    for heartbeat, path in zip(result.heartbeats, result.relative_paths, strict=True):
        print(f"  heartbeat t={heartbeat.time:9.2f}  {path}")
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
