"""The agent as a per-user service: a systemd user unit on Linux, a launchd agent on macOS.

The files are rendered here with the absolute path of the `agent` that installs them; the
repository's systemd/ folder holds the same files rendered for a `pipx install` (a test
keeps them equal). Nothing here needs privileges: both live in the user's own folders.
"""

from __future__ import annotations

import contextlib
import os
import plistlib
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

UNIT_NAME = "heartbeat-agent.service"
LAUNCHD_LABEL = "heartbeat-agent"
# What the repository's templates run: where `pipx install` puts the command (%h is $HOME).
TEMPLATE_AGENT = "%h/.local/bin/agent"
TEMPLATE_MAC_AGENT = "/usr/local/bin/agent"
TEMPLATE_MAC_LOG = "/Users/you/Library/Logs/heartbeat-agent.log"
EXIT_CONFIG = 78  # `agent run` on a configuration error: restarting cannot help

UNIT_TEMPLATE = """\
# heartbeat-agent as a systemd user service. `agent service install` writes this file to
# ~/.config/systemd/user/ with the path of the agent that installed it; this copy runs the
# one `pipx install` puts in ~/.local/bin.
[Unit]
Description=heartbeat-agent: records coding activity as WakaTime heartbeats
# It copes with being offline itself (a local queue): no network ordering needed.

[Service]
# READY=1 on $NOTIFY_SOCKET once the socket and the watcher are up.
Type=notify
NotifyAccess=main
ExecStart={exec_start}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5
# 78 (EX_CONFIG) is a configuration error: restarting will not fix it.
RestartPreventExitStatus={exit_config}
TimeoutStopSec=30
# Hardening that needs no privileges (seccomp, no new privileges); files stay private.
UMask=0077
NoNewPrivileges=yes
LockPersonality=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
RestrictNamespaces=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
# A call outside that set fails with EPERM rather than killing the agent.
SystemCallErrorNumber=EPERM
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK

[Install]
WantedBy=default.target
"""


@dataclass(frozen=True)
class ServiceFile:
    """A service definition for this platform: where it goes and what it holds."""

    path: Path
    content: bytes
    kind: str  # "systemd" or "launchd"


def agent_command(config: str | os.PathLike[str] | None = None) -> list[str]:
    """`agent run` by absolute path: the `agent` next to this Python (a venv or pipx),
    else the one on PATH, else this Python running the CLI module."""
    beside = Path(sys.executable).parent / "agent"
    found = str(beside) if os.access(beside, os.X_OK) else shutil.which("agent")
    command = [os.path.abspath(found)] if found else [sys.executable, "-m", "agent.cli"]
    command.append("run")
    if config is not None:
        command += ["--config", os.path.abspath(os.path.expanduser(config))]
    return command


def systemd_quote(argument: str) -> str:
    """One ExecStart word: `%` and `$` escaped (specifiers, variables), quoted if needed."""
    escaped = argument.replace("%", "%%").replace("$", "$$")
    if any(c in escaped for c in " \t\"'\\;"):
        escaped = '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return escaped


def systemd_unit(exec_start: str) -> str:
    """The unit, given its ExecStart line (already quoted: see `systemd_quote`)."""
    return UNIT_TEMPLATE.format(exec_start=exec_start, exit_config=EXIT_CONFIG)


def systemd_unit_for(command: Sequence[str]) -> str:
    return systemd_unit(" ".join(systemd_quote(word) for word in command))


def launchd_plist(command: Sequence[str], log_file: str) -> bytes:
    """A launchd agent: started at login, started again when it fails (not after a clean
    exit), its stderr (the log) into a file since launchd keeps no journal."""
    return plistlib.dumps(
        {
            "Label": LAUNCHD_LABEL,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "KeepAlive": {"SuccessfulExit": False},
            "ThrottleInterval": 10,
            "ProcessType": "Background",
            "StandardErrorPath": log_file,
        }
    )


def systemd_unit_path() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(config) / "systemd" / "user" / UNIT_NAME


def launchd_plist_path() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"


def launchd_log_path() -> Path:
    return Path.home() / "Library" / "Logs" / "heartbeat-agent.log"


def service_file(platform: str, command: Sequence[str]) -> ServiceFile:
    """The file to install on a platform (`sys.platform`); ValueError where unsupported."""
    if platform.startswith("linux"):
        return ServiceFile(systemd_unit_path(), systemd_unit_for(command).encode(), "systemd")
    if platform == "darwin":
        content = launchd_plist(command, str(launchd_log_path()))
        return ServiceFile(launchd_plist_path(), content, "launchd")
    raise ValueError(f"no user service manager is supported on {platform}")


def write_file(path: Path, content: bytes) -> None:
    """Atomically: a half-written unit must never be loaded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_bytes(content)
    partial.chmod(0o644)
    partial.replace(path)


# ----- the service managers -----------------------------------------------------------------


def user_bus_available() -> bool:
    """Whether `systemctl --user` can reach the user's service manager from here."""
    if shutil.which("systemctl") is None:
        return False
    if os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return True
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return bool(runtime) and Path(runtime, "bus").exists()


def systemd_install_commands() -> list[list[str]]:
    return [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", UNIT_NAME],
        ["systemctl", "--user", "restart", UNIT_NAME],
    ]


def systemd_uninstall_commands() -> list[list[str]]:
    return [["systemctl", "--user", "disable", "--now", UNIT_NAME]]


def launchd_domain() -> str:
    return f"gui/{os.getuid()}"


def launchd_install_commands(plist: Path) -> list[list[str]]:
    return [["launchctl", "bootstrap", launchd_domain(), str(plist)]]


def launchd_uninstall_commands() -> list[list[str]]:
    return [["launchctl", "bootout", f"{launchd_domain()}/{LAUNCHD_LABEL}"]]


def run(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run a service manager command, capturing its words for the user."""
    return subprocess.run(list(command), capture_output=True, text=True, check=False, timeout=60)


def shell_line(command: Sequence[str]) -> str:
    return shlex.join(command)


def notify_systemd(state: str) -> None:
    """sd_notify without a dependency: one datagram to $NOTIFY_SOCKET, if set."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
        sock.sendto(state.encode(), address)
