"""The agent's own files (locks, the plugins' spool, logs, the database) opened private to
the user: created 0600, never through a symlink someone planted where the file should be,
not inherited by the processes the agent starts, and locked (flock, exclusive) where
processes take turns.

Standard library only and in the plugins' fast path's folder, so every layer may use it.
"""

from __future__ import annotations

import fcntl
import os


def open_private(
    path: str | os.PathLike[str], flags: int = os.O_RDWR, *, follow_symlinks: bool = False
) -> int:
    """A descriptor of `path` opened with `flags`, the file created 0600 if missing. A symlink
    at `path` is refused (OSError, ELOOP) unless `follow_symlinks`: for a file the user may
    point elsewhere (a log, the database) that another library opens by name anyway."""
    flags |= os.O_CREAT | os.O_CLOEXEC
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    return os.open(path, flags, 0o600)


def open_locked(path: str | os.PathLike[str], flags: int = os.O_RDWR) -> int:
    """`open_private`, then an exclusive lock, waiting while another open file holds it.
    Closing the descriptor releases the lock."""
    return _locked(path, flags, fcntl.LOCK_EX)


def try_open_locked(path: str | os.PathLike[str], flags: int = os.O_RDWR) -> int | None:
    """`open_locked` without the wait: None at once (the file closed again) when another
    open file holds the lock."""
    try:
        return _locked(path, flags, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return None


def _locked(path: str | os.PathLike[str], flags: int, operation: int) -> int:
    fd = open_private(path, flags)
    try:
        fcntl.flock(fd, operation)
    except BaseException:
        os.close(fd)
        raise
    return fd
