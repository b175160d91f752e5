"""`agent config show [--json]`: the effective settings and where each came from (default,
the TOML file, the environment, or ~/.wakatime.cfg / WAKATIME_API_KEY), secrets masked.

Keys, passwords and tokens never appear: only whether they are set.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.commands.common import add_config_option, run_command, settings_from

if TYPE_CHECKING:
    from pydantic import BaseModel

    from agent.config import Settings

MASK = "******** (set)"
Key = tuple[str, ...]  # a setting's path: ("api", "key")
ENV_PREFIX = "HEARTBEAT_AGENT_"
_MISSING = object()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agent config", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    show = commands.add_parser("show", help="the effective settings and their sources")
    show.add_argument("--json", action="store_true", help="one JSON object")
    add_config_option(show)
    return run_command(_show, parser.parse_args(argv))


def _show(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    report = effective_settings(settings, args.config)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def effective_settings(settings: Settings, explicit_file: str | None) -> dict[str, Any]:
    """Every setting as `{"value", "source", "origin"}` (source: default, file, env,
    wakatime_cfg; origin: the file or variable), the destinations, and derived paths."""
    from agent.config import find_config_file, read_toml, wakatime_fallback

    path, required = find_config_file(explicit_file)
    file_data = read_toml(path, required)
    fallback = wakatime_fallback()
    entries = {
        ".".join(key): {"value": public(value), **_source(key, value, path, file_data, fallback)}
        for key, value in _leaves(settings)
    }
    return {
        "config_file": str(path),
        "config_file_exists": path.exists(),
        "settings": entries,
        "destinations": _destinations(settings),
        "database": str(settings.database_path()),
        "socket": str(settings.socket_path()),
    }


def _leaves(model: BaseModel, prefix: Key = ()) -> Iterator[tuple[Key, Any]]:
    """(dotted key, value) for every setting; sections are walked, lists kept whole."""
    from pydantic import BaseModel

    for name, field in type(model).model_fields.items():
        if field.exclude:
            continue
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _leaves(value, (*prefix, name))
        else:
            yield (*prefix, name), value


def public(value: Any) -> Any:
    """A value fit to print: secrets masked, URLs without passwords, paths as text."""
    from pydantic import BaseModel, SecretStr

    from agent.redact import redact_url

    if isinstance(value, SecretStr):
        return MASK
    if isinstance(value, BaseModel):
        return {name: public(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, list | tuple):
        return [public(item) for item in value]
    if isinstance(value, dict):
        return {str(key): public(item) for key, item in value.items()}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


def _source(
    key: tuple[str, ...],
    value: Any,
    path: Path,
    file_data: dict[str, Any],
    fallback: dict[str, Any],
) -> dict[str, str | None]:
    if variable := _env_variable(key):
        return {"source": "env", "origin": variable}
    if _lookup(file_data, key) is not _MISSING:
        return {"source": "file", "origin": str(path)}
    from_fallback = _lookup(fallback, key)
    plain = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    if from_fallback is not _MISSING and from_fallback == plain:
        if key == ("api", "key") and os.environ.get("WAKATIME_API_KEY"):
            return {"source": "env", "origin": "WAKATIME_API_KEY"}
        from agent.wakatime_cli import cfg as wakatime_cfg

        return {"source": "wakatime_cfg", "origin": str(wakatime_cfg.default_path())}
    return {"source": "default", "origin": None}


def _env_variable(key: Key) -> str | None:
    """The HEARTBEAT_AGENT_… variable that sets a key: its own, or its section's as JSON
    (names match whatever their case, as pydantic-settings reads them)."""
    present = {name.upper(): name for name in os.environ if name.upper().startswith(ENV_PREFIX)}
    for depth in range(len(key), 0, -1):
        name = present.get(ENV_PREFIX + "__".join(part.upper() for part in key[:depth]))
        if name is None:
            continue
        if depth == len(key):
            return name
        try:
            nested = json.loads(os.environ[name])
        except ValueError:
            continue
        if _lookup(nested, key[depth:]) is not _MISSING:
            return name
    return None


def _lookup(data: Any, key: Key) -> Any:
    for part in key:
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


def _destinations(settings: Settings) -> list[dict[str, Any]]:
    """Where heartbeats go, [api_urls] of ~/.wakatime.cfg included; keys as set or not."""
    from agent.config import ConfigError
    from agent.delivery.sender import display_url
    from agent.pipeline.destinations import DEFAULT, configured_destinations

    try:
        destinations = configured_destinations(settings)
    except ConfigError as exc:
        return [{"error": str(exc)}]
    oauth = _oauth_state(settings)
    return [
        {
            "name": d.name,
            "url": display_url(d.url),
            "key": (oauth if d.name == DEFAULT else None)
            or (MASK if d.key else ("from key_command" if d.key_command else None)),
            "include": [p.pattern for p in d.include],
            "exclude": [p.pattern for p in d.exclude],
        }
        for d in destinations
    ]


def _oauth_state(settings: Settings) -> str | None:
    """How the default server is reached when `agent login` stored tokens (they are used
    before any API key), else None."""
    from agent.delivery.auth import AuthError, TokenStore, token_path

    try:
        tokens = TokenStore(token_path(settings)).load()
    except AuthError as exc:
        return f"OAuth token file unusable ({exc})"
    return "OAuth tokens from `agent login`" if tokens is not None else None


def render(report: dict[str, Any]) -> str:
    found = "" if report["config_file_exists"] else "  (not found: defaults apply)"
    lines = [f"Configuration file: {report['config_file']}{found}", ""]
    width = max(len(key) for key in report["settings"])
    for key, entry in report["settings"].items():
        value = entry["value"]
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        origin = entry["source"] if entry["source"] != "env" else f"env {entry['origin']}"
        if entry["source"] == "wakatime_cfg":
            origin = entry["origin"]
        lines.append(f"  {key:<{width}}  {shown}   [{origin}]")
    lines += ["", "Destinations:"]
    for d in report["destinations"]:
        if "error" in d:
            lines.append(f"  {d['error']}")
            continue
        key = d["key"] or "no key"
        only = f"  include {d['include']}" if d["include"] else ""
        lines.append(f"  {d['name']}  {d['url']}  key: {key}{only}")
    lines += ["", f"Database: {report['database']}", f"Socket:   {report['socket']}"]
    return "\n".join(lines)
