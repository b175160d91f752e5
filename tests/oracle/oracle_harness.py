"""The differential harness: one heartbeat request, given to the real wakatime-cli and to
the agent's compat command, with the same ~/.wakatime.cfg and the same files; what each
server receives is compared field by field.

Each case builds the same tree (a git repo, an hg repo, a folder with a `.wakatime-project`,
a loose folder, symlinks) under a fresh root, writes `home/.wakatime.cfg` with the case's
settings and `api_url` pointing at a loopback `Recorder`, and runs the command with the
case's flags (`{root}` stands for the root; relative entities run from `cwd`). What the
recorder receives is normalised (paths under the root become `{root}/…`, the user agent
keeps only its editor part) so that runs in different folders compare, and so that answers
recorded from the real wakatime-cli (tests/oracle/golden, scripts/oracles/) replay anywhere.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts" / "oracles"))

from wakatime_cli import DEFAULT_ORACLES, ORACLES_ENV
from wakatime_cli import oracle_binary as find_oracle

PLUGIN = "vim/9.1.0 vim-wakatime/11.2.0"
# wakatime-cli checks the key's shape (a UUID, optionally `waka_`-prefixed).
API_KEY = "waka_4f1f9e5a-8c7e-4d4e-9b8a-2f0e6c1d3a5b"
OTHER_KEY = "waka_0d8c3b2a-1e4f-4a6b-8c9d-7e6f5a4b3c2d"
GOLDEN = Path(__file__).parent / "golden"
# The fields compared, as the issue lists them; `editor` is user_agent's plugin part, `key`
# the API key the heartbeat was sent with, `machine` the X-Machine-Name header.
FIELDS = (
    "entity",
    "type",
    "category",
    "project",
    "branch",
    "language",
    "lines",
    "dependencies",
    "lineno",
    "cursorpos",
    "is_write",
    "editor",
    "key",
    "machine",
    "server",
)


def oracle_binary() -> tuple[Path | None, str]:
    """The real wakatime-cli, or None and why not."""
    binary = find_oracle("wakatime-cli")
    if binary is not None:
        return binary, ""
    folder = os.environ.get(ORACLES_ENV) or DEFAULT_ORACLES
    return None, f"no wakatime-cli in {folder} (set {ORACLES_ENV} to the folder that has it)"


# -- the loopback server ------------------------------------------------------------------


class Recorder:
    """A WakaTime-compatible server that accepts any key and records each heartbeat with the
    key and machine name it came with."""

    def __init__(self, name: str = "main") -> None:
        self.name = name
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                items = body if isinstance(body, list) else [body]
                recorder.record(items, self.headers.get("Authorization", ""), self.headers)
                if self.path.endswith(".bulk"):
                    answer: Any = {"responses": [[{"data": item}, 201] for item in items]}
                    self._answer(202, answer)
                else:
                    self._answer(201, {"data": items[0]})

            def do_GET(self) -> None:
                self._answer(200, {"data": {}})

            def _answer(self, status: int, data: Any) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll: shutdown waits for the loop to look (0.5 s by default, twice a case).
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v1"

    def record(self, items: list[Any], authorization: str, headers: Any) -> None:
        key = ""
        if authorization.startswith("Basic "):
            key = base64.b64decode(authorization[6:]).decode().rstrip(":")
        with self._lock:
            for item in items:
                self.received.append(
                    {
                        **item,
                        "key": key,
                        "machine": headers.get("X-Machine-Name"),
                        "server": self.name,
                    }
                )

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the files every case works on -----------------------------------------------------


def _run(argv: list[str], cwd: Path) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, timeout=60)


def build_template(root: Path) -> None:
    """The tree each case gets a fresh copy of."""
    shop = root / "repos" / "shop"
    (shop / "secret").mkdir(parents=True)
    _run(["git", "init", "-q", "-b", "main"], shop)
    _run(["git", "remote", "add", "origin", "https://github.com/acme/webshop.git"], shop)
    (shop / "app.py").write_text("import os\nimport flask\n\n\ndef main():\n    pass\n")
    (shop / "secret" / "plan.py").write_text("import requests\n")
    (shop / "README.md").write_text("# Shop\n")
    feature = root / "repos" / "feature"
    feature.mkdir(parents=True)
    _run(["git", "init", "-q", "-b", "feature/secret-sauce"], feature)
    _run(["git", "remote", "add", "origin", "git@github.com:acme/secret-sauce.git"], feature)
    (feature / "sauce.go").write_text('package main\n\nimport "net/http"\n')
    library = root / "upstream" / "lib"
    library.mkdir(parents=True)
    _run(["git", "init", "-q", "-b", "main"], library)
    (library / "util.py").write_text("import json\n")
    _run(["git", "add", "."], library)
    _run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "l"],
        library,
    )
    app = root / "repos" / "app"
    app.mkdir(parents=True)
    _run(["git", "init", "-q", "-b", "main"], app)
    submodule = ["git", "-c", "protocol.file.allow=always", "submodule", "add", "-q"]
    _run([*submodule, "--name", "shared-lib", "../../upstream/lib", "vendor/lib"], app)
    hgproj = root / "repos" / "hgproj"
    hgproj.mkdir(parents=True)
    _run(["hg", "init"], hgproj)
    _run(["hg", "branch", "-q", "stable"], hgproj)
    (hgproj / "main.rs").write_text("use std::io;\n\nfn main() {}\n")
    marked = root / "marked" / "sub"
    marked.mkdir(parents=True)
    (root / "marked" / ".wakatime-project").write_text("Marked Project\nrelease\n")
    (marked / "tool.ts").write_text("import { x } from 'lodash';\nexport {};\n")
    loose = root / "loose"
    loose.mkdir()
    (loose / "notes.txt").write_text("one\ntwo\n")
    # Relative targets: a copy of the tree links within itself.
    (loose / "linked.py").symlink_to(Path("..", "repos", "shop", "app.py"))
    (root / "link").symlink_to(Path("repos", "shop"))
    (root / "home").mkdir()


# -- the cases --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]
    cfg: str = ""  # more [settings] lines, and other sections after them
    cwd: str = ""  # relative to the root
    api_url: str = "{url}"  # as written in the cfg; {url} is the recorder's
    key: str = API_KEY  # as written in the cfg
    # Symlinks made in the copy, (link, target), both under {root}: absolute targets.
    links: tuple[tuple[str, str], ...] = ()
    stdin: str = ""  # the `--extra-heartbeats` line ({root} replaced)
    # For the agent only: what differs on purpose (README, "Differences from wakatime-cli").
    notes: dict[str, str] = field(default_factory=dict)


def _file(path: str, *more: str) -> tuple[str, ...]:
    return ("--entity", path, "--plugin", PLUGIN, *more)


CASES: tuple[Case, ...] = (
    Case(
        "git_file",
        _file("{root}/repos/shop/app.py", "--write", "--lineno", "3", "--cursorpos", "7"),
    ),
    Case("git_relative", _file("app.py", "--lineno", "1"), cwd="repos/shop"),
    Case(
        "symlinked_folder",
        _file("{root}/link/app.py"),
        notes={
            "entity": "the folder symlink is resolved: the real path and the real project"
            " (`shop`); wakatime-cli v1.90 keeps the link's path and names the project after"
            " the link (`link`)"
        },
    ),
    Case(
        "symlinked_folder_and_relative_link",
        _file("{root}/loose/linked.py"),
        notes={
            "entity": "every symlink in the path is resolved (the real file, so its project);"
            " wakatime-cli v1.90 follows only a link that is the file itself, one level, and"
            " takes a relative target against the current folder: it drops this heartbeat as"
            " a missing file"
        },
    ),
    Case(
        "symlinked_file_absolute",
        _file("{root}/loose/shortcut.py"),
        links=(("loose/shortcut.py", "repos/shop/app.py"),),
    ),
    Case("hg_file", _file("{root}/repos/hgproj/main.rs")),
    Case("project_file", _file("{root}/marked/sub/tool.ts")),
    Case("no_project", _file("{root}/loose/notes.txt")),
    Case("missing_file", _file("{root}/repos/shop/gone.py")),
    Case("unsaved_buffer", _file("{root}/repos/shop/draft.py", "--is-unsaved-entity")),
    Case("app_entity", ("--entity", "Xcode", "--entity-type", "app", "--plugin", PLUGIN)),
    Case(
        "app_entity_hidden",
        ("--entity", "Xcode", "--entity-type", "app", "--plugin", PLUGIN),
        cfg="hide_file_names = true",
    ),
    Case("project_flag_in_git", _file("{root}/repos/shop/app.py", "--project", "Override")),
    Case("project_flag_vs_project_file", _file("{root}/marked/sub/tool.ts", "--project", "Flag")),
    Case("alternate_project", _file("{root}/loose/notes.txt", "--alternate-project", "Alt")),
    Case("lines_in_file_given", _file("{root}/repos/shop/app.py", "--lines-in-file", "99")),
    Case(
        "unsaved_buffer_hidden",
        _file("{root}/repos/shop/draft.py", "--is-unsaved-entity"),
        cfg="hide_file_names = true",
    ),
    Case(
        "extra_heartbeats",
        _file("{root}/repos/shop/app.py", "--extra-heartbeats"),
        cwd="repos/shop",
        stdin='[{"entity": "README.md", "time": {t0}, "lineno": 1},'
        ' {"entity": "{root}/repos/hgproj/main.rs", "time": {t1}, "is_write": true},'
        ' {"entity": "gone.py", "time": {t2}}]',
    ),
    Case(
        "language_override",
        _file("{root}/loose/notes.txt", "--language", "Markdown", "--category", "writing docs"),
    ),
    Case("hide_file_names_true", _file("{root}/repos/shop/app.py"), cfg="hide_file_names = true"),
    Case(
        "hide_file_names_regex",
        _file("{root}/repos/shop/secret/plan.py", "--lineno", "1"),
        cfg="hide_file_names =\n    /secret/\n    \\.env$",
    ),
    Case(
        "hide_file_names_regex_unmatched",
        _file("{root}/repos/shop/app.py", "--lineno", "1"),
        cfg="hide_file_names =\n    /secret/",
    ),
    Case(
        "hide_file_keeps_branch_when_false",
        _file("{root}/repos/shop/app.py"),
        cfg="hide_file_names = true\nhide_branch_names = false",
    ),
    Case(
        "hide_branch_names_regex",
        _file("{root}/repos/feature/sauce.go"),
        cfg="hide_branch_names = ^feature/",
    ),
    Case(
        "hide_project_names_true",
        _file("{root}/repos/shop/app.py", "--lineno", "2"),
        cfg="hide_project_names = true",
        notes={
            "project": "an invented name in both; the agent derives it from the folder (stable,"
            " nothing written) where wakatime-cli picks one at random and writes it into a"
            " .wakatime-project file in the user's tree"
        },
    ),
    Case(
        "hide_project_names_keeps_project_file_name",
        _file("{root}/marked/sub/tool.ts"),
        cfg="hide_project_names = true",
    ),
    Case(
        "exclude_matches",
        _file("{root}/repos/shop/secret/plan.py"),
        cfg="exclude =\n    ^/nowhere/\n    SECRET",
    ),
    Case(
        "include_beats_exclude",
        _file("{root}/repos/shop/secret/plan.py"),
        cfg="exclude = secret\ninclude = plan\\.py$",
    ),
    Case("exclude_flag", _file("{root}/repos/shop/app.py", "--exclude", "shop/app")),
    Case(
        "hide_flag_false_beats_cfg",
        _file("{root}/repos/shop/app.py", "--hide-file-names", "false"),
        cfg="hide_file_names = true",
    ),
    Case("hide_flag_true", _file("{root}/repos/shop/app.py", "--hide-file-names", "true")),
    Case(
        "exclude_unknown_project_drops",
        _file("{root}/loose/notes.txt"),
        cfg="exclude_unknown_project = true",
    ),
    Case(
        "exclude_unknown_project_keeps",
        _file("{root}/repos/shop/app.py"),
        cfg="exclude_unknown_project = true",
    ),
    Case(
        "include_only_with_project_file_drops",
        _file("{root}/repos/shop/app.py"),
        cfg="include_only_with_project_file = true",
    ),
    Case(
        "include_only_with_project_file_keeps",
        _file("{root}/marked/sub/tool.ts"),
        cfg="include_only_with_project_file = true",
    ),
    Case(
        "projectmap",
        _file("{root}/loose/notes.txt"),
        cfg="[projectmap]\nLOOSE = Loose Notes",
    ),
    Case(
        "projectmap_captures",
        _file("{root}/repos/shop/app.py"),
        cfg="[projectmap]\nrepos/([^/]+)/ = Client {0}",
    ),
    Case(
        "project_api_key",
        _file("{root}/repos/shop/app.py"),
        cfg=f"[project_api_key]\nrepos/shop = {OTHER_KEY}",
    ),
    Case(
        "git_project_from_remote",
        _file("{root}/repos/feature/sauce.go"),
        cfg="[git]\nproject_from_git_remote = true",
    ),
    Case(
        "git_project_from_https_remote",
        _file("{root}/repos/shop/app.py"),
        cfg="[git]\nproject_from_git_remote = true",
        notes={
            "project": "`acme/webshop` from https://github.com/acme/webshop.git; wakatime-cli"
            " v1.90 takes everything after the first colon: `//github.com/acme/webshop`"
        },
    ),
    Case("git_submodule", _file("{root}/repos/app/vendor/lib/util.py")),
    Case(
        "git_submodules_disabled",
        _file("{root}/repos/app/vendor/lib/util.py"),
        cfg="[git]\nsubmodules_disabled = true",
    ),
    Case(
        "git_submodules_disabled_elsewhere",
        _file("{root}/repos/app/vendor/lib/util.py"),
        cfg="[git]\nsubmodules_disabled =\n    /nowhere/",
    ),
    Case(
        "git_submodule_projectmap",
        _file("{root}/repos/app/vendor/lib/util.py"),
        cfg="[git_submodule_projectmap]\nshared-.* = Shared Library",
    ),
    Case("hostname", _file("{root}/repos/shop/app.py"), cfg="hostname = build-box-7"),
    Case(
        "quoted_values",
        _file("{root}/repos/shop/app.py"),
        cfg="hide_branch_names = 'true'",
        api_url="'{url}'",
        key=f'"{API_KEY}"',
    ),
    Case(
        "plain_http_to_another_host",
        _file("{root}/repos/shop/app.py"),
        api_url="{lan_url}",
    ),
    Case(
        "api_urls",
        _file("{root}/repos/shop/app.py"),
        cfg="[api_urls]\nrepos/shop = {second_url}|" + OTHER_KEY,
        notes={
            "extra": "wakatime-cli v1.90 has no [api_urls]; the agent reads it (as wakatime-cli"
            " 2.x does) and sends a copy to that server too"
        },
    ),
)


def cfg_text(case: Case, url: str, second_url: str) -> str:
    """The case's ~/.wakatime.cfg."""
    api_url = case.api_url.format(url=url, lan_url=url.replace("127.0.0.1", "0.0.0.0"))
    settings, _, sections = case.cfg.partition("\n[")
    if case.cfg.startswith("["):
        settings, sections = "", case.cfg[1:]
    text = f"[settings]\napi_key = {case.key}\napi_url = {api_url}\n"
    if settings:
        text += settings + "\n"
    if sections:
        text += "[" + sections.replace("{second_url}", second_url) + "\n"
    return text


