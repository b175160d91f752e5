"""A WakaTime-compatible HTTP server for tests: real sockets, recorded state, injected faults.

Stdlib only, so it also runs as a standalone process for manual runs and benchmarks:
``python tests/wakaserver.py --port 8080 --flavor wakapi``.

The answers follow what the real servers do (DESIGN.md §6): WakaTime answers the bulk route 202,
Wakapi 201 and silently drops duplicates, Hakatime 202, Hackatime 201 with 422 for a bad item.
Wakapi's shapes were recorded from Wakapi 2.17.6 (tests/test_wakaserver_vs_wakapi.py compares
this fake with the real server when it is installed): each item answers
``{"data": null, "error": null}`` (201) or ``{"data": null, "error": "invalid heartbeat object"}``
(400: no time, older than its maximum age, more than an hour ahead); the single route answers
like the bulk one; a request refused whole gets a text/plain body: 401 ``401 unauthorized``,
400 ``no valid heartbeat object given`` when no item is valid (an empty list too), 400 with the
JSON decoder's words when an item is not a heartbeat object. Only ``time`` is required. (Real
Wakapi keeps heartbeats up to 7 days old by default: pass ``max_age_days=7``.) Its read routes
differ more than this fake shows, for every flavor alike: under the ``…/api`` URL plugins use,
Wakapi serves ``users/current/statusbar/today`` but not ``summaries``, ``durations``,
``projects`` or ``users/current`` (404 ``404 page not found``); summaries and heartbeats are
under ``/api/compat/wakatime/v1/users/current/``, with names capitalized its way ("Typescript",
"Vscode").
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import secrets
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

log = logging.getLogger("wakaserver")

Flavor = Literal["wakatime", "wakapi", "hakatime", "hackatime"]
API_PREFIX = "/api/v1/"
HOST = "127.0.0.1"
# WakaTime's default keystroke timeout: heartbeats closer than this join into one duration.
JOIN_GAP_SECONDS = 15 * 60
REQUIRED_FIELDS = ("entity", "time", "type")
# Fields that make two heartbeats the same one for Wakapi's duplicate check.
DUPLICATE_KEY_FIELDS = (
    "entity",
    "type",
    "category",
    "time",
    "project",
    "branch",
    "language",
    "is_write",
    "user_agent",
)
STATS_RANGE_DAYS = {
    "last_7_days": 7,
    "last_30_days": 30,
    "last_6_months": 183,
    "last_year": 365,
}
EDITOR_NAMES = {
    "vim": "Vim",
    "neovim": "Neovim",
    "vscode": "VS Code",
    "emacs": "Emacs",
    "sublime": "Sublime Text",
    "jetbrains": "JetBrains",
    "zed": "Zed",
}
OS_NAMES = {"linux": "Linux", "darwin": "Mac", "windows": "Windows"}


@dataclass(frozen=True)
class FlavorRules:
    """How one server product answers heartbeat posts."""

    bulk_status: int
    single_status: int
    invalid_item_status: int
    drops_duplicates: bool = False
    rails_errors: bool = False
    wakapi_shapes: bool = False  # Wakapi's bodies and rules (module docstring)


FLAVORS: dict[str, FlavorRules] = {
    "wakatime": FlavorRules(bulk_status=202, single_status=201, invalid_item_status=400),
    "wakapi": FlavorRules(
        bulk_status=201,
        single_status=201,
        invalid_item_status=400,
        drops_duplicates=True,
        wakapi_shapes=True,
    ),
    "hakatime": FlavorRules(bulk_status=202, single_status=202, invalid_item_status=400),
    "hackatime": FlavorRules(
        bulk_status=201, single_status=201, invalid_item_status=422, rails_errors=True
    ),
}


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, applied to one request instead of (or before) its answer."""

    kind: Literal["fail", "drop", "delay", "raw", "trickle"]
    status: int = 500
    retry_after: float | str | None = None
    body: Any = None
    seconds: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def fail(
        cls, status: int = 500, retry_after: float | str | None = None, body: Any = None
    ) -> Fault:
        return cls("fail", status=status, retry_after=retry_after, body=body)

    @classmethod
    def drop(cls) -> Fault:
        return cls("drop")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        return cls("delay", seconds=seconds)

    @classmethod
    def raw(cls, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Fault:
        """Answer with these bytes as they are (an HTML page, garbage), not the route's."""
        return cls("raw", status=status, body=body, headers=tuple((headers or {}).items()))

    @classmethod
    def trickle(cls, seconds: float) -> Fault:
        """Answer normally, but one byte every `seconds`, status line included."""
        return cls("trickle", seconds=seconds)


FaultPlan = Callable[[int], Fault | None]
RouteHandler = Callable[["RecordedRequest"], "Reply"]


@dataclass
class RecordedRequest:
    """One request as the server saw it, recorded on arrival.

    status is None until answered, and stays None when the connection was dropped instead.
    client_port tells connections apart: equal ports mean a reused keep-alive connection.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw_body: bytes
    client_port: int
    status: int | None = None
    dropped: bool = False

    @property
    def finished(self) -> bool:
        return self.status is not None or self.dropped


@dataclass
class Reply:
    status: int
    body: Any = None  # sent as JSON
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as the body instead of `body` as JSON
    trickle: float = 0.0  # seconds between bytes of the whole answer


@dataclass
class StoredHeartbeat:
    heartbeat: dict[str, Any]
    id: str
    user_agent: str
    machine: str
    received_at: float


class BadRequest(Exception):
    """Raised inside a route to answer 400 with the message."""


@dataclass(frozen=True)
class OAuthGrant:
    """What an authorization code or refresh token stands for."""

    redirect_uri: str
    scope: str


class FakeWakaTime:
    """A WakaTime-compatible server on 127.0.0.1 that records what it receives.

    Faults (``fail_next``, ``drop_next``, ``delay_next``, then ``fault_plan``) apply to every
    request in arrival order, OAuth included; the plan gets the 0-based request index.
    """

    def __init__(
        self,
        flavor: Flavor = "wakatime",
        api_key: str = "waka_test_key",
        port: int = 0,
        bulk: bool = True,
        max_age_days: float | None = None,
        *,
        bulk_missing_status: int = 404,
        ssl_context: ssl.SSLContext | None = None,
        now: Callable[[], float] = time.time,
        timezone: str = "UTC",
        username: str = "tester",
        oauth_client_id: str = "test_client_id",
        oauth_client_secret: str = "test_client_secret",
        expire_in: int = 3600,
    ) -> None:
        if flavor not in FLAVORS:
            raise ValueError(f"unknown flavor {flavor!r}; one of {sorted(FLAVORS)}")
        self.flavor: Flavor = flavor
        self.rules = FLAVORS[flavor]
        self.api_key = api_key
        self.bulk = bulk
        self.bulk_missing_status = bulk_missing_status
        self.max_age_days = max_age_days
        self.ssl_context = ssl_context
        self.now = now
        self.timezone = timezone
        self.username = username
        self.user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"wakaserver:{username}"))
        self.oauth_client_id = oauth_client_id
        self.oauth_client_secret = oauth_client_secret
        self.expire_in = expire_in
        self.fail_refresh = False
        self.stats_pending_once = False
        self.bearer_tokens: set[str] = set()
        self.oauth_authorize_requests: list[dict[str, str]] = []
        self.duplicates = 0
        self._port = port
        self._cond = threading.Condition()
        self._stored: list[StoredHeartbeat] = []
        self._requests: list[RecordedRequest] = []
        self._duplicate_keys: set[str] = set()
        self._faults: list[Fault] = []
        self._plan: FaultPlan | None = None
        self._request_index = 0
        self._token_expiry: dict[str, float] = {}
        self._oauth_codes: dict[str, OAuthGrant] = {}
        self._refresh_tokens: dict[str, OAuthGrant] = {}
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -----

    @staticmethod
    def reserve_port() -> int:
        """A free loopback port, for a server that should start later on a known address."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, 0))
            return int(sock.getsockname()[1])

    def start(self) -> FakeWakaTime:
        with self._cond:
            if self._server is not None:
                return self
            self._stopping.clear()
            server = _Server((HOST, self._port), self)
            self._port = server.server_address[1]
            self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"wakaserver:{self._port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection; the port stays ours for a restart."""
        with self._cond:
            server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.cut_connections()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> FakeWakaTime:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("port unknown until start() (or pass port=reserve_port())")
        return self._port

    @property
    def base_url(self) -> str:
        if self.ssl_context is not None:
            return f"https://localhost:{self.port}"
        return f"http://{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """The api_url a client is configured with."""
        return f"{self.base_url}/api/v1"

    @property
    def oauth_authorize_url(self) -> str:
        return f"{self.base_url}/oauth/authorize"

    @property
    def oauth_token_url(self) -> str:
        return f"{self.base_url}/oauth/token"

    # ----- recorded state -----

    @property
    def received(self) -> list[dict[str, Any]]:
        """Every accepted heartbeat as sent, in arrival order (a copy)."""
        with self._cond:
            return [stored.heartbeat for stored in self._stored]

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request seen, in arrival order, answered or not yet (a copy)."""
        with self._cond:
            return list(self._requests)

    def wait_for(self, n: int, timeout: float = 10) -> list[dict[str, Any]]:
        """Block until at least n heartbeats were accepted; return them all."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._stored) >= n, timeout):
                raise AssertionError(
                    f"waited {timeout}s for {n} heartbeats, got {len(self._stored)}; "
                    f"{self._describe_requests()}"
                )
            return [stored.heartbeat for stored in self._stored]

    def wait_for_requests(self, n: int, timeout: float = 10) -> list[RecordedRequest]:
        """Block until at least n requests were answered or dropped; return all seen."""

        def finished() -> bool:
            return sum(1 for record in self._requests if record.finished) >= n

        with self._cond:
            if not self._cond.wait_for(finished, timeout):
                raise AssertionError(
                    f"waited {timeout}s for {n} requests; {self._describe_requests()}"
                )
            return list(self._requests)

    def _describe_requests(self) -> str:
        tail = ", ".join(
            f"{r.method} {r.path} -> {'dropped' if r.dropped else r.status or 'pending'}"
            for r in self._requests[-8:]
        )
        return f"{len(self._requests)} requests seen (last: {tail or 'none'})"

    def reset(self) -> None:
        """Forget recorded heartbeats, requests and pending faults; keep configuration."""
        with self._cond:
            self._stored.clear()
            self._requests.clear()
            self._duplicate_keys.clear()
            self._faults.clear()
            self._plan = None
            self._request_index = 0
            self.duplicates = 0

    # ----- fault injection -----

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        retry_after: float | str | None = None,
        body: Any = None,
    ) -> None:
        self._queue_faults(count, Fault.fail(status, retry_after, body))

    def drop_next(self, count: int = 1) -> None:
        """Close the connection without answering the next count requests."""
        self._queue_faults(count, Fault.drop())

    def delay_next(self, count: int = 1, seconds: float = 1.0) -> None:
        """Answer the next count requests normally, but only after seconds."""
        self._queue_faults(count, Fault.delay(seconds))

    def raw_next(
        self, count: int = 1, status: int = 200, body: bytes = b"", **headers: str
    ) -> None:
        """Answer the next count requests with these bytes (header names: `_` for `-`)."""
        named = {name.replace("_", "-"): value for name, value in headers.items()}
        self._queue_faults(count, Fault.raw(status, body, named))

    def trickle_next(self, count: int = 1, seconds: float = 1.0) -> None:
        """Answer the next count requests one byte every `seconds`."""
        self._queue_faults(count, Fault.trickle(seconds))

    def fault_plan(self, plan: FaultPlan | None) -> None:
        """Decide a fault per request index once the queued faults are used up (None: none)."""
        with self._cond:
            self._plan = plan

    def _queue_faults(self, count: int, fault: Fault) -> None:
        with self._cond:
            self._faults.extend([fault] * count)

    def _next_fault(self) -> Fault | None:
        with self._cond:
            index = self._request_index
            self._request_index += 1
            if self._faults:
                return self._faults.pop(0)
            # Asked under the lock, so a stateful plan (a seeded random) sees requests in order.
            return self._plan(index) if self._plan is not None else None

    # ----- OAuth knobs -----

    def revoke(self, token: str) -> None:
        """Invalidate an access or refresh token."""
        with self._cond:
            self.bearer_tokens.discard(token)
            self._token_expiry.pop(token, None)
            self._refresh_tokens.pop(token, None)

    # ----- request handling (called from handler threads) -----

    def handle(self, record: RecordedRequest) -> Reply | None:
        """Answer one request; None means drop the connection without an answer."""
        with self._cond:
            # Recorded before any heartbeat of it is stored: wait_for() then sees its request.
            self._requests.append(record)
        fault = self._next_fault()
        reply: Reply | None
        if fault is not None and fault.kind == "drop":
            reply = None
        elif fault is not None and fault.kind == "fail":
            reply = _fault_reply(fault)
        elif fault is not None and fault.kind == "raw":
            reply = Reply(fault.status, headers=dict(fault.headers), raw=fault.body)
        elif fault is not None and fault.kind == "trickle":
            reply = self._route(record)
            reply.trickle = fault.seconds
        elif fault is not None and self._stopping.wait(fault.seconds):
            reply = None  # stopped while holding the answer back
        else:
            reply = self._route(record)
        with self._cond:
            if reply is None:
                record.dropped = True
            else:
                record.status = reply.status
            self._cond.notify_all()
        return reply

    def _route(self, request: RecordedRequest) -> Reply:
        if request.path.startswith("/oauth/"):
            return self._route_oauth(request)
        if not request.path.startswith(API_PREFIX):
            return _error(404, "Not found.")
        parts = request.path[len(API_PREFIX) :].strip("/").split("/")
        if len(parts) < 2 or parts[0] != "users" or parts[1] not in ("current", self.username):
            return _error(404, "Not found.")
        route = _route_key("/".join(parts[2:]))
        if route == "heartbeats.bulk" and not self.bulk:
            return _error(self.bulk_missing_status, HTTPStatus(self.bulk_missing_status).phrase)
        methods = self._api_routes().get(route)
        if methods is None:
            return _error(404, "Not found.")
        handler = methods.get(request.method)
        if handler is None:
            return Reply(405, {"error": "Method not allowed."}, {"Allow": ", ".join(methods)})
        if not self._authorized(request):
            return self._refusal(401, "Unauthorized.", "401 unauthorized")
        if request.method == "POST" and request.body is None:
            return self._refusal(400, "Invalid JSON body.", "unexpected end of JSON input")
        try:
            return handler(request)
        except BadRequest as exc:
            return _error(400, str(exc))

    def _api_routes(self) -> dict[str, dict[str, RouteHandler]]:
        """Routes under /api/v1/users/current/, each with its handler per method."""
        return {
            "": {"GET": self._get_user},
            "heartbeats.bulk": {"POST": self._post_bulk},
            "heartbeats": {"GET": self._get_heartbeats, "POST": self._post_single},
            "status_bar/today": {"GET": self._get_status_bar},
            "summaries": {"GET": self._get_summaries},
            "durations": {"GET": self._get_durations},
            "stats/*": {"GET": self._get_stats},
            "projects": {"GET": self._get_projects},
            "user_agents": {"GET": self._get_user_agents},
        }

    def _authorized(self, request: RecordedRequest) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credential.strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return False
            return decoded in (self.api_key, f"{self.api_key}:")
        if scheme.lower() == "bearer":
            token = credential.strip()
            with self._cond:
                expiry = self._token_expiry.get(token)
                return token in self.bearer_tokens and (expiry is None or self.now() < expiry)
        return request.query.get("api_key") == self.api_key

    # ----- heartbeat writes -----

    def _refusal(self, status: int, message: str, wakapi_text: str) -> Reply:
        """A request refused whole: Wakapi says it in plain text."""
        if self.rules.wakapi_shapes:
            return _plain(status, wakapi_text)
        return _error(status, message)

    def _post_bulk(self, request: RecordedRequest) -> Reply:
        if self.rules.wakapi_shapes:
            return self._post_wakapi(request, self.rules.bulk_status)
        if not isinstance(request.body, list):
            raise BadRequest("Expected a JSON array of heartbeats.")
        results = [self._accept(item, request) for item in request.body]
        if results and all(reason == "too old" for _, _, reason in results):
            return _error(400, "All heartbeats are older than the maximum heartbeat age.")
        return Reply(
            self.rules.bulk_status,
            {"responses": [[answer, status] for answer, status, _ in results]},
        )

    def _post_wakapi(self, request: RecordedRequest, status: int) -> Reply:
        """Wakapi's one handler for both routes: an object or a list of them."""
        items = request.body if isinstance(request.body, list) else [request.body]
        if not all(item is None or _is_wakapi_heartbeat(item) for item in items):
            return _plain(
                400, "json: cannot unmarshal array into Go value of type models.Heartbeat"
            )
        results = [self._accept(item, request) for item in items]
        if all(item_status >= 400 for _, item_status, _ in results):
            return _plain(400, "no valid heartbeat object given")
        return Reply(status, {"responses": [[answer, code] for answer, code, _ in results]})

    def _post_single(self, request: RecordedRequest) -> Reply:
        if self.rules.wakapi_shapes:
            return self._post_wakapi(request, self.rules.single_status)
        if not isinstance(request.body, dict):
            raise BadRequest("Expected a JSON object.")
        answer, status, _ = self._accept(request.body, request)
        if status >= 400:
            return Reply(status, answer)
        return Reply(self.rules.single_status, answer)

    def _accept(self, item: Any, request: RecordedRequest) -> tuple[dict[str, Any], int, str]:
        """Validate and record one heartbeat: (answer, per-item status, refusal reason)."""
        required = ("time",) if self.rules.wakapi_shapes else REQUIRED_FIELDS
        missing = [name for name in required if not isinstance(item, dict) or not item.get(name)]
        heartbeat_time = _as_number(item.get("time")) if not missing else None
        if self.rules.wakapi_shapes and not self._timely(heartbeat_time):
            return {"data": None, "error": "invalid heartbeat object"}, 400, "invalid"
        if missing or heartbeat_time is None:
            fields = missing or ["time"]
            if self.rules.rails_errors:
                return {"errors": {name: ["is invalid"] for name in fields}}, 422, "invalid"
            return {"error": f"Invalid heartbeat: {', '.join(fields)}."}, 400, "invalid"
        if (
            self.max_age_days is not None
            and heartbeat_time < self.now() - self.max_age_days * 86400
        ):
            return {"error": "Heartbeat is older than the maximum heartbeat age."}, 400, "too old"
        stored = StoredHeartbeat(
            heartbeat=item,
            id=str(uuid.uuid4()),
            user_agent=str(item.get("user_agent") or request.headers.get("user-agent", "")),
            machine=str(item.get("machine") or request.headers.get("x-machine-name", "")),
            received_at=self.now(),
        )
        key = json.dumps([item.get(name) for name in DUPLICATE_KEY_FIELDS], default=str)
        with self._cond:
            if self.rules.drops_duplicates and key in self._duplicate_keys:
                self.duplicates += 1  # answered as accepted, never stored twice
            else:
                self._duplicate_keys.add(key)
                self._stored.append(stored)
                self._cond.notify_all()
        if self.rules.wakapi_shapes:
            return {"data": None, "error": None}, 201, ""
        return {"data": _heartbeat_json(stored)}, 201, ""

    def _timely(self, heartbeat_time: float | None) -> bool:
        """Wakapi's rule: a time, within its maximum age, at most an hour ahead."""
        if not heartbeat_time:
            return False
        now = self.now()
        too_old = self.max_age_days is not None and now - heartbeat_time > self.max_age_days * 86400
        return not too_old and heartbeat_time - now < 3600

    # ----- reads -----

    def _snapshot(self) -> list[StoredHeartbeat]:
        with self._cond:
            return list(self._stored)

    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _today(self) -> date:
        return datetime.fromtimestamp(self.now(), self._zone()).date()

    def _day_bounds(self, day: date) -> tuple[float, float]:
        """Start of the day and of the next one, in the user's timezone (DST-safe)."""
        midnight = datetime.min.time()
        start = datetime.combine(day, midnight, self._zone())
        end = datetime.combine(day + timedelta(days=1), midnight, self._zone())
        return start.timestamp(), end.timestamp()

    def _on_days(
        self, first: date, last: date, project: str | None = None
    ) -> list[StoredHeartbeat]:
        start, _ = self._day_bounds(first)
        _, end = self._day_bounds(last)
        return [
            stored
            for stored in self._snapshot()
            if start <= _time_of(stored) < end and (project is None or _project(stored) == project)
        ]

    def _range_json(self, first: date, last: date, text: str) -> dict[str, Any]:
        start, _ = self._day_bounds(first)
        _, end = self._day_bounds(last)
        result = {
            "start": _iso(start),
            "end": _iso(end - 1),
            "text": text,
            "timezone": self.timezone,
        }
        if first == last:
            result["date"] = first.isoformat()
        return result

    def _day_summary(self, day: date, text: str, project: str | None = None) -> dict[str, Any]:
        spans = _spans(self._on_days(day, day, project))
        return {
            "grand_total": _total_json(sum(seconds for _, seconds in spans)),
            **_breakdowns(spans),
            "range": self._range_json(day, day, text),
        }

    def _get_user(self, request: RecordedRequest) -> Reply:
        stored = self._snapshot()
        last = max(stored, key=_time_of, default=None)
        created = _iso(min((_time_of(s) for s in stored), default=self.now()))
        return Reply(
            200,
            {
                "data": {
                    "id": self.user_id,
                    "username": self.username,
                    "display_name": self.username,
                    "full_name": self.username,
                    "email": f"{self.username}@example.invalid",
                    "timezone": self.timezone,
                    "photo": f"https://wakatime.com/photo/{self.user_id}",
                    "plan": "basic",
                    "is_email_confirmed": True,
                    "last_heartbeat_at": _iso(_time_of(last)) if last else None,
                    "last_plugin": last.user_agent if last else None,
                    "last_plugin_name": _editor(last.user_agent) if last else None,
                    "last_project": _project(last) if last else None,
                    "created_at": created,
                    "modified_at": None,
                }
            },
        )

    def _get_status_bar(self, request: RecordedRequest) -> Reply:
        data = self._day_summary(self._today(), "Today")
        data.update(
            cached_at=_iso(self.now()),
            has_team_features=False,
            is_up_to_date=True,
        )
        return Reply(200, {"data": data})

    def _get_summaries(self, request: RecordedRequest) -> Reply:
        first = self._parse_day(request.query, "start")
        last = self._parse_day(request.query, "end")
        if last < first:
            raise BadRequest("end must not be before start.")
        project = request.query.get("project")
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        summaries = [self._day_summary(day, _day_text(day), project) for day in days]
        total = sum(day["grand_total"]["total_seconds"] for day in summaries)
        active_days = sum(1 for day in summaries if day["grand_total"]["total_seconds"] > 0)
        average = total / len(days)
        return Reply(
            200,
            {
                "data": summaries,
                "cumulative_total": {
                    "seconds": total,
                    "text": _human(total),
                    "decimal": _decimal(total),
                    "digital": _digital(total),
                },
                "daily_average": {
                    "holidays": len(days) - active_days,
                    "days_including_holidays": len(days),
                    "days_minus_holidays": active_days,
                    "seconds": average,
                    "text": _human(average),
                },
                "start": summaries[0]["range"]["start"],
                "end": summaries[-1]["range"]["end"],
            },
        )

    def _get_durations(self, request: RecordedRequest) -> Reply:
        day = self._parse_day(request.query, "date")
        slice_by = request.query.get("slice_by", "project")
        blocks: list[dict[str, Any]] = []
        for stored, seconds in _spans(self._on_days(day, day)):
            value = _project(stored) if slice_by == "project" else stored.heartbeat.get(slice_by)
            previous = blocks[-1] if blocks else None
            joined = (
                previous is not None
                and previous[slice_by] == value
                and _time_of(stored) - previous["time"] - previous["duration"] <= JOIN_GAP_SECONDS
            )
            if previous is not None and joined:
                previous["duration"] += seconds
            else:
                blocks.append(
                    {slice_by: value, "time": _time_of(stored), "duration": seconds, "color": None}
                )
        bounds = self._range_json(day, day, _day_text(day))
        return Reply(
            200,
            {
                "data": blocks,
                "start": bounds["start"],
                "end": bounds["end"],
                "timezone": self.timezone,
            },
        )

    def _get_heartbeats(self, request: RecordedRequest) -> Reply:
        day = self._parse_day(request.query, "date")
        bounds = self._range_json(day, day, _day_text(day))
        return Reply(
            200,
            {
                "data": [_heartbeat_json(s) for s in sorted(self._on_days(day, day), key=_time_of)],
                "start": bounds["start"],
                "end": bounds["end"],
                "timezone": self.timezone,
            },
        )

    def _get_stats(self, request: RecordedRequest) -> Reply:
        range_name = request.path.rstrip("/").rsplit("/", 1)[1]
        today = self._today()
        stored = self._snapshot()
        if range_name == "all_time":
            first = min((self._local_day(_time_of(s)) for s in stored), default=today)
        elif range_name in STATS_RANGE_DAYS:
            first = today - timedelta(days=STATS_RANGE_DAYS[range_name] - 1)
        else:
            return _error(404, f"Unknown range {range_name!r}.")
        bounds = self._range_json(first, today, range_name)
        with self._cond:
            pending, self.stats_pending_once = self.stats_pending_once, False
        if pending:
            return Reply(
                202,
                {
                    "data": {
                        "is_up_to_date": False,
                        "status": "pending_update",
                        "percent_calculated": 0,
                        "range": range_name,
                        "start": bounds["start"],
                        "end": bounds["end"],
                        "timezone": self.timezone,
                    }
                },
            )
        spans = _spans(self._on_days(first, today))
        total = sum(seconds for _, seconds in spans)
        days = (today - first).days + 1
        return Reply(
            200,
            {
                "data": {
                    "total_seconds": total,
                    "human_readable_total": _human(total),
                    "daily_average": total / days,
                    "human_readable_daily_average": _human(total / days),
                    **_breakdowns(spans),
                    "range": range_name,
                    "start": bounds["start"],
                    "end": bounds["end"],
                    "days_including_holidays": days,
                    "timezone": self.timezone,
                    "is_up_to_date": True,
                    "percent_calculated": 100,
                    "status": "ok",
                    "user_id": self.user_id,
                    "username": self.username,
                }
            },
        )

    def _get_projects(self, request: RecordedRequest) -> Reply:
        by_name = _group(self._snapshot(), _project)
        data = [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"project:{name}")),
                "name": name,
                "urlencoded_name": quote(name, safe=""),
                "repository": None,
                "badge": None,
                "color": None,
                "has_public_url": False,
                "last_heartbeat_at": _iso(max(_time_of(s) for s in group)),
                "created_at": _iso(min(_time_of(s) for s in group)),
            }
            for name, group in by_name.items()
        ]
        return Reply(200, {"data": data})

    def _get_user_agents(self, request: RecordedRequest) -> Reply:
        by_value = _group(self._snapshot(), lambda s: s.user_agent)
        data = [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"user_agent:{value}")),
                "value": value,
                "editor": _editor(value),
                "version": _plugin_version(value),
                "os": _operating_system(value),
                "is_browser_extension": False,
                "is_desktop_app": False,
                "last_seen_at": _iso(max(s.received_at for s in group)),
                "created_at": _iso(min(s.received_at for s in group)),
            }
            for value, group in by_value.items()
        ]
        return Reply(200, {"data": data})

    def _local_day(self, timestamp: float) -> date:
        return datetime.fromtimestamp(timestamp, self._zone()).date()

    def _parse_day(self, query: dict[str, str], name: str) -> date:
        value = query.get(name, "").lower()
        if value == "today":
            return self._today()
        if value == "yesterday":
            return self._today() - timedelta(days=1)
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise BadRequest(f"Missing or invalid {name} (YYYY-MM-DD).") from None

    # ----- OAuth -----

    def _route_oauth(self, request: RecordedRequest) -> Reply:
        routes = {
            "/oauth/authorize": ("GET", self._oauth_authorize),
            "/oauth/token": ("POST", self._oauth_token),
            "/oauth/revoke": ("POST", self._oauth_revoke),
        }
        if request.path not in routes:
            return _error(404, "Not found.")
        method, handler = routes[request.path]
        if request.method != method:
            return Reply(405, {"error": "Method not allowed."}, {"Allow": method})
        if method == "POST" and not isinstance(request.body, dict):
            return Reply(400, {"error": "invalid_request"})
        return handler(request)

    def _oauth_authorize(self, request: RecordedRequest) -> Reply:
        params = request.query
        with self._cond:
            self.oauth_authorize_requests.append(dict(params))
        redirect_uri = params.get("redirect_uri", "")
        if params.get("client_id") != self.oauth_client_id or not redirect_uri:
            return Reply(400, {"error": "invalid_client"})
        if params.get("response_type") != "code":
            return Reply(400, {"error": "unsupported_response_type"})
        code = secrets.token_urlsafe(16)
        with self._cond:
            self._oauth_codes[code] = OAuthGrant(redirect_uri, params.get("scope", ""))
        answer = {"code": code}
        if "state" in params:
            answer["state"] = params["state"]
        separator = "&" if urlsplit(redirect_uri).query else "?"
        return Reply(302, None, {"Location": f"{redirect_uri}{separator}{urlencode(answer)}"})

    def _oauth_client_ok(self, form: dict[str, str]) -> bool:
        return (
            form.get("client_id") == self.oauth_client_id
            and form.get("client_secret") == self.oauth_client_secret
        )

    def _oauth_token(self, request: RecordedRequest) -> Reply:
        form: dict[str, str] = request.body
        if not self._oauth_client_ok(form):
            return Reply(401, {"error": "invalid_client"})
        grant_type = form.get("grant_type")
        with self._cond:
            if grant_type == "authorization_code":
                grant = self._oauth_codes.pop(form.get("code", ""), None)
                if grant is None or grant.redirect_uri != form.get("redirect_uri"):
                    return Reply(400, {"error": "invalid_grant"})
            elif grant_type == "refresh_token":
                if self.fail_refresh:
                    return Reply(400, {"error": "invalid_grant"})
                grant = self._refresh_tokens.pop(form.get("refresh_token", ""), None)
                if grant is None:
                    return Reply(400, {"error": "invalid_grant"})
            else:
                return Reply(400, {"error": "unsupported_grant_type"})
            access_token = f"waka_tok_{secrets.token_urlsafe(24)}"
            refresh_token = f"waka_ref_{secrets.token_urlsafe(24)}"
            self.bearer_tokens.add(access_token)
            self._token_expiry[access_token] = self.now() + self.expire_in
            self._refresh_tokens[refresh_token] = grant
        return Reply(
            200,
            {
                "access_token": access_token,
                "refresh_token": refresh_token,
                "expires_in": self.expire_in,
                "token_type": "bearer",
                "scope": grant.scope,
                "uid": self.user_id,
            },
        )

    def _oauth_revoke(self, request: RecordedRequest) -> Reply:
        form: dict[str, str] = request.body
        if not self._oauth_client_ok(form):
            return Reply(401, {"error": "invalid_client"})
        self.revoke(form.get("token", ""))
        return Reply(200, {})


