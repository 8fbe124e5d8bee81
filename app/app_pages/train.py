"""Train a tiny model yourself: build a GPT or BERT, train it in the background, and watch its
loss, its samples and the attention of a probe sentence change while it learns."""

import streamlit as st
import widgets
from widgets import lesson_section, server_limits

from tinyformers.course import train as course
from tinyformers.course.train import Choice, CorpusProfile, NumberChoice, Status, Training
from tinyformers.figures import train as figs
from tinyformers.model.config import PRESETS
from tinyformers.training.jobs import Snapshot
from tinyformers.training.loop import Progress, TrainSettings

SLUG = "train"
JOB_KEY = "train-job"
TRAINING_KEY = "train-current"
OUTCOMES = {"finished": st.success, "stopped": st.info, "budget": st.info, "diverged": st.error}

corpus_text = st.cache_data(max_entries=3, show_spinner="Preparing the corpus…")(course.corpus_text)
corpus_profile = st.cache_data(max_entries=4, show_spinner="Training the tokenizer on the corpus…")(
    course.corpus_profile
)
parameter_count = st.cache_data(max_entries=16, show_spinner="Counting parameters…")(
    course.parameter_count
)


def labelled_radio(where, label: str, labels: dict[str, str], key: str) -> str:
    """A horizontal radio over the keys of ``labels``, each shown by its label."""
    return where.radio(label, list(labels), format_func=labels.get, horizontal=True, key=key)


def number(where, choice: NumberChoice, key: str, **options) -> int:
    """A whole-number input for ``choice``: its label, range, default, step and help."""
    options.setdefault("help", choice.help)
    low, high, default, step = choice.low, choice.high, choice.default, choice.step
    return int(where.number_input(choice.label, low, high, default, step, key=key, **options))


def chart(figure, key: str) -> None:
    st.plotly_chart(figure, key=key, theme=None)


# Choosing what to train
def chosen_corpus() -> tuple[str, str] | None:
    """The text to train on and its label; None (with a message) when there is none."""
    source = labelled_radio(st, "Corpus", course.CORPUS_LABELS, "train-corpus")
    label = course.CORPUS_LABELS[source]
    if source == "own":
        text = widgets.corpus_input("train-own")
        return (text, label) if text is not None else None
    try:
        return corpus_text(source), label
    except ValueError as err:
        st.error(str(err))
        return None


def chosen_tokenizer(text: str | None) -> CorpusProfile | None:
    """The tokenizer settings and, given a text, what a tokenizer trained on it gives."""
    kind_column, vocab_column = st.columns(2)
    kind = labelled_radio(kind_column, "Tokenizer", course.TOKENIZER_LABELS, "train-tokenizer")
    vocab = number(vocab_column, course.VOCAB_CHOICE, "train-vocab", disabled=kind == "char")
    if text is None:
        return None
    try:
        profile = corpus_profile(text, kind, None if kind == "char" else vocab)
    except ValueError as err:
        st.error(f"Cannot train a tokenizer on this text: {err}")
        return None
    st.caption(figs.corpus_caption(profile))
    return profile


def chosen_size() -> tuple[str, dict[str, int]]:
    """A size preset and, with "Custom size" on, the sizes that override it."""
    names = list(PRESETS)
    preset_column, custom_column = st.columns([3, 1], vertical_alignment="bottom")
    help_text = "The char preset is sized for character-level text."
    name = preset_column.selectbox(
        "Size preset", names, names.index("char"), figs.preset_label, "train-preset", help_text
    )
    if not custom_column.toggle("Custom size", key="train-custom"):
        return name, {}
    fields = list(course.SIZE_LIMITS)
    return name, {
        field: number(column, course.size_choice(name, field), f"train-{field}")
        for column, field in zip(st.columns(len(fields)), fields, strict=True)
    }


def chosen_settings() -> TrainSettings | None:
    """Learning rate, batch size, steps and seed, checked; None (with a message) if unusable."""
    lr_column, batch_column, steps_column, seed_column = st.columns(4)
    rates = course.LEARNING_RATES
    learning_rate = lr_column.select_slider(
        "Peak learning rate", rates, course.DEFAULT_LEARNING_RATE, "{:g}".format, key="train-lr"
    )
    batch_size = batch_column.select_slider(
        "Batch size", course.BATCH_SIZES, course.DEFAULT_BATCH_SIZE, key="train-batch"
    )
    steps_help = f"This server allows at most {server_limits().max_steps:,} steps per run."
    steps = number(steps_column, course.STEPS_CHOICE, "train-steps", help=steps_help)
    with seed_column:
        seed = widgets.seed_control(key="train-seed")
    try:
        return course.train_settings(steps, int(batch_size), float(learning_rate), seed)
    except ValueError as err:
        st.error(f"These settings cannot be used: {err}")
        return None


