"""Run every benchmark in scripts/bench/ in turn and print their tables.

At the sizes BENCHMARKS.md quotes by default (several minutes); `--quick` runs each at a
size that takes seconds, for a look, not for the record. A script without a known quick size
runs at its default either way. Exits non-zero if any benchmark failed.

    .venv/bin/python scripts/bench/run_all.py [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Arguments per script: `QUICK` for `--quick`; `TINY` for the smoke test
# (tests/test_bench_smoke.py), which only checks that each still runs and prints its table.
QUICK: dict[str, list[str]] = {
    "bench_compat.py": ["--calls", "10"],
    "bench_ipc.py": ["--count", "5000"],
    "bench_delivery.py": ["--count", "10000"],
    "bench_detect.py": ["--files", "500", "--rounds", "3"],
    "bench_watch.py": ["--folders", "1000", "--idle", "10"],
    "bench_burst.py": ["--files", "2000"],
    "bench_save.py": ["--saves", "3"],
    "bench_vs_wakatime_cli.py": ["--calls", "10"],
    "bench_ai.py": ["--mb", "5", "--appends", "20", "--daemon-appends", "5"],
    "bench_tool_runs.py": ["--only", "git-checkout-300", "ruff-format-100", "vim-only"],
}
TINY: dict[str, list[str]] = {
    "bench_compat.py": ["--calls", "2"],
    "bench_ipc.py": ["--count", "200", "--clients", "2"],
    "bench_delivery.py": ["--count", "200"],
    "bench_detect.py": ["--files", "20", "--rounds", "1"],
    "bench_watch.py": ["--folders", "20", "--idle", "1"],
    "bench_burst.py": ["--files", "100", "--quiet", "1"],
    "bench_save.py": ["--saves", "1"],
    "bench_vs_wakatime_cli.py": ["--calls", "2"],
    "bench_ai.py": ["--mb", "0.2", "--appends", "2", "--daemon-appends", "1"],
    "bench_tool_runs.py": ["--only", "git-checkout-1"],
}


def bench_scripts() -> list[Path]:
    return sorted(HERE.glob("bench_*.py"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds each")
    args = parser.parse_args()
    failed = []
    for script in bench_scripts():
        extra = QUICK.get(script.name, []) if args.quick else []
        print(f"\n## {script.name} {' '.join(extra)}".rstrip(), flush=True)
        started = time.perf_counter()
        code = subprocess.run([sys.executable, str(script), *extra], check=False).returncode
        print(f"({time.perf_counter() - started:.0f} s, exit {code})", flush=True)
        if code != 0:
            failed.append(script.name)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
