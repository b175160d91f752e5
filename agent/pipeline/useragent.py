"""The identity a request carries: User-Agent, machine name and time zone, as wakatime-cli
sends them, because servers read editor, OS and day boundaries from these headers."""

from __future__ import annotations

import functools
import os
import platform
import socket
from pathlib import Path

from agent import __version__

AGENT_PLUGIN = f"heartbeat-agent/{__version__}"


@functools.cache
def _prefix() -> str:
    system = platform.system().lower() or "unknown"
    return (
        f"wakatime/{__version__} ({system}-{platform.release()}-{platform.machine()})"
        f" Python{platform.python_version()}"
    )


def full_user_agent(plugin: str | None) -> str:
    """`wakatime/<ver> (<os>-<release>-<arch>) Python<ver> <plugin>`; a string that is
    already a full wakatime user agent is kept as it is."""
    plugin = (plugin or "").strip() or AGENT_PLUGIN
    if plugin.startswith("wakatime/"):
        return plugin
    return f"{_prefix()} {plugin}"


@functools.cache
def local_timezone() -> str:
    """The IANA name of the local zone (`Europe/Berlin`), else UTC."""
    if tz := os.environ.get("TZ", "").lstrip(":"):
        return tz
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    try:
        return Path("/etc/timezone").read_text().strip() or "UTC"
    except OSError:
        return "UTC"


def machine_name(configured: str | None = None) -> str:
    return configured or socket.gethostname()


def request_headers(authorization: str, hostname: str, user_agent: str | None) -> dict[str, str]:
    return {
        "Authorization": authorization,
        "User-Agent": full_user_agent(user_agent),
        "X-Machine-Name": hostname,
        "TimeZone": local_timezone(),
    }
