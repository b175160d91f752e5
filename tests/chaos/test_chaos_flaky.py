"""A flaky server: 20% 5xx, 10% 429 with Retry-After, 5% dropped connections, slow answers,
from a seeded random. Everything is delivered exactly once, and the backoff is respected.

The bulk of it drives a Sender step by step, taking each wait it asks for as a virtual
sleep: no real waiting, yet every wait is checked (Retry-After honoured, exponential after
consecutive failures, never an immediate retry). A DeliveryLoop run with a 10 ms backoff
base and a daemon run with its real backoff and small numbers cover the threads.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from agentproc import agent_env
from inprocess import InProcessAgent
from support import ask, identities, make_heartbeats, send, wait_until
from wakaserver import FakeWakaTime, Fault

from agent.delivery.sender import Backoff, DeliveryLoop, Endpoint, Sender, Step, basic_authorization
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.store import HeartbeatStore

SEED = 7
RETRY_AFTER = 3.0


def flaky_plan(rng: random.Random) -> Callable[[int], Fault | None]:
    """The fault mix of the brief, decided per request by a seeded random."""

    def plan(_: int) -> Fault | None:
        draw = rng.random()
        if draw < 0.20:
            return Fault.fail(rng.choice((500, 502, 503, 504)))
        if draw < 0.30:
            return Fault.fail(429, retry_after=RETRY_AFTER)
        if draw < 0.35:
            return Fault.drop()
        if draw < 0.60:
            return Fault.delay(rng.uniform(0.001, 0.02))  # slow, but inside the timeout
        return None

    return plan


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HeartbeatStore]:
    s = HeartbeatStore(tmp_path / "hb.sqlite3")
    yield s
    s.close()


def fill(store: HeartbeatStore, count: int) -> list[int]:
    now = time.time()
    return store.add(
        [
            (Heartbeat(entity=f"/src/f{i}.py", time=now - count + i), ["default"])
            for i in range(count)
        ]
    )


def flaky_sender(store: HeartbeatStore, server: FakeWakaTime, backoff: Backoff) -> Sender:
    store.destination_id("default", server.url)
    return Sender(
        store,
        Endpoint("default", server.url, lambda: basic_authorization("waka_test_key")),
        httpx.Client(timeout=5),
        "host",
        backoff=backoff,
    )


def test_flaky_server_everything_delivered_once_with_backoff_respected(
    store: HeartbeatStore,
) -> None:
    count = 3000
    fill(store, count)
    with FakeWakaTime() as server:
        server.fault_plan(flaky_plan(random.Random(SEED)))
        backoff = Backoff(base=1.0, cap=60.0, rng=random.Random(SEED).random)
        sender = flaky_sender(store, server, backoff)
        waits: list[tuple[int, float]] = []  # (status of the failed request, wait asked)
        consecutive = 0
        while (result := sender.step()).step is not Step.IDLE:
            if result.step is Step.PROGRESS:
                consecutive = 0
                continue
            assert result.step is Step.RETRY
            consecutive += 1
            last = server.requests[-1]
            status = 0 if last.dropped else last.status
            waits.append((status or 0, result.delay))
            assert result.delay >= 0.5 * min(60.0, 2 ** (consecutive - 1))  # exponential
            if status == 429:
                assert result.delay >= RETRY_AFTER
        requests = server.requests
    faults = Counter(
        "dropped" if r.dropped else "429" if r.status == 429 else "5xx"
        for r in requests
        if r.dropped or (r.status or 0) >= 429
    )
    received = identities(server.received)
    print(
        f"\nCHAOS flaky (stepped): {count} heartbeats, {len(requests)} requests,"
        f" faults {dict(faults)}, {len(received)} delivered,"
        f" {sum(received.values()) - len(received)} duplicates,"
        f" virtual wait {sum(w for _, w in waits):.0f} s"
    )
    assert len(received) == count and max(received.values()) == 1
    assert store.counts().delivered == count
    # No hot loop: one request per batch, plus one per failure, each failure waited out.
    assert len(requests) == count // 25 + len(waits)
    assert sum(faults.values()) == len(waits) and min(w for _, w in waits) > 0
    assert faults["429"] and faults["5xx"] and faults["dropped"]


def test_flaky_server_with_the_delivery_loop_thread(store: HeartbeatStore) -> None:
    count = 600
    fill(store, count)
    with FakeWakaTime() as server:
        rng = random.Random(SEED + 1)
        plan = flaky_plan(rng)
        # Retry-After stays in the mix but short, so the real waits keep the test quick.
        server.fault_plan(
            lambda i: Fault.fail(429, retry_after=0.05) if (f := plan(i)) and f.status == 429 else f
        )
        loop = DeliveryLoop(flaky_sender(store, server, Backoff(base=0.01, cap=0.2)))
        loop.start()
        try:
            loop.wake()
            wait_until(lambda: store.counts().delivered == count, "every heartbeat delivered")
        finally:
            loop.stop()
        requests = server.requests
    failures = sum(1 for r in requests if r.dropped or (r.status or 0) >= 429)
    received = identities(server.received)
    print(f"\nCHAOS flaky (loop): {count} heartbeats, {len(requests)} requests, {failures} faults")
    assert len(received) == count and max(received.values()) == 1
    assert len(requests) == count // 25 + failures


def test_daemon_rides_out_a_flaky_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real daemon with its real backoff (kept to two failures, ~3 s): a 503, a 429
    with Retry-After: 1, then slow answers; 60 heartbeats, all delivered once."""
    faults = [Fault.fail(503), Fault.fail(429, retry_after=1)]
    with FakeWakaTime() as server:
        server.fault_plan(lambda i: faults[i] if i < len(faults) else Fault.delay(0.05))
        env = agent_env(tmp_path, server.url)
        workdir = tmp_path / "work"
        workdir.mkdir()
        heartbeats = make_heartbeats(60, time.time() - 3600)
        with InProcessAgent(env, workdir, monkeypatch) as agent:
            assert send(env, heartbeats) == 60
            server.wait_for(60, timeout=30)
            wait_until(lambda: ask(env, "status")["queued"] == 0, "the queue to drain")
            assert agent.stop() == 0
        assert identities(server.received) == identities(heartbeats)
        assert len(server.requests) == len(faults) + 60 // 25 + 1
        assert agent.log.count("retrying in") == 1  # one warning, not one per failure
