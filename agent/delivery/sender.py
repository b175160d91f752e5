"""Delivery of one destination's queue with httpx: bulk POSTs, per-item results, backoff.

The decisions (what an answer means, how long to wait) are plain functions and a Backoff
that take their clock and randomness; `Sender` does the I/O for one batch at a time and
`DeliveryLoop` runs it in a thread, sleeping only while there is nothing it may do.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from agent.config import KEY_SOURCES
from agent.pipeline.store import HeartbeatStore, QueuedHeartbeat, is_damage
from agent.pipeline.useragent import request_headers
from agent.redact import redact

log = logging.getLogger(__name__)

BULK_ROUTE = "users/current/heartbeats.bulk"
SINGLE_ROUTE = "users/current/heartbeats"
MAX_RETRY_AFTER = 3600.0
NO_KEY = f"no API key configured: {KEY_SOURCES}"
AUTH_RETRY = 900.0  # after a 401/403, try again this rarely until the key changes
SINGLE_ACCEPTED = (201, 202)  # what the single route answers a heartbeat it took


def basic_authorization(api_key: str) -> str:
    """wakatime-cli's header: Basic base64 of the key."""
    return "Basic " + base64.b64encode(api_key.encode()).decode()


def display_url(url: str) -> str:
    """A URL fit for logs and status: without user:password@ or a query (`?api_key=`)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass(frozen=True)
class Endpoint:
    """Where one destination's heartbeats go and how to authenticate there."""

    name: str
    url: str
    # The Authorization header value, or None when no credentials are configured.
    authorization: Callable[[], str | None]
    # Called after a 401: may refresh credentials (OAuth); True if they changed.
    refresh: Callable[[], bool] = lambda: False
    # Why the credentials cannot be used, in the credentials' own words (OAuth), if known.
    problem: Callable[[], str | None] = lambda: None


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    REJECTED = "rejected"
    RETRY = "retry"


@dataclass(frozen=True)
class ItemResult:
    outcome: Outcome
    reason: str | None = None


Settled = tuple[QueuedHeartbeat, ItemResult]


def item_outcome(status: int) -> Outcome:
    """Any 2xx is delivered; 429 and 5xx come back later; any other 4xx is refused."""
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status == 429 or status >= 500 or status < 200:
        return Outcome.RETRY
    return Outcome.REJECTED


def read_bulk_answer(body: Any, count: int) -> list[ItemResult] | None:
    """The per-item results of a bulk answer (`{"responses": [[data, status], ...]}`), or
    None when the body is not of that shape (then the request status decides for all)."""
    responses = body.get("responses") if isinstance(body, dict) else None
    if not isinstance(responses, list) or len(responses) != count:
        return None
    results = []
    for item in responses:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not isinstance(item[1], int)
            or isinstance(item[1], bool)
        ):
            return None
        outcome = item_outcome(item[1])
        reason = None if outcome is Outcome.DELIVERED else _reason(item[1], item[0])
        results.append(ItemResult(outcome, reason))
    return results


def _reason(status: int, body: Any) -> str:
    """The server's words for a refusal, bounded, for the rejected list."""
    detail: Any = body
    if isinstance(body, dict):
        detail = body.get("error") or body.get("errors") or body.get("message") or body
    text = detail if isinstance(detail, str) else repr(detail)
    return f"HTTP {status}: {text[:500]}"


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A Retry-After header (seconds or an HTTP date) as a delay, bounded."""
    if not value:
        return None
    try:
        delay = float(value)
    except ValueError:
        try:
            delay = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError):
            return None
    return min(max(delay, 0.0), MAX_RETRY_AFTER)


@dataclass
class Backoff:
    """Exponential backoff with jitter: base·2^(n-1), capped, scaled by 0.5–1.0 at random."""

    base: float = 1.0
    cap: float = 600.0
    rng: Callable[[], float] = random.random
    failures: int = 0

    def next_delay(self, retry_after: float | None = None) -> float:
        self.failures += 1
        delay = min(self.cap, self.base * 2 ** (self.failures - 1)) * (0.5 + self.rng() / 2)
        return max(delay, retry_after) if retry_after is not None else delay

    def reset(self) -> None:
        self.failures = 0


class Step(enum.Enum):
    """What one delivery step came to, for the loop to decide when to run the next."""

    IDLE = "idle"  # nothing queued
    PROGRESS = "progress"  # a batch was settled; go on at once
    RETRY = "retry"  # the server or network failed; wait `delay`
    PAUSED = "paused"  # credentials missing or refused; wait for new ones


@dataclass
class StepResult:
    step: Step
    delay: float = 0.0
    delivered: int = 0
    rejected: int = 0


@dataclass
class DeliveryStatus:
    """What `agent status` shows for a destination."""

    last_delivery: float | None = None
    last_error: str | None = None
    paused: str | None = None
    retry_at: float | None = None
    delivered: int = 0
    requests: int = 0

    @property
    def trouble(self) -> str | None:
        """`paused` (credentials missing or refused), `retrying` (the server failed), or
        None: what the socket's heartbeat answers tell plugins about delivery."""
        if self.paused:
            return "paused"
        return "retrying" if self.retry_at is not None else None


