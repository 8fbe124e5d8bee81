"""Lesson text as data: Markdown files in ``lessons/`` with YAML front matter.

    ---
    title: Tokenization and BPE
    slug: tokenization          # the page's URL path
    order: 1                    # position on the course map
    summary: one line, "what you will do"
    outcomes: [list of learning outcomes]
    quiz:                       # optional
      - question: ...
        options: [...]
        answer: 0               # index into options
        explanation: ...
    predict:                    # optional: questions answered by running the model
      - key: strongest-key      # unique in the lesson
        prompt: Which token will {{query}} attend to most?   # placeholders from the page
        compute: strongest_key  # a function of the lesson's course module -> Prediction
        judge: choice           # choice | integer | number (see tinyformers.predict)
        tolerance: 0.05         # number questions only: how far off a guess may be
        explanation: ...        # placeholders filled from the model's Reveal
        figure: strongest_key   # optional: a function of the lesson's figures module
    ---
    Introductory text.

    ## A section heading {#key}
    Text that a page shows next to its widgets with ``lesson.section("key")``.

A section's text may hold placeholders such as ``{{parameters}}`` for numbers the page knows
(a model's size, a share computed from its config). ``fill_placeholders`` puts the values in;
the lesson's ``course`` module computes them and the page passes them on.

Pages render text from here and contain no prose of their own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from numbers import Integral, Real
from pathlib import Path

import yaml

from tinyformers.i18n import current_language, restyle
from tinyformers.predict import JUDGES

LESSONS_DIR = Path(__file__).resolve().parents[2] / "lessons"
SECTION_HEADING = re.compile(r"^## (?P<title>.+?)\s*\{#(?P<key>[a-z0-9-]+)\}\s*$", re.MULTILINE)
CODE_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
QUESTION_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
PLACEHOLDER = re.compile(r"\{\{\s*(?P<name>[a-z][a-z0-9_]*)\s*\}\}")


class LessonError(ValueError):
    """A lesson file that does not follow the format; the message names the file."""


class PlaceholderError(LessonError):
    """A placeholder left without a value, or a value for a placeholder the text lacks."""


@dataclass(frozen=True)
class QuizQuestion:
    question: str
    options: tuple[str, ...]
    answer: int
    explanation: str = ""


@dataclass(frozen=True)
class PredictQuestion:
    """A question answered by running the model on the student's input (``tinyformers.predict``)."""

    key: str
    prompt: str
    compute: str
    judge: str
    explanation: str = ""
    tolerance: float = 0.0
    figure: str | None = None


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    body: str


@dataclass(frozen=True)
class Lesson:
    slug: str
    title: str
    order: int
    summary: str
    outcomes: tuple[str, ...]
    intro: str
    sections: tuple[Section, ...] = ()
    quiz: tuple[QuizQuestion, ...] = ()
    predict: tuple[PredictQuestion, ...] = ()
    path: Path | None = field(default=None, compare=False)

    def section(self, key: str) -> Section:
        for section in self.sections:
            if section.key == key:
                return section
        known = ", ".join(s.key for s in self.sections) or "none"
        raise KeyError(f"lesson {self.slug!r} has no section {key!r} (sections: {known})")

    def code_blocks(self) -> list[str]:
        """Every ```python block in the lesson, in order (the tests run them)."""
        texts = [self.intro, *(s.body for s in self.sections)]
        return [code for text in texts for code in CODE_BLOCK.findall(text)]


def placeholders(text: str) -> list[str]:
    """The names of the ``{{name}}`` placeholders in ``text``, each once, in order."""
    return list(dict.fromkeys(m["name"] for m in PLACEHOLDER.finditer(text)))


