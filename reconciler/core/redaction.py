"""What counts as a token, and how text is made safe to print (one detector for every caller).

Two token kinds must never leave the process: Meta access tokens (``EAA`` + 20 or more letters
and digits) and control-plane bearer tokens (``cvt_`` + URL-safe characters). ``validate`` and
every write path refuse label values that hold one (E104); renderers, ``convctl events``, the
API and error messages mask them (``mask_tokens``). ``printable`` also escapes control and
bidirectional-override characters so a hostile name cannot break a line or reverse the text
around it.
"""

from __future__ import annotations

import re

from reconciler.core.credentials import CVT_TOKEN, META_TOKEN

MASK = "***redacted***"
TOKEN = re.compile(f"{META_TOKEN.pattern}|{CVT_TOKEN.pattern}", re.ASCII)
"""A Meta access token or a ``cvt_`` control-plane token, anywhere in a text."""
_TOKEN_BYTES = re.compile(TOKEN.pattern.encode())
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
# ESC stays: the text renderer's own colours use it; values reach it JSON-encoded (ESC escaped)
# and names through ``printable``.
_UNSAFE_IN_LINES = re.compile(
    r"[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def looks_like_token(text: str) -> bool:
    """True when ``text`` holds something shaped like a Meta or control-plane token."""
    return TOKEN.search(text) is not None


def mask_tokens(text: str) -> str:
    """``text`` with every token-shaped substring replaced by ``MASK``."""
    return TOKEN.sub(MASK, text)


def mask_tokens_bytes(data: bytes) -> bytes:
    """``mask_tokens`` for serialized JSON: a token's characters never need escaping in JSON,
    so masking the bytes masks every string value (and key) in the document."""
    return _TOKEN_BYTES.sub(MASK.encode(), data)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\u{ord(char):04x}")


def printable(text: str) -> str:
    """``text`` masked, with control, line-separator and bidi-control characters escaped
    (``\\n``, ``\\u202e``): one line, read in the order it is stored."""
    masked = mask_tokens(text)
    return masked if masked.isascii() and masked.isprintable() else _UNSAFE.sub(_escape, masked)


def printable_lines(text: str) -> str:
    """Multi-line output (a rendered plan, serialized JSON) masked, with every unsafe character
    but line feeds and tabs written as a ``\\uXXXX`` escape. JSON stays the same JSON value (a
    JSON encoder leaves C1 and bidi controls raw, and escapes the rest itself)."""
    return _UNSAFE_IN_LINES.sub(lambda m: f"\\u{ord(m.group()):04x}", mask_tokens(text))
