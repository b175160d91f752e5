"""What a heartbeat for a file carries: project, branch, language, lines and dependencies.

`Detector.detect(path)` is called on every save the watcher sees and for every plugin
heartbeat missing a field, so everything is cached: per folder (project files, repositories;
expiring after `folder_ttl` seconds), per git HEAD (by its mtime and inode, so a checkout shows
on the next call), and per file (by mtime, size and inode). A whole detection is remembered
too, valid while its folder entry, its file and its HEAD are unchanged: a plugin sending the
same file over and over costs two stat calls a heartbeat. Caches are bounded LRUs.
Standard library only at import time; pygments is imported on the first unknown extension.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from agent.pipeline.detect.cache import LRU
from agent.pipeline.detect.deps import parse_dependencies
from agent.pipeline.detect.language import PygmentsFallback, detect_language
from agent.pipeline.detect.lines import count_lines, is_binary
from agent.pipeline.detect.project import FolderInfo, FolderResolver, ProjectMap
from agent.pipeline.detect.vcs import BranchReader, HeadVersion, Repository, head_version

__all__ = [
    "DetectOptions",
    "Detection",
    "DetectionKey",
    "Detector",
]

# Language rules and dependency parsers read no further than this.
HEAD_SIZE = 64 * 1024


@dataclass(frozen=True)
class DetectOptions:
    """Settings that change what detection reports (privacy rules apply afterwards:
    agent.pipeline.privacy, in the builder)."""

    project_map: tuple[tuple[str, str], ...] = ()  # (path regex, name with {0} captures)
    project_from_git_remote: bool = False  # ~/.wakatime.cfg [git]: `owner/repo` from origin
    # [git] submodules_disabled: folders (regexes) where a submodule is not its own project
    # but named after its folder; [git_submodule_projectmap]: git dir regex → project name.
    submodules_disabled: tuple[re.Pattern[str], ...] = ()
    submodule_map: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Detection:
    """What a heartbeat for one file carries, and where its project came from."""

    entity: str
    project: str | None
    branch: str | None
    language: str | None
    lines: int | None
    dependencies: tuple[str, ...]
    project_root: str | None
    in_project_file_tree: bool = False  # a `.wakatime-project` is in a parent folder
    named_by_project_file: bool = False  # the project is the name that file gives


# What identifies one version of a file: (mtime_ns, size, inode).
FileVersion = tuple[int, int, int]
_NO_FILE: FileVersion = (0, 0, 0)


def _file_version(path: str) -> FileVersion | None:
    try:
        stat = os.stat(path)
    except (OSError, ValueError):
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


@dataclass(frozen=True, slots=True)
class _Remembered:
    """A detection and what it was made from; it holds while none of that has changed."""

    detection: Detection
    path: str
    file_version: FileVersion
    folder: str
    folder_info: FolderInfo
    head: str | None  # the HEAD file the branch came from, if one did
    head_version: HeadVersion | None


class DetectionKey(NamedTuple):
    """A path and what a heartbeat says of it: everything a detection depends on."""

    path: str
    project: str | None = None
    branch: str | None = None
    language: str | None = None
    alternate_project: str | None = None
    alternate_branch: str | None = None
    alternate_language: str | None = None


@dataclass(frozen=True)
class _FileFacts:
    """What a file's content says, valid while its (mtime_ns, size, inode) stays the same."""

    version: FileVersion
    language: str | None  # detected, before any plugin-given language
    lines: int | None
    dependencies: tuple[str, ...]
    dependencies_language: str | None  # the language the dependencies were parsed as


