"""The JSON-lines protocol between plugins and the daemon (DESIGN.md §3).

Standard library only. One request object per line, one answer line each, in order.

`dumps`/`loads` use CPython's C JSON accelerator directly: the `json` package imports `re`
(and with it `enum`), which costs a plugin's per-save process about 7 ms before it has
done anything. Where the accelerator is missing they fall back to `json`, with the same
results either way: strict JSON, no NaN or Infinity.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_LINE = 1024 * 1024  # bytes, newline included
OPS = ("heartbeat", "heartbeats", "status", "today", "flush", "ping", "sync_ai", "why")
MAX_BATCH = 10_000
_WHITESPACE = " \t\n\r"


class ProtocolError(ValueError):
    """A request that cannot be served; the message says what was wrong."""


def _not_serializable(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


class _ScanContext:
    """The attributes the C scanner reads from a decoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_no_constant)
    memo: dict[str, str] = {}  # noqa: RUF012 - the scanner clears it after each call


try:
    from _json import encode_basestring_ascii, make_encoder, make_scanner

    _encode = make_encoder(
        {}, _not_serializable, encode_basestring_ascii, None, ":", ",", False, False, False
    )
    _scan = make_scanner(_ScanContext())
except (ImportError, TypeError, AttributeError):  # not CPython: the pure-Python route
    import json as _json_module

    def dumps(value: Any) -> str:
        """Compact JSON text, pure ASCII (any string, even a lone surrogate, can be sent)."""
        return _json_module.dumps(value, separators=(",", ":"), allow_nan=False)

    def loads(text: str | bytes) -> Any:
        """Parse one JSON document; ValueError when it is not one."""
        return _json_module.loads(text, parse_constant=_no_constant)

else:

    def dumps(value: Any) -> str:
        """Compact JSON text, pure ASCII (any string, even a lone surrogate, can be sent)."""
        return "".join(_encode(value, 0))

    def loads(text: str | bytes) -> Any:
        """Parse one JSON document; ValueError when it is not one."""
        if isinstance(text, bytes | bytearray):
            text = bytes(text).decode("utf-8")
        start = len(text) - len(text.lstrip(_WHITESPACE))
        try:
            value, end = _scan(text, start)
        except StopIteration as exc:
            raise ValueError(f"expecting a JSON value at character {exc.value}") from None
        if text[end:].strip(_WHITESPACE):
            raise ValueError(f"extra data at character {end}")
        return value


def encode(message: dict[str, Any]) -> bytes:
    return dumps(message).encode() + b"\n"


def decode_request(line: bytes) -> dict[str, Any]:
    """Parse one request line into a dict with a known `op`; raises ProtocolError."""
    try:
        request = loads(line)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"not a JSON object: {exc}") from None
    if not isinstance(request, dict):
        raise ProtocolError("a request must be a JSON object")
    op = request.get("op")
    if op not in OPS:
        raise ProtocolError(f"op: must be one of {', '.join(OPS)}")
    if "id" in request:
        try:
            dumps(request["id"])
        except ValueError:  # JSON has no infinity: `1e400` reads as one, and cannot go back
            del request["id"]
            raise ProtocolError("id: must be a JSON value with finite numbers only") from None
    return request


def error(message: str, request_id: Any = None) -> dict[str, Any]:
    return with_id({"ok": False, "error": message}, request_id)


def with_id(answer: dict[str, Any], request_id: Any) -> dict[str, Any]:
    if request_id is not None:
        answer["id"] = request_id
    return answer
