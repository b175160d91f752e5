"""Who wrote a file, in simulated time: VCS locks and refs, tool runs at a machine's pace,
package managers, plugins reporting a save late; and `agent why`'s decisions."""

from __future__ import annotations

import math

from test_policy import make, project_of, replay, run

from agent.sources.authorship import Signal, Writer, signals_of
from agent.sources.policy import ActivityPolicy, CountedWrite, PolicySettings

REPO = "/p/a"


def git_op(policy: ActivityPolicy, at: float, writes: list[str], ref: bool = True) -> None:
    """A git operation as the watcher reports it: lock, working tree, unlock, HEAD."""
    policy.signal(Signal.VCS_LOCK, REPO, at)
    for path in writes:
        policy.file_written(path, at + 0.001)
    policy.signal(Signal.VCS_UNLOCK, REPO, at + 0.002)
    if ref:
        policy.signal(Signal.VCS_REF, REPO, at + 0.003)


def test_signals_are_read_from_the_paths_git_hg_and_package_managers_write() -> None:
    assert signals_of(None, "/p/a/.git/index.lock") == [(Signal.VCS_LOCK, REPO)]
    assert signals_of("/p/a/.git/index.lock", "/p/a/.git/index") == [(Signal.VCS_UNLOCK, REPO)]
    assert signals_of("/p/a/.git/HEAD.lock", "/p/a/.git/HEAD") == [(Signal.VCS_REF, REPO)]
    assert signals_of(None, "/p/a/.hg/wlock") == [(Signal.VCS_LOCK, REPO)]
    assert signals_of("/p/a/.hg/wlock", None) == [(Signal.VCS_UNLOCK, REPO)]
    assert signals_of(None, "/p/a/package-lock.json") == [
        (Signal.LOCK_FILE, "/p/a/package-lock.json")
    ]
    assert signals_of(None, "/p/a/src/index.lock") == []  # not in a VCS folder
    assert signals_of(None, "/p/a/src/app.py") == []


def test_a_one_file_checkout_emits_nothing_and_the_saves_around_it_count() -> None:
    policy = make()
    policy.file_written("/p/a/app.py", 0.0)  # the person's save just before git took the lock
    git_op(policy, 0.0, ["/p/a/lib.py"])
    policy.file_written("/p/a/app.py", 5.0)
    assert run(policy) == [CountedWrite("/p/a/app.py", 0.0), CountedWrite("/p/a/app.py", 5.0)]
    assert policy.why("/p/a/lib.py").writer is Writer.VCS
    assert policy.why("/p/a/app.py").counted


def test_a_thousand_file_checkout_emits_nothing() -> None:
    policy = make()
    git_op(policy, 10.0, [f"/p/a/lib/f{i}.py" for i in range(1000)])
    assert run(policy) == []


def test_writes_just_after_an_operation_that_moved_head_are_its_own() -> None:
    policy = make()
    git_op(policy, 10.0, ["/p/a/lib.py"])
    policy.file_written("/p/a/hooked.py", 10.5)  # a post-checkout hook
    policy.file_written("/p/a/app.py", 12.0)
    assert run(policy) == [CountedWrite("/p/a/app.py", 12.0)]


def test_an_index_refresh_that_moved_nothing_leaves_the_next_save_alone() -> None:
    policy = make()
    git_op(policy, 10.0, [], ref=False)  # `git status` refreshing the index
    policy.file_written("/p/a/app.py", 10.01)
    assert run(policy) == [CountedWrite("/p/a/app.py", 10.01)]


def test_a_lock_left_behind_covers_writes_for_a_minute_only() -> None:
    policy = make()
    policy.signal(Signal.VCS_LOCK, REPO, 0.0)  # git crashed; index.lock stays
    activities = replay(policy, [(30.0, "/p/a/app.py"), (100.0, "/p/a/app.py")])
    assert activities == [CountedWrite("/p/a/app.py", 100.0)]


def test_a_formatter_at_its_slow_pace_is_one_tool_run_from_first_file_to_last() -> None:
    # black on a large project: 106 files over 31 s, never more than 23 in 2 s
    writes = [(0.0, "/p/a/app.py"), (30.0, "/p/a/app.py")]
    writes += [(90.0 + i * 31.0 / 105, f"/p/a/pkg/m{i}.py") for i in range(106)]
    writes += [(90.0 + 31.0 + 5.0, "/p/a/app.py")]
    policy = make()
    assert [a.time for a in replay(policy, writes)] == [0.0, 30.0, 126.0]
    assert policy.why("/p/a/pkg/m0.py").writer is Writer.TOOL
    (finished,) = policy.finished_operations()
    assert finished.writer is Writer.TOOL and finished.writes == 106


