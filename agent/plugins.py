"""Connecting WakaTime editor plugins to the agent (DESIGN §2a): a `wakatime-cli` launcher
where plugins look for one, and a report of which plugin will reach it.

The launcher is a tiny script written for this Python: it runs `python -S` (skipping
`site`, ~3 ms) with the agent's package folder on sys.path, and imports neither `re` nor
the console-script machinery, so a plugin's per-save call costs little more than Python's
own start. The compat command adds site-packages itself when it needs a dependency.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import agent

LAUNCHER_MARKER = "heartbeat-agent's wakatime-cli launcher"
CONSOLE_SCRIPT_MARKER = "from agent.cli import main"
CLI_NAME = "wakatime-cli"
GO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "386",
    "i686": "386",
    "armv7l": "arm",
    "armv6l": "arm",
}


class InstallRefused(Exception):
    """A real wakatime-cli is where the launcher would go."""


def launcher_text(python: str | None = None) -> str:
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(agent.__file__)))
    return (
        f"#!{python or sys.executable} -S\n"
        f"# {LAUNCHER_MARKER}: WakaTime plugins run this as wakatime-cli and reach the\n"
        "# agent's daemon. Written by `agent plugins install`; safe to delete.\n"
        "import sys\n"
        f"sys.path.insert(0, {package_parent!r})\n"
        "from agent.cli import main\n"
        "sys.exit(main())\n"
    )


def user_bin_dir() -> Path:
    return Path.home() / ".local" / "bin"


def wakatime_home() -> Path:
    """`$WAKATIME_HOME`, else the home folder: where ~/.wakatime.cfg and ~/.wakatime are."""
    return Path(os.environ.get("WAKATIME_HOME") or Path.home()).expanduser()


def home_cli_path() -> Path:
    """`~/.wakatime/wakatime-cli`: the only place JupyterLab runs, the first nano-wakatime
    tries, and where JetBrains keeps a symlink to the one it downloaded."""
    return wakatime_home() / ".wakatime" / CLI_NAME


def managed_cli_path() -> Path:
    """Where plugins keep the wakatime-cli they download: `~/.wakatime/wakatime-cli-<os>-<arch>`
    (`$WAKATIME_HOME` honoured). Sublime, the macOS app and Visual Studio look only here."""
    home = wakatime_home()
    system = platform.system().lower() or "linux"
    machine = platform.machine().lower()
    suffix = ".exe" if system == "windows" else ""
    return home / ".wakatime" / f"{CLI_NAME}-{system}-{GO_ARCH.get(machine, machine)}{suffix}"


def is_agent_program(path: str | os.PathLike[str] | None) -> bool:
    """True for this agent under any name: the launcher, or pip's console script."""
    if not path:
        return False
    try:
        with open(os.path.realpath(path), "rb") as file:
            head = file.read(4096)
    except OSError:
        return False
    return LAUNCHER_MARKER.encode() in head or CONSOLE_SCRIPT_MARKER.encode() in head


def install_launcher(target: Path, *, force: bool = False) -> Path | None:
    """Write the launcher at target; returns where a replaced program was moved, if any.

    Raises InstallRefused when target is a real wakatime-cli and force is not given.
    """
    backup = None
    if target.exists() or target.is_symlink():
        if not is_agent_program(target):
            if not force:
                raise InstallRefused(
                    f"{target} is a real wakatime-cli, not heartbeat-agent's; left as it is"
                    " (--force moves it aside and installs the launcher)"
                )
            backup = target.with_name(target.name + ".orig")
            os.replace(target, backup)
        else:
            target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(launcher_text(), encoding="utf-8")
    tmp.chmod(0o755)
    os.replace(tmp, target)
    return backup


def install_link(link: Path, launcher: Path, *, force: bool = False) -> Path | None:
    """A symlink at `link` to the launcher; returns where a replaced program was moved.

    What is there already decides: the agent (a launcher, or a link to one) or a dangling
    link is replaced; a real wakatime-cli, or a link to one (JetBrains links this name to
    the wakatime-cli it downloaded), is kept unless `force`, which moves that file or link
    aside to `*.orig` (a link's target is left alone)."""
    backup = None
    if link.is_symlink() or link.exists():
        dangling = link.is_symlink() and not link.exists()
        if not dangling and not is_agent_program(link):
            if not force:
                raise InstallRefused(
                    f"{link} is a real wakatime-cli"
                    + (f" (a link to {os.readlink(link)})" if link.is_symlink() else "")
                    + ", not heartbeat-agent's; left as it is (--force moves it aside)"
                )
            backup = link.with_name(link.name + ".orig")
            os.replace(link, backup)
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(launcher.resolve())
    os.replace(tmp, link)
    return backup


@dataclass(frozen=True)
class EditorRoute:
    """How one editor's plugin finds its CLI, and whether that ends at the agent."""

    editor: str
    ready: bool
    via: str  # what the plugin will run, or why not
    setting: str | None  # the one thing to set when not ready


