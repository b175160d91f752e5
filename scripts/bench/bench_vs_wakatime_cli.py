"""Benchmark: one heartbeat call of the real wakatime-cli beside the agent's compat command,
in the same run, on the same file and ~/.wakatime.cfg.

Each call is a whole subprocess timed with perf_counter (what a plugin waits for). Cases:

- wakatime-cli, server unreachable (a closed loopback port): it tries, then queues offline;
- wakatime-cli, loopback server: it sends the heartbeat and waits for the answer;
- the agent's launcher (`agent plugins install`), daemon up: the daemon commits and answers,
  delivery is in the background (to the same loopback server);
- the agent's launcher, no daemon: it writes the queue itself (SQLite), as offline.

wakatime-cli comes from $HEARTBEAT_AGENT_ORACLES (default /opt/oracles/bin); without it only
the agent's rows are printed. Goal: the agent's call with the daemon up is faster than
wakatime-cli's against a loopback server.

    .venv/bin/python scripts/bench/bench_vs_wakatime_cli.py [--calls 30]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [
    str(ROOT),
    str(ROOT / "tests"),
    str(ROOT / "tests" / "oracle"),
    str(Path(__file__).parent),
]

from agentproc import AGENT, AgentProcess, agent_env, git_repo  # noqa: E402
from machine import machine_line  # noqa: E402
from oracle_harness import API_KEY, PLUGIN, Recorder, oracle_binary  # noqa: E402


def closed_port() -> int:
    """A loopback port nothing listens on (taken and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(argv: list[str], env: dict[str, str], calls: int) -> list[float]:
    """Milliseconds per call, whatever the exit code (an offline queue exits 102)."""
    results = []
    for _ in range(calls):
        started = time.perf_counter()
        subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
        results.append((time.perf_counter() - started) * 1000)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    binary, why = oracle_binary()
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory() as folder, Recorder() as server:
        root = Path(folder)
        repo = git_repo(root / "proj")
        source = repo / "main.py"
        source.write_text("import os\nprint('hi')\n")
        env = agent_env(root, api_key=None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["WAKATIME_HOME"] = env["HOME"]
        cfg = Path(env["HOME"]) / ".wakatime.cfg"
        heartbeat = ["--entity", str(source), "--plugin", PLUGIN, "--write", "--lineno", "2"]
        subprocess.run([AGENT, "plugins", "install"], env=env, check=True, capture_output=True)
        launcher = str(Path(env["HOME"]) / ".local" / "bin" / "wakatime-cli")

        def with_cfg(url: str) -> None:
            cfg.write_text(f"[settings]\napi_key = {API_KEY}\napi_url = {url}\n")

        if binary is not None:
            with_cfg(f"http://127.0.0.1:{closed_port()}/api/v1")
            argv = [str(binary), *heartbeat]
            timed(argv, env, 2)
            rows.append(("wakatime-cli, server unreachable (queues)", timed(argv, env, args.calls)))
            with_cfg(server.url)
            rows.append(("wakatime-cli, loopback server", timed(argv, env, args.calls)))
        else:
            print(f"wakatime-cli rows left out: {why}")
        with_cfg(server.url)
        rows.append(
            ("agent launcher, no daemon (queues)", timed([launcher, *heartbeat], env, args.calls))
        )
        with AgentProcess(env, root) as daemon:
            timed([launcher, *heartbeat], env, 2)
            rows.append(
                ("agent launcher, daemon up", timed([launcher, *heartbeat], env, args.calls))
            )
            daemon.stop()
    medians = {name: statistics.median(samples) for name, samples in rows}
    goal_met = (
        medians.get("wakatime-cli, loopback server", float("inf"))
        > medians["agent launcher, daemon up"]
    )
    print(f"machine: {machine_line()}")
    print(f"{args.calls} calls a case, one heartbeat each, same file and ~/.wakatime.cfg\n")
    print("| case | median | p90 | goal |")
    print("| --- | --- | --- | --- |")
    for name, samples in rows:
        samples = sorted(samples)
        goal = ""
        if name == "agent launcher, daemon up" and binary is not None:
            goal = "faster than wakatime-cli to loopback " + ("✔" if goal_met else "✘")
        p90 = samples[int(len(samples) * 0.9)]
        print(f"| {name} | {medians[name]:.1f} ms | {p90:.1f} ms | {goal} |")


if __name__ == "__main__":
    main()
