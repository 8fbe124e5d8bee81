"""Train a tiny model yourself: build a GPT or BERT, train it in the background, and watch its
loss, its samples and the attention of a probe sentence change while it learns."""

from collections.abc import Callable

import questions
import streamlit as st
import widgets
from widgets import BIND, plain

from tinyformers.course import train as course
from tinyformers.course.train import Choice, CorpusProfile, Training
from tinyformers.figures import train as figs
from tinyformers.i18n import _
from tinyformers.model.config import PRESETS
from tinyformers.training.jobs import QUEUED

SLUG = "train"
JOB_KEY = "train-job"
TRAINING_KEY = "train-current"
POLLING_KEY = f"{JOB_KEY}-polling"  # whether the live views redraw every half second
PHASE_KEY = "train-phase"  # the phase the buttons show (Training.phase)

cache = st.cache_data
corpus_text = cache(max_entries=3, show_spinner=_("Preparing the corpus…"))(course.corpus_text)
tokenizing = _("Training the tokenizer on the corpus…")
corpus_profile = cache(max_entries=4, show_spinner=tokenizing)(course.corpus_profile)
parameter_count = cache(max_entries=16, show_spinner=_("Counting parameters…"))(
    course.parameter_count
)


def chosen_corpus(row) -> tuple[str, str] | None:
    """The text to train on and its label; None (with a message) when there is none."""
    source = widgets.labelled_radio(_("Corpus"), course.CORPUS_LABELS, "train-corpus", row)
    label = course.CORPUS_LABELS[source]
    if source == "own":
        text = widgets.corpus_input("train-own")
        return (text, label) if text is not None else None
    return corpus_text(source), label


def chosen_tokenizer(text: str | None) -> CorpusProfile | None:
    """The tokenizer settings and, given a text, what a tokenizer trained on it gives."""
    kind_column, vocab_column = st.columns(2)
    kind = widgets.labelled_radio(
        _("Tokenizer"), course.TOKENIZER_LABELS, "train-tokenizer", kind_column
    )
    vocab = widgets.whole_number(
        vocab_column,
        figs.number_choice(course.VOCAB_CHOICE),
        "train-vocab",
        disabled=kind == "char",
    )
    if text is None:
        return None
    try:
        profile = corpus_profile(text, kind, None if kind == "char" else vocab)
    except ValueError as err:
        st.error(_("Cannot train a tokenizer on this text: {problem}").format(problem=plain(err)))
        return None
    st.caption(figs.corpus_caption(profile))
    return profile


def custom_size(name: str) -> dict[str, int]:
    """With "Custom size" on, the sizes that override the preset's."""
    if not st.toggle(_("Custom size"), key="train-custom", bind=BIND):
        return {}
    fields = list(course.SIZE_LIMITS)
    return {
        field: widgets.whole_number(
            column, figs.number_choice(course.size_choice(name, field)), f"train-{field}"
        )
        for column, field in zip(st.columns(len(fields)), fields, strict=True)
    }


def chosen_settings() -> course.TrainSettings | None:
    """Learning rate, batch size, steps and seed, checked; None (with a message) if unusable."""
    lr_column, batch_column, steps_column, seed_column = st.columns(4)
    rates, default_rate = course.LEARNING_RATES, course.DEFAULT_LEARNING_RATE
    learning_rate = lr_column.select_slider(
        _("Peak learning rate"), rates, default_rate, "{:g}".format, key="train-lr", bind=BIND
    )
    batch_size = batch_column.select_slider(
        _("Batch size"), course.BATCH_SIZES, course.DEFAULT_BATCH_SIZE, key="train-batch", bind=BIND
    )
    steps_help = _("This server allows at most {limit} steps per run.").format(
        limit=f"{widgets.server_limits().max_steps:,}"
    )
    steps_choice = figs.number_choice(course.STEPS_CHOICE)
    steps = widgets.whole_number(steps_column, steps_choice, "train-steps", help=steps_help)
    with seed_column:
        seed = widgets.seed_control(key="train-seed", default=course.DEFAULT_SEED)
    try:
        return course.train_settings(steps, int(batch_size), float(learning_rate), seed)
    except ValueError as err:
        st.error(_("These settings cannot be used: {problem}").format(problem=err))
        return None


def choose(controls) -> tuple[Choice | None, course.TrainSettings | None]:
    """Model, text and size at the top, the rest below: the choice (None if unusable), its settings."""
    with controls:
        row = st.container(horizontal=True)  # side by side as long as they fit
        family = widgets.labelled_radio(_("Model"), course.FAMILY_LABELS, "train-family", row)
        corpus = chosen_corpus(row)
        names, first = list(PRESETS), list(PRESETS).index(course.DEFAULT_PRESET)
        help_text = _(
            "micro trains fast; char is sized for character-level text such as Shakespeare."
        )
        name = widgets.url_choice(
            row.selectbox,
            _("Size preset"),
            names,
            "train-preset",
            format_func=figs.preset_label,
            index=first,
            help=help_text,
        )
    widgets.lesson_section(current, "objective")
    widgets.lesson_section(current, "build", course.build_values())
    profile = chosen_tokenizer(corpus[0] if corpus is not None else None)
    sizes = custom_size(name)
    widgets.lesson_section(current, "settings")
    settings = chosen_settings()
    if corpus is None or profile is None or settings is None:
        return None, settings
    try:
        choice = course.make_choice(
            family, *corpus, profile, name, sizes, settings, parameter_count
        )
    except ValueError as err:
        st.error(_("This size cannot be built: {problem}").format(problem=err))
        return None, settings
    count_column, caption_column = st.columns([1, 3], vertical_alignment="center")
    count_column.metric(_("Parameters"), f"{choice.n_parameters:,}")
    caption_column.caption(figs.choice_caption(choice))
    return choice, settings


# Start, stop, resume, restart, reset: a click shows its state at once, the job confirms it
def begin(kind: str) -> None:
    """Train in the background: start, go on from where the run stopped, or start again."""
    training = st.session_state[TRAINING_KEY]
    work = training.begin(kind, widgets.server_limits().max_seconds)
    training.job = widgets.start_job(JOB_KEY, work, name="train")


def reset() -> None:
    if (job := st.session_state.get(JOB_KEY)) is not None:
        job.stop()
    for key in (TRAINING_KEY, JOB_KEY, POLLING_KEY):
        st.session_state.pop(key, None)


def action_buttons(choice: Choice | None) -> None:
    """The session's buttons, each enabled when it can act and labelled with its state."""
    training, job = st.session_state.get(TRAINING_KEY), st.session_state.get(JOB_KEY)
    can = course.actions(training, ready=choice is not None)
    phase = st.session_state[PHASE_KEY] = course.phase_of(training)
    labels = figs.button_labels(phase)
    row = st.container(horizontal=True)  # side by side where they fit
    start = row.button(labels["start"], key="train-start", disabled=not can.start, type="primary")
    clicks = {"stop": (job and job.stop, ()), "resume": (begin, ("resume",))}
    clicks |= {"restart": (begin, ("restart",)), "reset": (reset, ())}
    for kind, (click, args) in clicks.items():
        off = not getattr(can, kind)
        row.button(labels[kind], key=f"train-{kind}", disabled=off, on_click=click, args=args)
    limits = widgets.server_limits()
    if choice is not None and (warning := figs.size_warning(choice.n_parameters, limits)):
        st.warning(warning)
    if not start or choice is None:
        return
    if (reason := course.refusal(choice, limits)) is not None:
        st.error(reason)
        return
    st.session_state[TRAINING_KEY] = Training(choice)
    begin("start")
    st.rerun()


# Live views: redrawn every half second while a job trains (they never touch the model)
def live(draw: Callable[[], None], every: float = widgets.POLL_SECONDS) -> None:
    """``draw()``, redrawn ``every`` seconds while a job trains; the page, when the phase changes."""

    @st.fragment(run_every=every if st.session_state.get(POLLING_KEY) else None)
    def view() -> None:
        draw()
        phase = course.phase_of(st.session_state.get(TRAINING_KEY))
        if phase != st.session_state.get(PHASE_KEY):  # a start answered, a stop done: redraw all
            st.session_state[POLLING_KEY] = phase != "idle"
            st.rerun(scope="app")

    view()


def top_view(settings: course.TrainSettings | None) -> None:
    """Beside the controls: the planned schedule, then the run's progress and loss curves."""
    training: Training | None = st.session_state.get(TRAINING_KEY)
    if training is None:
        if settings is not None:
            widgets.chart(figs.learning_rate_figure(settings, 0), "train-planned-schedule")
        return
    history, snap = training.history(), training.job.snapshot()
    status = training.status(history, training.active)
    if training.active and training.run is not None:
        st.progress(status.fraction, text=figs.progress_text(status))
    ahead, limit = (
        snap.ahead if snap.status == QUEUED else None,
        widgets.server_limits().max_seconds,
    )
    for kind, text in figs.run_notes(training, status, limit, ahead, snap.error):
        getattr(st, kind)(text)
    widgets.chart(figs.run_loss_figure(training, history), "train-loss")
    st.caption(figs.loss_caption(training.choice.config.vocab_size, bool(training.earlier)))


def lower_view() -> None:
    """The run's numbers, its schedule and speed, its samples and its attention timeline."""
    training: Training | None = st.session_state.get(TRAINING_KEY)
    history = training.history() if training is not None else []  # first: it syncs the run
    run = training.run if training is not None else None
    if run is not None:
        status = training.status(history, training.active)
        st.caption(figs.run_caption(training))
        widgets.metric_row(figs.status_metrics(status))
    widgets.lesson_section(current, "curves")
    if run is not None and history:
        schedule_column, speed_column = st.columns(2)
        with schedule_column:
            widgets.chart(figs.run_schedule_figure(training, status), "train-schedule")
        with speed_column:
            widgets.chart(figs.throughput_figure(history), "train-speed")
    else:
        st.caption(_("Start a run to draw its loss curves at the top of the page."))
    widgets.lesson_section(current, "samples")
    if run is not None:  # what the untrained model wrote beside what the model writes now
        first, latest, next_at = course.samples(training)
        st.html(figs.samples_html(run.spec.family, first, latest, next_at))
    widgets.lesson_section(current, "timeline")
    if run is not None:
        show_timeline(training)


def show_timeline(training: Training) -> None:
    snapshots, settings = training.timeline_snapshots(), training.choice.spec.settings
    if not snapshots:
        st.caption(_("The first snapshot is taken as soon as the run starts."))
        return
    timeline, top = course.attention_timeline(snapshots), course.last_snapshot_step(settings)
    if st.session_state.get("train-snapshot", 0) not in range(top + 1):  # a shorter run now
        del st.session_state["train-snapshot"]
    slider_column, layer_column, head_column = st.columns([4, 1, 1])
    label = _("Snapshot at step (right end: the latest)")
    step = slider_column.slider(
        label, 0, top, top, settings.eval_interval, key="train-snapshot", bind=BIND
    )
    layer = widgets.choose_index(
        _("Layer"), timeline.n_layer, "train-layer", container=layer_column
    )
    head = widgets.choose_index(_("Head"), timeline.n_head, "train-head", container=head_column)
    view = training.snapshot_view(snapshots, timeline, step, layer, head)
    matrix_column, score_column = st.columns(2)
    with matrix_column:
        widgets.chart(figs.snapshot_view_figure(view), "train-snapshot-figure")
        st.caption(figs.snapshot_caption(view))
    with score_column:
        score = widgets.labelled_radio(_("Score over time"), figs.SCORE_LABELS, "train-score")
        widgets.chart(
            figs.view_score_figure(timeline, view, score, settings.max_steps), "train-scores"
        )
        st.caption(figs.strongest_head_caption(timeline, score))
        best_layer, best_head = timeline.strongest_head(score)[:2]
        picks = {"train-layer": best_layer, "train-head": best_head}  # set before the rerun
        st.button(
            _("Show that head"), "train-best-head", on_click=st.session_state.update, args=(picks,)
        )


def show_export(training: Training | None) -> None:
    """Once a run stops or finishes, put its model into this session's pickers and offer it."""
    if training is not None and training.publishable():
        trained = st.session_state.setdefault(widgets.TRAINED_KEY, {})
        widgets.keep_trained_model(trained[training.publish(trained)])  # kept for later visits
    if training is None or training.published_name is None:
        st.caption(_("Your model appears here once a run stops or finishes."))
        return
    name, folder = training.published_name, training.folder
    trained = st.session_state.get(widgets.TRAINED_KEY, {})
    if name in trained:
        st.success(figs.export_message(name, list(trained)))
    archive, mime, icon = f"{folder}.zip", "application/zip", ":material/download:"
    st.download_button(
        _("Download {archive}").format(archive=archive),
        training.zip_bytes,
        archive,
        mime,
        key="train-download",
        icon=icon,
    )
    widgets.code(figs.export_commands(folder), "bash")


# The page: what to train and its buttons beside the planned schedule, then the live loss curves
current = widgets.lesson_header(SLUG)
controls, figure_column = st.columns([2, 3])
choice, settings = choose(controls)
with controls:
    action_buttons(choice)
with figure_column:
    live(lambda: top_view(settings))
widgets.lesson_section(current, "run")
live(lower_view, every=1.0)  # less often: its figures take time the training needs
widgets.lesson_section(current, "export")
show_export(st.session_state.get(TRAINING_KEY))
widgets.lesson_section(current, "code")
questions.ask(current, choice=choice)
st.cache_resource(course.warm_up)()  # once per process, after the page is drawn
