"""Hiding file names: one rule wherever a name is hidden (the compat command's
`--hide-file-names`, detection, and the builder for plugin heartbeats), as wakatime-cli's
sanitizer does it: `HIDDEN.<ext>` and nothing left that could tell the name."""

from __future__ import annotations

from pathlib import Path

import pytest
from agentproc import git_repo

from agent.builder import HeartbeatBuilder
from agent.compat import heartbeat_dicts, parse_args
from agent.detect import DetectOptions, Detector
from agent.heartbeat import Heartbeat
from agent.privacy import NAME_REVEALING_FIELDS, hidden_file_name


@pytest.mark.parametrize(
    ("entity", "hidden"),
    [
        ("/home/u/secret/plan.py", "HIDDEN.py"),
        ("/home/u/secret/archive.tar.gz", "HIDDEN.gz"),
        ("/home/u/secret/Makefile", "HIDDEN"),
        ("/home/u/secret/.bashrc", "HIDDEN"),
        ("C:\\Users\\u\\secret\\plan.rs", "HIDDEN.rs"),
        ("/home/u/sec.ret/notes", "HIDDEN"),
    ],
)
def test_a_hidden_name_keeps_only_its_extension(entity: str, hidden: str) -> None:
    assert hidden_file_name(entity) == hidden


def test_the_compat_command_and_detection_hide_a_name_alike(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "secret", branch="main")
    for name in ("plan.py", "Makefile", ".bashrc", "archive.tar.gz"):
        path = repo / name
        path.write_text("x\n")
        detected = Detector(DetectOptions(hide_file_names=True)).detect(str(path)).entity
        args = parse_args(["--entity", str(path), "--hide-file-names"])
        (_, sent), *_ = heartbeat_dicts(args, [], 1.7e9)
        assert detected == sent["entity"] == hidden_file_name(str(path))


def test_the_compat_command_drops_what_could_tell_a_hidden_name() -> None:
    args = parse_args(
        [
            "--entity", "/home/u/secret/plan.py", "--hide-file-names",
            "--project-folder", "/home/u/secret", "--lineno", "3", "--cursorpos", "40",
            "--lines-in-file", "120",
        ]
    )  # fmt: skip
    (_, sent), *_ = heartbeat_dicts(args, [], 1.7e9)
    assert sent["entity"] == "HIDDEN.py"
    assert not set(NAME_REVEALING_FIELDS) & set(sent)


def test_a_plugin_heartbeat_under_hide_file_names_keeps_nothing_that_tells_the_name(
    tmp_path: Path,
) -> None:
    """What the plugin counted (line, cursor, lines, dependencies, folder depth) goes no
    further than what detection found."""
    repo = git_repo(tmp_path / "secret", branch="main")
    (repo / "plan.py").write_text("import os\n")
    for options in (DetectOptions(hide_file_names=True), DetectOptions(hide_project_names=True)):
        hb = HeartbeatBuilder(Detector(options)).complete(
            Heartbeat(
                entity=str(repo / "plan.py"),
                time=1.7e9,
                lineno=12,
                cursorpos=300,
                lines=10,
                dependencies=["os"],
                project_root_count=4,
            )
        )
        assert hb is not None
        assert {name: getattr(hb, name) for name in NAME_REVEALING_FIELDS} == dict.fromkeys(
            NAME_REVEALING_FIELDS
        )
