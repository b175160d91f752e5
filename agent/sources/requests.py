"""The socket's operations (DESIGN §3): plugins' heartbeats, and what the commands ask of a
running daemon (status, today, why, flush, sync_ai).

A plugin's heartbeats are validated here and submitted as sent: they skip the policy, and
only tell the file activity that a plugin covers the file, so the watcher's copy of that save
is not counted. The answer to a heartbeat request comes once its heartbeats are durable.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from agent import __version__
from agent.ipc.protocol import ProtocolError
from agent.pipeline.destinations import Destination, plugin_server
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.ingest import Settle
from agent.pipeline.privacy import flags_problem
from agent.sources.offline_adopt import read_heartbeat_request

Answer = dict[str, Any]
Report = Callable[[], Answer]


class PluginOffers(Protocol):
    """Where a plugin's server and key go (the daemon's deliveries)."""

    destinations: list[Destination]

    def serve_plugin_server(self, server: Destination) -> None: ...

    def take_plugin_key(self, key: str | None) -> None: ...


@dataclass
class Reports:
    """What the daemon reports, each built in a thread (they read the database)."""

    status: Report
    today: Report
    status_bar: Report


class PluginRequests:
    def __init__(
        self,
        submit: Callable[[Sequence[Heartbeat], Settle], None],
        offers: PluginOffers,
        reports: Reports,
        *,
        delivery_trouble: Callable[[], str | None],
        config_problem: Callable[[], str | None],
        flush: Callable[[], int],
        plugin_saved: Callable[[str, float], None],
        why: Callable[[str], Answer],
        sync_ai: Callable[[], bool],
        clock: Callable[[], float],
    ) -> None:
        """`submit` stores heartbeats and settles with how many; `plugin_saved` tells the file
        activity a plugin covers a save; `sync_ai` nudges the AI source (False: it is off);
        `flush` delivers now and says how many wait."""
        self.submit = submit
        self.offers = offers
        self.reports = reports
        self.delivery_trouble = delivery_trouble
        self.config_problem = config_problem
        self._flush = flush
        self.plugin_saved = plugin_saved
        self._why = why
        self.sync_ai = sync_ai
        self.clock = clock

    def __call__(self, request: dict[str, Any]) -> Answer | Awaitable[Answer]:
        """Served on the loop without a task: an answer now, or a future of one."""
        op = request["op"]
        if op in ("heartbeat", "heartbeats"):
            return self.accept(request)
        if op == "ping":
            return {"ok": True, "version": __version__, "pid": os.getpid()}
        if op == "status":
            return _in_thread(self.reports.status)
        if op == "today":
            if request.get("status_bar") is True:  # the plugins' `--today` (DESIGN §2a)
                return _in_thread(self.reports.status_bar)
            return _in_thread(self.reports.today)
        if op == "sync_ai":  # the plugins' --sync-ai-activity: a nudge, answered at once
            return {"ok": True, "enabled": self.sync_ai()}
        if op == "why":
            path = request.get("path")
            if not isinstance(path, str) or not os.path.isabs(path):
                raise ProtocolError("path: must be an absolute path")
            return {"ok": True, **self._why(os.path.normpath(path))}
        if op == "flush":
            return {"ok": True, "queued": self._flush()}
        raise ProtocolError(f"op: unknown op {op!r}")

    def accept(self, request: dict[str, Any]) -> asyncio.Future[Answer]:
        """Validate on the loop (errors are answered at once); the answer comes after the
        commit."""
        heartbeats, problems, key = read_heartbeat_request(request, self.clock())
        privacy = request.get("privacy")
        if privacy is not None and (problem := flags_problem(privacy)):
            raise ProtocolError(problem)
        server = self._offered_server(request.get("api_url"), key)
        if server is not None:
            self.offers.serve_plugin_server(server)
        elif key:
            self.offers.take_plugin_key(key)
        if privacy or server:  # the plugin's flags and server go with its heartbeats
            name = server.name if server else None
            heartbeats = [replace(hb, privacy=privacy, server=name) for hb in heartbeats]
        for hb in heartbeats:
            if hb.type == "file":
                self.plugin_saved(hb.entity, hb.time)
        # `skip_invalid` (the compat command's extras): store the good ones, name the rest.
        skipped = None
        if request.get("skip_invalid") is True:
            skipped = [{"index": index, "error": message} for index, message in problems]
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()

        def settle(stored: int | BaseException) -> None:
            answer.set_result(self._stored_answer(stored, skipped))

        self.submit(heartbeats, settle)
        return answer

    def _offered_server(self, url: object, key: str | None) -> Destination | None:
        if url is None:
            return None
        if not isinstance(url, str):
            raise ProtocolError("api_url: must be a string")
        try:
            return plugin_server(url, key, self.offers.destinations)
        except ValueError as exc:
            raise ProtocolError(f"api_url: {exc}") from None

    def _stored_answer(self, stored: int | BaseException, skipped: list[Answer] | None) -> Answer:
        if isinstance(stored, BaseException):
            return {"ok": False, "error": f"not stored: {stored}"}
        answer: Answer = {"ok": True, "queued": stored}
        if skipped is not None:
            answer["skipped"] = skipped
        if problem := self.config_problem():
            answer["delivery"], answer["problem"] = "misconfigured", problem
        elif trouble := self.delivery_trouble():
            answer["delivery"] = trouble
        return answer


async def _in_thread(report: Report) -> Answer:
    return {"ok": True, **await asyncio.to_thread(report)}
