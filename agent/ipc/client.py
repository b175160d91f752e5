"""The plugin side of the socket: connect, send requests, read their answers in order.

This is on the path a plugin spawns on every save, so it imports only what Python has
loaded at startup anyway plus `_socket` (the `socket` module drags in `enum` and
`selectors`) and `pathlib` nowhere (it imports `re`): paths are plain strings here.
"""

from __future__ import annotations

import _socket
import os
import stat
import sys

from agent.ipc.protocol import MAX_LINE, encode, loads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

APP_NAME = "heartbeat-agent"
SOCKET_ENV = "HEARTBEAT_AGENT_SOCKET"
# The settings' own name for `[ipc] socket`, honoured without loading the settings.
SETTINGS_SOCKET_ENV = "HEARTBEAT_AGENT_IPC__SOCKET"


def socket_file() -> str:
    """`$HEARTBEAT_AGENT_SOCKET`, else `$XDG_RUNTIME_DIR/heartbeat-agent/agent.sock`, else
    the per-user state folder (what platformdirs gives, computed here without importing it)."""
    if override := os.environ.get(SOCKET_ENV) or os.environ.get(SETTINGS_SOCKET_ENV):
        return os.path.expanduser(override)
    if runtime := os.environ.get("XDG_RUNTIME_DIR"):
        return os.path.join(runtime, APP_NAME, "agent.sock")
    home = os.path.expanduser("~")
    if sys.platform == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    else:
        base = os.environ.get("XDG_STATE_HOME") or os.path.join(home, ".local", "state")
    return os.path.join(base, APP_NAME, "agent.sock")


def default_socket_path() -> Path:
    """`socket_file()` as a Path, for the daemon's side."""
    from pathlib import Path

    return Path(socket_file())


class DaemonUnavailable(OSError):
    """No daemon answers on the socket, or it went away mid-request."""


class UntrustedSocket(DaemonUnavailable):
    """The socket, or its folder, could be another user's: nothing is sent there."""


def check_socket(path: str) -> None:
    """Refuse a socket another user may have put in place, before a heartbeat or a key is
    sent to it: it must be a socket of ours, in a folder of ours that no one else may
    write to (else anyone could swap in a listener of their own)."""
    uid = os.getuid()
    folder = os.path.dirname(os.path.abspath(path))
    try:
        folder_info = os.stat(folder)
        info = os.lstat(path)
    except OSError as exc:
        raise DaemonUnavailable(f"no daemon at {path}: {exc}") from exc
    if folder_info.st_uid != uid:
        raise UntrustedSocket(f"refusing {path}: its folder belongs to uid {folder_info.st_uid}")
    if folder_info.st_mode & 0o022:
        raise UntrustedSocket(
            f"refusing {path}: its folder is writable by others"
            f" (mode {stat.S_IMODE(folder_info.st_mode):o})"
        )
    if not stat.S_ISSOCK(info.st_mode):
        raise UntrustedSocket(f"refusing {path}: not a socket")
    if info.st_uid != uid:
        raise UntrustedSocket(f"refusing {path}: it belongs to uid {info.st_uid}")


class IpcClient:
    """One connection; requests are answered in order. A plugin may keep it open."""

    def __init__(self, path: str | os.PathLike[str] | None = None, timeout: float = 5.0) -> None:
        self.path = os.fspath(path) if path is not None else socket_file()
        check_socket(self.path)
        self._sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(self.path)
        except OSError as exc:
            self._sock.close()
            raise DaemonUnavailable(f"no daemon at {self.path}: {exc}") from exc
        self._buffer = b""

    def __enter__(self) -> IpcClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request and wait for its answer."""
        self.send(message)
        return self.read_answer()

    def send(self, message: dict[str, Any]) -> None:
        """Send without waiting (pipelining); read the answers with `read_answer`."""
        try:
            self._sock.sendall(encode(message))
        except OSError as exc:
            raise DaemonUnavailable(f"cannot send to the daemon: {exc}") from exc

    def read_answer(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            try:
                chunk = self._sock.recv(65536)
            except OSError as exc:
                raise DaemonUnavailable(f"no answer from the daemon: {exc}") from exc
            if not chunk:
                raise DaemonUnavailable("the daemon closed the connection")
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE * 4:
                raise DaemonUnavailable("answer too long")
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            answer = loads(line)
        except ValueError as exc:
            raise DaemonUnavailable(f"unreadable answer from the daemon: {exc}") from exc
        if not isinstance(answer, dict):
            raise DaemonUnavailable("unreadable answer from the daemon: not an object")
        if answer.get("busy") is True:
            raise DaemonUnavailable(f"the daemon turned the connection away: {answer.get('error')}")
        return answer


def request(
    message: dict[str, Any], path: str | os.PathLike[str] | None = None, timeout: float = 5.0
) -> dict[str, Any]:
    """One request on a fresh connection."""
    with IpcClient(path, timeout) as client:
        return client.request(message)
