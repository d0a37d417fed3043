"""Where to go after log-on (or a change of language): only a local path of the portal, never another site."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

_FORBIDDEN = frozenset("\\\r\n\t\x00")


def safe_next(value: str | None, root: str) -> str | None:
    """`value` if it is a path under the portal's root (e.g. /portal/...), else None: absolute and scheme-relative
    URLs, backslashes, control characters and dot segments are refused."""
    if not value or len(value) > 2000 or any(c in _FORBIDDEN or ord(c) < 32 for c in value):
        return None
    if value.startswith("//"):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    if parts.path != root and not parts.path.startswith(root.rstrip("/") + "/"):
        return None
    if any(unquote(segment) in (".", "..") for segment in parts.path.split("/")) or "//" in parts.path:
        return None
    return value
