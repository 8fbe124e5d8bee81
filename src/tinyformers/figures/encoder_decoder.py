"""Figures for the lesson on encoder-decoder models: the table of the three families, attention
heatmaps (encoder self-attention, decoder masked self-attention, cross-attention), one decoding
step's cross-attention, T5's span corruption drawn as coloured chips, and the captions.

Every string that comes from a tokenizer or from the student is html-escaped: Plotly renders a
few HTML tags in labels and hover boxes, and the chips are HTML. Captions are Markdown, so
``escape_markdown`` shows them exactly as written.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from torch import Tensor

from tinyformers.course.encoder_decoder import (
    MEAN,
    DecodingStep,
    ModelShape,
    future_weight,
    head_weights,
    row_sum_deviation,
    step_row,
    strongest_sources,
)
from tinyformers.figures.bertviz import encoder_decoder_head_view_html
from tinyformers.i18n import _, ngettext
from tinyformers.text.display import plain
from tinyformers.text.span_corruption import SENTINEL_PATTERN, Corruption
from tinyformers.trace import Trace

FONT_SIZE = 16
ROW_HEIGHT = 28
MAX_HEIGHT = 560  # px: no chart on the page is taller
PRIMARY_HEIGHT = 450  # px: the cross-attention chart at the top fits the first screen
SPAN_COLORS = ("#fdd49e", "#c6dbef", "#c7e9c0", "#dadaeb", "#fcbba1", "#d9d9d9")
KEPT_COLOR = "#f0f0f0"
CLOSING_COLOR = "#bdbdbd"  # the sentinel that closes the last span
FAMILIES = {  # family: (kind, well-known models, trained to predict)
    "bert": ("encoder-only", "BERT", "masked tokens"),
    "gpt": ("decoder-only", "GPT", "the next token"),
    "seq2seq": ("encoder–decoder", "T5, BART", "the output, given the input"),
}


def family_texts(family: str) -> tuple[str, str, str]:
    """``FAMILIES[family]`` in the current language."""
    texts = {
        "bert": (_("encoder-only"), "BERT", _("masked tokens")),
        "gpt": (_("decoder-only"), "GPT", _("the next token")),
        "seq2seq": (_("encoder–decoder"), "T5, BART", _("the output, given the input")),
    }
    return texts.get(family, FAMILIES[family])


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------


def shown_token(token: str) -> str:
    """A token as the figures show it, escaped: a space is drawn as ␣ and a newline as ⏎."""
    return html.escape(token.replace(" ", "␣").replace("\n", "⏎"), quote=False)


def escape_markdown(text: str) -> str:
    """Text shown inside Markdown (warnings, captions) exactly as typed."""
    return plain(text)


def head_label(head: int | str) -> str:
    """A head number, or "mean of the heads" for ``MEAN``, in the current language."""
    return _("mean of the heads") if head == MEAN else str(head)


def head_name(layer: int, head: int | str) -> str:
    """``layer 1, head 2`` or ``layer 1, mean of the heads``."""
    if head == MEAN:
        return _("layer {layer}, mean of the heads").format(layer=layer)
    return _("layer {layer}, head {head}").format(layer=layer, head=head)


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
    axis = dict(
        title=dict(text=title, font=dict(size=FONT_SIZE)),
        tickfont=dict(size=FONT_SIZE),
        automargin=True,  # long tick labels push the title out instead of under it
    )
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
    max_height: int = MAX_HEIGHT,
) -> go.Figure:
    """One head's attention: a row per query, a column per key, weights from 0 to 1, at most
    ``max_height`` pixels tall.

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
        colorbar=dict(title=dict(text=_("weight"))),
        hovertemplate=_(
            "query %{customdata[0]}<br>key %{customdata[1]}<br>weight %{z:.3f}<extra></extra>"
        ),
    )
    return _figure(
        heatmap,
        title,
        min(max(300, 150 + ROW_HEIGHT * len(row_labels)), max_height),
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
    labels = [head_name(layer, head) for layer in range(n_layer) for head in range(n_head)]
    return attention_heatmap(
        rows.reshape(n_layer * n_head, n_source),
        labels,
        source_labels,
        title,
        x_title=_("source token (encoder)"),
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
        hovertemplate=_("%{customdata}<br>weight %{y:.3f}<extra></extra>"),
    )
    return _figure(
        bars,
        title,
        360,
        _axis(_("source token (encoder)"), source_labels),
        _axis(_("attention weight"), range=[0, 1]),
    )


# ---------------------------------------------------------------------------------------------
# The date model's attention, one head (or the mean of the heads) at a time
# ---------------------------------------------------------------------------------------------


def encoder_attention_figure(trace: Trace, layer: int, head: int | str) -> go.Figure:
    """The encoder's self-attention over the source, as a heatmap."""
    labels = token_labels(trace.encoder_tokens)
    return attention_heatmap(
        head_weights(trace.encoder_attentions, layer, head),
        labels,
        labels,
        _("Encoder self-attention, {head}").format(head=head_name(layer, head)),
        _("key (source)"),
        _("query (source)"),
    )


def decoder_attention_figure(trace: Trace, layer: int, head: int | str) -> go.Figure:
    """The decoder's masked self-attention over its input, as a heatmap."""
    labels = token_labels(trace.tokens)
    return attention_heatmap(
        head_weights(trace.attentions, layer, head),
        labels,
        labels,
        _("Decoder masked self-attention, {head}").format(head=head_name(layer, head)),
        _("key (decoder input)"),
        _("query (decoder input)"),
    )


def cross_attention_figure(
    trace: Trace, outputs: Sequence[str], layer: int, head: int | str
) -> go.Figure:
    """Cross-attention: a row per decoder position (what it reads → the output it predicts),
    a column per source token. The lesson's first chart, so it fits the first screen."""
    return attention_heatmap(
        head_weights(trace.cross_attentions, layer, head),
        step_labels(trace.tokens, outputs),
        token_labels(trace.encoder_tokens),
        _("Cross-attention, {head}").format(head=head_name(layer, head)),
        _("source token (encoder)"),
        _("decoder position: reads → predicts"),
        max_height=PRIMARY_HEIGHT,
    )


def step_bars_figure(step: DecodingStep, trace: Trace, layer: int, head: int | str) -> go.Figure:
    """One decoding step's cross-attention row of one head (or the mean of the heads)."""
    title = _("Step {number} ({token}): cross-attention, {head}").format(
        number=step.index + 1, token=shown_token(step.token), head=head_name(layer, head)
    )
    row = step_row(step.cross_attention, layer, head)
    return attention_bars(row, token_labels(trace.encoder_tokens), title)


def step_all_heads_figure(step: DecodingStep, trace: Trace) -> go.Figure:
    """One decoding step's cross-attention in every layer and head."""
    title = _("Step {number} ({token}): cross-attention in every layer and head").format(
        number=step.index + 1, token=shown_token(step.token)
    )
    return step_heads_figure(step.cross_attention, token_labels(trace.encoder_tokens), title)


def runner_up_text(step: DecodingStep) -> str:
    """The second most likely token of a step and its probability."""
    token, probability = step.alternatives[1]
    return f"{shown_token(token)} ({probability:.1e})"


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
        + _row(_("Original"), original)
        + _row(_("Input"), _sequence_chips(corruption.inputs, color_of, inherit=False))
        + _row(_("Target"), _sequence_chips(corruption.targets, color_of, inherit=True))
        + "</div>"
    )


# ---------------------------------------------------------------------------------------------
# The three families
# ---------------------------------------------------------------------------------------------


def family_rows(shapes: Mapping[str, ModelShape]) -> list[dict]:
    """A table row per model (by name): its family, what it is like, its size, its objective."""
    rows = []
    for name, shape in shapes.items():
        kind, like, predicts = family_texts(shape.family)
        rows.append(
            {
                _("Model"): name,
                _("Family"): kind,
                _("Like"): like,
                _("Encoder layers"): shape.encoder_layers,
                _("Decoder layers"): shape.decoder_layers,
                _("Heads"): shape.heads,
                _("Width"): shape.width,
                _("Parameters"): shape.parameters,
                _("Trained to predict"): predicts,
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# The head view
# ---------------------------------------------------------------------------------------------


def head_view_height(trace: Trace) -> int:
    """Pixels for the head view: a line per token of the longer side, at most ``MAX_HEIGHT``."""
    return min(100 + 23 * max(len(trace.encoder_tokens), len(trace.tokens)), MAX_HEIGHT)


def head_view_html(trace: Trace) -> str:
    """bertviz's encoder-decoder head view of an encoder-decoder trace, spaces drawn as ␣."""
    visible = [
        [t.replace(" ", "␣") for t in tokens] for tokens in (trace.encoder_tokens, trace.tokens)
    ]
    return encoder_decoder_head_view_html(
        trace.encoder_attentions, trace.attentions, trace.cross_attentions, *visible
    )


# ---------------------------------------------------------------------------------------------
# Captions and messages (Markdown)
# ---------------------------------------------------------------------------------------------


def known_characters_caption(tokens: Sequence[str]) -> str:
    """The characters a character-level model knows, for a student who typed others."""
    return escape_markdown(
        _("The characters this model knows: {characters}").format(
            characters=" ".join(shown_token(t) for t in tokens)
        )
    )


def self_attention_caption(trace: Trace, layer: int, head: int | str) -> str:
    """The lengths of the source and the decoder input, and the largest weight the decoder's
    masked self-attention puts on a later position."""
    decoder = head_weights(trace.attentions, layer, head)
    return _(
        "Source: {source} tokens; decoder input: {decoder} tokens. Largest decoder weight above "
        "the diagonal (a look into the future): {weight}."
    ).format(
        source=len(trace.encoder_tokens),
        decoder=len(trace.tokens),
        weight=f"{future_weight(decoder):.1e}",
    )


def cross_attention_caption(
    trace: Trace, outputs: Sequence[str], layer: int, head: int | str
) -> str:
    """The source token each output token weighs most, and how close every row of the
    cross-attention comes to summing to 1."""
    cross = head_weights(trace.cross_attentions, layer, head)  # (T, S)
    sources = trace.encoder_tokens
    links = " · ".join(
        f"{shown_token(out)} ← {shown_token(sources[k])} ({k})"
        for out, k in zip(outputs, strongest_sources(cross), strict=True)
    )
    return escape_markdown(
        _(
            "Strongest source token for each output token (position in brackets): {links}. "
            "Every row sums to 1 (largest deviation {deviation})."
        ).format(links=links, deviation=f"{row_sum_deviation(cross):.1e}")
    )


def step_attention_caption(
    step: DecodingStep, sources: Sequence[str], layer: int, head: int | str
) -> str:
    """Where one head (or the mean of the heads) looked most to emit the step's token."""
    row = step_row(step.cross_attention, layer, head)
    strongest = int(row.argmax())
    return escape_markdown(
        _(
            "To emit {token}, {head} put {share} of its attention on source token {position} "
            "({source})."
        ).format(
            token=shown_token(step.token),
            head=head_name(layer, head),
            share=f"{row[strongest]:.1%}",
            position=strongest,
            source=shown_token(sources[strongest]),
        )
    )


def decoding_summary(steps: Sequence[DecodingStep], output: str) -> str:
    """How decoding ended, after how many steps, and its output."""
    if not steps:
        raise ValueError("decoding took no step, so there is nothing to sum up")
    shown = escape_markdown(output)
    if steps[-1].is_end:
        return _("Done after {count} steps: the decoder chose [EOS]. Output: {output}").format(
            count=len(steps), output=shown
        )
    return _("Stopped at the length limit after {count} steps. Output: {output}").format(
        count=len(steps), output=shown
    )


def span_caption(corruption: Corruption, rate: float) -> str:
    """How many words span corruption dropped, in which spans, and what each side reads."""
    lengths = ", ".join(str(span.end - span.start) for span in corruption.spans)
    spans = ngettext("{n} span of length", "{n} spans of lengths", len(corruption.spans))
    return _(
        "{dropped} of {words} words dropped ({fraction}; rate {rate}) in {spans} {lengths}. The "
        "encoder reads {inputs} tokens, the decoder predicts {targets}."
    ).format(
        dropped=corruption.n_dropped,
        words=len(corruption.original),
        fraction=f"{corruption.dropped_fraction:.1%}",
        rate=f"{rate:.0%}",
        spans=spans,
        lengths=lengths,
        inputs=len(corruption.inputs),
        targets=len(corruption.targets),
    )
