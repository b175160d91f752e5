"""Line counts the way wakatime-cli counts them: the number of newline bytes."""

from __future__ import annotations

# wakatime-cli sends no line count for files above 2 MiB; counting them would cost a save's worth
# of I/O for a number nobody reads.
MAX_SIZE = 2 * 1024 * 1024
BINARY_PROBE = 8192
CHUNK = 64 * 1024


def is_binary(head: bytes) -> bool:
    """A NUL byte near the start marks a binary file, as git and grep decide it."""
    return b"\0" in head[:BINARY_PROBE]


def count_lines(path: str, size: int, head: bytes) -> int | None:
    """Newlines in the file, or None for binary and oversized files.

    `head` is the file's first bytes, already read by the caller for language and dependency
    detection, so small files (the common case) are read once.
    """
    if size > MAX_SIZE or is_binary(head):
        return None
    if size <= len(head):
        return head.count(b"\n")
    count = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                count += chunk.count(b"\n")
    except OSError:
        return None
    return count
