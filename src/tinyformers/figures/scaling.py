"""Figures for the scaling lesson: validation loss against parameters and against compute for a
sweep of tiny GPTs, and the measured cost of self-attention as the sequence grows.

Pure functions returning Plotly figures (every title and label html-escaped) or rows for a
table. Log–log axes throughout: a power law y = a · x^b is a straight line of slope b there.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import plotly.graph_objects as go

from tinyformers.course.scaling import (
    KINDS,
    CostResult,
    PowerLawFit,
    SweepPoint,
    SweepSettings,
    compute_frontier,
    embedding_parameters,
    model_label,
    multiply_adds,
    non_embedding_parameters,
    training_flops,
)
from tinyformers.model.config import GPTConfig

FONT_SIZE = 16
TEMPLATE = "plotly_white"
HEIGHT = 520
MODEL_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
)
KIND_NAMES = {
    "attention": "attention (n × n weights)",
    "fused": "attention (fused kernel)",
    "mlp": "MLP",
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
                marker={"size": 14, "color": MODEL_COLORS[i % len(MODEL_COLORS)]},
                hovertemplate=(
                    f"{html.escape(point.label)}<br>N = %{{x:,}}<br>loss %{{y:.4f}}<extra></extra>"
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
                name=html.escape(f"fit: {fit_label(fit)}"),
                line={"color": "black", "dash": "dash", "width": 2},
                hoverinfo="skip",
            )
        )
    return _layout(
        figure,
        title,
        "non-embedding parameters N (log scale)",
        "validation loss, nats per character (log scale)",
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
        color = MODEL_COLORS[i % len(MODEL_COLORS)]
        figure.add_trace(
            go.Scatter(
                x=flops,
                y=losses,
                mode="lines+markers",
                name=html.escape(label),
                line={"color": color, "width": 2},
                marker={"size": [7] * (len(flops) - 1) + [14], "color": color},
                hovertemplate=(
                    f"{html.escape(label)}<br>C = %{{x:.3g}} FLOPs<br>loss %{{y:.4f}}<extra></extra>"
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
                name="frontier: lowest loss at this compute",
                line={"color": "black", "dash": "dot", "width": 3},
                hoverinfo="skip",
            )
        )
    return _layout(
        figure,
        title,
        "training compute C ≈ 6 · N · D, FLOPs (log scale)",
        "validation loss, nats per character (log scale)",
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
                "model": model_label(config),
                "layers": config.n_layer,
                "width": config.n_embd,
                "heads": config.n_head,
                "N (non-embedding)": n,
                "embedding parameters": embedding_parameters(config),
                "D (training tokens)": settings.tokens,
                "D / N": round(settings.tokens / n, 1),
                "C = 6·N·D (FLOPs)": f"{training_flops(n, settings.tokens):.2e}",
            }
        )
    return rows


def sweep_rows(points: Sequence[SweepPoint], fit: PowerLawFit | None) -> list[dict]:
    """One row per trained model, with the fitted law's loss at its size."""
    rows = []
    for point in points:
        row = {
            "model": point.label,
            "N (non-embedding)": point.non_embedding_parameters,
            "all parameters": point.parameters,
            "D / N": round(point.tokens_per_parameter, 1),
            "C (FLOPs)": f"{point.flops:.2e}",
            "validation loss": round(point.val_loss, 4),
        }
        if fit is not None:
            row["fitted loss"] = round(fit.predict(point.non_embedding_parameters), 4)
        row["training time (s)"] = round(point.seconds, 1)
        rows.append(row)
    return rows


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
                name=html.escape(part),
                line={"color": color, "width": 3},
                hovertemplate=f"{html.escape(part)}<br>n = %{{x}}<br>%{{y:.3g}}<extra></extra>",
            )
        )
    return _layout(
        figure,
        title,
        "sequence length n (log scale)",
        "multiply-adds, computed (log scale)",
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
                name=html.escape(f"{KIND_NAMES[kind]}, forward"),
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
                    name=html.escape(f"{KIND_NAMES[kind]}, forward + backward"),
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
                name=f"reference: slope {slope} (∝ n{'²' if slope == 2 else ''})",
                line={"color": "#7f7f7f", "dash": dash, "width": 2},
                hoverinfo="skip",
            )
        )
    figure = _layout(
        figure,
        title,
        "sequence length n (log scale)",
        "median time, ms, measured (log scale)",
        xaxis_type="log",
        yaxis_type="log",
    )
    # many lines: the legend goes under the plot, in two columns, so the plot keeps its width
    figure.update_layout(
        height=HEIGHT + 160,
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
                name=html.escape(KIND_NAMES[kind]),
                line={"color": KIND_COLORS[kind], "width": 3},
                hovertemplate="n = %{x}<br>%{y:.1f}% of the time<extra></extra>",
            )
        )
    return _layout(
        figure,
        title,
        "sequence length n (log scale)",
        "attention ÷ (attention + MLP) time, %",
        xaxis_type="log",
        yaxis_range=[0, 100],
    )


def memory_chart(result: CostResult, title: str) -> go.Figure:
    """Computed sizes of the n × n matrix and of the MLP's hidden activation, and the measured
    peak memory of each forward pass."""
    lengths = result.lengths
    figure = go.Figure()
    computed = {
        "computed: one heads × n × n matrix": [p.score_bytes for p in result.points],
        "computed: MLP hidden activation": [p.mlp_bytes for p in result.points],
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
                    name=html.escape(f"measured peak, {KIND_NAMES[kind]}"),
                    line={"color": KIND_COLORS[kind], "width": 3},
                    hovertemplate="n = %{x}<br>%{y:.3f} MiB<extra></extra>",
                )
            )
    return _layout(
        figure,
        title,
        "sequence length n (log scale)",
        "memory, MiB (log scale)",
        xaxis_type="log",
        yaxis_type="log",
    )


def cost_rows(result: CostResult) -> list[dict]:
    """One row per length; column names say what is measured and what is computed."""
    rows = []
    for p in result.points:
        row = {
            "n": p.n,
            "attention ms (measured)": round(p.seconds["attention"] * 1000, 3),
            "fused ms (measured)": round(p.seconds["fused"] * 1000, 3),
            "MLP ms (measured)": round(p.seconds["mlp"] * 1000, 3),
            "attention share (measured)": f"{p.attention_share():.0%}",
            "n × n matrix MiB (computed)": round(p.score_bytes / MIB, 3),
        }
        if p.peak_bytes is not None:
            row["attention peak MiB (measured)"] = round(p.peak_bytes["attention"] / MIB, 3)
            row["fused peak MiB (measured)"] = round(p.peak_bytes["fused"] / MIB, 3)
            row["MLP peak MiB (measured)"] = round(p.peak_bytes["mlp"] / MIB, 3)
        rows.append(row)
    return rows
