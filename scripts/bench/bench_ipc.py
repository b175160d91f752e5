"""Benchmark: heartbeats over kept sockets into a real daemon (`agent run` subprocess).

Goal: ≥ 20,000 heartbeats/s ingested, p99 acknowledgement < 5 ms. A request is acknowledged
only after its SQLite commit, so the figure includes validation, detection (cached) and the
group commit. Each client keeps one connection and keeps `--window` requests in flight; the
acknowledgement time of a request is from its send to its answer.

    .venv/bin/python scripts/bench/bench_ipc.py [--count 40000] [--clients 4] [--batch 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).parent)]

from agentproc import AgentProcess, agent_env, git_repo  # noqa: E402
from machine import machine_line  # noqa: E402

from agent.ipc.client import IpcClient  # noqa: E402


def client_run(
    socket: Path,
    files: list[str],
    requests: int,
    batch: int,
    window: int,
    out: list[float],
    ping: bool,
) -> None:
    """Send `requests` requests of `batch` heartbeats, `window` in flight; record ack times."""
    now = time.time()
    sent_at: list[float] = []
    with IpcClient(socket, timeout=60) as client:

        def read_all() -> None:
            for index in range(requests):
                answer = client.read_answer()
                if not answer.get("ok"):
                    raise SystemExit(f"refused: {answer}")
                out.append(time.perf_counter() - sent_at[index])
                in_flight.release()

        in_flight = threading.Semaphore(window)
        reader = threading.Thread(target=read_all)
        reader.start()
        for index in range(requests):
            items = [
                {"entity": files[(index * batch + k) % len(files)], "time": now - k, "lineno": k}
                for k in range(batch)
            ]
            in_flight.acquire()
            sent_at.append(time.perf_counter())
            client.send({"op": "ping"} if ping else {"op": "heartbeats", "heartbeats": items})
        reader.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=40_000, help="heartbeats in all")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1, help="heartbeats per request")
    parser.add_argument("--window", type=int, default=32, help="requests in flight a client")
    parser.add_argument(
        "--ping", action="store_true", help="pings instead: the socket layer alone, no commit"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        repo = git_repo(root / "proj")
        files = []
        for index in range(50):
            path = repo / f"m{index}.py"
            path.write_text("x = 1\n")
            files.append(str(path))
        idle = root / "watched"
        idle.mkdir()
        env = agent_env(root, "http://127.0.0.1:9/api/v1")  # nothing listens: queue only
        with AgentProcess(env, idle) as daemon:
            socket = Path(env["XDG_RUNTIME_DIR"]) / "heartbeat-agent" / "agent.sock"
            requests = args.count // args.batch // args.clients
            acks: list[list[float]] = [[] for _ in range(args.clients)]
            threads = [
                threading.Thread(
                    target=client_run,
                    args=(socket, files, requests, args.batch, args.window, acks[n], args.ping),
                )
                for n in range(args.clients)
            ]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            daemon.stop()
    latencies = sorted(ms * 1000 for client in acks for ms in client)
    total = requests * args.batch * args.clients
    p99 = latencies[int(len(latencies) * 0.99)]
    print(f"machine: {machine_line()}")
    what = f"{total:,} pings" if args.ping else f"{total:,} heartbeats, {args.batch} a request"
    print(f"{what}, {args.clients} kept sockets, {args.window} requests in flight a socket\n")
    print("| measure | figure | goal |")
    print("| --- | --- | --- |")
    rate = total / elapsed
    label = "answered" if args.ping else "ingest rate"
    print(f"| {label} | {rate:,.0f}/s | ≥ 20,000/s {'✔' if rate >= 20_000 else '✘'} |")
    print(f"| ack median | {statistics.median(latencies):.2f} ms | — |")
    print(f"| ack p99 | {p99:.2f} ms | < 5 ms {'✔' if p99 < 5 else '✘'} |")


if __name__ == "__main__":
    main()
