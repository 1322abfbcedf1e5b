"""Telling a secret from a name, and where a secret file may live.

One detector for every check that must not take, or echo, a secret: ``validate`` (a token pasted
as an ``accessToken`` reference or a label value is refused, E104) and the agent's messages
(``adapters.secrets.describe``). Secret-shaped text is:

- a Meta access token: ``EAA`` and 20 or more letters or digits;
- a convctl control-plane token: ``cvt_`` and 20 or more URL-safe characters;
- a long random string: 32 or more base64 characters mixing upper case, lower case and digits
  (not starting with '/': a path is not a secret), or 32 or more hexadecimal digits mixing
  digits and letters. (A full 40-character commit id is hexadecimal too: use the short form in a
  label.)

``file:`` references name a file inside the secrets folder the operator sets on the agent and the
server (``--secrets-dir`` / ``CONVCTL_SECRETS_DIR``, default ``/run/secrets``, the Docker and
Kubernetes convention): ``file_ref_problem`` is the textual rule validate and the agent share;
the agent also resolves symlinks before it reads.
"""

from __future__ import annotations

import posixpath
import re

DEFAULT_SECRETS_DIR = "/run/secrets"
SECRETS_DIR_ENV = "CONVCTL_SECRETS_DIR"
NOT_SHOWN = "(a value that looks like a token; not shown)"

META_TOKEN = re.compile(r"EAA[A-Za-z0-9]{20,}", re.ASCII)
CVT_TOKEN = re.compile(r"cvt_[A-Za-z0-9_-]{20,}", re.ASCII)
# Never starting at a '/': a path (/run/secrets/acme_token_2024...) is not a secret.
_BASE64_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+_-][A-Za-z0-9+/_-]{31,}", re.ASCII)
_HEX_RUN = re.compile(r"[0-9A-Fa-f]{32,}", re.ASCII)


def looks_like_secret(text: str) -> bool:
    """True when ``text`` holds a token or a long random string (see the module notes)."""
    if META_TOKEN.search(text) or CVT_TOKEN.search(text):
        return True
    for run in _BASE64_RUN.findall(text):
        if (any(c.isupper() for c in run) and any(c.islower() for c in run)
                and any(c.isdigit() for c in run)):
            return True
    return any(any(c.isdigit() for c in run) and not run.isdigit()
               for run in _HEX_RUN.findall(text))


def shown(text: str, limit: int = 64) -> str:
    """``text`` quoted for a message: secret-shaped text is not shown, and escapes make newlines
    and bidi controls visible."""
    if looks_like_secret(text):
        return NOT_SHOWN
    cut = text[:limit]
    quoted = f"'{cut}'" if cut.isascii() and cut.isprintable() else ascii(cut)
    return quoted + ("..." if len(text) > limit else "")


def file_ref_problem(path: str, folder: str | None) -> str | None:
    """Why ``path`` may not be a ``file:`` reference with secrets in ``folder`` (None: it may;
    ``folder=None``: any absolute path without ``..`` may)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "the path contains control characters"
    if not path.startswith("/"):
        return "the path is relative"
    if ".." in path.split("/"):
        return "the path has '..' segments"
    if folder is None:
        return None
    root = posixpath.normpath(folder).rstrip("/") + "/"
    if not posixpath.normpath(path).startswith(root):
        return "the path is outside the secrets folder"
    return None
