"""ActivityPolicy in simulated time: debounce, autosave, throttle, storms, temp files, plugins."""

from __future__ import annotations

import math
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.sources.policy import ActivityPolicy, CountedWrite, PolicySettings

DEFAULTS = PolicySettings()


def project_of(path: str) -> str:
    """/p/<project>/... → <project>."""
    return path.split("/")[2]


def make(settings: PolicySettings = DEFAULTS) -> ActivityPolicy:
    return ActivityPolicy(settings, project_of)


def run(policy: ActivityPolicy, until: float = math.inf) -> list[CountedWrite]:
    """Fire every deadline up to ``until``, the way the daemon's loop does."""
    out: list[CountedWrite] = []
    while (deadline := policy.next_deadline()) is not None and deadline <= until:
        out.extend(policy.due(deadline))
    return out


def replay(policy: ActivityPolicy, writes: list[tuple[float, str]]) -> list[CountedWrite]:
    out: list[CountedWrite] = []
    for at, path in sorted(writes):
        out.extend(run(policy, at))
        policy.file_written(path, at)
    return out + run(policy)


def test_idle_policy_has_no_deadline() -> None:
    policy = make()
    assert policy.next_deadline() is None
    assert policy.due(1e9) == []


def test_burst_of_events_on_one_path_is_one_activity_at_its_last_write() -> None:
    policy = make()
    for at in (100.0, 100.1, 100.4, 101.0):
        policy.file_written("/p/a/x.py", at)
    assert policy.next_deadline() == 103.0
    assert policy.due(102.9) == []
    assert policy.due(103.0) == [CountedWrite("/p/a/x.py", 101.0)]
    assert policy.next_deadline() is None


def test_a_reconfigured_policy_decides_as_a_new_one_would() -> None:
    """A reload's settings apply whole, what derives from them (the quiet period and the
    spacing of heartbeats) included."""
    longer = PolicySettings(debounce_seconds=10.0, storm_window=10.0, heartbeat_interval=60.0)
    writes = [(at, "/p/a/x.py") for at in (0.0, 5.0, 30.0, 100.0, 170.0)]
    reconfigured = make()
    reconfigured.reconfigure(longer)
    assert replay(reconfigured, writes) == replay(make(longer), writes)


def test_writes_more_than_the_quiet_period_apart_are_separate_saves() -> None:
    activities = replay(make(), [(0.0, "/p/a/x.py"), (40.0, "/p/a/x.py"), (80.0, "/p/a/x.py")])
    assert [a.time for a in activities] == [0.0, 40.0, 80.0]


def test_continuous_autosave_still_yields_an_activity_every_interval() -> None:
    policy = make()
    emitted_at: list[float] = []
    activities: list[CountedWrite] = []
    for second in range(300):  # a write every second for five minutes
        while (deadline := policy.next_deadline()) is not None and deadline <= second:
            emitted_at.append(deadline)
            activities += policy.due(deadline)
        policy.file_written("/p/a/x.py", float(second))
    activities += run(policy)
    times = [a.time for a in activities]
    assert times[0] == 0.0 and times[-1] == 299.0  # the whole run is covered
    gaps = [later - earlier for earlier, later in pairwise(emitted_at)]
    assert max(gaps) <= DEFAULTS.autosave_interval
    assert len(activities) <= 300 / DEFAULTS.autosave_interval + 2


def test_a_long_run_of_writes_keeps_its_start_and_its_end() -> None:
    activities = replay(make(), [(float(i), "/p/a/x.py") for i in range(20)])
    assert [a.time for a in activities] == [0.0, 19.0]


def test_saves_of_one_file_are_spaced_but_the_last_one_is_kept() -> None:
    # Saves every 5 s (each a separate save): at most one heartbeat per 30 s for the file, and
    # the trailing save leaves with its own time so the session's end is not lost.
    activities = replay(make(), [(i * 5.0, "/p/a/x.py") for i in range(13)])
    times = [a.time for a in activities]
    assert times[0] == 0.0 and times[-1] == 60.0
    assert len(times) == 3


def test_a_different_file_is_not_held_back_by_the_spacing_of_another() -> None:
    activities = replay(make(), [(0.0, "/p/a/x.py"), (5.0, "/p/a/y.py"), (10.0, "/p/a/z.py")])
    assert [(a.path, a.time) for a in activities] == [
        ("/p/a/x.py", 0.0),
        ("/p/a/y.py", 5.0),
        ("/p/a/z.py", 10.0),
    ]


def test_storm_drops_every_write_of_the_burst_including_the_first_ones() -> None:
    policy = make()
    writes = [(10.0 + i * 0.05, f"/p/a/f{i}.py") for i in range(40)]  # 40 files in 2 s
    assert replay(policy, writes) == []


def test_write_before_a_storm_survives_and_after_the_storm_counts_again() -> None:
    burst = [(30.0 + i * 0.01, f"/p/a/gen/f{i}.py") for i in range(100)]
    activities = replay(make(), [(0.0, "/p/a/x.py"), *burst, (40.0, "/p/a/x.py")])
    assert [(a.path, a.time) for a in activities] == [("/p/a/x.py", 0.0), ("/p/a/x.py", 40.0)]


def test_a_person_writing_during_a_storm_is_not_counted() -> None:
    burst = [(10.0 + i * 0.01, f"/p/a/f{i}.py") for i in range(100)]
    assert replay(make(), [*burst, (10.5, "/p/a/mine.py")]) == []


def test_as_many_files_as_the_threshold_is_not_a_storm() -> None:
    writes = [(5.0 + i * 0.01, f"/p/a/f{i}.py") for i in range(DEFAULTS.storm_files)]
    assert len(replay(make(), writes)) == DEFAULTS.storm_files


