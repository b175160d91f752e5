"""`agent why PATH [--json]`: why the latest writes to PATH counted as coding or not.

Asks the running daemon, which remembers its latest decision on each of the last few hundred
paths written: counted (a person's save), or dropped and by which rule (written by a git/hg
operation or a tool run, a plugin's heartbeat of the same save, a temporary file); and whether
the ignore rules skip the file altogether.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from agent.commands.common import CommandError, add_config_option, run_command, settings_from

NOT_RUNNING = 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agent why", description=__doc__)
    parser.add_argument("path", metavar="PATH", help="a file in a watched folder")
    parser.add_argument("--json", action="store_true", help="the daemon's answer as JSON")
    add_config_option(parser)
    return run_command(_why, parser.parse_args(argv))


def _why(args: argparse.Namespace) -> int:
    from agent.ipc.client import DaemonUnavailable, request

    settings = settings_from(args)
    path = os.path.abspath(args.path)
    try:
        answer = request({"op": "why", "path": path}, settings.socket_path(), timeout=30.0)
    except DaemonUnavailable:
        print(
            f"agent: no daemon is running (nothing answers at {settings.socket_path()});"
            " only the running daemon knows why a write counted",
            file=sys.stderr,
        )
        return NOT_RUNNING
    if not answer.pop("ok", False):
        raise CommandError(f"the daemon answered: {answer.get('error')}")
    print(json.dumps(answer, indent=2) if args.json else render(answer))
    return 0


def render(answer: dict[str, Any]) -> str:
    lines = [answer["path"]]
    if answer.get("ignored"):
        lines.append(f"  never counted: {answer['ignored']}")
    decision = answer.get("decision")
    if decision is None:
        lines.append("  no recent write of it seen")
    else:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(decision["time"]))
        verdict = "counted" if decision["counted"] else f"not counted ({decision['writer']})"
        lines.append(f"  last write {at}: {verdict}: {decision['reason']}")
    if answer.get("held"):
        lines.append("  a newer write is held: its fate is decided within a minute")
    return "\n".join(lines)
