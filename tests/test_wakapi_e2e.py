"""End to end on the real Wakapi: `agent run`, the watcher and the wakatime-cli-compatible
command deliver a scripted session, and Wakapi's own WakaTime-compatible routes show it.

Wakapi is started once for the module (the `wakapi` fixture) and each test signs up its own
user.
Times are explicit where plugins give them (`--time`), so the totals Wakapi computes are known:
it joins consecutive heartbeats less than 10 minutes apart and counts each gap for the earlier
heartbeat's project, language and editor. Skipped, saying why, when the binary is absent.
(Wakapi 2.17 has no `durations` route; its `heartbeats?date=` route shows what it stored.)
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from agentproc import AGENT, SHORT_HOLD, WAKATIME_CLI, AgentProcess, agent_env, git_repo
from wakapi import MAX_AGE_HOURS, Wakapi, seconds_by_name

# Wakapi's default heartbeats timeout: a longer gap is a break.
TIMEOUT = 600
PLUGINS = {
    "vim": "vim/9.1.0 vim-wakatime/11.0.0",
    "vscode": "vscode/1.95.3 vscode-wakatime/24.6.0",
    "emacs": "emacs/29.4 wakatime-mode/1.0.2",
}


class Beat(NamedTuple):
    """One plugin heartbeat of the script."""

    at: float
    file: Path
    editor: str
    write: bool = False


def env_for(tmp_path: Path, api_url: str | None, key: str | None, **extra: str) -> dict[str, str]:
    """An isolated agent whose watcher lets a save through after 0.3 s of quiet (not 2 s), and
    holds it 0.5 s (not 60 s) for a plugin's late heartbeat of the same save."""
    quick = {**SHORT_HOLD, "HEARTBEAT_AGENT_HEARTBEATS__PLUGIN_WAIT": "0.5"}
    return agent_env(tmp_path, api_url, api_key=key, **quick, **extra)


def midnight(days_ago: int) -> float:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today - timedelta(days=days_ago)).timestamp()


def day_of(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def minutes(start: float, *offsets: float) -> list[float]:
    return [start + 60 * offset for offset in offsets]


def plugin_sends(env: dict[str, str], beats: list[Beat]) -> list[int]:
    """Each editor's heartbeats as its plugin sends them: one call, the rest on stdin."""
    codes = []
    by_editor: dict[str, list[Beat]] = defaultdict(list)
    for beat in beats:
        by_editor[beat.editor].append(beat)
    for editor, own in by_editor.items():
        first, *rest = own
        extra = [
            {"entity": str(b.file), "time": b.at, "is_write": b.write, "type": "file"} for b in rest
        ]
        argv = [WAKATIME_CLI, "--entity", str(first.file), "--time", str(first.at)]
        argv += ["--plugin", PLUGINS[editor], *(["--write"] if first.write else [])]
        if extra:
            argv.append("--extra-heartbeats")
        done = subprocess.run(
            argv, env=env, input=json.dumps(extra), capture_output=True, text=True, timeout=60
        )
        codes.append(done.returncode)
    return codes


def agent_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AGENT, *args], env=env, capture_output=True, text=True, timeout=60)


def flush(env: dict[str, str]) -> None:
    """`agent queue flush`: returns once the daemon's queue is empty (or stuck: then fail)."""
    done = agent_cli(env, "queue", "flush")
    assert done.returncode == 0, done.stdout + done.stderr
    assert queued(env) == 0


def queued(env: dict[str, str]) -> int:
    done = agent_cli(env, "queue", "count", "--json")
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["queued"])


def wakapi_totals(beats: list[Beat], label: Any) -> dict[str, float]:
    """What Wakapi should count, by `label(beat)`: each gap under the timeout, for the
    earlier heartbeat."""
    totals: dict[str, float] = defaultdict(float)
    ordered = sorted(beats)
    for earlier, later in itertools.pairwise(ordered):
        gap = later.at - earlier.at
        if gap < TIMEOUT:
            totals[label(earlier)] += gap
    return dict(totals)


def test_a_scripted_session_reaches_wakapi(tmp_path: Path, wakapi: Wakapi) -> None:
    key = wakapi.signup()
    shop = git_repo(tmp_path / "shop-api", branch="feature/cart")
    docs = git_repo(tmp_path / "docs-site", branch="main")
    files = {
        "cart": shop / "cart.py",
        "notes": shop / "NOTES.md",
        "app": docs / "src" / "app.ts",
    }
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    env = env_for(tmp_path, wakapi.api_url, key)
    day, week_ago = midnight(1), midnight(7)

    morning = [Beat(t, files["cart"], "vim") for t in minutes(day + 9 * 3600, 0, 2, 4, 6)]
    morning += [Beat(day + 9 * 3600 + 8 * 60, files["cart"], "vim", write=True)]
    morning += [Beat(t, files["app"], "vscode") for t in minutes(day + 9 * 3600, 10, 12, 14)]
    morning += [Beat(t, files["notes"], "emacs") for t in minutes(day + 9 * 3600, 16, 18)]
    offline_hour = [
        Beat(t, files["cart"], "vim") for t in minutes(day + 12 * 3600, *range(0, 61, 5))
    ]
    backlog = [Beat(t, files["app"], "vim") for t in minutes(week_ago + 15 * 3600, 0, 3, 6)]
    # older than Wakapi keeps: refused alone, kept aside with its reason, blocking nothing
    ancient = Beat(midnight(MAX_AGE_HOURS // 24 + 10), files["app"], "vim")

    with AgentProcess(env, shop, "--verbose") as agent:
        assert plugin_sends(env, morning) == [0, 0, 0]
        wakapi.wait_for(key, day_of(day), len(morning))
        flush(env)  # Wakapi may show a batch before the agent has its answer: wait for that

        wakapi.stop()  # an hour offline: the plugins' heartbeats wait in the queue
        assert set(plugin_sends(env, offline_hour)) <= {0, 112}
        agent.wait_for_log("cannot reach")
        assert queued(env) == len(offline_hour)
        wakapi.start()
        flush(env)

        assert plugin_sends(env, [ancient, *backlog]) == [0]  # a backlog, explicit times
        (shop / "checkout.py").write_text("def pay():\n    return 42\n")  # watched saves, now
        agent.wait_for_log("stored 1 heartbeat")
        wakapi.wait_for(key, day_of(midnight(0)), 1)
        wakapi.wait_for(key, day_of(week_ago), len(backlog))
        flush(env)
        refused = agent_cli(env, "queue", "list", "--rejected", "--json")
        assert agent.stop() == 0

    [row] = [json.loads(line) for line in refused.stdout.splitlines()]
    assert row["heartbeat"]["time"] == ancient.at
    assert row["reason"] == "HTTP 400: invalid heartbeat object"  # Wakapi's words, per item
    session = morning + offline_hour
    summary = wakapi.summary(key, day_of(day))
    assert summary["grand_total"]["total_seconds"] == 18 * 60 + 60 * 60
    project_of = {files["cart"]: "shop-api", files["notes"]: "shop-api", files["app"]: "docs-site"}
    assert seconds_by_name(summary, "projects") == wakapi_totals(
        session, lambda b: project_of[b.file]
    )
    assert seconds_by_name(summary, "projects") == {"shop-api": 4320, "docs-site": 360}
    # Wakapi shows a language capitalized its way: "Typescript" for the "TypeScript" sent
    language_of = {files["cart"]: "Python", files["notes"]: "Markdown", files["app"]: "Typescript"}
    languages = seconds_by_name(summary, "languages")
    assert languages == wakapi_totals(session, lambda b: language_of[b.file])
    assert languages == {"Python": 4200, "Typescript": 360, "Markdown": 120}
    editors = seconds_by_name(summary, "editors")  # from each plugin's user agent
    assert editors == {"Vim": 600 + 3600, "Vscode": 360, "Emacs": 120}
    shop_branches = wakapi.summary(key, day_of(day), project="shop-api")
    assert set(seconds_by_name(shop_branches, "branches")) == {"feature/cart"}
    docs_branches = wakapi.summary(key, day_of(day), project="docs-site")
    assert set(seconds_by_name(docs_branches, "branches")) == {"main"}

    old = wakapi.summary(key, day_of(week_ago))
    assert seconds_by_name(old, "projects") == {"docs-site": 360}
    assert seconds_by_name(old, "languages") == {"Typescript": 360}

    stored = wakapi.heartbeats(key, day_of(day))
    assert len(stored) == len(session)
    assert sorted(hb["time"] for hb in stored) == sorted(b.at for b in session)
    assert {(hb["project"], hb["branch"]) for hb in stored} == {
        ("shop-api", "feature/cart"),
        ("docs-site", "main"),
    }
    today = wakapi.heartbeats(key, day_of(midnight(0)))
    saved = [hb for hb in today if hb["entity"] == str(shop / "checkout.py")]
    assert [(hb["project"], hb["branch"], hb["language"], hb["is_write"]) for hb in saved] == [
        ("shop-api", "feature/cart", "Python", True)
    ]


def test_a_wrong_key_pauses_delivery_and_the_right_one_resumes_it(
    tmp_path: Path, wakapi: Wakapi
) -> None:
    key = wakapi.signup()
    repo = git_repo(tmp_path / "paused-repo")
    (repo / "main.go").write_text("package main\n")
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[api]\nurl = "{wakapi.api_url}"\nkey = "{"0" * 8}-0000-4000-8000-{"0" * 12}"\n'
    )
    env = env_for(tmp_path, None, None, HEARTBEAT_AGENT_CONFIG=str(config))
    day = midnight(2)
    beats = [Beat(t, repo / "main.go", "vim") for t in minutes(day + 10 * 3600, 0, 1, 2)]

    with AgentProcess(env, repo) as agent:
        plugin_sends(env, beats)
        agent.wait_for_log("delivery paused")
        assert queued(env) == len(beats)  # nothing lost
        assert wakapi.heartbeats(key, day_of(day)) == []

        config.write_text(f'[api]\nurl = "{wakapi.api_url}"\nkey = "{key}"\n')
        agent.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        agent.wait_for_log("configuration reloaded")
        flush(env)
        assert agent.stop() == 0

    assert sorted(hb["time"] for hb in wakapi.heartbeats(key, day_of(day))) == [b.at for b in beats]
    assert seconds_by_name(wakapi.summary(key, day_of(day)), "languages") == {"Go": 120}


def test_wakapi_down_then_back_is_delivered_without_help(tmp_path: Path, wakapi: Wakapi) -> None:
    key = wakapi.signup()
    repo = git_repo(tmp_path / "comeback", branch="fix/retry")
    env = env_for(tmp_path, wakapi.api_url, key)
    with AgentProcess(env, repo) as agent:
        wakapi.stop()
        (repo / "retry.rs").write_text("fn main() {}\n")
        agent.wait_for_log("cannot reach")
        wakapi.start()
        agent.wait_for_log("delivering again", timeout=30)  # its own backoff, no flush
        assert agent.stop() == 0
    [hb] = wakapi.heartbeats(key, day_of(midnight(0)))
    assert (hb["entity"], hb["project"], hb["branch"], hb["language"]) == (
        str(repo / "retry.rs"),
        "comeback",
        "fix/retry",
        "Rust",
    )
