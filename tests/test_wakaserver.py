"""The fake WakaTime server behaves like the real ones, over real loopback sockets."""

import base64
import http.client
import random
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trustme
from wakaserver import FakeWakaTime, Fault

# 2025-06-15 12:00:00 UTC: far enough from midnight that "today" holds a few hours of activity.
NOW = 1_749_988_800.0
TODAY = "2025-06-15"
KEY = "waka_test_key"
USER_AGENT = "wakatime/v1.0 (linux-6.1.0-x86_64) Python3.11 vim/9.0 vim-wakatime/11.0"


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()}


def heartbeat(offset: float = 0.0, **fields: object) -> dict[str, object]:
    """A heartbeat offset seconds before NOW."""
    return {
        "entity": "/home/me/code/app/main.py",
        "type": "file",
        "category": "coding",
        "time": NOW - offset,
        "project": "app",
        "language": "Python",
        "is_write": False,
        "user_agent": USER_AGENT,
        **fields,
    }


ServerFactory = Callable[..., FakeWakaTime]


@pytest.fixture
def make_server() -> Iterator[ServerFactory]:
    """Build started servers on the test clock; every one is stopped after the test."""
    servers: list[FakeWakaTime] = []

    def build(**options: Any) -> FakeWakaTime:
        server = FakeWakaTime(now=lambda: NOW, **options).start()
        servers.append(server)
        return server

    yield build
    for server in servers:
        server.stop()


# Built once: httpx loads the CA bundle for every client otherwise, which dominates test time.
SYSTEM_TRUST = ssl.create_default_context()


def client_for(
    server: FakeWakaTime, extra_headers: dict[str, str] | None = None, timeout: float = 5
) -> httpx.Client:
    headers = {**basic(KEY), **(extra_headers or {})}
    return httpx.Client(base_url=server.url, headers=headers, timeout=timeout, verify=SYSTEM_TRUST)


def post_once(url: str, headers: dict[str, str], body: object) -> httpx.Response:
    """One POST on a fresh connection."""
    with httpx.Client(timeout=5, verify=SYSTEM_TRUST) as client:
        return client.post(url, json=body, headers=headers)


BULK_ROUTE = "/users/current/heartbeats.bulk"
SINGLE_ROUTE = "/users/current/heartbeats"


@pytest.mark.parametrize(
    ("flavor", "bulk_status", "single_status"),
    [("wakatime", 202, 201), ("hakatime", 202, 202), ("hackatime", 201, 201)],
)  # Wakapi's answers: tests/test_wakaserver_vs_wakapi.py
def test_each_flavor_answers_bulk_and_single_routes_with_its_own_status(
    make_server: ServerFactory, flavor: str, bulk_status: int, single_status: int
) -> None:
    server = make_server(flavor=flavor)
    sent = [heartbeat(60), heartbeat(30, entity="/home/me/code/app/util.py")]
    with client_for(server) as client:
        bulk = client.post(BULK_ROUTE, json=sent)
        single = client.post(SINGLE_ROUTE, json=heartbeat(0))

    assert bulk.status_code == bulk_status
    responses = bulk.json()["responses"]
    assert [status for _, status in responses] == [201, 201]
    assert [answer["data"]["entity"] for answer, _ in responses] == [hb["entity"] for hb in sent]
    assert all(answer["data"]["id"] for answer, _ in responses)
    assert single.status_code == single_status
    assert single.json()["data"]["time"] == NOW
    assert server.received == [*sent, heartbeat(0)]


def test_heartbeats_are_accepted_under_the_username_too(waka: FakeWakaTime) -> None:
    with client_for(waka) as client:
        answer = client.post(f"/users/{waka.username}/heartbeats.bulk", json=[heartbeat()])
    assert answer.status_code == 202
    assert len(waka.received) == 1


@pytest.mark.parametrize(
    "headers",
    [basic(KEY), basic(KEY + ":"), {"Authorization": "Bearer granted-token"}],
    ids=["basic-key", "basic-key-colon", "bearer"],
)
def test_accepted_credentials(waka: FakeWakaTime, headers: dict[str, str]) -> None:
    waka.bearer_tokens.add("granted-token")
    answer = post_once(waka.url + BULK_ROUTE, headers, [heartbeat()])
    assert answer.status_code == 202


