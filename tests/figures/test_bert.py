"""Figures of the BERT lesson: they draw the numbers they are given, and escape every token."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.plotly_json import figure_spec
from tinyformers.course.bert import BlankGuess, EmbeddingBreakdown, Ledger, LedgerStatistics
from tinyformers.figures import bert as figs
from tinyformers.text import masking

EVIL = "</script><img src=x onerror=alert(1)>"


def breakdown(tokens: list[str], segments: list[int], width: int = 6) -> EmbeddingBreakdown:
    generator = torch.Generator().manual_seed(0)
    rows = [torch.randn(len(tokens), width, generator=generator) for _ in range(3)]
    return EmbeddingBreakdown(list(range(len(tokens))), tokens, segments, *rows)


def ledger(tokens: list[str], seen: list[str], codes: list[int], special: list[bool]) -> Ledger:
    ids = list(range(10, 10 + len(tokens)))
    labels = [
        masking.IGNORE_INDEX if c == masking.NOT_SELECTED else i
        for i, c in zip(ids, codes, strict=True)
    ]
    return Ledger(ids, ids, tokens, seen, labels, codes, special)


def no_markup(fig) -> None:
    text = fig.to_json()
    assert "<img" not in text and "</script" not in text


# ---------------------------------------------------------------------------------------------
# Input representation
# ---------------------------------------------------------------------------------------------


def test_pair_chips_mark_segments_and_escape_tokens():
    chips = figs.pair_chips(["[CLS]", EVIL, "[SEP]", "she", "[SEP]"], [0, 0, 0, 1, 1])
    assert "<img" not in chips and "&lt;/script&gt;&lt;img" in chips
    assert chips.count("segment A") == 3 and chips.count("segment B") == 2


def test_embedding_sum_figure_draws_each_part_and_the_sum():
    parts = breakdown(["[CLS]", "dog", EVIL, "[SEP]"], [0, 0, 1, 1])
    normalized = torch.nn.functional.layer_norm(parts.total, (6,))
    fig = figs.embedding_sum_figure(parts, normalized)
    heatmaps = fig.data
    assert [h.name for h in heatmaps] == [
        "token (wte)",
        "+ segment (wse)",
        "+ position (wpe)",
        "= sum",
        "LayerNorm(sum)",
    ]
    expected = [parts.token, parts.segment, parts.position, parts.total, normalized]
    for heatmap, matrix in zip(heatmaps, expected, strict=True):
        np.testing.assert_allclose(np.asarray(heatmap.z), matrix.numpy(), rtol=1e-6)
    assert heatmaps[0].y[0] == "0: [CLS] (A)" and heatmaps[0].y[2].endswith("(B)")
    shared = max(m.abs().max().item() for m in expected[:4])
    assert heatmaps[1].zmax == pytest.approx(shared)
    assert heatmaps[4].zmax == pytest.approx(normalized.abs().max().item())
    no_markup(fig)


def test_embedding_norms_are_the_row_lengths():
    parts = breakdown(["[CLS]", "dog", "[SEP]"], [0, 0, 0])
    fig = figs.embedding_norms_figure(parts)
    assert [bar.name for bar in fig.data] == ["token", "segment", "position", "sum"]
    np.testing.assert_allclose(fig.data[3].y, parts.total.norm(dim=-1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(fig.data[1].y, parts.segment.norm(dim=-1).numpy(), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# The ledger
# ---------------------------------------------------------------------------------------------


def test_ledger_html_shows_every_position_and_escapes():
    tokens = ["[CLS]", "dog", EVIL, "runs", "home", "[SEP]"]
    seen = ["[CLS]", "[MASK]", EVIL, "cat", "home", "[SEP]"]
    codes = [
        masking.NOT_SELECTED,
        masking.MASKED,
        masking.UNCHANGED,
        masking.RANDOM,
        masking.NOT_SELECTED,
        masking.NOT_SELECTED,
    ]
    special = [True, False, False, False, False, True]
    html = figs.ledger_html(ledger(tokens, seen, codes, special))
    assert "<img" not in html and "&lt;img␣src=x" in html
    assert html.count("(no loss)") == 3  # [CLS], home, [SEP]
    for code, color in figs.CATEGORY_COLORS.items():
        if code in codes or code == figs.SPECIAL:
            assert f"background:{color};border" in html
    assert html.count('title="special token (never selected)"') == 2
    assert html.count("<bdi>cat</bdi>") == 1


def test_legend_names_every_category():
    legend = figs.ledger_legend_html()
    for name in figs.CATEGORY_NAMES.values():
        assert name.replace(">", "&gt;") in legend


# ---------------------------------------------------------------------------------------------
# Many draws
# ---------------------------------------------------------------------------------------------


def test_resample_figure_draws_the_counts_and_the_rates():
    stats = LedgerStatistics(
        samples=100,
        eligible=3,
        counts={
            masking.NOT_SELECTED: 240,
            masking.MASKED: 48,
            masking.RANDOM: 6,
            masking.UNCHANGED: 6,
        },
        selected_histogram=[50, 30, 20, 0],
        expected_histogram=[0.6, 0.3, 0.09, 0.01],
    )
    rates = masking.MaskingRates(0.2, 0.8, 0.1)
    fig = figs.resample_figure(stats, rates)
    observed, expected, observed_rates, configured = fig.data
    assert list(observed.y) == [0.5, 0.3, 0.2, 0.0]
    assert list(expected.y) == [0.6, 0.3, 0.09, 0.01]
    assert list(observed_rates.y) == pytest.approx([0.2, 0.8, 0.1, 0.1])
    assert list(configured.y) == pytest.approx([0.2, 0.8, 0.1, 0.1])
    assert figure_spec(fig)["layout"]["title"]["text"] == "100 draws of the masking"


def test_resample_figure_with_nothing_selected():
    stats = LedgerStatistics(10, 2, {0: 20, 1: 0, 2: 0, 3: 0}, [10, 0, 0], [1.0, 0.0, 0.0])
    fig = figs.resample_figure(stats, masking.MaskingRates(select_rate=0.0))
    assert fig.data[2].y[1] is None  # no share of nothing


def test_side_by_side_panels_have_their_own_axes_and_titles():
    stats = LedgerStatistics(1, 1, {0: 1, 1: 0, 2: 0, 3: 0}, [1, 0], [0.85, 0.15])
    layout = figure_spec(figs.resample_figure(stats, masking.MaskingRates()))["layout"]
    left, right = layout["xaxis"]["domain"], layout["xaxis2"]["domain"]
    assert left[1] < right[0]
    titles = [a["text"] for a in layout["annotations"]]
    assert titles == ["Tokens selected per draw", "Rates: observed and configured"]


# ---------------------------------------------------------------------------------------------
# Static and dynamic masking
# ---------------------------------------------------------------------------------------------


def test_epochs_figure_colours_each_epoch_by_ledger_code():
    tokens = ["[CLS]", "dog", EVIL, "[SEP]"]
    special = [True, False, False, True]
    first = ledger(tokens, ["[CLS]", "[MASK]", EVIL, "[SEP]"], [0, masking.MASKED, 0, 0], special)
    second = ledger(tokens, ["[CLS]", "dog", "cat", "[SEP]"], [0, 0, masking.RANDOM, 0], special)
    fig = figs.epochs_figure([first, first], [first, second])
    static, dynamic = fig.data[0], fig.data[1]
    special_code = figs.SPECIAL
    assert [list(row) for row in static.z] == [[special_code, masking.MASKED, 0, special_code]] * 2
    assert list(dynamic.z[1]) == [special_code, 0, masking.RANDOM, special_code]
    assert dynamic.text[1][2] == "cat" and list(static.y) == ["epoch 1", "epoch 2"]
    assert len(fig.data) == 2 + len(figs.CATEGORY_NAMES)  # two heatmaps and the legend
    no_markup(fig)
    with pytest.raises(ValueError, match="same, non-zero number of epochs"):
        figs.epochs_figure([first], [first, second])


# ---------------------------------------------------------------------------------------------
# Filling in the blanks
# ---------------------------------------------------------------------------------------------


def test_predictions_figure_draws_probabilities_and_marks_the_answer():
    guesses = [
        BlankGuess(3, "runs", ["walks", "runs", EVIL], [0.5, 0.3, 0.1], 0.3, 2),
        BlankGuess(5, "dog", ["cat", "fox", "owl"], [0.4, 0.2, 0.1], 0.01, 9),
    ]
    fig = figs.predictions_figure(guesses)
    first, second = fig.data
    assert list(first.x) == [0.5, 0.3, 0.1]
    assert list(first.y) == [
        "1. walks",
        "2. runs",
        "3. &lt;/script&gt;&lt;img␣src=x␣onerror=alert(1)&gt;",
    ]
    assert list(first.marker.color) == [figs.OBSERVED_COLOR, figs.ANSWER_COLOR, figs.OBSERVED_COLOR]
    assert figs.ANSWER_COLOR not in list(second.marker.color)
    titles = [a["text"] for a in figure_spec(fig)["layout"]["annotations"]]
    assert titles == ["position 3 (was runs)", "position 5 (was dog)"]
    no_markup(fig)
    with pytest.raises(ValueError, match="no masked positions"):
        figs.predictions_figure([])


def test_attention_from_figure_rows_are_layer_and_head():
    weights = torch.softmax(torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0)), -1)
    tokens = ["[CLS]", "[MASK]", EVIL, "[SEP]"]
    fig = figs.attention_from_figure(weights, tokens, 1)
    heatmap = fig.data[0]
    np.testing.assert_allclose(np.asarray(heatmap.z), weights.reshape(6, 4).numpy(), rtol=1e-6)
    assert heatmap.y[4] == "layer 1 · head 1"
    assert heatmap.x[1] == "1: [MASK]"
    no_markup(fig)
    with pytest.raises(ValueError, match="attention columns"):
        figs.attention_from_figure(weights, tokens[:3], 1)


# ---------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------


def test_embedding_caption_gives_sizes_and_lengths():
    parts = breakdown(["[CLS]", "a", "[SEP]", "b", "[SEP]"], [0, 0, 0, 1, 1])
    lengths = {"token": 1.23456, "sum": 2.0}
    caption = figs.embedding_caption(parts, lengths, [0.5, 0.25])
    assert caption == (
        "5 positions, 2 of them in segment B. Average vector length: token 1.235, sum 2.000. "
        "Segment rows: A 0.500, B 0.250."
    )


def test_ledger_caption_counts_what_the_draw_did():
    tokens = ["[CLS]", "the", "dog", "runs", "home", "[SEP]"]
    special = [True, False, False, False, False, True]
    draw = ledger(
        tokens, tokens, [0, masking.MASKED, 0, masking.UNCHANGED, masking.RANDOM, 0], special
    )
    assert figs.ledger_caption(draw, 7, 3) == (
        "Seed 7, draw 3: 3 of 4 ordinary tokens selected (1 → [MASK], 1 → random, "
        "1 unchanged). Loss at positions 1, 3, 4; the other 3 labels are -100."
    )
    nothing = ledger(tokens, tokens, [0] * 6, special)
    assert "0 of 4 ordinary tokens selected" in figs.ledger_caption(nothing, 0, 1)
    assert "Loss at no position; the other 6 labels" in figs.ledger_caption(nothing, 0, 1)


def test_resample_caption_sets_measured_rates_beside_configured_ones():
    stats = LedgerStatistics(
        samples=100,
        eligible=3,
        counts={
            masking.NOT_SELECTED: 240,
            masking.MASKED: 48,
            masking.RANDOM: 6,
            masking.UNCHANGED: 6,
        },
        selected_histogram=[50, 30, 20, 0],
        expected_histogram=[0.6, 0.3, 0.09, 0.01],
    )
    assert figs.resample_caption(stats, masking.MaskingRates(0.2, 0.8, 0.1), 5) == (
        "100 draws with seed 5 on 3 ordinary tokens: 20.00% selected (configured 20%), "
        "0.60 tokens per draw on average. Of the 60 selected: 80.00% → [MASK], 10.00% → "
        "random, 10.00% unchanged."
    )
    none = LedgerStatistics(10, 2, {0: 20, 1: 0, 2: 0, 3: 0}, [10, 0, 0], [1.0, 0.0, 0.0])
    caption = figs.resample_caption(none, masking.MaskingRates(select_rate=0.0), 0)
    assert caption.endswith("No draw selected anything, so the split of the selected is undefined.")


def test_epochs_caption_counts_trained_positions():
    tokens = ["[CLS]", "the", "dog", "runs", "[SEP]"]
    special = [True, False, False, False, True]
    first = ledger(tokens, tokens, [0, masking.MASKED, 0, 0, 0], special)
    second = ledger(tokens, tokens, [0, 0, 0, masking.RANDOM, 0], special)
    assert figs.epochs_caption([first, first], [first, second], 3) == (
        "Over 2 epochs with seed 3, of 3 ordinary positions: static masking trained on 1, "
        "dynamic masking on 2."
    )
    assert figs.epochs_caption([first], [second], 3).startswith("Over 1 epoch with")
    with pytest.raises(ValueError, match="same, non-zero number of epochs"):
        figs.epochs_caption([], [], 0)


def test_guesses_caption_ranks_each_original():
    guesses = [
        BlankGuess(3, "runs", ["walks", "runs"], [0.5, 0.3], 0.3, 2),
        BlankGuess(5, "dog", ["dog"], [0.912], 0.912, 1),
    ]
    assert figs.guesses_caption(guesses) == (
        "Position 3: the original 'runs' is choice 2 (30.0%). "
        "Position 5: the original 'dog' is choice 1 (91.2%)."
    )


def test_subject_head_caption_reads_the_model_card():
    card = {"subject_head_layer": 2, "subject_head": 1, "subject_head_rate": 0.874}
    caption = figs.subject_head_caption(card)
    assert caption.startswith("The model card: from the main verb, layer 2 head 1 looks hardest")
    assert "on 87% of held-out agreement sentences" in caption
