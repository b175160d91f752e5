"""`agent queue …` as subprocesses against a real daemon and the fake server (and with
no daemon): count, list with the server's reasons, flush, retry, purge, export."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from agentproc import agent_env
from inprocess import InProcessAgent
from test_ops import cli, cli_json, heartbeat, send, store_directly, workdir
from wakaserver import FakeWakaTime

from agent.commands.queue import Progress

OLD = 10 * 86400  # older than the server's maximum heartbeat age in these tests


def test_rejected_heartbeats_are_listed_with_the_reason_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    with FakeWakaTime(flavor="wakapi", max_age_days=7) as waka:
        env = agent_env(tmp_path, waka.url)
        with InProcessAgent(env, workdir(tmp_path), monkeypatch) as agent:
            send(env, [heartbeat("/code/old.py", now - OLD), heartbeat("/code/new.py", now)])
            waka.wait_for(1)
            agent.wait_for_log("refused")
            code, counts = cli_json(env, "queue", "count")
            rejected = cli(env, "queue", "list", "--rejected")
            listing = cli(env, "queue", "list", "--rejected", "--json")

            waka.max_age_days = None  # the server now takes old heartbeats too
            retried = cli(env, "queue", "retry")
            waka.wait_for(2)
            assert agent.stop() == 0
    assert code == 0
    assert (counts["queued"], counts["rejected"]) == (0, 1)
    assert "invalid heartbeat object" in rejected.stdout  # Wakapi's words
    assert "/code/old.py" in rejected.stdout
    [row] = [json.loads(line) for line in listing.stdout.splitlines()]
    assert row["state"] == "rejected"
    assert row["heartbeat"]["entity"] == "/code/old.py"
    assert row["reason"].startswith("HTTP 400")
    assert retried.returncode == 0
    assert "1 rejected heartbeat back in the queue" in retried.stdout
    assert [hb["entity"] for hb in waka.received] == ["/code/new.py", "/code/old.py"]


def test_list_shows_the_oldest_queued_first(tmp_path: Path) -> None:
    env = agent_env(tmp_path, None)
    now = time.time()
    store_directly(
        env, [heartbeat(f"/code/f{i}.py", now - 100 + i) for i in (5, 1, 3)], ["default"]
    )
    done = cli(env, "queue", "list", "--queued", "--limit", "2")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0] == "Queued, oldest first (3 in all, first 2):"
    assert "/code/f1.py" in lines[1] and "/code/f3.py" in lines[2]
    assert len(lines) == 3


def test_flush_delivers_through_the_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeWakaTime().start()
    server.fail_next(1, 503, retry_after=3600)  # a backoff no test outlives: only flush ends it
    env = agent_env(tmp_path, server.url)
    now = time.time()
    with server, InProcessAgent(env, workdir(tmp_path), monkeypatch) as agent:
        send(env, [heartbeat(f"/code/f{i}.py", now - 300 + i) for i in range(120)])
        agent.wait_for_log("HTTP 503")  # now waiting out a backoff
        done = cli(env, "queue", "flush")
        assert len(server.received) == 120
        assert agent.stop() == 0
    assert done.returncode == 0, done.stderr
    assert "120 heartbeats settled" in done.stdout


def test_flush_reports_a_destination_that_cannot_deliver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeWakaTime(api_key="the_right_key") as waka:
        env = agent_env(tmp_path, waka.url, api_key="waka_wrong_key")
        with InProcessAgent(env, workdir(tmp_path), monkeypatch) as agent:
            send(env, [heartbeat("/code/a.py", time.time())])
            agent.wait_for_log("delivery paused")
            done = cli(env, "queue", "flush")
            assert agent.stop() == 0
    assert done.returncode == 1
    assert "default: 1 heartbeat still queued" in done.stdout
    assert "refused the credentials" in done.stdout


def test_flush_with_no_daemon_delivers_from_the_command(tmp_path: Path, waka: FakeWakaTime) -> None:
    env = agent_env(tmp_path, waka.url)
    now = time.time()
    store_directly(
        env, [heartbeat(f"/code/f{i}.py", now - 100 + i) for i in range(60)], ["default"]
    )
    done = cli(env, "queue", "flush")
    assert done.returncode == 0, done.stderr
    assert "No daemon is running; delivering 60 heartbeats from here." in done.stdout
    assert "60 heartbeats settled" in done.stdout
    assert len(waka.received) == 60
    assert cli_json(env, "queue", "count")[1]["queued"] == 0


def test_purge_asks_first(tmp_path: Path) -> None:
    env = agent_env(tmp_path, None)
    store_directly(env, [heartbeat("/code/a.py", time.time())], ["default", "work"])
    declined = cli(env, "queue", "purge", stdin="n\n")
    assert declined.returncode == 1
    assert "Drop 2 queued heartbeats?" in declined.stderr
    assert cli_json(env, "queue", "count")[1]["queued"] == 2

    one = cli(env, "queue", "purge", "--destination", "work", stdin="y\n")
    assert one.returncode == 0
    assert "Purged 1 heartbeat for work." in one.stdout
    _, counts = cli_json(env, "queue", "count")
    assert counts["destinations"]["default"]["queued"] == 1
    assert counts["destinations"]["work"]["queued"] == 0

    assert cli(env, "queue", "purge", "--yes").returncode == 0
    assert cli_json(env, "queue", "count")[1]["queued"] == 0


def test_an_unknown_destination_is_refused(tmp_path: Path) -> None:
    env = agent_env(tmp_path, None)
    store_directly(env, [heartbeat("/code/a.py", time.time())], ["default"])
    done = cli(env, "queue", "purge", "--yes", "--destination", "typo")
    assert done.returncode == 1
    assert "no destination named 'typo' (known: default)" in done.stderr
    assert cli_json(env, "queue", "count")[1]["queued"] == 1


def test_export_writes_json_lines(tmp_path: Path) -> None:
    env = agent_env(tmp_path, None)
    now = time.time()
    store_directly(
        env, [heartbeat(f"/code/f{i}.py", now + i, project="p") for i in range(3)], ["default"]
    )
    to_stdout = cli(env, "queue", "export")
    rows = [json.loads(line) for line in to_stdout.stdout.splitlines()]
    assert [row["heartbeat"]["entity"] for row in rows] == [f"/code/f{i}.py" for i in range(3)]
    assert {row["state"] for row in rows} == {"queued"}
    assert rows[0]["heartbeat"]["project"] == "p"
    assert rows[0]["destination"] == "default"

    target = tmp_path / "queue.jsonl"
    to_file = cli(env, "queue", "export", "--all", "-o", str(target))
    assert to_file.returncode == 0
    assert "3 heartbeats written" in to_file.stderr
    assert len(target.read_text().splitlines()) == 3
    assert cli(env, "queue", "export", "--rejected").stdout == ""


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_silent_elsewhere() -> None:
    terminal = Terminal()
    bar = Progress(terminal)
    bar.show(250, 1000)
    bar.show(1000, 1000)
    bar.close()
    frames = terminal.getvalue().split("\r")[1:]
    assert frames[0].strip().startswith("████████░")
    assert frames[0].endswith("250/1,000")
    assert frames[1] == "  " + "█" * 30 + " 1,000/1,000\n"
    piped = io.StringIO()
    quiet = Progress(piped)
    quiet.show(1, 2)
    quiet.close()
    assert piped.getvalue() == ""
