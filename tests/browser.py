"""Headless Chromium for the tests that look at what a person sees (the readiness report, the serve
page): Debian's chromium, which scripts/test.sh installs. Missing in CI is a failure, elsewhere a skip."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# headless, no network chatter of its own, no first-run UI
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (scripts/setup.sh installs Debian's chromium)")
        pytest.skip("chromium is not installed")
    return CHROMIUM
