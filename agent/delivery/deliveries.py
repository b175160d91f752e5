"""Delivery's wiring: a Sender for one destination, with its own store connection, HTTP
client and credentials. The daemon runs one per destination in a DeliveryLoop; `agent queue
flush` runs one in its own process when no daemon runs."""

from __future__ import annotations

import time
from collections.abc import Callable

from agent.config import Settings
from agent.delivery.auth import default_credentials
from agent.delivery.sender import Endpoint, Sender, basic_authorization, display_url
from agent.delivery.transport import DeliveryClient
from agent.pipeline.destinations import DEFAULT, Destination, KeySource
from agent.pipeline.store import HeartbeatStore
from agent.pipeline.useragent import machine_name

# A delivery request must be done within this many times [api] timeout, however slowly
# the server trickles its answer.
REQUEST_DEADLINE_FACTOR = 2


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
    client = DeliveryClient(
        REQUEST_DEADLINE_FACTOR * api.timeout,
        timeout=api.timeout,
        verify=str(api.ca_bundle) if api.ca_bundle else True,
        proxy=api.proxy,
        headers={"Accept": "application/json"},
    )
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