# ----- answers and figures -----


def _route_key(route: str) -> str:
    """The routing key of a path under users/current/: stats ranges share one route."""
    if route.startswith("stats/") and route.count("/") == 1:
        return "stats/*"
    return route


def _error(status: int, message: str) -> Reply:
    return Reply(status, {"error": message})


def _plain(status: int, text: str) -> Reply:
    """A text/plain answer, as Wakapi's Go handlers write their refusals."""
    return Reply(status, raw=text.encode(), headers={"Content-Type": "text/plain; charset=utf-8"})


def _is_wakapi_heartbeat(item: Any) -> bool:
    """What Wakapi's JSON decoder takes as a heartbeat: an object whose time, if any, is a
    number (anything else fails the whole request)."""
    return isinstance(item, dict) and (
        item.get("time") is None or _as_number(item["time"]) is not None
    )


def _fault_reply(fault: Fault) -> Reply:
    headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    body = fault.body if fault.body is not None else {"error": f"Injected {fault.status}."}
    return Reply(fault.status, body, headers)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _time_of(stored: StoredHeartbeat) -> float:
    return float(stored.heartbeat["time"])


def _project(stored: StoredHeartbeat) -> str:
    return str(stored.heartbeat.get("project") or "Unknown Project")


def _heartbeat_json(stored: StoredHeartbeat) -> dict[str, Any]:
    return {**stored.heartbeat, "id": stored.id, "created_at": _iso(stored.received_at)}


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(int(timestamp), ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day_text(day: date) -> str:
    suffix = "th" if 11 <= day.day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day.day % 10, "th")
    return f"{day:%a %b} {day.day}{suffix} {day.year}"


