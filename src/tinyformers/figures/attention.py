"""Figures for the lesson on self-attention, step by step.

``step_figures`` draws one step of ``stepwise.HeadSteps`` as heatmaps, one figure per panel
(what goes in, what comes out), which a page shows side by side in columns that stack on a
narrow screen; the row of the query under focus is framed in every panel whose rows are tokens.
``attention_bars`` shows one query's attention weights; ``scaling_figure`` and ``draw_figure``
show the √d experiment. Every token string is html-escaped before it reaches a label or a hover
box, because Plotly renders a few HTML tags in those.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import Tensor

from tinyformers.course.attention import HeadSteps, ScalingStats, softmax_entropy
from tinyformers.figures.common import TOP_COLORBAR, number
from tinyformers.i18n import _, ngettext
from tinyformers.text.display import plain

STEPS = ("x", "q", "k", "v", "scores", "scale", "softmax", "output")
STEP_NAMES = {
    "x": "the input X",
    "q": "queries Q = X W_Q",
    "k": "keys K = X W_K",
    "v": "values V = X W_V",
    "scores": "scores Q Kᵀ",
    "scale": "scale by √d_k (and mask)",
    "softmax": "softmax, row by row",
    "output": "weighted sum of the values",
}
FONT_SIZE = 16
PLOT_WIDTH = 640  # pixels a step's panels are assumed to get; decides whether numbers fit
MIN_CELL_WIDTH = 34  # pixels a cell needs for a number such as -12.34
ROW_LABEL_WIDTH = 70  # pixels of a panel's width its token row labels take
MIN_CELL_HEIGHT = 18
MIN_LABELLED_COLUMN = 22  # pixels a column needs for a rotated token label
MIN_NUMBER_COLUMN = 24  # pixels between two position numbers on an axis
MAX_PANEL_HEIGHT = 450  # px: a step's panels and its controls fit a projector's first screen
FOCUS_COLOR = "#111111"
MASKED_COLOR = "#bbbbbb"
UNSCALED_COLOR = "#d62728"
SCALED_COLOR = "#1f77b4"
MINUS_INFINITY = "−∞"


def step_name(step: str) -> str:
    """A step's name in the current language."""
    names = {
        "x": _("the input X"),
        "q": _("queries Q = X W_Q"),
        "k": _("keys K = X W_K"),
        "v": _("values V = X W_V"),
        "scores": _("scores Q Kᵀ"),
        "scale": _("scale by √d_k (and mask)"),
        "softmax": _("softmax, row by row"),
        "output": _("weighted sum of the values"),
    }
    return names[step]


def token_labels(tokens: Sequence[str]) -> list[str]:
    """'position: token' for every token, escaped for Plotly."""
    return [f"{i}: {html.escape(repr(token), quote=False)}" for i, token in enumerate(tokens)]


def check_step(step: str) -> int:
    """The number (1-based) of a step name; a ValueError names the known steps."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; the steps are {', '.join(STEPS)}")
    return STEPS.index(step) + 1


def check_focus(steps: HeadSteps, focus: int) -> None:
    if not 0 <= focus < steps.n_tokens:
        raise ValueError(f"the query position must be from 0 to {steps.n_tokens - 1}, got {focus}")


# ---------------------------------------------------------------------------------------------
# The panels of each step
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    """One heatmap: a matrix, its axis labels (None = numbered dimensions), how to colour it,
    and which row (if any) to frame."""

    title: str
    matrix: Tensor  # (rows, columns)
    row_labels: list[str] | None = None
    column_labels: list[str] | None = None
    focus_row: int | None = None
    probabilities: bool = False  # weights in [0, 1] on a one-sided scale; else zero-centred
    masked: Tensor | None = None  # (rows, columns) bool: True = hidden by the mask (blank)


def step_panels(steps: HeadSteps, step: str, focus: int) -> list[Panel]:
    """What one step takes in and what it gives out, as heatmap panels."""
    check_step(step)
    check_focus(steps, focus)
    labels = token_labels(steps.tokens)
    hidden = ~steps.allowed()

    def by_token(title: str, matrix: Tensor, **extra) -> Panel:
        return Panel(title, matrix, labels, None, focus, **extra)

    x = by_token(f"X ({steps.n_tokens} × {steps.x.size(1)})", steps.x)
    if step == "x":
        return [x]
    if step in ("q", "k", "v"):
        letter = step.upper()
        weight = {"q": steps.w_q, "k": steps.w_k, "v": steps.w_v}[step]
        result = {"q": steps.q, "k": steps.k, "v": steps.v}[step]
        w_title = f"W<sub>{letter}</sub> ({weight.size(0)} × {weight.size(1)})"
        return [
            x,
            Panel(w_title, weight),
            by_token(f"= {letter} ({steps.n_tokens} × {steps.d_k})", result),
        ]
    scores = by_token("Q Kᵀ", steps.scores)
    scaled = by_token(f"Q Kᵀ / √{steps.d_k}", steps.scaled, masked=hidden)
    weights = by_token(_("weights"), steps.weights, probabilities=True)
    if step == "scores":
        keys_t = Panel(f"Kᵀ ({steps.d_k} × {steps.n_tokens})", steps.k.T, None, labels)
        return [by_token("Q", steps.q), keys_t, _with_columns(scores, labels)]
    if step == "scale":
        return [_with_columns(scores, labels), _with_columns(scaled, labels)]
    if step == "softmax":
        return [_with_columns(scaled, labels), _with_columns(weights, labels)]
    values = Panel(f"V ({steps.n_tokens} × {steps.d_k})", steps.v, labels)
    output = by_token(
        _("= output ({rows} × {columns})").format(rows=steps.n_tokens, columns=steps.d_k),
        steps.output,
    )
    return [_with_columns(weights, labels), values, output]


def _with_columns(panel: Panel, labels: list[str]) -> Panel:
    return Panel(
        panel.title,
        panel.matrix,
        panel.row_labels,
        labels,
        panel.focus_row,
        panel.probabilities,
        panel.masked,
    )


# ---------------------------------------------------------------------------------------------
# Heatmaps
# ---------------------------------------------------------------------------------------------


def _format(value: float) -> str:
    """Two decimals (none from 100 on); a value that rounds to zero is shown as 0.00, not -0.00."""
    if round(value, 2) == 0:
        value = 0.0
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def _cell_texts(panel: Panel) -> list[list[str]]:
    """The number in each cell as text, or −∞ where the mask hides it."""
    values = panel.matrix.detach().double().tolist()
    masked = panel.masked.tolist() if panel.masked is not None else None
    return [
        [MINUS_INFINITY if masked and masked[r][c] else _format(v) for c, v in enumerate(row)]
        for r, row in enumerate(values)
    ]


def _hover_texts(panel: Panel, cells: list[list[str]]) -> list[list[str]]:
    rows = panel.row_labels or [_("row {r}").format(r=r) for r in range(len(cells))]
    columns = panel.column_labels or [_("dimension {c}").format(c=c) for c in range(len(cells[0]))]
    return [
        [f"{rows[r]}<br>{columns[c]}<br>{cell}" for c, cell in enumerate(row)]
        for r, row in enumerate(cells)
    ]


def _shown_values(panel: Panel) -> Tensor:
    """The matrix with masked cells as NaN, which Plotly leaves blank."""
    z = panel.matrix.detach().double().clone()
    if panel.masked is not None:
        z[panel.masked] = math.nan
    return z


def panel_weight(panel: Panel, named_rows: bool = False) -> float:
    """A panel's share of the width: its number of columns, growing slowly beyond 16; columns
    labelled with tokens count more, and so does a panel whose rows are named by tokens, to
    leave room for their labels."""
    columns = panel.matrix.size(1)
    weight = max(columns, 6) if columns <= 16 else 16 + (columns - 16) / 8
    weight = weight * 2 if panel.column_labels is not None else weight
    return weight + 4 if named_rows else weight


def named_rows(panels: Sequence[Panel]) -> list[bool]:
    """Which panels name their token rows: the first panel with token rows; those right of it
    number theirs."""
    first = next((i for i, p in enumerate(panels) if p.row_labels is not None), None)
    return [i == first for i in range(len(panels))]


def panel_height(panels: Sequence[Panel]) -> int:
    """One height for every panel of a step, so their rows line up: room for the rows and the
    labels, between 320 and MAX_PANEL_HEIGHT pixels."""
    n_rows = max(p.matrix.size(0) for p in panels)
    tokens = any(p.column_labels for p in panels)
    return min(MAX_PANEL_HEIGHT, max(320, 110 + 22 * n_rows + (70 if tokens else 0)))


def _heatmap(panel: Panel, cell_size: tuple[float, float]) -> go.Heatmap:
    """A heatmap of the panel; the numbers are written into the cells when they fit."""
    z = _shown_values(panel)
    cells = _cell_texts(panel)
    small = cell_size[0] >= MIN_CELL_WIDTH and cell_size[1] >= MIN_CELL_HEIGHT
    finite = z[torch.isfinite(z)]
    if panel.probabilities:
        scale = dict(colorscale="Blues", zmin=0.0, zmax=1.0)
    else:
        limit = finite.abs().max().item() if finite.numel() else 1.0
        scale = dict(colorscale="RdBu_r", zmid=0.0, zmin=-(limit or 1.0), zmax=limit or 1.0)
    return go.Heatmap(
        z=z.numpy(),
        text=cells,
        texttemplate="%{text}" if small else None,
        textfont=dict(size=12),
        customdata=_hover_texts(panel, cells),
        hovertemplate="%{customdata}<extra></extra>",
        colorbar=TOP_COLORBAR,  # under the title, so the panels beside it keep their width
        **scale,
    )


def _label_axes(fig: go.Figure, panel: Panel, cell_width: float, named: bool) -> None:
    """Token labels as ticks (positions only on a crowded x axis, or on the rows of a panel
    that does not name them), or a 'dimension' title."""
    if panel.row_labels is not None:
        rows = list(range(len(panel.row_labels)))
        names = panel.row_labels if named else [str(r) for r in rows]
        fig.update_yaxes(tickvals=rows, ticktext=names)
    else:  # numbered dimensions: whole numbers only
        fig.update_yaxes(tick0=0, dtick=math.ceil(panel.matrix.size(0) / 8))
    labels = panel.column_labels
    if labels is None:
        fig.update_xaxes(title=_("dimension"))
    elif cell_width < MIN_LABELLED_COLUMN:  # too narrow for tokens: positions
        fig.update_xaxes(title=_("key position"), dtick=math.ceil(MIN_NUMBER_COLUMN / cell_width))
    else:
        fig.update_xaxes(tickvals=list(range(len(labels))), ticktext=labels, tickangle=-60)


def panel_figure(
    panel: Panel, height: int, share: float, step: str = "", named: bool = True
) -> go.Figure:
    """One heatmap with its own colour scale, ``share`` of the width the panels of a step are
    assumed to get together; the focus row is framed, and its token rows are labelled by
    token if ``named``, else by position. ``step`` goes into the figure's meta, so the panels
    of a step can be found."""
    n_rows, n_columns = panel.matrix.shape
    tokens = panel.column_labels is not None
    labels = ROW_LABEL_WIDTH if named and panel.row_labels is not None else 25
    cell_width = max(PLOT_WIDTH * share - labels, 1) / n_columns
    cell_height = (height - 130 - (70 if tokens else 0)) / n_rows
    fig = go.Figure(_heatmap(panel, (cell_width, cell_height)))
    _label_axes(fig, panel, cell_width, named)
    if panel.focus_row is not None:
        fig.add_shape(
            type="rect",
            x0=-0.5,
            x1=n_columns - 0.5,
            y0=panel.focus_row - 0.5,
            y1=panel.focus_row + 0.5,
            line=dict(color=FOCUS_COLOR, width=3),
        )
    fig.update_yaxes(autorange="reversed", automargin=True, tickfont_size=13)
    fig.update_xaxes(automargin=True, tickfont_size=13)
    fig.update_layout(
        title=dict(
            text=panel.title, x=0.5, xanchor="center", y=1, yanchor="top", pad_t=24, font_size=14
        ),
        height=height,
        font_size=FONT_SIZE,
        margin=dict(l=10, r=10, t=80, b=40),
        meta=dict(step=step),
    )
    return fig


def step_title(step: str, source: str = "") -> str:
    """'Step 3 of 8: keys K = X W_K · gpt-stories, layer 0, head 1' (``source`` is optional)."""
    number = check_step(step)
    suffix = f" · {source}" if source else ""
    title = _("Step {number} of {count}: {name}").format(
        number=number, count=len(STEPS), name=step_name(step)
    )
    return title + suffix


def step_figures(steps: HeadSteps, step: str, focus: int) -> tuple[list[float], list[go.Figure]]:
    """One step of the head's computation: a figure per panel and the relative widths of the
    columns that show them side by side (one under the other on a narrow screen)."""
    panels = step_panels(steps, step, focus)
    height = panel_height(panels)
    named = named_rows(panels)
    widths = [panel_weight(p, n) for p, n in zip(panels, named, strict=True)]
    shares = [w / sum(widths) for w in widths]
    figures = [
        panel_figure(p, height, share, step, n)
        for p, share, n in zip(panels, shares, named, strict=True)
    ]
    return widths, figures


# ---------------------------------------------------------------------------------------------
# One query's attention
# ---------------------------------------------------------------------------------------------


def attention_bars(steps: HeadSteps, focus: int) -> go.Figure:
    """The attention weights of one query over every key, as bars; keys the mask hides are
    grey and labelled 'masked'."""
    check_focus(steps, focus)
    labels = token_labels(steps.tokens)
    weights = steps.weights[focus].tolist()
    allowed = steps.allowed()[focus].tolist()
    fig = go.Figure(
        go.Bar(
            x=list(range(steps.n_tokens)),
            y=weights,
            marker_color=[SCALED_COLOR if a else MASKED_COLOR for a in allowed],
            text=[f"{w:.2f}" if a else _("masked") for w, a in zip(weights, allowed, strict=True)],
            textposition="outside",
            customdata=labels,
            hovertemplate=_("key %{customdata}<br>weight %{y:.4f}") + "<extra></extra>",
        )
    )
    fig.update_xaxes(
        title=_("key token"), tickvals=list(range(steps.n_tokens)), ticktext=labels, tickangle=-45
    )
    fig.update_yaxes(title=_("attention weight"), range=[0, 1.12])
    fig.update_layout(
        title=_("Where {token} looks").format(token=labels[focus]),
        height=420,
        font_size=FONT_SIZE,
        margin=dict(l=60, r=20, t=60, b=110),
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Why divide by √d_k
# ---------------------------------------------------------------------------------------------


def _line(x, y, name: str, color: str, show: bool, dash: str = "solid") -> go.Scatter:
    return go.Scatter(
        x=list(x),
        y=list(y),
        name=name,
        legendgroup=name,
        showlegend=show,
        mode="lines+markers",
        line=dict(color=color, dash=dash, width=3),
        marker=dict(size=8),
        hovertemplate=f"{name}<br>d = %{{x}}<br>%{{y:.4g}}<extra></extra>",
    )


def scaling_figure(stats: ScalingStats) -> go.Figure:
    """Three panels against the dimension d: typical size of the scores, softmax entropy, and
    the largest softmax weight, for q·k (red) and q·k / √d (blue)."""
    dims = stats.dims
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=[
            _("Typical |score| (mean)"),
            _("Entropy of the softmax (nats)"),
            _("Largest softmax weight"),
        ],
        horizontal_spacing=0.08,
    )
    curves = [
        (stats.unscaled, _("q·k (unscaled)"), UNSCALED_COLOR),
        (stats.scaled, _("q·k / √d (scaled)"), SCALED_COLOR),
    ]
    for values, name, color in curves:
        fig.add_trace(_line(dims, values.mean_abs, name, color, True), row=1, col=1)
        fig.add_trace(_line(dims, values.entropy, name, color, False), row=1, col=2)
        fig.add_trace(_line(dims, values.max_weight, name, color, False), row=1, col=3)
    uniform = math.log(stats.n_keys)
    references = [
        (
            2,
            [uniform] * len(dims),
            _("uniform over {keys} (log {n})").format(
                keys=ngettext("{n} key", "{n} keys", stats.n_keys), n=stats.n_keys
            ),
        ),
        (3, [1.0] * len(dims), _("all weight on one key")),
    ]
    for column, y, name in references:
        fig.add_trace(_line(dims, y, name, "#7f7f7f", True, dash="dot"), row=1, col=column)
        fig.data[-1].mode = "lines"
    fig.update_xaxes(type="log", title=_("dimension d"), tickvals=list(dims))
    sizes = [v for values, _, _ in curves for v in values.mean_abs if v > 0]
    ticks = [
        2.0**p
        for p in range(-6, 8)
        if min(sizes, default=1) / 2 <= 2.0**p <= 2 * max(sizes, default=1)
    ]
    fig.update_yaxes(type="log", tickvals=ticks, row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_yaxes(range=[0, 1.05], row=1, col=3)
    fig.update_layout(
        title=_(
            "Random q and k: {samples} queries × {keys} keys per dimension (seed {seed})"
        ).format(samples=stats.n_samples, keys=stats.n_keys, seed=stats.seed),
        height=460,
        font_size=FONT_SIZE,
        legend=dict(orientation="h", y=-0.25),
        margin=dict(l=60, r=20, t=90, b=120),
    )
    fig.update_annotations(font_size=FONT_SIZE)
    return fig


def draw_figure(scores: Tensor, d: int) -> go.Figure:
    """One random query against its keys: softmax of q·k and of q·k / √d, side by side."""
    if scores.dim() != 1 or scores.numel() < 2:
        raise ValueError("one draw needs a vector of at least two scores")
    keys = list(range(scores.numel()))
    panels = {
        f"softmax(q·k), d = {d}": (torch.softmax(scores.double(), -1), UNSCALED_COLOR),
        f"softmax(q·k / √{d})": (torch.softmax(scores.double() / math.sqrt(d), -1), SCALED_COLOR),
    }
    fig = make_subplots(rows=1, cols=2, subplot_titles=list(panels), shared_yaxes=True)
    for column, (weights, color) in enumerate(panels.values(), start=1):
        fig.add_trace(
            go.Bar(
                x=keys,
                y=weights.tolist(),
                marker_color=color,
                showlegend=False,
                hovertemplate=_("key %{x}<br>weight %{y:.4f}") + "<extra></extra>",
            ),
            row=1,
            col=column,
        )
        fig.update_xaxes(title=_("key"), row=1, col=column)
    fig.update_yaxes(title=_("weight"), range=[0, 1.05], row=1, col=1)
    fig.update_layout(
        title=_("One random query against {keys}, d = {d}").format(
            keys=ngettext("{n} key", "{n} keys", len(keys)), d=d
        ),
        height=380,
        font_size=FONT_SIZE,
        margin=dict(l=60, r=20, t=90, b=60),
    )
    fig.update_annotations(font_size=FONT_SIZE)
    return fig


# ---------------------------------------------------------------------------------------------
# Captions: every number computed from the matrices shown
# ---------------------------------------------------------------------------------------------


def row_label(steps: HeadSteps, i: int) -> str:
    """'position ('token')', how captions name a row or a key (the token escaped for Markdown)."""
    return f"{i} ({plain(repr(steps.tokens[i]))})"


def input_caption(steps: HeadSteps, focus: int, placement: str | None, layer: int) -> str:
    """What X is and the statistics of the focus row. ``placement`` is the block's LayerNorm
    placement ('pre' or 'post'), or None for the toy head."""
    size = _("{tokens} × {numbers}").format(
        tokens=ngettext("{n} token", "{n} tokens", steps.n_tokens),
        numbers=ngettext("{n} number", "{n} numbers", steps.x.size(1)),
    )
    row = steps.x[focus]
    focus_text = " " + _("Row {row}: mean {mean}, standard deviation {std}.").format(
        row=row_label(steps, focus),
        mean=number(row.mean(), 3),
        std=number(row.std(unbiased=False), 3),
    )
    if placement is None:
        return _("{size}: one random row per distinct word.").format(size=size) + focus_text
    if placement == "pre":
        where = _("the output of ln_1 in layer {layer} (pre-LN)").format(layer=layer)
    else:
        where = _("the input of block {layer} (post-LN)").format(layer=layer)
    return f"{size}: {where}.{focus_text}"


def projection_caption(steps: HeadSteps, step: str, focus: int) -> str:
    """The projection's size and bias, and the length of the focus row of Q, K or V."""
    letter = step.upper()
    bias = {"q": steps.b_q, "k": steps.b_k, "v": steps.b_v}[step]
    result = {"q": steps.q, "k": steps.k, "v": steps.v}[step]
    largest_bias = bias.abs().max().item()
    bias_text = (
        _("Bias b_{letter}: largest |entry| {value}.").format(
            letter=letter, value=number(largest_bias, 3)
        )
        if largest_bias
        else _("No bias.")
    )
    text = f"W_{letter}: {steps.x.size(1)} × {steps.d_k}. {bias_text} " + _(
        "Row {row} of {letter} has length {length}."
    ).format(row=row_label(steps, focus), letter=letter, length=number(result[focus].norm(), 3))
    if steps.rotary and step in ("q", "k"):
        text += " " + _("{letter} is shown after the rotary position rotation.").format(
            letter=letter
        )
    return text


