"""`agent service`: the systemd unit (checked with `systemd-analyze verify`), the launchd
plist, the repository's template copies, and install/uninstall/status as subprocesses."""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import subprocess
from pathlib import Path

import pytest
from agentproc import AGENT, AgentProcess, agent_env
from conftest import require_tools
from test_ops import cli, cli_json

from agent import service

REPO = Path(__file__).resolve().parent.parent


def verify(unit: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze --user verify`; its warnings count as failures."""
    runtime = home / "run"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)}
    require_tools("systemd-analyze")
    analyze = shutil.which("systemd-analyze")
    assert analyze
    return subprocess.run(
        [analyze, "--user", "verify", str(unit)], env=env, capture_output=True, text=True
    )


def unit_file(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / service.UNIT_NAME
    path.write_text(text)
    return path


def test_the_installed_unit_verifies(tmp_path: Path) -> None:
    unit = unit_file(tmp_path / "units", service.systemd_unit_for(service.agent_command()))
    done = verify(unit, tmp_path)
    assert (done.returncode, done.stderr) == (0, "")


def test_a_path_with_spaces_and_percent_is_quoted(tmp_path: Path) -> None:
    tools = tmp_path / "my tools 100%"
    tools.mkdir()
    (tools / "agent").symlink_to(AGENT)
    command = [str(tools / "agent"), "run", "--config", str(tmp_path / "my config.toml")]
    text = service.systemd_unit_for(command)
    assert f'ExecStart="{tmp_path}/my tools 100%%/agent" run' in text
    done = verify(unit_file(tmp_path / "units", text), tmp_path)
    assert (done.returncode, done.stderr) == (0, "")


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    text = service.systemd_unit_for(service.agent_command()).replace(
        "Restart=on-failure", "Restart=sometimes"
    )
    done = verify(unit_file(tmp_path / "units", text), tmp_path)
    assert "restart specifier" in done.stderr


def test_the_repository_templates_are_what_install_writes() -> None:
    unit = (REPO / "systemd" / "heartbeat-agent.service").read_text()
    assert unit == service.systemd_unit(f"{service.TEMPLATE_AGENT} run")
    plist = (REPO / "systemd" / "heartbeat-agent.plist").read_bytes()
    command = [service.TEMPLATE_MAC_AGENT, "run"]
    assert plist == service.launchd_plist(command, service.TEMPLATE_MAC_LOG)


def test_the_repository_unit_verifies_for_a_pipx_install(tmp_path: Path) -> None:
    bin_dir = tmp_path / ".local" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "agent").symlink_to(AGENT)
    done = verify(REPO / "systemd" / "heartbeat-agent.service", tmp_path)
    assert (done.returncode, done.stderr) == (0, "")


def test_the_unit_is_a_notify_service_that_does_not_restart_on_config_errors() -> None:
    lines = service.systemd_unit_for(["/opt/agent", "run"]).splitlines()
    for expected in (
        "Type=notify",
        "ExecStart=/opt/agent run",
        "Restart=on-failure",
        "RestartPreventExitStatus=78",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "NoNewPrivileges=yes",
        "WantedBy=default.target",
    ):
        assert expected in lines


def test_the_launchd_agent_runs_at_login_and_after_failures(tmp_path: Path) -> None:
    target = service.service_file("darwin", ["/opt/agent", "run"])
    assert target.path == Path.home() / "Library" / "LaunchAgents" / "heartbeat-agent.plist"
    plist = plistlib.loads(target.content)
    assert plist["Label"] == "heartbeat-agent"
    assert plist["ProgramArguments"] == ["/opt/agent", "run"]
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["StandardErrorPath"].endswith("Library/Logs/heartbeat-agent.log")
    with pytest.raises(ValueError, match="win32"):
        service.service_file("win32", ["agent", "run"])


# ----- install / status / uninstall as subprocesses ------------------------------------------


def test_install_without_a_user_bus_writes_the_unit_and_prints_the_commands(
    tmp_path: Path,
) -> None:
    env = agent_env(tmp_path, None)
    config = tmp_path / "agent.toml"
    done = cli(env, "service", "install", "--config", str(config))
    assert done.returncode == 0, done.stderr
    unit = Path(env["XDG_CONFIG_HOME"]) / "systemd" / "user" / "heartbeat-agent.service"
    assert f"ExecStart={AGENT} run --config {config}" in unit.read_text().splitlines()
    assert "systemctl --user enable heartbeat-agent.service" in done.stdout
    assert verify(unit, tmp_path).returncode == 0

    code, report = cli_json(env, "service", "status")
    assert code == 0
    assert report["installed"] is True
    assert report["current"] is False  # installed with --config: not the plain unit
    assert report["manager"] is None

    removed = cli(env, "service", "uninstall")
    assert removed.returncode == 0
    assert not unit.exists()
    assert cli(env, "service", "status").returncode == 1


def fake_systemctl(tmp_path: Path, env: dict[str, str], exit_code: int = 0) -> Path:
    """A `systemctl` on PATH that records its arguments, and a user bus socket path, as a
    logged-in session has them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "systemctl.log"
    script = bin_dir / "systemctl"
    script.write_text(
        f'#!/bin/sh\necho "$@" >> {record}\necho "systemctl says no" >&2\nexit {exit_code}\n'
        if exit_code
        else f'#!/bin/sh\necho "$@" >> {record}\necho enabled\n'
    )
    script.chmod(0o755)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    (Path(env["XDG_RUNTIME_DIR"]) / "bus").touch()
    return record


def test_install_with_a_user_bus_enables_and_starts_it(tmp_path: Path) -> None:
    env = agent_env(tmp_path, None)
    record = fake_systemctl(tmp_path, env)
    done = cli(env, "service", "install")
    assert done.returncode == 0, done.stderr
    assert "Enabled and started" in done.stdout
    assert record.read_text().splitlines() == [
        "--user daemon-reload",
        "--user enable heartbeat-agent.service",
        "--user restart heartbeat-agent.service",
    ]
    status = cli(env, "service", "status", "--json")
    report = json.loads(status.stdout)
    assert (report["current"], report["enabled"], report["manager"]) == (True, "enabled", "systemd")

    record.unlink()
    assert cli(env, "service", "uninstall").returncode == 0
    assert record.read_text().splitlines() == [
        "--user disable --now heartbeat-agent.service",
        "--user daemon-reload",
    ]


def test_install_stops_a_daemon_running_outside_the_service(tmp_path: Path) -> None:
    """A daemon a plugin call started (or an `agent run`) holds the lock the service's daemon
    needs: left running, the service would exit and be restarted every 5 s."""
    env = agent_env(tmp_path, None)
    record = fake_systemctl(tmp_path, env)
    with AgentProcess(env, tmp_path) as running:
        pid = running.proc.pid
        done = cli(env, "service", "install")
        assert done.returncode == 0, done.stderr
        assert f"Stopped the daemon that was running (pid {pid})" in done.stdout
        assert running.proc.wait(timeout=10) == 0  # a clean stop, its queue kept
    assert "--user restart heartbeat-agent.service" in record.read_text().splitlines()


def test_a_failing_systemctl_is_reported(tmp_path: Path) -> None:
    env = agent_env(tmp_path, None)
    fake_systemctl(tmp_path, env, exit_code=1)
    done = cli(env, "service", "install")
    assert done.returncode == 1
    assert "systemctl --user daemon-reload failed: systemctl says no" in done.stderr
