"""Masked language modelling, measured: the computations behind the BERT lesson.

* ``embedding_breakdown``: the token, segment and position rows BERT adds up for a sentence
  pair ``[CLS] A [SEP] B [SEP]``, their sum and the LayerNormed result the first layer reads.
* ``masking_draws``: the BERT corruption of one sentence drawn again and again from one seeded
  generator, each draw as a ``Ledger`` of what happened to every token.
* ``ledger_statistics``: many draws at once, counted: how many tokens each draw selects and
  how the selected ones split into ``[MASK]`` / random / unchanged, next to the exact
  distribution the configured rates imply.
* ``epoch_ledgers``: static masking (one mask, reused every epoch, as in the original BERT
  code) against dynamic masking (a fresh mask every epoch, as in RoBERTa).
* ``fill_in_blanks``: replace chosen positions by ``[MASK]`` and read the model's top-k guesses.
* ``predict_*``: the lesson's prediction questions on the student's sentences and blanks.

Token ids follow the project's tokenizers: the special tokens hold ids 0 to 6 and are never
selected for masking.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from tinyformers.i18n import _
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.corpora.stories import PLURAL_VERBS, SINGULAR_VERBS
from tinyformers.text.inputs import bert_inputs
from tinyformers.text.masking import (
    IGNORE_INDEX,
    MASKED,
    NOT_SELECTED,
    RANDOM,
    UNCHANGED,
    MaskingRates,
    mask_tokens,
)
from tinyformers.text.tokenizers import SPECIAL_TOKENS, WORDPIECE_PREFIX
from tinyformers.trace import Trace, trace_ids

# What the lesson's page starts with (the lesson plans time the same computation).
MODEL = "bert-stories"
DEFAULT_A = "Mia sees the friendly fox ."
DEFAULT_B = "she smiles ."
SPECIAL_IDS = frozenset(range(len(SPECIAL_TOKENS)))
SELECTED_CODES = (MASKED, RANDOM, UNCHANGED)
MAX_SAMPLES = 100_000
MAX_DRAWS = 10_000
MAX_TOP_K = 50


def _check_whole_number(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low:,} to {high:,}, got {value!r}")
    return value


def _check_ids(ids: list[int]) -> None:
    if len(ids) == 0:
        raise ValueError("there are no tokens: type a few words first")


# ---------------------------------------------------------------------------------------------
# Input representation: token + segment + position, then LayerNorm
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddingBreakdown:
    """The three rows BERT adds for each position of its input, each ``(T, C)``."""

    ids: list[int]
    tokens: list[str]
    segments: list[int]  # 0 for sentence A (and [CLS]), 1 for sentence B
    token: Tensor  # wte[ids]
    segment: Tensor  # wse[segments]
    position: Tensor  # wpe[0 .. T-1]
    after_layer_norm: Tensor | None = None  # (T, C) the sum after ln_emb: what block 0 reads

    @property
    def total(self) -> Tensor:
        """What the embedding LayerNorm receives: token + segment + position."""
        return self.token + self.segment + self.position

    def mean_lengths(self) -> dict[str, float]:
        """Average vector length of each row, of their sum and of the sum after LayerNorm, by
        name."""
        rows = {
            "token": self.token,
            "segment": self.segment,
            "position": self.position,
            "sum": self.total,
            "after LayerNorm": self.after_layer_norm,
        }
        return {name: row.norm(dim=-1).mean().item() for name, row in rows.items()}


def pair_token_limits(block_size: int) -> tuple[int, int]:
    """The most tokens sentences A and B may have so that ``[CLS] A [SEP] B [SEP]`` fits in
    ``block_size``: the three special tokens first, then half each (B gets an odd one over)."""
    room = block_size - 3
    if room < 2:
        raise ValueError(f"a block of {block_size} tokens has no room for a sentence pair")
    return room // 2, (room + 1) // 2


def segment_row_lengths(model: nn.Module) -> list[float]:
    """The length of each of the model's segment rows: ``[A, B]``."""
    return model.wse.weight.norm(dim=-1).tolist()


