"""Figures for the lesson on encoder-decoder models: attention heatmaps (encoder self-attention,
decoder masked self-attention, cross-attention), one decoding step's cross-attention, and T5's
span corruption drawn as coloured chips.

Every string that comes from a tokenizer or from the student is html-escaped: Plotly renders a
few HTML tags in labels and hover boxes, and the chips are HTML.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go
from torch import Tensor

from tinyformers.text.span_corruption import SENTINEL_PATTERN, Corruption

FONT_SIZE = 16
ROW_HEIGHT = 28
SPAN_COLORS = ("#fdd49e", "#c6dbef", "#c7e9c0", "#dadaeb", "#fcbba1", "#d9d9d9")
KEPT_COLOR = "#f0f0f0"
CLOSING_COLOR = "#bdbdbd"  # the sentinel that closes the last span


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------


def shown_token(token: str) -> str:
    """A token as the figures show it, escaped: a space is drawn as ␣ and a newline as ⏎."""
    return html.escape(token.replace(" ", "␣").replace("\n", "⏎"), quote=False)


def token_labels(tokens: Sequence[str]) -> list[str]:
    """Axis labels for tokens: each token as ``shown_token`` draws it."""
    return [shown_token(token) for token in tokens]


def step_labels(decoder_inputs: Sequence[str], outputs: Sequence[str]) -> list[str]:
    """Labels for decoder positions: what the position reads → what it predicts."""
    if len(decoder_inputs) != len(outputs):
        raise ValueError(
            f"{len(decoder_inputs)} decoder inputs but {len(outputs)} outputs; they pair up"
        )
    return [
        f"{shown_token(read)} → {shown_token(emitted)}"
        for read, emitted in zip(decoder_inputs, outputs, strict=True)
    ]


def _check_matrix(weights: Tensor, n_rows: int, n_columns: int, what: str) -> None:
    if weights.dim() != 2 or tuple(weights.shape) != (n_rows, n_columns):
        raise ValueError(
            f"{what} has shape {tuple(weights.shape)}, but there are {n_rows} row labels and "
            f"{n_columns} column labels"
        )


def _axis(title: str, labels: Sequence[str] | None = None, **extra) -> dict:
    """An axis in large type; given labels, one tick per position, so equal labels (a repeated
    token) stay apart."""
    axis = dict(title=dict(text=title, font=dict(size=FONT_SIZE)), tickfont=dict(size=FONT_SIZE))
    if labels is not None:
        axis.update(tickmode="array", tickvals=list(range(len(labels))), ticktext=list(labels))
    return {**axis, **extra}


def _figure(trace: dict, title: str, height: int, xaxis: dict, yaxis: dict) -> go.Figure:
    """The figure in one call: Plotly validates it once, far faster than update after update."""
    layout = dict(
        title=dict(text=html.escape(title, quote=False)),
        height=height,
        font=dict(size=FONT_SIZE),
        margin=dict(l=60, r=20, t=60, b=50),
        xaxis=xaxis,
        yaxis=yaxis,
    )
    return go.Figure(data=[trace], layout=layout)


# ---------------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------------


def attention_heatmap(
    weights: Tensor,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    title: str,
    x_title: str,
    y_title: str,
) -> go.Figure:
    """One head's attention: a row per query, a column per key, weights from 0 to 1.

    The labels must already be escaped (``token_labels``, ``step_labels``); hovering over a cell
    shows both labels with their positions."""
    _check_matrix(weights, len(row_labels), len(column_labels), "the attention matrix")
    hover = [
        [[f"{i}: {row}", f"{j}: {column}"] for j, column in enumerate(column_labels)]
        for i, row in enumerate(row_labels)
    ]
    heatmap = dict(
        type="heatmap",
        z=weights.detach().float().numpy(),
        customdata=hover,
        colorscale="Blues",
        zmin=0,
        zmax=1,
        colorbar=dict(title=dict(text="weight")),
        hovertemplate="query %{customdata[0]}<br>key %{customdata[1]}<br>"
        "weight %{z:.3f}<extra></extra>",
    )
    return _figure(
        heatmap,
        title,
        max(300, 150 + ROW_HEIGHT * len(row_labels)),
        _axis(x_title, column_labels, tickangle=0),
        _axis(y_title, row_labels, autorange="reversed"),
    )


def step_heads_figure(rows: Tensor, source_labels: Sequence[str], title: str) -> go.Figure:
    """One decoding step's cross-attention in every layer and head: (layers, heads, source)."""
    if rows.dim() != 3:
        raise ValueError(f"expected (layers, heads, source) weights, got {tuple(rows.shape)}")
    n_layer, n_head, n_source = rows.shape
    if n_source != len(source_labels):
        raise ValueError(f"{n_source} source positions but {len(source_labels)} labels")
    labels = [f"layer {layer}, head {head}" for layer in range(n_layer) for head in range(n_head)]
    return attention_heatmap(
        rows.reshape(n_layer * n_head, n_source),
        labels,
        source_labels,
        title,
        x_title="source token (encoder)",
        y_title="",
    )


def attention_bars(row: Tensor, source_labels: Sequence[str], title: str) -> go.Figure:
    """One cross-attention row as bars: how much of the step's attention each source token got."""
    if row.dim() != 1 or row.numel() != len(source_labels):
        raise ValueError(f"expected {len(source_labels)} weights, got shape {tuple(row.shape)}")
    bars = dict(
        type="bar",
        y=row.detach().float().numpy(),
        customdata=[f"{j}: {label}" for j, label in enumerate(source_labels)],
        marker=dict(color="#2171b5"),
        hovertemplate="%{customdata}<br>weight %{y:.3f}<extra></extra>",
    )
    return _figure(
        bars,
        title,
        360,
        _axis("source token (encoder)", source_labels),
        _axis("attention weight", range=[0, 1]),
    )


# ---------------------------------------------------------------------------------------------
# Span corruption
# ---------------------------------------------------------------------------------------------


def _chip(text: str, color: str, bold: bool = False) -> str:
    weight = "font-weight:bold;" if bold else ""
    return (
        f'<span style="background:{color};padding:3px 6px;margin:2px;border-radius:5px;'
        f'font-family:monospace;font-size:1.05rem;display:inline-block;{weight}">'
        f"<bdi>{shown_token(text)}</bdi></span>"
    )


def _row(label: str, chips: list[str]) -> str:
    return (
        '<div style="margin:6px 0;line-height:2.1">'
        f'<span style="display:inline-block;width:6.5em;font-weight:bold">{html.escape(label)}</span>'
        + "".join(chips)
        + "</div>"
    )


def _sequence_chips(tokens: Sequence[str], color_of: dict[str, str], inherit: bool) -> list[str]:
    """Chips for an input (``inherit=False``: kept tokens stay plain) or a target (each token
    takes the colour of the sentinel before it)."""
    chips, current = [], KEPT_COLOR
    for token in tokens:
        if SENTINEL_PATTERN.fullmatch(token):
            current = color_of.get(token, CLOSING_COLOR)
            chips.append(_chip(token, current, bold=True))
        else:
            chips.append(_chip(token, current if inherit else KEPT_COLOR))
    return chips


def span_corruption_html(corruption: Corruption) -> str:
    """The original (dropped spans coloured), the encoder input and the decoder target as chips;
    each sentinel has the colour of the span it stands for."""
    color_of = {
        span.sentinel: SPAN_COLORS[i % len(SPAN_COLORS)] for i, span in enumerate(corruption.spans)
    }
    span_at = {i: span for span in corruption.spans for i in range(span.start, span.end)}
    original = [
        _chip(token, color_of[span_at[i].sentinel] if i in span_at else KEPT_COLOR)
        for i, token in enumerate(corruption.original)
    ]

    return (
        "<div>"
        + _row("Original", original)
        + _row("Input", _sequence_chips(corruption.inputs, color_of, inherit=False))
        + _row("Target", _sequence_chips(corruption.targets, color_of, inherit=True))
        + "</div>"
    )
