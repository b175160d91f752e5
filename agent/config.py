"""Settings and where they come from.

Priority, highest first: command-line flags, `HEARTBEAT_AGENT_…` environment (nested with
`__`), the TOML file, then — for the API key and URL only — `WAKATIME_API_KEY` and the
user's `~/.wakatime.cfg`, so a WakaTime user needs no setup at all.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from agent.redact import redact_url
from agent.sources.ignore import DEFAULT_IGNORED_DIRS
from agent.wakatime_cli import cfg as wakatime_cfg

APP_NAME = "heartbeat-agent"
DEFAULT_API_URL = "https://wakatime.com/api/v1"


# Where a key can come from, for every message that says one is missing.
KEY_SOURCES = (
    "put your API key (https://wakatime.com/api-key, or your server's settings page) in"
    " ~/.wakatime.cfg as `api_key = ...` under [settings], or set HEARTBEAT_AGENT_API__KEY or"
    " [api] key in the config file; `agent login` works instead once [oauth] client_id names"
    " an OAuth app you registered"
)


class ConfigError(Exception):
    """A setting that cannot be used; the message names the source, key and reason."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def insecure_host(url: str) -> str | None:
    """The host a plain-http URL sends to when that is not this machine, else None."""
    parts = urlsplit(url)
    if parts.scheme == "http" and parts.hostname and not is_loopback(parts.hostname):
        return parts.hostname
    return None


def check_api_url(url: str, *, allow_insecure_http: bool = False) -> str:
    """An http(s) URL, trimmed; plain http only to this machine unless allowed (keys and
    activity cross the network in the clear otherwise)."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # Not echoed: what stands where a URL belongs is often a key (`key|url` swapped).
        raise ValueError("is not an http(s) URL")
    if not allow_insecure_http and insecure_host(url):
        raise ValueError(
            f"{redact_url(url)!r} uses plain http; only https is allowed for non-loopback hosts"
        )
    return url


def _http_url(url: str) -> str:
    """Settings take any http(s) URL; whether plain http may be used is decided per
    destination (agent.pipeline.destinations), so a heartbeat is never lost over it."""
    return check_api_url(url, allow_insecure_http=True)


ApiUrl = Annotated[str, AfterValidator(_http_url)]


def check_patterns(values: list[str]) -> list[str]:
    """Path regexes must compile (case-insensitive, as destinations use them)."""
    for value in values:
        try:
            re.compile(value, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return values


PathPatterns = Annotated[list[str], AfterValidator(check_patterns)]


def path_list(value: Any) -> Any:
    """Watch paths as people write them in a variable: a JSON list (`'["~/a", "~/b"]'`),
    one path (`~/code`), or several separated by `,` or `:` (the os.pathsep)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        import json

        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError(
                f"not a valid JSON list ({exc}); write one path, paths separated by ',' or"
                f' {os.pathsep!r}, or a JSON list such as ["~/code", "~/work"]'
            ) from None
    return [part.strip() for part in re.split(f"[,{re.escape(os.pathsep)}]", text) if part.strip()]


# NoDecode: the environment's value reaches `path_list` as the text it is.
PathList = Annotated[list[Path], NoDecode, BeforeValidator(path_list)]


def not_a_folder(value: Path | None) -> Path | None:
    """A database file's path: naming an existing folder is a mistake worth one clear line."""
    if value is not None and value.expanduser().is_dir():
        raise ValueError(
            f"{value}: a folder is where the database file goes; name a file in it"
            f" (e.g. {value}/heartbeats.sqlite3)"
        )
    return value


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class ApiSettings(Section):
    url: ApiUrl = DEFAULT_API_URL
    key: SecretStr | None = None
    key_command: str | None = None  # like wakatime-cli's api_key_vault_cmd: prints the key
    timeout: float = Field(30.0, gt=0, le=600)
    proxy: str | None = None
    ca_bundle: Path | None = None
    hostname: str | None = None
    # Plain http to another machine (a self-hosted server on the LAN) from this file or the
    # environment; ~/.wakatime.cfg's URLs and a plugin's --api-url need no opt-in, as
    # wakatime-cli sends to them (agent.pipeline.destinations).
    allow_insecure_http: bool = False


class DestinationSettings(Section):
    name: str = Field(min_length=1)
    url: ApiUrl
    key: SecretStr | None = None
    key_command: str | None = None
    include: PathPatterns = []  # regexes on the file path; empty = every heartbeat
    exclude: PathPatterns = []


class WatchSettings(Section):
    paths: PathList = []  # empty: the folder `agent run` starts in, or the code folders in ~
    exclude: PathPatterns = []
    include: PathPatterns = []
    ignored_dirs: list[str] = list(DEFAULT_IGNORED_DIRS)
    follow_symlinks: bool = False
    use_gitignore: bool = True
    # Seconds between looks for watch folders created since (and new code folders in ~).
    rescan_interval: float = Field(60.0, gt=0)


