"""The plugin side of the socket: connect, send a request, read its answer.

Standard library only: this is on the path a plugin spawns on every save.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from agent.ipc.protocol import MAX_LINE, encode

APP_NAME = "heartbeat-agent"


def default_socket_path() -> Path:
    """`$HEARTBEAT_AGENT_SOCKET`, else `$XDG_RUNTIME_DIR/heartbeat-agent/agent.sock`, else
    the per-user state folder (what platformdirs gives, computed here without importing it)."""
    if override := os.environ.get("HEARTBEAT_AGENT_SOCKET"):
        return Path(override)
    if runtime := os.environ.get("XDG_RUNTIME_DIR"):
        return Path(runtime) / APP_NAME / "agent.sock"
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / APP_NAME / "agent.sock"


class DaemonUnavailable(OSError):
    """No daemon answers on the socket."""


class IpcClient:
    """One connection; requests are answered in order."""

    def __init__(self, path: Path | None = None, timeout: float = 5.0) -> None:
        self.path = path or default_socket_path()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(os.fspath(self.path))
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
        self._sock.sendall(encode(message))
        return self.read_answer()

    def read_answer(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise DaemonUnavailable("the daemon closed the connection")
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE * 4:
                raise DaemonUnavailable("answer too long")
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)


def request(
    message: dict[str, Any], path: Path | None = None, timeout: float = 5.0
) -> dict[str, Any]:
    """One request on a fresh connection."""
    with IpcClient(path, timeout) as client:
        return client.request(message)
