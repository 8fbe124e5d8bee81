"""Figures for the why-attention lesson: the attention GRU's alignment beside the Transformer's
cross-attention, the training curves, exact match against source length, and the time of a
training step against source length.

Pure functions: Plotly figures, table rows (lists of dicts for ``st.dataframe``) and the texts
of the page's captions; every piece of text that reaches a figure is html-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tinyformers.course.why_attention import (
    ATTENTION,
    MODEL_NAMES,
    PLAIN,
    TASKS,
    TRANSFORMER,
    Alignment,
    ComparisonResult,
    length_bands,
    share,
)
from tinyformers.figures.common import grouped_layout
from tinyformers.i18n import _, ngettext
from tinyformers.training.loop import Progress

HEIGHT = 440  # px: the chart beside the controls fits the first screen
COLORS = {PLAIN: "#d62728", ATTENTION: "#2ca02c", TRANSFORMER: "#1f77b4"}


def model_name(name: str) -> str:
    """A model's name (a key of ``MODEL_NAMES``) as the page shows it."""
    names = {
        PLAIN: _("GRU, one context vector"),
        ATTENTION: _("GRU with attention"),
        TRANSFORMER: _("Transformer"),
    }
    return names.get(name, MODEL_NAMES.get(name, name))


def task_label(task: str) -> str:
    """A task (a key of ``TASKS``) as the page shows it."""
    labels = {
        "reverse": _("reverse letters (hello → olleh)"),
        "date": _("rewrite a date (12 March 2021 → 2021-03-12)"),
    }
    return labels.get(task, TASKS.get(task, task))


def _labels(tokens: Sequence[str]) -> list[str]:
    """Tick labels: each token with its position, so repeated characters stay apart."""
    return [html.escape(f"{i}: {t if t != ' ' else '␣'}") for i, t in enumerate(tokens)]


def alignment_figure(found: Mapping[str, Alignment], trained: bool) -> go.Figure:
    """The attention GRU's weights and the Transformer's cross-attention side by side: a row
    per output token, a column per source character."""
    names = [name for name in (ATTENTION, TRANSFORMER) if name in found]
    if trained:
        titles = [html.escape(_("{model} (trained)").format(model=model_name(n))) for n in names]
    else:
        titles = [html.escape(_("{model} (untrained)").format(model=model_name(n))) for n in names]
    figure = make_subplots(rows=1, cols=len(names), subplot_titles=titles, horizontal_spacing=0.14)
    for column, name in enumerate(names, start=1):
        alignment = found[name]
        figure.add_trace(
            go.Heatmap(
                z=alignment.weights.tolist(),
                x=_labels(alignment.source),
                y=_labels(alignment.output),
                zmin=0.0,
                zmax=1.0,
                colorscale="Blues",
                showscale=column == len(names),
                colorbar={"title": _("weight")},
                hovertemplate=_("wrote %{y}<br>looked at %{x}<br>weight %{z:.3f}")
                + "<extra></extra>",
            ),
            row=1,
            col=column,
        )
        figure.update_xaxes(title_text=_("source"), tickangle=-60, row=1, col=column)
        figure.update_yaxes(title_text=_("output"), autorange="reversed", row=1, col=column)
    return grouped_layout(
        figure, _("Where each decoder looked while writing each character"), HEIGHT
    )


def alignment_caption(outputs: Mapping[str, str], target: str) -> str:
    """What each model wrote for the source, and the right answer."""
    parts = [f"{model_name(name)}: '{text}'" for name, text in outputs.items()]
    return _("Right answer: '{target}'.").format(target=target) + " " + "; ".join(parts) + "."


def loss_chart(histories: Mapping[str, Sequence[Progress]], steps: int) -> go.Figure:
    figure = go.Figure()
    for name, history in histories.items():
        figure.add_trace(
            go.Scatter(
                x=[p.step for p in history],
                y=[p.train_loss for p in history],
                name=html.escape(model_name(name)),
                line={"color": COLORS.get(name)},
            )
        )
    figure.update_xaxes(title_text=_("step"), range=[0, steps])
    figure.update_yaxes(title_text=_("training loss (cross-entropy)"))
    return grouped_layout(figure, _("Training the three models on the same batches"), 380)


def progress_text(histories: Mapping[str, Sequence[Progress]], steps: int) -> tuple[float, str]:
    """The share of the whole run done, and what is training now."""
    done = sum(h[-1].step for h in histories.values() if h)
    total = steps * len(MODEL_NAMES)
    current = [n for n in MODEL_NAMES if n in histories][-1:] or [PLAIN]
    name = current[0]
    step = histories[name][-1].step if name in histories else 0
    text = _("{model}: step {step} of {steps}").format(
        model=model_name(name), step=step, steps=steps
    )
    return min(1.0, done / total), text


def exact_match_chart(result: ComparisonResult) -> go.Figure:
    figure = go.Figure()
    for name, counts in result.exact.items():
        lengths = sorted(counts)
        figure.add_trace(
            go.Scatter(
                x=lengths,
                y=[counts[n][0] / counts[n][1] for n in lengths],
                customdata=[[counts[n][0], counts[n][1]] for n in lengths],
                name=html.escape(model_name(name)),
                mode="lines+markers",
                line={"color": COLORS[name]},
                hovertemplate=_("length %{x}: %{customdata[0]} of %{customdata[1]} right")
                + "<extra></extra>",
            )
        )
    figure.update_xaxes(title_text=_("source length (characters)"), dtick=1)
    figure.update_yaxes(title_text=_("exact match"), range=[0, 1.05], tickformat=".0%")
    return grouped_layout(figure, _("Exact match on held-out sources, by source length"), HEIGHT)


def timing_chart(result: ComparisonResult) -> go.Figure:
    figure = go.Figure()
    for name, by_length in result.timing.items():
        lengths = sorted(by_length)
        figure.add_trace(
            go.Scatter(
                x=lengths,
                y=[1000 * by_length[n] for n in lengths],
                name=html.escape(model_name(name)),
                mode="lines+markers",
                line={"color": COLORS[name]},
            )
        )
    figure.update_xaxes(title_text=_("source length (characters)"))
    figure.update_yaxes(title_text=_("ms per training step"), rangemode="tozero")
    return grouped_layout(
        figure, _("Time of one training step (forward and backward), by source length"), HEIGHT
    )


def result_rows(result: ComparisonResult) -> list[dict[str, object]]:
    """One row per model: size, exact match overall and on the shorter and longer sources, and
    the median training step of the run."""
    rows = []
    for name in result.exact:
        counts = result.exact[name]
        short, long = length_bands(counts)
        rows.append(
            {
                _("model"): model_name(name),
                _("parameters"): result.parameters[name],
                _("exact match"): share(counts),
                _("lengths {lengths}").format(lengths=f"{short[0]}–{short[-1]}"): share(
                    counts, short
                ),
                _("lengths {lengths}").format(lengths=f"{long[0]}–{long[-1]}"): share(counts, long),
                _("ms per training step"): round(result.median_step_ms(name), 1),
            }
        )
    return rows


def percent_columns(result: ComparisonResult) -> tuple[str, ...]:
    """The columns of ``result_rows`` that hold shares: exact match, overall and by length."""
    return tuple(list(result_rows(result)[0])[2:5])


def bottleneck_text(result: ComparisonResult) -> str:
    """The drop of each GRU from the shorter to the longer sources, in words."""
    parts = []
    for name in (PLAIN, ATTENTION):
        counts = result.exact[name]
        short, long = length_bands(counts)
        parts.append(
            _(
                "{model}: {short_share} right on sources of {short} characters, "
                "{long_share} on {long}"
            ).format(
                model=model_name(name),
                short_share=f"{share(counts, short):.0%}",
                short=f"{short[0]}–{short[-1]}",
                long_share=f"{share(counts, long):.0%}",
                long=f"{long[0]}–{long[-1]}",
            )
        )
    return "; ".join(parts) + "."


def timing_text(result: ComparisonResult) -> str:
    """How much each model's step time grew from the shortest to the longest timed source."""
    parts = []
    for name, by_length in result.timing.items():
        first, last = min(by_length), max(by_length)
        parts.append(
            _(
                "{model} {first_ms} ms at {first} characters, {last_ms} ms at {last} (×{ratio})"
            ).format(
                model=model_name(name),
                first_ms=f"{1000 * by_length[first]:.1f}",
                first=first,
                last_ms=f"{1000 * by_length[last]:.1f}",
                last=last,
                ratio=f"{by_length[last] / by_length[first]:.1f}",
            )
        )
    measured = ngettext(
        "Measured on this machine with {n} thread: {timings}.",
        "Measured on this machine with {n} threads: {timings}.",
        result.threads,
    )
    return measured.format(timings="; ".join(parts))


def settings_text(result: ComparisonResult) -> str:
    s = result.settings
    return _(
        "Task: {task}; {steps} steps of {batch} pairs per model, learning rate {rate}, "
        "GRU state {hidden}, seed {seed}."
    ).format(
        task=task_label(s.task),
        steps=s.steps,
        batch=s.batch_size,
        rate=f"{s.learning_rate:g}",
        hidden=s.n_hidden,
        seed=s.seed,
    )


def first_look_figure(alignment: Alignment) -> go.Figure:
    """The attention GRU's weights over the source at its first output step."""
    figure = go.Figure(
        go.Bar(
            x=_labels(alignment.source),
            y=alignment.weights[0].tolist(),
            marker_color=COLORS[ATTENTION],
        )
    )
    figure.update_xaxes(title_text=_("source character"))
    figure.update_yaxes(title_text=_("attention weight"), range=[0, 1])
    first = alignment.output[0] if alignment.output else ""
    title = _("Weights while writing the first character, {first}").format(first=repr(first))
    return grouped_layout(figure, title, 340)
