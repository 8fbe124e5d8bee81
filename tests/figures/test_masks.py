"""The mask figures draw exactly the matrices of a view: masked cells blank (grey) and marked,
the other cells the computed numbers; every label escaped."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.plotly_json import decode
from tinyformers.course import masks as mv
from tinyformers.figures import masks as figs
from tinyformers.model.config import GPTConfig
from tinyformers.text.tokenizers import train_char
from tinyformers.training.experiments import CAUSAL, LEAKY, ExperimentResult, VariantResult
from tinyformers.training.loop import Progress

ATTACK = "</script><img src=x onerror=alert(1)>"


def make_view(make_model, n_tokens: int, tokens: list[str] | None = None) -> mv.MaskView:
    model = make_model(GPTConfig)
    ids = [(3 * i + 1) % 40 for i in range(n_tokens)]
    strings = tokens or [f"w{i}" for i in range(n_tokens)]
    return mv.causal_view(model, ids, strings, 1, 0)


def test_token_labels_number_positions_show_spaces_and_escape() -> None:
    labels = figs.token_labels([" the", "\n", ATTACK, " the"])
    assert labels[0] == "0: ␣the" and labels[3] == "3: ␣the"  # equal tokens stay apart
    assert labels[1] == "1: ⏎"
    assert "<" not in labels[2] and "&lt;img" in labels[2]


def panels(view: mv.MaskView) -> list:
    """The heatmap of each of the mask's three figures."""
    return [fig.data[0] for fig in figs.mask_figures(view)[1]]


def test_mask_figures_draw_the_mask_the_scores_and_the_weights(make_model) -> None:
    view = make_view(make_model, 5)
    widths, figures = figs.mask_figures(view)
    assert len(widths) == len(figures) == 3
    mask_panel, scores_panel, weights_panel = panels(view)
    masked = (~view.mask).numpy()
    for panel in (mask_panel, scores_panel, weights_panel):
        assert np.isnan(decode(panel.z)[masked]).all()  # masked cells are blank: grey background
    np.testing.assert_allclose(
        decode(scores_panel.z)[~masked], view.scores.numpy()[~masked], atol=1e-6
    )
    np.testing.assert_allclose(
        decode(weights_panel.z)[~masked], view.weights.numpy()[~masked], atol=1e-6
    )
    texts = np.array(scores_panel.text)
    assert (texts[masked] == figs.MINUS_INFINITY).all()
    assert (np.array(mask_panel.text)[~masked] == "0").all()
    assert (np.array(weights_panel.text)[masked] == "0").all()
    for fig in figures:
        assert fig.layout.plot_bgcolor == figs.MASKED_COLOR
        assert fig.layout.xaxis.ticktext == tuple(figs.token_labels(view.key_tokens))
        assert fig.layout.yaxis.autorange == "reversed"  # the first token is the top row
        assert fig.layout.meta == {"mask": "causal"} and fig.layout.height <= 450
    assert figures[0].layout.yaxis.ticktext == tuple(figs.token_labels(view.query_tokens))
    assert figures[2].layout.yaxis.ticktext == tuple(str(i) for i in range(5))  # positions
    assert [fig.data[0].showscale for fig in figures] == [False, True, True]


def test_mask_panels_fit_a_first_screen(make_model) -> None:
    view = make_view(make_model, 16)
    assert all(fig.layout.height <= 450 for fig in figs.mask_figures(view)[1])


def test_kind_caption_starts_with_the_title(make_model) -> None:
    view = make_view(make_model, 5)
    text = figs.kind_caption(view, "causal", "tiny", 1, 0)
    assert text.startswith("Causal mask · tiny, layer 1, head 0. ")
    assert text.endswith(figs.view_caption(view, figs.kind_details(view, "causal", 0)))


def test_weights_in_the_cells_are_the_computed_numbers(make_model) -> None:
    view = make_view(make_model, 4)
    weights_panel = panels(view)[2]
    assert weights_panel.text[0][0] == f"{view.weights[0, 0].item():.2f}"
    hover = weights_panel.customdata[0][3]
    assert "masked: exactly 0" in hover


