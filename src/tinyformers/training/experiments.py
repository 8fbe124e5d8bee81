"""Short training experiments the lessons run live: the same data, several model variants.

``train_variants`` trains each variant from the same seed on the same batches and reports every
logged step as a ``RunUpdate``. Two experiments are built on it:

- ``leakage_experiment``: a tiny GPT with and without the causal mask. Without the mask each
  position can read the very token it must predict, so the training loss falls towards 0 while
  the model learns nothing it can use to generate.
- ``ablation_experiment``: a deeper tiny GPT with and without residual connections and LayerNorm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from tinyformers.model.build import build_model, count_parameters
from tinyformers.model.config import GPTConfig, TransformerConfig
from tinyformers.model.sampling import SamplingSettings, generate
from tinyformers.text.tokenizers import Tokenizer, train_char
from tinyformers.training.loop import CausalLMTask, Progress, TrainSettings, evaluate, train

Report = Callable[[object], bool]

MIN_STEPS, MAX_STEPS = 10, 5_000
BLOCK_SIZE = 32  # characters of context in the experiments


@dataclass(frozen=True)
class RunUpdate:
    """One logged step of one variant."""

    label: str
    progress: Progress


@dataclass
class VariantResult:
    label: str
    config: TransformerConfig
    n_parameters: int
    history: list[Progress]
    stop_reason: str | None
    sample: str | None = None
    masked_val_loss: float | None = None  # validation loss with the causal mask switched on

    @property
    def final_train_loss(self) -> float | None:
        return self.history[-1].train_loss if self.history else None

    @property
    def final_val_loss(self) -> float | None:
        losses = [p.val_loss for p in self.history if p.val_loss is not None]
        return losses[-1] if losses else None


@dataclass
class ExperimentResult:
    tokenizer: Tokenizer
    prompt: str
    variants: list[VariantResult]
    stopped: bool  # True if someone stopped it before every variant finished

    def variant(self, label: str) -> VariantResult:
        for result in self.variants:
            if result.label == label:
                return result
        raise KeyError(f"no variant called {label!r}")


def check_text(text: str) -> None:
    """Raise the ValueError an experiment would raise for ``text``, before any training starts.
    The experiments read characters, one token each, so the length decides."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the training text is empty; paste or upload some text first")
    CausalLMTask(torch.zeros(len(text), dtype=torch.long), BLOCK_SIZE)


def histories_by_variant(updates: list[object]) -> dict[str, list[Progress]]:
    """The ``RunUpdate`` reports of a run grouped by variant, in the order the variants ran."""
    histories: dict[str, list[Progress]] = {}
    for update in updates:
        if isinstance(update, RunUpdate):
            histories.setdefault(update.label, []).append(update.progress)
    return histories


def check_steps(steps: int) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or not MIN_STEPS <= steps <= MAX_STEPS:
        raise ValueError(
            f"steps must be a whole number from {MIN_STEPS} to {MAX_STEPS}, got {steps!r}"
        )


def train_variants(
    variants: dict[str, TransformerConfig],
    task,
    settings: TrainSettings,
    report: Report | None = None,
    log_interval: int = 10,
) -> tuple[dict[str, torch.nn.Module], list[VariantResult], bool]:
    """Train every variant in turn: same initial seed, same batches. Returns the trained
    models, their results and whether a stop was requested."""
    models, results = {}, []
    for label, config in variants.items():
        torch.manual_seed(settings.seed)
        model = build_model(config)
        keep_going = True

        def callback(progress: Progress, label: str = label) -> bool:
            nonlocal keep_going
            keep_going = report is None or report(RunUpdate(label, progress)) is not False
            return keep_going

        state = train(model, task, settings, callback=callback, log_interval=log_interval)
        models[label] = model
        results.append(
            VariantResult(label, config, count_parameters(model), state.history, state.stop_reason)
        )
        if not keep_going:
            return models, results, True
    return models, results, False


