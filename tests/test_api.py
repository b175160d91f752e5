"""The typed read client and `agent stats`, against the fake server on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from moved_clock import Clock
from test_auth import login, settings_for
from test_login import agent_env, run_agent
from wakaserver import FakeWakaTime, Fault, RecordedRequest

from agent.config import ApiSettings, Settings
from agent.delivery.api import (
    NO_CREDENTIALS,
    STATS_RETRY_DELAYS,
    ApiError,
    Stats,
    StatsPending,
    WakaTimeApi,
    http_client,
)
from agent.delivery.sender import basic_authorization

NOW = 1_749_988_800.0  # 2025-06-15 12:00:00 UTC
TODAY = "2025-06-15"
KEY = "waka_test_key"
USER_AGENT = "wakatime/v1.0 (linux-6.1.0-x86_64) Python3.11 vim/9.0 vim-wakatime/11.0"
PENDING = {"data": {"status": "pending_update", "percent_calculated": 40, "is_up_to_date": False}}


def heartbeat(ago: float, project: str, branch: str = "main") -> dict[str, object]:
    return {
        "entity": f"/src/{project}/main.py",
        "type": "file",
        "time": NOW - ago,
        "project": project,
        "branch": branch,
        "language": "Python",
        "user_agent": USER_AGENT,
    }


@pytest.fixture
def waka() -> Iterator[FakeWakaTime]:
    """A server at NOW holding 20 minutes on `app` and 5 on `web` today."""
    with FakeWakaTime(now=lambda: NOW) as server:
        activity = [heartbeat(3600, "app"), heartbeat(3000, "app"), heartbeat(2400, "app")]
        activity += [heartbeat(600, "web", "dev"), heartbeat(300, "web", "dev")]
        posted = httpx.post(
            f"{server.url}/users/current/heartbeats.bulk",
            json=activity,
            headers={"Authorization": basic_authorization(KEY)},
        )
        assert posted.status_code == 202
        yield server


def reads(waka: FakeWakaTime) -> list[RecordedRequest]:
    """The requests after the fixture's post: what the client under test sent."""
    return [r for r in waka.requests if r.method == "GET"]


class Sleeps(list[float]):
    """Records the pauses the client asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def api_for(
    waka: FakeWakaTime,
    sleep: Sleeps | None = None,
    authorization: Callable[[], str | None] = lambda: basic_authorization(KEY),
    refresh: Callable[[], bool] = lambda: False,
) -> WakaTimeApi:
    return WakaTimeApi(
        waka.url,
        authorization,
        refresh,
        sleep=sleep if sleep is not None else Sleeps(),
        clock=lambda: NOW,
    )


def test_each_read_endpoint_answers_typed(waka: FakeWakaTime) -> None:
    with api_for(waka) as api:
        user = api.current_user()
        summaries = api.summaries(TODAY, TODAY, project="app", branches=["main", "dev"])
        stats = api.stats("last_7_days")
        durations = api.durations(TODAY, project="app", branches=["main"])
        heartbeats = api.heartbeats(TODAY)
        projects = api.projects()
        user_agents = api.user_agents()

    assert user.name == "tester" and user.timezone == "UTC"
    [day] = summaries.data
    assert day.grand_total.total_seconds == 1200
    assert day.range.date is not None and day.range.date.isoformat() == TODAY
    assert [p.name for p in day.projects] == ["app"]
    assert stats.total_seconds == 1500
    assert [(p.name, p.total_seconds) for p in stats.projects] == [("app", 1200), ("web", 300)]
    assert stats.languages[0].name == "Python" and stats.editors[0].name == "Vim"
    assert [(d.project, d.duration) for d in durations.data] == [("app", 1200), ("web", 300)]
    assert [hb.project for hb in heartbeats.data] == ["app", "app", "app", "web", "web"]
    assert heartbeats.data[0].time == NOW - 3600
    assert sorted(p.name for p in projects) == ["app", "web"]
    assert [ua.editor for ua in user_agents] == ["Vim"]

    queries = {r.path.rsplit("/", 1)[-1]: r.query for r in reads(waka)}
    assert queries["summaries"] == {
        "start": TODAY,
        "end": TODAY,
        "project": "app",
        "branches": "main,dev",
    }
    assert queries["durations"] == {"date": TODAY, "project": "app", "branches": "main"}
    assert queries["heartbeats"] == {"date": TODAY}
    assert {r.headers["authorization"] for r in reads(waka)} == {basic_authorization(KEY)}


def test_stats_still_computing_are_asked_for_again_politely(waka: FakeWakaTime) -> None:
    waka.stats_pending_once = True
    sleeps = Sleeps()
    told: list[tuple[str | None, float]] = []

    def on_pending(stats: Stats, wait: float) -> None:
        told.append((stats.status, wait))

    with api_for(waka, sleeps) as api:
        stats = api.stats("last_30_days", on_pending=on_pending)

    assert stats.total_seconds == 1500
    assert told == [("pending_update", STATS_RETRY_DELAYS[0])]
    assert sleeps == [STATS_RETRY_DELAYS[0]]
    assert [r.status for r in reads(waka)] == [202, 200]


def test_stats_that_stay_pending_give_up_after_a_bounded_wait(waka: FakeWakaTime) -> None:
    waka.fault_plan(lambda index: Fault.fail(202, body=PENDING))
    sleeps = Sleeps()
    with api_for(waka, sleeps) as api, pytest.raises(StatsPending) as caught:
        api.stats()
    assert "still computing the last_7_days stats (40% done)" in str(caught.value)
    assert sleeps == list(STATS_RETRY_DELAYS)
    assert len(reads(waka)) == len(STATS_RETRY_DELAYS) + 1


def test_a_retry_after_on_pending_stats_is_honoured(waka: FakeWakaTime) -> None:
    waka.fail_next(status=202, retry_after=7, body=PENDING)
    sleeps = Sleeps()
    with api_for(waka, sleeps) as api:
        assert api.stats().total_seconds == 1500
    assert sleeps == [7.0]


def test_a_missing_scope_is_named(waka: FakeWakaTime) -> None:
    waka.fail_next(status=403, body={"error": "Forbidden: insufficient scope"})
    with api_for(waka) as api, pytest.raises(ApiError) as caught:
        api.stats()
    assert caught.value.status == 403
    assert "scope missing (HTTP 403): Forbidden: insufficient scope" in str(caught.value)
    assert "needs the `read_stats` scope" in str(caught.value)


def test_a_refused_read_refreshes_once_and_is_tried_again(waka: FakeWakaTime) -> None:
    headers = iter([basic_authorization("stale"), basic_authorization(KEY)])
    current = [next(headers)]
    refreshes: list[int] = []

    def refresh() -> bool:
        refreshes.append(1)
        current[0] = next(headers)
        return True

    with api_for(waka, authorization=lambda: current[0], refresh=refresh) as api:
        assert api.current_user().name == "tester"
    assert refreshes == [1]
    assert [r.status for r in reads(waka)] == [401, 200]


def test_a_read_refused_after_its_refresh_is_an_error(waka: FakeWakaTime) -> None:
    refreshes: list[int] = []
    with (
        api_for(
            waka,
            authorization=lambda: basic_authorization("wrong"),
            refresh=lambda: refreshes.append(1) or True,
        ) as api,
        pytest.raises(ApiError, match=r"refused the credentials \(HTTP 401\)"),
    ):
        api.projects()
    assert refreshes == [1]
    assert len(reads(waka)) == 2


def test_without_credentials_nothing_is_sent(waka: FakeWakaTime) -> None:
    with api_for(waka, authorization=lambda: None) as api, pytest.raises(ApiError) as caught:
        api.projects()
    assert str(caught.value) == NO_CREDENTIALS
    assert reads(waka) == []


def test_an_unexpected_answer_is_named(waka: FakeWakaTime) -> None:
    waka.fail_next(status=200, body={"data": {"username": "no id"}})
    with api_for(waka) as api, pytest.raises(ApiError, match=r"users/current: unexpected.*id"):
        api.current_user()


def test_an_unreachable_server_is_named() -> None:
    port = FakeWakaTime.reserve_port()
    api = WakaTimeApi(f"http://127.0.0.1:{port}/api/v1", lambda: basic_authorization(KEY))
    with api, pytest.raises(ApiError, match=rf"cannot reach http://127.0.0.1:{port}/api/v1"):
        api.projects()


def test_a_trickling_answer_is_cut_off_at_the_request_deadline(
    waka: FakeWakaTime, tmp_path: Path
) -> None:
    """`agent today` and `agent stats` read with the delivery's client: each byte quick (0.2 s,
    under the 0.5 s read timeout), the whole answer a minute, the request's deadline (twice
    the timeout) ends it."""
    settings = Settings(api=ApiSettings(url=waka.url, timeout=0.5))
    waka.trickle_next(1, 0.2)
    started = time.monotonic()
    api = WakaTimeApi(waka.url, lambda: basic_authorization(KEY), client=http_client(settings))
    with api:
        with pytest.raises(ApiError, match=r"cannot reach .*Timeout"):
            api.current_user()
        assert time.monotonic() - started < 10  # far less than the trickle's minute
        assert api.current_user().id  # the next request has a deadline of its own


# ----- `agent stats` -----


def test_agent_stats_prints_a_table(waka: FakeWakaTime, tmp_path: Path) -> None:
    done = run_agent(agent_env(tmp_path, waka, HEARTBEAT_AGENT_API__KEY=KEY), "stats")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Last 7 days (2025-06-09 – 2025-06-15), tester"
    assert lines[1].split() == ["Total", "25", "mins"]
    app = next(line for line in lines if line.strip().startswith("app"))
    assert app.split()[:4] == ["app", "20", "mins", "80.0%"]
    assert "Languages" in lines and "Editors" in lines


def test_agent_stats_json(waka: FakeWakaTime, tmp_path: Path) -> None:
    env = agent_env(tmp_path, waka, HEARTBEAT_AGENT_API__KEY=KEY)
    done = run_agent(env, "stats", "last_30_days", "--json")
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert stats["range"] == "last_30_days"
    assert stats["total_seconds"] == 1500
    assert stats["projects"][0]["name"] == "app"
    assert stats["username"] == "tester"


def test_agent_stats_reads_with_the_oauth_token(waka: FakeWakaTime, tmp_path: Path) -> None:
    settings = settings_for(waka, tmp_path)
    tokens = login(settings, Clock(time.time()))  # the subprocess reads the real clock
    done = run_agent(agent_env(tmp_path, waka), "stats", "--json")
    assert done.returncode == 0, done.stderr
    read = waka.requests[-1]
    assert read.path == "/api/v1/users/current/stats/last_7_days"
    assert read.headers["authorization"] == f"Bearer {tokens.access_token}"


def test_agent_stats_errors_are_one_line(waka: FakeWakaTime, tmp_path: Path) -> None:
    env = agent_env(tmp_path, waka)
    no_key = run_agent(env, "stats")
    assert no_key.returncode == 1
    assert no_key.stderr == f"agent: {NO_CREDENTIALS}\n"

    waka.fail_next(status=403, body={"error": "Forbidden"})
    refused = run_agent({**env, "HEARTBEAT_AGENT_API__KEY": KEY}, "stats")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "scope missing (HTTP 403)" in refused.stderr

    bad_range = run_agent(env, "stats", "last_week")
    assert bad_range.returncode == 2 and "is not a range" in bad_range.stderr


def test_agent_stats_says_when_the_server_is_still_computing(
    waka: FakeWakaTime, tmp_path: Path
) -> None:
    waka.fail_next(status=202, retry_after=0, body=PENDING)
    done = run_agent(agent_env(tmp_path, waka, HEARTBEAT_AGENT_API__KEY=KEY), "stats", "--json")
    assert done.returncode == 0, done.stderr
    assert "still computing these stats (40% done); asking again in 0 s" in done.stderr
    assert json.loads(done.stdout)["total_seconds"] == 1500


def test_agent_stats_takes_the_key_from_wakatime_cfg_vault_command(
    waka: FakeWakaTime, tmp_path: Path
) -> None:
    env = agent_env(tmp_path, waka)
    Path(env["HOME"], ".wakatime.cfg").write_text(
        f"[settings]\napi_key_vault_cmd = echo {KEY}\n", encoding="utf-8"
    )
    done = run_agent(env, "stats", "--json")
    assert done.returncode == 0, done.stderr
    assert reads(waka)[-1].headers["authorization"] == basic_authorization(KEY)
