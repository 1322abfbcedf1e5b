"""``resolve_secret``: confined to the secrets folder, never echoing a token-like reference
(issue 10, items 4 and 5). The end-to-end agent runs are in ``tests/agent/test_secret_files.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.adapters.secrets import (
    MAX_SECRET_BYTES,
    SecretUnavailable,
    describe,
    resolve_secret,
)
from reconciler.core.models import SecretRef

TOKEN = "EAAGm0PX4ZCpsBAKZAZBtop012"


def _refusal(ref: SecretRef, folder: Path, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(SecretUnavailable) as caught:
        resolve_secret(ref, environ or {}, secrets_dir=str(folder))
    return str(caught.value)


def test_paths_that_leave_the_folder_are_refused_unread(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    folder.mkdir()
    (tmp_path / "hostname").write_text("content-of-the-file")
    for path, why in ((f"{folder}/../hostname", "'..' segments"),
                      ("../hostname", "relative"), (str(tmp_path / "hostname"), "outside"),
                      (str(folder), "outside"), (f"{folder}/x\x00y", "control characters")):
        message = _refusal(SecretRef(file=path), folder)
        assert message.startswith("refusing to read the secret file ") and why in message
        assert "content-of-the-file" not in message and "\n" not in message


def test_a_pasted_token_as_a_reference_is_never_echoed(tmp_path: Path) -> None:
    for ref in (SecretRef(env=TOKEN), SecretRef(file=TOKEN), SecretRef(file=f"/run/{TOKEN}")):
        message = _refusal(ref, tmp_path, {TOKEN: "looked-up"})
        assert TOKEN not in message and TOKEN[:12] not in message, message
        assert "not shown" in message and TOKEN not in describe(ref)
    assert describe(SecretRef(env="ACME_META_TOKEN")) == "env ACME_META_TOKEN"


def test_a_token_like_env_name_is_not_even_looked_up(tmp_path: Path) -> None:
    message = _refusal(SecretRef(env=TOKEN), tmp_path, {TOKEN: "value"})
    assert message == "environment variable (a value that looks like a token; not shown) is " \
                      "not set or empty"


def test_a_big_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * (MAX_SECRET_BYTES + 1))
    assert "larger than 64 KiB" in _refusal(SecretRef(file=str(big)), tmp_path)
    big.write_bytes(b"x" * MAX_SECRET_BYTES)
    assert resolve_secret(SecretRef(file=str(big)), secrets_dir=str(tmp_path)) == "x" * (
        MAX_SECRET_BYTES)


def test_the_folder_comes_from_the_environment_by_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "t").write_text(" tok \n")
    monkeypatch.setenv("CONVCTL_SECRETS_DIR", str(tmp_path))
    assert resolve_secret(SecretRef(file=str(tmp_path / "t"))) == "tok"
    monkeypatch.delenv("CONVCTL_SECRETS_DIR")
    with pytest.raises(SecretUnavailable, match="read only inside /run/secrets"):
        resolve_secret(SecretRef(file=str(tmp_path / "t")))
