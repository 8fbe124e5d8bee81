"""Figures for the distillation lesson: a masked word's distributions under the teacher and the
students (at T = 1 and at the chosen temperature), the students' training curves, and what the
comparison measured.

Pure functions: Plotly figures, table rows (lists of dicts for ``st.dataframe``) and the texts
of the page's captions; every piece of text that reaches a figure is html-escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tinyformers.course.distillation import (
    ALONE,
    DISTILLED,
    STUDENT_NAMES,
    TEACHER,
    UNTRAINED,
    DistillationResult,
    DistillSettings,
    Distributions,
    MaskedWord,
    ModelScores,
)
from tinyformers.figures.common import grouped_layout
from tinyformers.i18n import N_, _
from tinyformers.training.loop import Progress

HEIGHT = 440  # px: the chart beside the controls fits the first screen
COLORS = {
    TEACHER: "#1f77b4",
    UNTRAINED: "#9e9e9e",
    STUDENT_NAMES[DISTILLED]: "#d62728",
    STUDENT_NAMES[ALONE]: "#2ca02c",
}
METRICS = {
    "masked_accuracy": N_("masked-LM accuracy"),
    "agreement_accuracy": N_("verb number"),
    "teacher_agreement": N_("agrees with the teacher"),
}


def _color(name: str) -> str:
    return COLORS.get(name, "#333333")


def distributions_figure(found: Distributions) -> go.Figure:
    """Two panels, T = 1 and the chosen T: each model's probability of the teacher's top tokens
    for the masked word, as grouped bars."""
    t = f"{found.temperature:g}"
    figure = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=("T = 1", f"T = {html.escape(t)}")
    )
    tokens = [html.escape(token) for token in found.tokens]
    for column, probabilities in ((1, found.at_one), (2, found.at_t)):
        for name, values in probabilities.items():
            figure.add_trace(
                go.Bar(
                    x=tokens,
                    y=values,
                    name=html.escape(_(name)),
                    legendgroup=name,
                    showlegend=column == 1,
                    marker_color=_color(name),
                    hovertemplate=f"{html.escape(_(name))}<br>%{{x}}: %{{y:.3f}}<extra></extra>",
                ),
                row=1,
                col=column,
            )
    figure.update_yaxes(rangemode="tozero")  # each panel its own scale: softened bars are low
    figure.update_yaxes(title=_("probability"), row=1, col=1)
    figure.update_xaxes(tickangle=-40)
    return grouped_layout(figure, _("The masked word: the teacher's top tokens, softened"), HEIGHT)


def word_caption(word: MaskedWord, found: Distributions) -> str:
    """Which word is masked and how much each model gives its own favourite."""
    if word.typed:
        where = _("the [MASK] you typed at position {position}").format(position=word.position)
    else:
        where = _("position {position} (it held {answer}; type [MASK] to choose)").format(
            position=word.position, answer=repr(word.answer)
        )
    tops = "; ".join(
        _("{model}: {token} {one} at T = 1, {at_t} at T = {temperature}").format(
            model=_(name),
            token=repr(found.top[name]),
            one=f"{one:.3f}",
            at_t=f"{at_t:.3f}",
            temperature=f"{found.temperature:g}",
        )
        for name, (one, at_t) in found.top_probability.items()
    )
    return _("Masked: {where}. Each model's first choice — {tops}.").format(where=where, tops=tops)


def loss_chart(histories: Mapping[str, Sequence[Progress]], steps: int) -> go.Figure:
    """Each student's training loss against step (the distilled one's mixes both losses)."""
    figure = go.Figure()
    for label, history in histories.items():
        name = STUDENT_NAMES.get(label, label)
        figure.add_trace(
            go.Scatter(
                x=[p.step for p in history],
                y=[p.train_loss if math.isfinite(p.train_loss) else None for p in history],
                name=html.escape(_(name)),
                mode="lines",
                line={"color": _color(name), "width": 3},
                hovertemplate=_("step %{x}<br>loss %{y:.3f}") + "<extra></extra>",
            )
        )
    figure.update_xaxes(title=_("step"), range=[0, steps])
    figure.update_yaxes(title=_("training loss"), rangemode="tozero")
    return grouped_layout(figure, _("Training the two students"), HEIGHT)


def progress_text(histories: Mapping[str, Sequence[Progress]], steps: int) -> tuple[float, str]:
    """The share of the job done (two students of ``steps`` each) and what it is doing."""
    if not histories:
        return 0.0, _("Preparing the training sentences…")
    label, history = list(histories.items())[-1]
    done = (len(histories) - 1 + history[-1].step / steps) / len(STUDENT_NAMES)
    name = STUDENT_NAMES.get(label, label)
    return min(done, 1.0), _("Training the {student}: step {step} of {steps}").format(
        student=_(name), step=history[-1].step, steps=steps
    )


def loss_caption(settings: DistillSettings) -> str:
    return _(
        "The distilled student's loss is α · T² · KL + (1 − α) · cross-entropy with α = {alpha} "
        "and T = {temperature}; the other student's is the cross-entropy alone, so the two "
        "curves measure different things."
    ).format(alpha=f"{settings.alpha:g}", temperature=f"{settings.temperature:g}")


def score_rows(scores: Sequence[ModelScores]) -> list[dict[str, object]]:
    """One row per model: size, the three accuracies and the median time per sentence."""
    return [
        {
            _("model"): _(s.name),
            _("layers"): s.layers,
            _("parameters"): s.parameters,
            _("masked-LM accuracy"): round(s.masked_accuracy, 4),
            _("verb number"): round(s.agreement_accuracy, 4),
            _("agrees with the teacher"): round(s.teacher_agreement, 4),
            _("ms per sentence (median)"): round(s.median_ms, 3),
        }
        for s in scores
    ]


def scores_chart(scores: Sequence[ModelScores]) -> go.Figure:
    """The three accuracies of every model, grouped by measurement."""
    figure = go.Figure()
    labels = [_(label) for label in METRICS.values()]
    for s in scores:
        values = [getattr(s, key) for key in METRICS]
        figure.add_trace(
            go.Bar(
                x=labels,
                y=values,
                name=html.escape(_(s.name)),
                marker_color=_color(s.name),
                text=[f"{v:.1%}" for v in values],
                textposition="outside",
                cliponaxis=False,
                hovertemplate=f"{html.escape(_(s.name))}<br>%{{x}}: %{{y:.1%}}<extra></extra>",
            )
        )
    figure.update_yaxes(range=[0, 1.12], tickformat=".0%")
    return grouped_layout(figure, _("What each model got right on held-out sentences"), 460)


def _by_name(scores: Sequence[ModelScores]) -> dict[str, ModelScores]:
    return {s.name: s for s in scores}


def summary_text(result: DistillationResult) -> str | None:
    """The comparison in a few numbers, or None when a student is missing (a stopped run)."""
    found = _by_name(result.scores)
    names = (TEACHER, STUDENT_NAMES[DISTILLED], STUDENT_NAMES[ALONE])
    if any(name not in found for name in names):
        return None
    teacher, distilled, alone = (found[name] for name in names)
    return _(
        "The student has {parameters} of the teacher's parameters and takes {time} its time per "
        "sentence. Distilled, it agrees with the teacher on {agreement} of the masked positions "
        "against {alone_agreement} trained alone; masked-LM accuracy {accuracy} against "
        "{alone_accuracy}, verb number {verb} against {alone_verb} (the teacher: "
        "{teacher_accuracy} and {teacher_verb})."
    ).format(
        parameters=f"{distilled.parameters / teacher.parameters:.0%}",
        time=f"{distilled.median_ms / teacher.median_ms:.2f}×",
        agreement=f"{distilled.teacher_agreement:.1%}",
        alone_agreement=f"{alone.teacher_agreement:.1%}",
        accuracy=f"{distilled.masked_accuracy:.1%}",
        alone_accuracy=f"{alone.masked_accuracy:.1%}",
        verb=f"{distilled.agreement_accuracy:.1%}",
        alone_verb=f"{alone.agreement_accuracy:.1%}",
        teacher_accuracy=f"{teacher.masked_accuracy:.1%}",
        teacher_verb=f"{teacher.agreement_accuracy:.1%}",
    )


def settings_text(result: DistillationResult) -> str:
    s = result.settings
    kept = ", ".join(str(i) for i in result.kept)
    start = (
        _("teacher layers {kept}").format(kept=kept) if s.init == "teacher" else _("random weights")
    )
    return _(
        "Run: {steps} steps per student, batch {batch}, T = {temperature}, α = {alpha}, seed "
        "{seed}, starting from {start}; measured on {held_out} held-out sentences."
    ).format(
        steps=s.steps,
        batch=s.batch_size,
        temperature=f"{s.temperature:g}",
        alpha=f"{s.alpha:g}",
        seed=s.seed,
        start=start,
        held_out=s.held_out,
    )
