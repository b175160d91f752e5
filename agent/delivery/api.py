"""A small typed client for the WakaTime read endpoints: users/current, summaries,
stats/:range, durations, heartbeats, projects, user_agents. `agent stats` and `agent today`
read the server through it.

Models accept what the compatible servers (WakaTime, Wakapi, Hakatime, Hackatime) send:
fields they differ on are optional, and fields not modelled here are kept, not dropped.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from agent.config import KEY_SOURCES
from agent.delivery.sender import retry_after_seconds
from agent.delivery.transport import DeadlineClient, server_client
from agent.pipeline.useragent import machine_name, request_headers
from agent.redact import redact_url

if TYPE_CHECKING:
    from agent.config import Settings

# Waits between polls while the server computes stats (202): about 40 s in all.
STATS_RETRY_DELAYS = (2.0, 4.0, 8.0, 10.0, 15.0)
MAX_STATS_WAIT = 60.0
NO_CREDENTIALS = f"no credentials: {KEY_SOURCES}"
STATUS_BAR_ROUTE = "users/current/status_bar/today"


class ApiError(Exception):
    """A read that failed, worded for the user; status is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class StatsPending(ApiError):
    """The server was still computing the stats after every polite retry."""


T = TypeVar("T")


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class User(_Model):
    id: str
    username: str | None = None
    display_name: str | None = None
    full_name: str | None = None
    email: str | None = None
    timezone: str | None = None
    last_heartbeat_at: dt.datetime | None = None
    last_project: str | None = None
    last_plugin_name: str | None = None

    @property
    def name(self) -> str:
        return self.username or self.display_name or self.full_name or self.id


class Total(_Model):
    total_seconds: float = 0.0
    text: str = ""
    digital: str | None = None


class Item(_Model):
    """One row of a breakdown (a project, language, editor …) with its share of the time."""

    name: str
    total_seconds: float = 0.0
    percent: float = 0.0
    text: str = ""


class DayRange(_Model):
    date: dt.date | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    text: str | None = None
    timezone: str | None = None


class Summary(_Model):
    grand_total: Total
    range: DayRange
    projects: list[Item] = []
    languages: list[Item] = []
    editors: list[Item] = []
    operating_systems: list[Item] = []
    categories: list[Item] = []
    machines: list[Item] = []
    branches: list[Item] = []
    entities: list[Item] = []


class CumulativeTotal(_Model):
    seconds: float = 0.0
    text: str = ""


class Summaries(_Model):
    data: list[Summary]
    cumulative_total: CumulativeTotal | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None


class Stats(_Model):
    range: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    timezone: str | None = None
    username: str | None = None
    total_seconds: float = 0.0
    human_readable_total: str | None = None
    daily_average: float = 0.0
    human_readable_daily_average: str | None = None
    projects: list[Item] = []
    languages: list[Item] = []
    editors: list[Item] = []
    operating_systems: list[Item] = []
    categories: list[Item] = []
    machines: list[Item] = []
    is_up_to_date: bool | None = None
    percent_calculated: float | None = None
    status: str | None = None


class Duration(_Model):
    time: float
    duration: float
    project: str | None = None
    branch: str | None = None


class Listing(_Model, Generic[T]):
    """A day's list answer (durations, heartbeats): the items and the range they cover."""

    data: list[T]
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    timezone: str | None = None


Durations = Listing[Duration]


class HeartbeatRecord(_Model):
    entity: str
    type: str
    time: float
    id: str | None = None
    category: str | None = None
    project: str | None = None
    branch: str | None = None
    language: str | None = None
    is_write: bool | None = None


Heartbeats = Listing[HeartbeatRecord]


class Project(_Model):
    name: str
    id: str | None = None
    last_heartbeat_at: dt.datetime | None = None
    created_at: dt.datetime | None = None


class UserAgent(_Model):
    value: str
    id: str | None = None
    editor: str | None = None
    version: str | None = None
    os: str | None = None
    last_seen_at: dt.datetime | None = None


