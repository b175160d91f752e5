"""Keys never reach logs, errors or `agent config show`: not from an `[api_urls]` line
written the wrong way round (`key|url`), not from `user:password@` or `?api_key=` in a URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from agentproc import AgentProcess, agent_env
from test_ops import cli
from wakaserver import FakeWakaTime

from agent.delivery.api import ApiError, WakaTimeApi
from agent.redact import redact, redact_url

SECRETS = ("waka_swapped_secret", "hunter2", "waka_query_secret")


def test_an_api_urls_line_written_key_first_logs_no_key(tmp_path: Path, waka: FakeWakaTime) -> None:
    env = agent_env(tmp_path, waka.url)
    (tmp_path / "home" / ".wakatime.cfg").write_text(
        f"[api_urls]\n.*/work/.* = waka_swapped_secret|{waka.url}\n"
        ".*/play/.* = waka_swapped_secret|wakapi.example/api\n"
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    with AgentProcess(env, workdir) as agent:
        assert agent.stop() == 0
    shown = cli(env, "config", "show")
    text = agent.log + shown.stdout + shown.stderr
    assert "written key|url; the form is url|key" in agent.log
    assert "is not an http(s) URL" in agent.log
    assert "waka_swapped_secret" not in text


def test_credentials_in_urls_are_masked_in_config_show_and_errors(tmp_path: Path) -> None:
    env = agent_env(tmp_path, "https://me:hunter2@wakapi.example/api?api_key=waka_query_secret")
    shown = cli(env, "config", "show")
    assert shown.returncode == 0, shown.stderr
    assert "https://***@wakapi.example/api?api_key=***" in shown.stdout
    env["HEARTBEAT_AGENT_API__URL"] = "ftp://me:hunter2@example.com/api?api_key=waka_query_secret"
    refused = cli(env, "config", "show")
    assert refused.returncode == 78 and "is not an http(s) URL" in refused.stderr
    for secret in SECRETS:
        assert secret not in shown.stdout + shown.stderr + refused.stdout + refused.stderr


def test_a_read_that_fails_names_the_server_without_its_credentials() -> None:
    api = WakaTimeApi("http://me:hunter2@127.0.0.1:9/api?api_key=waka_query_secret", lambda: "x")
    with pytest.raises(ApiError) as failed:
        api.current_user()
    assert "cannot reach http://***@127.0.0.1:9/api?api_key=***" in str(failed.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://a:b@host/p?api_key=k&x=1", "https://***@host/p?api_key=***&x=1"),
        ("https://host/p?token=t#f", "https://host/p?token=***#f"),
        ("https://host/api", "https://host/api"),
    ],
)
def test_redacting_urls(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact(f"cannot reach {url}: refused") == f"cannot reach {shown}: refused"
