"""Benchmark of agent.pipeline.detect: a new file, a new file in a cold detector, and a cached file.

Builds a git repository in a temporary folder (the `git` command must exist), writes source
files into it, and times Detector.detect with time.perf_counter. Prints a table with the
machine's facts. Goals: new file ≤ 1 ms, cached file ≤ 20 µs.

    .venv/bin/python scripts/bench/bench_detect.py [--files N]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent.pipeline.detect import Detector

SOURCES = {
    ".py": "import os\nimport requests\nfrom flask import Flask\n\n\ndef main():\n    pass\n",
    ".ts": "import { a } from './a';\nimport React from 'react';\nexport const x = 1;\n",
    ".go": 'package main\n\nimport (\n\t"fmt"\n\t"net/http"\n)\n\nfunc main() {}\n',
    ".rs": "use serde::Serialize;\nextern crate rand;\nfn main() {}\n",
    ".h": "#include <stdio.h>\nint f(void);\n",
}


def make_repository(root: Path, files: int) -> list[Path]:
    repo = root / "project"
    deep = repo / "src" / "pkg" / "module" / "sub"
    deep.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    paths = []
    extensions = list(SOURCES)
    for i in range(files):
        ext = extensions[i % len(extensions)]
        path = deep / f"file{i}{ext}"
        path.write_text(SOURCES[ext] * 20)
        paths.append(path)
    return paths


def per_call(run: Callable[[], None], calls: int) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"new file (warm folder)": [], "new file (cold)": []}
    results["cached file"] = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(p) for p in make_repository(Path(tmp), args.files)]
        for _ in range(args.rounds):
            detector = Detector()
            detector.detect(paths[0])  # folder and HEAD known, the other files are new

            def new_files(detector: Detector = detector) -> None:
                for p in paths[1:]:
                    detector.detect(p)

            results["new file (warm folder)"].append(per_call(new_files, len(paths) - 1))

            def cached(detector: Detector = detector) -> None:
                for p in paths:
                    detector.detect(p)

            results["cached file"].append(per_call(cached, len(paths)))

            sample = paths[:200]

            def cold(sample: list[str] = sample) -> None:
                for p in sample:
                    Detector().detect(p)

            results["new file (cold)"].append(per_call(cold, len(sample)))

    print(f"agent.pipeline.detect benchmark — {datetime.date.today().isoformat()}")
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}"
    )
    print(f"{args.files} files in one git repository, best and median of {args.rounds} rounds\n")
    goals = {
        "new file (warm folder)": 1000.0,
        "new file (cold)": 1000.0,
        "cached file": 20.0,
    }
    print(f"{'case':<26}{'best µs':>10}{'median µs':>12}{'goal µs':>10}")
    for name, values in results.items():
        micro = [v * 1e6 for v in values]
        print(f"{name:<26}{min(micro):>10.1f}{statistics.median(micro):>12.1f}{goals[name]:>10.0f}")


if __name__ == "__main__":
    main()
