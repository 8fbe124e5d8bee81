"""The visit of test_pages.py for lessons 8 on: a file of its own, so that two workers taking
whole files share the lessons about evenly."""

from __future__ import annotations

import pytest

from tests.e2e.test_pages import FIRST_LESSONS, LESSON_SLUGS, visit_lesson

LATER_LESSONS = LESSON_SLUGS[len(FIRST_LESSONS) :]

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("slug", LATER_LESSONS)
def test_lesson_page(browser, server_url, screenshots, slug: str) -> None:
    visit_lesson(browser, server_url, screenshots, slug)
