"""The JSON-lines protocol between plugins and the daemon (DESIGN.md §3).

Standard library only. One request object per line, one answer line each, in order.
"""

from __future__ import annotations

import json
from typing import Any

MAX_LINE = 1024 * 1024  # bytes, newline included
OPS = ("heartbeat", "heartbeats", "status", "today", "flush", "ping")
MAX_BATCH = 10_000


class ProtocolError(ValueError):
    """A request that cannot be served; the message says what was wrong."""


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode_request(line: bytes) -> dict[str, Any]:
    """Parse one request line into a dict with a known `op`; raises ProtocolError."""
    try:
        request = json.loads(line)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"not a JSON object: {exc}") from None
    if not isinstance(request, dict):
        raise ProtocolError("a request must be a JSON object")
    op = request.get("op")
    if op not in OPS:
        raise ProtocolError(f"op: must be one of {', '.join(OPS)}")
    return request


def error(message: str, request_id: Any = None) -> dict[str, Any]:
    return with_id({"ok": False, "error": message}, request_id)


def with_id(answer: dict[str, Any], request_id: Any) -> dict[str, Any]:
    if request_id is not None:
        answer["id"] = request_id
    return answer
