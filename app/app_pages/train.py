"""Train a tiny model yourself: build a GPT or BERT, train it in the background, and watch its
loss, its samples and the attention of a probe sentence change while it learns."""

from __future__ import annotations

import streamlit as st
from widgets import (
    corpus_input,
    job_progress,
    lesson_header,
    lesson_section,
    quiz,
    seed_control,
    server_limits,
    start_job,
)

from tinyformers.course import train as course
from tinyformers.course.train import SCORES, Choice, Training
from tinyformers.figures import train as figs
from tinyformers.model.config import PRESETS
from tinyformers.text.tokenizers import DEFAULT_VOCAB_SIZE
from tinyformers.training.jobs import Snapshot

SLUG = "train"
JOB_KEY = "train-job"
TRAINING_KEY = "train-current"
TRAINED_KEY = "trained_models"  # read by widgets.model_picker on every page
OUTCOME_BOXES = {
    "finished": st.success,
    "stopped": st.info,
    "budget": st.info,
    "diverged": st.error,
}


@st.cache_data(max_entries=3, show_spinner="Preparing the corpus…")
def builtin_text(name: str) -> str:
    return course.corpus_text(name)


@st.cache_data(max_entries=4, show_spinner="Training the tokenizer on the corpus…")
def corpus_profile(text: str, kind: str, vocab_size: int | None) -> course.CorpusProfile:
    return course.corpus_profile(text, kind, vocab_size)


@st.cache_data(max_entries=16, show_spinner="Counting parameters…")
def parameter_count(config: dict) -> int:
    return course.parameter_count(config)


def current_training() -> Training | None:
    return st.session_state.get(TRAINING_KEY)


# ---------------------------------------------------------------------------------------------
# Choosing what to train
# ---------------------------------------------------------------------------------------------


def chosen_corpus() -> tuple[str, str] | None:
    labels = course.CORPUS_LABELS
    source = st.radio(
        "Corpus", list(labels), format_func=labels.get, horizontal=True, key="train-corpus"
    )
    if source == "own":
        text = corpus_input("train-own")
        return (text, labels[source]) if text is not None else None
    try:
        return builtin_text(source), labels[source]
    except ValueError as err:
        st.error(str(err))
        return None


def chosen_tokenizer(text: str | None) -> tuple[str, course.CorpusProfile] | None:
    """The tokenizer settings and, given a text, what a tokenizer trained on it gives."""
    kind_column, vocab_column = st.columns(2)
    labels = course.TOKENIZER_LABELS
    kind = kind_column.radio(
        "Tokenizer", list(labels), format_func=labels.get, horizontal=True, key="train-tokenizer"
    )
    vocab = vocab_column.number_input(
        "Vocabulary size (BPE, WordPiece)",
        min_value=course.VOCAB_MIN,
        max_value=course.VOCAB_MAX,
        value=DEFAULT_VOCAB_SIZE,
        step=100,
        key="train-vocab",
        disabled=kind == "char",
        help="At most this many tokens are learned. Characters: one token per distinct "
        "character of the text.",
    )
    if text is None:
        return None
    try:
        profile = corpus_profile(text, kind, None if kind == "char" else int(vocab))
    except ValueError as err:
        st.error(f"Cannot train a tokenizer on this text: {err}")
        return None
    st.caption(figs.corpus_caption(profile))
    return kind, profile


def chosen_size() -> tuple[str, dict[str, int]]:
    names = list(PRESETS)
    preset_column, custom_column = st.columns([3, 1], vertical_alignment="bottom")
    name = preset_column.selectbox(
        "Size preset",
        names,
        index=names.index("char"),
        format_func=figs.preset_label,
        key="train-preset",
        help="The char preset is sized for character-level text.",
    )
    if not custom_column.toggle("Custom size", key="train-custom"):
        return name, {}
    limits = course.SIZE_LIMITS
    overrides = {}
    for column, (field, (label, low, high, step)) in zip(
        st.columns(len(limits)), limits.items(), strict=True
    ):
        default = course.size_default(name, field)
        overrides[field] = int(
            column.number_input(label, low, high, default, step, key=f"train-{field}")
        )
    return name, overrides


def chosen_settings() -> course.TrainSettings | None:
    lr_column, batch_column, steps_column, seed_column = st.columns(4)
    learning_rate = lr_column.select_slider(
        "Peak learning rate",
        course.LEARNING_RATES,
        value=course.DEFAULT_LEARNING_RATE,
        format_func=lambda rate: f"{rate:g}",
        key="train-lr",
    )
    batch_size = batch_column.select_slider(
        "Batch size", course.BATCH_SIZES, value=course.DEFAULT_BATCH_SIZE, key="train-batch"
    )
    steps = steps_column.number_input(
        "Steps",
        course.STEPS_MIN,
        course.STEPS_MAX,
        course.DEFAULT_STEPS,
        step=100,
        key="train-steps",
        help=f"This server allows at most {server_limits().max_steps:,} steps per run.",
    )
    with seed_column:
        seed = seed_control(key="train-seed")
    try:
        return course.train_settings(int(steps), int(batch_size), float(learning_rate), seed)
    except ValueError as err:
        st.error(f"These settings cannot be used: {err}")
        return None


