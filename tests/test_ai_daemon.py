"""End to end: the real daemon follows AI transcripts written while it runs, across a
restart, truncation and corrupt or half-written lines; `--sync-ai-activity` from a plugin,
with and without a daemon; the watcher's writes told apart (AI or person)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agentproc import SHORT_HOLD, WAKATIME_CLI, AgentProcess, agent_env, git_repo
from aitranscripts import (
    OpencodeStore,
    append,
    claude_edit,
    claude_path,
    claude_prompt,
    codex_patch,
    codex_path,
    codex_start,
)
from inprocess import InProcessAgent
from test_compat_command import FAST_PATH_PROBE
from wakaserver import FakeWakaTime


def cli(env: dict[str, str], *args: str) -> int:
    return subprocess.run(
        [WAKATIME_CLI, *args], env=env, stdin=subprocess.DEVNULL, timeout=60, check=False
    ).returncode


def test_daemon_follows_transcripts_as_they_grow_and_across_a_restart(
    tmp_path: Path, waka: FakeWakaTime
) -> None:
    repo = git_repo(tmp_path / "shop")
    env = agent_env(tmp_path, waka.url)
    home = Path(env["HOME"])
    now = time.time()
    transcript = claude_path(home, str(repo), "sess-1")
    append(transcript, [claude_prompt("sess-1", str(repo), "add a cart", now - 60)])  # history
    with AgentProcess(env, tmp_path) as agent:
        [prompt] = waka.wait_for(1, timeout=20)
        append(transcript, [claude_edit("sess-1", str(repo / "cart.py"), now - 50, "a", "a\nb\nc")])
        edit = waka.wait_for(2, timeout=20)[1]
        # A half-written line waits for its newline; a corrupt one is skipped.
        line = json.dumps(claude_prompt("sess-1", str(repo), "and tests", now - 40))
        append(transcript, [], tail=line[:30])
        with open(transcript, "a") as file:
            file.write(line[30:] + "\n" + '{"broken": \n')
        append(
            codex_path(home, "cx-1", now),
            [
                *codex_start("cx-1", str(repo), now - 35),
                *codex_patch(
                    "call-1",
                    "*** Begin Patch\n*** Add File: api.py\n+x = 1\n*** End Patch",
                    now - 30,
                ),
            ],
        )
        waka.wait_for(4, timeout=20)
        agent.wait_for_log("skipped 1 line(s) that are not JSON")
        assert agent.stop() == 0
    append(transcript, [claude_prompt("sess-1", str(repo), "while stopped", now - 20)])
    with AgentProcess(env, tmp_path) as agent:
        waka.wait_for(5, timeout=20)
        transcript.write_text("")  # truncated by its writer, then written again
        append(transcript, [claude_prompt("sess-1", str(repo), "after truncation", now - 10)])
        waka.wait_for(6, timeout=20)
        assert agent.stop() == 0
    received = waka.received
    assert [hb["ai_prompt_length"] for hb in received if "ai_prompt_length" in hb] == [
        len("add a cart"),
        len("and tests"),
        len("while stopped"),
        len("after truncation"),
    ]
    assert len(received) == 6  # and two edits; the transcripts are no file activity
    assert waka.duplicates == 0
    assert prompt["category"] == "ai coding" and prompt["ai_session"] == "sess-1"
    assert prompt["project"] == "shop"  # the session's folder, for an app heartbeat
    assert edit["entity"] == str(repo / "cart.py")
    assert (edit["ai_line_changes"], edit["is_write"], edit["project"]) == (2, True, "shop")
    assert edit["language"] == "Python"
    assert edit["user_agent"].endswith(" claude-code/2.0.14")
    codex = next(hb for hb in received if hb["entity"].endswith("api.py"))
    assert (codex["entity"], codex["ai_line_changes"]) == (str(repo / "api.py"), 1)
    assert codex["user_agent"].endswith("gpt/5-codex-high codex-cli/0.46.0")


def test_sync_ai_activity_without_a_daemon_then_with_one(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = agent_env(tmp_path, waka.url)
    home = Path(env["HOME"])
    now = time.time()
    transcript = claude_path(home, "/w/p", "s")
    append(transcript, [claude_prompt("s", "/w/p", "hello", now - 30)])
    plugin = ["--plugin", "claude-code-wakatime/3.0.0"]
    assert cli(env, "--sync-ai-activity", *plugin) == 0  # no daemon: read here, queued
    assert cli(env, "--sync-ai-activity", *plugin) == 0  # nothing new: nothing queued twice
    with InProcessAgent(env, tmp_path, monkeypatch) as agent:
        [queued] = waka.wait_for(1, timeout=20)
        append(transcript, [claude_prompt("s", "/w/p", "more", now - 20)])
        assert cli(env, "--sync-ai-activity", *plugin) == 0  # the daemon is nudged
        waka.wait_for(2, timeout=20)
        assert agent.stop() == 0
    assert queued["ai_prompt_length"] == 5
    assert [hb["ai_prompt_length"] for hb in waka.received] == [5, 4]


def test_sync_ai_activity_with_a_daemon_imports_nothing_heavy(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = agent_env(tmp_path, waka.url)
    with InProcessAgent(env, tmp_path, monkeypatch):
        probe = subprocess.run(
            [sys.executable, "-c", FAST_PATH_PROBE, "--sync-ai-activity"],
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert (probe.stdout, probe.stderr) == ("0 []", "")


def test_sync_ai_disabled_and_the_ai_setting_turn_it_off(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = agent_env(tmp_path, waka.url)
    home = Path(env["HOME"])
    append(claude_path(home, "/w/p", "s"), [claude_prompt("s", "/w/p", "secret", time.time())])
    (home / ".wakatime.cfg").write_text("[settings]\nsync_ai_disabled = true\n")
    assert cli(env, "--sync-ai-activity") == 0
    with InProcessAgent(env, tmp_path, monkeypatch, "--verbose") as agent:
        agent.wait_for_log("AI coding activity: off")
        assert agent.stop() == 0
    (home / ".wakatime.cfg").write_text("[settings]\n")
    env["HEARTBEAT_AGENT_AI__ENABLED"] = "false"
    assert cli(env, "--sync-ai-activity") == 0
    with InProcessAgent(env, tmp_path, monkeypatch, "--verbose") as agent:
        agent.wait_for_log("AI coding activity: off")
        assert agent.stop() == 0
    assert waka.received == []


def test_watcher_tells_ai_writes_from_a_persons(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = git_repo(tmp_path / "repo")
    env = agent_env(
        tmp_path, waka.url, HEARTBEAT_AGENT_HEARTBEATS__AUTOSAVE_INTERVAL="0.5", **SHORT_HOLD
    )
    home = Path(env["HOME"])
    with InProcessAgent(env, repo, monkeypatch) as agent:
        mine = repo / "mine.py"
        mine.write_text("a = 1\n")
        waka.wait_for(1, timeout=20)
        mine.write_text("a = 1\nb = 2\nc = 3\n")
        waka.wait_for(2, timeout=20)
        # The AI's edit: its transcript line, then the file write the watcher sees.
        append(
            claude_path(home, str(repo), "s"),
            [claude_edit("s", str(repo / "ai.py"), time.time(), "x", "x\ny")],
        )
        waka.wait_for(3, timeout=20)
        (repo / "ai.py").write_text("x\ny\n")
        waka.wait_for(4, timeout=20)
        assert agent.stop() == 0
    first, second, from_transcript, from_watcher = waka.received
    assert first["category"] == "coding" and "human_line_changes" not in first
    assert (second["category"], second["human_line_changes"]) == ("coding", 2)
    assert (second["line_additions"], second["line_deletions"]) == (2, 0)
    assert from_transcript["ai_line_changes"] == 1
    assert from_watcher["entity"] == str(repo / "ai.py")
    assert from_watcher["category"] == "ai coding"
    assert "ai_line_changes" not in from_watcher and "human_line_changes" not in from_watcher


def test_privacy_settings_apply_to_ai_heartbeats(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = git_repo(tmp_path / "secret-project")
    env = agent_env(tmp_path, waka.url, HEARTBEAT_AGENT_HEARTBEATS__HIDE_FILE_NAMES="true")
    append(
        claude_path(Path(env["HOME"]), str(repo), "s"),
        [claude_edit("s", str(repo / "payroll.py"), time.time(), "a", "a\nb")],
    )
    with InProcessAgent(env, tmp_path, monkeypatch) as agent:
        [hb] = waka.wait_for(1, timeout=20)
        assert agent.stop() == 0
    assert (hb["entity"], hb["category"], hb["ai_line_changes"]) == ("HIDDEN.py", "ai coding", 1)


def test_reload_applies_sync_ai_disabled(tmp_path: Path, waka: FakeWakaTime) -> None:
    env = agent_env(tmp_path, waka.url)
    home = Path(env["HOME"])
    transcript = claude_path(home, "/w/p", "s")
    append(transcript, [claude_prompt("s", "/w/p", "on", time.time())])
    work = tmp_path / "work"  # not watching the home folder, where the config is written
    work.mkdir()
    with AgentProcess(env, work) as agent:
        waka.wait_for(1, timeout=20)
        (home / ".wakatime.cfg").write_text("[settings]\nsync_ai_disabled = true\n")
        assert agent.proc is not None
        agent.proc.send_signal(signal.SIGHUP)
        agent.wait_for_log("AI coding activity: off")
        agent.wait_for_log("configuration reloaded")
        (home / ".wakatime.cfg").write_text("[settings]\n")
        append(transcript, [claude_prompt("s", "/w/p", "back on", time.time())])
        agent.proc.send_signal(signal.SIGHUP)
        second = waka.wait_for(2, timeout=20)[1]  # read again once it is allowed again
        assert agent.stop() == 0
    assert second["ai_prompt_length"] == len("back on")
    assert len(waka.received) == 2


def test_opencode_store_followed_through_its_wal(
    tmp_path: Path, waka: FakeWakaTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = agent_env(tmp_path, waka.url)
    repo = git_repo(tmp_path / "web")
    store = OpencodeStore(Path(env["HOME"]), str(repo))
    work = tmp_path / "work"
    work.mkdir()
    with InProcessAgent(env, work, monkeypatch) as agent:
        agent.wait_for_log("following AI transcripts in " + env["HOME"] + "/.local/share/opencode")
        now = int(time.time() * 1000)
        edit = {
            "type": "tool",
            "tool": "edit",
            "state": {
                "status": "completed",
                "input": {"filePath": str(repo / "index.ts"), "oldString": "a", "newString": "b"},
                "metadata": {"filediff": {"additions": 2, "deletions": 1}},
                "time": {"start": now, "end": now + 50},
            },
        }
        store.put("part", "prt_1", edit)  # a commit: it lands in opencode.db-wal
        [hb] = waka.wait_for(1, timeout=20)
        assert agent.stop() == 0
    assert (hb["entity"], hb["ai_line_changes"], hb["project"]) == (
        str(repo / "index.ts"),
        1,
        "web",
    )
    assert hb["user_agent"].endswith("opencode-cli/1.0.150")
