"""The pieces every model is stacked from: the MLP and the Transformer block.

A block is two sub-layers, attention then MLP (a decoder block has cross-attention between
them). Each sub-layer is wrapped in a residual connection and a LayerNorm, in one of two
arrangements:

    pre-LN  (GPT-2):                 x = x + sublayer(LayerNorm(x))
    post-LN (original Transformer, BERT): x = LayerNorm(x + sublayer(x))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor, nn

from tinyformers.model.attention import MultiHeadAttention
from tinyformers.model.config import TransformerConfig


class MLP(nn.Module):
    """Position-wise feed-forward network: widen, GELU, project back."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        approximate = "tanh" if config.activation == "gelu_tanh" else "none"
        self.c_fc = nn.Linear(config.n_embd, config.mlp_width)
        self.act = nn.GELU(approximate=approximate)
        self.c_proj = nn.Linear(config.mlp_width, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))  # (B, T, C)


def layer_norm(config: TransformerConfig) -> nn.Module:
    """A LayerNorm, or a pass-through when the ablation switches LayerNorm off."""
    if not config.layer_norm:
        return nn.Identity()
    return nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)


@dataclass
class BlockOutput:
    x: Tensor  # (B, T, C) the residual stream leaving the block
    after_attn: Tensor  # (B, T, C) the residual stream after the self-attention sub-layer
    attn: Tensor | None  # (B, nh, T, T) self-attention weights
    cross_attn: Tensor | None = None  # (B, nh, T, T_enc) cross-attention weights


class Block(nn.Module):
    """Self-attention and MLP; with ``cross_attention=True`` also attends to an encoder output."""

    def __init__(self, config: TransformerConfig, cross_attention: bool = False):
        super().__init__()
        self.ln_placement = config.ln_placement
        self.residual = config.residual
        self.ln_1 = layer_norm(config)
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, config.dropout)
        if cross_attention:
            self.ln_cross = layer_norm(config)
            self.cross_attn = MultiHeadAttention(config.n_embd, config.n_head, config.dropout)
        else:
            self.cross_attn = None
        self.ln_2 = layer_norm(config)
        self.mlp = MLP(config)

    def sublayer(self, x: Tensor, norm: nn.Module, fn: Callable[[Tensor], Tensor]) -> Tensor:
        """Wrap ``fn`` in the residual connection and LayerNorm, pre-LN or post-LN."""
        if self.ln_placement == "pre":
            out = fn(norm(x))
            return x + out if self.residual else out
        out = fn(x)
        return norm(x + out if self.residual else out)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        memory: Tensor | None = None,
        memory_mask: Tensor | None = None,
        rotary: tuple[Tensor, Tensor] | None = None,
        need_weights: bool = True,
    ) -> BlockOutput:
        weights: dict[str, Tensor | None] = {}

        def self_attend(h: Tensor) -> Tensor:
            out, weights["self"] = self.attn(h, mask, rotary=rotary, need_weights=need_weights)
            return out

        def cross_attend(h: Tensor) -> Tensor:
            out, weights["cross"] = self.cross_attn(
                h, memory_mask, memory=memory, need_weights=need_weights
            )
            return out

        x = self.sublayer(x, self.ln_1, self_attend)
        after_attn = x
        if self.cross_attn is not None:
            if memory is None:
                raise ValueError("a decoder block needs the encoder output (memory) to attend to")
            x = self.sublayer(x, self.ln_cross, cross_attend)
        x = self.sublayer(x, self.ln_2, self.mlp)
        return BlockOutput(x, after_attn, weights["self"], weights.get("cross"))


@dataclass
class ModelOutput:
    """What every model's forward returns. Tuples are indexed by layer."""

    logits: Tensor  # (B, T, vocab_size)
    loss: Tensor | None = None
    hidden_states: tuple[
        Tensor, ...
    ] = ()  # n_layer + 1 tensors of (B, T, C): embeddings, then each layer
    attentions: tuple[Tensor, ...] = ()  # n_layer tensors of (B, nh, T, T)
    cross_attentions: tuple[Tensor, ...] = ()  # decoder layers: (B, nh, T_dec, T_enc)
    encoder_hidden_states: tuple[Tensor, ...] = ()
    encoder_attentions: tuple[Tensor, ...] = ()
    masks: dict[str, Tensor] = field(default_factory=dict)  # the boolean masks attention used


def check_length(length: int, block_size: int, what: str = "sequence") -> None:
    if length < 1:
        raise ValueError(f"the {what} is empty: the model needs at least one token")
    if length > block_size:
        raise ValueError(
            f"the {what} has {length} tokens but the model has only {block_size} positions"
        )


def init_weights(model: nn.Module, n_layer: int, std: float = 0.02) -> None:
    """GPT-2 style initialisation: N(0, 0.02) weights, zero biases, and residual projections
    scaled down by sqrt(2 * n_layer) so the residual stream does not grow with depth."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            scale = 1 / math.sqrt(2 * n_layer) if name.endswith("c_proj") else 1.0
            nn.init.normal_(module.weight, mean=0.0, std=std * scale)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
