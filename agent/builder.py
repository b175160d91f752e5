"""The builder: turns what a source saw into a complete Heartbeat.

Watcher activity becomes a file write heartbeat; a plugin's heartbeat keeps everything it
sent and gains what detection knows and it did not say (project, branch, language, lines,
dependencies). Privacy switches are applied here, before anything is stored.
"""

from __future__ import annotations

import logging
import os

from agent.config import Settings
from agent.detect import Detection, DetectionKey, DetectOptions, Detector
from agent.detect.project import project_root_count
from agent.heartbeat import Heartbeat
from agent.privacy import NAME_REVEALING_FIELDS
from agent.useragent import full_user_agent

# Detections by what a heartbeat asks of detection (its entity, the names it gave and its hints).
DetectionMemo = dict[DetectionKey, Detection]

log = logging.getLogger(__name__)


class HeartbeatBuilder:
    def __init__(self, detector: Detector | None = None) -> None:
        self.detector = detector or Detector(DetectOptions())

    def complete(self, hb: Heartbeat, seen: DetectionMemo | None = None) -> Heartbeat | None:
        """Fill in what detection knows, in place; None when a privacy rule says skip.

        `seen` remembers detections for heartbeats committed together (the ingest passes
        one per group): a file sent many times in one group is looked at once, as if all
        its heartbeats had arrived at the same moment.
        """
        hb.user_agent = full_user_agent(hb.user_agent)
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
                    return hb
                if seen is not None:
                    seen[key] = found
            if found.skip:
                return None
            options = self.detector.options
            if not hb.is_unsaved_entity or options.hide_file_names:
                hb.entity = found.entity  # an unsaved buffer keeps the name its editor gave
            hb.project = found.project
            hb.branch = found.branch
            hb.language = found.language
            if hb.lines is None:
                hb.lines = found.lines
            if not hb.dependencies:
                hb.dependencies = list(found.dependencies) or None
            # The project's depth, from where detection found it, else the plugin's folder.
            if hb.project_root_count is None and (root := found.project_root or hb.project_folder):
                hb.project_root_count = project_root_count(root)
            if options.hide_file_names or options.hide_project_names:
                # Under a privacy switch, what the plugin counted goes no further either.
                for name in NAME_REVEALING_FIELDS:
                    setattr(hb, name, None)
        else:
            hb.project = hb.project or hb.alternate_project
            hb.branch = hb.branch or hb.alternate_branch
            hb.language = hb.language or hb.alternate_language
        return hb


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
    hb = settings.heartbeats
    return DetectOptions(
        project_map=tuple(settings.projects.items()),
        hide_file_names=hb.hide_file_names,
        hide_project_names=hb.hide_project_names,
        hide_branch_names=hb.hide_branch_names,
        exclude_unknown_project=hb.exclude_unknown_project,
        include_only_with_project_file=hb.include_only_with_project_file,
    )
