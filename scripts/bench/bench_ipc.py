"""Benchmark: heartbeats over kept sockets into a real daemon (`agent run` subprocess).

Goal: ≥ 20,000 heartbeats/s ingested, p99 acknowledgement < 5 ms. A request is acknowledged
only after its SQLite commit, so the figure includes validation, detection (cached) and the
group commit. Each client keeps one connection and keeps `--window` requests in flight; the
acknowledgement time of a request is from its send to its answer.

The clients must cost less than the daemon, or the figure measures them: requests are
encoded before the clock starts, every free slot of the window is filled with one
`sendall`, and answers are only split into lines and checked for `"ok":true`. The CPU
seconds of the clients and of the daemon are printed beside the figures.

With `window` requests in flight a client, Little's law makes the latency at least
`clients × window / rate`: a deep window measures throughput, a shallow one the latency a
plugin sees. Run both (`--window 32`, `--window 8`).

    .venv/bin/python scripts/bench/bench_ipc.py [--count 40000] [--clients 4] [--batch 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
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

from agent.ipc.protocol import encode  # noqa: E402

ACCEPTED = b'{"ok":true'


def requests_for(files: list[str], requests: int, batch: int, ping: bool) -> list[bytes]:
    """Every request line a client sends, encoded ahead of the run."""
    if ping:
        return [encode({"op": "ping"})] * requests
    now = time.time()
    return [
        encode(
            {
                "op": "heartbeats",
                "heartbeats": [
                    {
                        "entity": files[(index * batch + k) % len(files)],
                        "time": now - k,
                        "lineno": k,
                    }
                    for k in range(batch)
                ],
            }
        )
        for index in range(requests)
    ]


def client_run(path: Path, lines: list[bytes], window: int, out: list[float]) -> None:
    """Send the lines, `window` in flight; record each one's send-to-answer time."""
    sent_at = [0.0] * len(lines)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(60)
        sock.connect(os.fspath(path))
        sent = answered = 0
        buffer = b""
        while answered < len(lines):
            if sent - answered < window and sent < len(lines):
                end = min(len(lines), answered + window)
                now = time.perf_counter()
                for index in range(sent, end):
                    sent_at[index] = now
                sock.sendall(b"".join(lines[sent:end]))
                sent = end
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise SystemExit("the daemon closed the connection")
            now = time.perf_counter()
            answers = (buffer + chunk).split(b"\n")
            buffer = answers.pop()
            for answer in answers:
                if not answer.startswith(ACCEPTED):
                    raise SystemExit(f"refused: {answer[:300]!r}")
                out.append(now - sent_at[answered])
                answered += 1


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """utime + stime of a process (or of one of its threads), from /proc."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    with open(path) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
            assert daemon.proc is not None
            socket_path = Path(env["XDG_RUNTIME_DIR"]) / "heartbeat-agent" / "agent.sock"
            requests = args.count // args.batch // args.clients
            lines = requests_for(files, requests, args.batch, args.ping)
            acks: list[list[float]] = [[] for _ in range(args.clients)]
            threads = [
                threading.Thread(target=client_run, args=(socket_path, lines, args.window, acks[n]))
                for n in range(args.clients)
            ]
            pid = daemon.proc.pid
            daemon_cpu, loop_cpu = cpu_seconds(pid), cpu_seconds(pid, pid)
            client_cpu = own_cpu_seconds()
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            daemon_cpu = cpu_seconds(pid) - daemon_cpu
            loop_cpu = cpu_seconds(pid, pid) - loop_cpu  # the main thread runs the loop
            client_cpu = own_cpu_seconds() - client_cpu
            daemon.stop()
    latencies = sorted(seconds * 1000 for client in acks for seconds in client)
    total = requests * args.batch * args.clients
    p99 = latencies[int(len(latencies) * 0.99)]
    print(f"machine: {machine_line()} · load {os.getloadavg()[0]:.2f}")
    what = f"{total:,} pings" if args.ping else f"{total:,} heartbeats, {args.batch} a request"
    print(f"{what}, {args.clients} kept sockets, {args.window} requests in flight a socket\n")
    print("| measure | figure | goal |")
    print("| --- | --- | --- |")
    rate = total / elapsed
    label = "answered" if args.ping else "ingest rate"
    print(f"| {label} | {rate:,.0f}/s | ≥ 20,000/s {'✔' if rate >= 20_000 else '✘'} |")
    print(f"| ack median | {statistics.median(latencies):.2f} ms | — |")
    print(f"| ack p99 | {p99:.2f} ms | < 5 ms {'✔' if p99 < 5 else '✘'} |")
    print(
        f"| daemon CPU | {daemon_cpu:.2f} s of {elapsed:.2f} s (event loop {loop_cpu:.2f} s,"
        f" other threads {daemon_cpu - loop_cpu:.2f} s) | — |"
    )
    print(f"| clients' CPU | {client_cpu:.2f} s of {elapsed:.2f} s | — |")


if __name__ == "__main__":
    main()
