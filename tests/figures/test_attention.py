"""Figures of the step-by-step attention lesson: the right matrices in the right panels, the
focus row framed, masked cells blank, every token escaped."""

import math

import numpy as np
import pytest
import torch

from tinyformers.course import attention as stepwise
from tinyformers.figures import attention as figs
from tinyformers.text.display import plain

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


def heatmaps(figures):
    """The heatmap of each panel figure, left to right."""
    return [trace for fig in figures for trace in fig.data if trace.type == "heatmap"]


def step_figures(steps, step, focus):
    return figs.step_figures(steps, step, focus)[1]


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
    widths, figures = figs.step_figures(toy, step, focus=2)
    number = figs.STEPS.index(step) + 1
    title = figs.step_title(step, "toy head")
    assert title == f"Step {number} of 8: {figs.STEP_NAMES[step]} · toy head"
    assert len(widths) == len(figures) == len(EXPECTED[step])
    assert all(fig.layout.meta == {"step": step} for fig in figures)
    assert len({fig.layout.height for fig in figures}) == 1  # the rows line up
    assert figures[0].layout.height <= 450
    maps = heatmaps(figures)
    for trace, name in zip(maps, EXPECTED[step], strict=True):
        expected = matrix(toy, name).double()
        if name == "scaled":
            expected = expected.masked_fill(~toy.allowed(), math.nan)
        np.testing.assert_allclose(np.asarray(trace.z), expected.numpy(), equal_nan=True)
    framed = [[s for s in fig.layout.shapes if s.type == "rect"] for fig in figures]
    assert [len(frames) == 1 for frames in framed] == FOCUS_FRAMED[step]
    assert all(f.y0 == 1.5 and f.y1 == 2.5 for frames in framed for f in frames)


def test_only_the_first_panel_names_the_token_rows(toy):
    x, _, q = step_figures(toy, "q", focus=0)
    assert list(x.layout.yaxis.ticktext) == figs.token_labels(TOKENS)
    assert list(q.layout.yaxis.ticktext) == [str(i) for i in range(len(TOKENS))]
    assert q.data[0].customdata[1][0].startswith("1: 'dog'")  # hover still names the token


def test_tall_inputs_keep_the_panels_within_a_first_screen(wide):
    for step in figs.STEPS:
        assert all(fig.layout.height <= 450 for fig in step_figures(wide, step, 0))


def test_masked_scores_are_blank_and_labelled_minus_infinity(toy):
    scaled = heatmaps(step_figures(toy, "scale", focus=0))[1]
    z = np.asarray(scaled.z)
    above = np.triu(np.ones((5, 5), dtype=bool), k=1)
    assert np.isnan(z[above]).all() and np.isfinite(z[~above]).all()
    assert scaled.text[0][1] == "−∞" and scaled.text[1][0] == f"{z[1, 0]:.2f}"
    weights = heatmaps(step_figures(toy, "softmax", focus=0))[1]
    assert (np.asarray(weights.z)[above] == 0).all()  # softmax weights are 0, not blank
    assert weights.zmin == 0 and weights.zmax == 1


def test_numbers_are_written_in_small_matrices_only(toy, wide):
    small = heatmaps(step_figures(toy, "q", focus=0))
    assert all(trace.texttemplate == "%{text}" for trace in small)
    assert not any("-0.00" in cell for trace in small for row in trace.text for cell in row)
    large = heatmaps(step_figures(wide, "q", focus=0))
    assert all(trace.texttemplate is None for trace in large)
    assert len(large[0].customdata) == 20  # values still shown on hover


def test_tokens_are_escaped_everywhere(toy):
    for step in figs.STEPS:
        for fig in step_figures(toy, step, focus=4):
            text = fig.to_json()
            assert "<img" not in text and "</script>" not in text
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
        (lambda s: figs.step_figures(s, "nope", 0), "unknown step"),
        (lambda s: figs.step_figures(s, "x", 5), "query position"),
        (lambda s: figs.step_title("nope"), "unknown step"),
        (lambda s: figs.attention_bars(s, -1), "query position"),
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
    roomy = step_figures(toy, "scores", focus=0)[2]
    assert list(roomy.layout.xaxis.ticktext) == figs.token_labels(TOKENS)
    crowded = step_figures(wide, "output", focus=0)[0]
    assert crowded.layout.xaxis.ticktext is None
    assert crowded.layout.xaxis.title.text == "key position" and crowded.layout.xaxis.dtick > 1


# ---------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------


