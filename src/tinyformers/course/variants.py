"""Architecture variants, trained side by side: how a GPT is told where each token stands
(learned, sinusoidal, rotary or no positions) and where LayerNorm sits (pre-LN or post-LN), with
and without a learning-rate warm-up.

    stories text ──► characters ──► one task ──► each variant: same seed, same batches
                                                    │
                     loss curves ◄── RunUpdate ◄────┤
                                                    ▼
          loss at each position of windows longer than the training context (extrapolation)

``run_variants`` is the background job: it trains every variant in turn, reports each logged step
and ends with an ``ExtrapolationResult`` per variant. ``longer_model`` copies a trained model
into one with a longer context; learned positions have no vector for a position they never had,
so for them it refuses with a message, which is what the lesson measures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from tinyformers.i18n import _, ngettext, translate, translate_plural
from tinyformers.model.build import build_model, count_parameters
from tinyformers.model.config import GPTConfig
from tinyformers.model.positional import rotary_angles
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.corpora.stories import generate_corpus
from tinyformers.text.tokenizers import train_char
from tinyformers.training.experiments import RunUpdate, histories_by_variant
from tinyformers.training.loop import CausalLMTask, Progress, TrainSettings, train

Report = Callable[[object], bool]

CONTEXT = 32  # characters of context every variant trains with
LONGEST = 4 * CONTEXT  # the longest windows the extrapolation test reads
N_STORIES = 600  # stories of the generated corpus (about fifty thousand characters)
STEPS, MIN_STEPS, MAX_STEPS = 300, 50, 600
LEARNING_RATES = (0.003, 0.01, 0.03)
LEARNING_RATE = 0.01
WARMUP_STEPS = 30
EVAL_WINDOWS = 24  # validation windows of LONGEST + 1 characters the extrapolation reads
SIZE = dict(n_layer=4, n_head=2, n_embd=48)

# Position schemes (pre-LN, with warm-up) and LayerNorm placements (learned positions).
LEARNED, SINUSOIDAL, ROTARY, NO_POSITIONS = "learned", "sinusoidal", "rotary", "none"
PRE_WARM, PRE_COLD = "pre-LN, warm-up", "pre-LN, no warm-up"
POST_WARM, POST_COLD = "post-LN, warm-up", "post-LN, no warm-up"


@dataclass(frozen=True)
class Variant:
    label: str
    position: str
    ln_placement: str
    warmup: bool
    group: str  # "positions" or "layernorm"


VARIANTS = (
    Variant(LEARNED, "learned", "pre", True, "positions"),
    Variant(SINUSOIDAL, "sinusoidal", "pre", True, "positions"),
    Variant(ROTARY, "rotary", "pre", True, "positions"),
    Variant(NO_POSITIONS, "none", "pre", True, "positions"),
    Variant(PRE_COLD, "learned", "pre", False, "layernorm"),
    Variant(POST_WARM, "learned", "post", True, "layernorm"),
    Variant(POST_COLD, "learned", "post", False, "layernorm"),
)
# The pre-LN, warm-up run of the LayerNorm comparison is the learned-positions run.
LAYERNORM_RUNS = {PRE_WARM: LEARNED, PRE_COLD: PRE_COLD, POST_WARM: POST_WARM, POST_COLD: POST_COLD}


def variant(label: str) -> Variant:
    for v in VARIANTS:
        if v.label == label:
            return v
    raise ValueError(f"there is no variant called {label!r}")


def config_of(v: Variant, vocab_size: int, block_size: int = CONTEXT) -> GPTConfig:
    return GPTConfig(
        vocab_size=vocab_size,
        block_size=block_size,
        position=v.position,
        ln_placement=v.ln_placement,
        **SIZE,
    )


def check_settings(steps: int, learning_rate: float) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or not MIN_STEPS <= steps <= MAX_STEPS:
        raise ValueError(
            f"steps must be a whole number from {MIN_STEPS} to {MAX_STEPS}, got {steps!r}"
        )
    if learning_rate not in LEARNING_RATES:
        choices = ", ".join(f"{rate:g}" for rate in LEARNING_RATES)
        raise ValueError(f"the learning rate must be one of {choices}, got {learning_rate!r}")


def stories_task(n_stories: int = N_STORIES, seed: int = 0):
    """The generated stories, read one character at a time: the tokenizer and the task."""
    text = generate_corpus(n_stories, seed=seed)
    tokenizer = train_char(text)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    return tokenizer, CausalLMTask(ids, CONTEXT)


# ---------------------------------------------------------------------------------------------
# Length extrapolation
# ---------------------------------------------------------------------------------------------


REFUSAL = (
    "learned positions have a vector for each of the {trained} positions they were trained with "
    "and none for position {trained} or later, so this model cannot read {wanted}"
)


def refusal_message(trained: int, wanted: int, language: str | None = None) -> str:
    """Why a learned position table cannot read ``wanted`` positions after training on
    ``trained``, in ``language`` (by default the current one)."""
    if language is None:
        template = _(
            "learned positions have a vector for each of the {trained} positions they were "
            "trained with and none for position {trained} or later, so this model cannot read "
            "{wanted}"
        )
        tokens = ngettext("{n} token", "{n} tokens", wanted)
    else:
        template = translate(REFUSAL, language)
        tokens = translate_plural("{n} token", "{n} tokens", wanted, language)
    return template.format(trained=trained, wanted=tokens)


def longer_model(model: nn.Module, block_size: int) -> nn.Module:
    """The same weights in a model that reads ``block_size`` positions. Sinusoidal and rotary
    positions are computed for any position and no positions need none; a learned table has a
    vector only for the positions it was trained with, so it is refused past them."""
    config = model.config
    if block_size > config.block_size and config.position == "learned":
        raise ValueError(refusal_message(config.block_size, block_size))
    longer = build_model(replace(config, block_size=block_size))
    longer.load_state_dict(model.state_dict())
    return longer.eval()


def validation_windows(task: CausalLMTask, length: int = LONGEST, n: int = EVAL_WINDOWS):
    """``n`` windows of ``length + 1`` consecutive validation ids, evenly spread (fewer when the
    split is short): inputs and next-token targets, each (n, length)."""
    ids = task.val_ids
    if len(ids) < length + 1:
        raise ValueError(f"the validation text has {len(ids)} tokens; {length + 1} are needed")
    starts = torch.linspace(0, len(ids) - length - 1, min(n, len(ids) - length)).long()
    windows = torch.stack([ids[s : s + length + 1] for s in starts.tolist()])
    return windows[:, :-1], windows[:, 1:]


@torch.no_grad()
def loss_by_position(model: nn.Module, inputs, targets) -> list[float]:
    """The mean next-token loss at each position of the windows (position 0 first)."""
    logits = model(inputs).logits
    losses = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (n, T)
    return losses.mean(dim=0).tolist()


@dataclass(frozen=True)
class Extrapolation:
    """One trained variant read on windows of ``LONGEST`` tokens: the loss at every position it
    could read, or why it could not read past its context."""

    label: str
    losses: list[float]  # at positions 0 .. LONGEST - 1, or only the first CONTEXT
    refusal: str | None = None

    @property
    def inside(self) -> float:
        """Mean loss over the positions it was trained on."""
        return sum(self.losses[:CONTEXT]) / CONTEXT

    @property
    def beyond(self) -> float | None:
        """Mean loss over the positions past its training context (None if refused)."""
        past = self.losses[CONTEXT:]
        return sum(past) / len(past) if past else None


def extrapolate(label: str, model: nn.Module, task: CausalLMTask) -> Extrapolation:
    inputs, targets = validation_windows(task)
    try:
        longer = longer_model(model, LONGEST)
    except ValueError as error:
        inside = loss_by_position(model.eval(), inputs[:, :CONTEXT], targets[:, :CONTEXT])
        return Extrapolation(label, inside, str(error))
    return Extrapolation(label, loss_by_position(longer, inputs, targets))


# ---------------------------------------------------------------------------------------------
# The background job
# ---------------------------------------------------------------------------------------------


@dataclass
class VariantsResult:
    parameters: dict[str, int]
    histories: dict[str, list[Progress]]
    extrapolations: dict[str, Extrapolation]  # the position variants only
    stopped: bool


def train_settings(v: Variant, steps: int, learning_rate: float, seed: int) -> TrainSettings:
    return TrainSettings(
        max_steps=steps,
        batch_size=16,
        learning_rate=learning_rate,
        warmup_steps=min(WARMUP_STEPS, steps // 2) if v.warmup else 0,
        eval_interval=max(10, steps // 5),
        seed=seed,
        explode_factor=1e9,  # a variant may train badly: that is what is measured
    )


def train_variant(
    v: Variant, vocab_size: int, task: CausalLMTask, settings: TrainSettings, callback=None
):
    """A new model of variant ``v`` (seeded by ``settings.seed``) trained on ``task``: the
    model and its training state."""
    torch.manual_seed(settings.seed)
    model = build_model(config_of(v, vocab_size))
    state = train(model, task, settings, callback=callback, log_interval=10)
    return model.eval(), state


def run_variants(
    steps: int = STEPS,
    learning_rate: float = LEARNING_RATE,
    seed: int = 0,
    report: Report | None = None,
    n_stories: int = N_STORIES,
) -> VariantsResult:
    """Train every variant for ``steps`` on the stories, from the same seed and batches, report
    every tenth step, then read each position variant on windows longer than its context."""
    check_settings(steps, learning_rate)
    tokenizer, task = stories_task(n_stories)
    result = VariantsResult({}, {}, {}, stopped=False)
    for v in VARIANTS:
        keep_going = True

        def callback(progress: Progress, label: str = v.label) -> bool:
            nonlocal keep_going
            keep_going = report is None or report(RunUpdate(label, progress)) is not False
            return keep_going

        settings = train_settings(v, steps, learning_rate, seed)
        model, state = train_variant(v, tokenizer.vocab_size, task, settings, callback)
        result.parameters[v.label] = count_parameters(model)
        result.histories[v.label] = state.history
        if v.group == "positions":
            result.extrapolations[v.label] = extrapolate(v.label, model, task)
        if not keep_going:
            result.stopped = True
            break
    return result


def live_histories(updates: list[object]) -> dict[str, list[Progress]]:
    """The loss curves so far, from a running job's updates."""
    return histories_by_variant(updates)


