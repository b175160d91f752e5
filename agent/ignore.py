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
plus ``.git/info/exclude``; a file inside an ignored folder is ignored whatever a later
pattern says (git does not descend into ignored folders). Parsed files are cached per path and
re-read when their mtime or size changes, so an edited .gitignore takes effect on the next event.
"""

from __future__ import annotations

import os
import re
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


@dataclass(frozen=True)
class _CachedSpec:
    mtime_ns: int
    size: int
    spec: pathspec.GitIgnoreSpec | None


class _GitignoreCache:
    """Parsed ignore files keyed by path, re-read when (mtime, size) changes."""

    def __init__(self) -> None:
        self._specs: dict[str, _CachedSpec] = {}
        self._lock = threading.Lock()

    def spec(self, ignore_file: str) -> pathspec.GitIgnoreSpec | None:
        try:
            st = os.stat(ignore_file)
        except OSError:
            with self._lock:
                self._specs.pop(ignore_file, None)
            return None
        with self._lock:
            cached = self._specs.get(ignore_file)
        if cached is not None and (cached.mtime_ns, cached.size) == (st.st_mtime_ns, st.st_size):
            return cached.spec
        try:
            with open(ignore_file, encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        except OSError:
            return None
        parsed = pathspec.GitIgnoreSpec.from_lines(lines)
        spec = parsed if parsed.patterns else None
        with self._lock:
            self._specs[ignore_file] = _CachedSpec(st.st_mtime_ns, st.st_size, spec)
        return spec


def _find_repo_root(folder: str) -> str | None:
    """Nearest folder at or above ``folder`` holding ``.git`` (a folder, or a worktree's file)."""
    current = folder
    while True:
        if os.path.lexists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


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
    ) -> None:
        self.ignored_dirs = frozenset(ignored_dirs)
        self._exclude = _compile(exclude)
        self._include = _compile(include)
        self._use_gitignore = use_gitignore
        self._gitignores = _GitignoreCache()

    def ignored(self, path: str, root: str | None = None) -> bool:
        """Whether a write of this file is noise. ``root`` (a watched folder) limits the
        folder-name check to the part of the path below it, so a root that itself lives in
        a folder called ``build`` still counts."""
        path = os.path.abspath(path)
        name = os.path.basename(path)
        if is_editor_temp(name) or name in TOOL_WRITTEN_NAMES:
            return True
        if self._in_ignored_dir(os.path.dirname(path), root):
            return True
        if self._excluded(path) and not self._included(path):
            return True
        return self._use_gitignore and self._gitignored(path, is_dir=False)

    def ignored_dir(self, path: str, root: str | None = None) -> bool:
        """Whether nothing below this folder can count, so it need not be watched at all."""
        path = os.path.abspath(path)
        if self._in_ignored_dir(path, root):
            return True
        if not self._include and self._excluded(path + os.sep):
            return True
        return self._use_gitignore and self._gitignored(path, is_dir=True)

    def _included(self, path: str) -> bool:
        return any(pattern.search(path) for pattern in self._include)

    def _excluded(self, path: str) -> bool:
        return any(pattern.search(path) for pattern in self._exclude)

    def _in_ignored_dir(self, folder: str, root: str | None) -> bool:
        if root is not None:
            relative = os.path.relpath(folder, os.path.abspath(root))
            if relative == os.curdir:
                return False
            parts: Sequence[str] = relative.split(os.sep)
        else:
            parts = folder.split(os.sep)
        return any(part in self.ignored_dirs for part in parts)

    def _gitignored(self, path: str, *, is_dir: bool) -> bool:
        repo = _find_repo_root(os.path.dirname(path))
        if repo is None:
            return False
        relative = os.path.relpath(path, repo).split(os.sep)
        if relative[0] == ".git":
            return True
        # Every ancestor folder below the repository first: git never looks inside an ignored one.
        for depth in range(1, len(relative)):
            if self._gitignore_verdict(repo, relative[:depth], is_dir=True):
                return True
        return self._gitignore_verdict(repo, relative, is_dir=is_dir)

    def _gitignore_verdict(self, repo: str, parts: Sequence[str], *, is_dir: bool) -> bool:
        """Apply the ignore files that govern ``parts`` (relative to ``repo``), deepest first."""
        for depth in range(len(parts) - 1, -1, -1):
            folder = os.path.join(repo, *parts[:depth])
            spec = self._gitignores.spec(os.path.join(folder, ".gitignore"))
            if spec is None:
                continue
            verdict = spec.check_file("/".join(parts[depth:]) + ("/" if is_dir else "")).include
            if verdict is not None:
                return verdict
        info_exclude = self._gitignores.spec(os.path.join(repo, ".git", "info", "exclude"))
        if info_exclude is not None:
            verdict = info_exclude.check_file("/".join(parts) + ("/" if is_dir else "")).include
            return bool(verdict)
        return False