def test_long_sequences_leave_numbers_out_of_the_cells(make_model) -> None:
    view = make_view(make_model, 16)
    scores_panel = panels(view)[1]
    texts = np.array(scores_panel.text)
    allowed = view.mask.numpy()
    assert (texts[allowed] == "").all()  # no room for numbers: the hover box has them
    assert figs.MINUS_INFINITY in scores_panel.customdata[0][5]


def test_titles_and_tokens_are_escaped(make_model) -> None:
    view = make_view(make_model, 3, ["a", ATTACK, "b"])
    for fig in figs.mask_figures(view)[1]:
        panel = fig.data[0]
        assert not any("<img" in hover for row in panel.customdata for hover in row)
        assert not any("<img" in tick for tick in fig.layout.xaxis.ticktext)


def test_cross_view_axes_say_decoder_and_encoder(make_model) -> None:
    view = make_view(make_model, 3)
    cross = mv.MaskView("cross", *[getattr(view, f) for f in list(view.__dataclass_fields__)[1:]])
    fig = figs.mask_figures(cross)[1][0]
    assert fig.layout.yaxis.title.text == "query (decoder)"
    assert fig.layout.xaxis.title.text == "key (encoder)"


def padded(make_model) -> tuple[mv.PaddedBatch, list[list[str]]]:
    model = make_model(GPTConfig)
    sequences = [[1, 2, 3, 4, 5], [6, 7]]
    batch = mv.padded_batch(model, sequences, 0)
    strings = [[f"w{i}" for i in s] + [mv.PAD_TOKEN] * (5 - len(s)) for s in sequences]
    return batch, strings


def test_padded_batch_figure_has_one_panel_per_sequence(make_model) -> None:
    batch, strings = padded(make_model)
    fig = figs.padded_batch_figure(batch, strings, 1, 1, "Batch")
    assert len(fig.data) == 2
    z = decode(fig.data[1].z)
    assert np.isnan(z[:, 2:]).all()  # the [PAD] columns are masked for every query
    np.testing.assert_allclose(z[1, :2], batch.weights(1, 1, 1)[1, :2].numpy(), atol=1e-6)
    assert np.isnan(z[0, 1])  # causal: the first token does not see the second
    assert fig.layout.xaxis2.ticktext[-1] == "4: [PAD]"
    assert fig.layout.yaxis2.showticklabels  # its rows differ from the first sequence's


def test_padded_batch_figure_checks_the_token_strings(make_model) -> None:
    batch, strings = padded(make_model)
    with pytest.raises(ValueError, match="5 token strings for each of the 2"):
        figs.padded_batch_figure(batch, [strings[0], strings[1][:2]], 0, 0, "t")


def test_loss_curves_show_every_variant() -> None:
    def history(scale: float) -> list[Progress]:
        return [
            Progress(step, scale / step, scale if step % 2 == 0 else None, 0.01, 1.0, 0.1)
            for step in range(1, 5)
        ]

    fig = figs.loss_curves_figure({CAUSAL: history(2.0), LEAKY: history(1.0)}, "Losses")
    names = [trace.name for trace in fig.data]
    assert names == [
        f"{CAUSAL}: training",
        f"{CAUSAL}: validation",
        f"{LEAKY}: training",
        f"{LEAKY}: validation",
    ]
    assert list(fig.data[0].y) == [2.0 / s for s in range(1, 5)]
    assert list(fig.data[1].x) == [2, 4]  # validation only where it was measured
    assert fig.data[0].line.color != fig.data[2].line.color
    assert not math.isnan(fig.data[3].y[0])


def test_loss_curves_escape_labels() -> None:
    fig = figs.loss_curves_figure({ATTACK: [Progress(1, 1.0, None, 0.1, 1.0, 0.1)]}, ATTACK)
    assert "<img" not in fig.layout.title.text and "<img" not in fig.data[0].name


# ---------------------------------------------------------------------------------------------
# Titles, captions and tables
# ---------------------------------------------------------------------------------------------


