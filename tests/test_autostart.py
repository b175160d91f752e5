"""No daemon running: a plugin's call queues its heartbeat and starts one (detached, once,
never two), and what the daemon later completes is what it would have built at once."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentproc import AGENT, WAKATIME_CLI, AgentProcess, agent_env, git_repo
from wakaserver import FakeWakaTime

from agent.ipc.client import DaemonUnavailable, request

VIM_UA = "vim/900 vim-wakatime/11.2.0"


def socket_path(env: dict[str, str]) -> str:
    return os.path.join(env["XDG_RUNTIME_DIR"], "heartbeat-agent", "agent.sock")


def daemon_log(env: dict[str, str]) -> Path:
    return Path(env["HEARTBEAT_AGENT_QUEUE__PATH"]).parent / "agent.log"


def wait_for_daemon(env: dict[str, str], timeout: float = 30.0) -> int:
    """The pid of the daemon once it answers (nothing signals its start to the test)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return int(request({"op": "ping"}, socket_path(env), timeout=5)["pid"])
        except DaemonUnavailable:
            if time.monotonic() > deadline:
                log = daemon_log(env)
                raise AssertionError(
                    "no daemon answered; its log:\n" + (log.read_text() if log.exists() else "")
                ) from None
            time.sleep(0.05)


def daemon_log_once_ready(env: dict[str, str], timeout: float = 30.0) -> str:
    """The daemon's log once it says it is ready (its socket answers a moment before)."""
    deadline = time.monotonic() + timeout
    while " ready (pid " not in (log := daemon_log(env).read_text()):
        assert time.monotonic() < deadline, "the daemon never said it was ready:\n" + log
        time.sleep(0.05)
    return log