def format_value(value: object, language: str | None = None) -> str:
    """A value as the text shows it in ``language`` (by default the current one): whole numbers
    with thousands separators (12,288), other numbers with two decimals (or none from 100 on),
    a number the page wrote as text (f"{x:.1%}") as it wrote it, anything else as its own
    string; numbers in the language's style (Russian: 12 288, 0,25, 12,5 %)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        text = f"{int(value):,}"
    elif isinstance(value, Real):
        number = float(value)
        text = f"{number:,.0f}" if abs(number) >= 100 else f"{number:,.2f}"
    else:
        text = str(value)
    return restyle(text, current_language() if language is None else language)


def fill_placeholders(
    text: str, values: Mapping[str, object], where: str = "the text", language: str | None = None
) -> str:
    """``text`` with every ``{{name}}`` replaced by ``values[name]`` (see ``format_value``),
    numbers in ``language``'s style (by default the current language's).

    Raises ``PlaceholderError`` if a placeholder has no value or a value has no placeholder,
    so a renamed placeholder cannot silently show braces or drop a number."""
    names = placeholders(text)
    missing = [name for name in names if name not in values]
    if missing:
        raise PlaceholderError(
            f"{where}: no value for {', '.join('{{' + n + '}}' for n in missing)}"
        )
    unknown = sorted(set(values) - set(names))
    if unknown:
        known = ", ".join(names) or "none"
        raise PlaceholderError(
            f"{where} has no placeholder {', '.join(unknown)} (its placeholders: {known})"
        )
    language = current_language() if language is None else language
    return PLACEHOLDER.sub(lambda m: format_value(values[m["name"]], language), text)


def blank_placeholders(text: str, blank: str = "(shown on the page)") -> str:
    """``text`` with every placeholder replaced by ``blank``: for copies read away from the page."""
    return PLACEHOLDER.sub(blank, text)


def split_front_matter(text: str, path: Path) -> tuple[dict, str]:
    if not text.startswith("---\n"):
        raise LessonError(f"{path.name}: a lesson starts with '---' and its front matter")
    end = text.find("\n---\n", 4)
    if end == -1:
        raise LessonError(f"{path.name}: the front matter is not closed with '---'")
    meta = yaml.safe_load(text[4:end]) or {}
    if not isinstance(meta, dict):
        raise LessonError(f"{path.name}: the front matter must be a mapping")
    return meta, text[end + 5 :]


def split_sections(body: str) -> tuple[str, tuple[Section, ...]]:
    matches = list(SECTION_HEADING.finditer(body))
    intro = body[: matches[0].start()] if matches else body
    sections = []
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
        sections.append(Section(match["key"], match["title"], body[match.end() : end].strip()))
    return intro.strip(), tuple(sections)


def parse_quiz(items: list, path: Path) -> tuple[QuizQuestion, ...]:
    questions = []
    for n, item in enumerate(items or [], start=1):
        try:
            question = QuizQuestion(
                str(item["question"]),
                tuple(str(o) for o in item["options"]),
                int(item["answer"]),
                str(item.get("explanation", "")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise LessonError(f"{path.name}: quiz question {n} is malformed ({err})") from err
        if not 0 <= question.answer < len(question.options):
            raise LessonError(f"{path.name}: quiz question {n} has no option {question.answer}")
        questions.append(question)
    return tuple(questions)


def parse_predict(items: list, path: Path) -> tuple[PredictQuestion, ...]:
    questions = []
    for n, item in enumerate(items or [], start=1):
        try:
            question = PredictQuestion(
                key=str(item["key"]),
                prompt=str(item["prompt"]),
                compute=str(item["compute"]),
                judge=str(item["judge"]),
                explanation=str(item.get("explanation", "")),
                tolerance=float(item.get("tolerance", 0.0)),
                figure=str(item["figure"]) if item.get("figure") else None,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise LessonError(f"{path.name}: prediction {n} is malformed ({err})") from err
        if not QUESTION_KEY.fullmatch(question.key):
            raise LessonError(f"{path.name}: prediction {n} has a key that is not a slug")
        if question.judge not in JUDGES:
            raise LessonError(
                f"{path.name}: prediction {question.key!r} has judge {question.judge!r}; "
                f"expected one of {', '.join(JUDGES)}"
            )
        if question.tolerance < 0 or (question.tolerance and question.judge != "number"):
            raise LessonError(
                f"{path.name}: prediction {question.key!r}: a tolerance is for number "
                "questions, and is not negative"
            )
        questions.append(question)
    keys = [q.key for q in questions]
    if len(keys) != len(set(keys)):
        raise LessonError(f"{path.name}: two predictions share a key")
    return tuple(questions)


def parse_lesson(path: Path) -> Lesson:
    meta, body = split_front_matter(path.read_text(encoding="utf-8"), path)
    missing = [k for k in ("title", "slug", "order", "summary", "outcomes") if k not in meta]
    if missing:
        raise LessonError(f"{path.name}: front matter lacks {', '.join(missing)}")
    intro, sections = split_sections(body)
    keys = [s.key for s in sections]
    if len(keys) != len(set(keys)):
        raise LessonError(f"{path.name}: two sections share a key")
    return Lesson(
        slug=str(meta["slug"]),
        title=str(meta["title"]),
        order=int(meta["order"]),
        summary=str(meta["summary"]),
        outcomes=tuple(str(o) for o in meta["outcomes"]),
        intro=intro,
        sections=sections,
        quiz=parse_quiz(meta.get("quiz"), path),
        predict=parse_predict(meta.get("predict"), path),
        path=path,
    )


@lru_cache(maxsize=4)
def load_lessons(lessons_dir: Path = LESSONS_DIR) -> tuple[Lesson, ...]:
    """Every lesson, in course order."""
    lessons = sorted(
        (parse_lesson(p) for p in Path(lessons_dir).glob("*.md")), key=lambda x: x.order
    )
    slugs = [lesson.slug for lesson in lessons]
    if len(slugs) != len(set(slugs)):
        raise LessonError("two lessons share a slug")
    return tuple(lessons)


def get_lesson(slug: str, lessons_dir: Path = LESSONS_DIR) -> Lesson:
    for lesson in load_lessons(lessons_dir):
        if lesson.slug == slug:
            return lesson
    raise KeyError(f"no lesson with slug {slug!r}")


TRANSLATIONS_DIR = LESSONS_DIR / "ru"  # lessons in Russian, each mirroring its English file


def translation_problems(source: Lesson, translation: Lesson) -> list[str]:
    """Where ``translation`` does not mirror ``source``: the same slug and order, as many
    outcomes, the same quiz answers, the same prediction questions (keys, computations, judges,
    figures, placeholders), the same sections in the same order with the same placeholders,
    and code blocks that are identical (the tests run them). Empty if it mirrors it."""
    problems = []

    def same(what: str, ours: object, theirs: object) -> None:
        if ours != theirs:
            problems.append(f"{what}: {theirs!r} where the source has {ours!r}")

    same("slug", source.slug, translation.slug)
    same("order", source.order, translation.order)
    same("number of outcomes", len(source.outcomes), len(translation.outcomes))
    same(
        "placeholders of the summary",
        placeholders(source.summary),
        placeholders(translation.summary),
    )
    same("number of quiz questions", len(source.quiz), len(translation.quiz))
    for n, (ours, theirs) in enumerate(zip(source.quiz, translation.quiz, strict=False), start=1):
        same(f"quiz {n}: number of options", len(ours.options), len(theirs.options))
        same(f"quiz {n}: answer", ours.answer, theirs.answer)
    same("prediction keys", [q.key for q in source.predict], [q.key for q in translation.predict])
    for ours, theirs in zip(source.predict, translation.predict, strict=False):
        for name in ("compute", "judge", "tolerance", "figure"):
            same(f"prediction {ours.key}: {name}", getattr(ours, name), getattr(theirs, name))
        for name in ("prompt", "explanation"):
            same(
                f"prediction {ours.key}: placeholders of the {name}",
                sorted(placeholders(getattr(ours, name))),
                sorted(placeholders(getattr(theirs, name))),
            )
    same("section keys", [s.key for s in source.sections], [s.key for s in translation.sections])
    texts = [("the introduction", source.intro, translation.intro)]
    texts += [
        (f"section {ours.key}", ours.body, theirs.body)
        for ours, theirs in zip(source.sections, translation.sections, strict=False)
        if ours.key == theirs.key
    ]
    for what, ours, theirs in texts:
        same(f"placeholders of {what}", sorted(placeholders(ours)), sorted(placeholders(theirs)))
        same(f"code of {what}", CODE_BLOCK.findall(ours), CODE_BLOCK.findall(theirs))
    return problems


def translated(lesson: Lesson, language: str, source_language: str = "en") -> Lesson:
    """``lesson`` in ``language`` (its file in ``lessons/<language>/``), or ``lesson`` itself
    where that language has no translation of it yet."""
    if language == source_language or lesson.path is None:
        return lesson
    if not re.fullmatch(r"[a-z]{2}", language):
        raise ValueError(f"{language!r} is not a two-letter language code")
    path = lesson.path.parent / language / lesson.path.name
    return _parse_cached(path) if path.is_file() else lesson


@lru_cache(maxsize=64)
def _parse_cached(path: Path) -> Lesson:
    return parse_lesson(path)
