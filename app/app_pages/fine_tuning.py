"""Fine-tuning: a grammaticality task from the stories grammar, six ways to adapt a pretrained
model to it (trained in the background), what each run measured, and gpt-stories untrained."""

from __future__ import annotations

from functools import partial

import questions
import streamlit as st
import widgets
from widgets import BIND

from tinyformers.course import fine_tuning as course
from tinyformers.course.fine_tuning import (
    CORRUPTIONS,
    METHODS,
    ZERO_SHOT_MODEL,
    MethodPlans,
    MethodResult,
    MethodSettings,
)
from tinyformers.figures import fine_tuning as figs
from tinyformers.hub.registry import shipped_names
from tinyformers.i18n import N_, _, ngettext
from tinyformers.model import peft
from tinyformers.training.jobs import STOPPED, Snapshot

SLUG = "fine-tuning"
JOB_KEY = "ft-job"
JOB_INFO_KEY = "ft-job-info"
RESULTS_KEY = "ft-results"
COLLECTED_KEY = "ft-collected"
ZERO_SHOT_KEY = "ft-zero-shot-asked"
DEFAULT_STEPS, MIN_STEPS, MOST_STEPS = 150, 10, 2_000
INPUT_WIDTH = 170  # px: two inputs side by side on a phone
EXAMPLES_SHOWN = 8


PLACE_NAMES = {"attn": N_("after attention"), "mlp": N_("after the MLP")}


def method_names() -> dict[str, str]:
    """The methods' labels in the session's language (the keys stay as they are)."""
    return {method: _(label) for method, label in METHODS.items()}


@st.cache_data(max_entries=4, show_spinner=False)
def cached_task(n_train: int, n_held_out: int, seed: int, corruptions: tuple[str, ...]):
    data = course.make_task(n_train, n_held_out, seed, corruptions)
    return data, course.task_checks(data)


@st.cache_data(max_entries=32, show_spinner=False)
def parameter_counts(model_name: str, settings: MethodSettings) -> tuple[int, int]:
    """(trainable, total) parameters of the classifier a run would train."""
    return course.parameter_counts(widgets.shipped_model(model_name).model, settings)


@st.cache_data(max_entries=2, show_spinner=False)
def cached_zero_shot(task_arguments: tuple) -> course.ZeroShotResult:
    data, _ = cached_task(*task_arguments)
    loaded = widgets.shipped_model(ZERO_SHOT_MODEL)
    return course.zero_shot(loaded.model, loaded.tokenizer, data)


def task_controls() -> tuple[tuple, course.TaskData] | None:
    """The task's sizes, corruptions and seed; returns (its arguments, the data) or None."""
    left, mid, right = st.columns(3)
    n_train = left.number_input(
        _("Training examples"), 40, 2_000, 800, step=40, key="ft-n-train", bind=BIND
    )
    n_held_out = mid.number_input(
        _("Held-out examples"), 40, 1_000, 400, step=40, key="ft-n-held-out", bind=BIND
    )
    with right:
        seed = widgets.seed_control(key="ft-seed")
    kinds = widgets.url_choices(
        st.multiselect,
        _("Corruptions that make the ungrammatical sentences"),
        list(CORRUPTIONS),
        "ft-corruptions",
        default=list(CORRUPTIONS),
        format_func=lambda kind: _(CORRUPTIONS[kind]),
    )
    if not kinds:
        st.warning(_("Choose at least one corruption: without one there are no negative examples."))
        return None
    arguments = (int(n_train), int(n_held_out), int(seed), tuple(kinds))
    try:
        data, checks = cached_task(*arguments)
    except ValueError as err:
        st.error(_("Cannot build the task: {reason}").format(reason=err))
        return None
    st.caption(figs.task_caption(data, checks))
    st.html(figs.examples_html(data.train[:EXAMPLES_SHOWN]))
    return arguments, data


def learning_rates() -> dict[str, float]:
    st.markdown(_("**Learning rate of each method**"))
    columns = st.columns(3)
    low, high = course.MIN_LEARNING_RATE, course.MAX_LEARNING_RATE
    options = dict(min_value=low, max_value=high, step=1e-4, format="%.1e", bind=BIND)
    return {
        method: columns[n % 3].number_input(
            label, value=course.DEFAULT_LEARNING_RATES[method], key=f"ft-lr-{method}", **options
        )
        for n, (method, label) in enumerate(method_names().items())
    }


def method_options() -> dict[str, object]:
    """The settings of LoRA, adapters and prefix tuning (used by single runs and by run all)."""
    lora, adapters, prefix = st.columns(3)
    lora.markdown("**LoRA**")
    rank = lora.number_input(_("Rank r"), 1, peft.MAX_RANK, 4, key="ft-rank", bind=BIND)
    alpha = lora.number_input("α", 0.5, 256.0, 8.0, step=0.5, key="ft-alpha", bind=BIND)
    targets = lora.multiselect(
        _("Projections to adapt"),
        list(peft.LORA_TARGETS),
        ["q_proj", "v_proj"],
        key="ft-targets",
        bind=BIND,
    )
    adapters.markdown(_("**Adapters**"))
    bottleneck = adapters.number_input(
        _("Bottleneck b"), 1, 128, 16, key="ft-bottleneck", bind=BIND
    )
    all_places = list(peft.ADAPTER_PLACES)
    places = widgets.url_choices(
        adapters.multiselect,
        _("Where in each block"),
        all_places,
        "ft-places",
        default=all_places,
        format_func=lambda place: _(PLACE_NAMES[place]),
    )
    prefix.markdown(_("**Prefix tuning**"))
    length = prefix.number_input(_("Prefix length P"), 1, 32, 8, key="ft-prefix", bind=BIND)
    numbers = dict(lora_rank=rank, lora_alpha=alpha, adapter_bottleneck=bottleneck)
    chosen = dict(lora_targets=tuple(targets), adapter_places=tuple(places))
    return {**numbers, **chosen, "prefix_length": length}


def run_choices() -> tuple[str | None, str, int]:
    """Beside the chart at the top: the pretrained model, the method and the steps of a run."""
    row = st.container(horizontal=True)  # side by side as long as they fit, even on a phone
    models = course.base_models(shipped_names())
    model_name = row.selectbox(
        _("Pretrained model"), models, key="ft-model", bind=BIND, width=INPUT_WIDTH
    )
    method = widgets.labelled_select(_("Method"), METHODS, "ft-method", row, width=INPUT_WIDTH)
    most = min(MOST_STEPS, widgets.server_limits().max_steps)
    label, first = _("Training steps per method"), min(DEFAULT_STEPS, most)
    steps = row.number_input(
        label, MIN_STEPS, most, first, 10, key="ft-steps", bind=BIND, width=INPUT_WIDTH
    )
    return model_name, method, int(steps)


def method_plans(model_name: str, steps: int, seed: int) -> MethodPlans:
    """The sentence vector, learning rates and options of every method, as run settings."""
    family = widgets.shipped_model(model_name).family
    poolings = {name: course.POOLINGS[name] for name in course.POOLINGS_OF[family]}

    pooling = widgets.labelled_select(_("Sentence vector"), poolings, f"ft-pooling-{family}")
    rates, options = learning_rates(), method_options()
    return course.plan_methods(steps, seed, pooling, rates, options)


def run_buttons(model_name: str, method: str, plans: MethodPlans, task) -> None:
    """Train the chosen method, or all of them, on the task (each disabled when it cannot)."""
    chosen = plans.settings.get(method)
    if chosen is None:
        st.error(
            _("Cannot train with these settings: {reason}").format(reason=plans.errors[method])
        )
    row = st.container(horizontal=True)  # side by side where they fit
    label = _("Train: {method}").format(method=method_names()[method])
    disabled = chosen is None or task is None
    if row.button(label, key="ft-train-one", type="primary", disabled=disabled):
        start_runs(model_name, task[1], [chosen])
    label = ngettext("Run all {n} methods", "Run all {n} methods", len(METHODS))
    if row.button(label, key="ft-train-all", disabled=task is None):
        if plans.errors:
            reason = next(iter(plans.errors.values()))
            st.error(_("Cannot train with these settings: {reason}").format(reason=reason))
            return
        start_runs(model_name, task[1], list(plans.settings.values()))


def start_runs(model_name: str, data: course.TaskData, runs: list[MethodSettings]) -> None:
    loaded = widgets.shipped_model(model_name)
    labels = [settings.label for settings in runs]
    st.session_state[JOB_INFO_KEY] = {"model": model_name, "labels": labels, "steps": runs[0].steps}
    st.session_state[COLLECTED_KEY] = 0
    work = partial(course.run_methods, loaded.model, loaded.tokenizer, data, runs, model_name)
    widgets.start_job(JOB_KEY, work, name="fine-tuning")


def render_progress(plans_chart, snapshot: Snapshot) -> None:
    info = st.session_state.get(JOB_INFO_KEY, {})
    labels, steps = info.get("labels", []), info.get("steps")
    progress = course.runs_progress(snapshot.updates)
    bar = figs.progress_bar(progress, info.get("model"), labels, steps, snapshot.elapsed_s)
    if snapshot.active and bar is not None:
        st.progress(*bar)
    if progress.histories:
        title = _("Loss while fine-tuning {model}").format(model=info["model"])
        widgets.chart(
            figs.beside_controls(figs.loss_chart(progress.histories, title, steps)), "ft-loss"
        )
    elif snapshot.active and plans_chart is not None:  # until the first step is logged
        widgets.chart(figs.beside_controls(plans_chart), "ft-loss")
    if snapshot.status == STOPPED:
        st.info(figs.stopped_text(progress, len(labels)))
    elif not snapshot.active and progress.finished:
        st.caption(figs.finished_text(progress, snapshot.elapsed_s))


def collect_results() -> list[MethodResult]:
    """Move the runs a job has finished into this session's results (each exactly once)."""
    results: list[MethodResult] = st.session_state.setdefault(RESULTS_KEY, [])
    if (job := st.session_state.get(JOB_KEY)) is not None:
        finished = [u for u in job.snapshot().updates if isinstance(u, MethodResult)]
        results.extend(finished[st.session_state.get(COLLECTED_KEY, 0) :])
        st.session_state[COLLECTED_KEY] = len(finished)
    return results


def show_results(results: list[MethodResult]) -> None:
    if not results:
        st.info(_("No runs yet: train a method above, or run all of them."))
        return
    rows = figs.result_rows(results)
    widgets.table(rows, percent=(_("held-out accuracy"),), counts=(_("trainable parameters"),))
    widgets.chart(figs.results_chart(results, _("What each run trained, scored, took and kept")))
    for text in figs.early_stops(results):
        st.warning(text)
    st.caption(figs.speed_text(results))
    st.caption(figs.memory_text(results))
    if merges := figs.lora_merge_text(results):
        st.caption(merges)
    st.markdown(_("**Held-out accuracy by kind of example**"))
    kinds = figs.kind_rows(results)
    widgets.table(kinds, percent=figs.accuracy_columns(kinds))
    st.button(
        _("Clear results"),
        key="ft-clear",
        on_click=st.session_state.update,
        args=({RESULTS_KEY: []},),
    )


def zero_shot_section(arguments: tuple, data: course.TaskData) -> None:
    if ZERO_SHOT_MODEL not in shipped_names():
        st.info(
            _("{model} is not shipped in models/, so there is nothing to score.").format(
                model=ZERO_SHOT_MODEL
            )
        )
        return
    label = _("Score the held-out sentences with {model}").format(model=ZERO_SHOT_MODEL)
    if st.button(label, key="ft-zero-shot"):
        st.session_state[ZERO_SHOT_KEY] = True
    if not st.session_state.get(ZERO_SHOT_KEY):
        return
    with st.spinner(figs.scoring_text(data)):
        result = cached_zero_shot(arguments)
    widgets.table(figs.zero_shot_rows(result), percent=(_("held-out accuracy"),))
    st.caption(figs.zero_shot_caption(result))
    st.markdown(_("**The few-shot prompt** (each held-out sentence follows it, then a label word)"))
    widgets.code(result.few_shot_prompt)
    st.caption(figs.few_shot_caption(result, data))


lesson = widgets.lesson_header(SLUG)
controls, figure_column = st.columns([1, 2])
with controls:
    model_name, method, steps = run_choices()
    if model_name is None:
        st.error(_("No pretrained stories model is shipped in models/."))
        st.stop()

widgets.lesson_section(lesson, "task")
chosen_task = task_controls()

for key in ("full-and-head", "bitfit", "adapters", "lora", "prefix"):
    widgets.lesson_section(lesson, key, course.lesson_values(key))

widgets.lesson_section(lesson, "train")
plans = method_plans(model_name, steps, chosen_task[0][2] if chosen_task else 0)
if (chosen := plans.settings.get(method)) is not None:
    counts = parameter_counts(model_name, chosen)
    st.caption(
        figs.plan_caption(model_name, chosen, counts, widgets.shipped_model(model_name).config)
    )
if chosen_task is None:
    st.info(_("Fix the task settings above to train on it."))

with controls:
    run_buttons(model_name, method, plans, chosen_task)
counts = {method: parameter_counts(model_name, s) for method, s in plans.settings.items()}
plans_chart = figs.methods_chart(model_name, counts)
with figure_column:  # the loss curves of a run replace the plan beside the controls
    if widgets.job_progress(JOB_KEY, partial(render_progress, plans_chart)) is None and plans_chart:
        widgets.chart(figs.beside_controls(plans_chart), "ft-plan-top")
if JOB_KEY in st.session_state and plans_chart is not None:
    widgets.chart(plans_chart, "ft-plan")

widgets.lesson_section(lesson, "results")
show_results(collect_results())

widgets.lesson_section(lesson, "zero-shot")
if chosen_task is not None:
    zero_shot_section(*chosen_task)

widgets.lesson_section(lesson, "choosing")
data = chosen_task[1] if chosen_task is not None else None
questions.ask(
    lesson, loaded=widgets.shipped_model(model_name), plans=plans, chosen=chosen, data=data
)
