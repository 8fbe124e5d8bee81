"""Greedy decoding of an encoder-decoder, one step at a time, with what each step looked at.

``greedy_steps`` runs the encoder once, then asks the decoder for one token at a time, exactly as
``Seq2Seq.generate_greedy`` does, and records for every step the token chosen, its probability,
the runners-up and the cross-attention row of the new position in every layer and head: which
source tokens the decoder read to emit that token.

``decode_with_trace`` adds the trace of the finished output (self-, masked self- and
cross-attention of every layer), and the functions after it read one head, or the mean of the
heads, out of those attentions.

``greedy_decode_batch`` decodes many sources at once (right-padded, with an attention mask), and
``exact_match`` uses it to measure a model on (source, target) pairs.

The ``predict_*`` functions at the end are the lesson's prediction questions.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tinyformers.i18n import _
from tinyformers.model.build import count_parameters
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.span_corruption import MIN_RATE, corrupt_spans, span_counts
from tinyformers.text.tokenizers import SPECIAL_TOKENS
from tinyformers.trace import Trace, trace_seq2seq
from tinyformers.training.zoo import date_splits

# What the lesson's page starts with (the lesson plans time the same computation): the date
# model on the first of the held-out dates it offers.
DATE_MODEL = "seq2seq-date"
N_EXAMPLES = 8
MAX_LISTED_CHARACTERS = 8
TOP_K = 3
MEAN = "mean"  # in place of a head number: the mean over the heads


def held_out_sources(n: int = N_EXAMPLES) -> list[str]:
    """The sources of the date task's first ``n`` held-out pairs: the model never saw them in
    training. The page offers them as examples and starts with the first."""
    return [source for source, _ in date_splits()[1][:n]]


@dataclass(frozen=True)
class DecodingStep:
    """One decoder step: the token it emitted and where it looked in the source."""

    index: int  # 0 for the first token after [BOS]
    token_id: int
    token: str
    probability: float
    alternatives: tuple[tuple[str, float], ...]  # the TOP_K most likely tokens, best first
    cross_attention: Tensor  # (n_layer, n_head, source length); each row sums to 1
    is_end: bool  # the decoder chose [EOS]


@dataclass(frozen=True)
class BatchDecoding:
    ids: list[list[int]]  # per source, the generated ids after [BOS], without [EOS]
    decoder_input: Tensor  # (B, T): [BOS] followed by every id generated for the batch
    cross_attentions: list[Tensor]  # per layer (B, heads, T, S); padded source positions get 0


def describe_character(char: str) -> str:
    name = unicodedata.name(char, "unnamed character")
    return f"{char!r} (U+{ord(char):04X} {name})"


def encode_source(tokenizer, text: str, max_tokens: int) -> list[int]:
    """The token ids of ``text`` (surrounding spaces removed), or a ValueError saying what is wrong:
    nothing to read, characters the tokenizer does not know, or more tokens than ``max_tokens``."""
    text = text.strip()
    if not text:
        raise ValueError(_("there is nothing to read: the text is empty"))
    unknown = [c for c in dict.fromkeys(text) if tokenizer.unk_id in tokenizer.encode(c)]
    if unknown:
        listed = ", ".join(describe_character(c) for c in unknown[:MAX_LISTED_CHARACTERS])
        more = len(unknown) - MAX_LISTED_CHARACTERS
        listed += _(" and {more} more").format(more=more) if more > 0 else ""
        message = (
            _(
                "the model has never seen this character: {listed}. Its vocabulary has only the "
                "characters of its training data."
            )
            if len(unknown) == 1
            else _(
                "the model has never seen these characters: {listed}. Its vocabulary has only "
                "the characters of its training data."
            )
        )
        raise ValueError(message.format(listed=listed))
    ids = tokenizer.encode(text)
    if len(ids) > max_tokens:
        raise ValueError(
            _(
                "the text has {count} tokens; this model reads at most {limit}. Type a shorter "
                "text."
            ).format(count=len(ids), limit=max_tokens)
        )
    return ids


def _top(probabilities: Tensor, tokenizer) -> tuple[tuple[str, float], ...]:
    values, ids = probabilities.topk(min(TOP_K, probabilities.numel()))
    tokens = tokenizer.display_tokens(ids.tolist())
    return tuple(zip(tokens, values.tolist(), strict=True))


def _step_limit(model: nn.Module, max_new_tokens: int | None) -> int:
    """How many tokens ``generate_greedy`` may emit: the same rule, so the two agree."""
    block_size = model.config.block_size
    limit = block_size - 1 if max_new_tokens is None else max_new_tokens
    if limit < 0:
        raise ValueError(f"max_new_tokens must be 0 or more, got {max_new_tokens}")
    return min(limit, block_size - 1)


@torch.no_grad()
def greedy_steps(
    model: nn.Module, tokenizer, src_ids: Sequence[int], max_new_tokens: int | None = None
) -> list[DecodingStep]:
    """Greedy decoding of one source, step by step. The last step is [EOS] when the model ends
    the output itself; the other steps are exactly the ids ``generate_greedy`` returns."""
    src = torch.tensor([list(src_ids)], dtype=torch.long)  # (1, S)
    if src.size(1) == 0:
        raise ValueError("the source is empty; there is nothing to decode")
    memory, _, _ = model.encode(src)
    tgt = torch.tensor([[tokenizer.bos_id]])  # (1, T)
    steps: list[DecodingStep] = []
    for index in range(_step_limit(model, max_new_tokens)):
        out = model(src, tgt, memory=memory, output_attentions=True)
        probabilities = torch.softmax(out.logits[0, -1], dim=-1)  # (vocab_size,)
        token_id = int(out.logits[0, -1].argmax())
        rows = torch.stack([layer[0, :, -1] for layer in out.cross_attentions])  # (L, H, S)
        steps.append(
            DecodingStep(
                index=index,
                token_id=token_id,
                token=tokenizer.display_tokens([token_id])[0],
                probability=float(probabilities[token_id]),
                alternatives=_top(probabilities, tokenizer),
                cross_attention=rows,
                is_end=token_id == tokenizer.eos_id,
            )
        )
        if token_id == tokenizer.eos_id:
            break
        tgt = torch.cat([tgt, torch.tensor([[token_id]])], dim=1)
    return steps


def generated_ids(steps: Sequence[DecodingStep]) -> list[int]:
    """The ids of the output, without the final [EOS]."""
    return [step.token_id for step in steps if not step.is_end]


def decode_with_trace(model: nn.Module, tokenizer, source: str) -> tuple[list[DecodingStep], Trace]:
    """Greedy decoding of the text ``source`` step by step, and the trace of the finished
    output: the decoder reads [BOS] and every output token but the last, so position t
    predicts step t."""
    src = encode_source(tokenizer, source, model.config.block_size)
    steps = greedy_steps(model, tokenizer, src)
    decoder_ids = [tokenizer.bos_id, *(step.token_id for step in steps[:-1])]
    trace = trace_seq2seq(
        model,
        src,
        decoder_ids,
        tokenizer.display_tokens(src),
        tokenizer.display_tokens(decoder_ids),
    )
    return steps, trace


def known_tokens(tokenizer) -> list[str]:
    """Every token of the tokenizer's vocabulary but the special tokens, in id order."""
    vocabulary = tokenizer.display_tokens(list(range(tokenizer.vocab_size)))
    return [token for token in vocabulary if token not in SPECIAL_TOKENS]


# ---------------------------------------------------------------------------------------------
# Reading the attention of one head (or the mean of the heads)
# ---------------------------------------------------------------------------------------------


def _check_head(head: int | str, n_head: int) -> None:
    if head != MEAN and not (isinstance(head, int) and 0 <= head < n_head):
        raise ValueError(f"head must be {MEAN!r} or a number from 0 to {n_head - 1}, got {head!r}")


def head_weights(layers: Sequence[Tensor], layer: int, head: int | str) -> Tensor:
    """One head's ``(q, k)`` matrix of a layer's ``(1, heads, q, k)`` attention, or the mean
    over the heads (``head = MEAN``)."""
    if not 0 <= layer < len(layers):
        raise ValueError(f"layer must be a number from 0 to {len(layers) - 1}, got {layer!r}")
    weights = layers[layer][0]  # (heads, q, k)
    _check_head(head, weights.shape[0])
    return weights.mean(dim=0) if head == MEAN else weights[head]


def step_row(rows: Tensor, layer: int, head: int | str) -> Tensor:
    """One decoding step's cross-attention row ``(source,)`` out of its ``(layers, heads,
    source)`` rows: one head's, or the mean over the heads."""
    _check_head(head, rows.shape[1])
    return rows[layer].mean(dim=0) if head == MEAN else rows[layer, head]


