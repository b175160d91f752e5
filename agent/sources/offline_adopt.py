"""Completing what the compat command queued while no daemon ran (agent.wakatime_cli.offline_queue).

Each request goes through what a request on the socket goes through: the same validation
(`read_heartbeat_request`, shared with the daemon; a heartbeat's time is judged against
when it was queued), then the builder (detection, privacy rules) and the router, so
deferring a heartbeat loses no field and no rule.

The spool is taken whole: renamed to `*.taking` (new requests start a new spool), locked
(an appender still writing to it finishes first), read, stored, removed. One process
takes it at a time (`*.lock`). A crash before the removal leaves `*.taking` to be read
again; the store keeps one copy of a heartbeat (its identity), so none is stored twice.

The daemon adopts at startup, on `flush` and every OFFLINE_CHECK_INTERVAL; commands that
read the queue without a daemon (`--today`, `--offline-count`, `agent queue`, ...) adopt
first, so what they show includes them.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.autostart import answers
from agent.ipc.protocol import MAX_BATCH, ProtocolError
from agent.pipeline.heartbeat import Heartbeat, HeartbeatError, timeliness_problems
from agent.pipeline.privacy import flags_problem
from agent.pipeline.store import HeartbeatStore
from agent.wakatime_cli.offline_queue import requests_waiting, spool_file
from agent.wakatime_cli.private_files import try_open_locked

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.pipeline.builder import HeartbeatBuilder
    from agent.pipeline.destinations import Router
    from agent.pipeline.ingest import Ingest

log = logging.getLogger(__name__)

ADOPT_BATCH = 1000  # heartbeats stored in one transaction at most


def adopt_offline_requests(
    store: HeartbeatStore,
    builder: HeartbeatBuilder,
    router: Router,
    take_key: Callable[[str], None] = lambda _key: None,
) -> int:
    """Store the heartbeats of every waiting request; how many were new. `take_key` gets a
    plugin's `--key` (the daemon's own key, if it has one, still comes first)."""
    if not requests_waiting(store.path):
        return 0
    spool = spool_file(store.path)
    taking = spool + ".taking"
    guard = try_open_locked(spool + ".lock")
    if guard is None:
        return 0  # another process is taking them
    try:
        if not os.path.exists(taking):
            try:
                os.rename(spool, taking)
            except FileNotFoundError:
                return 0
        stored = _adopt_file(taking, store, builder, router, take_key)
        os.unlink(taking)
    finally:
        os.close(guard)
    if stored:
        log.info("stored %d heartbeat(s) queued while no daemon ran", stored)
    return stored


def _adopt_file(
    path: str,
    store: HeartbeatStore,
    builder: HeartbeatBuilder,
    router: Router,
    take_key: Callable[[str], None],
) -> int:
    stored = 0
    rows: list[tuple[Heartbeat, list[str]]] = []
    with open(path, "rb") as file:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)  # an appender that had it open finishes
        for number, line in enumerate(file, 1):
            try:
                entry = json.loads(line)
                received, request = float(entry["received"]), entry["request"]
            except (ValueError, KeyError, TypeError):  # a line cut short by a crash
                log.warning("%s line %d: not a queued request; skipped", path, number)
                continue
            rows += _rows(number, received, request, builder, router, take_key)
            if len(rows) >= ADOPT_BATCH:
                stored += len(store.add(rows))
                rows = []
    if rows:
        stored += len(store.add(rows))  # a copy the daemon stored already is not added again
    return stored


def open_adopted(settings: Settings) -> HeartbeatStore:
    """The store, with the waiting requests completed first when no daemon runs (a daemon
    adopts them itself, and keeps a plugin's key it finds in them)."""
    store = HeartbeatStore.wal_checked(settings.database_path())
    try:
        if requests_waiting(store.path) and not answers(str(settings.socket_path())):
            from agent.pipeline.builder import HeartbeatBuilder, detect_options, privacy_for
            from agent.pipeline.destinations import Router, configured_destinations
            from agent.pipeline.detect import Detector

            # As the daemon builds: the settings' privacy rules (~/.wakatime.cfg's too).
            builder = HeartbeatBuilder(Detector(detect_options(settings)), privacy_for(settings))
            adopt_offline_requests(store, builder, Router(tuple(configured_destinations(settings))))
    except BaseException:
        store.close()
        raise
    return store


def _rows(
    line: int,
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
        log.warning("offline request %d dropped: %s", line, exc)
        return []
    privacy = request.get("privacy")
    if privacy is not None and (problem := flags_problem(privacy)):
        log.warning("offline request %d dropped: %s", line, problem)
        return []
    if privacy:  # the plugin's privacy flags go with its heartbeats, as on the socket
        heartbeats = [replace(hb, privacy=privacy) for hb in heartbeats]
    if request.get("api_url"):
        log.warning(
            "offline request %d: the plugin's --api-url is not applied to heartbeats queued"
            " without a daemon; they go to the configured servers",
            line,
        )
    for _index, message in problems:
        log.warning("offline request %d: dropped %s", line, message)
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


OFFLINE_CHECK_INTERVAL = 30.0  # seconds between the daemon's looks for requests queued offline


class OfflineAdoption:
    """The daemon's side: adoptions at startup, every OFFLINE_CHECK_INTERVAL (a compat
    command that found the daemon busy may add more) and on `flush`, one at a time. They
    go through the ingest's current builder and router; `take_key` gets a plugin's key in
    the adopting thread; `stored` is told when heartbeats were stored."""

    def __init__(
        self,
        database: Path,
        ingest: Ingest,
        take_key: Callable[[str], None],
        stored: Callable[[], None],
    ) -> None:
        self.database = database
        self.ingest = ingest
        self.take_key = take_key
        self.stored = stored
        self._adopting = threading.Lock()

    def adopt(self) -> int:
        """Store what waits; how many heartbeats were new (0 while another adoption runs)."""
        if not self._adopting.acquire(blocking=False):
            return 0
        try:
            with HeartbeatStore(self.database) as store:
                count = adopt_offline_requests(
                    store, self.ingest.builder, self.ingest.router, self.take_key
                )
        finally:
            self._adopting.release()
        if count:
            self.stored()
        return count
