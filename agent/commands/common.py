"""What several commands share: loading settings with a clean error, logging setup."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from agent.wakatime_cli.private_files import open_private

if TYPE_CHECKING:
    from agent.config import Settings

EXIT_CONFIG = 78  # sysexits EX_CONFIG; the systemd unit does not restart on it
LINE_FORMAT = "%(levelname)s %(name)s: %(message)s"
TIMED_FORMAT = "%(asctime)s " + LINE_FORMAT
LOG_FILE_BYTES = 5 * 1024 * 1024  # `[log] file` is rotated at this size …
LOG_FILE_BACKUPS = 3  # … keeping this many older files


class CommandError(Exception):
    """A user-facing failure: printed as one line, no traceback."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="the TOML configuration file")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")


def settings_from(args: argparse.Namespace) -> Settings:
    from agent.config import load_settings

    return load_settings(args.config)


def setup_logging(level: str = "info", verbose: bool = False, file: Path | None = None) -> None:
    """One line a record on stderr (under systemd without the time: the journal adds it);
    with a file (`[log] file`), there instead, rotated by size, and on stderr as well only
    when that is a terminal."""
    journal = bool(os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"))
    handlers: list[logging.Handler] = []
    if file is None or sys.stderr.isatty():
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter(LINE_FORMAT if journal else TIMED_FORMAT))
        handlers.append(console)
    if file is not None:
        handlers.append(_log_file_handler(file.expanduser()))
    logging.basicConfig(
        level=logging.DEBUG if verbose else getattr(logging, level.upper()),
        handlers=handlers,
        force=True,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("watchdog").setLevel(logging.WARNING)


def _log_file_handler(path: Path) -> logging.Handler:
    """A size-rotated log file, private to the user like the rest of the agent's files."""
    from logging.handlers import RotatingFileHandler  # not on the plugins' fast path

    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(open_private(path, os.O_WRONLY | os.O_APPEND, follow_symlinks=True))
        handler = RotatingFileHandler(
            path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
        )
    except OSError as exc:
        raise CommandError(f"[log] file: cannot write {path}: {exc}", EXIT_CONFIG) from None
    handler.setFormatter(logging.Formatter(TIMED_FORMAT))
    return handler


def run_command(body: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a command body, turning CommandError and ConfigError into one line on stderr."""
    try:
        return int(body(args) or 0)
    except CommandError as exc:
        print(f"agent: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # Only a loaded agent.config can have raised its ConfigError: no import needed here.
        config = sys.modules.get("agent.config")
        if config is None or not isinstance(exc, config.ConfigError):
            raise
        print(f"agent: {exc}", file=sys.stderr)
        return EXIT_CONFIG
