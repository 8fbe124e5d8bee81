"""Browser tests: the real app served by ``streamlit run`` and driven with Playwright in
Debian's Chromium, with every request that leaves this machine blocked."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.app_server import serving

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def server_url():
    with serving() as url:
        yield url


STATE_TIMEOUT = 120_000  # ms: a limit for states to be reached on a busy machine


def new_page(
    browser,
    url: str,
    viewport=(1400, 1000),
    cookies: dict[str, str] | None = None,
    locale: str = "en-US",
):
    """A page in a new browser context (its own cookies, the language ``locale``) that may
    reach only the app at ``url``: every other request is blocked and listed in
    ``page.outside_requests``; dialogs are dismissed and listed in ``page.dialogs``."""
    context = browser.new_context(
        viewport={"width": viewport[0], "height": viewport[1]}, locale=locale
    )
    context.set_default_timeout(STATE_TIMEOUT)
    if cookies:
        context.add_cookies([{"name": k, "value": v, "url": url} for k, v in cookies.items()])
    page = context.new_page()
    page.outside_requests = []
    page.dialogs = []

    def guard(route):
        if route.request.url.startswith((url, "data:", "about:", "blob:")):
            route.continue_()
        else:
            page.outside_requests.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    return page


@pytest.fixture
def page(browser, server_url):
    page = new_page(browser, server_url)
    yield page
    page.context.close()


def wait_for_app(page, timeout: float = 180_000) -> None:
    """Wait until Streamlit has finished running the page script."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    page.wait_for_function(
        "() => document.querySelector(\"[data-testid='stApp']\")"
        "?.getAttribute('data-test-script-state') === 'notRunning'",
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def screenshots(request) -> Path | None:
    """Where screenshots go, given ``--screenshots DIR``; None (no screenshots) without it."""
    given = request.config.getoption("--screenshots")
    if given is None:
        return None
    folder = Path(given)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page, folder: Path | None, name: str) -> None:
    """The whole page, into ``folder`` if one is given: Streamlit scrolls inside its main
    container, so the viewport grows for the picture, then goes back to its size (a page as
    tall as the window draws every chart on every run)."""
    if folder is None:
        return
    size = page.viewport_size
    height = page.evaluate(
        "() => document.querySelector(\"[data-testid='stMain']\")?.scrollHeight || 1000"
    )
    page.set_viewport_size({"width": 1400, "height": min(max(height, 1000), 9000)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(folder / f"{name}.png"))
    page.set_viewport_size(size)
