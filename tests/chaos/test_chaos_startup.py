"""Startup where the machine is against it. What no restart can fix (the database's place is
a folder, read-only, full, or another user's) ends the daemon with one line and exit 78,
which the systemd unit does not restart; what only costs the file watcher (the inotify
instance or watch limit) leaves the daemon running without it, saying so in `agent
status`, and a reload (SIGHUP) tries again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentproc import AGENT, SHORT_HOLD, AgentProcess, agent_env
from diskfull import fill, small_disk
from support import ask, database_of, make_heartbeats, send, wait_until
from wakaserver import FakeWakaTime

NOBODY = 65534


def start_fails(env: dict[str, str], cwd: Path, *prefix: str) -> str:
    """Run `agent run`, which must end at once with exit 78; its stderr."""
    done = subprocess.run(
        [*prefix, AGENT, "run"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 78, done
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("agent: ")]
    assert line.startswith("agent: cannot start: ")
    return line


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def test_a_folder_where_the_database_goes(tmp_path: Path, workdir: Path) -> None:
    """Caught with the settings, so every command says it, naming where it was set."""
    env = agent_env(tmp_path, "http://127.0.0.1:9/api/v1")
    database_of(env).mkdir(parents=True)
    done = subprocess.run(
        [AGENT, "run"], env=env, cwd=workdir, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 78 and "Traceback" not in done.stderr
    assert done.stderr.startswith("agent: environment HEARTBEAT_AGENT_QUEUE__PATH: queue.path: ")
    assert f"{database_of(env)}: a folder is where the database file goes" in done.stderr


def test_a_read_only_data_folder(tmp_path: Path, workdir: Path) -> None:
    env = agent_env(tmp_path, "http://127.0.0.1:9/api/v1")
    with small_disk(database_of(env).parent, read_only=True):
        line = start_fails(env, workdir)
    assert f"{database_of(env).parent} is read-only" in line


def test_a_full_disk(tmp_path: Path, workdir: Path) -> None:
    env = agent_env(tmp_path, "http://127.0.0.1:9/api/v1")
    with small_disk(database_of(env).parent, "1m") as disk:
        filler = fill(disk)
        line = start_fails(env, workdir)
        filler.unlink()
    assert "database or disk is full" in line


@pytest.fixture
def nobody_root() -> Iterator[Path]:
    """A folder another user (nobody) can work in: pytest's own are root's alone."""
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("running the daemon as another user needs root and setpriv")
    root = Path(tempfile.mkdtemp(prefix="heartbeat-agent-nobody-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_database_of_another_user(nobody_root: Path) -> None:
    env = agent_env(nobody_root, "http://127.0.0.1:9/api/v1")
    database = database_of(env)
    database.parent.mkdir(parents=True)
    database.write_bytes(b"")  # root's, 0600: nobody may neither read nor write it
    database.chmod(0o600)
    for folder in (nobody_root / "home", nobody_root / "run", database.parent):
        for path in (folder, *folder.rglob("*")):
            if path != database:
                os.chown(path, NOBODY, NOBODY)
    as_nobody = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")
    line = start_fails(env, nobody_root / "home", *as_nobody)
    assert f"{database} belongs to uid 0; it must be yours" in line


def in_namespace(limit: str, value: int) -> list[str]:
    """A command prefix: a user namespace of its own whose inotify `limit` is `value`
    (the machine's own limits, and every other process, are left alone)."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        pytest.skip("no unshare or nsenter (util-linux) here")
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no user namespaces here: {probe.stderr.decode().strip()}")
    script = f'echo {value} > /proc/sys/user/{limit} && exec "$@"'
    return ["unshare", "--user", "--map-root-user", "sh", "-c", script, "sh"]


def set_limit(pid: int, limit: str, value: int) -> None:
    """Raise a limit inside the namespace the daemon runs in."""
    subprocess.run(
        [
            "nsenter",
            f"--user=/proc/{pid}/ns/user",
            "sh",
            "-c",
            f"echo {value} > /proc/sys/user/{limit}",
        ],
        check=True,
    )


def test_the_inotify_instance_limit_leaves_the_daemon_running_without_the_watcher(
    tmp_path: Path, workdir: Path
) -> None:
    """Until the limit is raised; then the next rescan starts the watcher, no reload needed,
    and the retries in between are not logged again."""
    limit = "max_inotify_instances"
    with FakeWakaTime() as waka:
        env = agent_env(tmp_path, waka.url, HEARTBEAT_AGENT_WATCH__RESCAN_INTERVAL="0.2")
        with AgentProcess(env, workdir, prefix=in_namespace(limit, 0)) as agent:
            status = ask(env, "status")
            assert status["watching"] == []
            assert "inotify instance limit reached" in status["watch_problem"]
            assert send(env, make_heartbeats(3, time.time() - 60)) == 3
            waka.wait_for(3)  # the plugins' heartbeats still count
            assert agent.proc is not None
            set_limit(agent.proc.pid, limit, 100)
            wait_until(lambda: ask(env, "status")["watching"] == [str(workdir)], "the watcher")
            assert ask(env, "status")["watch_problem"] is None
            assert agent.stop() == 0
        [line] = [line for line in agent.lines if "file watcher off" in line]
        assert "inotify instance limit reached" in line and "Traceback" not in agent.log


def test_the_inotify_watch_limit_watches_what_fits_and_says_so(
    tmp_path: Path, workdir: Path
) -> None:
    limit = "max_inotify_watches"
    for index in range(10):
        (workdir / f"pkg{index}").mkdir()
    with FakeWakaTime() as waka:
        env = agent_env(tmp_path, waka.url, **SHORT_HOLD)
        with AgentProcess(env, workdir, prefix=in_namespace(limit, 5)) as agent:
            status = ask(env, "status")
            assert status["watching"] == [str(workdir)]  # the root and four folders fit
            problem = status["watch_problem"]
            assert "inotify watch limit reached" in problem and ": 6 folder(s) not" in problem
            (workdir / "late").mkdir()  # made while running: not watched either, and said
            wait_until(
                lambda: "7 folder(s)" in ask(env, "status")["watch_problem"], "the late folder"
            )
            (workdir / "top.py").write_text("print(1)\n")  # the root is still watched
            assert waka.wait_for(1, timeout=30)[0]["entity"] == str(workdir / "top.py")
            assert agent.proc is not None
            set_limit(agent.proc.pid, limit, 1000)
            agent.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: ask(env, "status")["watch_problem"] is None, "a full watch")
            (workdir / "late" / "new.py").write_text("print(2)\n")
            assert waka.wait_for(2, timeout=30)[1]["entity"] == str(workdir / "late" / "new.py")
            assert agent.stop() == 0
        assert "Traceback" not in agent.log
