"""Headless tests of the attention-masks page: every kind of mask, the padded batch and the
leakage experiment run; what the page shows equals a direct computation with the core package;
bad input gets a message, never a traceback."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.page_checks import (
    BLANK_TEXTS,
    MARKUP,
    UNUSUAL_TEXTS,
    captions,
    code_texts,
    english_leftovers,
    html_bodies,
    rerun,
)
from tests.page_order import first_chart, index_after_header, is_subheader, strip_keys
from tests.plotly_json import chart, chart_titles, charts, decode, named_trace
from tinyformers.course import masks as mv
from tinyformers.hub.registry import load_shipped
from tinyformers.training.experiments import CAUSAL, LEAKY

PAGE = "app_pages/masks.py"
SENTENCE = "the old dog sees Mia . she runs ."
SECOND = "Tom runs ."
TRAINING_TEXT = MARKUP + " the dog runs . the cat sits on the mat . " * 12
JOB = "mk-leak-job"


@pytest.fixture(scope="module")
def stories():
    return load_shipped("gpt-stories")


# ---------------------------------------------------------------------------------------------
# Reading what the page shows
# ---------------------------------------------------------------------------------------------


def mask_charts(at: AppTest) -> list[dict]:
    """The panels of the mask on show (mask, scores, weights): one chart each."""
    return [spec for spec in charts(at) if spec["layout"].get("meta", {}).get("mask")]


def mask_panels(at: AppTest, title: str) -> list[dict]:
    """The three panels of the mask whose caption starts with ``title``."""
    assert any(c.startswith(title) for c in captions(at)), captions(at)
    panels = mask_charts(at)
    assert len(panels) == 3, chart_titles(at)
    return panels


def assert_shows_view(panels: list[dict], view: mv.MaskView) -> None:
    """The score and weight panels are the view's matrices, masked cells blank."""
    masked = (~view.mask).numpy()
    scores, weights = (decode(spec["data"][0]["z"]) for spec in panels[1:])
    assert np.isnan(scores[masked]).all() and np.isnan(weights[masked]).all()
    np.testing.assert_allclose(scores[~masked], view.scores.numpy()[~masked], atol=1e-5)
    np.testing.assert_allclose(weights[~masked], view.weights.numpy()[~masked], atol=1e-6)
    np.testing.assert_allclose(weights[~masked], view.returned.numpy()[~masked], atol=1e-6)


def view_caption(at: AppTest, view: mv.MaskView) -> str:
    wanted = f"{view.n_masked} of {view.mask.numel()} (query, key) pairs are masked"
    found = [c for c in captions(at) if wanted in c]
    assert found, captions(at)
    return found[0]


# ---------------------------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------------------------


def test_default_causal_view_is_the_heads_own_attention(page, stories) -> None:
    assert page.selectbox(key="mk-model").value == "gpt-stories"
    assert page.radio(key="mk-kind").value == "causal"
    ids = stories.tokenizer.encode(SENTENCE)
    view = mv.causal_view(stories.model, ids, stories.tokenizer.display_tokens(ids), 0, 0)
    assert_shows_view(mask_panels(page, "Causal mask · gpt-stories, layer 0, head 0"), view)
    text = view_caption(page, view)
    assert f"by at most {view.max_difference():.1e}" in text
    assert "their weight is 0." in text


def test_default_padded_batch_matches_a_direct_run(page, stories) -> None:
    tok = stories.tokenizer
    batch = mv.padded_batch(stories.model, [tok.encode(SENTENCE), tok.encode(SECOND)], 0)
    table = page.dataframe[0].value
    assert list(table["[PAD] added"]) == [0, len(tok.encode(SENTENCE)) - len(tok.encode(SECOND))]
    assert list(table["max |difference|, with the padding mask"]) == [
        f"{d:.1e}" for d in batch.differences
    ]
    assert max(batch.differences) < 1e-5
    spec = chart(page, "One padded batch · gpt-stories, layer 0, head 0")
    weights = decode(spec["data"][1]["z"])
    n = len(tok.encode(SECOND))
    assert np.isnan(weights[:, n:]).all()  # the [PAD] keys are masked for every query
    np.testing.assert_allclose(
        weights[n - 1, :n], batch.weights(0, 0, 1)[n - 1, :n].numpy(), atol=1e-6
    )


def test_the_page_opens_on_the_inputs_and_the_mask_they_give(fresh, stories) -> None:
    at = fresh
    keys = ["mk-kind", "mk-model", "mk-self-layer", "mk-self-head", "mk-sentence"]
    assert strip_keys(at) == keys
    assert not at.sidebar.selectbox  # the model left the sidebar
    assert first_chart(at)["layout"]["meta"] == {"mask": "causal"}
    assert all(spec["layout"]["height"] <= 450 for spec in mask_charts(at))
    assert index_after_header(at, is_subheader) > 1  # the prose comes after the mask
    at.text_input(key="mk-sentence").set_value("Mia sees the dog .")
    at.selectbox(key="mk-self-layer").set_value(1)
    at.selectbox(key="mk-self-head").set_value(2)
    rerun(at)
    ids = stories.tokenizer.encode("Mia sees the dog .")
    view = mv.causal_view(stories.model, ids, stories.tokenizer.display_tokens(ids), 1, 2)
    assert_shows_view(mask_panels(at, "Causal mask · gpt-stories, layer 1, head 2"), view)
    assert all(spec["layout"]["height"] <= 560 for spec in charts(at))


def test_the_second_sentence_joins_the_strip_for_the_padding_mask(fresh) -> None:
    at = fresh
    assert "mk-second" not in strip_keys(at)  # below, with the padded batch
    at.text_input(key="mk-second").set_value("Tom sees Mia .")
    at.radio(key="mk-kind").set_value("padding")
    rerun(at)
    assert strip_keys(at)[-2:] == ["mk-sentence", "mk-second"]
    assert at.text_input(key="mk-second").value == "Tom sees Mia ."  # it kept its text
    at.radio(key="mk-kind").set_value("causal")
    rerun(at)
    assert at.text_input(key="mk-second").value == "Tom sees Mia ."


def test_leakage_controls_wait_for_a_click(page) -> None:
    assert page.number_input(key="mk-steps").value == 300
    assert not page.button(key="mk-start").disabled
    assert JOB not in page.session_state


# ---------------------------------------------------------------------------------------------
# Each kind of mask
# ---------------------------------------------------------------------------------------------


def test_padding_kind_shows_the_padded_sentence(fresh, stories) -> None:
    at = fresh
    at.radio(key="mk-kind").set_value("padding")
    rerun(at)
    tok = stories.tokenizer
    batch = [tok.encode(SENTENCE), tok.encode(SECOND)]
    strings = [tok.display_tokens(ids) for ids in batch]
    view = mv.padding_view(stories.model, batch, strings, 0, 0, 1, 0)
    assert_shows_view(mask_panels(at, "Padding mask · gpt-stories"), view)
    assert "3 real tokens and 6 [PAD]" in view_caption(at, view)


def test_prefix_kind_follows_the_slider(fresh, stories) -> None:
    at = fresh
    at.radio(key="mk-kind").set_value("prefix")
    rerun(at)
    at.slider(key="mk-prefix").set_value(5)
    at.selectbox(key="mk-self-layer").set_value(2)
    at.selectbox(key="mk-self-head").set_value(3)
    rerun(at)
    ids = stories.tokenizer.encode(SENTENCE)
    view = mv.prefix_view(stories.model, ids, stories.tokenizer.display_tokens(ids), 2, 3, 5)
    panels = mask_panels(at, "Prefix-LM mask · gpt-stories, layer 2, head 3")
    assert_shows_view(panels, view)
    mask_texts = np.array(panels[0]["data"][0]["text"])
    assert (mask_texts[:5, :5] == "0").all()  # the prefix sees itself both ways
    assert mask_texts[5, 6] == "−∞"  # after the prefix: causal
    assert "Prefix: positions 0 to 4 (5 of 9 tokens)." in view_caption(at, view)


def test_prefix_slider_follows_a_shorter_sentence(fresh) -> None:
    at = fresh
    at.radio(key="mk-kind").set_value("prefix")
    rerun(at)
    at.slider(key="mk-prefix").set_value(9)
    rerun(at)
    at.text_input(key="mk-sentence").set_value("the dog")
    rerun(at)
    assert at.slider(key="mk-prefix").max == 2
    assert any("Prefix: positions 0 to 1 (2 of 2 tokens)." in c for c in captions(at))
    assert "The input is shorter now: the slider moved to its end, 2." in captions(at)


def test_cross_attention_kind_uses_the_date_model(fresh) -> None:
    at = fresh
    at.radio(key="mk-kind").set_value("cross")
    rerun(at)
    at.selectbox(key="mk-cross-layer").set_value(1)
    at.selectbox(key="mk-cross-head").set_value(2)
    rerun(at)
    dates = load_shipped("seq2seq-date")
    tok, model = dates.tokenizer, dates.model
    sources = [tok.encode("12 March 2021"), tok.encode("5 May 1999")]
    targets = [
        [tok.bos_id, *model.generate_greedy(torch.tensor([s]), tok.bos_id, tok.eos_id)[0].tolist()]
        for s in sources
    ]
    view = mv.cross_view(
        model,
        sources,
        targets,
        [tok.display_tokens(s) for s in sources],
        [tok.display_tokens(t) for t in targets],
        1,
        2,
        1,
        0,
    )
    panels = mask_panels(at, "Cross-attention mask · seq2seq-date, decoder layer 1, head 2")
    assert_shows_view(panels, view)
    assert panels[0]["layout"]["xaxis"]["ticktext"][-1] == "12: [PAD]"
    assert "10 real source tokens and 3 [PAD]" in view_caption(at, view)


def test_bert_in_the_padded_batch_needs_the_padding_mask(fresh) -> None:
    at = fresh
    at.radio(key="mk-pad-model").set_value("bert-stories")
    rerun(at)
    bert = load_shipped("bert-stories")
    tok = bert.tokenizer
    sequences = [[tok.cls_id, *tok.encode(t), tok.sep_id] for t in (SENTENCE, SECOND)]
    batch = mv.padded_batch(bert.model, sequences, tok.pad_id)
    table = at.dataframe[0].value
    assert list(table["max |difference|, without it"]) == [
        f"{d:.1e}" for d in batch.differences_without_mask
    ]
    assert max(batch.differences) < 1e-5 < 1e-2 < max(batch.differences_without_mask)
    assert chart(at, "One padded batch · bert-stories")


# ---------------------------------------------------------------------------------------------
# The leakage experiment, in the background
# ---------------------------------------------------------------------------------------------


def start_training(at: AppTest, text: str, steps: int = 20) -> AppTest:
    at.radio(key="mk-corpus").set_value("own")
    rerun(at)
    at.text_area(key="mk-own-paste").set_value(text)
    at.number_input(key="mk-steps").set_value(steps)
    rerun(at)
    at.button(key="mk-start").click()
    return rerun(at)


def test_leakage_experiment_shows_both_curves_samples_and_numbers(fresh) -> None:
    at = start_training(fresh, TRAINING_TEXT)
    job = at.session_state[JOB]
    assert any(b.label == "Stop" for b in at.button) or not job.snapshot().active
    job.join(600)
    assert job.status == "finished", job.error_details
    rerun(at)
    result = job.result
    spec = chart(at, "Training loss with and without the causal mask")
    for variant in (CAUSAL, LEAKY):
        history = result.variant(variant).history
        shown = decode(named_trace(spec, f"{variant}: training")["y"])
        np.testing.assert_allclose(shown, [p.train_loss for p in history])
    codes = code_texts(at)
    samples = [result.variant(CAUSAL).sample, result.variant(LEAKY).sample]
    assert codes[-3:] == [result.prompt, *samples]
    assert result.prompt.startswith("</script><img")  # shown as code, i.e. as text
    table = at.dataframe[-1].value
    assert list(table["validation loss with the mask on"]) == [
        round(v.masked_val_loss, 3) for v in result.variants
    ]
    leaky = result.variant(LEAKY)
    assert any(f"score a validation loss of {leaky.masked_val_loss:.3f}" in c for c in captions(at))
    assert any("Trained on your own text" in c and "20 steps per model" in c for c in captions(at))
    for body in html_bodies(at):
        assert "<img" not in body


