"""Figures for the architecture-variants lesson: the parameters each position scheme adds, loss
curves side by side, and the loss at each position of windows longer than the training context.

Labels are the lesson's own variant names; every title and label is html-escaped anyway.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go

from tinyformers.course import variants as course
from tinyformers.course.variants import CONTEXT, Extrapolation
from tinyformers.i18n import _
from tinyformers.training.loop import Progress

FONT_SIZE = 16
GRID_COLOR = "#e5e5e5"
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#7f7f7f")


def variant_name(label: str) -> str:
    """A variant's name in the current language (the lesson's English name otherwise)."""
    names = {
        course.LEARNED: _("learned"),
        course.SINUSOIDAL: _("sinusoidal"),
        course.ROTARY: _("rotary"),
        course.NO_POSITIONS: _("no positions"),
        course.PRE_WARM: _("pre-LN, warm-up"),
        course.PRE_COLD: _("pre-LN, no warm-up"),
        course.POST_WARM: _("post-LN, warm-up"),
        course.POST_COLD: _("post-LN, no warm-up"),
    }
    return names.get(label, label)


def _layout(figure: go.Figure, title: str, height: int = 420, **extra) -> go.Figure:
    figure.update_layout(
        title={"text": html.escape(title), "x": 0, "xanchor": "left"},
        font_size=FONT_SIZE,
        height=height,
        template="none",
        plot_bgcolor="white",
        paper_bgcolor="white",
        xaxis={"gridcolor": GRID_COLOR, "zeroline": False},
        yaxis={"gridcolor": GRID_COLOR, "zeroline": False},
        margin={"l": 80, "r": 20, "t": 70, "b": 70},
        legend={"font": {"size": FONT_SIZE - 3}},
        **extra,
    )
    return figure


def parameters_chart(counts: dict[str, tuple[int, int]]) -> go.Figure:
    """Per position scheme, the parameters that hold positions and the rest of the model."""
    labels = [html.escape(variant_name(label)) for label in counts]
    held = [counts[label][0] for label in counts]
    rest = [total - h for h, total in counts.values()]
    figure = go.Figure(
        [
            go.Bar(x=labels, y=rest, name=_("the rest of the model"), marker_color="#c7c7c7"),
            go.Bar(x=labels, y=held, name=_("position vectors"), marker_color=COLORS[0]),
        ]
    )
    return _layout(
        figure,
        _("Parameters of each position scheme"),
        barmode="stack",
        yaxis_title=_("parameters"),
    )


def loss_curves_chart(histories: dict[str, list[Progress]], title: str) -> go.Figure:
    """The training loss of each variant against the step (validation loss as dots)."""
    figure = go.Figure()
    for color, (label, history) in zip(COLORS, histories.items(), strict=False):
        name = html.escape(variant_name(label))
        figure.add_trace(
            go.Scatter(
                x=[p.step for p in history],
                y=[p.train_loss for p in history],
                mode="lines",
                name=name,
                line={"color": color},
            )
        )
        validated = [p for p in history if p.val_loss is not None]
        figure.add_trace(
            go.Scatter(
                x=[p.step for p in validated],
                y=[p.val_loss for p in validated],
                mode="markers",
                name=_("{name} (validation)").format(name=name),
                marker={"color": color, "size": 8},
                showlegend=False,
            )
        )
    return _layout(figure, title, xaxis_title=_("step"), yaxis_title=_("loss (nats per character)"))


def extrapolation_chart(extrapolations: dict[str, Extrapolation]) -> go.Figure:
    """The mean loss at each position of long validation windows, one line per variant; the
    training context ends at the dashed line, and a refused variant stops there."""
    figure = go.Figure()
    for color, (label, result) in zip(COLORS, extrapolations.items(), strict=False):
        name = html.escape(variant_name(label)) + (
            _(" (cannot read further)") if result.refusal else ""
        )
        figure.add_trace(
            go.Scatter(
                x=list(range(len(result.losses))),
                y=result.losses,
                mode="lines",
                name=name,
                line={"color": color},
            )
        )
    figure.add_vline(
        x=CONTEXT - 0.5,
        line_dash="dash",
        line_color="#333",
        annotation_text=_("end of the training context"),
        annotation_position="top left",
    )
    return _layout(
        figure,
        _("Loss at each position of windows longer than the training context"),
        xaxis_title=_("position in the window"),
        yaxis_title=_("mean loss"),
    )


def extrapolation_caption(extrapolations: dict[str, Extrapolation]) -> str:
    """Each variant's mean loss inside and past its context, measured, or why it was refused."""
    parts = []
    for label, result in extrapolations.items():
        name, inside = variant_name(label), f"{result.inside:.3f}"
        if result.refusal:
            # A background run writes its refusal in English: say it again in this language.
            english = course.refusal_message(CONTEXT, course.LONGEST, "en")
            reason = result.refusal
            if reason == english:
                reason = course.refusal_message(CONTEXT, course.LONGEST)
            parts.append(
                _("{name}: {inside} inside; refused past it ({reason})").format(
                    name=name, inside=inside, reason=reason
                )
            )
        else:
            parts.append(
                _("{name}: {inside} inside, {beyond} past it").format(
                    name=name, inside=inside, beyond=f"{result.beyond:.3f}"
                )
            )
    opening = _("Mean loss on positions 0 to {last} and past them.").format(last=CONTEXT - 1)
    return opening + " " + "; ".join(parts) + "."


def final_rows(histories: dict[str, list[Progress]], parameters: dict[str, int]) -> list[dict]:
    """One table row per variant: its parameters and its last training and validation loss."""
    rows = []
    for label, history in histories.items():
        validated = [p.val_loss for p in history if p.val_loss is not None]
        rows.append(
            {
                _("Variant"): variant_name(label),
                _("Parameters"): parameters.get(label),
                _("Steps"): history[-1].step if history else 0,
                _("Training loss"): round(history[-1].train_loss, 3) if history else None,
                _("Validation loss"): round(validated[-1], 3) if validated else None,
            }
        )
    return rows
