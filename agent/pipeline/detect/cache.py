"""A small bounded LRU map: detection caches must not grow with every file a user ever touched.

Safe to share between threads without a lock: each step is one operation on an OrderedDict,
atomic under the GIL, and a race costs at most an entry evicted a little early.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import suppress
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """Least-recently-used mapping capped at `capacity` entries."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            with suppress(KeyError):  # evicted by another thread meanwhile
                self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        items = self._items
        items.pop(key, None)  # so the new value goes to the recent end
        items[key] = value
        while len(items) > self.capacity:
            try:
                items.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