class _RequestFailed(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _AuthRefused(Exception):
    pass


@dataclass
class Sender:
    """Settles one destination's queue a batch at a time."""

    store: HeartbeatStore
    endpoint: Endpoint
    client: httpx.Client
    hostname: str
    batch_size: int = 25
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.time
    status: DeliveryStatus = field(default_factory=DeliveryStatus)
    bulk: bool = True  # False once the server answered the bulk route 404/405
    # The credentials last refused (401/403): not tried again until they change.
    _refused: str | None = None
    # Credentials were refreshed after a 401 and not yet accepted: a second 401 pauses, so
    # a refresh that "succeeds" with tokens the server still refuses cannot loop hot.
    _refreshed: bool = False
    # The server's results that the database could not take yet (a full disk).
    _unrecorded: list[Settled] = field(default_factory=list)

    def step(self) -> StepResult:
        if self._unrecorded:
            # What the server took is not written down yet: sending it again would make a
            # copy at the server, so nothing goes out until it is.
            if self._record(self._unrecorded) is None:
                return self._recording_failed()
            self._unrecorded = []
        batch = self.store.pending(self.endpoint.name, self.batch_size)
        if not batch:
            return StepResult(Step.IDLE)
        authorization = self.endpoint.authorization()
        if authorization is None:
            return self._pause(NO_KEY)
        if authorization == self._refused and self.status.paused:
            return StepResult(Step.PAUSED, delay=AUTH_RETRY)
        # What the server settled before a failure is recorded all the same: a split batch
        # or a one-at-a-time run that fails halfway must not send its first half twice.
        settled: list[Settled] = []
        try:
            self._settle(batch, authorization, settled)
        except _AuthRefused as exc:
            if self._record(settled) is None:
                return self._recording_failed()
            self._count_attempt(batch, settled)
            if not self._refreshed and self.endpoint.refresh():
                self._refreshed = True
                return StepResult(Step.PROGRESS)
            self._refreshed = False
            self._refused = authorization
            return self._pause(self.endpoint.problem() or str(exc))
        except _RequestFailed as exc:
            if self._record(settled) is None:
                return self._recording_failed()
            self._count_attempt(batch, settled)
            delay = self.backoff.next_delay(exc.retry_after)
            self.status.last_error = str(exc)
            self.status.retry_at = self.clock() + delay
            if self.backoff.failures == 1:
                log.warning("%s: %s; retrying in %.0f s", self.endpoint.name, exc, delay)
            return StepResult(Step.RETRY, delay=delay)
        self._refreshed = False
        if (recorded := self._record(settled)) is None:
            return self._recording_failed()
        delivered, rejected = recorded
        recovered = self.status.paused or self.status.last_error
        self.status.paused = self.status.last_error = self.status.retry_at = None
        if recovered:
            log.info("%s: delivering again", self.endpoint.name)
        if waiting := [r.reason for _, r in settled if r.outcome is Outcome.RETRY]:
            # Some items were answered 429/5xx: the rest is settled, these wait.
            self._count_attempt(batch, settled)
            delay = self.backoff.next_delay()
            self.status.last_error = waiting[0]
            self.status.retry_at = self.clock() + delay
            return StepResult(Step.RETRY, delay, delivered, rejected)
        self.backoff.reset()
        return StepResult(Step.PROGRESS, 0.0, delivered, rejected)

    def _record(self, settled: Sequence[Settled]) -> tuple[int, int] | None:
        """`_store_results`, or None when the database cannot take it (a full disk): the
        results are then held, to be written before anything else is sent."""
        try:
            counts = self._store_results(settled)
        except sqlite3.Error as exc:
            if is_damage(exc):
                raise  # not a passing trouble: the database is set aside and healed
            self._unrecorded = list(settled)
            self.status.last_error = (
                f"cannot record what the server answered ({exc}): {len(settled)} heartbeat(s)"
                f" held and not sent again; {self.store.path} needs space"
            )
            return None
        return counts

    def _recording_failed(self) -> StepResult:
        delay = self.backoff.next_delay()
        self.status.retry_at = self.clock() + delay
        if self.backoff.failures == 1:
            log.error(
                "%s: %s; trying again in %.0f s", self.endpoint.name, self.status.last_error, delay
            )
        return StepResult(Step.RETRY, delay=delay)

    def _store_results(self, settled: Sequence[Settled]) -> tuple[int, int]:
        """Mark what the server decided; (delivered, rejected) counts."""
        delivered = [hb.id for hb, r in settled if r.outcome is Outcome.DELIVERED]
        rejected = {
            hb.id: r.reason or "rejected" for hb, r in settled if r.outcome is Outcome.REJECTED
        }
        if delivered:
            self.store.mark_delivered(self.endpoint.name, delivered)
            self.status.last_delivery = self.clock()
            self.status.delivered += len(delivered)
        if rejected:
            self.store.mark_rejected(self.endpoint.name, rejected)
            log.warning(
                "%s: the server refused %d heartbeat(s), kept aside: %s",
                self.endpoint.name,
                len(rejected),
                next(iter(rejected.values())),
            )
        return len(delivered), len(rejected)

    def _count_attempt(self, batch: Sequence[QueuedHeartbeat], settled: Sequence[Settled]) -> None:
        """One more failed attempt for each heartbeat of the batch still queued (shown by
        `agent queue list`); only a figure, so a database that cannot take it is no error."""
        done = {hb.id for hb, r in settled if r.outcome is not Outcome.RETRY}
        with contextlib.suppress(sqlite3.Error):
            self.store.mark_attempted(
                self.endpoint.name, [hb.id for hb in batch if hb.id not in done]
            )

    def check_credentials(self) -> None:
        """Say at once, not at the first heartbeat, that there is nothing to sign in with;
        heartbeats are recorded all the same."""
        if self.endpoint.authorization() is None:
            self._pause(NO_KEY)

    def forget_refusal(self) -> None:
        """Try the credentials again even if they were refused before."""
        self._refused = None

    def close(self) -> None:
        self.client.close()
        self.store.close()

    def _pause(self, why: str) -> StepResult:
        first = self.status.paused != why
        self.status.paused = why  # before the log line: whoever reads it then sees the state
        if first:
            log.error("%s: delivery paused: %s; heartbeats stay queued", self.endpoint.name, why)
        return StepResult(Step.PAUSED, delay=AUTH_RETRY)

    def _settle(
        self, batch: Sequence[QueuedHeartbeat], authorization: str, settled: list[Settled]
    ) -> None:
        """Append a result for every item to `settled`, splitting a batch the server refuses
        whole until the refused heartbeats are isolated, so nothing valid waits behind them.
        A failed request raises, leaving in `settled` what earlier requests decided."""
        if not self.bulk:
            for hb in batch:
                settled.append((hb, self._send_one(hb, authorization)))
            return
        status, body = self._post(BULK_ROUTE, [hb.payload for hb in batch], authorization, batch)
        if status in (404, 405):
            log.info(
                "%s: no bulk route (HTTP %d); sending one at a time", self.endpoint.name, status
            )
            self.bulk = False
            self._settle(batch, authorization, settled)
            return
        per_item = read_bulk_answer(body, len(batch))
        if per_item is not None:
            settled.extend(zip(batch, per_item, strict=True))
            return
        outcome = item_outcome(status)
        if outcome is Outcome.DELIVERED:
            # A 2xx without a result per heartbeat (a proxy's or login page, `{"status":
            # "ok"}`, one result for ten) is no proof that any of them was taken.
            raise _RequestFailed(self._unproven(status, body, f"{len(batch)} results"))
        if outcome is Outcome.REJECTED and len(batch) > 1:
            half = len(batch) // 2
            self._settle(batch[:half], authorization, settled)
            self._settle(batch[half:], authorization, settled)
            return
        reason = None if outcome is Outcome.DELIVERED else _reason(status, body)
        settled.extend((hb, ItemResult(outcome, reason)) for hb in batch)

    def _send_one(self, hb: QueuedHeartbeat, authorization: str) -> ItemResult:
        status, body = self._post(SINGLE_ROUTE, hb.payload, authorization, [hb])
        if status in (404, 405):
            # Neither route exists: a wrong URL, not a bad heartbeat. Probe bulk again later.
            self.bulk = True
            raise _RequestFailed(
                f"no heartbeats route at {display_url(self.endpoint.url)} (HTTP {status});"
                " check the API URL"
            )
        outcome = item_outcome(status)
        if outcome is Outcome.RETRY:
            raise _RequestFailed(f"HTTP {status} from the server")
        if outcome is Outcome.DELIVERED:
            # Wakapi answers the single route as it answers the bulk one: one item's result
            if (per_item := read_bulk_answer(body, 1)) is not None:
                return per_item[0]
            if status not in SINGLE_ACCEPTED or not isinstance(body, dict) or "data" not in body:
                raise _RequestFailed(self._unproven(status, body, "201 or 202 with its `data`"))
            return ItemResult(outcome)
        return ItemResult(outcome, _reason(status, body))

    def _unproven(self, status: int, body: Any, expected: str) -> str:
        """Why an answer that claims success does not prove delivery (for last_error)."""
        return (
            f"HTTP {status} from {display_url(self.endpoint.url)} with {_kind_of(body)},"
            f" not {expected}: not counted as delivered; is [api] url the server's API"
            " (a proxy or a login page answers like this)?"
        )

    def _post(
        self, route: str, payload: Any, authorization: str, batch: Sequence[QueuedHeartbeat]
    ) -> tuple[int, Any]:
        headers = request_headers(authorization, self.hostname, batch[0].payload.get("user_agent"))
        self.status.requests += 1
        try:
            response = self.client.post(
                f"{self.endpoint.url}/{route}", json=payload, headers=headers
            )
        except httpx.HTTPError as exc:
            raise _RequestFailed(
                f"cannot reach {display_url(self.endpoint.url)}: {_describe(exc)}"
            ) from None
        if response.is_redirect:
            # Never followed: a redirect may lead off to plain http or to a login page.
            target = urlsplit(response.headers.get("location", "")).hostname or "nowhere"
            raise _RequestFailed(
                f"HTTP {response.status_code} from {display_url(self.endpoint.url)}: redirects"
                f" to {target}, not followed; set [api] url to the address that takes heartbeats"
            )
        if response.status_code in (401, 403):
            raise _AuthRefused(
                f"the server refused the credentials (HTTP {response.status_code});"
                " check the API key"
            )
        if response.status_code == 429 or response.status_code >= 500:
            raise _RequestFailed(
                f"HTTP {response.status_code} from {display_url(self.endpoint.url)}",
                retry_after_seconds(response.headers.get("retry-after"), self.clock()),
            )
        try:
            body = response.json()
        except ValueError:
            body = _NotJson(response.text[:500])
        return response.status_code, body


class _NotJson(str):
    """The start of an answer that is not JSON."""


def _kind_of(body: Any) -> str:
    """What an answer held, in words that quote nothing of it (it may be anyone's page)."""
    if isinstance(body, dict):
        keys = ", ".join(sorted(str(key) for key in body)[:5])
        return f"a JSON object ({keys})" if keys else "an empty JSON object"
    if isinstance(body, list):
        return f"a JSON list of {len(body)}"
    if isinstance(body, _NotJson):
        text = body.lstrip().lower()
        if text.startswith(("<!doctype html", "<html")):
            return "an HTML page"
        return "a body that is not JSON" if text else "an empty body"
    return "a bare JSON value"


def _describe(exc: httpx.HTTPError) -> str:
    text = redact(str(exc)) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


class DeliveryLoop:
    """Runs a Sender in its own thread: at once while there is progress, after the backoff
    delay on failures, and otherwise asleep until woken (no polling while idle)."""

    def __init__(self, sender: Sender, on_damaged: Callable[[], None] = lambda: None) -> None:
        self.sender = sender
        self.on_damaged = on_damaged  # the database turned out damaged: have it healed
        self._wake = threading.Event()  # new heartbeats: ends an idle or paused wait
        self._force = threading.Event()  # a flush or new credentials: ends a backoff wait too
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"deliver-{sender.endpoint.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def wake(self, *, force: bool = False) -> None:
        """New heartbeats are queued; with force (flush, new key), do not wait out a backoff."""
        if force:
            self.sender.forget_refusal()
            self._force.set()
        self._wake.set()

    def flush(self) -> None:
        """Deliver now: no backoff wait, refused credentials tried again. The errors shown
        until now are cleared, so what `status` reports afterwards is this attempt's."""
        self.sender.status.last_error = self.sender.status.paused = None
        self.wake(force=True)

    def credentials_offered(self) -> None:
        """New credentials where there were none: tried at once if delivery waits for them
        (the pause lifts until the server has its say on them)."""
        if self.sender.status.paused == NO_KEY:
            self.sender.status.paused = None
            self.wake(force=True)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the request in flight; its heartbeats stay queued if unsettled."""
        self._stop.set()
        self._force.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        self.sender.check_credentials()
        while not self._stop.is_set():
            self._wake.clear()
            self._force.clear()
            try:
                result = self.sender.step()
            except Exception as exc:  # the loop must outlive any one failure
                if is_damage(exc):
                    log.error("%s: the database is damaged: %s", self.sender.endpoint.name, exc)
                    self.on_damaged()
                else:
                    log.exception("%s: delivery step failed", self.sender.endpoint.name)
                self.sender.status.last_error = redact(f"delivery step failed: {exc}")
                result = StepResult(Step.RETRY, self.sender.backoff.next_delay())
            if result.step is Step.PROGRESS:
                continue
            event = self._force if result.step is Step.RETRY else self._wake
            event.wait(None if result.step is Step.IDLE else result.delay)
