"""The course map in Russian: no interface text is left in English."""

from __future__ import annotations

from tests.page_checks import english_leftovers

PAGE = "app_pages/home.py"


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []
