"""Train a tiny model yourself: build a GPT or BERT, train it in the background, and watch its
loss, its samples and the attention of a probe sentence change while it learns."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import streamlit as st
import torch
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

from tinyformers.course.train import (
    SCORES,
    attention_timeline,
    format_duration,
    snapshot_at,
    snapshot_interval,
    time_left,
    uniform_scores,
)
from tinyformers.figures import train as figs
from tinyformers.model.build import build_model, count_parameters
from tinyformers.model.config import PRESETS, TransformerConfig, config_from_dict
from tinyformers.text.corpora import lesson_corpus
from tinyformers.text.tokenizers import (
    BYTE_ALPHABET_SIZE,
    DEFAULT_VOCAB_SIZE,
    SPECIAL_TOKENS,
    train_tokenizer,
    wordpiece_min_vocab_size,
)
from tinyformers.training import zoo
from tinyformers.training.jobs import ACTIVE, Job, Snapshot
from tinyformers.training.loop import Progress, TrainSettings
from tinyformers.training.runs import CHAR_SETTINGS, Run, RunSpec, split_sentences

SLUG = "train"
JOB_KEY = "train-job"
TRAINING_KEY = "train-current"
TRAINED_KEY = "trained_models"  # read by widgets.model_picker on every page
MAX_TRAINED = 3  # models of this session kept for the pickers
VAL_FRACTION = 0.1  # the share of the text runs hold out for validation (see train.py)

FAMILIES = {"gpt": "GPT (causal LM)", "bert": "BERT (masked LM)"}
CORPORA = {
    "char": "gpt-char's stories",
    "stories": "More stories (gpt-stories' text)",
    "lessons": "The lessons' text",
    "own": "Your own text",
}
TOKENIZERS = {"char": "Characters", "bpe": "Byte-level BPE", "wordpiece": "WordPiece"}
VOCAB_MIN = len(SPECIAL_TOKENS) + BYTE_ALPHABET_SIZE  # the smallest byte-level BPE
VOCAB_MAX = 8_000
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)
STEPS_MIN, STEPS_MAX = 10, 100_000
SIZE_LIMITS = {  # custom size inputs: (label, min, max, step)
    "n_layer": ("Layers", 1, 12, 1),
    "n_head": ("Heads per layer", 1, 16, 1),
    "n_embd": ("Width (n_embd)", 8, 768, 8),
    "block_size": ("Context (tokens)", 8, 512, 8),
}
SCORE_NAMES = {"previous": "the previous token", "first": "the first token", "self": "itself"}


# ---------------------------------------------------------------------------------------------
# Cached computations
# ---------------------------------------------------------------------------------------------


@st.cache_data(max_entries=3, show_spinner="Preparing the corpus…")
def builtin_text(name: str) -> str:
    if name == "char":
        return zoo.char_text()
    if name == "stories":
        return zoo.stories_text()
    return lesson_corpus()


@st.cache_data(max_entries=4, show_spinner="Training the tokenizer on the corpus…")
def corpus_profile(text: str, kind: str, vocab_size: int | None) -> dict[str, int | None]:
    """What a run on ``text`` will see: the vocabulary it asks for (WordPiece raised to the
    smallest size the text allows) and gets, the number of tokens and of sentences."""
    if kind == "wordpiece":
        vocab_size = max(vocab_size, wordpiece_min_vocab_size(text))
    tokenizer = train_tokenizer(kind, text, vocab_size)
    return {
        "requested": vocab_size,
        "vocab_size": tokenizer.vocab_size,
        "tokens": len(tokenizer.encode(text)),
        "sentences": len(split_sentences(text)),
    }


@st.cache_data(max_entries=16, show_spinner="Counting parameters…")
def parameter_count(config: dict) -> int:
    """Parameters of a model built from ``config`` (a ``TransformerConfig.to_dict()``)."""
    return count_parameters(build_model(config_from_dict(config)))


# ---------------------------------------------------------------------------------------------
# This session's run
# ---------------------------------------------------------------------------------------------


@dataclass
class Choice:
    """What the settings describe, checked, ready to start."""

    spec: RunSpec
    text: str
    corpus: str
    config: TransformerConfig
    n_parameters: int
    profile: dict


@dataclass
class Training:
    """This session's run: what was asked for and, once the worker has built it, the Run.

    The worker thread fills in ``run`` and ``initial_attention``; the page reads them only to
    draw, and touches the model only when no job is running."""

    choice: Choice
    run: Run | None = None
    initial_attention: list[torch.Tensor] | None = None
    budget_end_s: float = math.inf  # training time at which the current start's budget ends
    earlier: list[Progress] = field(default_factory=list)  # the attempt before a restart
    attempt: int = 1
    published: tuple[int, int] | None = None  # (attempt, step) last put into the pickers
    published_name: str | None = None
    zip_bytes: bytes | None = None


def training_work(training: Training, budget_s: float) -> Callable:
    """The background work of one start: build the run if needed, snapshot the untrained
    attention, and train for at most ``budget_s`` seconds. Never calls st.*."""

    def work(report: Callable) -> object:
        if training.run is None:
            training.run = Run(training.choice.spec, training.choice.text)
        run = training.run
        if run.step == 0:
            training.initial_attention = run.probe_attention()
        already = run.state.elapsed_s if run.state is not None else 0.0
        training.budget_end_s = already + budget_s
        return run.train(report, max_seconds=training.budget_end_s)

    return work


def current_training() -> Training | None:
    return st.session_state.get(TRAINING_KEY)


def current_job() -> Job | None:
    return st.session_state.get(JOB_KEY)


def job_active() -> bool:
    job = current_job()
    return job is not None and job.status in ACTIVE


def history_of(run: Run) -> list[Progress]:
    return [update.progress for update in list(run.updates)]


def stop_kind(training: Training) -> str | None:
    """Why the last start ended: "finished", "stopped", "budget" (the server's time limit) or
    "diverged" (None if it has not trained yet)."""
    run = training.run
    if run is None or run.state is None:
        return None
    reason = run.state.stop_reason
    if reason is None:
        return "finished"
    if reason == "stopped":
        job = current_job()
        return "budget" if job is not None and job.timed_out else "stopped"
    if run.state.elapsed_s >= training.budget_end_s:
        return "budget"
    return "diverged"


# ---------------------------------------------------------------------------------------------
# Choosing what to train
# ---------------------------------------------------------------------------------------------


def chosen_corpus() -> tuple[str, str] | None:
    source = st.radio(
        "Corpus", list(CORPORA), format_func=CORPORA.get, horizontal=True, key="train-corpus"
    )
    if source == "own":
        text = corpus_input("train-own")
        return (text, CORPORA[source]) if text is not None else None
    try:
        return builtin_text(source), CORPORA[source]
    except ValueError as err:
        st.error(str(err))
        return None


def chosen_tokenizer(text: str | None) -> tuple[str, dict] | None:
    """The tokenizer settings and, given a text, what a tokenizer trained on it gives."""
    kind_column, vocab_column = st.columns(2)
    kind = kind_column.radio(
        "Tokenizer",
        list(TOKENIZERS),
        format_func=TOKENIZERS.get,
        horizontal=True,
        key="train-tokenizer",
    )
    vocab = vocab_column.number_input(
        "Vocabulary size (BPE, WordPiece)",
        min_value=VOCAB_MIN,
        max_value=VOCAB_MAX,
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
    caption = (
        f"{len(text):,} characters → {profile['tokens']:,} tokens, "
        f"{profile['sentences']:,} sentences; the vocabulary has {profile['vocab_size']:,} tokens."
    )
    if kind == "wordpiece" and profile["requested"] > int(vocab):
        caption += (
            f" WordPiece needs at least {profile['requested']:,} tokens for this text's "
            "characters, so the size was raised to that."
        )
    st.caption(caption)
    return kind, profile


def size_text(n_layer: int, n_head: int, n_embd: int, block_size: int) -> str:
    layers = "1 layer" if n_layer == 1 else f"{n_layer} layers"
    heads = "1 head" if n_head == 1 else f"{n_head} heads"
    return f"{layers} × {heads}, width {n_embd}, context {block_size}"


def config_size(config: TransformerConfig) -> str:
    return size_text(config.n_layer, config.n_head, config.n_embd, config.block_size)


def preset_label(name: str) -> str:
    return f"{name}: {size_text(**PRESETS[name])}"


def chosen_size() -> tuple[str, dict[str, int]]:
    names = list(PRESETS)
    preset_column, custom_column = st.columns([3, 1], vertical_alignment="bottom")
    name = preset_column.selectbox(
        "Size preset",
        names,
        index=names.index("char"),
        format_func=preset_label,
        key="train-preset",
        help="The char preset is sized for character-level text.",
    )
    custom = custom_column.toggle("Custom size", key="train-custom")
    if not custom:
        return name, {}
    overrides = {}
    for column, (field_name, (label, low, high, step)) in zip(
        st.columns(len(SIZE_LIMITS)), SIZE_LIMITS.items(), strict=True
    ):
        default = min(max(PRESETS[name][field_name], low), high)
        overrides[field_name] = int(
            column.number_input(label, low, high, default, step, key=f"train-{field_name}")
        )
    return name, overrides


def warmup_for(steps: int) -> int:
    return min(CHAR_SETTINGS.warmup_steps, steps // 10)


def nearest(options: tuple[float, ...], value: float) -> float:
    return min(options, key=lambda option: abs(math.log(option / value)))


def chosen_settings() -> TrainSettings | None:
    lr_column, batch_column, steps_column, seed_column = st.columns(4)
    learning_rate = lr_column.select_slider(
        "Peak learning rate",
        LEARNING_RATES,
        value=nearest(LEARNING_RATES, CHAR_SETTINGS.learning_rate),
        format_func=lambda rate: f"{rate:g}",
        key="train-lr",
    )
    batch_size = batch_column.select_slider(
        "Batch size",
        BATCH_SIZES,
        value=nearest(BATCH_SIZES, CHAR_SETTINGS.batch_size),
        key="train-batch",
    )
    steps = int(
        steps_column.number_input(
            "Steps",
            STEPS_MIN,
            STEPS_MAX,
            CHAR_SETTINGS.max_steps,
            step=100,
            key="train-steps",
            help=f"This server allows at most {server_limits().max_steps:,} steps per run.",
        )
    )
    with seed_column:
        seed = seed_control(key="train-seed")
    try:
        return TrainSettings(
            max_steps=steps,
            batch_size=int(batch_size),
            learning_rate=float(learning_rate),
            warmup_steps=warmup_for(steps),
            eval_interval=snapshot_interval(steps),
            seed=seed,
        )
    except ValueError as err:
        st.error(f"These settings cannot be used: {err}")
        return None


def settings_caption(settings: TrainSettings, config: TransformerConfig, family: str) -> str:
    per_example = f"{config.block_size} tokens" if family == "gpt" else "one sentence"
    return (
        f"Each step averages over {settings.batch_size} examples of {per_example}. "
        f"Warm-up for {settings.warmup_steps} steps, then cosine decay to "
        f"{settings.min_lr_ratio:.0%} of the peak by step {settings.max_steps:,}; AdamW with "
        f"weight decay {settings.weight_decay:g}, gradients clipped to length "
        f"{settings.grad_clip:g}. An evaluation, a sample and an attention snapshot every "
        f"{settings.eval_interval} steps."
    )


def length_problem(profile: dict, family: str, block_size: int) -> str | None:
    """Why the text is too short for a run (the same split as the run makes), or None."""
    if family == "gpt":
        tokens = profile["tokens"]
        train_tokens = int(tokens * (1 - VAL_FRACTION))
        if train_tokens <= block_size or tokens - train_tokens < 2:
            return (
                f"the text has {tokens:,} tokens; a context of {block_size} needs more than "
                f"{math.ceil((block_size + 2) / (1 - VAL_FRACTION)):,}. Use a longer text or "
                "a shorter context."
            )
        return None
    sentences = profile["sentences"]
    if int(sentences * (1 - VAL_FRACTION)) < 1 or sentences < 2:
        return f"a BERT trains on sentences, and the text has only {sentences}. Use a longer text."
    return None


def choose() -> Choice | None:
    """All the settings, checked; shows the parameter count. None (with a message) if the
    settings cannot make a model."""
    family = st.radio(
        "Model", list(FAMILIES), format_func=FAMILIES.get, horizontal=True, key="train-family"
    )
    corpus = chosen_corpus()
    tokenizer = chosen_tokenizer(corpus[0] if corpus is not None else None)
    preset_name, overrides = chosen_size()
    lesson_section(current, "settings")
    settings = chosen_settings()
    if corpus is None or tokenizer is None or settings is None:
        return None
    text, corpus_name = corpus
    kind, profile = tokenizer
    try:
        spec = RunSpec(
            family=family,
            tokenizer=kind,
            vocab_size=profile["requested"],
            preset=preset_name,
            settings=settings,
            **overrides,
        )
        config = spec.config(profile["vocab_size"])
    except ValueError as err:
        st.error(f"This size cannot be built: {err}")
        return None
    n_parameters = parameter_count(config.to_dict())
    count_column, caption_column = st.columns([1, 3], vertical_alignment="center")
    count_column.metric("Parameters", f"{n_parameters:,}")
    caption_column.caption(
        f"{config_size(config)}, vocabulary {config.vocab_size:,}. "
        + settings_caption(settings, config, family)
    )
    if current_training() is None:
        st.plotly_chart(
            figs.learning_rate_figure(settings, 0), key="train-planned-schedule", theme=None
        )
    limit = server_limits().max_parameters
    if n_parameters > limit:
        st.warning(
            f"This server trains models of at most {limit:,} parameters: choose a smaller size."
        )
    return Choice(spec, text, corpus_name, config, n_parameters, profile)


# ---------------------------------------------------------------------------------------------
# Start, resume, restart, reset
# ---------------------------------------------------------------------------------------------


def refusal(choice: Choice) -> str | None:
    """Why this server will not start ``choice`` (steps, size, text length), or None."""
    limits = server_limits()
    steps = choice.spec.settings.max_steps
    if steps > limits.max_steps:
        return (
            f"This server allows at most {limits.max_steps:,} steps per run; you asked for "
            f"{steps:,}. Lower the number of steps."
        )
    try:
        limits.check_parameters(choice.n_parameters)
    except ValueError as err:
        return f"Too large: {err}"
    problem = length_problem(choice.profile, choice.spec.family, choice.config.block_size)
    return f"The text is too short to train on: {problem}" if problem else None


def begin(training: Training) -> None:
    start_job(JOB_KEY, training_work(training, server_limits().max_seconds), name="train")


def start_new(choice: Choice) -> None:
    reason = refusal(choice)
    if reason is not None:
        st.error(reason)
        return
    training = Training(choice)
    st.session_state[TRAINING_KEY] = training
    begin(training)
    st.rerun()


def resume() -> None:
    begin(current_training())


def restart() -> None:
    training = current_training()
    training.earlier = history_of(training.run)
    training.run.restart()
    training.initial_attention = None
    training.attempt += 1
    begin(training)


def reset() -> None:
    job = current_job()
    if job is not None:
        job.stop()
    for key in (TRAINING_KEY, JOB_KEY, f"{JOB_KEY}-polling"):
        st.session_state.pop(key, None)


def action_buttons(choice: Choice | None) -> None:
    training = current_training()
    run = training.run if training is not None else None
    active = job_active()
    can_resume = (
        run is not None
        and not active
        and run.step < run.spec.settings.max_steps
        and stop_kind(training) != "diverged"
    )
    start_column, resume_column, restart_column, reset_column = st.columns([1, 1, 1.7, 1])
    start = start_column.button(
        "Start training",
        type="primary",
        key="train-start",
        disabled=active or choice is None,
        width="stretch",
    )
    resume_column.button(
        "Resume", key="train-resume", on_click=resume, disabled=not can_resume, width="stretch"
    )
    restart_column.button(
        "Restart from the same initialization",
        key="train-restart",
        on_click=restart,
        disabled=run is None or active,
        width="stretch",
    )
    reset_column.button(
        "Reset", key="train-reset", on_click=reset, disabled=training is None, width="stretch"
    )
    if start and choice is not None:
        start_new(choice)


# ---------------------------------------------------------------------------------------------
# Live view (redrawn every half second while a job runs; never touches the model)
# ---------------------------------------------------------------------------------------------


def run_caption(training: Training) -> str:
    choice, spec = training.choice, training.choice.spec
    settings = spec.settings
    return (
        f"This run: {FAMILIES[spec.family]}, {TOKENIZERS[spec.tokenizer].lower()} "
        f"({choice.config.vocab_size:,} tokens), {config_size(choice.config)}: "
        f"{choice.n_parameters:,} parameters. Learning rate "
        f"{settings.learning_rate:g}, batch {settings.batch_size}, {settings.max_steps:,} steps, "
        f"seed {settings.seed}. Corpus: {choice.corpus} ({len(choice.text):,} characters)."
    )


def show_status(training: Training, history: list[Progress], active: bool) -> None:
    total = training.choice.spec.settings.max_steps
    step = history[-1].step if history else 0
    if active:
        st.progress(min(step / total, 1.0), text=f"Step {step:,} of {total:,}")
    last_val = next((p.val_loss for p in reversed(history) if p.val_loss is not None), None)
    budget_left = training.budget_end_s - history[-1].elapsed_s if history else None
    left = time_left(history, total, budget_left) if active else None
    unlimited = time_left(history, total) if active else None
    columns = st.columns(6)
    columns[0].metric("Step", f"{step:,}")
    columns[1].metric("Elapsed", format_duration(history[-1].elapsed_s if history else 0.0))
    columns[2].metric("Time left (estimate)", format_duration(left))
    columns[3].metric("Tokens per second", f"{history[-1].tokens_per_s:,.0f}" if history else "–")
    columns[4].metric("Training loss", f"{history[-1].train_loss:.3f}" if history else "–")
    columns[5].metric("Validation loss", f"{last_val:.3f}" if last_val is not None else "–")
    if left is not None and unlimited is not None and unlimited > left + 1:
        st.caption(
            f"At this speed all {total:,} steps need about {format_duration(unlimited)} more, but "
            f"this server stops a run after {server_limits().max_seconds:g} s of training; "
            "Resume then continues."
        )


def show_outcome(training: Training, history: list[Progress]) -> None:
    kind = stop_kind(training)
    step = history[-1].step if history else 0
    total = training.choice.spec.settings.max_steps
    if kind == "finished":
        st.success(f"Finished all {total:,} steps.")
    elif kind == "stopped":
        st.info(f"Stopped at step {step:,}. The model keeps what it learned: Resume continues.")
    elif kind == "budget":
        st.info(
            f"Stopped at step {step:,} by this server's limit of "
            f"{server_limits().max_seconds:g} s per start. The model keeps what it learned: "
            "Resume continues for as long again."
        )
    elif kind == "diverged":
        st.error(
            f"Training stopped: {training.run.state.stop_reason} The weights are no longer "
            "usable, so this model is not offered to the other lessons. Reset, choose a lower "
            "learning rate and start again."
        )


def show_curves(training: Training, history: list[Progress]) -> None:
    settings = training.choice.spec.settings
    even_guess = math.log(training.choice.config.vocab_size)
    st.plotly_chart(
        figs.loss_figure(history, settings.max_steps, training.earlier, even_guess),
        key="train-loss",
        theme=None,
    )
    caption = f"Guessing evenly among {training.choice.config.vocab_size:,} tokens: ln V = {even_guess:.3f}."
    if training.earlier:
        caption += " Grey dots: the attempt before the restart."
    st.caption(caption)
    step = min(history[-1].step if history else 0, settings.max_steps)
    schedule_column, speed_column = st.columns(2)
    with schedule_column:
        st.plotly_chart(figs.learning_rate_figure(settings, step), key="train-schedule", theme=None)
    with speed_column:
        st.plotly_chart(figs.throughput_figure(history), key="train-speed", theme=None)


def show_sample(run: Run) -> None:
    evaluated = [u for u in list(run.updates) if u.sample is not None]
    if not evaluated:
        st.caption("The first sample appears at the first evaluation.")
        return
    latest = evaluated[-1]
    step = latest.progress.step
    if run.spec.family == "gpt":
        prompt = run.tokenizer.decode(run.probe_ids[:4])
        heading = f"Sample at step {step:,}: the model continues the text in bold."
        st.html(figs.sample_html(latest.sample, heading, prompt))
    else:
        heading = f"Fill in the blanks at step {step:,}: the model's guesses are in [brackets]."
        st.html(figs.sample_html(latest.sample, heading))


def timeline_snapshots(training: Training) -> list[tuple[int, list[torch.Tensor]]]:
    snapshots = [(0, training.initial_attention)] if training.initial_attention else []
    updates = list(training.run.updates)
    return snapshots + [(u.progress.step, u.attentions) for u in updates if u.attentions]


def choose_head(layer: int, head: int) -> None:
    st.session_state["train-layer"] = layer
    st.session_state["train-head"] = head


def forget_out_of_range(key: str, allowed: range) -> None:
    """Drop a remembered widget value that the current run's sizes no longer allow."""
    if st.session_state.get(key, allowed.start) not in allowed:
        del st.session_state[key]


def show_timeline(training: Training) -> None:
    run = training.run
    snapshots = timeline_snapshots(training)
    if not snapshots:
        st.caption("The first snapshot is taken as soon as the run starts.")
        return
    timeline = attention_timeline(snapshots)
    settings = run.spec.settings
    top = math.ceil(settings.max_steps / settings.eval_interval) * settings.eval_interval
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
    index = snapshot_at(timeline.steps, chosen)
    step, attentions = snapshots[index]
    tokens = run.probe_tokens
    uniform = uniform_scores(len(tokens), causal=run.spec.family == "gpt")
    matrix_column, score_column = st.columns(2)
    with matrix_column:
        title = f"Layer {layer}, head {head} at step {step:,}"
        st.plotly_chart(
            figs.attention_snapshot_figure(attentions[layer][0, head], tokens, title),
            key="train-snapshot-figure",
            theme=None,
        )
        scores = {name: float(timeline.scores[name][index, layer, head]) for name in SCORES}
        st.caption(
            f"Snapshot {index + 1} of {len(snapshots)}. This head's mean weight on "
            + ", on ".join(f"{SCORE_NAMES[n]}: {scores[n]:.2f}" for n in SCORES)
            + f" (evenly spread attention: {uniform['previous']:.2f})."
        )
    with score_column:
        score = st.radio(
            "Score over time",
            SCORES,
            format_func=lambda name: f"weight on {SCORE_NAMES[name]}",
            horizontal=True,
            key="train-score",
        )
        st.plotly_chart(
            figs.head_score_figure(
                timeline, score, (layer, head), uniform[score], settings.max_steps
            ),
            key="train-scores",
            theme=None,
        )
        best_layer, best_head, best = timeline.strongest_head(score)
        st.caption(
            f"At step {timeline.steps[-1]:,} the strongest head on this score is layer "
            f"{best_layer}, head {best_head} ({best:.2f})."
        )
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
    history = history_of(run) if run is not None else []
    if training is not None:
        st.caption(run_caption(training))
    if active and run is None and snapshot.status == "running":
        st.info("Preparing the run: training the tokenizer and cutting the text into batches…")
    if run is not None:
        show_status(training, history, active)
        if not active:
            show_outcome(training, history)
    lesson_section(current, "curves")
    if run is not None and history:
        show_curves(training, history)
    else:
        st.caption("Start a run to draw its curves here.")
    lesson_section(current, "samples")
    if run is not None:
        show_sample(run)
    lesson_section(current, "timeline")
    if run is not None:
        show_timeline(training)


# ---------------------------------------------------------------------------------------------
# Into the model pickers, and downloaded
# ---------------------------------------------------------------------------------------------


def weights_are_finite(run: Run) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in run.model.parameters())