def scores_caption(steps: HeadSteps, focus: int) -> str:
    """The focus row's largest score it may use, written out as a dot product."""
    row = steps.scores[focus]
    allowed = steps.allowed()[focus]
    visible = row.masked_fill(~allowed, -math.inf)
    best = int(visible.argmax())
    product = (steps.q[focus] * steps.k[best]).sum()
    low, high = number(steps.scores.min(), 2), number(steps.scores.max(), 2)
    return _(
        "Row {row}: the largest score it may use is {score}, with {key}; written out, q·k = sum "
        "of {products} = {product}. Scores range from {low} to {high}."
    ).format(
        row=row_label(steps, focus),
        score=number(row[best], 3),
        key=row_label(steps, best),
        products=ngettext("{n} product", "{n} products", steps.d_k),
        product=number(product, 3),
        low=low,
        high=high,
    )


def scale_caption(steps: HeadSteps) -> str:
    """√d_k and how many entries the mask hides."""
    text = f"√d_k = √{steps.d_k} = {number(steps.scale, 3)}. "
    hidden = int((~steps.allowed()).sum())
    if steps.mask is None:
        return text + _("No mask: every token may look at every token.")
    return text + _(
        "The causal mask hides {hidden} of {total} entries (key after query): they become −∞ "
        "and are drawn blank."
    ).format(hidden=hidden, total=steps.n_tokens**2)


