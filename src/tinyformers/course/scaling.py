"""Scaling laws in miniature: a ladder of tiny GPTs trained on the same text for the same number
of steps, and a power law fitted to their validation losses.

Kaplan et al. (2020) found that the test loss of a language model falls as a power law in its
size, ``L(N) = a · N^(−α)``, when data and training time do not hold it back. They count ``N``
as the *non-embedding* parameters (without the token and position embedding tables) and estimate
the training compute as ``C ≈ 6 · N · D`` floating-point operations for ``D`` training tokens:
about 2 per parameter and token for the forward pass and 4 for the backward pass.

- ``LADDER`` and ``ladder_configs``: the model sizes, from a few thousand parameters upwards.
- ``non_embedding_parameters``: Kaplan's ``N``, counted from a config (biases and LayerNorms
  included); ``embedding_parameters`` is the rest, and ``all_parameters`` the sum, which is
  what Chinchilla's tokens-per-parameter ratio divides by.
- ``run_sweep``: train the first ``n_models`` rungs of the ladder character by character on one
  text, reporting every logged step, and return one ``SweepPoint`` per finished model.
- ``fit_power_law``: least squares on (ln x, ln y), with standard errors and R².
- ``plan_sweep``, ``sweep_progress``, ``live_curves`` and ``frontier_labels``: a sweep before it
  trains (sizes, budget, compute), while it trains, and the models on the compute frontier.

The cost of attention against sequence length, measured on this machine:

What self-attention costs as the sequence grows, measured on this machine.

One attention layer scores every query against every key: for n tokens of width C that is an
n × n matrix per head, about 2 · n² · C multiply-adds for the scores and the weighted sum, on top
of the 4 · n · C² of the four projections. The MLP handles each token on its own: 2 · n · C · F
multiply-adds for a hidden width F, linear in n. So attention's share grows with n.

``measure_cost`` times, for growing n, the forward pass (and optionally forward + backward) of

- our ``MultiHeadAttention`` with ``need_weights=True``, which materialises the n × n weights;
- the same layer through PyTorch's fused kernel (``need_weights=False``), which does not;
- the model's ``MLP``;

and measures the peak memory PyTorch allocates during each forward pass with its profiler.
``score_matrix_bytes`` gives the size of one (batch, heads, n, n) float32 matrix, exactly.

The lesson's prediction questions (``predict_*``, at the end) ask about the planned sweep and
the attention settings before anything trains or is timed.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from tinyformers.i18n import N_
from tinyformers.model.attention import MultiHeadAttention
from tinyformers.model.blocks import MLP
from tinyformers.model.build import build_model, count_parameters
from tinyformers.model.config import GPTConfig
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.corpora import lesson_corpus
from tinyformers.text.tokenizers import train_char
from tinyformers.training.experiments import RunUpdate, train_variants
from tinyformers.training.loop import CausalLMTask, Progress, TrainSettings
from tinyformers.training.zoo import char_text

Report = Callable[[object], bool]

HEAD_SIZE = 16  # every model's heads are 16 wide, so wider models get more heads
# (n_layer, n_embd) from small to large: most rungs have about twice the non-embedding
# parameters of the one before.
LADDER: tuple[tuple[int, int], ...] = (
    (1, 16),
    (1, 32),
    (2, 32),
    (2, 48),
    (3, 48),
    (3, 64),
    (4, 80),
    (5, 96),
)
MIN_MODELS, MAX_MODELS = 3, len(LADDER)
MIN_STEPS, MAX_STEPS = 10, 5_000
BLOCK_SIZE = 64  # characters of context
BATCH_SIZE = 16
LEARNING_RATE = 3e-3
FLOPS_PER_PARAMETER_PER_TOKEN = 6  # forward pass 2, backward pass 4 (Kaplan et al.)
CHINCHILLA_TOKENS_PER_PARAMETER = 20  # compute-optimal ratio found by Hoffmann et al. (2022)


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


def _check_whole(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")


@dataclass(frozen=True)
class SweepSettings:
    """How many rungs of the ladder to train, and the budget every model gets."""

    n_models: int = 5
    steps: int = 300
    seed: int = 0
    batch_size: int = BATCH_SIZE
    block_size: int = BLOCK_SIZE
    learning_rate: float = LEARNING_RATE
    evaluations: int = 4  # passes over the whole validation split per model, the last at the end

    def __post_init__(self) -> None:
        _check_whole("the number of models", self.n_models, MIN_MODELS, MAX_MODELS)
        _check_whole("steps", self.steps, MIN_STEPS, MAX_STEPS)
        _check_whole("the seed", self.seed, 0, 2**31 - 1)
        _check_whole("the batch size", self.batch_size, 1, 256)
        _check_whole("the context length", self.block_size, 8, 256)
        _check_whole("the number of evaluations", self.evaluations, 1, 20)
        rate = self.learning_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            raise ValueError(f"the learning rate must be in (0, 1], got {rate!r}")

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.block_size

    @property
    def tokens(self) -> int:
        """D: the training tokens every model sees (the same for all of them)."""
        return self.steps * self.tokens_per_step

    def train_settings(self) -> TrainSettings:
        return TrainSettings(
            max_steps=self.steps,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            warmup_steps=min(20, self.steps // 5),
            eval_interval=math.ceil(self.steps / self.evaluations),
            seed=self.seed,
        )


# ---------------------------------------------------------------------------------------------
# The ladder and how its models are counted
# ---------------------------------------------------------------------------------------------


def ladder_configs(
    vocab_size: int, n_models: int = MAX_MODELS, block_size: int = BLOCK_SIZE
) -> list[GPTConfig]:
    """The first ``n_models`` rungs of ``LADDER`` as GPT configs, smallest first."""
    _check_whole("the number of models", n_models, 1, MAX_MODELS)
    return [
        GPTConfig(
            vocab_size=vocab_size,
            block_size=block_size,
            n_layer=n_layer,
            n_head=n_embd // HEAD_SIZE,
            n_embd=n_embd,
        )
        for n_layer, n_embd in LADDER[:n_models]
    ]


def model_label(config: GPTConfig) -> str:
    layers = "layer" if config.n_layer == 1 else "layers"
    return f"{config.n_layer} {layers} × {config.n_embd} wide"


def _check_gpt(config: GPTConfig) -> None:
    if not isinstance(config, GPTConfig):
        raise ValueError(f"parameters are counted for GPT configs, got {type(config).__name__}")


def embedding_parameters(config: GPTConfig) -> int:
    """The token table (shared with the output layer) plus a learned position table."""
    _check_gpt(config)
    positions = config.block_size * config.n_embd if config.position == "learned" else 0
    return config.vocab_size * config.n_embd + positions


def non_embedding_parameters(config: GPTConfig) -> int:
    """Kaplan's N: every parameter of the blocks and the final LayerNorm, biases included."""
    _check_gpt(config)
    c, inner = config.n_embd, config.mlp_width
    layer_norm = 2 * c if config.layer_norm else 0  # gain and shift
    attention = 4 * (c * c + c)  # W_Q, W_K, W_V, W_O and their biases
    mlp = (c * inner + inner) + (inner * c + c)  # widen, then project back
    per_layer = 2 * layer_norm + attention + mlp
    return config.n_layer * per_layer + layer_norm  # + ln_f after the last block


