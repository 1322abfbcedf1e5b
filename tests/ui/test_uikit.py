"""Without Chromium the browser tests skip with the reason, except under CI=true: fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from uikit import need_browser


def test_a_missing_browser_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    missing = tmp_path / "no-chromium"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        need_browser(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: browser tests need"):
        need_browser(missing)
