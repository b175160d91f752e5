"""Where heartbeats go: the default server, `[[destinations]]` from the TOML file, and the
`[api_urls]` lines of ~/.wakatime.cfg (`<regex on the file path> = <api url>|<api key>`).

Each heartbeat is routed once, when it is stored; delivery is then tracked per destination.
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from agent import wakatime_cfg
from agent.config import ConfigError, Settings, check_api_url
from agent.heartbeat import Heartbeat

log = logging.getLogger(__name__)

DEFAULT = "default"


@dataclass(frozen=True)
class Destination:
    name: str
    url: str
    key: str | None = field(default=None, repr=False)
    key_command: str | None = field(default=None, repr=False)
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()

    def wants(self, entity: str) -> bool:
        """Exclude wins; an empty include list takes everything."""
        if any(p.search(entity) for p in self.exclude):
            return False
        return not self.include or any(p.search(entity) for p in self.include)


class KeySource:
    """A destination's API key: the configured one, or the output of its key command
    (run once, off the hot path, and never logged)."""

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self._lock = threading.Lock()
        self._resolved: str | None = destination.key

    def __call__(self) -> str | None:
        with self._lock:
            if self._resolved is None and self.destination.key_command:
                self._resolved = _run_key_command(self.destination)
            return self._resolved


def _run_key_command(destination: Destination) -> str | None:
    command = destination.key_command or ""
    try:
        done = subprocess.run(
            shlex.split(command), capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        log.error("%s: the key command could not run: %s", destination.name, exc)
        return None
    if done.returncode != 0 or not done.stdout.strip():
        log.error(
            "%s: the key command exited %d without printing a key",
            destination.name,
            done.returncode,
        )
        return None
    return done.stdout.strip()


def _patterns(values: Sequence[str], where: str) -> tuple[re.Pattern[str], ...]:
    try:
        return tuple(re.compile(v, re.IGNORECASE) for v in values)
    except re.error as exc:
        raise ConfigError(f"{where}: invalid regular expression {exc.pattern!r}: {exc}") from None


def configured_destinations(settings: Settings) -> list[Destination]:
    """Every destination, the default first; names are unique."""
    api = settings.api
    found = [
        Destination(
            DEFAULT,
            api.url,
            api.key.get_secret_value() if api.key else None,
            api.key_command,
        )
    ]
    for index, item in enumerate(settings.destinations):
        where = f"destinations[{index}] ({item.name})"
        found.append(
            Destination(
                item.name,
                item.url,
                item.key.get_secret_value() if item.key else None,
                item.key_command,
                _patterns(item.include, f"{where}.include"),
                _patterns(item.exclude, f"{where}.exclude"),
            )
        )
    found += api_urls_destinations(wakatime_cfg.load().get("api_urls", {}))
    names = [d.name for d in found]
    if duplicate := next((n for n in names if names.count(n) > 1), None):
        raise ConfigError(f"destinations: the name {duplicate!r} is used twice")
    return found


def api_urls_destinations(section: dict[str, str]) -> list[Destination]:
    """wakatime-cli's `[api_urls]`: each line a path regex and `url|key`."""
    where = wakatime_cfg.default_path()
    found = []
    for pattern, value in section.items():
        url, _, key = value.partition("|")
        try:
            url = check_api_url(url)
        except ValueError as exc:
            raise ConfigError(f"{where}: [api_urls] {pattern}: {exc}") from None
        found.append(
            Destination(
                f"api_urls:{pattern}",
                url,
                key.strip() or None,
                include=_patterns([pattern], f"{where}: [api_urls]"),
            )
        )
    return found


@dataclass(frozen=True)
class Router:
    destinations: tuple[Destination, ...]

    def route(self, heartbeat: Heartbeat) -> list[str]:
        return [d.name for d in self.destinations if d.wants(heartbeat.entity)]
