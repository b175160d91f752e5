"""Real tools and real editors through the daemon's file-activity component, against the truth.

Each scenario starts from a clean project in a temp folder, watched by the component the
daemon runs (agent.sources.file_activity: the real FileWatcher with its ignore rules and VCS
and lock-file signals, feeding the real ActivityPolicy). A person saves a file at 0 s and
30 s, a tool runs at 1000 s, and the person saves again 5 s and 35 s after the tool finished
(truth: 60 s of coding; a heartbeat from the tool would join the later saves and add its
distance to them). The clock jumps between steps and runs at real pace in between: while a
tool runs, the component's own timers fire as in the daemon, so the tool's own pace is what
the policy sees; after each step, ``FileActivity.caught_up`` waits until watchdog delivered
every event of it.

    .venv/bin/python scripts/tool_runs.py [--markdown] [--only NAME ...]

Tools: git, hg, black and ruff (the test extra), prettier (npm-installed into .tools/ by .ci/run),
gofmt, npm, pip, cargo; editors: vim, emacs, nano (driven through a pseudo-terminal), and a
VS Code-style atomic save (write a temporary file, rename it over the file).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for folder in (REPO, REPO / "scripts"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from replay import TraceClock, TracedActivity  # noqa: E402

from agent.pipeline.heartbeat import Heartbeat  # noqa: E402
from agent.pipeline.stats import durations  # noqa: E402

TOLERANCE = 0.05
COMMENT = {".py": "#", ".js": "//", ".go": "//"}  # so the person's file stays valid code
TOOL_AT = 1000.0  # the tool runs after a break longer than the keystroke timeout
BIN = Path(sys.executable).parent
PRETTIER = REPO / ".tools" / "node_modules" / ".bin" / "prettier"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


# -- a person's saves ------------------------------------------------------------------


def _run(command: list[str], cwd: Path | str, **env: str) -> None:
    subprocess.run(
        command,
        cwd=cwd,
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=300,
        env={**os.environ, **GIT_ENV, **env},
    )


def vim_save(path: Path, line: str) -> None:
    _run(
        ["vim", "-N", "-u", "NONE", "-i", "NONE", "-es", "+set backupskip= writebackup",
         f"+normal! Go{line}", "+w", "+q", str(path)],
        path.parent,
    )  # fmt: skip


def emacs_save(path: Path, line: str) -> None:
    lisp = f'(progn (goto-char (point-max)) (insert "{line}\\n") (save-buffer))'
    _run(["emacs", "-Q", "--batch", str(path), "--eval", lisp], path.parent)


def nano_save(path: Path, line: str) -> None:
    """nano in a pseudo-terminal: go to the end, type, ^O Enter to write out, ^X to leave."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: nano on the terminal
        os.execvpe("nano", ["nano", "--ignorercfiles", str(path)], {**os.environ, "TERM": "xterm"})
    try:
        # Each key waits for the screen that answers the one before (an event, not a pause).
        _read_until(fd, b"Help")  # drawn: the help lines at the bottom
        os.write(fd, b"\x1b/" + line.encode() + b"\r" + b"\x0f")  # end, type, ^O
        _read_until(fd, b"File Name to Write")
        os.write(fd, b"\r")
        _read_until(fd, b"Wrote")
        os.write(fd, b"\x18")  # ^X
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                if status != 0:
                    raise RuntimeError(f"nano exited with status {status}")
                return
            _drain(fd, 0.05)
        raise RuntimeError("nano did not exit")
    finally:
        os.close(fd)


def _read_until(fd: int, marker: bytes, timeout: float = 30.0) -> None:
    """Read what the terminal shows until ``marker`` appears in it."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            raise RuntimeError(f"nano never showed {marker!r}; last: {seen[-200:]!r}")
        seen = seen[-len(marker) :] + os.read(fd, 65536)


def _drain(fd: int, wait: float) -> None:
    """Read what the terminal shows (nano waits for its output to be read)."""
    while select.select([fd], [], [], wait)[0]:
        try:
            if not os.read(fd, 65536):
                return
        except OSError:
            return


def atomic_save(path: Path, line: str) -> None:
    """VS Code with files.saveAtomically / JetBrains-style: a temporary file renamed over."""
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temp.write_text(path.read_text() + line + "\n")
    os.replace(temp, path)


EDITORS: dict[str, Callable[[Path, str], None]] = {
    "vim": vim_save,
    "emacs": emacs_save,
    "nano": nano_save,
    "atomic": atomic_save,
}


# -- projects and tools ----------------------------------------------------------------


def python_files(root: Path, count: int, folder: str = "pkg") -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    body = "def f( a,b ):\n    return { 'x':a,'y':[1,2,3] }\n\n\nclass K :\n  pass\n"
    for index in range(count):
        (root / folder / f"m{index}.py").write_text(body)


def js_files(root: Path, count: int) -> None:
    (root / "src").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (root / "src" / f"m{index}.js").write_text(
            "const  a = {b:1,c:[1,2]}\nfunction f( x ){return x}\n"
        )


def go_files(root: Path, count: int) -> None:
    (root / "cmd").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (root / "cmd" / f"m{index}.go").write_text(
            f"package cmd\nfunc F{index}( a int )int{{\nreturn a}}\n"
        )


def git(root: Path, *args: str) -> None:
    _run(["git", *args], root)


def git_repo(root: Path, files: int) -> None:
    """A repository on main with ``files`` files, and a branch `other` that changes them all."""
    git(root, "init", "-q", "-b", "main")
    python_files(root, files, "lib")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "one")
    git(root, "checkout", "-qb", "other")
    for index in range(files):
        (root / "lib" / f"m{index}.py").write_text(f"changed = {index}\n")
    git(root, "commit", "-qam", "two")
    git(root, "checkout", "-q", "main")


def git_pull_setup(root: Path, files: int) -> None:
    """``root`` is a clone one commit behind its origin, which changed ``files`` files."""
    origin = root.parent / "origin"
    origin.mkdir()
    git_repo(origin, files)
    git(root.parent, "clone", "-q", str(origin), root.name)
    git(origin, "checkout", "-q", "other")
    git(origin, "branch", "-qf", "main", "other")
    git(origin, "checkout", "-q", "main")


def git_stash_setup(root: Path, files: int) -> None:
    git_repo(root, files)
    for index in range(files):
        (root / "lib" / f"m{index}.py").write_text(f"dirty = {index}\n")


def git_rebase_setup(root: Path, files: int) -> None:
    git_repo(root, files)
    git(root, "checkout", "-q", "other")
    (root / "extra.txt").write_text("feature\n")
    git(root, "add", "extra.txt")
    git(root, "commit", "-qm", "three")
    git(root, "checkout", "-q", "main")
    (root / "main.txt").write_text("main\n")
    git(root, "add", "main.txt")
    git(root, "commit", "-qm", "on main")
    git(root, "checkout", "-q", "other")


def hg_setup(root: Path, files: int) -> None:
    """A Mercurial repository whose tip changed ``files`` files since revision 0."""
    hg = ["hg", "--config", "ui.username=t"]
    _run([*hg, "init", "-q"], root)
    python_files(root, files, "lib")
    _run([*hg, "commit", "-q", "-A", "-m", "one"], root)
    for index in range(files):
        (root / "lib" / f"m{index}.py").write_text(f"changed = {index}\n")
    _run([*hg, "commit", "-q", "-m", "two"], root)


def npm_setup(root: Path) -> None:
    (root / "package.json").write_text('{"name": "app", "version": "1.0.0"}\n')
    package = root.parent / "localpkg"
    package.mkdir()
    (package / "package.json").write_text('{"name": "localpkg", "version": "1.0.0"}\n')
    (package / "index.js").write_text("module.exports = 1\n")


def pip_setup(root: Path) -> None:
    _run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], root)
    wheel = root.parent / "localpkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("localpkg/__init__.py", "VALUE = 1\n")
        info = "localpkg-1.0.dist-info"
        archive.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: localpkg\nVersion: 1.0\n"
        )
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(f"{info}/RECORD", "")


def generate(root: Path, count: int, pause: float) -> None:
    """A code generator: one module a step, at a machine's pace."""
    out = root / "generated"
    out.mkdir(exist_ok=True)
    for index in range(count):
        (out / f"model_{index}.py").write_text(f"class Model{index}:\n    id = {index}\n")
        time.sleep(pause)


def git_stash_pop(root: Path) -> None:
    git(root, "stash", "-q")
    git(root, "stash", "pop", "-q")


def cargo_new_build(root: Path) -> None:
    _run(["cargo", "new", "-q", "--offline", "--vcs", "none", "hello"], root)
    _run(["cargo", "build", "-q", "--offline", "--manifest-path", "hello/Cargo.toml"], root)


def pip_install(root: Path) -> None:
    python = str(root / ".venv" / "bin" / "python")
    wheel = "../localpkg-1.0-py3-none-any.whl"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-index",
          "--no-deps", wheel], root)  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    name: str
    tool: Callable[[Path], None]
    setup: Callable[[Path], None] = lambda _root: None
    editor: str = "atomic"
    person_file: str = "app.py"


def _python_tool(name: str) -> Callable[[Path], None]:
    return lambda root: _run(
        [str(BIN / name), *(["format"] if name == "ruff" else ["-q"]), "."], root
    )


SCENARIOS = [
    Scenario("black-100", _python_tool("black"), lambda root: python_files(root, 100)),
    Scenario("ruff-format-100", _python_tool("ruff"), lambda root: python_files(root, 100)),
    Scenario(
        "prettier-100",
        lambda root: _run([str(PRETTIER), "--log-level", "warn", "--write", "src"], root),
        lambda root: js_files(root, 100),
        person_file="src/app.js",
    ),
    Scenario(
        "gofmt-100",
        lambda root: _run(["gofmt", "-w", "cmd"], root),
        lambda root: go_files(root, 100),
        person_file="cmd/app.go",
    ),
    Scenario(
        "git-checkout-1",
        lambda root: git(root, "checkout", "-q", "other"),
        lambda r: git_repo(r, 1),
    ),
    Scenario(
        "git-checkout-300",
        lambda root: git(root, "checkout", "-q", "other"),
        lambda root: git_repo(root, 300),
    ),
    Scenario(
        "git-pull-21", lambda root: git(root, "pull", "-q"), lambda root: git_pull_setup(root, 21)
    ),
    Scenario(
        "git-stash-pop-10",
        git_stash_pop,
        lambda root: git_stash_setup(root, 10),
    ),
    Scenario(
        "git-rebase-50",
        lambda root: git(root, "rebase", "-q", "main"),
        lambda root: git_rebase_setup(root, 50),
    ),
    Scenario(
        "hg-update-1",
        lambda root: _run(["hg", "update", "-q", "0"], root),
        lambda root: hg_setup(root, 1),
    ),
    Scenario(
        "npm-install-local",
        lambda root: _run(
            ["npm", "install", "--offline", "--no-audit", "--no-fund", "../localpkg"], root
        ),
        npm_setup,
        person_file="index.js",
    ),
    Scenario(
        "pip-install-wheel",
        pip_install,
        pip_setup,
    ),
    Scenario(
        "cargo-new-build",
        cargo_new_build,
        person_file="notes.md",
    ),
    Scenario("codegen-150", lambda root: generate(root, 150, 0.005)),
    # At black's pace on a large project (106 files in 31 s, never more than 23 in 2 s).
    Scenario("codegen-slow-30", lambda root: generate(root, 30, 0.3)),
    *(Scenario(f"{editor}-only", lambda _root: None, editor=editor) for editor in EDITORS),
]


