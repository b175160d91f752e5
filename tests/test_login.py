"""`agent login` and `agent logout` as a user runs them: real subprocesses, the test playing
the browser (GET the printed authorize URL, follow its 302 to the agent's loopback redirect)."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from wakaserver import FakeWakaTime

AGENT = str(Path(sys.executable).with_name("agent"))
CLIENT_ID = "test_client_id"
CLIENT_SECRET = "test_client_secret"


def agent_env(tmp_path: Path, waka: FakeWakaTime, **extra: str) -> dict[str, str]:
    """A user of their own: home, XDG dirs and the queue in tmp_path, the fake as server."""
    home = tmp_path / "home"
    runtime = tmp_path / "run"
    for folder in (home, runtime):
        folder.mkdir(mode=0o700, exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_RUNTIME_DIR": str(runtime),
        "HEARTBEAT_AGENT_QUEUE__PATH": str(tmp_path / "data" / "heartbeats.sqlite3"),
        "HEARTBEAT_AGENT_API__URL": waka.url,
        "HEARTBEAT_AGENT_OAUTH__AUTHORIZE_URL": waka.oauth_authorize_url,
        "HEARTBEAT_AGENT_OAUTH__TOKEN_URL": waka.oauth_token_url,
        "HEARTBEAT_AGENT_OAUTH__CLIENT_ID": CLIENT_ID,
        "HEARTBEAT_AGENT_OAUTH__CLIENT_SECRET": CLIENT_SECRET,
    }
    return {**env, **extra}


def run_agent(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AGENT, *args], env=env, capture_output=True, text=True, encoding="utf-8", timeout=60
    )


def token_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "oauth.json"


@dataclass
class Login:
    """A running `agent login --no-browser` and the authorize URL it printed."""

    proc: subprocess.Popen[str]
    printed: str
    url: str

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query))

    def authorize(self) -> str:
        """What the browser does first: the server's 302 to the agent's redirect URI."""
        answer = httpx.get(self.url, timeout=10)
        assert answer.status_code == 302, answer.text
        return answer.headers["location"]

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, self.printed + out, err


StartLogin = Callable[..., Login]


@pytest.fixture
def start_login() -> Iterator[StartLogin]:
    procs: list[subprocess.Popen[str]] = []

    def start(env: dict[str, str], *args: str) -> Login:
        proc = subprocess.Popen(
            [AGENT, "login", "--no-browser", "--timeout", "60", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        procs.append(proc)
        printed = ""
        url = None
        assert proc.stdout is not None
        for line in proc.stdout:  # until it says it is waiting: the listener is up
            printed += line
            if line.strip().startswith("http"):
                url = line.strip()
            if line.startswith("Waiting"):
                break
        assert url is not None, printed + proc.communicate(timeout=60)[1]
        return Login(proc, printed, url)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_full_login_then_logout(
    waka: FakeWakaTime, tmp_path: Path, start_login: StartLogin
) -> None:
    env = agent_env(tmp_path, waka)
    login = start_login(env)
    params = login.params
    redirect = urlsplit(params["redirect_uri"])
    assert login.url.startswith(waka.oauth_authorize_url + "?")
    assert params["client_id"] == CLIENT_ID
    assert params["response_type"] == "code"
    assert (redirect.scheme, redirect.hostname, redirect.path) == ("http", "127.0.0.1", "/callback")
    assert redirect.port and redirect.port > 0
    assert {"write_logged_time", "read_stats"} <= set(params["scope"].split(","))
    assert len(params["state"]) >= 32

    page = httpx.get(login.authorize(), timeout=10)
    code, out, err = login.finish()

    assert page.status_code == 200 and "Logged in" in page.text
    assert code == 0, err
    assert "Logged in as tester" in out
    [exchange] = [r.body for r in waka.requests if r.path == "/oauth/token"]
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["client_id"] == CLIENT_ID and exchange["client_secret"] == CLIENT_SECRET
    assert exchange["redirect_uri"] == params["redirect_uri"]
    assert exchange["code"]
    path = token_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored["access_token"] in waka.bearer_tokens
    profile = [r for r in waka.requests if r.path == "/api/v1/users/current"]
    assert profile[-1].headers["authorization"] == f"Bearer {stored['access_token']}"
    for secret in (stored["access_token"], stored["refresh_token"], CLIENT_SECRET):
        assert secret not in out and secret not in err

    logout = run_agent(env, "logout")
    assert logout.returncode == 0, logout.stderr
    assert "Logged out" in logout.stdout
    assert not path.exists()
    again = run_agent(env, "logout")
    assert again.returncode == 0 and "Not logged in" in again.stdout


@pytest.mark.parametrize("state", ["forged-state", None], ids=["forged", "missing"])
def test_a_redirect_with_a_wrong_or_missing_state_is_refused(
    waka: FakeWakaTime, tmp_path: Path, start_login: StartLogin, state: str | None
) -> None:
    login = start_login(agent_env(tmp_path, waka))
    query = {"code": "stolen-code", **({"state": state} if state else {})}
    page = httpx.get(f"{login.params['redirect_uri']}?{urlencode(query)}", timeout=10)
    code, _, err = login.finish()

    assert page.status_code == 400 and "wrong or missing state" in page.text
    assert code == 1
    assert "wrong or missing state" in err and "nothing was stored" in err
    assert [r for r in waka.requests if r.path == "/oauth/token"] == []
    assert not token_file(tmp_path).parent.exists()


def test_a_wrong_code_is_refused_by_the_server_and_named(
    waka: FakeWakaTime, tmp_path: Path, start_login: StartLogin
) -> None:
    login = start_login(agent_env(tmp_path, waka))
    location = urlsplit(login.authorize())
    query = dict(parse_qsl(location.query)) | {"code": "not-the-code"}
    page = httpx.get(urlunsplit(location._replace(query=urlencode(query))), timeout=10)
    code, _, err = login.finish()

    assert page.status_code == 400
    assert code == 1
    assert err.count("\n") == 1 and "authorization code was refused (invalid_grant)" in err
    assert not token_file(tmp_path).exists()


def test_a_wrong_client_secret_is_named(
    waka: FakeWakaTime, tmp_path: Path, start_login: StartLogin
) -> None:
    env = agent_env(tmp_path, waka, HEARTBEAT_AGENT_OAUTH__CLIENT_SECRET="not-the-secret")
    login = start_login(env)
    httpx.get(login.authorize(), timeout=10)
    code, _, err = login.finish()

    assert code == 1
    assert "invalid_client" in err and "client_id and client_secret" in err
    assert "not-the-secret" not in err
    assert not token_file(tmp_path).exists()


def test_a_redirect_uri_the_app_does_not_allow_is_named(
    waka: FakeWakaTime, tmp_path: Path, start_login: StartLogin
) -> None:
    login = start_login(agent_env(tmp_path, waka))
    redirect_uri = login.params["redirect_uri"]
    query = {
        "error": "invalid_request",
        "error_description": "redirect_uri is not authorized for this app",
        "state": login.params["state"],
    }
    httpx.get(f"{redirect_uri}?{urlencode(query)}", timeout=10)
    code, _, err = login.finish()

    assert code == 1
    assert f"the redirect URI {redirect_uri} is not authorised" in err
    assert "--port" in err


def test_a_fixed_port_is_used_for_the_redirect(
    waka: FakeWakaTime, tmp_path: Path, start_login: StartLogin
) -> None:
    port = FakeWakaTime.reserve_port()
    login = start_login(agent_env(tmp_path, waka), "--port", str(port))
    assert login.params["redirect_uri"] == f"http://127.0.0.1:{port}/callback"
    httpx.get(login.authorize(), timeout=10)
    assert login.finish()[0] == 0


def test_a_timeout_stores_nothing(waka: FakeWakaTime, tmp_path: Path) -> None:
    done = run_agent(agent_env(tmp_path, waka), "login", "--no-browser", "--timeout", "0.2")
    assert done.returncode == 1
    assert "no redirect came back within 0.2 s; nothing was stored" in done.stderr
    assert "Traceback" not in done.stderr
    assert not token_file(tmp_path).parent.exists()


def test_ctrl_c_stores_nothing(waka: FakeWakaTime, tmp_path: Path, start_login: StartLogin) -> None:
    login = start_login(agent_env(tmp_path, waka))
    login.proc.send_signal(signal.SIGINT)
    code, _, err = login.finish()
    assert code == 130
    assert "login cancelled; nothing was stored" in err and "Traceback" not in err
    assert not token_file(tmp_path).parent.exists()


def test_without_an_oauth_app_login_fails_in_one_line(waka: FakeWakaTime, tmp_path: Path) -> None:
    env = agent_env(tmp_path, waka)
    del env["HEARTBEAT_AGENT_OAUTH__CLIENT_ID"]
    done = run_agent(env, "login", "--no-browser")
    assert done.returncode == 78
    assert done.stderr.count("\n") == 1 and "client_id and client_secret are not set" in done.stderr


def test_a_busy_port_is_named(waka: FakeWakaTime, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_agent(agent_env(tmp_path, waka), "login", "--no-browser", "--port", str(port))
    assert done.returncode == 1
    assert done.stderr == f"agent: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_login_opens_the_browser_the_user_chose(waka: FakeWakaTime, tmp_path: Path) -> None:
    browser = (
        f"{sys.executable} -c 'import sys, httpx; httpx.get(sys.argv[1], follow_redirects=True)'"
    )
    done = run_agent(agent_env(tmp_path, waka, BROWSER=f"{browser} %s"), "login", "--timeout", "60")
    assert done.returncode == 0, done.stderr
    assert "Opened the browser" in done.stdout and "Logged in as tester" in done.stdout
    assert token_file(tmp_path).exists()


def test_without_a_display_login_prints_the_url(waka: FakeWakaTime, tmp_path: Path) -> None:
    done = run_agent(agent_env(tmp_path, waka), "login", "--timeout", "0.2")
    assert done.returncode == 1
    assert "Open this URL in a browser" in done.stdout
    assert waka.oauth_authorize_url in done.stdout
