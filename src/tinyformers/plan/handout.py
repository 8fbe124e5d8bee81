"""A lesson's plan as data (outcomes, steps) and as a printable handout: one self-contained
HTML file with no script and no external reference, every text from the lesson escaped.

The handout draws the live computation's result as plain SVG (``plan/svg.py``), not with Plotly:
plotly.js would add 4.8 MB to every file, and its bundle itself names CDN addresses (map tiles,
topojson).

The handout's own words (headings, labels, units) are in the current language, and so are the
numbers it writes; the lesson given is expected in that language too.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from tinyformers.i18n import DEFAULT_LANGUAGE, _, current_language, ngettext, number, significant
from tinyformers.lessons import Lesson, blank_placeholders
from tinyformers.plan.svg import picture_html
from tinyformers.plan.timing import LiveStep, Timing

PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
STYLE = """
body { font-family: Georgia, serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem;
       color: #111; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; border-bottom: 1px solid #999; margin-top: 1.6rem; }
h3 { font-size: 1.05rem; margin-bottom: 0.3rem; }
p.text { white-space: pre-wrap; margin: 0.4rem 0; }
p.summary { font-style: italic; }
table { border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: 0.2rem 0.8rem 0.2rem 0; }
th { font-weight: normal; color: #444; }
.page { font-family: monospace; color: #444; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
@media print { body { margin: 0; max-width: none; } h2, h3 { break-after: avoid; } }
"""


@dataclass(frozen=True)
class PlanStep:
    """One step of a lesson: a keyed section of its text, shown on the lesson's page."""

    number: int
    key: str
    title: str
    page: str  # the URL path of the lesson's page


def lesson_steps(lesson: Lesson) -> list[PlanStep]:
    """The lesson's keyed sections, in order, each on the lesson's page."""
    return [
        PlanStep(n, section.key, section.title, f"/{lesson.slug}")
        for n, section in enumerate(lesson.sections, start=1)
    ]


def format_seconds(seconds: float) -> str:
    """A duration as people read it: 0.84 ms, 12.3 ms, 1.25 s (in Russian 0,84 мс)."""
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {seconds}")
    language = current_language()
    if seconds < 1:
        return _("{value} ms").format(value=significant(seconds * 1000, language))
    return _("{value} s").format(value=significant(seconds, language))


def _text(text: str) -> str:
    """Lesson text as escaped paragraphs (line breaks kept as written)."""
    paragraphs = [p.strip() for p in PARAGRAPH_BREAK.split(text) if p.strip()]
    return "\n".join(f'<p class="text">{html.escape(p)}</p>' for p in paragraphs)


def _list(items, ordered: bool = False) -> str:
    tag = "ol" if ordered else "ul"
    rows = "".join(f"<li>{html.escape(item)}</li>" for item in items)
    return f"<{tag}>{rows}</{tag}>"


def _model_text(text: str | tuple[str, ...], language: str) -> str:
    """The model's own text, as written; in another language than English in «quotes», as
    text that is not the sentence's own words. Several texts are joined with " / "."""
    texts = (text,) if isinstance(text, str) else text
    if language != DEFAULT_LANGUAGE:
        texts = tuple(f"«{t}»" for t in texts)
    return " / ".join(texts)


def _value(value: object, language: str) -> str:
    """A value of a step's input: a whole number (in English as Python writes it, 1000; in
    another language in its style), or the model's text."""
    if isinstance(value, int):
        return str(value) if language == DEFAULT_LANGUAGE else number(value, language)
    return _model_text(value, language)


def step_input(step: LiveStep) -> str:
    """The input of a step's computation, in the current language."""
    language = current_language()
    values = {name: _value(value, language) for name, value in step.values.items()}
    return _(step.input).format(**values)


def timing_rows(step: LiveStep, timing: Timing) -> list[tuple[str, str]]:
    """The measured live computation as (label, value) rows; a Model row for a shipped model."""
    rows = [(_("What is timed"), _(step.what))]
    if step.model is not None:
        size = ""
        if timing.parameters is not None:
            n = timing.parameters
            size = " " + ngettext("({n} parameter)", "({n} parameters)", n)
        rows.append((_("Model"), step.model + size))
    runs = ngettext("{n} run after a warm-up", "{n} runs after a warm-up", timing.runs)
    threads = ngettext("{n} torch thread(s)", "{n} torch thread(s)", timing.threads)
    return rows + [
        (_("Input"), step_input(step)),
        (_("Median time"), format_seconds(timing.seconds)),
        (_("Measured"), f"{runs}, {threads}"),
    ]


def _timing_table(step: LiveStep, timing: Timing) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in timing_rows(step, timing)
    )
    return f"<table>{rows}</table>"


def _quiz(lesson: Lesson) -> str:
    if not lesson.quiz:
        return ""
    questions = "".join(
        f"<li><p>{html.escape(q.question)}</p>{_list(q.options)}</li>" for q in lesson.quiz
    )
    answers = "".join(
        f"<li>{html.escape(q.options[q.answer])}"
        + (f": {html.escape(q.explanation)}" if q.explanation else "")
        + "</li>"
        for q in lesson.quiz
    )
    check, said = html.escape(_("Check your understanding")), html.escape(_("Answers"))
    return f"<h2>{check}</h2><ol>{questions}</ol><h2>{said}</h2><ol>{answers}</ol>"


def _step_html(lesson: Lesson, step: PlanStep) -> str:
    """A step's headline, where it is shown, and its text (its numbers left to the page)."""
    headline = _("Step {number}.").format(number=step.number)
    page = _("On the page {page}").format(page=step.page)
    body = blank_placeholders(lesson.section(step.key).body, _("(shown on the page)"))
    return (
        f"<h3>{html.escape(headline)} {html.escape(step.title)}</h3>"
        f'<p class="page">{html.escape(page)}</p>{_text(body)}'
    )


def handout_html(lesson: Lesson, step: LiveStep | None = None, timing: Timing | None = None) -> str:
    """The lesson's handout: title, summary, outcomes, introduction, every step's headline and
    text, the live computation measured on this machine (when given) with a figure of what it
    computed on the page's default input, and the quiz; its own words in the current
    language."""
    title = f"{lesson.order}. {lesson.title}"
    steps = "".join(_step_html(lesson, s) for s in lesson_steps(lesson))
    measured = ""
    if step is not None and timing is not None:
        heading = html.escape(_("Live computation on this machine"))
        measured = f"<h2>{heading}</h2>{_timing_table(step, timing)}"
        if timing.picture is not None:
            measured += picture_html(timing.picture)
    outcomes, intro, steps_heading = (
        html.escape(heading) for heading in (_("Learning outcomes"), _("Introduction"), _("Steps"))
    )
    return (
        f'<!DOCTYPE html>\n<html lang="{current_language()}"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f'<p class="summary">{html.escape(lesson.summary)}</p>'
        f"<h2>{outcomes}</h2>{_list(lesson.outcomes)}"
        f"<h2>{intro}</h2>{_text(lesson.intro)}"
        f"<h2>{steps_heading}</h2>{steps}{measured}{_quiz(lesson)}"
        "</body></html>\n"
    )


def handout_name(lesson: Lesson) -> str:
    return f"tinyformers-{lesson.order:02d}-{lesson.slug}.html"
