"""What the chaos, destination and security tests share: a daemon subprocess with its
socket, heartbeats with explicit times, and waiting for a condition (never a fixed sleep)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from agentproc import AgentProcess

from agent.ipc.client import IpcClient

DAY = 86400.0


def socket_of(env: dict[str, str]) -> Path:
    """Where `agent run` with this environment listens (DESIGN.md §3)."""
    return Path(env["XDG_RUNTIME_DIR"]) / "heartbeat-agent" / "agent.sock"


def database_of(env: dict[str, str]) -> Path:
    return Path(env["HEARTBEAT_AGENT_QUEUE__PATH"])


def make_heartbeats(count: int, start: float, prefix: str = "/work/proj/f") -> list[dict[str, Any]]:
    """Distinct file heartbeats one second apart from `start`, as a plugin sends them."""
    return [
        {
            "entity": f"{prefix}{index}.py",
            "type": "file",
            "time": start + index,
            "plugin": "vim/9.0 vim-wakatime/11.0",
        }
        for index in range(count)
    ]


def send(env: dict[str, str], heartbeats: list[dict[str, Any]], chunk: int = 500) -> int:
    """Send over the socket; how many the daemon acknowledged as stored."""
    stored = 0
    with IpcClient(socket_of(env), timeout=60) as client:
        for offset in range(0, len(heartbeats), chunk):
            answer = client.request(
                {"op": "heartbeats", "heartbeats": heartbeats[offset : offset + chunk]}
            )
            assert answer["ok"], answer
            stored += answer["queued"]
    return stored


def ask(env: dict[str, str], op: str) -> dict[str, Any]:
    with IpcClient(socket_of(env), timeout=60) as client:
        return client.request({"op": op})


def destination(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in status["destinations"] if d["name"] == name)


def wait_until(
    condition: Callable[[], Any], what: str, timeout: float = 30.0, every: float = 0.02
) -> Any:
    """Poll a condition until it holds; its value, or AssertionError naming what."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s waiting for {what}")
        time.sleep(every)


def identities(heartbeats: Iterable[dict[str, Any]]) -> Counter[tuple[str, float]]:
    """How often each heartbeat (entity, time) occurs: >1 is a duplicate."""
    return Counter((hb["entity"], float(hb["time"])) for hb in heartbeats)


def start_agent(env: dict[str, str], cwd: Path) -> AgentProcess:
    return AgentProcess(env, cwd).start()
