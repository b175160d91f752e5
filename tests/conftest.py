"""Shared fixtures for heartbeat-agent's tests."""

import os
import shutil
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


def require_tools(*commands: str) -> None:
    """Skip, naming what is missing, when a real tool a test drives is not installed:
    `scripts/test` installs them (or lists them), so this only helps a bare `pytest`."""
    missing = [command for command in commands if shutil.which(command) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (scripts/test installs it)")


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """For a daemon in-process: no ~/.wakatime.cfg of the machine's, no home to watch."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WAKATIME_HOME", str(home))