def choose() -> Choice | None:
    """All the settings, checked, with the parameter count; None (with a message) if unusable."""
    family = labelled_radio(st, "Model", course.FAMILY_LABELS, "train-family")
    corpus = chosen_corpus()
    profile = chosen_tokenizer(corpus[0] if corpus is not None else None)
    preset_name, overrides = chosen_size()
    lesson_section(current, "settings")
    settings = chosen_settings()
    if corpus is None or profile is None or settings is None:
        return None
    try:
        spec, config = course.run_spec(family, profile, preset_name, overrides, settings)
    except ValueError as err:
        st.error(f"This size cannot be built: {err}")
        return None
    choice = Choice(spec, *corpus, config, parameter_count(config.to_dict()), profile)
    count_column, caption_column = st.columns([1, 3], vertical_alignment="center")
    count_column.metric("Parameters", f"{choice.n_parameters:,}")
    caption_column.caption(figs.choice_caption(choice))
    if st.session_state.get(TRAINING_KEY) is None:
        chart(figs.learning_rate_figure(settings, 0), "train-planned-schedule")
    if (warning := figs.size_warning(choice.n_parameters, server_limits())) is not None:
        st.warning(warning)
    return choice


# Start, resume, restart, reset
def begin(training: Training, restart: bool = False) -> None:
    """Train in the background: on from where the run stopped, or from the start again."""
    if restart:
        training.restart()
    work = training.work(server_limits().max_seconds)
    training.job = widgets.start_job(JOB_KEY, work, name="train")


def reset() -> None:
    if (job := st.session_state.get(JOB_KEY)) is not None:
        job.stop()
    for key in (TRAINING_KEY, JOB_KEY, f"{JOB_KEY}-polling"):
        st.session_state.pop(key, None)


def wide_button(where, label: str, key: str, enabled: bool, **options) -> bool:
    """A button as wide as its column, disabled unless ``enabled``."""
    return where.button(label, key=key, disabled=not enabled, width="stretch", **options)


def action_buttons(choice: Choice | None) -> None:
    """Start (a new run of ``choice``), Resume, Restart and Reset, each enabled when it can act."""
    training = st.session_state.get(TRAINING_KEY)
    can = course.actions(training, ready=choice is not None)
    cols = st.columns([1, 1, 1.7, 1])
    start = wide_button(cols[0], "Start training", "train-start", can.start, type="primary")
    wide_button(cols[1], "Resume", "train-resume", can.resume, on_click=begin, args=(training,))
    label = "Restart from the same initialization"
    wide_button(cols[2], label, "train-restart", can.restart, on_click=begin, args=(training, True))
    wide_button(cols[3], "Reset", "train-reset", can.reset, on_click=reset)
    if not start or choice is None:
        return
    if (reason := course.refusal(choice, server_limits())) is not None:
        st.error(reason)
        return
    training = st.session_state[TRAINING_KEY] = Training(choice)
    begin(training)
    st.rerun()


# Live view (redrawn every half second while a job runs; never touches the model)
def show_status(training: Training, status: Status, active: bool) -> None:
    """Progress and numbers of the run; once it has stopped, why."""
    max_seconds = server_limits().max_seconds
    if active:
        st.progress(status.fraction, text=figs.progress_text(status))
    metrics = figs.status_metrics(status)
    for column, label in zip(st.columns(len(metrics)), metrics, strict=True):
        column.metric(label, metrics[label])
    if (caption := figs.budget_caption(status, max_seconds)) is not None:
        st.caption(caption)
    if not active and (kind := training.stop_kind()) is not None:
        reason = training.run.state.stop_reason
        OUTCOMES[kind](figs.outcome_message(kind, status, max_seconds, reason))


def show_curves(training: Training, history: list[Progress], status: Status) -> None:
    settings = training.choice.spec.settings
    chart(figs.run_loss_figure(training, history), "train-loss")
    st.caption(figs.loss_caption(training.choice.config.vocab_size, bool(training.earlier)))
    schedule_column, speed_column = st.columns(2)
    with schedule_column:
        chart(figs.learning_rate_figure(settings, status.planned_step), "train-schedule")
    with speed_column:
        chart(figs.throughput_figure(history), "train-speed")


