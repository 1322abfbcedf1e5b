"""What the dashboard's browser tests share: where Chromium is, its flags, the screenshots."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("CONVCTL_CHROMIUM", "/usr/bin/chromium"))
# On these machines Chromium needs all of these; without the background-networking ones its
# outbound attempts are refused by the closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def screens_dir() -> Path:
    """``$CONVCTL_SCREENS`` or ``$TMPDIR/convctl-screens``: outside the repository."""
    folder = Path(os.environ.get("CONVCTL_SCREENS")
                  or Path(tempfile.gettempdir()) / "convctl-screens")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def need_browser(chromium: Path) -> None:
    """Skip (with the reason) when Chromium or Playwright is missing; fail under ``CI=true``."""
    if chromium.exists():
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            pass
        else:
            return
    why = (f"browser tests need {chromium} (apt-get install -y chromium) and playwright "
           "(pip install -e '.[test]')")
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {why}")
    pytest.skip(why)
