"""Figures of the encoder-decoder lesson: they draw the numbers they are given, label every
position, and never let a token's text become markup."""

import json
import re

import numpy as np
import pytest
import torch

from tests.plotly_json import decode
from tinyformers.course.encoder_decoder import MEAN, DecodingStep, ModelShape, head_weights
from tinyformers.figures import encoder_decoder as figs
from tinyformers.text.span_corruption import corrupt_spans, sentinel
from tinyformers.trace import Trace

MARKUP = "</script><img src=x onerror=alert(1)>"


def random_rows(*shape: int, seed: int = 0) -> torch.Tensor:
    scores = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    return torch.softmax(scores, dim=-1)


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------


def test_shown_token_makes_spaces_visible_and_escapes_markup():
    assert figs.shown_token(" ") == "␣"
    assert figs.shown_token("a\nb") == "a⏎b"
    assert figs.shown_token(MARKUP) == "&lt;/script&gt;&lt;img␣src=x␣onerror=alert(1)&gt;"


def test_step_labels_pair_what_a_position_reads_with_what_it_predicts():
    labels = figs.step_labels(["[BOS]", "2", " "], ["2", " ", "[EOS]"])
    assert labels == ["[BOS] → 2", "2 → ␣", "␣ → [EOS]"]
    with pytest.raises(ValueError, match="pair up"):
        figs.step_labels(["[BOS]"], ["2", "0"])


# ---------------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------------


def test_heatmap_draws_the_weights_with_one_tick_per_position():
    weights = random_rows(3, 4)
    rows, columns = ["a", "a", "b"], ["1", "1", " ", "2"]  # repeated tokens stay apart
    fig = figs.attention_heatmap(
        weights, figs.token_labels(rows), figs.token_labels(columns), "T", "keys", "queries"
    )
    np.testing.assert_allclose(decode(fig.data[0].z), weights.numpy(), rtol=1e-6)
    assert list(fig.layout.xaxis.tickvals) == [0, 1, 2, 3]
    assert list(fig.layout.xaxis.ticktext) == ["1", "1", "␣", "2"]
    assert list(fig.layout.yaxis.ticktext) == ["a", "a", "b"]
    assert fig.data[0].zmin == 0 and fig.data[0].zmax == 1
    assert fig.data[0].customdata[2][3] == ["2: b", "3: 2"]


def test_heatmap_refuses_labels_that_do_not_fit():
    with pytest.raises(ValueError, match="shape"):
        figs.attention_heatmap(random_rows(3, 4), ["a"] * 3, ["b"] * 3, "T", "x", "y")


def test_heatmap_labels_and_title_are_escaped():
    labels = figs.token_labels([MARKUP, "ok"])
    fig = figs.attention_heatmap(random_rows(2, 2), labels, labels, MARKUP, "x", "y")
    text = fig.to_json()
    assert "<img" not in text and "</script>" not in text
    assert "&lt;img" in fig.layout.xaxis.ticktext[0]
    assert "&lt;/script&gt;" in fig.layout.title.text


def test_step_heads_figure_has_a_row_per_layer_and_head():
    rows = random_rows(2, 4, 5)  # (layers, heads, source)
    fig = figs.step_heads_figure(rows, figs.token_labels(list("abcde")), "step 1")
    z = decode(fig.data[0].z)
    assert z.shape == (8, 5)
    for layer in range(2):
        for head in range(4):
            np.testing.assert_allclose(z[layer * 4 + head], rows[layer, head].numpy(), rtol=1e-6)
    assert fig.layout.yaxis.ticktext[5] == "layer 1, head 1"
    with pytest.raises(ValueError, match="5 source positions but 4 labels"):
        figs.step_heads_figure(rows, list("abcd"), "step 1")
    with pytest.raises(ValueError, match="layers, heads, source"):
        figs.step_heads_figure(rows[0], list("abcde"), "step 1")


def test_attention_bars_draw_one_row():
    row = random_rows(6)
    fig = figs.attention_bars(row, figs.token_labels(list("12 Mar")), "step 3")
    np.testing.assert_allclose(np.asarray(fig.data[0].y, dtype=float), row.numpy(), rtol=1e-6)
    assert list(fig.layout.xaxis.ticktext) == ["1", "2", "␣", "M", "a", "r"]
    assert list(fig.layout.yaxis.range) == [0, 1]
    with pytest.raises(ValueError, match="expected 5 weights"):
        figs.attention_bars(row, list("abcde"), "step 3")


# ---------------------------------------------------------------------------------------------
# Span corruption
# ---------------------------------------------------------------------------------------------


def chip_texts(html_text: str, row: str) -> list[str]:
    """The texts of the chips of one row (Original, Input or Target), in order."""
    part = html_text.split(f">{row}</span>")[1].split("</div>")[0]
    return [chunk.split("</bdi>")[0] for chunk in part.split("<bdi>")[1:]]


