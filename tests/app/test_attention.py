"""The self-attention page, headless: every step, every mode and bad input run, and the numbers
it shows equal what the model computes."""

import json
import math

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.page_checks import BLANK_TEXTS, MARKUP, UNUSUAL_TEXTS, english_leftovers, numbers
from tests.page_order import first_chart, index_after_header, is_subheader, strip_keys
from tests.plotly_json import chart, charts, decode
from tinyformers.course import attention as stepwise
from tinyformers.figures import attention as figs
from tinyformers.hub.registry import load_shipped
from tinyformers.trace import trace_text

PAGE = "app_pages/attention.py"
SENTENCE = "the old dog sees Mia . she runs ."
DEFAULT_QUERY = 7  # ' runs': the last token with a letter


@pytest.fixture(scope="module")
def gpt():
    return load_shipped("gpt-stories")


def step_charts(at: AppTest) -> list[dict]:
    """The panels of the step on show, left to right: one chart each."""
    return [spec for spec in charts(at) if spec["layout"].get("meta", {}).get("step")]


def panels(at: AppTest) -> list[np.ndarray]:
    """The heatmaps of the step on show, left to right."""
    return [decode(spec["data"][0]["z"]) for spec in step_charts(at)]


def step_caption(at: AppTest, title: str) -> str:
    """The caption under the step's panels, which starts with the step's title."""
    found = [c.value for c in at.caption if c.value.startswith(title)]
    assert len(found) == 1, [c.value for c in at.caption]
    return found[0]


def caption_containing(at: AppTest, text: str) -> str:
    """The first caption with ``text`` anywhere in it (there must be one)."""
    matches = [c.value for c in at.caption if text in c.value]
    assert matches, [c.value for c in at.caption]
    return matches[0]


def go_to(at: AppTest, step: str) -> None:
    at.select_slider(key="att-step").set_value(figs.STEPS.index(step)).run()
    assert not at.exception


def per_head_output(model, ids, layer, head) -> torch.Tensor:
    """The head's slice of what c_proj receives in a normal forward pass."""
    seen = {}
    c_proj = model.h[layer].attn.c_proj
    hook = c_proj.register_forward_pre_hook(lambda m, args: seen.__setitem__("in", args[0]))
    try:
        with torch.no_grad():
            model(torch.tensor([ids]))
    finally:
        hook.remove()
    hs = model.config.head_size
    return seen["in"][0, :, head * hs : (head + 1) * hs]


# ---------------------------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------------------------


def test_defaults_show_x_of_gpt_stories_layer_0(page, gpt):
    assert not page.exception and not page.error and not page.warning
    assert step_caption(page, "Step 1 of 8: the input X · gpt-stories, layer 0, head 0")
    (spec,) = step_charts(page)
    trace = trace_text(gpt.model, gpt.tokenizer, SENTENCE)
    with torch.no_grad():
        x = gpt.model.h[0].ln_1(trace.hidden_states[0][0])
    np.testing.assert_allclose(panels(page)[0], x.numpy(), atol=1e-6)
    frame = spec["layout"]["shapes"][0]
    assert (frame["y0"], frame["y1"]) == (DEFAULT_QUERY - 0.5, DEFAULT_QUERY + 0.5)
    assert page.selectbox(key="att-query").value == DEFAULT_QUERY


def test_default_bars_are_the_models_own_weights(page, gpt):
    trace = trace_text(gpt.model, gpt.tokenizer, SENTENCE)
    bars = chart(page, "Where ")["data"][0]
    np.testing.assert_allclose(decode(bars["y"]), trace.head(0, 0)[DEFAULT_QUERY].numpy())
    entropy = stepwise.softmax_entropy(trace.head(0, 0)[DEFAULT_QUERY]).item()
    assert f"{entropy:.3f} nats" in caption_containing(page, "Entropy of its weights")


def test_scale_in_the_head_caption_is_computed(page, gpt):
    trace = trace_text(gpt.model, gpt.tokenizer, SENTENCE)
    steps = stepwise.model_head(gpt.model, trace, 0, 0)
    visible = steps.scores[steps.allowed()]
    text = caption_containing(page, "scores the mask lets through")
    assert f"the {visible.numel()} scores" in text
    assert f"{visible.std(unbiased=False):.3f} before" in text
    assert f"{(visible / math.sqrt(steps.d_k)).std(unbiased=False):.3f} after" in text


