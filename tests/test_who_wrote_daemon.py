"""Who wrote a file, through the real daemon: a git checkout makes no heartbeat and one log
line, `agent why` tells each file's fate, and a real Vim with a plugin that reports its saves
the way vim-wakatime does (in a batch, seconds later) is counted once, not once more by the
watcher."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from agentproc import AGENT, SHORT_HOLD, WAKATIME_CLI, AgentProcess, agent_env, git_repo
from wakaserver import FakeWakaTime

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def why(env: dict[str, str], path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AGENT, "why", str(path), *args], env=env, capture_output=True, text=True, timeout=30
    )


def test_a_checkout_is_no_coding_and_why_says_so(tmp_path: Path, waka: FakeWakaTime) -> None:
    repo = git_repo(tmp_path / "repo")
    (repo / "lib.py").write_text("one\n")
    subprocess.run([*GIT, "add", "lib.py"], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-qm", "lib"], cwd=repo, check=True)
    subprocess.run([*GIT, "checkout", "-qb", "other"], cwd=repo, check=True)
    (repo / "lib.py").write_text("two\n")
    subprocess.run([*GIT, "commit", "-qam", "two"], cwd=repo, check=True)
    subprocess.run([*GIT, "checkout", "-q", "main"], cwd=repo, check=True)
    # A short hold and throttle spacing: the operation is reported over (its log line) when
    # no held write can still be its, about vcs_grace + spacing + storm window after it.
    env = agent_env(
        tmp_path, waka.url, HEARTBEAT_AGENT_HEARTBEATS__AUTOSAVE_INTERVAL="1", **SHORT_HOLD
    )
    with AgentProcess(env, repo) as agent:
        (repo / "app.py").write_text("print(1)\n")  # the person's save
        [saved] = waka.wait_for(1, timeout=15)
        subprocess.run([*GIT, "checkout", "-q", "other"], cwd=repo, check=True)
        line = agent.wait_for_log("not coding: a git/hg operation in")
        lib, app = why(env, repo / "lib.py"), why(env, repo / "app.py", "--json")
        ignored = why(env, repo / ".git" / "index")
        assert agent.stop() == 0
    assert saved["entity"] == str(repo / "app.py")
    assert [hb["entity"] for hb in waka.received] == [str(repo / "app.py")]
    assert line.endswith(f"a git/hg operation in {repo}, 1 file write(s) dropped")
    assert lib.returncode == 0, lib.stderr
    assert "not counted (vcs): written by a git/hg operation" in lib.stdout
    answer = json.loads(app.stdout)
    assert answer["decision"]["counted"] is True and answer["decision"]["writer"] == "person"
    assert answer["ignored"] is None
    assert "never counted: in an ignored folder" in ignored.stdout


def test_why_without_a_daemon_says_so(tmp_path: Path) -> None:
    env = agent_env(tmp_path)
    done = why(env, tmp_path / "x.py")
    assert done.returncode == 1
    assert "no daemon is running" in done.stderr
    assert "Traceback" not in done.stderr


# vim-wakatime's way, reduced (plugin/wakatime.vim, 12.0.0): every event appends a heartbeat to
# a buffer (a save: `is_write`, the time of the save); the buffer is sent once more than 30 s
# passed since the last send, at the next event, and when Vim quits (QuitPre): the first
# heartbeat on the command line, the rest as JSON on the job's stdin (--extra-heartbeats).
# Here the batch waits $BATCH_SECONDS: any wait longer than the watcher's hold of a write
# (2 s) and shorter than the daemon's plugin_wait (60 s) is the same late report as 30 s.
PLUGIN_SCRIPT = r"""
set nocompatible
set shell=sh shellcmdflag=-c
let s:buffer = []
let s:last_sent = localtime()
let s:batch = str2nr($BATCH_SECONDS)

function! s:Append(is_write) abort
  call add(s:buffer, {'entity': expand('%:p'), 'time': localtime(), 'is_write': a:is_write})
endfunction

function! s:Send() abort
  if empty(s:buffer)
    return
  endif
  let first = s:buffer[0]
  let rest = s:buffer[1:]
  let s:buffer = []
  let s:last_sent = localtime()
  let cmd = [$WAKATIME_CLI, '--entity', first.entity, '--time', first.time,
        \ '--plugin', 'vim/900 vim-wakatime/12.0.0', '--extra-heartbeats']
  if first.is_write
    let cmd += ['--write']
  endif
  let extra = map(rest, {_, hb -> {'entity': hb.entity, 'timestamp': hb.time,
        \ 'is_write': hb.is_write ? v:true : v:false}})
  let job = job_start([&shell, &shellcmdflag, join(map(cmd, 'shellescape(v:val)'))],
        \ {'stoponexit': ''})
  call ch_sendraw(job_getchannel(job), json_encode(extra) . "\n")
  call ch_close_in(job_getchannel(job))
  while job_status(job) ==# 'run'
    sleep 10m
  endwhile
endfunction

function! s:Activity(is_write) abort
  call s:Append(a:is_write)
  if localtime() - s:last_sent > s:batch
    call s:Send()
  endif
endfunction

autocmd BufWritePost * call s:Activity(v:true)
autocmd QuitPre * call s:Send()
edit $FILE
call s:Activity(v:false)
call setline(1, ['x = 1'])
write
" the person keeps editing past the batch time; the next event sends the buffer
while localtime() - s:last_sent <= s:batch
  sleep 100m
endwhile
call setline(2, ['y = 2'])
write
quit!
"""


def test_a_plugins_late_report_of_a_save_is_the_only_heartbeat_of_it(
    tmp_path: Path, waka: FakeWakaTime
) -> None:
    vim = shutil.which("vim")
    assert vim, "vim is needed for this test (.ci/run installs it)"
    repo = git_repo(tmp_path / "repo")
    source = repo / "calc.py"
    script = tmp_path / "plugin.vim"
    script.write_text(PLUGIN_SCRIPT)
    env = agent_env(tmp_path, waka.url)
    # vim-wakatime works only once ~/.wakatime.cfg has a key: the daemon knows plugins are used.
    (tmp_path / "home" / ".wakatime.cfg").write_text("[settings]\napi_key = waka_test_key\n")
    with AgentProcess(env, repo) as agent:
        subprocess.run(
            [vim, "-N", "-u", "NONE", "-i", "NONE", "-n", "-es", "-S", str(script)],
            env={**env, "WAKATIME_CLI": WAKATIME_CLI, "FILE": str(source),
                 "PATH": os.environ["PATH"], "BATCH_SECONDS": "6"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=True,
        )  # fmt: skip
        received = waka.wait_for(3, timeout=30)
        decision = json.loads(why(env, source, "--json").stdout)["decision"]
        assert agent.stop() == 0  # releases whatever the watcher still held
    assert source.read_text() == "x = 1\ny = 2\n"
    assert decision["writer"] == "plugin"
    assert [hb["is_write"] for hb in sorted(received, key=lambda hb: hb["time"])] == [
        False,
        True,
        True,
    ]
    database = sqlite3.connect(tmp_path / "data" / "heartbeats.sqlite3")
    agents = [row[0] for row in database.execute("SELECT user_agent FROM heartbeats")]
    database.close()
    assert len(agents) == 3
    assert all("vim-wakatime/12.0.0" in agent for agent in agents), agents
