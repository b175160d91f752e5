"""The injected clock of tests that move time themselves, instead of sleeping or freezing it."""

from __future__ import annotations


class Clock:
    """Reads `now`; the test sets it or moves it on."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