def _human(seconds: float) -> str:
    """WakaTime's text: whole hours and minutes, '0 secs' under a minute."""
    hours, minutes = divmod(int(seconds) // 60, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hr{'s' if hours != 1 else ''}")
    if minutes:
        parts.append(f"{minutes} min{'s' if minutes != 1 else ''}")
    return " ".join(parts) or "0 secs"


def _decimal(seconds: float) -> str:
    hours, minutes = divmod(int(seconds) // 60, 60)
    return f"{hours + minutes / 60:.2f}"


def _digital(seconds: float) -> str:
    hours, minutes = divmod(int(seconds) // 60, 60)
    return f"{hours}:{minutes:02d}"


def _total_json(seconds: float) -> dict[str, Any]:
    hours, minutes = divmod(int(seconds) // 60, 60)
    return {
        "decimal": _decimal(seconds),
        "digital": _digital(seconds),
        "hours": hours,
        "minutes": minutes,
        "text": _human(seconds),
        "total_seconds": seconds,
    }


def _item_json(name: str, seconds: float, grand_total: float) -> dict[str, Any]:
    whole = int(seconds)
    return {
        "name": name,
        "total_seconds": seconds,
        "percent": round(100 * seconds / grand_total, 2) if grand_total else 0.0,
        **_total_json(seconds),
        "digital": f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}",
        "seconds": whole % 60,
    }


def _spans(heartbeats: Iterable[StoredHeartbeat]) -> list[tuple[StoredHeartbeat, float]]:
    """Each heartbeat with the seconds it counts for: the gap to the next one, if short enough."""
    ordered = sorted(heartbeats, key=_time_of)
    spans = []
    for index, stored in enumerate(ordered):
        gap = _time_of(ordered[index + 1]) - _time_of(stored) if index + 1 < len(ordered) else 0.0
        spans.append((stored, gap if gap <= JOIN_GAP_SECONDS else 0.0))
    return spans


def _breakdowns(spans: list[tuple[StoredHeartbeat, float]]) -> dict[str, list[dict[str, Any]]]:
    grand_total = sum(seconds for _, seconds in spans)
    dimensions: dict[str, Callable[[StoredHeartbeat], str]] = {
        "categories": lambda s: str(s.heartbeat.get("category") or "coding"),
        "projects": _project,
        "languages": lambda s: str(s.heartbeat.get("language") or "Other"),
        "editors": lambda s: _editor(s.user_agent),
        "operating_systems": lambda s: _operating_system(s.user_agent),
        "machines": lambda s: s.machine or "Unknown Machine",
        "branches": lambda s: str(s.heartbeat.get("branch") or "Unknown"),
    }
    result: dict[str, list[dict[str, Any]]] = {}
    for dimension, name_of in dimensions.items():
        totals: dict[str, float] = {}
        for stored, seconds in spans:
            name = name_of(stored)
            totals[name] = totals.get(name, 0.0) + seconds
        ranked = sorted(totals.items(), key=lambda pair: (-pair[1], pair[0]))
        result[dimension] = [_item_json(name, secs, grand_total) for name, secs in ranked]
    result["dependencies"] = []
    return result


def _group(
    stored: list[StoredHeartbeat], key: Callable[[StoredHeartbeat], str]
) -> dict[str, list[StoredHeartbeat]]:
    groups: dict[str, list[StoredHeartbeat]] = {}
    for item in stored:
        groups.setdefault(key(item), []).append(item)
    return groups


def _plugin_token(user_agent: str) -> tuple[str, str]:
    """The last 'name/version' word of a User-Agent: the plugin."""
    words = user_agent.split()
    name, _, version = (words[-1] if words else "").partition("/")
    return name, version


def _editor(user_agent: str) -> str:
    name = _plugin_token(user_agent)[0].lower().removesuffix("-wakatime")
    return EDITOR_NAMES.get(name, name.capitalize() or "Unknown Editor")


def _plugin_version(user_agent: str) -> str:
    return _plugin_token(user_agent)[1]


def _operating_system(user_agent: str) -> str:
    _, _, rest = user_agent.partition("(")
    platform = rest.split(")", 1)[0].split("-", 1)[0].lower()
    return OS_NAMES.get(platform, platform.capitalize() or "Unknown OS")


# ----- transport -----


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeWakaTime) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        connection = request
        context = self.fake.ssl_context
        if context is not None:
            connection = context.wrap_socket(request, server_side=True)
        with self._connections_lock:
            self._connections.add(connection)
        try:
            self.RequestHandlerClass(connection, client_address, self)
        finally:
            with self._connections_lock:
                self._connections.discard(connection)
            if connection is not request:
                self.shutdown_request(connection)

    def cut_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # The plain-socket shutdown also works on a TLS socket: it cuts the TCP stream.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection, socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One buffered write per answer, sent at once: no Nagle/delayed-ACK stalls on keep-alive.
    wbufsize = -1
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        raw_body = self._read_body()
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        record = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=headers,
            body=_parse_body(raw_body, headers.get("content-type", "")),
            raw_body=raw_body,
            client_port=self.client_address[1],
        )
        reply = self.server.fake.handle(record)
        if reply is None:
            self.close_connection = True
            return
        self._send(reply)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                chunk = self.rfile.read(size)
                self.rfile.readline()
                if size == 0:
                    return b"".join(chunks)
                chunks.append(chunk)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, reply: Reply) -> None:
        if reply.raw is not None:
            payload = reply.raw
        else:
            payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if reply.body is not None and reply.raw is None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if not reply.trickle:
            self.end_headers()
            self.wfile.write(payload)
            return
        self._headers_buffer.append(b"\r\n")
        answer = b"".join(self._headers_buffer) + payload
        self._headers_buffer = []
        for index in range(len(answer)):
            if self.server.fake._stopping.wait(reply.trickle):
                return
            self.wfile.write(answer[index : index + 1])
            self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def _parse_body(raw_body: bytes, content_type: str) -> Any:
    """JSON or form data as Python values; None when the body does not parse."""
    if not raw_body:
        return None
    try:
        text = raw_body.decode()
        if content_type.startswith("application/x-www-form-urlencoded"):
            return dict(parse_qsl(text, keep_blank_values=True))
        return json.loads(text)
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake WakaTime server until Ctrl-C.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--flavor", choices=sorted(FLAVORS), default="wakatime")
    parser.add_argument("--key", default="waka_test_key", help="the accepted API key")
    parser.add_argument("--no-bulk", action="store_true", help="answer 404 on the bulk route")
    parser.add_argument("--max-age-days", type=float, default=None)
    args = parser.parse_args(argv)
    server = FakeWakaTime(
        flavor=args.flavor,
        api_key=args.key,
        port=args.port,
        bulk=not args.no_bulk,
        max_age_days=args.max_age_days,
    )
    with server:
        try:  # Ctrl-C may come as soon as the address is out, so the print is inside
            print(server.url, flush=True)
            threading.Event().wait()
        except KeyboardInterrupt:
            print(f"\n{len(server.received)} heartbeats received", flush=True)


if __name__ == "__main__":
    main()
