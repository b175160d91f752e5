"""Benchmark: drain a queue of N heartbeats to the loopback fake server with the real Sender.

Goal: ≥ 5,000 heartbeats/s for 100,000 queued. Prints a table with the machine's facts.

    .venv/bin/python scripts/bench/bench_delivery.py [--count N] [--batch-size 25]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).parent)]

import httpx  # noqa: E402
from machine import machine_line  # noqa: E402
from wakaserver import FakeWakaTime  # noqa: E402

from agent.delivery.sender import Endpoint, Sender, Step, basic_authorization  # noqa: E402
from agent.pipeline.heartbeat import Heartbeat  # noqa: E402
from agent.pipeline.store import HeartbeatStore  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, FakeWakaTime(flavor="wakapi") as server:
        store = HeartbeatStore(Path(folder) / "hb.sqlite3")
        store.destination_id("default", server.url)
        now = time.time() - args.count
        started = time.perf_counter()
        for first in range(0, args.count, 5000):
            store.add(
                [
                    (
                        Heartbeat(entity=f"/src/file{i % 500}.py", time=now + i, language="Python"),
                        ["default"],
                    )
                    for i in range(first, min(first + 5000, args.count))
                ]
            )
        queued = time.perf_counter() - started
        sender = Sender(
            store,
            Endpoint("default", server.url, lambda: basic_authorization(server.api_key)),
            httpx.Client(timeout=30),
            "bench",
            batch_size=args.batch_size,
        )
        started = time.perf_counter()
        while sender.step().step is not Step.IDLE:
            pass
        drained = time.perf_counter() - started
        delivered = len(server.received)
    print(machine_line())
    print("| measure | figure | goal |")
    print("| --- | --- | --- |")
    print(f"| queue {args.count:,} heartbeats | {args.count / queued:,.0f}/s | — |")
    print(
        f"| drain {args.count:,} to loopback (batch {args.batch_size}) | "
        f"{delivered / drained:,.0f}/s ({drained:.1f} s, {sender.status.requests:,} requests) "
        "| ≥ 5,000/s |"
    )
    if delivered != args.count:
        raise SystemExit(f"delivered {delivered} of {args.count}")


if __name__ == "__main__":
    main()