class WakaTimeApi:
    """Reads from one server with the default destination's credentials. After a 401 the
    credentials are refreshed (OAuth) once and the read is tried again."""

    def __init__(
        self,
        url: str,
        authorization: Callable[[], str | None],
        refresh: Callable[[], bool] = lambda: False,
        *,
        client: httpx.Client | None = None,
        hostname: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url.rstrip("/")
        self._authorization = authorization
        self._refresh = refresh
        self._client = client or DeadlineClient(60.0, follow_redirects=True, timeout=30.0)
        self._hostname = machine_name(hostname)
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> WakaTimeApi:
        """The default destination's server and credentials (OAuth tokens, else the API key,
        else its key command). Raises ConfigError for a destination that cannot be used."""
        from agent.delivery.auth import default_credentials
        from agent.pipeline.destinations import KeySource, configured_destinations

        default = configured_destinations(settings)[0]
        authorization, refresh, _ = default_credentials(settings, KeySource(default))
        return cls(
            settings.api.url,
            authorization,
            refresh,
            client=http_client(settings),
            hostname=settings.api.hostname,
            **options,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> WakaTimeApi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----- endpoints -----

    def current_user(self) -> User:
        return self._fetch(User, "users/current", data_only=True)

    def summaries(
        self,
        start: dt.date | str,
        end: dt.date | str,
        *,
        project: str | None = None,
        branches: Sequence[str] = (),
    ) -> Summaries:
        params = _without_none(
            start=str(start), end=str(end), project=project, branches=",".join(branches) or None
        )
        return self._fetch(Summaries, "users/current/summaries", params)

    def stats(
        self,
        range_name: str = "last_7_days",
        *,
        on_pending: Callable[[Stats, float], None] | None = None,
    ) -> Stats:
        """Stats for a range (last_7_days, last_30_days, last_6_months, last_year, all_time,
        YYYY or YYYY-MM). While the server answers 202 ("still computing"), on_pending is
        told and the server is asked again after a growing pause, a bounded number of times."""
        route = f"users/current/stats/{range_name}"
        for delay in (*STATS_RETRY_DELAYS, None):
            response = self._get(route, scope="read_stats")
            stats = self._read(Stats, _data(self._json(response, route)), route)
            if response.status_code != 202:
                return stats
            if delay is None:
                break
            hint = retry_after_seconds(response.headers.get("retry-after"), self._clock())
            wait = min(hint if hint is not None else delay, MAX_STATS_WAIT)
            if on_pending is not None:
                on_pending(stats, wait)
            self._sleep(wait)
        done = f" ({stats.percent_calculated:g}% done)" if stats.percent_calculated else ""
        raise StatsPending(
            f"the server is still computing the {range_name} stats{done}; try again in a few"
            " minutes",
            202,
        )

    def durations(
        self, day: dt.date | str, *, project: str | None = None, branches: Sequence[str] = ()
    ) -> Durations:
        params = _without_none(date=str(day), project=project, branches=",".join(branches) or None)
        return self._fetch(Durations, "users/current/durations", params)

    def heartbeats(self, day: dt.date | str) -> Heartbeats:
        return self._fetch(Heartbeats, "users/current/heartbeats", {"date": str(day)})

    def projects(self) -> list[Project]:
        return self._fetch(list[Project], "users/current/projects", data_only=True)

    def user_agents(self) -> list[UserAgent]:
        return self._fetch(list[UserAgent], "users/current/user_agents", data_only=True)

    def status_bar_today(self) -> dict[str, Any]:
        """The server's `status_bar/today` answer as it is: what plugins print for
        `--today` (DESIGN §2a), so it is passed on unread."""
        return self._fetch(dict, STATUS_BAR_ROUTE)

    # ----- transport -----

    def _fetch(
        self,
        shape: type[T],
        route: str,
        params: dict[str, str] | None = None,
        *,
        data_only: bool = False,
    ) -> T:
        """GET a route and read its answer (or only the answer's `data`) as shape."""
        body = self._json(self._get(route, params), route)
        return self._read(shape, _data(body) if data_only else body, route)

    def _get(
        self, route: str, params: dict[str, str] | None = None, scope: str = "read_logged_time"
    ) -> httpx.Response:
        url = f"{self.url}/{route}"
        refreshed = False
        while True:
            authorization = self._authorization()
            if authorization is None:
                raise ApiError(NO_CREDENTIALS)
            headers = {
                "Accept": "application/json",
                **request_headers(authorization, self._hostname, None),
            }
            try:
                response = self._client.get(url, params=params, headers=headers)
            except httpx.HTTPError as exc:
                raise ApiError(
                    f"cannot reach {redact_url(self.url)}: {type(exc).__name__}"
                ) from None
            if response.status_code == 401 and not refreshed and self._refresh():
                refreshed = True
                continue
            break
        if response.status_code >= 400:
            raise _status_error(response, route, scope)
        return response

    def _json(self, response: httpx.Response, route: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                f"{route}: the server's answer is not JSON", response.status_code
            ) from None

    def _read(self, shape: type[T], data: Any, route: str) -> T:
        try:
            return TypeAdapter(shape).validate_python(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "answer"
            raise ApiError(
                f"{route}: unexpected answer from the server: {where}: {error['msg']}"
            ) from None


def http_client(settings: Settings) -> httpx.Client:
    """A client for reading from the default server: each request within a deadline."""
    return server_client(settings.api, follow_redirects=True)


def _data(body: Any) -> Any:
    return body.get("data") if isinstance(body, dict) else None


def _without_none(**params: str | None) -> dict[str, str]:
    return {name: value for name, value in params.items() if value is not None}


def _status_error(response: httpx.Response, route: str, scope: str) -> ApiError:
    """The cause of a refusal in words: credentials, a missing scope, limits, the server."""
    status = response.status_code
    message = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = body.get("error") or body.get("errors") or body.get("message")
        message = f": {detail}" if isinstance(detail, str) else ""
    if status == 401:
        text = (
            f"the server refused the credentials (HTTP 401){message}: run `agent login` again,"
            " or check the API key"
        )
    elif status == 403:
        text = (
            f"scope missing (HTTP 403){message}: reading {route} needs the `{scope}` scope;"
            " add it to [oauth] scopes and run `agent login` again"
        )
    elif status == 429:
        text = f"the server limits requests (HTTP 429){message}; try again later"
    else:
        text = f"{route}: HTTP {status} from the server{message}"
    return ApiError(text, status)