# -- running a case ---------------------------------------------------------------------


Runner = Callable[[Case, Path], None]


def run_case(case: Case, template: Path, workdir: Path, runner: Runner) -> list[dict[str, Any]]:
    """A fresh copy of the tree, the case's cfg, the runner; what the servers received,
    normalised."""
    root = workdir / case.name
    shutil.copytree(template, root, symlinks=True)
    root = root.resolve()
    for link, target in case.links:
        (root / link).symlink_to(root / target)
    with Recorder() as main, Recorder("second") as second:
        (root / "home" / ".wakatime.cfg").write_text(cfg_text(case, main.url, second.url))
        runner(case, root)
        received = main.received + second.received
    # In a stable order: the agent delivers by time, wakatime-cli as the plugin listed them.
    return sorted((normalise(item, root) for item in received), key=json.dumps)


def argv_for(case: Case, root: Path) -> list[str]:
    return [word.replace("{root}", str(root)) for word in case.argv]


def stdin_for(case: Case, root: Path) -> str:
    """The case's stdin line: `{root}` and times a minute ago (`{t0}`, `{t1}`, …)."""
    if not case.stdin:
        return ""
    text = case.stdin.replace("{root}", str(root))
    for index in range(10):
        text = text.replace(f"{{t{index}}}", str(int(time.time()) - 60 + index))
    return text + "\n"