def future_weight(weights: Tensor) -> float:
    """The largest weight above the diagonal of a square ``(T, T)`` attention matrix: how much
    a position looks at later ones (0 under a causal mask)."""
    if weights.dim() != 2 or weights.shape[0] != weights.shape[1]:
        raise ValueError(f"expected a square attention matrix, got shape {tuple(weights.shape)}")
    if weights.shape[0] < 2:
        return 0.0
    return weights.triu(diagonal=1).abs().max().item()


def strongest_sources(cross: Tensor) -> list[int]:
    """For each row of a ``(T, S)`` cross-attention matrix, the source position it weighs most."""
    return cross.argmax(dim=-1).tolist()


def row_sum_deviation(weights: Tensor) -> float:
    """How far the rows of an attention matrix are from summing to 1, at most."""
    return (weights.sum(dim=-1) - 1).abs().max().item()


# ---------------------------------------------------------------------------------------------
# Where the three families fit
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelShape:
    """The size of a model, measured on the model itself."""

    family: str  # "bert", "gpt" or "seq2seq"
    encoder_layers: int
    decoder_layers: int
    heads: int
    width: int
    parameters: int


def stack_depths(family: str, config) -> tuple[int, int]:
    """(encoder layers, decoder layers) of a model of ``family``: bert, gpt or seq2seq."""
    if family == "bert":
        return config.n_layer, 0
    if family == "gpt":
        return 0, config.n_layer
    if family == "seq2seq":
        return config.n_layer, config.n_decoder_layer
    raise ValueError(f"unknown model family {family!r}; expected bert, gpt or seq2seq")


def model_shape(family: str, model: nn.Module) -> ModelShape:
    """The stacks, heads, width and parameter count of ``model``, a model of ``family``."""
    config = model.config
    encoder_layers, decoder_layers = stack_depths(family, config)
    return ModelShape(
        family,
        encoder_layers,
        decoder_layers,
        config.n_head,
        config.n_embd,
        count_parameters(model),
    )


# ---------------------------------------------------------------------------------------------
# Many sources at once
# ---------------------------------------------------------------------------------------------


def pad_sources(sources: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-pad token id lists into a (B, S) batch and its 0/1 attention mask (1 = real)."""
    if not sources or any(len(s) == 0 for s in sources):
        raise ValueError("every source needs at least one token")
    length = max(len(s) for s in sources)
    ids = torch.full((len(sources), length), pad_id, dtype=torch.long)
    mask = torch.zeros(len(sources), length, dtype=torch.long)
    for row, source in enumerate(sources):
        ids[row, : len(source)] = torch.tensor(list(source))
        mask[row, : len(source)] = 1
    return ids, mask


@torch.no_grad()
def greedy_decode_batch(
    model: nn.Module, tokenizer, sources: Sequence[Sequence[int]], max_new_tokens: int | None = None
) -> BatchDecoding:
    """Greedy decoding of many sources at once. Shorter sources are padded on the right and the
    padding is masked, so every source is decoded as if it were alone."""
    src, src_mask = pad_sources(sources, tokenizer.pad_id)
    memory, _, _ = model.encode(src, src_mask)
    tgt = torch.full((len(sources), 1), tokenizer.bos_id)  # (B, T)
    finished = torch.zeros(len(sources), dtype=torch.bool)
    for _step in range(_step_limit(model, max_new_tokens)):
        logits = model(src, tgt, src_attention_mask=src_mask, memory=memory).logits[:, -1]
        next_ids = logits.argmax(dim=-1)  # (B,)
        finished |= next_ids == tokenizer.eos_id
        tgt = torch.cat([tgt, next_ids[:, None]], dim=1)
        if finished.all():
            break
    out = model(src, tgt, src_attention_mask=src_mask, memory=memory, output_attentions=True)
    ids = []
    for row in tgt[:, 1:].tolist():
        ids.append(row[: row.index(tokenizer.eos_id)] if tokenizer.eos_id in row else row)
    return BatchDecoding(ids, tgt, list(out.cross_attentions))


def exact_match(
    model: nn.Module, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 100
) -> float:
    """The share of (source, target) pairs whose greedy output, decoded to text, is the target."""
    if not pairs:
        raise ValueError("exact match needs at least one (source, target) pair")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    block_size = model.config.block_size
    right = 0
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        sources = [encode_source(tokenizer, source, block_size) for source, _ in batch]
        decoded = greedy_decode_batch(model, tokenizer, sources)
        outputs = [tokenizer.decode(ids) for ids in decoded.ids]
        right += sum(output == target for output, (_, target) in zip(outputs, batch, strict=True))
    return right / len(pairs)


# ---------------------------------------------------------------------------------------------
# Predict, then reveal (the lesson's ``predict:`` questions)
# ---------------------------------------------------------------------------------------------

SPAN_RATE_LIMIT = 0.5  # the highest corruption rate the page offers
SPAN_MARGIN = 0.15  # a what-if rate at least this far from the page's, so the counts change


def predict_decoder_runs(source: str, steps: list[DecodingStep]) -> Prediction:
    """How many times the decoder runs to rewrite ``source`` greedily: once per output token,
    the final [EOS] included (``steps``: the page's decoding of ``source``)."""
    if not steps:
        raise ValueError("the source has not been decoded")

    def reveal() -> Reveal:
        output = [step.token for step in steps if not step.is_end]
        values = {
            "output": "".join(output),
            "characters": len(output),
            "end_runs": len(steps) - len(output),
            "runs": len(steps),
        }
        return Reveal(len(steps), values)

    return Prediction({"source": source}, reveal, bounds=(0, 1_000))


def heads_name(layer: int, head: int | str) -> str:
    """``layer 1, head 2`` or ``layer 1, mean of the heads``, as the page's selectors read."""
    return f"layer {layer}, {'mean of the heads' if head == MEAN else f'head {head}'}"


def predict_last_character_source(
    source: str, steps: list[DecodingStep], trace: Trace, layer: int, head: int | str
) -> Prediction:
    """Which source token the cross-attention of ``layer`` and ``head`` (or the mean of the
    heads) weighs most at the step that writes the output's last character."""
    written = [step for step in steps if not step.is_end]
    if not written:
        raise ValueError("the model wrote nothing for this source")
    last = written[-1]
    labels = [f"{i}: {token!r}" for i, token in enumerate(trace.encoder_tokens)]

    def reveal() -> Reveal:
        row = step_row(last.cross_attention, layer, head)  # (source,)
        best = int(row.argmax())
        values = {"weight": f"{row[best].item():.3f}", "where": heads_name(layer, head)}
        data = {"step": last, "trace": trace, "layer": layer, "head": head}
        return Reveal(labels[best], values, data)

    values = {"source": source, "token": repr(last.token), "where": heads_name(layer, head)}
    return Prediction(values, reveal, tuple(labels))


def what_if_rate(rate: float) -> float:
    """A corruption rate to ask about: the page's plus ``SPAN_MARGIN``, or minus it where that
    would pass ``SPAN_RATE_LIMIT``, and never below ``MIN_RATE``."""
    higher = round(rate + SPAN_MARGIN, 2)
    return higher if higher <= SPAN_RATE_LIMIT else max(round(rate - SPAN_MARGIN, 2), MIN_RATE)


def predict_span_target_length(span: tuple[list[str], float, float, int]) -> Prediction:
    """How many tokens T5's target holds for the page's sentence at another corruption rate:
    the sentinels and the dropped words. ``span`` is the page's words, rate, mean span length
    and seed."""
    words, rate, mean_span, seed = span
    asked = what_if_rate(rate)
    span_counts(len(words), asked, mean_span)  # a ValueError if the settings cannot be used

    def reveal() -> Reveal:
        corruption = corrupt_spans(words, asked, mean_span, seed)
        spans = len(corruption.spans)
        values = {
            "words": len(words),
            "rate": f"{asked:.2f}",
            "dropped": corruption.n_dropped,
            "spans": spans,
            "sentinels": spans + 1,
            "total": len(corruption.targets),
        }
        return Reveal(len(corruption.targets), values)

    values = {
        "words": len(words),
        "mean_span": f"{mean_span:g}",
        "current": f"{rate:.2f}",
        "rate": f"{asked:.2f}",
    }
    return Prediction(values, reveal, bounds=(0, 2 * len(words) + 1))
