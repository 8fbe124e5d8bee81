"""Figures of the encoder-decoder lesson: they draw the numbers they are given, label every
position, and never let a token's text become markup."""

import numpy as np
import pytest
import torch

from tests.plotly_json import decode
from tinyformers.figures import encoder_decoder as figs
from tinyformers.text.span_corruption import corrupt_spans, sentinel

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