@dataclass
class ScenarioResult:
    scenario: Scenario
    heartbeats: list[Heartbeat]
    saves: list[tuple[float, float]]  # when each of the person's saves began and ended
    tool_files: int  # distinct files the watcher saw written while the tool ran
    tool_seconds: float
    problems: list[str] = field(default_factory=list)

    @property
    def tracked(self) -> float:
        return durations(hb.time for hb in self.heartbeats)

    @property
    def truth(self) -> float:
        return durations(end for _, end in self.saves)

    def _is_a_save(self, hb: Heartbeat) -> bool:
        return any(start <= hb.time <= end for start, end in self.saves)

    @property
    def tool_heartbeats(self) -> int:
        return sum(1 for hb in self.heartbeats if not self._is_a_save(hb))


def run_scenario(scenario: Scenario, workdir: str | None = None) -> ScenarioResult:
    base = Path(tempfile.mkdtemp(prefix=f"{scenario.name}-", dir=workdir))
    try:
        root = base / "project"
        root.mkdir()
        scenario.setup(root)
        return asyncio.run(_run_scenario(scenario, root, str(base / "agent")))
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def _run_scenario(scenario: Scenario, root: Path, data: str) -> ScenarioResult:
    person = root / scenario.person_file
    person.parent.mkdir(parents=True, exist_ok=True)
    person.write_text("package cmd\n" if person.suffix == ".go" else "")
    save = EDITORS[scenario.editor]
    saves: list[tuple[float, float]] = []
    async with TracedActivity(str(root), data, TraceClock(pace=1.0)) as traced:

        async def person_saves(at: float) -> None:
            traced.advance(at)
            line = f"{COMMENT.get(person.suffix, '')} edit {len(saves)}"
            await asyncio.to_thread(save, person, line)
            await traced.settle()  # the watcher's time stamps: at most this late
            saves.append((at, traced.clock()))

        await person_saves(0.0)
        await person_saves(30.0)
        traced.advance(TOOL_AT)
        seen = traced.activity.written
        seen.clear()
        started = time.monotonic()
        await asyncio.to_thread(scenario.tool, root)
        tool_seconds = time.monotonic() - started
        await traced.settle()
        tool_files = len(seen - {str(person)})
        end = traced.clock()
        await person_saves(end + 5.0)
        await person_saves(end + 35.0)
        traced.advance(math.inf)
    result = ScenarioResult(scenario, traced.heartbeats, saves, tool_files, tool_seconds)
    result.problems = judge(result, str(person))
    return result


def judge(result: ScenarioResult, person: str) -> list[str]:
    problems = []
    others = sorted(
        {os.path.basename(hb.entity) for hb in result.heartbeats if hb.entity != person}
    )
    if others:
        problems.append(f"heartbeats for files the person did not save: {others[:5]}")
    if result.tool_heartbeats:
        problems.append(f"{result.tool_heartbeats} heartbeats at no save of the person")
    if abs(result.tracked - result.truth) > TOLERANCE * result.truth:
        problems.append(f"tracked {result.tracked:.1f} s, truth {result.truth:.1f} s")
    return problems


def markdown(results: list[ScenarioResult]) -> str:
    lines = [
        "| scenario | tool run (s) | files the tool wrote | tool heartbeats (goal 0) "
        "| person heartbeats | tracked / truth (goal ±5%) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        person = len(r.heartbeats) - r.tool_heartbeats
        lines.append(
            f"| {r.scenario.name} | {r.tool_seconds:.2f} | {r.tool_files} | {r.tool_heartbeats} "
            f"| {person} | {r.tracked:.0f} s / {r.truth:.0f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="scenario names (default: all)")
    parser.add_argument("--markdown", action="store_true", help="a table for BENCHMARKS.md")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    results = [run_scenario(s) for s in chosen]
    if args.markdown:
        print(markdown(results))
    for r in results:
        status = "ok" if not r.problems else "; ".join(r.problems)
        print(f"{r.scenario.name}: {status}", file=sys.stderr if args.markdown else sys.stdout)
    return 0 if all(not r.problems for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
