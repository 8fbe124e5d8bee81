"""Figures for the BERT lesson: the input sum, the masking ledger, its statistics, static and
dynamic masking, the model's guesses for masked positions, and the captions under them.

Pure functions: each returns a Plotly figure, an HTML string or a Markdown caption. Every token is html-escaped
before it reaches HTML, a label, a hover box or a heatmap cell, since Plotly renders a few HTML
tags in those too.

Each figure is built in one call, ``go.Figure(data=..., layout=...)``: Plotly validates every
later ``update_layout`` or ``add_trace`` again, and ``make_subplots`` is several times slower
than writing its layout out (``_panels`` does that), which matters on a page that redraws after
every widget change.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType
from torch import Tensor

from tinyformers.course.bert import (
    BlankGuess,
    EmbeddingBreakdown,
    Ledger,
    LedgerStatistics,
    trained_positions,
)
from tinyformers.i18n import _, ngettext
from tinyformers.text.display import plain
from tinyformers.text.masking import (
    IGNORE_INDEX,
    LEDGER_NAMES,
    MASKED,
    NOT_SELECTED,
    RANDOM,
    UNCHANGED,
    MaskingRates,
)

FONT_SIZE = 16
SPECIAL = 4  # a fifth category next to the ledger codes, for drawing only
CATEGORY_NAMES = {**LEDGER_NAMES, SPECIAL: "special token (never selected)"}


def category_names() -> dict[int, str]:
    """``CATEGORY_NAMES`` in the current language."""
    return {
        NOT_SELECTED: _("not selected"),
        MASKED: _("selected → [MASK]"),
        RANDOM: _("selected → random token"),
        UNCHANGED: _("selected → unchanged"),
        SPECIAL: _("special token (never selected)"),
    }


def all_special() -> str:
    """What a sentence with no ordinary token gets: there is nothing to select or mask."""
    return _(
        "Every token here is special ([UNK] stands for characters the tokenizer does not know, "
        "and special tokens are never selected), so there is nothing to mask. Type words the "
        "model knows."
    )


CATEGORY_COLORS = {
    NOT_SELECTED: "#f2f2f2",
    MASKED: "#f4a3a3",
    RANDOM: "#ffd27f",
    UNCHANGED: "#a9c9f5",
    SPECIAL: "#c8c8c8",
}
SEGMENT_COLORS = ("#dfe7fd", "#e2f0d9")
OBSERVED_COLOR = "#1f77b4"
EXPECTED_COLOR = "#d62728"
ANSWER_COLOR = "#2ca02c"
MAX_HEIGHT = 560  # px: no chart of the lesson is taller
# The guesses open the lesson, so they stay within 450 px whatever the number of blanks and k.
GUESSES_MAX_HEIGHT = 450
GUESSES_FRAME = 110  # px: the title and the margins
GUESSES_PANEL_TITLE = 70  # px per row of panels
GUESSES_BAR = 28  # px per bar when there is room
GUESSES_MIN_BAR = 10


def escaped(token: str) -> str:
    """A token made safe and visible: HTML-escaped, spaces and newlines shown."""
    return html.escape(token.replace(" ", "␣").replace("\n", "⏎"))


def position_labels(tokens: Sequence[str]) -> list[str]:
    return [f"{i}: {escaped(token)}" for i, token in enumerate(tokens)]


# ---------------------------------------------------------------------------------------------
# Layout helpers
# ---------------------------------------------------------------------------------------------


def _layout(title: str, height: int, **settings) -> dict:
    """The settings every figure of the lesson shares, plus its own."""
    return dict(
        title=dict(text=title, x=0, xref="container", xanchor="left", pad=dict(l=10), font_size=18),
        height=height,
        font_size=FONT_SIZE,
        margin=dict(l=60, r=20, t=90, b=50),
        **settings,
    )


def _panels(
    panels: Sequence[Sequence[BaseTraceType]],
    titles: Sequence[str],
    layout: dict,
    *,
    stacked: bool = False,
    columns: int | None = None,
    gap: float = 0.03,
    column_gap: float = 0.12,
    x_axes: Sequence[dict] | dict | None = None,
    y_axes: Sequence[dict] | dict | None = None,
    share_y: bool = False,
) -> go.Figure:
    """Panels side by side (or ``stacked``, first on top, or in a grid of ``columns``, filled
    row by row), each with its own pair of axes.

    The layout ``make_subplots`` would make, written out directly. ``gap`` separates the panels
    along the direction they follow (rows in a grid), ``column_gap`` the columns of a grid.
    ``x_axes`` and ``y_axes`` are axis settings for every panel (one dict) or per panel (a
    list); ``share_y`` links the y axes of side-by-side panels and labels only the first.
    """
    count = len(panels)
    n_columns = 1 if stacked else count if columns is None else max(1, min(columns, count))
    n_rows = -(-count // n_columns)
    x_gap = gap if n_rows == 1 else column_gap
    width = (1 - x_gap * (n_columns - 1)) / n_columns
    height = (1 - gap * (n_rows - 1)) / n_rows
    data, layout = [], {**layout, "annotations": []}
    for k, (traces, title) in enumerate(zip(panels, titles, strict=True)):
        suffix = "" if k == 0 else str(k + 1)
        row, column = divmod(k, n_columns)
        left, top = column * (width + x_gap), 1 - row * (height + gap)
        # rounding may step just outside [0, 1]
        x_domain = [max(0.0, left), min(1.0, left + width)]
        y_domain = [max(0.0, top - height), min(1.0, top)]
        x_axis = {"anchor": f"y{suffix}", **_axis_settings(x_axes, k)}
        y_axis = {"anchor": f"x{suffix}", **_axis_settings(y_axes, k)}
        if n_columns > 1:
            x_axis["domain"] = x_domain
        if n_rows > 1:
            y_axis["domain"] = y_domain
        if share_y and k > 0:
            y_axis.update(matches="y", showticklabels=False)
        layout[f"xaxis{suffix}"], layout[f"yaxis{suffix}"] = x_axis, y_axis
        for trace in traces:
            trace.xaxis, trace.yaxis = f"x{suffix}", f"y{suffix}"
            data.append(trace)
        layout["annotations"].append(
            dict(
                text=title,
                x=(x_domain[0] + x_domain[1]) / 2,
                y=y_domain[1],
                xref="paper",
                yref="paper",
                xanchor="center",
                yanchor="bottom",
                showarrow=False,
                font_size=FONT_SIZE,
            )
        )
    return go.Figure(data=data, layout=layout)


def _axis_settings(axes: Sequence[dict] | dict | None, k: int) -> dict:
    if axes is None:
        return {}
    return dict(axes) if isinstance(axes, dict) else dict(axes[k])


def _category(ledger: Ledger, position: int) -> int:
    return SPECIAL if ledger.special[position] else ledger.codes[position]


def _discrete_colorscale() -> list[list]:
    """A Plotly colour scale with one flat band per category 0..4."""
    bands = len(CATEGORY_COLORS)
    scale = []
    for category, color in CATEGORY_COLORS.items():
        scale += [[category / bands, color], [(category + 1) / bands, color]]
    return scale


def _category_legend() -> list[go.Scatter]:
    """Legend entries for the ledger colours (heatmaps have no legend of their own)."""
    return [
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            marker=dict(size=14, symbol="square", color=CATEGORY_COLORS[category]),
            name=name,
        )
        for category, name in category_names().items()
    ]


# ---------------------------------------------------------------------------------------------
# Input representation
# ---------------------------------------------------------------------------------------------


def pair_chips(tokens: Sequence[str], segments: Sequence[int]) -> str:
    """HTML chips for ``[CLS] A [SEP] B [SEP]``, coloured by segment, each marked A or B."""
    chips = []
    for i, (token, segment) in enumerate(zip(tokens, segments, strict=True)):
        name = "AB"[segment]
        title = html.escape(_("position {i}, segment {name}").format(i=i, name=name))
        chips.append(
            f'<span title="{title}" style="background:'
            f"{SEGMENT_COLORS[segment]};padding:3px 6px;margin:2px;border-radius:5px;"
            f'font-family:monospace;font-size:18px;display:inline-block"><bdi>{escaped(token)}'
            f'</bdi><sub style="color:#555"> {name}</sub></span>'
        )
    return '<div style="line-height:2.2">' + "".join(chips) + "</div>"


def embedding_sum_figure(breakdown: EmbeddingBreakdown, normalized: Tensor) -> go.Figure:
    """Token, segment and position rows, their sum, and the sum after LayerNorm, as heatmaps.

    The first four panels share one colour scale, so their sizes compare; the LayerNorm panel
    has its own (its values are much larger).
    """
    normalized_name = _("LayerNorm(sum)")
    matrices = {
        _("token (wte)"): breakdown.token,
        _("+ segment (wse)"): breakdown.segment,
        _("+ position (wpe)"): breakdown.position,
        _("= sum"): breakdown.total,
        normalized_name: normalized,
    }
    shared = max(m.abs().max().item() for m in list(matrices.values())[:4]) or 1.0
    own = normalized.abs().max().item() or 1.0
    labels = [
        f"{label} ({'AB'[s]})"
        for label, s in zip(position_labels(breakdown.tokens), breakdown.segments, strict=True)
    ]
    heatmaps = [
        [
            go.Heatmap(
                z=matrix.detach().float().numpy(),
                y=labels,
                colorscale="RdBu",
                zmin=-(own if name == normalized_name else shared),
                zmax=own if name == normalized_name else shared,
                showscale=False,
                name=name,
                hovertemplate=name + _("<br>%{y}<br>dimension %{x}<br>%{z:.3f}<extra></extra>"),
            )
        ]
        for name, matrix in matrices.items()
    ]
    height = min(MAX_HEIGHT, max(380, 110 + 26 * len(labels)))
    return _panels(
        heatmaps,
        list(matrices),
        _layout(_("BERT's input: three rows added, then LayerNorm"), height),
        gap=0.02,
        x_axes={"title": _("dimension")},
        y_axes={"autorange": "reversed", "type": "category"},
        share_y=True,
    )


def embedding_norms_figure(breakdown: EmbeddingBreakdown) -> go.Figure:
    """Length of each of the three rows and of their sum, position by position."""
    parts = {
        _("token"): breakdown.token,
        _("segment"): breakdown.segment,
        _("position"): breakdown.position,
        _("sum"): breakdown.total,
    }
    labels = position_labels(breakdown.tokens)
    bars = [
        go.Bar(
            x=labels,
            y=matrix.norm(dim=-1).tolist(),
            name=name,
            hovertemplate=name + _("<br>%{x}<br>length %{y:.3f}<extra></extra>"),
        )
        for name, matrix in parts.items()
    ]
    layout = _layout(
        _("How long each row is"),
        440,
        barmode="group",
        xaxis=dict(type="category", tickangle=-45),
        yaxis=dict(title=_("vector length")),
    )
    return go.Figure(data=bars, layout=layout)


# ---------------------------------------------------------------------------------------------
# The masking ledger
# ---------------------------------------------------------------------------------------------

_CELL = (
    "display:inline-flex;flex-direction:column;align-items:center;gap:2px;"
    "padding:6px 10px;border-radius:8px;min-width:3.2em;font-size:18px;"
)


def _ledger_cell(
    position: str, token: str, seen: str, label: str, background: str, border: str, title: str
) -> str:
    """One box of the ledger; every argument is already escaped."""
    return (
        f'<div title="{title}" style="{_CELL}background:{background};border:2px {border}">'
        f'<span style="font-size:14px;color:#555">{position}</span>'
        f'<span style="font-family:monospace"><bdi>{token}</bdi></span>'
        '<span style="color:#777">↓</span>'
        f'<span style="font-family:monospace;font-weight:bold"><bdi>{seen}</bdi></span>'
        f'<span style="font-size:14px">{label}</span></div>'
    )


def ledger_legend_html() -> str:
    """What the colours of the ledger mean."""
    items = "".join(
        f'<span style="display:inline-block;margin:2px 14px 2px 0"><span style="display:'
        f"inline-block;width:16px;height:16px;vertical-align:middle;border:1px solid #999;"
        f'background:{CATEGORY_COLORS[c]}"></span> {html.escape(name)}</span>'
        for c, name in category_names().items()
    )
    return f'<div style="font-size:16px;margin:6px 0">{items}</div>'


def ledger_html(ledger: Ledger) -> str:
    """The ledger of one draw: for every position, the original token, what the model reads
    and the label the loss uses (the original token, or -100 where no loss is taken)."""
    names = category_names()
    header = (_("position"), _("token"), _("model reads"), _("label"))
    cells = [_ledger_cell(*map(html.escape, header), "white", "solid #999", "")]
    for i, (token, seen, label) in enumerate(
        zip(ledger.tokens, ledger.seen, ledger.labels, strict=True)
    ):
        category = _category(ledger, i)
        shown_label = (
            html.escape(_("{ignore} (no loss)").format(ignore=IGNORE_INDEX))
            if label == IGNORE_INDEX
            else escaped(token)
        )
        border = "dashed #888" if category == SPECIAL else "solid #999"
        cells.append(
            _ledger_cell(
                str(i),
                escaped(token),
                escaped(seen),
                shown_label,
                CATEGORY_COLORS[category],
                border,
                html.escape(names[category]),
            )
        )
    return (
        '<div style="display:flex;flex-wrap:wrap;gap:6px;align-items:stretch">'
        + "".join(cells)
        + "</div>"
        + ledger_legend_html()
    )


# ---------------------------------------------------------------------------------------------
# Many draws
# ---------------------------------------------------------------------------------------------


def resample_figure(stats: LedgerStatistics, rates: MaskingRates) -> go.Figure:
    """Left: how many tokens a draw selects, observed against the exact distribution.
    Right: the select rate and the split of the selected tokens, observed against configured."""
    counts = list(range(len(stats.selected_histogram)))
    histogram = [
        go.Bar(
            x=counts,
            y=[n / stats.samples for n in stats.selected_histogram],
            name=_("observed share of draws"),
            marker_color=OBSERVED_COLOR,
            hovertemplate=_("%{x} selected<br>%{y:.2%} of draws<extra></extra>"),
        ),
        go.Scatter(
            x=counts,
            y=stats.expected_histogram[: len(counts)],
            mode="markers",
            marker=dict(color=EXPECTED_COLOR, size=12, symbol="diamond"),
            name=_("expected (exact)"),
            hovertemplate=_("%{x} selected<br>expected %{y:.2%}<extra></extra>"),
        ),
    ]
    names = [
        _("selected<br>(of ordinary)"),
        _("→ [MASK]<br>(of selected)"),
        _("→ random"),
        _("→ unchanged"),
    ]
    observed = [stats.select_rate, stats.share(MASKED), stats.share(RANDOM), stats.share(UNCHANGED)]
    configured = [rates.select_rate, rates.mask_rate, rates.random_rate, rates.unchanged_rate]
    rate_bars = [
        go.Bar(
            x=names,
            y=values,
            name=name,
            marker_color=color,
            opacity=opacity,
            hovertemplate=f"{name}<br>%{{y:.2%}}<extra></extra>",
        )
        for values, name, color, opacity in (
            (observed, _("observed rate"), OBSERVED_COLOR, 1.0),
            (configured, _("configured rate"), EXPECTED_COLOR, 0.55),
        )
    ]
    layout = _layout(
        _("{draws} draws of the masking").format(draws=f"{stats.samples:,}"),
        500,
        barmode="group",
        legend=dict(orientation="h", y=-0.3),
    )
    return _panels(
        [histogram, rate_bars],
        [_("Tokens selected per draw"), _("Rates: observed and configured")],
        layout,
        gap=0.1,
        x_axes=[{"title": _("tokens selected in one draw"), "dtick": 1}, {"type": "category"}],
        y_axes=[
            {"title": _("share of draws"), "tickformat": ".0%"},
            {"tickformat": ".0%", "range": [0, 1.05]},
        ],
    )


# ---------------------------------------------------------------------------------------------
# Static and dynamic masking
# ---------------------------------------------------------------------------------------------


def epochs_figure(static: Sequence[Ledger], dynamic: Sequence[Ledger]) -> go.Figure:
    """What the model reads in each epoch, coloured by ledger code: static masking on top,
    dynamic below."""
    if not static or len(static) != len(dynamic):
        raise ValueError("static and dynamic masking need the same, non-zero number of epochs")
    labels = position_labels(static[0].tokens)
    epochs = [_("epoch {e}").format(e=e) for e in range(1, len(static) + 1)]
    heatmaps = [
        [
            go.Heatmap(
                z=[[_category(ledger, i) for i in range(len(labels))] for ledger in ledgers],
                x=labels,
                y=epochs,
                text=[[escaped(t) for t in ledger.seen] for ledger in ledgers],
                texttemplate="%{text}",
                textfont=dict(size=14),
                colorscale=_discrete_colorscale(),
                zmin=0,
                zmax=len(CATEGORY_COLORS),
                showscale=False,
                xgap=2,
                ygap=2,
                hovertemplate=_("%{y}, %{x}<br>model reads %{text}<extra></extra>"),
            )
        ]
        for ledgers in (static, dynamic)
    ]
    heatmaps[-1] += _category_legend()
    height = min(MAX_HEIGHT, 280 + 2 * 34 * len(static))
    layout = _layout(
        _("The same sentence, epoch after epoch"),
        height,
        plot_bgcolor="white",
        legend=dict(orientation="h", y=-120 / height, yanchor="top"),
    )
    return _panels(
        heatmaps,
        [_("Static: masked once, reused"), _("Dynamic: masked again each epoch")],
        layout,
        stacked=True,
        gap=50 / height,
        x_axes=[
            {"type": "category", "showticklabels": False},
            {"type": "category", "tickangle": -45},
        ],
        y_axes={"autorange": "reversed", "type": "category"},
    )


# ---------------------------------------------------------------------------------------------
# Filling in the blanks
# ---------------------------------------------------------------------------------------------


def predictions_figure(guesses: Sequence[BlankGuess]) -> go.Figure:
    """One panel per masked position: the model's top-k tokens and their probabilities; the
    token that was really there is drawn in green."""
    if not guesses:
        raise ValueError("there are no masked positions to show")
    titles = [
        _("position {position} (typed [MASK])").format(position=g.position)
        if g.answer is None
        else _("position {position} (was {answer})").format(
            position=g.position, answer=escaped(g.answer)
        )
        for g in guesses
    ]
    bars = [
        [
            go.Bar(
                x=guess.probabilities,
                y=[f"{rank}. {escaped(t)}" for rank, t in enumerate(guess.tokens, start=1)],
                orientation="h",
                marker_color=[
                    ANSWER_COLOR if t == guess.answer else OBSERVED_COLOR for t in guess.tokens
                ],
                text=[f"{p:.1%}" for p in guess.probabilities],
                textposition="outside",
                showlegend=False,
                hovertemplate=_("%{y}<br>probability %{x:.2%}<extra></extra>"),
            )
        ]
        for guess in guesses
    ]
    columns = 1 if len(guesses) == 1 else 2
    rows = -(-len(guesses) // columns)
    k = max(len(g.tokens) for g in guesses)
    room = (GUESSES_MAX_HEIGHT - GUESSES_FRAME - rows * GUESSES_PANEL_TITLE) / (rows * k)
    bar = max(GUESSES_MIN_BAR, min(GUESSES_BAR, room))
    height = min(GUESSES_MAX_HEIGHT, GUESSES_FRAME + rows * (GUESSES_PANEL_TITLE + bar * k))
    return _panels(
        bars,
        titles,
        _layout(_("The model's guesses for each [MASK]"), round(height)),
        columns=columns,
        gap=75 / height,
        x_axes={"range": [0, 1.15], "tickformat": ".0%"},
        y_axes={
            "autorange": "reversed",
            "type": "category",
            "automargin": True,
            "dtick": 1,  # every guess labelled, however small the bars
            "tickfont": {"size": FONT_SIZE if bar >= 20 else 11},
        },
    )


def attention_from_figure(weights: Tensor, tokens: Sequence[str], position: int) -> go.Figure:
    """Where one position looks, every head of every layer: ``weights`` is (layers, heads, T)."""
    layers, heads, length = weights.shape
    if length != len(tokens):
        raise ValueError(f"{length} attention columns but {len(tokens)} tokens")
    rows = [
        _("layer {layer} · head {head}").format(layer=layer, head=head)
        for layer in range(layers)
        for head in range(heads)
    ]
    heatmap = go.Heatmap(
        z=weights.reshape(layers * heads, length).float().numpy(),
        x=position_labels(tokens),
        y=rows,
        colorscale="Blues",
        zmin=0,
        zmax=1,
        colorbar=dict(title=_("weight")),
        hovertemplate=_("%{y}<br>to %{x}<br>weight %{z:.3f}<extra></extra>"),
    )
    layout = _layout(
        _("Where position {position} ({token}) looks").format(
            position=position, token=escaped(tokens[position])
        ),
        min(MAX_HEIGHT, max(400, 180 + 26 * len(rows))),
        xaxis=dict(type="category", tickangle=-45),
        yaxis=dict(autorange="reversed", type="category"),
    )
    return go.Figure(data=[heatmap], layout=layout)


# ---------------------------------------------------------------------------------------------
# Captions (Markdown)
# ---------------------------------------------------------------------------------------------


def embedding_caption(
    breakdown: EmbeddingBreakdown, lengths: dict[str, float], segment_rows: Sequence[float]
) -> str:
    """The input's size, the average length of each row (``EmbeddingBreakdown.mean_lengths``)
    and the lengths of the two segment rows."""
    segment_a, segment_b = segment_rows
    row_names = {
        "token": _("token"),
        "segment": _("segment"),
        "position": _("position"),
        "sum": _("sum"),
        "after LayerNorm": _("after LayerNorm"),
    }
    averages = ", ".join(
        f"{row_names.get(name, name)} {value:.3f}" for name, value in lengths.items()
    )
    return _(
        "{positions} positions, {in_b} of them in segment B. Average vector length: {averages}. "
        "Segment rows: A {a}, B {b}."
    ).format(
        positions=len(breakdown.ids),
        in_b=sum(breakdown.segments),
        averages=averages,
        a=f"{segment_a:.3f}",
        b=f"{segment_b:.3f}",
    )


def ledger_caption(ledger: Ledger, seed: int, draw: int) -> str:
    """What draw number ``draw`` (counted from 1) did: how many tokens it selected, how they
    split, and which positions carry a loss."""
    loss = ledger.loss_positions
    where = (
        _("positions {positions}").format(positions=", ".join(map(str, loss)))
        if loss
        else _("no position")
    )
    return _(
        "Seed {seed}, draw {draw}: {selected} of {ordinary} ordinary tokens selected "
        "({masked} → [MASK], {random} → random, {unchanged} unchanged). Loss at {where}; the "
        "other {rest} labels are -100."
    ).format(
        seed=seed,
        draw=draw,
        selected=len(loss),
        ordinary=ledger.n_ordinary,
        masked=ledger.count(MASKED),
        random=ledger.count(RANDOM),
        unchanged=ledger.count(UNCHANGED),
        where=where,
        rest=len(ledger.ids) - len(loss),
    )


def resample_caption(stats: LedgerStatistics, rates: MaskingRates, seed: int) -> str:
    """The measured rates of many draws next to the configured ones."""
    caption = _(
        "{draws} draws with seed {seed} on {eligible} ordinary tokens: {rate} selected "
        "(configured {configured}), {mean} tokens per draw on average"
    ).format(
        draws=f"{stats.samples:,}",
        seed=seed,
        eligible=stats.eligible,
        rate=f"{stats.select_rate:.2%}",
        configured=f"{rates.select_rate:.0%}",
        mean=f"{stats.mean_selected:.2f}",
    )
    if not stats.selected:
        return caption + _(
            ". No draw selected anything, so the split of the selected is undefined."
        )
    shares = [f"{stats.share(code):.2%}" for code in (MASKED, RANDOM, UNCHANGED)]
    return caption + _(
        ". Of the {selected} selected: {masked} → [MASK], {random} → random, {unchanged} unchanged."
    ).format(
        selected=f"{stats.selected:,}", masked=shares[0], random=shares[1], unchanged=shares[2]
    )


def epochs_caption(static: Sequence[Ledger], dynamic: Sequence[Ledger], seed: int) -> str:
    """How many positions static and dynamic masking trained on over the same epochs."""
    if not static or len(static) != len(dynamic):
        raise ValueError("static and dynamic masking need the same, non-zero number of epochs")
    epochs = len(static)
    over = ngettext("Over {n} epoch", "Over {n} epochs", epochs)
    return _(
        "{over} with seed {seed}, of {ordinary} ordinary positions: static masking trained on "
        "{static}, dynamic masking on {dynamic}."
    ).format(
        over=over,
        seed=seed,
        ordinary=static[0].n_ordinary,
        static=len(trained_positions(static)),
        dynamic=len(trained_positions(dynamic)),
    )


def guesses_caption(guesses: Sequence[BlankGuess]) -> str:
    """Where the original token of each blank ranks among the model's guesses."""
    return " ".join(
        _(
            "Position {position}: you typed [MASK], so there is no original; the model's first "
            "choice is {token} ({probability})."
        ).format(
            position=g.position,
            token=plain(repr(g.tokens[0])),
            probability=f"{g.probabilities[0]:.1%}",
        )
        if g.answer is None
        else _(
            "Position {position}: the original {token} is choice {rank} ({probability})."
        ).format(
            position=g.position,
            token=plain(repr(g.answer)),
            rank=g.answer_rank,
            probability=f"{g.answer_probability:.1%}",
        )
        for g in guesses
    )


def subject_head_caption(card: dict) -> str:
    """What the model card says about the head that links a verb to its subject."""
    return _(
        "The model card: from the main verb, layer {layer} head {head} looks hardest at the "
        "subject noun on {rate} of held-out agreement sentences. The view below opens on that "
        "layer."
    ).format(
        layer=card["subject_head_layer"],
        head=card["subject_head"],
        rate=f"{card['subject_head_rate']:.0%}",
    )
