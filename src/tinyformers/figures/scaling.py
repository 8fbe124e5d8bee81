"""Figures for the scaling lesson: validation loss against parameters and against compute for a
sweep of tiny GPTs, and the measured cost of self-attention as the sequence grows.

Pure functions returning Plotly figures (every title and label html-escaped), rows for a
table, or the texts of the page's captions, metrics and progress bars. Log–log axes throughout: a power law y = a · x^b is a straight line of slope b there.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import plotly.graph_objects as go

from tinyformers.course.scaling import (
    CHINCHILLA_TOKENS_PER_PARAMETER,
    KINDS,
    CostResult,
    CostSettings,
    CostUpdate,
    PowerLawFit,
    SweepPlan,
    SweepPoint,
    SweepProgress,
    SweepResult,
    SweepSettings,
    all_parameters,
    compute_frontier,
    crossover_length,
    embedding_parameters,
    frontier_labels,
    half_time_length,
    model_label,
    multiply_adds,
    non_embedding_parameters,
    score_matrix_bytes,
    training_flops,
    undertrained,
)
from tinyformers.figures.common import SERIES_COLORS
from tinyformers.i18n import N_, _, ngettext
from tinyformers.model.config import GPTConfig

FONT_SIZE = 16
SMALL_FONT_SIZE = 13  # beside the controls, in a narrower column
TEMPLATE = "plotly_white"
HEIGHT = 520
PRIMARY_HEIGHT = 440  # px: the chart beside the sweep's controls fits the first screen
KIND_NAMES = {
    "attention": N_("attention (n × n weights)"),
    "fused": N_("attention (fused kernel)"),
    "mlp": N_("MLP"),
}
KIND_COLORS = {"attention": "#d62728", "fused": "#ff7f0e", "mlp": "#1f77b4"}
MIB = 2**20


def _layout(figure: go.Figure, title: str, x_title: str, y_title: str, **extra) -> go.Figure:
    figure.update_layout(
        title={"text": html.escape(title)},
        font_size=FONT_SIZE,
        height=HEIGHT,
        template=TEMPLATE,
        margin={"l": 90, "r": 30, "t": 80, "b": 80},
        legend={"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top"},
        xaxis_title=html.escape(x_title),
        yaxis_title=html.escape(y_title),
        **extra,
    )
    return figure


def _span(values: Sequence[float], margin: float = 1.25) -> list[float]:
    """The smallest and largest value, widened by ``margin`` on a log scale."""
    return [min(values) / margin, max(values) * margin]


def beside_controls(figure: go.Figure) -> go.Figure:
    """A chart made to sit beside the controls at the top of the page: low enough for the first
    screen, its legend under the plot so a narrow column keeps the plot wide."""
    figure = go.Figure(figure)  # a copy: the figure may be drawn elsewhere too
    title = figure.layout.title.text or ""
    figure.update_layout(
        height=min(figure.layout.height or PRIMARY_HEIGHT, PRIMARY_HEIGHT),
        font_size=SMALL_FONT_SIZE,
        title={"text": title.replace(" · ", "<br>"), "font": {"size": SMALL_FONT_SIZE + 2}},
        margin={"l": 70, "r": 20, "t": 70 if " · " in title else 50, "b": 40},
        legend={
            "orientation": "h",
            "x": 0,
            "xanchor": "left",
            "y": -0.2,
            "yanchor": "top",
            "font": {"size": SMALL_FONT_SIZE - 1},
            "entrywidth": 0.5,  # two entries a row
            "entrywidthmode": "fraction",
        },
    )
    for update in (figure.update_xaxes, figure.update_yaxes):
        update(title_font_size=SMALL_FONT_SIZE, tickfont_size=SMALL_FONT_SIZE - 1, automargin=True)
    return figure


def fit_label(fit: PowerLawFit, symbol: str = "N") -> str:
    """The fitted law with the exponent's standard error, e.g. L = 3.1 · N^(−0.045 ± 0.004)."""
    spread = "" if math.isnan(fit.exponent_se) else f" ± {fit.exponent_se:.3f}"
    return f"L = {fit.prefactor:.3g} · {symbol}^(−{fit.alpha:.3f}{spread})"


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------