class HeartbeatSettings(Section):
    debounce_seconds: float = Field(2.0, ge=0)
    autosave_interval: float = Field(30.0, gt=0)
    heartbeat_interval: float = Field(120.0, gt=0)
    storm_files: int = Field(2, ge=1)
    storm_window: float = Field(2.0, gt=0)
    plugin_grace: float = Field(120.0, ge=0)
    plugin_wait: float = Field(60.0, ge=0)
    hide_file_names: bool = False
    hide_project_names: bool = False
    hide_branch_names: bool = False
    exclude_unknown_project: bool = False
    include_only_with_project_file: bool = False
    # Heartbeats at most this far apart join into coding time (WakaTime's keystroke timeout).
    duration_timeout: float = Field(900.0, gt=0, le=86400)


class QueueSettings(Section):
    path: Annotated[Path | None, AfterValidator(not_a_folder)] = None  # default: user data dir
    batch_size: int = Field(25, ge=1, le=1000)
    max_queued: int = Field(1_000_000, ge=1000)
    history_days: int = Field(30, ge=1)


class AiSettings(Section):
    """AI coding activity read from the AI tools' transcripts (README: AI coding activity)."""

    enabled: bool = True
    backfill_days: float = Field(14.0, ge=0, le=3650)  # transcript history sent on first read


class IpcSettings(Section):
    socket: Path | None = None  # default: $XDG_RUNTIME_DIR/heartbeat-agent/agent.sock


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    file: Path | None = None


class DaemonSettings(Section):
    # The compat command starts a daemon when none answers (a plugin's call, nothing else).
    autostart: bool = True


class OAuthSettings(Section):
    client_id: str | None = None
    client_secret: SecretStr | None = None
    authorize_url: str = "https://wakatime.com/oauth/authorize"
    token_url: str = "https://wakatime.com/oauth/token"
    scopes: list[str] = ["read_logged_time", "write_logged_time", "read_stats"]


class Settings(BaseSettings):
    """Everything the agent can be told; see config.example.toml."""

    model_config = SettingsConfigDict(
        env_prefix="HEARTBEAT_AGENT_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    api: ApiSettings = ApiSettings()
    destinations: list[DestinationSettings] = []
    watch: WatchSettings = WatchSettings()
    heartbeats: HeartbeatSettings = HeartbeatSettings()
    projects: dict[str, str] = {}  # path regex -> project name ({0}-style captures)
    queue: QueueSettings = QueueSettings()
    ipc: IpcSettings = IpcSettings()
    ai: AiSettings = AiSettings()
    log: LogSettings = LogSettings()
    oauth: OAuthSettings = OAuthSettings()
    daemon: DaemonSettings = DaemonSettings()

    # Where the TOML file is, recorded for messages and `config show`.
    config_file: Path | None = Field(default=None, exclude=True)

    @field_validator("destinations")
    @classmethod
    def _names_unique(cls, value: list[DestinationSettings]) -> list[DestinationSettings]:
        """Names key the delivery state; `default` and `api_urls:…` are the agent's own."""
        names = [item.name for item in value]
        for name in names:
            if name == "default" or name.startswith(("api_urls:", "project_api_key:")):
                raise ValueError(f"the name {name!r} is reserved; choose another")
            if names.count(name) > 1:
                raise ValueError(f"the name {name!r} is used twice")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, *_file_sources.get()

    def database_path(self) -> Path:
        if self.queue.path is not None:
            return self.queue.path.expanduser()
        return Path(platformdirs.user_data_dir(APP_NAME)) / "heartbeats.sqlite3"

    def socket_path(self) -> Path:
        from agent.ipc.client import default_socket_path

        return self.ipc.socket or default_socket_path()

    def keep_locations_of(self, running: Settings) -> list[str]:
        """Settings reloaded into a running daemon keep its database and socket (moving them
        needs a restart); what was asked for in vain, in words."""
        kept = []
        for name, old, new in (
            ("[queue] path", running.database_path(), self.database_path()),
            ("[ipc] socket", running.socket_path(), self.socket_path()),
        ):
            if old != new:
                kept.append(f"{name} changed to {new}: takes effect at the next restart")
        self.queue.path, self.ipc.socket = running.database_path(), running.socket_path()
        return kept


class _DictSource(PydanticBaseSettingsSource):
    """A settings source that is a plain dict already read (the TOML file, ~/.wakatime.cfg)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self.data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self.data


# The file-based sources of the load under way (settings_customise_sources is a classmethod).
_file_sources: ContextVar[tuple[PydanticBaseSettingsSource, ...]] = ContextVar(
    "file_sources", default=()
)


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def find_config_file(explicit: str | os.PathLike[str] | None) -> tuple[Path, bool]:
    """The TOML file to read and whether the user named it (then it must exist)."""
    if explicit:
        return Path(explicit).expanduser(), True
    if env := os.environ.get("HEARTBEAT_AGENT_CONFIG"):
        return Path(env).expanduser(), True
    return default_config_path(), False


def read_toml(path: Path, required: bool) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(f"{path}: no such configuration file") from None
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def wakatime_fallback() -> dict[str, Any]:
    """API key, URL and hostname from `WAKATIME_API_KEY` and ~/.wakatime.cfg (read as
    wakatime-cli reads them: quotes stripped, old spellings too), for a zero-setup start."""
    cfg = wakatime_cfg.load()
    api: dict[str, Any] = {}
    key = os.environ.get("WAKATIME_API_KEY") or wakatime_cfg.setting(
        cfg, "settings", "api_key", "apikey"
    )
    if key:
        api["key"] = key
    elif vault := wakatime_cfg.setting(cfg, "settings", "api_key_vault_cmd"):
        api["key_command"] = vault
    if url := wakatime_cfg.setting(cfg, "settings", "api_url"):
        api["url"] = url
    if hostname := wakatime_cfg.setting(cfg, "settings", "hostname"):
        api["hostname"] = hostname
    api.update(_wakatime_network(cfg))
    return {"api": api} if api else {}


# Proxies httpx can use; wakatime-cli also takes NTLM's `domain\\user:pass`, which it cannot.
_PROXY_SCHEMES = ("http://", "https://")
_TIMEOUT_MAX = 600.0  # [api] timeout's bound; wakatime-cli sets none


def _wakatime_network(cfg: dict[str, dict[str, str]]) -> dict[str, Any]:
    """`proxy`, `ssl_certs_file` and `timeout` of ~/.wakatime.cfg's [settings], where
    they can be used: wakatime-cli ignores a timeout that is not a whole number, so does
    this; a CA file that does not exist, or a proxy httpx cannot speak, is left out (the
    system's CAs and the environment's proxy apply) rather than stopping delivery."""
    found: dict[str, Any] = {}
    if (proxy := wakatime_cfg.setting(cfg, "settings", "proxy")).startswith(_PROXY_SCHEMES):
        found["proxy"] = proxy
    certs = wakatime_cfg.setting(cfg, "settings", "ssl_certs_file")
    if certs and os.path.isfile(path := os.path.expanduser(certs)):
        found["ca_bundle"] = Path(path)
    with contextlib.suppress(ValueError):
        if (seconds := int(wakatime_cfg.setting(cfg, "settings", "timeout"))) > 0:
            found["timeout"] = min(float(seconds), _TIMEOUT_MAX)
    return found


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Read every source and validate; raises ConfigError with one line naming the culprit."""
    path, required = find_config_file(config_file)
    file_data = read_toml(path, required)
    fallback = wakatime_fallback()
    token = _file_sources.set(
        (
            _DictSource(Settings, file_data),
            _DictSource(Settings, _only_missing(fallback, file_data)),
        )
    )
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, file_data, fallback)) from None
    except SettingsError as exc:  # a variable holding malformed JSON
        raise ConfigError(_describe_env_error(exc)) from None
    finally:
        _file_sources.reset(token)
    settings.config_file = path if path.exists() else None
    return settings


