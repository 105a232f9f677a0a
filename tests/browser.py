"""Debian's Chromium driven by Playwright, as the browser tests run it. `python tests/browser.py`
launches it that way and loads a page: the Makefile's browser step writes its stamp only if
this succeeds."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from required import require

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_STEP = "the Makefile's browser step (`make .venv/.browser`) installs and checks it"
# Without these, Chromium keeps trying to reach Google's hosts on a closed network.
QUIET_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason=f"Chromium is not installed: {BROWSER_STEP}"
)


@contextmanager
def chromium_page() -> Iterator[object]:
    """A page of a real headless Chromium (Debian's, driven by Playwright)."""
    sync_api = require("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=QUIET_FLAGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def main() -> int:
    if CHROMIUM is None:
        print("error: chromium is not on PATH (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    try:
        with chromium_page() as page:
            page.set_content("<p id='probe'>runs</p>")  # type: ignore[attr-defined]
            text = page.text_content("#probe")  # type: ignore[attr-defined]
    except (Exception, pytest.fail.Exception) as error:
        print(f"error: {CHROMIUM} does not run under Playwright: {error}", file=sys.stderr)
        return 1
    if text != "runs":
        print(f"error: {CHROMIUM} ran but rendered {text!r} for a test page", file=sys.stderr)
        return 1
    print(f"chromium runs: {CHROMIUM}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