@pytest.mark.parametrize(
    "headers",
    [{}, basic("wrong"), {"Authorization": "Bearer unknown"}, {"Authorization": "Basic %%%"}],
    ids=["missing", "wrong-key", "unknown-bearer", "garbled"],
)
def test_refused_credentials_answer_401_json(waka: FakeWakaTime, headers: dict[str, str]) -> None:
    answer = post_once(waka.url + BULK_ROUTE, headers, [heartbeat()])
    assert answer.status_code == 401
    assert "error" in answer.json()
    assert waka.received == []


def test_requests_are_recorded_with_lowercase_headers_and_parsed_body(waka: FakeWakaTime) -> None:
    with client_for(waka, {"X-Machine-Name": "box"}) as client:
        client.post(BULK_ROUTE, json=[heartbeat()])
    (record,) = waka.requests
    assert (record.method, record.path, record.status) == ("POST", "/api/v1" + BULK_ROUTE, 202)
    assert record.headers["x-machine-name"] == "box"
    assert record.body == [heartbeat()]


def test_one_client_keeps_one_connection_alive(waka: FakeWakaTime) -> None:
    with client_for(waka) as client:
        for offset in range(3):
            assert client.post(BULK_ROUTE, json=[heartbeat(offset)]).status_code == 202
    assert len({record.client_port for record in waka.requests}) == 1


@pytest.mark.parametrize(
    ("flavor", "item_status", "error_key"),
    [("wakatime", 400, "error"), ("hackatime", 422, "errors")],
)
def test_an_invalid_item_is_refused_alone(
    make_server: ServerFactory, flavor: str, item_status: int, error_key: str
) -> None:
    server = make_server(flavor=flavor)
    no_entity = {k: v for k, v in heartbeat().items() if k != "entity"}
    with client_for(server) as client:
        answer = client.post(BULK_ROUTE, json=[no_entity, heartbeat(5), {"time": "soon"}])
    statuses = [status for _, status in answer.json()["responses"]]
    assert statuses == [item_status, 201, item_status]
    assert error_key in answer.json()["responses"][0][0]
    assert server.received == [heartbeat(5)]


def test_invalid_json_unknown_routes_and_wrong_methods_answer_json(waka: FakeWakaTime) -> None:
    with client_for(waka) as client:
        bad_json = client.post(
            BULK_ROUTE, content=b"[{not json", headers={"Content-Type": "application/json"}
        )
        unknown = client.get("/users/current/nothing-here")
        outside = client.get("/elsewhere")
        wrong_method = client.get(BULK_ROUTE)
    assert bad_json.status_code == 400 and "error" in bad_json.json()
    assert unknown.status_code == 404 and "error" in unknown.json()
    assert outside.status_code == 404
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"


def test_wakapi_drops_duplicates_silently(make_server: ServerFactory) -> None:
    server = make_server(flavor="wakapi")
    with client_for(server) as client:
        first = client.post(BULK_ROUTE, json=[heartbeat(), heartbeat()])
        again = client.post(SINGLE_ROUTE, json=heartbeat())
    assert [status for _, status in first.json()["responses"]] == [201, 201]
    assert again.status_code == 201
    assert server.received == [heartbeat()]
    assert server.duplicates == 2


@pytest.mark.parametrize("missing_status", [404, 405])
def test_without_bulk_route_the_single_route_still_works(
    make_server: ServerFactory, missing_status: int
) -> None:
    server = make_server(bulk=False, bulk_missing_status=missing_status)
    with client_for(server) as client:
        bulk = client.post(BULK_ROUTE, json=[heartbeat()])
        single = client.post(SINGLE_ROUTE, json=heartbeat())
    assert bulk.status_code == missing_status
    assert single.status_code == 201
    assert server.received == [heartbeat()]


def test_max_age_refuses_old_items_and_a_wholly_old_batch(make_server: ServerFactory) -> None:
    server = make_server(flavor="wakapi", max_age_days=7)
    eight_days = 8 * 86400
    with client_for(server) as client:
        mixed = client.post(BULK_ROUTE, json=[heartbeat(eight_days), heartbeat(60)])
        all_old = client.post(BULK_ROUTE, json=[heartbeat(eight_days), heartbeat(eight_days + 1)])
    assert mixed.status_code == 201
    assert [status for _, status in mixed.json()["responses"]] == [400, 201]
    assert all_old.status_code == 400
    assert all_old.text == "no valid heartbeat object given"
    assert server.received == [heartbeat(60)]


