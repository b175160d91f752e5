"""Record the real wakatime-cli's answers for the differential cases as golden JSON.

    python scripts/oracles/record_wakatime_cli.py [--oracles /opt/oracles/bin] [CASE ...]

Runs each case of tests/oracle/oracle_harness.py with the real binary (from --oracles, or
$HEARTBEAT_AGENT_ORACLES, default /opt/oracles/bin) against a loopback recorder and writes
tests/oracle/golden/<case>.json: what the server received, normalised (paths under the
case's temp root as `{root}`), with the binary's version. The always-run tests replay the
agent against these files, so re-record after changing a case or upgrading wakatime-cli.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2] / "tests"
sys.path[:0] = [str(TESTS / "oracle"), str(TESTS)]

import oracle_harness as harness  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--oracles", help="the folder with the wakatime-cli binary")
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    args = parser.parse_args()
    if args.oracles:
        os.environ[harness.ORACLES_ENV] = args.oracles
    binary, why = harness.oracle_binary()
    if binary is None:
        print(why, file=sys.stderr)
        return 1
    version = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    chosen = [c for c in harness.CASES if not args.cases or c.name in args.cases]
    harness.GOLDEN.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temp:
        template = Path(temp) / "template"
        harness.build_template(template)
        for case in chosen:
            received = harness.run_case(
                case, template, Path(temp), harness.wakatime_cli_runner(binary)
            )
            record = {"case": case.name, "wakatime_cli": version, "received": received}
            harness.golden_path(case).write_text(json.dumps(record, indent=2) + "\n")
            print(f"{case.name}: {len(received)} heartbeat(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
