"""Benchmark: the real daemon watching a large tree — time to ready, memory, CPU while idle.

Builds a git repository of N folders × M files, starts `agent run` as a subprocess watching
it (isolated home, loopback fake server), and reads the process from /proc: time from spawn
to the "ready" log line, VmRSS and VmHWM, and utime+stime and context switches (every
thread's wakeups) over an idle window. Linux only (/proc). Goals: ready ≤ 3 s, RSS ≤ 80 MiB,
idle CPU ≤ 0.05 s per 10 s.

    .venv/bin/python scripts/bench/bench_watch.py [--folders 5000] [--files 4] [--idle 60]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).parent)]

from agentproc import AgentProcess, agent_env  # noqa: E402
from machine import machine_line  # noqa: E402
from wakaserver import FakeWakaTime  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
GITIGNORE = "*.log\n/coverage/\n.env\n"
SOURCE = "def f(x):\n    return x + 1\n"
SETTLE = 0.5  # seconds after "ready" before the idle window opens (startup's last tasks)


@dataclass(frozen=True)
class Sample:
    """One reading of a process from /proc."""

    cpu: float  # seconds of user + system time, all threads
    switches: int  # context switches of all threads: each is a wakeup or a preemption
    threads: int

    def __sub__(self, earlier: Sample) -> Sample:
        return Sample(
            self.cpu - earlier.cpu, self.switches - earlier.switches, self.threads - earlier.threads
        )


def sample(pid: int) -> Sample:
    """CPU time (utime + stime, fields 14 and 15 of stat) and context switches of a process."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    switches = 0
    tasks = list(Path(f"/proc/{pid}/task").iterdir())
    for task in tasks:
        try:
            status = (task / "status").read_text()
        except FileNotFoundError:  # the thread ended between listing and reading
            continue
        switches += sum(
            int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line
        )
    return Sample(cpu, switches, len(tasks))


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values


def inotify_watches(pid: int) -> int:
    """Watches the process holds on all its inotify descriptors (one line each in fdinfo)."""
    total = 0
    for info in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            total += info.read_text().count("inotify wd:")
        except OSError:
            continue
    return total


def git_init(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    (folder / ".gitignore").write_text(GITIGNORE)


def write_tree(root: Path, folders: int, files: int) -> None:
    """`folders` leaf folders grouped 100 to a parent, each with `files` source files."""
    for index in range(folders):
        folder = root / f"group{index // 100:03d}" / f"pkg{index:05d}"
        folder.mkdir(parents=True)
        for number in range(files):
            (folder / f"mod{number}.py").write_text(SOURCE)


@contextmanager
def running_daemon(work: Path, watch: Path, cwd: Path) -> Iterator[tuple[AgentProcess, float]]:
    """`agent run` watching `watch`, isolated under `work`, delivering to a loopback fake
    server; yields the process and the seconds from spawn to its "ready" line."""
    with FakeWakaTime(flavor="wakapi") as server:
        env = agent_env(work, server.url, HEARTBEAT_AGENT_WATCH__PATHS=json.dumps([str(watch)]))
        agent = AgentProcess(env, cwd)
        started = time.perf_counter()
        agent.start(ready_timeout=120)
        ready = time.perf_counter() - started
        try:
            yield agent, ready
        finally:
            code = agent.stop()
            if code != 0:
                raise SystemExit(f"agent run exited {code}:\n{agent.log}")


def pid_of(agent: AgentProcess) -> int:
    assert agent.proc is not None
    return agent.proc.pid


def row(measure: str, figure: str, goal: str = "—", met: bool | None = None) -> None:
    """One line of the markdown table every benchmark prints; ✔/✘ when there is a goal."""
    mark = "" if met is None else " ✔" if met else " ✘"
    print(f"| {measure} | {figure} | {goal}{mark} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folders", type=int, default=5000)
    parser.add_argument("--files", type=int, default=4, help="files per folder")
    parser.add_argument("--idle", type=float, default=60.0, help="idle window, seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tree = work / "tree"
        git_init(tree)
        write_tree(tree, args.folders, args.files)
        with running_daemon(work / "agent", tree, tree) as (agent, ready):
            pid = pid_of(agent)
            startup = sample(pid)
            watches = inotify_watches(pid)
            time.sleep(SETTLE)
            before = sample(pid)
            time.sleep(args.idle)  # the window itself: nothing happens, by design
            idle = sample(pid) - before
            memory = memory_mib(pid)
    per_10s = idle.cpu * 10 / args.idle
    folders = args.folders + (args.folders + 99) // 100
    print(machine_line())
    print(
        f"watching {folders:,} folders, {args.folders * args.files:,} files (a git repository);"
        f" idle window {args.idle:g} s"
    )
    print("| measure | figure | goal |")
    print("| --- | --- | --- |")
    row("spawn to ready", f"{ready:.2f} s", "≤ 3 s", ready <= 3)
    row("CPU to ready", f"{startup.cpu:.2f} s")
    row("inotify watches", f"{watches:,}")
    row("RSS after idle (VmRSS)", f"{memory['VmRSS']:.1f} MiB", "≤ 80 MiB", memory["VmRSS"] <= 80)
    row("peak RSS (VmHWM)", f"{memory['VmHWM']:.1f} MiB", "≤ 80 MiB", memory["VmHWM"] <= 80)
    row(
        "idle CPU",
        f"{per_10s:.3f} s per 10 s ({idle.cpu:.2f} s in {args.idle:g} s)",
        "≤ 0.05 s per 10 s",
        per_10s <= 0.05,
    )
    row(
        f"idle wakeups (context switches of {startup.threads} threads)",
        f"{idle.switches:,} in {args.idle:g} s",
        "0 (no polling)",
        idle.switches == 0,
    )


if __name__ == "__main__":
    main()
