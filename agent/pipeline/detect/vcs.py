"""Version-control roots and their current branch, read from the files VCS tools write.

No subprocess per heartbeat: git's HEAD and Mercurial's .hg/branch are plain text. Subversion
keeps its branch in a database, so `svn info` runs once per working copy (the caller caches the
Repository) and only where the svn command exists. Facts follow wakatime-cli (pkg/project).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from agent.pipeline.detect.cache import LRU

SVN_TIMEOUT = 2.0


@dataclass(frozen=True)
class Repository:
    """A working copy: its kind, working folder, project name and where its branch is read."""

    kind: str  # "git", "hg" or "svn"
    root: str
    project: str
    head: str | None  # file naming the branch (git HEAD, hg .hg/branch); None when fixed
    branch: str | None = None  # the branch when no file names it (svn)
    git_dir: str | None = None  # where git keeps its `config` (the remotes)
    submodule: bool = False  # a git submodule (its git dir under the parent's .git/modules)

    def remote_project(self) -> str | None:
        """The project named by the `origin` remote (`git@host:owner/repo.git` is
        `owner/repo`), as wakatime-cli's `[git] project_from_git_remote` reads it; for a
        URL with a scheme, its path (wakatime-cli takes all after the first colon there)."""
        if self.git_dir is None:
            return None
        url = _origin_url(os.path.join(self.git_dir, "config"))
        if not url:
            return None
        scheme, sep, rest = url.partition("://")
        path = rest.partition("/")[2] if sep and scheme.isalpha() else url.partition(":")[2]
        return path.strip().removesuffix(".git").strip("/") or None


def _first_line(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().strip()
    except OSError:
        return None


def _origin_url(config: str) -> str | None:
    """The `url` of `[remote "origin"]` in a git config file."""
    try:
        with open(config, encoding="utf-8", errors="replace") as f:
            lines = f.read(256 * 1024).splitlines()
    except OSError:
        return None
    inside = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            inside = stripped == '[remote "origin"]'
        elif inside and stripped.startswith("url"):
            name, sep, value = stripped.partition("=")
            if sep and name.strip() == "url":
                return value.strip()
    return None


def _git_from_file(folder: str, dotgit: str) -> Repository | None:
    """A `.git` file (`gitdir: <path>`): a linked worktree, a submodule, or a separated git dir."""
    line = _first_line(dotgit)
    if not line or not line.startswith("gitdir:"):
        return None
    gitdir = os.path.normpath(os.path.join(folder, line[len("gitdir:") :].strip()))
    if not os.path.exists(os.path.join(gitdir, "HEAD")):
        return None
    head = os.path.join(gitdir, "HEAD")
    commondir = _first_line(os.path.join(gitdir, "commondir"))
    if commondir and os.path.basename(os.path.dirname(gitdir)) == "worktrees":
        # A worktree counts as the project of the repository it belongs to, as in wakatime-cli.
        common = os.path.normpath(os.path.join(gitdir, commondir))
        if os.path.basename(common) == ".git":
            name = os.path.basename(os.path.dirname(common))
        else:  # a bare repository, e.g. project.git
            name = os.path.basename(common).removesuffix(".git")
        return Repository("git", folder, name, head, git_dir=common)
    if f"{os.sep}modules{os.sep}" in gitdir:
        # A submodule is its own project, named as its git dir under .git/modules.
        return Repository(
            "git", folder, os.path.basename(gitdir), head, git_dir=gitdir, submodule=True
        )
    return Repository("git", folder, os.path.basename(folder), head, git_dir=gitdir)


@cache
def svn_command() -> str | None:
    """The svn executable, looked up once per process."""
    import shutil

    return shutil.which("svn")


def _svn(folder: str) -> Repository:
    """Project and branch from `svn info` (last component of the repository root and URL).

    Without the svn command the working copy still names the project, with no branch.
    """
    import subprocess  # only Subversion users pay for it

    info: dict[str, str] = {}
    command = svn_command()
    if command:
        try:
            result = subprocess.run(
                [command, "info", "--non-interactive", folder],
                capture_output=True,
                text=True,
                timeout=SVN_TIMEOUT,
                check=False,
            )
            for line in result.stdout.splitlines():
                key, sep, value = line.partition(": ")
                if sep:
                    info[key] = value.strip()
        except (OSError, subprocess.SubprocessError):
            info = {}
    root_url = info.get("Repository Root", "").rstrip("/")
    url = info.get("URL", "").rstrip("/")
    project = root_url.rsplit("/", 1)[-1] if root_url else os.path.basename(folder)
    return Repository("svn", folder, project, None, url.rsplit("/", 1)[-1] if url else None)


def repository_at(folder: str) -> Repository | None:
    """The working copy whose root is exactly `folder`, if any (git, then hg, then svn)."""
    dotgit = os.path.join(folder, ".git")
    if os.path.isdir(dotgit):
        head = os.path.join(dotgit, "HEAD")
        return Repository("git", folder, os.path.basename(folder), head, git_dir=dotgit)
    if os.path.isfile(dotgit):
        repository = _git_from_file(folder, dotgit)
        if repository:
            return repository
    hg = os.path.join(folder, ".hg")
    if os.path.isdir(hg):
        return Repository("hg", folder, os.path.basename(folder), os.path.join(hg, "branch"))
    if os.path.isfile(os.path.join(folder, ".svn", "wc.db")):
        return _svn(folder)
    return None


def _parse_branch(kind: str, line: str | None) -> str | None:
    if kind == "hg":
        return line or "default"
    if line is None:
        return "master"  # wakatime-cli's answer for a repository without HEAD
    if line.startswith("ref:"):
        parts = line.split("/", 2)
        return parts[2].strip() if len(parts) == 3 else None
    return None  # detached HEAD: wakatime-cli sends no branch


# What identifies one version of a HEAD file: (mtime_ns, inode, size).
HeadVersion = tuple[int, int, int]


def head_version(head: str) -> HeadVersion | None:
    """The version of a branch file now; None when it cannot be read."""
    try:
        stat = os.stat(head)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_ino, stat.st_size)


class BranchReader:
    """Current branch of a repository, re-read only when its HEAD file changes.

    git replaces HEAD by renaming a new file over it, so the inode and mtime_ns change together;
    the pair stays reliable where the file system's clock is coarse.
    """

    def __init__(self, capacity: int) -> None:
        self._cache: LRU[str, tuple[HeadVersion, str | None]] = LRU(capacity)

    def current(self, repository: Repository) -> tuple[str | None, HeadVersion | None]:
        """The branch, and the version of the HEAD file it was read from (None: no file)."""
        head = repository.head
        if head is None:
            return repository.branch, None
        version = head_version(head)
        if version is None:
            return _parse_branch(repository.kind, None), None
        cached = self._cache.get(head)
        if cached is not None and cached[0] == version:
            return cached[1], version
        branch = _parse_branch(repository.kind, _first_line(head))
        self._cache.put(head, (version, branch))
        return branch, version
