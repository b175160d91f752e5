"""The builder: plugin heartbeats keep what they sent and gain what detection knows."""

from __future__ import annotations

from pathlib import Path

from agentproc import git_repo

from agent.pipeline.builder import HeartbeatBuilder
from agent.pipeline.detect import Detection, DetectionKey, Detector
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.privacy import RulesCache, privacy_rules


def with_rules(**own: bool) -> HeartbeatBuilder:
    """A builder whose `[heartbeats]` switches are `own`."""
    return HeartbeatBuilder(rules=RulesCache(lambda flags: privacy_rules({}, own, flags)))


def test_missing_fields_are_detected(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "webshop", branch="main")
    (repo / "app.ts").write_text("import x from 'react'\nexport {}\n")
    hb = HeartbeatBuilder().complete(
        Heartbeat(entity=str(repo / "app.ts"), time=1.7e9, lineno=2, user_agent="vim/9 vw/11")
    )
    assert hb is not None
    assert (hb.project, hb.branch, hb.language, hb.lines) == ("webshop", "main", "TypeScript", 2)
    assert hb.lineno == 2
    assert hb.user_agent is not None
    assert hb.user_agent.startswith("wakatime/") and hb.user_agent.endswith(" vim/9 vw/11")


def test_what_the_plugin_said_wins_and_alternates_only_fill_gaps(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "repo", branch="dev")
    (repo / "x.py").write_text("pass\n")
    hb = HeartbeatBuilder().complete(
        Heartbeat(
            entity=str(repo / "x.py"),
            time=1.7e9,
            language="Cython",
            lines=99,
            alternate_project="ignored",
        )
    )
    assert hb is not None
    assert (hb.language, hb.lines, hb.project) == ("Cython", 99, "repo")
    unsaved = HeartbeatBuilder().complete(
        Heartbeat(entity="Untitled-1", time=1.7e9, is_unsaved_entity=True, alternate_project="p")
    )
    assert unsaved is not None and unsaved.project == "p"


def test_apps_and_placeholders_pass_through() -> None:
    hb = HeartbeatBuilder().complete(
        Heartbeat(entity="Xcode", time=1.7e9, type="app", project="<<LAST_PROJECT>>")
    )
    assert hb is not None
    assert (hb.entity, hb.project, hb.language) == ("Xcode", "<<LAST_PROJECT>>", None)


def test_privacy_switches_drop_what_the_plugin_counted_too(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "secret", branch="main")
    (repo / "plan.py").write_text("import os\n")
    builder = with_rules(hide_file_names=True)
    hb = builder.complete(
        Heartbeat(entity=str(repo / "plan.py"), time=1.7e9, lines=10, dependencies=["os"])
    )
    assert hb is not None
    assert "plan" not in hb.entity and hb.entity.endswith(".py")
    assert hb.lines is None and hb.dependencies is None


def test_excluded_unknown_projects_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "loose.py").write_text("pass\n")
    builder = with_rules(exclude_unknown_project=True)
    written = Heartbeat(entity=str(tmp_path / "loose.py"), time=1.7e9, is_write=True)
    assert builder.complete(written) is None


class _BrokenDetector(Detector):
    """Stands for a detection bug, which must never cost the heartbeat."""

    def detect_key(self, key: DetectionKey) -> Detection:
        raise RuntimeError("a detection bug")


def test_a_detection_failure_keeps_the_heartbeat_as_sent(tmp_path: Path) -> None:
    sent = Heartbeat(entity=str(tmp_path / "x.py"), time=1.7e9, project="given")
    hb = HeartbeatBuilder(_BrokenDetector()).complete(sent)
    assert hb is not None
    assert (hb.entity, hb.project) == (str(tmp_path / "x.py"), "given")
    assert hb.user_agent is not None and hb.user_agent.startswith("wakatime/")


def test_an_unsaved_buffer_is_detected_from_its_path_or_its_project_folder(tmp_path: Path) -> None:
    """As wakatime-cli: project, branch and language (from the name) for an unsaved file too;
    a buffer with only a name is looked up in the folder the plugin says it belongs to."""
    repo = git_repo(tmp_path / "shop", branch="dev")
    builder = HeartbeatBuilder()
    new_file = builder.complete(
        Heartbeat(entity=str(repo / "not_yet.py"), time=1.7e9, is_unsaved_entity=True)
    )
    assert new_file is not None
    assert (new_file.entity, new_file.project, new_file.branch, new_file.language) == (
        str(repo / "not_yet.py"),
        "shop",
        "dev",
        "Python",
    )
    assert new_file.lines is None  # nothing on disk to count

    named = builder.complete(
        Heartbeat(entity="scratch.rs", time=1.7e9, is_unsaved_entity=True, project_folder=str(repo))
    )
    assert named is not None
    assert (named.entity, named.project, named.branch, named.language) == (
        "scratch.rs",  # the name its editor gave, not a made-up path
        "shop",
        "dev",
        "Rust",
    )

    hiding = with_rules(hide_file_names=True)
    hidden = hiding.complete(
        Heartbeat(entity="notes.md", time=1.7e9, is_unsaved_entity=True, project_folder=str(repo))
    )
    assert hidden is not None and hidden.entity == "HIDDEN.md"


def test_the_project_depth_is_counted_where_detection_found_the_project(tmp_path: Path) -> None:
    """As wakatime-cli: the folder detection found (a repository), else the plugin's
    project folder; slashes with a trailing one."""
    repo = git_repo(tmp_path / "shop", branch="main")
    (repo / "src").mkdir()
    (repo / "src" / "a.py").write_text("pass\n")
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "b.py").write_text("pass\n")
    builder = HeartbeatBuilder()
    in_repo = builder.complete(
        Heartbeat(entity=str(repo / "src" / "a.py"), time=1.7e9, project_folder=str(repo / "src"))
    )
    outside = builder.complete(
        Heartbeat(entity=str(loose / "b.py"), time=1.7e9, project_folder=str(loose))
    )
    assert in_repo is not None and outside is not None
    assert in_repo.project_root_count == str(repo).count("/") + 1
    assert outside.project_root_count == str(loose).count("/") + 1
