"""The compat command against the real wakatime-cli: the same request, the same
~/.wakatime.cfg, the same files; the servers must receive the same heartbeats, field by
field, except for the differences the README lists (each applied below to wakatime-cli's
answer, so the test asserts exactly those).

`test_agent_matches_recorded_wakatime_cli` always runs, against wakatime-cli's answers
recorded in tests/oracle/golden (scripts/oracles/record_wakatime_cli.py);
`test_recorded_answers_are_the_live_wakatime_cli` runs the real binary when it is installed
($HEARTBEAT_AGENT_ORACLES, default /opt/oracles/bin), or is skipped saying why: each case's
live answer must be the recorded one, so the agent matches the live program too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import oracle_harness as harness
import pytest

Heartbeats = list[dict[str, Any]]
README = Path(__file__).parents[2] / "README.md"


def _same_as_the_real_file(_oracle: Heartbeats) -> Heartbeats:
    """Through any symlink, the heartbeat is the real file's: what wakatime-cli sends when
    named the real file (`symlinked_file_absolute`)."""
    return harness.load_golden(_case("symlinked_file_absolute"))["received"]


def _invented_project(oracle: Heartbeats) -> Heartbeats:
    return [{**item, "project": "<invented>"} for item in oracle]


def _project_from_https_remote(oracle: Heartbeats) -> Heartbeats:
    assert [item["project"] for item in oracle] == ["//github.com/acme/webshop"]
    return [{**item, "project": "acme/webshop"} for item in oracle]


def _copy_to_api_urls_server(oracle: Heartbeats) -> Heartbeats:
    return [*oracle, *({**item, "server": "second", "key": harness.OTHER_KEY} for item in oracle)]


# Differences kept on purpose, by case (each case's `notes` says why; so does the README).
DELIBERATE: dict[str, Callable[[Heartbeats], Heartbeats]] = {
    "symlinked_folder": _same_as_the_real_file,
    "symlinked_folder_and_relative_link": _same_as_the_real_file,
    "hide_project_names_true": _invented_project,
    "git_project_from_https_remote": _project_from_https_remote,
    "api_urls": _copy_to_api_urls_server,
}


def expected(case: harness.Case, oracle: Heartbeats) -> Heartbeats:
    """wakatime-cli's answer with the documented differences applied. Two hold for every
    case: `is_write` is always sent (false where wakatime-cli leaves it out), and an unknown
    project or branch is left out (wakatime-cli sends "")."""
    changed = DELIBERATE.get(case.name, lambda items: items)(oracle)
    return sorted(
        (
            {
                **item,
                "is_write": bool(item["is_write"]),
                "project": item["project"] or None,
                "branch": item["branch"] or None,
            }
            for item in changed
        ),
        key=json.dumps,
    )


def comparable(case: harness.Case, ours: Heartbeats) -> Heartbeats:
    """The agent's answer, with an invented project name (checked) made comparable."""
    if DELIBERATE.get(case.name) is _invented_project:
        for item in ours:
            assert item["project"] not in (None, "", "shop"), item
        return _invented_project(ours)
    return ours


def _case(name: str) -> harness.Case:
    return next(case for case in harness.CASES if case.name == name)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("oracle") / "template"
    harness.build_template(root)
    return root


CASES = [pytest.param(case, id=case.name) for case in harness.CASES]


@pytest.mark.parametrize("case", CASES)
def test_agent_matches_recorded_wakatime_cli(
    case: harness.Case, template: Path, tmp_path: Path
) -> None:
    ours = harness.run_case(case, template, tmp_path, harness.agent_runner())
    golden = harness.load_golden(case)
    assert comparable(case, ours) == expected(case, golden["received"])


@pytest.mark.parametrize("case", CASES)
def test_recorded_answers_are_the_live_wakatime_cli(
    case: harness.Case, template: Path, tmp_path: Path
) -> None:
    binary, why = harness.oracle_binary()
    if binary is None:
        pytest.skip(why)
    live = harness.run_case(case, template, tmp_path, harness.wakatime_cli_runner(binary))
    recorded = harness.load_golden(case)["received"]
    if DELIBERATE.get(case.name) is _invented_project:  # wakatime-cli picks it at random
        live, recorded = _invented_project(live), _invented_project(recorded)
    assert live == recorded


def test_every_case_is_recorded_and_every_difference_documented() -> None:
    recorded = {path.stem for path in harness.GOLDEN.glob("*.json")}
    assert recorded == {case.name for case in harness.CASES}
    noted = {case.name for case in harness.CASES if case.notes}
    assert noted == set(DELIBERATE)
    section = README.read_text().split("## Differences from wakatime-cli", 1)[1]
    section = re.split(r"\n## ", section, maxsplit=1)[0]
    for name in noted:
        assert f"`{name}`" in section, f"README does not list the difference of {name}"
