"""One place that maps a config to its model class, and the presets table measured on built
models."""

from __future__ import annotations

from typing import Any

from torch import nn

from tinyformers.model.bert import Bert
from tinyformers.model.config import (
    CONFIG_CLASSES,
    PRESETS,
    BertConfig,
    GPTConfig,
    Seq2SeqConfig,
    TransformerConfig,
    preset,
)
from tinyformers.model.gpt import GPT
from tinyformers.model.seq2seq import Seq2Seq

MODEL_CLASSES: dict[type[TransformerConfig], type[nn.Module]] = {
    GPTConfig: GPT,
    BertConfig: Bert,
    Seq2SeqConfig: Seq2Seq,
}


def build_model(config: TransformerConfig) -> nn.Module:
    """A freshly initialised model for ``config`` (seed torch first for reproducible weights)."""
    for config_class, model_class in MODEL_CLASSES.items():
        if type(config) is config_class:
            return model_class(config)
    raise ValueError(f"no model family for config type {type(config).__name__}")


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters, counting tied (shared) tensors once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def presets_table(vocab_size: int = 512) -> list[dict[str, Any]]:
    """One row per (preset, family) with the parameter count measured on a built model."""
    rows = []
    for name in PRESETS:
        for family in CONFIG_CLASSES:
            config = preset(name, family, vocab_size=vocab_size)
            model = build_model(config)
            rows.append(
                {
                    "preset": name,
                    "family": family,
                    "n_layer": config.n_layer,
                    "n_head": config.n_head,
                    "n_embd": config.n_embd,
                    "block_size": config.block_size,
                    "parameters": count_parameters(model),
                }
            )
    return rows