# ---------------------------------------------------------------------------------------------
# Predict, then reveal
# ---------------------------------------------------------------------------------------------


def _model(label: str, vocab_size: int) -> nn.Module:
    torch.manual_seed(0)
    return build_model(config_of(variant(label), vocab_size)).eval()


def predict_refused(vocab_size: int) -> Prediction:
    """Which position scheme cannot read a window twice its training context."""
    labels = tuple(v.label for v in VARIANTS if v.group == "positions")

    def reveal() -> Reveal:
        refused = []
        for label in labels:
            try:
                longer_model(_model(label, vocab_size), 2 * CONTEXT)
            except ValueError as error:
                refused.append((label, str(error)))
        (answer, message), *_ = refused
        return Reveal(answer, {"message": message})

    return Prediction({"context": CONTEXT, "longer": 2 * CONTEXT}, reveal, labels)


def predict_position_parameters(vocab_size: int) -> Prediction:
    """How many more parameters the learned-positions variant has than the rotary one."""

    def reveal() -> Reveal:
        learned = count_parameters(_model(LEARNED, vocab_size))
        rotary = count_parameters(_model(ROTARY, vocab_size))
        values = {"learned": f"{learned:,}", "rotary": f"{rotary:,}"}
        return Reveal(learned - rotary, values)

    values = {"context": CONTEXT, "width": SIZE["n_embd"], "layers": SIZE["n_layer"]}
    return Prediction(values, reveal, bounds=(0, 1_000_000))


def predict_rotary_frequencies() -> Prediction:
    """How many rotation frequencies each rotary head uses: one per pair of its dimensions."""
    head_size = SIZE["n_embd"] // SIZE["n_head"]

    def reveal() -> Reveal:
        cos, _ = rotary_angles(CONTEXT, head_size)
        return Reveal(cos.shape[-1], {"head_size": head_size})

    return Prediction({"head_size": head_size}, reveal, bounds=(0, 1000))


def stories_vocab_size(n_stories: int = N_STORIES) -> int:
    """The number of characters the experiment's tokenizer knows."""
    return stories_task(n_stories)[0].vocab_size


def parameter_counts(vocab_size: int) -> dict[str, tuple[int, int]]:
    """For each position scheme: the parameters that hold positions, and all parameters."""
    counts = {}
    for v in VARIANTS:
        if v.group == "positions":
            model = _model(v.label, vocab_size)
            table = model.wpe if isinstance(model.wpe, nn.Embedding) else None
            held = 0 if table is None else table.weight.numel()
            counts[v.label] = (held, count_parameters(model))
    return counts