def _char_task(text: str, block_size: int) -> tuple[Tokenizer, CausalLMTask]:
    tokenizer = train_char(text)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    return tokenizer, CausalLMTask(ids, block_size)


def _samples(
    models: dict[str, torch.nn.Module],
    results: list[VariantResult],
    tokenizer: Tokenizer,
    prompt: str,
    seed: int,
    length: int,
) -> None:
    prompt_ids = tokenizer.encode(prompt)
    settings = SamplingSettings(temperature=0.8)
    for result in results:
        ids = generate(models[result.label], prompt_ids, length, settings, seed=seed)
        result.sample = tokenizer.decode(ids[len(prompt_ids) :])


# ---------------------------------------------------------------------------------------------
# The experiments
# ---------------------------------------------------------------------------------------------

CAUSAL, LEAKY = "with the causal mask", "without the mask (leaks the future)"
FULL, NO_RESIDUAL, NO_LAYER_NORM, NEITHER = (
    "residual + LayerNorm",
    "no residual connections",
    "no LayerNorm",
    "neither",
)


def leakage_variants(vocab_size: int, block_size: int = BLOCK_SIZE) -> dict[str, GPTConfig]:
    # Rotary positions make "read the next position" easy to learn, so the leak shows in
    # tens of steps rather than hundreds.
    base = GPTConfig(
        vocab_size=vocab_size,
        block_size=block_size,
        n_layer=2,
        n_head=4,
        n_embd=64,
        position="rotary",
    )
    return {CAUSAL: base, LEAKY: replace(base, causal=False)}


def ablation_variants(
    vocab_size: int, block_size: int = BLOCK_SIZE, n_layer: int = 4
) -> dict[str, GPTConfig]:
    base = GPTConfig(
        vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=2, n_embd=64
    )
    return {
        FULL: base,
        NO_RESIDUAL: replace(base, residual=False),
        NO_LAYER_NORM: replace(base, layer_norm=False),
        NEITHER: replace(base, residual=False, layer_norm=False),
    }


def _run(
    text: str,
    make_variants: Callable[[int], dict[str, GPTConfig]],
    steps: int,
    seed: int,
    report: Report | None,
    learning_rate: float,
    sample_length: int,
) -> ExperimentResult:
    check_steps(steps)
    tokenizer, task = _char_task(text, BLOCK_SIZE)
    variants = make_variants(tokenizer.vocab_size)
    settings = TrainSettings(
        max_steps=steps,
        batch_size=16,
        learning_rate=learning_rate,
        warmup_steps=min(20, steps // 5),
        eval_interval=max(10, steps // 10),
        seed=seed,
        explode_factor=1e9,  # the ablations are allowed to train badly: that is the point
    )
    models, results, stopped = train_variants(variants, task, settings, report)
    prompt = text[: min(len(text) // 4, 16)]
    _samples(models, results, tokenizer, prompt, seed, sample_length)
    for result in results:
        result.masked_val_loss = _masked_val_loss(models[result.label], task)
    return ExperimentResult(tokenizer, prompt, results, stopped)


def _masked_val_loss(model: torch.nn.Module, task: CausalLMTask) -> float:
    """The validation loss of the same weights with the causal mask on: how well the model
    predicts when, as in generation, the next token is not there to read."""
    honest = build_model(replace(model.config, causal=True))
    honest.load_state_dict(model.state_dict())
    return evaluate(honest, task)


def leakage_experiment(
    text: str, steps: int = 300, seed: int = 0, report: Report | None = None
) -> ExperimentResult:
    """Train the same character-level GPT with and without its causal mask on ``text``."""
    return _run(text, leakage_variants, steps, seed, report, 1e-2, sample_length=80)


def ablation_experiment(
    text: str, steps: int = 300, seed: int = 0, report: Report | None = None
) -> ExperimentResult:
    """Train a 4-layer character-level GPT with and without residuals and LayerNorm."""
    return _run(text, ablation_variants, steps, seed, report, 3e-3, sample_length=60)
