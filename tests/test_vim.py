"""A real Vim, sending heartbeats the way vim-wakatime does on save: `job_start` of
`sh -c "<wakatime-cli …>"`, the buffered heartbeats written to the job's stdin with
`ch_sendraw`, and stdin left open. The job must end by itself and the heartbeats arrive."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from agentproc import WAKATIME_CLI, AgentProcess, agent_env, git_repo
from conftest import require_tools
from wakaserver import FakeWakaTime

VIM = shutil.which("vim")
PLUGIN = "vim/900 vim-wakatime/11.2.0"

# What vim-wakatime's s:SendHeartbeats does on BufWritePost, reduced to the calls that
# matter here; the results go to a file because Vim runs without a terminal.
SCRIPT = r"""
set nocompatible
let s:cli = $WAKATIME_CLI
let s:results = $RESULTS

function! s:Send() abort
  let entity = expand('%:p')
  let extra = '[{"entity": "' . entity . '", "lineno": 1, "cursorpos": 1, "lines": 2, '
        \ . '"timestamp": ' . (localtime() - 30) . '.000001, "is_write": false, '
        \ . '"alternate_language": "python"}]'
  let cmd = [s:cli, '--entity', entity, '--time', split(reltimestr(reltime()))[0],
        \ '--lineno', line('.'), '--cursorpos', col('.'), '--lines-in-file', line('$'),
        \ '--plugin', $PLUGIN, '--write', '--alternate-language', &filetype,
        \ '--extra-heartbeats']
  let s:job = job_start([&shell, &shellcmdflag, join(map(copy(cmd), 'shellescape(v:val)'))],
        \ {'stoponexit': ''})
  call ch_sendraw(job_getchannel(s:job), extra . "\n")
endfunction

autocmd BufWritePost * call s:Send()
set shell=sh shellcmdflag=-c
edit $FILE
setfiletype python
call setline(1, ['x = 1', 'y = 2'])
write
let s:waited = 0
while job_status(s:job) ==# 'run' && s:waited < 3000
  sleep 10m
  let s:waited += 1
endwhile
call writefile([job_status(s:job), string(job_info(s:job).exitval)], s:results)
qall!
"""


@pytest.fixture
def daemon_env(tmp_path: Path, waka: FakeWakaTime) -> Iterator[dict[str, str]]:
    env = agent_env(tmp_path, waka.url)
    idle = tmp_path / "watched"
    idle.mkdir()
    with AgentProcess(env, idle) as process:
        yield env
        assert process.stop() == 0


def test_vim_saves_and_the_heartbeats_arrive(
    tmp_path: Path, waka: FakeWakaTime, daemon_env: dict[str, str]
) -> None:
    require_tools("vim")
    assert VIM
    repo = git_repo(tmp_path / "vimproj")
    source = repo / "calc.py"
    script = tmp_path / "wakatime-test.vim"
    script.write_text(SCRIPT)
    results = tmp_path / "results.txt"
    env = {
        **daemon_env,
        "WAKATIME_CLI": WAKATIME_CLI,
        "RESULTS": str(results),
        "FILE": str(source),
        "PLUGIN": PLUGIN,
        "PATH": os.environ["PATH"],
    }

    done = subprocess.run(
        [VIM or "vim", "-N", "-u", "NONE", "-i", "NONE", "-n", "-es", "-S", str(script)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=90,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert results.read_text().split() == ["dead", "0"]  # the job ended by itself, exit 0
    received = sorted(waka.wait_for(2), key=lambda hb: hb["time"])
    assert [hb["entity"] for hb in received] == [str(source), str(source)]
    assert [hb["is_write"] for hb in received] == [False, True]
    saved = received[1]
    assert (saved["project"], saved["language"], saved["lines"]) == ("vimproj", "Python", 2)
    assert saved["user_agent"].endswith(PLUGIN)
    assert source.read_text() == "x = 1\ny = 2\n"
