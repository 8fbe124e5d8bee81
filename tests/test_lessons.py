"""Lesson files: well formed, every code block they show runs, every lesson has a page and a
line in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinyformers.lessons import (
    LessonError,
    PlaceholderError,
    blank_placeholders,
    fill_placeholders,
    format_value,
    load_lessons,
    parse_lesson,
    placeholders,
)

ROOT = Path(__file__).resolve().parents[1]
LESSONS = load_lessons()


def test_there_are_lessons_in_course_order() -> None:
    assert LESSONS, "lessons/ holds no lesson"
    orders = [lesson.order for lesson in LESSONS]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_lesson_has_outcomes_summary_and_page(lesson) -> None:
    assert lesson.outcomes and lesson.summary and lesson.intro
    assert (ROOT / "app" / "app_pages" / f"{lesson.slug.replace('-', '_')}.py").is_file()


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_lesson_is_listed_in_the_readme(lesson) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"{lesson.order}. {lesson.title} (`/{lesson.slug}`)" in readme


CODE = [(lesson.slug, n, code) for lesson in LESSONS for n, code in enumerate(lesson.code_blocks())]


@pytest.mark.parametrize("slug,n,code", CODE, ids=[f"{s}-{n}" for s, n, _ in CODE])
def test_lesson_code_runs(slug: str, n: int, code: str) -> None:
    exec(compile(code, f"lessons/{slug}.md[code block {n}]", "exec"), {"__name__": "__lesson__"})


def test_malformed_lesson_is_reported_with_its_file(tmp_path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text("---\ntitle: x\n---\nbody", encoding="utf-8")
    with pytest.raises(LessonError, match="bad.md: front matter lacks"):
        parse_lesson(bad)
    bad.write_text("no front matter", encoding="utf-8")
    with pytest.raises(LessonError, match="bad.md"):
        parse_lesson(bad)


def test_sections_and_quiz_are_parsed(tmp_path) -> None:
    path = tmp_path / "ok.md"
    path.write_text(
        "---\ntitle: T\nslug: t\norder: 1\nsummary: S\noutcomes: [a]\n"
        "quiz:\n  - question: Q?\n    options: [x, y]\n    answer: 1\n---\n"
        "Intro.\n\n## First {#one}\nBody one.\n\n## Second {#two}\nBody two.\n",
        encoding="utf-8",
    )
    lesson = parse_lesson(path)
    assert lesson.intro == "Intro."
    assert lesson.section("two").body == "Body two."
    assert lesson.quiz[0].options[lesson.quiz[0].answer] == "y"
    with pytest.raises(KeyError, match="no section 'three'"):
        lesson.section("three")


def test_placeholders_are_filled_with_formatted_values() -> None:
    text = (
        "{{params}} parameters, {{share}} of them, {{ratio}} per word, {{ name }} again {{params}}"
    )
    assert placeholders(text) == ["params", "share", "ratio", "name"]
    values = {"params": 108_891_648, "share": "0.09%", "ratio": 5.437, "name": "bert"}
    filled = fill_placeholders(text, values)
    assert filled == "108,891,648 parameters, 0.09% of them, 5.44 per word, bert again 108,891,648"
    assert format_value(1234.5) == "1,234" and format_value(True) == "True"


def test_placeholders_are_filled_with_numbers_in_the_languages_style(monkeypatch) -> None:
    text = "{{params}} parameters, {{share}} of them, {{ratio}} per word, {{name}}, {{big}}"
    values = {
        "params": 12_288,
        "share": "0.09%",  # written by the page: restyled
        "ratio": 0.25,
        "name": "bert-2.0 mini",  # not a number: as it is
        "big": 1234.5,
    }
    nbsp = "\xa0"
    want = f"12{nbsp}288 parameters, 0,09% of them, 0,25 per word, bert-2.0 mini, 1{nbsp}234"
    assert fill_placeholders(text, values, language="ru") == want
    assert format_value("12,288.50", "ru") == f"12{nbsp}288,50"
    assert format_value("1.23e+04", "ru") == "1,23e+04"
    assert format_value(True, "ru") == "True" and format_value("3.5 cats", "ru") == "3.5 cats"
    english = "12,288 parameters, 0.09% of them, 0.25 per word, bert-2.0 mini, 1,234"
    assert fill_placeholders(text, values) == english
    from tinyformers import i18n

    monkeypatch.setattr(i18n, "_language_source", lambda: "ru")  # a Russian page run
    assert fill_placeholders(text, values) == want


def test_an_unfilled_or_unknown_placeholder_is_an_error() -> None:
    with pytest.raises(PlaceholderError, match=r"scaling#limits: no value for \{\{orders\}\}"):
        fill_placeholders("spans {{orders}} orders", {}, "scaling#limits")
    with pytest.raises(PlaceholderError, match="has no placeholder width"):
        fill_placeholders("spans {{orders}} orders", {"orders": 2, "width": 16})
    assert blank_placeholders("spans {{orders}} orders", "…") == "spans … orders"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_placeholders_sit_only_in_sections(lesson) -> None:
    """Pages fill sections; the introduction, the front matter and the quiz are shown as written."""
    fixed = [lesson.title, lesson.summary, *lesson.outcomes, lesson.intro]
    fixed += [text for q in lesson.quiz for text in (q.question, *q.options, q.explanation)]
    assert not [text for text in fixed if placeholders(text)]
