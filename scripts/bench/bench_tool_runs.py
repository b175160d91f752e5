"""Benchmark (a replay table): real tools and editors through the real watcher and policy.

Runs the scenarios of scripts/tool_runs.py (a person saves at 0 s and 30 s, a tool runs at
1000 s, the person saves 5 s and 35 s after it) and prints, per tool, how long it ran, how
many files the watcher saw it write, how many heartbeats it caused (goal 0) and the tracked
time against the truth (goal ±5 %).

    .venv/bin/python scripts/bench/bench_tool_runs.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "scripts"), str(Path(__file__).parent)]

from machine import machine_line  # noqa: E402
from tool_runs import SCENARIOS, markdown, run_scenario  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="scenario names (default: all)")
    args = parser.parse_args()
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    print(machine_line())
    print()
    results = [run_scenario(scenario) for scenario in chosen]
    print(markdown(results))
    failed = [r for r in results if r.problems]
    for r in failed:
        print(f"{r.scenario.name}: {'; '.join(r.problems)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
