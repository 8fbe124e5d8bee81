"""Why attention: a GRU encoder-decoder with one context vector, the same GRU with additive
attention and a small Transformer, trained in the background on the same batches; exact match
against source length, the time of a training step, and where the two attention models look
for the student's own source."""

from __future__ import annotations

from functools import partial

import questions
import streamlit as st
import widgets
from widgets import BIND, plain

from tinyformers.course import why_attention as course
from tinyformers.course.why_attention import TASKS, ComparisonResult, WhySettings
from tinyformers.figures import why_attention as figs
from tinyformers.i18n import _
from tinyformers.training.jobs import FINISHED, STOPPED, Snapshot

SLUG = "why-attention"
JOB_KEY = "wa-job"
RUN_KEY = "wa-run"  # the settings of the job under JOB_KEY


@st.cache_resource(show_spinner=False, max_entries=8)
def untrained_models(task: str, n_hidden: int, seed: int):
    """The three models before training (shared, read-only: a run trains models of its own)."""
    return course.untrained_models(WhySettings(task=task, n_hidden=n_hidden, seed=seed))


def source_input(task: str) -> course.Source | None:
    """The source box for ``task``; the checked source, or None with a message."""
    text = widgets.sentence_input(
        _("Your source"), course.DEFAULT_SOURCES[task], f"wa-source-{task}", max_chars=100
    )
    if text is None:
        return None
    try:
        return course.read_source(task, text)
    except ValueError as err:
        st.info(plain(err))
        return None


def layer_control() -> int:
    layers = course.TRANSFORMER_SHAPE["n_decoder_layer"]
    return st.radio(
        _("Transformer decoder layer (mean of its heads)"),
        list(range(layers)),
        index=layers - 1,
        horizontal=True,
        key="wa-layer",
        bind=BIND,
    )


def run_controls(task: str) -> WhySettings | None:
    """Steps, the GRU's state size and the seed of a run; the settings, or None with a message."""
    row = st.container(horizontal=True, vertical_alignment="bottom")
    most = min(course.MAX_STEPS, widgets.server_limits().max_steps)
    steps = row.number_input(
        _("Steps per model"),
        course.MIN_STEPS,
        most,
        min(WhySettings.steps, most),
        10,
        key="wa-steps",
        bind=BIND,
        width=170,
    )
    hidden = row.number_input(
        _("GRU state size"),
        course.MIN_HIDDEN,
        course.MAX_HIDDEN,
        WhySettings.n_hidden,
        8,
        key="wa-hidden",
        bind=BIND,
        width=170,
        help=_("The numbers in the one context vector of the GRU without attention."),
    )
    with row.container(width=170):
        seed = widgets.seed_control(key="wa-seed")
    try:
        return WhySettings(task=task, steps=int(steps), n_hidden=int(hidden), seed=seed)
    except ValueError as err:
        st.error(_("Cannot train with these settings: {reason}").format(reason=plain(err)))
        return None


def finished_result() -> ComparisonResult | None:
    for status in (FINISHED, STOPPED):
        result = widgets.job_result(JOB_KEY, status, ComparisonResult)
        if result is not None:
            return result
    return None


def render_progress(snapshot: Snapshot) -> None:
    settings: WhySettings | None = st.session_state.get(RUN_KEY)
    if settings is None:
        return
    histories = course.histories_of(snapshot.updates)
    if snapshot.active:
        st.progress(*figs.progress_text(histories, settings.steps))
    if histories:
        widgets.chart(figs.loss_chart(histories, settings.steps), "wa-loss")
    if snapshot.status == STOPPED:
        st.info(_("Stopped before all three models had trained; train again to compare them."))


def show_alignment(models, source: course.Source, trained: bool, layer: int) -> None:
    found = {
        course.ATTENTION: course.rnn_alignment(
            models[course.ATTENTION], course.task_tokenizer(source.task), source
        ),
        course.TRANSFORMER: course.transformer_alignment(
            models[course.TRANSFORMER], course.task_tokenizer(source.task), source, layer
        ),
    }
    widgets.chart(figs.alignment_figure(found, trained), "wa-alignment")
    caption = figs.alignment_caption(course.outputs(models, source), source.target)
    st.caption(plain(caption))
    if not trained:
        st.caption(_("Untrained models: press “Train the three models” below to teach them."))


def show_results(result: ComparisonResult | None, task: str) -> None:
    if result is None:
        st.info(_("No run yet: press “Train the three models” above."))
        return
    if not result.complete:
        return
    if result.settings.task != task:
        st.info(
            _("The last run trained on another task: {task}.").format(
                task=figs.task_label(result.settings.task)
            )
        )
    rows = figs.result_rows(result)
    widgets.table(rows, percent=figs.percent_columns(result), counts=(_("parameters"),))
    widgets.chart(figs.exact_match_chart(result), "wa-exact")
    st.caption(figs.bottleneck_text(result))
    st.caption(figs.settings_text(result))


def show_timing(result: ComparisonResult | None) -> None:
    if result is None or not result.complete:
        st.info(_("The timings appear here once a run has finished."))
        return
    widgets.chart(figs.timing_chart(result), "wa-timing")
    st.caption(figs.timing_text(result))


lesson = widgets.lesson_header(SLUG)
controls, figure_column = st.columns([1, 2])
with controls:
    task = widgets.labelled_radio(
        _("Task"), {key: figs.task_label(key) for key in TASKS}, "wa-task", horizontal=False
    )
    source = source_input(task)
    layer = layer_control()

widgets.lesson_section(lesson, "models", course.lesson_values(WhySettings()))
widgets.lesson_section(lesson, "attention")
widgets.lesson_section(lesson, "train")
settings = run_controls(task)
if st.button(_("Train the three models"), key="wa-train", type="primary", disabled=not settings):
    st.session_state[RUN_KEY] = settings
    widgets.start_job(JOB_KEY, partial(course.run_comparison, settings), name="why attention")
widgets.job_progress(JOB_KEY, render_progress)
result = finished_result()
trained = result is not None and result.complete and result.settings.task == task
if trained:
    models = result.models
else:
    chosen = settings or WhySettings(task=task)
    models = untrained_models(task, chosen.n_hidden, chosen.seed)
with figure_column:
    if source is not None:
        show_alignment(models, source, trained, layer)

widgets.lesson_section(lesson, "length")
show_results(result, task)
widgets.lesson_section(lesson, "time")
show_timing(result)

questions.ask(lesson, models=models, source=source, trained=trained)
