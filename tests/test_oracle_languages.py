"""The agent's language names against the real wakatime-cli's, on a generated corpus.

tests/oracle/languages.json holds the corpus (file names, ambiguous contents, sibling files,
scripts) and the language wakatime-cli 1.90 sent for each, recorded by
scripts/oracles/record_languages.py. The first test always runs on that golden file; the live
one re-runs the real program when $HEARTBEAT_AGENT_ORACLES (default /opt/oracles/bin) has it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.pipeline.detect import Detector
from agent.pipeline.detect.language import by_name, from_modeline, from_shebang

ORACLES = Path(__file__).resolve().parents[1] / "scripts" / "oracles"
sys.path.insert(0, str(ORACLES))

from language_corpus import entries, materialize  # noqa: E402
from wakatime_cli import ORACLES_ENV, oracle_binary, send  # noqa: E402

GOLDEN = Path(__file__).parent / "oracle" / "languages.json"
# Of the files wakatime-cli names a language for, the share the agent must name the same way.
MIN_AGREEMENT = 0.97


def golden() -> list[dict[str, Any]]:
    return json.loads(GOLDEN.read_text())["entries"]


def agent_languages(corpus: list[dict[str, Any]], root: Path) -> list[str | None]:
    detector = Detector()
    return [detector.detect(str(path)).language for path in materialize(corpus, root)]  # type: ignore[arg-type]


def compare(
    corpus: list[dict[str, Any]], expected: list[str | None], got: list[str | None]
) -> float:
    """Print every difference; the agreement where wakatime-cli names a language."""
    named = [i for i, language in enumerate(expected) if language is not None]
    contradicted = [i for i in named if got[i] != expected[i]]
    filled = [i for i, language in enumerate(expected) if language is None and got[i] is not None]
    for label, indexes in (("contradicts", contradicted), ("names a gap", filled)):
        for i in indexes:
            where = f"{corpus[i]['folder']}/{corpus[i]['name']}"
            print(f"{label}: {where}: wakatime-cli {expected[i]!r}, agent {got[i]!r}")
    strict = sum(a == b for a, b in zip(expected, got, strict=True)) / len(expected)
    agreement = 1 - len(contradicted) / len(named)
    print(
        f"{len(corpus)} files: the same language as wakatime-cli for {strict:.1%}; where it "
        f"names one, {agreement:.1%} ({len(contradicted)} differ); the agent names {len(filled)} "
        "it leaves unnamed (README: Differences from wakatime-cli)"
    )
    return agreement


def test_corpus_is_the_recorded_one() -> None:
    """The golden file was recorded from the corpus the recorder builds now."""
    recorded = [
        {key: entry[key] for key in ("folder", "name", "content", "siblings")} for entry in golden()
    ]
    assert recorded == entries()


def test_corpus_is_large_and_ambiguous() -> None:
    corpus = golden()
    by_name = [entry for entry in corpus if not entry["content"] and not entry["siblings"]]
    by_content = [entry for entry in corpus if entry["content"] or entry["siblings"]]
    assert len(by_name) >= 500
    assert len(by_content) >= 50
    extensions = {entry["name"].rsplit(".", 1)[-1].lower() for entry in by_content}
    assert {"h", "m", "pl", "r", "tsx", "pas", "ebuild", "inc", "v", "fs"} <= extensions
    assert sum(entry["content"].startswith("#!") for entry in by_content) >= 15


@pytest.fixture(scope="module")
def detected(tmp_path_factory: pytest.TempPathFactory) -> list[str | None]:
    """The agent's language for each entry of the recorded corpus."""
    return agent_languages(golden(), tmp_path_factory.mktemp("corpus"))


def test_languages_match_recorded_wakatime_cli(detected: list[str | None]) -> None:
    corpus = golden()
    assert compare(corpus, [entry["language"] for entry in corpus], detected) >= MIN_AGREEMENT


def test_languages_wakatime_cli_leaves_unnamed_come_from_the_documented_rules(
    detected: list[str | None],
) -> None:
    """README: the agent names a language wakatime-cli does not only from its own table of
    file names or from a script's shebang or modeline (never a guess)."""
    for entry, language in zip(golden(), detected, strict=True):
        if entry["language"] is None and language is not None:
            content = entry["content"]
            from_script = from_shebang(content.split("\n", 1)[0]) or from_modeline(content)
            assert language in (by_name(entry["name"])[0], from_script), entry["name"]


def test_languages_match_live_wakatime_cli(tmp_path: Path) -> None:
    binary = oracle_binary("wakatime-cli")
    if binary is None:
        pytest.skip(f"no wakatime-cli in ${ORACLES_ENV} (default /opt/oracles/bin)")
    corpus = golden()
    paths = materialize(corpus, tmp_path / "oracle")  # type: ignore[arg-type]
    sent = send(binary, [{"entity": str(path), "time": 1764000000.0} for path in paths], workers=4)
    live = [item.get("language") for item in sent]
    assert [item["entity"] for item in sent] == [str(path) for path in paths]
    recorded = [entry["language"] for entry in corpus]
    stale = [
        (corpus[i]["name"], recorded[i], live[i])
        for i in range(len(corpus))
        if recorded[i] != live[i]
    ]
    assert not stale, f"re-record with scripts/oracles/record_languages.py: {stale}"
    assert compare(corpus, live, agent_languages(corpus, tmp_path / "agent")) >= MIN_AGREEMENT
