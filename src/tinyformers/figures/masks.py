"""Figures for the lesson on attention masks.

``mask_figures`` draws one ``mask_views.MaskView`` as three heatmaps, one figure each, which a
page shows side by side in columns that stack on a narrow screen: the mask (0 where a query may
look, −∞ where it may not), the scores with −∞ in the masked cells, and the softmax weights,
whose masked cells are exactly 0. Masked cells are grey everywhere.
``padded_batch_figure`` draws the attention of both sequences of a padded batch, and
``loss_curves_figure`` the training losses of the leakage experiment.

Every token string is html-escaped before it reaches a label or a hover box, because Plotly
renders a few HTML tags in those.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
import torch
from torch import Tensor

from tinyformers.course.masks import PAD_TOKEN, MaskView, PaddedBatch
from tinyformers.figures.common import TOP_COLORBAR
from tinyformers.i18n import _, ngettext
from tinyformers.training.experiments import CAUSAL, LEAKY, ExperimentResult
from tinyformers.training.loop import Progress

FONT_SIZE = 16
CELL_FONT_SIZE = 12
MASKED_COLOR = "#c8c8c8"
ALLOWED_COLOR = "#ffffff"
MINUS_INFINITY = "−∞"
PLOT_WIDTH = 1050  # pixels a figure is assumed to get; decides what fits in a cell
MIN_NUMBER_WIDTH = 30  # pixels a cell needs for a number such as -1.23
MIN_MARK_WIDTH = 18  # pixels a cell needs for −∞ or 0
PANELS_WIDTH = 640  # pixels the three panels of a mask are assumed to get together
MAX_PANEL_HEIGHT = 450  # px: a mask's panels and the inputs above them fit a first screen
VARIANT_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
KIND_NAMES = {
    "causal": "Causal",
    "padding": "Padding",
    "prefix": "Prefix-LM",
    "cross": "Cross-attention",
}


def kind_name(kind: str) -> str:
    """A kind of mask's name in the current language."""
    names = {
        "causal": _("Causal"),
        "padding": _("Padding"),
        "prefix": _("Prefix-LM"),
        "cross": _("Cross-attention"),
    }
    return names[kind]


def variant_name(label: str) -> str:
    """A model of the leakage experiment named in the current language."""
    names = {CAUSAL: _("with the causal mask"), LEAKY: _("without the mask (leaks the future)")}
    return names.get(label, label)


def token_labels(tokens: Sequence[str]) -> list[str]:
    """'position: token' for every token (a space shown as ␣), escaped for Plotly. The position
    keeps two equal tokens apart on an axis."""
    shown = (t.replace(" ", "␣").replace("\n", "⏎") for t in tokens)
    return [f"{i}: {html.escape(t, quote=False)}" for i, t in enumerate(shown)]


def _format(value: float) -> str:
    """Two decimals (none from 100 on); never -0.00."""
    if round(value, 2) == 0:
        value = 0.0
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def _cell_width(n_columns: int, n_panels: int) -> float:
    return PLOT_WIDTH * 0.8 / n_panels / max(n_columns, 1)


def _height(n_rows: int) -> int:
    return min(560, max(460, 200 + 38 * n_rows))


# ---------------------------------------------------------------------------------------------
# One heatmap panel
# ---------------------------------------------------------------------------------------------


def _texts(
    matrix: Tensor, masked: Tensor, masked_text: str, numbers: bool, marks: bool
) -> list[list[str]]:
    """What each cell says: its number where it fits, ``masked_text`` in masked cells."""
    values, hidden = matrix.double().tolist(), masked.tolist()
    return [
        [
            (masked_text if marks else "") if hidden[r][c] else (_format(v) if numbers else "")
            for c, v in enumerate(row)
        ]
        for r, row in enumerate(values)
    ]


def _hovers(
    matrix: Tensor, masked: Tensor, rows: list[str], columns: list[str], what: str, masked_what: str
) -> list[list[str]]:
    values, hidden = matrix.double().tolist(), masked.tolist()
    return [
        [
            _("query {row}<br>key {column}").format(row=rows[r], column=columns[c])
            + "<br>"
            + (masked_what.format(value=_format(v)) if hidden[r][c] else f"{what} {_format(v)}")
            for c, v in enumerate(row)
        ]
        for r, row in enumerate(values)
    ]