def test_span_corruption_chips_show_original_input_and_target():
    words = ["the", "small", "dog", "sees", "the", "big", "cat", "near", "the", "river"]
    corrupted = corrupt_spans(words, rate=0.3, mean_span_length=2, seed=1)
    text = figs.span_corruption_html(corrupted)
    assert chip_texts(text, "Original") == words
    assert chip_texts(text, "Input") == [figs.shown_token(t) for t in corrupted.inputs]
    assert chip_texts(text, "Target") == [figs.shown_token(t) for t in corrupted.targets]


def test_a_sentinel_has_the_colour_of_its_span_everywhere():
    words = [f"w{i}" for i in range(30)]
    corrupted = corrupt_spans(words, rate=0.3, mean_span_length=2, seed=3)
    text = figs.span_corruption_html(corrupted)
    for i, span in enumerate(corrupted.spans):
        color = figs.SPAN_COLORS[i % len(figs.SPAN_COLORS)]
        assert f"background:{color}" in text
        assert text.count(f"<bdi>{figs.shown_token(span.sentinel)}</bdi>") == 2  # input, target
    closing = sentinel(len(corrupted.spans))
    assert text.count(f"<bdi>{figs.shown_token(closing)}</bdi>") == 1


def test_span_corruption_chips_escape_markup():
    words = [MARKUP, "and", "more", "words", "<b>bold</b>", "here"]
    text = figs.span_corruption_html(corrupt_spans(words, rate=0.3, mean_span_length=1, seed=0))
    assert "<img" not in text and "</script>" not in text and "<b>" not in text
    assert "&lt;/script&gt;&lt;img" in text


# ---------------------------------------------------------------------------------------------
# A whole trace: heatmaps, step figures and captions
# ---------------------------------------------------------------------------------------------

SOURCE = ["1", " ", "M", MARKUP]
DECODER = ["[BOS]", "2", "0"]
OUTPUTS = ["2", "0", "[EOS]"]


@pytest.fixture
def trace() -> Trace:
    def layers(queries: int, keys: int, seed: int) -> list[torch.Tensor]:
        return [random_rows(1, 2, queries, keys, seed=seed + layer) for layer in range(2)]

    return Trace(
        tokens=DECODER,
        attentions=[layer.tril() for layer in layers(3, 3, seed=0)],
        logits=torch.zeros(1, 3, 10),
        encoder_tokens=SOURCE,
        encoder_attentions=layers(4, 4, seed=10),
        cross_attentions=layers(3, 4, seed=20),
    )


def step_of(trace: Trace, index: int, token: str, is_end: bool = False) -> DecodingStep:
    rows = torch.stack([layer[0, :, index] for layer in trace.cross_attentions])  # (L, H, S)
    return DecodingStep(index, 7, token, 0.9, ((token, 0.9), (MARKUP, 0.000123)), rows, is_end)


def z(fig) -> np.ndarray:
    return np.asarray(fig.data[0].z, dtype=float)


def test_escape_markdown_shows_text_as_typed():
    assert figs.escape_markdown("a *b* [c](d) <e> 1.5") == r"a \*b\* \[c\]\(d\) \<e\> 1\.5"
    assert figs.escape_markdown("plain words") == "plain words"


def test_head_label_and_name():
    assert figs.head_label(MEAN) == "mean of the heads" and figs.head_label(3) == "3"
    assert figs.head_name(1, MEAN) == "layer 1, mean of the heads"
    assert figs.head_name(0, 2) == "layer 0, head 2"


def test_family_rows_describe_each_family():
    shapes = {
        "b": ModelShape("bert", 2, 0, 4, 64, 1234),
        "s": ModelShape("seq2seq", 3, 2, 2, 32, 99),
    }
    rows = figs.family_rows(shapes)
    assert [row["Model"] for row in rows] == ["b", "s"]
    assert rows[0]["Family"] == "encoder-only" and rows[0]["Trained to predict"] == "masked tokens"
    assert rows[1]["Like"] == "T5, BART"
    assert (rows[1]["Encoder layers"], rows[1]["Decoder layers"]) == (3, 2)
    assert (rows[1]["Heads"], rows[1]["Width"], rows[1]["Parameters"]) == (2, 32, 99)


def test_attention_figures_draw_the_chosen_head(trace):
    for head in (0, 1, MEAN):
        encoder = figs.encoder_attention_figure(trace, 1, head)
        decoder = figs.decoder_attention_figure(trace, 0, head)
        cross = figs.cross_attention_figure(trace, OUTPUTS, 1, head)
        expected = head_weights(trace.encoder_attentions, 1, head).numpy()
        np.testing.assert_allclose(z(encoder), expected, rtol=1e-6)
        expected = head_weights(trace.attentions, 0, head).numpy()
        np.testing.assert_allclose(z(decoder), expected, rtol=1e-6)
        expected = head_weights(trace.cross_attentions, 1, head).numpy()
        np.testing.assert_allclose(z(cross), expected, rtol=1e-6)
    assert cross.layout.title.text == "Cross-attention, layer 1, mean of the heads"
    assert list(cross.layout.yaxis.ticktext) == ["[BOS] → 2", "2 → 0", "0 → [EOS]"]
    assert "<img" not in encoder.to_json()


