"""IgnoreRules on real folders and real .gitignore files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.sources.ignore import IgnoreRules, global_excludes_file, is_editor_temp


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".git" / "info").mkdir(parents=True)
    (tmp_path / "src").mkdir()
    return tmp_path


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "name",
    [
        "4913",
        "5036",  # vim's second probe name: 4913 + 123
        ".app.py.swp",
        ".app.py.swo",
        ".app.py.swx",
        "%home%me%app.py.swp",
        "app.py~",
        "app.py.~3~",
        ".#app.py",
        "#app.py#",
        "app.py___jb_tmp___",
        "app.py___jb_old___",
        ".goutputstream-ZK3Q1F",
        ".app.py.kate-swp",
        "app.py.vsctmp",
        "app.py.crswap",
        "app.py.sublime-tmp",
        ".~lock.report.odt#",
    ],
)
def test_editor_swap_backup_lock_and_probe_files(name: str) -> None:
    assert is_editor_temp(name)


@pytest.mark.parametrize(
    "name", ["app.py", "4914", "4912", "swp.py", "notes.md", "a#b.py", "Makefile", "swap.c"]
)
def test_ordinary_names_are_not_editor_files(name: str) -> None:
    assert not is_editor_temp(name)


def test_default_folders_are_ignored_for_files_and_folders(repo: Path) -> None:
    rules = IgnoreRules()
    for folder in ("node_modules/x", ".git", "__pycache__", ".venv/lib", "build", "target/debug"):
        assert rules.ignored(str(repo / folder / "f.py")), folder
        assert rules.ignored_dir(str(repo / folder)), folder
    assert not rules.ignored(str(repo / "src" / "app.py"))
    assert not rules.ignored_dir(str(repo / "src"))


def test_only_folders_below_the_root_are_checked(tmp_path: Path) -> None:
    root = tmp_path / "build" / "project"
    rules = IgnoreRules()
    assert not rules.ignored(str(root / "main.py"), root=str(root))
    assert not rules.ignored_dir(str(root / "src"), root=str(root))
    assert rules.ignored(str(root / "dist" / "main.js"), root=str(root))


def test_ignored_folder_names_are_configurable(repo: Path) -> None:
    rules = IgnoreRules(ignored_dirs=["generated"])
    assert rules.ignored_dir(str(repo / "generated"))
    assert not rules.ignored_dir(str(repo / "build"))


def test_lock_files_written_by_package_managers(repo: Path) -> None:
    rules = IgnoreRules()
    for name in ("package-lock.json", "yarn.lock", "Cargo.lock", "poetry.lock", "uv.lock"):
        assert rules.ignored(str(repo / name)), name
    assert not rules.ignored(str(repo / "package.json"))


def test_gitignore_patterns_apply_to_files_and_folders(repo: Path) -> None:
    write(repo / ".gitignore", "*.log\n/out/\ncoverage\n!keep.log\n")
    rules = IgnoreRules()
    assert rules.ignored(str(repo / "src" / "debug.log"))
    assert not rules.ignored(str(repo / "src" / "keep.log"))
    assert rules.ignored_dir(str(repo / "out"))
    assert not rules.ignored_dir(str(repo / "src" / "out"))  # anchored to the .gitignore
    assert rules.ignored(str(repo / "out" / "x" / "a.py"))
    assert rules.ignored(str(repo / "src" / "coverage" / "index.html"))


def test_nested_gitignore_wins_over_the_parent(repo: Path) -> None:
    write(repo / ".gitignore", "*.gen.py\n")
    write(repo / "src" / ".gitignore", "!keep.gen.py\nlocal.py\n")
    rules = IgnoreRules()
    assert rules.ignored(str(repo / "src" / "a.gen.py"))
    assert not rules.ignored(str(repo / "src" / "keep.gen.py"))
    assert rules.ignored(str(repo / "src" / "local.py"))
    assert not rules.ignored(str(repo / "local.py"))


def test_a_file_in_an_ignored_folder_cannot_be_re_included(repo: Path) -> None:
    write(repo / ".gitignore", "out/\n!out/keep.py\n")
    assert IgnoreRules().ignored(str(repo / "out" / "keep.py"))


def test_info_exclude_is_read(repo: Path) -> None:
    write(repo / ".git" / "info" / "exclude", "scratch.py\n")
    assert IgnoreRules().ignored(str(repo / "src" / "scratch.py"))


def test_the_global_excludes_file_comes_after_the_repositorys_own_rules(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    global_file = write(tmp_path_factory.mktemp("home") / "gitignore_global", "*.orig\ntags\n")
    write(repo / ".git" / "info" / "exclude", "!keep.orig\n")
    rules = IgnoreRules(global_excludes=str(global_file))
    assert rules.ignored(str(repo / "src" / "app.py.orig"))
    assert rules.ignored(str(repo / "tags"))
    assert not rules.ignored(str(repo / "src" / "keep.orig"))  # info/exclude wins
    assert not rules.ignored(str(repo / "src" / "app.py"))
    global_file.write_text("*.orig\n")
    os.utime(global_file, ns=(1, 1))
    assert not rules.ignored(str(repo / "tags"))  # an edit takes effect at once
    outside = tmp_path_factory.mktemp("loose")
    assert not rules.ignored(str(outside / "x.orig"))  # git applies it only in repositories


def test_global_excludes_file_is_what_git_config_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    assert global_excludes_file() == str(tmp_path / "xdg" / "git" / "ignore")  # git's default
    write(tmp_path / ".gitconfig", "[core]\n\texcludesFile = ~/.gitignore_global\n")
    assert global_excludes_file() == str(tmp_path / ".gitignore_global")


def test_an_edited_gitignore_takes_effect_at_once(repo: Path) -> None:
    gitignore = write(repo / ".gitignore", "*.log\n")
    rules = IgnoreRules()
    assert not rules.ignored(str(repo / "notes.tmp"))
    gitignore.write_text("*.log\n*.tmp\n")
    os.utime(gitignore, ns=(1, 1))  # a different mtime even on a coarse-clock filesystem
    assert rules.ignored(str(repo / "notes.tmp"))
    gitignore.unlink()
    assert not rules.ignored(str(repo / "debug.log"))


def test_gitignore_outside_a_repository_does_not_apply(tmp_path: Path) -> None:
    write(tmp_path / ".gitignore", "*.py\n")
    assert not IgnoreRules().ignored(str(tmp_path / "a.py"))


def test_gitignore_can_be_switched_off(repo: Path) -> None:
    write(repo / ".gitignore", "*.py\n")
    assert not IgnoreRules(use_gitignore=False).ignored(str(repo / "src" / "a.py"))


def test_exclude_is_a_case_insensitive_regex_on_the_absolute_path(repo: Path) -> None:
    rules = IgnoreRules(exclude=[r"/SECRET/", r"\.min\.js$"])
    assert rules.ignored(str(repo / "secret" / "a.py"))
    assert rules.ignored(str(repo / "web" / "app.min.js"))
    assert rules.ignored_dir(str(repo / "Secret"))
    assert not rules.ignored(str(repo / "web" / "app.js"))


def test_include_wins_over_exclude_and_keeps_excluded_folders_watched(repo: Path) -> None:
    rules = IgnoreRules(exclude=[r"/vendor/"], include=[r"/vendor/ours/"])
    assert rules.ignored(str(repo / "vendor" / "theirs" / "a.go"))
    assert not rules.ignored(str(repo / "vendor" / "ours" / "a.go"))
    assert not rules.ignored_dir(str(repo / "vendor"))


def test_include_does_not_resurrect_editor_files(repo: Path) -> None:
    rules = IgnoreRules(include=[r"\.py"])
    assert rules.ignored(str(repo / "src" / ".app.py.swp"))


def test_a_new_nested_repository_is_seen_without_being_told(repo: Path) -> None:
    write(repo / ".gitignore", "*.gen\n")
    rules = IgnoreRules()
    assert rules.ignored(str(repo / "lib" / "a.gen"))
    (repo / "lib" / ".git").mkdir(parents=True)
    assert not rules.ignored(str(repo / "lib" / "a.gen"))  # the outer .gitignore stops there


def rewrite_keeping_stat(path: Path, text: str) -> None:
    """Rewrite in place keeping inode, size and mtime: no stat can tell it changed."""
    before = path.stat()
    assert len(text) == before.st_size
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_below_a_tracked_root_changes_are_taken_from_the_caller(repo: Path) -> None:
    gitignore = write(repo / ".gitignore", "*.aaa\n")
    rules = IgnoreRules()
    rules.track(str(repo))
    assert not rules.ignored(str(repo / "src" / "a.tmp"), root=str(repo))
    rewrite_keeping_stat(gitignore, "*.tmp\n")
    assert not rules.ignored(str(repo / "src" / "a.tmp"), root=str(repo))  # not told yet
    rules.changed(str(gitignore))
    assert rules.ignored(str(repo / "src" / "a.tmp"), root=str(repo))
    rules.untrack(str(repo))
    rewrite_keeping_stat(gitignore, "*.aaa\n")
    os.utime(gitignore, ns=(1, 1))  # untracked: a stat that differs is enough again
    assert not rules.ignored(str(repo / "src" / "a.tmp"), root=str(repo))


def test_above_a_tracked_root_and_info_exclude_are_still_checked(repo: Path) -> None:
    root = repo / "src"
    rules = IgnoreRules()
    rules.track(str(root))
    assert not rules.ignored(str(root / "a.tmp"), root=str(root))
    assert not rules.ignored(str(root / "b.tmp"), root=str(root))
    write(repo / ".gitignore", "a.tmp\n")  # above the root: no event would tell
    write(repo / ".git" / "info" / "exclude", "b.tmp\n")  # inside .git: never watched
    assert rules.ignored(str(root / "a.tmp"), root=str(root))
    assert rules.ignored(str(root / "b.tmp"), root=str(root))
