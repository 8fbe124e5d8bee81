"""Scaling laws and the cost of attention: a background sweep of tiny GPTs with a power law fitted
to their losses, and a background measurement of one attention layer's time and memory as the
sequence grows."""

from __future__ import annotations

import streamlit as st
from widgets import (
    job_progress,
    lesson_header,
    lesson_section,
    quiz,
    seed_control,
    server_limits,
    start_job,
)

from tinyformers.course.scaling import (
    CHINCHILLA_TOKENS_PER_PARAMETER,
    KINDS,
    MAX_LENGTH,
    MAX_MODELS,
    MAX_STEPS,
    MAX_WIDTH,
    MIN_MODELS,
    MIN_STEPS,
    MIN_WIDTH,
    CostResult,
    CostSettings,
    CostUpdate,
    SweepResult,
    SweepSettings,
    char_task,
    compute_frontier,
    crossover_length,
    embedding_parameters,
    ladder_configs,
    measure_cost,
    model_label,
    non_embedding_parameters,
    run_sweep,
    training_flops,
)
from tinyformers.figures import scaling as figs
from tinyformers.text.corpora import lesson_corpus
from tinyformers.training.experiments import RunUpdate
from tinyformers.training.jobs import FINISHED, STOPPED, Snapshot
from tinyformers.training.zoo import char_text

SLUG = "scaling"
SOURCES = {"stories": "Generated stories", "lessons": "The lessons' text"}
DEFAULT_MODELS = 6
DEFAULT_STEPS = 300
SWEEP_JOB = "sc-sweep-job"
SWEEP_RUN = "sc-sweep-run"  # what the running (or last) sweep job was started with
SWEEP_CACHE = "sc-sweeps"  # finished sweeps of this session, by (source, settings)
COST_JOB = "sc-cost-job"
COST_CACHE = "sc-costs"  # finished measurements of this session, by settings
MAX_CACHED = 8
DEFAULT_WIDTH, DEFAULT_LENGTH = 128, 1024
HEAD_CHOICES = (1, 2, 4, 8, 16)


# ---------------------------------------------------------------------------------------------
# Cached, pure computations shared by every session
# ---------------------------------------------------------------------------------------------


@st.cache_data(max_entries=2, show_spinner="Preparing the text…")
def training_text(source: str) -> str:
    return char_text() if source == "stories" else lesson_corpus()


@st.cache_data(max_entries=4, show_spinner=False)
def text_sizes(source: str, block_size: int) -> tuple[int, int, int]:
    """Vocabulary size, training and validation characters of a text."""
    vocab_size, task = char_task(training_text(source), block_size)
    return vocab_size, len(task.train_ids), len(task.val_ids)


def show_chart(figure) -> None:
    """A figure with its own fonts and colours (not Streamlit's theme), readable from afar."""
    st.plotly_chart(figure, theme=None)


def remember(store_key: str, key, value) -> None:
    """Keep ``value`` in this session's store under ``key``, once; beyond MAX_CACHED entries
    the oldest is dropped."""
    store: dict = st.session_state.setdefault(store_key, {})
    if key in store:
        return
    store[key] = value
    while len(store) > MAX_CACHED:
        store.pop(next(iter(store)))


def job_active(key: str) -> bool:
    job = st.session_state.get(key)
    return job is not None and job.snapshot().active


# ---------------------------------------------------------------------------------------------
# The sweep: settings and plan
# ---------------------------------------------------------------------------------------------


def sweep_controls() -> tuple[str, SweepSettings] | None:
    source = st.radio(
        "Training text", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="sc-source"
    )
    models_column, steps_column, seed_column = st.columns(3)
    top = min(MAX_STEPS, server_limits().max_steps)
    n_models = models_column.number_input(
        "Number of models",
        MIN_MODELS,
        MAX_MODELS,
        DEFAULT_MODELS,
        key="sc-models",
        help="The first rungs of the ladder, smallest first.",
    )
    steps = steps_column.number_input(
        "Training steps per model",
        MIN_STEPS,
        top,
        min(DEFAULT_STEPS, top),
        step=50,
        key="sc-steps",
        help="Every model trains for the same number of steps on the same batches.",
    )
    with seed_column:
        seed = seed_control(key="sc-seed")
    try:
        settings = SweepSettings(n_models=int(n_models), steps=int(steps), seed=seed)
    except ValueError as err:
        st.error(f"Cannot plan this sweep: {err}.")
        return None
    return source, settings


