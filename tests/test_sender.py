"""The sender against the real fake server: per-item results of every flavor, fallback,
splitting refused batches, backoff and pauses. One step at a time, no sleeping."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from wakaserver import FakeWakaTime

from agent.delivery.sender import (
    Backoff,
    DeliveryLoop,
    Endpoint,
    Sender,
    Step,
    basic_authorization,
    read_bulk_answer,
    retry_after_seconds,
)
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.store import DELIVERED, QUEUED, HeartbeatStore
from agent.pipeline.useragent import full_user_agent

NOW = time.time()
KEY = "waka_test_key"
SERIAL = itertools.count()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HeartbeatStore]:
    s = HeartbeatStore(tmp_path / "hb.sqlite3")
    yield s
    s.close()


def make_sender(store: HeartbeatStore, server: FakeWakaTime, key: str | None = KEY) -> Sender:
    store.destination_id("default", server.url)
    return Sender(
        store,
        Endpoint("default", server.url, lambda: basic_authorization(key) if key else None),
        httpx.Client(timeout=5),
        "test-host",
        backoff=Backoff(rng=lambda: 1.0),
    )


def queue(
    store: HeartbeatStore, count: int, age: float = 0.0, plugin: str | None = None
) -> list[int]:
    return store.add(
        [
            (
                Heartbeat(
                    entity=f"/src/f{next(SERIAL)}.py",  # distinct: a repeat is stored once
                    time=NOW - age + i,
                    language="Python",
                    user_agent=full_user_agent(plugin),
                ),
                ["default"],
            )
            for i in range(count)
        ]
    )


@pytest.mark.parametrize("flavor", ["wakatime", "wakapi", "hakatime", "hackatime"])
def test_every_flavor_delivers_in_batches_of_25(store: HeartbeatStore, flavor: str) -> None:
    with FakeWakaTime(flavor=flavor) as server:
        sender = make_sender(store, server)
        queue(store, 30)
        assert sender.step().delivered == 25
        assert sender.step().delivered == 5
        assert sender.step().step is Step.IDLE
        assert len(server.received) == 30
        assert store.counts().delivered == 30
        assert [len(r.body) for r in server.requests] == [25, 5]


def test_headers_as_wakatime_cli_sends_them(store: HeartbeatStore, waka: FakeWakaTime) -> None:
    sender = make_sender(store, waka)
    queue(store, 1, plugin="vim/9.0 vim-wakatime/11.0")
    sender.step()
    [request] = waka.requests
    assert request.path == "/api/v1/users/current/heartbeats.bulk"
    assert request.headers["authorization"] == "Basic d2FrYV90ZXN0X2tleQ=="
    assert request.headers["user-agent"].startswith("wakatime/0.1.0 (")
    assert request.headers["user-agent"].endswith(" vim/9.0 vim-wakatime/11.0")
    assert request.headers["x-machine-name"] == "test-host"
    assert request.headers["timezone"]
    assert request.body[0]["user_agent"] == request.headers["user-agent"]


def test_hackatime_422_items_are_kept_aside_and_the_rest_delivered(store: HeartbeatStore) -> None:
    with FakeWakaTime(flavor="hackatime") as server:
        sender = make_sender(store, server)
        good = queue(store, 2)
        bad = store.add([(Heartbeat(entity="", time=NOW), ["default"])])  # no entity: 422
        result = sender.step()
        assert (result.delivered, result.rejected) == (2, 1)
    [(_, reason, payload)] = store.rejected()
    assert payload["entity"] == "" and reason.startswith("HTTP 422")
    assert store.counts().delivered == len(good) and bad


def test_no_bulk_route_falls_back_to_one_at_a_time(store: HeartbeatStore) -> None:
    with FakeWakaTime(flavor="wakapi", bulk=False) as server:
        sender = make_sender(store, server)
        queue(store, 3)
        assert sender.step().delivered == 3
        assert sender.step().step is Step.IDLE
        paths = [r.path.rsplit("/", 1)[1] for r in server.requests]
        assert paths == ["heartbeats.bulk", "heartbeats", "heartbeats", "heartbeats"]


def test_a_refused_batch_is_split_until_the_old_ones_are_isolated(store: HeartbeatStore) -> None:
    with FakeWakaTime(flavor="wakapi", max_age_days=7) as server:
        sender = make_sender(store, server)
        old = queue(store, 4, age=10 * 86400)
        new = queue(store, 4)
        result = sender.step()
        assert (result.delivered, result.rejected) == (4, 4)
        assert sorted(h["time"] for h in server.received) == [NOW + i for i in range(4)]
        # 8 → refused whole; halves: old 4 refused whole → 2+2 → 1+1+1+1; new 4 accepted.
        assert len(server.requests) <= 2 * len(old + new)
    assert {reason for _, reason, _ in store.rejected()} == {
        next(reason for _, reason, _ in store.rejected())
    }
    assert store.counts().queued == 0


@pytest.mark.parametrize("fault", ["500", "drop", "429"])
def test_failures_back_off_and_keep_the_queue(
    store: HeartbeatStore, waka: FakeWakaTime, fault: str
) -> None:
    sender = make_sender(store, waka)
    queue(store, 2)
    if fault == "500":
        waka.fail_next(2, 500)
    elif fault == "drop":
        waka.drop_next(2)
    else:
        waka.fail_next(2, 429)
    first, second = sender.step(), sender.step()
    assert (first.step, second.step) == (Step.RETRY, Step.RETRY)
    assert (first.delay, second.delay) == (1.0, 2.0)  # exponential; jitter pinned at its top
    assert store.counts().queued == 2
    assert sender.status.last_error
    assert sender.step().delivered == 2
    assert sender.status.last_error is None and sender.backoff.failures == 0


def test_each_failed_attempt_is_counted_on_the_heartbeats_it_left_queued(
    store: HeartbeatStore, waka: FakeWakaTime
) -> None:
    """What `agent queue list` shows as "(N attempts)"."""
    sender = make_sender(store, waka)
    queue(store, 2)
    waka.fail_next(1, 500)
    waka.drop_next(1)
    assert [sender.step().step, sender.step().step] == [Step.RETRY, Step.RETRY]
    assert [row.attempts for row in store.deliveries([QUEUED])] == [2, 2]
    assert sender.step().delivered == 2
    assert [row.attempts for row in store.deliveries([DELIVERED])] == [2, 2]


def test_retry_after_is_honoured(store: HeartbeatStore, waka: FakeWakaTime) -> None:
    sender = make_sender(store, waka)
    queue(store, 1)
    waka.fail_next(1, 429, retry_after=42)
    assert sender.step().delay == 42.0


def test_backoff_schedule_is_exponential_capped_and_jittered() -> None:
    draws = iter([0.0, 1.0, 0.5] + [1.0] * 20)
    backoff = Backoff(base=1.0, cap=60.0, rng=lambda: next(draws))
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays[:3] == [0.5, 2.0, 3.0]  # 1·0.5, 2·1.0, 4·0.75
    assert delays[3:7] == [8.0, 16.0, 32.0, 60.0]
    assert max(delays) == 60.0
    backoff.reset()
    assert backoff.next_delay(retry_after=120.0) == 120.0


def test_retry_after_forms() -> None:
    assert retry_after_seconds("7", 0) == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2037 07:28:00 GMT", 2139722880.0 - 30) == 30.0
    assert retry_after_seconds("soon", 0) is None
    assert retry_after_seconds("99999999", 0) == 3600.0


def test_401_pauses_until_the_key_changes(store: HeartbeatStore, waka: FakeWakaTime) -> None:
    key = {"value": "wrong"}
    store.destination_id("default", waka.url)
    sender = Sender(
        store,
        Endpoint("default", waka.url, lambda: basic_authorization(key["value"])),
        httpx.Client(timeout=5),
        "host",
    )
    queue(store, 3)
    assert sender.step().step is Step.PAUSED
    assert "HTTP 401" in (sender.status.paused or "")
    assert sender.step().step is Step.PAUSED
    assert len(waka.requests) == 1  # the refused key is not tried again
    key["value"] = KEY
    assert sender.step().delivered == 3
    assert sender.status.paused is None


def test_no_key_pauses_without_a_request(store: HeartbeatStore, waka: FakeWakaTime) -> None:
    sender = make_sender(store, waka, key=None)
    queue(store, 1)
    result = sender.step()
    assert result.step is Step.PAUSED
    assert "no API key" in (sender.status.paused or "")
    assert waka.requests == []


def test_the_loop_delivers_when_woken_and_sleeps_when_idle(
    store: HeartbeatStore, waka: FakeWakaTime
) -> None:
    own = HeartbeatStore(store.path)  # the loop's thread gets its own connection
    loop = DeliveryLoop(make_sender(own, waka))
    loop.start()
    try:
        queue(store, 3)
        loop.wake()
        waka.wait_for(3)
        requests = len(waka.requests)
        queue(store, 1)
        loop.wake()
        waka.wait_for(4)
        assert len(waka.requests) == requests + 1
    finally:
        loop.stop()
        own.close()


def test_offered_credentials_end_only_a_pause_for_want_of_them(
    store: HeartbeatStore, waka: FakeWakaTime
) -> None:
    """A plugin's key lifts a "no API key" pause at once; a refusal stands until a flush.
    The loop's thread is not started: each step is taken here."""
    key: dict[str, str | None] = {"value": None}
    store.destination_id("default", waka.url)
    sender = Sender(
        store,
        Endpoint("default", waka.url, lambda: key["value"] and basic_authorization(key["value"])),
        httpx.Client(timeout=5),
        "host",
    )
    loop = DeliveryLoop(sender)
    queue(store, 1)
    assert sender.step().step is Step.PAUSED
    key["value"] = "waka_refused"
    loop.credentials_offered()
    assert sender.status.paused is None  # until the server has its say
    assert sender.step().step is Step.PAUSED
    refused = sender.status.paused
    assert refused is not None and "HTTP 401" in refused
    loop.credentials_offered()
    assert sender.status.paused == refused
    key["value"] = KEY
    loop.flush()
    assert sender.status.paused is None and sender.step().delivered == 1


@pytest.mark.parametrize(
    ("body", "count", "expected"),
    [
        (
            {"responses": [[{"data": {}}, 201], [{"error": "bad"}, 400]]},
            2,
            ["delivered", "rejected"],
        ),
        (
            {"responses": [[None, 202], [None, 500], [None, 429]]},
            3,
            ["delivered", "retry", "retry"],
        ),
        ({"responses": [[None, 201]]}, 2, None),  # wrong length: the request status decides
        ({"responses": [[None, "201"]]}, 1, None),
        ({"data": []}, 1, None),
        ("text", 1, None),
    ],
)
def test_reading_bulk_answers(body: object, count: int, expected: list[str] | None) -> None:
    results = read_bulk_answer(body, count)
    assert (None if results is None else [r.outcome.value for r in results]) == expected


def test_a_pause_names_the_credentials_own_problem(
    store: HeartbeatStore, waka: FakeWakaTime
) -> None:
    store.destination_id("default", waka.url)
    sender = Sender(
        store,
        Endpoint(
            "default",
            waka.url,
            lambda: "Bearer revoked",
            problem=lambda: "the refresh token has expired; run `agent login`",
        ),
        httpx.Client(timeout=5),
        "host",
    )
    queue(store, 1)
    assert sender.step().step is Step.PAUSED
    assert sender.status.paused == "the refresh token has expired; run `agent login`"
