"""Several destinations at once: `[api_urls]` read as wakatime-cli reads it, `[[destinations]]`,
per-destination delivery state, splitting refused batches, and two real servers where one
is down and then refuses old heartbeats the way Wakapi does."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from agentproc import agent_env
from chaos.support import (
    DAY,
    ask,
    destination,
    identities,
    make_heartbeats,
    send,
    wait_until,
)
from inprocess import InProcessAgent
from wakaserver import FakeWakaTime, Fault

from agent.config import load_settings
from agent.delivery.sender import Backoff, Endpoint, Sender, Step, basic_authorization
from agent.pipeline.destinations import (
    DEFAULT,
    Destination,
    Router,
    api_urls_destinations,
    configured_destinations,
)
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.store import DeliveryCounts, HeartbeatStore

DEFAULT_URL = "https://api.wakatime.com/api/v1"
DEFAULT_KEY = "waka_default"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated HOME with no agent or WakaTime settings from the environment."""
    env = agent_env(tmp_path, api_key=None)
    for key in [*env, "WAKATIME_HOME", "WAKATIME_API_KEY"]:
        if key.startswith(("HEARTBEAT_AGENT_", "WAKATIME_")):
            monkeypatch.delenv(key, raising=False)
    for key in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(key, env[key])
    return Path(env["HOME"])


def default(key: str | None = DEFAULT_KEY, key_command: str | None = None) -> Destination:
    return Destination(DEFAULT, DEFAULT_URL, key, key_command)


def route(destinations: list[Destination], entity: str) -> list[str]:
    return Router(tuple(destinations)).route(Heartbeat(entity=entity, time=1.8e9))


# -- [api_urls] as wakatime-cli reads it ------------------------------------------------


def test_api_urls_lines_add_destinations_and_matching_heartbeats_also_go_to_default() -> None:
    found = api_urls_destinations(
        {"^/home/me/work/": "https://work.example/api/v1|waka_work"}, default()
    )
    [work] = found
    assert (work.name, work.url, work.key) == (
        "api_urls:^/home/me/work/",
        found[0].url,
        "waka_work",
    )
    assert work.url == "https://work.example/api/v1"
    everything = [default(), *found]
    assert route(everything, "/home/me/work/shop/cart.py") == [DEFAULT, work.name]
    assert route(everything, "/home/me/hobby/game.rs") == [DEFAULT]


def test_api_urls_regex_is_a_case_insensitive_search() -> None:
    [work] = api_urls_destinations({"work/": "https://work.example/api|k"}, default())
    assert work.wants("/HOME/ME/WORK/x.py")  # not anchored, any case
    assert not work.wants("/home/me/hobby/x.py")


def test_api_urls_missing_key_or_url_falls_back_to_the_default() -> None:
    found = api_urls_destinations(
        {
            "one": "https://one.example/api",  # no `|key`: the default key
            "two": "https://two.example/api|",  # empty key: the default key too
            "three": "|waka_three",  # empty URL: the default URL with another key
        },
        default(key=None, key_command="pass show waka"),
    )
    by_name = {d.name: d for d in found}
    assert by_name["api_urls:one"].key_command == "pass show waka"
    assert by_name["api_urls:one"].key is None
    assert by_name["api_urls:two"].key_command == "pass show waka"
    assert (by_name["api_urls:three"].url, by_name["api_urls:three"].key) == (
        DEFAULT_URL,
        "waka_three",
    )
    assert by_name["api_urls:three"].key_command is None


def test_api_urls_same_account_is_one_destination() -> None:
    found = api_urls_destinations(
        {
            ".*": f"{DEFAULT_URL}|{DEFAULT_KEY}",  # the default account: nothing added
            "^/a/": "https://b.example/api|kb",
            "^/c/": "https://b.example/api/|kb",  # same account as the line above
            "^/d/": "https://b.example/api|other",  # same server, another account
        },
        default(),
    )
    assert [d.name for d in found] == ["api_urls:^/a/", "api_urls:^/d/"]
    everything = [default(), *found]
    assert route(everything, "/a/x.py") == [DEFAULT, "api_urls:^/a/"]
    assert route(everything, "/c/x.py") == [DEFAULT, "api_urls:^/a/"]
    assert route(everything, "/d/x.py") == [DEFAULT, "api_urls:^/d/"]


