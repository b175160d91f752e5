"""Hiding a file's name, as wakatime-cli's sanitizer does: one rule for the compat command
(`--hide-file-names`), detection and the builder (`[heartbeats] hide_file_names`).

Standard library only: the compat command's fast path applies it.
"""

from __future__ import annotations

HIDDEN = "HIDDEN"

# What could tell a hidden file's (or project's) name: dropped with the name.
NAME_REVEALING_FIELDS = ("lineno", "cursorpos", "lines", "dependencies", "project_root_count")


def hidden_file_name(entity: str) -> str:
    """`HIDDEN.<ext>`: the extension (the language) is all that is left of the name; a name
    with none, or a dot file, is plain `HIDDEN`. Windows paths from plugins are split too."""
    base = entity.replace("\\", "/").rsplit("/", 1)[-1]
    dot = base.rfind(".")
    return HIDDEN + (base[dot:] if dot > 0 else "")
