"""Headless tests of the positional-encoding page: it runs for every setting and bad input, and
the numbers it shows equal a direct computation."""

import math
import re

import numpy as np
import pytest
import torch

from tests.page_checks import BLANK_TEXTS, MARKUP, caption, english_leftovers, metric, numbers
from tests.page_order import elements_before_first_chart, first_chart, strip_keys
from tests.plotly_json import chart_titled, decode, title
from tinyformers.figures import positional_encoding as figs
from tinyformers.hub.registry import load_shipped
from tinyformers.model.positional import cosine_similarity_matrix, sinusoidal_encoding
from tinyformers.text.display import plain

PAGE = "app_pages/positional_encoding.py"
DEFAULT_MODEL = "gpt-stories"


# ---------------------------------------------------------------------------------------------
# Defaults: every number equals a direct computation
# ---------------------------------------------------------------------------------------------


def test_default_adjacent_similarities_are_computed(page):
    expected = figs.mean_adjacent_similarity(sinusoidal_encoding(64, 64))
    assert metric(page, "Sinusoidal, d_model 64") == f"{expected:.4f}"
    wpe = load_shipped(DEFAULT_MODEL).model.wpe.weight.detach()
    learned = figs.mean_adjacent_similarity(wpe[:64])
    assert metric(page, f"Learned, {DEFAULT_MODEL}") == f"{learned:.4f}"
    chart = chart_titled(page, "Similarity of neighbouring positions")
    line = decode(chart["data"][0]["y"])
    d_models = decode(chart["data"][0]["x"]).astype(int).tolist()
    direct = figs.sinusoidal_adjacent_by_d_model(d_models, 64)
    np.testing.assert_allclose(line, direct, rtol=1e-6)


def test_sinusoidal_heatmap_is_the_encoding(page):
    z = decode(chart_titled(page, "Sinusoidal encodings")["data"][0]["z"])
    np.testing.assert_allclose(z, sinusoidal_encoding(64, 64).numpy())
    values = numbers(caption(page, "64 positions × 64 dimensions"))  # 64, 64, low, high, 2, root
    low, high, root = values[2], values[3], values[-1]
    assert low == high == root == pytest.approx(math.sqrt(32), abs=1e-4)


def test_similarity_panels_show_which_depend_only_on_distance(page):
    sinusoidal, rotary, learned = numbers(caption(page, "Largest difference"))
    assert sinusoidal < 1e-5 and rotary < 1e-5
    wpe = load_shipped(DEFAULT_MODEL).model.wpe.weight.detach()[:64]
    direct = figs.diagonal_spread(cosine_similarity_matrix(wpe))
    assert learned == pytest.approx(direct, rel=0.06)  # the caption shows two digits
    assert learned > 0.01


def test_pca_caption_is_computed(page):
    wte = load_shipped(DEFAULT_MODEL).model.wte.weight
    first, second = figs.pca_2d(wte).explained
    text = caption(page, f"{DEFAULT_MODEL}: {wte.size(0)} token vectors")
    assert f"{first:.1%}" in text and f"{second:.1%}" in text and f"{first + second:.1%}" in text


def test_reordering_check_is_computed(page):
    loaded = load_shipped(DEFAULT_MODEL)
    ids = loaded.tokenizer.encode("Zoe sees the big dog . the dog sees Zoe .")
    wte, wpe = loaded.model.wte.weight.detach(), loaded.model.wpe.weight.detach()
    layer = figs.first_attention(loaded.model)
    reverse = torch.arange(len(ids) - 1, -1, -1)
    with_positions = figs.reorder_change(layer, wte[ids], wpe[: len(ids)], reverse)
    assert float(metric(page, "Token vectors only")) < 1e-5
    assert metric(page, "Token + position vectors") == f"{with_positions:.2f}"
    assert with_positions > 0.1


