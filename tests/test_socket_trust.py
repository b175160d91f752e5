"""A socket another user could have put in place gets nothing: not the heartbeats, not the
plugin's key. The compat command queues offline instead and says why; `agent status`
says why too, and a stranger's odd answer is an error line, never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentproc import AGENT, agent_env

NOBODY = 65534
KEY = "waka_plugin_key_0123456789"


class Listener:
    """A stranger's listener on the agent's socket path: records what it is sent, and
    answers each line with `answer`."""

    def __init__(self, path: Path, answer: dict[str, object]) -> None:
        self.path = path
        self.answer = answer
        self.received: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = conn.makefile("rb").readline()
                self.received.append(data)
                conn.sendall(json.dumps(self.answer).encode() + b"\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return agent_env(tmp_path, "http://127.0.0.1:9/api/v1", None)


def socket_path(env: dict[str, str]) -> Path:
    folder = Path(env["XDG_RUNTIME_DIR"]) / "heartbeat-agent"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder / "agent.sock"


@pytest.fixture(params=["world-writable folder", "socket of another user", "folder of another"])
def planted(request: pytest.FixtureRequest, env: dict[str, str]) -> Iterator[Listener]:
    path = socket_path(env)
    listener = Listener(path, {"ok": True, "queued": 1})
    if request.param == "world-writable folder":
        path.parent.chmod(0o777)
    else:
        owned = path if request.param == "socket of another user" else path.parent
        try:
            os.chown(owned, NOBODY, NOBODY)
        except PermissionError:
            listener.close()
            pytest.skip("giving a file to another user needs root (the folder case runs)")
    yield listener
    listener.close()


def run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AGENT, *argv],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def test_the_compat_command_sends_nothing_to_a_planted_socket(
    env: dict[str, str], planted: Listener, tmp_path: Path
) -> None:
    (tmp_path / "a.py").touch()  # the command skips missing files, as wakatime-cli
    done = run(env, "heartbeat", "--entity", str(tmp_path / "a.py"), "--key", KEY, "--write")
    assert planted.received == []
    spool = Path(env["HEARTBEAT_AGENT_QUEUE__PATH"]).parent / "offline-requests.jsonl"
    [line] = spool.read_text().splitlines()  # for a daemon to take
    assert [hb["entity"] for hb in json.loads(line)["request"]["heartbeats"]] == [
        str(tmp_path / "a.py")
    ]
    assert done.returncode == 102, done  # queued offline, as wakatime-cli says it
    log = (tmp_path / "home" / ".wakatime" / "wakatime.log").read_text()
    assert f"refusing {planted.path}" in log and KEY not in log


def test_status_asks_no_planted_socket(env: dict[str, str], planted: Listener) -> None:
    done = run(env, "status")
    assert planted.received == []
    assert done.returncode == 1
    assert f"refusing {planted.path}" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ({"ok": True}, "answered a status without pid"),
        (
            {
                "ok": True,
                **dict.fromkeys(("pid", "uptime_seconds", "today_seconds", "queued"), 1),
                **dict.fromkeys(("rejected", "delivered_total"), 0),
                **dict.fromkeys(("last_delivery", "last_error"), None),
                **dict.fromkeys(("database", "socket"), "x"),
                "watching": [],
                "destinations": [{"name": "default"}, {"name": "other"}],
            },
            "answered a status this agent cannot read (KeyError",
        ),
    ],
)
def test_status_of_a_stranger_answering_oddly_is_one_line(
    env: dict[str, str], answer: dict[str, object], said: str
) -> None:
    listener = Listener(socket_path(env), answer)  # ours, but not this daemon's answer
    try:
        done = run(env, "status")
    finally:
        listener.close()
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert said in done.stderr


def test_heartbeats_the_daemon_could_not_store_are_queued_by_the_command(
    env: dict[str, str], tmp_path: Path
) -> None:
    # A daemon whose database failed under it answers `not stored`: not a refusal of the
    # heartbeats, so the command keeps them itself instead of exiting 1.
    listener = Listener(socket_path(env), {"ok": False, "error": "not stored: disk I/O error"})
    (tmp_path / "b.py").touch()  # the command skips missing files, as wakatime-cli
    try:
        done = run(env, "heartbeat", "--entity", str(tmp_path / "b.py"), "--write")
    finally:
        listener.close()
    assert len(listener.received) == 1
    spool = Path(env["HEARTBEAT_AGENT_QUEUE__PATH"]).parent / "offline-requests.jsonl"
    [line] = spool.read_text().splitlines()  # for a daemon to take
    assert [hb["entity"] for hb in json.loads(line)["request"]["heartbeats"]] == [
        str(tmp_path / "b.py")
    ]
    assert done.returncode == 104, done  # queued offline, no key configured: not 1
