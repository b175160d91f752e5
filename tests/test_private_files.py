"""The agent's own files: created 0600, never opened through a planted symlink, locked
exclusively (waiting, or not) — on real files, with real flocks."""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from agent.wakatime_cli.private_files import open_locked, open_private, try_open_locked


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_the_users_alone_even_under_a_lax_umask(tmp_path: Path) -> None:
    path = tmp_path / "agent.lock"
    previous = os.umask(0o002)
    try:
        os.close(open_private(path))
    finally:
        os.umask(previous)
    assert mode(path) == 0o600


def test_a_symlink_where_the_file_should_be_is_refused_and_its_target_left_alone(
    tmp_path: Path,
) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "agent.lock").symlink_to(target)

    for opening in (open_private, open_locked, try_open_locked):
        with pytest.raises(OSError) as refused:
            opening(tmp_path / "agent.lock")
        assert refused.value.errno == errno.ELOOP
    assert not target.exists()


def test_a_file_the_user_may_point_elsewhere_is_opened_through_its_symlink(
    tmp_path: Path,
) -> None:
    target = tmp_path / "logs" / "agent.log"
    target.parent.mkdir()
    (tmp_path / "agent.log").symlink_to(target)

    os.close(open_private(tmp_path / "agent.log", os.O_WRONLY, follow_symlinks=True))

    assert mode(target) == 0o600


def test_the_callers_flags_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    path.write_bytes(b"first\n")
    os.chmod(path, 0o600)
    fd = open_locked(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"second\n")
    finally:
        os.close(fd)
    assert path.read_bytes() == b"first\nsecond\n"


def test_without_waiting_a_held_lock_gives_none_until_its_holder_closes(tmp_path: Path) -> None:
    path = tmp_path / "agent.lock"
    holder = open_locked(path)
    try:
        assert try_open_locked(path) is None
    finally:
        os.close(holder)
    again = try_open_locked(path)
    assert again is not None
    os.close(again)


def test_a_waiting_lock_is_taken_once_its_holder_closes(tmp_path: Path) -> None:
    path = tmp_path / "token.lock"
    holder = open_locked(path)
    taken: list[int] = []
    waiter = threading.Thread(target=lambda: taken.append(open_locked(path)))
    waiter.start()
    try:
        wait_for_a_waiter_on(path)
        assert taken == []
    finally:
        os.close(holder)
    waiter.join(timeout=10)
    assert len(taken) == 1
    assert try_open_locked(path) is None  # the waiter holds it now
    os.close(taken[0])


def wait_for_a_waiter_on(path: Path) -> None:
    """Until the kernel lists a process blocked on the file's flock (/proc/locks marks a
    waiter with `->`)."""
    info = os.stat(path)
    inode = f" {os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino} "
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open("/proc/locks") as locks:
            if any("->" in line and inode in line for line in locks):
                return
        time.sleep(0.001)
    raise AssertionError(f"no one waits on {path}'s lock")
