"""Settings: sources, precedence, the ~/.wakatime.cfg fallback, and errors that name the culprit."""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest
from agentproc import AGENT, agent_env

from agent.config import DEFAULT_API_URL, ConfigError, Settings, load_settings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: no HEARTBEAT_AGENT_* or WAKATIME_* variables, HOME in tmp."""
    env = agent_env(tmp_path, api_key=None)
    for key in list(os.environ):
        if key.startswith(("HEARTBEAT_AGENT_", "WAKATIME_", "XDG_")):
            monkeypatch.delenv(key)
    for key in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(key, env[key])
    return Path(env["HOME"])


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults(home: Path) -> None:
    settings = load_settings()
    assert settings.api.url == DEFAULT_API_URL
    assert settings.api.key is None
    assert settings.watch.paths == []
    assert settings.heartbeats.debounce_seconds == 2.0
    assert settings.database_path().name == "heartbeats.sqlite3"
    assert str(home) in str(settings.database_path())


def test_toml_file_in_the_user_config_dir(home: Path) -> None:
    write(home / ".config/heartbeat-agent/config.toml", '[api]\nkey = "from-file"\ntimeout = 5\n')
    settings = load_settings()
    assert settings.api.key is not None
    assert settings.api.key.get_secret_value() == "from-file"
    assert settings.api.timeout == 5


def test_environment_beats_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(home / "c.toml", '[api]\nkey = "from-file"\n[watch]\npaths = ["/a"]\n')
    monkeypatch.setenv("HEARTBEAT_AGENT_API__KEY", "from-env")
    monkeypatch.setenv("HEARTBEAT_AGENT_WATCH__PATHS", '["/b", "/c"]')
    settings = load_settings(config)
    assert settings.api.key.get_secret_value() == "from-env"  # type: ignore[union-attr]
    assert [str(p) for p in settings.watch.paths] == ["/b", "/c"]


def test_config_env_variable_names_the_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(home / "elsewhere.toml", '[api]\nurl = "https://wakapi.example/api"\n')
    monkeypatch.setenv("HEARTBEAT_AGENT_CONFIG", str(config))
    assert load_settings().api.url == "https://wakapi.example/api"


def test_flags_beat_everything(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTBEAT_AGENT_API__URL", "https://env.example/api")
    settings = load_settings(api={"url": "https://flag.example/api"})
    assert settings.api.url == "https://flag.example/api"


def test_wakatime_cfg_gives_key_and_url_with_zero_setup(home: Path) -> None:
    write(
        home / ".wakatime.cfg",
        "[settings]\napi_key = waka_123\napi_url = https://wakapi.example/api\ndebug = false\n",
    )
    settings = load_settings()
    assert settings.api.key.get_secret_value() == "waka_123"  # type: ignore[union-attr]
    assert settings.api.url == "https://wakapi.example/api"


def test_wakatime_home_and_env_key(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = home / "other"
    write(other / ".wakatime.cfg", "[settings]\napi_key = from-wakatime-home\n")
    monkeypatch.setenv("WAKATIME_HOME", str(other))
    assert load_settings().api.key.get_secret_value() == "from-wakatime-home"  # type: ignore[union-attr]
    monkeypatch.setenv("WAKATIME_API_KEY", "from-wakatime-env")
    assert load_settings().api.key.get_secret_value() == "from-wakatime-env"  # type: ignore[union-attr]


def test_own_settings_beat_wakatime_cfg(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(home / ".wakatime.cfg", "[settings]\napi_key = old\napi_url = https://old.example/api\n")
    write(home / ".config/heartbeat-agent/config.toml", '[api]\nkey = "mine"\n')
    settings = load_settings()
    assert settings.api.key.get_secret_value() == "mine"  # type: ignore[union-attr]
    assert settings.api.url == "https://old.example/api"  # the URL was not set elsewhere
    monkeypatch.setenv("HEARTBEAT_AGENT_API__URL", "https://new.example/api")
    assert load_settings().api.url == "https://new.example/api"


def test_wakatime_cfg_proxy_certs_and_timeout_reach_delivery(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A WakaTime user behind a proxy, with a company CA, needs no setup either."""
    (home / "certs").mkdir()
    (home / "certs" / "company.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    write(
        home / ".wakatime.cfg",
        "[settings]\napi_key = k\nproxy = http://me:secret@proxy.corp:3128\n"
        "ssl_certs_file = ~/certs/company.pem\ntimeout = 45\n",
    )
    api = load_settings().api
    assert (api.proxy, api.ca_bundle, api.timeout) == (
        "http://me:secret@proxy.corp:3128",
        home / "certs" / "company.pem",
        45.0,
    )
    write(home / ".config/heartbeat-agent/config.toml", "[api]\ntimeout = 10\n")
    monkeypatch.setenv("HEARTBEAT_AGENT_API__PROXY", "http://other:8080")
    api = load_settings().api
    assert (api.proxy, api.timeout) == ("http://other:8080", 10.0)  # own settings first


