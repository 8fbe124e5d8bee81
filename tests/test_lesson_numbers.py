"""Lesson prose states no number it cannot back up.

Every digit in a lesson's text (title, summary, outcomes, introduction, sections, quiz) is
either a published fact or a constant of notation listed with its source in
``lessons/facts.yaml`` for that lesson, or it fails. Numbers the page knows (a model's size, a
count on the student's sentence) come through ``{{placeholders}}`` that the page fills.

Not scanned: code blocks and inline code (they name code, and the code tests check them),
placeholders, heading anchors, the markers of numbered lists, and digits that are part of a
name, written after letters (GPT-2, T5, UTF-8, x_1).

The Russian lessons (``lessons/ru/``) are held to the same list: a number written the Russian
way (0,15; 2500; 12 288 with a no-break space) stands for the fact written the English way
(0.15; 2,500; 12,288).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tinyformers.lessons import Lesson, load_lessons, parse_lesson, translated

ROOT = Path(__file__).resolve().parents[1]
FACTS_FILE = ROOT / "lessons" / "facts.yaml"
LESSONS = load_lessons()
RUSSIAN = tuple(
    ru for ru in (translated(lesson, "ru") for lesson in LESSONS) if ru.path.parent.name == "ru"
)

NOT_PROSE = [
    re.compile(r"```.*?```", re.DOTALL),  # code blocks
    re.compile(r"`[^`\n]*`"),  # inline code
    re.compile(r"\{\{[^}]*\}\}"),  # placeholders
    re.compile(r"\{#[a-z0-9-]+\}"),  # heading anchors
    re.compile(r"^[ \t]*\d+\.[ \t]", re.MULTILINE),  # numbered-list markers
    re.compile(r"[A-Za-z]+[-_]?\d+"),  # names: GPT-2, T5, UTF-8, L2, x_1
]
NUMBER = re.compile(r"\d+(?:[.,]\d+)*%?")
# In Russian, groups of three digits are set apart by a no-break (or narrow no-break) space.
RUSSIAN_NUMBER = re.compile(r"\d{1,3}(?:[\u00a0\u202f]\d{3})+(?:,\d+)?%?|\d+(?:[.,]\d+)*%?")


def prose(lesson: Lesson) -> list[str]:
    """Every text of the lesson a student reads (the quiz's answer indices are not text)."""
    texts = [lesson.title, lesson.summary, *lesson.outcomes, lesson.intro]
    for section in lesson.sections:
        texts += [section.title, section.body]
    for question in lesson.quiz:
        texts += [question.question, *question.options, question.explanation]
    for prediction in lesson.predict:
        texts += [prediction.prompt, prediction.explanation]
    return texts


def numbers_in(text: str, language: str = "en") -> list[str]:
    """The numbers of ``text`` as the facts list them: in English, as written; in Russian,
    written the English way (0,15 → 0.15, 12 288 → 12288: without groups, like 2500)."""
    for pattern in NOT_PROSE:
        text = pattern.sub(" ", text)
    if language == "en":
        return NUMBER.findall(text)
    return [
        re.sub(r"[\u00a0\u202f]", "", n).replace(",", ".") for n in RUSSIAN_NUMBER.findall(text)
    ]


def language_of(lesson: Lesson) -> str:
    return "ru" if lesson.path is not None and lesson.path.parent.name == "ru" else "en"


def load_facts() -> list[dict]:
    data = yaml.safe_load(FACTS_FILE.read_text(encoding="utf-8"))
    return [*data["facts"], *data["notation"], *data["examples"]]


def allowed_numbers(slug: str, facts: list[dict], language: str = "en") -> set[str]:
    """The numbers listed for lesson ``slug``; for a translation, also without the English
    thousands separators (2,500 → 2500), as the Russian text writes them."""
    listed = {str(n) for fact in facts if slug in fact["lessons"] for n in fact["numbers"]}
    return listed if language == "en" else {n.replace(",", "") for n in listed}


def stated_numbers(lesson: Lesson) -> set[str]:
    language = language_of(lesson)
    return {n for text in prose(lesson) for n in numbers_in(text, language)}


def stray_numbers(lesson: Lesson, facts: list[dict]) -> list[str]:
    allowed = allowed_numbers(lesson.slug, facts, language_of(lesson))
    return sorted(stated_numbers(lesson) - allowed)


FACTS = load_facts()


def test_every_fact_has_a_claim_a_source_and_lessons_that_use_it() -> None:
    slugs = {lesson.slug for lesson in LESSONS}
    for fact in FACTS:
        assert set(fact) == {"numbers", "claim", "source", "lessons"}, fact
        assert fact["numbers"] and fact["claim"] and fact["source"], fact
        assert all(isinstance(n, str) for n in fact["numbers"]), fact
        assert set(fact["lessons"]) <= slugs, fact


def lesson_id(lesson: Lesson) -> str:
    return lesson.slug if language_of(lesson) == "en" else f"ru/{lesson.slug}"


@pytest.mark.parametrize("lesson", LESSONS + RUSSIAN, ids=lesson_id)
def test_every_number_in_the_lesson_is_a_listed_fact_or_a_placeholder(lesson) -> None:
    stray = stray_numbers(lesson, FACTS)
    assert not stray, (
        f"lessons/{lesson_id(lesson)}.md states {', '.join(stray)}: list each with its source "
        "in lessons/facts.yaml, or let the page fill it in through a {{placeholder}}"
    )


@pytest.mark.parametrize("lesson", LESSONS + RUSSIAN, ids=lesson_id)
def test_no_fact_is_listed_for_a_lesson_that_does_not_state_it(lesson) -> None:
    unused = allowed_numbers(lesson.slug, FACTS, language_of(lesson)) - stated_numbers(lesson)
    assert not unused, (
        f"lessons/facts.yaml lists {', '.join(sorted(unused))} for {lesson.slug}, "
        f"which lessons/{lesson_id(lesson)}.md does not state"
    )


def test_every_lesson_has_a_russian_text_checked_here() -> None:
    assert [lesson.slug for lesson in RUSSIAN] == [lesson.slug for lesson in LESSONS]


def lesson_file(tmp_path: Path, body: str, question: str = "Q?") -> Lesson:
    path = tmp_path / "t.md"
    path.write_text(
        "---\ntitle: T\nslug: t\norder: 3\nsummary: S\noutcomes: [a]\n"
        f"quiz:\n  - question: {question}\n    options: [x, y]\n    answer: 1\n---\n"
        f"Intro.\n\n## Step {{#step-2}}\n{body}\n",
        encoding="utf-8",
    )
    return parse_lesson(path)


FACT = {"numbers": ["20"], "claim": "c", "source": "s", "lessons": ["t"]}


def test_a_stray_number_is_caught(tmp_path) -> None:
    body = "The default sweep takes about 60 seconds; Chinchilla found 20 tokens per parameter."
    assert stray_numbers(lesson_file(tmp_path, body), [FACT]) == ["60"]
    assert stray_numbers(lesson_file(tmp_path, "Well under 1% of them."), [FACT]) == ["1%"]
    in_quiz = lesson_file(tmp_path, "No numbers.", question="About 45 tokens?")
    assert stray_numbers(in_quiz, [FACT]) == ["45"]
    other_lesson = {**FACT, "lessons": ["scaling"]}
    assert stray_numbers(lesson_file(tmp_path, "About 20 tokens."), [other_lesson]) == ["20"]


def test_placeholders_code_names_and_list_markers_are_not_numbers(tmp_path) -> None:
    body = (
        "1. GPT-2 and T5 read UTF-8 with {{n_layer}} layers, `model.h[3]`.\n"
        "2. About 20 tokens.\n\n```python\nx = 12\n```"
    )
    assert stray_numbers(lesson_file(tmp_path, body), [FACT]) == []


def test_a_russian_number_stands_for_the_fact_written_the_english_way(tmp_path) -> None:
    ru = tmp_path / "ru"
    ru.mkdir()
    body = "Около 2500 слов, доля 0,12 и 1,5%; 12\u00a0288 измерений, а 7 — лишнее."
    lesson = lesson_file(ru, body)
    facts = [{**FACT, "numbers": ["2,500", "0.12", "1.5%", "12,288"]}]
    assert stray_numbers(lesson, facts) == ["7"]
