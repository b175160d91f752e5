"""OAuth 2.0 for the default destination: the login flow (browser and loopback redirect),
token storage, refresh, and the credentials the daemon sends.

Tokens live in `oauth.json` beside the queue database (the user data dir by default), mode
0600, replaced atomically, so a crash, a timeout or Ctrl-C never leaves half a file. Neither
tokens nor the client secret ever reach a log line or an error message.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import html
import json
import logging
import os
import secrets
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from agent.config import ConfigError, Settings, check_api_url
from agent.delivery.sender import basic_authorization
from agent.delivery.transport import tls_verification
from agent.wakatime_cli.private_files import open_locked

log = logging.getLogger(__name__)

TOKEN_FILE = "oauth.json"
# Delivery writes heartbeats and `agent stats` reads stats: a login always asks for both.
REQUIRED_SCOPES = ("write_logged_time", "read_stats")
REFRESH_MARGIN = 300.0  # refresh this long before the access token expires
REFRESH_RETRY = 60.0  # after a refresh that failed for a passing reason (network, 5xx)
CALLBACK_PATH = "/callback"
LOOPBACK = "127.0.0.1"
APPS_URL = "https://wakatime.com/apps"


class AuthError(Exception):
    """A login or refresh failure worded for the user: the cause and what to do about it."""


class GrantRefused(AuthError):
    """The server refused the grant itself (4xx): asking again cannot help, a login can."""


# ----- tokens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSet:
    """What a token answer granted, plus where it came from (refresh needs both)."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float | None  # epoch seconds; None when the server did not say
    scope: str
    uid: str | None
    token_url: str
    redirect_uri: str

    def expires_within(self, seconds: float, now: float) -> bool:
        return self.expires_at is not None and self.expires_at - now <= seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "scope": self.scope,
            "uid": self.uid,
            "token_url": self.token_url,
            "redirect_uri": self.redirect_uri,
        }

    @classmethod
    def from_json(cls, data: Any) -> TokenSet:
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            raise ValueError("no access_token")
        expires_at = data.get("expires_at")
        return cls(
            access_token=data["access_token"],
            refresh_token=data.get("refresh_token") or None,
            expires_at=float(expires_at) if expires_at is not None else None,
            scope=str(data.get("scope") or ""),
            uid=data.get("uid"),
            token_url=str(data.get("token_url") or ""),
            redirect_uri=str(data.get("redirect_uri") or ""),
        )


def token_path(settings: Settings) -> Path:
    """Beside the queue database, so a test's temporary queue path isolates it too."""
    return settings.database_path().parent / TOKEN_FILE


