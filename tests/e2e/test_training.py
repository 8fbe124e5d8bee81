"""Training in the browser: a run that learns, stops, resumes and, after a reload, is used by
other lessons; and two sessions sharing a server that trains one run at a time.

Every wait is for a state of the page (a button enabled, a step counter past a value), with
limits generous enough for a machine whose cores are busy with other work.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from bench.app_server import serving
from tests.e2e.conftest import wait_for_app
from tinyformers.lessons import get_lesson

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STATE_TIMEOUT = 300_000  # ms: a limit for a state to be reached, never a time a step should take


def new_page(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(STATE_TIMEOUT)
    page = context.new_page()
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith((url, "data:", "about:", "blob:"))
            else route.abort()
        ),
    )
    return page


def open_lesson(page, url: str, path: str) -> None:
    page.goto(f"{url}/{path}")
    wait_for_app(page)


def go_to(page, slug: str) -> None:
    """Navigate inside the same session: the sidebar link of lesson ``slug``."""
    lesson = get_lesson(slug)
    page.get_by_role("link", name=f"{lesson.order}. {lesson.title}").first.click()
    wait_for_app(page, timeout=STATE_TIMEOUT)


def shown_step(page) -> int:
    """The step the page's "Step" counter shows."""
    value = page.locator("[data-testid='stMetric']", has_text="Step").first
    return int(value.locator("[data-testid='stMetricValue']").inner_text().replace(",", ""))


def wait_for_step_past(page, step: int) -> None:
    page.wait_for_function(
        """(step) => [...document.querySelectorAll("[data-testid='stMetric']")].some(m =>
            m.innerText.startsWith('Step') &&
            parseInt(m.querySelector("[data-testid='stMetricValue']").innerText.replace(/,/g, ''))
              > step)""",
        arg=step,
        timeout=STATE_TIMEOUT,
    )


def wait_for_enabled(page, label: str) -> None:
    """Wait until the page's button ``label`` can be pressed (the lesson's own: the toolbar's
    "Stop" stops a script run, not a training run)."""
    page.wait_for_function(
        "(label) => [...document.querySelectorAll(\"[data-testid='stMain'] button\")].some("
        "b => b.innerText.trim() === label && !b.disabled)",
        arg=label,
        timeout=STATE_TIMEOUT,
    )


def start_a_long_run(page) -> None:
    """Start a run of more steps than a busy machine trains while the test looks on."""
    steps = page.get_by_label("Steps", exact=True)
    steps.fill("20000")
    steps.press("Enter")
    wait_for_app(page)
    press(page, "Start training")


def press(page, label: str) -> None:
    """Press the lesson's button ``label`` once it can be pressed."""
    wait_for_enabled(page, label)
    page.locator("[data-testid='stMain']").get_by_role("button", name=label, exact=True).click()


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the menu labelled ``label``; a run that redraws the menu as it opens
    closes it, so open it again until the option shows."""
    menu = page.get_by_label(label, exact=True).first
    for _ in range(3):
        wait_for_app(page)
        menu.click()
        try:
            page.get_by_role("option", name=option).first.click(timeout=60_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    else:
        raise AssertionError(f"the menu {label!r} never offered {option!r}")
    wait_for_app(page)


def assert_no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0


@pytest.fixture(scope="module")
def one_slot_server():
    with serving({"TINYFORMERS_MAX_TRAININGS": "1"}) as url:
        yield url


def test_train_stop_resume_then_use_the_model_elsewhere(browser, server_url) -> None:
    page = new_page(browser, server_url)
    open_lesson(page, server_url, "train")
    page.get_by_text("More stories").first.click()
    wait_for_app(page)
    start_a_long_run(page)
    wait_for_enabled(page, "Stop")  # the run trains
    page.get_by_text("Sample at step 0, untrained").first.wait_for()  # the run is built
    wait_for_step_past(page, 0)  # and has trained
    assert page.locator(".js-plotly-plot").count() >= 2  # loss curves and the attention
    press(page, "Stop")
    wait_for_enabled(page, "Resume")
    stopped_at = shown_step(page)
    assert stopped_at > 0

    press(page, "Resume")
    wait_for_enabled(page, "Stop")
    wait_for_step_past(page, stopped_at)  # the resumed run trains on from where it stopped
    press(page, "Stop")
    wait_for_enabled(page, "Resume")
    assert_no_exception(page)

    page.reload()  # a new session: the model comes back from this browser's saved work
    wait_for_app(page)
    go_to(page, "gpt")
    choose(page, "Model", "my-gpt")
    assert_no_exception(page)
    page.locator(".js-plotly-plot .main-svg").first.wait_for()
    assert page.get_by_text("my-gpt").count() > 0

    go_to(page, "multi-head")
    choose(page, "Model (GPT or BERT)", "my-gpt")
    assert_no_exception(page)
    page.frame_locator("iframe").first.locator("svg line").first.wait_for(state="attached")
    page.context.close()


def test_second_session_waits_for_the_slot_and_the_first_stays_responsive(
    browser, one_slot_server
) -> None:
    url = one_slot_server
    first, second = new_page(browser, url), new_page(browser, url)
    for page in (first, second):
        open_lesson(page, url, "train")
    start_a_long_run(first)
    wait_for_enabled(first, "Stop")  # the first run holds the slot

    start_a_long_run(second)
    second.get_by_text("Busy: 1 run is ahead of you").wait_for()

    # While a run trains, the first student's other pages still work (how fast they answer under
    # load is measured by the benchmarks, not here).
    go_to(first, "attention")
    assert_no_exception(first)
    go_to(first, "train")
    press(first, "Stop")

    # The slot frees: the second run starts.
    second.get_by_text("Busy: 1 run is ahead of you").wait_for(state="detached")
    press(second, "Stop")
    wait_for_enabled(second, "Resume")
    for page in (first, second):
        assert_no_exception(page)
        page.context.close()
