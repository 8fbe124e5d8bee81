"""Predict, then see, in the browser: committing a prediction shows the model's answer, its
explanation and its figure (``commit_and_see``, used on every lesson by test_pages.py); a reload
and a server restart keep the committed answer."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import wait_for_app
from tinyformers.lessons import load_lessons

pytestmark = pytest.mark.browser

LESSONS = [lesson for lesson in load_lessons() if lesson.predict]


def first_open_question(page, slug: str):
    """The lesson's first prediction that applies to the default input (a fresh browser has
    answered none)."""
    boxes = page.locator(f"[class*='st-key-predict-{slug}-']")
    box = boxes.first  # a question that does not apply to the input has no box
    box.get_by_role("button", name="Commit my prediction").wait_for()
    return box


def choose_first(box) -> None:
    """Pick the first choice. A run that draws the box again (the first run of a new browser
    sets its cookie) can swallow a click, so click until the choice shows as picked."""
    radio = box.get_by_role("radio").first
    for _ in range(5):
        radio.click(force=True)
        try:
            expect(radio).to_be_checked(timeout=15_000)
            return
        except AssertionError:
            continue
    expect(radio).to_be_checked()


def answer(box) -> None:
    box.locator("[data-testid='stRadioGroup'], input[type='number']").first.wait_for()
    if box.get_by_role("radiogroup").count():
        choose_first(box)
    else:
        field = box.locator("input[type='number']")
        field.fill("0")
        field.press("Enter")
    commit = box.get_by_role("button", name="Commit my prediction")
    expect(commit).to_be_enabled(timeout=120_000)  # once the page has run with the answer
    commit.click()


def commit_and_see(page, slug: str) -> str:
    """Commit the lesson's first prediction that applies; wait for the model's answer, its
    explanation and its figure. The question's key."""
    lesson = next(lesson for lesson in LESSONS if lesson.slug == slug)
    box = first_open_question(page, slug)
    key = (box.get_attribute("class") or "").split(f"st-key-predict-{slug}-")[1].split()[0]
    answer(box)
    box = page.locator(f"[class*='st-key-predict-{slug}-{key}']")
    box.get_by_text("The model's answer").wait_for()
    wait_for_app(page)
    assert box.get_by_text("Your prediction:").count() == 1
    assert box.get_by_role("button", name="Commit my prediction").count() == 0
    question = next(q for q in lesson.predict if q.key == key)
    if question.explanation:
        assert box.locator("[data-testid='stMarkdownContainer']").count() >= 2
    if question.figure:
        box.locator("[data-testid='stPlotlyChart']").first.wait_for()
    assert page.locator("[data-testid='stException']").count() == 0
    return key


def test_a_committed_answer_survives_a_reload_and_a_server_restart(browser) -> None:
    """The same browser (its cookie) after a reload, and after the server was stopped and
    started again. (tests/e2e/test_pages.py commits a prediction on every lesson.)"""
    from bench.app_server import free_port, launch, stop_server, wait_healthy
    from tests.e2e.conftest import new_page

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = launch(port)
    try:
        wait_healthy(url, server)
        page = new_page(browser, url)
        page.goto(f"{url}/attention")
        wait_for_app(page)
        key = commit_and_see(page, "attention")
        page.reload()
        wait_for_app(page)
        box = page.locator(f"[class*='st-key-predict-attention-{key}']")
        box.get_by_text("The model's answer").wait_for()
        assert box.get_by_role("button", name="Commit my prediction").count() == 0
    finally:
        stop_server(server)
    server = launch(port)  # a new process: nothing is left in memory
    try:
        wait_healthy(url, server)
        page.goto(f"{url}/attention")
        wait_for_app(page)
        box = page.locator(f"[class*='st-key-predict-attention-{key}']")
        box.get_by_text("The model's answer").wait_for()
        assert box.get_by_role("button", name="Commit my prediction").count() == 0
        page.context.close()
    finally:
        stop_server(server)