@pytest.mark.parametrize(
    "lines",
    [
        "proxy = corp\\\\me:secret\nssl_certs_file = ~/missing.pem\ntimeout = soon\n",
        "proxy = \nssl_certs_file = \ntimeout = 0\n",
    ],
)
def test_wakatime_cfg_network_values_that_cannot_serve_are_left_out(home: Path, lines: str) -> None:
    """An NTLM proxy httpx cannot speak, a CA file that is not there, a timeout that is not
    a whole number (wakatime-cli ignores that one too): the defaults apply, delivery runs."""
    write(home / ".wakatime.cfg", "[settings]\napi_key = k\n" + lines)
    api = load_settings().api
    assert (api.proxy, api.ca_bundle, api.timeout) == (None, None, 30.0)


def test_vault_command_from_wakatime_cfg(home: Path) -> None:
    write(home / ".wakatime.cfg", "[settings]\napi_key_vault_cmd = pass show waka\n")
    settings = load_settings()
    assert settings.api.key is None
    assert settings.api.key_command == "pass show waka"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[api]\ntimeout = 'soon'\n", "api.timeout: Input should be a valid number"),
        ("[api]\nurl = 'ftp://wakatime.com/api/v1'\n", "api.url: is not an http(s) URL"),
        ("[watch]\npathz = []\n", "watch.pathz: unknown setting"),
        ("[heartbeats]\nstorm_files = 0\n", "heartbeats.storm_files: Input should be greater"),
        ("[api\nkey=1\n", "invalid TOML"),
    ],
)
def test_bad_file_values_name_file_and_key(home: Path, text: str, expected: str) -> None:
    config = write(home / "bad.toml", text)
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert str(error.value).startswith(f"{config}: ")
    assert expected in str(error.value)


def test_bad_environment_value_names_the_variable(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEARTBEAT_AGENT_QUEUE__BATCH_SIZE", "many")
    with pytest.raises(ConfigError, match=r"^environment HEARTBEAT_AGENT_QUEUE__BATCH_SIZE: "):
        load_settings()


def test_missing_named_file(home: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(home / "nope.toml")


def test_loopback_http_is_allowed(home: Path) -> None:
    settings = load_settings(api={"url": "http://127.0.0.1:3000/api/"})
    assert settings.api.url == "http://127.0.0.1:3000/api"
    assert load_settings(api={"url": "http://[::1]:3000/api"}).api.url == "http://[::1]:3000/api"


def test_example_file_documents_every_default() -> None:
    example = tomllib.loads(
        Path(__file__).parent.parent.joinpath("config.example.toml").read_text()
    )
    defaults = Settings().model_dump(mode="json")
    for section, values in example.items():
        for key, value in values.items():
            assert defaults[section][key] == value, f"{section}.{key}"
    for section, values in defaults.items():
        if isinstance(values, dict) and section != "projects":
            documented = Path(__file__).parent.parent.joinpath("config.example.toml").read_text()
            for key in values:
                assert f"{key} =" in documented, f"{section}.{key} is not in config.example.toml"


def test_agent_run_with_bad_config_says_one_line(tmp_path: Path) -> None:
    config = write(tmp_path / "bad.toml", "[api]\ntimeout = -1\n")
    done = subprocess.run(
        [AGENT, "run", "--config", str(config)],
        env=agent_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 78
    assert done.stderr.strip().count("\n") == 0
    assert f"{config}: api.timeout: Input should be greater than 0" in done.stderr
    assert "Traceback" not in done.stderr