def test_input_vectors_are_token_plus_position(page):
    loaded = load_shipped(DEFAULT_MODEL)
    ids = loaded.tokenizer.encode("Zoe sees the big dog . the dog sees Zoe .")
    spec = chart_titled(page, "What the first layer receives")
    wte, wpe = loaded.model.wte.weight.detach(), loaded.model.wpe.weight.detach()
    total = decode(spec["data"][2]["z"])
    np.testing.assert_allclose(total, (wte[ids] + wpe[: len(ids)]).numpy(), atol=1e-6)
    assert len(spec["data"][0]["y"]) == len(ids)


def test_the_page_opens_on_the_inputs_and_the_input_vectors_of_your_sentence(fresh):
    at = fresh
    assert strip_keys(at) == ["pe-model", "pe-sentence", "pe-d", "pe-length"]
    assert not at.sidebar.get("slider") and not at.sidebar.get("selectbox")
    assert elements_before_first_chart(at) == ["flex_container"]
    assert title(first_chart(at)) == "What the first layer receives"
    sentence = "the dog sees Zoe"
    at.text_input(key="pe-sentence").set_value(sentence).run()
    loaded = load_shipped(DEFAULT_MODEL)
    ids = loaded.tokenizer.encode(sentence)
    wte, wpe = loaded.model.wte.weight.detach(), loaded.model.wpe.weight.detach()
    spec = first_chart(at)
    np.testing.assert_allclose(
        decode(spec["data"][2]["z"]), (wte[ids] + wpe[: len(ids)]).numpy(), atol=1e-6
    )
    assert spec["layout"]["height"] <= 450


def test_offset_curves_coincide_for_sinusoidal_and_not_for_learned(fresh):
    at = fresh
    assert numbers(caption(at, "Largest gap between the curves"))[0] < 1e-5
    shown = next(o for o in at.radio(key="pe-offset-table").options if o.startswith("learned"))
    learned = re.sub(r"\\(.)", r"\1", shown)  # options are shown escaped for Markdown
    at.radio(key="pe-offset-table").set_value(learned).run()
    assert not at.exception
    assert numbers(caption(at, "Largest gap between the curves"))[0] > 0.01


# ---------------------------------------------------------------------------------------------
# Every model, every probe, extreme sizes
# ---------------------------------------------------------------------------------------------


def test_every_model_with_learned_positions(fresh):
    at = fresh
    options = [o for o in at.selectbox(key="pe-model").options if not o.startswith("Other")]
    assert DEFAULT_MODEL in options
    for name in options:
        at.selectbox(key="pe-model").set_value(name).run()
        assert not at.exception, name
        wpe = load_shipped(name).model.wpe.weight.detach()
        expected = figs.mean_adjacent_similarity(wpe[:64])
        assert metric(at, f"Learned, {name}") == f"{expected:.4f}"


@pytest.mark.parametrize("probe", figs.PROBE_KINDS)
def test_every_rotary_probe(fresh, probe):
    at = fresh
    at.selectbox(key="pe-probe").set_value(probe).run()
    assert not at.exception
    rotary = numbers(caption(at, "Largest difference"))[1]
    assert rotary < 1e-5  # the rotary panel depends on m - n only


def test_smallest_sizes_explain_instead_of_failing(fresh):
    at = fresh
    at.slider(key="pe-d").set_value(2)
    at.slider(key="pe-length").set_value(1).run()
    assert not at.exception
    assert any("at least two positions" in i.value for i in at.info)


def test_largest_sizes(fresh):
    at = fresh
    at.slider(key="pe-d").set_value(512)
    at.slider(key="pe-length").set_value(512).run()
    assert not at.exception
    expected = figs.mean_adjacent_similarity(sinusoidal_encoding(512, 512))
    assert metric(at, "Sinusoidal, d_model 512") == f"{expected:.4f}"


def test_odd_d_model_is_refused_with_a_message(fresh):
    at = fresh
    at.slider(key="pe-d").set_value(7).run()
    assert not at.exception
    assert any("even number" in e.value for e in at.error)


