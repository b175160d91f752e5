"""~/.wakatime.cfg as a WakaTime user has it, with the real daemon and command: quoted
values, a plain-http server on the LAN, a key added while the daemon runs, a garbled line.
Never is a heartbeat lost over a URL or a configuration mistake."""

from __future__ import annotations

import base64
import json
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
from agentproc import AGENT, SHORT_HOLD, WAKATIME_CLI, AgentProcess, agent_env, git_repo
from inprocess import InProcessAgent
from test_compat_command import run_cli
from wakaserver import FakeWakaTime

# With ~/.wakatime.cfg present the watcher's saves wait for plugins' late reports
# (agent.sources.policy, plugin_wait), after the watcher's hold; these tests are about the
# cfg, not those waits.
SAVES_AT_ONCE = {"HEARTBEAT_AGENT_HEARTBEATS__PLUGIN_WAIT": "0", **SHORT_HOLD}


def lan_url(waka: FakeWakaTime) -> str:
    """The fake server under an address that is not loopback by name (0.0.0.0 reaches this
    machine on Linux): plain http to "another host", without leaving this one."""
    return waka.url.replace("127.0.0.1", "0.0.0.0")


def queued(env: dict[str, str]) -> list[dict]:
    """Stored heartbeats, after those waiting for a daemon (offline-requests.jsonl) are
    taken: `--offline-count` takes them when no daemon runs."""
    subprocess.run([WAKATIME_CLI, "--offline-count"], env=env, capture_output=True, check=True)
    with sqlite3.connect(env["HEARTBEAT_AGENT_QUEUE__PATH"]) as db:
        return [json.loads(row[0]) for row in db.execute("SELECT payload FROM heartbeats")]


def status(env: dict[str, str]) -> dict:
    done = subprocess.run(
        [AGENT, "status", "--json"], env=env, capture_output=True, text=True, timeout=30
    )
    return json.loads(done.stdout)


def test_a_lan_http_url_and_quoted_key_in_wakatime_cfg_just_work(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = git_repo(tmp_path / "shop")
    env = agent_env(tmp_path, api_key=None, **SAVES_AT_ONCE)
    (tmp_path / "home" / ".wakatime.cfg").write_text(
        f"[settings]\napi_key = \"{waka.api_key}\"\napi_url = '{lan_url(waka)}'\n"
    )
    with InProcessAgent(env, repo, monkeypatch) as daemon:
        (repo / "cart.py").write_text("a = 1\n")
        [received] = waka.wait_for(1)
        assert daemon.stop() == 0
    assert received["entity"] == str(repo / "cart.py")
    [post] = [r for r in waka.requests if r.method == "POST"]
    assert post.headers["authorization"] == "Basic " + base64.b64encode(b"waka_test_key").decode()
    warnings = [line for line in daemon.lines if "plain http" in line]
    assert len(warnings) == 1 and "0.0.0.0" in warnings[0]


def test_without_a_daemon_a_lan_url_queues_the_heartbeat(tmp_path: Path) -> None:
    env = agent_env(tmp_path, api_key=None)
    (tmp_path / "home" / ".wakatime.cfg").write_text(
        "[settings]\napi_key = waka_k\napi_url = http://192.168.1.5:3000/api\n"
    )
    (tmp_path / "a.py").write_text("")

    result = run_cli(["--entity", str(tmp_path / "a.py")], env)

    assert (result.code, result.stdout, result.stderr) == (102, "", "")
    assert [hb["entity"] for hb in queued(env)] == [str(tmp_path / "a.py")]
    log = (tmp_path / "home" / ".wakatime" / "wakatime.log").read_text()
    assert ".wakatime.cfg: api_url: sending over plain http to 192.168.1.5" in log


def test_plain_http_in_the_agents_own_file_needs_the_opt_in(
    tmp_path: Path, waka: FakeWakaTime
) -> None:
    repo = git_repo(tmp_path / "shop")
    config = tmp_path / "agent.toml"
    config.write_text(f'[api]\nurl = "{lan_url(waka)}"\nkey = "{waka.api_key}"\n')
    env = agent_env(tmp_path, api_key=None, HEARTBEAT_AGENT_CONFIG=str(config))
    (repo / "cart.py").write_text("a = 1\n")
    with AgentProcess(env, repo) as daemon:
        result = run_cli(["--entity", str(repo / "cart.py")], env)
        assert (result.code, result.stdout, result.stderr) == (103, "", "")
        assert len(queued(env)) == 1
        problem = status(env)["config_problem"]
        assert problem.startswith(f"{config}: [api] url: plain http to 0.0.0.0")
        assert "allow_insecure_http" in problem and waka.api_key not in problem

        config.write_text(
            config.read_text().replace("[api]\n", "[api]\nallow_insecure_http = true\n")
        )
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGHUP)
        [received] = waka.wait_for(1)
        assert daemon.stop() == 0
    assert received["entity"] == str(repo / "cart.py")


