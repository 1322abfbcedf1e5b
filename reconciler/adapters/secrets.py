"""Resolving a ``SecretRef`` (``{env: NAME}`` or ``{file: PATH}``) to the secret it names.

Errors name the variable or the file, never the value, and never echo a reference that looks
like a token (``describe``). A ``file:`` reference is read only inside the secrets folder the
operator sets (``--secrets-dir`` / ``CONVCTL_SECRETS_DIR``, default ``/run/secrets``), symlinks
resolved first: a manifest author cannot make the agent read ``/etc/hostname`` and send it to
Meta as a token. A file's content is stripped of surrounding whitespace (a trailing newline is
the usual case). ``fingerprint`` gives a short, non-reversible tag of a secret so the agent can
notice that a token changed without storing it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping

from reconciler.core.credentials import (
    DEFAULT_SECRETS_DIR,
    NOT_SHOWN,
    SECRETS_DIR_ENV,
    file_ref_problem,
    looks_like_secret,
)
from reconciler.core.models import SecretRef
from reconciler.errors import PermanentError

MAX_SECRET_BYTES = 64 * 1024  # a token is a few hundred bytes; never slurp a big file


class SecretUnavailable(PermanentError):
    """The referenced secret is not set, empty, unreadable or outside the secrets folder."""


def resolve_secret(ref: SecretRef, environ: Mapping[str, str] | None = None, *,
                   secrets_dir: str | None = None) -> str:
    """The secret named by ``ref``; ``environ`` defaults to the process environment,
    ``secrets_dir`` to ``CONVCTL_SECRETS_DIR``, else ``/run/secrets``."""
    env = os.environ if environ is None else environ
    if ref.env is not None:
        value = env.get(ref.env, "").strip() if not looks_like_secret(ref.env) else ""
        if not value:
            raise SecretUnavailable(f"environment variable {_name(ref.env)} is not set or empty")
        return value
    folder = secrets_dir or os.environ.get(SECRETS_DIR_ENV) or DEFAULT_SECRETS_DIR
    path = _confined(ref, os.path.abspath(folder))
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SECRET_BYTES + 1)
        value = data.decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise SecretUnavailable(f"cannot read the secret {describe(ref)}: {reason}") from exc
    if len(data) > MAX_SECRET_BYTES:
        raise SecretUnavailable(f"the secret {describe(ref)} is larger than "
                                f"{MAX_SECRET_BYTES // 1024} KiB; refused")
    if not value:
        raise SecretUnavailable(f"the secret {describe(ref)} is empty")
    return value


def _confined(ref: SecretRef, folder: str) -> str:
    """The real path of a ``file:`` reference, refused unless it is inside ``folder``."""
    raw = ref.file or ""
    problem = "it looks like a token" if looks_like_secret(raw) else file_ref_problem(raw, folder)
    real = raw
    if problem is None:  # textually inside: now with every symlink resolved
        real, root = os.path.realpath(raw), os.path.realpath(folder)
        if os.path.commonpath([real, root]) != root or real == root:
            problem = "it resolves (symlinks followed) outside the secrets folder"
    if problem is not None:
        raise SecretUnavailable(f"refusing to read the secret {describe(ref)}: {problem}; secret "
                                f"files are read only inside {folder} (--secrets-dir or "
                                f"{SECRETS_DIR_ENV})")
    return real


def describe(ref: SecretRef) -> str:
    """Where the secret comes from, for messages (``env ACME_META_TOKEN``)."""
    return f"env {_name(ref.env)}" if ref.env is not None else f"file {_name(ref.file or '')}"


def _name(text: str) -> str:
    """A reference as messages show it: never one that looks like a pasted token."""
    if looks_like_secret(text):
        return NOT_SHOWN
    return text if text.isascii() and text.isprintable() else ascii(text)


def fingerprint(secret: str) -> str:
    """12 hex chars of SHA-256: tells two tokens apart, reveals nothing usable."""
    return hashlib.sha256(b"convctl-token-fingerprint\0" + secret.encode()).hexdigest()[:12]
