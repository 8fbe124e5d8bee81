"""The language in a real browser: a first visit follows the browser's language, the switch
keeps the choice in the URL, and a link with ``?lang=`` opens in that language."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import new_page, wait_for_app
from tinyformers.lessons import get_lesson, translated

pytestmark = pytest.mark.browser


def sidebar_link(page, title: str):
    return page.locator("[data-testid='stSidebarNav']").get_by_text(title, exact=True)


def test_a_russian_browser_gets_russian_and_the_switch_keeps_english_in_the_link(
    browser, server_url
) -> None:
    page = new_page(browser, server_url, locale="ru-RU")
    page.goto(server_url)
    wait_for_app(page)
    page.get_by_role("heading", name="Карта курса").wait_for()
    sidebar_link(page, "Карта курса").wait_for()
    page.wait_for_url(lambda url: "lang=ru" in url)  # a link made now opens in Russian
    page.locator("[data-testid='stSidebar']").get_by_text("English", exact=True).click()
    page.get_by_role("heading", name="Course map").wait_for()
    page.wait_for_url(lambda url: "lang=en" in url)
    assert page.locator("[data-testid='stException']").count() == 0
    page.context.close()


def test_a_link_with_lang_opens_a_lesson_in_that_language(browser, server_url) -> None:
    lesson = get_lesson("attention")
    russian = translated(lesson, "ru")
    page = new_page(browser, server_url)  # an English browser
    page.goto(f"{server_url}/{lesson.slug}?lang=ru")
    wait_for_app(page)
    page.get_by_role("heading", name=russian.title).first.wait_for()
    sidebar_link(page, f"{lesson.order}. {russian.title}").wait_for()
    page.wait_for_url(lambda url: "lang=ru" in url)
    assert page.get_by_role("heading", name=lesson.title).count() == 0
    assert page.locator("[data-testid='stException']").count() == 0
    page.context.close()


def test_the_step_through_control_speaks_the_pages_language(browser, server_url) -> None:
    lesson = get_lesson("attention")
    page = new_page(browser, server_url)
    page.goto(f"{server_url}/{lesson.slug}?lang=ru")
    wait_for_app(page)
    label = page.locator(".tf-stepper span")
    page.wait_for_function(
        "() => /^Шаг 1 из \\d+$/.test(document.querySelector('.tf-stepper span')?.textContent ?? '')"
    )
    assert page.locator(".tf-stepper button").first.get_attribute("title").startswith("Предыдущий")
    page.locator("[data-testid='stSidebar']").get_by_text("English", exact=True).click()
    page.wait_for_function(
        "() => /^Step 1 of \\d+$/.test(document.querySelector('.tf-stepper span')?.textContent ?? '')"
    )
    assert label.count() == 1
    assert page.locator(".tf-stepper button").first.get_attribute("title").startswith("Previous")
    page.context.close()
