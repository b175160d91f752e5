"""`agent today [--json]`: today's coding time, with its top projects and languages.

The local figure comes from the history of heartbeats on this machine (from the daemon, or
read from the database when none runs), so it works offline. When the server answers, its
figure is shown instead (it also counts other machines) and `source` is "server".
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from agent.commands.common import add_config_option, run_command, settings_from, setup_logging

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.delivery.api import Item

log = logging.getLogger(__name__)

SERVER_TIMEOUT = 5.0  # seconds: a glance must not hang on a slow server
SHOWN_ROWS = 5
BAR_WIDTH = 20
NAME_WIDTH = 22


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agent today", description=__doc__)
    parser.add_argument("--json", action="store_true", help="one JSON object, stable for scripts")
    parser.add_argument(
        "--offline", action="store_true", help="only the local history; do not ask the server"
    )
    add_config_option(parser)
    return run_command(_today, parser.parse_args(argv))


def _today(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    setup_logging("warning", args.verbose)
    local = local_today(settings)
    server, problem = (None, None) if args.offline else server_today(settings)
    report = combine(local, server, problem)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def local_today(settings: Settings) -> dict[str, Any]:
    """Today from the daemon's history, or straight from the database when no daemon runs."""
    from agent.ipc.client import DaemonUnavailable, request

    try:
        answer = request({"op": "today"}, settings.socket_path(), timeout=30.0)
        if answer.pop("ok", False):
            return answer
    except DaemonUnavailable:
        pass
    from agent.commands.queue import open_store
    from agent.reports import today_report

    with open_store(settings) as store:
        return today_report(store, settings, time.time(), rows=SHOWN_ROWS * 2)


def server_today(settings: Settings) -> tuple[dict[str, Any] | None, str | None]:
    """The server's summary of today (in the user's timezone there), or why there is none."""
    from agent.config import ConfigError
    from agent.delivery.api import ApiError, WakaTimeApi

    settings.api.timeout = min(settings.api.timeout, SERVER_TIMEOUT)
    day = time.strftime("%Y-%m-%d")
    try:
        with WakaTimeApi.from_settings(settings) as api:
            summaries = api.summaries(day, day)
    except (ApiError, ConfigError) as exc:
        log.debug("the server's figure for today: %s", exc)
        return None, str(exc)
    if not summaries.data:
        return None, "the server sent no summary for today"
    summary = summaries.data[0]
    return {
        "total_seconds": summary.grand_total.total_seconds,
        "projects": _items(summary.projects),
        "languages": _items(summary.languages),
    }, None


def _items(items: list[Item]) -> list[dict[str, Any]]:
    """The server's breakdown rows in the shape of the local ones."""
    from agent.pipeline.stats import SummaryItem

    return [SummaryItem(i.name, i.total_seconds, i.percent).to_json() for i in items]


def combine(
    local: dict[str, Any], server: dict[str, Any] | None, problem: str | None
) -> dict[str, Any]:
    """The report: the server's figure and breakdowns when it answered, else the local ones;
    both figures are kept for comparison."""
    from agent.pipeline.stats import format_duration

    shown = server or local
    return {
        "total_seconds": round(shown["total_seconds"], 3),
        "text": format_duration(shown["total_seconds"]),
        "source": "server" if server else "local",
        "local_seconds": local["total_seconds"],
        "server_seconds": server["total_seconds"] if server else None,
        "server_error": problem,
        "projects": shown.get("projects", []),
        "languages": shown.get("languages", []),
    }


def render(report: dict[str, Any]) -> str:
    """One glanceable block: the total, then the top projects and languages with bars."""
    from agent.pipeline.stats import format_duration

    if report["source"] == "server":
        where = f"server; {format_duration(report['local_seconds'])} recorded on this machine"
    else:
        where = "local history" + (
            f"; server: {report['server_error']}" if report["server_error"] else ""
        )
    lines = [f"Today  {report['text']}  ({where})"]
    for heading in ("projects", "languages"):
        items = report[heading][:SHOWN_ROWS]
        if items:
            lines += ["", heading.capitalize()]
            lines += [_row(item) for item in items]
    return "\n".join(lines)


def _row(item: dict[str, Any]) -> str:
    from agent.pipeline.stats import format_duration

    percent = min(max(float(item.get("percent") or 0.0), 0.0), 100.0)
    filled = round(BAR_WIDTH * percent / 100)
    name = str(item["name"])
    if len(name) > NAME_WIDTH:
        name = name[: NAME_WIDTH - 1] + "…"
    bar = "█" * filled + "░" * (BAR_WIDTH - filled)
    text = format_duration(float(item["total_seconds"]))
    return f"  {name:<{NAME_WIDTH}} {text:>14}  {bar} {percent:3.0f}%"
