"""Project, branch, privacy, caching and line counts of agent.pipeline.detect, over real files
and real git repositories made with the `git` command in temporary folders."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_tools
from moved_clock import Clock

from agent.pipeline.detect import (
    DetectionKey,
    DetectOptions,
    Detector,
    vcs,
)
from agent.pipeline.detect.cache import LRU
from agent.pipeline.detect.lines import MAX_SIZE

GIT_CONFIG = [
    "-c", "user.name=Test", "-c", "user.email=test@example.invalid",
    "-c", "init.defaultBranch=main", "-c", "protocol.file.allow=always",
    "-c", "commit.gpgsign=false",
]  # fmt: skip


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *GIT_CONFIG, *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q")
    for name, content in (files or {"main.py": "print(1)\n"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(content)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


# --- git ---------------------------------------------------------------------------------


def test_git_repository_gives_folder_name_branch_and_root(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "webapp", {"src/app.py": "import flask\n"})
    d = Detector().detect(str(repo / "src" / "app.py"))
    assert (d.project, d.branch, d.project_root) == ("webapp", "main", str(repo))
    assert (d.language, d.lines, d.dependencies) == ("Python", 1, ("flask",))
    assert d.entity == str(repo / "src" / "app.py")


def test_checkout_changes_the_next_detection_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    detector = Detector()
    path = str(repo / "main.py")
    assert detector.detect(path).branch == "main"
    git(repo, "checkout", "-q", "-b", "feature/login")
    assert detector.detect(path).branch == "feature/login"
    git(repo, "checkout", "-q", "main")
    assert detector.detect(path).branch == "main"


def test_detached_head_has_no_branch_unless_an_alternate_is_given(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "checkout", "-q", "--detach")
    detector = Detector()
    assert detector.detect(str(repo / "main.py")).branch is None
    assert detector.detect(str(repo / "main.py"), alternate_branch="ci").branch == "ci"
    assert detector.detect(str(repo / "main.py")).project == "repo"


def test_worktree_counts_as_its_repository_with_its_own_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "mainrepo")
    worktree = tmp_path / "checkout-2"
    git(repo, "worktree", "add", "-q", "-b", "hotfix", str(worktree))
    d = Detector().detect(str(worktree / "main.py"))
    assert (d.project, d.branch, d.project_root) == ("mainrepo", "hotfix", str(worktree))


def test_worktree_of_a_bare_repository_is_named_without_dot_git(tmp_path: Path) -> None:
    source = make_repo(tmp_path / "source")
    bare = tmp_path / "service.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(bare))
    worktree = tmp_path / "wt"
    git(bare, "worktree", "add", "-q", "-b", "topic", str(worktree))
    d = Detector().detect(str(worktree / "main.py"))
    assert (d.project, d.branch) == ("service", "topic")


def test_submodule_is_its_own_project(tmp_path: Path) -> None:
    library = make_repo(tmp_path / "library", {"lib.rs": "fn f() {}\n"})
    app = make_repo(tmp_path / "app")
    git(app, "submodule", "add", "-q", str(library), "vendor/library")
    submodule = app / "vendor" / "library"
    expected_branch = git(submodule, "rev-parse", "--abbrev-ref", "HEAD")
    d = Detector().detect(str(submodule / "lib.rs"))
    assert (d.project, d.project_root) == ("library", str(submodule))
    assert d.branch == (None if expected_branch == "HEAD" else expected_branch)
    assert Detector().detect(str(app / "main.py")).project == "app"


def test_git_file_pointing_to_a_separate_git_dir(tmp_path: Path) -> None:
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", "--separate-git-dir", str(tmp_path / "store.git"), str(work))
    (work / "x.go").write_text("package x\n")
    git(work, "checkout", "-q", "-b", "dev")
    assert (work / ".git").is_file()
    d = Detector().detect(str(work / "x.go"))
    assert (d.project, d.branch, d.project_root) == ("work", "dev", str(work))


def test_nested_repositories_nearest_wins(tmp_path: Path) -> None:
    outer = make_repo(tmp_path / "outer")
    inner = make_repo(outer / "tools" / "inner", {"tool.py": "x = 1\n"})
    git(inner, "checkout", "-q", "-b", "inner-branch")
    detector = Detector()
    assert detector.detect(str(inner / "tool.py")).project == "inner"
    assert detector.detect(str(inner / "tool.py")).branch == "inner-branch"
    assert detector.detect(str(outer / "main.py")).project == "outer"
    (outer / "tools" / "other.py").write_text("")
    assert detector.detect(str(outer / "tools" / "other.py")).project == "outer"


def test_head_without_a_ref_line_and_missing_head(tmp_path: Path) -> None:
    repo = tmp_path / "bare-bones"
    (repo / ".git").mkdir(parents=True)
    (repo / "a.txt").write_text("a\n")
    detector = Detector()
    # wakatime-cli's answer for a .git folder without HEAD
    assert detector.detect(str(repo / "a.txt")).branch == "master"
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/release/1.2\n")
    assert detector.detect(str(repo / "a.txt")).branch == "release/1.2"


# --- .wakatime-project, project map ------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "project", "branch"),
    [
        ("custom name\nrelease\n", "custom name", "release"),
        ("  spaced  \n", "spaced", "main"),
        ("only-project", "only-project", "main"),
        ("", "folder-name", "main"),  # empty file: the folder's name
        ("\nbranch-only\n", "repo", "branch-only"),  # empty first line: VCS names it
    ],
)
def test_wakatime_project_file_overrides_git(
    tmp_path: Path, content: str, project: str, branch: str
) -> None:
    repo = make_repo(tmp_path / "repo", {"folder-name/deep/code.py": "pass\n"})
    (repo / "folder-name" / ".wakatime-project").write_text(content)
    d = Detector().detect(str(repo / "folder-name" / "deep" / "code.py"))
    assert (d.project, d.branch) == (project, branch)
    assert d.project_root == str(repo / "folder-name")


def test_wakatime_project_file_without_vcs(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / ".wakatime-project").write_text("Notes\n")
    (tmp_path / "notes" / "todo.md").write_text("- a\n- b\n")
    d = Detector().detect(str(tmp_path / "notes" / "todo.md"))
    assert (d.project, d.branch, d.language, d.lines) == ("Notes", None, "Markdown", 2)


def test_project_map_with_captures(tmp_path: Path) -> None:
    client = make_repo(tmp_path / "clients" / "acme-42", {"src/a.ts": "export {}\n"})
    options = DetectOptions(
        project_map=(
            (r"[(", "never"),  # invalid: logged and left out
            (r"/clients/(\w+)-(\d+)/", "Client {0} #{1}"),
            (r"/clients/", "any client"),
        )
    )
    d = Detector(options).detect(str(client / "src" / "a.ts"))
    assert (d.project, d.branch, d.project_root) == ("Client acme #42", "main", str(client))
    (client / "src" / ".wakatime-project").write_text("From file\n")
    assert Detector(options).detect(str(client / "src" / "a.ts")).project == "From file"


def test_project_map_without_vcs_roots_at_the_file_folder(tmp_path: Path) -> None:
    (tmp_path / "scratch").mkdir()
    (tmp_path / "scratch" / "x.py").write_text("")
    options = DetectOptions(project_map=((r"scratch", "Scratch"),))
    d = Detector(options).detect(str(tmp_path / "scratch" / "x.py"))
    assert (d.project, d.branch, d.project_root) == ("Scratch", None, str(tmp_path / "scratch"))


# --- Mercurial, Subversion ---------------------------------------------------------------


def test_mercurial_branch_file_and_default(tmp_path: Path) -> None:
    repo = tmp_path / "hgrepo"
    (repo / ".hg").mkdir(parents=True)
    (repo / "m.py").write_text("")
    detector = Detector()
    d = detector.detect(str(repo / "m.py"))
    assert (d.project, d.branch, d.project_root) == ("hgrepo", "default", str(repo))
    (repo / ".hg" / "branch").write_text("stable\n")
    assert detector.detect(str(repo / "m.py")).branch == "stable"


def test_mercurial_with_the_hg_tool(tmp_path: Path) -> None:
    require_tools("hg")
    repo = tmp_path / "hgshop"
    hg = ["hg", "--config", "ui.username=Test <test@example.invalid>"]
    subprocess.run([*hg, "init", str(repo)], check=True, capture_output=True)
    (repo / "cart.py").write_text("import os\n")
    subprocess.run([*hg, "commit", "-A", "-m", "one"], cwd=repo, check=True, capture_output=True)
    detector = Detector()
    d = detector.detect(str(repo / "cart.py"))
    assert (d.project, d.branch, d.project_root) == ("hgshop", "default", str(repo))
    subprocess.run([*hg, "branch", "feature"], cwd=repo, check=True, capture_output=True)
    assert detector.detect(str(repo / "cart.py")).branch == "feature"
    subprocess.run([*hg, "commit", "-m", "two"], cwd=repo, check=True, capture_output=True)
    subprocess.run([*hg, "update", "default"], cwd=repo, check=True, capture_output=True)
    assert detector.detect(str(repo / "cart.py")).branch == "default"


def test_subversion_with_the_svn_tools(tmp_path: Path) -> None:
    """A real repository and checkout: the project is the repository root's last part,
    the branch the checked-out URL's."""
    require_tools("svn", "svnadmin")
    root = tmp_path / "bigproj"
    subprocess.run(["svnadmin", "create", str(root)], check=True, capture_output=True)
    url = root.as_uri()
    subprocess.run(
        ["svn", "mkdir", "--parents", "-m", "layout", f"{url}/branches/feature-x"],
        check=True,
        capture_output=True,
    )
    checkout = tmp_path / "wc"
    subprocess.run(
        ["svn", "checkout", "-q", f"{url}/branches/feature-x", str(checkout)],
        check=True,
        capture_output=True,
    )
    (checkout / "main.c").write_text("int main(void) { return 0; }\n")
    vcs.svn_command.cache_clear()
    d = Detector().detect(str(checkout / "main.c"))
    assert (d.project, d.branch, d.project_root) == ("bigproj", "feature-x", str(checkout))


