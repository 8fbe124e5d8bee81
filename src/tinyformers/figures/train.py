"""Figures for the training lesson: loss curves, speed, the learning-rate schedule, one
attention snapshot of the probe sentence, head scores over time, and a sample as HTML.

Every string that comes from a tokenizer or a student's text is html-escaped before it reaches
a label, a hover box or an HTML block: Plotly renders a few HTML tags in labels, and samples
are written by a model trained on whatever text was pasted.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go
from torch import Tensor

from tinyformers.course.train import SCORES, Timeline
from tinyformers.training.loop import Progress, TrainSettings

FONT_SIZE = 16
TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#d62728"
EARLIER_COLOR = "#9e9e9e"
HEAD_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
SCHEDULE_POINTS = 400  # points drawn along the planned learning-rate schedule
SCORE_TITLES = {
    "previous": "weight on the previous token",
    "first": "weight on the first token",
    "self": "weight on the token itself",
}


def _layout(fig: go.Figure, title: str, height: int, x_title: str, y_title: str) -> go.Figure:
    fig.update_layout(
        title=html.escape(title, quote=False),
        height=height,
        font_size=FONT_SIZE,
        margin=dict(l=80, r=20, t=70, b=60),
        xaxis_title=x_title,
        yaxis_title=y_title,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
    )
    return fig


def _check_total(total_steps: int) -> None:
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"total_steps must be a positive whole number, got {total_steps!r}")


# ---------------------------------------------------------------------------------------------
# Curves
# ---------------------------------------------------------------------------------------------


def loss_figure(
    history: Sequence[Progress],
    total_steps: int,
    earlier: Sequence[Progress] = (),
    even_guess: float | None = None,
) -> go.Figure:
    """Training loss at every logged step and validation loss at every evaluation, on an
    x axis running to ``total_steps``. ``earlier``: an earlier attempt, drawn in grey;
    ``even_guess``: the loss of guessing evenly among all tokens (ln V), drawn dashed."""
    _check_total(total_steps)
    fig = go.Figure()
    if even_guess is not None:
        fig.add_hline(
            y=even_guess,
            line=dict(color="black", dash="dash"),
            annotation_text="guessing evenly (ln V)",
            annotation_position="top right",
        )
    if earlier:
        fig.add_scatter(
            x=[p.step for p in earlier],
            y=[p.train_loss for p in earlier],
            mode="lines",
            name="training (earlier attempt)",
            line=dict(color=EARLIER_COLOR, dash="dot"),
        )
    fig.add_scatter(
        x=[p.step for p in history],
        y=[p.train_loss for p in history],
        mode="lines",
        name="training batch",
        line=dict(color=TRAIN_COLOR, width=2),
    )
    evaluated = [p for p in history if p.val_loss is not None]
    fig.add_scatter(
        x=[p.step for p in evaluated],
        y=[p.val_loss for p in evaluated],
        mode="lines+markers",
        name="validation",
        line=dict(color=VAL_COLOR, width=3),
        marker=dict(size=9),
    )
    fig.update_xaxes(range=[0, total_steps])
    return _layout(fig, "Loss while training", 420, "step", "loss (nats per token)")


def throughput_figure(history: Sequence[Progress]) -> go.Figure:
    """Tokens per second over the steps logged since the previous log (evaluations excluded)."""
    fig = go.Figure()
    fig.add_scatter(
        x=[p.step for p in history],
        y=[p.tokens_per_s for p in history],
        mode="lines",
        name="tokens per second",
        line=dict(color=TRAIN_COLOR, width=2),
    )
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, "Training speed", 320, "step", "tokens per second")


def learning_rate_figure(settings: TrainSettings, step: int) -> go.Figure:
    """The planned schedule (linear warm-up, then cosine decay) with the steps done so far
    drawn solid and the rest dotted."""
    total = settings.max_steps
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= total:
        raise ValueError(f"step must be between 0 and {total}, got {step!r}")
    stride = max(1, total // SCHEDULE_POINTS)
    corners = {min(settings.warmup_steps, total - 1), min(step, total - 1), total - 1}
    steps = sorted({*range(0, total, stride), *corners})
    done = [s for s in steps if s <= step]
    fig = go.Figure()
    fig.add_scatter(
        x=steps,
        y=[settings.lr_at(s) for s in steps],
        mode="lines",
        name="planned",
        line=dict(color=EARLIER_COLOR, dash="dot", width=2),
    )
    fig.add_scatter(
        x=done,
        y=[settings.lr_at(s) for s in done],
        mode="lines",
        name="so far",
        line=dict(color=TRAIN_COLOR, width=3),
    )
    fig.update_xaxes(range=[0, total])
    fig.update_yaxes(rangemode="tozero", exponentformat="e")
    return _layout(fig, "Learning-rate schedule", 320, "step", "learning rate")


# ---------------------------------------------------------------------------------------------
# The attention timeline
# ---------------------------------------------------------------------------------------------


def token_labels(tokens: Sequence[str]) -> list[str]:
    """Unique, escaped axis labels: position and token, spaces and newlines made visible."""
    return [
        f"{i}: {html.escape(token.replace(' ', '␣').replace(chr(10), '⏎'), quote=False)}"
        for i, token in enumerate(tokens)
    ]


def attention_snapshot_figure(weights: Tensor, tokens: Sequence[str], title: str) -> go.Figure:
    """One head's (query × key) attention on the probe: queries down, keys across, 0 to 1."""
    n = len(tokens)
    if weights.dim() != 2 or tuple(weights.shape) != (n, n):
        raise ValueError(f"expected a ({n}, {n}) matrix for {n} tokens, got {tuple(weights.shape)}")
    labels = token_labels(tokens)
    fig = go.Figure(
        go.Heatmap(
            z=weights.detach().float().numpy(),
            x=labels,
            y=labels,
            zmin=0.0,
            zmax=1.0,
            colorscale="Blues",
            colorbar=dict(title="weight"),
            hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", tickfont_size=13)
    fig.update_xaxes(tickangle=-60, tickfont_size=13)
    return _layout(fig, title, 620, "key (attended to)", "query (attending)")


def head_name(layer: int, head: int) -> str:
    return f"L{layer} H{head}"


def head_score_figure(
    timeline: Timeline,
    score: str,
    selected: tuple[int, int] | None = None,
    uniform: float | None = None,
    total_steps: int | None = None,
) -> go.Figure:
    """One line per head (``L1 H2``: layer 1, head 2): ``score`` at every snapshot. The
    ``selected`` head is drawn thick; ``uniform`` (the score of evenly spread attention) is
    drawn as a dashed reference; the x axis runs to ``total_steps`` when given."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}; got {score!r}")
    values = timeline.scores[score]  # (n_snapshots, n_layer, n_head)
    steps = list(timeline.steps)
    fig = go.Figure()
    for layer in range(timeline.n_layer):
        for head in range(timeline.n_head):
            chosen = selected == (layer, head)
            color = HEAD_COLORS[(layer * timeline.n_head + head) % len(HEAD_COLORS)]
            fig.add_scatter(
                x=steps,
                y=values[:, layer, head].tolist(),
                mode="lines+markers",
                name=head_name(layer, head),
                line=dict(color=color, width=5 if chosen else 1.5),
                marker=dict(size=9 if chosen else 5),
                opacity=1.0 if chosen or selected is None else 0.55,
            )
    if uniform is not None:
        fig.add_hline(
            y=uniform,
            line=dict(color="black", dash="dash"),
            annotation_text="evenly spread attention",
            annotation_position="top right",
        )
    fig.update_yaxes(range=[0, 1])
    if total_steps is not None:
        _check_total(total_steps)
        fig.update_xaxes(range=[0, total_steps])
    _layout(fig, f"Each head's {SCORE_TITLES[score]}", 520, "step", "mean weight")
    fig.update_layout(
        legend=dict(orientation="h", x=0, xanchor="left", y=-0.25, yanchor="top", font_size=13),
        margin=dict(b=130),
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Samples
# ---------------------------------------------------------------------------------------------


def sample_html(sample: str, heading: str, prompt: str | None = None) -> str:
    """A model's sample as a block of escaped, pre-wrapped text; ``prompt`` (what the model
    was given) is shown in bold before it."""
    shown_prompt = f"<b>{html.escape(prompt)}</b>" if prompt else ""
    return (
        '<div style="font-size:18px;line-height:1.5">'
        f'<div style="color:#555;margin-bottom:4px">{html.escape(heading)}</div>'
        '<div style="white-space:pre-wrap;font-family:monospace;background:#f6f6f6;'
        f'padding:10px 14px;border-radius:6px">{shown_prompt}{html.escape(sample)}</div>'
        "</div>"
    )