@torch.no_grad()
def embedding_breakdown(
    model: nn.Module, tokenizer, text_a: str, text_b: str | None = None
) -> EmbeddingBreakdown:
    """The rows a BERT model adds for ``[CLS] A [SEP]`` (``B [SEP]`` too, given B), read from
    the record of one forward pass."""
    ids, segments = bert_inputs(tokenizer, text_a, text_b)
    if len(ids) > model.config.block_size:
        raise ValueError(
            _(
                "the pair has {count} tokens with [CLS] and [SEP]; this model reads at most {limit}"
            ).format(count=len(ids), limit=model.config.block_size)
        )
    out = model(
        torch.tensor([ids]), token_type_ids=torch.tensor([segments]), return_record=True
    )  # ids: (1, T)
    embeddings = out.record.embeddings
    position = embeddings.position
    if position is None:
        position = torch.zeros(len(ids), model.config.n_embd)  # (T, C)
    return EmbeddingBreakdown(
        ids=ids,
        tokens=tokenizer.display_tokens(ids),
        segments=segments,
        token=embeddings.token[0],
        segment=embeddings.segment[0],
        position=position,
        after_layer_norm=out.record.norms["ln_emb"].output[0],
    )


# ---------------------------------------------------------------------------------------------
# The masking ledger of one sentence
# ---------------------------------------------------------------------------------------------


def word_starts(tokens: list[str]) -> list[bool]:
    """Which WordPiece tokens begin a word: all but the ``##`` pieces that continue one."""
    return [not token.startswith(WORDPIECE_PREFIX) for token in tokens]


@dataclass(frozen=True)
class Ledger:
    """One draw of BERT's corruption on one sentence, position by position."""

    ids: list[int]  # the original ids
    input_ids: list[int]  # what the model reads
    tokens: list[str]  # the original tokens
    seen: list[str]  # the tokens the model reads
    labels: list[int]  # the original id where selected, IGNORE_INDEX (-100) elsewhere
    codes: list[int]  # NOT_SELECTED, MASKED, RANDOM or UNCHANGED
    special: list[bool]  # special tokens are never selected

    @property
    def loss_positions(self) -> list[int]:
        """The positions that carry a loss (their label is not -100)."""
        return [i for i, label in enumerate(self.labels) if label != IGNORE_INDEX]

    def count(self, code: int) -> int:
        """How many ordinary tokens got ``code``."""
        return sum(1 for c, s in zip(self.codes, self.special, strict=True) if c == code and not s)

    @property
    def n_ordinary(self) -> int:
        """How many tokens may be selected: every one but the special tokens."""
        return len(self.ids) - sum(self.special)


def _word_starts_of(ids: list[int], tokenizer, whole_word: bool) -> list[bool] | None:
    """Where words start, when whole-word masking is on (None when it is off)."""
    return word_starts(tokenizer.display_tokens(ids)) if whole_word else None


def _batch_of(ids: list[int], starts: list[bool] | None, size: int) -> tuple[Tensor, Tensor | None]:
    """The sentence (and its word starts) repeated ``size`` times: ``(size, T)`` tensors."""
    batch = torch.tensor([ids]).expand(size, len(ids))
    return batch, None if starts is None else torch.tensor([starts]).expand(size, len(ids))


def masking_draws(
    ids: list[int],
    tokenizer,
    rates: MaskingRates,
    seed: int,
    count: int,
    whole_word: bool = False,
) -> list[Ledger]:
    """``count`` corruptions of the sentence ``ids``, drawn one after another from a generator
    seeded with ``seed``: draw ``k`` is the same whenever seed and rates are.

    With ``whole_word``, all pieces of a word are selected together (whole-word masking).
    """
    _check_ids(ids)
    _check_whole_number(seed, "the seed", 0, 2**63 - 1)
    _check_whole_number(count, "the number of draws", 1, MAX_DRAWS)
    batch, starts = _batch_of(ids, _word_starts_of(ids, tokenizer, whole_word), 1)
    special = [i in SPECIAL_IDS for i in ids]
    tokens = tokenizer.display_tokens(ids)
    generator = torch.Generator().manual_seed(seed)
    ledgers = []
    for _draw in range(count):
        out = mask_tokens(
            batch, tokenizer.mask_id, tokenizer.vocab_size, SPECIAL_IDS, rates, generator, starts
        )
        ledgers.append(
            Ledger(
                ids=list(ids),
                input_ids=out.input_ids[0].tolist(),
                tokens=tokens,
                seen=tokenizer.display_tokens(out.input_ids[0].tolist()),
                labels=out.labels[0].tolist(),
                codes=out.ledger[0].tolist(),
                special=special,
            )
        )
    return ledgers


