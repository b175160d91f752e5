"""Where heartbeats go: the default server, `[[destinations]]` from the TOML file, and the
`[api_urls]` lines of ~/.wakatime.cfg (`<regex on the file path> = <api url>|<api key>`).

Each heartbeat is routed once, when it is stored; delivery is then tracked per destination.

`[api_urls]` is read the way wakatime-cli (2.x, pkg/params and pkg/apikey) reads it, so one
file means the same to both: each key is a regex searched (not anchored) in the file path,
case-insensitively; the value splits at its first `|` into URL and key, an empty URL meaning
the default URL and a missing or empty key the default key (or its key command); the URL loses a
trailing `/users/current/heartbeats[.bulk]`. A matching heartbeat goes there *as well as*
to the default server, never instead of it, and a line whose URL and key are the default's
(or an earlier line's) adds no second copy to the same account. A line wakatime-cli would
skip with a warning (a bad regex, a bad URL) is skipped here too, with a log line. Unlike
wakatime-cli, the key's format is not checked: self-hosted servers issue keys of their own
shapes.

Plain http to another machine: a URL from ~/.wakatime.cfg (or a plugin's `--api-url`) is
used, as wakatime-cli uses it, with one warning line; one from the agent's own TOML file or
environment needs `[api] allow_insecure_http = true`. Without it the destination keeps its
heartbeats queued, paused with a `problem` naming the file and key (`agent status`).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from agent.config import ConfigError, Settings, check_api_url, insecure_host
from agent.pipeline.heartbeat import Heartbeat
from agent.wakatime_cli import cfg as wakatime_cfg

log = logging.getLogger(__name__)

DEFAULT = "default"
PLUGIN_PREFIX = "plugin:"  # the servers plugins name with --api-url (plugin_server)


@dataclass(frozen=True)
class Destination:
    name: str
    url: str
    key: str | None = field(default=None, repr=False)
    key_command: str | None = field(default=None, repr=False)
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()
    # Why nothing may be sent there (a misconfigured URL): its heartbeats wait in the queue.
    problem: str | None = None

    def wants(self, entity: str) -> bool:
        """Exclude wins; an empty include list takes everything."""
        if any(p.search(entity) for p in self.exclude):
            return False
        return not self.include or any(p.search(entity) for p in self.include)


class KeySource:
    """A destination's API key: the configured one, or the output of its key command
    (run once, off the hot path, and never logged); failing both, the `fallback`'s."""

    def __init__(
        self, destination: Destination, fallback: Callable[[], str | None] | None = None
    ) -> None:
        self.destination = destination
        self.fallback = fallback
        self._lock = threading.Lock()
        self._resolved: str | None = destination.key

    def __call__(self) -> str | None:
        with self._lock:
            if self._resolved is None and self.destination.key_command:
                self._resolved = _run_key_command(self.destination)
            resolved = self._resolved
        return resolved or (self.fallback() if self.fallback else None)


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
    cfg = wakatime_cfg.load()
    cfg_url = wakatime_cfg.setting(cfg, "settings", "api_url").rstrip("/")
    own_file = str(settings.config_file or "the configuration file")
    if api.url == cfg_url:
        default_where = f"{wakatime_cfg.default_path()}: api_url"
    elif "HEARTBEAT_AGENT_API__URL" in os.environ:
        default_where = "environment HEARTBEAT_AGENT_API__URL"
    else:
        default_where = f"{own_file}: [api] url"
    found = [
        Destination(
            DEFAULT,
            api.url,
            api.key.get_secret_value() if api.key else None,
            api.key_command,
            problem=_plain_http(
                api.url, default_where, api.allow_insecure_http or api.url == cfg_url
            ),
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
                problem=_plain_http(item.url, f"{own_file}: {where}.url", api.allow_insecure_http),
            )
        )
    found[0], per_project = project_key_destinations(cfg.get("project_api_key", {}), found[0])
    found += per_project
    found += api_urls_destinations(cfg.get("api_urls", {}), found[0])
    names = [d.name for d in found]
    if duplicate := next((n for n in names if names.count(n) > 1), None):
        raise ConfigError(f"destinations: the name {duplicate!r} is used twice")
    return found


# Plain-http URLs already warned about: one line each per process, not one per reload.
_warned_plain_http: set[str] = set()


def _plain_http(url: str, where: str, allowed: bool) -> str | None:
    """None when `url` may be used (warning once if it is plain http to another machine);
    else the problem, naming where the URL was set and how to allow it."""
    host = insecure_host(url)
    if host is None:
        return None
    if not allowed:
        return (
            f"{where}: plain http to {host} would send the API key and your activity in the"
            " clear; use https, or set [api] allow_insecure_http = true (heartbeats stay"
            " queued meanwhile)"
        )
    if url not in _warned_plain_http:
        _warned_plain_http.add(url)
        log.warning("%s: sending over plain http to %s, not encrypted", where, host)
    return None


