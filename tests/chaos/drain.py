"""Drain one destination's queue in a fresh process and report what it cost, as JSON:
`python drain.py DATABASE API_URL` → {"delivered", "seconds", "rss_before", "rss_peak"}.

Run as a child of the week-offline test so that its memory is measured alone: the peak
resident size (VmHWM) against the size before the first request."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx

from agent.delivery.sender import Endpoint, Sender, Step, basic_authorization
from agent.pipeline.store import HeartbeatStore


def memory_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def main(database: str, url: str) -> None:
    store = HeartbeatStore(Path(database))
    sender = Sender(
        store,
        Endpoint("default", url, lambda: basic_authorization("waka_test_key")),
        httpx.Client(timeout=10),
        "host",
    )
    rss_before = memory_kib("VmRSS")
    started = time.perf_counter()
    delivered = 0
    while (result := sender.step()).step is not Step.IDLE:
        assert result.step is Step.PROGRESS, (result, sender.status)
        delivered += result.delivered
    seconds = time.perf_counter() - started
    report = {
        "delivered": delivered,
        "seconds": seconds,
        "rss_before": rss_before * 1024,
        "rss_peak": memory_kib("VmHWM") * 1024,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:])
