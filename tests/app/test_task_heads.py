"""Headless tests of the task-heads page: the pair chart shows the segment ids the course
computes, a short run trains every head with both methods in the background and fills the
accuracy, forgetting and reading tables, and bad input gets a message."""

from __future__ import annotations

import pytest

from tests.page_checks import caption, english_leftovers, rerun
from tests.page_order import first_chart, index_after_header, is_subheader, strip_keys
from tests.plotly_json import chart, decode, title
from tests.test_user_text import assert_no_markup
from tinyformers.course import task_heads as course
from tinyformers.figures import task_heads as figs
from tinyformers.hub.registry import load_shipped
from tinyformers.model.build import count_parameters
from tinyformers.text.display import plain

PAGE = "app_pages/task_heads.py"


@pytest.fixture(scope="module")
def bert():
    return load_shipped("bert-stories")


def segment_bars(spec: dict) -> dict[str, list[str]]:
    return {t["name"]: list(t["text"]) for t in spec["data"]}


def test_the_page_opens_on_the_pair_beside_its_segments(page, bert) -> None:
    assert strip_keys(page) == ["th-a", "th-b"]
    assert index_after_header(page, is_subheader) == 1
    spec = first_chart(page)
    assert title(spec).startswith("The pair as BERT reads it")
    pair = course.pair_input(bert.tokenizer, course.DEFAULT_A, course.DEFAULT_B, 48)
    bars = segment_bars(spec)
    tokens_a = [t for t, s in zip(pair.tokens, pair.segments, strict=True) if s == 0]
    tokens_b = [t for t, s in zip(pair.tokens, pair.segments, strict=True) if s == 1]
    assert bars == {"segment A (id 0)": tokens_a, "segment B (id 1)": tokens_b}
    assert tokens_b == ["they", "run", ".", "[SEP]"]
    heights = {t["name"]: decode(t["y"]).tolist() for t in spec["data"]}
    assert set(heights["segment A (id 0)"]) == {0} and set(heights["segment B (id 1)"]) == {1}


def test_the_heads_section_counts_the_model(page, bert) -> None:
    text = " ".join(m.value for m in page.markdown).replace("\n", " ")
    assert f"has {count_parameters(bert.model):,} parameters" in text
    width = bert.config.n_embd
    assert f"That is {width * len(course.TAGS) + len(course.TAGS):,} parameters" in text
    assert any("No run yet" in info.value for info in page.info)


def test_a_run_trains_every_head_and_fills_the_tables(fresh) -> None:
    at = fresh
    at.number_input(key="th-steps").set_value(10)
    at.selectbox(key="th-compare").set_value("head")
    rerun(at)
    at.button(key="th-train").click().run()
    assert not at.exception, at.exception
    job = at.session_state["th-job"]
    job.join(600)
    assert job.status == "finished", (job.status, job.error_details)
    rerun(at)
    result = job.result
    assert [(r.head, r.method) for r in result.runs] == [
        (h, m) for h in course.HEADS for m in ("full", "head")
    ]
    assert all(r.history[-1].step == 10 for r in result.runs)
    frames = [d.value for d in at.dataframe if "commonest answer" in d.value.columns]
    assert frames[0].to_dict("records") == figs.result_rows(result)
    assert chart(at, "What each head got right")
    assert chart(at, "Forgetting")
    assert caption(at, "Before fine-tuning") == figs.forgetting_text(result)
    bert = load_shipped("bert-stories")
    found = course.readings(result, bert.tokenizer, course.DEFAULT_A, course.DEFAULT_B)
    words = course.DEFAULT_A.split()
    rows = figs.reading_rows(words, course.grammar_tags(course.DEFAULT_A), found)
    readings = [d.value for d in at.dataframe if "grammar" in d.value.columns]
    assert readings[0].to_dict("records") == rows
    assert caption(at, "Probability that B continues A") == plain(figs.pair_text(found))


def test_bad_input_is_a_message_not_a_crash(fresh) -> None:
    at = fresh
    at.text_input(key="th-a").set_value("   ").run()
    assert not at.exception and at.warning
    at.text_input(key="th-a").set_value("[SEP]").run()
    assert not at.exception


def test_a_typed_sentence_reaches_the_page_as_text(fresh) -> None:
    at = fresh
    at.text_input(key="th-a").set_value("**pwned** <b>pwned</b> $pwned$ .").run()
    assert not at.exception, at.exception
    assert_no_markup(at)
    assert first_chart(at)


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []
