"""~/.wakatime.cfg's filters and privacy rules, applied by the builder to every heartbeat
(the watcher's and the plugins'), merged with a plugin's flags as wakatime-cli merges them."""

from __future__ import annotations

from pathlib import Path

import pytest
from agentproc import git_repo

from agent.config import load_settings
from agent.pipeline.builder import HeartbeatBuilder, detect_options, privacy_for
from agent.pipeline.detect import Detector
from agent.pipeline.heartbeat import Heartbeat
from agent.wakatime_cli import cfg as wakatime_cfg


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WAKATIME_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEARTBEAT_AGENT_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    (tmp_path / "home").mkdir()
    return tmp_path / "home" / ".wakatime.cfg"


def builder_for(cfg: Path, text: str) -> HeartbeatBuilder:
    cfg.write_text(text)
    settings = load_settings()
    return HeartbeatBuilder(Detector(detect_options(settings)), privacy_for(settings))


def build(builder: HeartbeatBuilder, path: Path, **fields: object) -> Heartbeat | None:
    return builder.complete(Heartbeat(entity=str(path), time=1.7e9, **fields))  # type: ignore[arg-type]


def test_hide_file_names_true_keeps_project_and_language(tmp_path: Path, cfg: Path) -> None:
    repo = git_repo(tmp_path / "shop", branch="main")
    (repo / "plan.py").write_text("import os\n")
    hb = build(builder_for(cfg, "[settings]\nhide_file_names = true\n"), repo / "plan.py")
    assert hb is not None
    assert (hb.entity, hb.project, hb.language) == ("HIDDEN.py", "shop", "Python")
    assert (hb.branch, hb.lines, hb.dependencies, hb.lineno) == (None, None, None, None)


def test_hide_rules_take_regex_lists_one_a_line(tmp_path: Path, cfg: Path) -> None:
    repo = git_repo(tmp_path / "shop", branch="feature/secret")
    (repo / "a.py").write_text("x = 1\n")
    (repo / "private").mkdir()
    (repo / "private" / "b.py").write_text("y = 2\n")
    builder = builder_for(
        cfg,
        "[settings]\nhide_file_names =\n    /private/\n    \\.env$\nhide_branch_names =\n"
        "    ^feature/\n",
    )
    public = build(builder, repo / "a.py")
    assert public is not None
    assert (public.entity, public.branch, public.lines) == (str(repo / "a.py"), None, 1)
    hidden = build(builder, repo / "private" / "b.py")
    assert hidden is not None and hidden.entity == "HIDDEN.py" and hidden.lines is None


def test_an_explicit_false_branch_rule_keeps_the_branch_of_a_hidden_file(
    tmp_path: Path, cfg: Path
) -> None:
    repo = git_repo(tmp_path / "shop", branch="main")
    (repo / "a.py").write_text("x = 1\n")
    builder = builder_for(cfg, "[settings]\nhide_file_names = true\nhide_branch_names = false\n")
    hb = build(builder, repo / "a.py")
    assert hb is not None and (hb.entity, hb.branch) == ("HIDDEN.py", "main")


def test_hide_project_names_invents_a_name_and_drops_the_details(tmp_path: Path, cfg: Path) -> None:
    repo = git_repo(tmp_path / "topsecret", branch="main")
    (repo / "a.py").write_text("import os\n")
    hb = build(builder_for(cfg, '[settings]\nhide_project_names = "true"\n'), repo / "a.py")
    assert hb is not None and hb.project and "topsecret" not in hb.project
    assert (hb.entity, hb.branch, hb.lines) == (str(repo / "a.py"), None, None)
    (repo / ".wakatime-project").write_text("Public Name\n")
    named = build(builder_for(cfg, "[settings]\nhide_project_names = true\n"), repo / "a.py")
    assert named is not None and named.project == "Public Name"


def test_exclude_and_include_as_wakatime_cli_reads_them(tmp_path: Path, cfg: Path) -> None:
    repo = git_repo(tmp_path / "shop")
    for name in ("keep.py", "secret.py", "Secret_but_wanted.py"):
        (repo / name).write_text("")
    builder = builder_for(
        cfg, "[settings]\nexclude =\n    SECRET\n    ^/nowhere/\ninclude = but_wanted\n"
    )
    assert build(builder, repo / "keep.py") is not None
    assert build(builder, repo / "secret.py") is None  # case-insensitive
    assert build(builder, repo / "Secret_but_wanted.py") is not None  # include wins


def test_project_filters(tmp_path: Path, cfg: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "a.py").write_text("")
    repo = git_repo(tmp_path / "shop")
    (repo / "b.py").write_text("")
    unknown = builder_for(cfg, "[settings]\nexclude_unknown_project = true\n")
    assert build(unknown, loose / "a.py") is None
    assert build(unknown, loose / "a.py", alternate_project="given") is not None
    assert build(unknown, repo / "b.py") is not None
    only = builder_for(cfg, "[settings]\ninclude_only_with_project_file = true\n")
    assert build(only, repo / "b.py") is None
    (repo / ".wakatime-project").write_text("Tracked\n")
    assert build(builder_for(cfg, cfg.read_text()), repo / "b.py") is not None


def test_projectmap_is_case_insensitive_with_captures(tmp_path: Path, cfg: Path) -> None:
    work = tmp_path / "Work" / "client-a"
    work.mkdir(parents=True)
    (work / "x.py").write_text("")
    builder = builder_for(cfg, "[projectmap]\nwork/([^/]+) = Client {0}\n")
    hb = build(builder, work / "x.py")
    assert hb is not None and hb.project == "Client client-a"


def test_a_plugin_flag_comes_before_the_file(tmp_path: Path, cfg: Path) -> None:
    """wakatime-cli reads `--hide-file-names` first and the file's setting only when the
    flag is empty; exclude lists add up."""
    repo = git_repo(tmp_path / "shop")
    (repo / "a.py").write_text("")
    (repo / "b.py").write_text("")
    builder = builder_for(cfg, "[settings]\nhide_file_names = true\nexclude = nothing\n")
    shown = build(builder, repo / "a.py", privacy={"hide_file_names": "false"})
    assert shown is not None and shown.entity == str(repo / "a.py")
    dropped = build(builder, repo / "b.py", privacy={"exclude": ["b\\.py$"]})
    assert dropped is None
    hidden = build(builder, repo / "a.py")
    assert hidden is not None and hidden.entity == "HIDDEN.py"


def test_non_file_entities_are_hidden_whole(cfg: Path) -> None:
    builder = builder_for(cfg, "[settings]\nhide_file_names = true\n")
    hb = builder.complete(Heartbeat(entity="example.com", time=1.7e9, type="domain"))
    assert hb is not None and hb.entity == "HIDDEN"


def test_quoted_values_are_unquoted_and_multiline_values_joined() -> None:
    sections = wakatime_cfg.parse(
        "[Settings]\napi_key = \"abc\"\nAPI_URL='http://h/api'\nexclude =\n  a\n  b\n"
    )
    assert wakatime_cfg.setting(sections, "settings", "api_key") == "abc"
    assert wakatime_cfg.setting(sections, "settings", "api_url") == "http://h/api"
    assert sections["settings"]["exclude"] == "a\nb"


def test_a_garbled_file_names_the_file_and_the_line(cfg: Path) -> None:
    cfg.write_text("[settings]\napi_key = k\nthis line is garbage\n")
    with pytest.raises(wakatime_cfg.CfgError) as caught:
        wakatime_cfg.load_checked(cfg)
    assert str(caught.value).startswith(f"{cfg}, line 3: 'this line is garbage'")


def test_agent_detect_reports_what_a_heartbeat_would_carry(tmp_path: Path, cfg: Path) -> None:
    repo = git_repo(tmp_path / "shop", branch="main")
    (repo / "main.go").write_text('package main\n\nimport "net/http"\n')
    (repo / "secret.go").write_text("package main\n")
    builder = builder_for(cfg, "[settings]\nhide_branch_names = true\nexclude = secret\n")
    shown, dropped = builder.report([str(repo / "main.go"), str(repo / "secret.go")])
    assert shown == {
        "entity": str(repo / "main.go"),
        "project": "shop",
        "branch": None,
        "language": "Go",
        "lines": 3,
        "dependencies": ["net/http"],
        "skipped": False,
    }
    assert (dropped["entity"], dropped["skipped"]) == (str(repo / "secret.go"), True)
