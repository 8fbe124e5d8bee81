"""Open every page in Chromium: no exception, charts drawn, attention views drawn, offline; each
lesson's first screen at three window sizes (test_first_screen.py); then the same page in
Russian, with no English left (russian.py). Lessons 1–7 here, the others in
test_pages_later.py, so that two workers taking whole files finish at about the same time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import new_page, screenshot, wait_for_app
from tests.e2e.russian import check_russian_page
from tests.e2e.test_first_screen import VIEWPORTS, check_first_screen
from tests.e2e.test_links import LINK_CHANGES, check_the_link_of_a_changed_view
from tests.e2e.test_predictions import commit_and_see
from tinyformers.course import contextual_embeddings
from tinyformers.lessons import load_lessons

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "app" / "app_pages"

LESSON_SLUGS = [
    lesson.slug
    for lesson in load_lessons()
    if (PAGES / f"{lesson.slug.replace('-', '_')}.py").is_file()
]

# Each lesson's first screen on a laptop, a projector and a phone (test_first_screen.py).
LESSON_SIZES = tuple(VIEWPORTS)
# English sentences a page feeds its model and shows as they are, by page
MODEL_INPUT = {"contextual-embeddings": contextual_embeddings.DEFAULT_SENTENCES}
# this file's lessons; test_pages_later.py has the rest (the first lessons take longer)
FIRST_LESSONS = LESSON_SLUGS[:7]

pytestmark = pytest.mark.browser


def open_page(page, server_url: str, path: str) -> None:
    page.goto(f"{server_url}/{path}")
    wait_for_app(page)


def assert_healthy(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, "the page shows an exception"
    assert page.dialogs == [], f"a dialog fired: {page.dialogs}"
    assert page.outside_requests == [], f"the page tried to reach {page.outside_requests[:3]}"
    page.wait_for_function("() => !document.querySelector(\"[data-testid='stSkeleton']\")")
    scripts = page.evaluate("() => performance.getEntriesByType('resource').map((e) => e.name)")
    highlighter = [name for name in scripts if "SyntaxHighlighter" in name]
    assert highlighter == [], "a code element loaded Streamlit's highlighter (see widgets.code)"


def check_in_russian(page, server_url: str, path: str) -> None:
    """The page at ``path`` opened again with ``?lang=ru``: healthy, and no English left."""
    open_page(page, server_url, f"{path}?lang=ru")
    assert_healthy(page)
    left = check_russian_page(page, MODEL_INPUT.get(path, ()))
    assert left == [], f"English left on /{path}?lang=ru:\n" + "\n".join(left)


def test_course_map(page, server_url, screenshots) -> None:
    open_page(page, server_url, "")
    assert_healthy(page)
    assert page.get_by_text("Course map").first.is_visible()
    screenshot(page, screenshots, "course-map")
    check_in_russian(page, server_url, "")


def test_lesson_plans(page, server_url, screenshots) -> None:
    open_page(page, server_url, "plan")
    assert_healthy(page)
    assert page.get_by_text("Lesson plans").first.is_visible()
    handouts = page.get_by_role("button", name="Download handout (HTML)")
    handouts.first.wait_for()
    assert handouts.count() == len(LESSON_SLUGS)
    screenshot(page, screenshots, "lesson-plans")
    check_in_russian(page, server_url, "plan")


def test_class_view_on_a_server_without_an_instructor_token(page, server_url) -> None:
    """The class view says it is off (tests/e2e/test_class_room.py has the token form)."""
    open_page(page, server_url, "class")
    assert_healthy(page)
    assert page.get_by_text("The class view is off on this server").first.is_visible()
    check_in_russian(page, server_url, "class")


def visit_lesson(browser, server_url: str, screenshots: Path | None, slug: str) -> None:
    """One visit per lesson: its first screen at laptop, projector and phone sizes, its charts and
    attention views, a screenshot if asked for, on the lessons of ``LINK_CHANGES`` its input
    changed and the page's link opened in another browser, a prediction committed and
    answered, then the same page in Russian."""
    page = new_page(browser, server_url, viewport=VIEWPORTS["laptop"])
    open_page(page, server_url, slug)
    check_first_screen(page, slug, LESSON_SIZES)
    assert_healthy(page)
    charts = page.locator(".js-plotly-plot .main-svg")
    charts.first.wait_for()
    assert charts.count() >= 1, "no chart was drawn"
    for i in range(page.locator("iframe").count()):  # the attention views (bertviz)
        lines = page.frame_locator("iframe").nth(i).locator("svg line")
        lines.first.wait_for(state="attached")
        assert lines.count() > 0, "an attention view drew no lines"
    screenshot(page, screenshots, slug)
    if slug in LINK_CHANGES:  # a changed view, opened from its link in another browser
        check_the_link_of_a_changed_view(browser, server_url, page, slug)
    commit_and_see(page, slug)  # predict, then see: the model answers in the browser
    assert_healthy(page)
    check_in_russian(page, server_url, slug)
    page.context.close()


@pytest.mark.parametrize("slug", FIRST_LESSONS)
def test_lesson_page(browser, server_url, screenshots, slug: str) -> None:
    visit_lesson(browser, server_url, screenshots, slug)
