"""The wakatime-cli-compatible command as a subprocess: daemon up and down, silence, exit
codes, `--today`, the offline queue commands, `~/.wakatime.cfg`, and the lean fast path."""

from __future__ import annotations

import base64
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from agentproc import AGENT, WAKATIME_CLI, AgentProcess, agent_env, git_repo
from inprocess import InProcessAgent
from wakaserver import FakeWakaTime

from agent.ipc.server import MAX_CONNECTIONS

VIM_UA = "vim/900 vim-wakatime/11.2.0"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_cli(
    argv: list[str],
    env: dict[str, str],
    stdin: str | None = None,
    program: str = AGENT,
    cwd: Path | None = None,
) -> Result:
    """Run the command as a plugin does: with stdin a pipe that is left OPEN after the
    optional line (vim's job never closes it), so a read to end of file would hang."""
    proc = subprocess.Popen(
        [program, *argv],
        env=env,
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        if stdin is not None:
            proc.stdin.write(stdin.encode())
            proc.stdin.flush()
        code = proc.wait(timeout=60)
        return Result(code, proc.stdout.read().decode(), proc.stderr.read().decode())
    finally:
        proc.kill()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()


@dataclass
class Setup:
    env: dict[str, str]
    repo: Path
    root: Path

    def queued(self) -> list[dict]:
        """Payloads in the SQLite queue, oldest first."""
        with sqlite3.connect(self.env["HEARTBEAT_AGENT_QUEUE__PATH"]) as db:
            return [json.loads(row[0]) for row in db.execute("SELECT payload FROM heartbeats")]

    def waiting(self) -> list[dict]:
        """Heartbeats the command queued for a daemon to complete, oldest first."""
        spool = Path(self.env["HEARTBEAT_AGENT_QUEUE__PATH"]).parent / "offline-requests.jsonl"
        lines = spool.read_text().splitlines() if spool.exists() else []
        return [hb for line in lines for hb in json.loads(line)["request"]["heartbeats"]]

    @property
    def log(self) -> str:
        path = self.root / "home" / ".wakatime" / "wakatime.log"
        return path.read_text() if path.exists() else ""


@pytest.fixture
def setup(tmp_path: Path, waka: FakeWakaTime) -> Setup:
    repo = git_repo(tmp_path / "shop", branch="main")
    (repo / "cart.py").write_text("a = 1\nb = 2\n")
    return Setup(agent_env(tmp_path, waka.url), repo, tmp_path)


@pytest.fixture
def daemon(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessAgent]:
    with InProcessAgent(setup.env, setup.repo, monkeypatch) as agent:
        yield agent


def saved(path: Path) -> str:
    """A file that exists (wakatime-cli, and the command, skip entities that do not)."""
    path.touch()
    return str(path)


def vim_argv(entity: Path, *more: str) -> list[str]:
    return ["--entity", str(entity), "--plugin", VIM_UA, "--lineno", "2", "--write", *more]


def test_heartbeat_with_extras_through_the_daemon_is_silent(
    setup: Setup, daemon: InProcessAgent, waka: FakeWakaTime
) -> None:
    entity = setup.repo / "cart.py"
    extras = [
        {"entity": str(entity), "timestamp": time.time() - 30, "cursorpos": "4"},
        {"entity": str(entity), "category": "sleeping", "timestamp": time.time() - 20},
    ]

    result = run_cli(vim_argv(entity, "--extra-heartbeats"), setup.env, json.dumps(extras) + "\n")

    assert (result.code, result.stdout, result.stderr) == (0, "", "")
    received = sorted(waka.wait_for(2), key=lambda hb: hb["time"])
    assert [hb.get("cursorpos") for hb in received] == [4, None]
    assert received[1]["lineno"] == 2 and received[1]["is_write"] is True
    assert {hb["project"] for hb in received} == {"shop"}
    assert "extra heartbeat 1 dropped: heartbeats[2].category" in setup.log


def test_no_daemon_writes_the_queue_and_exits_102(setup: Setup, waka: FakeWakaTime) -> None:
    entity = setup.repo / "cart.py"

    result = run_cli(vim_argv(entity, "--extra-heartbeats"), setup.env, "[]\n")

    assert (result.code, result.stdout, result.stderr) == (102, "", "")
    [waiting] = setup.waiting()
    assert (waiting["entity"], waiting["user_agent"], waiting["lineno"]) == (str(entity), VIM_UA, 2)
    with AgentProcess(setup.env, setup.repo) as process:  # the daemon completes and sends it
        [sent] = waka.wait_for(1)
        assert process.stop() == 0
    assert sent["entity"] == str(entity)
    assert (sent["project"], sent["branch"], sent["language"]) == ("shop", "main", "Python")
    assert sent["user_agent"].endswith(VIM_UA)
    assert setup.waiting() == []


@pytest.mark.parametrize(("key", "code"), [([], 104), (["--key", "waka_from_plugin"], 102)])
def test_no_daemon_and_no_key_exits_104(tmp_path: Path, key: list[str], code: int) -> None:
    env = agent_env(tmp_path, api_key=None)

    result = run_cli(["--entity", saved(tmp_path / "a.py"), "--plugin", VIM_UA, *key], env)

    assert (result.code, result.stdout, result.stderr) == (code, "", "")


@pytest.fixture
def keyless(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Setup, InProcessAgent]]:
    """A daemon started with no API key at all (its delivery paused for want of one)."""
    setup.env.pop("HEARTBEAT_AGENT_API__KEY")
    with InProcessAgent(setup.env, setup.repo, monkeypatch) as agent:
        agent.wait_for_log("delivery paused: no API key")
        yield setup, agent


def test_daemon_without_a_key_says_104_until_the_plugin_writes_one(
    keyless: tuple[Setup, InProcessAgent], waka: FakeWakaTime
) -> None:
    """What VS Code does on 104: ask its user for a key, write it to ~/.wakatime.cfg, go on.
    The daemon reads the file again and delivers everything it kept."""
    setup, daemon = keyless
    entity = setup.repo / "cart.py"

    first = run_cli(vim_argv(entity), setup.env)
    assert (first.code, first.stdout, first.stderr) == (104, "", "")
    assert "no API key the server accepts" in setup.log

    assert run_cli(["--config-write", "api_key=waka_test_key"], setup.env).code == 0
    run_cli(vim_argv(entity, "--lineno", "9"), setup.env)  # stored, whatever it says
    daemon.wait_for_log("configuration reloaded")
    assert len(waka.wait_for(2)) == 2  # both kept heartbeats went out

    last = run_cli(vim_argv(entity), setup.env)
    assert (last.code, last.stdout, last.stderr) == (0, "", "")


def test_a_plugins_key_serves_a_daemon_that_has_none_and_is_never_logged(
    keyless: tuple[Setup, InProcessAgent], waka: FakeWakaTime
) -> None:
    """VS Code passes --key when WAKATIME_API_KEY is set in the editor's environment only."""
    setup, daemon = keyless
    entity = setup.repo / "cart.py"

    result = run_cli(vim_argv(entity, "--key", "waka_test_key"), setup.env)

    assert (result.code, result.stdout, result.stderr) == (0, "", "")
    [received] = waka.wait_for(1)
    assert received["entity"] == str(entity)
    assert "waka_test_key" not in daemon.log + setup.log


def test_the_daemons_own_key_wins_over_a_plugins(
    setup: Setup, daemon: InProcessAgent, waka: FakeWakaTime
) -> None:
    entity = setup.repo / "cart.py"

    result = run_cli(vim_argv(entity, "--key", "waka_some_other_key"), setup.env)

    assert result.code == 0
    waka.wait_for(1)
    [post] = [r for r in waka.requests if r.method == "POST"]
    expected = "Basic " + base64.b64encode(b"waka_test_key").decode()
    assert post.headers["authorization"] == expected


def test_with_every_connection_taken_the_command_queues_offline(
    setup: Setup, daemon: InProcessAgent, waka: FakeWakaTime
) -> None:
    """A daemon at MAX_CONNECTIONS turns a plugin away before reading a byte: its
    heartbeat goes into the queue directly, as with no daemon, and is delivered later."""
    path = os.path.join(setup.env["XDG_RUNTIME_DIR"], "heartbeat-agent", "agent.sock")
    held: list[socket.socket] = []
    try:
        for _ in range(MAX_CONNECTIONS):  # each answered once, so the daemon has them all
            held.append(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            held[-1].connect(path)
            held[-1].sendall(b'{"op":"ping"}\n')
            assert held[-1].recv(4096).startswith(b'{"ok":true')

        result = run_cli(vim_argv(setup.repo / "cart.py"), setup.env)

        assert (result.code, result.stdout, result.stderr) == (102, "", "")
        assert len(setup.waiting()) == 1
    finally:
        for sock in held:
            sock.close()
    assert run_cli(vim_argv(setup.repo / "cart.py", "--lineno", "5"), setup.env).code == 0
    assert run_cli(["queue", "flush"], setup.env).code == 0  # takes the waiting one now
    assert len(waka.wait_for(2)) == 2


def test_daemon_waiting_to_retry_the_server_says_112(
    setup: Setup, daemon: InProcessAgent, waka: FakeWakaTime
) -> None:
    entity = setup.repo / "cart.py"
    waka.fail_next(count=1, status=503)
    assert run_cli(vim_argv(entity), setup.env).code == 0  # nothing has failed yet
    daemon.wait_for_log("retrying in")

    result = run_cli(vim_argv(entity, "--lineno", "3"), setup.env)

    assert (result.code, result.stdout, result.stderr) == (112, "", "")
    assert len(setup.queued()) == 2  # stored all the same


def test_a_broken_config_still_queues_the_heartbeat(tmp_path: Path) -> None:
    """The plugin's heartbeat is not the config's fault: it waits in the queue (the
    environment's queue path still holds) and the log names the broken file."""
    env = agent_env(tmp_path)
    (tmp_path / "bad.toml").write_text("[api\n")
    env["HEARTBEAT_AGENT_CONFIG"] = str(tmp_path / "bad.toml")
    setup = Setup(env, tmp_path, tmp_path)

    result = run_cli(["--entity", saved(tmp_path / "a.py")], env)

    assert (result.code, result.stdout, result.stderr) == (102, "", "")
    assert [hb["entity"] for hb in setup.waiting()] == [str(tmp_path / "a.py")]
    assert f"configuration: {tmp_path / 'bad.toml'}: invalid TOML" in setup.log


def test_an_invalid_main_heartbeat_exits_1_but_its_extras_count(
    setup: Setup, daemon: InProcessAgent, waka: FakeWakaTime
) -> None:
    extra = saved(setup.root / "extra.txt")
    extras = [{"entity": extra, "time": time.time()}]

    result = run_cli(
        ["--entity", saved(setup.root / "main.txt"), "--category", "napping", "--extra-heartbeats"],
        setup.env,
        json.dumps(extras) + "\n",
    )

    assert (result.code, result.stdout, result.stderr) == (1, "", "")
    assert [hb["entity"] for hb in waka.wait_for(1)] == [extra]


@pytest.mark.parametrize(
    ("program", "expected"), [(AGENT, "0.1.0\n"), (WAKATIME_CLI, "<local-build>\n")]
)
def test_version_depends_on_the_name(setup: Setup, program: str, expected: str) -> None:
    result = run_cli(["--version"], setup.env, program=program)

    assert (result.code, result.stdout, result.stderr) == (0, expected, "")


@pytest.mark.parametrize(
    "argv",
    [
        ["--file-experts", "--entity", "/tmp/a.py"],
        ["--today-goal", "abc"],
        ["--sync-ai-activity", "--plugin", "vscode/1 vscode-wakatime/25"],
        ["--metrics"],
        ["--send-diagnostics-on-errors"],
    ],
)
def test_team_and_ai_features_are_answered_harmlessly(setup: Setup, argv: list[str]) -> None:
    result = run_cli(argv, setup.env)

    assert (result.code, result.stdout, result.stderr) == (0, "", "")
    assert not Path(setup.env["HEARTBEAT_AGENT_QUEUE__PATH"]).exists()


def test_unknown_flags_are_ignored(
    setup: Setup, daemon: InProcessAgent, waka: FakeWakaTime
) -> None:
    entity = saved(setup.root / "u.txt")
    result = run_cli(
        ["--shiny-new-flag", "value", "--entity", entity, "--verbose", "--frobnicate"],
        setup.env,
    )

    assert (result.code, result.stdout, result.stderr) == (0, "", "")
    assert waka.wait_for(1)[0]["entity"] == entity
    assert "ignored unknown flags: --shiny-new-flag value --frobnicate" in setup.log


def test_offline_count_and_print_without_a_daemon(setup: Setup) -> None:
    start = time.time() - 300  # recent: the daemon's rules refuse a year-old heartbeat
    for index in range(3):
        entity = saved(setup.root / f"q{index}.txt")
        run_cli(["--entity", entity, "--time", str(start + index)], setup.env)

    count = run_cli(["--offline-count"], setup.env)
    printed = run_cli(["--print-offline-heartbeats", "2"], setup.env)
    synced = run_cli(["--sync-offline-activity", "0"], setup.env)

    assert (count.code, count.stdout) == (0, "3\n")
    assert printed.code == 0
    assert [hb["entity"] for hb in json.loads(printed.stdout)] == [
        str(setup.root / "q0.txt"),
        str(setup.root / "q1.txt"),
    ]
    assert (synced.code, synced.stdout, synced.stderr) == (102, "", "")


def test_offline_count_and_sync_with_a_daemon(
    setup: Setup, daemon: InProcessAgent, waka: FakeWakaTime
) -> None:
    run_cli(["--entity", saved(setup.root / "one.txt")], setup.env)
    waka.wait_for(1)

    count = run_cli(["--offline-count"], setup.env)
    synced = run_cli(["--sync-offline-activity", "0"], setup.env)

    assert (count.code, count.stdout) == (0, "0\n")
    assert (synced.code, synced.stdout, synced.stderr) == (0, "", "")


def test_config_read_and_write_keep_the_rest_of_the_file(setup: Setup) -> None:
    cfg = Path(setup.env["HOME"]) / ".wakatime.cfg"
    cfg.write_text("# my settings\n[settings]\napi_key = waka_abc\ndebug = false\n\n[git]\nx = 1\n")

    read = run_cli(["--config-read", "api_key"], setup.env)
    wrote = run_cli(
        ["--config-write", "debug=true", "--config-write", "hidefilenames=1"], setup.env
    )
    wrote_git = run_cli(["--config-section", "git", "--config-write", "y=2"], setup.env)
    missing = run_cli(["--config-read", "nothing"], setup.env)
    elsewhere = run_cli(["--config", str(cfg), "--config-section", "git", "--config-read", "y"], {})

    assert (read.code, read.stdout, read.stderr) == (0, "waka_abc\n", "")
    assert (wrote.code, wrote.stdout, wrote_git.code) == (0, "", 0)
    assert (missing.code, missing.stdout) == (110, "")
    assert (elsewhere.code, elsewhere.stdout) == (0, "2\n")
    assert cfg.read_text() == (
        "# my settings\n[settings]\napi_key = waka_abc\ndebug = true\nhidefilenames = 1\n\n"
        "[git]\nx = 1\ny = 2\n"
    )


def write_history(setup: Setup) -> None:
    """Today, 20 minutes of coding and 10 of debugging, queued without a daemon."""
    start = time.time() - 1800
    extras = [
        {
            "entity": str(setup.repo / "cart.py"),
            "timestamp": start + minute * 60,
            "category": "coding" if minute < 20 else "debugging",
        }
        for minute in range(0, 31, 2)
    ]
    result = run_cli(
        [
            "--entity",
            str(setup.repo / "cart.py"),
            "--time",
            str(start),
            "--plugin",
            VIM_UA,
            "--extra-heartbeats",
        ],
        setup.env,
        json.dumps(extras) + "\n",
    )
    assert result.code == 102


@pytest.mark.parametrize("with_daemon", [False, True], ids=["no-daemon", "daemon"])
def test_today_in_its_three_shapes(setup: Setup, with_daemon: bool) -> None:
    setup.env["HEARTBEAT_AGENT_API__URL"] = "http://127.0.0.1:9/api/v1"  # local figures only
    write_history(setup)
    process = AgentProcess(setup.env, setup.repo).start() if with_daemon else None
    try:
        text = run_cli(["--today"], setup.env)
        hidden = run_cli(["--today", "--today-hide-categories", "true"], setup.env)
        as_json = run_cli(["--today", "--output", "json"], setup.env)
        raw = run_cli(["--today", "--output=raw-json"], setup.env)
    finally:
        if process is not None:
            assert process.stop() == 0

    assert (text.code, text.stdout, text.stderr) == (0, "20 mins Coding, 10 mins Debugging\n", "")
    assert hidden.stdout == "30 mins\n"
    assert json.loads(as_json.stdout) == {"text": "30 mins", "has_team_features": False}
    data = json.loads(raw.stdout)["data"]
    assert data["grand_total"] == {
        "decimal": "0.50",
        "digital": "0:30",
        "hours": 0,
        "minutes": 30,
        "text": "30 mins",
        "total_seconds": pytest.approx(1800),
    }
    assert [c["name"] for c in data["categories"]] == ["Coding", "Debugging"]
    assert [(p["name"], p["percent"]) for p in data["projects"]] == [("shop", 100.0)]
    assert data["languages"][0]["name"] == "Python"
    assert data["editors"][0]["name"] == "Vim"
    assert data["range"]["text"] == "Today"


FAST_PATH_PROBE = """
import sys
sys.argv[0] = "wakatime-cli"
from agent.cli import main
code = main(sys.argv[1:])
heavy = sorted(
    name for name in sys.modules
    if name.split(".")[0] in {"pydantic", "httpx", "watchdog", "git", "sqlite3", "re", "enum",
                              "typing", "dataclasses", "pathlib", "json", "socket", "logging"}
    or name in {"agent.pipeline.heartbeat", "agent.config", "agent.pipeline.store"}
)
sys.stdout.write(f"{code} {heavy}")
"""


def probe_imports(setup: Setup) -> Result:
    """The command with FAST_PATH_PROBE: its exit code and the heavy modules it loaded."""
    return run_cli(
        ["-c", FAST_PATH_PROBE, "--entity", str(setup.repo / "cart.py"), "--extra-heartbeats"],
        setup.env,
        "[]\n",
        program=sys.executable,
        cwd=Path(__file__).resolve().parent.parent,
    )


def test_the_fast_path_imports_nothing_heavy(setup: Setup, daemon: InProcessAgent) -> None:
    result = probe_imports(setup)

    assert (result.stdout, result.stderr) == ("0 []", "")


def test_without_a_daemon_the_fallback_imports_nothing_heavy_either(setup: Setup) -> None:
    """No daemon: the request goes to the spool with the standard library's startup set
    (and fcntl); no settings, store, detection or sqlite3."""
    result = probe_imports(setup)

    assert (result.stdout, result.stderr) == ("102 []", "")
    assert [hb["entity"] for hb in setup.waiting()] == [str(setup.repo / "cart.py")]


def test_the_launcher_runs_without_site_and_still_falls_back(setup: Setup) -> None:
    env = {**setup.env, "PATH": f"{setup.root / 'home' / '.local' / 'bin'}:{os.environ['PATH']}"}
    install = run_cli(["plugins", "install"], env)
    launcher = setup.root / "home" / ".local" / "bin" / "wakatime-cli"

    version = run_cli(["--version"], env, program=str(launcher))
    offline = run_cli(["--entity", str(setup.repo / "cart.py")], env, program=str(launcher))

    assert install.code == 0, install.stderr
    assert launcher.read_text().startswith(f"#!{sys.executable} -S\n")
    assert (version.code, version.stdout) == (0, "<local-build>\n")
    assert (offline.code, offline.stdout, offline.stderr) == (102, "", "")
    assert setup.waiting()[0]["entity"] == str(setup.repo / "cart.py")
