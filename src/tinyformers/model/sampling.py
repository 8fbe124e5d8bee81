"""Turning next-token logits into a choice: temperature, top-k, top-p, greedy; generation;
beam search.

``next_token_distribution`` is what the GPT lesson draws: the probabilities after each filter and
which tokens survived it. ``generate`` uses the very same function, so what the chart shows is
exactly what the sampler draws from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tinyformers.i18n import _


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
    for _step in range(max_new_tokens):
        context = torch.tensor([sequence[-block_size:]])  # (1, T)
        logits = model(context).logits[0, -1]  # (vocab_size,)
        token = sample(next_token_distribution(logits, settings), generator)
        if token in stop_ids:
            break
        sequence.append(token)
        new.append(token)
    return new


# ---------------------------------------------------------------------------------------------
# Beam search
# ---------------------------------------------------------------------------------------------
#
# Greedy decoding keeps one text and extends it with its best next token. Beam search keeps the
# ``num_beams`` best texts found so far (the *beams*), each with the sum of the log-probabilities
# of its tokens, and at every step looks at every one-token extension of every beam:
#
#     beams ──► each beam + each token, scored log p(beam) + log p(token | beam)
#           ──► the 2k best extensions ──► those ending the text become finished hypotheses
#           ──► the k best others are the next beams
#
# It follows ``transformers``' ``generate(num_beams=k, do_sample=False)`` step for step (its
# 2k candidates, its length penalty and its three ``early_stopping`` rules), so the two give the
# same text on the same weights; the tests check it.

MAX_BEAMS = 16
MAX_BEAM_TOKENS = 256  # new tokens one beam search may add
EARLY_STOPPING = (True, False, "never")


@dataclass(frozen=True)
class BeamSettings:
    num_beams: int = 3  # k: the texts kept at every step
    length_penalty: float = 1.0  # a text's score is log p / (new tokens ** length_penalty)
    early_stopping: bool | str = False  # True, False or "never", as in ``transformers``

    def __post_init__(self) -> None:
        k = self.num_beams
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_BEAMS:
            raise ValueError(f"the number of beams must be between 1 and {MAX_BEAMS}, got {k!r}")
        penalty = self.length_penalty
        if isinstance(penalty, bool) or not isinstance(penalty, (int, float)):
            raise ValueError(f"the length penalty must be a number, got {penalty!r}")
        if not -5 <= penalty <= 5:
            raise ValueError(f"the length penalty must be between -5 and 5, got {penalty!r}")
        early = self.early_stopping
        if not (early is True or early is False or early == "never"):
            raise ValueError(f"early stopping must be True, False or 'never', got {early!r}")


@dataclass(frozen=True)
class Beam:
    """A text being decoded: its new tokens and the sum of their log-probabilities."""

    tokens: tuple[int, ...]
    log_prob: float  # log p(tokens | prompt) = the sum of each token's log p
    finished: bool = False  # it ended with the end token (or at the length limit)

    def score(self, length_penalty: float) -> float:
        """What beam search ranks finished texts by: log p divided by length ** penalty (0 means
        the plain sum, 1 the mean log p per token)."""
        return self.log_prob / len(self.tokens) ** length_penalty


@dataclass(frozen=True)
class Candidate:
    """One extension looked at in one step: a beam plus one token."""

    beam: Beam  # the extended text
    parent: int  # which of the step's beams it extends (their index, best first)
    token_log_prob: float  # log p of the new token given the beam
    fate: str  # "kept" (a beam of the next step), "finished" or "dropped"


@dataclass(frozen=True)
class BeamStep:
    """What one step looked at (the 2k best extensions, best first) and what it kept."""

    candidates: list[Candidate]
    beams: list[Beam]  # the beams the next step extends, best first
    finished: list[Beam]  # the best finished texts so far, best score first


@dataclass(frozen=True)
class BeamSearch:
    settings: BeamSettings
    steps: list[BeamStep]
    finished: list[Beam]  # at most k texts, best score first

    @property
    def best(self) -> Beam:
        return self.finished[0]


def check_beam_search(vocab_size: int, ids: list[int], max_new_tokens: int, k: int) -> None:
    if not ids:
        raise ValueError("beam search needs a prompt of at least one token")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int):
        raise ValueError(f"the number of new tokens must be a whole number, got {max_new_tokens!r}")
    if not 1 <= max_new_tokens <= MAX_BEAM_TOKENS:
        raise ValueError(
            f"beam search adds between 1 and {MAX_BEAM_TOKENS} new tokens, got {max_new_tokens}"
        )
    if 2 * k > vocab_size:
        raise ValueError(
            _(
                "{k} beams look at {extensions} extensions a step, more than the {vocabulary} "
                "tokens of this vocabulary"
            ).format(k=k, extensions=2 * k, vocabulary=vocab_size)
        )


@torch.no_grad()
def next_log_probs(model: nn.Module, ids: list[int], beams: list[Beam]) -> Tensor:
    """(len(beams), vocab_size): log p of every next token after each beam, in one batch (every
    beam has the same length); the context is cropped to ``block_size`` as in ``generate``."""
    block_size = model.config.block_size
    batch = torch.tensor([(list(ids) + list(beam.tokens))[-block_size:] for beam in beams])
    return torch.log_softmax(model(batch).logits[:, -1].float(), dim=-1)


@torch.no_grad()
def beam_search(
    model: nn.Module,
    ids: list[int],
    max_new_tokens: int,
    settings: BeamSettings = BeamSettings(),
    eos_id: int | None = None,
) -> BeamSearch:
    """Decode up to ``max_new_tokens`` after ``ids`` keeping the ``settings.num_beams`` best
    texts at each step; a text ends at ``eos_id`` (its last token) or at the length limit."""
    k, penalty, early = settings.num_beams, settings.length_penalty, settings.early_stopping
    check_beam_search(model.config.vocab_size, ids, max_new_tokens, k)
    beams = [Beam((), 0.0)]
    finished: list[Beam] = []
    improvable = True  # can a running beam still beat the worst finished text?
    steps: list[BeamStep] = []
    for step in range(max_new_tokens):
        length = step + 1  # new tokens in every extension of this step
        last = length == max_new_tokens
        log_probs = next_log_probs(model, ids, beams)  # (beams, vocab)
        totals = log_probs + torch.tensor([beam.log_prob for beam in beams])[:, None]
        values, flat = totals.flatten().topk(2 * k)  # the 2k best extensions of any beam
        vocab = log_probs.size(-1)
        candidates = []
        room = improvable and not (len(finished) == k and early is True)
        for rank, (total, index) in enumerate(zip(values.tolist(), flat.tolist(), strict=True)):
            parent, token = divmod(index, vocab)
            ends = last or token == eos_id
            beam = Beam(beams[parent].tokens + (token,), total, finished=ends)
            if ends:  # only the k best extensions may finish a text
                fate = "finished" if rank < k and room else "dropped"
            else:
                kept = sum(c.fate == "kept" for c in candidates)
                fate = "kept" if kept < k else "dropped"
            candidates.append(Candidate(beam, parent, log_probs[parent, token].item(), fate))
        new = [c.beam for c in candidates if c.fate == "finished"]
        finished = sorted(finished + new, key=lambda b: b.score(penalty), reverse=True)[:k]
        beams = [c.beam for c in candidates if c.fate == "kept"]
        steps.append(BeamStep(candidates, beams, list(finished)))
        if last:
            break
        hoped = max_new_tokens if early == "never" and penalty > 0 else length
        best_running = beams[0].log_prob / hoped**penalty
        worst = finished[-1].score(penalty) if len(finished) == k else -math.inf
        improvable = improvable and best_running > worst
        if not improvable or (len(finished) == k and early is True):
            break
    return BeamSearch(settings, steps, finished)