def _panel(
    shown: Tensor,
    masked: Tensor,
    texts: list[list[str]],
    hovers: list[list[str]],
    scale: dict,
    colorbar_x: float | None,
) -> dict:
    """A heatmap whose masked cells are left empty (NaN), so the grey background shows."""
    z = shown.double().clone()
    z[masked] = math.nan
    return dict(
        z=z.numpy(),
        text=texts,
        texttemplate="%{text}",
        textfont=dict(size=CELL_FONT_SIZE),
        customdata=hovers,
        hovertemplate="%{customdata}<extra></extra>",
        showscale=colorbar_x is not None,
        colorbar=dict(x=colorbar_x or 1.0, thickness=12, len=0.8, xpad=4),
        xgap=1,
        ygap=1,
        **scale,
    )


def _mask_panel(view: MaskView, rows: list[str], columns: list[str], cell: float) -> dict:
    """The mask as the matrix added to the scores: 0 where a query may look, −∞ elsewhere."""
    masked = ~view.mask
    zeros = torch.zeros(view.mask.shape)
    fits = cell >= MIN_MARK_WIDTH
    texts = [
        [(MINUS_INFINITY if m else "0") if fits else "" for m in row] for row in masked.tolist()
    ]
    hovers = _hovers(zeros, masked, rows, columns, _("may look: adds"), _("masked: adds −∞"))
    scale = dict(colorscale=[[0, ALLOWED_COLOR], [1, ALLOWED_COLOR]], zmin=0, zmax=1)
    return _panel(zeros, masked, texts, hovers, scale, None)


def _scores_panel(
    view: MaskView, rows: list[str], columns: list[str], cell: float, bar: float
) -> dict:
    masked = ~view.mask
    allowed_scores = view.scores[view.mask]
    limit = allowed_scores.abs().max().item() if allowed_scores.numel() else 1.0
    fits = (cell >= MIN_NUMBER_WIDTH, cell >= MIN_MARK_WIDTH)
    texts = _texts(view.scores, masked, MINUS_INFINITY, *fits)
    hovers = _hovers(
        view.scores,
        masked,
        rows,
        columns,
        _("score"),
        _("score {value} replaced by −∞ (masked)"),
    )
    scale = dict(colorscale="RdBu_r", zmid=0.0, zmin=-(limit or 1.0), zmax=limit or 1.0)
    return _panel(view.scores, masked, texts, hovers, scale, bar)


def _weights_panel(
    weights: Tensor, masked: Tensor, rows: list[str], columns: list[str], cell: float, bar: float
) -> dict:
    texts = _texts(weights, masked, "0", cell >= MIN_NUMBER_WIDTH, cell >= MIN_MARK_WIDTH)
    hovers = _hovers(
        weights, masked, rows, columns, _("weight"), _("weight {value} (masked: exactly 0)")
    )
    scale = dict(colorscale="Blues", zmin=0.0, zmax=1.0)
    return _panel(weights, masked, texts, hovers, scale, bar)


def _axis_suffix(n: int) -> str:
    """Plotly names the axes of panel 1 'x'/'y', of panel 2 'x2'/'y2', and so on."""
    return "" if n == 1 else str(n)


def side_by_side(
    traces: list[dict],
    titles: list[str],
    rows: list[list[str]],
    columns: list[list[str]],
    title: str,
    axis_titles: tuple[str, str] = ("query", "key"),
    spacing: float = 0.07,
) -> go.Figure:
    """Heatmap panels in one row, built as one layout (much faster than ``make_subplots``).
    Rows (queries) read top to bottom; ``rows`` and ``columns`` hold each panel's labels, and
    a panel shows its row labels unless they repeat those of the panel on its left."""
    n = len(traces)
    width = (1 - spacing * (n - 1)) / n
    layout: dict = {"annotations": []}
    panels = zip(traces, rows, columns, titles, strict=True)
    for i, (trace, row_labels, labels, panel_title) in enumerate(panels):
        suffix = _axis_suffix(i + 1)
        left = i * (width + spacing)
        trace.update(xaxis=f"x{suffix}", yaxis=f"y{suffix}")
        layout[f"xaxis{suffix}"] = dict(
            domain=[left, left + width],
            anchor=f"y{suffix}",
            tickvals=list(range(len(labels))),
            ticktext=labels,
            tickangle=-60,
            title=dict(text=axis_titles[1]),
            showgrid=False,
            zeroline=False,
        )
        layout[f"yaxis{suffix}"] = dict(
            anchor=f"x{suffix}",
            autorange="reversed",
            tickvals=list(range(len(row_labels))),
            ticktext=row_labels,
            showticklabels=i == 0 or row_labels != rows[i - 1],
            title=dict(text=axis_titles[0] if i == 0 else ""),
            showgrid=False,
            zeroline=False,
        )
        layout["annotations"].append(
            dict(
                text=panel_title,
                x=left + width / 2,
                y=1.0,
                xref="paper",
                yref="paper",
                xanchor="center",
                yanchor="bottom",
                showarrow=False,
                font=dict(size=FONT_SIZE),
            )
        )
    layout.update(
        title=dict(text=html.escape(title, quote=False)),
        height=_height(max(len(labels) for labels in rows)),
        font=dict(size=FONT_SIZE),
        plot_bgcolor=MASKED_COLOR,
        margin=dict(l=90, r=40, t=100, b=80),
    )
    return go.Figure(data=[go.Heatmap(**trace) for trace in traces], layout=layout)


