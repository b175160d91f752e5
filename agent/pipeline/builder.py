"""The builder: turns what a source saw into a complete Heartbeat.

Watcher activity becomes a file write heartbeat; a plugin's heartbeat keeps everything it
sent and gains what detection knows and it did not say (project, branch, language, lines,
dependencies). The privacy rules and filters (agent.pipeline.privacy: ~/.wakatime.cfg's, the
`[heartbeats]` switches and a plugin's flags) are applied here, the one place every
heartbeat passes through before anything is stored.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from agent.config import Settings
from agent.pipeline.detect import Detection, DetectionKey, DetectOptions, Detector
from agent.pipeline.detect.project import obfuscated_name, project_root_count
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.privacy import Privacy, RulesCache, bool_or_regexes, privacy_rules
from agent.pipeline.useragent import full_user_agent
from agent.wakatime_cli import cfg as wakatime_cfg

# Detections by what a heartbeat asks of detection (its entity, the names it gave and its hints).
DetectionMemo = dict[DetectionKey, Detection]

log = logging.getLogger(__name__)


class HeartbeatBuilder:
    def __init__(self, detector: Detector | None = None, rules: RulesCache | None = None) -> None:
        self.detector = detector or Detector(DetectOptions())
        self.rules = rules or RulesCache(lambda flags: privacy_rules({}, flags=flags))

    def complete(self, hb: Heartbeat, seen: DetectionMemo | None = None) -> Heartbeat | None:
        """Fill in what detection knows, in place; None when a filter says skip.

        `seen` remembers detections for heartbeats committed together (the ingest passes
        one per group): a file sent many times in one group is looked at once, as if all
        its heartbeats had arrived at the same moment.
        """
        rules = self.rules.get(hb.privacy)
        hb.privacy = None
        hb.user_agent = full_user_agent(hb.user_agent)
        if rules.excludes(hb.entity):
            return None
        if (where := _detection_path(hb)) is not None:
            key = DetectionKey(
                where,
                hb.project,
                hb.branch,
                hb.language,
                hb.alternate_project,
                hb.alternate_branch,
                hb.alternate_language,
            )
            found = seen.get(key) if seen is not None else None
            if found is None:
                try:
                    found = self.detector.detect_key(key)
                except Exception:  # detection must never cost a heartbeat
                    log.exception("detection failed for %s; storing it as sent", hb.entity)
                    rules.sanitize(hb)
                    return hb
                if seen is not None:
                    seen[key] = found
            if not _apply(hb, found, rules):
                return None
        else:
            hb.project = hb.project or hb.alternate_project
            hb.branch = hb.branch or hb.alternate_branch
            hb.language = hb.language or hb.alternate_language
            if rules.exclude_unknown_project and not hb.project:
                return None
        rules.sanitize(hb)
        return hb

    def report(self, paths: list[str]) -> list[dict[str, Any]]:
        """What `agent detect --json` prints: one object per path, as a heartbeat for it
        would carry it (privacy rules applied); `skipped` is true when a filter (exclude,
        exclude_unknown_project, …) drops it."""
        found = []
        for path in paths:
            hb = self.complete(Heartbeat(entity=path, time=0.0))
            found.append(
                {
                    "entity": hb.entity if hb else path,
                    "project": hb.project if hb else None,
                    "branch": hb.branch if hb else None,
                    "language": hb.language if hb else None,
                    "lines": hb.lines if hb else None,
                    "dependencies": (hb.dependencies if hb else None) or [],
                    "skipped": hb is None,
                }
            )
        return found


def _apply(hb: Heartbeat, found: Detection, rules: Privacy) -> bool:
    """Take a detection into a heartbeat, wakatime-cli's filters and project hiding
    included; False when a filter drops the heartbeat."""
    unsaved = hb.is_unsaved_entity
    if rules.include_only_with_project_file and not unsaved and not found.in_project_file_tree:
        return False
    if not unsaved:
        hb.entity = found.entity  # an unsaved buffer keeps the name its editor gave
    hb.project = found.project
    hb.branch = found.branch
    hb.language = found.language
    if hb.lines is None:
        hb.lines = found.lines
    if not hb.dependencies:
        hb.dependencies = list(found.dependencies) or None
    if rules.exclude_unknown_project and not hb.project:
        return False
    folder = found.project_root or os.path.dirname(found.entity)
    if hb.project and not found.named_by_project_file and rules.hides_project_of(folder):
        hb.project = obfuscated_name(folder)
    # The project's depth, from where detection found it, else the plugin's folder.
    if hb.project_root_count is None and (root := found.project_root or hb.project_folder):
        hb.project_root_count = project_root_count(root)
    return True


def _detection_path(hb: Heartbeat) -> str | None:
    """Where detection looks for a file heartbeat: the file's own absolute path (saved or not,
    as wakatime-cli does), or for an unsaved buffer with only a name (`Untitled-1`), that
    name in the plugin's project folder; None when there is nowhere to look."""
    if hb.type != "file":
        return None
    if os.path.isabs(hb.entity):
        return hb.entity
    folder = hb.project_folder
    if hb.is_unsaved_entity and folder and os.path.isabs(folder):
        return os.path.join(folder, os.path.basename(hb.entity))
    return None


def detect_options(settings: Settings) -> DetectOptions:
    """`[projects]`, then ~/.wakatime.cfg's `[projectmap]` (case-insensitive there), and
    its `[git]` settings."""
    cfg = wakatime_cfg.load()
    where = str(wakatime_cfg.default_path())

    def mapping(section: str) -> tuple[tuple[str, str], ...]:
        entries = cfg.get(section, {}).items()
        return tuple((f"(?i){pattern}", wakatime_cfg.unquoted(name)) for pattern, name in entries)

    from_remote = wakatime_cfg.setting(cfg, "git", "project_from_git_remote")
    disabled = wakatime_cfg.setting(cfg, "git", "submodules_disabled")
    return DetectOptions(
        project_map=(*settings.projects.items(), *mapping("projectmap")),
        project_from_git_remote=from_remote.lower() in ("1", "t", "true"),
        submodules_disabled=bool_or_regexes(disabled, f"{where}: [git] submodules_disabled") or (),
        submodule_map=mapping("git_submodule_projectmap"),
    )


def privacy_for(settings: Settings) -> RulesCache:
    """The rules from ~/.wakatime.cfg and `[heartbeats]`, merged per plugin flags."""
    cfg = wakatime_cfg.load().get("settings", {})
    own = {
        name: getattr(settings.heartbeats, name)
        for name in (
            "hide_file_names",
            "hide_project_names",
            "hide_branch_names",
            "exclude_unknown_project",
            "include_only_with_project_file",
        )
    }
    where = str(wakatime_cfg.default_path())

    def build(flags: Mapping[str, Any] | None) -> Privacy:
        return privacy_rules(cfg, own, flags, where)

    return RulesCache(build)
