"""Figures of the scaling lesson: every plotted number equals the data it was drawn from, the fit
and the reference slopes are exact lines on log–log axes, and titles are escaped."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.plotly_json import figure_trace
from tinyformers.course.scaling import (
    KINDS,
    CostPoint,
    CostResult,
    CostSettings,
    CostUpdate,
    SweepPoint,
    SweepProgress,
    SweepResult,
    SweepSettings,
    all_parameters,
    compute_frontier,
    fit_power_law,
    ladder_configs,
    mlp_hidden_bytes,
    model_label,
    multiply_adds,
    non_embedding_parameters,
    plan_sweep,
    score_matrix_bytes,
    sequence_lengths,
)
from tinyformers.figures import scaling as figs
from tinyformers.training.loop import Progress

SETTINGS = SweepSettings(n_models=4, steps=100)


def progress(step: int, val_loss: float | None) -> Progress:
    return Progress(step, 2.0, val_loss, 1e-3, 1000.0, step / 10)


def sweep_points() -> list[SweepPoint]:
    points = []
    for i, config in enumerate(ladder_configs(vocab_size=40, n_models=4)):
        n = non_embedding_parameters(config)
        losses = [3.0 - 0.1 * i - 0.2 * k for k in range(3)]
        history = (
            progress(10, None),
            progress(40, losses[0]),
            progress(80, losses[1]),
            progress(100, losses[2]),
        )
        points.append(
            SweepPoint(
                label=model_label(config),
                config=config,
                non_embedding_parameters=n,
                parameters=n + 40 * config.n_embd,
                tokens=SETTINGS.tokens,
                tokens_per_step=SETTINGS.tokens_per_step,
                val_loss=losses[-1],
                history=history,
                seconds=10.0,
            )
        )
    return points


def cost_result(backward: bool = False, memory: bool = True) -> CostResult:
    lengths = sequence_lengths(32, 512)
    points = tuple(
        CostPoint(
            n=n,
            seconds={"attention": 2e-9 * n * n, "fused": 1e-9 * n * n, "mlp": 4e-7 * n},
            backward_seconds={k: 3e-9 * n * n for k in KINDS} if backward else None,
            peak_bytes={k: 1000 * n for k in KINDS} if memory else None,
            score_bytes=score_matrix_bytes(n, 4),
            mlp_bytes=mlp_hidden_bytes(n, 256),
        )
        for n in lengths
    )
    settings = CostSettings(max_length=512, n_embd=64, backward=backward, memory=memory)
    return CostResult(settings, points, stopped=False)


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------


def test_loss_against_parameters_shows_each_model_and_the_fitted_line() -> None:
    points = sweep_points()
    fit = fit_power_law([p.non_embedding_parameters for p in points], [p.val_loss for p in points])
    figure = figs.loss_vs_parameters_chart(points, fit, "Loss <b>vs</b> size")
    for point in points:
        trace = figure_trace(figure, point.label)
        assert list(trace.x) == [point.non_embedding_parameters]
        assert list(trace.y) == [point.val_loss]
    line = figure_trace(figure, f"fit: {figs.fit_label(fit)}")
    np.testing.assert_allclose(line.y, [fit.predict(x) for x in line.x])
    assert line.x[0] < points[0].non_embedding_parameters < points[-1].non_embedding_parameters
    assert points[-1].non_embedding_parameters < line.x[1]
    assert figure.layout.xaxis.type == "log" and figure.layout.yaxis.type == "log"
    assert figure.layout.title.text == "Loss &lt;b&gt;vs&lt;/b&gt; size"
    assert "non-embedding" in figure.layout.xaxis.title.text


def test_fit_label_shows_the_exponent_and_its_error() -> None:
    fit = fit_power_law([1e3, 1e4, 1e5, 1e6], [3.0, 2.6, 2.2, 2.0])
    label = figs.fit_label(fit)
    assert label == (f"L = {fit.prefactor:.3g} · N^(−{fit.alpha:.3f} ± {fit.exponent_se:.3f})")
    two = fit_power_law([10, 100], [2.0, 1.0])
    assert figs.fit_label(two, "C") == f"L = {two.prefactor:.3g} · C^(−{two.alpha:.3f})"


def test_no_fit_draws_only_the_points() -> None:
    figure = figs.loss_vs_parameters_chart(sweep_points(), None, "title")
    assert len(figure.data) == 4 and all(t.mode == "markers" for t in figure.data)


def test_loss_against_compute_draws_the_curves_and_the_frontier() -> None:
    points = sweep_points()
    curves = figs.sweep_curves(points)
    figure = figs.loss_vs_compute_chart(curves, "Compute")
    for point in points:
        trace = figure_trace(figure, point.label)
        expected_flops = [6 * point.non_embedding_parameters * s * 1024 for s in (40, 80, 100)]
        np.testing.assert_allclose(trace.x, expected_flops)
        assert list(trace.y) == [p.val_loss for p in point.history if p.val_loss is not None]
        assert trace.x[-1] == point.flops
        assert list(trace.marker.size) == [7, 7, 14]  # the end point is marked
    everything = [
        (f, loss)
        for flops, losses in curves.values()
        for f, loss in zip(flops, losses, strict=True)
    ]
    frontier = compute_frontier(everything)
    line = figure_trace(figure, "frontier: lowest loss at this compute")
    assert list(zip(line.x, line.y, strict=True)) == frontier
    single = figs.loss_vs_compute_chart({points[0].label: curves[points[0].label]}, "one")
    assert len(single.data) == 1


def test_plan_and_result_tables() -> None:
    configs = ladder_configs(vocab_size=40, n_models=4)
    rows = figs.plan_rows(configs, SETTINGS)
    assert [r["model"] for r in rows] == [model_label(c) for c in configs]
    for row, config in zip(rows, configs, strict=True):
        n = non_embedding_parameters(config)
        assert row["N (non-embedding)"] == n
        assert row["D (training tokens)"] == SETTINGS.tokens
        assert row["D / all parameters"] == round(SETTINGS.tokens / all_parameters(config), 1)
        assert row["C = 6·N·D (FLOPs)"] == f"{6 * n * SETTINGS.tokens:.2e}"
    points = sweep_points()
    fit = fit_power_law([p.non_embedding_parameters for p in points], [p.val_loss for p in points])
    result_rows = figs.sweep_rows(points, fit)
    for row, point in zip(result_rows, points, strict=True):
        assert row["validation loss"] == round(point.val_loss, 4)
        assert row["fitted loss"] == round(fit.predict(point.non_embedding_parameters), 4)
    assert "fitted loss" not in figs.sweep_rows(points, None)[0]


def test_planned_sweep_chart_beside_the_controls() -> None:
    plan = plan_sweep("stories", SETTINGS, (40, 50_000, 5_000))
    figure = figs.beside_controls(figs.planned_sweep_chart(plan))
    assert figure.layout.title.text == "The planned sweep<br>4 models, D = 102,400 tokens each"
    assert figure.layout.height <= 450
    assert figure.layout.xaxis.type == figure.layout.yaxis.type == "log"
    for config in plan.configs:
        trace = figure_trace(figure, model_label(config))
        ratio = SETTINGS.tokens / all_parameters(config)
        assert trace.x == (non_embedding_parameters(config),) and trace.y == pytest.approx((ratio,))
    line = figure_trace(figure, "Chinchilla: 20 tokens per parameter")
    assert line.y == (20, 20) and line.x[0] < min(plan.parameters.values())


# ---------------------------------------------------------------------------------------------
# What the page says about the sweep
# ---------------------------------------------------------------------------------------------


def sweep_result(points: list[SweepPoint]) -> SweepResult:
    return SweepResult(SETTINGS, "Generated stories", 40, 9_000, 1_000, tuple(points), (), False)


def test_plan_caption_states_the_text_the_budget_and_the_compute() -> None:
    plan = plan_sweep("stories", SETTINGS, (40, 50_000, 5_000))
    total = sum(6 * n * SETTINGS.tokens for n in plan.parameters.values())
    assert figs.plan_caption(plan) == (
        "Generated stories: 50,000 training and 5,000 validation characters, 40 distinct. "
        f"Each model: 100 steps × 16 sequences × 64 characters = D = 102,400 tokens "
        f"({102_400 / 50_000:.2f} passes over the training text). The whole sweep: "
        f"C ≈ {total:.2e} FLOPs."
    )


def test_sweep_progress_and_status_texts() -> None:
    progress = SweepProgress(model=1, n_models=6, label="1 layer × 32 wide", step=150, steps=300)
    assert figs.sweep_progress_text(progress, 12.4) == (
        "Model 2 of 6, 1 layer × 32 wide: step 150 of 300 (12 s so far)"
    )
    result = sweep_result(sweep_points()[:3])
    assert figs.sweep_finished_text(result, 61.25) == "Finished: 3 models in 61.2 s."
    assert figs.sweep_stopped_text(result).startswith("The sweep was stopped: 3 of 4 models ")


def test_fit_metrics_title_and_caption_show_the_fit_of_the_points() -> None:
    points = sweep_points()
    result = sweep_result(points)
    fit = result.fit()
    assert figs.fit_metrics(fit) == {
        "Exponent α": f"{fit.alpha:.3f} ± {fit.exponent_se:.3f}",
        "Prefactor a": f"{fit.prefactor:.3g} ± {fit.prefactor_se:.2g}",
        "R² (log–log)": f"{fit.r_squared:.3f}",
        "Models fitted": 4,
    }
    assert figs.fit_title(result) == (
        "Validation loss against size · Generated stories, D = 102,400 tokens"
    )
    caption = figs.fit_caption(result, fit)
    span = points[-1].non_embedding_parameters / points[0].non_embedding_parameters
    assert caption.startswith(f"Least squares on (ln N, ln L) over 4 models: {figs.fit_label(fit)}")
    assert f"The sizes span a factor of {span:.0f} in N." in caption
    largest = points[-1]
    assert f"{largest.non_embedding_parameters:,} of its {largest.parameters:,}" in caption


def test_compute_caption_counts_evaluations_and_names_the_frontier_and_the_best() -> None:
    points = sweep_points()
    curves = figs.sweep_curves(points)
    caption = figs.compute_caption(sweep_result(points), curves)
    best = points[-1]  # every model's losses are lower than the smaller one's
    assert caption.startswith("12 evaluations in all.")  # 4 models × 3 evaluations
    assert (
        f"Lowest final loss: {best.label}, {best.val_loss:.4f} at C = {best.flops:.2e}" in caption
    )


@pytest.mark.parametrize("steps,under", [(100, True), (5_000, False)])
def test_chinchilla_caption_names_the_undertrained_models(steps, under) -> None:
    settings = SweepSettings(n_models=4, steps=steps)
    plan = plan_sweep("stories", settings, (40, 50_000, 5_000))
    ratios = [settings.tokens / all_parameters(c) for c in plan.configs]
    caption = figs.chinchilla_caption(plan)
    assert ", ".join(f"{r:.1f}" for r in ratios) in caption
    assert f"this D suits a model of ≈ {settings.tokens / 20:,.0f} parameters in all." in caption
    below = [label for label, r in zip(plan.labels, ratios, strict=True) if r < 20]
    assert bool(below) == under
    if under:
        assert caption.endswith(f"so undertrained by that rule: {', '.join(below)}.")
    else:
        assert caption.endswith("No model is below that ratio.")


# ---------------------------------------------------------------------------------------------
# The cost of attention
# ---------------------------------------------------------------------------------------------


def test_multiply_adds_chart_is_the_formula() -> None:
    lengths = [32, 64, 128]
    figure = figs.multiply_adds_chart(lengths, 64, 256, "Computed")
    for part in multiply_adds(1, 64, 256):
        expected = [multiply_adds(n, 64, 256)[part] for n in lengths]
        assert list(figure_trace(figure, part).y) == expected
    assert "computed" in figure.layout.yaxis.title.text


@pytest.mark.parametrize("backward", [False, True])
def test_time_chart_plots_the_times_and_exact_reference_slopes(backward) -> None:
    result = cost_result(backward=backward)
    figure = figs.time_chart(result, "Time")
    for kind in KINDS:
        trace = figure_trace(figure, f"{figs.KIND_NAMES[kind]}, forward")
        np.testing.assert_allclose(trace.y, [p.seconds[kind] * 1000 for p in result.points])
    names = [trace.name for trace in figure.data]
    assert (f"{figs.KIND_NAMES['attention']}, forward + backward" in names) == backward
    anchor_n = result.fitted_lengths()[0]
    anchor = next(p for p in result.points if p.n == anchor_n).seconds["attention"] * 1000
    for slope, name in ((1, "reference: slope 1 (∝ n)"), (2, "reference: slope 2 (∝ n²)")):
        line = figure_trace(figure, name)
        measured = np.polyfit(np.log(line.x), np.log(line.y), 1)[0]
        assert measured == pytest.approx(slope)
        assert line.y[list(line.x).index(anchor_n)] == pytest.approx(anchor)
    assert len(figure.data) == 3 * (2 if backward else 1) + 2


def test_share_chart_is_the_measured_share() -> None:
    result = cost_result()
    figure = figs.share_chart(result, "Share")
    for kind in ("attention", "fused"):
        expected = [100 * p.attention_share(kind) for p in result.points]
        np.testing.assert_allclose(figure_trace(figure, figs.KIND_NAMES[kind]).y, expected)


@pytest.mark.parametrize("memory", [True, False])
def test_memory_chart_labels_computed_and_measured(memory) -> None:
    result = cost_result(memory=memory)
    figure = figs.memory_chart(result, "Memory")
    computed = figure_trace(figure, "computed: one heads × n × n matrix")
    np.testing.assert_allclose(computed.y, [p.score_bytes / 2**20 for p in result.points])
    measured = [trace.name for trace in figure.data if trace.name.startswith("measured")]
    assert len(measured) == (3 if memory else 0)
    if memory:
        line = figure_trace(figure, f"measured peak, {figs.KIND_NAMES['attention']}")
        np.testing.assert_allclose(line.y, [1000 * n / 2**20 for n in result.lengths])


def test_cost_table_names_what_is_measured_and_what_is_computed() -> None:
    rows = figs.cost_rows(cost_result())
    assert [r["n"] for r in rows] == sequence_lengths(32, 512)
    for name in rows[0]:
        assert name == "n" or "measured" in name or "computed" in name
    last = rows[-1]
    assert last["n × n matrix MiB (computed)"] == round(score_matrix_bytes(512, 4) / 2**20, 3)
    assert math.isclose(last["attention ms (measured)"], round(2e-9 * 512 * 512 * 1000, 3))
    assert "attention peak MiB (measured)" not in figs.cost_rows(cost_result(memory=False))[0]


# ---------------------------------------------------------------------------------------------
# What the page says about the cost of attention
# ---------------------------------------------------------------------------------------------


def test_prediction_chart_and_caption_are_computed_from_the_settings() -> None:
    settings = CostSettings(max_length=1024, n_embd=128, n_head=4)
    figure = figs.prediction_chart(settings)
    assert figure.layout.title.text == "Computed: multiply-adds of one layer, width C = 128"
    trace = figure_trace(figure, "MLP")
    assert list(trace.x) == settings.lengths
    assert list(trace.y) == [multiply_adds(n, 128, 512)["MLP"] for n in settings.lengths]
    caption = figs.prediction_caption(settings)
    assert "at n = 2C = 256;" in caption and "at n = 4C = 512." in caption
    assert "one 4 × 1024 × 1024 float32 matrix takes 16.00 MiB (computed)" in caption


def test_cost_progress_warms_up_then_counts_lengths() -> None:
    assert figs.cost_progress([]) == (0.0, "Warming up…")
    point = cost_result().points[2]
    updates = ["not an update", CostUpdate(point, 3, 11)]
    assert figs.cost_progress(updates) == (3 / 11, f"Measured n = {point.n} (3 of 11 lengths)")
    stopped = CostResult(CostSettings(max_length=512), cost_result().points[:4], stopped=True)
    assert figs.cost_stopped_text(stopped).startswith("Stopped after 4 of 9 lengths:")


def test_slopes_times_and_share_texts_are_the_fitted_numbers() -> None:
    result = cost_result(backward=True)
    metrics = figs.slope_metrics(result)
    for kind in KINDS:
        fit = result.slope(kind)
        label = f"Slope: {figs.KIND_NAMES[kind]}"
        assert metrics[label] == f"{fit.exponent:.2f} ± {fit.exponent_se:.2f}"
    assert metrics["Slope: attention (n × n weights)"].startswith("2.00 ±")  # times ∝ n²
    assert figs.time_title(result.settings) == "Measured time of one layer, C = 64, 4 heads"
    fitted = result.fitted_lengths()
    times = figs.times_caption(result)
    assert f"for n = {fitted[0]} to {fitted[-1]} ({len(fitted)} lengths;" in times
    assert "on one CPU thread." in times
    assert figs.backward_caption(result).endswith("slope 2.00 ± 0.00.")
    # attention takes n / (n + 200) of the time: half from n = 200, first measured at 256
    share = figs.share_caption(result)
    assert "takes 14% of the time at n = 32 and 72% at n = 512" in share
    assert "first reaches half of the time at n = 256" in share
    assert "(the multiply-add count predicts n = 128)." in share


def test_memory_caption_compares_computed_and_measured_bytes() -> None:
    assert figs.memory_caption(cost_result(memory=False)) is None
    caption = figs.memory_caption(cost_result())
    matrix = score_matrix_bytes(512, 4)
    assert caption.startswith(f"At n = 512: one n × n matrix for all heads is {matrix / 2**20:.2f}")
    assert f"peaked at {512_000 / 2**20:.2f} MiB (measured, {512_000 / matrix:.1f} " in caption
