"""The fake server's Wakapi flavor answers as the real Wakapi 2.17.6 does.

CASES are requests with the answers recorded from the real server (status, and the JSON body
or the text/plain one). The first test checks the fake against them on every run; the second
sends the same requests to the real Wakapi when it is installed ($HEARTBEAT_AGENT_ORACLES),
so a Wakapi that changes its answers shows here first.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any, NamedTuple

import httpx
from wakapi import MAX_AGE_HOURS, Wakapi
from wakaserver import FakeWakaTime

ANY_TEXT = object()  # a text/plain body whose words depend on the input (Go's JSON decoder)
DAY = 86400
UNITS = {"s": 1, "h": 3600, "d": DAY}


class Case(NamedTuple):
    name: str
    route: str  # under the API URL
    body: Any  # JSON, or bytes sent as they are
    status: int
    answer: Any  # the JSON body, a str for a text/plain one, or ANY_TEXT
    auth: str = "key"  # "key", "wrong", "none", "query"


def beat(age: str, entity: str = "/code/app/main.py", **fields: Any) -> dict[str, Any]:
    """A heartbeat `age` old ("90s", "2h", "200d"; negative: ahead), placed at run time."""
    return {"entity": entity, "type": "file", "category": "coding", "age": age, **fields}


OK = [{"data": None, "error": None}, 201]
INVALID = [{"data": None, "error": "invalid heartbeat object"}, 400]
NONE_VALID = "no valid heartbeat object given"
BULK, SINGLE = "users/current/heartbeats.bulk", "users/current/heartbeats"

CASES = [
    Case("bulk", BULK, [beat("90s"), beat("60s", "/code/app/b.py")], 201, {"responses": [OK, OK]}),
    Case("duplicates", BULK, [beat("50s"), beat("50s")], 201, {"responses": [OK, OK]}),
    Case("object-to-bulk", BULK, beat("40s"), 201, {"responses": [OK]}),
    Case("object-to-single", SINGLE, beat("30s"), 201, {"responses": [OK]}),
    Case("list-to-single", SINGLE, [beat("20s")], 201, {"responses": [OK]}),
    Case("wrong-key", BULK, [beat("10s")], 401, "401 unauthorized", auth="wrong"),
    Case("no-key", BULK, [beat("10s")], 401, "401 unauthorized", auth="none"),
    Case("key-in-query", BULK, [beat("15s")], 201, {"responses": [OK]}, auth="query"),
    Case("all-too-old", BULK, [beat("200d"), beat("190d")], 400, NONE_VALID),
    Case("old-and-new", BULK, [beat("200d"), beat("5s", "/code/app/c.py")], 201,
         {"responses": [INVALID, OK]}),
    Case("ahead", BULK, [beat("-2h")], 400, NONE_VALID),
    Case("no-entity", BULK, [{"type": "file", "age": "4s"}], 201, {"responses": [OK]}),
    Case("no-time", BULK, [{"entity": "/code/x.py"}, beat("3s", "/code/d.py")], 201,
         {"responses": [INVALID, OK]}),
    Case("null-item", BULK, [None, beat("2s", "/code/e.py")], 201, {"responses": [INVALID, OK]}),
    Case("empty", BULK, [], 400, NONE_VALID),
    Case("time-not-a-number", BULK, [{"entity": "/code/f.py", "time": "soon"}], 400, ANY_TEXT),
    Case("not-an-object", BULK, [42, beat("1s")], 400, ANY_TEXT),
    Case("not-json", BULK, b"[{", 400, ANY_TEXT),
]  # fmt: skip


def materialize(body: Any, now: float) -> Any:
    """The body with each `age` turned into a time before `now`."""
    if isinstance(body, list):
        return [materialize(item, now) for item in body]
    if isinstance(body, dict) and "age" in body:
        fields = {k: v for k, v in body.items() if k != "age"}
        age = body["age"]
        return {**fields, "time": now - float(age[:-1]) * UNITS[age[-1]]}
    return body


def answer_of(client: httpx.Client, api_url: str, key: str, case: Case) -> tuple[int, Any]:
    """(status, JSON body or text) the server at api_url gives for the case."""
    headers = {"Content-Type": "application/json"}
    url = f"{api_url}/{case.route}"
    if case.auth == "key":
        headers["Authorization"] = "Basic " + base64.b64encode(key.encode()).decode()
    elif case.auth == "wrong":
        headers["Authorization"] = "Basic " + base64.b64encode(b"not-the-key").decode()
    elif case.auth == "query":
        url += f"?api_key={key}"
    body = case.body
    content = body if isinstance(body, bytes) else json.dumps(materialize(body, time.time()))
    response = client.post(url, content=content, headers=headers)
    kind = response.headers.get("content-type", "")
    if kind.startswith("application/json"):
        return response.status_code, response.json()
    assert kind.startswith("text/plain"), f"{case.name}: answered {kind!r}"
    return response.status_code, response.text.strip()


def answers(api_url: str, key: str) -> dict[str, tuple[int, Any]]:
    with httpx.Client(trust_env=False, timeout=10) as client:
        return {case.name: answer_of(client, api_url, key, case) for case in CASES}


def matches(case: Case, status: int, body: Any) -> bool:
    if case.answer is ANY_TEXT:
        return status == case.status and isinstance(body, str) and bool(body)
    return (status, body) == (case.status, case.answer)


def check(answers: dict[str, tuple[int, Any]]) -> None:
    mismatches = [
        f"{case.name}: got {answers[case.name]!r}, recorded {case.status} {case.answer!r}"
        for case in CASES
        if not matches(case, *answers[case.name])
    ]
    assert not mismatches, "\n".join(mismatches)


def test_the_fake_answers_as_recorded_from_wakapi() -> None:
    key = "5c0ffee0-0000-4000-8000-000000000001"
    with FakeWakaTime(flavor="wakapi", api_key=key, max_age_days=MAX_AGE_HOURS / 24) as fake:
        check(answers(fake.url, key))
        stored = fake.received
    assert len(stored) == 11  # each item answered OK, a duplicate once


def test_the_real_wakapi_still_answers_as_recorded(wakapi: Wakapi) -> None:
    key = wakapi.signup()
    check(answers(wakapi.api_url, key))
