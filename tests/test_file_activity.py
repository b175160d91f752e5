"""The file-activity component in-process: a real watchdog watcher on a temp folder, the real
policy, a list for a sink and a clock the test moves. What `agent run` does with a save,
without starting it: each test here stands for a daemon subprocess test's worth of setup."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from moved_clock import Clock

from agent.config import HeartbeatSettings, QueueSettings, Settings, WatchSettings
from agent.pipeline.heartbeat import Heartbeat
from agent.sources.file_activity import BARRIER_PREFIX, FileActivity

START = 1_700_000_000.0


def settings_for(tmp_path: Path, *paths: Path, **heartbeats: Any) -> Settings:
    return Settings(
        watch=WatchSettings(paths=[str(p) for p in paths]),
        heartbeats=HeartbeatSettings(**heartbeats),
        queue=QueueSettings(path=tmp_path / "data" / "heartbeats.sqlite3"),
    )


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 30))


class Harness:
    def __init__(self, tmp_path: Path, *paths: Path, plugins_in_use: bool = False, **hb: Any):
        self.clock = Clock(START)
        self.sunk: list[Heartbeat] = []
        self.activity = FileActivity(
            settings_for(tmp_path, *paths, **hb),
            self.sunk.extend,
            clock=self.clock,
            plugins_in_use=plugins_in_use,
        )

    async def save(self, path: Path, text: str) -> None:
        """Write `path` and wait until the policy holds the write."""
        path.write_text(text)
        await self.activity.caught_up()
        assert self.activity.policy.holds(str(path))


@pytest.fixture
def code(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    return folder


def test_a_save_is_one_heartbeat_once_its_quiet_period_ends(tmp_path: Path, code: Path) -> None:
    h = Harness(tmp_path, code, debounce_seconds=2.0)
    path = code / "app.py"

    async def test() -> None:
        await h.activity.start()
        await h.save(path, "print(1)\n")
        assert h.activity.flush() == []  # still in its quiet period
        h.clock.now += 2.5
        sent = h.activity.flush()
        await h.activity.stop()
        assert [(hb.entity, hb.type, hb.is_write, hb.time) for hb in sent] == [
            (str(path), "file", True, START)
        ]

    run(test)
    assert h.sunk and h.sunk[0].entity == str(path)


def test_stopping_hands_over_what_the_policy_still_holds(tmp_path: Path, code: Path) -> None:
    h = Harness(tmp_path, code)
    path = code / "held.py"

    async def test() -> None:
        await h.activity.start()
        await h.save(path, "x = 1\n")
        await h.activity.stop()

    run(test)
    assert [hb.entity for hb in h.sunk] == [str(path)]


def test_a_save_a_plugin_reports_is_not_counted_twice(tmp_path: Path, code: Path) -> None:
    h = Harness(tmp_path, code, plugins_in_use=True)
    path = code / "edited.py"

    async def test() -> None:
        await h.activity.start()
        await h.save(path, "y = 2\n")
        h.activity.plugin_heartbeat(str(path), h.clock.now)
        h.clock.now += 3600
        h.activity.flush()
        await h.activity.stop()

    run(test)
    assert h.sunk == []


def test_why_names_the_ignore_rule_and_the_decision(tmp_path: Path, code: Path) -> None:
    h = Harness(tmp_path, code)
    (code / "node_modules").mkdir()
    counted = code / "main.py"

    async def test() -> dict[str, Any]:
        await h.activity.start()
        await h.save(counted, "z = 3\n")
        h.clock.now += 60
        h.activity.flush()
        answers = {
            "ignored": h.activity.why(str(code / "node_modules" / "x.js")),
            "outside": h.activity.why(str(tmp_path / "elsewhere.py")),
            "counted": h.activity.why(str(counted)),
        }
        await h.activity.stop()
        return answers

    answers = asyncio.run(test())
    assert answers["ignored"]["ignored"] == "in an ignored folder ([watch] ignored_dirs)"
    assert answers["outside"]["ignored"] == "not below a watched folder"
    assert answers["counted"]["ignored"] is None
    assert answers["counted"]["decision"]["counted"] is True
    assert answers["counted"]["decision"]["writer"] == "person"


def test_reconfigure_moves_the_watch_to_the_new_folders(tmp_path: Path, code: Path) -> None:
    h = Harness(tmp_path, code)
    other = tmp_path / "other"
    other.mkdir()

    async def test() -> None:
        await h.activity.start()
        assert h.activity.roots == [str(code)]
        await h.activity.reconfigure(settings_for(tmp_path, other))
        assert h.activity.roots == [str(other)]
        (code / "old.py").write_text("1\n")
        (other / "new.py").write_text("2\n")
        await h.activity.caught_up()
        assert h.activity.policy.holds(str(other / "new.py"))
        await h.activity.stop()

    run(test)
    assert [hb.entity for hb in h.sunk] == [str(other / "new.py")]


def test_a_rescan_watches_a_configured_folder_created_since(tmp_path: Path) -> None:
    later = tmp_path / "later"
    h = Harness(tmp_path, later)

    async def test() -> None:
        await h.activity.start()
        assert h.activity.roots == []
        assert h.activity.status()["watch"]
        later.mkdir()
        assert await h.activity.rescan() is True
        assert await h.activity.rescan() is False  # the same plan: no restart
        await h.save(later / "a.py", "a\n")
        await h.activity.stop()

    run(test)
    assert h.activity.status()["watching"] == [str(later)]
    assert [hb.entity for hb in h.sunk] == [str(later / "a.py")]


def test_a_git_checkout_is_not_coding(tmp_path: Path, code: Path) -> None:
    """The real git switches branches: its index lock is seen, the files it wrote are not
    counted; a save made afterwards is."""
    git = ["git", "-C", str(code), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)}
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True, env=env)
    for index in range(5):
        (code / f"m{index}.py").write_text(f"v = {index}\n")
    subprocess.run([*git, "add", "."], check=True, env=env)
    subprocess.run([*git, "commit", "-qm", "one"], check=True, env=env)
    subprocess.run([*git, "checkout", "-qb", "other"], check=True, env=env)
    for index in range(5):
        (code / f"m{index}.py").write_text(f"v = {index * 10}\n")
    subprocess.run([*git, "commit", "-qam", "two"], check=True, env=env)
    h = Harness(tmp_path, code)
    saved = code / "m0.py"

    async def test() -> None:
        await h.activity.start()
        subprocess.run([*git, "checkout", "-q", "main"], check=True, env=env)
        m4 = str(code / "m4.py")
        await h.activity.caught_up()
        assert h.activity.policy.holds(m4) or h.activity.policy.why(m4) is not None
        h.clock.now += 600
        h.activity.flush()
        assert h.sunk == []
        await h.save(saved, "v = 'by hand'\n")
        h.clock.now += 600
        h.activity.flush()
        await h.activity.stop()

    run(test)
    assert [hb.entity for hb in h.sunk] == [str(saved)]


def test_caught_up_returns_once_every_earlier_save_is_in_the_policy(
    tmp_path: Path, code: Path
) -> None:
    """The seam replays move their clock by: no polling, and its barrier files (written and
    removed in the watched folder) are never activity."""
    h = Harness(tmp_path, code, storm_files=50)
    saved = [code / f"f{index}.py" for index in range(20)]

    async def test() -> None:
        await h.activity.start()
        for path in saved:
            path.write_text("x = 1\n")
        await h.activity.caught_up()
        assert all(h.activity.policy.holds(str(path)) for path in saved)
        await h.activity.caught_up()  # the watcher reports the first barrier's removal
        h.clock.now += 60
        h.activity.flush()
        await h.activity.stop()

    run(test)
    assert sorted(hb.entity for hb in h.sunk) == sorted(str(path) for path in saved)
    assert not [path for path in h.activity.policy.decisions if BARRIER_PREFIX in path]
    assert sorted(code.iterdir()) == sorted(saved)
