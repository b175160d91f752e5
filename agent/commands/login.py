"""`agent login` / `agent logout`: OAuth 2.0 authorization-code login through the browser
and a loopback redirect; the tokens are kept in a 0600 file and refreshed as they expire."""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from typing import TYPE_CHECKING

from agent.commands.common import (
    CommandError,
    add_config_option,
    run_command,
    settings_from,
    setup_logging,
)

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.delivery.auth import TokenSet

DEFAULT_TIMEOUT = 300.0


def main(argv: list[str]) -> int:
    if argv[:1] == ["logout"]:
        parser = argparse.ArgumentParser(
            prog="agent logout", description="Forget the stored OAuth tokens."
        )
        add_config_option(parser)
        return run_command(_logout, parser.parse_args(argv[1:]))
    parser = argparse.ArgumentParser(
        prog="agent login",
        description="Log in with OAuth 2.0 through the browser and a loopback redirect; the"
        " tokens are kept in a 0600 file and refreshed before they expire.",
    )
    parser.add_argument(
        "--no-browser",
        action="store_true",
        help="print the authorization URL instead of opening a browser",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up waiting for the redirect after this long (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="the loopback port for the redirect (default: any free one); for OAuth apps that"
        " only accept one registered redirect URI, http://127.0.0.1:PORT/callback",
    )
    add_config_option(parser)
    return run_command(_login, parser.parse_args(argv))


def _login(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    setup_logging(settings.log.level, args.verbose)
    from agent.delivery.auth import AuthError, LoginFlow, OAuthClient, TokenStore, token_path

    client = OAuthClient.from_settings(settings)
    try:
        flow = LoginFlow(client, port=args.port)
    except OSError as exc:
        raise CommandError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from None
    try:
        with flow:
            _send_to_browser(flow.url, args.no_browser)
            print(
                f"Waiting for the redirect to {flow.redirect_uri} (up to {args.timeout:g} s;"
                " Ctrl-C cancels)…",
                flush=True,
            )
            tokens = flow.wait(args.timeout)
    except AuthError as exc:
        raise CommandError(f"login failed: {exc}") from None
    except KeyboardInterrupt:
        print("agent: login cancelled; nothing was stored", file=sys.stderr)
        return 130
    store = TokenStore(token_path(settings))
    try:
        store.save(tokens)
    except OSError as exc:
        raise CommandError(f"cannot store the tokens in {store.path}: {exc.strerror}") from None
    print(f"Logged in as {_who(settings, tokens)}.")
    print(f"Tokens stored in {store.path}.")
    return 0


def _send_to_browser(url: str, no_browser: bool) -> None:
    if no_browser or not _has_graphical_browser() or not webbrowser.open(url):
        print("Open this URL in a browser to log in:", flush=True)
    else:
        print("Opened the browser to log in; if it did not open, visit:", flush=True)
    print(f"\n    {url}\n", flush=True)


def _has_graphical_browser() -> bool:
    """On Linux without a display (ssh, a console) webbrowser would start a text browser in
    this very terminal, hiding the URL; print it instead. $BROWSER is the user's choice."""
    if not sys.platform.startswith("linux") or os.environ.get("BROWSER"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _who(settings: Settings, tokens: TokenSet) -> str:
    """The account just logged in, as the server names it; the uid if it cannot say."""
    from agent.delivery.api import ApiError, WakaTimeApi, http_client
    from agent.delivery.auth import same_site

    uid = f"user {tokens.uid}" if tokens.uid else "a user the server did not name"
    if not same_site(settings.api.url, tokens.token_url):
        return (
            f"{uid} (note: {settings.api.url} is not the OAuth server's; heartbeats there keep"
            " using the API key)"
        )
    api = WakaTimeApi(
        settings.api.url,
        lambda: f"Bearer {tokens.access_token}",
        client=http_client(settings),
        hostname=settings.api.hostname,
    )
    with api:
        try:
            user = api.current_user()
        except ApiError as exc:
            return f"{uid} (could not read the profile: {exc})"
    return f"{user.name} ({user.email})" if user.email else user.name


def _logout(args: argparse.Namespace) -> int:
    from agent.delivery.auth import TokenStore, token_path

    store = TokenStore(token_path(settings_from(args)))
    if store.clear():
        print(f"Logged out: removed the OAuth tokens ({store.path}).")
    else:
        print("Not logged in: there were no OAuth tokens to remove.")
    return 0