def test_fail_next_answers_the_given_status_once_then_recovers(waka: FakeWakaTime) -> None:
    waka.fail_next(status=429, retry_after=7)
    waka.fail_next(status=503, body={"error": "maintenance"})
    with client_for(waka) as client:
        limited = client.post(BULK_ROUTE, json=[heartbeat()])
        down = client.post(BULK_ROUTE, json=[heartbeat()])
        fine = client.post(BULK_ROUTE, json=[heartbeat()])
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "7")
    assert (down.status_code, down.json()) == (503, {"error": "maintenance"})
    assert fine.status_code == 202
    assert len(waka.received) == 1
    assert [record.status for record in waka.requests] == [429, 503, 202]


def test_drop_next_closes_the_connection_without_an_answer(waka: FakeWakaTime) -> None:
    waka.drop_next()
    with client_for(waka) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(BULK_ROUTE, json=[heartbeat()])
        assert client.post(BULK_ROUTE, json=[heartbeat()]).status_code == 202
    assert [(record.status, record.dropped) for record in waka.wait_for_requests(2)] == [
        (None, True),
        (202, False),
    ]
    assert len(waka.received) == 1


def test_delay_next_holds_the_answer(waka: FakeWakaTime) -> None:
    waka.delay_next(seconds=30)
    waka.delay_next(seconds=0.01)
    with client_for(waka, timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post(BULK_ROUTE, json=[heartbeat(1)])
        assert client.post(BULK_ROUTE, json=[heartbeat(2)]).status_code == 202
    assert waka.wait_for(1) == [heartbeat(2)]


def test_fault_plan_is_deterministic_with_a_seeded_random(waka: FakeWakaTime) -> None:
    def chaos(seed: int) -> object:
        rng = random.Random(seed)

        def plan(index: int) -> Fault | None:
            roll = rng.random()
            if roll < 0.3:
                return Fault.fail(503)
            if roll < 0.5:
                return Fault.fail(429, retry_after=1)
            return None

        return plan

    def run() -> list[int]:
        waka.reset()
        waka.fault_plan(chaos(seed=42))  # type: ignore[arg-type]
        with client_for(waka) as client:
            return [client.post(BULK_ROUTE, json=[heartbeat()]).status_code for _ in range(20)]

    first, second = run(), run()
    assert first == second
    assert {503, 429, 202} <= set(first)
    assert len(waka.received) == first.count(202)


def test_queued_faults_come_before_the_plan(waka: FakeWakaTime) -> None:
    waka.fault_plan(lambda index: Fault.fail(500) if index == 1 else None)
    waka.fail_next(status=502)
    with client_for(waka) as client:
        statuses = [client.post(BULK_ROUTE, json=[heartbeat()]).status_code for _ in range(3)]
    assert statuses == [502, 500, 202]


def test_stop_and_start_keep_the_port_and_stop_is_idempotent() -> None:
    port = FakeWakaTime.reserve_port()
    server = FakeWakaTime(port=port)
    url = server.url
    with pytest.raises(httpx.ConnectError):
        post_once(url + BULK_ROUTE, basic(KEY), [heartbeat()])
    with server:
        assert post_once(url + BULK_ROUTE, basic(KEY), [heartbeat()]).status_code == 202
    server.stop()
    with pytest.raises(httpx.ConnectError):
        post_once(url + BULK_ROUTE, basic(KEY), [heartbeat()])
    with server:
        assert server.url == url
        assert post_once(url + BULK_ROUTE, basic(KEY), [heartbeat()]).status_code == 202
    assert len(server.received) == 2


def test_stop_closes_open_keep_alive_connections(waka: FakeWakaTime) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", waka.port, timeout=5)
    connection.request("GET", "/api/v1/users/current", headers=basic(KEY))
    assert connection.getresponse().read()
    assert connection.sock is not None  # still open: kept alive
    waka.stop()
    assert connection.sock.recv(1) == b""
    connection.close()


def test_wait_for_returns_once_heartbeats_arrive(waka: FakeWakaTime) -> None:
    def send_later() -> None:
        with client_for(waka) as client:
            for offset in range(3):
                client.post(SINGLE_ROUTE, json=heartbeat(offset))

    sender = threading.Thread(target=send_later)
    sender.start()
    received = waka.wait_for(3)
    assert len(waka.requests) >= 3  # a heartbeat's request is on record before it counts
    sender.join()
    assert [hb["time"] for hb in received] == [NOW, NOW - 1, NOW - 2]
    assert len(waka.wait_for_requests(3)) == 3


def test_wait_for_times_out_with_what_it_saw(waka: FakeWakaTime) -> None:
    post_once(waka.url + "/users/current", {}, None)
    with pytest.raises(
        AssertionError, match=r"for 1 heartbeats, got 0.*POST /api/v1/users/current -> 405"
    ):
        waka.wait_for(1, timeout=0.05)


def test_reset_forgets_recorded_state_and_faults(waka: FakeWakaTime) -> None:
    with client_for(waka) as client:
        client.post(BULK_ROUTE, json=[heartbeat()])
        waka.fail_next(count=5)
        waka.reset()
        assert (waka.received, waka.requests) == ([], [])
        assert client.post(BULK_ROUTE, json=[heartbeat()]).status_code == 202


def activity(total_seconds: int) -> list[dict[str, object]]:
    """Heartbeats ending at NOW whose joined gaps add up to total_seconds."""
    offsets = [*range(total_seconds, 0, -600), 0]
    return [heartbeat(offset) for offset in offsets]


@pytest.mark.parametrize(
    ("total_seconds", "text", "digital", "decimal"),
    [
        (0, "0 secs", "0:00", "0.00"),
        (54, "0 secs", "0:00", "0.00"),
        (60, "1 min", "0:01", "0.02"),
        (3660, "1 hr 1 min", "1:01", "1.02"),
        (7200, "2 hrs", "2:00", "2.00"),
        (11520, "3 hrs 12 mins", "3:12", "3.20"),
    ],
)
def test_status_bar_totals_read_like_wakatime(
    make_server: ServerFactory, total_seconds: int, text: str, digital: str, decimal: str
) -> None:
    server = make_server()
    with client_for(server) as client:
        client.post(BULK_ROUTE, json=activity(total_seconds))
        grand_total = client.get("/users/current/status_bar/today").json()["data"]["grand_total"]
    hours, minutes = divmod(total_seconds // 60, 60)
    assert grand_total == {
        "decimal": decimal,
        "digital": digital,
        "hours": hours,
        "minutes": minutes,
        "text": text,
        "total_seconds": total_seconds,
    }


def test_status_bar_breaks_today_down_and_skips_long_gaps(make_server: ServerFactory) -> None:
    server = make_server()
    sent = [
        heartbeat(3 * 3600, project="old"),  # 3 h ago, then a 2 h gap: counts nothing
        heartbeat(3600, project="app"),
        heartbeat(3000, project="app"),
        heartbeat(2400, project="lib", language="Rust", category="debugging"),
        heartbeat(2100, project="lib", language="Rust", category="debugging"),
        heartbeat(86400, project="yesterday"),
    ]
    with client_for(server) as client:
        client.post(BULK_ROUTE, json=sent)
        data = client.get("/users/current/status_bar/today").json()["data"]

    assert data["grand_total"]["total_seconds"] == 1500
    assert [(p["name"], p["total_seconds"]) for p in data["projects"]] == [
        ("app", 1200),
        ("lib", 300),
        ("old", 0),
    ]
    assert [c["name"] for c in data["categories"]] == ["coding", "debugging"]
    assert data["languages"][0]["name"] == "Python"
    assert data["languages"][0]["percent"] == 80.0
    assert data["editors"][0]["name"] == "Vim"
    assert data["operating_systems"][0]["name"] == "Linux"
    item = data["projects"][0]
    assert {"name", "total_seconds", "percent", "digital", "text", "hours", "minutes"} <= set(item)
    assert item["text"] == "20 mins"
    assert data["range"]["date"] == TODAY
    assert data["range"]["text"] == "Today"


def test_summaries_cover_each_day_of_the_range(make_server: ServerFactory) -> None:
    server = make_server()
    # 2025-06-15 00:01, 00:11 and 00:16 UTC.
    sent = [heartbeat(12 * 3600 - offset) for offset in (60, 660, 960)]
    with client_for(server) as client:
        client.post(BULK_ROUTE, json=sent)
        answer = client.get(
            "/users/current/summaries", params={"start": "yesterday", "end": "today"}
        )
        by_date = client.get("/users/current/summaries", params={"start": TODAY, "end": TODAY})
        missing = client.get("/users/current/summaries", params={"end": "today"})

    body = answer.json()
    assert [day["range"]["date"] for day in body["data"]] == ["2025-06-14", TODAY]
    assert [day["grand_total"]["total_seconds"] for day in body["data"]] == [0, 900]
    assert body["data"][1]["projects"][0]["name"] == "app"
    assert body["cumulative_total"]["seconds"] == 900
    assert body["cumulative_total"]["text"] == "15 mins"
    assert body["daily_average"]["days_minus_holidays"] == 1
    assert (body["start"], body["end"]) == ("2025-06-14T00:00:00Z", "2025-06-15T23:59:59Z")
    assert by_date.json()["data"] == body["data"][1:]
    assert missing.status_code == 400


def test_durations_join_close_heartbeats_of_one_project(make_server: ServerFactory) -> None:
    server = make_server()
    sent = [
        heartbeat(3000),
        heartbeat(2700),
        heartbeat(2400, project="lib"),
        heartbeat(600, project="lib"),  # 30 min after the previous one: a new block
    ]
    with client_for(server) as client:
        client.post(BULK_ROUTE, json=sent)
        data = client.get("/users/current/durations", params={"date": TODAY}).json()["data"]
    assert [(d["project"], d["time"], d["duration"]) for d in data] == [
        ("app", NOW - 3000, 600),
        ("lib", NOW - 2400, 0),
        ("lib", NOW - 600, 0),
    ]


def test_stats_can_answer_still_computing_once(make_server: ServerFactory) -> None:
    server = make_server()
    server.stats_pending_once = True
    with client_for(server) as client:
        client.post(BULK_ROUTE, json=activity(1200))
        pending = client.get("/users/current/stats/last_7_days")
        ready = client.get("/users/current/stats/last_7_days")
        unknown = client.get("/users/current/stats/last_century")
    assert pending.status_code == 202
    assert pending.json()["data"]["is_up_to_date"] is False
    assert ready.status_code == 200
    data = ready.json()["data"]
    assert (data["total_seconds"], data["human_readable_total"]) == (1200, "20 mins")
    assert data["projects"][0]["name"] == "app"
    assert data["range"] == "last_7_days"
    assert unknown.status_code == 404


def test_user_projects_agents_and_heartbeats_reads(make_server: ServerFactory) -> None:
    server = make_server()
    with client_for(server) as client:
        client.post(BULK_ROUTE, json=[heartbeat(60), heartbeat(0, project="lib")])
        user = client.get("/users/current").json()["data"]
        projects = client.get("/users/current/projects").json()["data"]
        agents = client.get("/users/current/user_agents").json()["data"]
        day = client.get("/users/current/heartbeats", params={"date": TODAY}).json()["data"]
    assert (user["username"], user["timezone"], user["last_project"]) == ("tester", "UTC", "lib")
    assert user["id"]
    assert sorted(project["name"] for project in projects) == ["app", "lib"]
    assert [(a["value"], a["editor"], a["os"]) for a in agents] == [(USER_AGENT, "Vim", "Linux")]
    assert [(hb["project"], hb["time"]) for hb in day] == [("app", NOW - 60), ("lib", NOW)]
    assert all(hb["id"] for hb in day)


def authorize(client: httpx.Client, server: FakeWakaTime, **params: str) -> dict[str, list[str]]:
    """Play the browser: follow the authorize step and read the redirect's query."""
    query = {
        "client_id": server.oauth_client_id,
        "response_type": "code",
        "redirect_uri": "http://127.0.0.1:9/callback",
        "scope": "read_stats,write_heartbeats",
        "state": "xyz",
        **params,
    }
    answer = client.get(server.oauth_authorize_url, params=query)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == query["redirect_uri"]
    return parse_qs(location.query)


def test_oauth_code_then_refresh_flow(make_server: ServerFactory) -> None:
    clock = [NOW]
    server = make_server(expire_in=3600)
    server.now = lambda: clock[0]
    redirect_uri = "http://127.0.0.1:9/callback"
    token_form = {"client_id": server.oauth_client_id, "client_secret": server.oauth_client_secret}
    with httpx.Client(timeout=5, verify=SYSTEM_TRUST) as client:
        granted = authorize(client, server)
        assert granted["state"] == ["xyz"]
        assert server.oauth_authorize_requests[0]["scope"] == "read_stats,write_heartbeats"
        code = granted["code"][0]
        exchange = {
            **token_form,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
        }

        tokens = client.post(server.oauth_token_url, data=exchange).json()
        assert tokens["token_type"] == "bearer"
        assert (tokens["expires_in"], tokens["scope"], tokens["uid"]) == (
            3600,
            "read_stats,write_heartbeats",
            server.user_id,
        )
        reused = client.post(server.oauth_token_url, data=exchange)
        assert (reused.status_code, reused.json()) == (400, {"error": "invalid_grant"})

        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (
            client.post(server.url + BULK_ROUTE, json=[heartbeat()], headers=bearer).status_code
            == 202
        )
        clock[0] += 3600
        assert client.get(server.url + "/users/current", headers=bearer).status_code == 401

        refresh = {
            **token_form,
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
        }
        renewed = client.post(server.oauth_token_url, data=refresh).json()
        assert renewed["access_token"] != tokens["access_token"]
        assert client.post(server.oauth_token_url, data=refresh).json() == {
            "error": "invalid_grant"
        }
        renewed_bearer = {"Authorization": f"Bearer {renewed['access_token']}"}
        assert client.get(server.url + "/users/current", headers=renewed_bearer).status_code == 200

        server.revoke(renewed["access_token"])
        assert client.get(server.url + "/users/current", headers=renewed_bearer).status_code == 401

        server.fail_refresh = True
        refused = client.post(
            server.oauth_token_url, data={**refresh, "refresh_token": renewed["refresh_token"]}
        )
        assert (refused.status_code, refused.json()) == (400, {"error": "invalid_grant"})


def test_oauth_refuses_bad_clients_codes_and_redirects(waka: FakeWakaTime) -> None:
    with httpx.Client(timeout=5, verify=SYSTEM_TRUST) as client:
        code = authorize(client, waka)["code"][0]
        wrong_secret = client.post(
            waka.oauth_token_url,
            data={
                "client_id": waka.oauth_client_id,
                "client_secret": "nope",
                "grant_type": "authorization_code",
            },
        )
        wrong_redirect = client.post(
            waka.oauth_token_url,
            data={
                "client_id": waka.oauth_client_id,
                "client_secret": waka.oauth_client_secret,
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": "http://127.0.0.1:9/elsewhere",
            },
        )
        unknown_client = client.get(
            waka.oauth_authorize_url,
            params={"client_id": "other", "response_type": "code", "redirect_uri": "http://x/cb"},
        )
    assert (wrong_secret.status_code, wrong_secret.json()) == (401, {"error": "invalid_client"})
    assert (wrong_redirect.status_code, wrong_redirect.json()) == (400, {"error": "invalid_grant"})
    assert unknown_client.status_code == 400


def test_tls_server_is_reached_over_https_localhost(make_server: ServerFactory) -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost", "127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)

    server = make_server(ssl_context=server_context)
    assert server.url.startswith("https://localhost:")
    with httpx.Client(verify=client_context, headers=basic(KEY), timeout=5) as client:
        assert client.post(server.url + BULK_ROUTE, json=[heartbeat()]).status_code == 202
    with pytest.raises(httpx.ConnectError):
        post_once(server.url + BULK_ROUTE, basic(KEY), [heartbeat()])
    assert server.received == [heartbeat()]


def test_runs_standalone_until_interrupted() -> None:
    port = FakeWakaTime.reserve_port()
    script = Path(__file__).with_name("wakaserver.py")
    with subprocess.Popen(
        [sys.executable, str(script), "--port", str(port), "--flavor", "wakapi"],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url == f"http://127.0.0.1:{port}/api/v1"
            answer = post_once(url + BULK_ROUTE, basic(KEY), [heartbeat()])
            assert answer.status_code == 201
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=5) == 0
            assert "1 heartbeats received" in process.stdout.read()
        finally:
            if process.poll() is None:
                process.kill()