def softmax_caption(steps: HeadSteps, focus: int, returned: Tensor | None, source: str) -> str:
    """The focus row's sum and largest weight; with ``returned`` (the model's own weights for
    this head), how far they are from the weights computed here."""
    row = steps.weights[focus]
    best = int(row.argmax())
    text = _("Row {row} sums to {total}; its largest weight is {weight}, on {key}.").format(
        row=row_label(steps, focus),
        total=number(row.sum(), 6),
        weight=number(row[best], 3),
        key=row_label(steps, best),
    )
    if returned is not None:
        difference = (steps.weights - returned).abs().max().item()
        text += " " + _(
            "The model's own attention weights ({source}) differ from this matrix by at most "
            "{difference}."
        ).format(source=source, difference=f"{difference:.1e}")
    return text


def output_caption(steps: HeadSteps, focus: int) -> str:
    """The focus row of the output as its two largest terms of the weighted sum."""
    row = steps.weights[focus]
    top = row.topk(min(2, steps.n_tokens))
    parts = " + ".join(
        f"{number(w, 2)} × v[{row_label(steps, int(j))}]"
        for w, j in zip(top.values, top.indices, strict=True)
    )
    more = " + …" if steps.n_tokens > 2 else ""
    return _("Output row {row} = {sum}; it has {numbers} and length {length}.").format(
        row=row_label(steps, focus),
        sum=parts + more,
        numbers=ngettext("{n} number", "{n} numbers", steps.d_k),
        length=number(steps.output[focus].norm(), 3),
    )


