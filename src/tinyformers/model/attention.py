"""Scaled dot-product attention, the masks that shape it, and multi-head attention.

Conventions used everywhere in Tinyformers:

* A *mask* is a boolean tensor that broadcasts to ``(B, nh, T_q, T_k)``; ``True`` means
  "this query may look at this key" (the same convention as
  ``torch.nn.functional.scaled_dot_product_attention``).
* Attention *weights* are returned to the caller, never stored on a module, in the shape
  ``(B, nh, T_q, T_k)``. Every row sums to 1 over the keys it may see.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinyformers.model.positional import apply_rotary
from tinyformers.model.record import AttentionRecord

# ---------------------------------------------------------------------------------------------
# The attention function, written out step by step
# ---------------------------------------------------------------------------------------------


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """softmax(q kᵀ / √d) v, returning both the output and the attention weights.

    q: (..., T_q, d)   k: (..., T_k, d)   v: (..., T_k, d_v)   mask: broadcastable to (..., T_q, T_k)
    Returns out: (..., T_q, d_v) and weights: (..., T_q, T_k).
    A query row whose keys are all masked gets all-zero weights (and a zero output).
    """
    weights = masked_softmax(attention_scores(q, k), mask)  # (..., T_q, T_k)
    out = weights @ v  # (..., T_q, d_v)
    return out, weights


def attention_scores(q: Tensor, k: Tensor) -> Tensor:
    """q kᵀ / √d for every (query, key) pair: (..., T_q, d), (..., T_k, d) -> (..., T_q, T_k)."""
    return q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))


def masked_softmax(scores: Tensor, mask: Tensor | None = None) -> Tensor:
    """Softmax over the keys of each row, with -inf where ``mask`` is False.

    exp(-inf) = 0, so a masked key gets a weight of exactly 0; a row with every key masked gets
    all-zero weights instead of NaN.
    """
    if mask is None:
        return torch.softmax(scores, dim=-1)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    return torch.nan_to_num(weights, nan=0.0)  # rows with every key masked


def fast_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """The same computation through PyTorch's fused kernel, for training (no weights returned)."""
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v)
    if is_plain_causal(mask, q.shape[-2], k.shape[-2]):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)  # the faster kernel
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)


# ---------------------------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------------------------


def is_plain_causal(mask: Tensor, q_len: int, k_len: int) -> bool:
    """True if ``mask`` is exactly the (T, T) causal mask, with nothing else masked."""
    return (
        mask.dim() == 2
        and q_len == k_len == mask.shape[0] == mask.shape[1]
        and torch.equal(mask, causal_mask(q_len, mask.device))
    )


def causal_mask(t: int, device: torch.device | str | None = None) -> Tensor:
    """(T, T) lower-triangular: position i may attend to positions 0..i."""
    return torch.ones(t, t, dtype=torch.bool, device=device).tril()


def padding_mask(attention_mask: Tensor) -> Tensor:
    """From a (B, T_k) 0/1 tensor (1 = real token) to a (B, 1, 1, T_k) key mask."""
    if attention_mask.dim() != 2:
        raise ValueError(
            f"attention_mask must have shape (batch, length), got {tuple(attention_mask.shape)}"
        )
    return attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T_k)


def prefix_lm_mask(t: int, prefix_len: int, device: torch.device | str | None = None) -> Tensor:
    """(T, T): every position sees the whole prefix; after the prefix, attention is causal."""
    if not 0 <= prefix_len <= t:
        raise ValueError(f"prefix length must be between 0 and {t}, got {prefix_len}")
    mask = causal_mask(t, device)
    mask[:, :prefix_len] = True
    return mask


def cross_attention_mask(encoder_attention_mask: Tensor, t_dec: int) -> Tensor:
    """(B, 1, T_dec, T_enc): each decoder query sees every real (non-padding) encoder token."""
    keys = padding_mask(encoder_attention_mask)  # (B, 1, 1, T_enc)
    return keys.expand(-1, 1, t_dec, -1)  # (B, 1, T_dec, T_enc)