@contextlib.contextmanager
def _stdin(stream: io.TextIOWrapper) -> Iterator[None]:
    saved, sys.stdin = sys.stdin, stream
    try:
        yield
    finally:
        sys.stdin = saved


def wakatime_cli_runner(binary: Path) -> Runner:
    def run(case: Case, root: Path) -> None:
        env = _clean_env(root)
        subprocess.run(
            [str(binary), *argv_for(case, root), "--log-file", str(root / "cli.log")],
            cwd=root / case.cwd,
            env=env,
            input=stdin_for(case, root).encode(),
            capture_output=True,
            timeout=60,
            check=False,
        )

    return run


def agent_runner() -> Runner:
    """The compat command's `main`, as a plugin's call runs it with no daemon (it queues),
    then `agent queue flush` delivering what it queued: in this process, with the case's
    environment, folder and cfg (a subprocess pair costs ~1 s of imports per case)."""

    def run(case: Case, root: Path) -> None:
        from agent.commands import heartbeat, queue

        state = root / "agent-state"
        (state / "run").mkdir(parents=True, mode=0o700)
        (state / "config.toml").write_text("")
        env = _clean_env(root)
        env.update(
            XDG_RUNTIME_DIR=str(state / "run"),
            XDG_DATA_HOME=str(state / "data"),
            XDG_CONFIG_HOME=str(state / "config"),
            HEARTBEAT_AGENT_CONFIG=str(state / "config.toml"),
            HEARTBEAT_AGENT_QUEUE__PATH=str(state / "queue.sqlite3"),
        )
        saved_env, saved_cwd = dict(os.environ), os.getcwd()
        agent_log = logging.getLogger("agent")
        saved_log = (list(agent_log.handlers), agent_log.propagate, agent_log.level)
        os.environ.clear()
        os.environ.update(env)
        os.chdir(root / case.cwd)
        stdin = io.TextIOWrapper(io.BytesIO(stdin_for(case, root).encode()))
        try:
            with _stdin(stdin):
                heartbeat.main(argv_for(case, root))
            with contextlib.redirect_stdout(io.StringIO()):
                queue.main(["flush"])
        finally:
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
            agent_log.handlers[:], agent_log.propagate, agent_log.level = saved_log

    return run


def _clean_env(root: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HEARTBEAT_AGENT_", "WAKATIME_", "XDG_"))
    }
    env.update(HOME=str(root / "home"), WAKATIME_HOME=str(root / "home"))
    return env


def normalise(item: dict[str, Any], root: Path) -> dict[str, Any]:
    """The compared fields, with the root replaced by `{root}` and the user agent cut to the
    editor's part (the plugin string at its end)."""
    result: dict[str, Any] = {}
    for name in FIELDS:
        value = item.get(name)
        if name == "editor":
            agent = item.get("user_agent") or ""
            value = PLUGIN if agent.endswith(PLUGIN) else agent
        if name == "machine" and value == socket.gethostname():
            value = "{hostname}"  # this machine's name, whichever machine replays it
        if isinstance(value, str):
            value = value.replace(str(root), "{root}")
        if name == "dependencies" and value is not None:
            value = sorted(value) or None
        result[name] = value
    return result


def golden_path(case: Case) -> Path:
    return GOLDEN / f"{case.name}.json"


def load_golden(case: Case) -> dict[str, Any]:
    return json.loads(golden_path(case).read_text())
