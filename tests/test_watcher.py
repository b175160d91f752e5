"""FileWatcher with real watchdog on temp folders. No sleeps: each check writes a marker file and
waits for it; watchdog delivers a watch's events in order, so whatever was going to be reported
before the marker has been by then."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.sources.authorship import Signal
from agent.sources.ignore import IgnoreRules
from agent.sources.watcher import FileWatcher

WAIT = 10.0


class Recorder:
    """Collects on_write / on_remove calls; ``sync`` waits for a marker file's write."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.events: list[tuple[str, str, float]] = []
        self._changed = threading.Condition()
        self._markers = 0

    def write(self, path: str, at: float) -> None:
        self._record("write", path, at)

    def remove(self, path: str, at: float) -> None:
        self._record("remove", path, at)

    def signal(self, kind: Signal, where: str, at: float) -> None:
        self._record(str(kind), where, at)

    def _record(self, kind: str, path: str, at: float) -> None:
        with self._changed:
            self.events.append((kind, os.path.relpath(path, self.root), at))
            self._changed.notify_all()

    def sync(self, folder: Path | None = None) -> list[tuple[str, str]]:
        """Everything reported so far, once the watcher caught up: markers left out, repeats
        folded (a new file is reported when created and again when closed after writing)."""
        self._markers += 1
        marker = (folder or self.root) / f"marker-{self._markers}"
        marker.write_text("")
        expected = ("write", os.path.relpath(marker, self.root))
        with self._changed:
            assert self._changed.wait_for(
                lambda: expected in [(kind, path) for kind, path, _ in self.events], WAIT
            ), f"the watcher never reported {marker}"
        return list(
            dict.fromkeys(
                (kind, path)
                for kind, path, _ in self.events
                if not os.path.basename(path).startswith("marker-")
            )
        )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "src").mkdir()
    return tmp_path


@pytest.fixture
def recorder(root: Path) -> Recorder:
    return Recorder(root)


@pytest.fixture
def watcher(root: Path, recorder: Recorder) -> Iterator[FileWatcher]:
    watcher = FileWatcher(
        [str(root)], IgnoreRules(), recorder.write, clock=lambda: 42.0, on_remove=recorder.remove
    )
    watcher.start()
    yield watcher
    watcher.stop()


def inotify_watch_count() -> int:
    """Watches held by this process's inotify instances, as the kernel reports them."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/self/fdinfo/{fd}") as info:
                count += sum(1 for line in info if line.startswith("inotify wd:"))
        except OSError:
            continue
    return count


def test_a_write_is_reported_with_the_injected_clock(
    root: Path, recorder: Recorder, watcher: FileWatcher
) -> None:
    (root / "src" / "app.py").write_text("print(1)\n")
    assert ("write", "src/app.py") in recorder.sync()
    assert {at for _, _, at in recorder.events} == {42.0}


def test_watching_is_ready_when_start_returns(tmp_path: Path) -> None:
    seen = threading.Event()
    watcher = FileWatcher([str(tmp_path)], IgnoreRules(), lambda path, at: seen.set())
    watcher.start()
    try:
        (tmp_path / "first.py").write_text("x")
        assert seen.wait(WAIT)
        assert watcher.watching == [str(tmp_path)]
    finally:
        watcher.stop()


def test_an_atomic_save_is_a_write_of_the_final_file(
    root: Path, recorder: Recorder, watcher: FileWatcher
) -> None:
    (root / "src" / "app.py").write_text("old")
    recorder.sync()
    recorder.events.clear()
    (root / "src" / "tmpXa81").write_text("new")
    os.replace(root / "src" / "tmpXa81", root / "src" / "app.py")
    events = recorder.sync()
    assert ("write", "src/app.py") in events
    assert ("remove", "src/tmpXa81") in events  # lets the policy forget the temp file


def test_deletions_and_reads_are_not_writes(
    root: Path, recorder: Recorder, watcher: FileWatcher
) -> None:
    (root / "src" / "app.py").write_text("x")
    recorder.sync()
    recorder.events.clear()
    (root / "src" / "app.py").read_text()
    os.stat(root / "src" / "app.py")
    os.chmod(root / "src" / "app.py", 0o600)
    (root / "src" / "app.py").unlink()
    assert recorder.sync() == [("remove", "src/app.py")]


def test_folders_are_not_writes_but_new_folders_are_watched(
    root: Path, recorder: Recorder, watcher: FileWatcher
) -> None:
    (root / "src" / "pkg" / "sub").mkdir(parents=True)
    recorder.sync(root / "src" / "pkg" / "sub")
    (root / "src" / "pkg" / "sub" / "mod.py").write_text("x")
    assert recorder.sync(root / "src" / "pkg" / "sub") == [("write", "src/pkg/sub/mod.py")]


def test_temp_files_and_ignored_paths_are_not_reported(
    root: Path, recorder: Recorder, watcher: FileWatcher
) -> None:
    (root / ".gitignore").write_text("*.log\n")
    for name in ("src/4913", "src/.app.py.swp", "src/app.py~", "debug.log", ".git/index"):
        (root / name).write_text("x")
    assert recorder.sync() == [("write", ".gitignore")]


def test_ignored_folders_get_no_watch_even_when_created_later(root: Path) -> None:
    for index in range(50):
        (root / "node_modules" / f"m{index}").mkdir(parents=True)
    (root / ".gitignore").write_text("/out/\n")
    (root / "out" / "a").mkdir(parents=True)
    (root / ".git" / "objects" / "ab").mkdir(parents=True)
    recorder = Recorder(root)
    before = inotify_watch_count()
    watcher = FileWatcher([str(root)], IgnoreRules(), recorder.write)
    watcher.start()
    try:
        assert watcher.prunes_ignored_folders == sys.platform.startswith("linux")
        # the root, src, and .git alone (for its lock files; not objects below it)
        assert inotify_watch_count() - before == 3
        (root / "dist" / "assets").mkdir(parents=True)
        (root / "dist" / "assets" / "app.js").write_text("x")
        (root / "lib").mkdir()
        recorder.sync(root / "lib")
        assert inotify_watch_count() - before == 4  # lib, not dist
        assert recorder.sync() == []
    finally:
        watcher.stop()


def test_vim_saving_with_its_default_settings(
    root: Path, recorder: Recorder, watcher: FileWatcher
) -> None:
    target = root / "src" / "app.py"
    target.write_text("line1\n")
    recorder.sync()
    recorder.events.clear()
    # nobackup, writebackup, backupcopy=auto: 4913 probe, app.py renamed to app.py~, a new app.py
    subprocess.run(
        ["vim", "-N", "-u", "NONE", "-i", "NONE", "-es", "+set backupskip= writebackup",
         "+normal! Goline2", "+w", "+q", str(target)],
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )  # fmt: skip
    assert target.read_text() == "line1\nline2\n"
    writes = {path for kind, path in recorder.sync() if kind == "write"}
    assert writes == {"src/app.py"}


def test_sed_in_place_is_a_write_of_the_file(
    root: Path, recorder: Recorder, watcher: FileWatcher
) -> None:
    target = root / "src" / "app.py"
    target.write_text("old\n")
    recorder.sync()
    recorder.events.clear()
    subprocess.run(["sed", "-i", "s/old/new/", str(target)], check=True, timeout=30)
    events = recorder.sync()
    assert {path for kind, path in events if kind == "write"} - {"src/app.py"} == {
        path for kind, path in events if kind == "remove"
    }  # sed's temporary file is written, then renamed away


def test_symlinked_folders_are_not_followed_by_default(root: Path, tmp_path_factory) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (root / "link").symlink_to(outside, target_is_directory=True)
    recorder = Recorder(root)
    watcher = FileWatcher([str(root)], IgnoreRules(), recorder.write)
    watcher.start()
    try:
        (outside / "elsewhere.py").write_text("x")
        assert recorder.sync() == []
    finally:
        watcher.stop()


def test_missing_and_nested_roots(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    recorder = Recorder(tmp_path)
    roots = [str(tmp_path / "a"), str(tmp_path / "a" / "b"), str(tmp_path / "gone")]
    watcher = FileWatcher(roots, IgnoreRules(), recorder.write)
    watcher.start()
    try:
        assert watcher.watching == [str(tmp_path / "a")]
        (tmp_path / "a" / "b" / "x.py").write_text("x")
        assert recorder.sync(tmp_path / "a") == [("write", "a/b/x.py")]  # once, not twice
    finally:
        watcher.stop()


def test_stop_is_idempotent_and_a_callback_error_does_not_stop_watching(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)

    def on_write(path: str, at: float) -> None:
        if path.endswith("boom.py"):
            raise RuntimeError("callback failed")
        recorder.write(path, at)

    watcher = FileWatcher([str(tmp_path)], IgnoreRules(), on_write)
    watcher.start()
    (tmp_path / "boom.py").write_text("x")
    (tmp_path / "fine.py").write_text("x")
    assert recorder.sync() == [("write", "fine.py")]
    watcher.stop()
    watcher.stop()
    assert watcher.watching == []


def test_a_new_file_is_one_write_not_two(
    root: Path, recorder: Recorder, watcher: FileWatcher
) -> None:
    (root / "src" / "new.py").write_text("x")
    (root / "src" / "touched.py").touch()
    recorder.sync()
    writes = [path for kind, path, _ in recorder.events if kind == "write"]
    assert writes.count("src/new.py") == 1
    assert writes.count("src/touched.py") == 1


def same_stat_rewrite(path: Path, text: str) -> None:
    """Rewrite a file in place so that its inode, size and mtime stay as they were: only the
    watcher's event can tell that it changed."""
    before = path.stat()
    assert len(text) == before.st_size
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_an_edited_gitignore_takes_effect_for_the_next_write(
    root: Path, recorder: Recorder, watcher: FileWatcher
) -> None:
    (root / ".gitignore").write_text("*.aaa\n")
    (root / "src" / "a.tmp").write_text("x")
    assert ("write", "src/a.tmp") in recorder.sync()
    same_stat_rewrite(root / ".gitignore", "*.tmp\n")
    (root / "src" / "b.tmp").write_text("x")
    (root / "src" / "c.aaa").write_text("x")
    events = recorder.sync()
    assert ("write", "src/b.tmp") not in events
    assert ("write", "src/c.aaa") in events


