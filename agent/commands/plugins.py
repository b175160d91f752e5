"""`agent plugins install|status`: make WakaTime editor plugins use the agent."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from agent.commands.common import CommandError, run_command


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agent plugins", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    install = sub.add_parser("install", help="put a wakatime-cli launcher on your PATH")
    install.add_argument(
        "--bin-dir", type=Path, help="where to put it (default ~/.local/bin)", default=None
    )
    install.add_argument(
        "--managed",
        action="store_true",
        help="also at ~/.wakatime/wakatime-cli-<os>-<arch>, for Sublime, the macOS app and"
        " Visual Studio, which look nowhere else",
    )
    install.add_argument(
        "--force", action="store_true", help="move a real wakatime-cli aside (to *.orig)"
    )
    status = sub.add_parser("status", help="which editors' plugins will reach the agent")
    status.add_argument("--json", action="store_true", help="one JSON object per editor")
    args = parser.parse_args(argv)
    return run_command(_install if args.action == "install" else _status, args)


def _install(args: argparse.Namespace) -> int:
    from agent.plugins import CLI_NAME, InstallRefused, install_launcher, managed_cli_path
    from agent.plugins import user_bin_dir as default_bin_dir

    bin_dir = (args.bin_dir or default_bin_dir()).expanduser()
    targets = [bin_dir / CLI_NAME] + ([managed_cli_path()] if args.managed else [])
    for target in targets:
        try:
            backup = install_launcher(target, force=args.force)
        except InstallRefused as exc:
            raise CommandError(str(exc)) from None
        if backup is not None:
            print(f"moved the wakatime-cli that was at {target} to {backup}")
        print(f"installed {target}")
    _link_home_cli(targets[0], args.force)
    found = shutil.which(CLI_NAME)
    if found is None or Path(found).resolve() != targets[0].resolve():
        where = f"{found} comes first on PATH" if found else f"{bin_dir} is not on PATH"
        print(f"note: {where}; add {bin_dir} to PATH before it for plugins to find the agent")
    print("`agent plugins status` shows which editors will use it")
    return 0


def _link_home_cli(launcher: Path, force: bool) -> None:
    """~/.wakatime/wakatime-cli, JupyterLab's only route and nano's first: a link to the
    launcher. A real wakatime-cli there is kept (said, not fatal: the PATH route stands)."""
    from agent.plugins import InstallRefused, home_cli_path, install_link

    link = home_cli_path()
    try:
        backup = install_link(link, launcher, force=force)
    except InstallRefused as exc:
        print(f"note: {exc}")
        return
    if backup is not None:
        print(f"moved the wakatime-cli that was at {link} to {backup}")
    print(f"linked {link} -> {launcher}")


def _status(args: argparse.Namespace) -> int:
    from agent.plugins import editor_routes

    routes = editor_routes(dict(os.environ))
    if args.json:
        print(json.dumps([asdict(route) for route in routes], indent=2))
        return 0
    width = max(len(route.editor) for route in routes)
    for route in routes:
        state = "uses agent" if route.ready else "not yet   "
        print(f"{route.editor:<{width}}  {state}  {route.via}")
        if route.setting:
            print(f"{'':<{width}}  set:        {route.setting}")
    return 0
