"""kill -9 at random moments while a client streams heartbeats over the socket and the
sender is mid-request: every heartbeat the daemon acknowledged (`ok:true`) must reach the
server after a restart. Duplicates are possible (a request the server answered just as the
daemon died is sent again) and are counted, not forbidden.

Sized for CI: 6 kills and a few thousand heartbeats; a run takes about 10 s on 2 cores.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

from agentproc import AgentProcess, agent_env
from support import identities, make_heartbeats, socket_of, wait_until
from wakaserver import FakeWakaTime, Fault

from agent.ipc.client import DaemonUnavailable, IpcClient

KILLS = 6
SEED = 20261125


class Streamer(threading.Thread):
    """A plugin that never stops: requests of 1-20 heartbeats, back to back, recording
    which ones the daemon acknowledged, until the daemon goes away."""

    def __init__(self, env: dict[str, str], pending: list[dict[str, Any]], rng: random.Random):
        super().__init__(daemon=True)
        self.env = env
        self.pending = pending
        self.rng = rng
        self.acked: list[dict[str, Any]] = []
        self.sent = 0

    def run(self) -> None:
        try:
            with IpcClient(socket_of(self.env), timeout=30) as client:
                while self.pending:
                    size = self.rng.randint(1, 20)
                    chunk, self.pending[:size] = self.pending[:size], []
                    self.sent += len(chunk)
                    answer = client.request({"op": "heartbeats", "heartbeats": chunk})
                    if answer.get("ok"):
                        self.acked += chunk
        except (DaemonUnavailable, OSError):
            pass  # killed: what was not acknowledged may or may not have been stored


def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    server = FakeWakaTime()  # WakaTime keeps duplicates, so they can be counted
    # Slow answers (10-40 ms), so that a kill usually finds a request in flight.
    server.fault_plan(lambda _: Fault.delay(rng.uniform(0.01, 0.04)))
    to_send = make_heartbeats(12_000, time.time() - 86400)
    acked: list[dict[str, Any]] = []
    sent = mid_request_kills = 0
    workdir = tmp_path / "work"
    workdir.mkdir()
    with server:
        env = agent_env(tmp_path, server.url)
        for _ in range(KILLS):
            agent = AgentProcess(env, workdir).start()
            streamer = Streamer(env, to_send, random.Random(rng.random()))
            streamer.start()
            target = len(streamer.acked) + rng.randint(100, 800)
            wait_until(lambda s=streamer, t=target: len(s.acked) >= t, "acknowledgements")
            try:
                wait_until(
                    lambda: any(not r.finished for r in server.requests),
                    "a delivery request in flight",
                    timeout=5,
                )
                mid_request_kills += 1
            except AssertionError:
                pass  # the sender was between requests: kill it there then
            agent.kill()  # SIGKILL: no shutdown, no flush, no goodbye
            streamer.join(30)
            acked += streamer.acked
            sent += streamer.sent
        with AgentProcess(env, workdir) as agent:
            wanted = set(identities(acked))
            wait_until(
                lambda: wanted <= set(identities(server.received)),
                "every acknowledged heartbeat at the server",
                timeout=60,
            )
            assert agent.stop() == 0
    received = identities(server.received)
    lost = wanted - set(received)
    duplicates = sum(count - 1 for count in received.values())
    print(
        f"\nCHAOS kill -9: {KILLS} kills ({mid_request_kills} mid-request), {sent} heartbeats"
        f" sent, {len(acked)} acknowledged, {len(received)} distinct delivered, {len(lost)}"
        f" lost, {duplicates} duplicates"
    )
    assert not lost
    assert mid_request_kills >= KILLS // 2
    assert len(acked) >= KILLS * 100
    # A duplicate can only come from a request in flight at a kill: at most a batch each.
    assert duplicates <= KILLS * 25
