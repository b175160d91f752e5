"""One daemon per user, started by the first plugin call that finds none.

Standard library only (the compat command's path). Two locks in the socket's private
folder keep it to one:

- `autostart.lock`: a plugin call that found no daemon takes it (never waiting: a call
  that finds it taken just goes on) and, holding it, starts a daemon unless one answers
  or one was started less than AUTOSTART_RETRY seconds ago (its time is in the file). So
  ten editors saving at once start one daemon, and a daemon that cannot start (a broken
  configuration) is not tried again on every save.
- `agent.lock`: held by the running daemon for its whole life (`hold_instance_lock`),
  taken before it touches its socket: a second daemon, however started, stops there.

The daemon is started detached (double fork, its own session, stdin from /dev/null,
stdout and stderr to its log file, no other descriptor inherited), so the plugin's call
returns at once and the editor never waits on a pipe the daemon holds.
"""

from __future__ import annotations

import os
import stat
import sys

from agent.ipc.client import DaemonUnavailable, IpcClient
from agent.wakatime_cli.private_files import open_private, try_open_locked

AUTOSTART_RETRY = 60.0  # seconds before another start is tried after one
AUTOSTART_LOCK = "autostart.lock"
INSTANCE_LOCK = "agent.lock"
PROBE_TIMEOUT = 1.0


def private_folder(socket_path: str) -> str:
    """The socket's folder, created 0700 and checked to be the user's own real folder."""
    folder = os.path.dirname(os.path.abspath(socket_path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise PermissionError(f"{folder} is not a real folder; refusing to use it")
    if info.st_uid != os.getuid():
        raise PermissionError(f"{folder} belongs to another user; refusing to use it")
    if stat.S_IMODE(info.st_mode) & 0o077:  # ours, but others could plant a lock in it
        os.chmod(folder, 0o700)
    return folder


def hold_instance_lock(socket_path: str) -> int | None:
    """The daemon's lock, as an open descriptor to keep for its life; None when another
    daemon holds it."""
    return try_open_locked(os.path.join(private_folder(socket_path), INSTANCE_LOCK))


def start_daemon(socket_path: str, log_file: str, env: dict[str, str], now: float) -> str:
    """Start a daemon for this socket unless one answers or is starting; what was done, for
    the plugin's log. Raises OSError when the folder or the fork fails."""
    fd = try_open_locked(os.path.join(private_folder(socket_path), AUTOSTART_LOCK))
    if fd is None:
        return "another call is starting the daemon"
    try:
        last = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        try:
            since = now - float(last)
        except ValueError:
            since = AUTOSTART_RETRY
        if 0 <= since < AUTOSTART_RETRY:
            return f"a daemon was started {since:.0f} s ago; not starting another yet"
        if answers(socket_path):
            return "a daemon answers now"
        os.ftruncate(fd, 0)
        os.pwrite(fd, repr(now).encode("ascii"), 0)
        _spawn_detached(daemon_command(), env, log_file)
        return f"started the daemon (its log: {log_file})"
    finally:
        os.close(fd)  # releases the lock


def answers(socket_path: str) -> bool:
    """Whether a daemon accepts a connection on the socket."""
    try:
        with IpcClient(socket_path, timeout=PROBE_TIMEOUT):
            return True
    except DaemonUnavailable:
        return False


def daemon_command() -> list[str]:
    """`agent run` with this Python, finding this package where the launcher found it
    (-P: the daemon's folder is not put on sys.path)."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (
        f"import sys; sys.path.insert(0, {package_parent!r}); from agent.cli import main;"
        " sys.exit(main(['run']))"
    )
    return [sys.executable, "-P", "-c", code]


def _spawn_detached(argv: list[str], env: dict[str, str], log_file: str) -> None:
    """Double fork: the daemon is nobody's child and leads its own session; it starts in
    the home folder (where `agent run` watches the code folders it finds)."""
    os.makedirs(os.path.dirname(log_file), mode=0o700, exist_ok=True)
    child = os.fork()
    if child:
        os.waitpid(child, 0)
        return
    try:  # the first child: never returns into the caller's code
        os.setsid()
        if os.fork():
            os._exit(0)
        os.chdir(os.path.expanduser("~"))
        stdin = os.open(os.devnull, os.O_RDONLY)
        output = open_private(log_file, os.O_WRONLY | os.O_APPEND, follow_symlinks=True)
        os.dup2(stdin, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024)
        os.execve(argv[0], argv, env)
    except BaseException:
        pass
    os._exit(127)
