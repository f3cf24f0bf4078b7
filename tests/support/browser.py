"""The headless Chromium every browser test drives (its path and flags live with the benchmarks, which drive it too)."""

from __future__ import annotations

import os

import pytest

from benchmarks.support.browser import CHROMIUM


def require_chromium() -> str:
    """Its path; with ``CI`` set a missing browser fails the test, elsewhere it skips it saying how to install."""
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium", pytrace=False)
        pytest.skip(reason=f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    return CHROMIUM