def unused_name(base: str, taken: dict) -> str:
    name, n = base, 2
    while name in taken:
        name, n = f"{base} #{n}", n + 1
    return name


def publish(training: Training | None) -> None:
    """Once a run has stopped or finished, put its model into this session's model pickers
    (keeping the last ``MAX_TRAINED``) and zip it for download."""
    if training is None or training.run is None or job_active():
        return
    run = training.run
    if run.step == 0 or stop_kind(training) in (None, "diverged"):
        return
    if training.published == (training.attempt, run.step) or not weights_are_finite(run):
        return
    trained: dict = st.session_state.setdefault(TRAINED_KEY, {})
    name = unused_name(f"my-{run.spec.family} (step {run.step})", trained)
    trained[name] = run.as_loaded_model(name)
    while len(trained) > MAX_TRAINED:
        trained.pop(next(iter(trained)))
    folder = f"my-{run.spec.family}-step-{run.step}"
    training.zip_bytes = run.to_zip(folder)
    training.published = (training.attempt, run.step)
    training.published_name = name


def show_export(training: Training | None) -> None:
    if training is None or training.published_name is None:
        st.caption("Your model appears here once a run stops or finishes.")
        return
    name = training.published_name
    folder = f"my-{training.run.spec.family}-step-{training.published[1]}"
    trained = st.session_state.get(TRAINED_KEY, {})
    if name in trained:
        st.success(
            f"“{name}” is in the model pickers of the other lessons for this session. "
            f"Your models there now: {', '.join(trained)}."
        )
    st.download_button(
        f"Download {folder}.zip",
        data=training.zip_bytes,
        file_name=f"{folder}.zip",
        mime="application/zip",
        key="train-download",
        icon=":material/download:",
    )
    st.code(f"unzip {folder}.zip\ntinyformers export-hf {folder} {folder}-hf", language="bash")


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
