"""`agent run`: the daemon in the foreground (what systemd and launchd start)."""

from __future__ import annotations

import argparse

from agent.commands.common import (
    EXIT_CONFIG,
    CommandError,
    add_config_option,
    run_command,
    settings_from,
    setup_logging,
)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agent run", description=__doc__)
    add_config_option(parser)
    return run_command(_run, parser.parse_args(argv))


def _run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    setup_logging(settings.log.level, args.verbose, file=settings.log.file)
    from agent.daemon import Daemon, StartupError
    from agent.ipc.server import SocketInUse

    try:
        Daemon(settings).run()
    except SocketInUse as exc:
        raise CommandError(str(exc)) from None
    except StartupError as exc:
        raise CommandError(str(exc), EXIT_CONFIG) from None
    return 0
