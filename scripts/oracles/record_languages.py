"""Record the language the real wakatime-cli detects for each corpus entry.

    python scripts/oracles/record_languages.py [--out tests/oracle/languages.json]

The corpus (language_corpus.py) is laid out in a temporary folder and sent through
wakatime-cli twice: as plugins run it (guess_language off, the default) and with
`--guess-language` (content analysis for names it does not know). Both answers go into the
golden file beside each entry, which tests/test_oracle_languages.py compares the agent with.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from language_corpus import Entry, entries, materialize
from wakatime_cli import oracle_binary, oracle_version, send

GOLDEN = Path(__file__).resolve().parents[2] / "tests" / "oracle" / "languages.json"
# A fixed, recent time: wakatime-cli sends it as given.
TIME = 1764000000.0


def detect(binary: Path, corpus: list[Entry]) -> tuple[list[str | None], list[str | None]]:
    """wakatime-cli's language for each entry: (as plugins run it, with --guess-language)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve()
        paths = materialize(corpus, root)
        heartbeats = [{"entity": str(path), "time": TIME} for path in paths]
        answers = []
        for flags in ((), ("--guess-language",)):
            received = send(binary, heartbeats, flags=flags)
            by_entity = {item["entity"]: item.get("language") for item in received}
            answers.append([by_entity[str(path)] for path in paths])
    return answers[0], answers[1]


def record(binary: Path) -> dict[str, Any]:
    corpus = entries()
    plain, guessed = detect(binary, corpus)
    return {
        "oracle": oracle_version(binary),
        "entries": [
            {**entry, "language": language, "guessed": guess}
            for entry, language, guess in zip(corpus, plain, guessed, strict=True)
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=GOLDEN)
    args = parser.parse_args(argv)
    binary = oracle_binary("wakatime-cli")
    if binary is None:
        print("wakatime-cli not found in $HEARTBEAT_AGENT_ORACLES (/opt/oracles/bin)")
        return 1
    golden = record(binary)
    args.out.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(golden['entries'])} entries from {golden['oracle']} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
