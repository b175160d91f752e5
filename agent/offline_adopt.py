"""Completing what the compat command queued while no daemon ran (agent.offline_queue).

Each waiting request goes through what a request on the socket goes through: the same
validation (`read_heartbeat_request`, shared with the daemon), then the builder (detection,
privacy rules) and the router, so deferring a heartbeat loses no field and no rule. A batch
is stored in the transaction that removes its requests from the waiting table, and that
transaction fails if another process took them first: each request is stored once.

The daemon adopts at startup, on `flush` and every OFFLINE_CHECK_INTERVAL; commands that
read the queue without a daemon (`--today`, `--offline-count`, `agent queue`, ...) adopt
first, so what they show includes them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent.autostart import answers
from agent.heartbeat import Heartbeat, HeartbeatError, timeliness_problems
from agent.ipc.protocol import MAX_BATCH, ProtocolError
from agent.store import HeartbeatStore, StoreError

if TYPE_CHECKING:
    from agent.builder import HeartbeatBuilder
    from agent.config import Settings
    from agent.destinations import Router

log = logging.getLogger(__name__)

OFFLINE_BATCH = 200  # offline requests completed in one transaction


def adopt_offline_requests(
    store: HeartbeatStore,
    builder: HeartbeatBuilder,
    router: Router,
    take_key: Callable[[str], None] = lambda _key: None,
) -> int:
    """Store every waiting request's heartbeats; how many were stored. `take_key` gets a
    plugin's `--key` (the daemon's own key, if it has one, still comes first)."""
    stored = 0
    while batch := store.offline_requests(OFFLINE_BATCH):
        rows: list[tuple[Heartbeat, list[str]]] = []
        for request_id, received, request in batch:
            rows += _rows(request_id, received, request, builder, router, take_key)
        try:
            added = store.add(rows, offline_requests=[request_id for request_id, _, _ in batch])
        except StoreError as exc:  # another process adopted them meanwhile
            log.debug("offline requests: %s", exc)
            continue
        stored += len(added)  # without those the daemon had stored already (a timed-out call)
    if stored:
        log.info("stored %d heartbeat(s) queued while no daemon ran", stored)
    return stored


def open_adopted(settings: Settings) -> HeartbeatStore:
    """The store, with the waiting requests completed first when no daemon runs (a daemon
    adopts them itself, and keeps a plugin's key it finds in them)."""
    store = HeartbeatStore(settings.database_path())
    try:
        if store.offline_requests(1) and not answers(str(settings.socket_path())):
            from agent.builder import HeartbeatBuilder, detect_options
            from agent.destinations import Router, configured_destinations
            from agent.detect import Detector

            builder = HeartbeatBuilder(Detector(detect_options(settings)))
            adopt_offline_requests(store, builder, Router(tuple(configured_destinations(settings))))
    except BaseException:
        store.close()
        raise
    return store


def _rows(
    request_id: int,
    received: float,
    request: Any,
    builder: HeartbeatBuilder,
    router: Router,
    take_key: Callable[[str], None],
) -> list[tuple[Heartbeat, list[str]]]:
    try:
        if not isinstance(request, dict):
            raise ProtocolError("not a JSON object")
        heartbeats, problems, key = read_heartbeat_request(request, received)
    except ProtocolError as exc:
        log.warning("offline request %d dropped: %s", request_id, exc)
        return []
    for _index, message in problems:
        log.warning("offline request %d: dropped %s", request_id, message)
    if key:
        take_key(key)
    rows = []
    for hb in heartbeats:
        if (complete := builder.complete(hb)) is not None:
            rows.append((complete, router.route(complete)))
    return rows


def read_heartbeat_request(
    request: dict[str, Any], now: float
) -> tuple[list[Heartbeat], list[tuple[int, str]], str | None]:
    """A `heartbeat`/`heartbeats` request's valid heartbeats, the problems of the others
    (index, message naming each field) and the plugin's API key; `now` is when it was
    received (times servers would refuse are judged against it). Raises ProtocolError for
    a malformed request, or for any invalid heartbeat unless it asks `skip_invalid` (the
    compat command's extras: store the good ones, name the rest)."""
    single = request.get("op") == "heartbeat"
    if single:
        items = [request.get("heartbeat")]
    else:
        items = request.get("heartbeats")
        if not isinstance(items, list):
            raise ProtocolError("heartbeats: must be a list of heartbeat objects")
        if len(items) > MAX_BATCH:
            raise ProtocolError(f"heartbeats: at most {MAX_BATCH} in one request")
    heartbeats = []
    problems: list[tuple[int, str]] = []
    for index, item in enumerate(items):
        try:
            hb = Heartbeat.from_mapping(item)
            if untimely := timeliness_problems(hb, now):
                raise HeartbeatError(untimely)
            heartbeats.append(hb)
        except HeartbeatError as exc:
            prefix = "heartbeat" if single else f"heartbeats[{index}]"
            problems.append(
                (
                    index,
                    "; ".join(f"{prefix}.{k}: {v}" for k, v in exc.problems.items())
                    if exc.problems.get("heartbeat") is None
                    else f"{prefix}: {exc.problems['heartbeat']}",
                )
            )
    offered_key = request.get("api_key")
    if offered_key is not None and not isinstance(offered_key, str):
        raise ProtocolError("api_key: must be a string")
    if problems and request.get("skip_invalid") is not True:
        raise ProtocolError("; ".join(message for _, message in problems))
    return heartbeats, problems, offered_key.strip() if offered_key is not None else None
