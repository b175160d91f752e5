"""Offline for a "week": a big queue, then the server comes back. Everything is delivered,
oldest first, while the sender's memory stays flat (it holds one batch, never the queue).

Sized for CI: 30,000 heartbeats (a heavy week of coding is ~10,000), each carrying a
dependency list as real ones do, ~23 MiB of queue: filled in ~3 s, drained in ~6 s on 2
cores. 100,000 runs the same (~5,000/s) but takes 25 s, too long for every CI run. The
drain runs in a child process so that its peak RSS is its own.
"""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.store import HeartbeatStore

QUEUED = 30_000
DEPENDENCIES = [f"package-number-{n:03d}" for n in range(40)]
WEEK = 7 * 86400.0
DRAIN = Path(__file__).with_name("drain.py")


class TimeOrderServer(ThreadingHTTPServer):
    """Accepts every bulk request and checks, in O(1) memory, that heartbeat times never go
    back; the fake server would keep every heartbeat in memory, this keeps counters."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _OrderHandler)
        self.received = 0
        self.out_of_order = 0
        self.last_time = 0.0
        self.requests = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/v1"


class _OrderHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1
    disable_nagle_algorithm = True
    server: TimeOrderServer

    def do_POST(self) -> None:
        batch = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.requests += 1
            for heartbeat in batch:
                self.server.out_of_order += heartbeat["time"] < self.server.last_time
                self.server.last_time = heartbeat["time"]
                self.server.received += 1
        body = json.dumps({"responses": [[None, 201] for _ in batch]}).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[TimeOrderServer]:
    srv = TimeOrderServer()
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_a_week_offline_drains_in_time_order_in_bounded_memory(
    tmp_path: Path, server: TimeOrderServer
) -> None:
    database = tmp_path / "heartbeats.sqlite3"
    store = HeartbeatStore(database)
    store.destination_id("default", server.url)
    start = time.time() - WEEK
    times = [start + WEEK * i / QUEUED for i in range(QUEUED)]
    random.Random(3).shuffle(times)  # stored out of order (late plugins, offline fallback)
    filled = time.perf_counter()
    for offset in range(0, QUEUED, 5000):
        store.add(
            [
                (
                    Heartbeat(
                        entity=f"/home/me/project{i % 9}/src/module{i % 250}.py",
                        time=t,
                        project=f"project{i % 9}",
                        branch="main",
                        language="Python",
                        lines=100 + i % 400,
                        dependencies=DEPENDENCIES[: 10 + i % 30],
                        user_agent="wakatime/1.0 (linux) Python3.11 vim/9.0 vim-wakatime/11.0",
                    ),
                    ["default"],
                )
                for i, t in enumerate(times[offset : offset + 5000], offset)
            ]
        )
    filled = time.perf_counter() - filled
    store.close()
    with contextlib.closing(sqlite3.connect(database)) as db:
        (queue_bytes,) = db.execute("SELECT sum(length(payload)) FROM heartbeats").fetchone()

    done = subprocess.run(
        [sys.executable, str(DRAIN), str(database), server.url],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    growth = report["rss_peak"] - report["rss_before"]
    print(
        f"\nCHAOS week offline: {QUEUED} queued ({queue_bytes / 2**20:.1f} MiB of payload),"
        f" filled in {filled:.1f} s, drained in {report['seconds']:.1f} s"
        f" ({QUEUED / report['seconds']:.0f} heartbeats/s, {server.requests} requests),"
        f" peak RSS growth {growth / 2**20:.1f} MiB"
    )
    assert report["delivered"] == server.received == QUEUED
    assert server.out_of_order == 0
    assert server.requests == QUEUED // 25
    assert queue_bytes > 20 * 2**20
    assert growth < 12 * 2**20  # one batch at a time: the queue never sits in memory
    reader = HeartbeatStore(database)
    assert reader.counts().queued == 0
    reader.close()