def show_timeline(training: Training) -> None:
    snapshots, settings = training.timeline_snapshots(), training.choice.spec.settings
    if not snapshots:
        st.caption("The first snapshot is taken as soon as the run starts.")
        return
    timeline, top = course.attention_timeline(snapshots), course.last_snapshot_step(settings)
    sizes = {"snapshot": top + 1, "layer": timeline.n_layer, "head": timeline.n_head}
    for name, size in sizes.items():  # forget picks this run's sizes no longer allow
        if st.session_state.get(key := f"train-{name}", 0) not in range(size):
            del st.session_state[key]
    slider_column, layer_column, head_column = st.columns([4, 1, 1])
    label = "Snapshot at step (right end: the latest)"
    step = slider_column.slider(label, 0, top, top, settings.eval_interval, key="train-snapshot")
    layer = layer_column.selectbox("Layer", list(range(timeline.n_layer)), key="train-layer")
    head = head_column.selectbox("Head", list(range(timeline.n_head)), key="train-head")
    view = training.snapshot_view(snapshots, timeline, step, layer, head)
    matrix_column, score_column = st.columns(2)
    with matrix_column:
        chart(figs.snapshot_view_figure(view), "train-snapshot-figure")
        st.caption(figs.snapshot_caption(view))
    with score_column:
        score = labelled_radio(st, "Score over time", figs.SCORE_LABELS, "train-score")
        chart(figs.view_score_figure(timeline, view, score, settings.max_steps), "train-scores")
        st.caption(figs.strongest_head_caption(timeline, score))
        best_layer, best_head, _ = timeline.strongest_head(score)
        picks = {"train-layer": best_layer, "train-head": best_head}  # set before the rerun
        st.button(
            "Show that head", key="train-best-head", on_click=st.session_state.update, args=(picks,)
        )


def show_live(snapshot: Snapshot | None) -> None:
    """Status, curves, sample and attention timeline of the run, amid the lesson's text."""
    training = st.session_state.get(TRAINING_KEY)
    if training is not None:
        training.sync()  # the run trains in a worker: take in what it reported
    run = training.run if training is not None else None
    active = snapshot is not None and snapshot.active
    if training is not None:
        st.caption(figs.run_caption(training))
    if active and run is None and snapshot.status == "running":
        st.info("Preparing the run: training the tokenizer and cutting the text into batches…")
    history = training.history() if training is not None else []
    status = training.status(history, active) if run is not None else None
    if run is not None:
        show_status(training, status, active)
    lesson_section(current, "curves")
    if run is not None and history:
        show_curves(training, history, status)
    else:
        st.caption("Start a run to draw its curves here.")
    lesson_section(current, "samples")
    sample = course.latest_sample(run) if run is not None else None
    if sample is not None:
        st.html(figs.run_sample_html(run.spec.family, sample))
    elif run is not None:
        st.caption("The first sample appears at the first evaluation.")
    lesson_section(current, "timeline")
    if run is not None:
        show_timeline(training)


# Into the model pickers, and downloaded
def show_export(training: Training | None) -> None:
    """Once a run stops or finishes, put its model into this session's pickers and offer it."""
    if training is not None and training.publishable():
        trained = st.session_state.setdefault(widgets.TRAINED_KEY, {})
        widgets.keep_trained_model(trained[training.publish(trained)])  # kept for later visits
    if training is None or training.published_name is None:
        st.caption("Your model appears here once a run stops or finishes.")
        return
    name, folder = training.published_name, training.folder
    trained = st.session_state.get(widgets.TRAINED_KEY, {})
    if name in trained:
        st.success(figs.export_message(name, list(trained)))
    archive, mime, icon = f"{folder}.zip", "application/zip", ":material/download:"
    st.download_button(
        f"Download {archive}", training.zip_bytes, archive, mime, key="train-download", icon=icon
    )
    st.code(figs.export_commands(folder), language="bash")


# The page
current = widgets.lesson_header(SLUG)
lesson_section(current, "objective")
lesson_section(current, "build")
choice = choose()
lesson_section(current, "run")
action_buttons(choice)
if widgets.job_progress(JOB_KEY, show_live) is None:
    show_live(None)
lesson_section(current, "export")
show_export(st.session_state.get(TRAINING_KEY))
lesson_section(current, "code")
widgets.quiz(current)
