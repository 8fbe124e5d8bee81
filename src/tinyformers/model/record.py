"""What one forward pass computed, kept by the pass itself ("run with cache").

Every model takes ``return_record=True`` and then returns, next to its logits, a ``RunRecord``:
the embeddings, and per block the input to attention, q, k, v, scores, weights, each head's
output, the MLP's intermediate tensors, every LayerNorm's input and output, the residual stream
before and after each sub-layer, and the mask and rotary angles attention used.

The record is a fresh object built by the call that returns it. Nothing is registered on a
module and nothing is stored on one, so any number of threads may run one shared model at once,
each reading only its own record. Lessons read these tensors instead of calling a model's
sub-modules themselves.

Shapes use B (batch), T (tokens), C (``n_embd``), nh (heads), hs (head size) and, for
cross-attention, T_k (encoder tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass(frozen=True)
class LayerNormRecord:
    """What one LayerNorm read and wrote. When the config switches LayerNorm off, the module is
    a pass-through and ``output`` is ``input``."""

    input: Tensor  # (B, T, C)
    output: Tensor  # (B, T, C)


@dataclass(frozen=True)
class AttentionRecord:
    """One multi-head attention call, every step of it."""

    input: Tensor  # (B, T, C) what the queries are projected from
    source: (
        Tensor  # (B, T_k, C) what keys and values are projected from (``input`` in self-attention)
    )
    q: Tensor  # (B, nh, T, hs) queries, after rotary positions if the model uses them
    k: Tensor  # (B, nh, T_k, hs) keys, likewise
    v: Tensor  # (B, nh, T_k, hs) values
    scores: Tensor  # (B, nh, T, T_k) q·kᵀ / √hs, before the mask
    weights: Tensor  # (B, nh, T, T_k) softmax of the masked scores; each row sums to 1 (or 0)
    heads: Tensor  # (B, nh, T, hs) weights @ v: what each head returns
    merged: Tensor  # (B, T, C) the heads side by side
    output: Tensor  # (B, T, C) after the output projection c_proj
    mask: Tensor | None  # boolean, broadcastable to (B, nh, T, T_k); None = every key visible
    rotary: tuple[Tensor, Tensor] | None  # (cos, sin), each (T, hs / 2); None without rotary


@dataclass(frozen=True)
class MLPRecord:
    """The feed-forward network: widen, activate, project back."""

    input: Tensor  # (B, T, C)
    hidden: Tensor  # (B, T, mlp_width) after c_fc
    activated: Tensor  # (B, T, mlp_width) after the GELU
    output: Tensor  # (B, T, C) after c_proj


@dataclass(frozen=True)
class BlockRecord:
    """One Transformer block. ``after_attn`` is the residual stream once the self-attention
    sub-layer is done (after its LayerNorm in a post-LN block)."""

    input: Tensor  # (B, T, C) the residual stream entering the block
    ln_1: LayerNormRecord
    attn: AttentionRecord
    after_attn: Tensor  # (B, T, C)
    ln_2: LayerNormRecord
    mlp: MLPRecord
    output: Tensor  # (B, T, C) the residual stream leaving the block
    ln_cross: LayerNormRecord | None = None  # decoder blocks only
    cross_attn: AttentionRecord | None = None
    after_cross: Tensor | None = None  # (B, T, C)


@dataclass(frozen=True)
class EmbeddingRecord:
    """The vectors added up to make the first block's input, before any LayerNorm or dropout."""

    total: Tensor  # (B, T, C) the sum (or the vectors the caller gave instead)
    token: Tensor | None = None  # (B, T, C) rows of wte
    position: Tensor | None = None  # (T, C) rows of wpe; None when positions are not added here
    segment: Tensor | None = None  # (B, T, C) rows of wse (BERT)


@dataclass(frozen=True)
class RunRecord:
    """Everything one forward pass of a model computed, block by block."""

    embeddings: EmbeddingRecord
    blocks: list[BlockRecord]
    norms: dict[str, LayerNormRecord] = field(default_factory=dict)  # outside the blocks, by name
    mask: Tensor | None = None  # the self-attention mask every block used
    rotary: tuple[Tensor, Tensor] | None = None  # (cos, sin), each (T, hs / 2)
    encoder: RunRecord | None = None  # encoder-decoder: the encoder's run

    def block(self, layer: int) -> BlockRecord:
        """The record of block ``layer``, with a clear error for a layer that does not exist."""
        if not 0 <= layer < len(self.blocks):
            raise ValueError(f"layer must be between 0 and {len(self.blocks) - 1}, got {layer}")
        return self.blocks[layer]
