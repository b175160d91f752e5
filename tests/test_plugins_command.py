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
    assert all(
        routes[e]["ready"] for e in ("Vim", "Neovim", "VS Code", "Emacs", "Zed", "JupyterLab")
    )
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

    assert routes["Vim"]["ready"] is True
    assert routes["Vim"]["via"] == f"g:wakatime_CLIPath = {launcher}"
    assert routes["Emacs"]["ready"] is False
    assert routes["Emacs"]["setting"] == "wakatime-cli-path"
    assert routes["JetBrains"]["ready"] is True
    assert routes["VS Code"]["ready"] is False  # nothing named wakatime-cli on its PATH


def test_status_in_words(env: dict[str, str]) -> None:
    result = agent(env, "plugins", "status")

    assert result.returncode == 0
    assert "VS Code" in result.stdout and "not yet" in result.stdout
    assert "set:" in result.stdout


# ----- ~/.wakatime/wakatime-cli: JupyterLab's only route, nano's first --------------------


def home_cli(env: dict[str, str]) -> Path:
    return home(env) / ".wakatime" / "wakatime-cli"


def test_install_links_the_wakatime_folder_cli_that_jupyterlab_runs(env: dict[str, str]) -> None:
    result = agent(env, "plugins", "install")
    launcher = home(env) / ".local" / "bin" / "wakatime-cli"

    assert result.returncode == 0, result.stderr
    assert f"linked {home_cli(env)} -> {launcher}" in result.stdout
    assert os.readlink(home_cli(env)) == str(launcher)
    bare_env = {**env, "PATH": "/usr/bin:/bin"}  # JupyterLab runs it by path, not from PATH
    version = subprocess.run([home_cli(env), "--version"], env=bare_env, capture_output=True)
    assert (version.returncode, version.stdout) == (0, b"<local-build>\n")
    notebook = home(env) / "nb.ipynb"
    notebook.write_text("{}\n")
    heartbeat = subprocess.run(
        [
            home_cli(env),
            "--entity",
            str(notebook),
            "--plugin",
            "jupyterlab/4 jupyterlab-wakatime/1",
        ],
        env=bare_env,
        capture_output=True,
    )
    assert (heartbeat.returncode, heartbeat.stdout, heartbeat.stderr) == (102, b"", b"")
    routes = status(bare_env)
    assert routes["JupyterLab"]["ready"] and routes["nano"]["ready"]
    assert routes["VS Code"]["ready"] is False


def test_a_real_cli_in_the_wakatime_folder_is_kept_unless_forced(env: dict[str, str]) -> None:
    home_cli(env).parent.mkdir(parents=True)
    home_cli(env).write_text(REAL_CLI)

    kept = agent(env, "plugins", "install")

    assert kept.returncode == 0, kept.stderr  # the PATH launcher is installed all the same
    assert f"note: {home_cli(env)} is a real wakatime-cli" in kept.stdout
    assert home_cli(env).read_text() == REAL_CLI and not home_cli(env).is_symlink()
    assert status(env)["JupyterLab"]["ready"] is False

    forced = agent(env, "plugins", "install", "--force")
    assert forced.returncode == 0, forced.stderr
    assert home_cli(env).with_name("wakatime-cli.orig").read_text() == REAL_CLI
    assert status(env)["JupyterLab"]["ready"] is True


def test_a_jetbrains_link_to_its_downloaded_cli_is_kept_and_its_target_untouched(
    env: dict[str, str],
) -> None:
    """JetBrains deletes a plain file at ~/.wakatime/wakatime-cli and links it to the
    wakatime-cli-<os>-<arch> it downloaded."""
    managed(env).parent.mkdir(parents=True)
    managed(env).write_text(REAL_CLI)
    home_cli(env).symlink_to(managed(env))

    kept = agent(env, "plugins", "install")
    assert kept.returncode == 0, kept.stderr
    assert f"(a link to {managed(env)})" in kept.stdout
    assert os.readlink(home_cli(env)) == str(managed(env))

    forced = agent(env, "plugins", "install", "--force")
    assert forced.returncode == 0, forced.stderr
    assert os.readlink(home_cli(env).with_name("wakatime-cli.orig")) == str(managed(env))
    assert managed(env).read_text() == REAL_CLI  # what the link pointed at is left alone
    assert LAUNCHER_MARKER in home_cli(env).read_text()


def test_a_dangling_link_is_replaced(env: dict[str, str], tmp_path: Path) -> None:
    home_cli(env).parent.mkdir(parents=True)
    home_cli(env).symlink_to(tmp_path / "gone")

    assert agent(env, "plugins", "install").returncode == 0

    assert LAUNCHER_MARKER in home_cli(env).read_text()
    assert not home_cli(env).with_name("wakatime-cli.orig").exists()


# ----- Neovim's Lua plugin: cli_path in setup{} -----------------------------------------


def nvim_config(env: dict[str, str]) -> Path:
    folder = Path(env["XDG_CONFIG_HOME"]) / "nvim"
    (folder / "lua" / "plugins").mkdir(parents=True)
    return folder


def test_neovim_reads_cli_path_from_its_lua_configuration(
    env: dict[str, str], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "not-on-path"
    assert agent(env, "plugins", "install", "--bin-dir", str(elsewhere)).returncode == 0
    home_cli(env).unlink()
    nvim = nvim_config(env)
    (nvim / "init.lua").write_text("require('config.lazy')\n")
    (nvim / "lua" / "plugins" / "wakatime.lua").write_text(
        "return {\n  'wakatime/vim-wakatime',\n"
        "  -- cli_path = '/old/wakatime-cli',\n"
        f"  opts = {{ cli_path = vim.fn.expand('{elsewhere}/wakatime-cli') }},\n}}\n"
    )

    route = status(env)["Neovim"]

    assert route["ready"] is True
    assert route["via"] == f"cli_path = {elsewhere}/wakatime-cli"

    (nvim / "lua" / "plugins" / "wakatime.lua").write_text(
        "require('wakatime').setup({ cli_path = '/usr/bin/true' })\n"
    )
    route = status(env)["Neovim"]
    assert (route["ready"], route["setting"]) == (False, "cli_path")


def test_neovim_advice_names_setup_not_the_vim_variable_it_ignores(
    env: dict[str, str], tmp_path: Path
) -> None:
    launcher = tmp_path / "launcher" / "wakatime-cli"
    assert agent(env, "plugins", "install", "--bin-dir", str(launcher.parent)).returncode == 0
    home_cli(env).unlink()
    nvim = nvim_config(env)
    (nvim / "init.vim").write_text(f"let g:wakatime_CLIPath = '{launcher}'\n")

    route = status(env)["Neovim"]

    assert route["ready"] is False
    assert "g:wakatime_CLIPath in init.vim is ignored by the Lua plugin" in route["via"]
    assert route["setting"].startswith("require('wakatime').setup({ cli_path = ")
