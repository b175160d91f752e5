"""The compat command when no daemon answers: the plugin's request, exactly as it would have
gone over the socket, appended to a spool file beside the daemon's database for the daemon
to complete.

Standard library only: a plugin spawns this on every save while no daemon runs, and
pydantic, detection and the store cost ~300 ms to import; even sqlite3 costs ~7 ms to import
and ~15 ms a commit (each call is the database's last connection, so closing it checkpoints
the WAL). So nothing is detected or routed here: one JSON line (when it was received, and
the request: heartbeats with every field and per-call rule the flags gave, and the plugin's
`--key`) is appended to `offline-requests.jsonl` (0600, in the database's 0700 folder)
under an flock and fsync'ed. The daemon (agent.sources.offline_adopt) puts each request through the
same validation, detection, privacy rules and routing as a request on the socket.

Only the settings this needs are read here, the way `agent.config` reads them: the
database and socket locations, `[daemon] autostart`, and whether any API key is configured.
"""

from __future__ import annotations

import os
import sys

from agent.ipc.client import APP_NAME, SETTINGS_SOCKET_ENV, socket_file
from agent.ipc.protocol import dumps

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DATABASE_NAME = "heartbeats.sqlite3"
SPOOL_NAME = "offline-requests.jsonl"
APPEND_ATTEMPTS = 20  # the daemon may take the file away between our open and our lock
# pydantic's spellings of a boolean, which `agent.config` accepts.
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


class OfflineQueueError(Exception):
    """The request could not be committed (the message names the file)."""


class Locations:
    """What the fallback needs of the settings; `problem` is a configuration error found
    on the way (the defaults then stand in for what could not be read)."""

    __slots__ = ("autostart", "database", "has_key", "log_file", "problem", "socket")

    def __init__(self) -> None:
        self.database = default_database()
        self.socket = socket_file()
        self.autostart = True
        self.has_key = False
        self.log_file: str | None = None
        self.problem: str | None = None


def locations() -> Locations:
    """Settings as `agent.config.load_settings` would give them: environment over the TOML
    file over the defaults (and, for the key, ~/.wakatime.cfg)."""
    found = Locations()
    env = os.environ
    path, required = config_file()
    data: dict[str, Any] = {}
    try:
        data = _read_toml(path, required)
    except ValueError as exc:
        found.problem = str(exc)

    def setting(section: str, key: str) -> Any:
        name = f"HEARTBEAT_AGENT_{section.upper()}__{key.upper()}"
        if name in env:
            return env[name]
        table = data.get(section)
        return table.get(key) if isinstance(table, dict) else None

    database = setting("queue", "path")
    if isinstance(database, str) and database:
        database = os.path.expanduser(database)
        if os.path.isdir(database):
            found.problem = f"queue.path: {database}: a folder is where the database file goes"
        else:
            found.database = os.path.abspath(database)
    if SETTINGS_SOCKET_ENV not in env:
        toml_socket = setting("ipc", "socket")
        if isinstance(toml_socket, str) and toml_socket:
            found.socket = toml_socket
    autostart = setting("daemon", "autostart")
    if isinstance(autostart, str):
        word = autostart.strip().lower()
        if word not in _TRUE | _FALSE:
            found.problem = found.problem or f"daemon.autostart: {autostart!r} is not a boolean"
        autostart = word in _TRUE
    found.autostart = autostart is not False and found.problem is None
    log_file = setting("log", "file")
    found.log_file = os.path.expanduser(log_file) if isinstance(log_file, str) else None
    found.has_key = any(setting("api", key) for key in ("key", "key_command")) or _cfg_has_key()
    return found


def _cfg_has_key() -> bool:
    """`WAKATIME_API_KEY`, or `api_key`/`api_key_vault_cmd` in ~/.wakatime.cfg's [settings].

    A plain scan of the lines: agent.wakatime_cli.cfg's parser imports re and pathlib (~15 ms,
    a third of this path's budget) and only this yes/no is needed here."""
    if os.environ.get("WAKATIME_API_KEY"):
        return True
    home = os.path.expanduser(os.environ.get("WAKATIME_HOME") or "~")
    try:
        with open(os.path.join(home, ".wakatime.cfg"), encoding="utf-8", errors="replace") as file:
            text = file.read()
    except OSError:
        return False
    section = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip()
            continue
        if section != "settings" or stripped.startswith(("#", ";")):
            continue
        key, sep, value = stripped.replace(":", "=", 1).partition("=")
        if sep and key.strip() in ("api_key", "api_key_vault_cmd") and value.strip():
            return True
    return False


def config_file() -> tuple[str, bool]:
    """The TOML file and whether the user named it (`agent.config.find_config_file`)."""
    if named := os.environ.get("HEARTBEAT_AGENT_CONFIG"):
        return os.path.expanduser(named), True
    return os.path.join(_user_dir("XDG_CONFIG_HOME", ".config"), "config.toml"), False


def default_database() -> str:
    """platformdirs' user data folder for the agent, computed without importing it."""
    return os.path.join(_user_dir("XDG_DATA_HOME", os.path.join(".local", "share")), DATABASE_NAME)


def _user_dir(variable: str, fallback: str) -> str:
    home = os.path.expanduser("~")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Application Support", APP_NAME)
    base = os.environ.get(variable, "")
    if not base.strip():
        base = os.path.join(home, fallback)
    return os.path.join(base, APP_NAME)


def _read_toml(path: str, required: bool) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except FileNotFoundError:
        if required:
            raise ValueError(f"{path}: no such configuration file") from None
        return {}
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the configuration file: {exc}") from None
    import tomllib

    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from None


def spool_file(database: str | os.PathLike[str]) -> str:
    """The spool beside the database (so a test's temporary queue path isolates it too)."""
    return os.path.join(os.path.dirname(os.fspath(database)), SPOOL_NAME)


def requests_waiting(database: str | os.PathLike[str]) -> bool:
    """Whether requests wait for a daemon (a spool, or one a taker left after a crash)."""
    spool = spool_file(database)
    return os.path.exists(spool) or os.path.exists(spool + ".taking")


def write_request(database: str, request: dict[str, Any], now: float) -> None:
    """Append one request to the spool, durable on return (the file, and the folder entry
    of a new one, fsync'ed). The lock orders appenders and the daemon taking the file:
    once locked, the open file must still be the one at the path, else it was taken."""
    from agent.wakatime_cli.private_files import open_locked

    path = spool_file(database)
    line = (dumps({"received": now, "request": request}) + "\n").encode()
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        for _ in range(APPEND_ATTEMPTS):
            fd = open_locked(path, os.O_WRONLY | os.O_APPEND)
            try:
                opened = os.fstat(fd)
                try:
                    current = os.stat(path, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino):
                    continue
                _write_all(fd, line)
                os.fsync(fd)
                if opened.st_size == 0:  # a new file: its name must survive a crash too
                    _fsync_folder(os.path.dirname(path))
                return
            finally:
                os.close(fd)
    except OSError as exc:
        raise OfflineQueueError(f"{path}: {exc}") from None
    raise OfflineQueueError(f"{path}: taken away {APPEND_ATTEMPTS} times while appending")


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