def test_too_short_text_gets_a_clear_message(fresh) -> None:
    at = start_training(fresh, "too short to learn")
    assert any("too short to train on" in e.value for e in at.error)
    assert JOB not in at.session_state


def test_no_text_disables_training(fresh) -> None:
    at = fresh
    at.radio(key="mk-corpus").set_value("own")
    rerun(at)
    assert at.button(key="mk-start").disabled
    assert any("Paste some text" in i.value for i in at.info)


def test_long_pasted_corpus_is_accepted_without_training(fresh) -> None:
    at = fresh
    at.radio(key="mk-corpus").set_value("own")
    rerun(at)
    at.text_area(key="mk-own-paste").set_value("the dog " * 6_250)  # 50 000 characters
    rerun(at)
    assert "50,000 characters." in captions(at)
    assert not at.button(key="mk-start").disabled


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", BLANK_TEXTS)
def test_empty_sentence_gets_a_warning(fresh, text) -> None:
    at = fresh
    at.text_input(key="mk-sentence").set_value(text)
    rerun(at)
    assert any("empty" in w.value for w in at.warning)
    assert not mask_charts(at)
    assert not any(t.startswith("One padded") for t in chart_titles(at))


def test_huge_sentence_is_cut_with_a_warning(fresh) -> None:
    at = fresh
    at.text_input(key="mk-sentence").set_value("the dog " * 6_250)  # 50 000 characters
    rerun(at)
    assert any("50,000 characters" in w.value for w in at.warning)
    assert any("only the first 24 are used" in w.value for w in at.warning)
    spec = mask_panels(at, "Causal mask")[0]
    assert len(spec["layout"]["xaxis"]["ticktext"]) == 24


@pytest.mark.parametrize("model", ["gpt-stories", "gpt-char"])
@pytest.mark.parametrize("text", UNUSUAL_TEXTS)
def test_unusual_scripts_run(fresh, model, text) -> None:
    at = fresh
    at.selectbox(key="mk-model").set_value(model)
    at.text_input(key="mk-sentence").set_value(text)
    rerun(at)
    for kind in ("causal", "padding", "prefix"):
        at.radio(key="mk-kind").set_value(kind)
        rerun(at)
        assert not at.error
        assert mask_panels(at, f"{'Prefix-LM' if kind == 'prefix' else kind.capitalize()} mask")


def test_markup_is_shown_as_text(fresh) -> None:
    at = fresh
    at.text_input(key="mk-sentence").set_value(MARKUP)
    at.text_input(key="mk-second").set_value(MARKUP + " again")
    rerun(at)
    bodies = html_bodies(at)
    assert any("<bdi>&lt;</bdi>" in body for body in bodies)  # the token "<", escaped
    for body in bodies:
        assert "<img" not in body and "</script>" not in body
    for spec in charts(at):
        for axis in ("xaxis", "xaxis2", "yaxis"):
            ticks = spec["layout"].get(axis, {}).get("ticktext", [])
            assert not any("<" in tick for tick in ticks)
        title = re.sub(r"<br>|</?sub>", "", spec["layout"]["title"]["text"])  # our own tags
        assert "<" not in title
    for text in captions(at):
        assert "<img" not in text


@pytest.mark.parametrize(
    "date,message", [("12 марта 2021", "never seen"), ("   ", "empty"), ("🐶", "never seen")]
)
def test_dates_the_model_cannot_read(fresh, date, message) -> None:
    at = fresh
    at.radio(key="mk-kind").set_value("cross")
    rerun(at)
    at.text_input(key="mk-date").set_value(date)
    rerun(at)
    assert any(message in m.value for m in [*at.error, *at.warning])
    assert not mask_charts(at)


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []
