"""Security: private socket and database, no secret in logs or status, TLS verified (a CA
bundle only when configured), plain http only to loopback, no credentials carried to
another host by a redirect, and no symlink followed where the socket goes."""

from __future__ import annotations

import json
import os
import ssl
import stat
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from agentproc import AgentProcess, agent_env
from chaos.support import ask, database_of, destination, make_heartbeats, send, socket_of
from inprocess import InProcessAgent
from wakaserver import FakeWakaTime

from agent.config import check_api_url
from agent.delivery.sender import basic_authorization, display_url

KEY_A = "waka_secret_a_1111"
KEY_B = "waka_secret_b_2222"
KEY_C = "waka_secret_c_3333"


def secrets_in(text: str) -> list[str]:
    found = []
    for key in (KEY_A, KEY_B, KEY_C):
        if key in text or basic_authorization(key).split()[1] in text:
            found.append(key)
    return found


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_socket_and_database_are_private(tmp_path: Path, workdir: Path, waka: FakeWakaTime) -> None:
    env = agent_env(tmp_path, waka.url)
    socket_dir = socket_of(env).parent
    socket_dir.mkdir(parents=True)
    socket_dir.chmod(0o755)  # left too open by something else: tightened
    with AgentProcess(env, workdir) as agent:
        assert send(env, make_heartbeats(3, time.time() - 60)) == 3
        waka.wait_for(3)
        sock = socket_of(env)
        assert stat.S_ISSOCK(os.lstat(sock).st_mode)
        assert (mode(sock), mode(socket_dir)) == (0o600, 0o700)
        assert os.lstat(sock).st_uid == os.getuid()
        database = database_of(env)
        assert mode(database.parent) == 0o700
        files = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
        assert {p.name.removeprefix(database.name) for p in files} >= {"", "-wal", "-shm"}
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        assert agent.stop() == 0
    assert not sock.exists()  # removed on the way out


def test_no_key_in_logs_or_status(tmp_path: Path, workdir: Path) -> None:
    """Three destinations, three keys (one from a key command); a refused key, an
    unreachable server and debug logging: no key, nor its base64, anywhere."""
    with FakeWakaTime(api_key="another") as refusing, FakeWakaTime(api_key=KEY_B) as good:
        unreachable = f"http://127.0.0.1:{FakeWakaTime.reserve_port()}/api/v1"
        key_script = tmp_path / "print-key"
        key_script.write_text(f"#!/bin/sh\necho {KEY_C}\n")
        key_script.chmod(0o700)
        config = tmp_path / "config.toml"
        config.write_text(
            f'[[destinations]]\nname = "good"\nurl = "{good.url}"\nkey = "{KEY_B}"\n'
            f'[[destinations]]\nname = "down"\nurl = "{unreachable}"\n'
            f'key_command = "{key_script}"\n'
        )
        env = agent_env(tmp_path, refusing.url, KEY_A, HEARTBEAT_AGENT_CONFIG=str(config))
        with AgentProcess(env, workdir, "--verbose") as agent:
            assert send(env, make_heartbeats(5, time.time() - 60)) == 5
            good.wait_for(5)
            agent.wait_for_log("HTTP 401")
            agent.wait_for_log("cannot reach")
            status = ask(env, "status")
            assert agent.stop() == 0
        assert "refused the credentials" in destination(status, "default")["paused"]
        assert "cannot reach" in destination(status, "down")["last_error"]
        assert good.requests[0].headers["authorization"] == basic_authorization(KEY_B)
        assert secrets_in(json.dumps(status)) == []
        assert secrets_in(agent.log) == []


def test_urls_lose_credentials_and_queries_before_logs_and_status() -> None:
    assert display_url("https://me:pw@wakapi.example:8443/api?api_key=k") == (
        "https://wakapi.example:8443/api"
    )
    assert display_url("http://127.0.0.1:3000/api/v1") == "http://127.0.0.1:3000/api/v1"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://wakatime.com/api/v1", True),
        ("https://10.0.0.5/api", True),
        ("http://localhost:3000/api", True),
        ("http://127.0.0.2:3000/api", True),
        ("http://[::1]:3000/api", True),
        ("http://wakapi.example/api", False),
        ("http://10.0.0.5/api", False),
        ("http://localhost.example.com/api", False),
        ("http://127.0.0.1.nip.io/api", False),
        ("ftp://127.0.0.1/api", False),
        ("wakatime.com/api", False),
    ],
)
def test_plain_http_only_to_loopback(url: str, allowed: bool) -> None:
    if allowed:
        assert check_api_url(url) == url
    else:
        with pytest.raises(ValueError):
            check_api_url(url)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def https_server(ca: trustme.CA) -> FakeWakaTime:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return FakeWakaTime(ssl_context=context)


def test_tls_is_verified_self_signed_refused(
    tmp_path: Path, workdir: Path, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    with https_server(ca) as server:
        env = agent_env(tmp_path, server.url)
        with InProcessAgent(env, workdir, monkeypatch) as agent:
            assert send(env, make_heartbeats(2, time.time() - 60)) == 2
            line = agent.wait_for_log("cannot reach")
            assert "CERTIFICATE_VERIFY_FAILED" in line
            assert agent.stop() == 0
        assert server.received == []
        assert server.requests == []  # nothing got past the handshake


def test_tls_with_a_configured_ca_bundle(
    tmp_path: Path, workdir: Path, ca: trustme.CA, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with https_server(ca) as server:
        env = agent_env(tmp_path, server.url, HEARTBEAT_AGENT_API__CA_BUNDLE=str(bundle))
        with InProcessAgent(env, workdir, monkeypatch) as agent:
            assert send(env, make_heartbeats(2, time.time() - 60)) == 2
            server.wait_for(2)
            assert agent.stop() == 0


class Redirector(ThreadingHTTPServer):
    """Answers everything 307 to the same path on another host."""

    daemon_threads = True

    def __init__(self, target: str) -> None:
        super().__init__(("127.0.0.1", 0), _RedirectHandler)
        self.target = target
        self.authorizations: list[str | None] = []


class _RedirectHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Redirector

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.authorizations.append(self.headers.get("Authorization"))
        self.send_response(307)
        self.send_header("Location", self.server.target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def redirect_to_other_host(waka: FakeWakaTime) -> Iterator[Redirector]:
    # The fake listens on 127.0.0.1; "localhost" is another host name for the client.
    redirector = Redirector(f"http://localhost:{waka.port}")
    threading.Thread(
        target=redirector.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    ).start()
    yield redirector
    redirector.shutdown()
    redirector.server_close()


def test_a_redirect_to_another_host_is_not_followed(
    tmp_path: Path,
    workdir: Path,
    waka: FakeWakaTime,
    redirect_to_other_host: Redirector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = redirect_to_other_host.server_address[1]
    env = agent_env(tmp_path, f"http://127.0.0.1:{port}/api/v1", KEY_A)
    with InProcessAgent(env, workdir, monkeypatch) as agent:
        assert send(env, make_heartbeats(2, time.time() - 60)) == 2
        agent.wait_for_log("redirects to localhost")
        status = ask(env, "status")
        assert agent.stop() == 0
    assert redirect_to_other_host.authorizations == [basic_authorization(KEY_A)]
    assert waka.requests == []  # neither the heartbeats nor the key went there
    assert status["queued"] == 2 and "not followed" in status["last_error"]


def test_a_symlink_where_the_socket_goes_is_never_followed(
    tmp_path: Path, workdir: Path, waka: FakeWakaTime
) -> None:
    env = agent_env(tmp_path, waka.url)
    sock = socket_of(env)
    sock.parent.mkdir(parents=True, mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    sock.symlink_to(victim)
    with AgentProcess(env, workdir) as agent:
        assert stat.S_ISSOCK(os.lstat(sock).st_mode)
        assert ask(env, "ping")["ok"]
        # Swapped for a symlink while running: stopping removes neither it nor its target.
        sock.unlink()
        sock.symlink_to(victim)
        assert agent.stop() == 0
    assert victim.read_text() == "precious\n" and mode(victim) == 0o644
    assert sock.is_symlink()


def test_a_symlinked_socket_folder_is_refused(tmp_path: Path, workdir: Path) -> None:
    env = agent_env(tmp_path, api_key=None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    socket_of(env).parent.symlink_to(elsewhere)
    agent = AgentProcess(env, workdir)
    with pytest.raises(AssertionError, match="not a real folder"):
        agent.start(ready_timeout=20)
    assert agent.proc is not None and agent.proc.wait(10) != 0
    assert list(elsewhere.iterdir()) == [] and mode(elsewhere) == 0o755
    assert "Traceback" not in agent.log