def test_storms_are_counted_per_project() -> None:
    burst = [(10.0 + i * 0.01, f"/p/deps/f{i}.js") for i in range(200)]
    activities = replay(make(), [*burst, (10.5, "/p/app/main.py")])
    assert [a.path for a in activities] == ["/p/app/main.py"]


def test_slow_writes_of_many_files_are_not_a_storm() -> None:
    writes = [(i * 1.0, f"/p/a/f{i}.py") for i in range(60)]  # one new file per second
    assert len(replay(make(), writes)) == 60


def test_memory_stays_bounded_through_a_twenty_thousand_file_burst() -> None:
    policy = make()
    most_held = 0
    for i in range(20_000):
        policy.file_written(f"/p/a/node/f{i}.js", 100.0 + i * 0.0001)
        most_held = max(most_held, policy.pending)
    assert most_held <= DEFAULTS.storm_files + 1
    assert run(policy) == []


def test_many_projects_at_once_hit_the_global_bound() -> None:
    settings = PolicySettings(max_held=50)
    policy = make(settings)
    for i in range(5_000):
        policy.file_written(f"/p/proj{i}/x.py", 1.0 + i * 0.0001)
        assert policy.pending <= settings.max_held
    assert run(policy) == []


def test_a_file_written_then_removed_was_a_temporary_file() -> None:
    policy = make()
    policy.file_written("/p/a/sedX1y2Z3", 1.0)
    policy.file_removed("/p/a/sedX1y2Z3", 1.0)
    policy.file_written("/p/a/x.py", 1.0)
    assert run(policy) == [CountedWrite("/p/a/x.py", 1.0)]


def test_a_file_moved_aside_and_written_again_is_still_one_save() -> None:
    # vim: x.py renamed to x.py~, a new x.py written: the removal must not cancel the save.
    policy = make()
    policy.file_written("/p/a/x.py", 1.0)
    policy.file_removed("/p/a/x.py", 1.5)
    policy.file_written("/p/a/x.py", 1.5)
    assert run(policy) == [CountedWrite("/p/a/x.py", 1.5)]


def test_vim_saving_every_second_keeps_the_autosave_guarantee() -> None:
    policy = make()
    activities: list[CountedWrite] = []
    for i in range(120):
        at = float(i)
        activities += run(policy, at)
        policy.file_removed("/p/a/x.py", at)
        policy.file_written("/p/a/x.py", at)
    activities += run(policy)
    assert len(activities) >= 4


def test_plugin_heartbeat_drops_the_watchers_held_write_of_that_file() -> None:
    policy = make()
    policy.file_written("/p/a/x.py", 10.0)
    policy.file_written("/p/a/y.py", 10.0)
    policy.plugin_heartbeat("/p/a/x.py", 10.5)
    assert [a.path for a in run(policy)] == ["/p/a/y.py"]


def test_watcher_writes_are_dropped_while_a_plugin_reports_the_file() -> None:
    policy = make()
    policy.plugin_heartbeat("/p/a/x.py", 0.0)
    grace = DEFAULTS.plugin_grace
    activities = replay(policy, [(grace - 1.0, "/p/a/x.py"), (grace + 60.0, "/p/a/x.py")])
    assert activities == [CountedWrite("/p/a/x.py", grace + 60.0)]


def test_plugin_entity_and_watcher_path_are_compared_normalised() -> None:
    policy = make()
    policy.plugin_heartbeat("/p/a/./src/../x.py", 0.0)
    policy.file_written("/p/a/x.py", 1.0)
    assert run(policy) == []


def test_activities_come_out_oldest_first() -> None:
    policy = make()
    policy.file_written("/p/a/b.py", 2.0)
    policy.file_written("/p/a/a.py", 1.0)
    assert [a.path for a in policy.due(100.0)] == ["/p/a/a.py", "/p/a/b.py"]


def test_shutting_down_releases_everything_held() -> None:
    policy = make()
    for second in range(10):
        policy.file_written("/p/a/x.py", float(second))
    policy.file_written("/p/a/y.py", 9.5)
    activities = policy.due(math.inf)
    assert [(a.path, a.time) for a in activities] == [
        ("/p/a/x.py", 0.0),
        ("/p/a/x.py", 9.0),
        ("/p/a/y.py", 9.5),
    ]
    assert policy.next_deadline() is None


def test_debounce_and_storm_window_are_configurable() -> None:
    settings = PolicySettings(debounce_seconds=0.5, storm_window=0.5, storm_files=3)
    policy = make(settings)
    policy.file_written("/p/a/x.py", 0.0)
    assert policy.next_deadline() == 0.5
    assert replay(policy, [(5.0 + i * 0.1, f"/p/a/f{i}.py") for i in range(4)]) == [
        CountedWrite("/p/a/x.py", 0.0)
    ]


writes_strategy = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=600, allow_nan=False),
        st.sampled_from(["/p/a/x.py", "/p/a/y.py", "/p/b/z.py", "/p/b/w.py"]),
    ),
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(writes_strategy)
def test_every_activity_is_a_write_and_one_file_is_never_flooded(
    writes: list[tuple[float, str]],
) -> None:
    policy = make()
    activities = replay(policy, writes)
    written = set(writes)
    spacing = min(DEFAULTS.autosave_interval, DEFAULTS.heartbeat_interval)
    per_path: dict[str, list[float]] = {}
    for activity in activities:
        assert (activity.time, activity.path) in written
        per_path.setdefault(activity.path, []).append(activity.time)
    for times in per_path.values():
        assert len(times) == len(set(times))
        assert len(times) <= 600 / spacing + 2
    assert policy.next_deadline() is None
