"""`agent heartbeat`, bare `agent --entity …` and `wakatime-cli …`: wakatime-cli's command
line (DESIGN §2a), answered by the daemon over the socket.

A plugin spawns this on every save, so the common case — a heartbeat or `--today` with the
daemon up — imports nothing beyond the standard library's startup set, `agent.wakatime_cli.args` and
the IPC client. Everything heavier (settings, SQLite, detection) loads only when no daemon
answers, and then goes through `_full_python()` so a launcher started with `python -S`
(what `agent plugins install` writes, to skip `site`) still finds its dependencies.

Silence is part of the contract: a successful heartbeat prints nothing at all. Problems
go to wakatime-cli's log file (`--log-file`, default `~/.wakatime/wakatime.log`).
"""

from __future__ import annotations

import os
import sys
import time

from agent.ipc.client import DaemonUnavailable, IpcClient, UntrustedSocket, socket_file
from agent.ipc.protocol import dumps
from agent.wakatime_cli.args import CompatArgs, is_wakatime_cli_name, parse_args
from agent.wakatime_cli.exit_codes import ExitCode
from agent.wakatime_cli.extras import read_extra_heartbeats
from agent.wakatime_cli.heartbeats import existing, heartbeat_dicts, privacy_flags

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from agent.config import Settings

LOCAL_BUILD = "<local-build>"
# How long a heartbeat may wait for the daemon's commit before it is written directly.
DAEMON_TIMEOUT = 10.0
HARMLESS = (
    "metrics",
    "sync_ai_disabled",
    "send_diagnostics_on_errors",
    "log_to_stdout",
    "internal_config",
)
SERVICE_MANAGER_VARIABLES = frozenset(
    {
        "NOTIFY_SOCKET",
        "INVOCATION_ID",
        "JOURNAL_STREAM",
        "LISTEN_FDS",
        "LISTEN_PID",
        "LISTEN_FDNAMES",
    }
)
USAGE = """usage: agent heartbeat --entity FILE [wakatime-cli flags]

wakatime-cli's flags, for WakaTime editor plugins: --entity --time --write --plugin
--lineno --cursorpos --lines-in-file --category --entity-type --project --language
--extra-heartbeats (a JSON array on stdin) --today [--output json|raw-json]
--offline-count --print-offline-heartbeats N --sync-offline-activity N
--config-read KEY --config-write KEY=VALUE --config-section NAME --version --user-agent"""


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    log = CompatLog(args)
    for word in args.invalid:
        log.write("warning", f"ignored an invalid flag value: {word}")
    if args.unknown:
        log.debug(f"ignored unknown flags: {' '.join(args.unknown)}")
    try:
        return _dispatch(args, log)
    except Exception as exc:  # a plugin must never see a traceback
        log.write("error", f"{type(exc).__name__}: {exc}")
        return ExitCode.ERR_GENERIC


def _dispatch(args: CompatArgs, log: CompatLog) -> int:
    """wakatime-cli's order of precedence among its commands (cmd/run.go)."""
    if args.help:
        print(USAGE)
        return ExitCode.SUCCESS
    if args.user_agent:
        from agent.pipeline.useragent import full_user_agent

        print(full_user_agent(args.plugin))
        return ExitCode.SUCCESS
    if args.version:
        from agent import __version__

        print(LOCAL_BUILD if is_wakatime_cli_name(sys.argv[0]) else __version__)
        return ExitCode.SUCCESS
    if args.config_read is not None:
        return _config_read(args, log)
    if args.config_write is not None:
        return _config_write(args, log)
    if args.today:
        return _today(args, log)
    if args.today_goal is not None or args.file_experts:
        return ExitCode.SUCCESS  # team features this agent does not have: answered empty
    if args.entity is not None:
        return _heartbeat(args, log)
    if args.sync_offline_activity is not None:
        return _sync_offline(log)
    if args.offline_count:
        return _offline_count()
    if args.print_offline_heartbeats is not None:
        return _print_offline(args.print_offline_heartbeats)
    if args.sync_ai_activity:
        return _sync_ai(args, log)
    if any(getattr(args, name) for name in HARMLESS):
        return ExitCode.SUCCESS
    log.write("warning", "one of --entity, --today, --version, --config-read, ... is needed")
    print(USAGE, file=sys.stderr)
    return ExitCode.ERR_GENERIC


# -- heartbeats -----------------------------------------------------------------------