def test_api_urls_heartbeats_route_pasted_on_the_url_is_trimmed() -> None:
    [dest] = api_urls_destinations(
        {".*": "https://b.example/api/v1/users/current/heartbeats.bulk|k"}, default()
    )
    assert dest.url == "https://b.example/api/v1"


def test_api_urls_bad_lines_are_skipped_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    found = api_urls_destinations(
        {
            "([unclosed": "https://b.example/api|waka_secret_1",
            "^/bad-url/": "wakapi.example/api|waka_secret_2",
            "^/local/": "http://127.0.0.1:3000/api|waka_secret_3",  # loopback http is fine
        },
        default(),
    )
    assert [d.name for d in found] == ["api_urls:^/local/"]
    skipped = [r.getMessage() for r in caplog.records if "line skipped" in r.getMessage()]
    assert len(skipped) == 2
    assert ".wakatime.cfg: [api_urls] ([unclosed" in skipped[0]
    assert "not an http(s) URL" in skipped[1]
    assert "waka_secret" not in caplog.text


def test_configured_destinations_reads_toml_and_wakatime_cfg(home: Path) -> None:
    (home / ".wakatime.cfg").write_text(
        "[settings]\napi_key = waka_from_cfg\n[api_urls]\n^/work/ = https://b.example/api|kb\n"
    )
    config = home / "config.toml"
    config.write_text(
        '[[destinations]]\nname = "company"\nurl = "https://c.example/api"\nkey = "kc"\n'
        'include = ["^/srv/"]\nexclude = ["secret"]\n'
    )
    found = configured_destinations(load_settings(config))
    assert [d.name for d in found] == [DEFAULT, "company", "api_urls:^/work/"]
    assert found[0].key == "waka_from_cfg"
    assert route(found, "/srv/app.py") == [DEFAULT, "company"]
    assert route(found, "/srv/secret.py") == [DEFAULT]
    assert route(found, "/work/x.py") == [DEFAULT, "api_urls:^/work/"]
    assert "kc" not in repr(found) and "kb" not in repr(found)


# -- the store serves `agent queue list --rejected` and `agent queue retry` -------------


def test_rejected_and_requeue_per_destination(tmp_path: Path) -> None:
    store = HeartbeatStore(tmp_path / "hb.sqlite3")
    ids = store.add([(Heartbeat(entity=f"/f{i}", time=1.8e9 + i), ["a", "b"]) for i in range(3)])
    store.mark_rejected("a", {ids[0]: "HTTP 400: too old", ids[1]: "HTTP 400: too old"})
    store.mark_rejected("b", {ids[2]: "HTTP 422: invalid"})
    assert [(d, r, p["entity"]) for d, r, p in store.rejected("a")] == [
        ("a", "HTTP 400: too old", "/f0"),
        ("a", "HTTP 400: too old", "/f1"),
    ]
    assert [d for d, _, _ in store.rejected()] == ["a", "a", "b"]
    assert store.requeue_rejected("nope") == 0
    assert store.counts("nope") == DeliveryCounts()
    assert "nope" not in store.destinations()  # asking about a name does not create it
    assert store.requeue_rejected("a") == 2
    assert [(c.queued, c.rejected) for c in (store.counts("a"), store.counts("b"))] == [
        (3, 0),
        (2, 1),
    ]
    assert [hb.id for hb in store.pending("a")] == ids  # back in time order
    assert store.requeue_rejected() == 1
    assert store.counts().rejected == 0
    store.close()


# -- splitting a refused batch, over a fake responder -----------------------------------


class Responder:
    """A server in a function: refuses a whole bulk request with 400 when it holds any
    poison heartbeat (as a strict server refuses a batch for one bad item), else accepts
    each item; every request and every accepted heartbeat is counted."""

    def __init__(self, poison: Callable[[dict], bool]) -> None:
        self.poison = poison
        self.requests: list[list[dict]] = []
        self.accepted: list[dict] = []
        self.fail_at: dict[int, int] = {}  # request index -> status to answer instead

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        index = len(self.requests)
        self.requests.append(body)
        if index in self.fail_at:
            return httpx.Response(self.fail_at[index], headers={"Retry-After": "0"})
        if any(self.poison(hb) for hb in body):
            return httpx.Response(400, json={"error": "bad heartbeat in batch"})
        self.accepted += body
        return httpx.Response(202, json={"responses": [[{"data": hb}, 201] for hb in body]})


