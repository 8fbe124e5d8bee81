"""Positional information: sinusoidal (fixed), learned (a lookup table) and rotary (RoPE).

Self-attention alone treats its input as a set; these are the three common ways to tell the
model where each token sits.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def sinusoidal_encoding(length: int, d_model: int, base: float = 10000.0) -> Tensor:
    """The fixed encodings of "Attention Is All You Need", shape (length, d_model).

    PE[pos, 2i]   = sin(pos / base^(2i / d_model))
    PE[pos, 2i+1] = cos(pos / base^(2i / d_model))
    """
    if length < 0 or d_model < 1:
        raise ValueError(f"need length >= 0 and d_model >= 1, got {length} and {d_model}")
    position = torch.arange(length, dtype=torch.float64)[:, None]  # (L, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (ceil(d/2),)
    angle = position / base ** (two_i / d_model)  # (L, ceil(d/2))
    pe = torch.zeros(length, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return pe.float()


class SinusoidalPositions(nn.Module):
    """Adds nothing trainable: looks rows up in a fixed sinusoidal table."""

    def __init__(self, block_size: int, n_embd: int):
        super().__init__()
        self.register_buffer("table", sinusoidal_encoding(block_size, n_embd), persistent=False)

    def forward(self, pos: Tensor) -> Tensor:
        return self.table[pos]


def rotary_angles(length: int, head_size: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """cos and sin of the rotation angles for RoPE, each of shape (length, head_size // 2).

    Dimension pair i of the query/key at position m is rotated by the angle m * base^(-2i/hs).
    """
    if head_size % 2:
        raise ValueError(f"rotary positions need an even head size, got {head_size}")
    inv_freq = base ** (-torch.arange(0, head_size, 2, dtype=torch.float64) / head_size)  # (hs/2,)
    angle = torch.arange(length, dtype=torch.float64)[:, None] * inv_freq  # (L, hs/2)
    return angle.cos().float(), angle.sin().float()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate each (even, odd) pair of features of x by its position's angle.

    x: (..., T, hs)   cos, sin: (T, hs/2)   returns (..., T, hs)
    The dot product of a rotated query at position m and a rotated key at position n depends
    only on m - n: relative position information comes for free.
    """
    even, odd = x[..., 0::2], x[..., 1::2]  # (..., T, hs/2) each
    rotated_even = even * cos - odd * sin
    rotated_odd = even * sin + odd * cos
    return torch.stack((rotated_even, rotated_odd), dim=-1).flatten(-2)  # (..., T, hs)


def cosine_similarity_matrix(vectors: Tensor) -> Tensor:
    """(N, d) -> (N, N) cosine similarity of every pair of rows."""
    unit = vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return unit @ unit.T


def position_embedding(position: str, block_size: int, n_embd: int) -> nn.Module | None:
    """The module that turns position ids into vectors added to the token embeddings.

    "learned" is a trainable table (GPT-2, BERT); "sinusoidal" is fixed; "rotary" and "none" add
    nothing to the embeddings (rotary acts on queries and keys inside attention instead).
    """
    if position == "learned":
        return nn.Embedding(block_size, n_embd)
    if position == "sinusoidal":
        return SinusoidalPositions(block_size, n_embd)
    return None
