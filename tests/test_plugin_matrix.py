"""One case per WakaTime plugin: the argument list that plugin really builds (read from its
source), run as a subprocess the way the plugin runs it, against a real daemon and the fake
server. Each case checks the exit code, that nothing was printed, and exactly what the
server received."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from agentproc import WAKATIME_CLI, AgentProcess, agent_env, git_repo
from test_compat_command import run_cli
from wakaserver import FakeWakaTime

KEY = "waka_00000000-0000-4000-8000-000000000000"
# Heartbeat times: integers, floats with 2–6 decimals, as plugins send; a day ago, since the
# agent refuses heartbeats over a year old as the server would.
T = int(time.time()) - 86_400


@dataclass
class World:
    waka: FakeWakaTime
    env: dict[str, str]
    repo: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("plugins")
    repo = git_repo(root / "my shop", branch="main")
    (repo / "cart.py").write_text("a = 1\nb = 2\n")
    (repo / "notes.md").write_text("# notes\n")
    (repo / "src").mkdir()
    (repo / "src" / "Main.java").write_text("class Main {}\n")
    (repo / "src" / "app.ts").write_text("export const x = 1;\n")
    (repo / "src" / "main.rs").write_text("fn main() {}\n")
    idle = root / "watched"  # the watcher's root: nothing is written there
    idle.mkdir()
    with FakeWakaTime() as waka:
        env = agent_env(root, waka.url)
        with AgentProcess(env, idle) as process:
            yield World(waka, env, repo)
            assert process.stop() == 0
        assert "Traceback" not in process.log


@dataclass
class Case:
    """How one plugin calls the CLI for a repo, and what the server must then hold."""

    argv: Callable[[Path], list[str]]
    expected: Callable[[Path], list[dict]]
    plugin: str
    stdin: Callable[[Path], str] | None = None
    shell: bool = False  # through `sh -c` as one command line, as vim and Emacs do


VIM = "vim/900 vim-wakatime/11.2.0"
NEOVIM = "neovim/900 vim-wakatime/11.2.0"
VSCODE = "vscode/1.96.0 vscode-wakatime/25.0.3"
JETBRAINS = "IntelliJ/2024.3 IntelliJ-wakatime/16.0.1"
EMACS = "emacs-wakatime/1.1.0"
SUBLIME = "sublime/4180 sublime-wakatime/11.1.1"
ZED = "Zed/0.170.0 Zed-wakatime/0.1.9"
MACOS = "Figma/124.7.4 macos-wakatime/5.21.0"
OPENCODE = "opencode-cli/0.9.1 opencode-wakatime/1.2.0"
CLAUDE = "claude/1.0.80 claude-code-wakatime/3.0.2"
JUPYTER = "jupyterlab/4.2.5 jupyterlab-wakatime/0.1.4"
DETECTED = {"project": "my shop", "branch": "main", "type": "file", "category": "coding"}


def detected(repo: Path) -> dict[str, object]:
    """What detection adds for a file in the test repository: its project, branch and the
    project root's depth (project_root_count, as wakatime-cli counts it)."""
    return {**DETECTED, "project_root_count": str(repo).count("/") + 1}


def vim_stdin(repo: Path, at: int = T - 20) -> str:
    # s:GetHeartbeatsJson: timestamp, alternate_language (forth alone goes as language)
    return (
        f'[{{"entity": "{repo / "notes.md"}", "lineno": 1, "cursorpos": 3, "lines": 1, '
        f'"timestamp": {at}.000001, "is_write": false, "alternate_language": "markdown"}}]\n'
    )


# fmt: off
CASES = {
    "vim": Case(
        lambda repo: [
            "--entity", str(repo / "cart.py"), "--time", f"{T}.123456", "--lineno", "2",
            "--cursorpos", "5", "--lines-in-file", "2", "--plugin", VIM, "--write",
            "--alternate-language", "python", "--human-line-changes", "3",
            "--extra-heartbeats",
        ],
        lambda repo: [
            {**detected(repo), "entity": str(repo / "notes.md"), "time": T - 20 + 0.000001,
             "is_write": False, "lineno": 1, "cursorpos": 3, "lines": 1,
             "language": "Markdown"},
            {**detected(repo), "entity": str(repo / "cart.py"), "time": T + 0.123456,
             "is_write": True,
             "lineno": 2, "cursorpos": 5, "lines": 2, "language": "Python",
             "human_line_changes": 3},
        ],
        VIM,
        stdin=vim_stdin,
        shell=True,
    ),
    "neovim": Case(
        lambda repo: [
            "--entity", str(repo / "cart.py"), "--time", f"{T}.5", "--lineno", "1",
            "--cursorpos", "1", "--lines-in-file", "2", "--plugin", NEOVIM,
            "--language", "forth", "--category", "debugging", "--extra-heartbeats",
        ],
        lambda repo: [
            {**detected(repo), "entity": str(repo / "notes.md"), "time": T - 30 + 0.000001,
             "is_write": False, "lineno": 1, "cursorpos": 3, "lines": 1,
             "language": "Markdown"},
            {**detected(repo), "entity": str(repo / "cart.py"), "time": T + 0.5, "is_write": False,
             "lineno": 1, "cursorpos": 1, "lines": 2, "language": "forth",
             "category": "debugging"},
        ],
        NEOVIM,
        # Another moment than vim's: the same heartbeat twice is queued once.
        stdin=lambda repo: vim_stdin(repo, T - 30),
    ),
    "vscode": Case(
        # Any argument holding a space arrives wrapped in double quotes; `[]` on stdin.
        lambda repo: [
            "--entity", f'"{repo / "src" / "app.ts"}"', "--time", f"{T}.123",
            "--plugin", f'"{VSCODE}"', "--lineno", "10", "--cursorpos", "4",
            "--lines-in-file", "200", "--category", '"ai coding"', "--ai-line-changes", "7",
            "--human-line-changes", "2", "--metrics", "--key", KEY, "--alternate-project",
            '"my shop"', "--project-folder", f'"{repo}"', "--write", "--extra-heartbeats",
        ],
        lambda repo: [
            {**detected(repo), "entity": str(repo / "src" / "app.ts"), "time": T + 0.123,
             "is_write": True, "lineno": 10, "cursorpos": 4, "lines": 200,
             "language": "TypeScript", "category": "ai coding", "ai_line_changes": 7,
             "human_line_changes": 2, "project_root_count": str(repo).count("/") + 1},
        ],
        VSCODE,
        stdin=lambda repo: "[]\n",
    ),
    "jetbrains": Case(
        lambda repo: [
            "--plugin", JETBRAINS, "--entity", str(repo / "src" / "Main.java"), "--time",
            f"{T}.1235", "--key", KEY, "--lines-in-file", "1", "--lineno", "1", "--cursorpos",
            "8", "--alternate-project", "my shop", "--alternate-language", "JAVA", "--write",
            "--category", "building", "--extra-heartbeats",
        ],
        lambda repo: [
            # unsaved: detected from its path as wakatime-cli does; the plugin's count kept
            {**detected(repo), "entity": str(repo / "cart.py"), "language": "Python",
             "time": T - 5 + 0.1235, "is_write": False, "lines": 2, "lineno": 2,
             "cursorpos": 1, "category": "building", "is_unsaved_entity": True},
            {**detected(repo), "entity": str(repo / "src" / "Main.java"), "time": T + 0.1235,
             "is_write": True, "lineno": 1, "cursorpos": 8, "lines": 1, "language": "Java",
             "category": "building"},
        ],
        JETBRAINS,
        # jetbrains-wakatime builds this JSON by hand: `timestamp` with 4 decimals.
        stdin=lambda repo: json.dumps(
            [{"entity": str(repo / "cart.py"), "timestamp": T - 5 + 0.1235, "is_write": False,
              "lines": 2, "lineno": 2, "cursorpos": 1, "category": "building",
              "alternate_project": "my shop", "is_unsaved_entity": True}]
        ) + "\n",
    ),
    "emacs": Case(
        lambda repo: [
            "--entity", str(repo / "cart.py"), "--plugin", EMACS, "--time", f"{T}.12",
            "--write", "--key", KEY,
        ],
        lambda repo: [
            {**detected(repo), "entity": str(repo / "cart.py"), "time": T + 0.12, "is_write": True,
             "lines": 2, "language": "Python"},
        ],
        EMACS,
        shell=True,
    ),
    "sublime": Case(
        # Repeated --exclude, --include and a bare --hidefilenames: names are hidden.
        lambda repo: [
            "--entity", str(repo / "cart.py"), "--time", f"{T}.123456", "--plugin", SUBLIME,
            "--key", KEY, "--write", "--alternate-project", "my shop", "--lineno", "1",
            "--cursorpos", "1", "--lines-in-file", "2", "--exclude", "^/etc/", "--exclude",
            "\\.md$", "--include", "README\\.md$", "--verbose", "--hidefilenames",
            "--extra-heartbeats",
        ],
        lambda repo: [
            # Detected from the real file, then hidden: the language stays (as wakatime-cli).
            {"entity": "HIDDEN.py", "type": "file", "category": "coding", "time": T + 0.123456,
             "is_write": True, "project": "my shop", "language": "Python"},
        ],
        SUBLIME,
        stdin=lambda repo: json.dumps(
            [{"entity": str(repo / "notes.md"), "timestamp": T - 3.5, "is_write": False}]
        ) + "\n",
    ),
    "zed": Case(
        # `--write true`: a boolean never takes the next word; the time is an integer.
        lambda repo: [
            "--time", str(T), "--write", "true", "--entity", str(repo / "src" / "main.rs"),
            "--project-folder", str(repo), "--alternate-project", "my shop", "--plugin", ZED,
            "--key", KEY, "--language", "Rust", "--lineno", "1", "--cursorpos", "9",
        ],
        lambda repo: [
            {**detected(repo), "entity": str(repo / "src" / "main.rs"), "time": T, "is_write": True,
             "lineno": 1, "cursorpos": 9, "lines": 1, "language": "Rust",
             "project_root_count": str(repo).count("/") + 1},
        ],
        ZED,
    ),
    "macos-app": Case(
        lambda repo: [
            "--entity", "Figma", "--entity-type", "app", "--category", "designing",
            "--plugin", MACOS, "--alternate-branch", "<<LAST_BRANCH>>",
            "--alternate-project", "<<LAST_PROJECT>>", "--time", f"{T}.25",
        ],
        lambda repo: [
            {"entity": "Figma", "type": "app", "category": "designing", "time": T + 0.25,
             "is_write": False, "project": "<<LAST_PROJECT>>", "branch": "<<LAST_BRANCH>>"},
        ],
        MACOS,
    ),
    "browser-domain": Case(
        lambda repo: [
            "--entity", "docs.python.org", "--entity-type", "domain", "--category",
            "researching", "--plugin", "chrome/131 chrome-wakatime/4.0.0", "--time", str(T),
        ],
        lambda repo: [
            {"entity": "docs.python.org", "type": "domain", "category": "researching",
             "time": T, "is_write": False},
        ],
        "chrome/131 chrome-wakatime/4.0.0",
    ),
    "opencode": Case(
        lambda repo: [
            "--entity", str(repo / "src" / "app.ts"), "--entity-type", "file", "--category",
            "ai coding", "--plugin", OPENCODE, "--project-folder", str(repo),
            "--ai-line-changes", "-4", "--write", "--time", f"{T}.75",
        ],
        lambda repo: [
            {**detected(repo), "entity": str(repo / "src" / "app.ts"), "time": T + 0.75,
             "is_write": True, "lines": 1, "language": "TypeScript", "category": "ai coding",
             "ai_line_changes": -4, "project_root_count": str(repo).count("/") + 1},
        ],
        OPENCODE,
    ),
    "claude-code": Case(
        lambda repo: [
            "--sync-ai-disabled", "--entity", str(repo / "cart.py"), "--entity-type", "file",
            "--category", "ai coding", "--plugin", CLAUDE, "--project-folder", str(repo),
            "--ai-line-changes", "12", "--time", f"{T}.5",
        ],
        lambda repo: [
            {**detected(repo), "entity": str(repo / "cart.py"), "time": T + 0.5, "is_write": False,
             "lines": 2, "language": "Python", "category": "ai coding", "ai_line_changes": 12,
             "project_root_count": str(repo).count("/") + 1},
        ],
        CLAUDE,
    ),
}
# fmt: on


@pytest.mark.parametrize("name", list(CASES))
def test_plugin(world: World, name: str) -> None:
    case = CASES[name]
    world.waka.reset()
    argv = case.argv(world.repo)
    stdin = case.stdin(world.repo) if case.stdin else None
    if case.shell:
        command = shlex.join([WAKATIME_CLI, *argv])
        result = run_cli(["-c", command], world.env, stdin, program="/bin/sh")
    else:
        result = run_cli(argv, world.env, stdin, program=WAKATIME_CLI)

    assert (result.code, result.stdout, result.stderr) == (0, "", "")
    expected = case.expected(world.repo)
    received = sorted(world.waka.wait_for(len(expected)), key=lambda hb: hb["time"])
    assert len(world.waka.received) == len(expected)
    for heartbeat in received:
        user_agent = heartbeat.pop("user_agent")
        assert user_agent.startswith("wakatime/") and user_agent.endswith(f" {case.plugin}")
    assert with_microseconds(received) == with_microseconds(expected)


def with_microseconds(heartbeats: list[dict]) -> list[dict]:
    """Times compared to the microsecond: plugins send at most six decimals."""
    return [{**hb, "time": round(hb["time"], 6)} for hb in heartbeats]


def test_jupyterlab_today_as_raw_json(world: World) -> None:
    world.waka.reset()
    result = run_cli(["--today", "--output=raw-json"], world.env, program=WAKATIME_CLI)

    assert (result.code, result.stderr) == (0, "")
    summary = json.loads(result.stdout)
    assert set(summary["data"]["grand_total"]) == {
        "decimal",
        "digital",
        "hours",
        "minutes",
        "text",
        "total_seconds",
    }
    assert world.waka.received == []


def test_jupyterlab_heartbeat_logs_to_stdout_only_when_asked(world: World) -> None:
    world.waka.reset()
    notebook = ["--plugin", JUPYTER, "--entity", str(world.repo / "cart.py"), "--write"]
    result = run_cli(
        [*notebook, "--time", str(time.time()), "--verbose", "--log-to-stdout"],
        world.env,
        program=WAKATIME_CLI,
    )

    assert (result.code, result.stderr) == (0, "")
    assert world.waka.wait_for(1)[0]["entity"] == str(world.repo / "cart.py")