def _heartbeat(args: CompatArgs, log: CompatLog) -> int:
    extras: list[dict[str, Any]] = []
    if args.extra_heartbeats:
        extras, problems = read_extra_heartbeats(sys.stdin)
        for problem in problems:
            log.write("warning", problem)
    # Built once, at one moment: a fallback after a daemon timeout stores the same heartbeat.
    items, missing = existing(heartbeat_dicts(args, extras, time.time()))
    if missing:
        log.debug(f"skipped, no such file: {'; '.join(missing)}")
    if not items:
        return ExitCode.SUCCESS  # as wakatime-cli when its filters leave nothing
    try:
        with IpcClient(timeout=DAEMON_TIMEOUT) as client:
            answer = client.request(_request(args, items))
    except DaemonUnavailable as exc:
        if isinstance(exc, UntrustedSocket):  # worth a word: someone may be listening there
            log.write("warning", f"{exc}; writing to the queue directly")
        else:
            log.debug(f"{exc}; writing to the queue directly")
        return _heartbeat_offline(args, items, log, socket_file())
    if not answer.get("ok") and str(answer.get("error")).startswith("not stored"):
        # The daemon took them but could not commit them: they are not lost yet.
        log.write("warning", f"{answer.get('error')}; writing to the queue directly")
        return _heartbeat_offline(args, items, log, socket_file())
    return _acknowledged(answer, [label for label, _ in items], log)


def _request(args: CompatArgs, items: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The IPC request for the heartbeats, with the plugin's key and privacy flags."""
    request: dict[str, Any] = {
        "op": "heartbeats",
        "heartbeats": [item for _, item in items],
        "skip_invalid": True,
    }
    if args.key:
        request["api_key"] = args.key  # the daemon's own key, if it has one, comes first
    if args.api_url:
        request["api_url"] = args.api_url  # the plugin's key goes to this server only
    if privacy := privacy_flags(args):
        request["privacy"] = privacy
    return request


def _acknowledged(answer: dict[str, Any], labels: list[str], log: CompatLog) -> int:
    """The exit code for the daemon's answer; skipped heartbeats are logged, not fatal,
    unless the one the flags described was refused. Stored heartbeats whose delivery is
    stuck get wakatime-cli's codes for it, which plugins act on: 104 makes them ask for
    an API key, 112 shows them offline."""
    if not answer.get("ok"):
        log.write("error", f"the daemon refused the heartbeats: {answer.get('error')}")
        return ExitCode.ERR_GENERIC
    main_refused = False
    for skipped in answer.get("skipped") or []:
        index = skipped.get("index")
        label = labels[index] if isinstance(index, int) and 0 <= index < len(labels) else "?"
        main_refused = main_refused or label == "heartbeat"
        log.write("warning", f"{label} dropped: {skipped.get('error')}")
    if main_refused:
        return ExitCode.ERR_GENERIC
    delivery = answer.get("delivery")
    if delivery == "misconfigured":
        log.write("error", f"queued, but not sent: {answer.get('problem')}")
        return ExitCode.ERR_CONFIG_FILE_PARSE
    if delivery == "paused":
        log.write("error", "queued, but the daemon has no API key the server accepts")
        return ExitCode.ERR_AUTH
    if delivery == "retrying":
        log.debug("queued; the daemon is waiting to retry the server")
        return ExitCode.ERR_BACKOFF
    return ExitCode.SUCCESS


def _heartbeat_offline(
    args: CompatArgs, items: list[tuple[str, dict[str, Any]]], log: CompatLog, tried: str
) -> int:
    """No daemon: commit the request for the daemon to complete, and start one (standard
    library only: this runs on every save while no daemon answers). Exit 102 as
    wakatime-cli does when it queues offline, or 104 when no API key is configured."""
    from agent.wakatime_cli import offline_queue

    request, labels = _request(args, items), [label for label, _ in items]
    place = offline_queue.locations()
    if place.problem:
        log.write("error", f"configuration: {place.problem}; queued in {place.database} anyway")
    if place.socket != tried:  # `[ipc] socket` in the TOML file names another socket
        try:
            with IpcClient(place.socket, timeout=DAEMON_TIMEOUT) as client:
                return _acknowledged(client.request(request), labels, log)
        except DaemonUnavailable:
            pass
    try:
        offline_queue.write_request(place.database, request, time.time())
    except offline_queue.OfflineQueueError as exc:
        log.write("error", f"cannot queue the heartbeats: {exc}")
        return ExitCode.ERR_GENERIC
    log.debug(f"no daemon: {len(labels)} heartbeat(s) queued in {place.database}")
    if place.autostart:
        _start_daemon(place, log)
    return ExitCode.ERR_API if place.has_key or request.get("api_key") else ExitCode.ERR_AUTH


def _start_daemon(place: Any, log: CompatLog) -> None:
    """The daemon, started in the background; its log goes to `[log] file`, else beside
    the database (rotated there by the daemon itself)."""
    from agent.autostart import start_daemon

    # The editor's own service-manager variables are not the daemon's: with them it would
    # tell the editor's unit it is ready, and log in the journal's format to a file.
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_MANAGER_VARIABLES}
    log_file = place.log_file
    if log_file is None:
        log_file = os.path.join(os.path.dirname(place.database), "agent.log")
        env["HEARTBEAT_AGENT_LOG__FILE"] = log_file
    try:
        log.debug(start_daemon(place.socket, log_file, env, time.time()))
    except OSError as exc:
        log.write("error", f"cannot start the daemon: {exc}")


def _plugin_server(args: CompatArgs, destinations: list[Any], log: CompatLog) -> Any:
    """The destination of the server `--api-url` names, or None (agent.pipeline.destinations)."""
    if not args.api_url:
        return None
    from agent.pipeline.destinations import plugin_server

    try:
        return plugin_server(args.api_url, args.key, destinations)
    except ValueError as exc:
        log.write("warning", f"--api-url ignored: {exc}")
        return None


def _configuration_problem(router: Any) -> str | None:
    """A ~/.wakatime.cfg line that is not INI, or the default server's misconfigured URL."""
    from agent.wakatime_cli import cfg as wakatime_cfg

    try:
        wakatime_cfg.load_checked()
    except wakatime_cfg.CfgError as exc:
        return str(exc)
    return router.destinations[0].problem if router.destinations else None


# -- today ----------------------------------------------------------------------------


def _today(args: CompatArgs, log: CompatLog) -> int:
    """The status-bar figure, from the daemon (local history and the server's cached
    figure), else straight from the database."""
    try:
        answer = _ask({"op": "today", "status_bar": True})
        summary = answer["status_bar"]
    except (DaemonUnavailable, KeyError) as exc:
        log.debug(f"today: {exc}; reading the local history")
        summary = _today_offline(log)
        if summary is None:
            return ExitCode.ERR_CONFIG_FILE_PARSE
    print(render_today(summary, args.output, _hide_categories(args), args.today_max_categories))
    return ExitCode.SUCCESS


def render_today(
    summary: dict[str, Any], output: str | None, hide_categories: bool, max_categories: int | None
) -> str:
    """wakatime-cli's three `--today` forms: text, `json` and `raw-json`."""
    if output == "raw-json":
        return dumps(summary)
    data = summary.get("data") or {}
    text = (data.get("grand_total") or {}).get("text") or "0 secs"
    if output == "json":
        return dumps({"text": text, "has_team_features": bool(summary.get("has_team_features"))})
    categories = data.get("categories") or []
    if hide_categories or len(categories) < 2:
        return text
    if max_categories is not None and max_categories > 0:
        categories = categories[:max_categories]
    return ", ".join(f"{item['text']} {item['name']}" for item in categories)


def _hide_categories(args: CompatArgs) -> bool:
    value = (args.today_hide_categories or "").strip().lower()
    return value in ("1", "t", "true")


def _today_offline(log: CompatLog) -> dict[str, Any] | None:
    settings = _settings(log)
    if settings is None:
        return None
    from agent.reports import status_bar_report
    from agent.sources.offline_adopt import open_adopted

    with open_adopted(settings) as store:
        return status_bar_report(store, settings, time.time())


# -- the offline queue ------------------------------------------------------------------


def _offline_count() -> int:
    try:
        queued = _ask({"op": "status"}).get("queued", 0)
    except DaemonUnavailable:
        settings = _settings(CompatLog(None))
        if settings is None:
            return ExitCode.ERR_CONFIG_FILE_PARSE
        from agent.pipeline.destinations import configured_destinations
        from agent.sources.offline_adopt import open_adopted

        configured = [destination.name for destination in configured_destinations(settings)]
        with open_adopted(settings) as store:
            queued = store.counts(among=configured).queued
    print(queued)
    return ExitCode.SUCCESS


def _print_offline(limit: int) -> int:
    """The oldest queued heartbeats as a JSON array, as wakatime-cli prints them."""
    settings = _settings(CompatLog(None))
    if settings is None:
        return ExitCode.ERR_CONFIG_FILE_PARSE
    from agent.pipeline.destinations import DEFAULT
    from agent.sources.offline_adopt import open_adopted

    with open_adopted(settings) as store:
        queued = store.pending(DEFAULT, limit if limit > 0 else 1_000_000)
    print(dumps([item.payload for item in queued]))
    return ExitCode.SUCCESS


def _sync_offline(log: CompatLog) -> int:
    """Delivery is the daemon's job: ask it to send now. Without one, nothing can be sent."""
    try:
        _ask({"op": "flush"})
    except DaemonUnavailable as exc:
        log.write("warning", f"sync-offline-activity: {exc}; the queue is sent when it runs")
        return ExitCode.ERR_API
    return ExitCode.SUCCESS


def _sync_ai(args: CompatArgs, log: CompatLog) -> int:
    """`--sync-ai-activity` (AI plugins send only this, about once a minute): a nudge to
    the daemon, which follows the transcripts anyway and knows whether it may; without a
    daemon, one pass here, unless `sync_ai_disabled` says not to."""
    if args.sync_ai_disabled:
        return ExitCode.SUCCESS
    try:
        _ask({"op": "sync_ai"})
        return ExitCode.SUCCESS
    except DaemonUnavailable as exc:
        log.debug(f"sync-ai-activity: {exc}; reading the transcripts here")
    settings = _settings(log)
    if settings is None:
        return ExitCode.ERR_CONFIG_FILE_PARSE
    from agent.sources.ai.source import SyncBusy, ai_sync_disabled, sync_once

    if not settings.ai.enabled or ai_sync_disabled(_cfg_path(args)):
        log.debug("sync-ai-activity: turned off ([ai] enabled, sync_ai_disabled)")
        return ExitCode.SUCCESS
    try:
        stored = sync_once(settings)
    except SyncBusy as exc:
        log.debug(f"sync-ai-activity: {exc}; skipped")
        return ExitCode.SUCCESS
    log.debug(f"sync-ai-activity: {stored} heartbeat(s) written to {settings.database_path()}")
    return ExitCode.SUCCESS


# -- ~/.wakatime.cfg ----------------------------------------------------------------------


def _config_read(args: CompatArgs, log: CompatLog) -> int:
    from agent.wakatime_cli import cfg as wakatime_cfg

    key = args.config_read or ""
    section = args.config_section or "settings"
    value = wakatime_cfg.read_value(key, section, _cfg_path(args)).strip()
    if not value:
        log.write("warning", f"config-read: [{section}] {key} is empty or missing")
        return ExitCode.ERR_CONFIG_FILE_READ
    print(value)
    return ExitCode.SUCCESS


def _config_write(args: CompatArgs, log: CompatLog) -> int:
    from agent.wakatime_cli import cfg as wakatime_cfg

    section = args.config_section or "settings"
    try:
        for key, value in (args.config_write or {}).items():
            wakatime_cfg.write_value(key, value, section, _cfg_path(args))
    except OSError as exc:
        log.write("error", f"config-write: {exc}")
        return ExitCode.ERR_CONFIG_FILE_WRITE
    return ExitCode.SUCCESS


def _cfg_path(args: CompatArgs) -> Any:
    """`--config` is wakatime-cli's INI file, not the agent's TOML."""
    if not args.config:
        return None
    from pathlib import Path

    return Path(args.config).expanduser()


# -- shared -----------------------------------------------------------------------------


def _ask(message: dict[str, Any]) -> dict[str, Any]:
    with IpcClient(timeout=DAEMON_TIMEOUT) as client:
        answer = client.request(message)
    if not answer.get("ok"):
        raise DaemonUnavailable(f"the daemon answered: {answer.get('error')}")
    return answer


def _settings(log: CompatLog) -> Settings | None:
    """The agent's settings (heavy: pydantic); None after logging a configuration error.
    From here on the agent's own log lines go to wakatime-cli's log file, never stderr."""
    _full_python()
    import logging

    from agent.config import ConfigError, load_settings

    class ToCompatLog(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            log.write(record.levelname.lower(), record.getMessage())

    agent_log = logging.getLogger("agent")
    if not agent_log.handlers:
        agent_log.addHandler(ToCompatLog(logging.WARNING))
        agent_log.propagate = False

    try:
        return load_settings()
    except ConfigError as exc:
        log.write("error", f"configuration: {exc}")
        return None


def _full_python() -> None:
    """Under the `python -S` launcher, add site-packages now that they are needed."""
    if sys.flags.no_site and "site" not in sys.modules:
        import site

        site.main()


class CompatLog:
    """wakatime-cli's log file, opened only when there is something to say; stdout with
    `--log-to-stdout`. Never stderr: some plugins show any output as an error."""

    def __init__(self, args: CompatArgs | None) -> None:
        self.verbose = bool(args and args.verbose)
        self.to_stdout = bool(args and args.log_to_stdout)
        self.path = args.log_file if args and args.log_file else None

    def debug(self, message: str) -> None:
        if self.verbose:
            self.write("debug", message)

    def write(self, level: str, message: str) -> None:
        line = dumps(
            {
                "caller": "heartbeat-agent",
                "level": level,
                "message": message,
                "now": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )
        if self.to_stdout:
            print(line)
            return
        path = self.path or os.path.join(_wakatime_home(), ".wakatime", "wakatime.log")
        try:
            os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
            with open(path, "a", encoding="utf-8") as file:
                file.write(line + "\n")
        except OSError:
            pass  # nowhere to log: staying silent beats breaking the plugin


def _wakatime_home() -> str:
    return os.path.expanduser(os.environ.get("WAKATIME_HOME") or "~")
