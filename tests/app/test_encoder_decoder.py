"""Headless tests of the encoder-decoder page: it runs for every setting and bad input, and what
it shows equals a direct computation with the shipped models."""

import re

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.conftest import APP_SCRIPT
from tests.page_checks import (
    BLANK_TEXTS,
    MARKUP,
    english_leftovers,
    expected_published_counts,
    metric,
    published_counts,
)
from tests.page_order import first_chart, index_after_header, is_subheader, strip_keys
from tests.plotly_json import chart, chart_titles, charts, decode, title
from tinyformers.course.encoder_decoder import (
    decode_with_trace,
    generated_ids,
)
from tinyformers.hub.registry import load_shipped
from tinyformers.model.build import count_parameters
from tinyformers.text.span_corruption import corrupt_spans
from tinyformers.training.zoo import date_splits

PAGE = "app_pages/encoder_decoder.py"
MODEL = "seq2seq-date"
DEFAULT_SENTENCE = (
    "the small dog sees the big cat near the river . the old man who lives by the bridge reads "
    "a book to the children every evening before they go home ."
)


@pytest.fixture(scope="module")
def date_model():
    return load_shipped(MODEL)


def default_source() -> str:
    return date_splits()[1][0][0]


def z_of(spec: dict) -> np.ndarray:
    return decode(spec["data"][0]["z"])


def step_bars(at: AppTest, step: int) -> dict:
    """The bar chart of one decoding step (not the chart of every layer and head)."""
    found = [
        spec
        for spec in charts(at)
        if title(spec).startswith(f"Step {step} (") and "every layer" not in title(spec)
    ]
    assert len(found) == 1, chart_titles(at)
    return found[0]


def unescaped(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown)


def messages(at: AppTest) -> list[str]:
    return [unescaped(m.value) for m in [*at.warning, *at.error, *at.info]]


def press(at: AppTest, key: str) -> None:
    at.button(key=key).click().run()
    assert not at.exception, at.exception


# ---------------------------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------------------------


def test_default_page_shows_a_held_out_date_and_its_rewrite(page, date_model):
    assert not page.exception
    source = default_source()
    assert page.text_input(key="ed-source").value == source
    steps, _ = decode_with_trace(date_model.model, date_model.tokenizer, source)
    output = date_model.tokenizer.decode(generated_ids(steps))
    assert metric(page, "The model's output") == output
    assert metric(page, "The task's answer") == date_splits()[1][0][1]
    assert not page.warning


def test_the_page_opens_on_the_inputs_and_the_cross_attention_they_give(fresh, date_model):
    at = fresh
    assert strip_keys(at) == ["ed-example", "ed-source", "ed-layer", "ed-head"]
    assert [r.key for r in at.sidebar.radio] == ["lang"]  # layer and head moved out of the sidebar
    first = first_chart(at)
    assert title(first) == "Cross-attention, layer 0, head 0"
    assert first["layout"]["height"] <= 450
    assert index_after_header(at, is_subheader) > 1  # the prose comes after the figure
    source = "12 March 2021"
    at.text_input(key="ed-source").set_value(source)
    at.radio(key="ed-layer").set_value(1)
    at.radio(key="ed-head").set_value(2).run()
    _, trace = decode_with_trace(date_model.model, date_model.tokenizer, source)
    first = first_chart(at)
    assert title(first) == "Cross-attention, layer 1, head 2"
    np.testing.assert_allclose(z_of(first), trace.cross_attentions[1][0, 2], atol=1e-6)
    assert all(spec["layout"]["height"] <= 560 for spec in charts(at))


def test_family_table_is_measured_on_the_shipped_models(page):
    table = page.dataframe[0].value
    assert list(table["Model"]) == ["bert-stories", "gpt-stories", "seq2seq-date"]
    for _, row in table.iterrows():
        loaded = load_shipped(row["Model"])
        assert row["Parameters"] == count_parameters(loaded.model)
        assert row["Heads"] == loaded.config.n_head
        assert row["Width"] == loaded.config.n_embd
        assert row["Encoder layers"] + row["Decoder layers"] == loaded.config.n_layer + getattr(
            loaded.config, "n_decoder_layer", 0
        )
    by_family = dict(zip(table["Family"], table["Model"], strict=True))
    assert by_family == {
        "encoder-only": "bert-stories",
        "decoder-only": "gpt-stories",
        "encoder–decoder": "seq2seq-date",
    }


