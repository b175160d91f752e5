"""The traces in traces/ replayed through the real watcher (virtual time) and the simulation."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load_replay() -> ModuleType:
    spec = importlib.util.spec_from_file_location("replay", REPO / "scripts" / "replay.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["replay"] = module
    spec.loader.exec_module(module)
    return module


replay = _load_replay()
TRACES = sorted((REPO / "traces").glob("*.jsonl"))
# Replayed through the real watcher too; hour-long sessions and the 20,000-file burst only in
# simulated time (scripts/replay.py --all replays every trace through the watcher).
FAST = [
    path
    for path in TRACES
    if (trace := replay.load_trace(path)).duration <= 300 and len(trace.ops) <= 5_000
]


def write_trace(path: Path, truth: dict[str, object], ops: list[dict[str, object]]) -> Path:
    header = {"trace": path.stem, "description": "test", "truth": truth, "setup": []}
    path.write_text("\n".join(json.dumps(line) for line in [header, *ops]) + "\n")
    return path


def test_there_are_traces_for_every_kind_of_writer() -> None:
    names = {path.stem for path in TRACES}
    assert {"vim", "emacs", "jetbrains", "vscode-autosave", "sed-i", "formatter"} <= names
    assert {"git-checkout", "npm-install", "codegen", "hour-three-files", "burst-20k"} <= names
    assert len(FAST) < len(TRACES)


@pytest.mark.parametrize("path", TRACES, ids=lambda path: path.stem)
def test_simulated_replay_meets_the_truth(path: Path, workdir: str) -> None:
    result = replay.replay(replay.load_trace(path), mode="simulate", workdir=workdir)
    assert result.problems == []


@pytest.mark.parametrize("path", FAST, ids=lambda path: path.stem)
def test_real_watcher_meets_the_truth_and_agrees_with_the_simulation(
    path: Path, workdir: str
) -> None:
    trace = replay.load_trace(path)
    watched = replay.replay(trace, mode="watch", workdir=workdir)
    simulated = replay.replay(trace, mode="simulate", workdir=workdir)
    assert watched.problems == []
    assert [
        (a.time, p) for a, p in zip(watched.heartbeats, watched.relative_paths, strict=True)
    ] == [(a.time, p) for a, p in zip(simulated.heartbeats, simulated.relative_paths, strict=True)]


def test_a_wrong_truth_is_reported(tmp_path: Path) -> None:
    path = write_trace(
        tmp_path / "wrong.jsonl",
        {"tracked_seconds": 100, "max_heartbeats": 1, "paths": ["a.py"]},
        [
            {"t": 0, "op": "write", "path": "a.py"},
            {"t": 50, "op": "write", "path": "b.py"},
            {"t": 60, "op": "write", "path": "a.py"},
        ],
    )
    problems = replay.replay(replay.load_trace(path), mode="simulate").problems
    assert len(problems) == 3
    assert "b.py" in problems[0]


def test_ranges_and_editor_saves_are_unrolled(tmp_path: Path) -> None:
    path = write_trace(
        tmp_path / "macros.jsonl",
        {"tracked_seconds": 0, "max_heartbeats": 0},
        [
            {"t": 1, "op": "write", "path": "gen/f{1..3}.py", "spread": 1.0},
            {"t": 5, "op": "save", "path": "src/a.py", "editor": "jetbrains"},
        ],
    )
    trace = replay.load_trace(path)
    assert [(op.t, op.op, op.path) for op in trace.ops[:3]] == [
        (1.0, "write", "gen/f1.py"),
        (1.5, "write", "gen/f2.py"),
        (2.0, "write", "gen/f3.py"),
    ]
    assert [op.op for op in trace.ops[3:]] == ["write", "rename", "rename", "delete"]
    assert trace.duration == 5.0


def test_realtime_replay_through_the_daemons_kind_of_loop(tmp_path: Path, workdir: str) -> None:
    path = write_trace(
        tmp_path / "realtime.jsonl",
        {"tracked_seconds": 40, "max_heartbeats": 2, "min_heartbeats": 2, "paths": ["a.py"]},
        [
            {"t": 0, "op": "write", "path": "a.py"},
            {"t": 0.5, "op": "write", "path": "a.py~"},
            {"t": 40, "op": "write", "path": "a.py"},
        ],
    )
    result = replay.replay(replay.load_trace(path), mode="realtime", speed=40.0, workdir=workdir)
    assert result.relative_paths == ["a.py", "a.py"]


@pytest.mark.parametrize("mode", ["watch", "simulate", "realtime"])
def test_every_mode_replays_the_daemons_file_activity_component(
    mode: str, tmp_path: Path, workdir: str
) -> None:
    """The heartbeats are the component's, as the daemon hands them on: a person's second
    save carries the lines it added (its who-wrote step diffs the file), not a bare write."""
    path = write_trace(
        tmp_path / "lines.jsonl",
        {"tracked_seconds": 40, "max_heartbeats": 2, "paths": ["a.py"]},
        [
            {"t": 0, "op": "write", "path": "a.py", "text": "a = 1\n"},
            {"t": 40, "op": "write", "path": "a.py", "text": "a = 1\nb = 2\nc = 3\n"},
        ],
    )
    result = replay.replay(replay.load_trace(path), mode=mode, speed=40.0, workdir=workdir)
    assert result.problems == []
    assert [(hb.type, hb.is_write, hb.line_additions) for hb in result.heartbeats] == [
        ("file", True, None),
        ("file", True, 2),
    ]


def test_markdown_prints_one_row_per_trace(
    capsys: pytest.CaptureFixture[str], workdir: str
) -> None:
    args = ["vim", "sed-i", "--markdown", "--mode", "simulate", "--workdir", workdir]
    assert replay.main(args) == 0
    table = capsys.readouterr().out.strip().splitlines()
    assert table[0].startswith("| trace (simulate)")
    assert [row.split("|")[1].strip() for row in table[2:]] == ["vim", "sed-i"]
    assert all(row.endswith("| ok |") for row in table[2:])
    assert replay.trace_files([], everything=True) == TRACES


def test_a_failing_trace_fails_the_command(tmp_path: Path, workdir: str) -> None:
    path = write_trace(
        tmp_path / "noise.jsonl",
        {"tracked_seconds": 0, "max_heartbeats": 0},
        [{"t": 0, "op": "write", "path": "a.py"}],
    )
    assert replay.main([str(path), "--mode", "simulate", "--workdir", workdir]) == 1
