"""What several commands share: loading settings with a clean error, logging setup."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config import Settings

EXIT_CONFIG = 78  # sysexits EX_CONFIG; the systemd unit does not restart on it


class CommandError(Exception):
    """A user-facing failure: printed as one line, no traceback."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="the TOML configuration file")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")


def settings_from(args: argparse.Namespace) -> Settings:
    from agent.config import ConfigError, load_settings

    try:
        return load_settings(args.config)
    except ConfigError as exc:
        raise CommandError(str(exc), EXIT_CONFIG) from None


def setup_logging(level: str = "info", verbose: bool = False) -> None:
    """stderr, one line a record; under systemd the journal adds the timestamp itself."""

    journal = bool(os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"))
    fmt = (
        "%(levelname)s %(name)s: %(message)s"
        if journal
        else ("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(
        level=logging.DEBUG if verbose else getattr(logging, level.upper()),
        format=fmt,
        stream=sys.stderr,
        force=True,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("watchdog").setLevel(logging.WARNING)


def run_command(body: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a command body, turning CommandError into one line on stderr."""
    try:
        return int(body(args) or 0)
    except CommandError as exc:
        print(f"agent: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