def show_plan(source: str, settings: SweepSettings) -> list | None:
    try:
        vocab_size, train_chars, val_chars = text_sizes(source, settings.block_size)
    except ValueError as err:
        st.error(f"Cannot train on this text: {err}")
        return None
    configs = ladder_configs(vocab_size, settings.n_models, settings.block_size)
    try:
        server_limits().check_parameters(
            max(non_embedding_parameters(c) + embedding_parameters(c) for c in configs)
        )
    except ValueError as err:
        st.error(str(err))
        return None
    st.dataframe(figs.plan_rows(configs, settings), hide_index=True)
    total = sum(training_flops(non_embedding_parameters(c), settings.tokens) for c in configs)
    epochs = settings.tokens / train_chars
    st.caption(
        f"{SOURCES[source]}: {train_chars:,} training and {val_chars:,} validation characters, "
        f"{vocab_size} distinct. Each model: {settings.steps:,} steps × {settings.batch_size} "
        f"sequences × {settings.block_size} characters = D = {settings.tokens:,} tokens "
        f"({epochs:.2f} passes over the training text). The whole sweep: C ≈ {total:.2e} FLOPs."
    )
    return configs


def start_sweep(source: str, settings: SweepSettings, configs: list) -> None:
    text = training_text(source)
    st.session_state[SWEEP_RUN] = {
        "key": (source, settings),
        "labels": [model_label(c) for c in configs],
        "n": {model_label(c): non_embedding_parameters(c) for c in configs},
        "settings": settings,
    }
    start_job(
        SWEEP_JOB,
        lambda report: run_sweep(text, settings, SOURCES[source], report),
        name="scaling sweep",
    )


def sweep_buttons(source: str, settings: SweepSettings, configs: list | None) -> None:
    cached = (source, settings) in st.session_state.get(SWEEP_CACHE, {})
    if cached:
        st.caption("This sweep already ran in this session: its results are below.")
        return
    busy = job_active(COST_JOB)
    label = f"Train {settings.n_models} models"
    if (
        st.button(label, key="sc-train", type="primary", disabled=configs is None or busy)
        and configs
    ):
        start_sweep(source, settings, configs)
    if busy:
        st.caption("Wait for the attention measurement to finish: training now would disturb it.")


# ---------------------------------------------------------------------------------------------
# The sweep: live progress and results
# ---------------------------------------------------------------------------------------------


def live_curves(snapshot: Snapshot, run: dict) -> dict[str, tuple[list[float], list[float]]]:
    tokens_per_step = run["settings"].tokens_per_step
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for update in snapshot.updates:
        if isinstance(update, RunUpdate) and update.progress.val_loss is not None:
            flops, losses = curves.setdefault(update.label, ([], []))
            tokens = update.progress.step * tokens_per_step
            flops.append(training_flops(run["n"][update.label], tokens))
            losses.append(update.progress.val_loss)
    return curves


def render_sweep(snapshot: Snapshot) -> None:
    run = st.session_state.get(SWEEP_RUN)
    if run is None:
        return
    steps, labels = run["settings"].steps, run["labels"]
    updates = [u for u in snapshot.updates if isinstance(u, RunUpdate)]
    if snapshot.active and updates:
        last = updates[-1]
        index = labels.index(last.label)
        done = (index + last.progress.step / steps) / len(labels)
        st.progress(
            min(done, 1.0),
            text=f"Model {index + 1} of {len(labels)}, {last.label}: step "
            f"{last.progress.step} of {steps} ({snapshot.elapsed_s:.0f} s so far)",
        )
    curves = live_curves(snapshot, run)
    if snapshot.active and curves:
        show_chart(figs.loss_vs_compute_chart(curves, "Validation loss so far, against compute"))
    result = snapshot.result
    if not isinstance(result, SweepResult):
        return
    if snapshot.status == FINISHED:
        st.caption(f"Finished: {len(result.points)} models in {snapshot.elapsed_s:.1f} s.")
    elif snapshot.status == STOPPED:
        st.info(
            f"The sweep was stopped: {len(result.points)} of {result.settings.n_models} models "
            "finished. Their results are shown below, but not kept."
        )