def test_a_key_written_to_wakatime_cfg_resumes_a_watcher_only_daemon(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No SIGHUP, no plugin: the daemon notices the file changed."""
    repo = git_repo(tmp_path / "shop")
    env = agent_env(tmp_path, waka.url, api_key=None, **SAVES_AT_ONCE)
    with InProcessAgent(env, repo, monkeypatch) as daemon:
        daemon.wait_for_log("delivery paused: no API key")
        (repo / "cart.py").write_text("a = 1\n")
        (tmp_path / "home" / ".wakatime.cfg").write_text(f"[settings]\napi_key = {waka.api_key}\n")
        daemon.wait_for_log("configuration reloaded")
        [received] = waka.wait_for(1)
        assert daemon.stop() == 0
    assert received["entity"] == str(repo / "cart.py")


def test_a_garbled_wakatime_cfg_is_named_with_its_line_and_nothing_is_lost(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = git_repo(tmp_path / "shop")
    env = agent_env(tmp_path, waka.url, api_key=None)
    cfg = tmp_path / "home" / ".wakatime.cfg"
    cfg.write_text(f"[settings]\napi_key = {waka.api_key}\nhide_file_names true\n")
    (repo / "cart.py").write_text("a = 1\n")

    offline = run_cli(["--entity", str(repo / "cart.py")], env)
    # Queued for the daemon, as ever (the fallback reads only the key from the file); what
    # takes it names the line, and so does the daemon's status below.
    assert offline.code == 102 and len(queued(env)) == 1

    with InProcessAgent(env, repo, monkeypatch) as daemon:
        assert f"{cfg}, line 3" in status(env)["last_error"]
        assert run_cli(["--entity", str(repo / "cart.py")], env).code == 103
        assert len(waka.wait_for(2)) == 2  # the file's other lines still count: the key
        assert daemon.stop() == 0


def test_a_plugins_key_goes_only_to_the_server_the_plugin_named(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--api-url B --key KB`: B gets that plugin's heartbeats with KB; the daemon's own
    server neither gets them nor ever sees KB."""
    repo = git_repo(tmp_path / "shop")
    (repo / "cart.py").write_text("a = 1\n")
    env = agent_env(tmp_path, waka.url)
    with (
        FakeWakaTime(api_key="waka_plugin_key") as plugins_server,
        InProcessAgent(env, repo, monkeypatch) as daemon,
    ):
        argv = ["--entity", str(repo / "cart.py"), "--key", "waka_plugin_key"]
        result = run_cli([*argv, "--api-url", plugins_server.url + "/"], env)
        assert (result.code, result.stdout, result.stderr) == (0, "", "")
        [received] = plugins_server.wait_for(1)
        assert daemon.stop() == 0
    assert received["entity"] == str(repo / "cart.py")
    assert waka.received == []
    assert not any("waka_plugin_key" in str(r.headers) for r in waka.requests)
    assert "waka_plugin_key" not in daemon.log


def test_the_watcher_and_plugins_honour_the_cfgs_privacy_rules(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One place applies them: a save the watcher sees and a plugin's heartbeat alike."""
    repo = git_repo(tmp_path / "shop", branch="secret-branch")
    env = agent_env(tmp_path, waka.url, **SAVES_AT_ONCE)
    (tmp_path / "home" / ".wakatime.cfg").write_text(
        "[settings]\nhide_file_names = true\nexclude =\n    /private/\n"
    )
    (repo / "private").mkdir()
    (repo / "shown.py").write_text("b = 2\n")  # before the watcher starts: only the plugin's
    with InProcessAgent(env, repo, monkeypatch) as daemon:
        (repo / "private" / "diary.py").write_text("x = 1\n")
        (repo / "cart.py").write_text("a = 1\n")
        [watched] = waka.wait_for(1)
        result = run_cli(["--entity", str(repo / "shown.py"), "--hide-file-names", "false"], env)
        assert result.code == 0
        received = waka.wait_for(2)
        assert daemon.stop() == 0
    assert (watched["entity"], watched["project"], watched.get("branch")) == (
        "HIDDEN.py",
        "shop",
        None,
    )
    assert received[1]["entity"] == str(repo / "shown.py")  # the plugin's flag comes first
    assert all("diary" not in hb["entity"] for hb in waka.received)
