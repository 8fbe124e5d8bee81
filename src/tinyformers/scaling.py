"""Scaling laws in miniature: a ladder of tiny GPTs trained on the same text for the same number
of steps, and a power law fitted to their validation losses.

Kaplan et al. (2020) found that the test loss of a language model falls as a power law in its
size, ``L(N) = a · N^(−α)``, when data and training time do not hold it back. They count ``N``
as the *non-embedding* parameters (without the token and position embedding tables) and estimate
the training compute as ``C ≈ 6 · N · D`` floating-point operations for ``D`` training tokens:
about 2 per parameter and token for the forward pass and 4 for the backward pass.

- ``LADDER`` and ``ladder_configs``: the model sizes, from a few thousand parameters upwards.
- ``non_embedding_parameters``: Kaplan's ``N``, counted from a config (biases and LayerNorms
  included); ``embedding_parameters`` is the rest.
- ``run_sweep``: train the first ``n_models`` rungs of the ladder character by character on one
  text, reporting every logged step, and return one ``SweepPoint`` per finished model.
- ``fit_power_law``: least squares on (ln x, ln y), with standard errors and R².
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from tinyformers.config import GPTConfig
from tinyformers.experiments import train_variants
from tinyformers.tokenize import train_char
from tinyformers.train import CausalLMTask, Progress, TrainSettings

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
        return self.tokens / self.non_embedding_parameters

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