# ---------------------------------------------------------------------------------------------
# The figures
# ---------------------------------------------------------------------------------------------


def _panel_figure(
    trace: dict,
    panel_title: str,
    rows: list[str],
    columns: list[str],
    axis_titles: tuple[str, str],
    named: bool,
    meta: dict,
) -> go.Figure:
    """One heatmap panel as a figure of its own, its colour bar under its title; rows are
    labelled by token if ``named``, else by position."""
    trace = dict(trace)
    if trace["showscale"]:
        trace["colorbar"] = TOP_COLORBAR
    fig = go.Figure(go.Heatmap(**trace))
    shared = dict(showgrid=False, zeroline=False, automargin=True, tickfont_size=13)
    fig.update_xaxes(
        tickvals=list(range(len(columns))),
        ticktext=columns,
        tickangle=-60,
        title=axis_titles[1],
        **shared,
    )
    fig.update_yaxes(
        autorange="reversed",
        tickvals=list(range(len(rows))),
        ticktext=rows if named else [str(i) for i in range(len(rows))],
        title=axis_titles[0] if named else None,
        **shared,
    )
    title = dict(text=panel_title, x=0.5, xanchor="center", y=1, yanchor="top", pad_t=24)
    fig.update_layout(
        title=dict(**title, font_size=14),
        height=min(MAX_PANEL_HEIGHT, max(320, 180 + 24 * len(rows))),
        font_size=FONT_SIZE,
        plot_bgcolor=MASKED_COLOR,
        margin=dict(l=10, r=10, t=100, b=40),
        meta=meta,
    )
    return fig


def mask_figures(view: MaskView) -> tuple[list[float], list[go.Figure]]:
    """Mask, masked scores and softmax weights of one head (rows: queries, columns: keys), one
    figure each, and the relative widths of the columns that show them side by side (one
    under the other on a narrow screen). Grey cells are masked; only the first panel names
    the query rows."""
    rows, columns = token_labels(view.query_tokens), token_labels(view.key_tokens)
    cell = PANELS_WIDTH / 3 / max(len(columns), 1)
    traces = [
        _mask_panel(view, rows, columns, cell),
        _scores_panel(view, rows, columns, cell, 1.0),
        _weights_panel(view.weights, ~view.mask, rows, columns, cell, 1.0),
    ]
    titles = [  # on two lines, to fit a third of a projector's column
        _("Mask:<br>0 or −∞ (grey)"),
        _("Scores<br>q·k/√d<sub>k</sub> + mask"),
        _("Weights:<br>softmax of each row"),
    ]
    axis_titles = (
        (_("query (decoder)"), _("key (encoder)"))
        if view.kind == "cross"
        else (_("query"), _("key"))
    )
    figures = [
        _panel_figure(trace, name, rows, columns, axis_titles, i == 0, dict(mask=view.kind))
        for i, (trace, name) in enumerate(zip(traces, titles, strict=True))
    ]
    return [1.4, 1.0, 1.0], figures


def padded_batch_figure(
    batch: PaddedBatch, tokens: Sequence[Sequence[str]], layer: int, head: int, title: str
) -> go.Figure:
    """The attention weights of one head for each sequence of a padded batch. ``tokens`` are
    the padded token strings of each sequence; grey cells are masked (weight exactly 0)."""
    n, length = batch.ids.shape
    if len(tokens) != n or any(len(strings) != length for strings in tokens):
        raise ValueError(f"give {length} token strings for each of the {n} sequences")
    traces, columns = [], []
    for row, strings in enumerate(tokens):
        labels = token_labels(strings)
        bar = 1.0 if row == n - 1 else None
        weights = batch.weights(layer, head, row)
        masked = ~batch.mask[row, 0]
        cell = _cell_width(length, n)
        traces.append(_weights_panel(weights, masked, labels, labels, cell, bar))
        columns.append(labels)
    titles = [
        _("Sequence {number}: {tokens}").format(
            number=row + 1,
            tokens=ngettext("{n} real token", "{n} real tokens", batch.lengths[row]),
        )
        for row in range(n)
    ]
    return side_by_side(traces, titles, columns, columns, title, spacing=0.1)


def loss_curves_figure(histories: Mapping[str, Sequence[Progress]], title: str) -> go.Figure:
    """Training loss (lines) and validation loss (dashed, at each evaluation) of every
    variant against the step."""
    fig = go.Figure()
    for n, (label, history) in enumerate(histories.items()):
        color = VARIANT_COLORS[n % len(VARIANT_COLORS)]
        name = html.escape(variant_name(label), quote=False)
        fig.add_trace(
            go.Scatter(
                x=[p.step for p in history],
                y=[p.train_loss for p in history],
                name=_("{name}: training").format(name=name),
                mode="lines",
                line=dict(color=color, width=3),
                hovertemplate=name
                + "<br>"
                + _("step %{x}<br>training loss %{y:.3f}")
                + "<extra></extra>",
            )
        )
        evaluated = [p for p in history if p.val_loss is not None]
        fig.add_trace(
            go.Scatter(
                x=[p.step for p in evaluated],
                y=[p.val_loss for p in evaluated],
                name=_("{name}: validation").format(name=name),
                mode="lines+markers",
                line=dict(color=color, width=2, dash="dash"),
                marker=dict(size=8),
                hovertemplate=name
                + "<br>"
                + _("step %{x}<br>validation loss %{y:.3f}")
                + "<extra></extra>",
            )
        )
    fig.update_xaxes(title=_("training step"))
    fig.update_yaxes(title=_("loss (nats per character)"), rangemode="tozero")
    fig.update_layout(
        title=dict(text=html.escape(title, quote=False)),
        height=460,
        font_size=FONT_SIZE,
        legend=dict(orientation="h", y=-0.22),
        margin=dict(l=70, r=30, t=70, b=140),
    )
    return fig


# ---------------------------------------------------------------------------------------------
# Titles, captions and tables: every number computed from what the page shows
# ---------------------------------------------------------------------------------------------


def kind_title(kind: str, model_name: str, layer: int, head: int) -> str:
    """The title of a mask figure: the kind of mask, the model, the layer and the head."""
    if kind == "cross":
        where = _("decoder layer {layer}").format(layer=layer)
    else:
        where = _("layer {layer}").format(layer=layer)
    return _("{kind} mask · {model}, {where}, head {head}").format(
        kind=kind_name(kind), model=model_name, where=where, head=head
    )


def kind_caption(
    view: MaskView, kind: str, model_name: str, layer: int, head: int, prefix_len: int = 0
) -> str:
    """The caption under a mask's panels: its title, then what the view shows in numbers."""
    title = kind_title(kind, model_name, layer, head)
    return f"{title}. {view_caption(view, kind_details(view, kind, prefix_len))}"


def kind_details(view: MaskView, kind: str, prefix_len: int) -> str:
    """What is special about this kind of mask on this sequence (the prefix, the padding)."""
    t_q, t_k = view.mask.shape
    if kind == "prefix" and prefix_len == 0:
        return _("Prefix length 0: the same as the causal mask.") + " "
    if kind == "prefix":
        return (
            _("Prefix: positions 0 to {last} ({length} of {tokens}).").format(
                last=prefix_len - 1,
                length=prefix_len,
                tokens=ngettext("{n} token", "{n} tokens", t_q),
            )
            + " "
        )
    if kind in ("padding", "cross"):
        pads = view.key_tokens.count(PAD_TOKEN)
        if kind == "cross":
            real = ngettext("{n} real source token", "{n} real source tokens", t_k - pads)
        else:
            real = ngettext("{n} real token", "{n} real tokens", t_k - pads)
        return (
            _("This sequence has {real} and {pads} [PAD] after them.").format(real=real, pads=pads)
            + " "
        )
    return ""


def view_caption(view: MaskView, extra: str) -> str:
    """How many pairs the mask hides, their weight, the row sums and the gap to the weights the
    model returned; ``extra`` comes first (see ``kind_details``)."""
    total = view.mask.numel()
    row_sums = view.weights.sum(dim=-1)
    seen = view.mask.any(dim=-1)
    deviation = (row_sums[seen] - 1).abs().max().item()
    largest_masked = view.weights[~view.mask].abs().max().item() if view.n_masked else 0.0
    return extra + _(
        "{masked} of {total} (query, key) pairs are masked: their score becomes −∞, and their "
        "weight is {largest}. Every row of weights sums to 1 (largest deviation {deviation}). The "
        "weights computed here from the head's queries and keys differ from the ones the model "
        "returned by at most {difference}."
    ).format(
        masked=view.n_masked,
        total=total,
        largest=f"{largest_masked:g}",
        deviation=f"{deviation:.1e}",
        difference=f"{view.max_difference():.1e}",
    )


def difference_table(batch: PaddedBatch) -> pd.DataFrame:
    """Per sequence of the batch: its real tokens, its padding and how far its outputs are from
    a run alone, with and without the padding mask."""
    length = batch.ids.size(1)
    return pd.DataFrame(
        {
            _("sequence"): [row + 1 for row in range(len(batch.lengths))],
            _("real tokens"): batch.lengths,
            _("[PAD] added"): [length - n for n in batch.lengths],
            _("max |difference|, with the padding mask"): [f"{d:.1e}" for d in batch.differences],
            _("max |difference|, without it"): [f"{d:.1e}" for d in batch.differences_without_mask],
        }
    )


def padding_caption(batch: PaddedBatch, layer: int, head: int) -> str:
    """The head's largest weight on a [PAD] key, and the batch's largest output differences."""
    return _(
        "Largest weight on a [PAD] key in this head: {pad_weight}. Each real token's output (the "
        "last hidden state) in the batch differs from its output when its sentence runs alone by "
        "at most {with_mask} with the padding mask and {without_mask} without it."
    ).format(
        pad_weight=f"{batch.largest_pad_weight(layer, head):g}",
        with_mask=f"{max(batch.differences):.1e}",
        without_mask=f"{max(batch.differences_without_mask):.1e}",
    )


def progress_caption(histories: Mapping[str, Sequence[Progress]], run: dict | None) -> str:
    """What the leakage run trains on (``run``: source, chars, steps, seed) and the steps each
    model has done."""
    done = "; ".join(
        f"{variant_name(label)}, {history[-1].step}" for label, history in histories.items()
    )
    about = ""
    if run is not None:
        about = (
            _("Trained on {source} ({characters}), {steps} per model, seed {seed}.").format(
                source=run["source"].lower(),
                characters=ngettext("{n} character", "{n} characters", run["chars"]),
                steps=ngettext("{n} step", "{n} steps", run["steps"]),
                seed=run["seed"],
            )
            + " "
        )
    return about + _("Steps done: {done}.").format(done=done)


def results_table(result: ExperimentResult) -> pd.DataFrame:
    """The final losses of each model of the leakage experiment, three decimals."""
    return pd.DataFrame(
        {
            _("model"): [variant_name(v.label) for v in result.variants],
            _("final training loss"): [v.final_train_loss for v in result.variants],
            _("validation loss"): [v.final_val_loss for v in result.variants],
            _("validation loss with the mask on"): [v.masked_val_loss for v in result.variants],
        }
    ).round(3)


def leakage_summary(result: ExperimentResult) -> str | None:
    """The leaky model against the causal one, both judged with the mask on, and the loss of
    uniform guessing; None until both models have trained."""
    if not {CAUSAL, LEAKY} <= {v.label for v in result.variants}:
        return None
    causal, leaky = result.variant(CAUSAL), result.variant(LEAKY)
    vocab_size = result.tokenizer.vocab_size
    return _(
        "Training loss at the end: {leaky} without the mask, {causal} with it. The leaky "
        "weights, judged with the mask switched on (as in generation, where the next character "
        "is not there to read), score a validation loss of {leaky_masked}, against "
        "{causal_masked} for the model trained with the mask. Guessing uniformly among the "
        "{tokens} would score ln {vocab} = {uniform}."
    ).format(
        leaky=f"{leaky.final_train_loss:.3f}",
        causal=f"{causal.final_train_loss:.3f}",
        leaky_masked=f"{leaky.masked_val_loss:.3f}",
        causal_masked=f"{causal.masked_val_loss:.3f}",
        tokens=ngettext("{n} token", "{n} tokens", vocab_size),
        vocab=vocab_size,
        uniform=f"{math.log(vocab_size):.3f}",
    )


def mask_panel(view: MaskView) -> go.Figure:
    """The first panel of ``mask_figures`` on its own: the mask, 0 where a query may look and
    −∞ (grey) where it may not."""
    _widths, figures = mask_figures(view)
    return figures[0]
