"""The class view's figure: what a room answered to the question posed to it."""

from __future__ import annotations

import html
from collections import Counter

import plotly.graph_objects as go

from tinyformers.i18n import _

RIGHT_COLOR, WRONG_COLOR, HIDDEN_COLOR = "#2ca02c", "#d62728", "#7f7f7f"
MAX_LABEL = 30


def answers_chart(tally: Counter, revealed: bool) -> go.Figure:
    """Bars: how many students gave each answer, most common first. Once the answer is
    revealed, right answers are green and wrong ones red; before, every bar is grey.

    ``tally`` counts (answer, right) pairs, as ``store.room_tally`` returns them."""
    counts: Counter = Counter()
    right: dict[str, bool] = {}
    for (answer, correct), n in tally.items():
        counts[answer] += n
        right[answer] = right.get(answer, False) or bool(correct)
    shown = [answer for answer, _count in counts.most_common()]
    colors = [
        (RIGHT_COLOR if right[a] else WRONG_COLOR) if revealed else HIDDEN_COLOR for a in shown
    ]
    figure = go.Figure(
        go.Bar(
            x=[_label(a) for a in shown],
            y=[counts[a] for a in shown],
            marker_color=colors,
            text=[f"{counts[a]:,}" for a in shown],
            textposition="outside",
            hovertemplate=_("%{x}: %{y} students") + "<extra></extra>",
        )
    )
    title = _("The room's answers (green: right)") if revealed else _("The room's answers")
    figure.update_layout(title=title, height=380, margin=dict(l=50, r=20, t=60, b=80))
    figure.update_yaxes(title=_("students"), rangemode="tozero")
    return figure


def _label(answer: str) -> str:
    text = answer if len(answer) <= MAX_LABEL else answer[: MAX_LABEL - 1] + "…"
    return html.escape(text)
