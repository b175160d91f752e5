"""The real Wakapi server for tests: started on 127.0.0.1 with a temp SQLite database.

The binary is looked up in $HEARTBEAT_AGENT_ORACLES (default /opt/oracles/bin); `wakapi_or_skip`
skips with the reason when it is absent (it cannot be installed from the Go module proxy here).
Configuration is by environment only, in an environment of its own: Wakapi reads any
`*_FILE` variable as a secret file, and nothing here may reach the internet (no mail, no
Sentry, no leaderboard or cache warming). Users sign up through `POST /signup`, as a person
would; Wakapi gives each a random API key, read back from its database.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from wakaserver import FakeWakaTime

ORACLES_ENV = "HEARTBEAT_AGENT_ORACLES"
DEFAULT_ORACLES = "/opt/oracles/bin"
# Wakapi's own default is 168h (7 days); its sample config's 180 days lets a week-old backlog in.
MAX_AGE_HOURS = 4320
START_TIMEOUT = 30.0


def wakapi_binary() -> Path | None:
    path = Path(os.environ.get(ORACLES_ENV) or DEFAULT_ORACLES) / "wakapi"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def wakapi_or_skip() -> Path:
    binary = wakapi_binary()
    if binary is None:
        folder = os.environ.get(ORACLES_ENV) or DEFAULT_ORACLES
        pytest.skip(f"no wakapi binary in {folder} (${ORACLES_ENV}); the real-server tests need it")
    return binary


class Wakapi:
    """One Wakapi process; `stop()` and `start()` again keep its port and database."""

    def __init__(self, binary: Path, root: Path) -> None:
        self.binary = binary
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.database = root / "wakapi.db"
        self.port = FakeWakaTime.reserve_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._users = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """What a WakaTime client is configured with (`api_url = …/api`)."""
        return f"{self.base_url}/api"

    def environment(self) -> dict[str, str]:
        return {
            "HOME": str(self.root),
            "PATH": "/usr/bin:/bin",
            "TZ": "UTC",
            "ENVIRONMENT": "prod",
            "WAKAPI_DB_TYPE": "sqlite3",
            "WAKAPI_DB_NAME": str(self.database),
            "WAKAPI_LISTEN_IPV4": "127.0.0.1",
            "WAKAPI_LISTEN_IPV6": "-",
            "WAKAPI_PORT": str(self.port),
            "WAKAPI_PUBLIC_URL": self.base_url,
            "WAKAPI_PASSWORD_SALT": "heartbeat-agent-tests",
            "WAKAPI_INSECURE_COOKIES": "true",
            "WAKAPI_HEARTBEAT_MAX_AGE": f"{MAX_AGE_HOURS}h",
            "WAKAPI_SIGNUP_MAX_RATE": "1000/1m",
            "WAKAPI_LOGIN_MAX_RATE": "1000/1m",
            "WAKAPI_WARM_CACHES": "false",
            "WAKAPI_LEADERBOARD_ENABLED": "false",
            "WAKAPI_MAIL_ENABLED": "false",
            "WAKAPI_IMPORT_ENABLED": "false",
            "WAKAPI_QUICK_START": "true",
        }

    def start(self) -> Wakapi:
        log = (self.root / "wakapi.log").open("ab")
        self.proc = subprocess.Popen(
            [str(self.binary)],
            cwd=self.root,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.root / "wakapi.log").read_text(errors="replace")[-3000:]
                self.stop()
                raise AssertionError(f"wakapi did not come up on {self.base_url}:\n{tail}")
            time.sleep(0.05)  # no event to wait on: Wakapi says nothing when it listens
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/api/health", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def signup(self, username: str | None = None) -> str:
        """A new user (timezone UTC) signed up through the web form; its API key."""
        self._users += 1
        username = username or f"user{self._users}"
        form = {
            "username": username,
            "email": "",  # an address would make Wakapi look up its MX record
            "password": "correct horse battery",
            "password_repeat": "correct horse battery",
            "location": "UTC",
        }
        status, _, _ = self.request("POST", "/signup", form=form)
        assert status == 302, f"signup answered {status}"
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as db:
            row = db.execute("SELECT api_key FROM users WHERE id = ?", (username,)).fetchone()
        assert row and row[0], f"no api key stored for {username}"
        return str(row[0])

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request without following redirects: (status, headers, body)."""
        data = None
        all_headers = dict(headers or {})
        if form is not None:
            data = urlencode(form).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        if key is not None:
            all_headers["Authorization"] = "Basic " + base64.b64encode(key.encode()).decode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=all_headers
        )
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=10) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def get_json(self, path: str, key: str, **query: str) -> Any:
        status, _, body = self.request("GET", f"{path}?{urlencode(query)}", key=key)
        assert status == 200, f"GET {path} answered {status}: {body[:300]!r}"
        return json.loads(body)

    def summary(self, key: str, day: str, **filters: str) -> dict[str, Any]:
        """One day's summary from Wakapi's WakaTime-compatible route (computed live, uncached)."""
        answer = self.get_json(
            "/api/compat/wakatime/v1/users/current/summaries", key, start=day, end=day, **filters
        )
        [summary] = answer["data"]
        return summary

    def heartbeats(self, key: str, day: str) -> list[dict[str, Any]]:
        """What Wakapi stored for one day, through its WakaTime-compatible route."""
        answer = self.get_json("/api/compat/wakatime/v1/users/current/heartbeats", key, date=day)
        return list(answer["data"])

    def wait_for(self, key: str, day: str, count: int, timeout: float = 20.0) -> None:
        """Until Wakapi has at least `count` heartbeats of the user on that day."""
        deadline = time.monotonic() + timeout
        while (found := len(self.heartbeats(key, day))) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"Wakapi has {found} of {count} heartbeats on {day}")
            time.sleep(0.1)  # Wakapi cannot tell us: ask again


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def seconds_by_name(summary: dict[str, Any], kind: str) -> dict[str, float]:
    """A summary's list (`projects`, `languages`, …) as {name: total seconds}."""
    return {item["name"]: item["total_seconds"] for item in summary.get(kind) or []}