def test_experiment_table_equals_a_direct_run(page):
    table = page.dataframe[0].value
    stats = stepwise.scaling_experiment(stepwise.powers_of_two(1, 1024), 16, 200, seed=0)
    assert table["d"].tolist() == list(stats.dims)
    np.testing.assert_allclose(table["std q·k"], np.round(stats.unscaled.std, 3))
    np.testing.assert_allclose(table["entropy (scaled)"], np.round(stats.scaled.entropy, 3))
    np.testing.assert_allclose(
        table["max weight (unscaled)"], np.round(stats.unscaled.max_weight, 3)
    )
    spec = chart(page, "Random q and k")
    unscaled = [t for t in spec["data"] if t["name"] == "q·k (unscaled)"]
    np.testing.assert_allclose(decode(unscaled[1]["y"]), stats.unscaled.entropy)
    text = caption_containing(page, "At d = 1024")
    assert f"standard deviation {stats.unscaled.std[-1]:.3f}" in text


def test_the_page_opens_on_the_inputs_and_the_step_they_give(fresh, gpt):
    at = fresh
    keys = ["att-source", "att-model", "att-layer", "att-head", "att-sentence", "att-query"]
    assert strip_keys(at) == keys
    assert not at.sidebar.selectbox  # the inputs left the sidebar (its one radio: the language)
    assert [radio.key for radio in at.sidebar.radio] == ["lang"]
    assert first_chart(at)["layout"]["meta"] == {"step": "x"}
    assert index_after_header(at, is_subheader) > 2  # strip, step controls, panels, then prose
    at.selectbox(key="att-layer").set_value(1)
    at.selectbox(key="att-head").set_value(2)
    at.text_input(key="att-sentence").set_value("Mia sees the dog .").run()
    trace = trace_text(gpt.model, gpt.tokenizer, "Mia sees the dog .")
    go_to(at, "softmax")
    first = first_chart(at)
    assert first["layout"]["meta"] == {"step": "softmax"} and first["layout"]["height"] <= 450
    np.testing.assert_allclose(panels(at)[1], trace.head(1, 2).numpy(), atol=1e-6)
    assert all(spec["layout"]["height"] <= 560 for spec in charts(at))
    at.radio(key="att-source").set_value("toy").run()
    keys = ["att-source", "att-toy-d-model", "att-toy-d-k", "att-seed", "att-toy-causal"]
    assert strip_keys(at) == [*keys, "att-sentence", "att-query"]


def test_only_gpt_and_bert_models_are_offered(page):
    options = page.selectbox(key="att-model").options
    shipped = [o for o in options if not o.startswith("Other")]
    assert "gpt-stories" in shipped and "bert-stories" in shipped
    assert "seq2seq-date" not in options


# ---------------------------------------------------------------------------------------------
# Stepping, queries, layers and heads
# ---------------------------------------------------------------------------------------------


def test_next_and_back_walk_through_every_step(fresh, gpt):
    at = fresh
    trace = trace_text(gpt.model, gpt.tokenizer, SENTENCE)
    steps = stepwise.model_head(gpt.model, trace, 0, 0)
    for number, step in enumerate(figs.STEPS, start=1):
        assert figs.STEPS[at.select_slider(key="att-step").value] == step
        assert step_caption(at, f"Step {number} of 8: {figs.STEP_NAMES[step]}")
        assert len(step_charts(at)) == len(figs.step_panels(steps, step, DEFAULT_QUERY))
        if step == "softmax":
            np.testing.assert_allclose(panels(at)[1], trace.head(0, 0).numpy(), atol=1e-6)
            difference = numbers(caption_containing(at, "own attention weights"))[-1]
            assert difference < 1e-6
        if step == "output":
            own = per_head_output(gpt.model, trace.input_ids, 0, 0)
            np.testing.assert_allclose(panels(at)[2], own.numpy(), atol=1e-5)
        if number < len(figs.STEPS):
            at.button(key="att-next").click().run()
            assert not at.exception
    assert at.button(key="att-next").disabled
    at.button(key="att-back").click().run()
    assert figs.STEPS[at.select_slider(key="att-step").value] == "softmax"


def test_scale_step_blanks_the_causal_entries(fresh, gpt):
    at = fresh
    go_to(at, "scale")
    scores, scaled = panels(at)
    t = scores.shape[0]
    above = np.triu(np.ones((t, t), dtype=bool), k=1)
    assert np.isnan(scaled[above]).all() and not np.isnan(scores).any()
    np.testing.assert_allclose(scaled[~above], (scores / math.sqrt(32))[~above], rtol=1e-6)
    assert f"hides {above.sum()} of {t * t} entries" in caption_containing(at, "√d_k = √32")
    assert all(spec["layout"]["height"] <= 450 for spec in step_charts(at))


def test_picking_another_query_moves_the_frame_and_the_bars(fresh, gpt):
    at = fresh
    at.selectbox(key="att-query").set_value(2).run()
    assert not at.exception
    go_to(at, "q")
    frames = [spec["layout"].get("shapes", []) for spec in step_charts(at)]
    assert [len(f) for f in frames] == [1, 0, 1]  # X and Q, not W_Q
    assert all((f[0]["y0"], f[0]["y1"]) == (1.5, 2.5) for f in frames if f)
    trace = trace_text(gpt.model, gpt.tokenizer, SENTENCE)
    bars = chart(at, "Where 2: ' dog' looks")["data"][0]
    np.testing.assert_allclose(decode(bars["y"]), trace.head(0, 0)[2].numpy())
    assert list(bars["text"][3:]) == ["masked"] * 6


def test_the_query_follows_its_token_to_a_new_sentence(fresh, gpt):
    at = fresh
    at.selectbox(key="att-query").set_value(2).run()  # ' dog'
    text = "Mia sees the dog ."
    at.text_input(key="att-sentence").set_value(text).run()
    assert not at.exception
    tokens = gpt.tokenizer.display_tokens(gpt.tokenizer.encode(text))
    assert at.selectbox(key="att-query").value == tokens.index(" dog") != 2
    assert "moved; the choice follows it" in caption_containing(at, "' dog'")
    at.text_input(key="att-sentence").set_value("Mia sees Tom .").run()
    tokens = gpt.tokenizer.display_tokens(gpt.tokenizer.encode("Mia sees Tom ."))
    assert at.selectbox(key="att-query").value == tokens.index(" Tom")  # the default again
    assert "not in the new input" in caption_containing(at, "' dog'")


def test_another_layer_and_head(fresh, gpt):
    at = fresh
    at.selectbox(key="att-layer").set_value(2)
    at.selectbox(key="att-head").set_value(3).run()
    go_to(at, "softmax")
    assert step_caption(at, "Step 7 of 8: softmax, row by row · gpt-stories, layer 2, head 3")
    trace = trace_text(gpt.model, gpt.tokenizer, SENTENCE)
    np.testing.assert_allclose(panels(at)[1], trace.head(2, 3).numpy(), atol=1e-6)


