"""Shared fixtures for heartbeat-agent's tests."""

from collections.abc import Iterator

import pytest
from wakaserver import FakeWakaTime


@pytest.fixture
def waka() -> Iterator[FakeWakaTime]:
    """A started WakaTime-flavored fake server; stopped after the test."""
    with FakeWakaTime() as server:
        yield server