def test_default_heatmaps_are_the_models_attention(page, date_model):
    _, trace = decode_with_trace(date_model.model, date_model.tokenizer, default_source())
    encoder = chart(page, "Encoder self-attention, layer 0, head 0")
    decoder = chart(page, "Decoder masked self-attention, layer 0, head 0")
    cross = chart(page, "Cross-attention, layer 0, head 0")
    np.testing.assert_allclose(z_of(encoder), trace.encoder_attentions[0][0, 0], atol=1e-6)
    np.testing.assert_allclose(z_of(decoder), trace.attentions[0][0, 0], atol=1e-6)
    np.testing.assert_allclose(z_of(cross), trace.cross_attentions[0][0, 0], atol=1e-6)
    assert z_of(cross).shape == (len(trace.tokens), len(trace.encoder_tokens))
    np.testing.assert_allclose(z_of(cross).sum(axis=1), 1, atol=1e-5)
    assert np.triu(z_of(decoder), k=1).max() == 0  # the causal mask


def test_head_view_is_the_encoder_decoder_view(page, date_model):
    frames = page.get("iframe")
    assert len(frames) == 1
    document = frames[0].proto.srcdoc
    assert "Encoder" in document and "Cross" in document
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", document)


def test_cross_attention_caption_names_the_strongest_source_tokens(page, date_model):
    _, trace = decode_with_trace(date_model.model, date_model.tokenizer, default_source())
    caption = unescaped(next(c.value for c in page.caption if c.value.startswith("Strongest")))
    strongest = trace.cross_attentions[0][0, 0].argmax(dim=-1).tolist()
    positions = [int(k) for k in re.findall(r"\((\d+)\)", caption)]
    assert positions == strongest


# ---------------------------------------------------------------------------------------------
# Step-by-step decoding
# ---------------------------------------------------------------------------------------------


def test_next_step_walks_through_greedy_decoding_to_the_end(fresh, date_model):
    at = fresh
    steps, trace = decode_with_trace(date_model.model, date_model.tokenizer, default_source())
    assert any("Press Next step" in m for m in messages(at))
    for step in steps:
        press(at, "ed-next")
        assert metric(at, f"Step {step.index + 1}: chosen token") == step.token.replace(" ", "␣")
        assert metric(at, "Its probability") == f"{step.probability:.6f}"
        bars = step_bars(at, step.index + 1)
        row = step.cross_attention[0, 0]
        np.testing.assert_allclose(decode(bars["data"][0]["y"]), row.numpy(), atol=1e-6)
        np.testing.assert_allclose(
            row.numpy(), trace.cross_attentions[0][0, 0, step.index], atol=1e-6
        )
    assert at.button(key="ed-next").disabled
    output = date_model.tokenizer.decode(generated_ids(steps))
    done = [unescaped(s.value) for s in at.success]
    assert any(d.startswith("Done after") and d.endswith(f"Output: {output}") for d in done)
    press(at, "ed-reset")
    assert any("Press Next step" in m for m in messages(at))
    press(at, "ed-run")
    assert metric(at, f"Step {len(steps)}: chosen token") == "[EOS]"


def open_from_link(params: dict[str, str]) -> AppTest:
    """The page opened from a link in a new session. (Before its first run AppTest finds a page
    by file name only, and this page's path is ``encoder-decoder``: so the app runs once on its
    home page, with no link, and the page then opens with the link's parameters.)"""
    at = AppTest.from_file(APP_SCRIPT, default_timeout=180).run()
    at.switch_page(PAGE)
    at.query_params.update(params)
    return at.run()


def test_back_undoes_a_step_and_a_link_opens_at_the_step(fresh, date_model):
    at = fresh
    steps, _ = decode_with_trace(date_model.model, date_model.tokenizer, default_source())
    for _ in range(3):
        press(at, "ed-next")
    press(at, "ed-back")
    assert metric(at, "Step 2: chosen token") == steps[1].token.replace(" ", "␣")
    assert at.query_params["ed-step"] == "2"
    linked = open_from_link({"ed-step": "2"})
    assert not linked.exception and linked.slider(key="ed-step").value == 2
    assert metric(linked, "Step 2: chosen token") == steps[1].token.replace(" ", "␣")


