"""A student's work comes back after a reload, in their browser only, until they forget it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.conftest import new_page, wait_for_app
from tinyformers.hub.registry import LoadedModel, load_shipped
from tinyformers.hub.workspace import WORK_DIR_ENV, Workspace, is_valid_id, new_id

pytestmark = pytest.mark.browser

COOKIE = "tinyformers_work"
SAVED = "my-saved-gpt (step 600)"


@pytest.fixture
def saved_work():
    """A browser id whose work holds one trained GPT, in the folder the test server uses."""
    work = Workspace(Path(os.environ[WORK_DIR_ENV]), new_id())
    shipped = load_shipped("gpt-stories")
    work.save_model(LoadedModel(SAVED, "gpt", shipped.model, shipped.tokenizer, "trained", {}))
    yield work
    work.forget()


def browser_page(browser, server_url, work_id: str | None = None):
    return new_page(browser, server_url, cookies={COOKIE: work_id} if work_id else None)


def model_options(page, server_url: str) -> list[str]:
    page.goto(f"{server_url}/gpt")
    wait_for_app(page)
    picker = page.get_by_label("Model").first
    for _ in range(10):  # a click that lands while the page is still drawing opens nothing
        picker.click()
        try:
            page.get_by_role("option").first.wait_for(timeout=10_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return options


def test_saved_models_come_back_after_a_reload(browser, server_url, saved_work) -> None:
    page = browser_page(browser, server_url, saved_work.folder.name)
    assert SAVED in model_options(page, server_url)
    page.reload()
    assert SAVED in model_options(page, server_url)
    page.context.close()


def test_another_browser_does_not_see_them(browser, server_url, saved_work) -> None:
    page = browser_page(browser, server_url)
    assert SAVED not in model_options(page, server_url)
    page.context.close()


def test_a_new_browser_is_given_its_own_id(browser, server_url) -> None:
    page = browser_page(browser, server_url)
    page.goto(server_url)
    wait_for_app(page)
    page.wait_for_function(f"() => document.cookie.includes('{COOKIE}=')")
    cookie = next(c for c in page.context.cookies() if c["name"] == COOKIE)
    assert is_valid_id(cookie["value"])
    page.context.close()


def test_forget_my_work_removes_it(browser, server_url, saved_work) -> None:
    page = browser_page(browser, server_url, saved_work.folder.name)
    assert SAVED in model_options(page, server_url)
    page.get_by_role("button", name="Forget my work").click()
    wait_for_app(page)
    page.get_by_text(re.compile("Models you train are kept")).first.wait_for()
    assert saved_work.load_models() == {}
    assert SAVED not in model_options(page, server_url)
    page.context.close()
