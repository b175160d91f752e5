"""The HTTP client that talks to the servers: each request has a deadline for the whole
exchange, not only for each read, and delivery follows no redirect.

httpx's timeouts bound every single read and write; a server that trickles its answer a
byte at a time never trips them and holds the delivery for ever. Here every socket
operation gets at most the time left before the request's deadline, and none starts after
it: the request fails with a timeout and the heartbeats wait for the next attempt.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

if TYPE_CHECKING:
    from agent.config import ApiSettings


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, each operation bounded by `deadline` (monotonic) when set."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self.inner = inner
        self.deadline: float | None = None

    def bound(self, timeout: float | None) -> float | None:
        """A timeout no longer than what is left; raises once the deadline has passed."""
        if self.deadline is None:
            return timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the request ran past its deadline")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self.inner.connect_tcp(
            host, port, self.bound(timeout), local_address, socket_options
        )
        return DeadlineStream(stream, self)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        stream = self.inner.connect_unix_socket(path, self.bound(timeout), socket_options)
        return DeadlineStream(stream, self)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, backend: DeadlineBackend) -> None:
        self.inner = inner
        self.backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, self.backend.bound(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, self.backend.bound(timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self.inner.start_tls(ssl_context, server_hostname, self.backend.bound(timeout))
        return DeadlineStream(tls, self.backend)

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class DeadlineClient(httpx.Client):
    """An httpx.Client that bounds each whole request by `deadline` seconds (and, unless
    told, follows no redirect)."""

    def __init__(self, deadline: float, *, follow_redirects: bool = False, **options: Any):
        super().__init__(follow_redirects=follow_redirects, **options)
        self.deadline = deadline
        self.backend: DeadlineBackend | None = None
        for transport in (self._transport, *self._mounts.values()):  # proxies from env too
            if isinstance(transport, httpx.HTTPTransport):
                # httpcore opens its connections with the pool's (or proxy's) backend.
                pool = transport._pool
                if self.backend is None:
                    self.backend = DeadlineBackend(pool._network_backend)
                pool._network_backend = self.backend

    @contextlib.contextmanager
    def _bounded(self) -> Iterator[None]:
        assert self.backend is not None
        self.backend.deadline = time.monotonic() + self.deadline
        try:
            yield
        finally:
            self.backend.deadline = None

    def send(self, request: httpx.Request, **options: Any) -> httpx.Response:
        with self._bounded():
            return super().send(request, **options)


# A request must be done within this many times [api] timeout, however slowly the server
# trickles its answer.
REQUEST_DEADLINE_FACTOR = 2


def server_client(api: ApiSettings, *, follow_redirects: bool = False) -> DeadlineClient:
    """A client for the configured servers: [api] timeout (and twice it for a whole
    request), proxy and CA bundle. Delivery follows no redirect (a heartbeat must reach the
    URL configured, not wherever a login page sends it); reads (`today`, `stats`, `login`)
    may, httpx dropping the credentials when one leaves the site."""
    return DeadlineClient(
        REQUEST_DEADLINE_FACTOR * api.timeout,
        follow_redirects=follow_redirects,
        timeout=api.timeout,
        verify=tls_verification(api.ca_bundle),
        proxy=api.proxy,
        headers={"Accept": "application/json"},
    )


def tls_verification(ca_bundle: Path | None) -> ssl.SSLContext | bool:
    """What httpx verifies servers with: the system's CAs, or those of `[api] ca_bundle` (a
    context, as httpx wants it: a path string is deprecated there)."""
    if ca_bundle is None:
        return True
    return ssl.create_default_context(cafile=str(ca_bundle))
