"""Only an answer that proves acceptance marks a heartbeat delivered: a result per heartbeat
on the bulk route, a 201/202 with its `data` on the single route. Redirects are never
followed, and a server that trickles its answer is cut off at the request's deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_sender import make_sender, queue
from wakaserver import FakeWakaTime

from agent.delivery.sender import Step
from agent.delivery.transport import DeadlineClient
from agent.pipeline.store import HeartbeatStore

LOGIN_PAGE = b"<!DOCTYPE html><html><body><form>Sign in</form></body></html>"


@pytest.mark.parametrize(
    ("body", "content_type", "said"),
    [
        (LOGIN_PAGE, "text/html", "an HTML page"),
        (b"", "text/plain", "an empty body"),
        (b"\x00\xffgarbage", "application/octet-stream", "not JSON"),
        (b'{"status":"ok"}', "application/json", "a JSON object (status)"),
        (b'"ok"', "application/json", "a bare JSON value"),
        (b'{"responses":[[{"data":{}},201]]}', "application/json", "a JSON object (responses)"),
    ],
)
def test_a_2xx_without_a_result_per_heartbeat_is_a_failure(
    store: HeartbeatStore, waka: FakeWakaTime, body: bytes, content_type: str, said: str
) -> None:
    sender = make_sender(store, waka)
    queue(store, 10)
    waka.raw_next(1, 200 if b"responses" not in body else 201, body, Content_Type=content_type)
    result = sender.step()
    assert result.step is Step.RETRY and result.delay > 0
    assert store.counts().queued == 10 and store.counts().delivered == 0
    error = sender.status.last_error or ""
    assert said in error and "not counted as delivered" in error
    assert sender.step().delivered == 10  # the real answer next time
    assert len(waka.received) == 10


@pytest.mark.parametrize(("status", "body"), [(200, b'{"data":{}}'), (201, b"{}"), (202, b"")])
def test_the_single_route_needs_201_or_202_with_data(
    store: HeartbeatStore, status: int, body: bytes
) -> None:
    with FakeWakaTime(bulk=False) as server:
        sender = make_sender(store, server)
        queue(store, 1)
        sender.step()  # the bulk route is missing: one at a time from now on
        assert server.requests[-1].path.endswith("/heartbeats")
        queue(store, 1)
        server.raw_next(1, status, body, Content_Type="application/json")
        assert sender.step().step is Step.RETRY
        assert store.counts().queued == 1
        assert "not counted as delivered" in (sender.status.last_error or "")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed_and_names_only_the_host(
    store: HeartbeatStore, waka: FakeWakaTime, status: int
) -> None:
    with FakeWakaTime() as elsewhere:
        store.destination_id("default", waka.url)
        sender = make_sender(store, waka)
        sender.client = DeadlineClient(10.0, timeout=5)
        queue(store, 3)
        location = f"http://user:secret@127.0.0.1:{elsewhere.port}/login?api_key=waka_leak"
        waka.raw_next(1, status, b"", Location=location)
        assert sender.step().step is Step.RETRY
        assert elsewhere.requests == []  # not followed, as GET or otherwise
        assert store.counts().queued == 3
        error = sender.status.last_error or ""
        assert f"HTTP {status}" in error and "redirects to 127.0.0.1" in error
        assert "secret" not in error and "waka_leak" not in error


def test_a_trickling_answer_is_cut_off_at_the_request_deadline(
    store: HeartbeatStore, waka: FakeWakaTime
) -> None:
    sender = make_sender(store, waka)
    # Every read is quick (a byte every 0.2 s, far under the 5 s read timeout), but the whole
    # answer would take a minute: the deadline of 1 s ends it.
    sender.client = DeadlineClient(1.0, timeout=5)
    queue(store, 2)
    waka.trickle_next(1, 0.2)
    started = time.monotonic()
    result = sender.step()
    took = time.monotonic() - started
    assert result.step is Step.RETRY, sender.status
    assert took < 10, took  # far less than the trickle's minute; not a timing claim
    assert "Timeout" in (sender.status.last_error or "")
    assert store.counts().queued == 2
    assert sender.step().delivered == 2  # the next request has a deadline of its own


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HeartbeatStore]:
    s = HeartbeatStore(tmp_path / "hb.sqlite3")
    yield s
    s.close()