@pytest.fixture
def svn_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An `svn` executable that answers `svn info` like Subversion does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "svn"
    script.write_text(
        "#!/bin/sh\n"
        'echo "Path: $3"\n'
        'echo "URL: https://svn.example.invalid/repos/bigproj/branches/feature-x"\n'
        'echo "Repository Root: https://svn.example.invalid/repos/bigproj"\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    vcs.svn_command.cache_clear()
    yield bin_dir
    vcs.svn_command.cache_clear()


def make_svn_checkout(path: Path) -> Path:
    (path / ".svn").mkdir(parents=True)
    (path / ".svn" / "wc.db").write_bytes(b"SQLite format 3\0")
    (path / "trunk.c").write_text("int main(void) { return 0; }\n")
    return path


def test_subversion_through_svn_info(tmp_path: Path, svn_on_path: Path) -> None:
    checkout = make_svn_checkout(tmp_path / "wc")
    d = Detector().detect(str(checkout / "trunk.c"))
    assert (d.project, d.branch, d.project_root) == ("bigproj", "feature-x", str(checkout))


def test_subversion_without_svn_names_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    vcs.svn_command.cache_clear()
    try:
        checkout = make_svn_checkout(tmp_path / "wc")
        d = Detector().detect(str(checkout / "trunk.c"))
        assert (d.project, d.branch) == ("wc", None)
    finally:
        vcs.svn_command.cache_clear()


# --- explicit values, alternates, skip reasons -------------------------------------------


def test_no_project_and_alternates(tmp_path: Path) -> None:
    (tmp_path / "loose.rb").write_text("require 'json'\n")
    detector = Detector()
    d = detector.detect(str(tmp_path / "loose.rb"))
    assert (d.project, d.branch, d.project_root) == (None, None, None)
    d = detector.detect(
        str(tmp_path / "loose.rb"),
        alternate_project="Alt",
        alternate_branch="alt-branch",
        alternate_language="Crystal",
    )
    assert (d.project, d.branch, d.language) == ("Alt", "alt-branch", "Ruby")
    (tmp_path / "unknown.zzzq").write_text("")
    d = detector.detect(str(tmp_path / "unknown.zzzq"), alternate_language="Crystal")
    assert d.language == "Crystal"


def test_explicit_values_win_over_detection(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.py": "import numpy\n"})
    d = Detector().detect(
        str(repo / "a.py"),
        project="Plugin Project",
        branch="plugin-branch",
        language="Cython",
        alternate_project="unused",
    )
    assert (d.project, d.branch, d.language) == ("Plugin Project", "plugin-branch", "Cython")


def test_explicit_language_drives_dependency_parsing(tmp_path: Path) -> None:
    (tmp_path / "script").write_text("import requests\n")
    detector = Detector()
    assert detector.detect(str(tmp_path / "script")).dependencies == ()
    assert detector.detect(str(tmp_path / "script"), language="Python").dependencies == (
        "requests",
    )


# --- caching -----------------------------------------------------------------------------


def test_folder_cache_expires_on_the_injected_clock(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "a.py").write_text("")
    clock = Clock(1000.0)
    detector = Detector(clock=clock, folder_ttl=30.0)
    assert detector.detect(str(tmp_path / "proj" / "a.py")).project is None
    (tmp_path / "proj" / ".wakatime-project").write_text("Late\n")
    clock.now += 29
    assert detector.detect(str(tmp_path / "proj" / "a.py")).project is None
    clock.now += 2
    assert detector.detect(str(tmp_path / "proj" / "a.py")).project == "Late"


def test_file_cache_follows_content_changes(tmp_path: Path) -> None:
    path = tmp_path / "grow.py"
    path.write_text("import a\n")
    detector = Detector()
    assert (detector.detect(str(path)).lines, detector.detect(str(path)).dependencies) == (
        1,
        ("a",),
    )
    path.write_text("import a\nimport bb\nimport ccc\n")
    d = detector.detect(str(path))
    assert (d.lines, d.dependencies) == (3, ("a", "bb", "ccc"))


def test_recall_gives_a_detection_only_while_what_it_was_made_from_holds(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "shop")
    path = repo / "main.py"
    clock = Clock(1000.0)
    detector = Detector(clock=clock, folder_ttl=30.0)
    key = DetectionKey(str(path))
    assert detector.recall(key) is None  # never detected: reading is needed
    first = detector.detect(str(path))
    assert detector.recall(key) is first
    assert detector.recall(DetectionKey(str(path), language="Crystal")) is None  # other hints

    path.write_text("print(1)\nprint(2)\n")  # the file changed
    assert detector.recall(key) is None
    assert detector.detect_key(key).lines == 2
    assert detector.recall(key) is not None

    git(repo, "checkout", "-q", "-b", "feature")  # HEAD changed
    assert detector.recall(key) is None
    assert detector.detect_key(key).branch == "feature"

    (repo / ".wakatime-project").write_text("Renamed\n")
    clock.now += 31  # the folder entry expired: markers are looked for again
    assert detector.recall(key) is None
    assert detector.detect_key(key).project == "Renamed"
    assert detector.recall(key) is not None


def test_lru_is_bounded_and_keeps_recent_entries() -> None:
    cache: LRU[str, int] = LRU(3)
    for i, key in enumerate("abcd"):
        cache.put(key, i)
    assert len(cache) == 3 and cache.get("a") is None
    assert cache.get("b") == 1
    cache.put("e", 4)  # "c" is now the least recently used
    assert cache.get("c") is None and cache.get("b") == 1
    with pytest.raises(ValueError):
        LRU(0)


def test_lru_shared_by_threads_without_a_lock_stays_whole() -> None:
    """Threads putting and getting the same few keys, switching as often as CPython can."""
    cache: LRU[int, int] = LRU(4)
    failures: list[BaseException] = []

    def hammer(seed: int) -> None:
        try:
            for i in range(20_000):
                key = (i * seed) % 7
                cache.put(key, i)
                value = cache.get((key + 1) % 7)
                assert value is None or isinstance(value, int)
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=hammer, args=(seed,)) for seed in (1, 3, 5, 6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []
    assert len(cache) <= 4


def test_detector_caches_stay_within_their_cap(tmp_path: Path) -> None:
    detector = Detector(cache_size=8)
    for i in range(30):
        (tmp_path / f"d{i}").mkdir()
        (tmp_path / f"d{i}" / "f.py").write_text("")
        detector.detect(str(tmp_path / f"d{i}" / "f.py"))
    assert len(detector._files) == 8
    assert len(detector._folders._cache) == 8
    assert len(detector._detections) == 8


# --- lines -------------------------------------------------------------------------------


def test_lines_count_newlines_and_skip_binary_and_huge_files(tmp_path: Path) -> None:
    detector = Detector()
    cases = {
        "empty.txt": b"",
        "no-final-newline.txt": b"a\nb",
        "three.txt": b"1\n2\n3\n",
        "crlf.txt": b"a\r\nb\r\n",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    assert [detector.detect(str(tmp_path / n)).lines for n in cases] == [0, 1, 3, 2]
    (tmp_path / "blob.bin").write_bytes(b"\x7fELF\x00\x01\n\n")
    assert detector.detect(str(tmp_path / "blob.bin")).lines is None
    big = b"x" * 99 + b"\n"
    (tmp_path / "big.txt").write_bytes(big * (MAX_SIZE // len(big) + 1))
    assert detector.detect(str(tmp_path / "big.txt")).lines is None
    (tmp_path / "large.txt").write_bytes(big * 5000)  # 500 KB: read past the head in chunks
    assert detector.detect(str(tmp_path / "large.txt")).lines == 5000


def test_missing_file_is_detected_from_its_name(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    d = Detector().detect(str(repo / "unsaved" / "new_component.tsx"))
    assert (d.project, d.branch, d.language, d.lines, d.dependencies) == (
        "repo",
        "main",
        "TypeScript",
        None,
        (),
    )