class TokenStore:
    """The token file: read, replaced atomically (temp file + rename), removed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> TokenSet | None:
        """The stored tokens, None when not logged in; AuthError for an unusable file."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AuthError(f"{self.path}: cannot read the token file: {exc.strerror}") from None
        try:
            return TokenSet.from_json(json.loads(text))
        except ValueError:
            raise AuthError(
                f"{self.path}: the token file is damaged; run `agent login` again"
            ) from None

    def save(self, tokens: TokenSet) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # mkstemp creates the file 0600: the tokens are never readable by others, not even
        # for the moment between writing and renaming.
        fd, temp = tempfile.mkstemp(prefix=".oauth-", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(tokens.to_json(), file, indent=2)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    def clear(self) -> bool:
        """Remove the tokens; False when there were none."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def signature(self) -> tuple[int, int, int] | None:
        """Changes whenever the file is replaced or removed (a login or logout elsewhere)."""
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One refresh at a time across processes (the daemon and `agent stats`): servers
        rotate refresh tokens, so two concurrent refreshes would void each other."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = open_locked(self.path.with_name(self.path.name + ".lock"))
        try:
            yield
        finally:
            os.close(fd)


# ----- the provider's token endpoint ----------------------------------------------------


def same_site(api_url: str, token_url: str) -> bool:
    """Whether a token from token_url may be sent to api_url: the same host and port, or one
    host a subdomain of the other (api.wakatime.com and wakatime.com). A WakaTime token must
    never go to a self-hosted server."""
    api, token = urlsplit(api_url), urlsplit(token_url)
    api_host, token_host = (api.hostname or "").lower(), (token.hostname or "").lower()
    if api_host == token_host:
        return _port(api) == _port(token)
    return api_host.endswith("." + token_host) or token_host.endswith("." + api_host)


def _port(parts: Any) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True)
class OAuthClient:
    """The OAuth app the agent logs in as, and the two endpoints it talks to."""

    client_id: str
    client_secret: str = field(repr=False)
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    timeout: float = 30.0
    verify: ssl.SSLContext | bool = True
    proxy: str | None = None
    clock: Callable[[], float] = time.time

    @classmethod
    def from_settings(
        cls, settings: Settings, clock: Callable[[], float] = time.time
    ) -> OAuthClient:
        """ConfigError (one line naming the setting) when the app is not configured."""
        oauth = settings.oauth
        if not oauth.client_id or not oauth.client_secret:
            raise ConfigError(
                "oauth: client_id and client_secret are not set: create an OAuth app at"
                f" {APPS_URL} and set them in [oauth] (or HEARTBEAT_AGENT_OAUTH__CLIENT_ID and"
                " HEARTBEAT_AGENT_OAUTH__CLIENT_SECRET)"
            )
        urls = {}
        for name in ("authorize_url", "token_url"):
            try:
                urls[name] = check_api_url(getattr(oauth, name))
            except ValueError as exc:
                raise ConfigError(f"oauth.{name}: {exc}") from None
        scopes = tuple(dict.fromkeys([*oauth.scopes, *REQUIRED_SCOPES]))
        api = settings.api
        return cls(
            client_id=oauth.client_id,
            client_secret=oauth.client_secret.get_secret_value(),
            authorize_url=urls["authorize_url"],
            token_url=urls["token_url"],
            scopes=scopes,
            timeout=api.timeout,
            verify=tls_verification(api.ca_bundle),
            proxy=api.proxy,
            clock=clock,
        )

    def authorization_url(self, redirect_uri: str, state: str) -> str:
        query = urlencode(
            {
                "client_id": self.client_id,
                "response_type": "code",
                "redirect_uri": redirect_uri,
                "scope": ",".join(self.scopes),  # WakaTime separates scopes with commas
                "state": state,
            }
        )
        separator = "&" if urlsplit(self.authorize_url).query else "?"
        return f"{self.authorize_url}{separator}{query}"

    def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        """The authorization code for tokens; redirect_uri must be the one authorised."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        return self._request_tokens(form, redirect_uri, previous=None)

    def refresh(self, tokens: TokenSet) -> TokenSet:
        if not tokens.refresh_token:
            raise GrantRefused("the server gave no refresh token; run `agent login` again")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": tokens.refresh_token,
            "redirect_uri": tokens.redirect_uri,
        }
        return self._request_tokens(form, tokens.redirect_uri, previous=tokens)

    def _request_tokens(
        self, form: dict[str, str], redirect_uri: str, previous: TokenSet | None
    ) -> TokenSet:
        form = {"client_id": self.client_id, "client_secret": self.client_secret, **form}
        started = self.clock()
        try:
            with httpx.Client(timeout=self.timeout, verify=self.verify, proxy=self.proxy) as http:
                response = http.post(
                    self.token_url, data=form, headers={"Accept": "application/json"}
                )
        except httpx.HTTPError as exc:
            raise AuthError(f"cannot reach {self.token_url}: {type(exc).__name__}") from None
        answer = _form_or_json(response)
        if response.status_code >= 400 or "access_token" not in answer:
            raise self._token_error(response.status_code, answer, form["grant_type"], redirect_uri)
        return TokenSet(
            access_token=str(answer["access_token"]),
            refresh_token=str(answer.get("refresh_token") or "")
            or (previous.refresh_token if previous else None),
            expires_at=_expiry(answer, started),
            scope=str(answer.get("scope") or (previous.scope if previous else "")),
            uid=str(answer["uid"]) if answer.get("uid") else (previous.uid if previous else None),
            token_url=self.token_url,
            redirect_uri=redirect_uri,
        )

    def _token_error(
        self, status: int, answer: dict[str, Any], grant_type: str, redirect_uri: str
    ) -> AuthError:
        error = str(answer.get("error") or "")
        description = str(answer.get("error_description") or "")
        if status >= 500 or status == 429:
            return AuthError(f"{self.token_url} answered HTTP {status}; try again later")
        message = describe_oauth_error(
            error or f"HTTP {status}", description, redirect_uri, self.scopes
        )
        if error == "invalid_grant" and "redirect" not in description.lower():
            message = (
                "the refresh token has expired or was revoked (invalid_grant); run `agent login`"
                if grant_type == "refresh_token"
                else "the authorization code was refused (invalid_grant): it expired, was"
                " already used, or was issued for another redirect URI; run `agent login` again"
            )
        return GrantRefused(message)


