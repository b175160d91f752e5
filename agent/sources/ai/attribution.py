"""Who wrote this file: an AI tool (its transcript says so) or the person.

The AI source notes every file edit a transcript records (`note_ai_write`). When the
watcher then reports a write of that file within `window` seconds of such an edit, the
write is AI activity: `ai coding`, never the person's coding. Its line changes were already
counted on the transcript's own heartbeat, so this one carries none: they count once.

Any other write is the person's: its `human_line_changes` (and `line_additions` /
`line_deletions`) come from a line diff against the content last seen, kept in memory
for text files under `max_bytes`, within a total budget (least recently written first
out). The first write of a file only records its content: there is nothing to diff yet.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable

from agent.pipeline.heartbeat import Heartbeat

AI_CODING = "ai coding"
WINDOW = 10.0  # seconds between a transcript's edit and the watcher's write of the file
MAX_FILE_BYTES = 512 * 1024  # files bigger than this get no diff
MEMORY_BUDGET = 32 * 1024 * 1024  # bytes of file content kept across all files
MAX_DIFF_LINES = 2000  # changed lines beyond which lines are counted, not diffed


class WriteClassifier:
    """Thread-safe: the AI source notes edits from its thread, the daemon asks from its loop."""

    def __init__(
        self,
        window: float = WINDOW,
        max_bytes: int = MAX_FILE_BYTES,
        budget: int = MEMORY_BUDGET,
    ) -> None:
        self.window = window
        self.max_bytes = max_bytes
        self.budget = budget
        self._lock = threading.Lock()
        self._ai_writes: dict[str, float] = {}  # path → time of the AI's latest edit
        # path → (content digest, its lines, its size), least recently written first
        self._contents: OrderedDict[str, tuple[bytes, list[bytes], int]] = OrderedDict()
        self._kept = 0

    def note_ai_write(self, path: str, at: float) -> None:
        path = os.path.normpath(path)
        with self._lock:
            self._ai_writes[path] = max(at, self._ai_writes.get(path, at))
            if len(self._ai_writes) > 10_000:  # forget the oldest half
                for old in sorted(self._ai_writes, key=self._ai_writes.__getitem__)[:5_000]:
                    del self._ai_writes[old]

    def attribute(self, heartbeats: Iterable[Heartbeat]) -> list[Heartbeat]:
        """The watcher's write heartbeats, each marked as the AI's or the person's."""
        return [self._attribute(hb) for hb in heartbeats]

    def _attribute(self, hb: Heartbeat) -> Heartbeat:
        if not hb.is_write or hb.type != "file":
            return hb
        path = os.path.normpath(hb.entity)
        with self._lock:
            ai_at = self._ai_writes.get(path)
        lines = self._content_lines(path)  # kept current either way: the next diff's base
        if ai_at is not None and abs(hb.time - ai_at) <= self.window:
            hb.category = AI_CODING
            return hb
        if lines is not None:
            added, removed = lines
            hb.line_additions, hb.line_deletions = added, removed
            hb.human_line_changes = added - removed
        return hb

    def _content_lines(self, path: str) -> tuple[int, int] | None:
        """(added, removed) lines since the content last seen; None without a base."""
        try:
            if os.path.getsize(path) > self.max_bytes:
                self._forget(path)
                return None
            with open(path, "rb") as file:
                data = file.read(self.max_bytes + 1)
        except OSError:
            return None
        if b"\x00" in data[:8192]:  # binary: no lines to count
            self._forget(path)
            return None
        digest = hashlib.blake2b(data, digest_size=16).digest()
        with self._lock:
            before = self._contents.pop(path, None)
            if before is not None:
                self._kept -= before[2]
            new_lines = data.splitlines()
            self._contents[path] = (digest, new_lines, len(data))
            self._kept += len(data)
            while self._kept > self.budget and len(self._contents) > 1:
                _, (_, _, size) = self._contents.popitem(last=False)
                self._kept -= size
        if before is None:
            return None
        if before[0] == digest:
            return 0, 0
        return _diff(before[1], new_lines)

    def _forget(self, path: str) -> None:
        with self._lock:
            if (before := self._contents.pop(path, None)) is not None:
                self._kept -= before[2]


def _diff(old: list[bytes], new: list[bytes]) -> tuple[int, int]:
    """(added, removed) lines; the common head and tail are cut off first, so a save that
    touches a few lines of a long file diffs a few lines."""
    start = 0
    while start < len(old) and start < len(new) and old[start] == new[start]:
        start += 1
    end = 0
    while end < len(old) - start and end < len(new) - start and old[-1 - end] == new[-1 - end]:
        end += 1
    old, new = old[start : len(old) - end], new[start : len(new) - end]
    if len(old) > MAX_DIFF_LINES or len(new) > MAX_DIFF_LINES:
        # A rewrite of a long file (a formatter, a generator): count lines by multiset,
        # in linear time, rather than a diff that could take seconds on the event loop.
        before, after = Counter(old), Counter(new)
        return sum((after - before).values()), sum((before - after).values())
    added = removed = 0
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            removed += i2 - i1
        if tag in ("replace", "insert"):
            added += j2 - j1
    return added, removed
