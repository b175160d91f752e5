"""`agent status [--json]`: how the running daemon is doing: pid, uptime, watched folders,
the queue, the last delivery and error, today's time, and each destination.

With no daemon it says so and exits 1; `--json` then still reports what the database
knows, with `"running": false`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from agent.commands.common import CommandError, add_config_option, run_command, settings_from

if TYPE_CHECKING:
    from agent.config import Settings

NOT_RUNNING = 1
# What `render` reads of the daemon's answer.
REPORT_KEYS = (
    "pid",
    "uptime_seconds",
    "watching",
    "today_seconds",
    "queued",
    "rejected",
    "delivered_total",
    "last_delivery",
    "last_error",
    "destinations",
    "database",
    "socket",
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agent status", description=__doc__)
    parser.add_argument("--json", action="store_true", help="one JSON object, stable for scripts")
    add_config_option(parser)
    return run_command(_status, parser.parse_args(argv))


def _status(args: argparse.Namespace) -> int:
    from agent.ipc.client import DaemonUnavailable, UntrustedSocket, request

    settings = settings_from(args)
    try:
        answer = request({"op": "status"}, settings.socket_path(), timeout=30.0)
    except UntrustedSocket as exc:
        print(f"agent: {exc}; not asking it", file=sys.stderr)
        return _not_running(settings, args.json)
    except DaemonUnavailable:
        return _not_running(settings, args.json)
    if not answer.pop("ok", False):
        raise CommandError(f"the daemon answered: {answer.get('error')}")
    if missing := [key for key in REPORT_KEYS if key not in answer]:
        raise CommandError(
            f"{settings.socket_path()} answered a status without {', '.join(missing)}:"
            " is that this agent's daemon?"
        )
    report = {"running": True, **answer}
    try:
        print(json.dumps(report, indent=2) if args.json else render(report))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CommandError(
            f"{settings.socket_path()} answered a status this agent cannot read ({exc!r}):"
            " is that this agent's daemon, of this version?"
        ) from None
    return 0


def _not_running(settings: Settings, as_json: bool) -> int:
    socket = settings.socket_path()
    if not as_json:
        print(
            f"agent: no daemon is running (nothing answers at {socket}); start one with"
            " `agent run`, or `agent service install` to have it always running",
            file=sys.stderr,
        )
        return NOT_RUNNING
    print(json.dumps(offline_report(settings), indent=2))
    return NOT_RUNNING


def offline_report(settings: Settings) -> dict[str, Any]:
    """The status keys, as far as the database can answer them without a daemon."""
    import time

    from agent.commands.queue import open_store
    from agent.pipeline.destinations import configured_destinations
    from agent.reports import status_report

    with open_store(settings) as store:
        return status_report(store, settings, configured_destinations(settings), time.time())


def render(report: dict[str, Any]) -> str:
    """One glanceable block."""
    from agent.pipeline.stats import format_duration

    lines = [
        f"heartbeat-agent {report.get('version', '')} running"
        f" (pid {report['pid']}, up {format_duration(report['uptime_seconds'])})",
        *_watch_lines(report),
        _field("today", format_duration(report["today_seconds"])),
        _field(
            "queue",
            f"{report['queued']:,} queued, {report['rejected']:,} rejected,"
            f" {report['delivered_total']:,} delivered",
        ),
        _field("last sent", report["last_delivery"] or "never"),
    ]
    destinations = report["destinations"]
    several = len(destinations) > 1
    if report["last_error"] and not several:  # with several, each says its own below
        lines.append(_field("last error", report["last_error"]))
    limit = report.get("max_queued")
    if limit is not None and report["queued"] > limit:
        lines.append(
            f"  ! more than [queue] max_queued = {limit:,} heartbeats wait: none is dropped,"
            " but delivery is not keeping up"
        )
    if several:
        lines.append("  destinations")
        width = max(len(d["name"]) for d in destinations)
        for d in destinations:
            state = d["paused"] or d["last_error"] or "ok"
            lines.append(
                f"    {d['name']:<{width}}  {d['url']}  {d['queued']:,} queued,"
                f" {d['rejected']:,} rejected  {state}"
            )
    if report.get("database_reset"):
        lines.append(
            _field("note", f"found unusable at startup, moved to {report['database_reset']}")
        )
    lines += [_field("database", report["database"]), _field("socket", report["socket"])]
    return "\n".join(lines)


def _watch_lines(report: dict[str, Any]) -> list[str]:
    """Each watched folder with why it is watched; folders waiting to exist; decisions."""
    reasons = {root["path"]: root["reason"] for root in report.get("watch_roots", [])}
    watching = report["watching"]
    lines = [
        _field(
            "watching" if index == 0 else "",
            f"{path}  ({reasons[path]})" if path in reasons else path,
        )
        for index, path in enumerate(watching)
    ] or [_field("watching", report.get("watch_problem") or "nothing")]
    lines += [
        _field("waiting", f"{path}  (configured; watched once it exists)")
        for path in report.get("watch_waiting", [])
    ]
    lines += [_field("note", note) for note in report.get("watch_notes", [])]
    return lines


def _field(name: str, value: str) -> str:
    return f"  {name:<11}{value}"
