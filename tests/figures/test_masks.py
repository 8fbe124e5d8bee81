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
from tinyformers.training.experiments import CAUSAL, LEAKY
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


def test_mask_figure_draws_the_mask_the_scores_and_the_weights(make_model) -> None:
    view = make_view(make_model, 5)
    fig = figs.mask_figure(view, "Causal mask · tiny")
    mask_panel, scores_panel, weights_panel = fig.data
    masked = (~view.mask).numpy()
    for panel in fig.data:
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
    assert fig.layout.plot_bgcolor == figs.MASKED_COLOR
    assert fig.layout.xaxis.ticktext == tuple(figs.token_labels(view.key_tokens))
    assert fig.layout.yaxis.ticktext == tuple(figs.token_labels(view.query_tokens))
    assert fig.layout.yaxis.autorange == "reversed"  # the first token is the top row
    assert len(fig.layout.annotations) == 3


def test_weights_in_the_cells_are_the_computed_numbers(make_model) -> None:
    view = make_view(make_model, 4)
    weights_panel = figs.mask_figure(view, "t").data[2]
    assert weights_panel.text[0][0] == f"{view.weights[0, 0].item():.2f}"
    hover = weights_panel.customdata[0][3]
    assert "masked: exactly 0" in hover


def test_long_sequences_leave_numbers_out_of_the_cells(make_model) -> None:
    view = make_view(make_model, 16)
    scores_panel = figs.mask_figure(view, "t").data[1]
    texts = np.array(scores_panel.text)
    allowed = view.mask.numpy()
    assert (texts[allowed] == "").all()  # no room for numbers: the hover box has them
    assert figs.MINUS_INFINITY in scores_panel.customdata[0][5]


def test_titles_and_tokens_are_escaped(make_model) -> None:
    view = make_view(make_model, 3, ["a", ATTACK, "b"])
    fig = figs.mask_figure(view, f"title {ATTACK}")
    assert "<img" not in fig.layout.title.text
    for panel in fig.data:
        assert not any("<img" in hover for row in panel.customdata for hover in row)
    assert not any("<img" in tick for tick in fig.layout.xaxis.ticktext)


def test_cross_view_axes_say_decoder_and_encoder(make_model) -> None:
    view = make_view(make_model, 3)
    cross = mv.MaskView("cross", *[getattr(view, f) for f in list(view.__dataclass_fields__)[1:]])
    fig = figs.mask_figure(cross, "t")
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
