"""Figures for the fine-tuning lesson: examples of the task, training curves, and what each
fine-tuning run cost (trainable parameters, accuracy, time per step, optimizer memory).

Pure functions: Plotly figures, table rows (lists of dicts for ``st.dataframe``), HTML
strings for ``st.html`` in which every piece of text is html-escaped, and the texts of the
page's captions and progress bar.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tinyformers.course.fine_tuning import (
    CORRUPTIONS,
    GRAMMATICAL,
    LABELS,
    METHODS,
    ORIGINAL,
    Example,
    MethodResult,
    MethodSettings,
    RunsProgress,
    TaskData,
    ZeroShotResult,
    grammatical_share,
    parameter_arithmetic,
)
from tinyformers.i18n import N_, _
from tinyformers.training.loop import Progress

FONT_SIZE = 16
SMALL_FONT_SIZE = 13  # beside the controls, in a narrower column
PRIMARY_HEIGHT = 440  # px: the chart beside the controls fits the first screen
TITLE_WIDTH = 44  # characters of a title line beside the controls
TEMPLATE = "plotly_white"
METHOD_COLORS = dict(
    zip(METHODS, ("#d62728", "#7f7f7f", "#ff7f0e", "#2ca02c", "#1f77b4", "#9467bd"), strict=True)
)
LABEL_COLORS = {GRAMMATICAL: "#dcfce7", 1 - GRAMMATICAL: "#fee2e2"}
KIND_NAMES = {ORIGINAL: N_("real sentence"), **CORRUPTIONS}
SHORT_KIND_NAMES = {
    ORIGINAL: N_("real sentences"),
    "verb": N_("verb number flipped"),
    "drop": N_("word left out"),
    "swap": N_("words swapped"),
}


def _layout(figure: go.Figure, title: str, height: int, **extra) -> go.Figure:
    figure.update_layout(
        title={"text": html.escape(title)},
        font_size=FONT_SIZE,
        height=height,
        template=TEMPLATE,
        margin={"l": 90, "r": 30, "t": 110, "b": 70},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        **extra,
    )
    return figure


def beside_controls(figure: go.Figure) -> go.Figure:
    """A chart made to sit beside the controls at the top of the page: low enough for the first
    screen, in smaller type, its title on two lines when it is long, its legend under the plot."""
    figure = go.Figure(figure)  # a copy: the figure may be drawn elsewhere too
    title = "<br>".join(textwrap.wrap(figure.layout.title.text or "", TITLE_WIDTH))
    figure.update_layout(
        height=min(figure.layout.height or PRIMARY_HEIGHT, PRIMARY_HEIGHT),
        font_size=SMALL_FONT_SIZE,
        title={"text": title, "font": {"size": SMALL_FONT_SIZE + 2}},
        margin={"l": 60, "t": 70 if "<br>" in title else 50, "b": 40},
        legend={
            "orientation": "h",
            "x": 0,
            "y": -0.15,
            "yanchor": "top",
            "entrywidth": 0.5,  # two entries a row
            "entrywidthmode": "fraction",
        },
    )
    for update in (figure.update_xaxes, figure.update_yaxes):
        update(automargin=True, title_font_size=SMALL_FONT_SIZE)
    return figure


def run_names(results: Sequence[MethodResult]) -> list[str]:
    """ "1. LoRA", "2. Adapters", …: a run's number keeps two runs of one method apart."""
    return [f"{n}. {result.label}" for n, result in enumerate(results, start=1)]


# ---------------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------------


def examples_html(examples: Sequence[Example]) -> str:
    """A table of examples: the sentence, its label and how it was made (escaped)."""
    rows = []
    for example in examples:
        made = _(KIND_NAMES.get(example.kind, example.kind))
        if example.kind != ORIGINAL:
            source = _("(from “{sentence}”)").format(sentence=html.escape(example.source))
            made += f' <span style="color:#666">{source}</span>'
        rows.append(
            f'<tr style="background:{LABEL_COLORS[example.label]}">'
            f'<td style="padding:6px 10px;font-family:monospace"><bdi>'
            f"{html.escape(example.text)}</bdi></td>"
            f'<td style="padding:6px 10px">{_(LABELS[example.label])}</td>'
            f'<td style="padding:6px 10px">{made}</td></tr>'
        )
    header = "".join(
        f'<th style="text-align:left;padding:6px 10px">{name}</th>'
        for name in (_("sentence"), _("label"), _("made from"))
    )
    return (
        f'<table style="border-collapse:collapse;font-size:{FONT_SIZE}px;width:100%">'
        f"<thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def split_counts(examples: Sequence[Example]) -> dict[str, int]:
    """How many examples of each kind (``ORIGINAL`` or a corruption) a split holds, real
    sentences first."""
    counts = dict.fromkeys((ORIGINAL, *CORRUPTIONS), 0)
    for example in examples:
        counts[example.kind] += 1
    return {kind: count for kind, count in counts.items() if count}


def split_text(examples: Sequence[Example]) -> str:
    """ "400 real sentences and 400 corrupted (134 verb number flipped, …)"."""
    counts = split_counts(examples)
    real = counts.pop(ORIGINAL, 0)
    kinds = ", ".join(f"{n} {_(SHORT_KIND_NAMES[kind])}" for kind, n in counts.items())
    return _("{real} real sentences and {corrupted} corrupted ({kinds})").format(
        real=real, corrupted=sum(counts.values()), kinds=kinds
    )


# ---------------------------------------------------------------------------------------------
# What each method would train
# ---------------------------------------------------------------------------------------------


def plan_chart(counts: dict[str, tuple[int, int]], title: str) -> go.Figure:
    """One bar per method: the parameters it trains (log axis), labelled with the count and the
    share of all the classifier's parameters. ``counts`` maps a method key to (trainable, total)."""
    if not counts:
        raise ValueError("there are no methods to compare")
    methods = list(counts)
    trainable = [counts[m][0] for m in methods]
    figure = go.Figure(
        go.Bar(
            x=trainable,
            y=[html.escape(_(METHODS[m])) for m in methods],
            orientation="h",
            marker_color=[METHOD_COLORS[m] for m in methods],
            text=[
                f"{n:,} ({n / counts[m][1]:.2%})" for n, m in zip(trainable, methods, strict=True)
            ],
            textposition="outside",
            cliponaxis=False,
            hovertemplate=_("%{y}: %{x:,} trainable parameters") + "<extra></extra>",
        )
    )
    figure.update_xaxes(type="log", dtick=1, title=_("trainable parameters (log scale)"))
    figure.update_yaxes(autorange="reversed")
    figure = _layout(figure, title, 140 + 58 * len(methods), showlegend=False)
    figure.update_layout(margin={"r": 170})
    return figure


def methods_chart(model_name: str, counts: dict[str, tuple[int, int]]) -> go.Figure | None:
    """``plan_chart`` of the methods whose settings are valid on ``model_name`` (None if none)."""
    title = _("Parameters each method trains in a classifier on {model}").format(model=model_name)
    return plan_chart(counts, title) if counts else None


# ---------------------------------------------------------------------------------------------
# Training curves
# ---------------------------------------------------------------------------------------------


def loss_chart(
    histories: dict[str, Sequence[Progress]], title: str, max_steps: int | None = None
) -> go.Figure:
    """Training loss (lines) and held-out loss (markers) against step, one colour per run."""
    figure = go.Figure()
    for n, (label, history) in enumerate(histories.items()):
        color = METHOD_COLORS.get(_method_of(label), "#333")
        dash = ("solid", "dot", "dash")[n // len(METHOD_COLORS) % 3]
        figure.add_trace(
            go.Scatter(
                x=[p.step for p in history],
                y=[p.train_loss if math.isfinite(p.train_loss) else None for p in history],
                name=html.escape(label),
                legendgroup=label,
                mode="lines",
                line={"color": color, "width": 3, "dash": dash},
                hovertemplate=_("step %{x}<br>training loss %{y:.3f}") + "<extra></extra>",
            )
        )
        held_out = [p for p in history if p.val_loss is not None]
        figure.add_trace(
            go.Scatter(
                x=[p.step for p in held_out],
                y=[p.val_loss for p in held_out],
                name=html.escape(_("{run}: held-out").format(run=label)),
                legendgroup=label,
                showlegend=False,
                mode="markers",
                marker={"color": color, "size": 11, "symbol": "diamond"},
                hovertemplate=_("step %{x}<br>held-out loss %{y:.3f}") + "<extra></extra>",
            )
        )
    if max_steps is not None:
        figure.update_xaxes(range=[0, max_steps])
    figure.update_xaxes(title=_("step"))
    figure.update_yaxes(title=_("cross-entropy (nats)"), rangemode="tozero")
    figure = _layout(figure, title, 520)
    figure.update_layout(
        legend={"orientation": "h", "y": -0.2, "yanchor": "top", "x": 0},
        margin={"t": 80, "b": 140},
    )
    return figure


def _method_of(label: str) -> str | None:
    """The method key of a run label such as "2. LoRA" or "LoRA"."""
    name = label.split(". ", 1)[-1]
    return next((key for key, value in METHODS.items() if value == name), None)


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


def result_rows(results: Sequence[MethodResult]) -> list[dict[str, object]]:
    """One table row per run, every value measured by that run."""
    rows = []
    for name, result in zip(run_names(results), results, strict=True):
        settings = result.settings
        rows.append(
            {
                _("run"): name,
                _("trainable parameters"): result.trainable,
                _("% trainable"): round(100 * result.trainable_share, 3),
                _("held-out accuracy"): round(result.held_out_accuracy, 4),
                _("ms per step (median)"): round(1000 * result.median_step_seconds, 2),
                _("optimizer state (KB)"): round(result.optimizer_state_bytes / 1024, 1),
                _("steps"): result.steps_done,
                _("learning rate"): settings.lr,
                _("model"): result.model_name,
                _("settings"): settings.details(),
                _("task (train / held-out, corruptions, seed)"): result.task,
            }
        )
    return rows


def kind_rows(results: Sequence[MethodResult]) -> list[dict[str, object]]:
    """Held-out accuracy of each run on real sentences and on each kind of corruption."""
    rows = []
    for name, result in zip(run_names(results), results, strict=True):
        row: dict[str, object] = {_("run"): name}
        for kind, value in result.accuracy_by_kind.items():
            row[_(SHORT_KIND_NAMES.get(kind, kind))] = round(value, 4)
        rows.append(row)
    return rows


def results_chart(results: Sequence[MethodResult], title: str) -> go.Figure:
    """Four panels, one bar per run: trainable parameters, held-out accuracy, median time per
    step and optimizer state. Parameters and memory use log axes: they span orders of
    magnitude."""
    if not results:
        raise ValueError("there are no runs to draw yet")
    names = [html.escape(name) for name in run_names(results)]
    colors = [METHOD_COLORS[r.settings.method] for r in results]
    panels = (
        (N_("trainable parameters"), [r.trainable for r in results], "{:,}", "log"),
        (N_("held-out accuracy"), [r.held_out_accuracy for r in results], "{:.1%}", "linear"),
        (
            N_("median time per step (ms)"),
            [1000 * r.median_step_seconds for r in results],
            "{:.1f}",
            "linear",
        ),
        (
            N_("optimizer state (KB)"),
            [r.optimizer_state_bytes / 1024 for r in results],
            "{:,.1f}",
            "log",
        ),
    )
    figure = make_subplots(
        rows=2,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.08,
        vertical_spacing=0.16,
        subplot_titles=[_(panel[0]) for panel in panels],
    )
    for n, (panel, values, text_format, axis_type) in enumerate(panels):
        row, col = n // 2 + 1, n % 2 + 1
        figure.add_trace(
            go.Bar(
                x=values,
                y=names,
                orientation="h",
                marker_color=colors,
                text=[text_format.format(v) for v in values],
                textposition="auto",
                showlegend=False,
                hovertemplate="%{y}: %{text}<extra>" + html.escape(_(panel)) + "</extra>",
            ),
            row=row,
            col=col,
        )
        figure.update_xaxes(type=axis_type, row=row, col=col)
        if axis_type == "log":
            figure.update_xaxes(dtick=1, row=row, col=col)
        if panel == "held-out accuracy":
            figure.update_xaxes(range=[0, 1], tickformat=".0%", row=row, col=col)
    figure.update_yaxes(autorange="reversed")
    height = 260 + 2 * 46 * len(results)
    return _layout(figure, title, height)


def zero_shot_rows(result: ZeroShotResult) -> list[dict[str, object]]:
    """The three ways of using gpt-stories without training, side by side."""
    shots = result.few_shot_prompt.count("\n")
    return [
        {
            _("approach"): _(
                "minimal pairs: the likelier of a real sentence and its corruption ({pairs} pairs)"
            ).format(pairs=result.pairs),
            _("labels used"): _("none"),
            _("held-out accuracy"): round(result.pair_accuracy, 4),
        },
        {
            _("approach"): _("one sentence: grammatical if its score is above a threshold"),
            _("labels used"): _("the training split, to choose the threshold"),
            _("held-out accuracy"): round(result.threshold_accuracy, 4),
        },
        {
            _("approach"): _("one sentence: few-shot prompt with {shots} labelled examples").format(
                shots=shots
            ),
            _("labels used"): _("{shots} examples, in the prompt").format(shots=shots),
            _("held-out accuracy"): round(result.few_shot_accuracy, 4),
        },
    ]


# ---------------------------------------------------------------------------------------------
# What the page says: the task, a plan, a job's progress, the runs and the zero-shot scores
# ---------------------------------------------------------------------------------------------


def task_caption(data: TaskData, checks: dict[str, int]) -> str:
    """Both splits in numbers, and what the grammar's parser says of them (``task_checks``)."""
    return _(
        "Training split: {train}. Held-out split: {held_out}. The grammar's parser rejects "
        "{rejected} of the {negatives} negatives and accepts {accepted} of the {positives} "
        "positives; the two splits share {shared} source sentences."
    ).format(
        train=split_text(data.train),
        held_out=split_text(data.held_out),
        rejected=f"{checks['negatives rejected']:,}",
        negatives=f"{checks['negatives']:,}",
        accepted=f"{checks['positives accepted']:,}",
        positives=f"{checks['positives']:,}",
        shared=checks["shared sentences"],
    )


def plan_caption(model_name: str, settings: MethodSettings, counts: tuple[int, int], config) -> str:
    """How many of the classifier's parameters a run trains (``counts``: trainable, total),
    and, for the methods that add parameters, the sum that gives that number."""
    trainable, total = counts
    text = _(
        "{method} on {model} trains {trainable} of the classifier's {total} parameters ({share})."
    ).format(
        method=_(settings.label),
        model=model_name,
        trainable=f"{trainable:,}",
        total=f"{total:,}",
        share=f"{trainable / total:.2%}",
    )
    arithmetic = parameter_arithmetic(settings, config)
    if arithmetic is not None:
        text += " " + _("Worked out: {sum}.").format(sum=arithmetic[1])
    return text


def progress_bar(
    progress: RunsProgress, model_name: str, labels: Sequence[str], steps: int, elapsed_s: float
) -> tuple[float, str] | None:
    """The share of a job of ``labels`` runs done and what it is doing, or None before the first
    logged step."""
    if not (progress.histories and steps and labels):
        return None
    label, history = list(progress.histories.items())[-1]
    finished, runs = progress.finished, len(labels)
    done = min((finished + history[-1].step / steps) / runs, 1.0)
    return done, _(
        "{run} on {model}: step {step} of {steps} (run {number} of {runs}); {seconds} s so far"
    ).format(
        run=_(label),
        model=model_name,
        step=history[-1].step,
        steps=steps,
        number=min(finished + 1, runs),
        runs=runs,
        seconds=f"{elapsed_s:.1f}",
    )


def stopped_text(progress: RunsProgress, runs: int) -> str:
    return _("Stopped after {finished} of {runs} runs; finished runs are in the table.").format(
        finished=progress.finished, runs=runs
    )


def finished_text(progress: RunsProgress, elapsed_s: float) -> str:
    return _("Finished {finished} run(s) in {seconds} s.").format(
        finished=progress.finished, seconds=f"{elapsed_s:.1f}"
    )


def _names(results: Sequence[MethodResult]) -> dict[int, str]:
    """Every run's numbered name (``run_names``), by the run's id."""
    return dict(zip(map(id, results), run_names(results), strict=True))


def early_stops(results: Sequence[MethodResult]) -> list[str]:
    """A sentence for every run that stopped before its last step, saying why."""
    names = _names(results)
    return [
        _("Run {run} stopped early: {reason}").format(
            run=names[id(result)], reason=result.stop_reason
        )
        for result in results
        if result.stop_reason
    ]


def speed_text(results: Sequence[MethodResult]) -> str:
    """The fastest and slowest median step time, and every run's relative to full fine-tuning."""
    names = _names(results)
    ordered = sorted(results, key=lambda r: r.median_step_seconds)
    fastest, slowest = ordered[0], ordered[-1]
    if len(results) == 1:
        return _("Median time per training step: {ms} ms.").format(
            ms=f"{1000 * fastest.median_step_seconds:.1f}"
        )
    text = _(
        "Median time per training step: fastest {fastest} ({fastest_ms} ms), "
        "slowest {slowest} ({slowest_ms} ms)."
    ).format(
        fastest=names[id(fastest)],
        fastest_ms=f"{1000 * fastest.median_step_seconds:.1f}",
        slowest=names[id(slowest)],
        slowest_ms=f"{1000 * slowest.median_step_seconds:.1f}",
    )
    full = [r for r in results if r.settings.method == "full"]
    if full:
        base = full[-1]
        others = [r for r in results if r.model_name == base.model_name and r is not base]
        if others:
            ratios = ", ".join(
                f"{names[id(r)]} {r.median_step_seconds / base.median_step_seconds:.2f}×"
                for r in others
            )
            text += " " + _("Step time relative to {run}: {ratios}.").format(
                run=names[id(base)], ratios=ratios
            )
    return text


def memory_text(results: Sequence[MethodResult]) -> str:
    """The optimizer state each run measured against 8 bytes per parameter + 4 per tensor."""
    names = _names(results)
    matching = sum(
        r.optimizer_state_bytes == 8 * r.trainable + 4 * r.optimizer_tensors for r in results
    )
    text = _(
        "Optimizer state: 8 bytes per trained parameter (two float32 moments) plus 4 bytes of "
        "step counter per trained tensor equals the measured state in {matching} of "
        "{runs} runs."
    ).format(matching=matching, runs=len(results))
    largest = max(results, key=lambda r: r.optimizer_state_bytes)
    smallest = min(results, key=lambda r: r.optimizer_state_bytes)
    if largest.optimizer_state_bytes > smallest.optimizer_state_bytes > 0:
        ratio = largest.optimizer_state_bytes / smallest.optimizer_state_bytes
        text += " " + _("{largest} keeps {ratio} times as much as {smallest}.").format(
            largest=names[id(largest)], ratio=f"{ratio:,.0f}", smallest=names[id(smallest)]
        )
    return text


def lora_merge_text(results: Sequence[MethodResult]) -> str:
    """What merging changed in every LoRA run; empty if there is none."""
    names = _names(results)
    merged = [r for r in results if r.merge_difference is not None]
    if not merged:
        return ""
    return (
        _("Merging LoRA into the weights, W + (α/r)·BA: ")
        + "; ".join(
            _(
                "for {run}, the held-out logits changed by at most {difference}, and the merged "
                "model has {merged} parameters (with LoRA: {total})"
            ).format(
                run=names[id(r)],
                difference=f"{r.merge_difference:.1e}",
                merged=f"{r.merged_parameters:,}",
                total=f"{r.total:,}",
            )
            for r in merged
        )
        + "."
    )


def accuracy_columns(rows: Sequence[dict[str, object]]) -> tuple[str, ...]:
    """The accuracy columns of ``kind_rows``: every column but "run", in order of appearance."""
    return tuple(dict.fromkeys(name for row in rows for name in row if name != _("run")))


def scoring_text(data: TaskData) -> str:
    return _("Scoring {count} sentences…").format(
        count=f"{len(data.train) + 3 * len(data.held_out):,}"
    )


def zero_shot_caption(result: ZeroShotResult) -> str:
    """Minimal-pair accuracy by corruption, and the threshold chosen on the training split."""
    by_kind = ", ".join(
        f"{_(CORRUPTIONS[kind])} {value:.1%}"
        for kind, value in result.pair_accuracy_by_kind.items()
    )
    return _(
        "Minimal pairs by corruption: {by_kind}. Threshold: a mean log-probability per token "
        "above {threshold} counts as grammatical ({accuracy} right on the training split it was "
        "chosen on)."
    ).format(
        by_kind=by_kind,
        threshold=f"{result.threshold:.3f}",
        accuracy=f"{result.threshold_train_accuracy:.1%}",
    )


def few_shot_caption(result: ZeroShotResult, data: TaskData) -> str:
    """How often the few-shot prompt answers "grammatical", against how often that is right."""
    word = LABELS[GRAMMATICAL]
    share = grammatical_share(data.held_out)
    return _(
        "With this prompt the model answered {word} for {answered} of the held-out sentences; "
        "{share} of them are {word}."
    ).format(word=word, answered=f"{result.few_shot_grammatical_share:.1%}", share=f"{share:.1%}")