def test_a_new_source_starts_decoding_again(fresh):
    at = fresh
    press(at, "ed-next")
    press(at, "ed-next")
    at.text_input(key="ed-source").set_value("4 April 1944").run()
    assert not at.exception
    assert any("Press Next step" in m for m in messages(at))


def test_choosing_an_example_puts_it_in_the_text_box(fresh, date_model):
    at = fresh
    example = date_splits()[1][3][0]
    at.selectbox(key="ed-example").set_value(example).run()
    assert not at.exception
    assert at.text_input(key="ed-source").value == example
    steps, _ = decode_with_trace(date_model.model, date_model.tokenizer, example)
    assert metric(at, "The model's output") == date_model.tokenizer.decode(generated_ids(steps))


# ---------------------------------------------------------------------------------------------
# Layer and head picker
# ---------------------------------------------------------------------------------------------


def pick(weights: torch.Tensor, head: int | str) -> torch.Tensor:
    """One head of (heads, ...) weights, or their mean."""
    return weights.mean(dim=0) if head == "mean" else weights[head]


def test_layer_and_head_picker(fresh, date_model):
    at = fresh
    steps, trace = decode_with_trace(date_model.model, date_model.tokenizer, default_source())
    press(at, "ed-next")
    for layer, head in [(1, 2), (0, 3), (1, "mean")]:
        at.radio(key="ed-layer").set_value(layer)
        at.radio(key="ed-head").set_value(head).run()
        assert not at.exception
        name = f"layer {layer}, " + ("mean of the heads" if head == "mean" else f"head {head}")
        np.testing.assert_allclose(
            z_of(chart(at, f"Cross-attention, {name}")),
            pick(trace.cross_attentions[layer][0], head),
            atol=1e-6,
        )
        np.testing.assert_allclose(
            z_of(chart(at, f"Encoder self-attention, {name}")),
            pick(trace.encoder_attentions[layer][0], head),
            atol=1e-6,
        )
        np.testing.assert_allclose(
            z_of(chart(at, f"Decoder masked self-attention, {name}")),
            pick(trace.attentions[layer][0], head),
            atol=1e-6,
        )
        bars = step_bars(at, 1)
        assert name in bars["layout"]["title"]["text"]
        row = pick(steps[0].cross_attention[layer], head)
        np.testing.assert_allclose(decode(bars["data"][0]["y"]), row.numpy(), atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Bad dates
# ---------------------------------------------------------------------------------------------


def set_source(at: AppTest, text: str) -> AppTest:
    at.text_input(key="ed-source").set_value(text).run()
    assert not at.exception, at.exception
    return at


def test_empty_and_huge_dates_get_a_warning(fresh):
    for text in BLANK_TEXTS:
        at = set_source(fresh, text)
        assert any("nothing to read" in m for m in messages(at))
        assert not at.get("iframe")
    at = set_source(fresh, "1" * 50_000)
    assert any("50,000 characters" in m for m in messages(at))
    at = set_source(at, "12 March 2021 " * 10)
    assert any("at most 24" in m for m in messages(at))


UNKNOWN = [
    ("12 🐶 2021", "DOG FACE"),
    ("12 марта 2021", "CYRILLIC SMALL LETTER EM"),
    ("12 مارس 2021", "ARABIC LETTER MEEM"),
    ("\u202e12 March 2021", "RIGHT-TO-LEFT OVERRIDE"),
    ("12 March 2021!", "EXCLAMATION MARK"),
    ("12 march 2021 xq", "LATIN SMALL LETTER X"),
]


def test_characters_the_model_does_not_know_are_named(fresh, date_model):
    tok = date_model.tokenizer
    vocabulary = [t for t in tok.display_tokens(list(range(tok.vocab_size))) if t[0] != "["]
    assert "0" in vocabulary and "M" in vocabulary and " " in vocabulary
    for text, named in UNKNOWN:
        at = set_source(fresh, text)
        assert any("never seen" in m and named in m for m in messages(at)), text
        known = next(unescaped(c.value) for c in at.caption if c.value.startswith("The characters"))
        assert known.endswith(": " + " ".join(t.replace(" ", "␣") for t in vocabulary))


def test_markup_in_the_date_is_shown_as_text(fresh):
    at = set_source(fresh, MARKUP)
    warnings = [w.value for w in at.warning]
    assert any("LESS-THAN SIGN" in unescaped(w) for w in warnings)
    for w in warnings:
        assert "<img" not in w and "</script>" not in w
    for element in at.get("html"):
        assert "<img" not in element.proto.body


def test_a_string_that_is_no_date_is_rewritten_and_the_task_says_why(fresh, date_model):
    at = set_source(fresh, "31 February 2021")
    steps, _ = decode_with_trace(date_model.model, date_model.tokenizer, "31 February 2021")
    assert metric(at, "The model's output") == date_model.tokenizer.decode(generated_ids(steps))
    assert metric(at, "The task's answer") == "none"
    assert any("February 2021 has 28 days" in m for m in messages(at))


# ---------------------------------------------------------------------------------------------
# Span corruption
# ---------------------------------------------------------------------------------------------


def span_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if "words dropped" in c.value)