def step_caption(
    steps: HeadSteps,
    step: str,
    focus: int,
    placement: str | None,
    layer: int,
    returned: Tensor | None,
    source: str,
) -> str:
    """The computed caption under the figure of ``step`` (see ``input_caption`` for
    ``placement`` and ``softmax_caption`` for ``returned``)."""
    check_step(step)
    check_focus(steps, focus)
    if step == "x":
        return input_caption(steps, focus, placement, layer)
    if step in ("q", "k", "v"):
        return projection_caption(steps, step, focus)
    if step == "scores":
        return scores_caption(steps, focus)
    if step == "scale":
        return scale_caption(steps)
    if step == "softmax":
        return softmax_caption(steps, focus, returned, source)
    return output_caption(steps, focus)


def query_caption(steps: HeadSteps, focus: int, source: str) -> str:
    """How many keys the focus row may see and the entropy of its weights against uniform."""
    check_focus(steps, focus)
    visible = int(steps.allowed()[focus].sum())
    entropy = softmax_entropy(steps.weights[focus]).item()
    return _(
        "{source}. Row {row} may see {visible} of {tokens}. Entropy of its weights: {entropy} "
        "nats (uniform over the keys it may see: {uniform})."
    ).format(
        source=source,
        row=row_label(steps, focus),
        visible=visible,
        tokens=ngettext("{n} token", "{n} tokens", steps.n_tokens),
        entropy=number(entropy, 3),
        uniform=number(math.log(visible), 3),
    )


