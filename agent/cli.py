"""`agent`: the command line. Dispatches on the first word and imports only that command's
module, so the plugin path (`agent --entity …`, `wakatime-cli …`) stays standard-library
fast. Each module in agent/commands has `main(argv) -> int` and its own argparse parser.
"""

from __future__ import annotations

import os
import sys

COMMANDS = {
    "run": ("run", "run the daemon in the foreground"),
    "status": ("status", "ask the daemon how it is doing"),
    "today": ("today", "today's coding time"),
    "heartbeat": ("heartbeat", "send one heartbeat (wakatime-cli flags)"),
    "queue": ("queue", "inspect and manage the offline queue"),
    "detect": ("detect", "show what a heartbeat for each path would carry"),
    "why": ("why", "why the latest writes to a file counted as coding or not"),
    "config": ("config", "show the effective settings and their sources"),
    "login": ("login", "log in with OAuth 2.0"),
    "logout": ("login", "forget the OAuth tokens"),
    "stats": ("stats", "coding statistics from the server"),
    "service": ("service", "install the agent as a systemd/launchd user service"),
    "plugins": ("plugins", "connect editor plugins to the agent"),
}

USAGE = "usage: agent COMMAND [options]   (agent COMMAND --help for a command's options)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    invoked_as = os.path.basename(sys.argv[0]) if sys.argv else "agent"
    if invoked_as.startswith("wakatime-cli") or not argv or argv[0].startswith("-"):
        if argv and argv[0] in ("-h", "--help") and not invoked_as.startswith("wakatime-cli"):
            return _help()
        if not argv:
            return _help()
        return _run("heartbeat", argv)
    name = argv[0]
    if name not in COMMANDS:
        print(f"agent: unknown command {name!r}\n{USAGE}", file=sys.stderr)
        return 2
    return _run(name, argv[1:] if name != "logout" else argv)


def _run(name: str, argv: list[str]) -> int:
    # __import__, not importlib.import_module: importing importlib costs the plugin path ~1 ms.
    module_name = f"agent.commands.{COMMANDS[name][0]}"
    __import__(module_name)
    return int(sys.modules[module_name].main(argv) or 0)


def _help() -> int:
    lines = [USAGE, "", "commands:"]
    lines += [f"  {name:<10} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "With wakatime-cli flags and no command (agent --entity FILE …) it acts as"]
    lines += ["`agent heartbeat`, so WakaTime editor plugins can use it as their CLI."]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
