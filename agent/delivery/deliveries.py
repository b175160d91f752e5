"""Delivery's wiring: a Sender for one destination, with its own store connection, HTTP
client and credentials. The daemon runs one per destination in a DeliveryLoop (`Deliveries`);
`agent queue flush` runs one in its own process when no daemon runs."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from agent.config import Settings
from agent.delivery.auth import default_credentials
from agent.delivery.sender import (
    DeliveryLoop,
    DeliveryStatus,
    Endpoint,
    Sender,
    basic_authorization,
    display_url,
)
from agent.delivery.transport import server_client
from agent.pipeline.destinations import DEFAULT, PLUGIN_PREFIX, Destination, KeySource
from agent.pipeline.store import HeartbeatStore
from agent.pipeline.useragent import machine_name

log = logging.getLogger(__name__)


def build_sender(
    settings: Settings,
    destination: Destination,
    clock: Callable[[], float] = time.time,
    plugin_key: Callable[[], str | None] | None = None,
) -> Sender:
    """A Sender for one destination with its own store connection and HTTP client (the
    daemon's delivery loops, and `agent queue flush` when no daemon runs). `plugin_key`
    gives the key plugins sent, which the default destination uses when it has none."""
    api = settings.api
    store = HeartbeatStore(settings.database_path())
    store.destination_id(destination.name, display_url(destination.url))
    client = server_client(api)
    key = KeySource(destination, plugin_key if destination.name == DEFAULT else None)
    if destination.name == DEFAULT:
        # OAuth tokens when logged in (`agent login`), else the API key.
        endpoint = Endpoint(
            destination.name, destination.url, *default_credentials(settings, key, clock=clock)
        )
    else:
        endpoint = Endpoint(destination.name, destination.url, _authorization(key))
    return Sender(
        store,
        endpoint,
        client,
        machine_name(api.hostname),
        batch_size=settings.queue.batch_size,
        clock=clock,
    )


def _authorization(key: KeySource) -> Callable[[], str | None]:
    def authorization() -> str | None:
        value = key()
        return basic_authorization(value) if value else None

    return authorization


class Deliveries:
    """One DeliveryLoop a destination, and what plugins offer them: the key a plugin sent
    (used by the default destination while none is configured) and the servers plugins name
    with `--api-url`, each a destination of its own that survives reloads.

    `on_destinations` hears of every change of the destination list (the router and the
    reports follow it); `on_damaged` is called, from a delivery thread, when the database
    turns out damaged."""

    def __init__(
        self,
        settings: Settings,
        destinations: Sequence[Destination],
        *,
        clock: Callable[[], float] = time.time,
        on_destinations: Callable[[Sequence[Destination]], None] = lambda _: None,
        on_damaged: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.destinations = list(destinations)
        self.clock = clock
        self.on_destinations = on_destinations
        self.on_damaged = on_damaged
        self.plugin_api_key: str | None = None  # never logged
        self.plugin_servers: dict[str, Destination] = {}
        self._loops: dict[str, DeliveryLoop] = {}

    def start(self) -> None:
        for destination in self.destinations:
            self._start(destination)

    def stop(self) -> None:
        for loop in self._loops.values():
            _stop(loop)
        self._loops.clear()

    def reconfigure(self, settings: Settings, configured: Sequence[Destination]) -> None:
        """New settings and destinations (the plugins' servers kept); every loop restarts."""
        self.stop()
        self.settings = settings
        self.destinations = [*configured, *self.plugin_servers.values()]
        self.on_destinations(self.destinations)
        self.start()

    def names(self) -> list[str]:
        """The destinations delivered to: queued rows of others (since removed) are kept but
        never counted."""
        return [destination.name for destination in self.destinations]

    def statuses(self) -> dict[str, DeliveryStatus]:
        return {name: loop.sender.status for name, loop in self._loops.items()}

    def trouble(self) -> str | None:
        """The default destination's trouble, if any (DeliveryStatus.trouble)."""
        loop = self._loops.get(DEFAULT)
        return loop.sender.status.trouble if loop is not None else None

    def problem(self) -> str | None:
        """What in the configuration keeps the default server from getting heartbeats."""
        return self.destinations[0].problem if self.destinations else None

    def wake(self) -> None:
        for loop in list(self._loops.values()):
            loop.wake()

    def flush(self) -> None:
        """Deliver now: no backoff wait, refused credentials tried again."""
        for loop in list(self._loops.values()):
            loop.flush()

    def take_plugin_key(self, key: str | None) -> None:
        """A plugin's key, kept for the default destination, which tries it at once if it
        was paused for want of credentials."""
        if not key or key == self.plugin_api_key:
            return
        self.plugin_api_key = key
        if (loop := self._loops.get(DEFAULT)) is not None:
            loop.credentials_offered()

    def serve_plugin_server(self, server: Destination) -> None:
        """Deliver to the server a plugin named, from now on and after reloads; a new key
        from that plugin replaces the old one."""
        if (
            not server.name.startswith(PLUGIN_PREFIX)
            or self.plugin_servers.get(server.name) == server
        ):
            return  # a configured destination (delivered already), or nothing new
        self.plugin_servers[server.name] = server
        self.destinations = [d for d in self.destinations if d.name != server.name] + [server]
        self.on_destinations(self.destinations)
        if (old := self._loops.pop(server.name, None)) is not None:
            threading.Thread(target=_stop, args=(old,), name="stop-delivery").start()
        self._start(server)

    def _start(self, destination: Destination) -> None:
        if destination.problem:  # nothing may be sent there: its heartbeats wait queued
            log.error("%s: delivery paused: %s", destination.name, destination.problem)
            return
        sender = build_sender(self.settings, destination, self.clock, lambda: self.plugin_api_key)
        loop = DeliveryLoop(sender, self.on_damaged)
        self._loops[destination.name] = loop
        loop.start()


def _stop(loop: DeliveryLoop) -> None:
    loop.stop()
    loop.sender.close()