def all_parameters(config: GPTConfig) -> int:
    """Every parameter, the embedding tables included: what Hoffmann et al. counted."""
    return non_embedding_parameters(config) + embedding_parameters(config)


def ladder_orders_of_magnitude() -> float:
    """How many powers of ten the ladder's non-embedding sizes span, smallest to largest rung
    (N does not depend on the vocabulary, so any vocabulary gives the same answer)."""
    sizes = [non_embedding_parameters(c) for c in ladder_configs(vocab_size=1)]
    return math.log10(max(sizes) / min(sizes))


def sweep_values() -> dict[str, object]:
    """The numbers the lesson's "a sweep you can run" section quotes about the ladder."""
    return {"smallest_width": LADDER[0][1]}


def limits_values() -> dict[str, object]:
    """The numbers the lesson's "what a toy sweep can show" section quotes."""
    return {"ladder_orders": f"{ladder_orders_of_magnitude():.1f}"}


def kaplan_approximation(config: GPTConfig) -> int:
    """12 · n_layer · n_embd², Kaplan's shorthand for N (no biases or LayerNorms, MLP 4× wide)."""
    _check_gpt(config)
    return 12 * config.n_layer * config.n_embd**2


def training_flops(n_parameters: int, tokens: int) -> float:
    """C ≈ 6 · N · D floating-point operations to train N parameters on D tokens."""
    return float(FLOPS_PER_PARAMETER_PER_TOKEN) * n_parameters * tokens


# ---------------------------------------------------------------------------------------------
# Fitting a power law
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerLawFit:
    """y = prefactor · x^exponent, fitted by least squares on (ln x, ln y).

    The standard errors are those of ordinary least squares for the slope and the intercept of
    that straight line (n − 2 degrees of freedom, so they need three points or more); the
    prefactor's follows from the intercept's by the delta method. A scaling law is usually
    written L = a · N^(−α): ``alpha`` is minus the exponent.
    """

    exponent: float
    prefactor: float
    exponent_se: float
    prefactor_se: float
    r_squared: float
    n_points: int

    @property
    def alpha(self) -> float:
        return -self.exponent

    def predict(self, x: float) -> float:
        return self.prefactor * x**self.exponent


def _positive_values(name: str, values: Sequence[float]) -> list[float]:
    result = [float(v) for v in values]
    if not all(math.isfinite(v) and v > 0 for v in result):
        raise ValueError(f"a power law needs positive, finite {name}, got {list(values)!r}")
    return result


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> PowerLawFit:
    """Fit y = a · x^b by ordinary least squares on ln y = ln a + b · ln x."""
    if len(x) != len(y):
        raise ValueError(f"need as many x as y values, got {len(x)} and {len(y)}")
    if len(x) < 2:
        raise ValueError(f"a power law needs at least 2 points, got {len(x)}")
    u = [math.log(v) for v in _positive_values("x values", x)]
    v = [math.log(w) for w in _positive_values("y values", y)]
    n = len(u)
    u_mean, v_mean = sum(u) / n, sum(v) / n
    s_uu = sum((a - u_mean) ** 2 for a in u)
    if s_uu == 0:
        raise ValueError("every x value is the same: there is no slope to fit")
    s_uv = sum((a - u_mean) * (b - v_mean) for a, b in zip(u, v, strict=True))
    slope = s_uv / s_uu
    intercept = v_mean - slope * u_mean
    residual = sum((b - intercept - slope * a) ** 2 for a, b in zip(u, v, strict=True))
    total = sum((b - v_mean) ** 2 for b in v)
    r_squared = 1.0 - residual / total if total > 0 else 1.0
    if n > 2:
        variance = residual / (n - 2)
        slope_se = math.sqrt(variance / s_uu)
        intercept_se = math.sqrt(variance * (1 / n + u_mean**2 / s_uu))
    else:
        slope_se = intercept_se = math.nan
    prefactor = math.exp(intercept)
    return PowerLawFit(slope, prefactor, slope_se, prefactor * intercept_se, r_squared, n)


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepPoint:
    """One trained model of the sweep: its size, its budget and its final validation loss."""

    label: str
    config: GPTConfig
    non_embedding_parameters: int
    parameters: int  # everything, the embedding table counted once
    tokens: int  # D
    tokens_per_step: int
    val_loss: float  # mean over the whole validation split, after the last step
    history: tuple[Progress, ...]
    seconds: float

    @property
    def flops(self) -> float:
        return training_flops(self.non_embedding_parameters, self.tokens)

    @property
    def tokens_per_parameter(self) -> float:
        """Chinchilla's D / N: training tokens over *all* parameters, embeddings included."""
        return self.tokens / self.parameters

    def curve(self) -> tuple[list[float], list[float]]:
        """Compute spent so far (6 · N · tokens seen) and validation loss, at every evaluation."""
        evaluated = [p for p in self.history if p.val_loss is not None]
        flops = [
            training_flops(self.non_embedding_parameters, p.step * self.tokens_per_step)
            for p in evaluated
        ]
        return flops, [p.val_loss for p in evaluated]


@dataclass(frozen=True)
class SweepResult:
    settings: SweepSettings
    source: str
    vocab_size: int
    train_tokens: int
    val_tokens: int
    points: tuple[SweepPoint, ...]  # only the models that finished their budget
    failed: tuple[str, ...]  # "label: reason" for models whose training diverged
    stopped: bool  # True if a stop was asked for before every model finished

    def fit(self) -> PowerLawFit:
        """L = a · N^(−α) over the finished models (N: non-embedding parameters)."""
        return fit_power_law(
            [p.non_embedding_parameters for p in self.points], [p.val_loss for p in self.points]
        )


def compute_frontier(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (compute, loss) points that no point of less or equal compute beats: the lowest loss
    reached so far by any model, as compute grows."""
    frontier: list[tuple[float, float]] = []
    for flops, loss in sorted(points, key=lambda p: (p[0], p[1])):
        if not frontier or loss < frontier[-1][1]:
            frontier.append((flops, loss))
    return frontier


def char_task(text: str, block_size: int) -> tuple[int, CausalLMTask]:
    """Vocabulary size and next-character task for ``text`` (clear ValueError if too short)."""
    if not text or not text.strip():
        raise ValueError("the training text is empty")
    tokenizer = train_char(text)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    return tokenizer.vocab_size, CausalLMTask(ids, block_size)


def _finished(history: list[Progress], steps: int, stop_reason: str | None) -> bool:
    last = history[-1] if history else None
    return last is not None and last.step == steps and last.val_loss is not None and not stop_reason


def run_sweep(
    text: str, settings: SweepSettings, source: str = "", report: Report | None = None
) -> SweepResult:
    """Train the first ``settings.n_models`` rungs of the ladder on ``text``, character by
    character: same seed, same batches, same number of steps. ``report`` receives a
    ``RunUpdate(label, progress)`` at every logged step and may return False to stop."""
    vocab_size, task = char_task(text, settings.block_size)
    configs = ladder_configs(vocab_size, settings.n_models, settings.block_size)
    variants = {model_label(config): config for config in configs}
    _, results, stopped = train_variants(variants, task, settings.train_settings(), report)
    points, failed = [], []
    for result in results:
        if _finished(result.history, settings.steps, result.stop_reason):
            points.append(
                SweepPoint(
                    label=result.label,
                    config=result.config,
                    non_embedding_parameters=non_embedding_parameters(result.config),
                    parameters=result.n_parameters,
                    tokens=settings.tokens,
                    tokens_per_step=settings.tokens_per_step,
                    val_loss=result.final_val_loss,
                    history=tuple(result.history),
                    seconds=result.history[-1].elapsed_s,
                )
            )
        elif result.stop_reason and result.stop_reason != "stopped":
            failed.append(f"{result.label}: {result.stop_reason}")
    return SweepResult(
        settings=settings,
        source=source,
        vocab_size=vocab_size,
        train_tokens=len(task.train_ids),
        val_tokens=len(task.val_ids),
        points=tuple(points),
        failed=tuple(failed),
        stopped=stopped,
    )


# ---------------------------------------------------------------------------------------------
# The sweep on the page: its text, its plan, its progress and its frontier
# ---------------------------------------------------------------------------------------------

SOURCES = {"stories": N_("Generated stories"), "lessons": N_("The lessons' text")}


def training_text(source: str) -> str:
    """The text a sweep trains on: the generated stories or the lessons' own Markdown."""
    if source not in SOURCES:
        raise ValueError(f"the training text must be one of {', '.join(SOURCES)}; got {source!r}")
    return char_text() if source == "stories" else lesson_corpus()


def text_sizes(text: str, block_size: int) -> tuple[int, int, int]:
    """Vocabulary size, training and validation characters of ``text``."""
    vocab_size, task = char_task(text, block_size)
    return vocab_size, len(task.train_ids), len(task.val_ids)


@dataclass(frozen=True)
class SweepPlan:
    """A sweep before it trains: its text (a key of ``SOURCES``) and that text's sizes, its
    settings, and the rungs of the ladder it will train, smallest first."""

    source: str
    settings: SweepSettings
    vocab_size: int
    train_chars: int
    val_chars: int
    configs: tuple[GPTConfig, ...]

    @property
    def key(self) -> tuple[str, SweepSettings]:
        """What a finished sweep is kept under: the same text and settings train the same."""
        return self.source, self.settings

    @property
    def source_name(self) -> str:
        return SOURCES[self.source]

    @property
    def labels(self) -> list[str]:
        return [model_label(c) for c in self.configs]

    @property
    def parameters(self) -> dict[str, int]:
        """Kaplan's N of every model, by label."""
        return {model_label(c): non_embedding_parameters(c) for c in self.configs}

    def largest_parameters(self) -> int:
        """All parameters (embedding tables included) of the largest model."""
        return max(all_parameters(c) for c in self.configs)

    def flops(self) -> float:
        """C ≈ 6 · N · D summed over every model: the compute of the whole sweep."""
        return sum(training_flops(n, self.settings.tokens) for n in self.parameters.values())

    def tokens_per_parameter(self) -> dict[str, float]:
        """Chinchilla's ratio for every model, by label, smallest first: D over all parameters
        (embeddings included, as Hoffmann et al. counted them), not over Kaplan's N."""
        return {model_label(c): self.settings.tokens / all_parameters(c) for c in self.configs}


def plan_sweep(source: str, settings: SweepSettings, sizes: tuple[int, int, int]) -> SweepPlan:
    """The plan for ``settings`` on a text of ``sizes`` (from ``text_sizes``)."""
    if source not in SOURCES:
        raise ValueError(f"the training text must be one of {', '.join(SOURCES)}; got {source!r}")
    vocab_size, train_chars, val_chars = sizes
    configs = ladder_configs(vocab_size, settings.n_models, settings.block_size)
    return SweepPlan(source, settings, vocab_size, train_chars, val_chars, tuple(configs))


def undertrained(ratios: dict[str, float]) -> list[str]:
    """The labels whose D / N is below the Chinchilla ratio of tokens per parameter."""
    return [label for label, ratio in ratios.items() if ratio < CHINCHILLA_TOKENS_PER_PARAMETER]


@dataclass(frozen=True)
class SweepProgress:
    """Where a running sweep is: the ``model``-th (from 0) of ``n_models``, at ``step``."""

    model: int
    n_models: int
    label: str
    step: int
    steps: int

    @property
    def fraction(self) -> float:
        """The share of the whole sweep done, at most 1."""
        return min((self.model + self.step / self.steps) / self.n_models, 1.0)


def sweep_progress(updates: Sequence[object], plan: SweepPlan) -> SweepProgress | None:
    """The progress told by the last ``RunUpdate`` of a sweep job, or None before the first."""
    runs = [u for u in updates if isinstance(u, RunUpdate)]
    if not runs:
        return None
    last, labels = runs[-1], plan.labels
    return SweepProgress(
        labels.index(last.label), len(labels), last.label, last.progress.step, plan.settings.steps
    )


def live_curves(
    updates: Sequence[object], plan: SweepPlan
) -> dict[str, tuple[list[float], list[float]]]:
    """Compute spent (6 · N · tokens seen) and validation loss at every evaluation reported so
    far, by model label."""
    parameters, tokens_per_step = plan.parameters, plan.settings.tokens_per_step
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for update in updates:
        if isinstance(update, RunUpdate) and update.progress.val_loss is not None:
            flops, losses = curves.setdefault(update.label, ([], []))
            tokens = update.progress.step * tokens_per_step
            flops.append(training_flops(parameters[update.label], tokens))
            losses.append(update.progress.val_loss)
    return curves


def frontier_labels(curves: dict[str, tuple[list[float], list[float]]]) -> list[str]:
    """The models whose curves reach the compute frontier, in the frontier's order."""
    everything = [
        (flops, loss, label)
        for label, (flops_list, losses) in curves.items()
        for flops, loss in zip(flops_list, losses, strict=True)
    ]
    frontier = set(compute_frontier([(flops, loss) for flops, loss, _ in everything]))
    labels: list[str] = []
    for flops, loss, label in everything:
        if (flops, loss) in frontier and label not in labels:
            labels.append(label)
    return labels


# --- the cost of attention against sequence length ----------------------------------------

MIN_LENGTH, MAX_LENGTH = 8, 2048
MIN_WIDTH, MAX_WIDTH = 16, 512
MAX_HEADS = 16
MAX_REPEATS = 25
FLOAT32_BYTES = 4
KINDS = ("attention", "fused", "mlp")  # what is timed at every length


# ---------------------------------------------------------------------------------------------
# Settings and what can be computed without measuring
# ---------------------------------------------------------------------------------------------


def _check_whole(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")


def sequence_lengths(min_length: int, max_length: int) -> list[int]:
    """Powers of two and 1.5 × powers of two from ``min_length`` to ``max_length``, both ends
    included: even steps on a log axis."""
    _check_whole("the shortest sequence length", min_length, MIN_LENGTH, MAX_LENGTH)
    _check_whole("the longest sequence length", max_length, MIN_LENGTH, MAX_LENGTH)
    if max_length < min_length:
        raise ValueError(
            f"the longest sequence length ({max_length}) is shorter than the shortest "
            f"({min_length})"
        )
    candidates = {min_length, max_length}
    power = 1
    while power <= max_length:
        candidates.update({power, power * 3 // 2})
        power *= 2
    return sorted(n for n in candidates if min_length <= n <= max_length)


@dataclass(frozen=True)
class CostSettings:
    max_length: int = 1024
    n_embd: int = 128
    n_head: int = 4
    min_length: int = 32
    repeats: int = 5  # timed runs per measurement; the median is reported
    backward: bool = False  # also time forward + backward
    memory: bool = True  # also measure peak memory with the profiler

    def __post_init__(self) -> None:
        _check_whole("the width", self.n_embd, MIN_WIDTH, MAX_WIDTH)
        _check_whole("the number of heads", self.n_head, 1, MAX_HEADS)
        if self.n_embd % self.n_head:
            raise ValueError(
                f"the width ({self.n_embd}) must be divisible by the number of heads "
                f"({self.n_head})"
            )
        _check_whole("the number of repeats", self.repeats, 1, MAX_REPEATS)
        sequence_lengths(self.min_length, self.max_length)  # validates both lengths
        if len(self.lengths) < 3:
            raise ValueError(
                f"measure at least 3 lengths to fit a slope; {self.min_length} to "
                f"{self.max_length} gives {len(self.lengths)}"
            )

    @property
    def lengths(self) -> list[int]:
        return sequence_lengths(self.min_length, self.max_length)

    @property
    def mlp_width(self) -> int:
        return 4 * self.n_embd


def score_matrix_bytes(
    n: int, n_head: int, batch: int = 1, element_size: int = FLOAT32_BYTES
) -> int:
    """Bytes of one (batch, heads, n, n) matrix: the scores, or the weights, of one layer."""
    return batch * n_head * n * n * element_size


def mlp_hidden_bytes(
    n: int, mlp_width: int, batch: int = 1, element_size: int = FLOAT32_BYTES
) -> int:
    """Bytes of the MLP's widened (batch, n, hidden) activation: linear in n."""
    return batch * n * mlp_width * element_size


def multiply_adds(n: int, n_embd: int, mlp_width: int) -> dict[str, int]:
    """Multiply-adds of one forward pass over n tokens (weights only; softmax, biases and the
    GELU are left out, they are small)."""
    return {
        N_("attention projections"): 4 * n * n_embd * n_embd,  # W_Q, W_K, W_V, W_O
        N_("attention scores and weighted sum"): 2 * n * n * n_embd,  # Q·Kᵀ, then weights·V
        N_("MLP"): 2 * n * n_embd * mlp_width,  # widen, then project back
    }


def crossover_length(n_embd: int, mlp_width: int) -> float:
    """The n at which attention's multiply-adds equal the MLP's:
    4nC² + 2n²C = 2nCF  ⇔  n = F − 2C (for F = 4C: n = 2C)."""
    return float(mlp_width - 2 * n_embd)


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def median_seconds(
    fn: Callable[[], object], repeats: int, min_total_s: float = 0.05, max_runs: int = 200
) -> float:
    """Median wall time of ``fn()`` after one untimed warm-up run: over ``repeats`` runs, or
    more for quick calls (until ``min_total_s`` seconds or ``max_runs`` runs), because a busy
    machine makes single short timings jumpy."""
    fn()
    times: list[float] = []
    while len(times) < repeats or (sum(times) < min_total_s and len(times) < max_runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _allocation_events(prof) -> list:
    """The allocator's events (size > 0: allocated, < 0: freed) recorded by the profiler for
    the profiled thread, in time order."""
    found, todo = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while todo:
        event = todo.pop()
        todo.extend(event.children)
        if hasattr(event.extra_fields, "alloc_size"):
            found.append(event)
    return sorted(found, key=lambda e: e.start_time_ns)


def peak_allocated_bytes(fn: Callable[[], object]) -> int:
    """Measured: the most memory PyTorch's CPU allocator held at once during ``fn()``, above what
    was held before it started. Read from the profiler's allocation events."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    held = peak = 0
    for event in _allocation_events(prof):
        held += event.extra_fields.alloc_size
        peak = max(peak, held)
    return peak


def _forward_and_backward(module: nn.Module, call: Callable[[torch.Tensor], torch.Tensor], x):
    def run() -> None:
        module.zero_grad(set_to_none=True)
        inputs = x.detach().requires_grad_(True)
        call(inputs).sum().backward()

    return run


@dataclass(frozen=True)
class CostPoint:
    """One sequence length. Times in seconds and peaks in bytes are *measured*; ``score_bytes``
    and ``mlp_bytes`` are *computed* from the shapes."""

    n: int
    seconds: dict[str, float]  # forward, per kind in KINDS
    backward_seconds: dict[str, float] | None  # forward + backward, per kind
    peak_bytes: dict[str, int] | None  # per kind
    score_bytes: int
    mlp_bytes: int

    def attention_share(self, kind: str = "attention") -> float:
        """The attention layer's part of attention + MLP forward time."""
        return self.seconds[kind] / (self.seconds[kind] + self.seconds["mlp"])


@dataclass(frozen=True)
class CostUpdate:
    """Reported after each length is measured."""

    point: CostPoint
    done: int
    total: int


@dataclass(frozen=True)
class CostResult:
    settings: CostSettings
    points: tuple[CostPoint, ...]
    stopped: bool
    threads: int = 1  # torch's intra-op threads during the measurement

    @property
    def lengths(self) -> list[int]:
        return [p.n for p in self.points]

    def fitted_lengths(self) -> list[int]:
        """The longer half of the lengths (at least 3): at short lengths fixed per-call costs,
        not the arithmetic, dominate the time."""
        lengths = self.lengths
        keep = max(3, (len(lengths) + 1) // 2)
        return lengths[-keep:]

    def slope(self, kind: str = "attention", backward: bool = False) -> PowerLawFit:
        """time ≈ a · n^slope fitted over ``fitted_lengths``; the slope is ``.exponent``."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        wanted = set(self.fitted_lengths())
        points = [p for p in self.points if p.n in wanted]
        if len(points) < 3:
            raise ValueError(f"a slope needs 3 measured lengths, got {len(points)}")
        if backward:
            if any(p.backward_seconds is None for p in points):
                raise ValueError("forward + backward was not measured")
            times = [p.backward_seconds[kind] for p in points]
        else:
            times = [p.seconds[kind] for p in points]
        return fit_power_law([p.n for p in points], times)


def build_layers(settings: CostSettings) -> tuple[MultiHeadAttention, MLP]:
    """A freshly initialised attention layer and MLP of the chosen width (seeded)."""
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=1,
        block_size=settings.max_length,
        n_layer=1,
        n_head=settings.n_head,
        n_embd=settings.n_embd,
    )
    attention = MultiHeadAttention(config.n_embd, config.n_head).eval()
    return attention, MLP(config).eval()


def measure_length(
    attention: MultiHeadAttention, mlp: MLP, n: int, settings: CostSettings
) -> CostPoint:
    """Time (and measure the memory of) one attention layer and one MLP on n tokens."""
    x = torch.randn(1, n, settings.n_embd)
    calls = {  # no mask, as in an encoder: every query sees all n keys
        "attention": (attention, lambda h: attention(h, need_weights=True)[0]),
        "fused": (attention, lambda h: attention(h, need_weights=False)[0]),
        "mlp": (mlp, mlp),
    }
    with torch.no_grad():
        seconds = {
            kind: median_seconds(lambda call=call: call(x), settings.repeats)
            for kind, (_, call) in calls.items()
        }
        peaks = None
        if settings.memory:
            peaks = {
                kind: peak_allocated_bytes(lambda call=call: call(x))
                for kind, (_, call) in calls.items()
            }
    backward = None
    if settings.backward:
        backward = {
            kind: median_seconds(_forward_and_backward(module, call, x), settings.repeats)
            for kind, (module, call) in calls.items()
        }
    return CostPoint(
        n=n,
        seconds=seconds,
        backward_seconds=backward,
        peak_bytes=peaks,
        score_bytes=score_matrix_bytes(n, settings.n_head),
        mlp_bytes=mlp_hidden_bytes(n, settings.mlp_width),
    )


def measure_cost(settings: CostSettings, report: Report | None = None) -> CostResult:
    """Measure every length of ``settings.lengths``, shortest first. ``report`` receives a
    ``CostUpdate`` after each length and may return False to stop."""
    attention, mlp = build_layers(settings)
    threads = torch.get_num_threads()
    points: list[CostPoint] = []
    lengths = settings.lengths
    for n in lengths:
        points.append(measure_length(attention, mlp, n, settings))
        update = CostUpdate(points[-1], len(points), len(lengths))
        if report is not None and report(update) is False:
            return CostResult(settings, tuple(points), stopped=True, threads=threads)
    return CostResult(settings, tuple(points), stopped=False, threads=threads)


def half_time_length(result: CostResult) -> int | None:
    """The first measured n at which attention with materialised weights takes at least half of
    the attention + MLP time, or None if it never does."""
    return next((p.n for p in result.points if p.attention_share() >= 0.5), None)


# ---------------------------------------------------------------------------------------------
# Predict, then reveal (the lesson's ``predict:`` questions): about the planned sweep and the
# attention settings, before anything trains or is timed
# ---------------------------------------------------------------------------------------------

MIB = 2**20
COST_PARTS = {  # the keys of ``multiply_adds``, as a question offers them
    "attention projections": N_("the four attention projections"),
    "attention scores and weighted sum": N_("attention's scores and weighted sum"),
    "MLP": N_("the MLP"),
}


def predict_doubled_score_memory(cost_settings: CostSettings) -> Prediction:
    """MiB of one layer's heads × n × n float32 weights at twice the longest sequence."""
    n, heads = cost_settings.max_length, cost_settings.n_head
    now = score_matrix_bytes(n, heads) / MIB

    def reveal() -> Reveal:
        doubled = score_matrix_bytes(2 * n, heads) / MIB
        return Reveal(doubled, {"doubled": f"{doubled:,.2f}", "ratio": f"{doubled / now:g}"})

    values = {"heads": heads, "n": n, "now": f"{now:,.2f}", "doubled_n": 2 * n}
    return Prediction(values, reveal, bounds=(0.0, 1e6))


def predict_largest_cost(cost_settings: CostSettings) -> Prediction:
    """Which part of one layer takes the most multiply-adds at the longest sequence."""
    n, width = cost_settings.max_length, cost_settings.n_embd

    def reveal() -> Reveal:
        counts = multiply_adds(n, width, cost_settings.mlp_width)
        largest = max(counts, key=counts.get)
        values = {
            "projections": f"{counts['attention projections']:.2e}",
            "scores": f"{counts['attention scores and weighted sum']:.2e}",
            "mlp": f"{counts['MLP']:.2e}",
        }
        values["crossover"] = f"{crossover_length(width, cost_settings.mlp_width):.0f}"
        return Reveal(COST_PARTS[largest], values, data={"settings": cost_settings})

    return Prediction({"n": n, "width": width}, reveal, tuple(COST_PARTS.values()))


def _built_counts(config: GPTConfig) -> tuple[int, int]:
    """(embedding-table parameters, all parameters) of the model built from ``config``, on the
    meta device: shapes only, nothing allocated."""
    with torch.device("meta"):
        model = build_model(config)
    tables = sum(
        p.numel() for name, p in model.named_parameters() if name.startswith(("wte", "wpe"))
    )
    return tables, count_parameters(model)


def predict_smallest_embedding_share(plan: SweepPlan) -> Prediction:
    """The share of the smallest model's parameters in its token and position tables."""
    smallest = plan.configs[0]

    def reveal() -> Reveal:
        tables, total = _built_counts(smallest)
        return Reveal(tables / total, {"embedding": tables, "total": total})

    values = {
        "label": model_label(smallest),
        "vocab": smallest.vocab_size,
        "context": smallest.block_size,
    }
    return Prediction(values, reveal, bounds=(0.0, 1.0))


def predict_chinchilla_steps(plan: SweepPlan) -> Prediction:
    """How many training steps would give the sweep's largest model Chinchilla's tokens per
    parameter (all its parameters, counted on the model built from its config)."""
    largest = plan.configs[-1]
    per_step = plan.settings.tokens_per_step

    def reveal() -> Reveal:
        _, parameters = _built_counts(largest)
        tokens = CHINCHILLA_TOKENS_PER_PARAMETER * parameters
        steps = math.ceil(tokens / per_step)
        values = {
            "tokens": tokens,
            "per_step": per_step,
            "steps": plan.settings.steps,
            "times": f"{steps / plan.settings.steps:.1f}",
        }
        return Reveal(steps, values, data={"plan": plan})

    values = {
        "ratio": CHINCHILLA_TOKENS_PER_PARAMETER,
        "label": model_label(largest),
        "parameters": all_parameters(largest),
        "batch": plan.settings.batch_size,
        "context": plan.settings.block_size,
    }
    return Prediction(values, reveal, bounds=(0, 1e9))