def responder_sender(tmp_path: Path, responder: Responder) -> tuple[Sender, list[int]]:
    store = HeartbeatStore(tmp_path / "hb.sqlite3")
    store.destination_id("s", "https://s.example/api")
    ids = store.add([(Heartbeat(entity=f"/f{i:02d}", time=1.8e9 + i), ["s"]) for i in range(25)])
    sender = Sender(
        store,
        Endpoint("s", "https://s.example/api", lambda: "Basic eA=="),
        httpx.Client(transport=httpx.MockTransport(responder)),
        "host",
        backoff=Backoff(rng=lambda: 1.0),
    )
    return sender, ids


@pytest.mark.parametrize(
    "poisoned", [[], [0], [24], [12], [3, 17], [0, 1, 2], [5, 6, 7, 8, 20], list(range(25))]
)
def test_split_isolates_refused_heartbeats_in_few_requests(
    tmp_path: Path, poisoned: list[int]
) -> None:
    bad = {f"/f{i:02d}" for i in poisoned}
    responder = Responder(lambda hb: hb["entity"] in bad)
    sender, _ = responder_sender(tmp_path, responder)
    result = sender.step()
    assert (result.step, result.delivered, result.rejected) == (
        Step.PROGRESS,
        25 - len(bad),
        len(bad),
    )
    assert sorted(hb["entity"] for hb in responder.accepted) == sorted(
        {f"/f{i:02d}" for i in range(25)} - bad
    )
    rejected = sender.store.rejected("s")
    assert {p["entity"] for _, _, p in rejected} == bad
    assert all(r == "HTTP 400: bad heartbeat in batch" for _, r, _ in rejected)
    # Each refused request splits in two: at most 1 + 2·(refused)·(depth) requests.
    depth = math.ceil(math.log2(25))
    assert len(responder.requests) <= 1 + 2 * len(bad) * depth
    assert len(responder.requests) <= 2 * 25 - 1
    assert sender.step().step is Step.IDLE
    assert len(responder.accepted) == len({hb["entity"] for hb in responder.accepted})


@pytest.mark.parametrize("status", [500, 429])
def test_a_failure_mid_split_keeps_what_was_settled(tmp_path: Path, status: int) -> None:
    responder = Responder(lambda hb: hb["entity"] == "/f20")
    # 0: all 25 refused; 1: first 12 accepted; 2: last 13 refused; 3: 6 accepted; 4: fails.
    responder.fail_at = {4: status}
    sender, _ = responder_sender(tmp_path, responder)
    first = sender.step()
    assert first.step is Step.RETRY
    assert sender.store.counts("s").delivered == 18  # the two halves accepted before it
    while sender.step().step is not Step.IDLE:
        pass
    assert len(responder.accepted) == 24
    assert identities(responder.accepted).most_common(1)[0][1] == 1  # nothing sent twice
    assert [p["entity"] for _, _, p in sender.store.rejected("s")] == ["/f20"]


def test_wakapi_refuses_old_batches_whole_and_they_never_block_new_ones(tmp_path: Path) -> None:
    with FakeWakaTime(flavor="wakapi", max_age_days=7) as server:
        store = HeartbeatStore(tmp_path / "hb.sqlite3")
        store.destination_id(DEFAULT, server.url)
        now = time.time()
        old = [
            (Heartbeat(entity=f"/old{i}", time=now - 10 * DAY + i), [DEFAULT]) for i in range(60)
        ]
        new = [(Heartbeat(entity=f"/new{i}", time=now - 60 + i), [DEFAULT]) for i in range(10)]
        store.add(old + new)
        sender = Sender(
            store,
            Endpoint(DEFAULT, server.url, lambda: basic_authorization("waka_test_key")),
            httpx.Client(timeout=5),
            "host",
        )
        steps = 0
        while sender.step().step is not Step.IDLE:
            steps += 1
        assert sorted(hb["entity"] for hb in server.received) == sorted(
            f"/new{i}" for i in range(10)
        )
        assert store.counts() == DeliveryCounts(0, 10, 60)
        # Oldest first: two batches of 25 old ones, each refused whole and split down to
        # single heartbeats (2·25-1 requests each); then 10 old + 10 new, answered per item.
        assert len(server.requests) == (2 * 25 - 1) * 2 + 1
        assert steps == 3
        store.close()


# -- per destination: one refusing credentials never holds back another ----------------


def test_one_destination_paused_on_401_while_the_other_delivers(tmp_path: Path) -> None:
    with FakeWakaTime(api_key="key_a") as a, FakeWakaTime(api_key="key_b") as b:
        store = HeartbeatStore(tmp_path / "hb.sqlite3")
        keys = {"a": "key_a", "b": "wrong"}
        senders = {}
        for name, server in (("a", a), ("b", b)):
            store.destination_id(name, server.url)
            senders[name] = Sender(
                HeartbeatStore(tmp_path / "hb.sqlite3"),
                Endpoint(name, server.url, lambda n=name: basic_authorization(keys[n])),
                httpx.Client(timeout=5),
                "host",
            )
        store.add([(Heartbeat(entity=f"/f{i}", time=1.8e9 + i), ["a", "b"]) for i in range(30)])
        assert senders["b"].step().step is Step.PAUSED
        while senders["a"].step().step is not Step.IDLE:
            pass
        assert len(a.received) == 30 and b.received == []
        assert (store.counts("a").delivered, store.counts("b").queued) == (30, 30)
        assert "HTTP 401" in (senders["b"].status.paused or "")
        assert senders["b"].step().step is Step.PAUSED and len(b.requests) == 1
        keys["b"] = "key_b"
        while senders["b"].step().step is not Step.IDLE:
            pass
        assert len(b.received) == 30 and len(a.received) == 30
        assert all(r.headers["authorization"] == basic_authorization("key_a") for r in a.requests)
        store.close()


# -- two real servers and the daemon ------------------------------------------------------


@pytest.fixture
def servers() -> Iterator[tuple[FakeWakaTime, FakeWakaTime, list[bool]]]:
    """A: healthy WakaTime. B: a Wakapi keeping heartbeats for 7 days, answering 503 while
    the flag in the list is set."""
    b_down = [True]
    a = FakeWakaTime(api_key="key_for_a_0123")
    b = FakeWakaTime(flavor="wakapi", max_age_days=7, api_key="key_for_b_4567")
    b.fault_plan(lambda _: Fault.fail(503) if b_down[0] else None)
    with a, b:
        yield a, b, b_down


def backoff_bound(elapsed: float) -> int:
    """Most requests a destination may make while failing for `elapsed` seconds: the first,
    then one per backoff wait (base 1 s, doubling, jitter never below half)."""
    return 2 + math.ceil(math.log2(1 + elapsed / 0.5))