def editor_routes(env: dict[str, str] | None = None) -> list[EditorRoute]:
    """Editor by editor (DESIGN §2a), from the user's PATH, environment and config files."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("HOME") or Path.home())
    on_path = shutil.which(CLI_NAME, path=env.get("PATH"))
    path_ok = is_agent_program(on_path)
    managed = managed_cli_path()
    managed_ok = is_agent_program(managed)
    launcher = user_bin_dir() / CLI_NAME
    path_via = on_path or f"no {CLI_NAME} on PATH"
    path_fix = None if path_ok else f"run `agent plugins install` (puts {launcher} on PATH)"
    managed_fix = (
        None if managed_ok else f"run `agent plugins install --managed` (writes {managed})"
    )

    def by_setting(editor: str, name: str, value: str | None, fallback_ok: bool) -> EditorRoute:
        if value:
            ready = is_agent_program(os.path.expanduser(value))
            return EditorRoute(editor, ready, f"{name} = {value}", None if ready else name)
        setting = None if fallback_ok else f"{name} = {launcher}  (or: {path_fix})"
        return EditorRoute(editor, fallback_ok, path_via, setting)

    vim_path = _setting_in([home / ".vimrc", home / ".vim" / "vimrc"], "g:wakatime_CLIPath")
    nvim = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "nvim"
    nvim_lua_path = _setting_in(_lua_files(nvim), "cli_path", ("--",))
    nvim_vim_path = _setting_in([nvim / "init.vim"], "g:wakatime_CLIPath")
    home_cli = home_cli_path()
    home_cli_ok = is_agent_program(home_cli)
    home_cli_fix = None if home_cli_ok else f"run `agent plugins install` (links {home_cli})"
    emacs_path = _setting_in(
        [home / ".emacs", home / ".emacs.d" / "init.el", home / ".config" / "emacs" / "init.el"],
        "wakatime-cli-path",
    )
    jetbrains = env.get("WAKATIME_CLI_LOCATION")
    # Neovim's Lua vim-wakatime: `cli_path` in setup{}, else PATH, else ~/.wakatime.
    if nvim_lua_path:
        neovim = by_setting("Neovim", "cli_path", nvim_lua_path, path_ok)
    elif path_ok or home_cli_ok:
        neovim = EditorRoute("Neovim", True, on_path if path_ok else str(home_cli), None)
    else:
        ignored = " (g:wakatime_CLIPath in init.vim is ignored by the Lua plugin)"
        neovim = EditorRoute(
            "Neovim",
            False,
            path_via + (ignored if nvim_vim_path else ""),
            f"require('wakatime').setup({{ cli_path = '{launcher}' }})  (or: {path_fix})",
        )
    routes = [
        by_setting("Vim", "g:wakatime_CLIPath", vim_path, path_ok),
        neovim,
        EditorRoute("VS Code", path_ok, path_via, path_fix),
        by_setting("Emacs", "wakatime-cli-path", emacs_path, path_ok),
        EditorRoute("Zed", path_ok, path_via, path_fix),
        EditorRoute("Claude Code / opencode", path_ok, path_via, path_fix),
    ]
    if jetbrains:
        ready = is_agent_program(jetbrains)
        routes.append(
            EditorRoute(
                "JetBrains",
                ready,
                f"WAKATIME_CLI_LOCATION = {jetbrains}",
                None if ready else f"WAKATIME_CLI_LOCATION={launcher}",
            )
        )
    else:
        routes.append(
            EditorRoute(
                "JetBrains",
                managed_ok,
                str(managed),
                None if managed_ok else f"WAKATIME_CLI_LOCATION={launcher}",
            )
        )
    for editor in ("Sublime Text", "macOS app", "Visual Studio"):
        routes.append(EditorRoute(editor, managed_ok, str(managed), managed_fix))
    routes.append(EditorRoute("JupyterLab", home_cli_ok, str(home_cli), home_cli_fix))
    if home_cli_ok or not path_ok:
        routes.append(EditorRoute("nano", home_cli_ok, str(home_cli), home_cli_fix))
    else:
        routes.append(EditorRoute("nano", True, path_via, None))
    return routes


LUA_FILES = 500  # Lua files of a Neovim configuration read at most


def _lua_files(nvim: Path) -> list[Path]:
    """init.lua, then the configuration's lua/ tree (where plugin specs live)."""
    found = [nvim / "init.lua"]
    for folder, _dirs, files in os.walk(nvim / "lua"):
        found += [Path(folder) / name for name in sorted(files) if name.endswith(".lua")]
        if len(found) > LUA_FILES:
            break
    return found[:LUA_FILES]


def _setting_in(files: list[Path], name: str, comments: tuple[str, ...] = ('"', ";")) -> str | None:
    """The quoted value given to a setting on a line of the first file that sets it
    (`cli_path = vim.fn.expand('~/…')` gives `~/…`); lines starting with a comment
    marker (vim's `"`, lisp's `;`, lua's `--`) do not count."""
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            stripped = line.strip()
            if name not in stripped or stripped.startswith(comments):
                continue
            after = stripped.split(name, 1)[1]
            for quote in ("'", '"'):
                if quote in after:
                    value = after.split(quote)[1]
                    if value:
                        return value
    return None
