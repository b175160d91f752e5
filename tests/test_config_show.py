"""`agent config show`: every setting's value and source, and no key ever printed."""

from __future__ import annotations

from pathlib import Path

from agentproc import agent_env
from test_ops import cli, cli_json

SECRETS = ("waka_env_secret", "waka_cfg_secret", "company_secret", "hunter2", "oauth_secret")


def setup(tmp_path: Path) -> dict[str, str]:
    env = agent_env(tmp_path, None, api_key="waka_env_secret")
    home = Path(env["HOME"])
    (home / ".wakatime.cfg").write_text(
        "[settings]\napi_key = waka_cfg_secret\napi_url = https://wakapi.example/api\n"
        "[api_urls]\n.*/work/.* = https://company.example/api|company_secret\n"
    )
    config = tmp_path / "agent.toml"
    config.write_text(
        '[api]\nproxy = "http://me:hunter2@proxy.example:3128"\n'
        '[watch]\npaths = ["/home/me/code"]\n'
        '[oauth]\nclient_secret = "oauth_secret"\n'
    )
    env["HEARTBEAT_AGENT_CONFIG"] = str(config)
    env["HEARTBEAT_AGENT_HEARTBEATS__DEBOUNCE_SECONDS"] = "5"
    return env


def test_each_setting_says_where_it_came_from(tmp_path: Path) -> None:
    env = setup(tmp_path)
    code, report = cli_json(env, "config", "show")
    assert code == 0
    settings = report["settings"]
    assert settings["api.key"] == {
        "value": "******** (set)",
        "source": "env",
        "origin": "HEARTBEAT_AGENT_API__KEY",
    }
    assert settings["api.url"]["value"] == "https://wakapi.example/api"
    assert settings["api.url"]["source"] == "wakatime_cfg"
    assert settings["api.url"]["origin"].endswith(".wakatime.cfg")
    assert settings["watch.paths"] == {
        "value": ["/home/me/code"],
        "source": "file",
        "origin": str(tmp_path / "agent.toml"),
    }
    assert settings["heartbeats.debounce_seconds"]["value"] == 5.0
    assert settings["heartbeats.debounce_seconds"]["source"] == "env"
    assert settings["queue.batch_size"] == {"value": 25, "source": "default", "origin": None}
    assert settings["api.proxy"]["value"] == "http://***@proxy.example:3128"
    assert report["config_file"] == str(tmp_path / "agent.toml")
    assert report["database"] == env["HEARTBEAT_AGENT_QUEUE__PATH"]
    names = [d["name"] for d in report["destinations"]]
    assert names == ["default", "api_urls:.*/work/.*"]
    assert report["destinations"][1]["key"] == "******** (set)"


def test_the_key_from_wakatime_cfg_is_sourced_there(tmp_path: Path) -> None:
    env = setup(tmp_path)
    del env["HEARTBEAT_AGENT_API__KEY"]
    _, report = cli_json(env, "config", "show")
    assert report["settings"]["api.key"]["source"] == "wakatime_cfg"
    env["WAKATIME_API_KEY"] = "waka_other_secret"
    _, report = cli_json(env, "config", "show")
    assert report["settings"]["api.key"]["origin"] == "WAKATIME_API_KEY"


def test_no_secret_is_ever_printed(tmp_path: Path) -> None:
    env = setup(tmp_path)
    human = cli(env, "config", "show")
    machine = cli(env, "config", "show", "--json")
    assert human.returncode == machine.returncode == 0
    assert "api.key" in human.stdout and "[env HEARTBEAT_AGENT_API__KEY]" in human.stdout
    for secret in SECRETS:
        assert secret not in human.stdout + human.stderr
        assert secret not in machine.stdout + machine.stderr


def test_a_bad_setting_is_a_configuration_error(tmp_path: Path) -> None:
    env = setup(tmp_path)
    env["HEARTBEAT_AGENT_API__TIMEOUT"] = "-1"
    done = cli(env, "config", "show")
    assert done.returncode == 78
    assert "api.timeout" in done.stderr