@pytest.mark.parametrize("style", ["api_urls", "destinations"])
def test_two_servers_one_down_then_refusing_old_heartbeats(
    tmp_path: Path,
    servers: tuple[FakeWakaTime, FakeWakaTime, list[bool]],
    style: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b, b_down = servers
    env = agent_env(tmp_path, a.url, "key_for_a_0123")
    if style == "api_urls":
        (tmp_path / "home" / ".wakatime.cfg").write_text(
            f"[settings]\napi_key = not_used_env_wins\n[api_urls]\n.* = {b.url}|key_for_b_4567\n"
        )
        b_name = "api_urls:.*"
    else:
        config = tmp_path / "config.toml"
        config.write_text(
            f'[[destinations]]\nname = "wakapi"\nurl = "{b.url}"\nkey = "key_for_b_4567"\n'
        )
        env["HEARTBEAT_AGENT_CONFIG"] = str(config)
        b_name = "wakapi"
    now = time.time()
    old = make_heartbeats(40, now - 10 * DAY, "/work/old/f")
    new = make_heartbeats(30, now - 3600, "/work/new/f")
    later = make_heartbeats(20, now - 600, "/work/later/f")
    workdir = tmp_path / "idle"
    workdir.mkdir()
    with InProcessAgent(env, workdir, monkeypatch) as agent:
        down_since = time.monotonic()
        assert send(env, old + new) == 70
        a.wait_for(70)
        b.wait_for_requests(2, timeout=15)  # B was tried, failed, and tried again
        assert send(env, later) == 20  # new heartbeats do not cut B's backoff short
        status = wait_until(
            lambda: (s := ask(env, "status")) and destination(s, "default")["queued"] == 0 and s,
            "A's queue to drain",
        )
        b_requests_while_down = len(b.requests)
        down_for = time.monotonic() - down_since
        assert b_requests_while_down <= backoff_bound(down_for)
        b_status = destination(status, b_name)
        assert b_status["queued"] == 90 and b_status["delivered"] == 0
        assert "503" in b_status["last_error"]
        a_status = destination(status, "default")
        assert (a_status["queued"], a_status["delivered"], a_status["last_error"]) == (0, 90, None)

        b_down[0] = False
        assert ask(env, "flush")["ok"]  # a flush ends the backoff wait at once
        b.wait_for(50)
        status = wait_until(
            lambda: (s := ask(env, "status")) and destination(s, b_name)["queued"] == 0 and s,
            "B's queue to drain",
        )
        assert agent.stop() == 0

    sent = identities(old + new + later)
    assert identities(a.received) == sent  # everything exactly once
    assert identities(b.received) == identities(new + later)  # every new one, once
    assert b.duplicates == 0
    b_status = destination(status, b_name)
    assert (b_status["delivered"], b_status["rejected"], b_status["paused"]) == (50, 40, None)
    assert (b_status["url"], b_status["last_error"]) == (b.url, None)
    assert b_status["last_delivery"] and destination(status, "default")["last_delivery"]
    # Splitting the old ones cost at most 2n-1 requests a batch of 25, nothing more.
    assert len(b.requests) - b_requests_while_down <= 2 * (2 * 25 - 1) + 2
    assert all(
        r.headers["authorization"] == basic_authorization("key_for_b_4567") for r in b.requests
    )
    assert all(
        r.headers["authorization"] == basic_authorization("key_for_a_0123") for r in a.requests
    )
    text = json.dumps(status) + agent.log
    for secret in ("key_for_a_0123", "key_for_b_4567"):
        assert secret not in text
        assert basic_authorization(secret).split()[1] not in text
    assert "Traceback" not in agent.log

    reader = HeartbeatStore(Path(env["HEARTBEAT_AGENT_QUEUE__PATH"]))
    rejected = reader.rejected(b_name)
    assert {p["entity"] for _, _, p in rejected} == {hb["entity"] for hb in old}
    # Wakapi's words: refused alone, or in a batch whose other items were taken
    assert {reason for _, reason, _ in rejected} <= {
        "HTTP 400: no valid heartbeat object given",
        "HTTP 400: invalid heartbeat object",
    }
    reader.close()


def test_a_wrong_url_keeps_the_queue_instead_of_rejecting_everything(tmp_path: Path) -> None:
    """No bulk route and no single route either: the URL is wrong, the heartbeats are not."""
    with FakeWakaTime() as server:
        store = HeartbeatStore(tmp_path / "hb.sqlite3")
        store.add([(Heartbeat(entity=f"/f{i}", time=1.8e9 + i), [DEFAULT]) for i in range(30)])
        wrong = f"{server.base_url}/not-the-api"
        sender = Sender(
            store,
            Endpoint(DEFAULT, wrong, lambda: basic_authorization("waka_test_key")),
            httpx.Client(timeout=5),
            "host",
            backoff=Backoff(rng=lambda: 1.0),
        )
        results = [sender.step() for _ in range(3)]
        assert [r.step for r in results] == [Step.RETRY] * 3
        assert [r.delay for r in results] == [1.0, 2.0, 4.0]
        assert "no heartbeats route at" in (sender.status.last_error or "")
        assert store.counts() == DeliveryCounts(queued=30)
        assert len(server.requests) == 6  # bulk, then one single, per attempt
        store.close()


def test_a_refresh_the_server_still_refuses_pauses_instead_of_looping(
    store_path: Path, waka: FakeWakaTime
) -> None:
    """OAuth-style credentials whose refresh always "works" while the server keeps
    answering 401: one refresh, one retry, then a pause; never a hot loop."""
    store = HeartbeatStore(store_path)
    store.add([(Heartbeat(entity="/f", time=1.8e9), [DEFAULT])])
    refreshes: list[int] = []
    sender = Sender(
        store,
        Endpoint(
            DEFAULT,
            waka.url,
            lambda: f"Bearer token-{len(refreshes)}",
            refresh=lambda: refreshes.append(1) is None,
        ),
        httpx.Client(timeout=5),
        "host",
    )
    assert [sender.step().step for _ in range(4)] == [
        Step.PROGRESS,  # refused, refreshed: try the new token at once
        Step.PAUSED,  # refused again: pause
        Step.PAUSED,  # the same token is not tried again
        Step.PAUSED,
    ]
    assert (len(refreshes), len(waka.requests)) == (1, 2)
    store.close()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "hb.sqlite3"
