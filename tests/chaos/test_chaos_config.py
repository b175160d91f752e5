"""Bad configuration: `agent run` says what is wrong in one line naming the file and the key,
exits non-zero (78, EX_CONFIG: systemd does not restart on it), and shows no traceback. A
broken line in ~/.wakatime.cfg's `[api_urls]` (a file wakatime-cli reads too) is skipped
with a log line instead, as wakatime-cli skips it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from agentproc import AGENT, AgentProcess, agent_env
from support import ask, destination
from wakaserver import FakeWakaTime

DESTINATION = '[[destinations]]\nname = "work"\nurl = "https://work.example/api"\n'


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (b"[api\nkey = 1\n", "", "invalid TOML"),
        (b'[api]\nkey = "\xff\xfe"\n', "", "cannot read the configuration file"),
        (b"api = 5\n", "api:", "valid dictionary"),
        (b'destinations = "work"\n', "destinations:", "valid list"),
        (b'[destinations]\nname = "work"\n', "destinations:", "valid list"),
        (
            b'[[destinations]]\nname = 1\nurl = "https://w.example/api"\n',
            "destinations.0.name:",
            "valid string",
        ),
        (b'[[destinations]]\nname = "w"\n', "destinations.0.url:", "Field required"),
        (DESTINATION.encode() + b"key = [1]\n", "destinations.0.key:", "valid string"),
        (DESTINATION.encode() + b'include = "^/work/"\n', "destinations.0.include:", "valid list"),
        (
            DESTINATION.encode() + b'include = ["([bad"]\n',
            "destinations.0.include:",
            "invalid regular expression",
        ),
        (
            DESTINATION.encode() + b'exclude = ["*.py"]\n',
            "destinations.0.exclude:",
            "invalid regular expression",
        ),
        (DESTINATION.encode() + b'colour = "red"\n', "destinations.0.colour:", "unknown setting"),
        (
            b'[[destinations]]\nname = "w"\nurl = "ftp://w.example/api"\n',
            "destinations.0.url:",
            "not an http(s) URL",
        ),
        (DESTINATION.encode() * 2, "destinations:", "used twice"),
        (
            b'[[destinations]]\nname = "default"\nurl = "https://w.example/api"\n',
            "destinations:",
            "reserved",
        ),
        (b"[queue]\nbatch_size = 0\n", "queue.batch_size:", "greater than or equal to 1"),
    ],
)
def test_bad_config_file_one_line_naming_file_and_key(
    tmp_path: Path, text: bytes, key: str, reason: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(text)
    done = run_agent(tmp_path, "--config", str(config))
    assert done.returncode == 78
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"agent: {config}: {key}")
    assert reason in done.stderr
    assert "Traceback" not in done.stderr


def test_unreadable_config_file(tmp_path: Path) -> None:
    """A folder where the file should be: unreadable even to root (as tests may run)."""
    config = tmp_path / "config.toml"
    config.mkdir()
    done = run_agent(tmp_path, "--config", str(config))
    assert done.returncode == 78
    assert done.stderr.strip() == (
        f"agent: {config}: cannot read the configuration file:"
        f" [Errno 21] Is a directory: '{config}'"
    )


def test_missing_named_config_file(tmp_path: Path) -> None:
    done = run_agent(tmp_path, "--config", str(tmp_path / "nope.toml"))
    assert (done.returncode, done.stderr.strip()) == (
        78,
        f"agent: {tmp_path / 'nope.toml'}: no such configuration file",
    )


def test_broken_api_urls_lines_are_skipped_and_the_rest_works(
    tmp_path: Path, waka: FakeWakaTime
) -> None:
    env = agent_env(tmp_path, waka.url)
    (tmp_path / "home" / ".wakatime.cfg").write_bytes(
        b"[settings]\ndebug = \xff\n[api_urls]\n([unclosed = https://b.example/api|waka_k1\n"
        b"^/plain/ = http://b.example/api|waka_k2\n^/ok/ = " + waka.url.encode() + b"|other\n"
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    with AgentProcess(env, workdir) as agent:
        status = ask(env, "status")
        names = [d["name"] for d in status["destinations"]]
        assert names == ["default", "api_urls:^/plain/", "api_urls:^/ok/"]
        assert destination(status, "api_urls:^/ok/")["url"] == waka.url
        assert agent.stop() == 0
    skipped = [line for line in agent.lines if "line skipped" in line]
    assert len(skipped) == 1 and "([unclosed" in skipped[0]
    # Plain http from ~/.wakatime.cfg is used, as wakatime-cli uses it, with one warning.
    assert len([line for line in agent.lines if "plain http to b.example" in line]) == 1
    assert "waka_k" not in agent.log and "Traceback" not in agent.log


def run_agent(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AGENT, "run", *args],
        env=agent_env(root, api_key=None),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=30,
    )