def test_no_start_position_asks_for_one(fresh):
    at = fresh
    at.multiselect(key="pe-offset-starts-sinusoidal-64").set_value([]).run()
    assert not at.exception
    assert any("at least one start position" in i.value for i in at.info)


# ---------------------------------------------------------------------------------------------
# Bad sentences
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", BLANK_TEXTS)
def test_empty_sentence_gets_a_warning(fresh, text):
    at = fresh
    at.text_input(key="pe-sentence").set_value(text).run()
    assert not at.exception
    assert any("empty" in w.value for w in at.warning)


def test_huge_sentence_gets_a_warning(fresh):
    at = fresh
    at.text_input(key="pe-sentence").set_value("the dog " * 6_250).run()  # 50 000 characters
    assert not at.exception
    assert at.warning


def test_too_many_tokens_are_cut_to_the_block_size(fresh):
    at = fresh
    at.text_input(key="pe-sentence").set_value("the dog sees Zoe . " * 40).run()
    assert not at.exception
    assert any("only the first" in w.value for w in at.warning)
    block_size = load_shipped(DEFAULT_MODEL).config.block_size
    assert len(chart_titled(at, "What the first layer receives")["data"][0]["y"]) == block_size


@pytest.mark.parametrize(
    "text",
    ["Zoe 🐶 sees 🐱🐱", "Зоя видит собаку", "زویا سگ را می‌بیند", "\u202eZoe sees\u202c the dog"],
)
def test_unusual_scripts_run(fresh, text):
    at = fresh
    at.text_input(key="pe-sentence").set_value(text).run()
    assert not at.exception
    assert chart_titled(at, "What the first layer receives")


def test_markup_in_the_sentence_is_shown_as_text(fresh):
    at = fresh
    at.text_input(key="pe-sentence").set_value(MARKUP).run()
    assert not at.exception
    chips = at.html[0].value
    assert "<img" not in chips and "</script>" not in chips
    assert "&lt;" in chips
    labels = chart_titled(at, "What the first layer receives")["data"][0]["y"]
    assert not any("<" in label for label in labels)


def test_absurd_d_model_is_not_used(fresh):
    at = fresh
    at.slider(key="pe-d").set_value(10**9).run()
    assert not at.exception
    assert 2 <= at.slider(key="pe-d").value <= 512


def test_bert_reads_cls_sentence_sep(fresh):
    at = fresh
    if "bert-stories" not in at.selectbox(key="pe-model").options:
        pytest.fail("the shipped bert-stories model is missing")
    at.selectbox(key="pe-model").set_value("bert-stories").run()
    assert not at.exception
    loaded = load_shipped("bert-stories")
    tok = loaded.tokenizer
    ids = [tok.cls_id, *tok.encode("Zoe sees the big dog . the dog sees Zoe ."), tok.sep_id]
    wte, wpe = loaded.model.wte.weight.detach(), loaded.model.wpe.weight.detach()
    spec = chart_titled(at, "What the first layer receives")
    assert spec["data"][0]["y"][0] == "0: '[CLS]'" and spec["data"][0]["y"][-1].endswith("'[SEP]'")
    np.testing.assert_allclose(
        decode(spec["data"][2]["z"]), (wte[ids] + wpe[: len(ids)]).numpy(), atol=1e-6
    )
    reverse = torch.arange(len(ids) - 1, -1, -1)
    layer = figs.first_attention(loaded.model)
    expected = figs.reorder_change(layer, wte[ids], wpe[: len(ids)], reverse)
    assert metric(at, "Token + position vectors") == f"{expected:.2f}"


def test_other_model_option_explains_when_nothing_is_found(fresh):
    at = fresh
    other = [o for o in at.selectbox(key="pe-model").options if o.startswith("Other")]
    at.selectbox(key="pe-model").set_value(other[0]).run()
    at.text_input(key="pe-model-other").set_value("no-such-owner/no-such-model").run()
    assert not at.exception
    assert any(
        plain("cannot find a model called 'no-such-owner/no-such-model'") in e.value
        for e in at.error
    )


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []
