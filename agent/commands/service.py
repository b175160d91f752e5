"""`agent service install|uninstall|status`: run the agent as a per-user service, started
at login and restarted on failure (a systemd user unit on Linux, a launchd agent on macOS).

Where the service manager cannot be reached from here (no user D-Bus, e.g. over ssh or in
a container), the file is still written and the commands to run are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from agent import service
from agent.commands.common import CommandError, run_command


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agent service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    install = commands.add_parser("install", help="write the service file, enable and start it")
    install.add_argument(
        "--config", metavar="FILE", help="the TOML configuration the service runs with"
    )
    commands.add_parser("uninstall", help="stop and disable the service, remove its file")
    status = commands.add_parser("status", help="whether the service is installed and running")
    status.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args(argv)
    body = {"install": _install, "uninstall": _uninstall, "status": _status}[args.command]
    return run_command(body, args)


def _platform_file(command: Sequence[str]) -> service.ServiceFile:
    try:
        return service.service_file(sys.platform, command)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _install(args: argparse.Namespace) -> int:
    target = _platform_file(service.agent_command(args.config))
    try:
        service.write_file(target.path, target.content)
    except OSError as exc:
        raise CommandError(f"cannot write {target.path}: {exc}") from None
    print(f"Wrote {target.path}")
    print(_watch_summary(args.config))
    if target.kind == "systemd":
        commands = service.systemd_install_commands()
        reachable = service.user_bus_available()
        logs = "journalctl --user -u heartbeat-agent -f"
    else:
        _run_quietly(service.launchd_uninstall_commands())  # a loaded older one goes first
        commands = service.launchd_install_commands(target.path)
        reachable = True
        logs = f"tail -f {service.launchd_log_path()}"
    if not reachable:
        print("No user service manager is reachable from here (no user D-Bus session).")
        print("Run these in your login session to enable and start it:")
        for command in commands:
            print(f"  {service.shell_line(command)}")
        return 0
    if stopped := _hand_over(args.config):
        print(stopped)
    _run_all(commands)
    print(f"Enabled and started: it runs at every login. Logs: {logs}")
    if target.kind == "systemd":
        print("To keep it running while you are logged out: loginctl enable-linger")
    return 0


def _watch_summary(config: str | None) -> str:
    """What the service's watcher will watch: it starts in no code folder, so never the
    home folder whole (agent.sources.watch_roots)."""
    import os

    from agent.config import ConfigError, load_settings
    from agent.sources.watch_roots import plan_watch

    try:
        watch = load_settings(config).watch
    except ConfigError as exc:
        return f"Warning: {exc}: the service will not start until that is fixed."
    home = os.path.expanduser("~")
    plan = plan_watch(watch.paths, home, home, watch.ignored_dirs)
    lines = [f"  {root.path}  ({root.reason})" for root in plan.roots]
    lines += [f"  {path}  (configured; watched once it exists)" for path in plan.waiting]
    if not lines:
        return (
            "It will watch no folder: none is configured and no code folder (holding .git,"
            " .hg, .svn or .wakatime-project) was found in your home folder; set [watch]"
            " paths. Editor plugins reach it all the same."
        )
    return "It will watch:\n" + "\n".join(lines)


def _hand_over(config: str | None, timeout: float = 15.0) -> str | None:
    """Stop a daemon already running outside the service (one a plugin call started, or an
    `agent run`), so the service's own daemon does not find the lock taken, exit and be
    restarted every few seconds; what was done, or None when no daemon answers."""
    import os
    import signal
    import time

    from agent.config import ConfigError, load_settings
    from agent.ipc.client import DaemonUnavailable, request

    try:
        socket_path = load_settings(config).socket_path()
        pid = int(request({"op": "status"}, socket_path)["pid"])
    except (ConfigError, DaemonUnavailable, KeyError, TypeError, ValueError):
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError as exc:
        raise CommandError(f"cannot stop the running daemon (pid {pid}): {exc}") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request({"op": "ping"}, socket_path, timeout=1.0)
        except DaemonUnavailable:
            return f"Stopped the daemon that was running (pid {pid}): the service runs it now."
        time.sleep(0.1)
    raise CommandError(f"the running daemon (pid {pid}) did not stop within {timeout:.0f} s")


def _uninstall(args: argparse.Namespace) -> int:
    target = _platform_file(service.agent_command())
    if target.kind == "systemd":
        commands = service.systemd_uninstall_commands()
        reachable = service.user_bus_available()
    else:
        commands = service.launchd_uninstall_commands()
        reachable = True
    if not target.path.exists():
        print(f"Not installed ({target.path} does not exist).")
        return 0
    if reachable:
        _run_quietly(commands)
    target.path.unlink()
    print(f"Removed {target.path}")
    if target.kind == "systemd" and reachable:
        _run_quietly([["systemctl", "--user", "daemon-reload"]])
    elif not reachable:
        print("No user service manager is reachable from here; in your login session run:")
        for command in [*commands, ["systemctl", "--user", "daemon-reload"]]:
            print(f"  {service.shell_line(command)}")
    return 0


def _status(args: argparse.Namespace) -> int:
    expected = _platform_file(service.agent_command())
    report = service_status(expected)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return 0 if report["installed"] else 1


def service_status(expected: service.ServiceFile) -> dict[str, Any]:
    """What is installed, whether it is what this agent would install, and what the
    service manager says about it."""
    installed = expected.path.exists()
    report: dict[str, Any] = {
        "kind": expected.kind,
        "path": str(expected.path),
        "installed": installed,
        "current": installed and expected.path.read_bytes() == expected.content,
        "enabled": None,
        "active": None,
        "manager": None,
    }
    if not installed:
        return report
    if expected.kind == "systemd" and service.user_bus_available():
        enabled = service.run(["systemctl", "--user", "is-enabled", service.UNIT_NAME])
        active = service.run(["systemctl", "--user", "is-active", service.UNIT_NAME])
        report.update(
            enabled=enabled.stdout.strip() or None,
            active=active.stdout.strip() or None,
            manager="systemd",
        )
    elif expected.kind == "launchd":
        loaded = service.run(
            ["launchctl", "print", f"{service.launchd_domain()}/{service.LAUNCHD_LABEL}"]
        )
        report.update(active="loaded" if loaded.returncode == 0 else "not loaded")
        report.update(manager="launchd")
    return report


def render(report: dict[str, Any]) -> str:
    if not report["installed"]:
        return f"Not installed (no {report['path']}): `agent service install` sets it up."
    lines = [f"Installed: {report['path']}"]
    if not report["current"]:
        lines.append(
            "  it differs from what this agent would install (another path or version):"
            " `agent service install` updates it"
        )
    if report["manager"] is None:
        lines.append("  the service manager is not reachable from here")
    else:
        for name in ("enabled", "active"):
            if report[name] is not None:
                lines.append(f"  {name}: {report[name]}")
    return "\n".join(lines)


def _run_all(commands: list[list[str]]) -> None:
    for command in commands:
        try:
            done = service.run(command)
        except OSError as exc:
            raise CommandError(f"{service.shell_line(command)}: {exc}") from None
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
            raise CommandError(f"{service.shell_line(command)} failed: {why}")


def _run_quietly(commands: list[list[str]]) -> None:
    """Commands whose failure is expected and harmless (stopping what is not running)."""
    for command in commands:
        with contextlib.suppress(OSError):
            service.run(command)
