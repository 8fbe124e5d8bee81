"""Scaling laws and the cost of attention: a background sweep of tiny GPTs with a power law fitted
to their losses, and one attention layer's time and memory measured as the sequence grows."""

from __future__ import annotations

from functools import partial

import questions
import streamlit as st
import widgets
from widgets import BIND

from tinyformers.course import scaling as course
from tinyformers.course.scaling import SOURCES, CostResult, CostSettings, SweepPlan, SweepResult
from tinyformers.figures import scaling as figs
from tinyformers.i18n import _, ngettext
from tinyformers.training.jobs import FINISHED, STOPPED, Snapshot

SLUG = "scaling"
DEFAULT_MODELS, DEFAULT_STEPS = 6, 300
SWEEP_JOB = "sc-sweep-job"
SWEEP_RUN = "sc-sweep-run"  # the plan the running (or last) sweep job was started with
SWEEP_CACHE = "sc-sweeps"  # finished sweeps of this session, by (source, settings)
COST_JOB = "sc-cost-job"
COST_CACHE = "sc-costs"  # finished measurements of this session, by settings
DEFAULT_WIDTH, DEFAULT_LENGTH = 128, 1024
HEAD_CHOICES = (1, 2, 4, 8, 16)
INPUT_WIDTH = 160  # px: two number inputs side by side on a phone


@st.cache_data(max_entries=2, show_spinner="Preparing the text…")
def training_text(source: str) -> str:
    return course.training_text(source)


@st.cache_data(max_entries=4, show_spinner=False)
def text_sizes(source: str, block_size: int) -> tuple[int, int, int]:
    """Vocabulary size, training and validation characters of a text."""
    return course.text_sizes(training_text(source), block_size)


def job_button(label: str, key: str, disabled: bool, other_job: str, wait: str) -> bool:
    """A primary button starting a job, disabled (saying ``wait``) while ``other_job`` runs."""
    busy = widgets.job_active(other_job)
    clicked = st.button(label, key=key, type="primary", disabled=disabled or busy)
    if busy:
        st.caption(wait)
    return clicked


def keep_finished_runs() -> None:
    """Move the results of jobs that finished into this session's stores, keyed by settings."""
    if (sweep := widgets.job_result(SWEEP_JOB, FINISHED, SweepResult)) is not None:
        widgets.keep_result(SWEEP_CACHE, st.session_state[SWEEP_RUN].key, sweep)
    if (cost := widgets.job_result(COST_JOB, FINISHED, CostResult)) is not None:
        widgets.keep_result(COST_CACHE, cost.settings, cost)


# The sweep
def sweep_controls() -> tuple[str, course.SweepSettings] | None:
    source = widgets.labelled_radio(_("Training text"), SOURCES, "sc-source")

    row = st.container(horizontal=True)  # side by side as long as they fit, even on a phone
    top = min(course.MAX_STEPS, widgets.server_limits().max_steps)
    n_models = row.number_input(
        _("Number of models"),
        course.MIN_MODELS,
        course.MAX_MODELS,
        DEFAULT_MODELS,
        key="sc-models",
        bind=BIND,
        help=_("The first rungs of the ladder, smallest first."),
        width=INPUT_WIDTH,
    )
    steps = row.number_input(
        _("Training steps per model"),
        course.MIN_STEPS,
        top,
        min(DEFAULT_STEPS, top),
        step=50,
        key="sc-steps",
        bind=BIND,
        help=_("Every model trains for the same number of steps on the same batches."),
        width=INPUT_WIDTH,
    )
    with row:
        seed = widgets.seed_control(key="sc-seed")
    try:
        settings = course.SweepSettings(n_models=int(n_models), steps=int(steps), seed=seed)
    except ValueError as err:
        st.error(_("Cannot plan this sweep: {reason}.").format(reason=err))
        return None
    return source, settings


def make_plan(source: str, settings: course.SweepSettings) -> SweepPlan | None:
    """The sweep these settings describe; None (with a message) if it cannot train."""
    try:
        plan = course.plan_sweep(source, settings, text_sizes(source, settings.block_size))
        widgets.server_limits().check_parameters(plan.largest_parameters())
    except ValueError as err:
        st.error(_("Cannot train this sweep: {reason}").format(reason=err))
        return None
    return plan


def sweep_button(source: str, settings: course.SweepSettings, plan: SweepPlan | None) -> None:
    if (source, settings) in st.session_state.get(SWEEP_CACHE, {}):
        st.caption(_("This sweep already ran in this session: its results are below."))
        return
    wait = _("Wait for the attention measurement to finish: training now would disturb it.")
    label = ngettext("Train {n} model", "Train {n} models", settings.n_models)
    if job_button(label, "sc-train", plan is None, COST_JOB, wait) and plan is not None:
        text = training_text(plan.source)
        st.session_state[SWEEP_RUN] = plan
        work = partial(course.run_sweep, text, plan.settings, plan.source_name)
        widgets.start_job(SWEEP_JOB, work, name="scaling sweep")


def render_sweep(snapshot: Snapshot) -> None:
    plan: SweepPlan = st.session_state[SWEEP_RUN]
    progress = course.sweep_progress(snapshot.updates, plan)
    if snapshot.active and progress is not None:
        st.progress(progress.fraction, text=figs.sweep_progress_text(progress, snapshot.elapsed_s))
    curves = course.live_curves(snapshot.updates, plan)
    if snapshot.active and curves:
        title = _("Validation loss so far, against compute")
        widgets.chart(
            figs.beside_controls(figs.loss_vs_compute_chart(curves, title)), key="sc-live"
        )
    elif snapshot.active:
        widgets.chart(figs.beside_controls(figs.planned_sweep_chart(plan)), key="sc-live")
    if snapshot.status == FINISHED and isinstance(snapshot.result, SweepResult):
        st.caption(figs.sweep_finished_text(snapshot.result, snapshot.elapsed_s))
    elif snapshot.status == STOPPED and isinstance(snapshot.result, SweepResult):
        st.info(figs.sweep_stopped_text(snapshot.result))


def current_sweep(source: str, settings: course.SweepSettings) -> SweepResult | None:
    """A finished sweep with these settings from this session's store, or a stopped one's."""
    stopped = widgets.job_result(SWEEP_JOB, STOPPED, SweepResult)
    if stopped is not None and st.session_state[SWEEP_RUN].key != (source, settings):
        stopped = None
    return st.session_state.get(SWEEP_CACHE, {}).get((source, settings), stopped)


def show_fit(result: SweepResult) -> None:
    for failure in result.failed:
        st.warning(_("Left out of the fit: {failure}").format(failure=failure))
    if len(result.points) < 3:
        st.info(_("A fit with an error bar needs at least 3 finished models."))
        return
    fit = result.fit()
    widgets.metric_row(figs.fit_metrics(fit))
    st.caption(
        figs.fit_caption(result, fit) + " " + _("The fitted law is drawn at the top of the page.")
    )
    st.dataframe(figs.sweep_rows(result.points, fit), hide_index=True)


def sweep_figure(plan: SweepPlan | None, sweep: SweepResult | None) -> None:
    """Beside the controls: the planned sweep, its live curves, then its fitted power law."""
    active = widgets.job_active(SWEEP_JOB)  # read once: the job may end while the page is drawn
    widgets.job_progress(SWEEP_JOB, render_sweep)
    if active:
        return
    if sweep is not None and len(sweep.points) >= 3:
        figure = figs.loss_vs_parameters_chart(sweep.points, sweep.fit(), figs.fit_title(sweep))
        widgets.chart(figs.beside_controls(figure), key="sc-sweep-figure")
    elif plan is not None:
        widgets.chart(figs.beside_controls(figs.planned_sweep_chart(plan)), key="sc-sweep-figure")


# The cost of attention
def cost_controls() -> CostSettings | None:
    width_column, heads_column, length_column = st.columns(3)
    width = width_column.number_input(
        _("Width C"),
        course.MIN_WIDTH,
        course.MAX_WIDTH,
        DEFAULT_WIDTH,
        step=16,
        key="sc-width",
        bind=BIND,
    )
    heads = heads_column.selectbox(_("Heads"), HEAD_CHOICES, index=2, key="sc-heads", bind=BIND)
    length = length_column.number_input(
        _("Longest sequence n"),
        64,
        course.MAX_LENGTH,
        DEFAULT_LENGTH,
        step=128,
        key="sc-length",
        bind=BIND,
        help=_("Lengths from 32 up to this (at most {most}).").format(most=course.MAX_LENGTH),
    )
    backward = st.checkbox(_("Also time forward + backward"), key="sc-backward", bind=BIND)
    try:
        return CostSettings(
            max_length=int(length), n_embd=int(width), n_head=int(heads), backward=backward
        )
    except ValueError as err:
        st.error(_("Cannot measure this: {reason}.").format(reason=err))
        return None


def cost_button(settings: CostSettings | None) -> None:
    if settings is not None and settings in st.session_state.get(COST_CACHE, {}):
        st.caption(_("Measured in this session with these settings: the results are below."))
        return
    wait = _(
        "Wait for the sweep to finish (or stop it): timings taken while it trains "
        "would measure the contention, not attention."
    )
    label = _("Measure on this machine")
    if job_button(label, "sc-measure", settings is None, SWEEP_JOB, wait) and settings is not None:
        widgets.start_job(COST_JOB, partial(course.measure_cost, settings), name="attention cost")


def render_cost(snapshot: Snapshot) -> None:
    if snapshot.active:
        st.progress(*figs.cost_progress(snapshot.updates))
    if snapshot.status == STOPPED and isinstance(snapshot.result, CostResult):
        st.info(figs.cost_stopped_text(snapshot.result))


def current_cost(settings: CostSettings) -> CostResult | None:
    """A finished measurement with these settings from this session's store, or a stopped one's."""
    stopped = widgets.job_result(COST_JOB, STOPPED, CostResult)
    if stopped is not None and stopped.settings != settings:
        stopped = None
    return st.session_state.get(COST_CACHE, {}).get(settings, stopped)


def show_cost(result: CostResult) -> None:
    """Measured slopes and times, attention's share of the time, memory, and the table."""
    widgets.metric_row(figs.slope_metrics(result))
    widgets.chart(figs.time_chart(result, figs.time_title(result.settings)))
    st.caption(figs.times_caption(result))
    if result.settings.backward:
        st.caption(figs.backward_caption(result))
    title = _("Measured: attention's share of attention + MLP time")
    widgets.chart(figs.share_chart(result, title))
    st.caption(figs.share_caption(result))
    widgets.chart(figs.memory_chart(result, _("Memory of one forward pass, without gradients")))
    if (memory := figs.memory_caption(result)) is not None:
        st.caption(memory)
    st.dataframe(figs.cost_rows(result), hide_index=True)


keep_finished_runs()
lesson = widgets.lesson_header(SLUG)
controls, figure_column = st.columns([1, 2])
with controls:
    chosen = sweep_controls()
    plan = make_plan(*chosen) if chosen is not None else None
    if chosen is not None:
        sweep_button(*chosen, plan)
sweep = current_sweep(*chosen) if chosen is not None else None
with figure_column:
    sweep_figure(plan, sweep)

widgets.lesson_section(lesson, "power-laws")
widgets.lesson_section(lesson, "sweep", course.sweep_values())
if plan is not None:
    st.dataframe(figs.plan_rows(plan.configs, plan.settings), hide_index=True)
    st.caption(figs.plan_caption(plan))

widgets.lesson_section(lesson, "fit")
if sweep is not None:
    show_fit(sweep)
elif not widgets.job_active(SWEEP_JOB):
    st.info(_("Train the sweep to see the fit."))

widgets.lesson_section(lesson, "compute")
if sweep is not None and sweep.points:
    curves = figs.sweep_curves(sweep.points)
    title = _("Validation loss against training compute")
    widgets.chart(figs.loss_vs_compute_chart(curves, title))

    st.caption(figs.compute_caption(sweep, curves))

widgets.lesson_section(lesson, "chinchilla")
if plan is not None:
    st.caption(figs.chinchilla_caption(plan))

widgets.lesson_section(lesson, "limits", course.limits_values())

widgets.lesson_section(lesson, "attention-cost")
cost_settings = cost_controls()
if cost_settings is not None:
    widgets.chart(figs.prediction_chart(cost_settings))
    st.caption(figs.prediction_caption(cost_settings))

widgets.lesson_section(lesson, "measure")
cost_button(cost_settings)
widgets.job_progress(COST_JOB, render_cost)
cost = current_cost(cost_settings) if cost_settings is not None else None
if cost is not None and len(cost.points) >= 3:
    show_cost(cost)

widgets.published_models(lesson)
widgets.lesson_section(lesson, "code")
questions.ask(lesson, plan=plan, cost_settings=cost_settings)