def loss_vs_parameters_chart(
    points: Sequence[SweepPoint], fit: PowerLawFit | None, title: str
) -> go.Figure:
    """Final validation loss against non-embedding parameters, with the fitted power law."""
    figure = go.Figure()
    for i, point in enumerate(points):
        figure.add_trace(
            go.Scatter(
                x=[point.non_embedding_parameters],
                y=[point.val_loss],
                mode="markers",
                name=html.escape(point.label),
                marker={"size": 14, "color": SERIES_COLORS[i % len(SERIES_COLORS)]},
                hovertemplate=(
                    f"{html.escape(point.label)}<br>N = %{{x:,}}<br>"
                    + _("loss %{y:.4f}")
                    + "<extra></extra>"
                ),
            )
        )
    if fit is not None:
        xs = _span([p.non_embedding_parameters for p in points])
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=[fit.predict(x) for x in xs],
                mode="lines",
                name=html.escape(_("fit: {law}").format(law=fit_label(fit))),
                line={"color": "black", "dash": "dash", "width": 2},
                hoverinfo="skip",
            )
        )
    return _layout(
        figure,
        title,
        _("non-embedding parameters N (log scale)"),
        _("validation loss, nats per character (log scale)"),
        xaxis_type="log",
        yaxis_type="log",
    )


def sweep_curves(points: Sequence[SweepPoint]) -> dict[str, tuple[list[float], list[float]]]:
    """Each finished model's (compute so far, validation loss) at every evaluation."""
    return {point.label: point.curve() for point in points}


def loss_vs_compute_chart(
    curves: dict[str, tuple[list[float], list[float]]], title: str, frontier: bool = True
) -> go.Figure:
    """Validation loss against training compute (6 · N · tokens so far), one line per model,
    its last evaluation marked, and the lowest loss reached by any model at each compute."""
    figure = go.Figure()
    for i, (label, (flops, losses)) in enumerate(curves.items()):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        figure.add_trace(
            go.Scatter(
                x=flops,
                y=losses,
                mode="lines+markers",
                name=html.escape(label),
                line={"color": color, "width": 2},
                marker={"size": [7] * (len(flops) - 1) + [14], "color": color},
                hovertemplate=(
                    f"{html.escape(label)}<br>C = %{{x:.3g}} FLOPs<br>"
                    + _("loss %{y:.4f}")
                    + "<extra></extra>"
                ),
            )
        )
    everything = [
        (f, loss)
        for flops, losses in curves.values()
        for f, loss in zip(flops, losses, strict=True)
    ]
    if frontier and len(curves) > 1 and everything:
        best = compute_frontier(everything)
        figure.add_trace(
            go.Scatter(
                x=[f for f, _ in best],
                y=[loss for _, loss in best],
                mode="lines",
                name=_("frontier: lowest loss at this compute"),
                line={"color": "black", "dash": "dot", "width": 3},
                hoverinfo="skip",
            )
        )
    return _layout(
        figure,
        title,
        _("training compute C ≈ 6 · N · D, FLOPs (log scale)"),
        _("validation loss, nats per character (log scale)"),
        xaxis_type="log",
        yaxis_type="log",
    )


def plan_rows(configs: Sequence[GPTConfig], settings: SweepSettings) -> list[dict]:
    """What the sweep will train: sizes, budget and compute, before any training."""
    rows = []
    for config in configs:
        n = non_embedding_parameters(config)
        rows.append(
            {
                _("model"): model_label(config),
                _("layers"): config.n_layer,
                _("width"): config.n_embd,
                _("heads"): config.n_head,
                _("N (non-embedding)"): n,
                _("embedding parameters"): embedding_parameters(config),
                _("D (training tokens)"): settings.tokens,
                _("D / all parameters"): round(settings.tokens / all_parameters(config), 1),
                _("C = 6·N·D (FLOPs)"): f"{training_flops(n, settings.tokens):.2e}",
            }
        )
    return rows


def planned_sweep_chart(plan: SweepPlan) -> go.Figure:
    """Before any training: the size N of every model the sweep will train and the tokens per
    parameter it will see (over all parameters, as Chinchilla counts), against Chinchilla's
    ratio."""
    ratios = plan.tokens_per_parameter()
    figure = go.Figure()
    for i, (label, n) in enumerate(plan.parameters.items()):
        figure.add_trace(
            go.Scatter(
                x=[n],
                y=[ratios[label]],
                mode="markers",
                name=html.escape(label),
                marker={"size": 14, "color": SERIES_COLORS[i % len(SERIES_COLORS)]},
                hovertemplate=(
                    f"{html.escape(label)}<br>N = %{{x:,}}<br>"
                    + _("D / all parameters = %{y:.1f}")
                    + "<extra></extra>"
                ),
            )
        )
    figure.add_trace(
        go.Scatter(
            x=_span(list(plan.parameters.values())),
            y=[CHINCHILLA_TOKENS_PER_PARAMETER] * 2,
            mode="lines",
            name=_("Chinchilla: {ratio} tokens per parameter").format(
                ratio=CHINCHILLA_TOKENS_PER_PARAMETER
            ),
            line={"color": "black", "dash": "dash", "width": 2},
            hoverinfo="skip",
        )
    )
    title = _("The planned sweep · {models}, D = {tokens} tokens each").format(
        models=ngettext("{n} model", "{n} models", len(plan.configs)),
        tokens=f"{plan.settings.tokens:,}",
    )
    return _layout(
        figure,
        title,
        _("non-embedding parameters N (log scale)"),
        _("D / all parameters, tokens per parameter (log scale)"),
        xaxis_type="log",
        yaxis_type="log",
    )


def sweep_rows(points: Sequence[SweepPoint], fit: PowerLawFit | None) -> list[dict]:
    """One row per trained model, with the fitted law's loss at its size."""
    rows = []
    for point in points:
        row = {
            _("model"): point.label,
            _("N (non-embedding)"): point.non_embedding_parameters,
            _("all parameters"): point.parameters,
            _("D / all parameters"): round(point.tokens_per_parameter, 1),
            _("C (FLOPs)"): f"{point.flops:.2e}",
            _("validation loss"): round(point.val_loss, 4),
        }
        if fit is not None:
            row[_("fitted loss")] = round(fit.predict(point.non_embedding_parameters), 4)
        row[_("training time (s)")] = round(point.seconds, 1)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# What the page says about the sweep
# ---------------------------------------------------------------------------------------------


def plan_caption(plan: SweepPlan) -> str:
    """The text, the budget D of every model and the compute of the whole sweep."""
    settings = plan.settings
    epochs = settings.tokens / plan.train_chars
    return _(
        "{source}: {train} training and {val} validation characters, {vocab} distinct. Each "
        "model: {steps} steps × {batch} sequences × {block} characters = D = {tokens} tokens "
        "({epochs} passes over the training text). The whole sweep: C ≈ {flops} FLOPs."
    ).format(
        source=_(plan.source_name),
        train=f"{plan.train_chars:,}",
        val=f"{plan.val_chars:,}",
        vocab=plan.vocab_size,
        steps=f"{settings.steps:,}",
        batch=settings.batch_size,
        block=settings.block_size,
        tokens=f"{settings.tokens:,}",
        epochs=f"{epochs:.2f}",
        flops=f"{plan.flops():.2e}",
    )


def sweep_progress_text(progress: SweepProgress, elapsed_s: float) -> str:
    """ "Model 2 of 6, 1 layer × 32 wide: step 150 of 300 (12 s so far)"."""
    return _(
        "Model {number} of {models}, {label}: step {step} of {steps} ({seconds} s so far)"
    ).format(
        number=progress.model + 1,
        models=progress.n_models,
        label=progress.label,
        step=progress.step,
        steps=progress.steps,
        seconds=f"{elapsed_s:.0f}",
    )


def sweep_finished_text(result: SweepResult, elapsed_s: float) -> str:
    return _("Finished: {models} in {seconds} s.").format(
        models=ngettext("{n} model", "{n} models", len(result.points)),
        seconds=f"{elapsed_s:.1f}",
    )


def sweep_stopped_text(result: SweepResult) -> str:
    return _(
        "The sweep was stopped: {finished} of {models} models finished. Their results are shown "
        "below, but not kept."
    ).format(finished=len(result.points), models=result.settings.n_models)


def fit_metrics(fit: PowerLawFit) -> dict[str, str | int]:
    """The fitted law's numbers as the page's metrics show them, by label."""
    return {
        _("Exponent α"): f"{fit.alpha:.3f} ± {fit.exponent_se:.3f}",
        _("Prefactor a"): f"{fit.prefactor:.3g} ± {fit.prefactor_se:.2g}",
        _("R² (log–log)"): f"{fit.r_squared:.3f}",
        _("Models fitted"): fit.n_points,
    }


def fit_title(result: SweepResult) -> str:
    return _("Validation loss against size · {source}, D = {tokens} tokens").format(
        source=_(result.source), tokens=f"{result.settings.tokens:,}"
    )


def fit_caption(result: SweepResult, fit: PowerLawFit) -> str:
    """How the law was fitted, the span of sizes, and what N counts in the largest model."""
    points = result.points
    largest = points[-1]
    span = largest.non_embedding_parameters / points[0].non_embedding_parameters
    return _(
        "Least squares on (ln N, ln L) over {models} models: {law} (± one standard error). The "
        "sizes span a factor of {span} in N. N counts non-embedding parameters, as Kaplan et al. "
        "do: the largest model has {inside} of its {total} parameters outside the embedding "
        "tables. Loss: mean over the whole validation split after the last step."
    ).format(
        models=fit.n_points,
        law=fit_label(fit),
        span=f"{span:.0f}",
        inside=f"{largest.non_embedding_parameters:,}",
        total=f"{largest.parameters:,}",
    )


def compute_caption(result: SweepResult, curves: dict[str, tuple[list[float], list[float]]]) -> str:
    """How many evaluations the curves hold, which models reach the frontier, and the best."""
    evaluations = sum(len(flops) for flops, _ in curves.values())
    best = min(result.points, key=lambda p: p.val_loss)
    return _(
        "{evaluations} evaluations in all. Models whose curves reach the frontier: {frontier}. "
        "Lowest final loss: {best}, {loss} at C = {flops} FLOPs."
    ).format(
        evaluations=evaluations,
        frontier=", ".join(frontier_labels(curves)),
        best=best.label,
        loss=f"{best.val_loss:.4f}",
        flops=f"{best.flops:.2e}",
    )


def chinchilla_caption(plan: SweepPlan) -> str:
    """The plan's tokens per parameter against the Chinchilla ratio (no training needed)."""
    tokens = plan.settings.tokens
    ratios = plan.tokens_per_parameter()
    under = undertrained(ratios)
    verdict = (
        _("Below {ratio} tokens per parameter, so undertrained by that rule: {models}.").format(
            ratio=CHINCHILLA_TOKENS_PER_PARAMETER, models=", ".join(under)
        )
        if under
        else _("No model is below that ratio.")
    )
    shown = ", ".join(f"{ratio:.1f}" for ratio in ratios.values())
    return _(
        "Every model sees D = {tokens} tokens; D over all parameters (embeddings included, as "
        "Chinchilla counts) from the smallest to the largest model: {shown}. At {ratio} tokens "
        "per parameter this D suits a model of ≈ {suited} parameters in all. {verdict}"
    ).format(
        tokens=f"{tokens:,}",
        shown=shown,
        ratio=CHINCHILLA_TOKENS_PER_PARAMETER,
        suited=f"{tokens / CHINCHILLA_TOKENS_PER_PARAMETER:,.0f}",
        verdict=verdict,
    )


# ---------------------------------------------------------------------------------------------
# The cost of attention
# ---------------------------------------------------------------------------------------------


def multiply_adds_chart(
    lengths: Sequence[int], n_embd: int, mlp_width: int, title: str
) -> go.Figure:
    """Computed, not measured: multiply-adds of one forward pass for each part of the layer."""
    series: dict[str, list[int]] = {}
    for n in lengths:
        for part, count in multiply_adds(n, n_embd, mlp_width).items():
            series.setdefault(part, []).append(count)
    colors = ["#ff9896", "#d62728", "#1f77b4"]
    figure = go.Figure()
    for (part, counts), color in zip(series.items(), colors, strict=True):
        figure.add_trace(
            go.Scatter(
                x=list(lengths),
                y=counts,
                mode="lines+markers",
                name=html.escape(_(part)),
                line={"color": color, "width": 3},
                hovertemplate=f"{html.escape(_(part))}<br>n = %{{x}}<br>%{{y:.3g}}<extra></extra>",
            )
        )
    return _layout(
        figure,
        title,
        _("sequence length n (log scale)"),
        _("multiply-adds, computed (log scale)"),
        xaxis_type="log",
        yaxis_type="log",
    )


def reference_line(
    lengths: Sequence[int], anchor_n: int, anchor_y: float, slope: float
) -> list[float]:
    """y = anchor_y · (n / anchor_n)^slope at every length: a straight line on log–log axes."""
    return [anchor_y * (n / anchor_n) ** slope for n in lengths]


def time_chart(result: CostResult, title: str) -> go.Figure:
    """Measured median times against n, with reference slopes 1 and 2 through the attention
    time at the first fitted length."""
    lengths = result.lengths
    figure = go.Figure()
    for kind in KINDS:
        figure.add_trace(
            go.Scatter(
                x=lengths,
                y=[p.seconds[kind] * 1000 for p in result.points],
                mode="lines+markers",
                name=html.escape(_("{kind}, forward").format(kind=_(KIND_NAMES[kind]))),
                line={"color": KIND_COLORS[kind], "width": 3},
                hovertemplate="n = %{x}<br>%{y:.3f} ms<extra></extra>",
            )
        )
    if result.settings.backward:
        for kind in KINDS:
            figure.add_trace(
                go.Scatter(
                    x=lengths,
                    y=[p.backward_seconds[kind] * 1000 for p in result.points],
                    mode="lines+markers",
                    name=html.escape(
                        _("{kind}, forward + backward").format(kind=_(KIND_NAMES[kind]))
                    ),
                    line={"color": KIND_COLORS[kind], "width": 2, "dash": "dash"},
                    hovertemplate="n = %{x}<br>%{y:.3f} ms<extra></extra>",
                )
            )
    anchor_n = result.fitted_lengths()[0]
    anchor = next(p for p in result.points if p.n == anchor_n).seconds["attention"] * 1000
    for slope, dash in ((1, "dot"), (2, "dashdot")):
        figure.add_trace(
            go.Scatter(
                x=lengths,
                y=reference_line(lengths, anchor_n, anchor, slope),
                mode="lines",
                name=_("reference: slope {slope} (∝ n{power})").format(
                    slope=slope, power="²" if slope == 2 else ""
                ),
                line={"color": "#7f7f7f", "dash": dash, "width": 2},
                hoverinfo="skip",
            )
        )
    figure = _layout(
        figure,
        title,
        _("sequence length n (log scale)"),
        _("median time, ms, measured (log scale)"),
        xaxis_type="log",
        yaxis_type="log",
    )
    # many lines: the legend goes under the plot, in two columns, so the plot keeps its width
    figure.update_layout(
        height=HEIGHT + 40,  # the most any chart of the page gets
        legend={
            "orientation": "h",
            "x": 0,
            "y": -0.2,
            "yanchor": "top",
            "entrywidth": 0.5,
            "entrywidthmode": "fraction",
        },
    )
    return figure


def share_chart(result: CostResult, title: str) -> go.Figure:
    """Measured: attention's part of the attention + MLP forward time, for both attention paths."""
    figure = go.Figure()
    for kind in ("attention", "fused"):
        figure.add_trace(
            go.Scatter(
                x=result.lengths,
                y=[100 * p.attention_share(kind) for p in result.points],
                mode="lines+markers",
                name=html.escape(_(KIND_NAMES[kind])),
                line={"color": KIND_COLORS[kind], "width": 3},
                hovertemplate="n = %{x}<br>"
                + _("{share} of the time").format(share="%{y:.1f}%")
                + "<extra></extra>",
            )
        )
    return _layout(
        figure,
        title,
        _("sequence length n (log scale)"),
        _("attention ÷ (attention + MLP) time, %"),
        xaxis_type="log",
        yaxis_range=[0, 100],
    )


def memory_chart(result: CostResult, title: str) -> go.Figure:
    """Computed sizes of the n × n matrix and of the MLP's hidden activation, and the measured
    peak memory of each forward pass."""
    lengths = result.lengths
    figure = go.Figure()
    computed = {
        _("computed: one heads × n × n matrix"): [p.score_bytes for p in result.points],
        _("computed: MLP hidden activation"): [p.mlp_bytes for p in result.points],
    }
    for (name, sizes), color in zip(computed.items(), ("#7f7f7f", "#9edae5"), strict=True):
        figure.add_trace(
            go.Scatter(
                x=lengths,
                y=[s / MIB for s in sizes],
                mode="lines",
                name=html.escape(name),
                line={"color": color, "dash": "dash", "width": 3},
                hovertemplate="n = %{x}<br>%{y:.3f} MiB<extra></extra>",
            )
        )
    if all(p.peak_bytes is not None for p in result.points):
        for kind in KINDS:
            figure.add_trace(
                go.Scatter(
                    x=lengths,
                    y=[p.peak_bytes[kind] / MIB for p in result.points],
                    mode="lines+markers",
                    name=html.escape(_("measured peak, {kind}").format(kind=_(KIND_NAMES[kind]))),
                    line={"color": KIND_COLORS[kind], "width": 3},
                    hovertemplate="n = %{x}<br>%{y:.3f} MiB<extra></extra>",
                )
            )
    return _layout(
        figure,
        title,
        _("sequence length n (log scale)"),
        _("memory, MiB (log scale)"),
        xaxis_type="log",
        yaxis_type="log",
    )


def cost_rows(result: CostResult) -> list[dict]:
    """One row per length; column names say what is measured and what is computed."""
    rows = []
    for p in result.points:
        row = {
            "n": p.n,
            _("attention ms (measured)"): round(p.seconds["attention"] * 1000, 3),
            _("fused ms (measured)"): round(p.seconds["fused"] * 1000, 3),
            _("MLP ms (measured)"): round(p.seconds["mlp"] * 1000, 3),
            _("attention share (measured)"): f"{p.attention_share():.0%}",
            _("n × n matrix MiB (computed)"): round(p.score_bytes / MIB, 3),
        }
        if p.peak_bytes is not None:
            row[_("attention peak MiB (measured)")] = round(p.peak_bytes["attention"] / MIB, 3)
            row[_("fused peak MiB (measured)")] = round(p.peak_bytes["fused"] / MIB, 3)
            row[_("MLP peak MiB (measured)")] = round(p.peak_bytes["mlp"] / MIB, 3)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# What the page says about the cost of attention
# ---------------------------------------------------------------------------------------------


def prediction_chart(settings: CostSettings) -> go.Figure:
    """The computed multiply-adds of one layer at every length the settings will measure."""
    title = _("Computed: multiply-adds of one layer, width C = {width}").format(
        width=settings.n_embd
    )
    return multiply_adds_chart(settings.lengths, settings.n_embd, settings.mlp_width, title)


def prediction_caption(settings: CostSettings) -> str:
    """Where attention's computed cost meets the MLP's, and the size of the longest n × n."""
    crossover = crossover_length(settings.n_embd, settings.mlp_width)
    n = settings.max_length
    matrix = score_matrix_bytes(n, settings.n_head) / MIB
    return _(
        "Attention (projections + scores) costs as much as the MLP at n = 2C = {crossover}; its "
        "n² part alone equals the MLP at n = 4C = {mlp}. At n = {n}, one {heads} × {n} × {n} "
        "float32 matrix takes {matrix} MiB (computed)."
    ).format(
        crossover=f"{crossover:.0f}",
        mlp=settings.mlp_width,
        n=n,
        heads=settings.n_head,
        matrix=f"{matrix:.2f}",
    )


def cost_progress(updates: Sequence[object]) -> tuple[float, str]:
    """The progress bar of a running measurement: the share of lengths measured and the last
    one, from the job's ``CostUpdate``s."""
    measured = [u for u in updates if isinstance(u, CostUpdate)]
    if not measured:
        return 0.0, _("Warming up…")
    last = measured[-1]
    return (
        last.done / last.total,
        _("Measured n = {n} ({done} of {total} lengths)").format(
            n=last.point.n, done=last.done, total=last.total
        ),
    )


def cost_stopped_text(result: CostResult) -> str:
    return _(
        "Stopped after {done} of {total} lengths: the results are shown below, but not kept."
    ).format(done=len(result.points), total=len(result.settings.lengths))


def slope_metrics(result: CostResult) -> dict[str, str]:
    """The fitted slope of time against n for every kind, by metric label."""
    metrics = {}
    for kind in KINDS:
        fit = result.slope(kind)
        label = _("Slope: {kind}").format(kind=_(KIND_NAMES[kind]))
        metrics[label] = f"{fit.exponent:.2f} ± {fit.exponent_se:.2f}"
    return metrics


def time_title(settings: CostSettings) -> str:
    return _("Measured time of one layer, C = {width}, {heads}").format(
        width=settings.n_embd, heads=ngettext("{n} head", "{n} heads", settings.n_head)
    )


def times_caption(result: CostResult) -> str:
    """Which lengths the slopes were fitted on, and how the times were taken."""
    settings = result.settings
    fitted = result.fitted_lengths()
    threads = (
        _("one CPU thread")
        if result.threads == 1
        else ngettext("{n} CPU thread", "{n} CPU threads", result.threads)
    )
    return _(
        "Slopes fitted by least squares on (ln n, ln time) for n = {first} to {last} ({count} "
        "lengths; ± one standard error). Median of at least {repeats} runs per point, after a "
        "warm-up run, on {threads}. The grey reference lines pass through the attention time "
        "at n = {first}."
    ).format(
        first=fitted[0],
        last=fitted[-1],
        count=len(fitted),
        repeats=settings.repeats,
        threads=threads,
    )


def backward_caption(result: CostResult) -> str:
    """The slope of forward + backward time (only for a measurement that timed it)."""
    backward = result.slope("attention", backward=True)
    return _("Forward + backward, attention with materialised weights: slope {slope}.").format(
        slope=f"{backward.exponent:.2f} ± {backward.exponent_se:.2f}"
    )


def share_caption(result: CostResult) -> str:
    """Attention's share of the time at the shortest and longest n, and where it passes half."""
    first, last = result.points[0], result.points[-1]
    over_half = half_time_length(result)
    crossover = crossover_length(result.settings.n_embd, result.settings.mlp_width)
    where = (
        _("it first reaches half of the time at n = {n}").format(n=over_half)
        if over_half is not None
        else _("it stays below half of the time at every length measured")
    )
    return _(
        "Attention with materialised weights takes {first_share} of the time at n = {first_n} "
        "and {last_share} at n = {last_n}; {where} (the multiply-add count predicts n = "
        "{crossover})."
    ).format(
        first_share=f"{first.attention_share():.0%}",
        first_n=first.n,
        last_share=f"{last.attention_share():.0%}",
        last_n=last.n,
        where=where,
        crossover=f"{crossover:.0f}",
    )


def memory_caption(result: CostResult) -> str | None:
    """The computed n × n matrix against the measured peaks at the longest n; None if memory
    was not measured."""
    last = result.points[-1]
    if last.peak_bytes is None:
        return None
    peak = last.peak_bytes["attention"]
    return _(
        "At n = {n}: one n × n matrix for all heads is {matrix} MiB (computed); the forward pass "
        "with materialised weights peaked at {peak} MiB (measured, {ratio} matrices' worth), the "
        "fused kernel at {fused} MiB and the MLP at {mlp} MiB (measured)."
    ).format(
        n=last.n,
        matrix=f"{last.score_bytes / MIB:.2f}",
        peak=f"{peak / MIB:.2f}",
        ratio=f"{peak / last.score_bytes:.1f}",
        fused=f"{last.peak_bytes['fused'] / MIB:.2f}",
        mlp=f"{last.peak_bytes['mlp'] / MIB:.2f}",
    )
