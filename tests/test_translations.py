"""Lesson translations (``lessons/ru/``) mirror their English source: the same questions with
the same answers, the same sections, placeholders and code."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tinyformers.lessons import (
    LESSONS_DIR,
    TRANSLATIONS_DIR,
    get_lesson,
    load_lessons,
    parse_lesson,
    translation_problems,
)

TRANSLATED = sorted(TRANSLATIONS_DIR.glob("*.md"))
CYRILLIC = range(0x0400, 0x0500)


def russian_share(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(ord(c) in CYRILLIC for c in letters) / max(len(letters), 1)


@pytest.mark.parametrize("path", TRANSLATED, ids=[p.stem for p in TRANSLATED])
def test_a_translation_mirrors_its_source(path: Path) -> None:
    translation = parse_lesson(path)
    assert (LESSONS_DIR / path.name).is_file(), f"{path.name} has no English source"
    assert translation_problems(get_lesson(translation.slug), translation) == []


@pytest.mark.parametrize("path", TRANSLATED, ids=[p.stem for p in TRANSLATED])
def test_a_translation_is_in_russian(path: Path) -> None:
    translation = parse_lesson(path)
    texts = [translation.title, translation.summary, *translation.outcomes, translation.intro]
    texts += [section.title + " " + section.body for section in translation.sections]
    for text in texts:
        prose = "".join(part for n, part in enumerate(text.split("```")) if n % 2 == 0)
        assert russian_share(prose) > 0.4, f"{path.name}: mostly not Russian: {prose[:80]!r}"


def test_a_changed_answer_or_a_lost_placeholder_is_found() -> None:
    source = next(x for x in load_lessons() if x.quiz and any("{{" in s.body for s in x.sections))
    quiz = list(source.quiz)
    quiz[0] = replace(quiz[0], answer=(quiz[0].answer + 1) % len(quiz[0].options))
    sections = list(source.sections)
    with_placeholder = next(n for n, s in enumerate(sections) if "{{" in s.body)
    sections[with_placeholder] = replace(sections[with_placeholder], body="text")
    changed = replace(source, quiz=tuple(quiz), sections=tuple(sections))
    problems = translation_problems(source, changed)
    assert any(p.startswith("quiz 1: answer") for p in problems)
    assert any(
        p.startswith(f"placeholders of section {sections[with_placeholder].key}") for p in problems
    )
    assert translation_problems(source, source) == []