def test_kind_titles_name_the_layer() -> None:
    assert figs.kind_title("prefix", "m", 1, 2) == "Prefix-LM mask · m, layer 1, head 2"
    assert (
        figs.kind_title("cross", "d", 0, 3) == "Cross-attention mask · d, decoder layer 0, head 3"
    )


def test_kind_details_describe_the_prefix_and_the_padding(make_model) -> None:
    view = make_view(make_model, 6)
    assert figs.kind_details(view, "causal", 0) == ""
    assert figs.kind_details(view, "prefix", 0) == "Prefix length 0: the same as the causal mask. "
    assert figs.kind_details(view, "prefix", 2) == "Prefix: positions 0 to 1 (2 of 6 tokens). "
    batch = make_model(GPTConfig)
    padded_view = mv.padding_view(batch, [[1, 2, 3], [4]], [["a", "b", "c"], ["d"]], 0, 0, 1, 0)
    assert figs.kind_details(padded_view, "padding", 0) == (
        "This sequence has 1 real token and 2 [PAD] after them. "
    )


def test_view_caption_counts_the_masked_pairs(make_model) -> None:
    view = make_view(make_model, 4)
    text = figs.view_caption(view, "Intro. ")
    assert text.startswith(
        "Intro. 6 of 16 (query, key) pairs are masked: their score becomes −∞, and their weight "
        "is 0. Every row of weights sums to 1 (largest deviation "
    )
    assert text.endswith(f"by at most {view.max_difference():.1e}.")


def test_padding_table_and_caption(make_model) -> None:
    batch, _ = padded(make_model)
    table = figs.difference_table(batch)
    assert list(table["real tokens"]) == [5, 2] and list(table["[PAD] added"]) == [0, 3]
    assert list(table["max |difference|, with the padding mask"]) == [
        f"{d:.1e}" for d in batch.differences
    ]
    text = figs.padding_caption(batch, 1, 1)
    assert text.startswith("Largest weight on a [PAD] key in this head: 0. ")
    assert f"at most {max(batch.differences):.1e} with the padding mask" in text


def variant(label: str, losses: list[float], masked: float | None) -> VariantResult:
    history = [Progress(n + 1, loss, loss + 0.5, 0.01, 1.0, 0.1) for n, loss in enumerate(losses)]
    config = GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=1, n_embd=8)
    return VariantResult(label, config, 100, history, None, "sample", masked)


def test_leakage_results_and_summary() -> None:
    tokenizer = train_char("abcd")
    result = ExperimentResult(
        tokenizer,
        "ab",
        [variant(CAUSAL, [2.0, 1.23456], 1.9), variant(LEAKY, [1.0, 0.5], 3.0)],
        False,
    )
    table = figs.results_table(result)
    assert list(table["final training loss"]) == [1.235, 0.5]
    assert list(table["validation loss"]) == [1.735, 1.0]
    text = figs.leakage_summary(result)
    assert text.startswith("Training loss at the end: 0.500 without the mask, 1.235 with it.")
    assert "score a validation loss of 3.000, against 1.900 for the model" in text
    n = tokenizer.vocab_size
    assert text.endswith(f"among the {n} tokens would score ln {n} = {math.log(n):.3f}.")
    stopped = ExperimentResult(tokenizer, "ab", [variant(CAUSAL, [2.0], None)], True)
    assert figs.leakage_summary(stopped) is None


def test_progress_caption_says_what_trained() -> None:
    histories = {
        CAUSAL: [Progress(7, 1.0, None, 0.1, 1.0, 0.1)],
        LEAKY: [Progress(3, 1.0, None, 0.1, 1.0, 0.1)],
    }
    run = {"source": "Your own text", "chars": 12345, "steps": 20, "seed": 4}
    assert figs.progress_caption(histories, run) == (
        "Trained on your own text (12,345 characters), 20 steps per model, seed 4. "
        f"Steps done: {CAUSAL}, 7; {LEAKY}, 3."
    )
    assert figs.progress_caption(histories, None).startswith("Steps done: ")
