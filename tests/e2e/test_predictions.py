"""Predict, then see, in the browser: on every lesson a prediction is committed and the model's
answer, its explanation and its figure appear; a reload keeps the committed answer."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import wait_for_app
from tinyformers.lessons import load_lessons

LESSONS = [lesson for lesson in load_lessons() if lesson.predict]


def first_open_question(page, slug: str):
    """The lesson's first prediction that applies to the default input (a fresh browser has
    answered none)."""
    boxes = page.locator(f"[class*='st-key-predict-{slug}-']")
    box = boxes.first  # a question that does not apply to the input has no box
    box.get_by_role("button", name="Commit my prediction").wait_for()
    return box


def answer(box) -> None:
    box.locator("[data-testid='stRadioGroup'], input[type='number']").first.wait_for()
    if box.get_by_role("radiogroup").count():
        box.get_by_role("radio").first.check(force=True)
    else:
        field = box.locator("input[type='number']")
        field.fill("0")
        field.press("Enter")
    commit = box.get_by_role("button", name="Commit my prediction")
    expect(commit).to_be_enabled(timeout=120_000)  # once the page has run with the answer
    commit.click()


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_a_prediction_is_committed_then_revealed(page, server_url, lesson) -> None:
    page.goto(f"{server_url}/{lesson.slug}")
    wait_for_app(page)
    box = first_open_question(page, lesson.slug)
    key = (box.get_attribute("class") or "").split(f"st-key-predict-{lesson.slug}-")[1].split()[0]
    answer(box)
    box = page.locator(f"[class*='st-key-predict-{lesson.slug}-{key}']")
    box.get_by_text("The model's answer").wait_for()
    wait_for_app(page)
    assert box.get_by_text("Your prediction:").count() == 1
    assert box.get_by_role("button", name="Commit my prediction").count() == 0
    question = next(q for q in lesson.predict if q.key == key)
    if question.figure:
        box.locator("[data-testid='stPlotlyChart']").first.wait_for()
    assert page.locator("[data-testid='stException']").count() == 0
    assert not page.outside_requests
    if lesson.slug == "attention":  # the committed answer comes back after a reload
        page.reload()
        wait_for_app(page)
        box = page.locator(f"[class*='st-key-predict-{lesson.slug}-{key}']")
        box.get_by_text("The model's answer").wait_for()
        assert box.get_by_role("button", name="Commit my prediction").count() == 0
