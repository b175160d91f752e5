"""Which paths never count as a person's work: VCS and build folders, .gitignore, editor temp files,
and lock files that only package managers write.

The watcher asks twice: ``ignored_dir`` before it even adds a watch for a folder (so a
``node_modules`` tree costs nothing), and ``ignored`` for every file write it sees.

Configured ``exclude``/``include`` patterns follow wakatime-cli: each is a regular expression,
case-insensitive, searched (not anchored) in the absolute path, and an ``include`` match wins
over an ``exclude`` match (only over it: editor temp files, ignored folders and .gitignore
still apply). Because an include may name a file inside an excluded folder, folders
are pruned by ``exclude`` only while no ``include`` patterns are configured.

.gitignore files follow git: the repository is the nearest ancestor holding ``.git``; every
``.gitignore`` from the repository root down to the file's folder applies (deeper files win),
plus ``.git/info/exclude`` and then the user's global excludes file (``core.excludesFile``,
by default ``~/.config/git/ignore``); a file inside an ignored folder is ignored whatever a later
pattern says (git does not descend into ignored folders). An edited .gitignore takes effect on
the next event. What the ignore files say is remembered per folder; before an entry is used,
what it was built from is checked again (a stat of each ``.git`` and ``.gitignore`` on the way
up to the repository) — except below a root the caller ``track``s: there the caller reports
every folder, ``.gitignore`` and ``.git`` change through ``changed`` (the watcher sees them all),
so only what lies above the root, ``info/exclude`` and the global file are stat'ed on each call.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pathspec

DEFAULT_IGNORED_DIRS: tuple[str, ...] = (
    ".git",
    ".hg",
    ".svn",
    "node_modules",
    "__pycache__",
    ".venv",
    "venv",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
    "dist",
    "build",
    "target",
    ".gradle",
    ".idea",
)

# Names editors write beside the file they edit and never mean as the person's work.
_EDITOR_TEMP_NAME = re.compile(
    r"""
      .~$                                  # vim/emacs backup: file~, emacs numbered file.~1~
    | ^\..+\.s[a-w][a-z]$                  # vim swap in the same folder: .file.swp .swo … .swx .saa
    | \.sw[a-px]$                          # vim swap elsewhere (directory option): %path%file.swp
    | ^\.\#                                # emacs lock symlink: .#file
    | ^\#.*\#$                             # emacs auto-save: #file#
    | ___jb_(?:tmp|old|bak)___$            # JetBrains safe write
    | ^\.goutputstream-                    # gedit / GIO atomic replace
    | \.kate-swp$                          # kate swap
    | \.vsctmp$                            # VS Code atomic write (settings, storage, opt-in saves)
    | \.crswap$                            # Chromium File System Access API swap (web editors)
    | \.sublime-tmp$                       # Sublime Text atomic_save
    | ^\.~lock\..*\#$                      # LibreOffice lock
    | ^\.nfs[0-9a-f]+$                     # NFS silly-rename of an open deleted file
    """,
    re.VERBOSE,
)

# Files only tools write: package managers' lock files. A write of one is an install, never a save.
TOOL_WRITTEN_NAMES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lockb",
        "Cargo.lock",
        "poetry.lock",
        "Pipfile.lock",
        "uv.lock",
        "pdm.lock",
        "composer.lock",
        "Gemfile.lock",
        "go.sum",
        "mix.lock",
        "pubspec.lock",
        "Podfile.lock",
        "flake.lock",
    }
)

# vim probes whether it may create files in a folder with names 4913, 5036, 5159, … (step 123).
_VIM_PROBE_FIRST = 4913
_VIM_PROBE_STEP = 123


def is_editor_temp(name: str) -> bool:
    """True for a swap, backup, lock or probe file an editor writes next to the real one."""
    if name.isdigit():
        number = int(name)
        if number >= _VIM_PROBE_FIRST and (number - _VIM_PROBE_FIRST) % _VIM_PROBE_STEP == 0:
            return True
    return _EDITOR_TEMP_NAME.search(name) is not None


# What a stat says about an ignore file: a change of any of these means it must be read again.
_Stat = tuple[int, int, int]  # inode, mtime_ns, size

# Folders whose verdicts are remembered (a burst of 20,000 files in 200 folders needs ~210).
_MAX_FOLDERS = 4096


def _stat(path: str) -> _Stat | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class _GitignoreCache:
    """Parsed ignore files keyed by path, re-read when their stat changes or they are forgotten."""

    def __init__(self) -> None:
        self._specs: dict[str, tuple[_Stat, pathspec.GitIgnoreSpec | None]] = {}

    def spec(self, ignore_file: str, stat: _Stat | None) -> pathspec.GitIgnoreSpec | None:
        if stat is None:
            self._specs.pop(ignore_file, None)
            return None
        cached = self._specs.get(ignore_file)
        if cached is not None and cached[0] == stat:
            return cached[1]
        try:
            with open(ignore_file, encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        except OSError:
            return None
        parsed = pathspec.GitIgnoreSpec.from_lines(lines)
        # `git init` writes an info/exclude of comments only: no pattern, nothing to check.
        spec = parsed if any(p.include is not None for p in parsed.patterns) else None
        self._specs[ignore_file] = (stat, spec)
        return spec

    def forget(self, ignore_file: str) -> None:
        self._specs.pop(ignore_file, None)


@dataclass(frozen=True)
class _Folder:
    """What a folder's repository and ignore files say about the entries in it.

    ``markers`` and ``files`` are what it was built from that no event would announce a change
    of (``.git`` entries and ignore files above a tracked root, every ``info/exclude``, all of
    them for an untracked root): they are checked again each time the entry is used.
    """

    root: str | None
    repo: str | None
    gitignored: bool  # the folder, or one above it inside its repository, is ignored
    specs: tuple[tuple[str, pathspec.GitIgnoreSpec], ...]  # (path from the spec's folder, spec)
    info_exclude: pathspec.GitIgnoreSpec | None
    global_exclude: pathspec.GitIgnoreSpec | None
    in_repo: str  # the folder's path inside its repository, "a/b/" ("" at the top)
    markers: tuple[tuple[str, bool], ...]  # (.git path, whether it existed)
    files: tuple[tuple[str, _Stat | None], ...]  # (ignore file, its stat)

    def current(self) -> bool:
        return all(os.path.lexists(path) == seen for path, seen in self.markers) and all(
            _stat(path) == seen for path, seen in self.files
        )

    def ignores(self, name: str, *, is_dir: bool) -> bool:
        """Whether git ignores the entry ``name`` of this folder: deepest ignore file first."""
        if self.repo is None:
            return False
        if self.gitignored or name == ".git":
            return True
        entry = name + "/" if is_dir else name
        for prefix, spec in self.specs:
            verdict = spec.check_file(prefix + entry).include
            if verdict is not None:
                return verdict
        for spec in (self.info_exclude, self.global_exclude):
            if spec is not None:
                verdict = spec.check_file(self.in_repo + entry).include
                if verdict is not None:
                    return verdict
        return False


@functools.lru_cache(maxsize=_MAX_FOLDERS)
def _under_ignored_dir(folder: str, root: str | None, ignored_dirs: frozenset[str]) -> bool:
    """Whether a folder name in ``folder`` (below ``root``, when given) is an ignored one."""
    if root is not None:
        relative = os.path.relpath(folder, os.path.abspath(root))
        if relative == os.curdir:
            return False
        parts: Sequence[str] = relative.split(os.sep)
    else:
        parts = folder.split(os.sep)
    return any(part in ignored_dirs for part in parts)


def global_excludes_file() -> str:
    """git's `core.excludesFile` (its default when unset, or when git cannot be asked)."""
    try:
        done = subprocess.run(
            ["git", "config", "--path", "--get", "core.excludesFile"],
            cwd=os.path.expanduser("~"),  # outside any repository: user and system settings only
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if done.returncode == 0 and done.stdout.strip():
            return os.path.abspath(os.path.expanduser(done.stdout.strip()))
    except (OSError, subprocess.SubprocessError):
        pass
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return os.path.join(config_home, "git", "ignore")


def _compile(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern, re.IGNORECASE) for pattern in patterns)