def test_the_persons_file_rewritten_by_the_tool_is_not_a_save() -> None:
    writes = [(0.0, "/p/a/app.py")] + [(90.0 + i * 0.01, f"/p/a/m{i}.py") for i in range(10)]
    writes.append((90.05, "/p/a/app.py"))
    assert replay(make(), writes) == [CountedWrite("/p/a/app.py", 0.0)]


def test_two_files_a_second_apart_are_a_person() -> None:
    assert len(replay(make(), [(0.0, "/p/a/x.py"), (1.0, "/p/a/y.py")])) == 2


def test_a_manifest_written_with_its_lock_file_is_the_package_managers() -> None:
    policy = make()
    policy.file_written("/p/a/package.json", 10.0)
    policy.signal(Signal.LOCK_FILE, "/p/a/package-lock.json", 11.0)
    assert run(policy, 39.0) == []
    assert policy.why("/p/a/package.json").writer is Writer.TOOL
    policy.file_written("/p/a/package.json", 40.0)  # edited by hand later: a person
    assert run(policy) == [CountedWrite("/p/a/package.json", 40.0)]


def test_a_manifest_written_with_one_more_file_is_a_generators() -> None:
    activities = replay(make(), [(5.0, "/p/a/hello/Cargo.toml"), (5.01, "/p/a/hello/src/main.rs")])
    assert activities == []


def test_a_plugins_late_heartbeat_of_a_save_drops_the_watchers_copy() -> None:
    policy = make()
    policy.plugins_in_use = True  # the daemon's history has plugin heartbeats
    policy.file_written("/p/a/x.py", 10.0)
    assert policy.due(12.0) == []  # released by the debounce, then waiting for a plugin
    assert policy.next_deadline() == 12.0 + PolicySettings().plugin_wait
    policy.plugin_heartbeat("/p/a/x.py", 10.0)  # vim-wakatime's buffer, 30 s late
    assert run(policy) == []
    assert policy.why("/p/a/x.py").writer is Writer.PLUGIN


def test_a_save_the_plugin_never_reports_still_counts_at_its_own_time() -> None:
    policy = make()
    policy.plugin_heartbeat("/p/a/other.py", 0.0)  # a plugin in use, on another file
    policy.file_written("/p/a/x.py", 10.0)  # saved by an editor without a plugin
    assert run(policy) == [CountedWrite("/p/a/x.py", 10.0)]
    assert policy.why("/p/a/x.py").counted


def test_a_plugin_heartbeat_long_after_the_save_is_another_activity() -> None:
    policy = make()
    policy.plugins_in_use = True
    policy.file_written("/p/a/x.py", 10.0)
    policy.due(12.0)
    policy.plugin_heartbeat("/p/a/x.py", 10.0 + PolicySettings().plugin_wait + 5.0)
    assert run(policy) == [CountedWrite("/p/a/x.py", 10.0)]


def test_without_plugins_an_activity_leaves_after_the_debounce() -> None:
    policy = make()
    policy.file_written("/p/a/x.py", 10.0)
    assert policy.due(12.0) == [CountedWrite("/p/a/x.py", 10.0)]


def test_decisions_are_bounded_and_the_operations_are_reported_once() -> None:
    policy = make()
    for i in range(2000):
        policy.file_written(f"/p/a/f{i}.py", 1.0 + i * 0.001)
    run(policy)
    assert len(policy.decisions) <= 512
    assert policy.authorship.size <= 8
    assert len(policy.finished_operations()) == 1
    assert policy.finished_operations() == []
    assert policy.due(math.inf) == []


def test_project_of_is_the_folder_below_p() -> None:
    assert project_of("/p/a/b/c.py") == "a"


def test_an_operation_pushed_out_by_many_later_ones_still_gets_its_log_line() -> None:
    policy = make()
    for i in range(5):
        policy.file_written(f"/p/a/gen/f{i}.py", 1.0 + i * 0.01)
    for second in range(10):  # an IDE running `git status` every second
        git_op(policy, 3.0 + second, [], ref=False)
    run(policy)
    assert [op.writer for op in policy.finished_operations()] == [Writer.TOOL]
