"""Fuzzing the socket with hypothesis: random bytes, deep JSON, huge numbers, wrong types,
NUL bytes, invalid UTF-8, lines over the limit. The daemon stays up, answers every line
with one JSON object, and a valid heartbeat sent right after each bad line (pipelined on
the same connection) is stored and delivered.

Sized for CI: 300 generated cases (derandomized, so every run tries the same ones) against
one daemon, about 5 s.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from agentproc import AgentProcess, agent_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import identities, socket_of, wait_until
from wakaserver import FakeWakaTime

from agent.ipc.protocol import MAX_LINE, OPS

EXAMPLES = 300
FIELDS = ("entity", "type", "category", "time", "project", "branch", "language", "lines")
FIELDS += ("lineno", "cursorpos", "is_write", "is_debugging", "dependencies", "plugin")


@dataclass
class Fuzzed:
    """The daemon under fuzz, one connection to it, and what was sent."""

    env: dict[str, str]
    agent: AgentProcess
    server: FakeWakaTime
    sock: socket.socket
    lines: Any  # the connection's reader
    valid: list[dict[str, Any]] = field(default_factory=list)
    cases: int = 0
    refused: int = 0

    def exchange(self, payload: bytes) -> dict[str, Any]:
        """Send a line and, pipelined behind it, a valid heartbeat; both must be answered."""
        marker = {
            "entity": f"/fuzz/case{self.cases}.py",
            "time": time.time() - 86400 + self.cases,
            "type": "file",
        }
        self.cases += 1
        self.sock.sendall(
            payload + b"\n" + json.dumps({"op": "heartbeat", "heartbeat": marker}).encode() + b"\n"
        )
        answer = json.loads(self.lines.readline())
        after = json.loads(self.lines.readline())
        assert isinstance(answer, dict) and isinstance(answer.get("ok"), bool), answer
        assert "internal error" not in answer.get("error", ""), answer
        assert after == {"ok": True, "queued": 1}, (payload[:200], after)
        self.valid.append(marker)
        self.refused += not answer["ok"]
        return answer


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    root = tmp_path_factory.mktemp("fuzz")
    with FakeWakaTime() as server:
        env = agent_env(root, server.url)
        (root / "work").mkdir()
        with AgentProcess(env, root / "work") as agent:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(30)
            sock.connect(str(socket_of(env)))
            with sock, sock.makefile("rb") as lines:
                target = Fuzzed(env, agent, server, sock, lines)
                yield target
            # Every valid heartbeat sent between the bad lines reaches the server.
            wanted = set(identities(target.valid))
            wait_until(lambda: wanted <= set(identities(server.received)), "valid heartbeats")
            assert agent.proc is not None and agent.proc.poll() is None  # never went down
            assert agent.stop() == 0
            assert "Traceback" not in agent.log
            print(
                f"\nCHAOS fuzz: {target.cases} cases, {target.refused} refused with an error,"
                f" {len(target.valid)} valid heartbeats between them, all delivered"
            )


def raw_heartbeat(value: str, name: str = "time") -> bytes:
    """A heartbeat request with one field's JSON text spliced in as it is."""
    body = {"entity": "/fuzz/raw.py", "time": 1.8e9}
    body.pop(name, None)
    text = json.dumps({"op": "heartbeat", "heartbeat": body})
    return text[:-2].encode() + f', "{name}": '.encode() + value.encode() + b"}}"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
huge_numbers = st.sampled_from(
    [
        "1e400",
        "-1e400",
        "1" * 5000,
        "-0",
        "2e-400",
        "9" * 40,
        "1.7976931348623157e309",
        "NaN",
        "Infinity",
    ]
)
bad_utf8 = st.sampled_from(
    [b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]
)

lines = st.one_of(
    st.binary(min_size=1, max_size=300).filter(lambda b: b"\n" not in b and b.strip()),
    st.integers(1, 200_000).map(lambda d: b"[" * d + b"]" * d),  # deep JSON
    st.integers(1, 100_000).map(lambda d: raw_heartbeat("[" * d + "]" * d, "entity")),
    huge_numbers.map(raw_heartbeat),
    st.tuples(st.sampled_from(FIELDS), json_values).map(
        lambda kv: json.dumps(
            {"op": "heartbeat", "heartbeat": {"entity": "/fuzz/t.py", "time": 1.8e9, kv[0]: kv[1]}}
        ).encode()
    ),
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6).map(
        lambda hb: json.dumps({"op": "heartbeat", "heartbeat": hb}).encode()
    ),
    st.fixed_dictionaries(
        {
            "op": st.sampled_from([*OPS, "", "HEARTBEAT", 1, None]),
            "heartbeats": json_values,
            "id": json_values,
        }
    ).map(lambda r: json.dumps(r).encode()),
    st.text(min_size=1, max_size=40).map(  # NUL and any other character, escaped or raw
        lambda t: json.dumps(
            {"op": "heartbeat", "heartbeat": {"entity": "/f\x00" + t, "time": 1.8e9}}
        ).encode()
    ),
    st.tuples(bad_utf8, st.integers(0, 30)).map(
        lambda bi: (
            b'{"op":"heartbeat","heartbeat":{"entity":"/x'
            + bi[0] * (bi[1] + 1)
            + b'","time":1.8e9}}'
        )
    ),
    st.just(b'{"op":"ping"\x00}'),
    st.just(b'{"op":"heartbeat","heartbeat":{"entity":"\\ud800","time":1.8e9},"id":"\\udfff"}'),
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(line=lines)
def test_fuzzed_lines_are_answered_and_valid_heartbeats_kept(fuzzed: Fuzzed, line: bytes) -> None:
    fuzzed.exchange(line)


def test_lines_over_the_limit_are_refused_and_the_connection_stays_usable(fuzzed: Fuzzed) -> None:
    answer = fuzzed.exchange(b'{"op":"ping","pad":"' + b"x" * (MAX_LINE + 10) + b'"}')
    assert answer == {"ok": False, "error": f"line longer than {MAX_LINE} bytes refused"}


def test_a_client_stalled_mid_line_blocks_no_one(fuzzed: Fuzzed) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stalled:
        stalled.connect(str(socket_of(fuzzed.env)))
        stalled.sendall(b'{"op":"heartbeat","heartbeat":{"entity":"/never')  # and nothing more
        answer = fuzzed.exchange(b'{"op":"ping"}')
        assert answer["ok"] is True
