"""The app in Russian and in English: the switch, ``?lang=`` in links, the course map's text and
counts, lessons in the chosen language."""

from __future__ import annotations

from tinyformers.hub.registry import load_shipped
from tinyformers.i18n import translate, translate_plural
from tinyformers.lessons import get_lesson, translated

HOME = "app_pages/home.py"


def texts(at) -> list[str]:
    kinds = ("title", "header", "subheader", "caption", "markdown")
    return [element.value for kind in kinds for element in getattr(at, kind)]


def token_count_line(at, language: str) -> str:
    sentence = at.text_input(key="home-sentence").value
    n = len(load_shipped("gpt-stories").tokenizer.encode(sentence))
    return translate_plural("{n} token", "{n} tokens", n, language)


def test_a_link_with_lang_ru_opens_the_course_map_in_russian(open_link) -> None:
    at = open_link(HOME, {"lang": "ru"})
    assert not at.exception
    assert at.sidebar.radio(key="lang").value == "ru"
    shown = texts(at)
    assert "Карта курса" in shown and "Course map" not in shown
    assert any(token_count_line(at, "ru") in text for text in shown)
    lesson = translated(get_lesson("scaling"), "ru")
    assert lesson.title != get_lesson("scaling").title
    assert any(lesson.summary in text for text in shown)


def test_the_switch_changes_the_language(open_link) -> None:
    """(The browser keeps the choice in the URL: tests/e2e/test_languages.py.)"""
    at = open_link(HOME, {"lang": "ru"})
    at.sidebar.radio(key="lang").set_value("en").run()
    assert not at.exception
    shown = texts(at)
    assert "Course map" in shown and "Карта курса" not in shown
    assert any(token_count_line(at, "en") in text for text in shown)


def test_english_without_a_choice_and_for_an_unknown_language(open_link) -> None:
    for params in ({}, {"lang": "xx"}, {"lang": "<script>alert(1)</script>"}):
        at = open_link(HOME, params)
        assert not at.exception
        assert "Course map" in texts(at)


def test_a_lesson_in_russian_shows_its_russian_text(open_link) -> None:
    at = open_link("app_pages/scaling.py", {"lang": "ru"})
    assert not at.exception
    lesson = translated(get_lesson("scaling"), "ru")
    assert lesson.path.parent.name == "ru"
    assert at.title[0].value == lesson.title
    shown = texts(at)
    assert translate("Check your understanding", "ru") in shown
    assert any(lesson.sections[0].title == text for text in shown)


def test_a_russian_page_says_once_that_the_models_read_english(open_link) -> None:
    note = translate(
        "The course's models were trained on English text, so type English sentences here. "
        "For a model that reads Russian, train a small one on your own Russian text on the "
        "[train page](train) (corpus: your own text); it then appears in this list.",
        "ru",
    )
    assert "(train)" in note  # the link to the train page survives the translation
    russian = open_link("app_pages/bert.py", {"lang": "ru"})
    assert not russian.exception
    assert [info.value for info in russian.info].count(note) == 1
    russian.run()  # and again on the next run
    assert [info.value for info in russian.info].count(note) == 1
    english = open_link("app_pages/bert.py", {"lang": "en"})
    assert all("trained on English text" not in info.value for info in english.info)
