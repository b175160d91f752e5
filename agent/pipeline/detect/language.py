"""Language detection with the names wakatime-cli sends: file name, siblings, then content.

Order, as wakatime-cli's: C-family files by their same-named and sibling files; then the exact
file name, the extension (compound first) and file-name globs; where several languages claim
an extension, a contest on content scored as wakatime-cli's lexers score it. Where wakatime-cli
stops (it sends no language), the agent goes on: the shebang, a vim or emacs modeline, and last
pygments' file-name table (imported lazily, mapped onto WakaTime's spelling). The agreement is
measured against the real program (tests/test_oracle_languages.py). Nothing here runs a
subprocess or reads more than `head`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import NamedTuple

from agent.pipeline.detect import language_data as data
from agent.pipeline.detect.cache import LRU

# The C family: wakatime-cli decides these from same-named and sibling files before anything
# else. (It does so for every extension starting with .c or .h, so a .css next to a .cpp counts as
# C++; the agent keeps that to real C and C++ files: README, "Differences from wakatime-cli".)
C_FAMILY = frozenset(
    {".c", ".h", ".cc", ".cp", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".h++"}
)
CPP_EXTENSIONS = frozenset({".cpp", ".hpp", ".c++", ".h++", ".cc", ".hh", ".cxx", ".hxx", ".cp"})
# Lines looked at for modelines: vim reads 5 at either end by default.
MODELINE_LINES = 5
# Content rules look no further than this.
BINARY_PROBE_TEXT = 8192

# The content scores wakatime-cli's lexers give when several claim one file name (facts read
# from its analysers; the highest score wins, then the priority, then the lexer's name).
_C_INCLUDE = re.compile(r"^\s*#include <|^\s*#ifn?def ", re.M)
_CPP_SCORES = ((re.compile(r"using namespace "), 0.4), (re.compile(r"#include <[a-z_]+>"), 0.2))
_OBJC_KEYWORDS = re.compile(r"@(?:end|implementation|protocol)")
_OBJC_NUMBER = re.compile(r"@[0-9]+")
_OBJC_MESSAGE = re.compile(r"\[\s*[a-zA-Z_]\w*\s+(?:[a-zA-Z_]\w*\s*\]|(?:[a-zA-Z_]\w*)?:)")
_MATLAB_COMMENT = re.compile(r"^\s*%")
_MATLAB_SYSTEM = re.compile(r"^!\w+")
_PERL_DECLARATION = re.compile(r"(?:my|our)\s+[$@%(]")
_RAKU_DECLARATION = re.compile(r"(?:my|our|has)\s+(?:['\w:-]+\s+)?[$@%&(]")
_RAKU_V6 = re.compile(r"^\s*(?:use\s+)?v6(?:\.\d(?:\.\d)?)?;", re.M)
_REBOL_HEADER = re.compile(r"\s*REBOL\s*\[")
_FORTH_WORD = re.compile(r"\n:[^\n]+;\n")
_CBM_BASIC = re.compile(r"\d+")
_VBNET = re.compile(r"^\s*(?:#If|Module|Namespace)", re.M)
_LIMBO = re.compile(r"^implement \w+;", re.M)
_HYBRIS = re.compile(r"\b(?:public|private)\s+method\b")
_MYSQL_BACKTICK = re.compile(r"`[a-zA-Z_]\w*`")
_SQL_BRACKET = re.compile(r"\[[a-zA-Z_]\w*\]")
_VIM_MODELINE = re.compile(
    r"(?:^|\s)(?:vi|vim|ex)(?:[<=>]?\d*)?:.*?\b(?:ft|filetype|syn|syntax)=([\w+.-]+)"
)
_EMACS_MODELINE = re.compile(r"-\*-(.*?)-\*-")
_EMACS_MODE = re.compile(r"(?:^|;)\s*mode\s*:\s*([\w+.-]+)", re.I)
_VERSION_SUFFIX = re.compile(r"[\d.]+$")

Folder = Callable[[], frozenset[str]]


def _shebang_runs(text: str, program: re.Pattern[str]) -> bool:
    first = text.split("\n", 1)[0].lower()
    if not first.startswith("#!"):
        return False
    words = [w for w in re.split(r"[\s/]+", first[2:].strip()) if w and not w.startswith("-")]
    return bool(words) and program.fullmatch(words[-1]) is not None


def _c_score(text: str) -> float:
    return 0.1 if _C_INCLUDE.search(text) else 0.0


def _cpp_score(text: str) -> float:
    return next((score for rule, score in _CPP_SCORES if rule.search(text)), 0.0)


def _objc_score(text: str) -> float:
    if _OBJC_KEYWORDS.search(text):
        return 1.0
    if '@"' in text:
        return 0.8
    if _OBJC_NUMBER.search(text):
        return 0.7
    return 0.8 if _OBJC_MESSAGE.search(text) else 0.0


def _matlab_score(text: str) -> float:
    lines = text.replace("\r\n", "\n").split("\n")
    first_code = next((line.strip() for line in lines if not _MATLAB_COMMENT.match(line)), "")
    if first_code.startswith("function") and "{" not in first_code:
        return 1.0
    if any(_MATLAB_COMMENT.match(line) or _MATLAB_SYSTEM.match(line) for line in lines):
        return 0.2
    return 0.0


def _perl_score(text: str) -> float:
    if _shebang_runs(text, re.compile(r"perl")):
        return 1.0
    score = 0.9 if _PERL_DECLARATION.search(text) else 0.0
    return score / 2 if ":=" in text else score


def _raku_score(text: str) -> float:
    if _shebang_runs(text, re.compile(r"perl6|rakudo|niecza|pugs")) or _RAKU_V6.search(text):
        return 1.0
    score = 0.8 if _RAKU_DECLARATION.search(text) else 0.0
    return score / 2 if ":=" in text else score


def _rebol_score(text: str) -> float:
    if _REBOL_HEADER.match(text):
        return 1.0
    return 0.5 if _REBOL_HEADER.search(text) else 0.0


def _verilog_score(text: str) -> float:
    return 0.1 * sum(word in text for word in ("reg", "wire", "assign"))


def _coq_score(text: str) -> float:
    return 1.0 if "Qed" in text and "Proof" in text else 0.0


def _fsharp_score(text: str) -> float:
    return 0.05 * (("|>" in text) + ("<|" in text))


def _forth_score(text: str) -> float:
    return 0.3 if _FORTH_WORD.search(text.replace("\r\n", "\n")) else 0.0


def _cbm_basic_score(text: str) -> float:
    return 0.2 if _CBM_BASIC.match(text) else 0.0


def _povray_score(text: str) -> float:
    marks = (("#version", 0.05), ("#declare", 0.05), ("camera", 0.05), ("light_source", 0.1))
    return sum(score for mark, score in marks if mark in text)


def _mysql_score(text: str) -> float:
    backticks = len(_MYSQL_BACKTICK.findall(text))
    brackets = len(_SQL_BRACKET.findall(text))
    if backticks + brackets >= 1 and backticks >= 2 * brackets:
        return 0.5
    if backticks > brackets:
        return 0.2
    return 0.1 if backticks else 0.0


def _brainfuck_score(text: str) -> float:
    probe = text[:256]
    if probe and max(sum(c in "+-" for c in probe), sum(c in "<>" for c in probe)) > len(probe) / 4:
        return 1.0
    return 0.5 if "[-]" in text else 0.0


def _gas_score(text: str) -> float:
    if re.search(r"^\.(?:text|data|section)", text, re.M):
        return 1.0
    return 0.1 if re.search(r"^\.\w+", text, re.M) else 0.0


def _scored(pattern: re.Pattern[str], score: float) -> Callable[[str], float]:
    return lambda text: score if pattern.search(text) else 0.0


def _containing(marks: tuple[str, ...], score: float) -> Callable[[str], float]:
    return lambda text: score if any(mark in text for mark in marks) else 0.0


def _no_score(text: str) -> float:
    return 0.0


class Contender(NamedTuple):
    """One of the lexers wakatime-cli matches a file name with, as it ranks them."""

    language: str  # WakaTime's name
    lexer: str  # the lexer's own name: wakatime-cli breaks ties on it
    priority: float = 0.0
    score: Callable[[str], float] = _no_score


def _contest(text: str, contenders: tuple[Contender, ...], bonus: dict[str, float]) -> str:
    """The winner by content score (plus `bonus` by language), then priority, then name."""
    best = max(
        contenders,
        key=lambda c: (round(c.score(text) + bonus.get(c.language, 0.0), 4), c.priority, c.lexer),
    )
    return best.language


_OBJC = Contender("Objective-C", "Objective-C", 0.0, _objc_score)
_R = Contender("S", "R", 0.1, _scored(re.compile(r"[a-z0-9_\])\s]<-(?!-)"), 0.11))
_ASSEMBLERS = (
    Contender("Assembly", "GAS", 0.1, _gas_score),
    Contender("ArmAsm", "ArmAsm"),
    Contender("ca65 assembler", "ca65 assembler", 0.0, _scored(re.compile(r"^\s*;", re.M), 0.9)),
)
CONTESTS: dict[str, tuple[Contender, ...]] = {
    ".h": (Contender("C", "C", 0.0, _c_score), _OBJC),
    ".H": (Contender("C", "C", 0.0, _c_score), Contender("C++", "C++", 0.0, _cpp_score), _OBJC),
    ".m": (
        _OBJC,
        Contender("Matlab", "Matlab", 0.0, _matlab_score),
        Contender("Mathematica", "Mathematica"),
        Contender("Octave", "Octave"),
        Contender("Mason", "Mason", 0.1),
    ),
    ".pl": (
        Contender("Perl", "Perl", 0.01, _perl_score),
        Contender("Prolog", "Prolog", 0.0, _containing((":-",), 1.0)),
        Contender("Raku", "Perl6", 0.0, _raku_score),
    ),
    ".r": (_R, Contender("Rebol", "REBOL", 0.0, _rebol_score)),
    ".inc": (
        Contender("PHP", "PHP", 3.0),
        Contender("POVRay", "POVRay", 0.0, _povray_score),
        Contender("Pawn", "Pawn", 0.0, _containing(("tagof",), 0.01)),
        Contender("SourcePawn", "SourcePawn"),
    ),
    ".s": _ASSEMBLERS,
    ".S": (_R, *_ASSEMBLERS),
    ".v": (
        Contender("Verilog", "verilog", 0.0, _verilog_score),
        Contender("V", "V"),
        Contender("Coq", "Coq", 0.0, _coq_score),
    ),
    ".fs": (
        Contender("F#", "FSharp", 0.01, _fsharp_score),
        Contender("Forth", "Forth", 0.0, _forth_score),
    ),
    ".bas": (
        Contender("QBasic", "QBasic", 0.0, _containing(("$DYNAMIC", "$STATIC"), 0.9)),
        Contender("VB.NET", "VB.net", 0.0, _scored(_VBNET, 0.5)),
        Contender("CBM BASIC V2", "CBM BASIC V2", 0.0, _cbm_basic_score),
    ),
    ".sql": (Contender("SQL", "SQL"), Contender("MySQL", "MySQL", 0.0, _mysql_score)),
    ".hy": (
        Contender("Hy", "Hy", 0.0, _containing(("(import ", "(defn "), 0.9)),
        Contender("Hybris", "Hybris", 0.0, _scored(_HYBRIS, 0.01)),
    ),
    ".b": (
        Contender("Brainfuck", "Brainfuck", 0.0, _brainfuck_score),
        Contender("Limbo", "Limbo", 0.0, _scored(_LIMBO, 0.7)),
    ),
}
# Extensions matched case-sensitively first (C++ claims "*.H", R "*.S").
CONTESTS_CASED = frozenset({".H", ".S"})


def _same_stem_exists(path: str, extension: str) -> bool:
    stem = os.path.splitext(path)[0]
    return os.path.exists(stem + extension) or os.path.exists(stem + extension.upper())


def _c_family(path: str, folder: Folder) -> str | None:
    """wakatime-cli's first rule for C-family files: a same-named .c, .m or .mm file, then any
    C++ or C file in the folder (the file itself included), decides; None when nothing does."""
    if _same_stem_exists(path, ".c"):
        return "C"
    if _same_stem_exists(path, ".m"):
        return "Objective-C"
    if _same_stem_exists(path, ".mm"):
        return "Objective-C++"
    extensions = folder()
    if extensions & CPP_EXTENSIONS:
        return "C++"
    return "C" if ".c" in extensions else None


def _folder_bonus(folder: Folder) -> dict[str, float]:
    """wakatime-cli's nudges from the folder's files: a .mat favours Matlab over Objective-C,
    a .h (the file itself, for a header) the other way."""
    extensions = folder()
    has_mat, has_h = ".mat" in extensions, ".h" in extensions
    return {
        "Objective-C": (-0.01 if has_mat else 0.01) + (0.01 if has_h else 0.0),
        "Matlab": (0.01 if has_mat else 0.0) + (0.0 if has_h else 0.01),
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
        if language:  # the case decided it (".NSA" is Natural): nothing to refine
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


def _extension(name: str) -> str:
    """The name's last suffix as wakatime-cli takes it: ".bashrc" for ".bashrc"."""
    dot = name.rfind(".")
    return name[dot:] if dot != -1 else ""


def detect_language(
    path: str, head: bytes, folder: Folder, fallback: PygmentsFallback
) -> str | None:
    """The WakaTime language of `path` whose first bytes are `head` (b"" if unreadable);
    `folder` lists the lower-case extensions next to it, called only when a rule needs them.
    The order is wakatime-cli's: C-family siblings, the file name, a content contest where
    several languages claim the name; then, where it stops, shebang, modeline and pygments."""
    name = os.path.basename(path)
    ext = _extension(name)
    if ext.lower() in C_FAMILY and (language := _c_family(path, folder)):
        return language
    if ext in (".m", ".mm") and _same_stem_exists(path, ".h"):
        return "Objective-C" if ext == ".m" else "Objective-C++"
    language, matched = by_name(name)
    text = head[:BINARY_PROBE_TEXT].decode("utf-8", "replace")
    if language:
        contest = CONTESTS.get(ext if ext in CONTESTS_CASED else matched)
        if contest is None:
            return language
        bonus = _folder_bonus(folder) if _OBJC in contest else {}
        return _contest(text, contest, bonus)
    return from_shebang(text.split("\n", 1)[0]) or from_modeline(text) or fallback(name)
