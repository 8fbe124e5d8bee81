"""BERT's masked-LM corruption, with a ledger of what happened to every token.

Of the ordinary (non-special) tokens, each is *selected* with probability ``select_rate``
(15% in BERT). A selected token is replaced by ``[MASK]`` 80% of the time, by a random token
10% of the time, and left unchanged 10% of the time. Only selected positions carry a loss; the
label everywhere else is -100, which the loss ignores.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tinyformers.i18n import _

IGNORE_INDEX = -100

# Ledger codes: what happened to each position.
NOT_SELECTED, MASKED, RANDOM, UNCHANGED = 0, 1, 2, 3
LEDGER_NAMES = {
    NOT_SELECTED: "not selected",
    MASKED: "selected → [MASK]",
    RANDOM: "selected → random token",
    UNCHANGED: "selected → unchanged",
}


@dataclass(frozen=True)
class MaskingRates:
    select_rate: float = 0.15
    mask_rate: float = 0.8  # of the selected tokens
    random_rate: float = 0.1  # of the selected tokens; the rest stay unchanged

    def __post_init__(self) -> None:
        for name in ("select_rate", "mask_rate", "random_rate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name.replace('_', ' ')} must be between 0 and 1, got {value!r}")
        if self.mask_rate + self.random_rate > 1 + 1e-9:
            raise ValueError(
                _("[MASK] rate ({mask}) plus random rate ({random}) cannot exceed 1").format(
                    mask=self.mask_rate, random=self.random_rate
                )
            )

    @property
    def unchanged_rate(self) -> float:
        return max(0.0, 1.0 - self.mask_rate - self.random_rate)


@dataclass
class MaskedBatch:
    input_ids: Tensor  # (B, T) what the model sees
    labels: Tensor  # (B, T) original id where selected, -100 elsewhere
    ledger: Tensor  # (B, T) one of NOT_SELECTED, MASKED, RANDOM, UNCHANGED


def mask_tokens(
    ids: Tensor,
    mask_id: int,
    vocab_size: int,
    special_ids: set[int] | frozenset[int],
    rates: MaskingRates = MaskingRates(),
    generator: torch.Generator | None = None,
    word_starts: Tensor | None = None,
) -> MaskedBatch:
    """Corrupt a (B, T) batch of ids the BERT way.

    ``word_starts`` (B, T) bool turns on whole-word masking: the selection is drawn once per word
    (a position that starts a word) and shared by the word's continuation pieces.
    Random replacements are drawn from the non-special tokens.
    """
    if ids.dim() != 2:
        raise ValueError(f"expected a (batch, length) tensor of ids, got shape {tuple(ids.shape)}")
    specials = torch.tensor(sorted(special_ids), dtype=ids.dtype)
    eligible = ~torch.isin(ids, specials)  # special tokens are never selected

    draws = torch.rand(ids.shape, generator=generator)
    if word_starts is not None:
        draws = spread_over_words(draws, word_starts)
    selected = eligible & (draws < rates.select_rate)

    how = torch.rand(ids.shape, generator=generator)
    if word_starts is not None:
        how = spread_over_words(how, word_starts)
    to_mask = selected & (how < rates.mask_rate)
    to_random = selected & (how >= rates.mask_rate) & (how < rates.mask_rate + rates.random_rate)

    ordinary = torch.tensor([i for i in range(vocab_size) if i not in special_ids], dtype=ids.dtype)
    random_ids = ordinary[torch.randint(len(ordinary), ids.shape, generator=generator)]

    input_ids = ids.clone()
    input_ids[to_mask] = mask_id
    input_ids[to_random] = random_ids[to_random]
    labels = torch.where(selected, ids, torch.full_like(ids, IGNORE_INDEX))

    ledger = torch.full_like(ids, NOT_SELECTED)
    ledger[selected] = UNCHANGED
    ledger[to_mask] = MASKED
    ledger[to_random] = RANDOM
    return MaskedBatch(input_ids, labels, ledger)


def spread_over_words(draws: Tensor, word_starts: Tensor) -> Tensor:
    """Give every piece of a word the random draw of the piece that starts it."""
    positions = torch.arange(draws.size(-1)).expand_as(draws)  # (B, T)
    start_of_word = torch.where(word_starts, positions, 0).cummax(dim=-1).values  # (B, T)
    return draws.gather(-1, start_of_word)