def describe_oauth_error(
    error: str, description: str, redirect_uri: str, scopes: tuple[str, ...]
) -> str:
    """An OAuth error code (from the redirect or the token endpoint) as a cause and a fix."""
    detail = f" ({description})" if description else ""
    if error == "redirect_uri_mismatch" or "redirect" in description.lower():
        return (
            f"the redirect URI {redirect_uri} is not authorised for this OAuth app ({error})"
            f"{detail}: add it to the app's authorized redirect URIs at {APPS_URL}, or log in"
            " with --port set to the port of one that is"
        )
    if error in ("invalid_client", "unauthorized_client"):
        return (
            f"the server does not accept this OAuth client ({error}){detail}: check [oauth]"
            " client_id and client_secret"
        )
    if error == "invalid_scope":
        return (
            f"the server refused the requested scopes {','.join(scopes)} (invalid_scope)"
            f"{detail}: check [oauth] scopes"
        )
    if error == "access_denied":
        return f"authorization was denied in the browser (access_denied){detail}"
    return f"the server refused the login ({error}){detail}"


def _form_or_json(response: httpx.Response) -> dict[str, Any]:
    """A token answer is JSON when asked for, but some providers answer form-encoded."""
    with contextlib.suppress(ValueError):
        body = response.json()
        return body if isinstance(body, dict) else {}
    return dict(parse_qsl(response.text))


def _expiry(answer: dict[str, Any], requested_at: float) -> float | None:
    """From `expires_in` (seconds) or WakaTime's `expires_at` (ISO 8601)."""
    with contextlib.suppress(TypeError, ValueError):
        return requested_at + float(answer["expires_in"])
    with contextlib.suppress(TypeError, ValueError, KeyError):
        return datetime.fromisoformat(str(answer["expires_at"])).timestamp()
    return None


# ----- the login flow ---------------------------------------------------------------------


class LoginFlow:
    """One authorization-code login: a loopback listener for the browser's redirect, the
    random state that redirect must carry back, and the code exchange.

    Use as a context manager: entering starts the listener, leaving stops it.
    """

    def __init__(self, client: OAuthClient, port: int = 0) -> None:
        self.client = client
        self.state = secrets.token_urlsafe(32)
        self._server = _CallbackServer((LOOPBACK, port), self)
        self.redirect_uri = f"http://{LOOPBACK}:{self._server.server_address[1]}{CALLBACK_PATH}"
        self.url = client.authorization_url(self.redirect_uri, self.state)
        self._lock = threading.Lock()
        self._answered = False
        self._done = threading.Event()  # set once the answer page has been sent
        self._tokens: TokenSet | None = None
        self._error: AuthError | None = None
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="oauth-callback",
            daemon=True,
        )

    def __enter__(self) -> LoginFlow:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self, timeout: float) -> TokenSet:
        """The tokens once the redirect came back and the code was exchanged."""
        if not self._done.wait(timeout):
            raise AuthError(f"no redirect came back within {timeout:g} s; nothing was stored")
        if self._error is not None:
            raise self._error
        assert self._tokens is not None
        return self._tokens

    def answer(self, query: dict[str, str]) -> tuple[int, str] | None:
        """Settle the login with one redirect: (HTTP status, words for the browser); None
        when an earlier redirect settled it already. `finished()` must follow the page."""
        with self._lock:
            if self._answered:
                return None
            self._answered = True
            try:
                self._tokens = self._complete(query)
            except AuthError as exc:
                self._error = exc
                return 400, f"Login failed: {exc}."
            return 200, "Logged in. You can close this tab and return to the terminal."

    def finished(self) -> None:
        """The browser has its page: `wait` may return (and the process end) now."""
        self._done.set()

    def _complete(self, query: dict[str, str]) -> TokenSet:
        state = query.get("state", "")
        if not state or not hmac.compare_digest(state.encode(), self.state.encode()):
            raise AuthError(
                "the redirect carried a wrong or missing state, so it did not come from this"
                " login (a forged or stale request); refused, nothing was stored"
            )
        if "error" in query:
            raise AuthError(
                describe_oauth_error(
                    query["error"],
                    query.get("error_description", ""),
                    self.redirect_uri,
                    self.client.scopes,
                )
            )
        code = query.get("code")
        if not code:
            raise AuthError("the redirect carried no authorization code")
        return self.client.exchange_code(code, self.redirect_uri)


