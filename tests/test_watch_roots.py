"""The watcher never takes a home folder whole: it finds the code folders in it, says in
`agent status` what it watches and why, and picks up watch folders created after start."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from agentproc import AGENT, SHORT_HOLD, agent_env, git_repo
from inprocess import InProcessAgent
from wakaserver import FakeWakaTime

from agent.sources.watch_roots import plan_watch

SKIP = ("node_modules", "build")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home folder as people have them: a dotfiles repository at its top, histories,
    caches, downloads, and code at several depths."""
    home = tmp_path / "home"
    git_repo(home)  # ~/.git: the home folder itself is a (dotfiles) repository
    (home / ".bash_history").write_text("ls\n")
    (home / ".cache" / "pip").mkdir(parents=True)
    (home / "Downloads").mkdir()
    (home / "Downloads" / "report.pdf").write_bytes(b"%PDF")
    git_repo(home / "code" / "app")
    git_repo(home / ".dotfiles")  # hidden: never searched
    git_repo(home / "code" / "node_modules" / "left-pad")  # an ignored folder: never searched
    (home / "work" / "site").mkdir(parents=True)
    (home / "work" / "site" / ".wakatime-project").write_text("site\n")
    git_repo(home / "src" / "github.com" / "me" / "tool")  # four levels down
    git_repo(home / "a" / "b" / "c" / "d" / "too-deep")
    return home


def test_a_home_folder_is_never_watched_whole(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(home))
    expected = [
        (str(home / "code" / "app"), "a code folder in your home folder (holds .git)"),
        (
            str(home / "src" / "github.com" / "me" / "tool"),
            "a code folder in your home folder (holds .git)",
        ),
        (
            str(home / "work" / "site"),
            "a code folder in your home folder (holds .wakatime-project)",
        ),
    ]
    for configured, started_in in (([], str(home)), ([], "/"), (["~"], "/tmp"), ([str(home)], "/")):
        plan = plan_watch(configured, started_in, str(home), SKIP)
        assert [(root.path, root.reason) for root in plan.roots] == expected, configured
        assert plan.waiting == ()
        assert (
            len(plan.notes) == 1
            and "watching the code folders in your home folder" in plan.notes[0]
        )


def test_configured_and_starting_folders_are_watched_as_they_are(
    home: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    plan = plan_watch([], str(elsewhere), str(home))
    assert [(r.path, r.reason) for r in plan.roots] == [
        (str(elsewhere), "the folder `agent run` started in")
    ]
    later = home / "later"
    plan = plan_watch([str(home / "code"), str(home / "code" / "app"), str(later)], "/", str(home))
    assert [(r.path, r.reason) for r in plan.roots] == [
        (str(home / "code"), "configured in [watch] paths")
    ]
    assert plan.waiting == (str(later),)
    assert plan.notes == ()


def status(env: dict[str, str]) -> dict:
    done = subprocess.run(
        [AGENT, "status", "--json"], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_until(check, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    """Poll a condition nothing announces (the daemon's rescan runs on its own timer)."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return found


def test_agent_run_in_the_home_folder_watches_only_its_code(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = agent_env(tmp_path, waka.url, **SHORT_HOLD)  # no watch paths; started in $HOME
    home = Path(env["HOME"])
    app = git_repo(home / "code" / "app")
    with InProcessAgent(env, home, monkeypatch) as agent:
        report = status(env)
        (home / ".bash_history").write_text("ls\n")
        (home / "Downloads").mkdir()
        (home / "Downloads" / "report.pdf").write_bytes(b"%PDF")
        (app / "main.py").write_text("print(1)\n")
        [sent] = waka.wait_for(1, timeout=15)
        human = subprocess.run(
            [AGENT, "status"], env=env, capture_output=True, text=True, timeout=30
        ).stdout
        assert agent.stop() == 0
    assert report["watching"] == [str(app)]
    assert report["watch_roots"] == [
        {"path": str(app), "reason": "a code folder in your home folder (holds .git)"}
    ]
    assert sent["entity"] == str(app / "main.py")
    assert f"{app}  (a code folder in your home folder (holds .git))" in human
    assert "is your home folder: watching the code folders in your home folder instead" in human


def test_watch_folders_created_after_start_are_picked_up(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = agent_env(tmp_path, waka.url, HEARTBEAT_AGENT_WATCH__RESCAN_INTERVAL="0.1", **SHORT_HOLD)
    home = Path(env["HOME"])
    later = home / "later"
    env["HEARTBEAT_AGENT_WATCH__PATHS"] = f"{later},~"  # one plain string, two paths
    with InProcessAgent(env, tmp_path, monkeypatch) as agent:
        assert status(env)["watch_waiting"] == [str(later)]
        later.mkdir()
        repo = git_repo(home / "fresh-clone")
        wait_until(lambda: set(status(env)["watching"]) == {str(later), str(repo)})
        (later / "notes.md").write_text("# later\n")
        (repo / "lib.rs").write_text("fn main() {}\n")
        received = waka.wait_for(2, timeout=15)
        assert agent.stop() == 0
    assert {hb["entity"] for hb in received} == {str(later / "notes.md"), str(repo / "lib.rs")}


def test_service_install_says_what_it_will_watch(tmp_path: Path) -> None:
    env = agent_env(tmp_path)
    home = Path(env["HOME"])
    repo = git_repo(home / "projects" / "shop")
    (home / "Downloads").mkdir()
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    done = subprocess.run(
        [AGENT, "service", "install"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert (
        f"It will watch:\n  {repo}  (a code folder in your home folder (holds .git))\n"
        in done.stdout
    )
    assert f"  {home}  " not in done.stdout
    os.remove(Path(env["XDG_CONFIG_HOME"]) / "systemd" / "user" / "heartbeat-agent.service")