def choose() -> Choice | None:
    """All the settings, checked; shows the parameter count. None (with a message) if the
    settings cannot make a model."""
    labels = course.FAMILY_LABELS
    family = st.radio(
        "Model", list(labels), format_func=labels.get, horizontal=True, key="train-family"
    )
    corpus = chosen_corpus()
    tokenizer = chosen_tokenizer(corpus[0] if corpus is not None else None)
    preset_name, overrides = chosen_size()
    lesson_section(current, "settings")
    settings = chosen_settings()
    if corpus is None or tokenizer is None or settings is None:
        return None
    (text, corpus_name), (kind, profile) = corpus, tokenizer
    try:
        spec, config = course.run_spec(family, profile, kind, preset_name, overrides, settings)
    except ValueError as err:
        st.error(f"This size cannot be built: {err}")
        return None
    choice = Choice(spec, text, corpus_name, config, parameter_count(config.to_dict()), profile)
    count_column, caption_column = st.columns([1, 3], vertical_alignment="center")
    count_column.metric("Parameters", f"{choice.n_parameters:,}")
    caption_column.caption(figs.choice_caption(choice))
    if current_training() is None:
        st.plotly_chart(
            figs.learning_rate_figure(settings, 0), key="train-planned-schedule", theme=None
        )
    limit = server_limits().max_parameters
    if choice.n_parameters > limit:
        st.warning(
            f"This server trains models of at most {limit:,} parameters: choose a smaller size."
        )
    return choice


# ---------------------------------------------------------------------------------------------
# Start, resume, restart, reset
# ---------------------------------------------------------------------------------------------


def begin(training: Training) -> None:
    work = training.work(server_limits().max_seconds)
    training.job = start_job(JOB_KEY, work, name="train")


def start_new(choice: Choice) -> None:
    reason = course.refusal(choice, server_limits())
    if reason is not None:
        st.error(reason)
        return
    training = Training(choice)
    st.session_state[TRAINING_KEY] = training
    begin(training)
    st.rerun()


def restart() -> None:
    training = current_training()
    training.restart()
    begin(training)


def reset() -> None:
    job = st.session_state.get(JOB_KEY)
    if job is not None:
        job.stop()
    for key in (TRAINING_KEY, JOB_KEY, f"{JOB_KEY}-polling"):
        st.session_state.pop(key, None)


def action_buttons(choice: Choice | None) -> None:
    training = current_training()
    active = training is not None and training.active
    columns = st.columns([1, 1, 1.7, 1])
    start = columns[0].button(
        "Start training",
        type="primary",
        key="train-start",
        disabled=active or choice is None,
        width="stretch",
    )
    columns[1].button(
        "Resume",
        key="train-resume",
        on_click=lambda: begin(current_training()),
        disabled=training is None or not training.can_resume(),
        width="stretch",
    )
    columns[2].button(
        "Restart from the same initialization",
        key="train-restart",
        on_click=restart,
        disabled=training is None or training.run is None or active,
        width="stretch",
    )
    columns[3].button(
        "Reset", key="train-reset", on_click=reset, disabled=training is None, width="stretch"
    )
    if start and choice is not None:
        start_new(choice)


# ---------------------------------------------------------------------------------------------
# Live view (redrawn every half second while a job runs; never touches the model)
# ---------------------------------------------------------------------------------------------


def show_status(status: course.Status, active: bool) -> None:
    if active:
        st.progress(status.fraction, text=figs.progress_text(status))
    for column, (label, value) in zip(
        st.columns(6), figs.status_metrics(status).items(), strict=True
    ):
        column.metric(label, value)
    caption = figs.budget_caption(status, server_limits().max_seconds)
    if caption is not None:
        st.caption(caption)


def show_curves(training: Training, history: list, status: course.Status) -> None:
    settings, vocab_size = training.choice.spec.settings, training.choice.config.vocab_size
    even_guess = course.even_guess_loss(vocab_size)
    loss = figs.loss_figure(history, settings.max_steps, training.earlier, even_guess)
    st.plotly_chart(loss, key="train-loss", theme=None)
    st.caption(figs.loss_caption(vocab_size, restarted=bool(training.earlier)))
    schedule_column, speed_column = st.columns(2)
    with schedule_column:
        schedule = figs.learning_rate_figure(settings, status.planned_step)
        st.plotly_chart(schedule, key="train-schedule", theme=None)
    with speed_column:
        st.plotly_chart(figs.throughput_figure(history), key="train-speed", theme=None)


def show_sample(training: Training) -> None:
    sample = course.latest_sample(training.run)
    if sample is None:
        st.caption("The first sample appears at the first evaluation.")
    else:
        st.html(figs.run_sample_html(training.run.spec.family, sample))