def test_bert_reads_the_block_input_without_a_mask(fresh):
    at = fresh
    at.selectbox(key="att-model").set_value("bert-stories").run()
    assert not at.exception
    bert = load_shipped("bert-stories")
    trace = trace_text(bert.model, bert.tokenizer, SENTENCE)
    np.testing.assert_allclose(panels(at)[0], trace.hidden_states[0][0].numpy(), atol=1e-6)
    # GPT's ' runs' is not a BERT token: the query resets to BERT's default, 'runs', with a note
    assert at.selectbox(key="att-query").value == stepwise.default_query(trace.tokens) == 8
    assert "not in the new input" in caption_containing(at, "' runs'")
    go_to(at, "scale")
    assert "No mask" in caption_containing(at, "√d_k = √")
    go_to(at, "softmax")
    np.testing.assert_allclose(panels(at)[1], trace.head(0, 0).numpy(), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# The toy
# ---------------------------------------------------------------------------------------------


def test_toy_mode_shows_the_seeded_toy(fresh):
    at = fresh
    at.radio(key="att-source").set_value("toy").run()
    assert not at.exception
    toy = stepwise.toy_head(SENTENCE.split(), 4, 3, seed=0)
    np.testing.assert_allclose(panels(at)[0], toy.x.numpy())
    assert step_caption(at, "Step 1 of 8: the input X · toy head")
    at.checkbox(key="att-toy-causal").check().run()
    go_to(at, "softmax")
    causal = stepwise.toy_head(SENTENCE.split(), 4, 3, seed=0, causal=True)
    np.testing.assert_allclose(panels(at)[1], causal.weights.numpy(), atol=1e-7)
    at.number_input(key="att-toy-d-k").set_value(5).run()
    assert panels(at)[0].shape == (9, 9)


def test_absurd_toy_sizes_are_not_used(fresh):
    at = fresh
    at.radio(key="att-source").set_value("toy").run()
    for key in ("att-toy-d-model", "att-toy-d-k"):
        for value in (10**9, 0, -5):
            at.number_input(key=key).set_value(value).run()
            assert not at.exception
            assert 1 <= at.number_input(key=key).value <= stepwise.MAX_TOY_WIDTH


def test_absurd_experiment_sizes_are_not_used(fresh):
    at = fresh
    for key, low, high in (("att-keys", 2, 64), ("att-samples", 1, 400)):
        at.number_input(key=key).set_value(10**9).run()
        assert not at.exception
        assert low <= at.number_input(key=key).value <= high


def test_experiment_follows_its_settings(fresh):
    at = fresh
    at.select_slider(key="att-dims").set_value((4, 64))
    at.number_input(key="att-keys").set_value(8)
    at.number_input(key="att-samples").set_value(50).run()
    assert not at.exception
    stats = stepwise.scaling_experiment([4, 8, 16, 32, 64], 8, 50, seed=0)
    table = at.dataframe[0].value
    assert table["d"].tolist() == [4, 8, 16, 32, 64]
    np.testing.assert_allclose(table["mean |q·k|"], np.round(stats.unscaled.mean_abs, 3))
    assert chart(at, "One random query against 8 keys, d = 64")


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["model", "toy"])
def test_empty_sentence_gets_a_warning(fresh, mode):
    at = fresh
    at.radio(key="att-source").set_value(mode).run()
    for text in BLANK_TEXTS:
        at.text_input(key="att-sentence").set_value(text).run()
        assert not at.exception
        assert any("empty" in w.value for w in at.warning)
        assert chart(at, "Random q and k")  # the experiment still runs


@pytest.mark.parametrize("mode", ["model", "toy"])
def test_huge_sentence_is_cut_with_a_warning(fresh, mode):
    at = fresh
    at.radio(key="att-source").set_value(mode).run()
    at.text_input(key="att-sentence").set_value("the dog " * 6_250).run()  # 50 000 characters
    assert not at.exception
    assert at.warning
    rows = panels(at)[0].shape[0]
    assert rows == (24 if mode == "model" else stepwise.MAX_TOY_TOKENS)


@pytest.mark.parametrize("model", ["gpt-stories", "bert-stories"])
def test_unusual_scripts_run(fresh, model):
    at = fresh
    at.selectbox(key="att-model").set_value(model).run()
    for text in (*UNUSUAL_TEXTS, "زویا سگ را می‌بیند"):
        at.text_input(key="att-sentence").set_value(text).run()
        assert not at.exception, text
        assert step_caption(at, "Step 1 of 8")


@pytest.mark.parametrize("mode", ["model", "toy"])
def test_markup_is_shown_as_text(fresh, mode):
    at = fresh
    at.radio(key="att-source").set_value(mode).run()
    at.text_input(key="att-sentence").set_value(MARKUP).run()
    assert not at.exception
    chips = at.html[0].value
    assert "<img" not in chips and "</script>" not in chips and "&lt;" in chips
    for spec in charts(at):
        text = json.dumps(spec)
        assert "<img" not in text and "</script>" not in text


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []
