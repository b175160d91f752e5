"""Benchmark: CPU and wall to take in an AI transcript history, then one appended line.

Writes Claude Code transcripts (prompts, assistant turns with token usage and text, Edit
results) totalling `--mb` MB under a temp home, then:

1. the AI source's first full read of all of it (what a daemon does on its first start),
   alone, and then a whole daemon from its start until the fake server has it all;
2. one line appended to the active transcript and read (the worker's path after inotify:
   stat, position lookup, read, parse, SQLite position commit), `--appends` times;
3. through a real daemon, on a small transcript: CPU of the `agent run` process (all its
   threads: inotify, parse, build, store, send) per appended line until the fake server
   has its heartbeat (CPU clock ticks are 10 ms: a mean over `--daemon-appends`).

wakatime-cli's own `--sync-ai-activity` cannot run here (the installed wakatime-cli is
1.90.0, which predates it); the table gives the bytes each approach reads in an hour of
once-a-minute syncs, modelled from its source (pkg/ai: each call opens every transcript
modified since the last parse and scans it from its start, or from its last 10 MB).

    .venv/bin/python scripts/bench/bench_ai.py [--mb 50] [--appends 50] [--daemon-appends 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).parent)]

from agentproc import AgentProcess, agent_env  # noqa: E402
from aitranscripts import append, claude_assistant, claude_edit, claude_path, claude_prompt  # noqa: E402
from bench_watch import row  # noqa: E402
from machine import machine_line  # noqa: E402
from wakaserver import FakeWakaTime  # noqa: E402

from agent.pipeline.heartbeat import Heartbeat  # noqa: E402
from agent.sources.ai.positions import PositionStore  # noqa: E402
from agent.sources.ai.source import AiActivitySource  # noqa: E402
from agent.sources.ai.tools import tools  # noqa: E402

SESSION_BYTES = 2_500_000  # one transcript; a long Claude Code session is a few MB
CWD = "/home/me/shop"


def write_history(home: Path, total: int, start: float) -> list[Path]:
    """Transcripts of SESSION_BYTES each until `total` bytes; every turn 1 prompt, 1
    assistant reply with about 1.5 kB of text, 1 Edit result."""
    paths: list[Path] = []
    written = 0
    at = start
    session = 0
    while written < total:
        path = claude_path(home, CWD, f"session-{session:03d}")
        turns = []
        size = 0
        while size < SESSION_BYTES and written + size < total:
            at += 20
            assistant = claude_assistant(f"s{session}", f"msg_{at}", at + 1, 3000, 400)
            assistant["message"]["content"].append({"type": "text", "text": "ok. " * 380})
            lines = [
                claude_prompt(f"s{session}", CWD, "please refactor the cart module", at),
                assistant,
                claude_edit(f"s{session}", f"{CWD}/cart.py", at + 2, "a\nb\nc", "a\nB\nc\nd"),
            ]
            turns.extend(lines)
            size += sum(len(str(line)) for line in lines)
        append(path, turns)
        written += path.stat().st_size
        paths.append(path)
        session += 1
    return paths


def cpu_of(pid: int) -> float:
    """utime + stime of a process, all threads, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50)
    parser.add_argument("--appends", type=int, default=50)
    parser.add_argument("--daemon-appends", type=int, default=20)
    args = parser.parse_args()
    start = time.time() - 86400
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        home = root / "home"
        paths = write_history(home, int(args.mb * 1_000_000), start)
        total = sum(path.stat().st_size for path in paths)
        stored: list[int] = []

        def sink(heartbeats: list[Heartbeat]) -> Future[int]:
            stored.append(len(heartbeats))
            future: Future[int] = Future()
            future.set_result(len(heartbeats))
            return future

        source = AiActivitySource(
            sink,
            PositionStore(root / "ai.sqlite3"),
            lock_path=root / "ai.lock",
            known_tools=tools(env={}, home=str(home)),
        )
        cpu, wall = time.process_time(), time.perf_counter()
        source.sync()
        first_cpu, first_wall = time.process_time() - cpu, time.perf_counter() - wall
        first_heartbeats = sum(stored)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        active = paths[-1]
        line_cpu, line_wall = [], []
        at = start + 86000
        for n in range(args.appends):
            append(active, [claude_edit("s", f"{CWD}/cart.py", at + n, "x", "x\ny")])
            cpu, wall = time.process_time(), time.perf_counter()
            source.take(str(active))
            line_cpu.append(time.process_time() - cpu)
            line_wall.append(time.perf_counter() - wall)
        source.close()
        history_cpu, history_wall = daemon_history(root, home, first_heartbeats + args.appends)
        appended_line = len(str(claude_edit("s", f"{CWD}/cart.py", at, "x", "x\ny")))
        daemon_cpu = daemon_per_line(root, args.daemon_appends, at + 1000)

        active_size = active.stat().st_size
    hour_ours = 60 * appended_line
    hour_theirs = 60 * min(active_size, 10_000_000)
    print(machine_line())
    print(
        f"{total / 1e6:.1f} MB of Claude Code transcripts in {len(paths)} files, "
        f"{first_heartbeats} heartbeats; then {args.appends} single-line appends\n"
    )
    print("| measure | figure | goal |")
    print("| --- | --- | --- |")
    row("first read of the whole history, CPU", f"{first_cpu:.2f} s")
    row("first read of the whole history, wall", f"{first_wall:.2f} s")
    row("first read, throughput (CPU)", f"{total / 1e6 / first_cpu:.1f} MB/s")
    row("peak RSS of the benchmark process", f"{peak_mb:.0f} MB")
    row("whole daemon, start → all of it at the server, CPU", f"{history_cpu:.2f} s")
    row("whole daemon, start → all of it at the server, wall", f"{history_wall:.2f} s")
    row(
        "one appended line, source CPU, median",
        f"{statistics.median(line_cpu) * 1000:.2f} ms",
        "≤ 5 ms",
    )
    row("one appended line, source CPU, max", f"{max(line_cpu) * 1000:.2f} ms")
    row("one appended line, source wall, median", f"{statistics.median(line_wall) * 1000:.2f} ms")
    if daemon_cpu is not None:
        row(
            "one appended line, whole daemon CPU (inotify → sent), mean",
            f"{daemon_cpu * 1000:.1f} ms",
        )
    row("bytes read per hour of once-a-minute syncs, agent", f"{hour_ours / 1e3:.0f} kB")
    row(
        "same, wakatime-cli 2.x (modelled from its source, not run)",
        f"{hour_theirs / 1e6:.0f} MB",
    )