class _CallbackServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], flow: LoginFlow) -> None:
        self.flow = flow
        super().__init__(address, _CallbackHandler)


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer
    timeout = 30  # a browser's idle pre-connection must not hold a thread forever

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != CALLBACK_PATH:
            self._page(404, "Not found.")
            return
        flow = self.server.flow
        reply = flow.answer(dict(parse_qsl(parts.query)))
        if reply is None:
            self._page(409, "This login has already finished; you can close this tab.")
            return
        try:
            self._page(*reply)
        finally:
            flow.finished()

    def _page(self, status: int, message: str) -> None:
        title = "heartbeat-agent: logged in" if status == 200 else "heartbeat-agent: login"
        body = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><h1>{title}</h1><p>{html.escape(message)}</p></body></html>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line carries the authorization code."""


# ----- the daemon's credentials ---------------------------------------------------------


class OAuthCredentials:
    """The default destination's Authorization header: Bearer from the stored tokens when
    logged in, refreshed before they expire or once after a refusal; otherwise Basic from
    the API key. A login or logout by another process is picked up on the next request."""

    def __init__(
        self,
        store: TokenStore,
        client: Callable[[], OAuthClient],
        api_url: str,
        token_url: str,
        api_key: Callable[[], str | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.client = client
        self.api_url = api_url
        self.token_url = token_url
        self.api_key = api_key
        self.clock = clock
        self.problem: str | None = None  # why the tokens cannot be used or refreshed
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._tokens: TokenSet | None = None
        self._retry_at = 0.0
        self._refreshed_after_refusal: str | None = None

    def authorization(self) -> str | None:
        with self._lock:
            tokens = self._current()
            if tokens is None:
                key = self.api_key()
                return basic_authorization(key) if key else None
            if tokens.expires_within(REFRESH_MARGIN, self.clock()) and self._may_refresh():
                tokens = self._refresh(tokens) or tokens
            return f"Bearer {tokens.access_token}"

    def refresh(self) -> bool:
        """After a 401/403: True if there are new tokens to try. Once only: a token that was
        refreshed because of a refusal and is refused again is not refreshed again."""
        with self._lock:
            tokens = self._current()
            if (
                tokens is None
                or tokens.access_token == self._refreshed_after_refusal
                or not self._may_refresh()
            ):
                return False
            fresh = self._refresh(tokens)
            if fresh is None:
                return False
            self._refreshed_after_refusal = fresh.access_token
            return True

    def _current(self) -> TokenSet | None:
        signature = self.store.signature()
        if signature == self._signature:
            return self._tokens
        self._signature = signature
        self._tokens, self.problem = None, None
        self._retry_at = 0.0
        self._refreshed_after_refusal = None
        try:
            tokens = self.store.load()
        except AuthError as exc:
            self.problem = str(exc)
            log.error("OAuth: %s; using the API key meanwhile", exc)
            return None
        if tokens is None:
            return None
        if tokens.token_url != self.token_url or not same_site(self.api_url, tokens.token_url):
            self.problem = f"the OAuth tokens are from {tokens.token_url}, not for {self.api_url}"
            log.warning("OAuth: %s; using the API key there", self.problem)
            return None
        self._tokens = tokens
        return tokens

    def _may_refresh(self) -> bool:
        return self.problem is None and self.clock() >= self._retry_at

    def _refresh(self, tokens: TokenSet) -> TokenSet | None:
        try:
            with self.store.locked():
                latest = self.store.load()
                if latest is not None and latest.access_token != tokens.access_token:
                    fresh = latest  # another process refreshed meanwhile
                else:
                    fresh = self.client().refresh(tokens)
                    self.store.save(fresh)
        except (GrantRefused, ConfigError) as exc:
            self.problem = f"cannot refresh the access token: {exc}"
            log.error("OAuth: %s", self.problem)
            return None
        except (AuthError, OSError) as exc:
            self._retry_at = self.clock() + REFRESH_RETRY
            log.warning(
                "OAuth: cannot refresh the access token: %s; trying again in %.0f s",
                exc,
                REFRESH_RETRY,
            )
            return None
        self._tokens = fresh
        self._signature = self.store.signature()
        log.info("OAuth: access token refreshed")
        return fresh


def default_credentials(
    settings: Settings,
    api_key: Callable[[], str | None],
    *,
    clock: Callable[[], float] = time.time,
) -> tuple[Callable[[], str | None], Callable[[], bool], Callable[[], str | None]]:
    """(authorization, refresh, problem) for the default destination: Bearer from stored
    OAuth tokens when logged in (refreshing before expiry), else Basic from the API key;
    problem says why the tokens cannot be used, for the paused status."""
    credentials = OAuthCredentials(
        TokenStore(token_path(settings)),
        functools.partial(OAuthClient.from_settings, settings, clock),
        settings.api.url,
        settings.oauth.token_url.strip().rstrip("/"),
        api_key,
        clock,
    )
    return credentials.authorization, credentials.refresh, lambda: credentials.problem
