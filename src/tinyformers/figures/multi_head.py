"""Figures for the lesson on multi-head attention: one head's attention matrix, heads ranked by a
statistic, a layer × head grid of scores, and the heads' outputs before and after ``c_proj``.

Every string that comes from a tokenizer is html-escaped before it reaches a label or a hover
box, because Plotly renders a few HTML tags in those.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import plotly.graph_objects as go
from torch import Tensor

from tinyformers.course.multi_head import (
    STATISTICS,
    AgreementProbe,
    HeadOutputs,
    HeadStats,
    ShapeStep,
    points_at_subject,
    strongest_key_habits,
)
from tinyformers.i18n import _, ngettext
from tinyformers.text.display import plain

FONT_SIZE = 16
MAX_VALUE_LABELS = 16  # write the weight in each cell only for sentences up to this length
HIGHLIGHT = "#d62728"
LAYER_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
NUMBER_NAMES = {"sg": "singular", "pl": "plural"}
MAX_VIEW_HEIGHT = 560  # px of a chart or a bertviz frame (a taller view scrolls inside it)
FIRST_VIEW_HEIGHT = 450  # px of the head view, the first figure of the lesson


def stat_names(anchor: str) -> dict[str, str]:
    """Readable names of the statistics in ``HeadStats`` in the current language; ``anchor``
    names the anchor token."""
    return {
        "entropy": _("mean entropy of a row (nats)"),
        "distance": _("mean distance attended |i − j|"),
        "previous": _("attends to the previous token"),
        "anchor": _("attends to {anchor}").format(anchor=anchor),
        "itself": _("attends to itself"),
    }


def quoted_token(token: str) -> str:
    """A token quoted for a Markdown caption: repr-quoted, with every character Markdown or
    Streamlit treats specially backslash-escaped, so the token shows as typed."""
    return plain(repr(token))


def token_labels(tokens: Sequence[str]) -> list[str]:
    """Unique, escaped axis labels: position and token, spaces and newlines made visible."""
    return [
        f"{i}: {html.escape(token.replace(' ', '␣').replace(chr(10), '⏎'), quote=False)}"
        for i, token in enumerate(tokens)
    ]


def head_view_height(n_tokens: int, limit: int = MAX_VIEW_HEIGHT) -> int:
    """Pixels an iframe needs for bertviz's head view of ``n_tokens`` tokens: 22.5 px per
    token and a 30 px heading (bertviz's head_view.js), plus the layer menu and page margins;
    at most ``limit``, beyond which the view scrolls inside its frame."""
    return min(math.ceil(22.5 * n_tokens) + 30 + 50, limit)


def model_view_height(n_layer: int, n_head: int, n_tokens: int) -> int:
    """Pixels an iframe needs for bertviz's model view (model_view.js): a row of thumbnails per
    layer, each 7 · 12 / heads px per token plus 10 px of padding, under a 38 px axis, or the
    enlarged single head if that is taller; plus page margins and a scroll bar. At most
    MAX_VIEW_HEIGHT, beyond which the view scrolls inside its frame."""
    box = 7 * 12 / n_head
    thumbnails = n_layer * (n_tokens * box + 10) + 38
    detail = n_tokens * 18 + 55
    return min(math.ceil(max(thumbnails, detail)) + 40, MAX_VIEW_HEIGHT)


MODEL_VIEW_WIDTH = 990  # bertviz's model view is drawn 970 px wide, plus the page margins
_FIT_SCRIPT = """<script>
(function () {
  function fit() {
    document.body.style.zoom = Math.min(1, window.innerWidth / %d);
  }
  fit();
  window.addEventListener("resize", fit);
})();
</script>
"""


def fit_width(page: str, width: int = MODEL_VIEW_WIDTH) -> str:
    """Add a script to a complete HTML page that shrinks it (CSS zoom) when the frame showing
    it is narrower than ``width`` pixels, so a fixed-width view is never cut off at the right."""
    end = page.rfind("</body>")
    if end == -1:
        raise ValueError("expected a complete HTML page with a </body> tag")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive number of pixels, got {width!r}")
    return page[:end] + _FIT_SCRIPT % width + page[end:]


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    """Title, font and margins; the height is at most MAX_VIEW_HEIGHT."""
    fig.update_layout(
        title=html.escape(title, quote=False),
        height=min(height, MAX_VIEW_HEIGHT),
        font_size=FONT_SIZE,
        margin=dict(l=80, r=20, t=70, b=60),
    )
    return fig


def attention_heatmap(
    weights: Tensor,
    tokens: Sequence[str],
    title: str,
    highlight_row: int | None = None,
    highlight_column: int | None = None,
) -> go.Figure:
    """A (query × key) attention matrix: queries down, keys across, weights 0 to 1.

    ``highlight_row`` outlines one query's row and ``highlight_column`` one key's column; short
    sentences get the weight written in each cell.
    """
    if weights.dim() != 2 or tuple(weights.shape) != (len(tokens), len(tokens)):
        raise ValueError(
            f"expected a ({len(tokens)}, {len(tokens)}) matrix for {len(tokens)} tokens, "
            f"got {tuple(weights.shape)}"
        )
    labels = token_labels(tokens)
    show_values = len(tokens) <= MAX_VALUE_LABELS
    fig = go.Figure(
        go.Heatmap(
            z=weights.detach().float().numpy(),
            x=labels,
            y=labels,
            zmin=0,
            zmax=1,
            colorscale="Blues",
            colorbar=dict(title=dict(text=_("weight"), side="top")),
            texttemplate="%{z:.2f}" if show_values else None,
            hovertemplate=_("query %{y}<br>key %{x}<br>weight %{z:.3f}") + "<extra></extra>",
        )
    )
    n = len(tokens)
    if highlight_row is not None:
        fig.add_shape(
            type="rect",
            x0=-0.5,
            x1=n - 0.5,
            y0=highlight_row - 0.5,
            y1=highlight_row + 0.5,
            line=dict(color=HIGHLIGHT, width=4),
        )
    if highlight_column is not None:
        fig.add_shape(
            type="rect",
            x0=highlight_column - 0.5,
            x1=highlight_column + 0.5,
            y0=-0.5,
            y1=n - 0.5,
            line=dict(color=HIGHLIGHT, width=2, dash="dash"),
        )
    fig.update_xaxes(title=_("key (attended to)"), type="category", tickangle=-50, automargin=True)
    fig.update_yaxes(
        title=_("query (attending)"), type="category", autorange="reversed", automargin=True
    )
    side = max(480, min(1000, 180 + 34 * n))
    return _layout(fig, title, side)


def head_ranking_chart(
    stats: Sequence[HeadStats], key: str, anchor: str, top: int = 24
) -> go.Figure:
    """The first ``top`` heads of ``stats`` (already sorted) as horizontal bars of one
    statistic, the first at the top, coloured by layer."""
    if key not in STATISTICS:
        raise ValueError(f"there is no statistic {key!r}; choose one of {', '.join(STATISTICS)}")
    shown = list(stats)[:top]
    label = stat_names(anchor)[key]
    fig = go.Figure()
    for layer in sorted({s.layer for s in shown}):
        rows = [s for s in shown if s.layer == layer]
        fig.add_trace(
            go.Bar(
                x=[getattr(s, key) for s in rows],
                y=[s.name for s in rows],
                orientation="h",
                name=_("layer {layer}").format(layer=layer),
                marker_color=LAYER_COLORS[layer % len(LAYER_COLORS)],
                hovertemplate="%{y}<br>%{x:.3f}<extra></extra>",
            )
        )
    fig.update_yaxes(
        type="category",
        categoryorder="array",
        categoryarray=[s.name for s in shown],
        autorange="reversed",
        automargin=True,
    )
    fig.update_xaxes(title=html.escape(label, quote=False))
    fig.update_layout(legend_title_text="", barmode="overlay")
    title = _("Heads ranked by: {label}").format(label=label)
    return _layout(fig, title, max(360, 120 + 30 * len(shown)))


def score_grid(scores: Tensor, title: str, best: tuple[int, int] | None = None) -> go.Figure:
    """An (n_layer, n_head) grid of shares from 0 to 1, each cell labelled as a percentage;
    ``best`` = (layer, head) is outlined."""
    if scores.dim() != 2:
        raise ValueError(f"expected an (n_layer, n_head) grid, got shape {tuple(scores.shape)}")
    n_layer, n_head = scores.shape
    fig = go.Figure(
        go.Heatmap(
            z=scores.detach().float().numpy(),
            x=[_("head {head}").format(head=h) for h in range(n_head)],
            y=[_("layer {layer}").format(layer=layer) for layer in range(n_layer)],
            zmin=0,
            zmax=1,
            colorscale="Greens",
            colorbar=dict(title=dict(text=_("share"), side="top"), tickformat=".0%"),
            texttemplate="%{z:.0%}",
            hovertemplate="%{y}, %{x}<br>%{z:.1%}<extra></extra>",
        )
    )
    if best is not None:
        layer, head = best
        fig.add_shape(
            type="rect",
            x0=head - 0.5,
            x1=head + 0.5,
            y0=layer - 0.5,
            y1=layer + 0.5,
            line=dict(color=HIGHLIGHT, width=4),
        )
    fig.update_xaxes(type="category", side="top")
    fig.update_yaxes(type="category", autorange="reversed", automargin=True)
    fig = _layout(fig, title, max(260, 110 + 60 * n_layer))
    fig.update_layout(margin=dict(t=100, b=20))
    return fig


def concatenation_figure(
    per_head: Tensor, projected: Tensor, tokens: Sequence[str], layer: int
) -> go.Figure:
    """Left: the heads' outputs side by side, i.e. the (T, C) concatenation, with each head's
    hs columns boxed. Right: the same rows after the output projection ``c_proj``."""
    nh, t, hs = per_head.shape
    if tuple(projected.shape) != (t, nh * hs) or len(tokens) != t:
        raise ValueError(
            f"per-head outputs {tuple(per_head.shape)}, projection {tuple(projected.shape)} and "
            f"{len(tokens)} tokens do not fit together"
        )
    concatenated = per_head.permute(1, 0, 2).reshape(t, nh * hs)
    limit = max(concatenated.abs().max().item(), projected.abs().max().item()) or 1.0
    labels = token_labels(tokens)
    panels = {
        "x": (
            concatenated,
            _("heads concatenated: ({t}, {nh} × {hs}) = ({t}, {c})").format(
                t=t, nh=nh, hs=hs, c=nh * hs
            ),
        ),
        "x2": (projected, _("after c_proj: ({t}, {c})").format(t=t, c=nh * hs)),
    }
    fig = go.Figure(
        [
            go.Heatmap(
                z=matrix.detach().float().numpy(),
                y=labels,
                xaxis=axis,
                zmin=-limit,
                zmax=limit,
                colorscale="RdBu",
                showscale=axis == "x2",
                hovertemplate="%{y}<br>" + _("feature %{x}") + "<br>%{z:.3f}<extra></extra>",
            )
            for axis, (matrix, _title) in panels.items()
        ]
    )
    head_boxes = [
        dict(
            type="rect",
            xref="x",
            yref="y domain",
            x0=head * hs - 0.5,
            x1=(head + 1) * hs - 0.5,
            y0=0,
            y1=1,
            line=dict(color="black", width=2),
            label=dict(text=_("head {head}").format(head=head), textposition="top center"),
        )
        for head in range(nh)
    ]
    panel_titles = [
        dict(
            text=title,
            xref=f"{axis} domain",
            yref="paper",
            x=0.5,
            y=1.0,
            yanchor="bottom",
            showarrow=False,
        )
        for axis, (_matrix, title) in panels.items()
    ]
    fig.update_layout(
        xaxis=dict(domain=[0, 0.47], title=_("feature")),
        xaxis2=dict(domain=[0.53, 1], title=_("feature"), anchor="y"),
        yaxis=dict(type="category", autorange="reversed", automargin=True),
        shapes=head_boxes,
        annotations=panel_titles,
    )
    title = _("Layer {layer}: what the heads return, and what c_proj makes of it").format(
        layer=layer
    )
    fig = _layout(fig, title, max(400, 180 + 26 * t))
    fig.update_layout(margin=dict(t=110))
    return fig


# ---------------------------------------------------------------------------------------------
# Tables and captions: every number computed from what the page shows
# ---------------------------------------------------------------------------------------------


def model_view_caption(name: str, n_layer: int, n_head: int, n_tokens: int) -> str:
    """How many attention patterns the model view draws."""
    return _("{model}: {layers} × {heads} = {patterns} over your {tokens}.").format(
        model=plain(name),
        layers=ngettext("{n} layer", "{n} layers", n_layer),
        heads=ngettext("{n} head", "{n} heads", n_head),
        patterns=ngettext("{n} attention pattern", "{n} attention patterns", n_layer * n_head),
        tokens=ngettext("{n} token", "{n} tokens", n_tokens),
    )


def ranking_rows(ranked: Sequence[HeadStats], labels: dict[str, str]) -> list[dict]:
    """One table row per head, in the ranked order: layer, head and each statistic (three
    decimals) under its readable name."""
    return [
        {_("layer"): s.layer, _("head"): s.head}
        | {labels[name]: round(getattr(s, name), 3) for name in STATISTICS}
        for s in ranked
    ]


def ranking_caption(
    ranked: Sequence[HeadStats],
    key: str,
    labels: dict[str, str],
    n_tokens: int,
    uniform: float,
    top: int,
) -> str:
    """The top head by ``key``, how many heads the chart leaves out beyond ``top``, and the mean
    entropy ``uniform`` of a head that spreads every row evenly."""
    if not ranked:
        raise ValueError("there are no heads to rank")
    best = ranked[0]
    shown = _(", the chart shows the first {top}").format(top=top) if len(ranked) > top else ""
    return _(
        "Top head by {statistic}: {head}, {value}. {heads} on {tokens}{shown}. A head that "
        "spread every row evenly would have mean entropy {uniform} nats."
    ).format(
        statistic=labels[key],
        head=best.name,
        value=f"{getattr(best, key):.3f}",
        heads=ngettext("{n} head", "{n} heads", len(ranked)),
        tokens=ngettext("{n} token", "{n} tokens", n_tokens),
        shown=shown,
        uniform=f"{uniform:.3f}",
    )


def head_caption(weights: Tensor) -> str:
    """One head's (T, T) weights: row sums, where rows put their largest weight, the extremes."""
    previous, itself = strongest_key_habits(weights)
    t = weights.shape[0]
    return _(
        "Each row sums to 1 (largest deviation {deviation}). Rows whose largest weight is on the "
        "previous token: {previous} of {others}; on the token itself: {itself} of {rows}. "
        "Largest weight in the matrix {largest}, smallest {smallest}."
    ).format(
        deviation=f"{(weights.sum(-1) - 1).abs().max():.1e}",
        previous=previous,
        others=t - 1,
        itself=itself,
        rows=t,
        largest=f"{weights.max():.3f}",
        smallest=f"{weights.min():.3f}",
    )


def shape_rows(steps: Sequence[ShapeStep], column: str) -> list[dict[str, str]]:
    """The shapes table: each step, its code, its symbolic shape and, under ``column``, its
    actual shape written as 'a × b × c'."""
    return [
        {
            _("step"): _(step.what),
            _("code"): step.code,
            _("shape"): step.dims,
            column: " × ".join(map(str, step.shape)),
        }
        for step in steps
    ]


def _marked() -> None:
    """course.multi_head's shape steps, marked for the catalog (shape_rows translates them)."""
    _("input: one vector per token")
    _("queries (keys and values alike)")
    _("split the C features into nh heads")
    _("put the head axis first")
    _("scores: every query with every key")
    _("attention weights (rows sum to 1)")
    _("each head mixes its values")
    _("put the token axis first again")
    _("concatenate the heads")
    _("output projection W_O (C × C)")


def shapes_caption(config, n_tokens: int, parameters: dict[str, int]) -> str:
    """The sizes behind the shapes table and the parameters of the four projections."""
    c, nh = config.n_embd, config.n_head
    return _(
        "T = {tokens}, C = n_embd = {c}, nh = {heads}, hs = C / nh = {hs}; the scores are "
        "divided by √hs = {root}. Each of q_proj, k_proj, v_proj and c_proj holds {parameters} "
        "(C × C weights + C biases), {per_layer} per layer, whatever the number of heads."
    ).format(
        tokens=ngettext("{n} token", "{n} tokens", n_tokens),
        c=c,
        heads=ngettext("{n} head", "{n} heads", nh),
        hs=c // nh,
        root=f"{math.sqrt(c // nh):.3f}",
        parameters=ngettext("{n} parameter", "{n} parameters", parameters["q_proj"]),
        per_layer=f"{sum(parameters.values()):,}",
    )


def concatenation_caption(outputs: HeadOutputs, layer: int) -> str:
    """Mean length of the output vectors before and after ``c_proj``."""
    return _(
        "Layer {layer} as the model's own forward pass computed it on your sentence. Output "
        "vector lengths: {before} on average before c_proj, {after} after."
    ).format(
        layer=layer,
        before=f"{outputs.concatenated.norm(dim=-1).mean():.3f}",
        after=f"{outputs.projected.norm(dim=-1).mean():.3f}",
    )


def subject_row(family: str) -> str:
    """The row the subject score reads: BERT's verb, or for GPT the token before it."""
    return _("the verb") if family == "bert" else _("the token before the verb")


def subject_grid_caption(n_examples: int, best: tuple[int, int], rate: float, family: str) -> str:
    """The best head of the subject-score grid and the share of sentences it gets right."""
    layer, head = best
    return _(
        "{sentences}. Best: layer {layer}, head {head}, whose strongest weight from {row} "
        "(leaving out itself) lands on the subject noun in {rate} of them."
    ).format(
        sentences=ngettext(
            "{n} held-out agreement sentence", "{n} held-out agreement sentences", n_examples
        ),
        layer=layer,
        head=head,
        row=subject_row(family),
        rate=f"{rate:.0%}",
    )


def agreement_caption(
    weights: Tensor, tokens: Sequence[str], probe: AgreementProbe, subject: str, number: str
) -> str:
    """Where the probe's row of one head's (T, T) ``weights`` puts its strongest weight, and
    whether that is the subject (``subject`` is its text, ``number`` 'sg' or 'pl')."""
    target, on_subject = points_at_subject(weights[probe.query], probe)
    verdict = _("the subject") if on_subject else _("not the subject")
    row, key = tokens[probe.query], tokens[target]
    numbers = {"sg": _("singular"), "pl": _("plural")}
    return _(
        "Row {row} ({row_token}) puts its strongest weight, {weight}, on token {key} "
        "({key_token}): {verdict}. The subject is {subject}, {number}."
    ).format(
        row=probe.query,
        row_token=quoted_token(row),
        weight=f"{weights[probe.query, target]:.3f}",
        key=target,
        key_token=quoted_token(key),
        verdict=verdict,
        subject=quoted_token(subject.strip()),
        number=numbers.get(number, NUMBER_NAMES[number]),
    )
