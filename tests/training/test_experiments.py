"""The live training experiments: the leak is real, and the variants differ only as named."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from tinyformers.text.corpora import lesson_corpus
from tinyformers.text.tokenizers import train_char
from tinyformers.training.experiments import (
    CAUSAL,
    FULL,
    LEAKY,
    NEITHER,
    NO_LAYER_NORM,
    NO_RESIDUAL,
    RunUpdate,
    ablation_variants,
    leakage_experiment,
    leakage_variants,
    train_variants,
)
from tinyformers.training.loop import CausalLMTask, TrainSettings

TEXT = lesson_corpus()[:12_000]


@pytest.fixture(scope="module")
def leakage():
    updates = []
    result = leakage_experiment(TEXT, steps=250, seed=0, report=lambda u: updates.append(u) or True)
    return result, updates


def test_without_the_mask_training_loss_collapses(leakage) -> None:
    result, _ = leakage
    honest, leaky = result.variant(CAUSAL), result.variant(LEAKY)
    assert leaky.final_train_loss < 0.5 < honest.final_train_loss
    assert leaky.final_val_loss < honest.final_val_loss  # it reads the answers in validation too
    # Judged with the mask on, as it must generate, the leaky model is the worse one.
    assert leaky.masked_val_loss > honest.masked_val_loss
    assert honest.masked_val_loss == pytest.approx(honest.final_val_loss)


def test_both_variants_generate_a_sample(leakage) -> None:
    result, _ = leakage
    for label in (CAUSAL, LEAKY):
        assert len(result.variant(label).sample) > 0
    assert TEXT.startswith(result.prompt)


def test_updates_name_their_variant_in_order(leakage) -> None:
    _, updates = leakage
    labels = [u.label for u in updates]
    assert all(isinstance(u, RunUpdate) for u in updates)
    assert labels == sorted(labels, key=[CAUSAL, LEAKY].index)
    steps = [u.progress.step for u in updates if u.label == CAUSAL]
    assert steps == sorted(steps) and steps[-1] == 250


def test_variants_differ_only_in_what_they_name() -> None:
    leak = leakage_variants(40)
    differ = {k for k, v in asdict(leak[CAUSAL]).items() if asdict(leak[LEAKY])[k] != v}
    assert differ == {"causal"}
    ablation = ablation_variants(40)
    base = asdict(ablation[FULL])
    expected = {
        NO_RESIDUAL: {"residual"},
        NO_LAYER_NORM: {"layer_norm"},
        NEITHER: {"residual", "layer_norm"},
    }
    for label, fields in expected.items():
        assert {k for k, v in asdict(ablation[label]).items() if base[k] != v} == fields


def test_same_seed_same_start_and_a_stop_ends_all_variants() -> None:
    tokenizer = train_char(TEXT)
    task = CausalLMTask(torch.tensor(tokenizer.encode(TEXT)), 16)
    variants = ablation_variants(tokenizer.vocab_size, block_size=16, n_layer=1)
    settings = TrainSettings(max_steps=20, batch_size=4, eval_interval=0, seed=3)
    seen = []

    def report(update):
        seen.append(update)
        return len(seen) < 3

    models, results, stopped = train_variants(variants, task, settings, report, log_interval=5)
    assert stopped and len(results) == 1 and results[0].history[-1].step == 15
    _, again, _ = train_variants(variants, task, settings, None, log_interval=5)
    assert again[0].history[0].train_loss == results[0].history[0].train_loss


def test_steps_are_checked() -> None:
    with pytest.raises(ValueError, match="steps must be a whole number from 10 to 5000"):
        leakage_experiment(TEXT, steps=10**9)