# ---------------------------------------------------------------------------------------------
# Many draws at once: do the rates hold?
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerStatistics:
    """Counts over ``samples`` independent draws of the corruption of one sentence."""

    samples: int
    eligible: int  # ordinary (non-special) tokens per sentence
    counts: dict[int, int]  # ledger code -> how many ordinary tokens got it, over all draws
    selected_histogram: list[int]  # [k] = number of draws that selected exactly k tokens
    expected_histogram: list[float]  # [k] = probability of selecting exactly k tokens

    @property
    def selected(self) -> int:
        return sum(self.counts[code] for code in SELECTED_CODES)

    @property
    def select_rate(self) -> float | None:
        """Share of ordinary tokens that were selected (None if there are none)."""
        total = self.samples * self.eligible
        return self.selected / total if total else None

    def share(self, code: int) -> float | None:
        """Share of the selected tokens that got ``code`` (None if nothing was selected)."""
        return self.counts[code] / self.selected if self.selected else None

    @property
    def mean_selected(self) -> float:
        return self.selected / self.samples


def selection_units(ids: list[int], starts: list[bool] | None = None) -> list[int]:
    """Sizes of the groups of ordinary tokens that are selected together: every token on its
    own, or, given where words start (whole-word masking), each word's ordinary pieces."""
    eligible = [i not in SPECIAL_IDS for i in ids]
    if starts is None:
        return [1] * sum(eligible)
    units: list[int] = []
    for is_eligible, starts_word in zip(eligible, starts, strict=True):
        if starts_word or not units:
            units.append(0)
        units[-1] += int(is_eligible)
    return [size for size in units if size]


def expected_selected_distribution(unit_sizes: list[int], select_rate: float) -> list[float]:
    """Exact probability of selecting k tokens, k = 0 .. sum(unit_sizes), when each group of
    tokens is selected independently with probability ``select_rate`` (a sum of Bernoullis)."""
    if not 0 <= select_rate <= 1:
        raise ValueError(f"the select rate must be between 0 and 1, got {select_rate!r}")
    probabilities = [1.0]
    for size in unit_sizes:
        grown = [0.0] * (len(probabilities) + size)
        for k, p in enumerate(probabilities):
            grown[k] += p * (1 - select_rate)
            grown[k + size] += p * select_rate
        probabilities = grown
    return probabilities


def ledger_statistics(
    ids: list[int],
    tokenizer,
    rates: MaskingRates,
    seed: int,
    samples: int,
    whole_word: bool = False,
) -> LedgerStatistics:
    """Draw the corruption of ``ids`` ``samples`` times (one batch, one seeded generator) and
    count what happened."""
    _check_ids(ids)
    _check_whole_number(seed, "the seed", 0, 2**63 - 1)
    _check_whole_number(samples, "the number of samples", 1, MAX_SAMPLES)
    starts = _word_starts_of(ids, tokenizer, whole_word)
    batch, start_batch = _batch_of(ids, starts, samples)
    generator = torch.Generator().manual_seed(seed)
    out = mask_tokens(
        batch, tokenizer.mask_id, tokenizer.vocab_size, SPECIAL_IDS, rates, generator, start_batch
    )
    eligible = torch.tensor([i not in SPECIAL_IDS for i in ids])
    codes = out.ledger[:, eligible]  # (samples, eligible)
    n_eligible = int(eligible.sum())
    selected_per_draw = (codes != NOT_SELECTED).sum(dim=1)
    histogram = torch.bincount(selected_per_draw, minlength=n_eligible + 1)
    units = selection_units(ids, starts)
    return LedgerStatistics(
        samples=samples,
        eligible=n_eligible,
        counts={code: int((codes == code).sum()) for code in (NOT_SELECTED, *SELECTED_CODES)},
        selected_histogram=histogram.tolist(),
        expected_histogram=expected_selected_distribution(units, rates.select_rate),
    )


# ---------------------------------------------------------------------------------------------
# Static against dynamic masking
# ---------------------------------------------------------------------------------------------


def epoch_ledgers(
    ids: list[int],
    tokenizer,
    rates: MaskingRates,
    seed: int,
    epochs: int,
    dynamic: bool,
    whole_word: bool = False,
) -> list[Ledger]:
    """The corruption the sentence gets in each of ``epochs`` passes over the data.

    Static masking draws once and reuses that mask every epoch; dynamic masking draws again
    each epoch (draw ``e`` of ``masking_draws`` for epoch ``e``).
    """
    _check_whole_number(epochs, "the number of epochs", 1, MAX_DRAWS)
    draws = masking_draws(ids, tokenizer, rates, seed, epochs if dynamic else 1, whole_word)
    return draws if dynamic else draws * epochs


def trained_positions(ledgers: list[Ledger]) -> list[int]:
    """The positions that carried a loss in at least one of the ledgers."""
    return sorted({p for ledger in ledgers for p in ledger.loss_positions})