def test_a_gitignore_saved_atomically_takes_effect(
    root: Path, recorder: Recorder, watcher: FileWatcher
) -> None:
    (root / "src" / "a.log").write_text("x")
    assert ("write", "src/a.log") in recorder.sync()
    (root / "src" / ".gitignore.new").write_text("*.log\n")
    os.replace(root / "src" / ".gitignore.new", root / "src" / ".gitignore")
    (root / "src" / "b.log").write_text("x")
    assert ("write", "src/b.log") not in recorder.sync()


def test_a_new_nested_repository_has_its_own_ignore_files(
    root: Path, recorder: Recorder, watcher: FileWatcher
) -> None:
    (root / ".gitignore").write_text("*.gen\n")
    (root / "lib").mkdir()
    (root / "lib" / "a.gen").write_text("x")
    assert ("write", "lib/a.gen") not in recorder.sync(root / "lib")
    subprocess.run(["git", "init", "-q", str(root / "lib")], check=True)
    (root / "lib" / "b.gen").write_text("x")  # the outer .gitignore stops at the inner repo
    assert ("write", "lib/b.gen") in recorder.sync(root / "lib")
    shutil.rmtree(root / "lib" / ".git")
    (root / "lib" / "c.gen").write_text("x")
    assert ("write", "lib/c.gen") not in recorder.sync(root / "lib")


def test_a_folder_moved_in_brings_its_gitignore(
    root: Path, recorder: Recorder, watcher: FileWatcher, tmp_path_factory: pytest.TempPathFactory
) -> None:
    (root / "src" / "a.log").write_text("x")
    assert ("write", "src/a.log") in recorder.sync()
    arriving = tmp_path_factory.mktemp("outside") / "vendored"
    arriving.mkdir()
    (arriving / ".gitignore").write_text("*.log\n")
    os.rename(arriving, root / "src" / "vendored")
    recorder.sync()  # the move was read: the folder has its watch
    (root / "src" / "vendored" / "b.log").write_text("x")
    (root / "src" / "vendored" / "c.py").write_text("x")
    events = recorder.sync(root / "src" / "vendored")
    assert ("write", "src/vendored/b.log") not in events
    assert ("write", "src/vendored/c.py") in events


def test_a_git_checkout_is_bracketed_by_its_lock_in_the_order_git_wrote(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "a.py").write_text("1\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    subprocess.run([*git, "checkout", "-qb", "other"], check=True)
    (repo / "a.py").write_text("2\n")
    subprocess.run([*git, "commit", "-qam", "two"], check=True)
    recorder = Recorder(repo)
    watcher = FileWatcher(
        [str(repo)],
        IgnoreRules(),
        recorder.write,
        on_remove=recorder.remove,
        on_signal=recorder.signal,
    )
    watcher.start()
    try:
        subprocess.run([*git, "checkout", "-q", "main"], check=True)
        events = recorder.sync()
    finally:
        watcher.stop()
    lock, write, unlock = (
        events.index(("vcs-lock", ".")),
        events.index(("write", "a.py")),
        events.index(("vcs-unlock", ".")),
    )
    assert lock < write < unlock
    assert ("vcs-ref", ".") in events[unlock:]  # HEAD moved after the working tree
