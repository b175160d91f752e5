"""The heartbeats a compat command describes (flags, then extras), formatted and filtered as
wakatime-cli does, and the privacy flags that go with them."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from agent.pipeline.heartbeat import Heartbeat
    from agent.wakatime_cli.args import CompatArgs

# CompatArgs attribute → Heartbeat field, for the heartbeat the flags describe.
_MAIN_FIELDS = {
    "entity_type": "type",
    "category": "category",
    "write": "is_write",
    "lineno": "lineno",
    "cursorpos": "cursorpos",
    "lines_in_file": "lines",
    "project": "project",
    "branch": "branch",
    "language": "language",
    "alternate_project": "alternate_project",
    "alternate_branch": "alternate_branch",
    "alternate_language": "alternate_language",
    "project_folder": "project_folder",
    "is_unsaved_entity": "is_unsaved_entity",
    "ai_line_changes": "ai_line_changes",
    "human_line_changes": "human_line_changes",
    "line_additions": "line_additions",
    "line_deletions": "line_deletions",
    "plugin": "user_agent",
}


def heartbeat_dicts(
    args: CompatArgs, extras: list[dict[str, Any]], now: float
) -> list[tuple[str, dict[str, Any]]]:
    """The heartbeat the flags describe, then the extras: (label for logs, fields by
    Heartbeat name).

    Not validated (the daemon or `build_heartbeats` does that, item by item). `--time`
    absent or 0 means `now`, as in wakatime-cli. Extras without a `plugin` of their own
    carry the command's `--plugin`. `<<LAST_PROJECT>>`-style placeholders pass through
    untouched: the server resolves them. File entities are made absolute with symlinks
    resolved (`existing` then leaves out those that do not exist).
    """
    main: dict[str, Any] = {"entity": _expand_home(args.entity), "time": args.time or now}
    for attr, name in _MAIN_FIELDS.items():
        value = getattr(args, attr)
        if value is not None and value != "":
            main[name] = value
    if args.local_file:
        main["local_file"] = args.local_file
    items = [("heartbeat", main)]
    for index, extra in enumerate(extras):
        item = {**extra, "entity": _expand_home(extra.get("entity"))}
        if args.plugin and "user_agent" not in item:
            item["user_agent"] = args.plugin
        items.append((f"extra heartbeat {index}", item))
    for _label, item in items:
        _format_path(item)
    return items


def _format_path(item: dict[str, Any]) -> None:
    """wakatime-cli's formatting, in place: a saved file's entity (and its project folder)
    made absolute against the current folder with symlinks resolved, so detection sees the
    real file. Unsaved buffers, remote `ssh://` files and other entities stay as sent."""
    entity = item.get("entity")
    if not _is_local_saved_file(item) or not isinstance(entity, str):
        return
    item["entity"] = os.path.realpath(entity)
    folder = item.get("project_folder")
    if isinstance(folder, str) and folder:
        item["project_folder"] = os.path.realpath(_expand_home(folder))


def _is_local_saved_file(item: dict[str, Any]) -> bool:
    entity = item.get("entity")
    return (
        item.get("type", "file") == "file"
        and isinstance(entity, str)
        and bool(entity)
        and item.get("is_unsaved_entity") is not True
        and "://" not in entity
    )


def existing(
    items: list[tuple[str, dict[str, Any]]],
) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """wakatime-cli's file filter: heartbeats for saved files that do not exist (checked at
    `--local-file` when given) are left out; (kept, labels left out)."""
    kept: list[tuple[str, dict[str, Any]]] = []
    missing: list[str] = []
    for label, item in items:
        local = item.pop("local_file", None)
        if _is_local_saved_file(item):
            path = local if isinstance(local, str) and local else item["entity"]
            if not os.path.exists(path):
                missing.append(f"{label}: {path}")
                continue
        kept.append((label, item))
    return kept, missing


def privacy_flags(args: CompatArgs) -> dict[str, Any]:
    """The filter and privacy flags given (agent.pipeline.privacy names them), for the daemon to
    merge with ~/.wakatime.cfg's as wakatime-cli does."""
    flags: dict[str, Any] = {}
    for name in (
        "exclude",
        "include",
        "hide_file_names",
        "hide_project_names",
        "hide_branch_names",
    ):
        if value := getattr(args, name):
            flags[name] = value
    for name in ("exclude_unknown_project", "include_only_with_project_file"):
        if getattr(args, name):
            flags[name] = True
    return flags


def build_heartbeats(
    items: list[tuple[str, dict[str, Any]]], privacy: dict[str, Any] | None = None
) -> tuple[list[Heartbeat], list[str]]:
    """`heartbeat_dicts` validated into Heartbeats carrying the plugin's `privacy` flags,
    for the offline fallback.

    A heartbeat that fails validation is left out with a problem line; the rest count.
    """
    from agent.pipeline.heartbeat import Heartbeat, HeartbeatError

    heartbeats: list[Heartbeat] = []
    problems: list[str] = []
    for label, item in items:
        try:
            heartbeat = Heartbeat.from_mapping(item)
        except HeartbeatError as exc:
            problems.append(f"{label}: {exc}")
            continue
        heartbeat.privacy = privacy or None
        heartbeats.append(heartbeat)
    return heartbeats, problems


def _expand_home(entity: Any) -> Any:
    """`~` and `~/…` become the home folder, as wakatime-cli's homedir.Expand does."""
    if isinstance(entity, str) and (entity == "~" or entity.startswith(("~/", "~" + os.sep))):
        return os.path.expanduser(entity)
    return entity
