"""Headless tests of the Transformer-block page: it runs for GPT and BERT and for bad input, what
it shows equals a direct computation with the core package, and the ablation trains in the
background and shows its curves, table and samples."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.page_checks import MARKUP, english_leftovers, html_bodies, metric, rerun
from tests.page_order import first_chart, index_after_header, is_subheader, strip_keys
from tests.plotly_json import chart, chart_titles, charts, decode, named_trace
from tinyformers.course.transformer_block import block_parameters, inspect_ids, model_inputs
from tinyformers.hub.registry import LoadedModel, load_shipped
from tinyformers.model.build import build_model
from tinyformers.model.config import GPTConfig
from tinyformers.text.corpora import lesson_corpus
from tinyformers.training.experiments import FULL, NEITHER, NO_LAYER_NORM, NO_RESIDUAL

PAGE = "app_pages/transformer_block.py"
SENTENCE = "Zoe sees the big dog . the dog"


@pytest.fixture(scope="module")
def models():
    return {name: load_shipped(name) for name in ("gpt-stories", "bert-stories")}


# ---------------------------------------------------------------------------------------------
# Reading what the page shows
# ---------------------------------------------------------------------------------------------


def diagrams(at: AppTest) -> list[str]:
    """The SVG documents shown with st.image (as base64 data URLs)."""
    svgs = []
    for image in at.get("image"):
        for img in image.proto.imgs:
            head, _, body = img.url.partition(",")
            assert head == "data:image/svg+xml;base64"
            svgs.append(base64.b64decode(body).decode())
    return svgs


def messages(at: AppTest) -> str:
    return " ".join(e.value for e in [*at.warning, *at.error, *at.info])


def direct(loaded, text: str = SENTENCE):
    ids, segments = model_inputs(loaded.model, loaded.tokenizer, text)
    return inspect_ids(loaded.model, ids, segments)


# ---------------------------------------------------------------------------------------------
# Defaults: GPT
# ---------------------------------------------------------------------------------------------


def test_the_page_opens_on_the_inputs_and_the_residual_stream_they_give(fresh, models) -> None:
    at = fresh
    assert strip_keys(at) == ["tb-model", "tb-sentence"]
    assert not at.sidebar.selectbox  # the model left the sidebar
    first = first_chart(at)
    assert first["layout"]["title"]["text"].startswith("Size of the residual stream in gpt-stories")
    assert first["layout"]["height"] <= 450
    assert index_after_header(at, is_subheader) == 3  # strip, chart, caption, then the prose
    text = "Mia sees the cat ."
    at.text_input(key="tb-sentence").set_value(text)
    at.selectbox(key="tb-model").set_value("bert-stories")
    rerun(at)
    first = first_chart(at)
    assert first["layout"]["title"]["text"].startswith(
        "Size of the residual stream in bert-stories"
    )
    for name, expected in direct(models["bert-stories"], text).residual_norms().items():
        np.testing.assert_allclose(decode(named_trace(first, name)["y"]), expected, rtol=1e-6)
    assert all(spec["layout"]["height"] <= 560 for spec in charts(at))


def test_gpt_default_draws_its_pre_ln_path_next_to_post_ln(page) -> None:
    own, other = diagrams(page)
    assert "This model: pre-LN" in own and "For comparison: post-LN" in other
    assert "(1, 8, 128) → (1, 8, 512)" in own  # c_fc widens the 8 tokens of the default


def test_gpt_replay_matches_and_the_residual_chart_is_the_direct_computation(page, models) -> None:
    inspection = direct(models["gpt-stories"])
    assert metric(page, "Largest |replay − model|") == f"{inspection.max_difference():.1e}"
    spec = chart(page, "Size of the residual stream in gpt-stories")
    for name, expected in inspection.residual_norms().items():
        np.testing.assert_allclose(decode(named_trace(spec, name)["y"]), expected, rtol=1e-6)


def test_gpt_layer_norm_chart_and_gamma_beta(page, models) -> None:
    stats = direct(models["gpt-stories"]).layers[0].norms["ln_1"]
    spec = chart(page, "layer 0: ln_1")
    mean, std = stats.per_token(stats.normalized)
    shown = [t for t in spec["data"] if t["name"].startswith("normalized")]
    np.testing.assert_allclose(decode(shown[0]["y"]), mean.numpy(), atol=1e-7)
    np.testing.assert_allclose(decode(shown[1]["y"]), std.numpy(), rtol=1e-6)
    gamma_beta = chart(page, "Learned γ and β of ln_1")
    np.testing.assert_allclose(decode(gamma_beta["data"][0]["y"]), stats.weight.numpy())
    np.testing.assert_allclose(decode(gamma_beta["data"][1]["y"]), stats.bias.numpy())


def test_gpt_parameter_shares_are_counted_from_the_model(page, models) -> None:
    counted = block_parameters(models["gpt-stories"].model.h[0])
    spec = chart(page, "Where one block of gpt-stories keeps its parameters")
    shown = dict(zip(spec["data"][0]["y"], decode(spec["data"][0]["x"]), strict=True))
    assert shown == {part: counted.count(part) for part in counted.tensors}
    assert metric(page, "n_inner") == "512"
    assert any(f"One block: {counted.total:,} parameters" in c.value for c in page.caption)


# ---------------------------------------------------------------------------------------------
# BERT, and the layer / LayerNorm pickers
# ---------------------------------------------------------------------------------------------


def test_bert_draws_post_ln_and_the_sums_before_layer_norm(fresh, models) -> None:
    at = fresh
    at.selectbox(key="tb-model").set_value("bert-stories")
    rerun(at)
    own, other = diagrams(at)
    assert "This model: post-LN" in own and "For comparison: pre-LN" in other
    inspection = direct(models["bert-stories"])
    assert inspection.n_tokens == 10  # [CLS] + 8 tokens + [SEP]
    spec = chart(at, "Size of the residual stream in bert-stories")
    norms = inspection.residual_norms()
    assert len(norms) == 5
    for name, expected in norms.items():
        np.testing.assert_allclose(decode(named_trace(spec, name)["y"]), expected, rtol=1e-6)
    assert metric(at, "Largest |replay − model|") == f"{inspection.max_difference():.1e}"


def test_a_model_with_fewer_layers_resets_the_layer_with_a_note(fresh, char_tokenizer) -> None:
    at = fresh
    at.selectbox(key="tb-layer").set_value(2)
    rerun(at)
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=char_tokenizer.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=16
    )
    small = LoadedModel("small", "gpt", build_model(config).eval(), char_tokenizer, "trained", {})
    at.session_state["trained_models"] = {"small": small}
    rerun(at)
    at.selectbox(key="tb-model").set_value("small")
    rerun(at)
    assert at.selectbox(key="tb-layer").value == 0
    assert "Layer 2 does not exist here, so layer 0 is shown." in [c.value for c in at.caption]
    assert chart(at, "layer 0: ln_1")


def test_layer_picker_and_outer_layer_norm(fresh, models) -> None:
    at = fresh
    at.selectbox(key="tb-layer").set_value(2)
    rerun(at)
    stats = direct(models["gpt-stories"]).layers[2].norms["ln_1"]
    spec = chart(at, "layer 2: ln_1")
    inputs = [t for t in spec["data"] if t["name"] == "input x"]
    np.testing.assert_allclose(
        decode(inputs[1]["y"]), stats.per_token(stats.input)[1].numpy(), rtol=1e-6
    )
    radio = next(r for r in at.radio if r.key.startswith("tb-norm-"))
    radio.set_value("ln_f")
    rerun(at)
    final = direct(models["gpt-stories"]).outer_norms["ln_f"]
    spec = chart(at, "ln_f (after the last block)")
    outputs = [t for t in spec["data"] if t["name"].startswith("output")]
    np.testing.assert_allclose(
        decode(outputs[0]["y"]), final.per_token(final.output)[0].numpy(), atol=1e-6
    )


# ---------------------------------------------------------------------------------------------
# The ablation in the background
# ---------------------------------------------------------------------------------------------


def test_ablation_trains_in_the_background_and_shows_curves_table_and_samples(fresh) -> None:
    at = fresh
    text = MARKUP + " " + lesson_corpus()[:1500]
    at.radio(key="tb-source").set_value("own")
    rerun(at)
    at.text_area(key="tb-corpus-paste").set_value(text)
    at.number_input(key="tb-steps").set_value(20)
    rerun(at)
    at.button(key="tb-start").click()
    rerun(at)
    job = at.session_state["tb-ablation"]
    assert any(b.label == "Stop" for b in at.button) or not job.snapshot().active
    job.join(600)
    assert job.status == "finished", job.error_details
    rerun(at)
    spec = chart(at, "Four-block character GPTs")
    names = [t["name"] for t in spec["data"]]
    assert names == [name for name in (FULL, NO_RESIDUAL, NO_LAYER_NORM, NEITHER) for _ in (1, 2)]
    result = job.result
    table = at.dataframe[0].value
    assert list(table["variant"]) == [v.label for v in result.variants]
    np.testing.assert_allclose(
        table["final validation loss"], [round(v.final_val_loss, 4) for v in result.variants]
    )
    assert list(table["steps trained"]) == [20] * 4
    samples = [body for body in html_bodies(at) if "no residual connections" in body]
    assert samples and "&lt;/script&gt;&lt;img" in samples[0]  # the prompt, escaped
    for body in html_bodies(at):
        assert "<img" not in body and "</script>" not in body
    assert not any(b.label == "Stop" for b in at.button)


def test_corpus_too_short_to_train_on_is_refused(fresh) -> None:
    at = fresh
    at.radio(key="tb-source").set_value("own")
    rerun(at)
    at.text_area(key="tb-corpus-paste").set_value(MARKUP[:30])  # a context needs 38 characters
    rerun(at)
    at.button(key="tb-start").click()
    rerun(at)
    assert "too short to train on" in messages(at)
    assert "tb-ablation" not in at.session_state  # no job was started


def test_empty_corpus_disables_the_start_button(fresh) -> None:
    at = fresh
    at.radio(key="tb-source").set_value("own")
    rerun(at)
    assert at.button(key="tb-start").disabled
    assert "Paste some text" in messages(at)


# ---------------------------------------------------------------------------------------------
# Bad sentences
# ---------------------------------------------------------------------------------------------


def set_sentence(at: AppTest, text: str) -> AppTest:
    at.text_input(key="tb-sentence").set_value(text)
    return rerun(at)


def test_empty_sentence_says_so(fresh) -> None:
    at = set_sentence(fresh, "")
    assert "empty" in messages(at)
    assert not diagrams(at)
    assert chart_titles(at) == ["Where one block of gpt-stories keeps its parameters"]


def test_very_long_sentence_is_cut_to_the_models_context(fresh, models) -> None:
    at = set_sentence(fresh, "the dog runs . " * 3_334)  # 50 010 characters
    assert "50,010 characters" in messages(at)
    assert "only the first 64 are used" in messages(at)
    own, _ = diagrams(at)
    assert "(1, 64, 128)" in own
    assert metric(at, "Largest |replay − model|") == "0.0e+00"
    at.selectbox(key="tb-model").set_value("bert-stories")
    rerun(at)
    own, _ = diagrams(at)
    assert "(1, 48, 128)" in own  # [CLS] + 46 tokens + [SEP] fill BERT's 48 positions


def test_emoji_and_cyrillic(fresh) -> None:
    at = set_sentence(fresh, "Привет 🙂 dog")
    assert diagrams(at)
    at.selectbox(key="tb-model").set_value("bert-stories")
    rerun(at)
    assert "UNK" in messages(at)
    assert diagrams(at)


def test_markup_is_shown_as_text(fresh) -> None:
    at = set_sentence(fresh, MARKUP)
    bodies = html_bodies(at)
    assert "&lt;" in bodies[0]  # the token chips show the markup as text
    assert diagrams(at)
    for body in bodies:
        assert "<img" not in body and "</script>" not in body
    for spec in charts(at):
        assert "<img" not in json.dumps(spec)


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []
