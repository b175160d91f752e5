"""OAuth tokens, refresh and the default destination's credentials, against the fake server
over real loopback sockets, with one injected clock shared by the agent and the server."""

from __future__ import annotations

import json
import logging
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from moved_clock import Clock
from wakaserver import FakeWakaTime, Fault

from agent.config import (
    ApiSettings,
    ConfigError,
    OAuthSettings,
    QueueSettings,
    Settings,
)
from agent.delivery.auth import (
    REFRESH_MARGIN,
    REFRESH_RETRY,
    AuthError,
    GrantRefused,
    LoginFlow,
    OAuthClient,
    TokenSet,
    TokenStore,
    default_credentials,
    token_path,
)
from agent.delivery.sender import Endpoint, Sender, Step, basic_authorization
from agent.pipeline.heartbeat import Heartbeat
from agent.pipeline.store import HeartbeatStore

NOW = 1_749_988_800.0  # 2025-06-15 12:00:00 UTC
KEY = "waka_test_key"
CLIENT_ID = "test_client_id"
CLIENT_SECRET = "test_client_secret"
EXPIRES_IN = 3600


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def waka(clock: Clock) -> Iterator[FakeWakaTime]:
    with FakeWakaTime(now=clock, expire_in=EXPIRES_IN) as server:
        yield server


def settings_for(waka: FakeWakaTime, tmp_path: Path, **oauth: Any) -> Settings:
    options = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "authorize_url": waka.oauth_authorize_url,
        "token_url": waka.oauth_token_url,
        **oauth,
    }
    return Settings(
        api=ApiSettings(url=waka.url),
        queue=QueueSettings(path=tmp_path / "data" / "heartbeats.sqlite3"),
        oauth=OAuthSettings(**options),
    )


def login(settings: Settings, clock: Clock) -> TokenSet:
    """The whole flow in-process: the test is the browser, following the 302 to the agent."""
    with LoginFlow(OAuthClient.from_settings(settings, clock)) as flow:
        page = httpx.get(flow.url, follow_redirects=True, timeout=10)
        assert page.status_code == 200, page.text
        tokens = flow.wait(10)
    TokenStore(token_path(settings)).save(tokens)
    return tokens


def token_requests(waka: FakeWakaTime, grant_type: str) -> list[dict[str, str]]:
    return [
        r.body
        for r in waka.requests
        if r.path == "/oauth/token" and r.body.get("grant_type") == grant_type
    ]


def queued_sender(settings: Settings, endpoint: Endpoint, clock: Clock) -> Sender:
    """A real Sender over a real store holding one queued heartbeat for `default`."""
    store = HeartbeatStore(settings.database_path())
    store.add([(Heartbeat(entity="/src/app/main.py", time=NOW - 60, project="app"), ["default"])])
    return Sender(store, endpoint, httpx.Client(timeout=10), "test-host", clock=clock)


# ----- the token file -----


def test_the_token_file_is_private_and_replaced_whole(
    waka: FakeWakaTime, tmp_path: Path, clock: Clock
) -> None:
    settings = settings_for(waka, tmp_path)
    first = login(settings, clock)
    path = token_path(settings)
    assert path == tmp_path / "data" / "oauth.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["access_token"] == first.access_token
    inode = path.stat().st_ino

    second = login(settings, clock)
    assert path.stat().st_ino != inode  # a new file renamed over the old one, not rewritten
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert TokenStore(path).load() == second
    assert sorted(p.name for p in path.parent.iterdir()) == ["oauth.json"]


def test_a_damaged_token_file_is_named_and_the_api_key_is_used(
    waka: FakeWakaTime, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(waka, tmp_path)
    path = token_path(settings)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(AuthError, match="damaged"):
        TokenStore(path).load()
    authorization, _, _ = default_credentials(settings, lambda: KEY, clock=clock)
    assert authorization() == basic_authorization(KEY)
    assert str(path) in caplog.text


def test_login_needs_a_configured_client(waka: FakeWakaTime, tmp_path: Path) -> None:
    settings = settings_for(waka, tmp_path, client_id=None)
    with pytest.raises(ConfigError, match=r"client_id and client_secret are not set"):
        OAuthClient.from_settings(settings)
    settings = settings_for(waka, tmp_path, token_url="http://wakatime.example/oauth/token")
    with pytest.raises(ConfigError, match=r"oauth\.token_url: .*plain http"):
        OAuthClient.from_settings(settings)


# ----- which credentials go on the wire -----


def test_bearer_when_logged_in_and_basic_otherwise_without_a_restart(
    waka: FakeWakaTime, tmp_path: Path, clock: Clock
) -> None:
    settings = settings_for(waka, tmp_path)
    authorization, _, _ = default_credentials(settings, lambda: KEY, clock=clock)
    assert authorization() == basic_authorization(KEY)

    tokens = login(settings, clock)
    assert authorization() == f"Bearer {tokens.access_token}"

    assert TokenStore(token_path(settings)).clear()
    assert authorization() == basic_authorization(KEY)


def test_no_credentials_at_all_is_none(waka: FakeWakaTime, tmp_path: Path, clock: Clock) -> None:
    authorization, refresh, _ = default_credentials(
        settings_for(waka, tmp_path), lambda: None, clock=clock
    )
    assert authorization() is None
    assert refresh() is False


def test_delivery_sends_the_bearer_token_on_the_wire(
    waka: FakeWakaTime, tmp_path: Path, clock: Clock
) -> None:
    settings = settings_for(waka, tmp_path)
    tokens = login(settings, clock)
    authorization, refresh, _ = default_credentials(settings, lambda: KEY, clock=clock)
    sender = queued_sender(settings, Endpoint("default", waka.url, authorization, refresh), clock)

    assert sender.step().step is Step.PROGRESS
    post = waka.requests[-1]
    assert post.path.endswith("/heartbeats.bulk")
    assert post.headers["authorization"] == f"Bearer {tokens.access_token}"
    assert [hb["entity"] for hb in waka.received] == ["/src/app/main.py"]


def test_tokens_from_another_server_never_go_to_the_destination(
    waka: FakeWakaTime, tmp_path: Path, clock: Clock
) -> None:
    settings = settings_for(waka, tmp_path)
    login(settings, clock)
    with FakeWakaTime(now=clock) as self_hosted:
        elsewhere = settings.model_copy(update={"api": ApiSettings(url=self_hosted.url)})
        authorization, _, _ = default_credentials(elsewhere, lambda: KEY, clock=clock)
        assert authorization() == basic_authorization(KEY)


# ----- refresh -----


def test_the_token_is_refreshed_shortly_before_it_expires(
    waka: FakeWakaTime, tmp_path: Path, clock: Clock
) -> None:
    settings = settings_for(waka, tmp_path)
    tokens = login(settings, clock)
    authorization, _, _ = default_credentials(settings, lambda: KEY, clock=clock)

    clock.advance(EXPIRES_IN - REFRESH_MARGIN - 1)
    assert authorization() == f"Bearer {tokens.access_token}"
    assert token_requests(waka, "refresh_token") == []

    clock.advance(2)
    fresh = authorization()
    assert fresh is not None and fresh != f"Bearer {tokens.access_token}"
    [form] = token_requests(waka, "refresh_token")
    assert form == {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "grant_type": "refresh_token",
        "refresh_token": tokens.refresh_token,
        "redirect_uri": tokens.redirect_uri,
    }
    stored = TokenStore(token_path(settings)).load()
    assert stored is not None and f"Bearer {stored.access_token}" == fresh
    assert stored.expires_at == clock.now + EXPIRES_IN

    clock.advance(REFRESH_MARGIN)  # the old token has expired; the new one still works
    assert authorization() == fresh
    answer = httpx.get(f"{waka.url}/users/current", headers={"Authorization": fresh})
    assert answer.status_code == 200


def test_a_refused_token_is_refreshed_once_and_delivery_goes_on(
    waka: FakeWakaTime, tmp_path: Path, clock: Clock
) -> None:
    settings = settings_for(waka, tmp_path)
    tokens = login(settings, clock)
    waka.revoke(tokens.access_token)  # refused before its expiry: only a 401 tells
    authorization, refresh, _ = default_credentials(settings, lambda: KEY, clock=clock)
    sender = queued_sender(settings, Endpoint("default", waka.url, authorization, refresh), clock)

    assert sender.step().step is Step.PROGRESS  # 401, then refreshed
    assert sender.step().step is Step.PROGRESS  # delivered with the new token
    assert len(waka.received) == 1
    assert len(token_requests(waka, "refresh_token")) == 1
    assert waka.requests[-1].headers["authorization"] == authorization()


def test_a_token_refused_again_after_its_refresh_is_not_refreshed_again(
    waka: FakeWakaTime, tmp_path: Path, clock: Clock
) -> None:
    settings = settings_for(waka, tmp_path)
    login(settings, clock)
    waka.reset()
    # Every heartbeat post is refused; the refresh in between (request 1) succeeds.
    waka.fault_plan(lambda index: Fault.fail(401) if index in (0, 2) else None)
    authorization, refresh, _ = default_credentials(settings, lambda: KEY, clock=clock)
    sender = queued_sender(settings, Endpoint("default", waka.url, authorization, refresh), clock)

    assert sender.step().step is Step.PROGRESS
    assert sender.step().step is Step.PAUSED
    assert len(token_requests(waka, "refresh_token")) == 1
    assert sender.store.counts().queued == 1


def test_a_failed_refresh_pauses_delivery_with_a_clear_status(
    waka: FakeWakaTime, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(waka, tmp_path)
    login(settings, clock)
    waka.fail_refresh = True
    authorization, refresh, _ = default_credentials(settings, lambda: KEY, clock=clock)
    sender = queued_sender(settings, Endpoint("default", waka.url, authorization, refresh), clock)

    clock.advance(EXPIRES_IN + 1)
    result = sender.step()

    assert result.step is Step.PAUSED
    assert sender.status.paused
    assert sender.store.counts().queued == 1  # kept for after the next login
    assert len(token_requests(waka, "refresh_token")) == 1  # asked once, not on every 401
    assert "refresh token has expired or was revoked" in caplog.text
    assert "agent login" in caplog.text

    assert sender.step().step is Step.PAUSED
    assert len(token_requests(waka, "refresh_token")) == 1

    waka.fail_refresh = False
    login(settings, clock)  # a new login elsewhere: picked up, delivery resumes
    sender.forget_refusal()
    assert sender.step().step is Step.PROGRESS
    assert len(waka.received) == 1


def test_a_refresh_that_failed_in_passing_is_tried_again_later(
    waka: FakeWakaTime, tmp_path: Path, clock: Clock
) -> None:
    settings = settings_for(waka, tmp_path)
    tokens = login(settings, clock)
    authorization, _, _ = default_credentials(settings, lambda: KEY, clock=clock)
    clock.advance(EXPIRES_IN - 10)
    waka.fail_next(status=503)

    assert authorization() == f"Bearer {tokens.access_token}"  # refresh failed: 503
    assert authorization() == f"Bearer {tokens.access_token}"  # not hammered
    clock.advance(REFRESH_RETRY)
    assert authorization() != f"Bearer {tokens.access_token}"
    assert len(token_requests(waka, "refresh_token")) == 2  # the one answered 503, the retry


def test_a_refresh_saved_by_another_process_is_picked_up(
    waka: FakeWakaTime, tmp_path: Path, clock: Clock
) -> None:
    settings = settings_for(waka, tmp_path)
    login(settings, clock)
    daemon, _, _ = default_credentials(settings, lambda: KEY, clock=clock)
    command, _, _ = default_credentials(settings, lambda: KEY, clock=clock)
    daemon()
    command()

    clock.advance(EXPIRES_IN - 10)
    refreshed = command()
    assert daemon() == refreshed
    assert len(token_requests(waka, "refresh_token")) == 1


def test_a_refresh_racing_another_process_is_not_repeated(
    waka: FakeWakaTime, tmp_path: Path, clock: Clock
) -> None:
    """Servers rotate refresh tokens: two processes refreshing at once would void each
    other's, so the second waits for the first and takes its result."""
    settings = settings_for(waka, tmp_path)
    tokens = login(settings, clock)
    store = TokenStore(token_path(settings))
    clock.advance(EXPIRES_IN - 10)
    tokens_read = threading.Event()

    def daemon_clock() -> float:  # read right after the daemon loaded the (old) tokens
        tokens_read.set()
        return clock()

    daemon, _, _ = default_credentials(settings, lambda: KEY, clock=daemon_clock)
    answers: list[str | None] = []
    with store.locked():  # another process is refreshing
        thread = threading.Thread(target=lambda: answers.append(daemon()))
        thread.start()
        assert tokens_read.wait(10)
        fresh = OAuthClient.from_settings(settings, clock).refresh(tokens)
        store.save(fresh)
    thread.join(10)

    assert answers == [f"Bearer {fresh.access_token}"]
    assert len(token_requests(waka, "refresh_token")) == 1


# ----- errors name the cause -----


def test_a_wrong_client_secret_is_named(waka: FakeWakaTime, tmp_path: Path, clock: Clock) -> None:
    settings = settings_for(waka, tmp_path, client_secret="wrong")
    with LoginFlow(OAuthClient.from_settings(settings, clock)) as flow:
        page = httpx.get(flow.url, follow_redirects=True, timeout=10)
        with pytest.raises(GrantRefused, match=r"invalid_client.*client_id and client_secret"):
            flow.wait(10)
    assert page.status_code == 400
    assert "invalid_client" in page.text


def test_an_expired_refresh_token_is_named(
    waka: FakeWakaTime, tmp_path: Path, clock: Clock
) -> None:
    settings = settings_for(waka, tmp_path)
    tokens = login(settings, clock)
    waka.revoke(tokens.refresh_token or "")
    with pytest.raises(GrantRefused, match=r"refresh token has expired or was revoked"):
        OAuthClient.from_settings(settings, clock).refresh(tokens)


def test_an_unreachable_token_url_is_named(tmp_path: Path, clock: Clock) -> None:
    port = FakeWakaTime.reserve_port()
    with FakeWakaTime(port=port) as gone:
        settings = settings_for(gone, tmp_path)
    tokens = TokenSet("a", "r", None, "", None, gone.oauth_token_url, "http://127.0.0.1:1/cb")
    with pytest.raises(AuthError, match=rf"cannot reach {gone.oauth_token_url}") as caught:
        OAuthClient.from_settings(settings, clock).refresh(tokens)
    assert not isinstance(caught.value, GrantRefused)  # worth trying again later


# ----- secrets stay out of the logs -----


def test_no_token_secret_or_key_text_in_logs(
    waka: FakeWakaTime, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = settings_for(waka, tmp_path)
    tokens = login(settings, clock)
    authorization, refresh, _ = default_credentials(settings, lambda: KEY, clock=clock)
    clock.advance(EXPIRES_IN)
    authorization()  # refreshed
    waka.fail_refresh = True
    refresh()  # refused
    stored = TokenStore(token_path(settings)).load()
    assert stored is not None

    secrets = {
        tokens.access_token,
        tokens.refresh_token,
        stored.access_token,
        stored.refresh_token,
        CLIENT_SECRET,
        KEY,
    }
    assert "refreshed" in caplog.text and "refresh token has expired" in caplog.text
    for secret in secrets:
        assert secret and secret not in caplog.text
    assert stored.access_token not in repr(stored)
    assert stored.refresh_token not in repr(stored)
