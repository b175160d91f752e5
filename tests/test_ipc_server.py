"""The daemon's socket (DESIGN §3), over real Unix sockets: served by a daemon in-process
(tests/inprocess.py) where the socket is the subject, by `agent run` where the process is
(it dies, a second one starts)."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentproc import AGENT, AgentProcess, agent_env, git_repo
from inprocess import serving_in_thread
from wakaserver import FakeWakaTime

from agent.config import ApiSettings, IpcSettings, QueueSettings, Settings, WatchSettings
from agent.ipc.client import IpcClient
from agent.ipc.protocol import MAX_LINE, ProtocolError, decode_request

NOW = time.time()


class Daemon:
    """A running daemon: the environment `agent` commands need to reach it, its folder and
    its socket."""

    def __init__(self, env: dict[str, str], repo: Path) -> None:
        self.env = env
        self.repo = repo
        self.socket = Path(env["XDG_RUNTIME_DIR"]) / "heartbeat-agent" / "agent.sock"
        self.database = Path(env["HEARTBEAT_AGENT_QUEUE__PATH"])
        self.pid = os.getpid()

    def client(self) -> IpcClient:
        return IpcClient(self.socket, timeout=20)


@pytest.fixture
def daemon(
    tmp_path: Path,
    waka: FakeWakaTime,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[Daemon]:
    """A daemon in-process, watching a git repository, where `agent_env` puts it."""
    repo = git_repo(tmp_path / "shop", branch="feature/cart")
    (repo / "cart.py").write_text("import os\n\nprint(os.sep)\n")
    env = agent_env(tmp_path, waka.url)
    running = Daemon(env, repo)
    for name in ("HOME", "XDG_RUNTIME_DIR", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.delenv("WAKATIME_HOME", raising=False)
    settings = Settings(
        api=ApiSettings(url=waka.url, key=env["HEARTBEAT_AGENT_API__KEY"]),
        watch=WatchSettings(paths=[str(repo)]),
        queue=QueueSettings(path=running.database),
        ipc=IpcSettings(socket=running.socket),
    )
    with serving_in_thread(settings):
        yield running
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []


def raw(daemon: Daemon) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(str(daemon.socket))
    return sock


def read_answers(sock: socket.socket, count: int) -> list[dict]:
    buffer = b""
    while buffer.count(b"\n") < count:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {buffer!r}"
        buffer += chunk
    return [json.loads(line) for line in buffer.splitlines()]


def heartbeat(entity: str, offset: float = 0.0, **fields: object) -> dict:
    return {"entity": entity, "time": NOW + offset, **fields}


def test_folder_and_socket_are_private(daemon: Daemon) -> None:
    assert stat.S_IMODE(os.stat(daemon.socket.parent).st_mode) == 0o700
    info = os.lstat(daemon.socket)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.getuid()


def test_ping_echoes_the_id_and_answers_in_order(daemon: Daemon) -> None:
    with raw(daemon) as sock:
        sock.sendall(
            b'{"op":"ping","id":1}\n{"op":"status","id":"two"}\n\n{"op":"ping","id":[3]}\n'
        )
        answers = read_answers(sock, 3)

    assert [a["id"] for a in answers] == [1, "two", [3]]
    assert all(a["ok"] for a in answers)
    assert answers[0]["pid"] == daemon.pid
    assert answers[1]["watching"] == [str(daemon.repo)]


def test_a_heartbeat_gains_what_detection_knows(daemon: Daemon, waka: FakeWakaTime) -> None:
    entity = str(daemon.repo / "cart.py")
    with daemon.client() as client:
        answer = client.request(
            {"op": "heartbeat", "id": 7, "heartbeat": heartbeat(entity, lineno=2, plugin="vim/9")}
        )

    assert answer == {"ok": True, "queued": 1, "id": 7}
    [received] = waka.wait_for(1)
    assert received["project"] == "shop"
    assert received["branch"] == "feature/cart"
    assert received["language"] == "Python"
    assert received["lines"] == 3
    assert received["lineno"] == 2
    assert received["user_agent"].endswith(" vim/9")


def test_ok_means_committed_even_if_the_daemon_dies_at_once(tmp_path: Path) -> None:
    env = agent_env(tmp_path, "http://127.0.0.1:9/api/v1")
    with AgentProcess(env, tmp_path) as process:
        with IpcClient(Path(env["XDG_RUNTIME_DIR"]) / "heartbeat-agent" / "agent.sock") as client:
            answer = client.request({"op": "heartbeat", "heartbeat": heartbeat("/tmp/durable")})
        process.kill()  # SIGKILL: nothing is flushed after the answer

    assert answer["ok"] is True
    with sqlite3.connect(env["HEARTBEAT_AGENT_QUEUE__PATH"]) as db:
        entities = [row[0] for row in db.execute("SELECT entity FROM heartbeats")]
    assert entities == ["/tmp/durable"]


def test_many_concurrent_clients_each_get_their_answers(daemon: Daemon, waka: FakeWakaTime) -> None:
    clients, per_client = 16, 40
    results: dict[int, list[dict]] = {}

    def run(number: int) -> None:
        with daemon.client() as client:
            for index in range(per_client):  # pipelined: all sent before any answer is read
                item = heartbeat(f"/tmp/c{number}/{index}.txt", offset=-index)
                client.send({"op": "heartbeat", "id": index, "heartbeat": item})
            results[number] = [client.read_answer() for _ in range(per_client)]

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(results) == list(range(clients))
    for answers in results.values():
        assert [a["id"] for a in answers] == list(range(per_client))
        assert all(a["ok"] and a["queued"] == 1 for a in answers)
    received = waka.wait_for(clients * per_client, timeout=60)
    assert len({hb["entity"] for hb in received}) == clients * per_client


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"{not json\n", "not a JSON object"),
        (b"[1, 2]\n", "a request must be a JSON object"),
        (b'{"op": "dance"}\n', "op: must be one of"),
        (b"\xff\xfe\n", "not a JSON object"),
        (b'{"op": "heartbeats", "heartbeats": {"a": 1}}\n', "heartbeats: must be a list"),
        (b'{"op": "heartbeat", "heartbeat": "x"}\n', "heartbeat: must be a JSON object"),
        (b'{"op": "heartbeats", "heartbeats": [], "api_key": 5}\n', "api_key: must be a string"),
    ],
)
def test_a_bad_line_gets_an_error_and_the_connection_stays_usable(
    daemon: Daemon, line: bytes, error: str
) -> None:
    with raw(daemon) as sock:
        sock.sendall(line + b'{"op":"ping","id":"after"}\n')
        bad, after = read_answers(sock, 2)

    assert bad["ok"] is False
    assert error in bad["error"]
    assert after == {**after, "ok": True, "id": "after"}


def test_wrong_types_are_named_field_by_field(daemon: Daemon) -> None:
    request = {
        "op": "heartbeats",
        "id": 9,
        "heartbeats": [
            heartbeat("/tmp/ok.txt"),
            {"entity": 5, "time": "soon", "lineno": 1.5, "is_write": "yes", "category": "nap"},
        ],
    }
    with daemon.client() as client:
        answer = client.request(request)
        stored = client.request({"op": "status"})["queued"] + 0

    assert answer["ok"] is False and answer["id"] == 9
    for field in ("entity", "time", "lineno", "is_write", "category"):
        assert f"heartbeats[1].{field}: " in answer["error"]
    assert "heartbeats[0]" not in answer["error"]
    assert stored == 0  # a refused request stores nothing of it


def test_skip_invalid_stores_the_good_ones_and_names_the_rest(daemon: Daemon) -> None:
    request = {
        "op": "heartbeats",
        "skip_invalid": True,
        "heartbeats": [heartbeat("/tmp/a.txt"), {"entity": "/tmp/b.txt"}, heartbeat("/tmp/c")],
    }
    with daemon.client() as client:
        answer = client.request(request)

    assert answer == {
        "ok": True,
        "queued": 2,
        "skipped": [{"index": 1, "error": "heartbeats[1].time: is required"}],
    }


def test_a_lone_surrogate_is_refused_without_harming_other_heartbeats(
    daemon: Daemon, waka: FakeWakaTime
) -> None:
    with raw(daemon) as sock:
        sock.sendall(
            b'{"op":"heartbeat","heartbeat":{"entity":"/tmp/\\ud800","time":%f}}\n'
            b'{"op":"heartbeat","heartbeat":{"entity":"/tmp/fine","time":%f}}\n' % (NOW, NOW)
        )
        bad, good = read_answers(sock, 2)

    assert bad["ok"] is False and "heartbeat.entity: must be valid Unicode" in bad["error"]
    assert good == {"ok": True, "queued": 1}
    assert [hb["entity"] for hb in waka.wait_for(1)] == ["/tmp/fine"]


def test_an_oversize_line_is_refused_and_the_next_one_served(daemon: Daemon) -> None:
    big = b'{"op":"ping","pad":"' + b"x" * (MAX_LINE + 10) + b'"}\n'
    with raw(daemon) as sock:
        sock.sendall(big + b'{"op":"ping","id":2}\n')
        refused, after = read_answers(sock, 2)

    assert refused["ok"] is False and "longer than" in refused["error"]
    assert after["ok"] is True and after["id"] == 2


def test_a_client_gone_mid_line_or_not_reading_stalls_nobody(daemon: Daemon) -> None:
    half = raw(daemon)
    half.sendall(b'{"op":"heartbeat","heartbeat":{"entity":"/tmp/x",')
    half.close()
    deaf = raw(daemon)  # pipelines thousands of requests and never reads an answer
    deaf.setblocking(False)
    sent = 0
    try:
        while sent < 20_000:
            deaf.send(b'{"op":"status"}\n')
            sent += 1
    except BlockingIOError:
        pass  # its buffers are full: the daemon stopped reading it
    try:
        with daemon.client() as client:
            answer = client.request({"op": "heartbeat", "heartbeat": heartbeat("/tmp/other")})
    finally:
        deaf.close()

    assert answer == {"ok": True, "queued": 1}


def test_a_stale_socket_is_replaced(tmp_path: Path, waka: FakeWakaTime) -> None:
    env = agent_env(tmp_path, waka.url)
    path = Path(env["XDG_RUNTIME_DIR"]) / "heartbeat-agent" / "agent.sock"
    path.parent.mkdir(mode=0o700)
    crashed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    crashed.bind(str(path))  # a daemon that died without removing its socket
    crashed.close()

    with AgentProcess(env, tmp_path) as process:
        with IpcClient(path) as client:
            assert client.request({"op": "ping"})["ok"] is True
        assert process.stop() == 0


def test_a_second_daemon_refuses_to_start(daemon: Daemon) -> None:
    second = subprocess.run(
        [AGENT, "run"],
        env=daemon.env,
        cwd=daemon.repo,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert second.returncode != 0
    assert "already running" in second.stderr
    assert "Traceback" not in second.stderr
    with daemon.client() as client:  # the first one is untouched
        assert client.request({"op": "ping"})["pid"] == daemon.pid


def test_a_deep_pipeline_with_an_oversize_line_then_eof_is_answered_in_order(
    daemon: Daemon,
) -> None:
    """More requests than a client may have outstanding, a line over the cap in the middle,
    then the client closes its side: every line is answered, in order, and nothing is lost."""
    sock = raw(daemon)
    lines = [
        json.dumps({"op": "heartbeat", "id": n, "heartbeat": heartbeat(f"/pipe/{n}.py", n / 1000)})
        for n in range(1500)
    ]
    lines.insert(700, json.dumps({"op": "ping", "pad": "x" * (MAX_LINE + 10)}))
    sender = threading.Thread(
        target=lambda: (
            sock.sendall(("\n".join(lines) + "\n").encode()),
            sock.shutdown(socket.SHUT_WR),
        )
    )
    sender.start()
    answers = read_answers(sock, len(lines))
    sender.join()
    sock.close()
    assert len(answers) == 1501
    assert answers[700]["ok"] is False and "longer than" in answers[700]["error"]
    rest = answers[:700] + answers[701:]
    assert [a["id"] for a in rest] == list(range(1500))
    assert all(a["ok"] and a["queued"] == 1 for a in rest)
    with daemon.client() as client:
        status = client.request({"op": "status"})
    assert status["queued"] + status["delivered_total"] == 1500


# What the door refuses at once, with the field at fault: an id no answer can carry
# (`1e400` reads as infinity), heartbeats servers would refuse for ever later.


def test_an_infinite_id_gets_an_error_and_the_connection_serves_on(daemon: Daemon) -> None:
    with raw(daemon) as sock:
        sock.sendall(b'{"op": "ping", "id": 1e400}\n{"op": "ping", "id": -1e999}\n')
        sock.sendall(b'{"op": "ping", "id": 7}\n')
        first, second, third = read_answers(sock, 3)
    assert first == {"ok": False, "error": "id: must be a JSON value with finite numbers only"}
    assert second == first
    assert third["ok"] is True and third["id"] == 7


def test_server_invalid_heartbeats_are_refused_with_the_field(daemon: Daemon) -> None:
    entity = str(daemon.repo / "cart.py")
    cases = [
        ({"lineno": -1}, "heartbeats[0].lineno: must not be negative"),
        ({"cursorpos": -5}, "heartbeats[1].cursorpos: must not be negative"),
        ({"time": NOW + 7200}, "heartbeats[2].time: is more than an hour ahead"),
        ({"time": NOW - 400 * 86400}, "heartbeats[3].time: is more than a year old"),
    ]
    items = [{"entity": entity, "time": NOW, **fields} for fields, _ in cases]
    good = {"entity": entity, "time": NOW - 30 * 86400, "lineno": 0}
    with daemon.client() as client:
        refused = client.request({"op": "heartbeats", "heartbeats": items})
        mixed = client.request(
            {"op": "heartbeats", "heartbeats": [*items, good], "skip_invalid": True}
        )
    assert refused["ok"] is False
    for _, message in cases:
        assert message in refused["error"]
    assert mixed["ok"] is True and mixed["queued"] == 1
    assert [skipped["index"] for skipped in mixed["skipped"]] == [0, 1, 2, 3]


def test_ids_the_answer_can_carry() -> None:
    for line in (b'{"op":"ping","id":"a"}', b'{"op":"ping","id":0.5}', b'{"op":"ping","id":[1]}'):
        assert "id" in decode_request(line)
    with pytest.raises(ProtocolError, match=r"^id: "):
        decode_request(b'{"op":"ping","id":{"a":[1e400]}}')