def _only_missing(fallback: dict[str, Any], file_data: dict[str, Any]) -> dict[str, Any]:
    """The fallback only fills what the TOML file and the environment left unset."""
    api = dict(fallback.get("api", {}))
    file_api = file_data.get("api", {}) if isinstance(file_data.get("api"), dict) else {}
    for name in list(api):
        env = f"HEARTBEAT_AGENT_API__{name.upper()}"
        if name in file_api or env in os.environ:
            del api[name]
    if "key" in file_api or "HEARTBEAT_AGENT_API__KEY" in os.environ:
        api.pop("key_command", None)
    return {"api": api} if api else {}


def _describe(
    exc: ValidationError, path: Path, file_data: dict[str, Any], fallback: dict[str, Any]
) -> str:
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc)
    env = "HEARTBEAT_AGENT_" + "__".join(part.upper() for part in loc)
    # A missing key is the fault of the table that lacks it.
    in_file = error["loc"][:-1] if error["type"] == "missing" else error["loc"]
    if _lookup(file_data, in_file) is not _MISSING:
        source = str(path)
    elif env in os.environ or f"HEARTBEAT_AGENT_{loc[0].upper()}" in os.environ:
        source = f"environment {env}"
    elif _lookup(fallback, error["loc"]) is not _MISSING:
        source = str(wakatime_cfg.default_path())
    else:
        source = "settings"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown setting"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{source}: {key}: {message}{more}"


def _describe_env_error(exc: SettingsError) -> str:
    """pydantic-settings names only the section (`field "watch"`): name the variables."""
    found = re.search(r'field "([^"]+)"', str(exc))
    section = found.group(1).upper() if found else ""
    prefix = f"HEARTBEAT_AGENT_{section}"
    names = sorted(name for name in os.environ if name.upper().startswith(prefix)) or [prefix]
    return (
        f"environment {' or '.join(names)}: not valid JSON ({exc.__cause__ or exc}); lists and"
        """ tables are JSON, e.g. HEARTBEAT_AGENT_WATCH__EXCLUDE='["/tmp/", "\\\\.log$"]'"""
    )


_MISSING = object()


def _lookup(data: Any, loc: tuple[int | str, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return data
