"""Coding time from heartbeat times, the way WakaTime counts it. Pure."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Protocol

DEFAULT_TIMEOUT = 900.0


def durations(times: Iterable[float], timeout: float = DEFAULT_TIMEOUT) -> float:
    """Total seconds covered by heartbeats: sorted, consecutive ones at most ``timeout`` apart are
    joined by the time between them; a longer gap is a break and adds nothing. A lone heartbeat
    adds nothing (WakaTime's keystroke timeout rule)."""
    ordered = sorted(times)
    gaps = (later - earlier for earlier, later in pairwise(ordered))
    return sum((gap for gap in gaps if gap <= timeout), 0.0)


def format_duration(seconds: float) -> str:
    """As WakaTime writes a total: `3 hrs 12 mins`, `1 hr 1 min`, `5 mins`, `0 secs`."""
    minutes_total = int(seconds // 60)
    hours, minutes = divmod(minutes_total, 60)
    if not hours and not minutes:
        return f"{int(seconds)} sec" + ("" if int(seconds) == 1 else "s")
    parts = []
    if hours:
        parts.append(f"{hours} hr" + ("" if hours == 1 else "s"))
    if minutes:
        parts.append(f"{minutes} min" + ("" if minutes == 1 else "s"))
    return " ".join(parts)


# ----- summaries: where a day's time went ------------------------------------------------

# Editors as WakaTime names them, by the plugin word of a User-Agent (`vim-wakatime/11.0`).
EDITOR_NAMES = {
    "vim": "Vim",
    "neovim": "Neovim",
    "nvim": "Neovim",
    "vscode": "VS Code",
    "code": "VS Code",
    "emacs": "Emacs",
    "sublime": "Sublime Text",
    "jetbrains": "JetBrains",
    "zed": "Zed",
    "heartbeat-agent": "heartbeat-agent",
}


class ActivityRow(Protocol):
    """What a summary reads from a heartbeat (store.HistoryRow has it)."""

    @property
    def time(self) -> float: ...
    @property
    def entity(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def project(self) -> str | None: ...
    @property
    def branch(self) -> str | None: ...
    @property
    def language(self) -> str | None: ...
    @property
    def user_agent(self) -> str | None: ...


def editor_name(user_agent: str | None) -> str:
    """The editor a User-Agent names: its last `name/version` word, `-wakatime` dropped."""
    words = (user_agent or "").split()
    name = (words[-1] if words else "").partition("/")[0].lower().removesuffix("-wakatime")
    return EDITOR_NAMES.get(name, name or "Unknown Editor")


# Each breakdown and how a heartbeat is named in it (WakaTime's names for the unknown).
BREAKDOWNS: dict[str, Callable[[ActivityRow], str]] = {
    "projects": lambda row: row.project or "Unknown Project",
    "languages": lambda row: row.language or "Other",
    "categories": lambda row: row.category or "coding",
    "editors": lambda row: editor_name(row.user_agent),
    "branches": lambda row: row.branch or "Unknown",
    "entities": lambda row: row.entity,
}


@dataclass(frozen=True, slots=True)
class SummaryItem:
    """One row of a breakdown: a name and its share of the time."""

    name: str
    total_seconds: float
    percent: float

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "total_seconds": round(self.total_seconds, 3),
            "percent": self.percent,
            "text": format_duration(self.total_seconds),
        }


@dataclass(frozen=True, slots=True)
class Summary:
    """Coding time within [start, end) and its breakdowns (keys of BREAKDOWNS), largest first."""

    start: float
    end: float
    total_seconds: float
    breakdowns: dict[str, tuple[SummaryItem, ...]]

    @property
    def text(self) -> str:
        return format_duration(self.total_seconds)

    def to_json(self, limit: int | None = None) -> dict[str, Any]:
        """The shape `agent today --json` and the daemon's `today` answer carry; ``limit``
        keeps the largest rows of each breakdown (a day may touch thousands of files)."""
        return {
            "total_seconds": round(self.total_seconds, 3),
            "text": self.text,
            **{
                name: [item.to_json() for item in items[:limit]]
                for name, items in self.breakdowns.items()
            },
        }


def summarize(
    rows: Iterable[ActivityRow], start: float, end: float, timeout: float = DEFAULT_TIMEOUT
) -> Summary:
    """Time within [start, end) in total and per project, language, category, editor, branch
    and entity. Each heartbeat counts for the time to the next one when that is at most
    ``timeout`` away (the rule of `durations`), credited to the earlier heartbeat and clipped
    to the range: pass the heartbeats from ``start - timeout`` on, and a session across
    midnight is split between the two days as WakaTime splits it. Order does not matter."""
    ordered = sorted(rows, key=lambda row: row.time)
    totals: dict[str, dict[str, float]] = {name: {} for name in BREAKDOWNS}
    grand_total = 0.0
    for current, following in pairwise(ordered):
        if following.time - current.time > timeout:
            continue
        seconds = min(following.time, end) - max(current.time, start)
        if seconds <= 0:
            continue
        grand_total += seconds
        for breakdown, name_of in BREAKDOWNS.items():
            bucket = totals[breakdown]
            name = name_of(current)
            bucket[name] = bucket.get(name, 0.0) + seconds
    return Summary(
        start,
        end,
        grand_total,
        {name: _ranked(bucket, grand_total) for name, bucket in totals.items()},
    )


def _ranked(bucket: dict[str, float], grand_total: float) -> tuple[SummaryItem, ...]:
    ranked = sorted(bucket.items(), key=lambda pair: (-pair[1], pair[0]))
    return tuple(
        SummaryItem(name, seconds, round(100 * seconds / grand_total, 2) if grand_total else 0.0)
        for name, seconds in ranked
    )


def iso_time(value: float | None) -> str | None:
    """A timestamp as local ISO 8601 with its offset (`2025-06-01T14:02:09+0200`)."""
    if value is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(value))


def day_bounds(now: float) -> tuple[float, float]:
    """Local midnight before ``now`` and the next one, in the zone of ``TZ`` / the system
    (DST-safe: a day may be 23 or 25 hours long)."""
    local = time.localtime(now)
    start = time.mktime((local.tm_year, local.tm_mon, local.tm_mday, 0, 0, 0, 0, 0, -1))
    end = time.mktime((local.tm_year, local.tm_mon, local.tm_mday + 1, 0, 0, 0, 0, 0, -1))
    return start, end


def today_summary(
    history: Callable[[float, float], Iterable[ActivityRow]], now: float, timeout: float
) -> Summary:
    """The summary of the local day around ``now`` from a history reader such as
    `HeartbeatStore.history`, reading ``timeout`` beyond both midnights so that a session
    across one is split there, not lost on either side. The timeout has no default: a day's
    total is counted with the configured one (`reports.day_summary`), everywhere."""
    start, end = day_bounds(now)
    return summarize(history(start - timeout, end + timeout), start, end, timeout)


# ----- the plugins' status bar (`wakatime-cli --today`, DESIGN §2a) ------------------------

# Category names as the status bar writes them, where title case gets them wrong.
STATUS_BAR_CATEGORY_NAMES = {"ai coding": "AI Coding"}
STATUS_BAR_BREAKDOWNS = ("categories", "languages", "projects", "editors")


def status_bar(summary: Summary, now: float, timezone: str) -> dict[str, Any]:
    """The server's `status_bar/today` answer, which `--today --output raw-json` prints and
    status lines parse, made from a local summary of the day."""

    def counter(seconds: float) -> dict[str, Any]:
        hours, minutes = divmod(int(seconds) // 60, 60)
        return {
            "decimal": f"{hours + minutes / 60:.2f}",
            "digital": f"{hours}:{minutes:02d}",
            "hours": hours,
            "minutes": minutes,
            "text": format_duration(seconds),
            "total_seconds": round(seconds, 3),
        }

    def item(breakdown: str, entry: SummaryItem) -> dict[str, Any]:
        name = entry.name
        if breakdown == "categories":
            name = STATUS_BAR_CATEGORY_NAMES.get(name, name.title())
        return {
            "name": name,
            "percent": entry.percent,
            "seconds": int(entry.total_seconds) % 60,
            **counter(entry.total_seconds),
        }

    iso = "%Y-%m-%dT%H:%M:%S%z"
    data: dict[str, Any] = {
        "grand_total": counter(summary.total_seconds),
        **{
            name: [item(name, entry) for entry in summary.breakdowns.get(name, ())]
            for name in STATUS_BAR_BREAKDOWNS
        },
        "dependencies": [],
        "machines": [],
        "operating_systems": [],
        "range": {
            "date": time.strftime("%Y-%m-%d", time.localtime(summary.start)),
            "start": time.strftime(iso, time.localtime(summary.start)),
            "end": time.strftime(iso, time.localtime(summary.end - 1)),
            "text": "Today",
            "timezone": timezone,
        },
    }
    return {
        "cached_at": time.strftime(iso, time.localtime(now)),
        "data": data,
        "has_team_features": False,
    }
