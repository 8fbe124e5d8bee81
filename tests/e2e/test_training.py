"""Training in the browser: a run that learns, stops, resumes and, after a reload, is used by
other lessons; and two sessions sharing a server that trains one run at a time.

Every wait is for a state of the page (a button enabled, a step counter past a value), with
limits generous enough for a machine whose cores are busy with other work.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.conftest import start_server, wait_for_app

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


def go_to(page, link_text: str) -> None:
    """Navigate inside the same session (the sidebar link)."""
    page.get_by_role("link", name=link_text).first.click()
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


def job_stop(page):
    """The training run's own Stop button (not Streamlit's Stop of a running script, which
    shows while a page reruns)."""
    return page.locator(".st-key-train-job-stop button")


def wait_for_enabled(page, label: str) -> None:
    page.wait_for_function(
        "(label) => [...document.querySelectorAll('button')].some("
        "b => b.innerText.trim() === label && !b.disabled)",
        arg=label,
        timeout=STATE_TIMEOUT,
    )


def choose(page, label: str, option: str) -> None:
    page.get_by_label(label).first.click()
    page.get_by_role("option", name=option).first.click()
    wait_for_app(page)


def assert_no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0


@pytest.fixture(scope="module")
def one_slot_server():
    process, url = start_server({"TINYFORMERS_MAX_TRAININGS": "1"})
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def test_train_stop_resume_then_use_the_model_elsewhere(browser, server_url) -> None:
    page = new_page(browser, server_url)
    open_lesson(page, server_url, "train")
    page.get_by_text("More stories").first.click()
    wait_for_app(page)
    page.get_by_role("button", name="Start training").click()
    job_stop(page).wait_for()
    page.get_by_text("Sample at step").first.wait_for()  # the first evaluation has run
    assert page.locator(".js-plotly-plot").count() >= 2  # loss curves and the attention
    job_stop(page).click()
    wait_for_enabled(page, "Resume")
    stopped_at = shown_step(page)
    assert stopped_at > 0

    page.get_by_role("button", name="Resume").click()
    job_stop(page).wait_for()
    wait_for_step_past(page, stopped_at)  # the resumed run trains on from where it stopped
    job_stop(page).click()
    wait_for_enabled(page, "Resume")
    assert_no_exception(page)

    page.reload()  # a new session: the model comes back from this browser's saved work
    wait_for_app(page)
    go_to(page, "8. GPT and text generation")
    choose(page, "Model", "my-gpt")
    assert_no_exception(page)
    page.locator(".js-plotly-plot .main-svg").first.wait_for()
    assert page.get_by_text("my-gpt").count() > 0

    go_to(page, "4. Multi-head attention")
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
    first.get_by_role("button", name="Start training").click()
    job_stop(first).wait_for()

    second.get_by_role("button", name="Start training").click()
    second.get_by_text("Busy: 1 run is ahead of you").wait_for()

    # While a run trains, the first student's other pages still work (how fast they answer under
    # load is measured by the benchmarks, not here).
    go_to(first, "3. Self-attention step by step")
    assert_no_exception(first)
    go_to(first, "10. Train a tiny model yourself")
    job_stop(first).click()

    # The slot frees: the second run starts.
    second.get_by_text("Busy: 1 run is ahead of you").wait_for(state="detached")
    job_stop(second).wait_for()
    job_stop(second).click()
    wait_for_enabled(second, "Resume")
    for page in (first, second):
        assert_no_exception(page)
        page.context.close()
