"""The daemon side of the socket: asyncio, one task pair per connection.

Each connection reads lines as fast as the client sends them and starts serving each at
once, while a writer answers them strictly in order; so a client that pipelines many
heartbeats shares one group commit, and a slow or hostile client only stalls itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agent.ipc.protocol import MAX_LINE, ProtocolError, decode_request, encode, error, with_id

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
MAX_CONNECTIONS = 512
PIPELINE_DEPTH = 1024  # answers a client may have outstanding before we stop reading it


class SocketInUse(RuntimeError):
    """Another daemon already answers on this socket."""


class IpcServer:
    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        prepare_socket_path(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(os.fspath(self.path))
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600, follow_symlinks=False)
        self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=MAX_LINE)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        with contextlib.suppress(OSError):
            await asyncio.wait_for(self._server.wait_closed(), 2)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= MAX_CONNECTIONS:
            writer.write(encode(error("too many connections")))
            writer.close()
            return
        self._connections.add(task)
        answers: asyncio.Queue[asyncio.Future[dict[str, Any]] | None] = asyncio.Queue(
            PIPELINE_DEPTH
        )
        answering = asyncio.create_task(self._answer(answers, writer))
        try:
            while (line := await _read_line(reader)) is not None:
                await answers.put(asyncio.ensure_future(self._dispatch(line)))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            await answers.put(None)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await answering
            writer.close()
            self._connections.discard(task)

    async def _dispatch(self, line: bytes | _TooLong) -> dict[str, Any]:
        if isinstance(line, _TooLong):
            return error(f"line longer than {MAX_LINE} bytes refused")
        try:
            request = decode_request(line)
        except ProtocolError as exc:
            return error(str(exc))
        request_id = request.get("id")
        try:
            return with_id(await self.handler(request), request_id)
        except ProtocolError as exc:
            return error(str(exc), request_id)
        except Exception as exc:
            log.exception("request %r failed", request.get("op"))
            return error(f"internal error: {exc}", request_id)

    async def _answer(
        self,
        answers: asyncio.Queue[asyncio.Future[dict[str, Any]] | None],
        writer: asyncio.StreamWriter,
    ) -> None:
        connected = True
        while (pending := await answers.get()) is not None:
            answer = await pending  # awaited even for a client gone: its heartbeats still count
            if not connected:
                continue
            try:
                line = encode(answer)
            except (TypeError, ValueError) as exc:
                log.error("unsendable answer %r: %s", answer, exc)
                line = encode(error(f"internal error: unsendable answer: {exc}"))
            try:
                writer.write(line)
                # At once when nothing is buffered; waits only on a client that reads no
                # answers (past the high-water mark), which then stalls nobody but itself.
                await writer.drain()
            except ConnectionError:
                connected = False  # keep taking answers so the reader never blocks on us


class _TooLong:
    """Stands for a line over the cap, already discarded."""


async def _read_line(reader: asyncio.StreamReader) -> bytes | _TooLong | None:
    """The next non-blank line; None at end of input (a partial last line is dropped)."""
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            return await _discard_line(reader)
        if line.strip():
            return line


async def _discard_line(reader: asyncio.StreamReader) -> _TooLong | None:
    """Throw an over-long line away, chunk by chunk, up to and including its newline."""
    while True:
        try:
            await reader.readuntil(b"\n")
            return _TooLong()
        except asyncio.LimitOverrunError as exc:
            await reader.readexactly(exc.consumed)
        except asyncio.IncompleteReadError:
            return None


def prepare_socket_path(path: Path) -> None:
    """Make the socket's folder private and clear the way for the socket.

    A live daemon on the path is refused; a stale socket from a crashed one, or anything
    else planted there (a symlink included, never followed), is removed.
    """
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise PermissionError(f"{folder} is not a real folder; refusing to use it")
    if info.st_uid != os.getuid():
        raise PermissionError(f"{folder} belongs to another user; refusing to use it")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(folder, 0o700)
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISSOCK(existing.st_mode) and _answers(path):
        raise SocketInUse(f"another heartbeat-agent daemon is already running ({path})")
    if stat.S_ISDIR(existing.st_mode):
        raise PermissionError(f"{path} is a folder; remove it or set ipc.socket")
    os.unlink(path)


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(os.fspath(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True
