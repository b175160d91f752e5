"""The socket's operations (agent.sources.requests) in-process, with a list for the ingest and
plain objects for the deliveries: what a plugin's request turns into, without a daemon."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from agent.ipc.protocol import ProtocolError
from agent.pipeline.destinations import Destination
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.ingest import Settle
from agent.sources.requests import PluginRequests, Reports

NOW = 1_700_000_000.0


class Offers:
    def __init__(self) -> None:
        self.destinations: list[Destination] = []
        self.servers: list[Destination] = []
        self.keys: list[str | None] = []

    def serve_plugin_server(self, server: Destination) -> None:
        self.servers.append(server)

    def take_plugin_key(self, key: str | None) -> None:
        self.keys.append(key)


class Fakes:
    def __init__(self, *, problem: str | None = None, trouble: str | None = None) -> None:
        self.submitted: list[Heartbeat] = []
        self.saved: list[tuple[str, float]] = []
        self.nudged = 0
        self.offers = Offers()
        self.requests = PluginRequests(
            self.submit,
            self.offers,
            Reports(lambda: {"s": 1}, lambda: {"t": 2}, lambda: {"text": "3 mins"}),
            delivery_trouble=lambda: trouble,
            config_problem=lambda: problem,
            flush=lambda: 7,
            plugin_saved=lambda path, at: self.saved.append((path, at)),
            why=lambda path: {"path": path},
            sync_ai=self.sync_ai,
            clock=lambda: NOW,
        )

    def submit(self, heartbeats: Sequence[Heartbeat], settle: Settle) -> None:
        self.submitted.extend(heartbeats)
        settle(len(heartbeats))

    def sync_ai(self) -> bool:
        self.nudged += 1
        return True

    def ask(self, request: dict[str, Any]) -> Any:
        async def answer() -> Any:
            result = self.requests(request)
            return await result if not isinstance(result, dict) else result

        return asyncio.run(answer())


def beat(entity: str = "/code/a.py", **fields: Any) -> dict[str, Any]:
    return {"entity": entity, "type": "file", "time": NOW - 5, **fields}


def test_a_plugins_file_heartbeat_is_stored_and_covers_the_watchers_copy() -> None:
    fakes = Fakes()
    answer = fakes.ask({"op": "heartbeat", "heartbeat": beat()})
    assert answer == {"ok": True, "queued": 1}
    assert [hb.entity for hb in fakes.submitted] == ["/code/a.py"]
    assert fakes.saved == [("/code/a.py", NOW - 5)]


def test_an_app_heartbeat_covers_no_file() -> None:
    fakes = Fakes()
    fakes.ask({"op": "heartbeat", "heartbeat": beat("Slack", type="app")})
    assert fakes.saved == []
    assert [hb.type for hb in fakes.submitted] == ["app"]


def test_a_plugins_key_and_server_are_offered_to_delivery() -> None:
    fakes = Fakes()
    fakes.ask({"op": "heartbeat", "heartbeat": beat(), "api_key": " waka_k1 "})
    fakes.ask(
        {
            "op": "heartbeat",
            "heartbeat": beat("/code/b.py"),
            "api_url": "https://self.example/api/v1",
            "api_key": "waka_k2",
        }
    )
    assert fakes.offers.keys == ["waka_k1"]
    [server] = fakes.offers.servers
    assert server.url == "https://self.example/api/v1"
    assert fakes.submitted[-1].server == server.name


def test_invalid_heartbeats_are_refused_unless_skipping_is_asked() -> None:
    fakes = Fakes()
    bad = {"op": "heartbeats", "heartbeats": [beat(), {"entity": "", "time": NOW}]}
    with pytest.raises(ProtocolError, match=r"heartbeats\[1\]\.entity"):
        fakes.ask(bad)
    assert fakes.submitted == []
    answer = fakes.ask({**bad, "skip_invalid": True})
    assert answer["queued"] == 1
    assert [s["index"] for s in answer["skipped"]] == [1]


def test_bad_privacy_flags_and_server_urls_are_named() -> None:
    fakes = Fakes()
    with pytest.raises(ProtocolError, match="privacy"):
        fakes.ask({"op": "heartbeat", "heartbeat": beat(), "privacy": {"exclude": 3}})
    with pytest.raises(ProtocolError, match="api_url: must be a string"):
        fakes.ask({"op": "heartbeat", "heartbeat": beat(), "api_url": 3})
    assert fakes.submitted == []


def test_the_answer_says_what_keeps_delivery_back() -> None:
    misconfigured = Fakes(problem="~/.wakatime.cfg line 3: not INI", trouble="paused")
    answer = misconfigured.ask({"op": "heartbeat", "heartbeat": beat()})
    assert answer["delivery"] == "misconfigured"
    assert answer["problem"] == "~/.wakatime.cfg line 3: not INI"
    paused = Fakes(trouble="paused").ask({"op": "heartbeat", "heartbeat": beat()})
    assert paused["delivery"] == "paused" and "problem" not in paused


def test_the_other_ops() -> None:
    fakes = Fakes()
    assert fakes.ask({"op": "status"}) == {"ok": True, "s": 1}
    assert fakes.ask({"op": "today"}) == {"ok": True, "t": 2}
    assert fakes.ask({"op": "today", "status_bar": True}) == {"ok": True, "text": "3 mins"}
    assert fakes.ask({"op": "flush"}) == {"ok": True, "queued": 7}
    assert fakes.ask({"op": "sync_ai"}) == {"ok": True, "enabled": True}
    assert fakes.nudged == 1
    assert fakes.ask({"op": "why", "path": "/code/../code/a.py"}) == {
        "ok": True,
        "path": "/code/a.py",
    }
    with pytest.raises(ProtocolError, match="path: must be an absolute path"):
        fakes.ask({"op": "why", "path": "a.py"})
