"""Headless tests of the contextual-embeddings page: the defaults show the word's similarity
across sentences computed by the course module, and bad input gets a message, never a
traceback."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from tests.page_checks import (
    BLANK_TEXTS,
    MARKUP,
    UNUSUAL_TEXTS,
    caption,
    english_leftovers,
    numbers,
)
from tests.page_order import elements_before_first_chart, first_chart, strip_keys
from tests.plotly_json import chart, decode, named_trace, title
from tinyformers.course import contextual_embeddings as ctx
from tinyformers.hub.registry import load_shipped

PAGE = "app_pages/contextual_embeddings.py"
SENTENCES = [
    "the dogs that chase the cat run .",
    "the dogs that chase the fox run .",
    "the dogs that the cat sees run .",
    "the dogs that the fox sees run .",
]
FIRST_TITLE = "How alike"


def messages(at) -> str:
    return " ".join(e.value for kind in ("error", "warning", "info") for e in getattr(at, kind))


def test_the_page_opens_on_the_inputs_and_the_similarity_chart(page) -> None:
    assert not page.exception
    assert strip_keys(page) == ["ctx-model", "ctx-word", "ctx-sentences"]
    assert elements_before_first_chart(page) == ["flex_container"]
    assert title(first_chart(page)).startswith(FIRST_TITLE)


def test_the_default_chart_is_the_course_computation(page) -> None:
    bert = load_shipped("bert-stories")
    vectors = ctx.contextual_vectors(bert.model, bert.tokenizer, "that", SENTENCES)
    pairs = ctx.pair_similarities(vectors.layers)
    spec = chart(page, FIRST_TITLE)
    for (i, j), values in pairs.items():
        shown = decode(named_trace(spec, f"{i + 1} & {j + 1}")["y"])
        np.testing.assert_allclose(shown, values.numpy(), rtol=1e-6)
    static = decode(named_trace(spec, "word2vec (static)")["y"])
    assert (static == 1.0).all()
    text = caption(page, "bert\\-stories: mean cosine over 6 pairs")
    means = ctx.mean_pair_similarity(vectors.layers)
    assert f"layer 0 {means[0]:.3f}" in text and f"last layer {means[-1]:.3f}" in text
    assert "word2vec: 1.000 for every pair" in text


def test_the_skip_gram_loss_falls(page) -> None:
    losses = decode(chart(page, "Skip-gram training loss")["data"][0]["y"])
    assert losses[-5:].mean() < losses[:5].mean() - 1.0
    first, last = numbers(caption(page, "350 word types"))[-2:]
    assert first == pytest.approx(losses[0], abs=1e-3)
    assert last == pytest.approx(losses[-1], abs=1e-3)


def test_the_neighbour_tables_and_the_map_are_shown(page) -> None:
    assert len(page.dataframe) == 2
    static, contextual = (frame.value for frame in page.dataframe)
    assert len(static) == 8 and "that" not in set(static["word"])
    assert len(contextual) == 8 and set(contextual["word"]) == {"that"}
    assert chart(page, "“that” at layer 0")


def test_every_layer_and_sentence_can_be_chosen(fresh) -> None:
    at = fresh
    for layer in range(load_shipped("bert-stories").config.n_layer + 1):
        at.radio(key="ctx-layer").set_value(layer).run()
        assert not at.exception
    at.selectbox(key="ctx-sentence").set_value(3).run()
    assert not at.exception
    assert caption(at, "the dogs that the cat sees")


def test_other_settings_train_other_vectors(fresh) -> None:
    at = fresh
    at.select_slider(key="ctx-dim").set_value(8)
    at.slider(key="ctx-window").set_value(1).run()
    assert not at.exception
    assert caption(at, "350 word types, 8 numbers each")


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("word", "message"), [("", "type a word"), ("two words", "one word")])
def test_a_bad_word_gets_a_message(fresh, word, message) -> None:
    at = fresh
    at.text_input(key="ctx-word").set_value(word).run()
    assert not at.exception
    assert message in messages(at)


@pytest.mark.parametrize("text", BLANK_TEXTS)
def test_no_sentences_get_a_message(fresh, text) -> None:
    at = fresh
    at.text_area(key="ctx-sentences").set_value(text).run()
    assert not at.exception
    assert "at least one sentence" in messages(at)


def test_a_word_in_fewer_than_two_sentences_is_explained(fresh) -> None:
    at = fresh
    at.text_input(key="ctx-word").set_value("Mia").run()
    at.text_area(key="ctx-sentences").set_value("Mia sees the dog .\nthe dog runs .").run()
    assert not at.exception
    assert "is in 1 of your sentences; comparing needs it in at least two" in messages(at)
    assert any("does not contain" in c.value for c in at.caption)


def test_a_word_word2vec_never_saw_is_explained(fresh) -> None:
    at = fresh
    at.text_input(key="ctx-word").set_value("bank").run()
    at.text_area(key="ctx-sentences").set_value("the bank is old .\nMia sees the bank .").run()
    assert not at.exception
    assert "has no vector" in messages(at) + " ".join(c.value for c in at.caption)
    assert [t["name"] for t in chart(at, FIRST_TITLE)["data"]] == ["1 & 2"]


def test_too_many_and_too_long_sentences_are_cut_with_a_warning(fresh) -> None:
    at = fresh
    at.text_area(key="ctx-sentences").set_value("\n".join(SENTENCES * 3)).run()
    assert not at.exception
    assert f"first {ctx.MAX_SENTENCES} sentences" in messages(at)
    at.text_area(key="ctx-sentences").set_value("the dogs that run . " * 400).run()
    assert not at.exception
    assert "only the first" in messages(at)


@pytest.mark.parametrize("text", UNUSUAL_TEXTS)
def test_unusual_text_runs(fresh, text) -> None:
    at = fresh
    at.text_area(key="ctx-sentences").set_value(f"{text} that\n{text} that .").run()
    assert not at.exception


def test_markup_is_shown_as_text(fresh) -> None:
    at = fresh
    at.text_input(key="ctx-word").set_value(MARKUP).run()
    at.text_area(key="ctx-sentences").set_value(f"{MARKUP}\nthe dogs that run .").run()
    assert not at.exception
    shown = " ".join(e.value for e in [*at.caption, *at.info, *at.error, *at.warning])
    assert "<img" not in shown and "</script>" not in shown
    at.text_input(key="ctx-word").set_value("that").run()
    at.text_area(key="ctx-sentences").set_value(f"that {MARKUP}\nthe dogs that run .").run()
    assert not at.exception
    spec = chart(at, FIRST_TITLE)
    hovers = " ".join(trace.get("hovertemplate", "") for trace in spec["data"])
    assert "<img" not in hovers and "&lt;img" in hovers


# English the Russian page keeps on purpose: the lesson text's English term, and the student's
# sentences (model input), which the page shows as typed.
ENGLISH_KEPT = ("continuous bag of words", *ctx.DEFAULT_SENTENCES)


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    left = [text for text in english_leftovers(at) if not kept_english(text)]
    assert left == []


def kept_english(leftover: str) -> bool:
    """Whether a leftover's English words are part of ``ENGLISH_KEPT``."""
    return any(leftover_words(leftover) in kept for kept in ENGLISH_KEPT)


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
