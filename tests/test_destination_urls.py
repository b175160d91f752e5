"""Which server URLs may be used, where a plugin's own server goes, and ~/.wakatime.cfg's
[project_api_key]: decided per destination, never by refusing to start."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.config import load_settings
from agent.pipeline.destinations import (
    DEFAULT,
    Router,
    configured_destinations,
    plugin_server,
)
from agent.pipeline.heartbeat import Heartbeat


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("HEARTBEAT_AGENT_API__URL", "HEARTBEAT_AGENT_API__KEY", "WAKATIME_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WAKATIME_HOME", str(tmp_path))
    monkeypatch.setenv("HEARTBEAT_AGENT_CONFIG", str(tmp_path / "agent.toml"))
    (tmp_path / "agent.toml").write_text("")
    return tmp_path


def test_plain_http_from_the_agents_file_names_file_and_key(home: Path) -> None:
    (home / "agent.toml").write_text(
        '[api]\nurl = "http://10.0.0.5/api"\n[[destinations]]\nname = "lan"\n'
        'url = "http://10.0.0.6/api"\n'
    )
    default, lan = configured_destinations(load_settings())
    assert default.problem is not None and lan.problem is not None
    assert default.problem.startswith(f"{home / 'agent.toml'}: [api] url: plain http to 10.0.0.5")
    assert lan.problem.startswith(f"{home / 'agent.toml'}: destinations[0] (lan).url: plain http")
    assert "allow_insecure_http = true" in default.problem


def test_the_environment_is_named_and_the_opt_in_allows(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEARTBEAT_AGENT_API__URL", "http://10.0.0.5/api")
    [default] = configured_destinations(load_settings())
    assert default.problem and default.problem.startswith("environment HEARTBEAT_AGENT_API__URL:")
    (home / "agent.toml").write_text("[api]\nallow_insecure_http = true\n")
    [default] = configured_destinations(load_settings())
    assert default.problem is None


def test_plain_http_from_wakatime_cfg_warns_once(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (home / ".wakatime.cfg").write_text("[settings]\napi_url = http://192.168.9.9:3000/api\n")
    caplog.set_level(logging.WARNING)
    for _ in range(3):  # startup and two reloads
        [default] = configured_destinations(load_settings())
        assert default.problem is None and default.url == "http://192.168.9.9:3000/api"
    assert len([r for r in caplog.records if "plain http to 192.168.9.9" in r.getMessage()]) == 1


def test_project_api_key_replaces_the_default_key_for_its_paths(home: Path) -> None:
    (home / ".wakatime.cfg").write_text(
        '[settings]\napi_key = k_default\n[project_api_key]\n^/work/ = "k_work"\n'
    )
    found = configured_destinations(load_settings())
    router = Router(tuple(found))
    assert [(d.name, d.key) for d in found] == [
        (DEFAULT, "k_default"),
        ("project_api_key:^/work/", "k_work"),
    ]
    assert found[1].url == found[0].url
    assert router.route(Heartbeat(entity="/work/a.py", time=1.7e9)) == ["project_api_key:^/work/"]
    assert router.route(Heartbeat(entity="/home/a.py", time=1.7e9)) == [DEFAULT]


def test_a_plugins_server(home: Path) -> None:
    (home / "agent.toml").write_text(
        '[api]\nurl = "https://wakatime.com/api/v1"\nkey = "k"\n[[destinations]]\n'
        'name = "company"\nurl = "https://c.example/api"\nkey = "kc"\n'
    )
    found = configured_destinations(load_settings())
    assert plugin_server("https://wakatime.com/api/v1/", "kp", found) is None  # the default's
    assert plugin_server("https://c.example/api", "kp", found) == found[1]  # keeps its own key
    own = plugin_server("http://192.168.1.5:3000/api/users/current/heartbeats", "kp", found)
    assert own is not None
    assert (own.name, own.url, own.key, own.problem) == (
        "plugin:http://192.168.1.5:3000/api",
        "http://192.168.1.5:3000/api",
        "kp",
        None,
    )
    router = Router((*found, own))
    named = Heartbeat(entity="/a.py", time=1.7e9, server=own.name)
    assert router.route(named) == [own.name, "company"]  # in the default's place
    others = Heartbeat(entity="/a.py", time=1.7e9)  # the watcher's, another plugin's
    assert router.route(others) == [DEFAULT, "company"]  # never with that plugin's key
    with pytest.raises(ValueError, match="not an http"):
        plugin_server("ftp://x/api", "kp", found)