def test_span_corruption_matches_a_direct_computation(page):
    corrupted = corrupt_spans(DEFAULT_SENTENCE.split(), 0.15, 3.0, seed=0)
    caption = span_caption(page)
    n = len(DEFAULT_SENTENCE.split())
    assert caption.startswith(f"{corrupted.n_dropped} of {n} words dropped")
    assert f"({corrupted.dropped_fraction:.1%}; rate 15%)" in caption
    assert f"reads {len(corrupted.inputs)} tokens" in caption
    assert f"predicts {len(corrupted.targets)}" in caption
    chips = next(h.proto.body for h in page.get("html") if "Original" in h.proto.body)
    for token in corrupted.targets:
        assert f"<bdi>{token.replace('<', '&lt;').replace('>', '&gt;')}</bdi>" in chips


def test_span_corruption_controls(fresh):
    at = fresh
    at.number_input(key="ed-seed").set_value(5)
    at.slider(key="ed-rate").set_value(0.4)
    at.slider(key="ed-span").set_value(1.5).run()
    assert not at.exception
    corrupted = corrupt_spans(DEFAULT_SENTENCE.split(), 0.4, 1.5, seed=5)
    lengths = ", ".join(str(s.end - s.start) for s in corrupted.spans)
    assert f"{len(corrupted.spans)} spans of lengths {lengths}." in span_caption(at)


def test_span_corruption_needs_words(fresh):
    at = fresh
    for text, message in [("", "empty"), ("word", "at least two words")]:
        at.text_input(key="ed-span-sentence").set_value(text).run()
        assert not at.exception
        assert any(message in m for m in messages(at))


def test_span_corruption_of_a_huge_text_is_cut(fresh):
    at = fresh
    at.text_input(key="ed-span-sentence").set_value("the dog " * 6_250).run()
    assert not at.exception
    assert any("only the first 2,000 are used" in m for m in messages(at))
    assert "words dropped" in span_caption(at)


def test_span_corruption_of_unusual_text_is_escaped(fresh):
    at = fresh
    for text in ["Зоя видит 🐶 собаку у реки", "زویا سگ را می‌بیند", MARKUP]:
        at.text_input(key="ed-span-sentence").set_value(text).run()
        assert not at.exception
        chips = next(h.proto.body for h in at.get("html") if "Original" in h.proto.body)
        assert "<img" not in chips and "</script>" not in chips
        assert "words dropped" in span_caption(at)
    assert "&lt;/script&gt;&lt;img" in chips


def test_sentinel_names_in_the_sentence_are_refused(fresh):
    at = fresh
    at.text_input(key="ed-span-sentence").set_value("a <extra_id_0> b c").run()
    assert not at.exception
    assert any("reserved for the sentinels" in m for m in messages(at))


def test_published_models_are_counted_from_their_configurations(page):
    assert published_counts(page) == expected_published_counts("encoder-decoder")


def test_a_date_the_model_cannot_read_asks_only_about_span_corruption(fresh):
    at = fresh
    at.text_input(key="ed-source").set_value("12 March 2021 ☃").run()
    assert not at.exception
    asked = [b.key for b in at.button if b.key and b.key.startswith("commit-")]
    assert [k.split("-")[1] for k in asked] == ["span"]
    skipped = [c.value for c in at.caption if "needs a working input above" in c.value]
    assert len(skipped) == 2, skipped


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []
