"""What a training page computes from a run while it learns: how each attention head's habits
change over time, and how long the run has left.

A *snapshot* is the attention of the run's fixed probe sentence at one step, in the format used
everywhere (per layer a ``(1, n_head, T, T)`` tensor, queries down, keys across). From every
snapshot three numbers per head are taken, each averaged over the query rows 1 … T−1 (row 0
is left out: in a causal model the first token can only look at itself):

previous  the weight on the token just before the query, pᵢ,ᵢ₋₁. A head that copies the
          previous token's information along (a "previous-token head") scores near 1.
first     the weight on the first token, pᵢ,₀. Heads with nothing useful to do often park
          their attention there.
self      the weight a token gives to its own position, pᵢ,ᵢ.

``uniform_scores`` gives the same numbers for attention spread evenly, the untrained
starting point a score has to rise above to mean anything.

The *training session* is what a student sets up and runs: the choices they may make (corpus,
tokenizer, size, settings) checked into a ``Choice``; the ``Training`` of that choice, with its
background work, why it stopped, whether it may resume, and publishing the model it learned;
and the ``Status`` numbers shown while it runs.

The lesson's prediction questions (``predict_*``, at the end) ask about the chosen model and
settings before any training: nothing in them trains.

The page's defaults (``default_choice``) are chosen to teach within 30 seconds on two CPU
cores: a small GPT on gpt-char's stories whose loss visibly falls from ln V and whose samples
turn from random characters into words (bench/train_page.py measures it).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import Tensor

from tinyformers.i18n import N_, _
from tinyformers.model.build import build_model, count_parameters
from tinyformers.model.config import PRESETS, TransformerConfig, config_from_dict
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.corpora import lesson_corpus
from tinyformers.text.tokenizers import (
    BYTE_ALPHABET_SIZE,
    DEFAULT_VOCAB_SIZE,
    SPECIAL_TOKENS,
    train_tokenizer,
    wordpiece_min_vocab_size,
)
from tinyformers.training import zoo
from tinyformers.training.jobs import ACTIVE, Job, Limits
from tinyformers.training.loop import Progress, TrainSettings, evaluate, make_optimizer
from tinyformers.training.runs import CHAR_SETTINGS, Run, RunSpec, TrainUpdate, split_sentences

SCORES = ("previous", "first", "self")
"""The names of the per-head scores, in the order pages offer them."""

STARTS = {"start": "starting", "resume": "resuming", "restart": "restarting"}  # kind -> phase
SNAPSHOTS_PER_RUN = 15  # evaluations (and so attention snapshots) a run aims for
MIN_SNAPSHOT_INTERVAL = 10  # never evaluate more often than this many steps
RATE_WINDOW = 5  # logged steps the time-left estimate looks back over


def build_values() -> dict[str, object]:
    """The numbers the lesson's "choose what to train" section quotes about the corpora."""
    return {"agreement_sentences": zoo.AGREEMENT_TRAINING_SENTENCES}


# ---------------------------------------------------------------------------------------------
# Per-head scores of one snapshot
# ---------------------------------------------------------------------------------------------


def _check_snapshot(attentions: Sequence[Tensor]) -> tuple[int, int]:
    """The (n_head, T) of a snapshot, after checking every layer has the same square shape."""
    if not attentions:
        raise ValueError("a snapshot needs the attention of at least one layer")
    shape = tuple(attentions[0].shape)
    for layer, weights in enumerate(attentions):
        if weights.dim() != 4 or weights.shape[0] != 1 or weights.shape[-1] != weights.shape[-2]:
            raise ValueError(
                f"layer {layer}: expected attention of shape (1, heads, T, T), "
                f"got {tuple(weights.shape)}"
            )
        if tuple(weights.shape) != shape:
            raise ValueError(
                f"layer {layer} has shape {tuple(weights.shape)}, layer 0 has {shape}; "
                "every layer of a snapshot must have the same shape"
            )
    if shape[-1] < 2:
        raise ValueError("the scores need a probe of at least two tokens")
    return shape[1], shape[-1]


def head_scores(attentions: Sequence[Tensor]) -> dict[str, Tensor]:
    """Each score of ``SCORES`` for every head of one snapshot, as an (n_layer, n_head) tensor."""
    _n_head, t = _check_snapshot(attentions)
    weights = torch.cat([a.float() for a in attentions])  # (n_layer, n_head, T, T)
    rows = torch.arange(1, t)
    return {
        "previous": weights[:, :, rows, rows - 1].mean(-1),
        "first": weights[:, :, rows, 0].mean(-1),
        "self": weights[:, :, rows, rows].mean(-1),
    }


def uniform_scores(n_tokens: int, causal: bool) -> dict[str, float]:
    """The scores of attention spread evenly over every visible key: over keys 0 … i for a
    causal model, over all ``n_tokens`` keys otherwise. All three scores are equal then."""
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 2:
        raise ValueError(f"the probe needs at least two tokens, got {n_tokens!r}")
    if causal:
        value = sum(1 / (i + 1) for i in range(1, n_tokens)) / (n_tokens - 1)
    else:
        value = 1 / n_tokens
    return dict.fromkeys(SCORES, value)


# ---------------------------------------------------------------------------------------------
# Scores over time
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeline:
    """The scores of every head at every snapshot.

    ``scores[name][s, layer, head]`` is score ``name`` of that head at snapshot ``s``, taken
    at training step ``steps[s]``.
    """

    steps: tuple[int, ...]
    scores: dict[str, Tensor]  # name -> (n_snapshots, n_layer, n_head)

    @property
    def n_layer(self) -> int:
        return self.scores[SCORES[0]].shape[1]

    @property
    def n_head(self) -> int:
        return self.scores[SCORES[0]].shape[2]

    def strongest_head(self, score: str) -> tuple[int, int, float]:
        """(layer, head, value) of the head with the highest ``score`` at the last snapshot."""
        _check_score(score)
        last = self.scores[score][-1]  # (n_layer, n_head)
        best = int(last.argmax())
        layer, head = divmod(best, self.n_head)
        return layer, head, float(last[layer, head])

    def head_values(self, index: int, layer: int, head: int) -> dict[str, float]:
        """Every score of one head at snapshot ``index``."""
        return {name: float(self.scores[name][index, layer, head]) for name in SCORES}


def _check_score(score: str) -> None:
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}; got {score!r}")


def attention_timeline(snapshots: Sequence[tuple[int, Sequence[Tensor]]]) -> Timeline:
    """The ``Timeline`` of ``(step, attentions)`` snapshots, given in training order."""
    if not snapshots:
        raise ValueError("the timeline needs at least one snapshot")
    steps = [step for step, _ in snapshots]
    if any(later < earlier for earlier, later in zip(steps, steps[1:], strict=False)):
        raise ValueError(f"snapshots must be in training order, got steps {steps}")
    per_snapshot = [head_scores(attentions) for _step, attentions in snapshots]
    shapes = {tuple(s["previous"].shape) for s in per_snapshot}
    if len(shapes) > 1:
        raise ValueError(f"every snapshot must come from the same model; got shapes {shapes}")
    scores = {name: torch.stack([s[name] for s in per_snapshot]) for name in SCORES}
    return Timeline(tuple(steps), scores)


def snapshot_at(steps: Sequence[int], step: int) -> int:
    """Index of the latest snapshot taken at or before ``step`` (the first one if none was)."""
    if not steps:
        raise ValueError("there are no snapshots yet")
    earlier = [i for i, s in enumerate(steps) if s <= step]
    return earlier[-1] if earlier else 0


def snapshot_interval(total_steps: int) -> int:
    """Steps between evaluations so a run takes about ``SNAPSHOTS_PER_RUN`` snapshots, but
    never fewer than ``MIN_SNAPSHOT_INTERVAL`` steps apart (each one costs an evaluation)."""
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(
            f"the number of steps must be a positive whole number, got {total_steps!r}"
        )
    return max(MIN_SNAPSHOT_INTERVAL, math.ceil(total_steps / SNAPSHOTS_PER_RUN))


# ---------------------------------------------------------------------------------------------
# Time left
# ---------------------------------------------------------------------------------------------


def steps_per_second(history: Sequence[Progress], window: int = RATE_WINDOW) -> float | None:
    """Recent speed: steps per second of training time over the last ``window`` logged steps
    (from the start of the run when only one step has been logged). None before any step."""
    if not history or history[-1].elapsed_s <= 0:
        return None
    last = history[-1]
    if len(history) < 2:
        return last.step / last.elapsed_s
    first = history[-min(window, len(history) - 1) - 1]
    seconds = last.elapsed_s - first.elapsed_s
    if seconds <= 0:
        return last.step / last.elapsed_s
    return (last.step - first.step) / seconds


def time_left(
    history: Sequence[Progress], total_steps: int, budget_left_s: float | None = None
) -> float | None:
    """Seconds until ``total_steps`` at the recent speed, or until the time budget runs out
    if that comes first. None while the speed is still unknown."""
    if history and history[-1].step >= total_steps:
        return 0.0
    rate = steps_per_second(history)
    if rate is None or rate <= 0:
        return budget_left_s
    estimate = (total_steps - history[-1].step) / rate
    if budget_left_s is not None:
        estimate = min(estimate, max(budget_left_s, 0.0))
    return estimate


