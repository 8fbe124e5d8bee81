"""Headless tests of the why-attention page: the alignment beside the input is what the course
computes for the untrained models, a run trains the three models in the background and fills the
table and the charts with its measurements, and bad input gets a message."""

from __future__ import annotations

import ast
from pathlib import Path

import torch

from tests.page_checks import english_leftovers, rerun
from tests.page_order import first_chart, index_after_header, is_subheader, strip_keys
from tests.plotly_json import chart, decode, title
from tests.test_user_text import assert_no_markup
from tinyformers.course import why_attention as course
from tinyformers.figures import why_attention as figs
from tinyformers.text.display import plain

PAGE = "app_pages/why_attention.py"


def heatmaps(spec: dict) -> list[list[list[float]]]:
    return [decode(t["z"]).tolist() for t in spec["data"] if t["type"] == "heatmap"]


def test_the_page_opens_on_the_controls_beside_the_alignment(page) -> None:
    assert strip_keys(page) == ["wa-task", "wa-source-reverse", "wa-layer"]
    assert index_after_header(page, is_subheader) == 1  # the lesson text follows the strip
    spec = first_chart(page)
    assert title(spec).startswith("Where each decoder looked")
    models = course.untrained_models(course.WhySettings())
    source = course.read_source("reverse", course.DEFAULT_SOURCES["reverse"])
    found = course.alignments(models, source)
    got = heatmaps(spec)
    assert len(got) == 2
    for matrix, name in zip(got, (course.ATTENTION, course.TRANSFORMER), strict=True):
        torch.testing.assert_close(torch.tensor(matrix), found[name].weights, atol=1e-6, rtol=0)
    assert any("No run yet" in info.value for info in page.info)


def test_the_models_section_states_the_sizes(page) -> None:
    text = " ".join(" ".join(m.value.split()) for m in page.markdown)
    settings = course.WhySettings()
    assert f"a state of {settings.n_hidden} numbers" in text
    shape = course.TRANSFORMER_SHAPE
    assert f"{shape['n_layer']} encoder and {shape['n_decoder_layer']} decoder layers" in text


def test_the_date_task_reads_a_date(fresh) -> None:
    at = fresh
    at.radio(key="wa-task").set_value("date")
    rerun(at)
    assert "wa-source-date" in strip_keys(at)
    captions = [c.value for c in at.caption]
    assert any(plain("Right answer: '2021-03-12'") in c for c in captions), captions


def test_a_run_trains_the_three_models_and_fills_the_results(fresh) -> None:
    at = fresh
    at.number_input(key="wa-steps").set_value(course.MIN_STEPS)
    at.number_input(key="wa-hidden").set_value(16)
    rerun(at)
    at.button(key="wa-train").click().run()
    assert not at.exception, at.exception
    job = at.session_state["wa-job"]
    job.join(600)
    assert job.status == "finished", (job.status, job.error_details)
    rerun(at)
    result = job.result
    assert result.complete
    assert [h[-1].step for h in result.histories.values()] == [course.MIN_STEPS] * 3
    frames = [d.value for d in at.dataframe if "ms per training step" in d.value.columns]
    assert frames[0].to_dict("records") == figs.result_rows(result)
    assert chart(at, "Exact match on held-out sources")
    assert chart(at, "Time of one training step")
    assert chart(at, "Training the three models")
    assert any(c.value == figs.bottleneck_text(result) for c in at.caption)
    spec = first_chart(at)
    assert "(trained)" in " ".join(a["text"] for a in spec["layout"]["annotations"])


def test_bad_input_is_a_message_not_a_crash(fresh) -> None:
    at = fresh
    at.text_input(key="wa-source-reverse").set_value("Hello World").run()
    assert not at.exception
    assert any("lowercase letters" in info.value for info in at.info)
    at.text_input(key="wa-source-reverse").set_value("abcdefghijklmnop").run()
    assert not at.exception
    assert any("at most 12" in info.value for info in at.info)
    at.text_input(key="wa-source-reverse").set_value("   ").run()
    assert not at.exception and (at.warning or at.info)


def test_a_typed_source_reaches_the_page_as_text(fresh) -> None:
    at = fresh
    at.text_input(key="wa-source-reverse").set_value("**pwned** <b>x</b> $y$").run()
    assert not at.exception, at.exception
    assert_no_markup(at)


# The lesson has no Russian text yet (no lessons/ru/why-attention.md), so the page shows its
# English text: English found in that text is the lesson's, not the interface's.
LESSON_TEXT = " ".join(
    (Path(__file__).resolve().parents[2] / "lessons" / "why-attention.md")
    .read_text(encoding="utf-8")
    .split()
)


def interface_leftovers(at) -> list[str]:
    """English left in the page's interface text (not in the untranslated lesson text)."""
    left = []
    for text in english_leftovers(at):
        if not in_lesson(leftover_words(text)):
            left.append(text)
    return left


def in_lesson(words: str) -> bool:
    """Whether English words come from the lesson text: whole, or (when the page filled in a
    value of its own, such as the student's source) their first or last three words."""
    words = " ".join(words.split())
    first, last = " ".join(words.split()[:3]), " ".join(words.split()[-3:])
    return words in LESSON_TEXT or first in LESSON_TEXT or last in LESSON_TEXT


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert interface_leftovers(at) == []


def test_the_results_in_russian_have_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru", "wa-steps": str(course.MIN_STEPS), "wa-hidden": "16"})
    at.button(key="wa-train").click().run()
    assert not at.exception, at.exception
    job = at.session_state["wa-job"]
    job.join(600)
    assert job.status == "finished", (job.status, job.error_details)
    rerun(at)
    assert interface_leftovers(at) == []


def leftover_words(leftover: str) -> str:
    """The English words of a leftover that ``english_leftovers`` reports (``'words' in 'text'``)."""
    start = 0
    while (at := leftover.find(" in ", start)) != -1:
        try:
            words, _text = ast.literal_eval(leftover[:at]), ast.literal_eval(leftover[at + 4 :])
        except (SyntaxError, ValueError):
            start = at + 1
            continue
        return words
    raise ValueError(f"not a leftover: {leftover!r}")