class IgnoreRules:
    """Decides which files and folders never produce heartbeats. Safe to call from any thread."""

    def __init__(
        self,
        *,
        ignored_dirs: Iterable[str] = DEFAULT_IGNORED_DIRS,
        exclude: Iterable[str] = (),
        include: Iterable[str] = (),
        use_gitignore: bool = True,
        global_excludes: str | None = None,
    ) -> None:
        """`global_excludes`: the user's global ignore file; None looks it up as git does."""
        self.ignored_dirs = frozenset(ignored_dirs)
        if use_gitignore and global_excludes is None:
            global_excludes = global_excludes_file()
        self._global_excludes = global_excludes
        self._exclude = _compile(exclude)
        self._include = _compile(include)
        self._use_gitignore = use_gitignore
        self._gitignores = _GitignoreCache()
        self._folders: dict[str, _Folder] = {}
        self._tracked: dict[str, str] = {}  # tracked root -> its path with a trailing separator
        self._generation = 0  # bumped by every change: an entry built across one is not kept
        self._lock = threading.Lock()

    def ignored(self, path: str, root: str | None = None) -> bool:
        """Whether a write of this file is noise. ``root`` (a watched folder) limits the
        folder-name check to the part of the path below it, so a root that itself lives in
        a folder called ``build`` still counts."""
        return self.reason(path, root) is not None

    def reason(self, path: str, root: str | None = None) -> str | None:
        """Which rule makes a write of this file noise (for `agent why`), or None."""
        path = os.path.abspath(path)
        folder, name = os.path.split(path)
        if is_editor_temp(name):
            return "an editor's temporary, backup or lock file"
        if name in TOOL_WRITTEN_NAMES:
            return "a file tools write (a package manager's lock file)"
        if _under_ignored_dir(folder, root, self.ignored_dirs):
            return "in an ignored folder ([watch] ignored_dirs)"
        if self._exclude and self._excluded(path) and not self._included(path):
            return "matches [watch] exclude"
        if self._use_gitignore and self._folder(folder, root).ignores(name, is_dir=False):
            return "ignored by git (.gitignore, .git/info/exclude or core.excludesFile)"
        return None

    def ignored_dir(self, path: str, root: str | None = None) -> bool:
        """Whether nothing below this folder can count, so it need not be watched at all."""
        path = os.path.abspath(path)
        if _under_ignored_dir(path, root, self.ignored_dirs):
            return True
        if not self._include and self._excluded(path + os.sep):
            return True
        parent, name = os.path.split(path)
        if not self._use_gitignore or not name:
            return False
        return self._folder(parent, root).ignores(name, is_dir=True)

    def track(self, root: str) -> None:
        """From now on the caller reports through ``changed`` every change below ``root`` that
        can change a verdict, so the ``.git`` and ``.gitignore`` entries of folders there are
        no longer stat'ed on every call (those above ``root``, and ``info/exclude``, still are)."""
        root = os.path.abspath(root)
        with self._lock:
            self._tracked[root] = os.path.join(root, "")
            self._forget_folders()

    def untrack(self, root: str) -> None:
        """Changes below ``root`` are no longer reported: stat everything again."""
        with self._lock:
            self._tracked.pop(os.path.abspath(root), None)
            self._forget_folders()

    def changed(self, path: str) -> None:
        """Below a tracked root, a folder was created, moved or deleted, or a ``.gitignore`` or
        ``.git`` entry was written, moved or deleted: what was derived from it is dropped."""
        with self._lock:
            self._gitignores.forget(os.path.abspath(path))
            self._forget_folders()

    def _forget_folders(self) -> None:
        self._generation += 1
        self._folders = {}

    def _included(self, path: str) -> bool:
        return any(pattern.search(path) for pattern in self._include)

    def _excluded(self, path: str) -> bool:
        return any(pattern.search(path) for pattern in self._exclude)

    def _folder(self, folder: str, root: str | None) -> _Folder:
        """The entry for ``folder``, built from its nearest remembered ancestor that is still
        current (or the repository top, or the filesystem root) downwards."""
        generation = self._generation
        pending: list[tuple[str, bool]] = []  # (folder, holds .git), deepest first
        above: _Folder | None = None
        current = folder
        while True:
            above = self._folders.get(current)
            if above is not None and above.root == root and above.current():
                break
            above = None
            holds_git = os.path.lexists(os.path.join(current, ".git"))
            pending.append((current, holds_git))
            parent = os.path.dirname(current)
            if holds_git or parent == current:
                break
            current = parent
        for current, holds_git in reversed(pending):
            above = self._build(current, root, holds_git, above)
            self._remember(current, above, generation)
        assert above is not None
        return above

    def _build(self, folder: str, root: str | None, holds_git: bool, up: _Folder | None) -> _Folder:
        tracked = self._tracked.get(root) if root is not None else None
        trusted = tracked is not None and (folder == root or folder.startswith(tracked))
        markers = () if trusted else ((os.path.join(folder, ".git"), holds_git),)
        if holds_git:
            spec, files = self._ignore_file(os.path.join(folder, ".gitignore"), trusted)
            exclude_file = os.path.join(folder, ".git", "info", "exclude")
            info_exclude, info_files = self._ignore_file(exclude_file, trusted=False)
            global_exclude, global_files = (
                self._ignore_file(self._global_excludes, trusted=False)
                if self._global_excludes
                else (None, ())
            )
            return _Folder(
                root=root,
                repo=folder,
                gitignored=False,
                specs=(("", spec),) if spec else (),
                info_exclude=info_exclude,
                global_exclude=global_exclude,
                in_repo="",
                markers=markers,
                files=files + info_files + global_files,
            )
        if up is None or up.repo is None:  # outside any repository: no ignore file applies
            return _Folder(
                root=root,
                repo=None,
                gitignored=False,
                specs=(),
                info_exclude=None,
                global_exclude=None,
                in_repo="",
                markers=(up.markers if up else ()) + markers,
                files=(),
            )
        name = os.path.basename(folder)
        spec, files = self._ignore_file(os.path.join(folder, ".gitignore"), trusted)
        specs = tuple((prefix + name + "/", parent_spec) for prefix, parent_spec in up.specs)
        return _Folder(
            root=root,
            repo=up.repo,
            gitignored=up.ignores(name, is_dir=True),
            specs=(("", spec), *specs) if spec else specs,
            info_exclude=up.info_exclude,
            global_exclude=up.global_exclude,
            in_repo=up.in_repo + name + "/",
            markers=up.markers + markers,
            files=up.files + files,
        )

    def _ignore_file(
        self, path: str, trusted: bool
    ) -> tuple[pathspec.GitIgnoreSpec | None, tuple[tuple[str, _Stat | None], ...]]:
        """The parsed file, and what to re-check before trusting it again (if no event will)."""
        stat = _stat(path)
        with self._lock:
            spec = self._gitignores.spec(path, stat)
        return spec, () if trusted else ((path, stat),)

    def _remember(self, folder: str, entry: _Folder, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return  # something changed while it was being built: it may be stale already
            if len(self._folders) >= _MAX_FOLDERS:
                del self._folders[next(iter(self._folders))]
            self._folders[folder] = entry
