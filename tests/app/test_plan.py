"""Headless tests of the lesson plans page: every lesson's outcomes and steps, links to the
lesson pages, timings measured with the core's clock, and escaped, self-contained handouts."""

from __future__ import annotations

import dataclasses
import html
import itertools

import pytest
import streamlit as st
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

import tinyformers.lessons
from tests.conftest import APP_SCRIPT
from tests.page_checks import MARKUP, metrics
from tests.plan.test_handout import assert_self_contained
from tinyformers.lessons import Section, load_lessons
from tinyformers.plan import handout, timing

PAGE = "app_pages/plan.py"
LESSONS = load_lessons()
METRIC = "Live computation on this machine"


def fake_clock(step: float):
    ticks = itertools.count()
    return lambda: next(ticks) * step


@pytest.fixture
def downloads(monkeypatch) -> dict[str, bytes]:
    """Every file the page offers for download, by file name."""
    files: dict[str, bytes] = {}
    load = MemoryMediaFileStorage.load_and_get_id

    def record(self, data, mimetype, kind, filename=None):
        files[filename] = data
        return load(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return files


def open_plan(monkeypatch, step: float = 0.25, lesson=None) -> AppTest:
    """The page with a clock that moves ``step`` seconds per reading, timings measured anew,
    showing every lesson or the one named by the URL."""
    monkeypatch.setattr(timing, "clock", fake_clock(step))
    st.cache_data.clear()
    at = AppTest.from_file(APP_SCRIPT, default_timeout=180)
    at.run()
    if lesson is not None:
        at.query_params["lesson"] = f"{lesson.order}. {lesson.title}"
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, at.exception
    return at


def markdown_text(at: AppTest) -> str:
    return "\n".join(element.value for element in at.markdown)


def test_every_lesson_shows_its_outcomes_and_steps(monkeypatch) -> None:
    at = open_plan(monkeypatch)
    assert at.title[0].value == "Lesson plans"
    assert [s.value for s in at.subheader] == [f"{x.order}. {x.title}" for x in LESSONS]
    text = markdown_text(at)
    for lesson in LESSONS:
        for outcome in lesson.outcomes:
            assert f"- {outcome}" in text
    links = [(link.proto.page, link.proto.label) for link in at.get("page_link")]
    want = [
        (lesson.slug, f"{step.number}. {step.title}")
        for lesson in LESSONS
        for step in handout.lesson_steps(lesson)
    ]
    assert links == want


def test_step_links_open_the_lessons_pages(monkeypatch) -> None:
    at = open_plan(monkeypatch)
    links = at.get("page_link")
    slugs = {lesson.slug for lesson in LESSONS}
    assert links
    for link in links:
        assert link.proto.page in slugs
        assert link.proto.page_script_hash, link.proto.page  # a page the router knows
    first = links[0].proto.page
    at.switch_page(f"app_pages/{first.replace('-', '_')}.py").run()
    assert not at.exception
    assert at.title[0].value == next(x.title for x in LESSONS if x.slug == first)


@pytest.mark.parametrize(("step", "shown"), [(0.25, "250 ms"), (2.0, "2 s")])
def test_timings_are_measured_with_the_cores_clock(monkeypatch, step, shown) -> None:
    """The numbers come from timing the computations with the core's clock, on this run."""
    at = open_plan(monkeypatch, step)
    values = [element.value for element in at.metric if element.label == METRIC]
    assert values == [shown] * len(LESSONS)


def test_measure_again_measures_anew(monkeypatch) -> None:
    gpt = next(x for x in LESSONS if x.slug == "gpt")
    at = open_plan(monkeypatch, 0.25, gpt)
    assert metrics(at) == {METRIC: "250 ms"}
    monkeypatch.setattr(timing, "clock", fake_clock(0.5))
    at.run()
    assert metrics(at) == {METRIC: "250 ms"}  # cached
    at.button[0].click().run()
    assert metrics(at) == {METRIC: "500 ms"}


def test_the_url_chooses_one_lesson(monkeypatch) -> None:
    bert = next(x for x in LESSONS if x.slug == "bert")
    at = open_plan(monkeypatch, lesson=bert)
    assert at.selectbox(key="lesson").value == "bert"
    assert [s.value for s in at.subheader] == [f"{bert.order}. {bert.title}"]
    assert len(at.metric) == 1
    at.selectbox(key="lesson").set_value("all").run()
    assert len(at.metric) == len(LESSONS)


def test_handouts_are_escaped_and_self_contained(monkeypatch, downloads) -> None:
    open_plan(monkeypatch)
    for lesson in LESSONS:
        page = downloads[handout.handout_name(lesson)].decode("utf-8")
        assert_self_contained(page)
        assert html.escape(lesson.summary) in page
        for section in lesson.sections:
            assert html.escape(section.title) in page
        assert "250 ms" in page


def test_markup_in_a_lesson_stays_text(monkeypatch, downloads) -> None:
    def with_markup():
        changed = {
            "title": f"GPT {MARKUP}",
            "summary": f"Summary {MARKUP}",
            "outcomes": (f"Outcome {MARKUP}",),
            "sections": (Section("s", f"Step {MARKUP}", f"Body {MARKUP}"),),
        }
        return tuple(dataclasses.replace(x, **changed) if x.slug == "gpt" else x for x in LESSONS)

    monkeypatch.setattr(tinyformers.lessons, "load_lessons", with_markup)
    at = open_plan(monkeypatch)
    assert f"- Outcome {MARKUP}" in markdown_text(at)
    assert not [h for h in (e.proto.body for e in at.get("html")) if "<img" in h]
    gpt = next(x for x in with_markup() if x.slug == "gpt")
    page = downloads[handout.handout_name(gpt)].decode("utf-8")
    assert_self_contained(page)
    for text in ("GPT", "Summary", "Outcome", "Step 1. Step", "Body"):
        assert f"{text} {html.escape(MARKUP)}" in page, text


def test_in_russian_the_page_and_its_handouts_are_russian(monkeypatch, downloads, open_link):
    from tests.page_checks import english_leftovers
    from tinyformers.lessons import translated

    monkeypatch.setattr(timing, "clock", fake_clock(0.25))
    st.cache_data.clear()
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception, at.exception
    assert at.title[0].value == "Планы занятий"
    assert english_leftovers(at) == []
    assert {element.value for element in at.metric} == {"250 мс"}
    gpt = translated(next(x for x in LESSONS if x.slug == "gpt"), "ru")
    page = downloads[handout.handout_name(gpt)].decode("utf-8")
    assert_self_contained(page)
    assert html.escape(gpt.summary) in page
    for heading in ("Результаты обучения", "Введение", "Шаги", "Что измеряется"):
        assert heading in page, heading
    assert "Learning outcomes" not in page and "What is timed" not in page
