"""Every benchmark still runs: each script at a tiny size, as a subprocess.

Only that it exits 0 and prints the machine, the date and a table with its goals — no figure
is checked (speed is measured in scripts/bench/, never asserted).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "scripts" / "bench"
sys.path.insert(0, str(BENCH))

from run_all import TINY, bench_scripts  # noqa: E402

DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def table_rows(output: str) -> list[str]:
    """The rows below the first header that names the goals (markdown or aligned columns)."""
    lines = output.splitlines()
    header = next((i for i, line in enumerate(lines) if "goal" in line.lower()), None)
    if header is None:
        return []
    rows = []
    for line in lines[header + 1 :]:
        if not line.strip():
            break
        if not re.fullmatch(r"[|\s:-]+", line):  # not the markdown separator
            rows.append(line)
    return rows


def test_every_benchmark_has_a_tiny_size() -> None:
    assert {script.name for script in bench_scripts()} <= set(TINY)


@pytest.mark.parametrize("script", bench_scripts(), ids=lambda script: script.name)
def test_benchmark_runs_and_prints_its_table(script: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script), *TINY[script.name]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert DATE.search(result.stdout), result.stdout
    assert "cores" in result.stdout, result.stdout
    assert table_rows(result.stdout), result.stdout
