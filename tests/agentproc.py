"""Running the real `agent` as a subprocess, isolated in a temp home.

`agent_env` makes an environment whose every path (home, config, data, runtime, socket)
lies under one temp folder; `AgentProcess` starts `agent run` and waits for its "ready"
log line (an event, not a sleep), and stops it with a signal.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

AGENT = shutil.which("agent", path=str(Path(sys.executable).parent)) or "agent"
WAKATIME_CLI = shutil.which("wakatime-cli", path=str(Path(sys.executable).parent)) or "wakatime-cli"

# The watcher holds a write for max(debounce_seconds, storm_window) of quiet (2 s by default)
# before it may count. Tests about what follows a save, not about that hold, shorten it with
# `agent_env(..., **SHORT_HOLD)`: a save is delivered in ~0.3 s instead of 2 s.
SHORT_HOLD = {
    "HEARTBEAT_AGENT_HEARTBEATS__DEBOUNCE_SECONDS": "0.3",
    "HEARTBEAT_AGENT_HEARTBEATS__STORM_WINDOW": "0.3",
}


def agent_env(
    root: Path, api_url: str | None = None, api_key: str | None = "waka_test_key", **extra: str
) -> dict[str, str]:
    """An environment isolated under root; HEARTBEAT_AGENT_* names as DESIGN.md §4 says."""
    home = root / "home"
    runtime = root / "run"
    for folder in (home, runtime):
        folder.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HEARTBEAT_AGENT_", "WAKATIME_", "XDG_"))
        and key not in ("NOTIFY_SOCKET", "INVOCATION_ID", "JOURNAL_STREAM")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        XDG_RUNTIME_DIR=str(runtime),
        HEARTBEAT_AGENT_QUEUE__PATH=str(root / "data" / "heartbeats.sqlite3"),
        PYTHONUNBUFFERED="1",
        # A test that wants a plugin's call to start the daemon says so.
        HEARTBEAT_AGENT_DAEMON__AUTOSTART="false",
    )
    if api_url is not None:
        env["HEARTBEAT_AGENT_API__URL"] = api_url
    if api_key is not None:
        env["HEARTBEAT_AGENT_API__KEY"] = api_key
    env.update(extra)
    return env


class AgentProcess:
    """`agent run` in a subprocess; stderr is collected line by line."""

    def __init__(
        self, env: dict[str, str], cwd: Path | str, *args: str, prefix: tuple[str, ...] = ()
    ) -> None:
        self.env = env
        self.cwd = cwd
        self.args = args
        self.prefix = prefix  # a command that runs the agent (in a namespace, as a user)
        self.lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.proc: subprocess.Popen[str] | None = None

    def start(self, ready_timeout: float = 20.0) -> AgentProcess:
        self.proc = subprocess.Popen(
            [*self.prefix, AGENT, "run", *self.args],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()
        self.wait_for_log("ready", ready_timeout)
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_for_log(self, text: str, timeout: float = 20.0, count: int = 1) -> str:
        """Block until `count` log lines containing text appeared (lines seen earlier count
        too); the last of them."""
        found = [line for line in self.lines if text in line]
        if len(found) >= count:
            return found[count - 1]
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no log line with {text!r} within {timeout}s:\n" + "\n".join(self.lines)
                ) from None
            if line is None:
                raise AssertionError(
                    f"agent exited ({self.proc and self.proc.poll()}) before logging {text!r}:\n"
                    + "\n".join(self.lines)
                )
            self.lines.append(line)
            if text in line:
                found.append(line)
                if len(found) == count:
                    return line

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        while (line := self._drain()) is not None:
            self.lines.append(line)
        return code

    def _drain(self) -> str | None:
        try:
            return self._lines.get(timeout=2)
        except queue.Empty:
            return None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def __enter__(self) -> AgentProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.kill()


def git_repo(path: Path, branch: str = "main") -> Path:
    """A real git repository with one commit, on the named branch."""
    path.mkdir(parents=True, exist_ok=True)
    run = {"cwd": path, "check": True, "capture_output": True}
    subprocess.run(["git", "init", "-q", "-b", branch], **run)  # type: ignore[call-overload]
    subprocess.run(  # type: ignore[call-overload]
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
        **run,
    )
    return path