class Detector:
    """Detection with caches; one per daemon, safe to share between threads."""

    def __init__(
        self,
        options: DetectOptions = DetectOptions(),
        *,
        clock: Callable[[], float] = time.monotonic,
        cache_size: int = 4096,
        folder_ttl: float = 30.0,
    ) -> None:
        self.options = options
        self._map = ProjectMap(options.project_map)
        self._submodule_map = ProjectMap(options.submodule_map)
        self._folders = FolderResolver(cache_size, folder_ttl, clock)
        self._branches = BranchReader(cache_size)
        self._files: LRU[str, _FileFacts] = LRU(cache_size)
        self._detections: LRU[DetectionKey, _Remembered] = LRU(cache_size)
        self._folder_listings: LRU[str, tuple[int, frozenset[str]]] = LRU(cache_size)
        self._fallback = PygmentsFallback()

    def detect(
        self,
        path: str,
        *,
        alternate_project: str | None = None,
        alternate_branch: str | None = None,
        alternate_language: str | None = None,
        project: str | None = None,
        branch: str | None = None,
        language: str | None = None,
    ) -> Detection:
        """Detect for `path`; explicit project/branch/language win, alternates fill gaps."""
        return self.detect_key(
            DetectionKey(
                path,
                project,
                branch,
                language,
                alternate_project,
                alternate_branch,
                alternate_language,
            )
        )

    def recall(self, key: DetectionKey) -> Detection | None:
        """A detection made before that still holds (a few stat calls), else None: then
        finding one means reading files."""
        remembered = self._detections.get(key)
        if remembered is not None and self._holds(remembered):
            return remembered.detection
        return None

    def detect_key(self, key: DetectionKey) -> Detection:
        """`detect` for a path and its hints gathered in a key."""
        if (recalled := self.recall(key)) is not None:
            return recalled
        path, project, branch, language, alternate_project, alternate_branch, alternate_language = (
            key
        )
        path = os.path.abspath(path)
        folder = os.path.dirname(path)
        info = self._folders.info(folder)
        head: str | None = None
        head_seen: HeadVersion | None = None
        project_file, repository = info.project_file, info.repository
        disabled = self.options.submodules_disabled
        while (
            repository is not None
            and repository.submodule
            and any(p.search(folder) for p in disabled)
        ):  # [git] submodules_disabled: the repository around it is the project
            repository = self._folders.info(os.path.dirname(repository.root)).repository

        found_project: str | None = None
        found_branch: str | None = None
        root: str | None = None
        if project_file is not None:
            found_project, found_branch, root = (
                project_file.project,
                project_file.branch,
                project_file.folder,
            )
        if found_project is None and self._map:
            found_project = self._map.match(path)
            if found_project is not None:
                root = root or (repository.root if repository else folder)
        # As wakatime-cli: a `.wakatime-project` or the map names the project even over the
        # plugin's `--project`, which comes before version control and the alternate.
        found_project = found_project or project
        if repository is not None:
            if found_project is None:
                found_project = self._repository_project(repository)
            if found_branch is None:
                found_branch, head_seen = self._branches.current(repository)
                head = repository.head
            root = root or repository.root

        final_project = found_project or alternate_project
        final_branch = branch or found_branch or alternate_branch
        facts = self._file_facts(path, language)
        final_language = language or (facts.language if facts else None) or alternate_language
        lines = facts.lines if facts else None
        dependencies = facts.dependencies if facts else ()

        named = project_file.project if project_file is not None else None
        detection = Detection(
            entity=path,
            project=final_project,
            branch=final_branch,
            language=final_language,
            lines=lines,
            dependencies=dependencies,
            project_root=root,
            in_project_file_tree=project_file is not None,
            named_by_project_file=named is not None and final_project == named,
        )
        if facts is not None and facts.version != _NO_FILE and (head is None or head_seen):
            self._detections.put(
                key, _Remembered(detection, path, facts.version, folder, info, head, head_seen)
            )
        return detection

    def _repository_project(self, repository: Repository) -> str:
        """The project a working copy names, with wakatime-cli's `[git]` settings."""
        options = self.options
        name = repository.project
        if options.project_from_git_remote:
            name = repository.remote_project() or name
        if repository.submodule and repository.git_dir:
            name = self._submodule_map.match(repository.git_dir) or name
        return name

    def _holds(self, remembered: _Remembered) -> bool:
        """Whether a remembered detection is still what detecting again would find."""
        head = remembered.head
        return (
            self._folders.fresh(remembered.folder) is remembered.folder_info
            and _file_version(remembered.path) == remembered.file_version
            and (head is None or head_version(head) == remembered.head_version)
        )

    def clear(self) -> None:
        """Forget everything cached (after a config reload)."""
        self._folders.clear()
        self._files.clear()
        self._detections.clear()

    def _file_facts(self, path: str, language: str | None) -> _FileFacts | None:
        """Language, lines and dependencies from the file, cached on its version.

        None for a path that is not a readable regular file (an unsaved buffer, a deleted
        file): then only the name can tell the language.
        """
        version = _file_version(path)
        if version is None:
            return self._name_only(path)
        cached = self._files.get(path)
        if cached is not None and cached.version == version:
            wanted = language or cached.language
            if wanted == cached.dependencies_language:
                return cached
        if not os.path.isfile(path):
            return self._name_only(path)
        try:
            with open(path, "rb") as f:
                head = f.read(HEAD_SIZE)
        except OSError:
            return self._name_only(path)
        detected = self._language(path, head)
        deps_language = language or detected
        binary = is_binary(head)
        dependencies = (
            ()
            if binary
            else parse_dependencies(
                deps_language, os.path.basename(path), head.decode("utf-8", "replace")
            )
        )
        facts = _FileFacts(
            version,
            detected,
            count_lines(path, version[1], head),
            dependencies,
            deps_language,
        )
        self._files.put(path, facts)
        return facts

    def _name_only(self, path: str) -> _FileFacts:
        return _FileFacts(_NO_FILE, self._language(path, b""), None, (), None)

    def _language(self, path: str, head: bytes) -> str | None:
        folder = os.path.dirname(path)
        return detect_language(path, head, lambda: self._folder_extensions(folder), self._fallback)

    def _folder_extensions(self, folder: str) -> frozenset[str]:
        """Lower-case extensions of a folder's entries, cached on the folder's mtime (adding or
        removing a file changes it), for the rules that look at sibling files."""
        try:
            mtime = os.stat(folder).st_mtime_ns
        except OSError:
            return frozenset()
        cached = self._folder_listings.get(folder)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            names = os.listdir(folder)
        except OSError:
            return frozenset()
        extensions = frozenset(
            name[name.rfind(".") :].lower() for name in names if name.rfind(".") > 0
        )
        self._folder_listings.put(folder, (mtime, extensions))
        return extensions
