"""Shared fixtures for heartbeat-agent's tests."""

import shutil
from collections.abc import Iterator

import pytest
from wakaserver import FakeWakaTime


@pytest.fixture
def waka() -> Iterator[FakeWakaTime]:
    """A started WakaTime-flavored fake server; stopped after the test."""
    with FakeWakaTime() as server:
        yield server


def require_tools(*commands: str) -> None:
    """Skip, naming what is missing, when a real tool a test drives is not installed:
    `scripts/test` installs them (or lists them), so this only helps a bare `pytest`."""
    missing = [command for command in commands if shutil.which(command) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/test installs it)")
