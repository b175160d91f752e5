"""`agent detect PATH...`: what a heartbeat for each path would carry, and why."""

from __future__ import annotations

import argparse
import json
import os

from agent.commands.common import add_config_option, run_command, settings_from


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agent detect", description=__doc__)
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("--json", action="store_true", help="a JSON list, one object per path")
    add_config_option(parser)
    return run_command(_detect, parser.parse_args(argv))


def _detect(args: argparse.Namespace) -> int:
    from agent.pipeline.builder import HeartbeatBuilder, detect_options, privacy_for
    from agent.pipeline.detect import Detector

    settings = settings_from(args)
    builder = HeartbeatBuilder(Detector(detect_options(settings)), privacy_for(settings))
    report = builder.report([os.path.realpath(p) for p in args.paths])
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for item in report:
        print(item["entity"])
        for key in ("project", "branch", "language", "lines"):
            print(f"  {key:<13}{item.get(key) if item.get(key) is not None else '-'}")
        deps = item.get("dependencies") or []
        print(f"  {'dependencies':<13}{', '.join(deps) if deps else '-'}")
    return 0
