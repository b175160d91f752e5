"""`agent stats [RANGE]`: coding statistics from the server, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import TYPE_CHECKING

from agent.commands.common import (
    CommandError,
    add_config_option,
    run_command,
    settings_from,
    setup_logging,
)

if TYPE_CHECKING:
    from agent.delivery.api import Item, Stats

RANGES = ("last_7_days", "last_30_days", "last_6_months", "last_year", "all_time")
RANGE_PATTERN = re.compile(r"(?:" + "|".join(RANGES) + r"|\d{4}|\d{4}-\d{2})")
SECTIONS = (
    ("Projects", "projects"),
    ("Languages", "languages"),
    ("Editors", "editors"),
    ("Operating systems", "operating_systems"),
    ("Categories", "categories"),
    ("Machines", "machines"),
)
ROWS_PER_SECTION = 10
BAR_WIDTH = 20


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agent stats", description=__doc__)
    parser.add_argument(
        "range",
        nargs="?",
        default="last_7_days",
        type=_range,
        help=f"one of {', '.join(RANGES)}, a year (2025) or a month (2025-06); default last_7_days",
    )
    parser.add_argument("--json", action="store_true", help="the server's stats as JSON")
    add_config_option(parser)
    return run_command(_stats, parser.parse_args(argv))


def _range(value: str) -> str:
    if not RANGE_PATTERN.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a range: use {', '.join(RANGES)}, YYYY or YYYY-MM"
        )
    return value


def _stats(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    setup_logging(settings.log.level, args.verbose)
    from agent.delivery.api import ApiError, WakaTimeApi

    api = WakaTimeApi.from_settings(settings)
    with api:
        try:
            stats = api.stats(args.range, on_pending=_say_pending)
        except ApiError as exc:
            raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps(stats.model_dump(mode="json"), indent=2))
    else:
        print(render(stats))
    return 0


def _say_pending(stats: Stats, wait: float) -> None:
    done = f" ({stats.percent_calculated:g}% done)" if stats.percent_calculated else ""
    print(
        f"The server is still computing these stats{done}; asking again in {wait:g} s…",
        file=sys.stderr,
        flush=True,
    )


def render(stats: Stats) -> str:
    """A readable table: the totals, then the top rows of each breakdown with a bar."""
    title = (stats.range or "stats").replace("_", " ").capitalize()
    if stats.start and stats.end:
        title += f" ({stats.start:%Y-%m-%d} – {stats.end:%Y-%m-%d})"
    if stats.username:
        title += f", {stats.username}"
    lines = [
        title,
        f"  {'Total':<24}{stats.human_readable_total or '0 secs'}",
        f"  {'Daily average':<24}{stats.human_readable_daily_average or '0 secs'}",
    ]
    for heading, name in SECTIONS:
        items: list[Item] = getattr(stats, name)
        if not items:
            continue
        lines += ["", heading]
        lines += [_row(item) for item in items[:ROWS_PER_SECTION]]
        if len(items) > ROWS_PER_SECTION:
            lines.append(f"  … and {len(items) - ROWS_PER_SECTION} more")
    return "\n".join(lines)


def _row(item: Item) -> str:
    filled = round(BAR_WIDTH * min(max(item.percent, 0.0), 100.0) / 100)
    name = item.name if len(item.name) <= 24 else item.name[:23] + "…"
    return f"  {name:<24}{item.text:>16} {item.percent:6.1f}%  {'█' * filled}"
