"""Dependencies point one way (docs/ARCHITECTURE.md): sources → pipeline → delivery, the
commands and the daemon above them, never the other way round; the daemon is wired by
`agent run` alone. Read from the source (every import, those inside functions too), not from
what happens to be loaded."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AGENT = ROOT / "agent"

# What each folder of the pipeline may import besides itself (docs/ARCHITECTURE.md): the data
# flows sources → pipeline → delivery, so the pipeline knows neither end; the plugins' fast
# path (wakatime_cli) and the IPC protocol know nothing of the rest; being standard library
# only, wakatime_cli serves every layer too (its private_files: 0600 files and their locks).
# Shared settings (agent.config), secret-scrubbing (agent.redact) and background tasks
# (agent.tasks) sit under everything.
BASE = ("agent.config", "agent.redact", "agent.tasks", "agent.__version__")
MAY_IMPORT = {
    "agent.ipc": (),
    "agent.wakatime_cli": ("agent.ipc", "agent.pipeline.heartbeat"),
    "agent.pipeline": ("agent.wakatime_cli", *BASE),
    "agent.delivery": ("agent.pipeline", "agent.wakatime_cli", *BASE),
    "agent.sources": (
        "agent.pipeline",
        "agent.wakatime_cli",
        "agent.ipc",
        "agent.autostart",
        *BASE,
    ),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each agent module and the agent modules it imports anywhere in its body."""
    found: dict[str, set[str]] = {}
    for path in sorted(AGENT.rglob("*.py")):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        names = found.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                    base = f"{base}.{node.module}" if node.module else base
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in node.names)
    return {name: {i for i in names if i.startswith("agent")} for name, names in found.items()}


def within(name: str, groups: tuple[str, ...]) -> bool:
    return any(name == group or name.startswith(group + ".") for group in groups)


def test_each_folder_imports_only_its_own_and_those_it_may() -> None:
    strays = {}
    for module, imported in imports().items():
        folder = next((f for f in MAY_IMPORT if within(module, (f,))), None)
        if folder is None:
            continue
        allowed = (folder, *MAY_IMPORT[folder])
        if wrong := sorted(i for i in imported if i != "agent" and not within(i, allowed)):
            strays[module] = wrong
    assert strays == {}


def test_only_agent_run_builds_the_daemon() -> None:
    users = {
        module
        for module, imported in imports().items()
        if module != "agent.daemon" and any(within(i, ("agent.daemon",)) for i in imported)
    }
    assert users == {"agent.commands.run"}


SUPERVISED = (
    "daemon.py",
    "sources/file_activity.py",
    "sources/requests.py",
    "delivery/deliveries.py",
)


@pytest.mark.parametrize("module", SUPERVISED)
def test_the_daemon_and_its_components_change_others_only_through_methods(module: str) -> None:
    """Each sets its own attributes, never another object's (`self.ingest.router = …`),
    and calls no other object's private methods (`api._fetch`)."""
    tree = ast.parse((AGENT / module).read_text())
    trespasses = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute) and not _is_self(target.value):
                trespasses.append(f"line {node.lineno}: sets {ast.unparse(target)}")
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not _is_self(node.value)
        ):
            trespasses.append(f"line {node.lineno}: uses {ast.unparse(node)}")
    assert trespasses == []


def _is_self(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def test_the_docs_name_only_files_and_folders_that_exist() -> None:
    """README and ARCHITECTURE draw the pipeline from the folders: a moved or renamed module
    fails here, not in a reader's hands."""
    ours = [p.relative_to(ROOT).as_posix() for d in ("agent", "tests", "scripts")
             for p in (ROOT / d).rglob("*.py")]  # fmt: skip
    missing: dict[str, str] = {}
    for doc in (ROOT / "README.md", ROOT / "docs" / "ARCHITECTURE.md"):
        text = doc.read_text()
        for path in re.findall(r"(?<![\w./-])(?:agent|tests|scripts)/[\w/.]*\w/?", text):
            if not (ROOT / path).exists():
                missing[path] = doc.name
        # A module named by its file, or by its path inside agent/ (`sources/policy.py`).
        for module in re.findall(r"(?<![\w/.~-])(\w[\w/]*\.py)\b", text):
            if not any(f"/{p}".endswith(f"/{module}") for p in ours):
                missing[module] = doc.name
    assert missing == {}


def test_the_readme_diagram_names_every_folder_of_the_pipeline() -> None:
    readme = (ROOT / "README.md").read_text()
    folders = ("agent/sources/", "agent/pipeline/", "agent/delivery/", "agent/wakatime_cli/")
    assert [folder for folder in folders if folder not in readme] == []
    assert sorted(p.name for p in AGENT.iterdir() if (p / "__init__.py").exists()) == sorted(
        ["commands", "delivery", "ipc", "pipeline", "sources", "wakatime_cli"]
    )
