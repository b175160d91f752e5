"""The wakatime-cli-compatible argument parsing, stdin extras and heartbeat building.

Argument lists are the ones real plugins build (read from their sources): vim-wakatime,
vscode-wakatime (which wraps any argument holding a space in double quotes),
jetbrains-wakatime, wakatime-mode, sublime-wakatime, zed-wakatime, macos-wakatime,
jupyterlab-wakatime, the Visual Studio library, claude-code-wakatime and opencode-wakatime.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import pytest

from agent.wakatime_cli.args import CompatArgs, is_wakatime_cli_name, parse_args, parse_time
from agent.wakatime_cli.exit_codes import ExitCode
from agent.wakatime_cli.extras import read_extra_heartbeats
from agent.wakatime_cli.heartbeats import build_heartbeats, heartbeat_dicts

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NOW = 1_700_000_100.0
KEY = "waka_00000000-0000-4000-8000-000000000000"
VSCODE_UA = '"vscode/1.96.0 vscode-wakatime/25.0.3"'

# fmt: off
PLUGIN_ARGV = [
    pytest.param(
        [
            "--entity", "/home/u/proj/main.py",
            "--time", "1700000000.123456",
            "--lineno", "12",
            "--cursorpos", "5",
            "--lines-in-file", "120",
            "--plugin", "vim/900 vim-wakatime/11.2.0",
            "--write",
            "--alternate-language", "python",
            "--human-line-changes", "3",
            "--extra-heartbeats",
        ],
        {
            "entity": "/home/u/proj/main.py",
            "time": 1700000000.123456,
            "lineno": 12,
            "cursorpos": 5,
            "lines_in_file": 120,
            "plugin": "vim/900 vim-wakatime/11.2.0",
            "write": True,
            "alternate_language": "python",
            "language": None,
            "human_line_changes": 3,
            "extra_heartbeats": True,
        },
        id="vim",
    ),
    pytest.param(
        [
            "--entity", "/home/u/proj/words.fth",
            "--time", "1700000000",
            "--lineno", "1",
            "--cursorpos", "1",
            "--lines-in-file", "9",
            "--plugin", "neovim/900 vim-wakatime/11.2.0",
            "--language", "forth",
            "--category", "debugging",
        ],
        {"language": "forth", "alternate_language": None, "category": "debugging", "write": None},
        id="neovim-forth-debugging",
    ),
    pytest.param(
        [
            "--entity", '"/home/u/my proj/app.ts"',
            "--time", "1700000000.123",
            "--plugin", VSCODE_UA,
            "--lineno", "10",
            "--cursorpos", "4",
            "--lines-in-file", "200",
            "--category", "ai coding",
            "--ai-line-changes", "7",
            "--human-line-changes", "2",
            "--metrics",
            "--key", KEY,
            "--api-url", "https://wakapi.example.org/api",
            "--alternate-project", '"my proj"',
            "--project-folder", '"/home/u/my proj"',
            "--write",
            "--config", '"C:\\Users\\A B\\.wakatime.cfg"',
            "--log-file", '"C:\\Users\\A B\\.wakatime\\wakatime.log"',
            "--is-unsaved-entity",
            "--local-file", '"/tmp/wakatime remote copy"',
            "--extra-heartbeats",
        ],
        {
            "entity": "/home/u/my proj/app.ts",
            "time": 1700000000.123,
            "plugin": "vscode/1.96.0 vscode-wakatime/25.0.3",
            "category": "ai coding",
            "ai_line_changes": 7,
            "human_line_changes": 2,
            "metrics": True,
            "key": KEY,
            "api_url": "https://wakapi.example.org/api",
            "alternate_project": "my proj",
            "project_folder": "/home/u/my proj",
            "write": True,
            "config": "C:\\Users\\A B\\.wakatime.cfg",
            "log_file": "C:\\Users\\A B\\.wakatime\\wakatime.log",
            "is_unsaved_entity": True,
            "local_file": "/tmp/wakatime remote copy",
            "extra_heartbeats": True,
        },
        id="vscode-heartbeat",
    ),
    pytest.param(
        ["--today", "--output", "json", "--plugin", VSCODE_UA, "--key", KEY],
        {"today": True, "output": "json", "plugin": "vscode/1.96.0 vscode-wakatime/25.0.3"},
        id="vscode-today",
    ),
    pytest.param(
        [
            "--output", "json",
            "--plugin", VSCODE_UA,
            "--file-experts", '"/a b/c.py"',
            "--entity", '"/a b/c.py"',
            "--alternate-project", "c",
            "--project-folder", '"/a b"',
        ],
        # --file-experts is a boolean: the path after it is a stray word.
        {"file_experts": True, "entity": "/a b/c.py", "positional": ['"/a b/c.py"']},
        id="vscode-file-experts",
    ),
    pytest.param(
        [
            "--sync-ai-activity",
            "--plugin", VSCODE_UA,
            "--alternate-project", "proj",
            "--project-folder", "/home/u/proj",
        ],
        {"sync_ai_activity": True, "entity": None, "project_folder": "/home/u/proj"},
        id="vscode-sync-ai",
    ),
    pytest.param(
        [
            "--plugin", "IntelliJ/2024.3 IntelliJ-wakatime/16.0.1",
            "--entity", "/home/u/p/src/Main.java",
            "--time", "1700000000.1235",
            "--key", KEY,
            "--lines-in-file", "300",
            "--lineno", "20",
            "--cursorpos", "8",
            "--human-line-changes", "-2",
            "--alternate-project", "p",
            "--alternate-language", "JAVA",
            "--write",
            "--is-unsaved-entity",
            "--category", "building",
            "--metrics",
            "--proxy", "https://user:pass@proxy.local:3128",
            "--extra-heartbeats",
        ],
        {
            "plugin": "IntelliJ/2024.3 IntelliJ-wakatime/16.0.1",
            "time": 1700000000.1235,
            "human_line_changes": -2,
            "alternate_language": "JAVA",
            "category": "building",
            "proxy": "https://user:pass@proxy.local:3128",
            "is_unsaved_entity": True,
        },
        id="jetbrains",
    ),
    pytest.param(
        ["--today", "--key", KEY],
        {"today": True, "key": KEY, "output": None},
        id="jetbrains-today",
    ),
    pytest.param(
        # wakatime-mode builds a shell command line; this is what the shell hands over.
        [
            "--entity", "/home/u/notes.org",
            "--plugin", "emacs-wakatime/1.1.0",
            "--time", "1700000000.12",
            "--write",
            "--key", KEY,
        ],
        {"entity": "/home/u/notes.org", "time": 1700000000.12, "write": True},
        id="emacs",
    ),
    pytest.param(
        [
            "--entity", "/home/u/p/a.py",
            "--time", "1700000000.123456",
            "--plugin", "sublime/4180 sublime-wakatime/11.1.1",
            "--key", KEY,
            "--write",
            "--alternate-project", "p",
            "--lineno", "3",
            "--cursorpos", "1",
            "--lines-in-file", "40",
            "--exclude", "^/tmp/",
            "--exclude", "^/etc/",
            "--exclude", "COMMIT_EDITMSG$",
            "--include", ".*",
            "--verbose",
            "--hidefilenames",
            "--proxy", "http://proxy.local:3128",
            "--extra-heartbeats",
        ],
        {
            "exclude": ["^/tmp/", "^/etc/", "COMMIT_EDITMSG$"],
            "include": [".*"],
            "verbose": True,
            "hide_file_names": "true",
            "proxy": "http://proxy.local:3128",
            "extra_heartbeats": True,
        },
        id="sublime",
    ),
    pytest.param(
        [
            "--entity", "/home/u/p/a.py",
            "--time", "1700000000.000001",
            "--plugin", "sublime/4180 sublime-wakatime/11.1.1",
            "--hidefilenames",
        ],
        {"hide_file_names": "true", "time": 1700000000.000001},
        id="sublime-hidefilenames-last",
    ),
    pytest.param(
        [
            "--time", "1700000000",
            "--write", "true",
            "--entity", "file:///home/u/p/src/main.rs",
            "--project-folder", "/home/u/p",
            "--alternate-project", "p",
            "--plugin", "Zed/0.170.0 Zed-wakatime/0.1.9",
            "--key", KEY,
            "--language", "Rust",
            "--lineno", "3",
            "--cursorpos", "9",
        ],
        {
            "time": 1700000000.0,
            "write": True,
            "positional": ["true"],
            "entity": "file:///home/u/p/src/main.rs",
            "language": "Rust",
        },
        id="zed-write-true",
    ),
    pytest.param(
        [
            "--time", "1700000000",
            "--write", "false",
            "--entity", "file:///home/u/p/src/main.rs",
            "--plugin", "Zed/0.170.0 Zed-wakatime/0.1.9",
            "--guess-language",
        ],
        # pflag: a boolean never takes the next word, so this is a write plus "false".
        {"write": True, "positional": ["false"], "guess_language": True},
        id="zed-write-false",
    ),
    pytest.param(
        [
            "--entity", "Figma",
            "--entity-type", "app",
            "--category", "designing",
            "--plugin", "Figma/124.7.4 macos-wakatime/5.21.0",
            "--alternate-branch", "<<LAST_BRANCH>>",
            "--alternate-project", "<<LAST_PROJECT>>",
        ],
        {
            "entity": "Figma",
            "entity_type": "app",
            "category": "designing",
            "alternate_branch": "<<LAST_BRANCH>>",
            "alternate_project": "<<LAST_PROJECT>>",
        },
        id="macos-app",
    ),
    pytest.param(
        ["--today", "--today-hide-categories", "true", "--plugin", "macos-wakatime/5.21.0"],
        {"today": True, "today_hide_categories": "true", "positional": []},
        id="macos-today",
    ),
    pytest.param(
        [
            "--plugin", "jupyterlab/4.2.5 jupyterlab-wakatime/0.1.4",
            "--entity", "/home/u/nb/analysis.ipynb",
            "--time", "1700000000.123",
            "--write",
            "--verbose",
            "--log-to-stdout",
        ],
        {"time": 1700000000.123, "verbose": True, "log_to_stdout": True},
        id="jupyterlab",
    ),
    pytest.param(
        ["--today", "--output=raw-json"],
        {"today": True, "output": "raw-json"},
        id="jupyterlab-today",
    ),
    pytest.param(
        [
            "--key", KEY,
            "--entity", "C:\\src\\Sln\\Program.cs",
            "--time", "1700000000.123456",
            "--plugin", "visualstudio/17.12 visualstudio-wakatime/10.2.0",
            "--category", "coding",
            "--entity-type", "file",
            "--alternate-project", "Sln",
            "--write",
            "--extra-heartbeats",
        ],
        {"entity": "C:\\src\\Sln\\Program.cs", "entity_type": "file", "category": "coding"},
        id="visual-studio",
    ),
    pytest.param(
        [
            "--sync-ai-disabled",
            "--entity", "/home/u/p/src/x.ts",
            "--entity-type", "file",
            "--category", "ai coding",
            "--plugin", "claude/1.0.80 claude-code-wakatime/3.0.2",
            "--project-folder", "/home/u/p",
            "--ai-line-changes", "12",
        ],
        {
            "sync_ai_disabled": True,
            "category": "ai coding",
            "ai_line_changes": 12,
            "project_folder": "/home/u/p",
        },
        id="claude-code-heartbeat",
    ),
    pytest.param(
        [
            "--sync-ai-activity",
            "--plugin", "claude-code/2.1.0 claude-code-wakatime/4.1.0",
            "--project-folder", "/home/u/p",
        ],
        {"sync_ai_activity": True, "entity": None},
        id="claude-code-sync",
    ),
    pytest.param(
        [
            "--entity", "/home/u/p/src/x.ts",
            "--entity-type", "file",
            "--category", "ai coding",
            "--plugin", "opencode-cli/0.9.1 opencode-wakatime/1.2.0",
            "--project-folder", "/home/u/p",
            "--ai-line-changes", "-4",
            "--write",
        ],
        {"ai_line_changes": -4, "write": True, "category": "ai coding"},
        id="opencode",
    ),
]
# fmt: on


@pytest.mark.parametrize(("argv", "expected"), PLUGIN_ARGV)
def test_plugin_argument_lists(argv: list[str], expected: dict[str, Any]) -> None:
    args = parse_args(argv)

    assert {name: getattr(args, name) for name in expected} == expected
    assert args.unknown == []
    assert args.invalid == []


PFLAG_CASES = [
    pytest.param(["--write=true"], {"write": True}, id="bool-equals-true"),
    pytest.param(["--write=false"], {"write": False}, id="bool-equals-false"),
    pytest.param(["--write=0", "--today=T"], {"write": False, "today": True}, id="go-bool-forms"),
    pytest.param(["--write", "--write=false"], {"write": False}, id="last-bool-wins"),
    pytest.param(["--lineno=12", "--cursorpos", "3"], {"lineno": 12, "cursorpos": 3}, id="int"),
    pytest.param(["--lineno", "0x10"], {"lineno": 16}, id="int-go-prefix"),
    pytest.param(["--lineno", "010"], {"lineno": 10}, id="int-leading-zero-is-decimal"),
    pytest.param(["--entity", "/a", "--entity", "/b"], {"entity": "/b"}, id="last-string-wins"),
    pytest.param(["--entity="], {"entity": ""}, id="empty-value"),
    pytest.param(["--file", "/a.py"], {"entity": "/a.py"}, id="file-alias"),
    pytest.param(["--entity", "", "--file", "/a.py"], {"entity": "/a.py"}, id="first-non-empty"),
    pytest.param(["--entity", "/e", "--file", "/f"], {"entity": "/e"}, id="entity-beats-file"),
    pytest.param(["--apiurl", "http://x/api"], {"api_url": "http://x/api"}, id="apiurl"),
    pytest.param(["--logfile", "/l.log"], {"log_file": "/l.log"}, id="logfile"),
    pytest.param(["--hide-filenames"], {"hide_file_names": "true"}, id="hide-filenames-bare"),
    pytest.param(
        ["--hide-file-names", "--entity", "/a"],
        {"hide_file_names": "true", "entity": "/a"},
        id="hide-file-names-before-flag",
    ),
    pytest.param(
        ["--hide-file-names", "false"], {"hide_file_names": "false"}, id="hide-file-names-word"
    ),
    pytest.param(["--hide-file-names=.*"], {"hide_file_names": ".*"}, id="hide-file-names-regex"),
    pytest.param(
        ["--entity", '"/a b/c.py"', "--project", "'p'", "--key", "\"'k'\""],
        {"entity": "/a b/c.py", "project": "p", "key": "k"},
        id="quotes-stripped",
    ),
    pytest.param(["--lineno", '"7"'], {"lineno": 7}, id="quoted-number"),
    pytest.param(
        ["--exclude", "a,b", "--exclude", "c", "--exclude", '"d,e"'],
        {"exclude": ["a", "b", "c", "d,e"]},
        id="list-csv-and-repeat",
    ),
    pytest.param(["--exclude="], {"exclude": []}, id="list-empty"),
    pytest.param(
        ["--config-write", "debug=true", "--config-write", "a=1,b=x=y"],
        {"config_write": {"debug": "true", "a": "1", "b": "x=y"}},
        id="config-write",
    ),
    pytest.param(
        ["--config-read", "api_key", "--config-section", "internal"],
        {"config_read": "api_key", "config_section": "internal"},
        id="config-read",
    ),
    pytest.param(["--time", "1700000000123"], {"time": 1700000000.123}, id="time-milliseconds"),
    pytest.param(["--ai-line-changes", "-3"], {"ai_line_changes": -3}, id="negative-value"),
    pytest.param(["--entity", "--write"], {"entity": "--write", "write": None}, id="value-dash"),
    pytest.param(
        ["--offline-count", "--print-offline-heartbeats", "5", "--sync-offline-activity", "0"],
        {"offline_count": True, "print_offline_heartbeats": 5, "sync_offline_activity": 0},
        id="offline",
    ),
    pytest.param(["--version"], {"version": True, "verbose": None}, id="version"),
    pytest.param(["-h"], {"help": True}, id="cobra-shorthand-help"),
    pytest.param(["--sync-ai-heartbeats"], {"sync_ai_activity": True}, id="sync-ai-alias"),
    pytest.param(["--sync-ai-disable"], {"sync_ai_disabled": True}, id="sync-ai-misspelled"),
    pytest.param(["--useragent"], {"user_agent": True}, id="useragent-alias"),
    pytest.param(
        ["stray", "--entity", "/a", "-", "", "more"],
        {"entity": "/a", "positional": ["stray", "-", "", "more"]},
        id="stray-words",
    ),
    pytest.param(
        ["--", "--entity", "/a"],
        {"entity": None, "positional": ["--entity", "/a"]},
        id="double-dash-ends-flags",
    ),
]


@pytest.mark.parametrize(("argv", "expected"), PFLAG_CASES)
def test_pflag_semantics(argv: list[str], expected: dict[str, Any]) -> None:
    args = parse_args(argv)

    assert {name: getattr(args, name) for name in expected} == expected
    assert args.unknown == []
    assert args.invalid == []


UNKNOWN_CASES = [
    # pflag, told to let unknown flags through, drops `--flag word` as a pair...
    pytest.param(["--shiny", "new", "--entity", "/a"], ["--shiny new"], [], id="takes-word"),
    # ...but keeps the word after `--flag=value`, and never eats a following flag.
    pytest.param(["--shiny=1", "word"], ["--shiny=1"], ["word"], id="equals-keeps-word"),
    pytest.param(["--shiny", "--entity", "/a"], ["--shiny"], [], id="before-flag"),
    pytest.param(["--shiny"], ["--shiny"], [], id="last"),
    pytest.param(["-x", "val"], ["-x val"], [], id="unknown-shorthand"),
    pytest.param(["---entity", "/a"], ["---entity /a"], [], id="bad-syntax"),
    pytest.param(["--Entity=/a"], ["--Entity=/a"], [], id="case-sensitive"),
]


@pytest.mark.parametrize(("argv", "unknown", "positional"), UNKNOWN_CASES)
def test_unknown_flags_are_recorded_and_ignored(
    argv: list[str], unknown: list[str], positional: list[str]
) -> None:
    args = parse_args(argv)

    assert args.unknown == unknown
    assert args.positional == positional
    assert args.invalid == []
    assert args.entity in (None, "/a")


INVALID_CASES = [
    pytest.param(["--write=yes"], "write", id="bool-word"),
    pytest.param(["--lineno", "abc"], "lineno", id="int-word"),
    pytest.param(["--lineno", "1.5"], "lineno", id="int-fraction"),
    pytest.param(["--time", "soon"], "time", id="time-word"),
    pytest.param(["--time", "nan"], "time", id="time-nan"),
    pytest.param(["--entity"], "entity", id="missing-value"),
    pytest.param(["--config-write", "debug"], "config_write", id="config-write-no-equals"),
]


@pytest.mark.parametrize(("argv", "attr"), INVALID_CASES)
def test_invalid_values_are_recorded_and_left_unset(argv: list[str], attr: str) -> None:
    args = parse_args(argv)

    assert getattr(args, attr) is None
    assert len(args.invalid) == 1
    assert argv[0].split("=")[0] in args.invalid[0]


def test_an_invalid_repeat_keeps_the_earlier_value() -> None:
    args = parse_args(["--lineno", "4", "--lineno", "x"])

    assert args.lineno == 4
    assert len(args.invalid) == 1


# Every flag DESIGN §2a names, with a value where the flag takes one.
CONTRACT_FLAGS = [
    ("--entity", "/a.py", "entity", "/a.py"),
    ("--file", "/a.py", "entity", "/a.py"),
    ("--entity-type", "app", "entity_type", "app"),
    ("--category", "coding", "category", "coding"),
    ("--time", "1700000000.5", "time", 1700000000.5),
    ("--write", None, "write", True),
    ("--is-unsaved-entity", None, "is_unsaved_entity", True),
    ("--plugin", "vim/1 vim-wakatime/1", "plugin", "vim/1 vim-wakatime/1"),
    ("--lineno", "1", "lineno", 1),
    ("--cursorpos", "2", "cursorpos", 2),
    ("--lines-in-file", "3", "lines_in_file", 3),
    ("--project", "p", "project", "p"),
    ("--alternate-project", "p", "alternate_project", "p"),
    ("--project-folder", "/p", "project_folder", "/p"),
    ("--language", "Go", "language", "Go"),
    ("--alternate-language", "Go", "alternate_language", "Go"),
    ("--guess-language", None, "guess_language", True),
    ("--branch", "main", "branch", "main"),
    ("--alternate-branch", "main", "alternate_branch", "main"),
    ("--local-file", "/tmp/x", "local_file", "/tmp/x"),
    ("--hostname", "box", "hostname", "box"),
    ("--timeout", "30", "timeout", 30),
    ("--key", KEY, "key", KEY),
    ("--api-url", "http://127.0.0.1/api", "api_url", "http://127.0.0.1/api"),
    ("--apiurl", "http://127.0.0.1/api", "api_url", "http://127.0.0.1/api"),
    ("--config", "/c.cfg", "config", "/c.cfg"),
    ("--log-file", "/l.log", "log_file", "/l.log"),
    ("--logfile", "/l.log", "log_file", "/l.log"),
    ("--verbose", None, "verbose", True),
    ("--exclude", "^/tmp/", "exclude", ["^/tmp/"]),
    ("--include", ".*", "include", [".*"]),
    ("--hide-file-names", "true", "hide_file_names", "true"),
    ("--hide-filenames", "true", "hide_file_names", "true"),
    ("--hidefilenames", "true", "hide_file_names", "true"),
    ("--proxy", "http://p:1", "proxy", "http://p:1"),
    ("--no-ssl-verify", None, "no_ssl_verify", True),
    ("--ssl-certs-file", "/ca.pem", "ssl_certs_file", "/ca.pem"),
    ("--ai-line-changes", "5", "ai_line_changes", 5),
    ("--human-line-changes", "6", "human_line_changes", 6),
    ("--line-additions", "7", "line_additions", 7),
    ("--line-deletions", "8", "line_deletions", 8),
    ("--extra-heartbeats", None, "extra_heartbeats", True),
    ("--today", None, "today", True),
    ("--today-hide-categories", "false", "today_hide_categories", "false"),
    ("--output", "raw-json", "output", "raw-json"),
    ("--offline-count", None, "offline_count", True),
    ("--print-offline-heartbeats", "10", "print_offline_heartbeats", 10),
    ("--sync-offline-activity", "100", "sync_offline_activity", 100),
    ("--config-read", "api_key", "config_read", "api_key"),
    ("--config-write", "api_key=x", "config_write", {"api_key": "x"}),
    ("--config-section", "settings", "config_section", "settings"),
    ("--version", None, "version", True),
    ("--user-agent", None, "user_agent", True),
    # Accepted and answered harmlessly.
    ("--metrics", None, "metrics", True),
    ("--sync-ai-activity", None, "sync_ai_activity", True),
    ("--sync-ai-disabled", None, "sync_ai_disabled", True),
    ("--file-experts", None, "file_experts", True),
    ("--today-goal", "goal-id", "today_goal", "goal-id"),
    ("--send-diagnostics-on-errors", None, "send_diagnostics_on_errors", True),
    ("--log-to-stdout", None, "log_to_stdout", True),
    ("--internal-config", "/i.cfg", "internal_config", "/i.cfg"),
    # wakatime-cli's other flags.
    ("--disable-offline", None, "disable_offline", True),
    ("--disableoffline", None, "disable_offline", True),
    ("--exclude-unknown-project", None, "exclude_unknown_project", True),
    ("--include-only-with-project-file", None, "include_only_with_project_file", True),
    ("--hide-branch-names", "true", "hide_branch_names", "true"),
    ("--hide-project-names", "true", "hide_project_names", "true"),
    ("--hide-dependencies", "true", "hide_dependencies", "true"),
    ("--hide-project-folder", None, "hide_project_folder", True),
    ("--offline-queue-file", "/q.db", "offline_queue_file", "/q.db"),
    ("--offline-queue-file-legacy", "/q.bdb", "offline_queue_file_legacy", "/q.bdb"),
    ("--heartbeat-rate-limit-seconds", "0", "heartbeat_rate_limit_seconds", 0),
    ("--today-max-categories", "3", "today_max_categories", 3),
    ("--sync-ai-after", "x", "sync_ai_after", "x"),
    ("--codex-source", "cli", "codex_source", "cli"),
    ("--help", None, "help", True),
]


@pytest.mark.parametrize(("flag", "value", "attr", "expected"), CONTRACT_FLAGS)
def test_every_contract_flag_is_recognised_with_its_type(
    flag: str, value: str | None, attr: str, expected: Any
) -> None:
    # A trailing stray word shows whether a flag took a value or not.
    argv = [flag, "stray"] if value is None else [flag, value, "stray"]

    args = parse_args(argv)

    assert getattr(args, attr) == expected
    assert args.positional == ["stray"]
    assert args.unknown == []
    assert args.invalid == []


def test_nothing_given_means_none() -> None:
    args = parse_args([])

    assert args == CompatArgs()
    assert args.entity is None and args.write is None and args.exclude is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1700000000", 1700000000.0),
        ("1700000000.12", 1700000000.12),
        ("1700000000.1235", 1700000000.1235),
        ("1700000000.123456", 1700000000.123456),
        ("1700000000123", 1700000000.123),
        ("1700000000123.0", 1700000000.123),
        ('"1700000000.5"', 1700000000.5),
        ("0", 0.0),
        (1700000000.25, 1700000000.25),
        (1700000000250, 1700000000.25),
    ],
)
def test_parse_time(text: str | float, seconds: float) -> None:
    assert parse_time(text) == pytest.approx(seconds, abs=1e-6)


@pytest.mark.parametrize("text", ["", "soon", "nan", "inf", "-inf", "1,5", True])
def test_parse_time_rejects(text: str | bool) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


def _read_in_thread(stream: BinaryIO | TextIO) -> tuple[list[dict[str, Any]], list[str]]:
    """Run read_extra_heartbeats where a hang shows as a thread still alive."""
    result: list[tuple[list[dict[str, Any]], list[str]]] = []
    reader = threading.Thread(
        target=lambda: result.append(read_extra_heartbeats(stream)), daemon=True
    )
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "read_extra_heartbeats waited for end of file"
    return result[0]


VIM_LINE = (
    b'[{"entity": "/home/u/p/a.py", "lineno": 3, "cursorpos": 7, "lines": 40, '
    b'"timestamp": 1700000000.000001, "is_write": false, "alternate_language": "python"},'
    b'{"entity": "/home/u/p/b.py", "lineno": 1, "cursorpos": 1, "lines": 2, '
    b'"timestamp": 1700000001.000002, "is_write": true, "human_line_changes": 4}]\n'
)


@pytest.mark.parametrize("mode", ["rb", "r", "unbuffered"])
def test_one_line_from_a_pipe_left_open(mode: str) -> None:
    read_fd, write_fd = os.pipe()
    stream: Any = (
        os.fdopen(read_fd, "rb", buffering=0) if mode == "unbuffered" else os.fdopen(read_fd, mode)
    )
    try:
        os.write(write_fd, VIM_LINE)

        items, problems = _read_in_thread(stream)

        assert problems == []
        assert [item["entity"] for item in items] == ["/home/u/p/a.py", "/home/u/p/b.py"]
        assert items[0]["alternate_language"] == "python"
        assert items[1]["is_write"] is True
    finally:
        os.close(write_fd)
        stream.close()


def test_real_stdin_left_open_by_the_plugin() -> None:
    """As vim's job does: one line on stdin, which then stays open."""
    code = (
        "import sys, json; from agent.wakatime_cli.extras import read_extra_heartbeats;"
        "items, problems = read_extra_heartbeats(sys.stdin);"
        "print(json.dumps([len(items), problems]), flush=True)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(VIM_LINE)
        proc.stdin.flush()

        assert proc.wait(timeout=30) == 0
        assert proc.stdout.read().strip() == b"[2, []]"
    finally:
        proc.kill()
        proc.stdin.close()
        proc.stdout.close()


def test_empty_array_on_a_pipe() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as stream:
        os.write(write_fd, b"[]\n")
        try:
            assert _read_in_thread(stream) == ([], [])
        finally:
            os.close(write_fd)


def test_only_the_first_line_is_read() -> None:
    stream = io.BytesIO(b'[{"entity": "/a", "time": 1700000000}]\n[{"entity": "/b"}]\n')

    items, _problems = read_extra_heartbeats(stream)

    assert [item["entity"] for item in items] == ["/a"]
    assert stream.readline() == b'[{"entity": "/b"}]\n'


@pytest.mark.parametrize(
    ("line", "item_count", "problem"),
    [
        (b"", 0, None),
        (b"\n", 0, None),
        (b"null\n", 0, None),
        (b"[{\n", 0, "not valid JSON"),
        (b'{"entity": "/a"}\n', 0, "must be a JSON array"),
        (b'["/a", {"entity": "/b", "time": 1700000000}]\n', 1, "extra heartbeat 0"),
    ],
)
def test_unusable_input_is_a_problem_not_an_error(
    line: bytes, item_count: int, problem: str | None
) -> None:
    items, problems = read_extra_heartbeats(io.BytesIO(line))

    assert len(items) == item_count
    assert [problem in text for text in problems] == ([] if problem is None else [True])


EXTRA_ITEMS = [
    pytest.param(
        # jetbrains-wakatime builds its JSON by hand; the time is a 4-decimal BigDecimal.
        b'[{"entity":"/p/Main.java","timestamp":1700000000.1235,"is_write":true,"lines":300,'
        b'"lineno":20,"cursorpos":8,"human_line_changes":2,"is_unsaved_entity":true,'
        b'"category":"building","alternate_project":"p","language":"JAVA",'
        b'"local_file":"/tmp/x"}]\n',
        {
            "entity": "/p/Main.java",
            "time": 1700000000.1235,
            "is_write": True,
            "lines": 300,
            "lineno": 20,
            "cursorpos": 8,
            "human_line_changes": 2,
            "is_unsaved_entity": True,
            "category": "building",
            "alternate_project": "p",
            "language": "JAVA",
        },
        id="jetbrains",
    ),
    pytest.param(
        # vscode-wakatime: JSON.stringify of its Heartbeat objects.
        b'[{"entity":"/p/app.ts","time":1700000000.123,"is_write":false,"lineno":10,'
        b'"cursorpos":4,"lines_in_file":200,"ai_line_changes":5,"human_line_changes":0,'
        b'"category":"ai coding","entity_type":"file","alternate_project":"p",'
        b'"project_folder":"/p","project_root_count":2,'
        b'"plugin":"vscode/1.96.0 vscode-wakatime/25.0.3 claude/1.0"}]\n',
        {
            "entity": "/p/app.ts",
            "time": 1700000000.123,
            "is_write": False,
            "lineno": 10,
            "cursorpos": 4,
            "lines": 200,
            "ai_line_changes": 5,
            "human_line_changes": 0,
            "category": "ai coding",
            "type": "file",
            "alternate_project": "p",
            "project_folder": "/p",
            "project_root_count": 2,
            "user_agent": "vscode/1.96.0 vscode-wakatime/25.0.3 claude/1.0",
        },
        id="vscode",
    ),
    pytest.param(
        # sublime-wakatime: json.dumps of its heartbeat dicts.
        b'[{"entity": "/p/a.py", "timestamp": 1700000000.123456, "is_write": false, '
        b'"alternate_project": "p", "lineno": 3, "cursorpos": 1, "lines": 40}]\n',
        {
            "entity": "/p/a.py",
            "time": 1700000000.123456,
            "is_write": False,
            "alternate_project": "p",
            "lineno": 3,
            "cursorpos": 1,
            "lines": 40,
        },
        id="sublime",
    ),
    pytest.param(
        # The Visual Studio library: empty category and entity_type when unknown.
        b'[{"entity":"C:\\\\src\\\\a.cs","timestamp":1700000000.123456,'
        b'"alternate_project":"Sln","is_write":false,"category":"","entity_type":""}]\n\n',
        {
            "entity": "C:\\src\\a.cs",
            "time": 1700000000.123456,
            "alternate_project": "Sln",
            "is_write": False,
        },
        id="visual-studio",
    ),
    pytest.param(
        b'[{"entity":"/a","time":"1700000000.123","is_write":"true","lineno":"12",'
        b'"cursorpos":"3.0","lines":12.9,"is_unsaved_entity":"F","ai_line_changes":"-2",'
        b'"type":"app","entity_type":"file","unknown":{"x":1},"dependencies":["x"]}]\n',
        {
            "entity": "/a",
            "time": 1700000000.123,
            "is_write": True,
            "lineno": 12,
            "cursorpos": 3,
            "lines": 12,
            "is_unsaved_entity": False,
            "ai_line_changes": -2,
            "type": "app",
        },
        id="strings-and-aliases",
    ),
    pytest.param(
        b'[{"entity":"/a","time":0,"timestamp":"1700000000123","is_write":1}]\n',
        {"entity": "/a", "time": 1700000000.123, "is_write": True},
        id="zero-time-falls-back-to-timestamp",
    ),
    pytest.param(
        b'[{"entity":"/a","time":"soon","lineno":"x","is_write":"maybe"}]\n',
        {"entity": "/a", "time": "soon", "lineno": "x", "is_write": "maybe"},
        id="unconvertible-kept-for-validation",
    ),
]


@pytest.mark.parametrize(("line", "expected"), EXTRA_ITEMS)
def test_extra_items_are_normalised(line: bytes, expected: dict[str, Any]) -> None:
    items, problems = read_extra_heartbeats(io.BytesIO(line))

    assert problems == []
    assert items == [expected]


def test_text_stream_without_buffer() -> None:
    items, problems = read_extra_heartbeats(io.StringIO('[{"entity": "/a", "time": 1.7e9}]\n'))

    assert (items, problems) == ([{"entity": "/a", "time": 1.7e9}], [])


def test_main_heartbeat_from_flags() -> None:
    # fmt: off
    args = parse_args(
        [
            "--entity", '"/home/u/my proj/app.ts"',
            "--entity-type", "file",
            "--category", "ai coding",
            "--time", "1700000000.5",
            "--write",
            "--lineno", "10",
            "--cursorpos", "4",
            "--lines-in-file", "200",
            "--project", "proj",
            "--branch", "main",
            "--language", "TypeScript",
            "--alternate-language", "typescript",
            "--alternate-project", "fallback",
            "--alternate-branch", "dev",
            "--project-folder", '"/home/u/my proj"',
            "--is-unsaved-entity",
            "--ai-line-changes", "5",
            "--human-line-changes", "-1",
            "--line-additions", "6",
            "--line-deletions", "1",
            "--plugin", VSCODE_UA,
        ]
    )
    # fmt: on

    heartbeats, problems = build_heartbeats(heartbeat_dicts(args, [], NOW))

    assert problems == []
    assert [hb.to_dict() for hb in heartbeats] == [
        {
            "entity": "/home/u/my proj/app.ts",
            "time": 1700000000.5,
            "type": "file",
            "category": "ai coding",
            "is_write": True,
            "lineno": 10,
            "cursorpos": 4,
            "lines": 200,
            "project": "proj",
            "branch": "main",
            "language": "TypeScript",
            "alternate_language": "typescript",
            "alternate_project": "fallback",
            "alternate_branch": "dev",
            "project_folder": "/home/u/my proj",  # its depth is detection's to count
            "is_unsaved_entity": True,
            "ai_line_changes": 5,
            "human_line_changes": -1,
            "line_additions": 6,
            "line_deletions": 1,
            "user_agent": "vscode/1.96.0 vscode-wakatime/25.0.3",
        }
    ]


@pytest.mark.parametrize("time_args", [[], ["--time", "0"]])
def test_time_defaults_to_now(time_args: list[str]) -> None:
    heartbeats, problems = build_heartbeats(
        heartbeat_dicts(parse_args(["--entity", "/a.py", *time_args]), [], NOW)
    )

    assert problems == []
    assert heartbeats[0].time == NOW
    assert heartbeats[0].is_write is False
    assert heartbeats[0].category == "coding"


def test_placeholders_pass_through_unchanged() -> None:
    # fmt: off
    args = parse_args(
        [
            "--entity", "Figma",
            "--entity-type", "app",
            "--category", "designing",
            "--plugin", "Figma/124.7.4 macos-wakatime/5.21.0",
            "--alternate-branch", "<<LAST_BRANCH>>",
            "--project", "<<LAST_PROJECT>>",
        ]
    )
    # fmt: on

    [heartbeat], problems = build_heartbeats(heartbeat_dicts(args, [], NOW))

    assert problems == []
    assert (heartbeat.type, heartbeat.project, heartbeat.alternate_branch) == (
        "app",
        "<<LAST_PROJECT>>",
        "<<LAST_BRANCH>>",
    )


def test_a_bad_extra_is_dropped_and_the_rest_count() -> None:
    extras, read_problems = read_extra_heartbeats(
        io.BytesIO(
            b'[{"entity":"/a.py","timestamp":1700000001,"is_write":true},'
            b'{"entity":"/b.py","category":"sleeping","timestamp":1700000002},'
            b'{"entity":"/c.py"},'
            b'{"entity":"/d.py","timestamp":"1700000004","lineno":"x"},'
            b'{"entity":"/e.py","timestamp":1700000005,'
            b'"plugin":"vscode/1.96.0 vscode-wakatime/25.0.3 copilot/1.2"}]\n'
        )
    )
    args = parse_args(["--entity", "/main.py", "--plugin", "vim/900 vim-wakatime/11.2.0"])

    heartbeats, problems = build_heartbeats(heartbeat_dicts(args, extras, NOW))

    assert read_problems == []
    assert [hb.entity for hb in heartbeats] == ["/main.py", "/a.py", "/e.py"]
    assert [hb.user_agent for hb in heartbeats] == [
        "vim/900 vim-wakatime/11.2.0",
        "vim/900 vim-wakatime/11.2.0",
        "vscode/1.96.0 vscode-wakatime/25.0.3 copilot/1.2",
    ]
    assert len(problems) == 3
    assert problems[0].startswith("extra heartbeat 1: category")
    assert problems[1].startswith("extra heartbeat 2: time")
    assert problems[2].startswith("extra heartbeat 3: lineno")


def test_a_bad_main_heartbeat_does_not_lose_the_extras() -> None:
    extras = [{"entity": "/a.py", "time": 1700000001.0}]

    heartbeats, problems = build_heartbeats(
        heartbeat_dicts(parse_args(["--lineno", "3"]), extras, NOW)
    )

    assert [hb.entity for hb in heartbeats] == ["/a.py"]
    assert problems == ["heartbeat: entity: is required"]


def test_home_is_expanded_in_entities(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    extras = [{"entity": "~/b.py", "time": 1700000001.0}, {"entity": "~x", "time": 1700000002.0}]

    heartbeats, problems = build_heartbeats(
        heartbeat_dicts(parse_args(["--entity", "~/a.py"]), extras, NOW)
    )

    assert problems == []
    assert [hb.entity for hb in heartbeats] == [
        str(tmp_path / "a.py"),
        str(tmp_path / "b.py"),
        os.path.abspath("~x"),  # not the home folder: a relative name, made absolute
    ]


def test_exit_codes_match_wakatime_cli() -> None:
    assert {name: value for name, value in vars(ExitCode).items() if name.isupper()} == {
        "SUCCESS": 0,
        "ERR_GENERIC": 1,
        "ERR_API": 102,
        "ERR_CONFIG_FILE_PARSE": 103,
        "ERR_AUTH": 104,
        "ERR_CONFIG_FILE_READ": 110,
        "ERR_CONFIG_FILE_WRITE": 111,
        "ERR_BACKOFF": 112,
    }


@pytest.mark.parametrize(
    ("argv0", "expected"),
    [
        ("wakatime-cli", True),
        ("/home/u/.local/bin/wakatime-cli", True),
        ("/home/u/.wakatime/wakatime-cli-linux-amd64", True),
        ("/Users/u/.wakatime/wakatime-cli-darwin-arm64", True),
        ("C:\\Users\\u\\.wakatime\\wakatime-cli-windows-amd64.exe", True),
        ("C:\\Users\\u\\.wakatime\\WakaTime-CLI.EXE", True),
        ("wakatime-cli-linux-386", True),
        ("agent", False),
        ("/usr/bin/agent", False),
        ("wakatime", False),
        ("wakatime-cli-linux", False),
        ("wakatime-cli.sh", False),
        ("/opt/wakatime-cli/agent", False),
    ],
)
def test_is_wakatime_cli_name(argv0: str, expected: bool) -> None:
    assert is_wakatime_cli_name(argv0) is expected


def test_imports_nothing_slow() -> None:
    """The per-save path (the compat command's module): no heavy module, none of the slow
    standard ones either; of the agent, only the wakatime_cli folder and the IPC client."""
    code = (
        "import sys; before = set(sys.modules); import agent.commands.heartbeat;"
        "print(' '.join(sorted(m for m in set(sys.modules) - before"
        " if m.split('.')[0] not in sys.stdlib_module_names"
        " or m in ('re', 'enum', 'typing', 'dataclasses', 'json', 'socket', 'pathlib'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    assert result.stdout.split() == [
        "agent",
        "agent.commands",
        "agent.commands.heartbeat",
        "agent.ipc",
        "agent.ipc.client",
        "agent.ipc.protocol",
        "agent.wakatime_cli",
        "agent.wakatime_cli.args",
        "agent.wakatime_cli.exit_codes",
        "agent.wakatime_cli.extras",
        "agent.wakatime_cli.heartbeats",
    ]
