"""Language detection with WakaTime's names: file name, extension, then content for ambiguous cases.

Order: exact file name, extension (compound first), file-name globs; the few ambiguous
extensions are refined from sibling files and content; files with no known name fall back to
the shebang, a vim or emacs modeline, and last to pygments' file-name table (imported lazily,
mapped onto WakaTime's spelling). Nothing here runs a subprocess or reads more than `head`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from fnmatch import fnmatchcase

from agent.detect import language_data as data
from agent.detect.cache import LRU

CPP_EXTENSIONS = frozenset({".cpp", ".cc", ".cxx", ".c++", ".cp", ".hpp", ".hh", ".hxx", ".h++"})
# Lines looked at for modelines: vim reads 5 at either end by default.
MODELINE_LINES = 5
# Content rules look no further than this.
BINARY_PROBE_TEXT = 8192

_CPP_MARKERS = re.compile(
    rb"^\s*(?:namespace\s+\w+|template\s*<|class\s+\w+[^;]*$|(?:public|private|protected)\s*:)"
    rb"|std::|#include\s*<(?:iostream|string|vector|memory|map)>",
    re.M,
)
_OBJC_MARKERS = re.compile(rb"^\s*(?:@interface|@implementation|@protocol|#import\b)|@\"", re.M)
_MATLAB_MARKERS = re.compile(rb"^\s*(?:function\b|classdef\b|%|end\s*$|disp\s*\()", re.M)
_PROLOG_MARKERS = re.compile(rb"^\s*:-|^[a-z]\w*(?:\([^)]*\))?\s*:-", re.M)
_VERILOG_MARKERS = re.compile(rb"^\s*(?:endmodule\b|always\s*@|module\s+\w+\s*[(#;])", re.M)
_COQ_MARKERS = re.compile(
    rb"^\s*(?:Theorem|Lemma|Proof\.|Require\s+Import|Inductive|Fixpoint|Qed\.)", re.M
)
_V_MARKERS = re.compile(rb"^\s*(?:(?:pub\s+)?fn\s+\w+|module\s+\w+\s*$|import\s+\w+\s*$)", re.M)
_FSHARP_MARKERS = re.compile(rb"^\s*(?:let|open|module|namespace|type|\[<)\b", re.M)
_FORTH_MARKERS = re.compile(rb"^\s*:\s+\S+.*;\s*$|^\s*\\\s", re.M)
_QT_TS = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!DOCTYPE TS>\s*)?<TS[\s>]")
_VIM_MODELINE = re.compile(
    r"(?:^|\s)(?:vi|vim|ex)(?:[<=>]?\d*)?:.*?\b(?:ft|filetype|syn|syntax)=([\w+.-]+)"
)
_EMACS_MODELINE = re.compile(r"-\*-(.*?)-\*-")
_EMACS_MODE = re.compile(r"(?:^|;)\s*mode\s*:\s*([\w+.-]+)", re.I)
_VERSION_SUFFIX = re.compile(r"[\d.]+$")


def _same_stem_exists(path: str, extensions: tuple[str, ...]) -> bool:
    stem = os.path.splitext(path)[0]
    return any(os.path.exists(stem + e) or os.path.exists(stem + e.upper()) for e in extensions)


def _header(path: str, head: bytes, folder: Callable[[], frozenset[str]]) -> str:
    """`.h`: C, C++, Objective-C or Objective-C++ — the same-named source file, then content,
    then what else the folder holds (wakatime-cli looks at the first and last; content is the
    strongest evidence for a lone header)."""
    if _same_stem_exists(path, (".c",)):
        return "C"
    if _same_stem_exists(path, (".m",)):
        return "Objective-C"
    if _same_stem_exists(path, (".mm",)):
        return "Objective-C++"
    if _same_stem_exists(path, (".cpp", ".cc", ".cxx")):
        return "C++"
    if _OBJC_MARKERS.search(head):
        return "Objective-C"
    if _CPP_MARKERS.search(head):
        return "C++"
    exts = folder()
    if exts & CPP_EXTENSIONS:
        return "C++"
    if ".mm" in exts:
        return "Objective-C++"
    if ".m" in exts:
        return "Objective-C"
    return "C"


def _dot_m(path: str, head: bytes, folder: Callable[[], frozenset[str]]) -> str:
    """`.m`: Objective-C or Matlab."""
    if _same_stem_exists(path, (".h",)) or _OBJC_MARKERS.search(head):
        return "Objective-C"
    if _MATLAB_MARKERS.search(head) or ".mat" in folder():
        return "Matlab"
    return "Objective-C"


def _dot_pl(path: str, head: bytes, folder: Callable[[], frozenset[str]]) -> str:
    """`.pl`: Perl unless the file reads like Prolog clauses."""
    if head.startswith(b"#!") and b"perl" in head.split(b"\n", 1)[0]:
        return "Perl"
    return "Prolog" if _PROLOG_MARKERS.search(head) else "Perl"


def _dot_ts(path: str, head: bytes, folder: Callable[[], frozenset[str]]) -> str:
    """`.ts`: TypeScript, or a Qt Linguist translation (XML whose root is `<TS>`)."""
    return "XML" if _QT_TS.match(head) else "TypeScript"


def _dot_v(path: str, head: bytes, folder: Callable[[], frozenset[str]]) -> str:
    """`.v`: Verilog (wakatime-cli's pick), Coq or V."""
    if _VERILOG_MARKERS.search(head):
        return "Verilog"
    if _COQ_MARKERS.search(head):
        return "Coq"
    if _V_MARKERS.search(head):
        return "V"
    return "Verilog"


def _dot_fs(path: str, head: bytes, folder: Callable[[], frozenset[str]]) -> str:
    """`.fs`: F# unless it reads like Forth word definitions."""
    if _FSHARP_MARKERS.search(head):
        return "F#"
    return "Forth" if _FORTH_MARKERS.search(head) else "F#"


Resolver = Callable[[str, bytes, Callable[[], frozenset[str]]], str]
RESOLVERS: dict[str, Resolver] = {
    ".h": _header,
    ".m": _dot_m,
    ".pl": _dot_pl,
    ".ts": _dot_ts,
    ".v": _dot_v,
    ".fs": _dot_fs,
}


def by_name(name: str) -> tuple[str | None, str]:
    """Language from the file name alone, and the extension that decided it ('' if none)."""
    language = data.FILENAMES.get(name)
    if language:
        return language, ""
    dot = name.find(".", 1)
    while dot != -1:
        ext = name[dot:]
        language = data.EXTENSIONS_CASED.get(ext)
        if language:  # the case decided it (".H" is C++): nothing to refine
            return language, ""
        language = data.EXTENSIONS.get(ext.lower())
        if language:
            return language, ext.lower()
        dot = name.find(".", dot + 1)
    lowered = name.lower()
    if lowered != name and (language := data.FILENAMES.get(lowered)):
        return language, ""
    for pattern, language in data.FILENAME_GLOBS:
        if fnmatchcase(name, pattern):
            return language, ""
    return None, ""


def from_shebang(first_line: str) -> str | None:
    """`#!/usr/bin/env python3` → Python; `env -S` and variable assignments are skipped."""
    if not first_line.startswith("#!"):
        return None
    words = first_line[2:].split()
    if not words:
        return None
    program = os.path.basename(words[0])
    rest = words[1:]
    if program == "env":
        rest = [w for w in rest if not w.startswith("-") and "=" not in w]
        if not rest:
            return None
        program = os.path.basename(rest[0])
    return data.INTERPRETERS.get(program) or data.INTERPRETERS.get(_VERSION_SUFFIX.sub("", program))


def from_mode(mode: str) -> str | None:
    mode = mode.lower().removesuffix("-mode").removesuffix("-ts")
    return data.MODES.get(mode)


def from_modeline(text: str) -> str | None:
    """A vim (`vim: set ft=python:`) or emacs (`-*- mode: ruby -*-`) modeline."""
    lines = text.splitlines()
    edges = lines[:MODELINE_LINES] + lines[-MODELINE_LINES:]
    for line in edges:
        match = _VIM_MODELINE.search(line)
        if match and (language := from_mode(match.group(1))):
            return language
    for line in lines[:2]:
        match = _EMACS_MODELINE.search(line)
        if not match:
            continue
        inner = match.group(1)
        mode = _EMACS_MODE.search(inner) if ":" in inner else None
        language = from_mode(mode.group(1) if mode else inner.strip())
        if language:
            return language
    return None


def _normalize(name: str) -> str:
    name = name.strip().lower().replace("#", "sharp").replace("++", "pp")
    return re.sub(r"[\s./-]", "", name)


class PygmentsFallback:
    """The long tail: pygments' file-name table, imported on first use, spelled WakaTime's way."""

    def __init__(self, capacity: int = 1024) -> None:
        # "" records a miss, so an unknown extension costs one pygments lookup, not one per save.
        self._cache: LRU[str, str] = LRU(capacity)
        self._known: dict[str, str] | None = None

    def __call__(self, name: str) -> str | None:
        key = os.path.splitext(name)[1].lower() or name
        language = self._cache.get(key)
        if language is None:
            language = self._lookup(name) or ""
            self._cache.put(key, language)
        return language or None

    def _lookup(self, name: str) -> str | None:
        from pygments.lexers import get_lexer_for_filename
        from pygments.util import ClassNotFound

        if self._known is None:
            self._known = {_normalize(n): n for n in data.KNOWN_NAMES}
        try:
            lexer = get_lexer_for_filename(name)
        except ClassNotFound:
            return None
        for candidate in (lexer.name, *lexer.aliases):
            language = self._known.get(_normalize(candidate))
            if language and language != "Text":
                return language
        return None


def detect_language(
    path: str, head: bytes, folder: Callable[[], frozenset[str]], fallback: PygmentsFallback
) -> str | None:
    """The WakaTime language of `path` whose first bytes are `head` (b"" if unreadable);
    `folder` lists the lower-case extensions next to it, called only when a rule needs them."""
    name = os.path.basename(path)
    language, ext = by_name(name)
    if language:
        resolver = RESOLVERS.get(ext)
        return resolver(path, head, folder) if resolver else language
    text = head[:BINARY_PROBE_TEXT].decode("utf-8", "replace")
    return from_shebang(text.split("\n", 1)[0]) or from_modeline(text) or fallback(name)