def stop_daemon(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM a daemon that is not our child, and wait until it has ended."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"daemon {pid} did not stop on SIGTERM")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = git_repo(tmp_path / "shop", branch="main")
    (repo / "cart.py").write_text("a = 1\nb = 2\n")
    return repo


@pytest.fixture
def autostart_env(tmp_path: Path, waka: FakeWakaTime) -> Iterator[dict[str, str]]:
    env = agent_env(tmp_path, waka.url, HEARTBEAT_AGENT_DAEMON__AUTOSTART="true")
    yield env
    try:
        pid = int(request({"op": "ping"}, socket_path(env), timeout=5)["pid"])
    except DaemonUnavailable:
        return
    stop_daemon(pid)


def plugin_call(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """As a plugin runs it: stdout and stderr are pipes the plugin reads to their end, so a
    daemon that kept them would hang this call."""
    return subprocess.run(
        [WAKATIME_CLI, *argv], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_a_plugin_call_starts_a_detached_daemon_that_sends_the_heartbeat(
    autostart_env: dict[str, str], repo: Path, waka: FakeWakaTime
) -> None:
    entity = repo / "cart.py"
    # The editor runs under a service manager: the daemon must not tell it "ready".
    editors_unit = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    editors_unit.bind(str(repo.parent / "notify.sock"))
    editors_unit.setblocking(False)
    autostart_env["NOTIFY_SOCKET"] = str(repo.parent / "notify.sock")

    done = plugin_call(autostart_env, "--entity", str(entity), "--plugin", VIM_UA, "--write")

    assert (done.returncode, done.stdout, done.stderr) == (102, "", "")
    pid = wait_for_daemon(autostart_env)
    [sent] = waka.wait_for(1, timeout=30)
    assert (sent["entity"], sent["project"], sent["branch"]) == (str(entity), "shop", "main")
    assert os.getsid(pid) not in (os.getsid(0), pid)  # its own session, not its leader
    status = Path(f"/proc/{pid}/status").read_text()
    assert f"PPid:\t{os.getpid()}" not in status
    fds = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in ("0", "1", "2")}
    assert fds == {os.devnull, str(daemon_log(autostart_env))}
    daemon_log_once_ready(autostart_env)  # it has notified, if it would
    with pytest.raises(BlockingIOError):
        editors_unit.recv(100)
    editors_unit.close()


def test_parallel_calls_start_one_daemon(
    autostart_env: dict[str, str], repo: Path, waka: FakeWakaTime
) -> None:
    now = time.time()
    calls = [  # each its own second: two in one millisecond would be one heartbeat (its identity)
        subprocess.Popen(
            [
                *(WAKATIME_CLI, "--entity", str(repo / "cart.py"), "--lineno", str(line)),
                *("--time", f"{now - 10 + line:.3f}"),
            ],
            env=autostart_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for line in range(1, 7)
    ]
    assert {call.wait(timeout=60) for call in calls} <= {0, 102}

    wait_for_daemon(autostart_env)
    assert sorted(hb["lineno"] for hb in waka.wait_for(6, timeout=45)) == [1, 2, 3, 4, 5, 6]
    log = daemon_log_once_ready(autostart_env)
    assert log.count(" ready (pid ") == 1, log
    assert "already running" not in log


@pytest.mark.parametrize("where", ["environment", "config file"])
def test_autostart_can_be_turned_off(tmp_path: Path, repo: Path, where: str) -> None:
    env = agent_env(tmp_path)  # the tests' default: HEARTBEAT_AGENT_DAEMON__AUTOSTART=false
    if where == "config file":
        config = tmp_path / "config.toml"
        config.write_text("[daemon]\nautostart = false\n")
        env.pop("HEARTBEAT_AGENT_DAEMON__AUTOSTART")
        env["HEARTBEAT_AGENT_CONFIG"] = str(config)

    done = plugin_call(env, "--entity", str(repo / "cart.py"))

    assert done.returncode == 102
    assert not daemon_log(env).exists()
    assert not os.path.exists(os.path.join(os.path.dirname(socket_path(env)), "autostart.lock"))


def test_a_daemon_starting_elsewhere_stops_a_second_one(tmp_path: Path, repo: Path) -> None:
    """The daemon's lock is taken before its socket exists: one started at the same moment
    as another (which has no socket yet) refuses to run."""
    env = agent_env(tmp_path)
    folder = os.path.dirname(socket_path(env))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    lock = os.open(os.path.join(folder, "agent.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        done = subprocess.run(
            [AGENT, "run"], env=env, cwd=repo, capture_output=True, text=True, timeout=60
        )
    finally:
        os.close(lock)
    assert done.returncode == 1
    assert "another heartbeat-agent daemon is already running" in done.stderr
    assert not os.path.exists(socket_path(env))


def test_deferred_heartbeats_equal_the_ones_a_daemon_builds_at_once(
    tmp_path: Path, repo: Path, waka: FakeWakaTime
) -> None:
    """Every field, flag rule and settings rule survives the wait in the queue: the same
    calls, sent once through a running daemon and once without one, deliver the same."""
    env = agent_env(
        tmp_path,
        waka.url,
        HEARTBEAT_AGENT_HEARTBEATS__HIDE_BRANCH_NAMES="true",
        HEARTBEAT_AGENT_PROJECTS='{"shop": "renamed"}',
    )
    (repo / "secret.py").write_text("x = 1\n")
    (repo / "skipped.log").write_text("no\n")

    def calls(at: float) -> None:
        extras = [
            {"entity": str(repo / "secret.py"), "timestamp": at + 1, "is_unsaved_entity": True},
            {"entity": str(repo / "skipped.log"), "timestamp": at + 2},
            {"entity": "https://example.org/docs", "type": "url", "timestamp": at + 3},
        ]
        argv = [
            *("--entity", str(repo / "cart.py"), "--time", str(at), "--write"),
            *("--plugin", VIM_UA, "--lineno", "2", "--cursorpos", "7"),
            *("--category", "debugging", "--ai-line-changes", "3", "--human-line-changes", "4"),
            *("--project-folder", str(repo), "--hide-file-names", "secret"),
            *("--exclude", r"\.log$", "--key", "waka_plugin_key", "--extra-heartbeats"),
        ]
        proc = subprocess.run(
            [WAKATIME_CLI, *argv],
            env=env,
            input=json.dumps(extras) + "\n",
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.stderr == ""

    now = time.time() - 600
    with AgentProcess(env, repo) as daemon:
        calls(now)
        direct = waka.wait_for(3)
        assert daemon.stop() == 0
    calls(now + 100)  # no daemon: queued as the request it would have been
    with AgentProcess(env, repo) as daemon:
        deferred = waka.wait_for(6)[3:]
        assert daemon.stop() == 0

    def comparable(heartbeats: list[dict]) -> list[dict]:
        start = min(hb["time"] for hb in heartbeats)
        shifted = [{**hb, "time": round(hb["time"] - start, 3)} for hb in heartbeats]
        return sorted(shifted, key=lambda hb: hb["time"])

    assert comparable(deferred) == comparable(direct)
    cart = next(hb for hb in direct if hb["entity"].endswith("cart.py"))
    assert (cart["project"], cart.get("branch"), cart["category"]) == (
        "renamed",
        None,
        "debugging",
    )
    assert {hb["entity"] for hb in direct} >= {"HIDDEN.py", "https://example.org/docs"}


def spool(env: dict[str, str]) -> Path:
    return Path(env["HEARTBEAT_AGENT_QUEUE__PATH"]).parent / "offline-requests.jsonl"


def stored_entities(env: dict[str, str]) -> list[str]:
    with sqlite3.connect(env["HEARTBEAT_AGENT_QUEUE__PATH"]) as db:
        return sorted(row[0] for row in db.execute("SELECT entity FROM heartbeats"))


def test_calls_queued_while_the_queue_is_taken_are_each_stored_once(tmp_path: Path) -> None:
    """Plugins append to the spool while another process takes it (a command reading the
    queue without a daemon adopts what waits): every heartbeat is stored, once."""
    env = agent_env(tmp_path)
    now = time.time()
    files = [tmp_path / f"f{i:02}.py" for i in range(24)]
    for file in files:
        file.write_text("x = 1\n")
    calls = [
        subprocess.Popen(
            [WAKATIME_CLI, "--entity", str(files[i]), "--time", str(now - 100 + i)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(24)
    ]
    takers = [
        subprocess.run([AGENT, "queue", "count"], env=env, capture_output=True, timeout=60)
        for _ in range(3)
    ]
    assert {call.wait(timeout=60) for call in calls} == {102}
    assert all(taker.returncode == 0 for taker in takers)

    count = plugin_call(env, "--offline-count")

    assert count.stdout == "24\n"
    assert stored_entities(env) == [str(file) for file in files]
    assert not spool(env).exists()
    assert not Path(str(spool(env)) + ".taking").exists()


def test_a_spool_taken_before_a_crash_is_read_again_without_copies(tmp_path: Path) -> None:
    env = agent_env(tmp_path)
    now = time.time()
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    for file in (a, b):
        file.write_text("x = 1\n")
    assert plugin_call(env, "--entity", str(a), "--time", str(now - 9)).returncode == 102
    assert stat.S_IMODE(os.stat(spool(env)).st_mode) == 0o600  # private, as the database
    assert plugin_call(env, "--offline-count").stdout == "1\n"  # stored, spool removed
    # A taker stored /tmp/a.py, then died before removing what it took, and an appender's
    # line was cut short by a crash:
    request = {"op": "heartbeats", "heartbeats": [{"entity": str(a), "time": now - 9}]}
    taken = Path(str(spool(env)) + ".taking")
    taken.write_text(
        json.dumps({"received": now, "request": request})
        + "\n"
        + json.dumps(
            {
                "received": now,
                "request": {**request, "heartbeats": [{"entity": str(b), "time": now - 5}]},
            }
        )
        + '\n{"received": 1, "requ'
    )

    count = plugin_call(env, "--offline-count")

    assert count.stdout == "2\n"
    assert stored_entities(env) == [str(a), str(b)]
    assert not taken.exists()


def test_queue_commands_count_what_waits_before_any_database_exists(tmp_path: Path) -> None:
    env = agent_env(tmp_path)
    (tmp_path / "a.py").write_text("x = 1\n")
    assert plugin_call(env, "--entity", str(tmp_path / "a.py")).returncode == 102
    assert not Path(env["HEARTBEAT_AGENT_QUEUE__PATH"]).exists()

    done = subprocess.run(
        [AGENT, "queue", "count", "--json"], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["queued"] == 1
