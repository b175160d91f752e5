"""`agent plugins install|status` as a subprocess, in a temp home with a controlled PATH."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

import pytest
from agentproc import AGENT, agent_env

from agent.plugins import GO_ARCH, LAUNCHER_MARKER

REAL_CLI = "#!/bin/sh\n# the real Go wakatime-cli would be a binary\necho v1.115.0\n"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = agent_env(tmp_path)
    bin_dir = tmp_path / "home" / ".local" / "bin"
    environment["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    return environment


def agent(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AGENT, *argv], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def home(env: dict[str, str]) -> Path:
    return Path(env["HOME"])


def managed(env: dict[str, str]) -> Path:
    machine = platform.machine().lower()
    name = f"wakatime-cli-{platform.system().lower()}-{GO_ARCH.get(machine, machine)}"
    return home(env) / ".wakatime" / name


def status(env: dict[str, str]) -> dict[str, dict]:
    result = agent(env, "plugins", "status", "--json")
    assert result.returncode == 0, result.stderr
    return {route["editor"]: route for route in json.loads(result.stdout)}


def test_install_puts_a_working_launcher_on_the_path(env: dict[str, str]) -> None:
    result = agent(env, "plugins", "install")
    launcher = home(env) / ".local" / "bin" / "wakatime-cli"

    assert result.returncode == 0, result.stderr
    assert f"installed {launcher}" in result.stdout
    assert LAUNCHER_MARKER in launcher.read_text()
    assert os.access(launcher, os.X_OK)
    version = subprocess.run(["wakatime-cli", "--version"], env=env, capture_output=True)
    assert (version.returncode, version.stdout) == (0, b"<local-build>\n")
    routes = status(env)
    assert all(routes[e]["ready"] for e in ("Vim / Neovim", "VS Code", "Emacs", "Zed"))
    assert routes["Sublime Text"]["ready"] is False
    assert "--managed" in routes["Sublime Text"]["setting"]
    assert routes["JetBrains"]["setting"] == f"WAKATIME_CLI_LOCATION={launcher}"


def test_a_real_wakatime_cli_is_kept_unless_forced(env: dict[str, str]) -> None:
    real = home(env) / ".local" / "bin" / "wakatime-cli"
    real.parent.mkdir(parents=True)
    real.write_text(REAL_CLI)

    refused = agent(env, "plugins", "install")
    assert refused.returncode == 1
    assert "is a real wakatime-cli" in refused.stderr and "--force" in refused.stderr
    assert real.read_text() == REAL_CLI

    forced = agent(env, "plugins", "install", "--force")
    assert forced.returncode == 0, forced.stderr
    assert real.with_name("wakatime-cli.orig").read_text() == REAL_CLI
    assert LAUNCHER_MARKER in real.read_text()


def test_reinstall_replaces_its_own_launcher(env: dict[str, str]) -> None:
    assert agent(env, "plugins", "install").returncode == 0
    again = agent(env, "plugins", "install")

    assert again.returncode == 0, again.stderr
    assert not (home(env) / ".local" / "bin" / "wakatime-cli.orig").exists()


def test_managed_file_serves_sublime_and_keeps_a_real_one(env: dict[str, str]) -> None:
    managed(env).parent.mkdir(parents=True)
    managed(env).write_text(REAL_CLI)

    refused = agent(env, "plugins", "install", "--managed")
    assert refused.returncode == 1 and managed(env).read_text() == REAL_CLI

    assert agent(env, "plugins", "install", "--managed", "--force").returncode == 0
    routes = status(env)
    assert routes["Sublime Text"]["ready"] and routes["Visual Studio"]["ready"]


def test_status_reads_each_editors_own_setting(env: dict[str, str], tmp_path: Path) -> None:
    elsewhere = tmp_path / "not-on-path"
    assert agent(env, "plugins", "install", "--bin-dir", str(elsewhere)).returncode == 0
    launcher = elsewhere / "wakatime-cli"
    (home(env) / ".vimrc").write_text(
        f"\" let g:wakatime_CLIPath = '/old'\nlet g:wakatime_CLIPath = '{launcher}'\n"
    )
    (home(env) / ".emacs").write_text('(setq wakatime-cli-path "/usr/bin/true")\n')
    env["WAKATIME_CLI_LOCATION"] = str(launcher)

    routes = status(env)

    assert routes["Vim / Neovim"]["ready"] is True
    assert routes["Vim / Neovim"]["via"] == f"g:wakatime_CLIPath = {launcher}"
    assert routes["Emacs"]["ready"] is False
    assert routes["Emacs"]["setting"] == "wakatime-cli-path"
    assert routes["JetBrains"]["ready"] is True
    assert routes["VS Code"]["ready"] is False  # nothing named wakatime-cli on its PATH


def test_status_in_words(env: dict[str, str]) -> None:
    result = agent(env, "plugins", "status")

    assert result.returncode == 0
    assert "VS Code" in result.stdout and "not yet" in result.stdout
    assert "set:" in result.stdout
