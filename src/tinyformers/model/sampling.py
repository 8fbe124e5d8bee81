"""Turning next-token logits into a choice: temperature, top-k, top-p, greedy; and generation.

``next_token_distribution`` is what the GPT lesson draws: the probabilities after each filter and
which tokens survived it. ``generate`` uses the very same function, so what the chart shows is
exactly what the sampler draws from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 1.0  # 0 means greedy
    top_k: int | None = None  # keep only the k most likely tokens
    top_p: float | None = None  # keep the smallest set of tokens whose probability reaches p

    def __post_init__(self) -> None:
        if not isinstance(self.temperature, (int, float)) or not 0 <= self.temperature <= 100:
            raise ValueError(f"temperature must be between 0 and 100, got {self.temperature!r}")
        if self.top_k is not None and (
            isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1
        ):
            raise ValueError(f"top-k must be a whole number of at least 1, got {self.top_k!r}")
        if self.top_p is not None and not (
            isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1
        ):
            raise ValueError(f"top-p must be in (0, 1], got {self.top_p!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def top_k_mask(probs: Tensor, k: int) -> Tensor:
    """Boolean mask of the k most probable entries along the last dimension."""
    k = min(k, probs.size(-1))
    threshold = probs.topk(k, dim=-1).values[..., -1:]  # (..., 1)
    return probs >= threshold


def top_p_mask(probs: Tensor, p: float) -> Tensor:
    """Boolean mask of the smallest set of most probable entries whose total reaches ``p``."""
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_before = (
        sorted_probs.cumsum(dim=-1) - sorted_probs
    )  # probability of strictly better tokens
    keep_sorted = mass_before < p  # keep a token while the mass before it is short of p
    keep = torch.zeros_like(keep_sorted)
    return keep.scatter(-1, order, keep_sorted)


@dataclass
class Distribution:
    """The next-token distribution at each stage of filtering (all shaped (vocab_size,))."""

    raw: Tensor  # softmax(logits)
    tempered: Tensor  # softmax(logits / temperature)
    kept: Tensor  # boolean: survived top-k and top-p
    final: Tensor  # renormalised over the kept tokens: what is sampled from


def next_token_distribution(logits: Tensor, settings: SamplingSettings) -> Distribution:
    """logits: (vocab_size,) for one position."""
    raw = torch.softmax(logits.float(), dim=-1)
    if settings.greedy:
        kept = torch.zeros_like(raw, dtype=torch.bool)
        kept[raw.argmax()] = True
        return Distribution(raw, raw, kept, kept.float())
    tempered = torch.softmax(logits.float() / settings.temperature, dim=-1)
    kept = torch.ones_like(tempered, dtype=torch.bool)
    if settings.top_k is not None:
        kept &= top_k_mask(tempered, settings.top_k)
    if settings.top_p is not None:
        kept &= top_p_mask(tempered, settings.top_p)
    final = torch.where(kept, tempered, torch.zeros_like(tempered))
    return Distribution(raw, tempered, kept, final / final.sum())


def sample(dist: Distribution, generator: torch.Generator | None = None) -> int:
    return int(torch.multinomial(dist.final, 1, generator=generator).item())


@torch.no_grad()
def generate(
    model: nn.Module,
    ids: list[int],
    max_new_tokens: int,
    settings: SamplingSettings = SamplingSettings(),
    seed: int | None = None,
    stop_ids: set[int] | frozenset[int] = frozenset(),
) -> list[int]:
    """Continue ``ids`` with a decoder-only model; returns only the new ids.

    The context is cropped to the model's last ``block_size`` positions as it grows.
    """
    if not ids:
        raise ValueError("generation needs a prompt of at least one token")
    if not isinstance(max_new_tokens, int) or not 0 <= max_new_tokens <= 10_000:
        raise ValueError(f"max_new_tokens must be between 0 and 10000, got {max_new_tokens!r}")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    block_size = model.config.block_size
    sequence = list(ids)
    new: list[int] = []
    for _ in range(max_new_tokens):
        context = torch.tensor([sequence[-block_size:]])  # (1, T)
        logits = model(context).logits[0, -1]  # (vocab_size,)
        token = sample(next_token_distribution(logits, settings), generator)
        if token in stop_ids:
            break
        sequence.append(token)
        new.append(token)
    return new