# ---------------------------------------------------------------------------------------------
# Filling in the blanks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlankGuess:
    """The model's top-k tokens for one masked position."""

    position: int
    answer: str | None  # the token that was there before masking; None for a typed [MASK]
    tokens: list[str]
    probabilities: list[float]
    answer_probability: float | None
    answer_rank: int | None  # 1 = the model's first choice

    def top(self, k: int) -> BlankGuess:
        """The same guess cut to its ``k`` most likely tokens."""
        return replace(self, tokens=self.tokens[:k], probabilities=self.probabilities[:k])


def ordinary_positions(ids: list[int]) -> list[int]:
    """The positions of ``ids`` that hold an ordinary token, the ones that may be masked."""
    return [i for i, token_id in enumerate(ids) if token_id not in SPECIAL_IDS]


def suggest_blank(tokens: list[str]) -> int | None:
    """A position worth masking in a model input: its last verb of the stories language, else
    the middle ordinary token; None if every token is special."""
    ordinary = [i for i, token in enumerate(tokens) if token not in SPECIAL_TOKENS]
    if not ordinary:
        return None
    verbs = [i for i in ordinary if tokens[i] in SINGULAR_VERBS | PLURAL_VERBS]
    return verbs[-1] if verbs else ordinary[len(ordinary) // 2]


def typed_blanks(ids: list[int], mask_id: int) -> list[int]:
    """The positions where the input already holds ``[MASK]`` (the student typed it)."""
    return [i for i, token_id in enumerate(ids) if token_id == mask_id]


def with_blanks(ids: list[int], positions: list[int], mask_id: int) -> list[int]:
    """``ids`` with every chosen position replaced by ``mask_id`` (a typed ``[MASK]`` stays)."""
    for position in positions:
        if not 0 <= position < len(ids):
            raise ValueError(f"position {position} is outside the input (0 to {len(ids) - 1})")
        if ids[position] in SPECIAL_IDS and ids[position] != mask_id:
            raise ValueError(f"position {position} holds a special token; pick an ordinary one")
    chosen = set(positions)
    return [mask_id if i in chosen else token_id for i, token_id in enumerate(ids)]


def fill_in_blanks(
    model: nn.Module, tokenizer, ids: list[int], positions: list[int], k: int = 5
) -> tuple[Trace, list[BlankGuess]]:
    """Mask ``positions`` of the model input ``ids`` and read the top-``k`` guesses for each.

    Returns the trace of the masked input (its attention shows where each blank looks) and one
    ``BlankGuess`` per position, in the order given. A position that already holds ``[MASK]``
    has no original token to rank.
    """
    _check_ids(ids)
    if not positions:
        raise ValueError("choose at least one position to mask")
    if len(ids) > model.config.block_size:
        raise ValueError(f"the input has {len(ids)} tokens; at most {model.config.block_size}")
    k = _check_whole_number(k, "k", 1, min(MAX_TOP_K, tokenizer.vocab_size))
    masked = with_blanks(ids, positions, tokenizer.mask_id)
    trace = trace_ids(model, masked, tokenizer.display_tokens(masked))
    guesses = []
    for position in positions:
        probabilities = trace.logits[0, position].softmax(dim=-1)  # (vocab,)
        top = probabilities.topk(k)
        typed = ids[position] == tokenizer.mask_id
        answer_probability = None if typed else probabilities[ids[position]]
        guesses.append(
            BlankGuess(
                position=position,
                answer=None if typed else tokenizer.display_tokens([ids[position]])[0],
                tokens=tokenizer.display_tokens(top.indices.tolist()),
                probabilities=top.values.tolist(),
                answer_probability=None if typed else float(answer_probability),
                answer_rank=None if typed else int((probabilities > answer_probability).sum()) + 1,
            )
        )
    return trace, guesses


def attention_from(trace: Trace, position: int) -> Tensor:
    """Where one position looks: ``(n_layer, n_head, T)``, every row summing to one."""
    if not 0 <= position < len(trace.tokens):
        raise ValueError(f"position {position} is outside the input (0 to {len(trace.tokens) - 1})")
    return torch.stack([layer[0, :, position, :] for layer in trace.attentions])


# ---------------------------------------------------------------------------------------------
# Predict, then reveal (the lesson's ``predict:`` questions)
# ---------------------------------------------------------------------------------------------

REVEAL_DRAWS = 10_000  # draws of the masking that measure an average for a revealed answer


def position_label(tokens: list[str], position: int) -> str:
    """'position: token' as the page's position pickers show it."""
    return f"{position}: {tokens[position]!r}"


def predict_segment_b(loaded, pair: tuple[str, str]) -> Prediction:
    """How many positions of ``[CLS] A [SEP] B [SEP]`` get segment B's row: B's tokens and the
    ``[SEP]`` that closes it. ``pair`` is the page's sentences A and B."""
    text_a, text_b = pair
    if not loaded.tokenizer.encode(text_a) or not loaded.tokenizer.encode(text_b):
        raise ValueError("type both sentences, A and B")

    def reveal() -> Reveal:
        breakdown = embedding_breakdown(loaded.model, loaded.tokenizer, text_a, text_b)
        in_b = sum(breakdown.segments)
        values = {"b_tokens": in_b - 1, "positions": len(breakdown.ids), "in_b": in_b}
        return Reveal(in_b, values)

    bounds = (0, loaded.config.block_size)
    return Prediction({"text_a": text_a, "text_b": text_b}, reveal, bounds=bounds)


def predict_masked_count(loaded, ledger: tuple[list[int], MaskingRates, int, bool]) -> Prediction:
    """How many tokens of the ledger sentence the model reads as ``[MASK]``, on average over
    many draws: measured over ``REVEAL_DRAWS`` draws. ``ledger`` is what the page's masking
    sections use: the sentence's ids, the rates, the seed and whole-word masking."""
    ledger_ids, rates, seed, whole_word = ledger
    _check_ids(ledger_ids)
    tokenizer = loaded.tokenizer
    eligible = len(ordinary_positions(ledger_ids))
    if eligible == 0:
        raise ValueError("the sentence has no ordinary token that could be masked")

    def reveal() -> Reveal:
        stats = ledger_statistics(ledger_ids, tokenizer, rates, seed, REVEAL_DRAWS, whole_word)
        measured = stats.counts[MASKED] / stats.samples
        expected = eligible * rates.select_rate * rates.mask_rate
        values = {
            "eligible": eligible,
            "expected": f"{expected:.3f}",
            "measured": f"{measured:.3f}",
            "draws": stats.samples,
        }
        return Reveal(measured, values, data={"stats": stats, "rates": rates})

    values = {
        "sentence": " ".join(tokenizer.display_tokens(ledger_ids)),
        "select": f"{rates.select_rate:.0%}",
        "mask": f"{rates.mask_rate:.0%}",
    }
    return Prediction(values, reveal, bounds=(0.0, float(len(ledger_ids))))


SHOWN_GUESSES = 10  # guesses the figure of a revealed answer shows


def _masked_input(loaded, blanks: tuple[list[int], list[int]]) -> tuple[list[str], int]:
    """The tokens the model reads (every blank masked) and the first blank's position."""
    ids, positions = blanks
    if not positions:
        raise ValueError("choose a position to mask")
    masked = with_blanks(list(ids), list(positions), loaded.tokenizer.mask_id)
    return loaded.tokenizer.display_tokens(masked), positions[0]


def _guesses(loaded, blanks: tuple[list[int], list[int]]) -> tuple[Trace, list[BlankGuess]]:
    ids, positions = blanks
    k = min(SHOWN_GUESSES, loaded.tokenizer.vocab_size)
    return fill_in_blanks(loaded.model, loaded.tokenizer, list(ids), list(positions), k)


def predict_blank_confidence(loaded, blanks: tuple[list[int], list[int]]) -> Prediction:
    """The probability the model gives its first choice for the first blank."""
    tokens, position = _masked_input(loaded, blanks)

    def reveal() -> Reveal:
        guess = _guesses(loaded, blanks)[1][0]
        values = {
            "top": repr(guess.tokens[0]),
            "second": repr(guess.tokens[1]),
            "second_probability": f"{guess.probabilities[1]:.3f}",
        }
        return Reveal(guess.probabilities[0], values, data={"guesses": [guess]})

    values = {"sentence": " ".join(tokens), "blank": position_label(tokens, position)}
    return Prediction(values, reveal, bounds=(0.0, 1.0))


def predict_blank_attention(loaded, blanks: tuple[list[int], list[int]]) -> Prediction:
    """The position the first blank gives the most attention to, averaged over every head of
    every layer."""
    tokens, position = _masked_input(loaded, blanks)

    def reveal() -> Reveal:
        trace, _ = _guesses(loaded, blanks)
        weights = attention_from(trace, position)  # (layers, heads, T)
        mean = weights.mean(dim=(0, 1))  # (T,)
        best = int(mean.argmax())
        values = {
            "weight": f"{float(mean[best]):.3f}",
            "heads": weights.shape[0] * weights.shape[1],
        }
        data = {"weights": weights, "tokens": trace.tokens, "position": position}
        return Reveal(position_label(tokens, best), values, data)

    labels = tuple(position_label(tokens, i) for i in range(len(tokens)))
    values = {"sentence": " ".join(tokens), "blank": position_label(tokens, position)}
    return Prediction(values, reveal, labels)
