"""Benchmark: the wakatime-cli-compatible command as plugins spawn it, daemon up and down.

Goals: a heartbeat ≤ 20 ms wall and ≤ 20 MiB peak RSS (median of many calls); `--today`
≤ 20 ms; a heartbeat with 25 extra heartbeats on stdin ≤ 25 ms; with no daemon (the
request committed to the SQLite queue by the standard-library fallback, autostart off so
every call takes that path) ≤ 40 ms. Beside them: the real wakatime-cli (v1.90.0, Go,
from $HEARTBEAT_AGENT_ORACLES, default /opt/oracles/bin; skipped when absent) with an
unreachable loopback api_url, so each call ends in its own offline queue. Each case is timed with
perf_counter around a whole subprocess (fork, exec, interpreter start, imports, socket
round trip, SQLite commit in the daemon, exit), beside the floor `python -c pass`; peak RSS
comes from /usr/bin/time -v. Three programs run the command:

- `launcher`: the `wakatime-cli` that `agent plugins install` writes (python -S), which
  is what plugins on PATH run;
- `console script`: pip's `agent` entry point (imports `re` before our code runs).

Bytecode is compiled first, as `pip install` does.

    .venv/bin/python scripts/bench/bench_compat.py [--calls 40]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(Path(__file__).parent)]

from agentproc import AGENT, AgentProcess, agent_env, git_repo  # noqa: E402
from machine import machine_line  # noqa: E402
from wakaserver import FakeWakaTime  # noqa: E402

PLUGIN = "vim/900 vim-wakatime/11.2.0"


def timed(
    argv: list[str], env: dict[str, str], stdin: bytes | None, calls: int, ok: frozenset[int]
) -> tuple[list[float], float]:
    """Wall milliseconds per call, and the CPU milliseconds (user + system) the calls took
    on average (steadier than wall time on a loaded machine); stdin is written and left
    open, as vim leaves it."""
    results = []
    cpu_before = _children_cpu()
    for _ in range(calls):
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdin is not None
        if stdin is not None:
            proc.stdin.write(stdin)
            proc.stdin.flush()
        code = proc.wait()
        results.append((time.perf_counter() - started) * 1000)
        proc.stdin.close()
        if code not in ok:
            raise SystemExit(f"{argv} exited {code}")
    return results, (_children_cpu() - cpu_before) * 1000 / calls


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib(argv: list[str], env: dict[str, str], stdin: bytes | None) -> float:
    done = subprocess.run(
        ["/usr/bin/time", "-v", *argv], env=env, input=stdin or b"", capture_output=True
    )
    found = re.search(rb"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    return int(found.group(1)) / 1024 if found else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()
    env_compile = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "agent")], check=True, env=env_compile
    )
    with tempfile.TemporaryDirectory() as folder, FakeWakaTime() as waka:
        root = Path(folder)
        repo = git_repo(root / "proj")
        source = repo / "main.py"
        source.write_text("print('hi')\n")
        env = {k: v for k, v in agent_env(root, waka.url).items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PATH"] = f"{root / 'home' / '.local' / 'bin'}:{env['PATH']}"
        subprocess.run([AGENT, "plugins", "install"], env=env, check=True, capture_output=True)
        launcher = str(root / "home" / ".local" / "bin" / "wakatime-cli")
        now = time.time()
        extras = (
            json.dumps(
                [
                    {
                        "entity": str(source),
                        "timestamp": now - 60 + i,
                        "lineno": i,
                        "is_write": False,
                    }
                    for i in range(25)
                ]
            ).encode()
            + b"\n"
        )
        heartbeat = ["--entity", str(source), "--plugin", PLUGIN, "--lineno", "3", "--write"]
        up = frozenset({0})
        cases = [
            ("python -c pass (floor)", [sys.executable, "-c", "pass"], None, None),
            ("python -S -c pass (floor)", [sys.executable, "-S", "-c", "pass"], None, None),
            ("heartbeat, launcher", [launcher, *heartbeat], None, 20),
            ("heartbeat, console script", [AGENT, *heartbeat], None, 20),
            (
                "heartbeat + 25 extras, launcher",
                [launcher, *heartbeat, "--extra-heartbeats"],
                extras,
                25,
            ),
            ("--today, launcher", [launcher, "--today"], None, 20),
            (
                "--today --output raw-json, launcher",
                [launcher, "--today", "--output", "raw-json"],
                None,
                20,
            ),
            ("--today, console script", [AGENT, "--today"], None, 20),
        ]
        rows = []
        with AgentProcess(env, root) as daemon:
            rows += measure(cases, env, up, args.calls)
            daemon.stop()
        offline = frozenset({102})
        no_daemon = [
            ("no daemon: heartbeat, launcher", [launcher, *heartbeat], None, 40),
            (
                "no daemon: heartbeat + 25 extras, launcher",
                [launcher, *heartbeat, "--extra-heartbeats"],
                extras,
                40,
            ),
            ("no daemon: heartbeat, console script", [AGENT, *heartbeat], None, None),
        ]
        rows += measure(no_daemon, env, offline, args.calls)
        rows += real_wakatime_cli(root, heartbeat, args.calls)
    print(f"machine: {machine_line()}")
    print(f"{args.calls} calls a case\n")
    print("| case | median | p90 | above the floor | CPU | peak RSS | goal |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, median, p90, above, cpu, rss, goal in rows:
        verdict = "" if goal is None else (f"≤ {goal} ms " + ("✔" if median <= goal else "✘"))
        print(
            f"| {name} | {median:.1f} ms | {p90:.1f} ms | {above:+.1f} ms | {cpu:.1f} ms"
            f" | {rss:.1f} MiB | {verdict} |"
        )


Case = tuple[str, list[str], bytes | None, int | None]
Row = tuple[str, float, float, float, float, float, int | None]


FLOOR = [sys.executable, "-S", "-c", "pass"]


def measure(cases: list[Case], env: dict[str, str], ok: frozenset[int], calls: int) -> list[Row]:
    """Each case's calls alternate with the floor's (`python -S -c pass`): the median of
    the paired differences is what a call costs above Python's own start, which a loaded
    machine moves far less than the wall time itself."""
    rows = []
    for name, argv, stdin, goal in cases:
        timed(argv, env, stdin, 3, ok)  # warm the page cache
        samples, floors, cpu = [], [], 0.0
        for _ in range(calls):
            floors += timed(FLOOR, env, None, 1, frozenset({0}))[0]
            sample, call_cpu = timed(argv, env, stdin, 1, ok)
            samples += sample
            cpu += call_cpu / calls
        above = statistics.median(s - f for s, f in zip(samples, floors, strict=True))
        samples.sort()
        rss = peak_rss_mib(argv, env, stdin)
        p90 = samples[int(len(samples) * 0.9)]
        rows.append((name, statistics.median(samples), p90, above, cpu, rss, goal))
    return rows


def real_wakatime_cli(root: Path, heartbeat: list[str], calls: int) -> list[Row]:
    """wakatime-cli's own per-call cost, its server unreachable (exit 102, or 112 backing off)."""
    program = Path(os.environ.get("HEARTBEAT_AGENT_ORACLES", "/opt/oracles/bin")) / "wakatime-cli"
    if not os.access(program, os.X_OK):
        print(f"skipped the real wakatime-cli: {program} is missing")
        return []
    home = root / "oracle-home"
    home.mkdir()
    (home / ".wakatime.cfg").write_text(
        "[settings]\napi_url = http://127.0.0.1:9/api/v1\n"
        "api_key = waka_00000000-0000-4000-8000-000000000000\n"
    )
    env = {"HOME": str(home), "PATH": os.environ["PATH"]}
    version = subprocess.run([program, "--version"], capture_output=True, text=True, env=env)
    name = f"wakatime-cli {version.stdout.strip()} (Go), server unreachable"
    return measure(
        [(name, [str(program), *heartbeat], None, None)], env, frozenset({102, 112}), calls
    )


if __name__ == "__main__":
    main()
