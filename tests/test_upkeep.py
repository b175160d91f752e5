"""The queue's upkeep (agent.pipeline.upkeep.StoreUpkeep) in-process, on a real SQLite file and
a clock the test moves: history pruned past [queue] history_days keeping the undelivered, and
a queue over [queue] max_queued warned of once, rechecked after commits at most once a minute."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from moved_clock import Clock

from agent.config import QueueSettings, Settings
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.store import HeartbeatStore
from agent.pipeline.upkeep import QUEUE_CHECK_INTERVAL, StoreUpkeep

NOW = 1_800_000_000.0
DAY = 86400.0


def settings_for(tmp_path: Path, **queue: float) -> Settings:
    return Settings(queue=QueueSettings(path=tmp_path / "heartbeats.sqlite3", **queue))


def add(settings: Settings, *heartbeats: tuple[str, float]) -> list[int]:
    with HeartbeatStore(settings.database_path()) as store:
        store.destination_id("default", "https://api.example/api/v1")
        return store.add([(Heartbeat(entity, at), ["default"]) for entity, at in heartbeats])


def test_history_past_its_days_is_forgotten_and_the_undelivered_kept(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, history_days=30)
    old = NOW - 40 * DAY
    ids = add(settings, ("/c/old-sent.py", old), ("/c/old-queued.py", old + 1), ("/c/new.py", NOW))
    with HeartbeatStore(settings.database_path()) as store:
        store.mark_delivered("default", [ids[0], ids[2]])
    upkeep = StoreUpkeep(settings, lambda: ["default"], Clock(NOW))

    assert upkeep.prune_history() == 1
    assert upkeep.prune_history() == 0
    with HeartbeatStore(settings.database_path()) as store:
        kept = {row.entity for row in store.history(0, NOW + 1)}
    assert kept == {"/c/old-queued.py", "/c/new.py"}


def test_a_queue_over_its_cap_is_warned_of_once_and_its_return_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path, max_queued=1000)
    clock = Clock(NOW)
    upkeep = StoreUpkeep(settings, lambda: ["default"], clock)
    ids = add(settings, *[(f"/c/f{i}.py", NOW - 2000 + i) for i in range(1001)])
    with caplog.at_level(logging.INFO, logger="agent.pipeline.upkeep"):
        upkeep.committed()
        upkeep.committed()  # within the minute: not measured again
        clock.now += QUEUE_CHECK_INTERVAL
        upkeep.committed()  # measured again, still over: no second warning
        assert upkeep.over_max_queued
        with HeartbeatStore(settings.database_path()) as store:
            store.mark_delivered("default", ids[:2])
        clock.now += QUEUE_CHECK_INTERVAL
        upkeep.committed()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("the queue holds 1001 undelivered heartbeats, more than")
    assert "none is dropped" in messages[0]
    assert messages[1] == "the queue is back under [queue] max_queued: 999 undelivered"
    assert not upkeep.over_max_queued


def test_a_reconfigured_cap_is_measured_at_once(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, max_queued=2000)
    upkeep = StoreUpkeep(settings, lambda: ["default"], Clock(NOW))
    add(settings, *[(f"/c/f{i}.py", NOW - 2000 + i) for i in range(1001)])
    upkeep.check_queue_size()
    assert not upkeep.over_max_queued
    upkeep.reconfigure(settings_for(tmp_path, max_queued=1000))
    assert upkeep.over_max_queued
