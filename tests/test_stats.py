"""stats.durations: WakaTime's rule for joining heartbeats into coding time."""

from __future__ import annotations

import pytest

from agent.pipeline.stats import durations


def test_no_heartbeats_and_a_lone_heartbeat_are_no_time() -> None:
    assert durations([]) == 0.0
    assert durations([1_700_000_000.0]) == 0.0


def test_heartbeats_within_the_timeout_are_joined() -> None:
    assert durations([0.0, 60.0, 180.0, 300.0]) == 300.0


def test_a_gap_longer_than_the_timeout_is_a_break() -> None:
    assert durations([0.0, 100.0, 100.0 + 901.0, 100.0 + 951.0]) == 150.0


def test_a_gap_of_exactly_the_timeout_still_counts() -> None:
    assert durations([0.0, 900.0]) == 900.0


def test_order_and_duplicates_do_not_matter() -> None:
    assert durations([300.0, 0.0, 120.0, 120.0]) == 300.0


@pytest.mark.parametrize(("timeout", "expected"), [(60.0, 50.0), (120.0, 150.0)])
def test_the_timeout_is_configurable(timeout: float, expected: float) -> None:
    assert durations([0.0, 50.0, 150.0], timeout=timeout) == expected