def combine_masks(*masks: Tensor | None) -> Tensor | None:
    """AND together the masks that are given (broadcasting); None if none are."""
    result = None
    for mask in masks:
        if mask is not None:
            result = mask if result is None else result & mask
    return result


# ---------------------------------------------------------------------------------------------
# Multi-head attention
# ---------------------------------------------------------------------------------------------


class MultiHeadAttention(nn.Module):
    """Project to queries, keys and values, split into heads, attend, merge heads, project.

    Self-attention: ``forward(x)``. Cross-attention: ``forward(x, memory=encoder_output)``, where
    queries come from ``x`` (the decoder) and keys/values from ``memory`` (the encoder).
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        assert n_embd % n_head == 0, "config validation guarantees this"
        self.n_head = n_head
        self.n_embd = n_embd
        self.q_proj = nn.Linear(n_embd, n_embd)  # W_Q
        self.k_proj = nn.Linear(n_embd, n_embd)  # W_K
        self.v_proj = nn.Linear(n_embd, n_embd)  # W_V
        self.c_proj = nn.Linear(n_embd, n_embd)  # W_O, mixes the heads back together
        self.resid_dropout = nn.Dropout(dropout)

    def split_heads(self, x: Tensor) -> Tensor:
        b, t, c = x.shape  # (B, T, C)
        x = x.view(b, t, self.n_head, c // self.n_head)  # (B, T, nh, hs)
        return x.transpose(1, 2)  # (B, nh, T, hs)

    def merge_heads(self, x: Tensor) -> Tensor:
        b, nh, t, hs = x.shape  # (B, nh, T, hs)
        x = x.transpose(1, 2).contiguous()  # (B, T, nh, hs)
        return x.view(b, t, nh * hs)  # (B, T, C)

    def plain_projections(self) -> bool:
        projections = (self.q_proj, self.k_proj, self.v_proj)
        return all(type(p) is nn.Linear and p.bias is not None for p in projections)

    def project(
        self, x: Tensor, memory: Tensor | None, rotary: tuple[Tensor, Tensor] | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Queries from ``x``, keys and values from ``memory`` (or ``x``), split into heads.

        Self-attention computes the three projections as one matrix product (the same
        numbers as three, one pass over ``x``), unless a fine-tuning method wrapped one."""
        source = x if memory is None else memory
        if memory is None and self.plain_projections():
            weight = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])
            bias = torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias])
            q, k, v = F.linear(x, weight, bias).split(self.n_embd, dim=-1)  # each (B, T, C)
            q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)
        else:
            q = self.split_heads(self.q_proj(x))  # (B, nh, T_q, hs)
            k = self.split_heads(self.k_proj(source))  # (B, nh, T_k, hs)
            v = self.split_heads(self.v_proj(source))  # (B, nh, T_k, hs)
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        return q, k, v

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        memory: Tensor | None = None,
        rotary: tuple[Tensor, Tensor] | None = None,
        need_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        q, k, v = self.project(x, memory, rotary)
        if need_weights:
            out, weights = attention(q, k, v, mask)  # (B, nh, T_q, hs), (B, nh, T_q, T_k)
        else:
            out, weights = fast_attention(q, k, v, mask), None
        out = self.resid_dropout(self.c_proj(self.merge_heads(out)))  # (B, T_q, C)
        return out, weights

    def recorded(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        memory: Tensor | None = None,
        rotary: tuple[Tensor, Tensor] | None = None,
    ) -> AttentionRecord:
        """The same computation as ``forward``, keeping every intermediate tensor."""
        q, k, v = self.project(x, memory, rotary)
        scores = attention_scores(q, k)  # (B, nh, T_q, T_k)
        weights = masked_softmax(scores, mask)  # (B, nh, T_q, T_k)
        heads = weights @ v  # (B, nh, T_q, hs)
        merged = self.merge_heads(heads)  # (B, T_q, C)
        output = self.resid_dropout(self.c_proj(merged))  # (B, T_q, C)
        source = x if memory is None else memory
        return AttentionRecord(
            x, source, q, k, v, scores, weights, heads, merged, output, mask, rotary
        )