def project_key_destinations(
    section: dict[str, str], default: Destination
) -> tuple[Destination, list[Destination]]:
    """wakatime-cli's `[project_api_key]`: `<regex on the file path> = <api key>`; a matching
    heartbeat goes to the default server with that key *instead of* the default key. So the
    default destination leaves those paths out, and each line becomes a destination of its
    own. (wakatime-cli also refuses keys not shaped like its own; self-hosted keys differ.)"""
    where = f"{wakatime_cfg.default_path()}: [project_api_key]"
    found: list[Destination] = []
    for pattern, value in section.items():
        key = wakatime_cfg.unquoted(value)
        try:
            include = _patterns([pattern], where)
        except ConfigError as exc:
            log.warning("%s %s: line skipped: %s", where, pattern, exc)
            continue
        if not key or key == default.key:
            continue
        found.append(
            Destination(
                f"project_api_key:{pattern}",
                default.url,
                key,
                include=include,
                problem=default.problem,
            )
        )
    exclude = tuple(p for d in found for p in d.include)
    return replace(default, exclude=default.exclude + exclude), found


def api_urls_destinations(section: dict[str, str], default: Destination) -> list[Destination]:
    """wakatime-cli's `[api_urls]`: each line a path regex and `url|key` (see the module doc)."""
    where = f"{wakatime_cfg.default_path()}: [api_urls]"
    merged: dict[tuple[str, str | None, str | None], Destination] = {}
    for pattern, value in section.items():
        raw_url, _, raw_key = value.partition("|")
        if "://" in raw_key and "://" not in raw_url:
            # Never echoed: the first half is the key.
            log.warning("%s %s: line skipped: written key|url; the form is url|key", where, pattern)
            continue
        try:
            include = _patterns([pattern], where)
            url = check_api_url(
                _bulk_route_trimmed(raw_url.strip() or default.url), allow_insecure_http=True
            )
        except (ConfigError, ValueError) as exc:
            log.warning("%s %s: line skipped: %s", where, pattern, exc)
            continue
        key, key_command = raw_key.strip() or None, None
        if key is None:
            key, key_command = default.key, default.key_command
        account = (url, key, key_command)
        if account == (default.url, default.key, default.key_command):
            continue  # the default server gets every heartbeat already
        if account in merged:
            earlier = merged[account]
            merged[account] = replace(earlier, include=earlier.include + include)
        else:
            merged[account] = Destination(
                f"api_urls:{pattern}",
                url,
                key,
                key_command,
                include=include,
                problem=_plain_http(url, f"{where} {pattern}", True),
            )
    return list(merged.values())


def _bulk_route_trimmed(url: str) -> str:
    """An API base URL without the heartbeats route some users paste (wakatime-cli too)."""
    url = url.rstrip("/")
    for suffix in (".bulk", "/users/current/heartbeats", "/heartbeats", "/heartbeat"):
        url = url.removesuffix(suffix)
    return url


@dataclass(frozen=True)
class Router:
    destinations: tuple[Destination, ...]

    def route(self, heartbeat: Heartbeat) -> list[str]:
        """The destinations that want a heartbeat; one whose plugin named its own server
        (`server`) goes there in the default's place. A plugin's server gets only the
        heartbeats that named it: its key is that plugin's."""
        server = heartbeat.server
        names = [
            d.name
            for d in self.destinations
            if (d.name == server or not d.name.startswith(PLUGIN_PREFIX))
            and d.wants(heartbeat.entity)
        ]
        if server and DEFAULT in names:
            names = list(dict.fromkeys(server if n == DEFAULT else n for n in names))
        return names


def plugin_server(
    url: str, key: str | None, destinations: Sequence[Destination]
) -> Destination | None:
    """Where the heartbeats of a plugin that named its server (`--api-url`, with its
    `--key`) go: None for the default server's URL (the plugin's key then serves it only
    while it has none of its own); a configured destination with that URL, which keeps its
    own key; else a destination of the plugin's own, with the plugin's key, which is never
    sent anywhere else. Raises ValueError for a URL that is not http(s)."""
    url = check_api_url(_bulk_route_trimmed(url), allow_insecure_http=True)
    if destinations and url == destinations[0].url:
        return None
    for destination in destinations:
        if destination.url == url and not destination.name.startswith(PLUGIN_PREFIX):
            return destination
    return Destination(
        f"{PLUGIN_PREFIX}{url}", url, key, problem=_plain_http(url, "a plugin's --api-url", True)
    )
