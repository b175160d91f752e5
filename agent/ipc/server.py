"""The daemon side of the socket: asyncio protocols, served without a task per request.

Each connection splits what it reads into lines and serves every complete line at once,
on the loop: a ping, a refused line or a validation error is answered right there, and a
heartbeat request leaves a future that resolves after its commit. Answers go out strictly
in order, all that are ready in one write; so a client that pipelines many heartbeats
shares one group commit, and a slow or hostile client only stalls itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agent.ipc.protocol import MAX_LINE, ProtocolError, decode_request, encode, error, with_id

log = logging.getLogger(__name__)

# A handler answers at once (a dict) or later (an awaitable of one); raising ProtocolError
# refuses the request.
Handler = Callable[[dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any]]]
MAX_CONNECTIONS = 512
PIPELINE_DEPTH = 1024  # answers a client may have outstanding before we stop reading it
CLOSE_TIMEOUT = 5.0  # seconds `stop` waits for a connection's last answers to go out


class SocketInUse(RuntimeError):
    """Another daemon already answers on this socket."""


class IpcServer:
    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_Connection] = set()

    async def start(self) -> None:
        prepare_socket_path(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(os.fspath(self.path))
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600, follow_symlinks=False)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(
            lambda: _Connection(self.handler, self._connections), sock=sock
        )

    async def stop(self) -> None:
        """Stop listening; requests already read are still answered, then every
        connection is closed."""
        if self._server is None:
            return
        self._server.close()
        closing = [connection.close_when_answered() for connection in list(self._connections)]
        await asyncio.gather(*closing, return_exceptions=True)
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)
        self._server = None


class _Connection(asyncio.Protocol):
    """One client: its unfinished line, the lines read and not yet served, and its answers
    in request order.

    `_answers` holds encoded answer lines and, for requests still being served, a
    (future, request id, request) entry; `_flush` writes the ready ones from the front and
    serves more lines while fewer than PIPELINE_DEPTH answers are outstanding.
    """

    def __init__(self, handler: Handler, connections: set[_Connection]) -> None:
        self._handler = handler
        self._connections = connections
        self._transport: asyncio.Transport | None = None
        self._partial = bytearray()
        self._discarding = False  # inside a line over the cap, thrown away up to its newline
        self._lines: deque[bytes | None] = deque()  # read, not yet served; None: over the cap
        self._answers: deque[bytes | tuple[asyncio.Future[Any], Any, Any]] = deque()
        self._waiting_on: asyncio.Future[Any] | None = None
        self._writing_paused = False
        self._reading_paused = False
        self._closed = asyncio.get_running_loop().create_future()
        self._stopping = False

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if len(self._connections) >= MAX_CONNECTIONS:
            # `busy`: nothing was read, so a client may store its request some other way.
            transport.write(encode({**error("too many connections"), "busy": True}))
            transport.close()
            return
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        # Requests still being served complete all the same (their heartbeats count);
        # only their answers have nowhere to go.
        self._connections.discard(self)
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        """The client reads its answers slower than it sends requests: stop reading it."""
        self._writing_paused = True
        self._pace()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._pace()

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            end = data.find(b"\n")
            if end < 0:
                return
            self._discarding = False
            data = data[end + 1 :]
        if b"\n" in data:
            if self._partial:
                self._partial += data
                data = bytes(self._partial)
                self._partial.clear()
            lines = data.split(b"\n")
            data = lines.pop()
            # With its newline, a line of MAX_LINE bytes is over the cap.
            self._lines.extend(line if len(line) < MAX_LINE else None for line in lines)
        self._partial += data
        if len(self._partial) >= MAX_LINE:
            self._partial.clear()
            self._discarding = True
            self._lines.append(None)
        self._flush()

    def eof_received(self) -> bool:
        """The client sent all it will: a partial last line is dropped, the answers still
        go out, then the connection closes."""
        self._stopping = True
        self._flush()
        return True

    # -- serving ----------------------------------------------------------------------

    def _serve(self, line: bytes) -> None:
        try:
            request = decode_request(line)
        except ProtocolError as exc:
            self._answers.append(encode(error(str(exc))))
            return
        request_id = request.get("id")
        try:
            answer = self._handler(request)
        except ProtocolError as exc:
            self._answers.append(encode(error(str(exc), request_id)))
            return
        except Exception as exc:
            self._answers.append(_failed(exc, request, request_id))
            return
        if isinstance(answer, dict):
            self._answers.append(_encoded(with_id(answer, request_id)))
        else:
            self._answers.append((asyncio.ensure_future(answer), request_id, request))

    def _answered(self, future: asyncio.Future[Any]) -> None:
        if future is self._waiting_on:
            self._waiting_on = None
        self._flush()

    def _flush(self) -> None:
        """Serve the lines read, while there is room; write every answer that is ready, in
        order, up to the first one still pending (which calls back once it is done)."""
        answers, lines = self._answers, self._lines
        while lines and len(answers) < PIPELINE_DEPTH:
            line = lines.popleft()
            if line is None:
                answers.append(_TOO_LONG)
            elif line and not line.isspace():
                self._serve(line)
        ready: list[bytes] = []
        while answers:
            head = answers[0]
            if isinstance(head, tuple):
                future, request_id, request = head
                if not future.done():
                    if self._waiting_on is not future:
                        self._waiting_on = future
                        future.add_done_callback(self._answered)
                    break
                ready.append(_outcome(future, request, request_id))
            else:
                ready.append(head)
            answers.popleft()
        transport = self._transport
        if ready and transport is not None and not transport.is_closing():
            transport.write(b"".join(ready))
        if lines and len(answers) < PIPELINE_DEPTH:  # answers written at once made room
            self._flush()
            return
        self._pace()
        if self._stopping and not answers and not lines:
            self._close()

    def _pace(self) -> None:
        """Read a client only while it has room for more answers."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        pause = self._writing_paused or self._stopping or bool(self._lines)
        if pause and not self._reading_paused:
            transport.pause_reading()
        elif not pause and self._reading_paused:
            transport.resume_reading()
        self._reading_paused = pause

    # -- stopping ---------------------------------------------------------------------

    async def close_when_answered(self) -> None:
        """Read no more; once every request read is answered, close (the answers are
        flushed out first, for as long as CLOSE_TIMEOUT allows)."""
        self._stopping = True
        self._flush()
        try:
            await asyncio.wait_for(asyncio.shield(self._closed), CLOSE_TIMEOUT)
        except TimeoutError:
            if self._transport is not None:
                self._transport.abort()

    def _close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


def _outcome(future: asyncio.Future[Any], request: dict[str, Any], request_id: Any) -> bytes:
    """The answer line of a request served later."""
    if future.cancelled():
        return encode(error("internal error: cancelled", request_id))
    exc = future.exception()
    if exc is None:
        return _encoded(with_id(future.result(), request_id))
    if isinstance(exc, ProtocolError):
        return encode(error(str(exc), request_id))
    return _failed(exc, request, request_id)


def _failed(exc: BaseException, request: dict[str, Any], request_id: Any) -> bytes:
    log.error("request %r failed", request.get("op"), exc_info=exc)
    return encode(error(f"internal error: {exc}", request_id))


def _encoded(answer: dict[str, Any]) -> bytes:
    try:
        return encode(answer)
    except (TypeError, ValueError) as exc:
        log.error("unsendable answer %r: %s", answer, exc)
        return encode(error(f"internal error: unsendable answer: {exc}", answer.get("id")))


_TOO_LONG = encode(error(f"line longer than {MAX_LINE} bytes refused"))


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