def test_step_figures_draw_the_steps_rows(trace):
    step = step_of(trace, 1, "0")
    bars = figs.step_bars_figure(step, trace, 1, 0)
    np.testing.assert_allclose(bars.data[0].y, trace.cross_attentions[1][0, 0, 1].numpy())
    assert bars.layout.title.text == "Step 2 (0): cross-attention, layer 1, head 0"
    heads = figs.step_all_heads_figure(step, trace)
    assert z(heads).shape == (4, len(SOURCE))  # 2 layers × 2 heads
    assert heads.layout.title.text == "Step 2 (0): cross-attention in every layer and head"
    assert figs.runner_up_text(step) == f"{figs.shown_token(MARKUP)} (1.2e-04)"


def test_head_view_shows_spaces(trace):
    page = figs.head_view_html(trace)
    params = json.loads(re.search(r"const params = (\{.*?\}); // HACK", page).group(1))
    texts = [(view["left_text"], view["right_text"]) for view in params["attention"]]
    source = [token.replace(" ", "␣") for token in SOURCE]
    assert (source, source) in texts and (DECODER, source) in texts
    assert "</script><img" not in page


def test_known_characters_caption_lists_the_tokens_escaped():
    caption = figs.known_characters_caption(["1", " ", "*"])
    assert caption == r"The characters this model knows\: 1 ␣ \*"


def test_self_attention_caption_measures_the_look_ahead(trace):
    caption = figs.self_attention_caption(trace, 0, MEAN)
    assert caption == (
        "Source: 4 tokens; decoder input: 3 tokens. Largest decoder weight above the diagonal "
        "(a look into the future): 0.0e+00."
    )


def test_cross_attention_caption_names_the_strongest_source(trace):
    cross = head_weights(trace.cross_attentions, 0, 1)
    strongest = cross.argmax(dim=-1).tolist()
    caption = figs.cross_attention_caption(trace, OUTPUTS, 0, 1)
    for out, k in zip(OUTPUTS, strongest, strict=True):
        expected = f"{figs.shown_token(out)} ← {figs.shown_token(SOURCE[k])} ({k})"
        assert figs.escape_markdown(expected) in caption
    deviation = (cross.sum(dim=-1) - 1).abs().max().item()
    assert caption.endswith(figs.escape_markdown(f"(largest deviation {deviation:.1e})."))


def test_step_attention_caption_names_where_the_step_looked(trace):
    step = step_of(trace, 0, "2")
    row = trace.cross_attentions[1][0, :, 0].mean(dim=0)
    k = int(row.argmax())
    caption = figs.step_attention_caption(step, SOURCE, 1, MEAN)
    expected = (
        f"To emit 2, layer 1, mean of the heads put {row[k]:.1%} of its attention on source "
        f"token {k} ({figs.shown_token(SOURCE[k])})."
    )
    assert caption == figs.escape_markdown(expected)


def test_decoding_summary_says_how_decoding_ended(trace):
    ended = [step_of(trace, 0, "2"), step_of(trace, 1, "0"), step_of(trace, 2, "[EOS]", True)]
    assert figs.decoding_summary(ended, "2-0") == (
        r"Done after 3 steps: the decoder chose [EOS]. Output: 2\-0"
    )
    cut = ended[:2]
    assert figs.decoding_summary(cut, "20") == (
        "Stopped at the length limit after 2 steps. Output: 20"
    )
    with pytest.raises(ValueError, match="no step"):
        figs.decoding_summary([], "")


def test_span_caption_counts_the_dropped_words():
    words = [f"w{i}" for i in range(20)]
    corrupted = corrupt_spans(words, rate=0.3, mean_span_length=2, seed=3)
    caption = figs.span_caption(corrupted, 0.3)
    lengths = [span.end - span.start for span in corrupted.spans]
    assert caption.startswith(
        f"{sum(lengths)} of 20 words dropped ({sum(lengths) / 20:.1%}; rate 30%)"
    )
    assert f"spans of lengths {', '.join(map(str, lengths))}." in caption
    assert caption.endswith(
        f"The encoder reads {len(corrupted.inputs)} tokens, the decoder predicts "
        f"{len(corrupted.targets)}."
    )
    single = corrupt_spans(["a", "b", "c"], rate=0.34, mean_span_length=1, seed=0)
    assert "in 1 span of length 1." in figs.span_caption(single, 0.34)