def choose_head(layer: int, head: int) -> None:
    st.session_state["train-layer"] = layer
    st.session_state["train-head"] = head


def forget_out_of_range(key: str, allowed: range) -> None:
    """Drop a remembered widget value that the current run's sizes no longer allow."""
    if st.session_state.get(key, allowed.start) not in allowed:
        del st.session_state[key]


def show_timeline(training: Training) -> None:
    run, snapshots = training.run, training.timeline_snapshots()
    if not snapshots:
        st.caption("The first snapshot is taken as soon as the run starts.")
        return
    timeline = course.attention_timeline(snapshots)
    settings = run.spec.settings
    top = course.last_snapshot_step(settings)
    forget_out_of_range("train-snapshot", range(top + 1))
    forget_out_of_range("train-layer", range(timeline.n_layer))
    forget_out_of_range("train-head", range(timeline.n_head))
    slider_column, layer_column, head_column = st.columns([4, 1, 1])
    chosen = slider_column.slider(
        "Snapshot at step (right end: the latest)",
        0,
        top,
        top,
        step=settings.eval_interval,
        key="train-snapshot",
    )
    layer = layer_column.selectbox("Layer", list(range(timeline.n_layer)), key="train-layer")
    head = head_column.selectbox("Head", list(range(timeline.n_head)), key="train-head")
    index = course.snapshot_at(timeline.steps, chosen)
    step, attentions = snapshots[index]
    uniform = course.uniform_scores(len(run.probe_tokens), causal=run.spec.family == "gpt")
    matrix_column, score_column = st.columns(2)
    with matrix_column:
        title = figs.snapshot_title(layer, head, step)
        matrix = figs.attention_snapshot_figure(attentions[layer][0, head], run.probe_tokens, title)
        st.plotly_chart(matrix, key="train-snapshot-figure", theme=None)
        values = timeline.head_values(index, layer, head)
        st.caption(figs.snapshot_caption(index, len(snapshots), values, uniform["previous"]))
    with score_column:
        score = st.radio(
            "Score over time",
            SCORES,
            format_func=figs.score_label,
            horizontal=True,
            key="train-score",
        )
        scores = figs.head_score_figure(
            timeline, score, (layer, head), uniform[score], settings.max_steps
        )
        st.plotly_chart(scores, key="train-scores", theme=None)
        st.caption(figs.strongest_head_caption(timeline, score))
        best_layer, best_head, _ = timeline.strongest_head(score)
        st.button(
            "Show that head",
            key="train-best-head",
            on_click=choose_head,
            args=(best_layer, best_head),
        )


def show_live(snapshot: Snapshot | None) -> None:
    """Status, curves, sample and attention timeline of this session's run (drawn with the
    lesson text around them even before a run exists)."""
    training = current_training()
    run = training.run if training is not None else None
    active = snapshot is not None and snapshot.active
    if training is not None:
        st.caption(figs.run_caption(training))
    if active and run is None and snapshot.status == "running":
        st.info("Preparing the run: training the tokenizer and cutting the text into batches…")
    history = training.history() if training is not None else []
    if run is not None:
        status = training.status(history, active)
        show_status(status, active)
        if not active:
            kind = training.stop_kind()
            if kind is not None:
                message = figs.outcome_message(
                    kind, status, server_limits().max_seconds, run.state.stop_reason
                )
                OUTCOME_BOXES[kind](message)
    lesson_section(current, "curves")
    if run is not None and history:
        show_curves(training, history, status)
    else:
        st.caption("Start a run to draw its curves here.")
    lesson_section(current, "samples")
    if run is not None:
        show_sample(training)
    lesson_section(current, "timeline")
    if run is not None:
        show_timeline(training)


# ---------------------------------------------------------------------------------------------
# Into the model pickers, and downloaded
# ---------------------------------------------------------------------------------------------


def publish(training: Training | None) -> None:
    """Once a run has stopped or finished, put its model into this session's model pickers
    and zip it for download."""
    if training is not None and training.publishable():
        training.publish(st.session_state.setdefault(TRAINED_KEY, {}))


def show_export(training: Training | None) -> None:
    if training is None or training.published_name is None:
        st.caption("Your model appears here once a run stops or finishes.")
        return
    name, folder = training.published_name, training.folder
    trained = st.session_state.get(TRAINED_KEY, {})
    if name in trained:
        st.success(figs.export_message(name, list(trained)))
    st.download_button(
        f"Download {folder}.zip",
        data=training.zip_bytes,
        file_name=f"{folder}.zip",
        mime="application/zip",
        key="train-download",
        icon=":material/download:",
    )
    st.code(figs.export_commands(folder), language="bash")


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

current = lesson_header(SLUG)
lesson_section(current, "objective")
lesson_section(current, "build")
choice = choose()
lesson_section(current, "run")
action_buttons(choice)
publish(current_training())
if job_progress(JOB_KEY, show_live) is None:
    show_live(None)
lesson_section(current, "export")
show_export(current_training())
lesson_section(current, "code")
quiz(current)
