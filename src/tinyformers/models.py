"""One place that maps a config to its model class."""

from __future__ import annotations

from torch import nn

from tinyformers.bert import Bert
from tinyformers.config import BertConfig, GPTConfig, Seq2SeqConfig, TransformerConfig
from tinyformers.gpt import GPT
from tinyformers.seq2seq import Seq2Seq

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