def spread_caption(steps: HeadSteps, focus: int, source: str) -> str:
    """The spread of the head's scores before and after the division by √d_k, and the focus
    row's largest weight with and without it."""
    allowed = steps.allowed()
    raw = steps.scores[allowed]
    unscaled_row = steps.scores[focus].masked_fill(~allowed[focus], -math.inf)
    without = torch.softmax(unscaled_row, dim=-1).max()
    return _(
        "{source}: the {count} scores the mask lets through have standard deviation {before} "
        "before the division and {after} after it (÷ {scale}). The largest weight of row {row} "
        "is {weight}; without the division it would be {without}."
    ).format(
        source=source,
        count=raw.numel(),
        before=number(raw.std(unbiased=False), 3),
        after=number((raw / steps.scale).std(unbiased=False), 3),
        scale=number(steps.scale, 3),
        row=row_label(steps, focus),
        weight=number(steps.weights[focus].max(), 3),
        without=number(without, 3),
    )


def scaling_caption(stats: ScalingStats) -> str:
    """The experiment at its largest dimension: spread, largest weight and entropy."""
    last = len(stats.dims) - 1
    d = stats.dims[last]
    unscaled, scaled = stats.unscaled, stats.scaled
    return _(
        "At d = {d}: unscaled scores have standard deviation {unscaled_std} (√d = {root}), "
        "scaled ones {scaled_std}. Mean largest weight {unscaled_max} unscaled, {scaled_max} "
        "scaled; mean entropy {unscaled_entropy} and {scaled_entropy} nats (uniform: {uniform})."
    ).format(
        d=d,
        unscaled_std=number(unscaled.std[last], 3),
        root=number(math.sqrt(d), 3),
        scaled_std=number(scaled.std[last], 3),
        unscaled_max=number(unscaled.max_weight[last], 3),
        scaled_max=number(scaled.max_weight[last], 3),
        unscaled_entropy=number(unscaled.entropy[last], 3),
        scaled_entropy=number(scaled.entropy[last], 3),
        uniform=number(math.log(stats.n_keys), 3),
    )


def stats_table(stats: ScalingStats) -> dict[str, list]:
    """The experiment's numbers per dimension, three decimals, one column per statistic."""
    columns = {
        "mean |q·k|": stats.unscaled.mean_abs,
        "std q·k": stats.unscaled.std,
        _("entropy (unscaled)"): stats.unscaled.entropy,
        _("max weight (unscaled)"): stats.unscaled.max_weight,
        "mean |q·k|/√d": stats.scaled.mean_abs,
        "std q·k/√d": stats.scaled.std,
        _("entropy (scaled)"): stats.scaled.entropy,
        _("max weight (scaled)"): stats.scaled.max_weight,
    }
    return {"d": list(stats.dims)} | {
        name: [round(value, 3) for value in values] for name, values in columns.items()
    }