def current_sweep(source: str, settings: SweepSettings) -> SweepResult | None:
    """The sweep to show for these settings: a finished one from this session's store, or the
    partial result of a stopped job."""
    cached = st.session_state.get(SWEEP_CACHE, {}).get((source, settings))
    if cached is not None:
        return cached
    job = st.session_state.get(SWEEP_JOB)
    run = st.session_state.get(SWEEP_RUN)
    if job is not None and job.status == STOPPED and isinstance(job.result, SweepResult):
        return job.result if run["key"] == (source, settings) else None
    return None


def show_fit(result: SweepResult) -> None:
    points = result.points
    for failure in result.failed:
        st.warning(f"Left out of the fit: {failure}")
    if len(points) < 3:
        st.info("A fit with an error bar needs at least 3 finished models.")
        return
    fit = result.fit()
    columns = st.columns(4)
    columns[0].metric("Exponent α", f"{fit.alpha:.3f} ± {fit.exponent_se:.3f}")
    columns[1].metric("Prefactor a", f"{fit.prefactor:.3g} ± {fit.prefactor_se:.2g}")
    columns[2].metric("R² (log–log)", f"{fit.r_squared:.3f}")
    columns[3].metric("Models fitted", fit.n_points)
    title = f"Validation loss against size · {result.source}, D = {result.settings.tokens:,} tokens"
    show_chart(figs.loss_vs_parameters_chart(points, fit, title))
    largest = points[-1]
    span = largest.non_embedding_parameters / points[0].non_embedding_parameters
    st.caption(
        f"Least squares on (ln N, ln L) over {fit.n_points} models: {figs.fit_label(fit)} "
        f"(± one standard error). The sizes span a factor of {span:.0f} in N. N counts "
        f"non-embedding parameters, as Kaplan et al. do: the largest model has "
        f"{largest.non_embedding_parameters:,} of its {largest.parameters:,} parameters outside "
        "the embedding tables. Loss: mean over the whole validation split after the last step."
    )
    st.dataframe(figs.sweep_rows(points, fit), hide_index=True)


def show_compute(result: SweepResult) -> None:
    if not result.points:
        return
    curves = figs.sweep_curves(result.points)
    show_chart(figs.loss_vs_compute_chart(curves, "Validation loss against training compute"))
    everything = [
        (flops, loss, label)
        for label, (flops_list, losses) in curves.items()
        for flops, loss in zip(flops_list, losses, strict=True)
    ]
    frontier = set(compute_frontier([(f, loss) for f, loss, _ in everything]))
    on_frontier = []
    for flops, loss, label in everything:
        if (flops, loss) in frontier and label not in on_frontier:
            on_frontier.append(label)
    best = min(result.points, key=lambda p: p.val_loss)
    st.caption(
        f"{len(everything)} evaluations in all. Models whose curves reach the frontier: "
        f"{', '.join(on_frontier)}. Lowest final loss: {best.label}, {best.val_loss:.4f} at "
        f"C = {best.flops:.2e} FLOPs."
    )


def show_chinchilla(configs: list, settings: SweepSettings) -> None:
    """The plan's tokens per parameter against the Chinchilla ratio (no training needed)."""
    tokens = settings.tokens
    ratios = {model_label(c): tokens / non_embedding_parameters(c) for c in configs}
    under = [label for label, ratio in ratios.items() if ratio < CHINCHILLA_TOKENS_PER_PARAMETER]
    verdict = (
        f"Below {CHINCHILLA_TOKENS_PER_PARAMETER} tokens per parameter, so undertrained by that "
        f"rule: {', '.join(under)}."
        if under
        else "No model is below that ratio."
    )
    shown = ", ".join(f"{ratio:.1f}" for ratio in ratios.values())
    st.caption(
        f"Every model sees D = {tokens:,} tokens; D / N from the smallest to the largest model: "
        f"{shown}. At {CHINCHILLA_TOKENS_PER_PARAMETER} tokens per parameter this D suits "
        f"N ≈ {tokens / CHINCHILLA_TOKENS_PER_PARAMETER:,.0f}. {verdict}"
    )


# ---------------------------------------------------------------------------------------------
# The cost of attention
# ---------------------------------------------------------------------------------------------


def cost_controls() -> CostSettings | None:
    width_column, heads_column, length_column = st.columns(3)
    width = width_column.number_input(
        "Width C", MIN_WIDTH, MAX_WIDTH, DEFAULT_WIDTH, step=16, key="sc-width"
    )
    heads = heads_column.selectbox("Heads", HEAD_CHOICES, index=2, key="sc-heads")
    length = length_column.number_input(
        "Longest sequence n",
        64,
        MAX_LENGTH,
        DEFAULT_LENGTH,
        step=128,
        key="sc-length",
        help=f"Lengths from 32 up to this (at most {MAX_LENGTH}).",
    )
    backward = st.checkbox("Also time forward + backward", key="sc-backward")
    try:
        return CostSettings(
            max_length=int(length), n_embd=int(width), n_head=int(heads), backward=backward
        )
    except ValueError as err:
        st.error(f"Cannot measure this: {err}.")
        return None


def show_prediction(settings: CostSettings) -> None:
    title = f"Computed: multiply-adds of one layer, width C = {settings.n_embd}"
    show_chart(
        figs.multiply_adds_chart(settings.lengths, settings.n_embd, settings.mlp_width, title)
    )
    crossover = crossover_length(settings.n_embd, settings.mlp_width)
    n = settings.max_length
    matrix = settings.n_head * n * n * 4 / figs.MIB
    st.caption(
        f"Attention (projections + scores) costs as much as the MLP at n = 2C = {crossover:.0f}; "
        f"its n² part alone equals the MLP at n = 4C = {settings.mlp_width}. At n = {n}, one "
        f"{settings.n_head} × {n} × {n} float32 matrix takes {matrix:.2f} MiB (computed)."
    )


def cost_button(settings: CostSettings | None) -> None:
    if settings is not None and settings in st.session_state.get(COST_CACHE, {}):
        st.caption("Measured in this session with these settings: the results are below.")
        return
    busy = job_active(SWEEP_JOB)
    if (
        st.button(
            "Measure on this machine",
            key="sc-measure",
            type="primary",
            disabled=settings is None or busy,
        )
        and settings is not None
    ):
        start_job(COST_JOB, lambda report: measure_cost(settings, report), name="attention cost")
    if busy:
        st.caption(
            "Wait for the sweep to finish (or stop it): timings taken while it trains "
            "would measure the contention, not attention."
        )


def render_cost(snapshot: Snapshot) -> None:
    updates = [u for u in snapshot.updates if isinstance(u, CostUpdate)]
    if snapshot.active and updates:
        last = updates[-1]
        st.progress(
            last.done / last.total,
            text=f"Measured n = {last.point.n} ({last.done} of {last.total} lengths)",
        )
    elif snapshot.active:
        st.progress(0.0, text="Warming up…")
    result = snapshot.result
    if snapshot.status == STOPPED and isinstance(result, CostResult):
        st.info(
            f"Stopped after {len(result.points)} of {len(result.settings.lengths)} lengths: "
            "the results are shown below, but not kept."
        )


def show_cost(result: CostResult) -> None:
    show_times(result)
    show_share(result)
    show_memory(result)
    st.dataframe(figs.cost_rows(result), hide_index=True)


def show_times(result: CostResult) -> None:
    settings = result.settings
    fitted = result.fitted_lengths()
    for column, kind in zip(st.columns(3), KINDS, strict=True):
        fit = result.slope(kind)
        column.metric(
            f"Slope: {figs.KIND_NAMES[kind]}", f"{fit.exponent:.2f} ± {fit.exponent_se:.2f}"
        )
    title = f"Measured time of one layer, C = {settings.n_embd}, {settings.n_head} heads"
    show_chart(figs.time_chart(result, title))
    threads = "one CPU thread" if result.threads == 1 else f"{result.threads} CPU threads"
    st.caption(
        f"Slopes fitted by least squares on (ln n, ln time) for n = {fitted[0]} to {fitted[-1]} "
        f"({len(fitted)} lengths; ± one standard error). Median of at least {settings.repeats} "
        f"runs per point, after a warm-up run, on {threads}. The grey reference lines pass "
        f"through the attention time at n = {fitted[0]}."
    )
    if settings.backward:
        backward = result.slope("attention", backward=True)
        st.caption(
            f"Forward + backward, attention with materialised weights: slope "
            f"{backward.exponent:.2f} ± {backward.exponent_se:.2f}."
        )


def show_share(result: CostResult) -> None:
    settings = result.settings
    show_chart(figs.share_chart(result, "Measured: attention's share of attention + MLP time"))
    first, last = result.points[0], result.points[-1]
    over_half = next((p.n for p in result.points if p.attention_share() >= 0.5), None)
    crossover = crossover_length(settings.n_embd, settings.mlp_width)
    where = (
        f"first reaches half of the time at n = {over_half}"
        if over_half is not None
        else "stays below half of the time at every length measured"
    )
    st.caption(
        f"Attention with materialised weights takes {first.attention_share():.0%} of the time "
        f"at n = {first.n} and {last.attention_share():.0%} at n = {last.n}; it {where} "
        f"(the multiply-add count predicts n = {crossover:.0f})."
    )


def show_memory(result: CostResult) -> None:
    show_chart(figs.memory_chart(result, "Memory of one forward pass, without gradients"))
    last = result.points[-1]
    if last.peak_bytes is None:
        return
    peak = last.peak_bytes["attention"]
    st.caption(
        f"At n = {last.n}: one n × n matrix for all heads is {last.score_bytes / figs.MIB:.2f} "
        f"MiB (computed); the forward pass with materialised weights peaked at "
        f"{peak / figs.MIB:.2f} MiB (measured, {peak / last.score_bytes:.1f} matrices' worth), "
        f"the fused kernel at {last.peak_bytes['fused'] / figs.MIB:.2f} MiB and the MLP at "
        f"{last.peak_bytes['mlp'] / figs.MIB:.2f} MiB (measured)."
    )


def current_cost(settings: CostSettings | None) -> CostResult | None:
    """A finished measurement with these settings from this session's store, or the partial
    result of a stopped one."""
    if settings is None:
        return None
    cached = st.session_state.get(COST_CACHE, {}).get(settings)
    if cached is not None:
        return cached
    job = st.session_state.get(COST_JOB)
    if job is not None and job.status == STOPPED and isinstance(job.result, CostResult):
        return job.result if job.result.settings == settings else None
    return None


def keep_finished_runs() -> None:
    """Move the results of jobs that finished into this session's stores, keyed by settings."""
    sweep, run = st.session_state.get(SWEEP_JOB), st.session_state.get(SWEEP_RUN)
    if sweep is not None and sweep.status == FINISHED and isinstance(sweep.result, SweepResult):
        remember(SWEEP_CACHE, run["key"], sweep.result)
    cost = st.session_state.get(COST_JOB)
    if cost is not None and cost.status == FINISHED and isinstance(cost.result, CostResult):
        remember(COST_CACHE, cost.result.settings, cost.result)


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

keep_finished_runs()
lesson = lesson_header(SLUG)
lesson_section(lesson, "power-laws")

lesson_section(lesson, "sweep")
chosen = sweep_controls()
plan = show_plan(*chosen) if chosen is not None else None
if chosen is not None:
    sweep_buttons(*chosen, plan)
job_progress(SWEEP_JOB, render_sweep)
sweep = current_sweep(*chosen) if chosen is not None else None

lesson_section(lesson, "fit")
if sweep is not None:
    show_fit(sweep)
elif not job_active(SWEEP_JOB):
    st.info("Train the sweep to see the fit.")

lesson_section(lesson, "compute")
if sweep is not None:
    show_compute(sweep)

lesson_section(lesson, "chinchilla")
if chosen is not None and plan is not None:
    show_chinchilla(plan, chosen[1])

lesson_section(lesson, "limits")

lesson_section(lesson, "attention-cost")
cost_settings = cost_controls()
if cost_settings is not None:
    show_prediction(cost_settings)

lesson_section(lesson, "measure")
cost_button(cost_settings)
job_progress(COST_JOB, render_cost)
cost = current_cost(cost_settings)
if cost is not None and len(cost.points) >= 3:
    show_cost(cost)

lesson_section(lesson, "code")
quiz(lesson)