def test_input_caption_names_where_x_comes_from(toy):
    row = toy.x[1]
    stats = f"mean {row.mean().item():.3f}, standard deviation {row.std(unbiased=False).item():.3f}"
    assert figs.input_caption(toy, 1, None, 0) == (
        f"5 tokens × 4 numbers: one random row per distinct word. Row 1 ('dog'): {stats}."
    )
    assert "the output of ln_1 in layer 2 (pre-LN)" in figs.input_caption(toy, 1, "pre", 2)
    assert "the input of block 2 (post-LN)" in figs.input_caption(toy, 1, "post", 2)


def test_projection_caption_measures_the_focus_row(toy):
    text = figs.projection_caption(toy, "k", 3)
    assert text.startswith("W_K: 4 × 3. No bias. Row 3 ('the') of K has length ")
    assert f"{torch.linalg.vector_norm(toy.k[3]).item():.3f}." in text


def test_scores_caption_finds_the_largest_score_the_row_may_use(toy):
    visible = toy.scores[2, :3]  # causal: row 2 sees keys 0, 1 and 2
    best = int(visible.argmax())
    product = sum(toy.q[2, i].item() * toy.k[best, i].item() for i in range(3))
    text = figs.scores_caption(toy, 2)
    assert f"the largest score it may use is {visible[best].item():.3f}, with {best} (" in text
    assert f"sum of 3 products = {product:.3f}" in text


def test_scale_caption_counts_the_masked_entries(toy):
    assert figs.scale_caption(toy) == (
        "√d_k = √3 = 1.732. The causal mask hides 10 of 25 entries (key after query): they "
        "become −∞ and are drawn blank."
    )
    open_head = stepwise.toy_head(TOKENS, d_model=4, d_k=3, seed=0)
    assert figs.scale_caption(open_head).endswith("No mask: every token may look at every token.")


def test_softmax_caption_compares_with_the_returned_weights(toy):
    text = figs.softmax_caption(toy, 0, toy.weights + 0.002, "src")
    assert text.startswith("Row 0 ('the') sums to 1.000000; its largest weight is 1.000, on 0")
    assert text.endswith(
        "The model's own attention weights (src) differ from this matrix by at most 2.0e-03."
    )
    assert "own attention" not in figs.softmax_caption(toy, 0, None, "src")


def test_output_caption_writes_the_two_largest_terms(toy):
    weights = toy.weights[4]
    first, second = weights.argsort(descending=True)[:2].tolist()
    text = figs.output_caption(toy, 4)
    assert text.startswith(
        f"Output row 4 ({plain(repr(TOKENS[4]))}) = {weights[first].item():.2f} × v[{first} "
    )
    assert f" + {weights[second].item():.2f} × v[{second} (" in text and " + …;" in text


def test_step_caption_is_the_caption_of_the_step(toy):
    assert figs.step_caption(toy, "scale", 1, None, 0, None, "toy") == figs.scale_caption(toy)
    assert figs.step_caption(toy, "v", 1, None, 0, None, "toy") == figs.projection_caption(
        toy, "v", 1
    )
    with pytest.raises(ValueError, match="query position"):
        figs.step_caption(toy, "x", 9, None, 0, None, "toy")


def test_query_caption_gives_the_entropy_against_uniform(toy):
    weights = toy.weights[2, :3].double()
    entropy = -(weights * weights.log()).sum().item()
    assert figs.query_caption(toy, 2, "toy head") == (
        f"toy head. Row 2 ('sees') may see 3 of 5 tokens. Entropy of its weights: {entropy:.3f} "
        f"nats (uniform over the keys it may see: {math.log(3):.3f})."
    )


def test_spread_caption_measures_the_visible_scores(toy):
    visible = toy.scores[torch.ones(5, 5).tril().bool()]
    text = figs.spread_caption(toy, 4, "toy head")
    assert text.startswith(f"toy head: the {visible.numel()} scores the mask lets through")
    scaled = (visible / math.sqrt(3)).std(unbiased=False).item()
    assert f"{visible.std(unbiased=False).item():.3f} before the division" in text
    assert f"{scaled:.3f} after it (÷ 1.732)" in text
    without = torch.softmax(toy.scores[4], -1).max().item()
    assert text.endswith(f"without the division it would be {without:.3f}.")


def test_scaling_caption_and_table_are_the_statistics():
    stats = stepwise.scaling_experiment([1, 4, 16], n_keys=8, n_samples=30, seed=0)
    text = figs.scaling_caption(stats)
    assert text.startswith(
        f"At d = 16: unscaled scores have standard deviation {stats.unscaled.std[2]:.3f} "
        "(√d = 4.000)"
    )
    assert text.endswith(f"(uniform: {math.log(8):.3f}).")
    table = figs.stats_table(stats)
    assert table["d"] == [1, 4, 16]
    assert table["entropy (scaled)"] == [round(v, 3) for v in stats.scaled.entropy]
    assert len(table) == 9
