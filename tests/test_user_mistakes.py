"""User mistakes get one clear line (exit 78 for configuration), never a traceback; a
reader that leaves early (`agent today | head`) is no error; small report fixes."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from agentproc import AGENT, SHORT_HOLD, agent_env, git_repo
from inprocess import InProcessAgent

from agent.pipeline.destinations import DEFAULT
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.store import HeartbeatStore

COMMANDS = [
    ["status"],
    ["today", "--offline"],
    ["queue", "count"],
    ["config", "show"],
    ["detect", "/tmp/x.py"],
    ["run"],
]


def run(
    env: dict[str, str], *argv: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AGENT, *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def one_clean_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    return done.stderr


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("HEARTBEAT_AGENT_WATCH__PATHS", '["~/code"', "not a valid JSON list"),
        ("HEARTBEAT_AGENT_WATCH__EXCLUDE", '["a"', "not valid JSON"),
        ("HEARTBEAT_AGENT_WATCH", "{", "not valid JSON"),
        ("HEARTBEAT_AGENT_WATCH__EXCLUDE", '["(unclosed"]', "invalid regular expression"),
    ],
)
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_bad_variable_is_one_line_and_exit_78(
    tmp_path: Path, command: list[str], variable: str, value: str, expected: str
) -> None:
    env = agent_env(tmp_path, **{variable: value})

    done = run(env, *command, cwd=tmp_path)

    assert done.returncode == 78, done.stderr
    line = one_clean_line(done)
    assert line.startswith(f"agent: environment {variable}") and expected in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[watch]\nexclude = ['(unclosed']\n", "watch.exclude: invalid regular expression"),
        ("[watch]\ninclude = ['*.py']\n", "watch.include: invalid regular expression"),
        ("[queue]\npath = '{folder}'\n", "queue.path: {folder}: a folder is where the database"),
    ],
)
def test_a_bad_file_value_is_one_line_and_exit_78(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text.format(folder=tmp_path))
    env = agent_env(tmp_path, HEARTBEAT_AGENT_CONFIG=str(config))
    env.pop("HEARTBEAT_AGENT_QUEUE__PATH")

    for command in (["run"], ["status"]):
        done = run(env, *command, cwd=tmp_path)
        assert done.returncode == 78, done.stderr
        assert f"agent: {config}: {expected.format(folder=tmp_path)}" in one_clean_line(done)


def test_watch_paths_as_a_plain_string(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = agent_env(tmp_path, HEARTBEAT_AGENT_WATCH__PATHS=f"~/proj:{home}/other, /srv/x")

    done = run(env, "config", "show", "--json")

    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)["settings"]["watch.paths"]["value"]
    assert shown == ["~/proj", f"{home}/other", "/srv/x"]


def write_history(env: dict[str, str], rejected: int = 0) -> None:
    now = time.time()
    with HeartbeatStore(Path(env["HEARTBEAT_AGENT_QUEUE__PATH"])) as store:
        ids = store.add(
            [(Heartbeat(entity=f"/tmp/f{i}.py", time=now - 60 + i), [DEFAULT]) for i in range(30)]
        )
        store.mark_rejected(DEFAULT, {i: "too old" for i in ids[:rejected]})
        store.mark_delivered(DEFAULT, ids[rejected:])


@pytest.mark.parametrize(
    "command",
    [
        ["today", "--offline"],
        ["status", "--json"],
        ["queue", "list", "--rejected"],
        ["queue", "export", "--rejected"],
        ["plugins", "status"],
        ["config", "show"],
        ["--help"],
    ],
    ids=" ".join,
)
def test_a_reader_that_leaves_early_is_no_error(tmp_path: Path, command: list[str]) -> None:
    """`agent … | head`: the pipe's reading end is closed before the command writes."""
    env = agent_env(tmp_path)
    write_history(env, rejected=30)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [AGENT, *command],
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode in (141, 1)  # 1: `status` without a daemon, said before printing


def test_purge_with_only_rejected_heartbeats_says_how_to_drop_them(tmp_path: Path) -> None:
    env = agent_env(tmp_path)
    write_history(env, rejected=3)

    done = run(env, "queue", "purge", "--yes")

    assert done.returncode == 0
    assert done.stdout == (
        "Nothing to purge: no queued heartbeats. 3 rejected heartbeats kept aside:"
        " `agent queue purge --rejected` drops them.\n"
    )


def test_config_show_names_oauth_when_logged_in(tmp_path: Path) -> None:
    env = agent_env(tmp_path, api_key=None)
    tokens = Path(env["HEARTBEAT_AGENT_QUEUE__PATH"]).parent / "oauth.json"
    tokens.parent.mkdir(parents=True, exist_ok=True)
    tokens.write_text(
        json.dumps({"access_token": "waka_tok_x", "token_url": "https://wakatime.com/oauth/token"})
    )

    done = run(env, "config", "show")

    assert done.returncode == 0, done.stderr
    assert "key: OAuth tokens from `agent login`" in done.stdout
    assert "no key" not in done.stdout and "waka_tok_x" not in done.stdout


def test_status_says_a_delivery_error_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = agent_env(tmp_path, "http://127.0.0.1:9/api/v1", **SHORT_HOLD)
    repo = git_repo(tmp_path / "repo")
    with InProcessAgent(env, repo, monkeypatch) as agent:
        (repo / "a.py").write_text("x = 1\n")
        agent.wait_for_log("cannot reach")
        done = run(env, "status")
        assert agent.stop() == 0
    assert done.returncode == 0
    assert done.stdout.count("cannot reach http://127.0.0.1:9/api/v1") == 1, done.stdout
