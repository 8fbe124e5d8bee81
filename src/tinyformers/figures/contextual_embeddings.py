"""Figures for the lesson on static and contextual embeddings.

Sentences and words come from the student; every such string is html-escaped before it reaches
a label, a legend or a hover box, because Plotly renders a few HTML tags in those.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go

from tinyformers.figures.common import SERIES_COLORS
from tinyformers.i18n import _

BACKGROUND = "#c7c7c7"
FONT_SIZE = 15
FIRST_CHART_HEIGHT = 420  # px: the first chart, on the first screen
HOVER_CHARS = 80


def escaped(text: str, limit: int = HOVER_CHARS) -> str:
    """``text`` cut to ``limit`` characters and escaped for a Plotly label."""
    cut = text if len(text) <= limit else text[: limit - 1] + "…"
    return html.escape(cut, quote=False)


def layer_names(n_layers: int) -> list[str]:
    """Axis labels of BERT's layers: 0 is the input to the first block."""
    return [_("0 (embeddings)"), *(str(n) for n in range(1, n_layers))]


def sentence_label(number: int) -> str:
    return _("sentence {number}").format(number=number + 1)


def similarity_chart(
    pairs: dict[tuple[int, int], Sequence[float]],
    sentences: Sequence[str],
    word: str,
    static: float | None,
) -> go.Figure:
    """One line per pair of sentences: the cosine of the word's two contextual vectors at every
    layer; a dashed line for the static vectors' similarity (None: the word has no static
    vector)."""
    figure = go.Figure()
    n_layers = len(next(iter(pairs.values()))) if pairs else 0
    names = layer_names(n_layers)
    if static is not None and names:
        figure.add_trace(
            go.Scatter(
                x=names,
                y=[static] * len(names),
                mode="lines",
                line=dict(color="#444444", dash="dash", width=3),
                name=_("word2vec (static)"),
                hovertemplate=_("word2vec: the same vector in every sentence<br>cosine %{y:.3f}")
                + "<extra></extra>",
            )
        )
    for n, ((i, j), values) in enumerate(pairs.items()):
        hover = f"{escaped(sentences[i])}<br>{escaped(sentences[j])}"
        figure.add_trace(
            go.Scatter(
                x=names,
                y=list(values),
                mode="lines+markers",
                line=dict(color=SERIES_COLORS[n % len(SERIES_COLORS)]),
                name=f"{i + 1} & {j + 1}",
                hovertemplate=f"{hover}<br>"
                + _("layer %{x}<br>cosine %{y:.3f}")
                + "<extra></extra>",
            )
        )
    figure.update_layout(
        title=_("How alike “{word}” is across your sentences, layer by layer").format(
            word=escaped(word, 30)
        ),
        xaxis=dict(title=_("BERT layer"), type="category"),
        yaxis_title=_("cosine similarity"),
        legend_title_text=_("sentences"),
        height=FIRST_CHART_HEIGHT,
        font=dict(size=FONT_SIZE),
        margin=dict(l=60, r=20, t=60, b=50),
    )
    return figure


def loss_chart(losses: Sequence[float]) -> go.Figure:
    """Skip-gram's training loss, step by step."""
    figure = go.Figure(
        go.Scatter(
            x=list(range(1, len(losses) + 1)),
            y=list(losses),
            mode="lines",
            hovertemplate=_("step %{x}<br>loss %{y:.3f}") + "<extra></extra>",
        )
    )
    figure.update_layout(
        title=_("Skip-gram training loss (negative sampling)"),
        xaxis_title=_("step"),
        yaxis_title=_("loss"),
        height=320,
        font=dict(size=FONT_SIZE),
        margin=dict(l=60, r=20, t=60, b=50),
    )
    return figure


def context_map(
    coords: Sequence[Sequence[float]],
    sentence_of: Sequence[int | None],
    sentences: Sequence[str],
    background: Sequence[str],
    word: str,
    explained: tuple[float, float],
    layer: str,
) -> go.Figure:
    """The word's vectors on a 2-D map. ``sentence_of[n]`` is the number of the student's
    sentence point ``n`` comes from, or None for a background point: the same word in a corpus
    sentence, whose text is ``background[k]`` for the k-th such point."""
    figure = go.Figure()
    rest = [n for n, s in enumerate(sentence_of) if s is None]
    if rest:
        figure.add_trace(
            go.Scatter(
                x=[coords[n][0] for n in rest],
                y=[coords[n][1] for n in rest],
                mode="markers",
                marker=dict(color=BACKGROUND, size=7),
                name=_("in corpus sentences"),
                hovertext=[escaped(text) for text in background],
                hoverinfo="text",
            )
        )
    for n, s in enumerate(sentence_of):
        if s is None:
            continue
        figure.add_trace(
            go.Scatter(
                x=[coords[n][0]],
                y=[coords[n][1]],
                mode="markers+text",
                marker=dict(color=SERIES_COLORS[s % len(SERIES_COLORS)], size=15, symbol="diamond"),
                text=[str(s + 1)],
                textposition="top center",
                name=f"{s + 1}: {escaped(sentences[s], 40)}",
                hovertext=[escaped(sentences[s])],
                hoverinfo="text",
            )
        )
    first, second = explained
    figure.update_layout(
        title=_("“{word}” at layer {layer}, mapped to 2-D (PCA)").format(
            word=escaped(word, 30), layer=html.escape(layer)
        ),
        xaxis_title=_("component 1 ({share} of the variance)").format(share=f"{first:.0%}"),
        yaxis_title=_("component 2 ({share})").format(share=f"{second:.0%}"),
        height=480,
        font=dict(size=FONT_SIZE),
        margin=dict(l=60, r=20, t=60, b=50),
        legend=dict(font=dict(size=12)),
    )
    return figure
