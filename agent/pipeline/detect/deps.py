"""Dependencies a file imports, shaped the way wakatime-cli reports them.

wakatime-cli tokenizes with chroma; these are line-oriented regular expressions over the first
64 KiB (see `HEAD_SIZE` in agent.pipeline.detect), which find the same names for real code
at a fraction of the cost. Conventions kept from wakatime-cli (pkg/deps): Python and C#'s first name
component; Go's full import path; JavaScript's last path component without extension; Java's
two package components after a three-letter top-level domain; Kotlin's first two components;
C/C++/Objective-C's first path component without `.h`; the same few standard names left out
(os/sys, stdio.h, System, fmt, java.*, Foundation...). Deliberate differences: PHP file
requires come without their quotes, Rust `use` paths count as well as `extern crate`, and
Ruby (require, gem) and Vue/Svelte/Astro script imports are covered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

MAX_DEPENDENCY_LENGTH = 200
MAX_DEPENDENCIES = 1000

_PY_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n#;]+)", re.M)
_PY_FROM = re.compile(r"^[ \t]*from[ \t]+([\w.]+)[ \t]+import\b", re.M)
_PY_EXCLUDE = re.compile(r"^(?:os|sys|__[a-z]+__)$", re.I)

_JS_SOURCES = re.compile(
    r"""(?:\bfrom\s*|^\s*import\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)(['"])([^'"\n]+)\1""",
    re.M,
)
_JS_EXTENSION = re.compile(r"\.\w{1,4}$")

_GO_SINGLE = re.compile(r'^\s*import\s+(?:[\w.]+\s+)?"([^"]+)"', re.M)
_GO_BLOCK = re.compile(r"^\s*import\s*\(([^)]*)\)", re.M)
_GO_BLOCK_LINE = re.compile(r'^\s*(?:[\w.]+\s+)?"([^"]+)"', re.M)

_RUST_EXTERN = re.compile(r"^\s*extern\s+crate\s+(\w+)", re.M)
_RUST_USE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+(?:::)?(\w+)", re.M)
_RUST_LOCAL = frozenset({"std", "core", "alloc", "crate", "self", "super"})

_JAVA_IMPORT = re.compile(r"^\s*import\s+(?:static\s+)?([\w.]+(?:\.\*)?)\s*;", re.M)
_JAVA_EXCLUDE = re.compile(r"^(?:java|javax)\.", re.I)
_KOTLIN_IMPORT = re.compile(r"^\s*import\s+([\w.`]+(?:\.\*)?)", re.M)
_KOTLIN_EXCLUDE = re.compile(r"^java\.", re.I)

_C_INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"\n]+)[>"]', re.M)
_C_EXCLUDE = re.compile(r"^(?:stdio\.h|stdlib\.h|string\.h|time\.h)$", re.I)
_CPP_EXCLUDE = re.compile(r"^(?:stdio\.h|iostream|stdlib\.h|string\.h|time\.h)$", re.I)
_OBJC_IMPORT = re.compile(
    r'^\s*(?:#\s*(?:import|include)\s*[<"]([^>"\n]+)[>"]|@import\s+(\w+))', re.M
)

_CSHARP_USING = re.compile(
    r"^\s*(?:global\s+)?using\s+(?:static\s+)?(?:\w+\s*=\s*)?([\w.]+)\s*;", re.M
)
_CSHARP_EXCLUDE = re.compile(r"^(?:system|microsoft)$", re.I)

_PHP_USE = re.compile(r"^\s*use\s+(?:function\s+|const\s+)?([^;{]+)", re.M)
_PHP_REQUIRE = re.compile(
    r"""\b(?:require|include)(?:_once)?\s*\(?\s*(['"])([^'"\n]+)\1\s*\)?\s*;""", re.I
)
_PHP_EXCLUDE = re.compile(r"^app$|app\.php$", re.I)

_RUBY_REQUIRE = re.compile(r"""^\s*(?:require|gem)\s*\(?\s*(['"])([^'"\n]+)\1""", re.M)

_SWIFT_IMPORT = re.compile(
    r"^\s*(?:@\w+\s+)*import\s+(?:(?:typealias|struct|class|enum|protocol|let|var|func)\s+)?(\w+)",
    re.M,
)
_SWIFT_EXCLUDE = re.compile(r"^foundation$", re.I)


def _python(text: str) -> Iterable[str]:
    found: list[tuple[int, str]] = []
    for match in _PY_IMPORT.finditer(text):
        for item in match.group(1).split(","):
            module = item.strip().split(" ", 1)[0].strip("()")
            found.append((match.start(), module))
    for match in _PY_FROM.finditer(text):
        found.append((match.start(), match.group(1)))
    for _, module in sorted(found):
        top = module.split(".", 1)[0]
        if top and not module.startswith(".") and not _PY_EXCLUDE.match(top):
            yield top


def _javascript(text: str) -> Iterable[str]:
    for match in _JS_SOURCES.finditer(text):
        last = re.split(r"[/\\]", match.group(2).strip())[-1]
        yield _JS_EXTENSION.sub("", last)


def _go(text: str) -> Iterable[str]:
    found = [(m.start(), m.group(1)) for m in _GO_SINGLE.finditer(text)]
    for block in _GO_BLOCK.finditer(text):
        found += [
            (block.start() + m.start(), m.group(1)) for m in _GO_BLOCK_LINE.finditer(block.group(1))
        ]
    return (path for _, path in sorted(found) if path != "fmt")


def _rust(text: str) -> Iterable[str]:
    found = [(m.start(), m.group(1)) for m in _RUST_EXTERN.finditer(text)]
    found += [(m.start(), m.group(1)) for m in _RUST_USE.finditer(text)]
    return (name for _, name in sorted(found) if name not in _RUST_LOCAL)


def _java(text: str) -> Iterable[str]:
    for match in _JAVA_IMPORT.finditer(text):
        name = match.group(1)
        if _JAVA_EXCLUDE.match(name):
            continue
        parts = name.split(".")
        if len(parts) > 1 and len(parts[0]) == 3:
            parts = parts[1:]
        if parts[-1] == "*":
            parts = parts[:-1]
        if parts:
            yield ".".join(parts[:2])


def _kotlin(text: str) -> Iterable[str]:
    for match in _KOTLIN_IMPORT.finditer(text):
        parts = match.group(1).replace("`", "").split(".")
        if parts[-1] == "*":
            parts = parts[:-1]
        name = ".".join(parts[:2])
        if name and not _KOTLIN_EXCLUDE.match(name + "."):
            yield name


def _include_root(path: str) -> str:
    return path.strip().split("/", 1)[0].removesuffix(".h")


def _c_family(exclude: re.Pattern[str]) -> Callable[[str], Iterable[str]]:
    def parse(text: str) -> Iterable[str]:
        for match in _C_INCLUDE.finditer(text):
            first = match.group(1).strip().split("/", 1)[0]
            if not exclude.match(first):
                yield first.removesuffix(".h")

    return parse


def _objective_c(text: str) -> Iterable[str]:
    for match in _OBJC_IMPORT.finditer(text):
        yield match.group(2) or _include_root(match.group(1)).removesuffix(".m")


def _csharp(text: str) -> Iterable[str]:
    for match in _CSHARP_USING.finditer(text):
        first = match.group(1).split(".", 1)[0]
        if not _CSHARP_EXCLUDE.match(first):
            yield first


def _php(text: str) -> Iterable[str]:
    found: list[tuple[int, str]] = []
    for match in _PHP_USE.finditer(text):
        for item in match.group(1).split(","):
            name = item.strip().lstrip("\\").split("\\", 1)[0].split(" ", 1)[0]
            found.append((match.start(), name))
    found += [(m.start(), m.group(2).strip()) for m in _PHP_REQUIRE.finditer(text)]
    return (name for _, name in sorted(found) if name and not _PHP_EXCLUDE.search(name))


def _ruby(text: str) -> Iterable[str]:
    return (m.group(2).split("/", 1)[0] for m in _RUBY_REQUIRE.finditer(text))


def _swift(text: str) -> Iterable[str]:
    return (
        m.group(1) for m in _SWIFT_IMPORT.finditer(text) if not _SWIFT_EXCLUDE.match(m.group(1))
    )


PARSERS: dict[str, Callable[[str], Iterable[str]]] = {
    "Python": _python,
    "JavaScript": _javascript,
    "TypeScript": _javascript,
    "JSX": _javascript,
    "TSX": _javascript,
    "Vue.js": _javascript,
    "Svelte": _javascript,
    "Astro": _javascript,
    "Go": _go,
    "Rust": _rust,
    "Java": _java,
    "Kotlin": _kotlin,
    "C": _c_family(_C_EXCLUDE),
    "C++": _c_family(_CPP_EXCLUDE),
    "Objective-C": _objective_c,
    "Objective-C++": _objective_c,
    "C#": _csharp,
    "PHP": _php,
    "Ruby": _ruby,
    "Swift": _swift,
}

# Manifests whose name is itself a dependency (wakatime-cli's JSON parser), plus the packages
# they list.
MANIFESTS = {"package.json": "npm", "bower.json": "bower", "component.json": "bower"}


def _manifest(name: str, text: str) -> Iterable[str]:
    yield MANIFESTS[name]
    try:
        document = json.loads(text)
    except ValueError:
        return
    if isinstance(document, dict):
        for key in ("dependencies", "devDependencies"):
            section = document.get(key)
            if isinstance(section, dict):
                yield from section


def _bounded(names: Iterable[str]) -> tuple[str, ...]:
    """Unique, non-empty, at most 200 characters each and 1000 in all, in first-seen order."""
    seen: dict[str, None] = {}
    for name in names:
        if name and len(name) <= MAX_DEPENDENCY_LENGTH and name not in seen:
            seen[name] = None
            if len(seen) >= MAX_DEPENDENCIES:
                break
    return tuple(seen)


def parse_dependencies(language: str | None, file_name: str, text: str) -> tuple[str, ...]:
    """Dependencies of a file named `file_name` in `language` whose start is `text`."""
    if file_name in MANIFESTS:
        return _bounded(_manifest(file_name, text))
    parser = PARSERS.get(language or "")
    return _bounded(parser(text)) if parser else ()
