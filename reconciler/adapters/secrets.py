"""Resolving a ``SecretRef`` (``{env: NAME}`` or ``{file: PATH}``) to the secret it names.

Errors name the variable or the file, never the value. A file's content is stripped of
surrounding whitespace (a trailing newline is the usual case). ``fingerprint`` gives a short,
non-reversible tag of a secret so the agent can notice that a token changed without storing it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from reconciler.core.models import SecretRef
from reconciler.errors import PermanentError


class SecretUnavailable(PermanentError):
    """The referenced secret is not set, empty or unreadable."""


def resolve_secret(ref: SecretRef, environ: Mapping[str, str] | None = None) -> str:
    """The secret named by ``ref``; ``environ`` defaults to the process environment."""
    env = os.environ if environ is None else environ
    if ref.env is not None:
        value = env.get(ref.env, "").strip()
        if not value:
            raise SecretUnavailable(f"environment variable {ref.env} is not set or empty")
        return value
    path = Path(ref.file or "").expanduser()
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretUnavailable(f"cannot read the secret file {path}: "
                                f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from exc
    if not value:
        raise SecretUnavailable(f"the secret file {path} is empty")
    return value


def describe(ref: SecretRef) -> str:
    """Where the secret comes from, for messages (``env ACME_META_TOKEN``)."""
    return f"env {ref.env}" if ref.env is not None else f"file {ref.file}"


def fingerprint(secret: str) -> str:
    """12 hex chars of SHA-256: tells two tokens apart, reveals nothing usable."""
    return hashlib.sha256(b"convctl-token-fingerprint\0" + secret.encode()).hexdigest()[:12]
