"""Real tools and real editors through the real watcher and policy (scripts/tool_runs.py):
no heartbeat from a formatter, a VCS operation, a package manager or a generator, and the
person's saves around them counted exactly (tracked time within ±5 % of the truth)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


tool_runs = _load("tool_runs")

# What each scenario runs, to say what is missing rather than fail obscurely.
NEEDS = {
    "prettier-100": str(tool_runs.PRETTIER),
    "gofmt-100": "gofmt",
    "npm-install-local": "npm",
    "cargo-new-build": "cargo",
    "emacs-only": "emacs",
    "nano-only": "nano",
    "vim-only": "vim",
    "hg-update-1": "hg",
}


@pytest.mark.parametrize("scenario", tool_runs.SCENARIOS, ids=lambda scenario: scenario.name)
def test_tool_writes_are_not_coding_and_the_persons_saves_are(
    scenario: object, workdir: str
) -> None:
    needed = NEEDS.get(scenario.name)  # type: ignore[attr-defined]
    assert needed is None or shutil.which(needed), (
        f"{needed} is needed for this test: .ci/run installs it"
    )
    result = tool_runs.run_scenario(scenario, workdir)
    assert result.problems == []
    assert len(result.heartbeats) == 4  # the person's four saves, one heartbeat each
    assert abs(result.tracked - result.truth) <= 0.05 * result.truth


def test_the_scenarios_cover_every_kind_of_writer() -> None:
    names = {scenario.name for scenario in tool_runs.SCENARIOS}
    assert {"black-100", "ruff-format-100", "prettier-100", "gofmt-100"} <= names
    assert {"git-checkout-1", "git-checkout-300", "git-pull-21", "git-stash-pop-10"} <= names
    assert {"git-rebase-50", "hg-update-1", "npm-install-local"} <= names
    assert {"pip-install-wheel", "cargo-new-build"} <= names
    assert {"codegen-150", "codegen-slow-30"} <= names
    assert {"vim-only", "emacs-only", "nano-only", "atomic-only"} <= names


def test_a_tool_heartbeat_is_caught_by_the_judge(workdir: str) -> None:
    """The judge fails a run where a tool's write became a heartbeat: its verdicts mean
    something."""
    result = tool_runs.ScenarioResult(
        tool_runs.SCENARIOS[0],
        [
            tool_runs.CountedWrite("/p/app.py", 0.0),
            tool_runs.CountedWrite("/p/app.py", 30.0),
            tool_runs.CountedWrite("/p/pkg/m1.py", 1000.0),
            tool_runs.CountedWrite("/p/app.py", 1010.0),
            tool_runs.CountedWrite("/p/app.py", 1040.0),
        ],
        [(0.0, 0.1), (30.0, 30.1), (1010.0, 1010.1), (1040.0, 1040.1)],
        tool_files=100,
        tool_seconds=1.0,
    )
    problems = tool_runs.judge(result, "/p/app.py")
    assert len(problems) == 3  # another file, a heartbeat at no save, 70 s tracked for 60
