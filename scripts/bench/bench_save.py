"""Benchmark: how long a save takes to reach the server, end to end.

`agent run` watches a git repository; each round writes one file and times until the
loopback fake server has its heartbeat. Most of it is deliberate: the policy holds a write
for the debounce / storm window (2 s by default) before it becomes a heartbeat.

    .venv/bin/python scripts/bench/bench_save.py [--saves 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).parent)]

from agentproc import AgentProcess, agent_env  # noqa: E402
from bench_watch import row  # noqa: E402
from machine import machine_line  # noqa: E402
from wakaserver import FakeWakaTime  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, FakeWakaTime() as server:
        repo = Path(folder) / "repo"
        repo.mkdir()
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        latencies = []
        with AgentProcess(agent_env(Path(folder) / "work", server.url), repo) as agent:
            for n in range(args.saves):
                started = time.perf_counter()
                (repo / f"file{n}.py").write_text(f"x = {n}\n")
                server.wait_for(n + 1, timeout=30)
                latencies.append(time.perf_counter() - started)
            agent.stop()
    print(machine_line())
    print(f"{args.saves} saves, one at a time, default policy (2 s debounce / storm window)\n")
    print("| measure | figure | goal |")
    print("| --- | --- | --- |")
    row("save → server, median", f"{statistics.median(latencies):.3f} s")
    row("save → server, max", f"{max(latencies):.3f} s")
    row("of which the policy's deliberate hold", "2.000 s")


if __name__ == "__main__":
    main()
