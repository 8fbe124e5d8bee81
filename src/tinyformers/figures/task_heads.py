"""Figures for the task-heads lesson: the sentence pair as BERT reads it (tokens and segment
ids), the runs' training curves, each head's held-out accuracy beside the best constant answer,
and the encoder's masked-LM loss before and after fine-tuning.

Pure functions: Plotly figures, table rows (lists of dicts for ``st.dataframe``) and caption
texts; every piece of text that reaches a figure is html-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from tinyformers.course.fine_tuning import METHODS
from tinyformers.course.task_heads import (
    FULL,
    HEADS,
    TAG_NAMES,
    HeadsResult,
    MaskedLMScore,
    PairInput,
    RunScore,
    SentenceReading,
)
from tinyformers.figures.common import grouped_layout
from tinyformers.i18n import _
from tinyformers.training.loop import Progress

HEIGHT = 440
SEGMENT_COLORS = ("#9ecae1", "#fdae6b")  # segment A, segment B
METHOD_COLORS = {FULL: "#d62728", "head": "#1f77b4", "bitfit": "#2ca02c", "lora": "#9467bd"}
BASELINE_COLOR = "#9e9e9e"
SHORT_HEADS = {"pair": "sentence pair", "tags": "word tags", "span": "subject span"}


def _head_names(heads: Sequence[str]) -> list[str]:
    """The short names of ``heads`` in the session's language."""
    names = {"pair": _("sentence pair"), "tags": _("word tags"), "span": _("subject span")}
    return [names[h] for h in heads]


def pair_figure(pair: PairInput) -> go.Figure:
    """One square per position of ``[CLS] A [SEP] B [SEP]``, at the height of its segment id,
    coloured by segment and labelled with its token."""
    labels = [f"{i}: {html.escape(token)}" for i, token in enumerate(pair.tokens)]
    figure = go.Figure()
    for segment, name in ((0, _("segment A (id 0)")), (1, _("segment B (id 1)"))):
        rows = [i for i, s in enumerate(pair.segments) if s == segment]
        figure.add_trace(
            go.Scatter(
                x=[labels[i] for i in rows],
                y=[segment for _ in rows],
                name=name,
                mode="markers+text",
                marker={"symbol": "square", "size": 22, "color": SEGMENT_COLORS[segment]},
                text=[html.escape(pair.tokens[i]) for i in rows],
                textposition=["top center" if i % 2 else "bottom center" for i in rows],
                hovertemplate="%{x}<br>" + _("segment id %{y}") + "<extra></extra>",
            )
        )
    figure.update_xaxes(
        categoryorder="array", categoryarray=labels, showticklabels=False, title=_("position")
    )
    figure.update_yaxes(title=_("segment id"), tickvals=[0, 1], range=[-0.7, 1.7])
    return grouped_layout(
        figure, _("The pair as BERT reads it: token and segment id of every position"), HEIGHT
    )


def progress_text(histories: Mapping[str, list[Progress]], runs: int, steps: int) -> tuple:
    """The progress bar's fraction and text: runs finished plus the current run's steps."""
    done = sum(1 for h in histories.values() if h and h[-1].step >= steps)
    current = next((h[-1].step for h in histories.values() if h and h[-1].step < steps), 0)
    fraction = min(1.0, (done * steps + current) / (runs * steps))
    return fraction, _("{done} of {runs} runs trained; step {step} of {steps} of the next").format(
        done=done, runs=runs, step=current, steps=steps
    )


def loss_chart(histories: Mapping[str, list[Progress]]) -> go.Figure:
    """The training loss of every run against the step."""
    figure = go.Figure()
    for label, history in histories.items():
        method = FULL if label.endswith(METHODS[FULL]) else None
        figure.add_trace(
            go.Scatter(
                x=[p.step for p in history],
                y=[p.train_loss for p in history],
                mode="lines",
                name=html.escape(label),
                line={"dash": "solid" if method == FULL else "dot"},
            )
        )
    figure.update_xaxes(title=_("step"))
    figure.update_yaxes(title=_("training loss"))
    return grouped_layout(figure, _("Training the heads: loss of every run"), 380)


def accuracy_chart(result: HeadsResult) -> go.Figure:
    """Held-out accuracy of each head, by method, beside the best constant answer."""
    heads = [h for h in HEADS if any(r.head == h for r in result.runs)]
    names = _head_names(heads)
    figure = go.Figure()
    for method in (FULL, result.settings.compare):
        runs = [result.run(h, method) for h in heads]
        figure.add_trace(
            go.Bar(
                x=names,
                y=[None if r is None else r.accuracy for r in runs],
                name=html.escape(_(METHODS[method])),
                marker_color=METHOD_COLORS[method],
            )
        )
    baselines = [next(r.baseline for r in result.runs if r.head == h) for h in heads]
    figure.add_trace(
        go.Bar(
            x=names,
            y=baselines,
            name=_("always the commonest answer"),
            marker_color=BASELINE_COLOR,
        )
    )
    figure.update_yaxes(title=_("held-out accuracy"), range=[0, 1.05], tickformat=".0%")
    return grouped_layout(figure, _("What each head got right on held-out examples"), 400)


def forgetting_chart(result: HeadsResult) -> go.Figure:
    """The encoder's masked-LM loss after each run, with the shipped encoder's as a line."""
    heads = [h for h in HEADS if any(r.head == h for r in result.runs)]
    names = _head_names(heads)
    figure = go.Figure()
    for method in (FULL, result.settings.compare):
        runs = [result.run(h, method) for h in heads]
        figure.add_trace(
            go.Bar(
                x=names,
                y=[None if r is None else r.masked_lm.loss for r in runs],
                name=html.escape(_(METHODS[method])),
                marker_color=METHOD_COLORS[method],
            )
        )
    figure.add_hline(
        y=result.before.loss,
        line_dash="dash",
        annotation_text=_("before fine-tuning: {loss}").format(loss=f"{result.before.loss:.3f}"),
        annotation_position="top left",
    )
    figure.update_yaxes(title=_("masked-LM loss on held-out stories"), rangemode="tozero")
    return grouped_layout(figure, _("Forgetting: the encoder's masked-LM loss after each run"), 400)


def result_rows(result: HeadsResult) -> list[dict]:
    """One row per run: accuracy, the best constant answer, what trained, and forgetting."""
    return [
        {
            _("head"): _(SHORT_HEADS[r.head]),
            _("method"): _(METHODS[r.method]),
            _("held-out accuracy"): r.accuracy,
            _("commonest answer"): r.baseline,
            _("trainable parameters"): r.trainable,
            _("masked-LM loss after"): round(r.masked_lm.loss, 4),
            _("masked-LM accuracy after"): r.masked_lm.accuracy,
            _("loss change"): round(result.forgetting(r), 4),
        }
        for r in result.runs
    ]


def score_rows(scores: Sequence[RunScore], before: MaskedLMScore | None) -> list[dict]:
    """One row per finished run, while the job goes on: accuracy and masked-LM loss."""
    rows = []
    for score in scores:
        row = {
            _("head"): _(SHORT_HEADS[score.head]),
            _("method"): _(METHODS[score.method]),
            _("held-out accuracy"): score.accuracy,
            _("commonest answer"): score.baseline,
            _("masked-LM loss after"): round(score.masked_lm.loss, 4),
        }
        if before is not None:
            row[_("loss change")] = round(score.masked_lm.loss - before.loss, 4)
        rows.append(row)
    return rows


def forgetting_text(result: HeadsResult) -> str | None:
    """A sentence comparing the two methods' average rise in masked-LM loss (None without both)."""
    compare = result.settings.compare
    rises = {}
    for method in (FULL, compare):
        runs = [r for r in result.runs if r.method == method]
        if not runs:
            return None
        rises[method] = sum(result.forgetting(r) for r in runs) / len(runs)
    return _(
        "Before fine-tuning the encoder's masked-LM loss is {loss} (accuracy {accuracy}). On "
        "average over the heads it rose by {full} with full fine-tuning and by {other} with "
        "{method}."
    ).format(
        loss=f"{result.before.loss:.3f}",
        accuracy=f"{result.before.accuracy:.1%}",
        full=f"{rises[FULL]:+.3f}",
        other=f"{rises[compare]:+.3f}",
        method=_(METHODS[compare]).lower(),
    )


def _tag_name(tag: str | None) -> str:
    """A grammar category's name in the session's language ("the", "that" and "is/are" are
    words of the grammar, shown as they are)."""
    names = {
        "end": _("full stop"),
        "noun": _("noun"),
        "name": _("name"),
        "pronoun": _("pronoun"),
        "verb": _("verb"),
        "adjective": _("adjective"),
        "preposition": _("preposition"),
    }
    if tag not in TAG_NAMES:
        return _("unknown word")
    return names.get(tag, TAG_NAMES[tag])


def _span_mark(reading: SentenceReading, word: int) -> str:
    first, last = reading.span
    return _("subject") if first <= word <= last else ""


def reading_rows(
    words: Sequence[str], grammar: Sequence[str | None], found: Mapping[str, SentenceReading]
) -> list[dict]:
    """One row per word of sentence A: the grammar's category, then each method's tag and
    whether its span head put the word in the subject."""
    rows = []
    for i, word in enumerate(words):
        row = {_("word"): word, _("grammar"): _tag_name(grammar[i])}
        for method, reading in found.items():
            row[_("tag ({method})").format(method=_(METHODS[method]))] = _tag_name(reading.tags[i])
            row[_("subject ({method})").format(method=_(METHODS[method]))] = _span_mark(reading, i)
        rows.append(row)
    return rows


def pair_text(found: Mapping[str, SentenceReading]) -> str:
    """Each method's probability that B continues A."""
    parts = [
        f"{_(METHODS[method]).lower()}: {reading.pair_probability:.0%}"
        for method, reading in found.items()
    ]
    return _("Probability that B continues A (its pronoun refers to A's subject): ") + "; ".join(
        parts
    )


def settings_text(result: HeadsResult) -> str:
    s = result.settings
    return _(
        "{steps} steps per run, batch {batch}, seed {seed}, {train} training and {held_out} "
        "held-out examples per head; masked-LM loss on {sentences} held-out stories sentences."
    ).format(
        steps=s.steps,
        batch=s.batch_size,
        seed=s.seed,
        train=s.train_examples,
        held_out=s.held_out,
        sentences=s.mlm_sentences,
    )
