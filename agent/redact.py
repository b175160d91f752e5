"""Secrets out of what is printed: credentials in URLs (`user:password@`, `?api_key=…`)
masked wherever a URL is echoed (errors, logs, `agent config show`).

Standard library only, and no I/O: the configuration, the sender and the commands use it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASKED = "***"
# Query parameters whose value is a credential.
_SECRET_PARAMETER = re.compile(r"key|token|secret|password|passwd|auth|sig", re.IGNORECASE)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,;:)]")


def redact_url(url: str) -> str:
    """The URL with any user information and credential-like query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASKED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASKED}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(name, MASKED if _SECRET_PARAMETER.search(name) else value) for name, value in pairs],
            safe="*",
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact(text: str) -> str:
    """Every URL in a text with its credentials masked."""
    return _URL.sub(lambda match: redact_url(match.group()), text)
