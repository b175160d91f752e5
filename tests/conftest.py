"""Shared fixtures for heartbeat-agent's tests."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from wakapi import Wakapi, wakapi_or_skip
from wakaserver import FakeWakaTime


@pytest.fixture
def waka() -> Iterator[FakeWakaTime]:
    """A started WakaTime-flavored fake server; stopped after the test."""
    with FakeWakaTime() as server:
        yield server


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tmpfs where there is one: replays and tool runs create thousands of files, the
    watcher works alike."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return str(shm)
    return str(tmp_path_factory.mktemp("replays"))


@pytest.fixture(scope="module")
def wakapi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wakapi]:
    """The real Wakapi (tests/wakapi.py), one per test module; skipped when not installed."""
    server = Wakapi(wakapi_or_skip(), tmp_path_factory.mktemp("wakapi"))
    server.start()
    yield server
    server.stop()