def daemon_history(root: Path, home: Path, expected: int) -> tuple[float, float]:
    """CPU and wall of `agent run` from its start until the fake server has every heartbeat
    of the history: read, built, stored and sent (batches of 1000, the fake server's)."""
    with FakeWakaTime() as server:
        env = agent_env(root / "history", server.url, HEARTBEAT_AGENT_QUEUE__BATCH_SIZE="1000")
        env["HOME"] = str(home)
        work = root / "history-idle"
        work.mkdir()
        started = time.perf_counter()
        with AgentProcess(env, work) as agent:
            assert agent.proc is not None
            server.wait_for(expected, timeout=1800)
            spent = cpu_of(agent.proc.pid), time.perf_counter() - started
            agent.stop()
    return spent


def daemon_per_line(root: Path, appends: int, at: float) -> float | None:
    """Mean CPU of `agent run` (all its threads) per line appended to a transcript, from
    the append to the fake server's receipt of its heartbeat."""
    if appends <= 0:
        return None
    with FakeWakaTime() as server:
        env = agent_env(root / "daemon", server.url)
        active = claude_path(Path(env["HOME"]), CWD, "live")
        append(active, [claude_prompt("live", CWD, "start", at)])
        work = root / "idle"
        work.mkdir()
        with AgentProcess(env, work) as agent:
            assert agent.proc is not None
            server.wait_for(1, timeout=60)
            before = cpu_of(agent.proc.pid)
            for n in range(appends):
                append(active, [claude_edit("live", f"{CWD}/cart.py", at + n, "x", "x\ny")])
                server.wait_for(n + 2, timeout=60)
            spent = cpu_of(agent.proc.pid) - before
            agent.stop()
    return spent / appends


if __name__ == "__main__":
    main()
