"""Integration fixtures: a fresh workspace whose settings ignore the caller's MLflow environment,
and the system's headless Chromium for the browser tests (the labs, the docs site)."""

from __future__ import annotations

import os
import shutil

import pytest

from reference.config import get_settings


@pytest.fixture(scope="module")
def fresh_settings(tmp_path_factory):
    """Settings of a new workspace per test module, with MLFLOW_TRACKING_URI and the model name
    taken from the defaults, not from whatever the shell running the tests has exported."""
    mp = pytest.MonkeyPatch()
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.delenv("MLOPS_LAB_MODEL_NAME", raising=False)
    yield get_settings(tmp_path_factory.mktemp("ws"))
    mp.undo()


# Playwright passes most of what keeps Chromium quiet offline already (its own --disable-features
# list among them, which is why there is none here); these say it again where it matters. The
# sandbox is off (Playwright's default, chromium_sandbox=False): as root Chromium needs that.
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-dev-shm-usage",  # containers often have a small /dev/shm
]


def _chromium() -> str | None:
    return os.environ.get("MLOPS_LAB_CHROMIUM") or shutil.which("chromium")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from the system; closed afterwards."""
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="playwright not installed (a dev dependency: make setup, or "
        "`.venv/bin/pip install -c requirements/constraints.txt playwright`; "
        "no `playwright install`: the test uses the system's chromium)",
    )
    chromium = _chromium()
    if not chromium:
        pytest.skip(
            "chromium not found: the browser test drives the system's headless Chromium "
            "(`apt-get install chromium` on Debian; or set MLOPS_LAB_CHROMIUM to a Chromium "
            "or Chrome binary)"
        )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, chromium_sandbox=False, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
