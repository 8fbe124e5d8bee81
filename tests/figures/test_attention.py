"""Figures of the step-by-step attention lesson: the right matrices in the right panels, the
focus row framed, masked cells blank, every token escaped."""

import math

import numpy as np
import pytest
import torch

from tinyformers.course import attention as stepwise
from tinyformers.figures import attention as figs

TOKENS = ["the", "dog", "sees", "the", "</script><img src=x onerror=alert(1)>"]


@pytest.fixture(scope="module")
def toy():
    return stepwise.toy_head(TOKENS, d_model=4, d_k=3, seed=0, causal=True)


@pytest.fixture(scope="module")
def wide():
    """A head the size of a shipped model's (numbers do not fit in its cells)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20, 128, generator=gen)
    w = [torch.randn(128, 32, generator=gen) / 10 for _ in range(3)]
    return stepwise.head_steps([f"t{i}" for i in range(20)], x, *w)


def heatmaps(fig):
    return [trace for trace in fig.data if trace.type == "heatmap"]


EXPECTED = {
    "x": ["x"],
    "q": ["x", "w_q", "q"],
    "k": ["x", "w_k", "k"],
    "v": ["x", "w_v", "v"],
    "scores": ["q", "k_t", "scores"],
    "scale": ["scores", "scaled"],
    "softmax": ["scaled", "weights"],
    "output": ["weights", "v", "output"],
}
FOCUS_FRAMED = {  # which panels get the frame around the query row
    "x": [True],
    "q": [True, False, True],
    "k": [True, False, True],
    "v": [True, False, True],
    "scores": [True, False, True],
    "scale": [True, True],
    "softmax": [True, True],
    "output": [True, False, True],
}


def matrix(steps, name):
    if name == "k_t":
        return steps.k.T
    return getattr(steps, name)


@pytest.mark.parametrize("step", figs.STEPS)
def test_each_step_shows_its_matrices(toy, step):
    fig = figs.step_figure(toy, step, focus=2, source="toy head")
    number = figs.STEPS.index(step) + 1
    assert fig.layout.title.text.startswith(f"Step {number} of 8: {figs.STEP_NAMES[step]}")
    maps = heatmaps(fig)
    assert len(maps) == len(EXPECTED[step])
    for trace, name in zip(maps, EXPECTED[step], strict=True):
        expected = matrix(toy, name).double()
        if name == "scaled":
            expected = expected.masked_fill(~toy.allowed(), math.nan)
        np.testing.assert_allclose(np.asarray(trace.z), expected.numpy(), equal_nan=True)
    frames = [shape for shape in fig.layout.shapes if shape.type == "rect"]
    assert len(frames) == sum(FOCUS_FRAMED[step])
    assert all(frame.y0 == 1.5 and frame.y1 == 2.5 for frame in frames)


def test_masked_scores_are_blank_and_labelled_minus_infinity(toy):
    scaled = heatmaps(figs.step_figure(toy, "scale", focus=0))[1]
    z = np.asarray(scaled.z)
    above = np.triu(np.ones((5, 5), dtype=bool), k=1)
    assert np.isnan(z[above]).all() and np.isfinite(z[~above]).all()
    assert scaled.text[0][1] == "−∞" and scaled.text[1][0] == f"{z[1, 0]:.2f}"
    weights = heatmaps(figs.step_figure(toy, "softmax", focus=0))[1]
    assert (np.asarray(weights.z)[above] == 0).all()  # softmax weights are 0, not blank
    assert weights.zmin == 0 and weights.zmax == 1


def test_numbers_are_written_in_small_matrices_only(toy, wide):
    small = heatmaps(figs.step_figure(toy, "q", focus=0))
    assert all(trace.texttemplate == "%{text}" for trace in small)
    assert not any("-0.00" in cell for trace in small for row in trace.text for cell in row)
    large = heatmaps(figs.step_figure(wide, "q", focus=0))
    assert all(trace.texttemplate is None for trace in large)
    assert len(large[0].customdata) == 20  # values still shown on hover


def test_tokens_are_escaped_everywhere(toy):
    for step in figs.STEPS:
        fig = figs.step_figure(toy, step, focus=4, source="<b>model</b>")
        text = fig.to_json()
        assert "<img" not in text and "</script>" not in text and "<b>model" not in text
    bars = figs.attention_bars(toy, 4)
    assert "<img" not in bars.to_json()
    assert "&lt;/script&gt;" in bars.layout.title.text


def test_token_labels():
    assert figs.token_labels([" dog", "<a>"]) == ["0: ' dog'", "1: '&lt;a&gt;'"]


def test_attention_bars_show_the_query_row(toy):
    fig = figs.attention_bars(toy, 2)
    bar = fig.data[0]
    np.testing.assert_allclose(bar.y, toy.weights[2].numpy())
    assert list(bar.text[3:]) == ["masked", "masked"]
    assert bar.marker.color[3] == figs.MASKED_COLOR and bar.marker.color[0] != figs.MASKED_COLOR
    assert fig.layout.title.text == "Where 2: 'sees' looks"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s: figs.step_figure(s, "nope", 0), "unknown step"),
        (lambda s: figs.step_figure(s, "x", 5), "query position"),
        (lambda s: figs.attention_bars(s, -1), "query position"),
        (lambda s: figs.panels_figure([], "t"), "at least one panel"),
        (lambda s: figs.draw_figure(torch.ones(1), 4), "at least two"),
    ],
)
def test_bad_arguments(toy, call, message):
    with pytest.raises(ValueError, match=message):
        call(toy)


def test_scaling_figure_plots_the_statistics():
    stats = stepwise.scaling_experiment([1, 4, 16], n_keys=8, n_samples=30, seed=0)
    fig = figs.scaling_figure(stats)
    by_name = {}
    for trace in fig.data:
        by_name.setdefault(trace.name, []).append(list(trace.y))
    unscaled, scaled = by_name["q·k (unscaled)"], by_name["q·k / √d (scaled)"]
    assert unscaled == [
        list(stats.unscaled.mean_abs),
        list(stats.unscaled.entropy),
        list(stats.unscaled.max_weight),
    ]
    assert scaled[1] == list(stats.scaled.entropy)
    assert by_name["uniform over 8 keys (log 8)"][0] == pytest.approx([math.log(8)] * 3)
    assert "30 queries × 8 keys" in fig.layout.title.text


def test_draw_figure_is_the_two_softmaxes():
    scores = torch.tensor([4.0, 0.0, -4.0, 2.0], dtype=torch.float64)
    fig = figs.draw_figure(scores, 16)
    np.testing.assert_allclose(fig.data[0].y, torch.softmax(scores, -1).numpy())
    np.testing.assert_allclose(fig.data[1].y, torch.softmax(scores / 4, -1).numpy())


def test_token_columns_fall_back_to_positions_when_crowded(toy, wide):
    roomy = figs.step_figure(toy, "scores", focus=0)
    assert list(roomy.layout.xaxis3.ticktext) == figs.token_labels(TOKENS)
    crowded = figs.step_figure(wide, "output", focus=0)
    assert crowded.layout.xaxis.ticktext is None
    assert crowded.layout.xaxis.title.text == "key position" and crowded.layout.xaxis.dtick > 1
