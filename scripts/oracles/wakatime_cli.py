"""Running the real wakatime-cli against a recording loopback server, many heartbeats a call.

`send` makes a temporary HOME whose `~/.wakatime.cfg` points wakatime-cli at a FakeWakaTime
(tests/wakaserver.py) on 127.0.0.1 with rate limiting and the offline queue off; the first
heartbeat of a batch goes in as `--entity`, the rest as `--extra-heartbeats` on stdin
(wakatime-cli sends at most 25 a call, so batches are 25; v1.90 runs its whole detection,
language included, over the extra ones too). What the server receives is what wakatime-cli
detected. Used by the recorders in this folder and by the live oracle tests.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from wakaserver import FakeWakaTime

ORACLES_ENV = "HEARTBEAT_AGENT_ORACLES"
DEFAULT_ORACLES = "/opt/oracles/bin"
# wakatime-cli refuses a key that is not `waka_` + a UUID.
ORACLE_KEY = "waka_00000000-0000-4000-8000-000000000000"
# wakatime-cli's offline.SendLimit: more than this in one call go to its offline queue.
BATCH = 25
PLUGIN = "vim/9.1.0 vim-wakatime/11.0.0"


def oracle_binary(name: str) -> Path | None:
    """The named oracle program in $HEARTBEAT_AGENT_ORACLES (default /opt/oracles/bin)."""
    path = Path(os.environ.get(ORACLES_ENV) or DEFAULT_ORACLES) / name
    return path if path.is_file() and os.access(path, os.X_OK) else None


def oracle_version(binary: Path) -> str:
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip()


def _batches(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def _flags(heartbeat: dict[str, Any]) -> list[str]:
    flags = ["--entity", heartbeat["entity"], "--time", str(heartbeat["time"])]
    if heartbeat.get("is_write"):
        flags.append("--write")
    return flags


def send(
    binary: Path,
    heartbeats: Iterable[dict[str, Any]],
    *,
    settings: dict[str, str] | None = None,
    flags: tuple[str, ...] = (),
    workers: int = 2,
) -> list[dict[str, Any]]:
    """What the server received from wakatime-cli for `heartbeats` (each with `entity` and
    `time`; entities unique), in their order; `settings` are extra `[settings]` lines, `flags`
    extra arguments; `workers` calls run at once."""
    items = list(heartbeats)
    with FakeWakaTime(api_key=ORACLE_KEY) as server, tempfile.TemporaryDirectory() as home:
        lines = {
            "api_url": server.url,
            "api_key": ORACLE_KEY,
            "heartbeat_rate_limit_seconds": "0",
            **(settings or {}),
        }
        cfg = "[settings]\n" + "".join(f"{key} = {value}\n" for key, value in lines.items())
        Path(home, ".wakatime.cfg").write_text(cfg)
        env = {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC"}
        run = functools.partial(_run_batch, binary, env, flags)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, _batches(items)))  # raises the first failure
        received = server.wait_for(len(items), timeout=30)
    order = {heartbeat["entity"]: index for index, heartbeat in enumerate(items)}
    return sorted(received, key=lambda item: order.get(item["entity"], len(order)))


def _run_batch(
    binary: Path, env: dict[str, str], flags: tuple[str, ...], batch: list[dict[str, Any]]
) -> None:
    extra = [{"type": "file", **heartbeat} for heartbeat in batch[1:]]
    command = [str(binary), *_flags(batch[0]), "--plugin", PLUGIN, "--disable-offline"]
    if extra:
        command.append("--extra-heartbeats")
    done = subprocess.run(
        [*command, *flags],
        input=json.dumps(extra),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        log = Path(env["HOME"], ".wakatime", "wakatime.log")
        tail = log.read_text()[-2000:] if log.exists() else done.stderr
        raise RuntimeError(f"wakatime-cli exited {done.returncode}: {tail}")
