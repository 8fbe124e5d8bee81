"""Fine-tuning: a grammaticality task built from the stories grammar, six ways to adapt a
pretrained model to it (trained in the background), a table of what each run measured, and
what gpt-stories does with no training at all."""

from __future__ import annotations

import statistics

import pandas  # noqa: F401  (see the note below)
import streamlit as st
from widgets import (
    job_progress,
    lesson_header,
    lesson_section,
    quiz,
    seed_control,
    server_limits,
    shipped_model,
    start_job,
)

from tinyformers.course.fine_tuning import (
    CORRUPTIONS,
    DEFAULT_LEARNING_RATES,
    GRAMMATICAL,
    LABELS,
    MAX_LEARNING_RATE,
    METHODS,
    MIN_LEARNING_RATE,
    POOLINGS,
    MethodResult,
    MethodSettings,
    MethodUpdate,
    TaskData,
    ZeroShotResult,
    make_task,
    parameter_arithmetic,
    prepare,
    run_methods,
    zero_shot,
)
from tinyformers.figures import fine_tuning as figs
from tinyformers.hub.registry import shipped_names
from tinyformers.model import peft
from tinyformers.model.build import count_parameters
from tinyformers.text.corpora import is_grammatical
from tinyformers.training.jobs import Snapshot

# Note on the pandas import: Plotly imports pandas the first time a figure is built, and the
# first optimizer step of a training thread makes PyTorch import several hundred modules. If
# both happen at once in two threads, one of them can receive a half-initialized module, so
# pandas is imported here, before any training thread starts.

SLUG = "fine-tuning"
JOB_KEY = "ft-job"
JOB_INFO_KEY = "ft-job-info"
RESULTS_KEY = "ft-results"
COLLECTED_KEY = "ft-collected"
ZERO_SHOT_KEY = "ft-zero-shot-asked"
BASE_MODELS = ("bert-stories", "gpt-stories")
ZERO_SHOT_MODEL = "gpt-stories"
POOLINGS_OF = {"bert": ("mean", "first"), "gpt": ("mean", "last")}
DEFAULT_STEPS, MIN_STEPS, MOST_STEPS = 150, 10, 2_000
EXAMPLES_SHOWN = 8
PLACE_NAMES = {"attn": "after attention", "mlp": "after the MLP"}


# ---------------------------------------------------------------------------------------------
# Cached computations
# ---------------------------------------------------------------------------------------------


@st.cache_data(max_entries=4, show_spinner=False)
def cached_task(n_train: int, n_held_out: int, seed: int, corruptions: tuple[str, ...]):
    data = make_task(n_train, n_held_out, seed, corruptions)
    examples = data.train + data.held_out
    checks = {
        "negatives rejected": sum(not is_grammatical(e.text) for e in examples if e.label == 0),
        "negatives": sum(e.label == 0 for e in examples),
        "positives accepted": sum(is_grammatical(e.text) for e in examples if e.label == 1),
        "positives": sum(e.label == 1 for e in examples),
        "shared sentences": len({e.source for e in data.train} & {e.source for e in data.held_out}),
    }
    return data, checks


@st.cache_data(max_entries=32, show_spinner=False)
def parameter_counts(model_name: str, settings: MethodSettings) -> tuple[int, int]:
    """(trainable, total) parameters of the classifier a run would train."""
    classifier = prepare(shipped_model(model_name).model, settings)
    return peft.count_trainable(classifier), count_parameters(classifier)


@st.cache_data(max_entries=2, show_spinner=False)
def cached_zero_shot(
    n_train: int, n_held_out: int, seed: int, corruptions: tuple[str, ...]
) -> ZeroShotResult:
    data, _ = cached_task(n_train, n_held_out, seed, corruptions)
    loaded = shipped_model(ZERO_SHOT_MODEL)
    return zero_shot(loaded.model, loaded.tokenizer, data)


def show_chart(figure) -> None:
    st.plotly_chart(figure, theme=None)


def show_table(rows: list[dict], percent: tuple[str, ...] = (), counts: tuple[str, ...] = ()):
    """A table whose accuracy columns read as percentages and counts with separators."""
    config = {name: st.column_config.NumberColumn(format="percent") for name in percent}
    config |= {name: st.column_config.NumberColumn(format="localized") for name in counts}
    st.dataframe(rows, hide_index=True, column_config=config)


# ---------------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------------


def task_controls() -> tuple[tuple, TaskData] | None:
    """The task's sizes, corruptions and seed; returns (its arguments, the data) or None."""
    train_column, held_column, seed_column = st.columns(3)
    n_train = train_column.number_input(
        "Training examples", 40, 2_000, 800, step=40, key="ft-n-train"
    )
    n_held_out = held_column.number_input(
        "Held-out examples", 40, 1_000, 400, step=40, key="ft-n-held-out"
    )
    with seed_column:
        seed = seed_control(key="ft-seed")
    kinds = st.multiselect(
        "Corruptions that make the ungrammatical sentences",
        list(CORRUPTIONS),
        default=list(CORRUPTIONS),
        format_func=CORRUPTIONS.get,
        key="ft-corruptions",
    )
    if not kinds:
        st.warning("Choose at least one corruption: without one there are no negative examples.")
        return None
    arguments = (int(n_train), int(n_held_out), int(seed), tuple(kinds))
    try:
        data, checks = cached_task(*arguments)
    except ValueError as err:
        st.error(f"Cannot build the task: {err}")
        return None
    show_task(data, checks)
    return arguments, data


def show_task(data: TaskData, checks: dict[str, int]) -> None:
    st.caption(
        f"Training split: {figs.split_text(data.train)}. Held-out split: "
        f"{figs.split_text(data.held_out)}. The grammar's parser rejects "
        f"{checks['negatives rejected']:,} of the {checks['negatives']:,} negatives and accepts "
        f"{checks['positives accepted']:,} of the {checks['positives']:,} positives; the two "
        f"splits share {checks['shared sentences']} source sentences."
    )
    st.html(figs.examples_html(data.train[:EXAMPLES_SHOWN]))


# ---------------------------------------------------------------------------------------------
# Training controls
# ---------------------------------------------------------------------------------------------


def base_models() -> list[str]:
    available = shipped_names()
    return [name for name in BASE_MODELS if name in available]


def learning_rates() -> dict[str, float]:
    st.markdown("**Learning rate of each method**")
    rates = {}
    columns = st.columns(3)
    for n, (method, label) in enumerate(METHODS.items()):
        rates[method] = columns[n % 3].number_input(
            label,
            min_value=MIN_LEARNING_RATE,
            max_value=MAX_LEARNING_RATE,
            value=DEFAULT_LEARNING_RATES[method],
            step=1e-4,
            format="%.1e",
            key=f"ft-lr-{method}",
        )
    return rates


def method_options() -> dict[str, object]:
    """The settings of LoRA, adapters and prefix tuning (used by single runs and by run all)."""
    lora, adapters, prefix = st.columns(3)
    with lora:
        st.markdown("**LoRA**")
        rank = st.number_input("Rank r", 1, peft.MAX_RANK, 4, key="ft-rank")
        alpha = st.number_input("α", 0.5, 256.0, 8.0, step=0.5, key="ft-alpha")
        targets = st.multiselect(
            "Projections to adapt",
            list(peft.LORA_TARGETS),
            default=["q_proj", "v_proj"],
            key="ft-targets",
        )
    with adapters:
        st.markdown("**Adapters**")
        bottleneck = st.number_input("Bottleneck b", 1, 128, 16, key="ft-bottleneck")
        places = st.multiselect(
            "Where in each block",
            list(peft.ADAPTER_PLACES),
            default=list(peft.ADAPTER_PLACES),
            format_func=PLACE_NAMES.get,
            key="ft-places",
        )
    with prefix:
        st.markdown("**Prefix tuning**")
        length = st.number_input("Prefix length P", 1, 32, 8, key="ft-prefix")
    return {
        "lora_rank": int(rank),
        "lora_alpha": float(alpha),
        "lora_targets": tuple(targets),
        "adapter_bottleneck": int(bottleneck),
        "adapter_places": tuple(places),
        "prefix_length": int(length),
    }


def make_settings(method: str, steps: int, seed: int, pooling: str, rates, options):
    """The settings of one run (raises ValueError with the reason if they are not valid)."""
    return MethodSettings(
        method=method,
        steps=steps,
        learning_rate=rates[method],
        seed=seed,
        pooling=pooling,
        **options,
    )


def show_plans(model_name: str, make) -> None:
    """A chart of how many parameters each method would train with the settings above."""
    counts = {}
    for method in METHODS:
        try:
            counts[method] = parameter_counts(model_name, make(method))
        except ValueError:
            continue  # the reason is shown when that method is chosen
    if counts:
        title = f"Parameters each method trains in a classifier on {model_name}"
        show_chart(figs.plan_chart(counts, title))


def show_plan(model_name: str, settings: MethodSettings, config) -> None:
    """How many parameters the chosen run will train, and where the number comes from."""
    trainable, total = parameter_counts(model_name, settings)
    text = (
        f"{settings.label} on {model_name} trains {trainable:,} of the classifier's "
        f"{total:,} parameters ({trainable / total:.2%})."
    )
    arithmetic = parameter_arithmetic(settings, config)
    if arithmetic is not None:
        text += f" Worked out: {arithmetic[1]}."
    st.caption(text)


def training_controls(arguments: tuple, data: TaskData) -> None:
    model_column, pooling_column, steps_column = st.columns(3)
    model_name = model_column.selectbox("Pretrained model", base_models(), key="ft-model")
    if model_name is None:
        st.error("No pretrained stories model is shipped in models/.")
        return
    loaded = shipped_model(model_name)
    pooling = pooling_column.selectbox(
        "Sentence vector",
        POOLINGS_OF[loaded.family],
        format_func=POOLINGS.get,
        key=f"ft-pooling-{loaded.family}",
    )
    most = min(MOST_STEPS, server_limits().max_steps)
    steps = steps_column.number_input(
        "Training steps per method",
        MIN_STEPS,
        most,
        min(DEFAULT_STEPS, most),
        step=10,
        key="ft-steps",
    )
    rates = learning_rates()
    options = method_options()

    def make(method: str) -> MethodSettings:
        return make_settings(method, int(steps), arguments[2], pooling, rates, options)

    show_plans(model_name, make)
    method = st.selectbox("Method", list(METHODS), format_func=METHODS.get, key="ft-method")
    try:
        chosen = make(method)
    except ValueError as err:
        st.error(f"Cannot train with these settings: {err}")
        chosen = None
    if chosen is not None:
        show_plan(model_name, chosen, loaded.config)
    one, everything = st.columns(2)
    if one.button(
        f"Train: {METHODS[method]}",
        key="ft-train-one",
        type="primary",
        disabled=chosen is None,
        width="stretch",
    ):
        start_runs(model_name, data, [chosen])
    if everything.button(f"Run all {len(METHODS)} methods", key="ft-train-all", width="stretch"):
        try:
            runs = [make(m) for m in METHODS]
        except ValueError as err:
            st.error(f"Cannot train with these settings: {err}")
            return
        start_runs(model_name, data, runs)


def start_runs(model_name: str, data: TaskData, runs: list[MethodSettings]) -> None:
    loaded = shipped_model(model_name)
    model, tokenizer = loaded.model, loaded.tokenizer
    st.session_state[JOB_INFO_KEY] = {
        "model": model_name,
        "labels": [settings.label for settings in runs],
        "steps": runs[0].steps,
    }
    st.session_state[COLLECTED_KEY] = 0
    start_job(
        JOB_KEY,
        lambda report: run_methods(model, tokenizer, data, runs, model_name, report),
        name="fine-tuning",
    )


def render_progress(snapshot: Snapshot) -> None:
    info = st.session_state.get(JOB_INFO_KEY, {})
    labels, steps = info.get("labels", []), info.get("steps")
    histories: dict[str, list] = {}
    for update in snapshot.updates:
        if isinstance(update, MethodUpdate):
            histories.setdefault(update.label, []).append(update.progress)
    finished = sum(isinstance(update, MethodResult) for update in snapshot.updates)
    if snapshot.active and histories and steps and labels:
        label, history = list(histories.items())[-1]
        done = min((finished + history[-1].step / steps) / len(labels), 1.0)
        st.progress(
            done,
            text=f"{label} on {info['model']}: step {history[-1].step} of {steps} "
            f"(run {min(finished + 1, len(labels))} of {len(labels)}); "
            f"{snapshot.elapsed_s:.1f} s so far",
        )
    if histories:
        show_chart(figs.loss_chart(histories, f"Loss while fine-tuning {info['model']}", steps))
    if snapshot.status == "stopped":
        st.info(f"Stopped after {finished} of {len(labels)} runs; finished runs are in the table.")
    elif not snapshot.active and finished:
        st.caption(f"Finished {finished} run(s) in {snapshot.elapsed_s:.1f} s.")


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


def collect_results() -> list[MethodResult]:
    """Move the runs a job has finished into this session's results (each exactly once)."""
    results: list[MethodResult] = st.session_state.setdefault(RESULTS_KEY, [])
    job = st.session_state.get(JOB_KEY)
    if job is not None:
        finished = [u for u in job.snapshot().updates if isinstance(u, MethodResult)]
        results.extend(finished[st.session_state.get(COLLECTED_KEY, 0) :])
        st.session_state[COLLECTED_KEY] = len(finished)
    return results


def clear_results() -> None:
    st.session_state[RESULTS_KEY] = []


def show_results(results: list[MethodResult]) -> None:
    if not results:
        st.info("No runs yet: train a method above, or run all of them.")
        return
    show_table(
        figs.result_rows(results),
        percent=("held-out accuracy",),
        counts=("trainable parameters",),
    )
    show_chart(figs.results_chart(results, "What each run trained, scored, took and kept"))
    names = dict(zip(map(id, results), figs.run_names(results), strict=True))
    for result in results:
        if result.stop_reason:
            st.warning(f"Run {names[id(result)]} stopped early: {result.stop_reason}")
    st.caption(speed_text(results, names))
    st.caption(memory_text(results, names))
    merges = lora_merge_text(results, names)
    if merges:
        st.caption(merges)
    st.markdown("**Held-out accuracy by kind of example**")
    kinds = figs.kind_rows(results)
    columns = dict.fromkeys(name for row in kinds for name in row if name != "run")
    show_table(kinds, percent=tuple(columns))
    st.button("Clear results", key="ft-clear", on_click=clear_results)


def speed_text(results: list[MethodResult], names: dict[int, str]) -> str:
    ordered = sorted(results, key=lambda r: r.median_step_seconds)
    fastest, slowest = ordered[0], ordered[-1]
    if len(results) == 1:
        return f"Median time per training step: {1000 * fastest.median_step_seconds:.1f} ms."
    text = (
        f"Median time per training step: fastest {names[id(fastest)]} "
        f"({1000 * fastest.median_step_seconds:.1f} ms), slowest {names[id(slowest)]} "
        f"({1000 * slowest.median_step_seconds:.1f} ms)."
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
            text += f" Step time relative to {names[id(base)]}: {ratios}."
    return text


def memory_text(results: list[MethodResult], names: dict[int, str]) -> str:
    matching = sum(
        r.optimizer_state_bytes == 8 * r.trainable + 4 * r.optimizer_tensors for r in results
    )
    text = (
        f"Optimizer state: 8 bytes per trained parameter (two float32 moments) plus 4 bytes of "
        f"step counter per trained tensor equals the measured state in {matching} of "
        f"{len(results)} runs."
    )
    largest = max(results, key=lambda r: r.optimizer_state_bytes)
    smallest = min(results, key=lambda r: r.optimizer_state_bytes)
    if largest.optimizer_state_bytes > smallest.optimizer_state_bytes > 0:
        ratio = largest.optimizer_state_bytes / smallest.optimizer_state_bytes
        text += f" {names[id(largest)]} keeps {ratio:,.0f} times as much as {names[id(smallest)]}."
    return text


def lora_merge_text(results: list[MethodResult], names: dict[int, str]) -> str:
    merged = [r for r in results if r.merge_difference is not None]
    if not merged:
        return ""
    return (
        "Merging LoRA into the weights, W + (α/r)·BA: "
        + "; ".join(
            f"for {names[id(r)]}, the held-out logits changed by at most "
            f"{r.merge_difference:.1e}, and the merged model has {r.merged_parameters:,} "
            f"parameters (with LoRA: {r.total:,})"
            for r in merged
        )
        + "."
    )


# ---------------------------------------------------------------------------------------------
# No training: gpt-stories on its own
# ---------------------------------------------------------------------------------------------


def zero_shot_section(arguments: tuple, data: TaskData) -> None:
    if ZERO_SHOT_MODEL not in shipped_names():
        st.info(f"{ZERO_SHOT_MODEL} is not shipped in models/, so there is nothing to score.")
        return
    if st.button(f"Score the held-out sentences with {ZERO_SHOT_MODEL}", key="ft-zero-shot"):
        st.session_state[ZERO_SHOT_KEY] = True
    if not st.session_state.get(ZERO_SHOT_KEY):
        return
    with st.spinner(f"Scoring {len(data.train) + 3 * len(data.held_out):,} sentences…"):
        result = cached_zero_shot(*arguments)
    show_table(figs.zero_shot_rows(result), percent=("held-out accuracy",))
    by_kind = ", ".join(
        f"{CORRUPTIONS[kind]} {value:.1%}" for kind, value in result.pair_accuracy_by_kind.items()
    )
    st.caption(
        f"Minimal pairs by corruption: {by_kind}. Threshold: a mean log-probability per token "
        f"above {result.threshold:.3f} counts as grammatical ({result.threshold_train_accuracy:.1%}"
        f" right on the training split it was chosen on)."
    )
    st.markdown("**The few-shot prompt** (each held-out sentence follows it, then a label word)")
    st.code(result.few_shot_prompt, language=None)
    word = LABELS[GRAMMATICAL]
    share = statistics.mean(e.label == GRAMMATICAL for e in data.held_out)
    st.caption(
        f"With this prompt the model answered {word} for {result.few_shot_grammatical_share:.1%} "
        f"of the held-out sentences; {share:.1%} of them are {word}."
    )


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

lesson = lesson_header(SLUG)

lesson_section(lesson, "task")
chosen_task = task_controls()

for key in ("full-and-head", "bitfit", "adapters", "lora", "prefix"):
    lesson_section(lesson, key)

lesson_section(lesson, "train")
if chosen_task is None:
    st.info("Fix the task settings above to train on it.")
else:
    training_controls(*chosen_task)
job_progress(JOB_KEY, render_progress)

lesson_section(lesson, "results")
show_results(collect_results())

lesson_section(lesson, "zero-shot")
if chosen_task is not None:
    zero_shot_section(*chosen_task)

lesson_section(lesson, "choosing")
quiz(lesson)