def format_duration(seconds: float | None) -> str:
    """Short enough for a metric: "4m 05s", "42s", or "–" when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = max(0, round(seconds))
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m {rest:02d}s" if minutes else f"{rest}s"


# ---------------------------------------------------------------------------------------------
# What a student may choose
# ---------------------------------------------------------------------------------------------

FAMILY_LABELS = {"gpt": "GPT (causal LM)", "bert": "BERT (masked LM)"}
CORPUS_LABELS = {
    "char": "gpt-char's stories",
    "stories": "More stories (gpt-stories' text)",
    "lessons": "The lessons' text",
    "own": "Your own text",
}
TOKENIZER_LABELS = {"char": "Characters", "bpe": "Byte-level BPE", "wordpiece": "WordPiece"}
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128)
SIZE_LABELS = {
    "n_layer": "Layers",
    "n_head": "Heads per layer",
    "n_embd": "Width (n_embd)",
    "block_size": "Context (tokens)",
}
SIZE_LIMITS = {
    "n_layer": (1, 12, 1),
    "n_head": (1, 16, 1),
    "n_embd": (8, 768, 8),
    "block_size": (8, 512, 8),
}
VAL_FRACTION = 0.1  # the share of the text runs hold out for validation (training/loop.py)
MAX_TRAINED = 3  # trained models of one session kept for the model pickers


@dataclass(frozen=True)
class NumberChoice:
    """A whole number a student may choose: its label, ``low`` … ``high`` in steps of
    ``step``, starting at ``default``, and a help text."""

    label: str
    low: int
    high: int
    default: int
    step: int
    help: str | None = None

    def __post_init__(self) -> None:
        if not self.low <= self.default <= self.high or self.step < 1:
            raise ValueError(f"need low <= default <= high and a positive step, got {self!r}")


VOCAB_CHOICE = NumberChoice(
    "Vocabulary size (BPE, WordPiece)",
    len(SPECIAL_TOKENS) + BYTE_ALPHABET_SIZE,  # the smallest byte-level BPE: specials, bytes
    8_000,
    DEFAULT_VOCAB_SIZE,
    100,
    "At most this many tokens are learned. Characters: one token per distinct character of "
    "the text.",
)
STEPS_CHOICE = NumberChoice("Steps", 10, 100_000, CHAR_SETTINGS.max_steps, 100)


def size_choice(preset_name: str, field_name: str) -> NumberChoice:
    """The custom input of a size field, starting at the preset's value (clipped to the
    input's range)."""
    if field_name not in SIZE_LIMITS:
        raise ValueError(f"size field must be one of {', '.join(SIZE_LIMITS)}; got {field_name!r}")
    low, high, step = SIZE_LIMITS[field_name]
    default = min(max(PRESETS[preset_name][field_name], low), high)
    return NumberChoice(SIZE_LABELS[field_name], low, high, default, step)


def nearest(options: Sequence[float], value: float) -> float:
    """The option closest to ``value`` on a log scale (options and value positive)."""
    if not options or value <= 0 or min(options) <= 0:
        raise ValueError(f"need positive options and a positive value, got {options!r}, {value!r}")
    return min(options, key=lambda option: abs(math.log(option / value)))


DEFAULT_LEARNING_RATE = nearest(LEARNING_RATES, CHAR_SETTINGS.learning_rate)
DEFAULT_BATCH_SIZE = int(nearest(BATCH_SIZES, CHAR_SETTINGS.batch_size))
# What the page starts with. The `micro` size (2 layers × 2 heads, width 64) trains about eight
# times as many steps a second as `char` on two CPU cores: its 1,200 steps take about 20 s.
DEFAULT_FAMILY, DEFAULT_CORPUS, DEFAULT_TOKENIZER = "gpt", "char", "char"
DEFAULT_PRESET = "micro"
DEFAULT_STEPS = STEPS_CHOICE.default
DEFAULT_SEED = 0


def corpus_text(name: str) -> str:
    """The text of a built-in corpus: ``char``, ``stories`` or ``lessons``."""
    if name == "char":
        return zoo.char_text()
    if name == "stories":
        return zoo.stories_text()
    if name == "lessons":
        return lesson_corpus()
    raise ValueError(f"no built-in corpus called {name!r}; choose char, stories or lessons")


@dataclass(frozen=True)
class CorpusProfile:
    """What a run on a text with a ``kind`` tokenizer will see."""

    kind: str  # the tokenizer: "char", "bpe" or "wordpiece"
    characters: int
    asked: int | None  # the vocabulary size the student asked for (None: characters)
    requested: int | None  # what the run asks for: WordPiece raised to the text's minimum
    vocab_size: int  # what the trained tokenizer has
    tokens: int
    sentences: int

    @property
    def raised(self) -> bool:
        """Whether WordPiece needed a larger vocabulary than was asked for."""
        return self.asked is not None and self.requested is not None and self.requested > self.asked


def corpus_profile(text: str, kind: str, vocab_size: int | None) -> CorpusProfile:
    """Train the ``kind`` tokenizer on ``text`` (asking for ``vocab_size`` tokens, WordPiece
    raised to the smallest size the text allows) and count what a run will see."""
    requested = vocab_size
    if kind == "wordpiece":
        requested = max(vocab_size, wordpiece_min_vocab_size(text))
    tokenizer = train_tokenizer(kind, text, requested)
    return CorpusProfile(
        kind=kind,
        characters=len(text),
        asked=vocab_size,
        requested=requested,
        vocab_size=tokenizer.vocab_size,
        tokens=len(tokenizer.encode(text)),
        sentences=len(split_sentences(text)),
    )


def parameter_count(config: dict) -> int:
    """Parameters of a model built from ``config`` (a ``TransformerConfig.to_dict()``)."""
    return count_parameters(build_model(config_from_dict(config)))


def warmup_for(steps: int) -> int:
    """Warm-up steps of a run of ``steps`` steps: a tenth of it, at most the char default's."""
    return min(CHAR_SETTINGS.warmup_steps, steps // 10)


def train_settings(steps: int, batch_size: int, learning_rate: float, seed: int) -> TrainSettings:
    """The settings of a run: the warm-up of ``warmup_for`` and an evaluation (with a sample
    and an attention snapshot) every ``snapshot_interval`` steps. ValueError if unusable."""
    return TrainSettings(
        max_steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_steps=warmup_for(steps),
        eval_interval=snapshot_interval(steps),
        seed=seed,
    )


def run_spec(
    family: str,
    profile: CorpusProfile,
    preset_name: str,
    overrides: dict[str, int],
    settings: TrainSettings,
) -> tuple[RunSpec, TransformerConfig]:
    """The spec of a run and the config of its model. ValueError if the size cannot be built."""
    spec = RunSpec(
        family=family,
        tokenizer=profile.kind,
        vocab_size=profile.requested,
        preset=preset_name,
        settings=settings,
        **overrides,
    )
    return spec, spec.config(profile.vocab_size)


@dataclass
class Choice:
    """What the settings describe, checked, ready to start."""

    spec: RunSpec
    text: str
    corpus: str  # the corpus's label
    config: TransformerConfig
    n_parameters: int
    profile: CorpusProfile


def make_choice(
    family: str,
    text: str,
    corpus: str,
    profile: CorpusProfile,
    preset_name: str,
    overrides: dict[str, int],
    settings: TrainSettings,
    count: Callable[[dict], int] = parameter_count,
) -> Choice:
    """The ``Choice`` of these settings, its parameters counted by ``count`` (a cached
    ``parameter_count`` on a page). ValueError if the size cannot be built."""
    spec, config = run_spec(family, profile, preset_name, overrides, settings)
    return Choice(spec, text, corpus, config, count(config.to_dict()), profile)


def default_choice() -> Choice:
    """The run the training page starts when no setting has been touched."""
    text = corpus_text(DEFAULT_CORPUS)
    profile = corpus_profile(text, DEFAULT_TOKENIZER, None)
    settings = train_settings(
        DEFAULT_STEPS, DEFAULT_BATCH_SIZE, DEFAULT_LEARNING_RATE, DEFAULT_SEED
    )
    label = CORPUS_LABELS[DEFAULT_CORPUS]
    return make_choice(DEFAULT_FAMILY, text, label, profile, DEFAULT_PRESET, {}, settings)


def length_problem(profile: CorpusProfile, family: str, block_size: int) -> str | None:
    """Why the text is too short for a run (the same split as the run makes), or None."""
    if family == "gpt":
        tokens = profile.tokens
        train_tokens = int(tokens * (1 - VAL_FRACTION))
        if train_tokens <= block_size or tokens - train_tokens < 2:
            return _(
                "the text has {tokens} tokens; a context of {context} needs more than {needed}. "
                "Use a longer text or a shorter context."
            ).format(
                tokens=f"{tokens:,}",
                context=block_size,
                needed=f"{math.ceil((block_size + 2) / (1 - VAL_FRACTION)):,}",
            )
        return None
    sentences = profile.sentences
    if int(sentences * (1 - VAL_FRACTION)) < 1 or sentences < 2:
        return _(
            "a BERT trains on sentences, and the text has only {sentences}. Use a longer text."
        ).format(sentences=sentences)
    return None


def refusal(choice: Choice, limits: Limits) -> str | None:
    """Why a server with ``limits`` will not start ``choice`` (steps, size, text length)."""
    steps = choice.spec.settings.max_steps
    if steps > limits.max_steps:
        return _(
            "This server allows at most {limit} steps per run; you asked for {steps}. Lower the "
            "number of steps."
        ).format(limit=f"{limits.max_steps:,}", steps=f"{steps:,}")
    try:
        limits.check_parameters(choice.n_parameters)
    except ValueError as err:
        return _("Too large: {problem}").format(problem=err)
    problem = length_problem(choice.profile, choice.spec.family, choice.config.block_size)
    if not problem:
        return None
    return _("The text is too short to train on: {problem}").format(problem=problem)


# ---------------------------------------------------------------------------------------------
# A training session
# ---------------------------------------------------------------------------------------------


def weights_are_finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def unused_name(base: str, taken: Sequence[str]) -> str:
    """``base``, or ``base #2``, ``base #3``… whichever is not in ``taken`` first."""
    name, n = base, 2
    while name in taken:
        name, n = f"{base} #{n}", n + 1
    return name


def model_folder(family: str, step: int) -> str:
    """The name of a trained model's folder (and zip): ``my-gpt-step-300``."""
    return f"my-{family}-step-{step}"


def even_guess_loss(vocab_size: int) -> float:
    """The loss of guessing evenly among ``vocab_size`` tokens: ln V nats per token."""
    if vocab_size < 1:
        raise ValueError(f"the vocabulary needs at least one token, got {vocab_size!r}")
    return math.log(vocab_size)


def last_snapshot_step(settings: TrainSettings) -> int:
    """The step of the last evaluation a run can reach: the step count rounded up to a whole
    number of evaluation intervals."""
    interval = settings.eval_interval
    return math.ceil(settings.max_steps / interval) * interval


@dataclass(frozen=True)
class Status:
    """The numbers shown while a run trains and after it stops."""

    step: int
    total: int  # steps the run was asked for
    elapsed_s: float
    time_left_s: float | None  # until the end, or until this start's time budget runs out
    unlimited_left_s: float | None  # until the end if there were no time budget
    tokens_per_s: float | None
    train_loss: float | None
    val_loss: float | None  # the latest evaluation's

    @property
    def fraction(self) -> float:
        """The share of the steps done, at most 1."""
        return min(self.step / self.total, 1.0)

    @property
    def planned_step(self) -> int:
        """The step on the planned schedule: the step, at most the total."""
        return min(self.step, self.total)

    @property
    def budget_cuts_short(self) -> bool:
        """Whether the time budget ends this start more than a second before the last step."""
        left, unlimited = self.time_left_s, self.unlimited_left_s
        return left is not None and unlimited is not None and unlimited > left + 1


@dataclass(frozen=True)
class RunSample:
    """The latest sample of a run: a continuation of ``prompt`` (GPT) or, with no prompt, the
    probe with its blanks filled in (BERT)."""

    step: int
    text: str
    prompt: str | None


def latest_sample(run: Run) -> RunSample | None:
    """The sample of the latest evaluation, or None before the first."""
    evaluated = [u for u in list(run.updates) if u.sample is not None]
    if not evaluated:
        return None
    latest = evaluated[-1]
    return RunSample(latest.progress.step, latest.sample, sample_prompt(run))


def sample_prompt(run: Run) -> str | None:
    """What a GPT's samples continue (the probe's first tokens); None for a BERT."""
    return run.tokenizer.decode(run.probe_ids[:4]) if run.spec.family == "gpt" else None


def first_sample(training: Training) -> RunSample | None:
    """What the untrained model wrote at step 0, once the run has been built."""
    run = training.run
    if run is None or training.initial_sample is None:
        return None
    return RunSample(0, training.initial_sample, sample_prompt(run))


def samples(training: Training) -> tuple[RunSample | None, RunSample | None, int]:
    """The untrained model's sample, the latest one, and the step of the first evaluation."""
    latest = latest_sample(training.run) if training.run is not None else None
    return first_sample(training), latest, training.choice.spec.settings.eval_interval


@dataclass(frozen=True)
class SnapshotView:
    """One head in one attention snapshot, as the timeline shows it."""

    index: int  # of the snapshot, among ``count`` so far
    count: int
    step: int  # the training step it was taken at
    layer: int
    head: int
    weights: Tensor  # (T, T): queries down, keys across
    tokens: list[str]  # the probe's T tokens
    scores: dict[str, float]  # this head's scores in this snapshot
    uniform: dict[str, float]  # the scores of evenly spread attention


@dataclass(frozen=True)
class Started:
    """The first report of every start of a run: the run as it begins (its spec, tokenizer,
    probe and history so far, without the weights and data, which stay in the worker), the
    untrained model's attention, sample and validation loss (on a run's first start) and where this start's time budget
    ends."""

    view: Run
    initial: tuple[list[Tensor], str, float] | None  # attention, sample, validation loss
    budget_end_s: float


def run_view(run: Run) -> Run:
    """A light copy of ``run`` for a page to draw from while it trains elsewhere."""
    view = copy.copy(run)
    view.model = view.task = view.initial_weights = None
    view.state = copy.copy(run.state)
    if view.state is not None:
        view.state.optimizer = None
    view.updates = list(run.updates)
    return view


def train_start(
    spec: RunSpec, text: str, run: Run | None, budget_s: float, report: Callable
) -> Run:
    """One start of a session's run, in a worker: build the run if there is none, report a
    ``Started``, then train for at most ``budget_s`` more seconds of training time, reporting
    every ``TrainUpdate``. Returns the run, trained weights and all."""
    if run is None:
        run = Run(spec, text)
    initial = None
    if run.step == 0:
        initial = (run.probe_attention(), run.sample(), evaluate(run.model, run.task))
    already = run.state.elapsed_s if run.state is not None else 0.0
    budget_end = already + budget_s
    if report(Started(run_view(run), initial, budget_end)) is False:
        return run
    run.train(report, max_seconds=budget_end)
    return run


@dataclass
class Training:
    """A session's run: what was asked for, the background job training it, and the ``Run``.

    The run trains in a worker process: while it does, ``run`` is a light copy the page draws
    from, brought up to date by ``sync`` from the job's reports; when the job ends, ``sync``
    puts the trained run it sent back in its place. The page touches the model only when no job
    is running."""

    choice: Choice
    job: Job | None = None
    run: Run | None = None
    initial_attention: list[Tensor] | None = None
    initial_sample: str | None = None  # what the untrained model writes (or fills in)
    initial_val_loss: float | None = None  # the untrained model's validation loss
    budget_end_s: float = math.inf  # training time at which the current start's budget ends
    earlier: list[Progress] = field(default_factory=list)  # the attempt before a restart
    attempt: int = 1
    published: tuple[int, int] | None = None  # (attempt, step) last put into the pickers
    last_start: str = "start"  # how the latest job began: "start", "resume" or "restart"
    published_name: str | None = None
    zip_bytes: bytes | None = None
    _before: Run | None = None  # the run as this start began, kept if the start fails
    _synced: tuple[object, int, bool] = (None, 0, False)  # (job, reports read, its end read)

    # -- the job ------------------------------------------------------------------------------

    def begin(self, kind: str, budget_s: float) -> Callable:
        """The work of a job that starts the run, resumes it or restarts it from its initial
        weights (``kind``: "start", "resume" or "restart"), for ``budget_s`` seconds at most."""
        if kind not in STARTS:
            raise ValueError(f"kind must be one of {', '.join(STARTS)}; got {kind!r}")
        if kind == "restart":
            self.restart()
        self.last_start = kind
        return self.work(budget_s)

    def work(self, budget_s: float) -> Callable:
        """The background work of one start (a picklable ``partial`` of ``train_start``): go
        on from the run as it is, or build it, and train for at most ``budget_s`` more
        seconds of training time."""
        self.sync()
        self._before = self.run
        return partial(train_start, self.choice.spec, self.choice.text, self.run, budget_s)

    def sync(self) -> None:
        """Read what the job reported since the last look; once it has ended, take the run it
        sent back (or, if it failed, keep the run as it was before this start)."""
        job = self.job
        if job is None or not hasattr(job, "snapshot"):
            return
        seen, read, ended = self._synced
        if seen is not job:
            read, ended = 0, False
        if ended:
            return
        snapshot = job.snapshot()
        for update in snapshot.updates[read:]:
            if isinstance(update, Started):
                self.run = update.view
                self.budget_end_s = update.budget_end_s
                if update.initial is not None:
                    attention, sample, val_loss = update.initial
                    self.initial_attention, self.initial_sample = attention, sample
                    self.initial_val_loss = val_loss
            elif isinstance(update, TrainUpdate) and self.run is not None:
                self.run.updates.append(update)
        if not snapshot.active:
            self.run = snapshot.result if isinstance(snapshot.result, Run) else self._before
        self._synced = (job, len(snapshot.updates), not snapshot.active)

    @property
    def active(self) -> bool:
        """Whether the job is queued or running (once it has ended, its run is taken in)."""
        if self.job is None:
            return False
        status = self.job.status  # read first: if it has ended, ``sync`` reads its end
        self.sync()
        return status in ACTIVE

    def phase(self) -> str:
        """Where the session stands, as its buttons show it: "idle" (no job training),
        "stopping" (a stop was asked for and the job has not stopped yet), "starting",
        "resuming" or "restarting" (the job has not reported a step yet), or "running"."""
        if not self.active:
            return "idle"
        if self.job.stop_requested:
            return "stopping"
        if not any(isinstance(u, TrainUpdate) for u in self.job.snapshot().updates):
            return STARTS[self.last_start]
        return "running"

    def stop_kind(self) -> str | None:
        """Why the last start ended: "finished", "stopped", "budget" (the server's time limit)
        or "diverged" (None if it has not trained yet)."""
        run = self.run
        if run is None or run.state is None:
            return None
        reason = run.state.stop_reason
        if reason is None:
            return "finished"
        if reason == "stopped":
            timed_out = self.job is not None and self.job.timed_out
            return "budget" if timed_out else "stopped"
        if run.state.elapsed_s >= self.budget_end_s:
            return "budget"
        return "diverged"

    def can_resume(self) -> bool:
        """Whether a stopped run has steps left and weights worth training on."""
        run = self.run
        return (
            run is not None
            and not self.active
            and run.step < run.spec.settings.max_steps
            and self.stop_kind() != "diverged"
        )

    def can_restart(self) -> bool:
        """Whether there is a run to take back to its initial weights, and no job training it."""
        return self.run is not None and not self.active

    def restart(self) -> None:
        """Back to the run's initial weights, keeping this attempt's history as ``earlier``."""
        if self.run is None:
            raise ValueError("there is no run to restart yet")
        self.earlier = self.history()
        self.run.restart()
        self.initial_attention = self.initial_sample = self.initial_val_loss = None
        self.attempt += 1

    # -- what it shows ------------------------------------------------------------------------

    def history(self) -> list[Progress]:
        """Every logged step of the run so far (a copy: the worker may be appending)."""
        self.sync()
        if self.run is None:
            return []
        return [update.progress for update in list(self.run.updates)]

    def status(self, history: Sequence[Progress], active: bool) -> Status:
        """The numbers of ``history``; the time left is estimated only while ``active``."""
        total = self.choice.spec.settings.max_steps
        last = history[-1] if history else None
        budget_left = self.budget_end_s - last.elapsed_s if last is not None else None
        return Status(
            step=last.step if last is not None else 0,
            total=total,
            elapsed_s=last.elapsed_s if last is not None else 0.0,
            time_left_s=time_left(history, total, budget_left) if active else None,
            unlimited_left_s=time_left(history, total) if active else None,
            tokens_per_s=last.tokens_per_s if last is not None else None,
            train_loss=last.train_loss if last is not None else None,
            val_loss=next((p.val_loss for p in reversed(history) if p.val_loss is not None), None),
        )

    def timeline_snapshots(self) -> list[tuple[int, list[Tensor]]]:
        """``(step, attentions)`` of the untrained model (when taken) and every evaluation."""
        snapshots = [(0, self.initial_attention)] if self.initial_attention else []
        updates = list(self.run.updates) if self.run is not None else []
        return snapshots + [(u.progress.step, u.attentions) for u in updates if u.attentions]

    def snapshot_view(
        self,
        snapshots: Sequence[tuple[int, list[Tensor]]],
        timeline: Timeline,
        step: int,
        layer: int,
        head: int,
    ) -> SnapshotView:
        """Head ``head`` of layer ``layer`` in the latest snapshot taken at or before ``step``
        (``snapshots`` and their ``timeline`` as ``timeline_snapshots`` gave them)."""
        if not (0 <= layer < timeline.n_layer and 0 <= head < timeline.n_head):
            raise ValueError(f"no head {head} in layer {layer} of this run")
        index = snapshot_at(timeline.steps, step)
        taken_at, attentions = snapshots[index]
        tokens = self.run.probe_tokens
        return SnapshotView(
            index=index,
            count=len(snapshots),
            step=taken_at,
            layer=layer,
            head=head,
            weights=attentions[layer][0, head],  # (T, T)
            tokens=tokens,
            scores=timeline.head_values(index, layer, head),
            uniform=uniform_scores(len(tokens), causal=self.run.spec.family == "gpt"),
        )

    # -- into the model pickers ---------------------------------------------------------------

    def publishable(self) -> bool:
        """Whether the run has stopped or finished with finite weights at a step (of this
        attempt) not yet published."""
        run = self.run
        if run is None or self.active or run.step == 0:
            return False
        if self.stop_kind() in (None, "diverged"):
            return False
        return self.published != (self.attempt, run.step) and weights_are_finite(run.model)

    @property
    def folder(self) -> str:
        """The model folder's name for the published step."""
        if self.published is None:
            raise ValueError("nothing has been published yet")
        return model_folder(self.choice.spec.family, self.published[1])

    def publish(self, trained: dict, keep: int = MAX_TRAINED) -> str:
        """Put the model into ``trained`` (name -> LoadedModel, the pickers' models; only the
        last ``keep`` stay) under a new name, zip it for download, and return the name."""
        if not self.publishable():
            raise ValueError("only a stopped or finished run with usable weights is published")
        run = self.run
        name = unused_name(f"my-{run.spec.family} (step {run.step})", list(trained))
        trained[name] = run.as_loaded_model(name)
        while len(trained) > keep:
            trained.pop(next(iter(trained)))
        self.zip_bytes = run.to_zip(model_folder(run.spec.family, run.step))
        self.published = (self.attempt, run.step)
        self.published_name = name
        return name


def warm_up() -> None:
    """Build an AdamW optimizer once, so that the first Start of a process does not wait for
    the modules PyTorch imports the first time (a second or more on two busy cores)."""
    make_optimizer(torch.nn.Linear(1, 1), TrainSettings())


def phase_of(training: Training | None) -> str:
    """``Training.phase`` of a session's training, "idle" when it has none."""
    return training.phase() if training is not None else "idle"


@dataclass(frozen=True)
class Actions:
    """Which of a session's buttons can act."""

    start: bool
    resume: bool
    restart: bool
    reset: bool
    stop: bool = False


def actions(training: Training | None, ready: bool) -> Actions:
    """What a session can do: start a new run when its choice is ``ready`` and no job is
    training, resume or restart the run it has, stop a job that was not asked to stop yet,
    and reset when it has a run."""
    if training is None:
        return Actions(start=ready, resume=False, restart=False, reset=False)
    return Actions(
        start=ready and not training.active,
        resume=training.can_resume(),
        restart=training.can_restart(),
        reset=True,
        stop=training.phase() not in ("idle", "stopping"),
    )


# ---------------------------------------------------------------------------------------------
# Predict, then reveal (the lesson's ``predict:`` questions): about the chosen model and
# settings, before any training
# ---------------------------------------------------------------------------------------------

PARTS = {
    "embeddings": N_("the embedding tables"),
    "attention": N_("the attention layers"),
    "mlp": N_("the MLPs"),
    "layer_norms": N_("the LayerNorms"),
    "head": N_("the masked-LM head"),  # BERT only: GPT scores tokens with its token table
}


def _part_of(name: str) -> str:
    pieces = name.split(".")
    if pieces[0] in ("wte", "wpe", "wse"):
        return "embeddings"
    if any(piece.startswith("ln") for piece in pieces):
        return "layer_norms"
    if "attn" in pieces:
        return "attention"
    if "mlp" in pieces:
        return "mlp"
    return "head"


def parameter_parts(config: TransformerConfig) -> dict[str, int]:
    """Parameters of a model built from ``config``, by part (keys of ``PARTS``, every part the
    model has). The model is built on PyTorch's meta device: shapes only, no memory, no time."""
    with torch.device("meta"):
        model = build_model(config)
    parts = dict.fromkeys(PARTS, 0)
    for name, parameter in model.named_parameters():
        parts[_part_of(name)] += parameter.numel()
    return {part: n for part, n in parts.items() if n or part != "head"}


def _size_values(config: TransformerConfig) -> dict[str, object]:
    return {
        "layers": config.n_layer,
        "width": config.n_embd,
        "context": config.block_size,
        "vocab": config.vocab_size,
    }


def predict_largest_part(choice: Choice) -> Prediction:
    """Which part of the chosen model holds the most parameters."""
    config = choice.config
    labels = {p: label for p, label in PARTS.items() if p != "head" or config.family == "bert"}

    def reveal() -> Reveal:
        parts = parameter_parts(config)
        largest = max(parts, key=parts.get)
        total = sum(parts.values())
        values = {"share": f"{parts[largest] / total:.0%}", "total": total}
        data = {"parts": {labels[p]: n for p, n in parts.items()}}
        return Reveal(labels[largest], values, data)

    return Prediction(_size_values(config), reveal, tuple(labels.values()))


def predict_step_zero_loss(choice: Choice) -> Prediction:
    """The loss an untrained model starts from: about that of an even guess, ln V."""
    vocab = choice.config.vocab_size

    def reveal() -> Reveal:
        loss = even_guess_loss(vocab)
        return Reveal(loss, {"vocab": vocab, "loss": f"{loss:.3f}"})

    values = {"family": choice.spec.family.upper(), "vocab": vocab}
    return Prediction(values, reveal, bounds=(0.0, 100.0))


def predict_scored_per_step(choice: Choice) -> Prediction:
    """How many next-token predictions one training step of a GPT averages its loss over."""
    if choice.spec.family != "gpt":
        raise ValueError(
            "a BERT step scores only its masked positions, a different number each time"
        )
    batch, context = choice.spec.settings.batch_size, choice.config.block_size

    def reveal() -> Reveal:
        return Reveal(batch * context, {"batch": batch, "context": context})

    return Prediction({"batch": batch, "context": context}, reveal, bounds=(0, 10_000_000))


def predict_doubled_width(choice: Choice) -> Prediction:
    """How many times as many parameters the chosen model would have at twice its width."""
    config = choice.config
    wider = dataclasses.replace(config, n_embd=2 * config.n_embd)

    def reveal() -> Reveal:
        now, doubled = parameter_parts(config), parameter_parts(wider)
        values = {
            "now": sum(now.values()),
            "doubled": sum(doubled.values()),
            "embeddings_now": now["embeddings"],
            "embeddings_doubled": doubled["embeddings"],
        }
        return Reveal(sum(doubled.values()) / sum(now.values()), values)

    values = {**_size_values(config), "doubled_width": wider.n_embd}
    return Prediction(values, reveal, bounds=(0.0, 10.0))
