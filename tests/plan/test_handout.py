"""A lesson's steps and its printable handout: self-contained, every lesson text escaped."""

from __future__ import annotations

import dataclasses
import html
from html.parser import HTMLParser

import pytest

from tinyformers.lessons import QuizQuestion, Section, load_lessons
from tinyformers.plan import handout
from tinyformers.plan.timing import Timing, live_step

MARKUP = "<script>alert(1)</script><img src=x onerror=alert(1)>"
LESSONS = load_lessons()


def timing_of(slug: str, seconds: float = 0.0123, parameters: int | None = 1234) -> Timing:
    return Timing(slug, seconds, 5, 1, parameters)


class Tags(HTMLParser):
    """Every tag of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_self_contained(page: str) -> None:
    """No script, no reference to anything outside the file, no address at all."""
    parser = Tags()
    parser.feed(page)
    names = {tag for tag, _ in parser.tags}
    assert not names & {"script", "link", "img", "iframe", "object", "embed", "a"}, names
    assert not [attrs for _, attrs in parser.tags if {"src", "href"} & set(attrs)]
    lowered = page.lower()
    for reference in ("http:", "https:", "@import", "url("):
        assert reference not in lowered, reference


def test_steps_are_the_sections_in_order_on_the_lessons_page() -> None:
    for lesson in LESSONS:
        steps = handout.lesson_steps(lesson)
        assert [s.key for s in steps] == [s.key for s in lesson.sections]
        assert [s.title for s in steps] == [s.title for s in lesson.sections]
        assert [s.number for s in steps] == list(range(1, len(steps) + 1))
        assert {s.page for s in steps} <= {f"/{lesson.slug}"}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.00084, "0.84 ms"), (0.0123, "12.3 ms"), (0.25, "250 ms"), (1.25, "1.25 s"), (0, "0 ms")],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert handout.format_seconds(seconds) == text


def test_format_seconds_refuses_a_negative_duration() -> None:
    with pytest.raises(ValueError, match="negative"):
        handout.format_seconds(-1)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_every_lessons_handout_holds_its_text(lesson) -> None:
    page = handout.handout_html(lesson, live_step(lesson.slug), timing_of(lesson.slug))
    assert page.startswith("<!DOCTYPE html>")
    assert_self_contained(page)
    assert html.escape(lesson.title) in page
    assert html.escape(lesson.summary) in page
    for outcome in lesson.outcomes:
        assert f"<li>{html.escape(outcome)}</li>" in page
    for n, section in enumerate(lesson.sections, start=1):
        assert f"Step {n}. {html.escape(section.title)}" in page
    for question in lesson.quiz:
        assert html.escape(question.question) in page
    assert "12.3 ms" in page
    assert ("1,234 parameters" in page) == (live_step(lesson.slug).model is not None)


def test_every_text_of_a_lesson_is_escaped() -> None:
    lesson = dataclasses.replace(
        LESSONS[0],
        title=f"Title {MARKUP}",
        summary=f"Summary {MARKUP}",
        outcomes=(f"Outcome {MARKUP}",),
        intro=f"Intro {MARKUP}",
        sections=(Section("one", f"Section {MARKUP}", f"Body {MARKUP}\n\nMore {MARKUP}"),),
        quiz=(QuizQuestion(f"Question {MARKUP}", (f"Option {MARKUP}", "b"), 0, MARKUP),),
    )
    step = dataclasses.replace(live_step(lesson.slug), what=MARKUP, input=MARKUP)
    page = handout.handout_html(lesson, step, timing_of(lesson.slug))
    assert_self_contained(page)
    assert "<img" not in page
    escaped = html.escape(MARKUP)
    for text in ("Title", "Summary", "Outcome", "Intro", "Section", "Body", "More", "Question"):
        assert f"{text} {escaped}" in page, text


def test_a_handout_without_a_timing_leaves_the_section_out() -> None:
    page = handout.handout_html(LESSONS[0])
    assert "Live computation" not in page
    assert_self_contained(page)


def test_timing_rows_say_what_was_measured() -> None:
    rows = dict(handout.timing_rows(live_step("train"), timing_of("train", 1.5, None)))
    assert rows["Median time"] == "1.5 s"
    assert "Model" not in rows  # the step builds its own model
    assert rows["Measured"].startswith("5 runs after a warm-up")
    rows = dict(handout.timing_rows(live_step("gpt"), timing_of("gpt", 0.002, 701_568)))
    assert rows["Model"] == "gpt-stories (701,568 parameters)"


def test_handout_name() -> None:
    lesson = next(x for x in LESSONS if x.slug == "gpt")
    assert handout.handout_name(lesson) == f"tinyformers-{lesson.order:02d}-gpt.html"


def test_a_handout_draws_the_computations_figure() -> None:
    from tinyformers.plan.svg import Picture

    lesson = next(x for x in load_lessons() if x.slug == "gpt")
    step = live_step("gpt")
    picture = Picture("The likeliest tokens", "on the prompt", values=[0.5], labels=["is"])
    page = handout.handout_html(lesson, step, Timing("gpt", 0.01, 3, 1, 100, picture))
    assert "<svg" in page and "The likeliest tokens" in page and "<script" not in page
    assert "<svg" not in handout.handout_html(lesson, step, Timing("gpt", 0.01, 3, 1, 100))


@pytest.fixture
def russian(monkeypatch) -> None:
    """The current language is Russian (as on a page run of a Russian session)."""
    from tinyformers import i18n

    monkeypatch.setattr(i18n, "_language_source", lambda: "ru")


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.00084, "0,84 мс"), (0.0123, "12,3 мс"), (1.25, "1,25 с")]
)
def test_format_seconds_in_russian(russian, seconds: float, text: str) -> None:
    assert handout.format_seconds(seconds) == text


def test_a_russian_handout_has_russian_headings_around_the_russian_lesson(russian) -> None:
    from tinyformers.lessons import translated

    lesson = translated(next(x for x in LESSONS if x.slug == "gpt"), "ru")
    page = handout.handout_html(lesson, live_step("gpt"), timing_of("gpt", 0.0123, 701_568))
    assert_self_contained(page)
    assert '<html lang="ru">' in page
    for heading in ("Результаты обучения", "Введение", "Шаги", "Проверьте себя", "Ответы"):
        assert f"<h2>{heading}</h2>" in page, heading
    for n, section in enumerate(lesson.sections, start=1):
        assert f"<h3>Шаг {n}. {html.escape(section.title)}</h3>" in page
    for english in ("Learning outcomes", "Introduction", "Step 1.", "On the page", "Median time"):
        assert english not in page, english
    assert "12,3 мс" in page
    assert "(701\xa0568 параметров)" in page


def test_russian_timing_rows_quote_the_models_text(russian) -> None:
    from tinyformers.course.gpt import DEFAULT_PROMPT

    rows = dict(handout.timing_rows(live_step("gpt"), timing_of("gpt", 0.002, 1)))
    assert rows["Вход"] == f"«{DEFAULT_PROMPT}»"
    assert rows["Модель"] == "gpt-stories (1 параметр)"
    assert rows["Измерено"] == "5 запусков после прогрева, 1 поток torch"
    tokenization = dict(handout.timing_rows(live_step("tokenization"), timing_of("tokenization")))
    assert "{" not in tokenization["Вход"] and "словаря" in tokenization["Вход"]


def test_english_timing_rows_show_the_input_as_written() -> None:
    from tinyformers.course.bert import DEFAULT_A, DEFAULT_B
    from tinyformers.course.tokenization import DEFAULT_VOCAB, STORIES

    assert handout.step_input(live_step("bert")) == f"{DEFAULT_A} / {DEFAULT_B}"
    assert handout.step_input(live_step("tokenization")) == (
        f"{STORIES} generated stories, vocabulary of {DEFAULT_VOCAB}"
    )
