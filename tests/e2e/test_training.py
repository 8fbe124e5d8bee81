"""Training in the browser: a run that learns, stops, resumes and is then used by other
lessons; and two sessions sharing a server that trains one run at a time."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.e2e.conftest import start_server, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def new_page(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
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


def go_to(page, link_text: str) -> float:
    """Navigate inside the same session (the sidebar link), returning how long it took."""
    start = time.perf_counter()
    page.get_by_role("link", name=link_text).first.click()
    wait_for_app(page, timeout=60_000)
    return time.perf_counter() - start


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
    started = time.perf_counter()
    page.get_by_role("button", name="Stop").first.wait_for(timeout=60_000)
    page.get_by_text("Sample at step").first.wait_for(timeout=90_000)
    page.wait_for_timeout(max(0.0, 30 - (time.perf_counter() - started)) * 1000)
    assert page.locator(".js-plotly-plot").count() >= 2  # loss curves and the attention
    page.get_by_role("button", name="Stop").first.click()
    page.get_by_role("button", name="Resume").wait_for(timeout=60_000)
    resume = page.get_by_role("button", name="Resume")
    resume.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('button')].some("
        "b => b.innerText.trim() === 'Resume' && !b.disabled)",
        timeout=60_000,
    )
    resume.click()
    page.get_by_role("button", name="Stop").first.wait_for(timeout=60_000)
    page.wait_for_timeout(3_000)
    page.get_by_role("button", name="Stop").first.click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('button')].some("
        "b => b.innerText.trim() === 'Resume' && !b.disabled)",
        timeout=60_000,
    )
    assert_no_exception(page)

    go_to(page, "8. GPT and text generation")
    choose(page, "Model", "my-gpt")
    assert_no_exception(page)
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)
    assert page.get_by_text("my-gpt").count() > 0

    go_to(page, "4. Multi-head attention")
    choose(page, "Model (GPT or BERT)", "my-gpt")
    assert_no_exception(page)
    page.frame_locator("iframe").first.locator("svg line").first.wait_for(
        state="attached", timeout=30_000
    )
    page.context.close()


def test_second_session_waits_for_the_slot_and_the_first_stays_responsive(
    browser, one_slot_server
) -> None:
    url = one_slot_server
    first, second = new_page(browser, url), new_page(browser, url)
    for page in (first, second):
        open_lesson(page, url, "train")
    first.get_by_role("button", name="Start training").click()
    first.get_by_role("button", name="Stop").first.wait_for(timeout=60_000)

    second.get_by_role("button", name="Start training").click()
    second.get_by_text("Busy: 1 run is ahead of you").wait_for(timeout=30_000)

    # While a run trains, the first student's other pages still respond.
    took = go_to(first, "3. Self-attention step by step")
    assert_no_exception(first)
    assert took < 30, f"a page took {took:.1f} s to load while a run was training"
    go_to(first, "10. Train a tiny model yourself")
    first.get_by_role("button", name="Stop").first.click()

    # The slot frees: the second run starts.
    second.get_by_text("Busy: 1 run is ahead of you").wait_for(state="detached", timeout=60_000)
    second.get_by_role("button", name="Stop").first.wait_for(timeout=60_000)
    second.get_by_role("button", name="Stop").first.click()
    for page in (first, second):
        assert_no_exception(page)
        page.context.close()
