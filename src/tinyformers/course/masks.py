"""What an attention mask does to one head of a real model, stage by stage.

A mask is a boolean matrix over (query, key) pairs, True where the query may look at the key
(the convention of ``attention.py``). For one layer and one head, this module reads the head's
scores from the record of the model's forward pass, then applies the mask and the softmax:

    scores = q·k / √d_k for every pair ──► masked scores (−∞ where the mask says no)
                                         ──► weights = softmax of each row

and keeps the weights the model itself returned, so a page can show that both agree.

Four kinds of mask, one function each:

* ``causal_view``: a GPT with its own causal mask: position i sees positions 0..i.
* ``padding_view``: two sequences in one batch, the shorter padded with [PAD] on the right; the
  padding mask hides the padded keys as well.
* ``prefix_view``: a prefix-LM mask: the first ``prefix_len`` positions see each other in both
  directions, the others causally. A GPT's forward pass runs with this mask in place of its
  causal one (``run_self_attention``), a setting the model was not trained for.
* ``cross_view``: the decoder of an encoder-decoder reads the encoder output; padded source
  positions are hidden.

``padded_batch`` runs two padded sequences through a model with their attention mask and
measures how far each real token's output is from the output of the same sequence run alone.

``sentence_view`` and ``date_cross_view`` pick the right view for a lesson's sentences and
dates: the shorter sequence of a batch is the one that gets padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tinyformers.i18n import N_, _
from tinyformers.model.attention import prefix_lm_mask
from tinyformers.model.blocks import check_length
from tinyformers.model.record import RunRecord
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.corpora import generate_corpus, lesson_corpus
from tinyformers.text.inputs import model_input_ids
from tinyformers.training.experiments import CAUSAL, leakage_variants
from tinyformers.training.loop import pad_batch

# What the lesson's page starts with (the lesson plans time the same computation).
DEFAULT_MODEL = "gpt-stories"
DEFAULT_SENTENCE = "the old dog sees Mia . she runs ."
MAX_TOKENS = 24  # tokens of a sentence the model reads
KINDS = ("causal", "padding", "prefix", "cross")
CORPORA = {  # texts the leakage experiment trains on
    "stories": "Generated stories",
    "lessons": "The text of these lessons",
    "own": "Your own text",
}
STORIES = 200  # stories in the built-in corpus (about 18 000 characters)
PAD_TOKEN = "[PAD]"


@dataclass(frozen=True)
class MaskView:
    """One head of one layer under one mask, for one sequence of the batch."""

    kind: str  # one of KINDS
    layer: int
    head: int
    query_tokens: list[str]  # T_q token strings (rows)
    key_tokens: list[str]  # T_k token strings (columns)
    mask: Tensor  # (T_q, T_k) bool, True = the query may look at the key
    scores: Tensor  # (T_q, T_k) q·k / √d_k for every pair, before masking
    masked_scores: Tensor  # (T_q, T_k) the scores with −∞ where the mask says no
    weights: Tensor  # (T_q, T_k) softmax of each row of masked_scores
    returned: Tensor  # (T_q, T_k) the attention weights the model itself returned

    @property
    def n_masked(self) -> int:
        return int((~self.mask).sum())

    def max_difference(self) -> float:
        """Largest gap between the weights recomputed here and the model's own weights."""
        return (self.weights - self.returned).abs().max().item()


# ---------------------------------------------------------------------------------------------
# One head: its scores, the mask, the softmax
# ---------------------------------------------------------------------------------------------


def check_layer_and_head(n_layer: int, n_head: int, layer: int, head: int) -> None:
    if not 0 <= layer < n_layer:
        raise ValueError(f"layer must be between 0 and {n_layer - 1}, got {layer}")
    if not 0 <= head < n_head:
        raise ValueError(f"head must be between 0 and {n_head - 1}, got {head}")


def apply_mask(scores: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """The scores with −∞ where ``mask`` is False, and the softmax of each row.

    exp(−∞) = 0, so a masked pair gets a weight of exactly 0 and the rest of its row shares
    the whole weight. A row with every key masked gets all-zero weights.
    """
    masked = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(masked, dim=-1).nan_to_num(0.0)
    return masked, weights


def _row_mask(mask: Tensor | None, batch: int, row: int, t_q: int, t_k: int) -> Tensor:
    """The (T_q, T_k) mask of one sequence from a mask that broadcasts to (B, 1, T_q, T_k)."""
    if mask is None:
        return torch.ones(t_q, t_k, dtype=torch.bool)
    return torch.broadcast_to(mask, (batch, 1, t_q, t_k))[row, 0]


# ---------------------------------------------------------------------------------------------
# Self-attention: GPT (and BERT for padding)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SelfAttentionRun:
    """What a run of a GPT or BERT leaves behind for the views."""

    block_inputs: list[Tensor]  # per layer (B, T, C): the residual stream entering the block
    attentions: list[Tensor]  # per layer (B, nh, T, T): the weights the layer returned
    mask: Tensor | None  # the mask every layer used, broadcastable to (B, 1, T, T)
    outputs: Tensor  # (B, T, C) the last hidden state: the vector each position outputs
    record: RunRecord  # everything the forward pass computed


def _check_ids(model: nn.Module, ids: Tensor) -> None:
    if ids.dim() != 2 or ids.size(0) == 0:
        raise ValueError(f"ids must have shape (batch, length), got {tuple(ids.shape)}")
    check_length(ids.size(1), model.config.block_size)
    if ids.min() < 0 or ids.max() >= model.config.vocab_size:
        raise ValueError(f"token ids must be between 0 and {model.config.vocab_size - 1}")


def _own_mask_arguments(model: nn.Module, ids: Tensor, attention_mask, mask) -> dict:
    """The keyword that makes a GPT use ``mask`` instead of its causal one (none for None)."""
    if mask is None:
        return {}
    if model.config.family != "gpt" or attention_mask is not None:
        raise ValueError("a mask of your own can be given to a GPT on unpadded ids only")
    t = ids.size(1)
    if mask.shape != (t, t) or mask.dtype != torch.bool:
        raise ValueError(f"the mask must be a ({t}, {t}) boolean matrix, got {tuple(mask.shape)}")
    return {"self_attention_mask": mask}


@torch.no_grad()
def run_self_attention(
    model: nn.Module,
    ids: Tensor,
    attention_mask: Tensor | None = None,
    mask: Tensor | None = None,
) -> SelfAttentionRun:
    """Run a GPT or BERT on ``ids`` (B, T) and keep the record of the pass.

    With ``mask`` None this is the model's own forward (with ``attention_mask``, a (B, T) 0/1
    tensor, if given). With a boolean ``mask`` (T, T), a GPT's every layer uses that mask
    instead of the causal one.
    """
    _check_ids(model, ids)
    own_mask = _own_mask_arguments(model, ids, attention_mask, mask)
    out = model(
        ids,
        attention_mask=attention_mask,
        output_attentions=True,
        output_hidden_states=True,
        return_record=True,
        **own_mask,
    )
    record = out.record
    return SelfAttentionRun(
        [block.input for block in record.blocks],
        list(out.attentions),
        record.mask,
        out.hidden_states[-1],
        record,
    )


def _self_view(
    kind: str,
    model: nn.Module,
    run: SelfAttentionRun,
    tokens: list[str],
    layer: int,
    head: int,
    row: int = 0,
) -> MaskView:
    check_layer_and_head(len(run.record.blocks), model.config.n_head, layer, head)
    batch, t, _ = run.block_inputs[layer].shape
    if len(tokens) != t:
        raise ValueError(f"there are {t} positions but {len(tokens)} token strings")
    scores = run.record.blocks[layer].attn.scores[row, head]  # (T, T)
    mask = _row_mask(run.mask, batch, row, t, t)
    masked, weights = apply_mask(scores, mask)
    returned = run.attentions[layer][row, head]
    return MaskView(
        kind, layer, head, list(tokens), list(tokens), mask, scores, masked, weights, returned
    )


def _as_ids(ids: list[int]) -> Tensor:
    if not ids:
        raise ValueError(_("there are no tokens: type a few words first"))
    return torch.tensor([ids], dtype=torch.long)  # (1, T)


@torch.no_grad()
def causal_view(
    model: nn.Module, ids: list[int], tokens: list[str], layer: int, head: int
) -> MaskView:
    """A GPT's head under its own causal mask."""
    if not getattr(model.config, "causal", False):
        raise ValueError("the causal view needs a GPT with its causal mask")
    run = run_self_attention(model, _as_ids(ids))
    return _self_view("causal", model, run, tokens, layer, head)


@torch.no_grad()
def prefix_view(
    model: nn.Module, ids: list[int], tokens: list[str], layer: int, head: int, prefix_len: int
) -> MaskView:
    """A GPT's head when every layer uses a prefix-LM mask with ``prefix_len`` prefix tokens."""
    batch = _as_ids(ids)
    mask = prefix_lm_mask(batch.size(1), prefix_len)
    run = run_self_attention(model, batch, mask=mask)
    return _self_view("prefix", model, run, tokens, layer, head)


def _padded_tokens(tokens: list[str], length: int) -> list[str]:
    return list(tokens) + [PAD_TOKEN] * (length - len(tokens))


def _check_sequences(sequences: list[list[int]], tokens: list[list[str]] | None = None) -> None:
    if len(sequences) < 2:
        raise ValueError("a padded batch needs at least two sequences")
    if any(not seq for seq in sequences):
        raise ValueError("every sequence in the batch needs at least one token")
    if tokens is not None and [len(t) for t in tokens] != [len(s) for s in sequences]:
        raise ValueError("each sequence needs one token string per id")


def _check_pad_id(model: nn.Module, pad_id: int) -> None:
    if not 0 <= pad_id < model.config.vocab_size:
        raise ValueError(f"the padding id must be a token id of the model, got {pad_id}")


@torch.no_grad()
def padding_view(
    model: nn.Module,
    sequences: list[list[int]],
    tokens: list[list[str]],
    layer: int,
    head: int,
    row: int,
    pad_id: int,
) -> MaskView:
    """The head on sequence ``row`` of a right-padded batch, run with its attention mask."""
    _check_sequences(sequences, tokens)
    _check_pad_id(model, pad_id)
    if not 0 <= row < len(sequences):
        raise ValueError(f"row must be between 0 and {len(sequences) - 1}, got {row}")
    ids, attention_mask = pad_batch(sequences, pad_id)
    run = run_self_attention(model, ids, attention_mask=attention_mask)
    padded = _padded_tokens(tokens[row], ids.size(1))
    return _self_view("padding", model, run, padded, layer, head, row)


# ---------------------------------------------------------------------------------------------
# Cross-attention: the decoder of an encoder-decoder reads the encoder output
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def cross_view(
    model: nn.Module,
    sources: list[list[int]],
    targets: list[list[int]],
    source_tokens: list[list[str]],
    target_tokens: list[list[str]],
    layer: int,
    head: int,
    row: int,
    pad_id: int,
) -> MaskView:
    """Cross-attention of decoder layer ``layer`` on sequence ``row`` of a padded batch.

    ``targets`` are the decoder inputs ([BOS] and the output so far). Queries come from the
    decoder, keys from the encoder output; padded source positions are masked.
    """
    if model.config.family != "seq2seq":
        raise ValueError("cross-attention needs an encoder-decoder model")
    _check_sequences(sources, source_tokens)
    _check_sequences(targets, target_tokens)
    _check_pad_id(model, pad_id)
    if len(sources) != len(targets):
        raise ValueError("give one decoder input per source")
    if not 0 <= row < len(sources):
        raise ValueError(f"row must be between 0 and {len(sources) - 1}, got {row}")
    check_layer_and_head(len(model.decoder), model.config.n_head, layer, head)
    src, src_attention_mask = pad_batch(sources, pad_id)
    tgt, _ = pad_batch(targets, pad_id)
    for batch in (src, tgt):
        _check_ids(model, batch)
    out = model(
        src, tgt, src_attention_mask=src_attention_mask, output_attentions=True, return_record=True
    )
    cross = out.record.block(layer).cross_attn
    scores = cross.scores[row, head]  # (T, S) q·k / √d_k, decoder queries and encoder keys
    mask = out.masks["cross"][row, 0]  # (T, S)
    masked, weights = apply_mask(scores, mask)
    return MaskView(
        "cross",
        layer,
        head,
        _padded_tokens(target_tokens[row], tgt.size(1)),
        _padded_tokens(source_tokens[row], src.size(1)),
        mask,
        scores,
        masked,
        weights,
        out.cross_attentions[layer][row, head],
    )


# ---------------------------------------------------------------------------------------------
# Padding changes nothing for the real tokens
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaddedBatch:
    """Sequences run together, right-padded, and each one run alone."""

    ids: Tensor  # (B, T) padded with the padding id
    attention_mask: Tensor  # (B, T) 1 = real token, 0 = padding
    lengths: list[int]  # real tokens per sequence
    mask: Tensor  # (B, 1, T, T) bool: the mask every layer used
    attentions: list[Tensor]  # per layer (B, nh, T, T), the model run with attention_mask
    differences: list[float]  # per sequence: max |output in the batch − output alone|
    differences_without_mask: list[float]  # the same, padded but run without attention_mask

    def weights(self, layer: int, head: int, row: int) -> Tensor:
        """(T, T) attention weights of one head for one sequence of the batch."""
        return self.attentions[layer][row, head]

    def largest_pad_weight(self, layer: int, head: int) -> float:
        """The largest weight any query of any sequence gives a [PAD] key in one head."""
        length = self.ids.size(1)
        return max(
            self.weights(layer, head, row)[:, n:].abs().max().item() if n < length else 0.0
            for row, n in enumerate(self.lengths)
        )


def _largest_gap(batched: Tensor, alone: list[Tensor], lengths: list[int]) -> list[float]:
    return [(batched[row, :n] - alone[row]).abs().max().item() for row, n in enumerate(lengths)]


@torch.no_grad()
def padded_batch(model: nn.Module, sequences: list[list[int]], pad_id: int) -> PaddedBatch:
    """Run ``sequences`` as one right-padded batch with their attention mask (and once more
    without it) and compare every real token's output vector (the last hidden state) with a run
    of its sequence alone."""
    _check_sequences(sequences)
    _check_pad_id(model, pad_id)
    ids, attention_mask = pad_batch(sequences, pad_id)
    _check_ids(model, ids)
    run = run_self_attention(model, ids, attention_mask=attention_mask)
    unmasked = run_self_attention(model, ids).outputs  # (B, T, C)
    alone = [run_self_attention(model, torch.tensor([seq])).outputs[0] for seq in sequences]
    lengths = [len(seq) for seq in sequences]
    batch, t = ids.shape
    return PaddedBatch(
        ids=ids,
        attention_mask=attention_mask,
        lengths=lengths,
        mask=torch.broadcast_to(run.mask, (batch, 1, t, t)),
        attentions=run.attentions,
        differences=_largest_gap(run.outputs, alone, lengths),
        differences_without_mask=_largest_gap(unmasked, alone, lengths),
    )


# ---------------------------------------------------------------------------------------------
# A lesson's sentences and dates as views
# ---------------------------------------------------------------------------------------------


class EmptyText(ValueError):
    """A text that has no tokens to read."""


def padded_row(lengths: list[int]) -> int:
    """The sequence that gets padding: the shortest (the first if all are equally long)."""
    if not lengths:
        raise ValueError("there are no sequences")
    return lengths.index(min(lengths))


def pad_id_of(tokenizer) -> int:
    """The id to pad with: the tokenizer's [PAD], or 0 if it has none (GPT-2's tokenizer). Any id
    works, since the attention mask hides it."""
    return tokenizer.pad_id if tokenizer.pad_id is not None else 0


def batch_tokens(tokenizer, sequences: list[list[int]]) -> list[list[str]]:
    """The token strings of each sequence of a right-padded batch, [PAD] where it is padded."""
    length = max((len(ids) for ids in sequences), default=0)
    return [_padded_tokens(tokenizer.display_tokens(ids), length) for ids in sequences]


def sentence_view(
    kind: str,
    model: nn.Module,
    tokenizer,
    sequences: list[list[int]],
    layer: int,
    head: int,
    prefix_len: int = 0,
) -> MaskView:
    """The view of one self-attention mask on a lesson's sentences: the causal or prefix mask on
    the first sequence, or the padding mask on the shorter sequence of the batch."""
    if kind not in ("causal", "padding", "prefix"):
        raise ValueError(f"{kind!r} is not a self-attention mask; use causal, padding or prefix")
    first = sequences[0]
    tokens = tokenizer.display_tokens(first)
    if kind == "causal":
        return causal_view(model, first, tokens, layer, head)
    if kind == "prefix":
        return prefix_view(model, first, tokens, layer, head, prefix_len)
    row = padded_row([len(ids) for ids in sequences])
    strings = [tokenizer.display_tokens(ids) for ids in sequences]
    return padding_view(model, sequences, strings, layer, head, row, pad_id_of(tokenizer))


def token_room(model: nn.Module, max_tokens: int) -> int:
    """How many tokens of a sentence a lesson runs the model on: ``max_tokens``, or fewer if the
    model's context is shorter."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    return min(max_tokens, model.config.block_size)


def sentence_ids(tokenizer, text: str, limit: int) -> list[int]:
    """A GPT's ids for ``text``, at most ``limit`` of them. Raises ``EmptyText`` if there are
    none."""
    ids = tokenizer.encode(text)[:limit]
    if not ids:
        raise EmptyText(_("The text has no tokens for this model; type a few words."))
    return ids


def batch_ids(tokenizer, texts: list[str], family: str, limit: int) -> list[list[int]]:
    """The rows of a batch before padding: BERT's ``[CLS] text [SEP]`` or a GPT's ids, at most
    ``limit`` per text. Raises ``EmptyText`` for a GPT text without tokens."""
    if family == "bert":
        return [model_input_ids(tokenizer, "bert", text, limit) for text in texts]
    return [sentence_ids(tokenizer, text, limit) for text in texts]


def date_ids(tokenizer, text: str, what: str, example: str) -> list[int]:
    """The date model's ids for ``text`` (called ``what`` in messages). Raises ``EmptyText`` for
    an empty text and ValueError for characters the model has never seen."""
    ids = tokenizer.encode(text.strip())
    if not ids:
        raise EmptyText(
            _("The {what} is empty: type a date such as {example}.").format(
                what=what, example=example
            )
        )
    if tokenizer.unk_id in ids:
        raise ValueError(
            _(
                "The {what} has characters the date model has never seen: it knows only the "
                "digits, letters and spaces of dates such as {example}."
            ).format(what=what, example=example)
        )
    return ids


@torch.no_grad()
def decoder_input(model: nn.Module, tokenizer, source: list[int]) -> list[int]:
    """What an encoder-decoder's decoder reads for ``source``: [BOS] and its greedy output."""
    output = model.generate_greedy(torch.tensor([source]), tokenizer.bos_id, tokenizer.eos_id)
    return [tokenizer.bos_id, *output[0].tolist()]


def date_cross_view(
    model: nn.Module,
    tokenizer,
    sources: list[list[int]],
    targets: list[list[int]],
    layer: int,
    head: int,
) -> MaskView:
    """Cross-attention on the shorter source of a batch of sources and their decoder inputs."""
    return cross_view(
        model,
        sources,
        targets,
        [tokenizer.display_tokens(ids) for ids in sources],
        [tokenizer.display_tokens(ids) for ids in targets],
        layer,
        head,
        padded_row([len(ids) for ids in sources]),
        pad_id_of(tokenizer),
    )


def builtin_corpus(name: str) -> str:
    """A built-in text to train on: the generated stories, or the lessons' own text."""
    if name not in ("stories", "lessons"):
        raise ValueError(f"unknown built-in corpus {name!r}; the corpora are stories and lessons")
    return generate_corpus(STORIES, seed=0) if name == "stories" else lesson_corpus()


def leakage_values() -> dict[str, object]:
    """The size of the leakage experiment's GPT, as the lesson's "leakage" section quotes it
    (read from the config the experiment trains; the vocabulary does not change it)."""
    config = leakage_variants(vocab_size=1)[CAUSAL]
    return {"leak_layers": config.n_layer, "leak_heads": config.n_head, "leak_width": config.n_embd}


# ---------------------------------------------------------------------------------------------
# Predict, then reveal (the lesson's ``predict:`` questions)
# ---------------------------------------------------------------------------------------------

LEAK_CHOICES = (N_("Yes, they would change"), N_("No, they would stay the same"))
CHANGED = 1e-4  # an output that moves less than this is the same up to rounding


def _check_causal(loaded) -> None:
    if not getattr(loaded.config, "causal", False):
        raise ValueError(f"{loaded.name} has no causal mask")


def predict_hidden_pairs(loaded, first: list[int]) -> Prediction:
    """How many (query, key) pairs of one head the model's causal mask hides on the sentence."""
    _check_causal(loaded)
    n = len(first)

    def reveal() -> Reveal:
        tokens = loaded.tokenizer.display_tokens(first)
        view = causal_view(loaded.model, first, tokens, 0, 0)
        return Reveal(
            view.n_masked, {"cells": n * n, "seen": n * n - view.n_masked}, {"view": view}
        )

    return Prediction({"model": loaded.name, "tokens": n}, reveal, bounds=(0, n * n))


def prefix_length(n_tokens: int) -> int:
    """The prefix the prefix question uses: the first half of the sentence, rounded up."""
    return (n_tokens + 1) // 2


def predict_prefix_changes(loaded, first: list[int]) -> Prediction:
    """How many tokens get a different output from the first layer's attention when every
    layer uses a prefix-LM mask instead of the causal mask."""
    _check_causal(loaded)
    n, prefix = len(first), prefix_length(len(first))
    tokens = loaded.tokenizer.display_tokens(first)

    def reveal() -> Reveal:
        ids = _as_ids(first)
        causal = run_self_attention(loaded.model, ids).record.blocks[0].attn.output[0]
        run = run_self_attention(loaded.model, ids, mask=prefix_lm_mask(n, prefix))
        prefixed = run.record.blocks[0].attn.output[0]  # (T, C)
        change = (prefixed - causal).norm(dim=-1) / causal.norm(dim=-1).clamp_min(1e-12)
        changed = [i for i in range(n) if change[i] > CHANGED]
        view = _self_view("prefix", loaded.model, run, tokens, 0, 0)
        values = {"changed": ", ".join(f"{i}: {tokens[i]!r}" for i in changed) or "none"}
        return Reveal(len(changed), values, {"view": view})

    values = {
        "model": loaded.name,
        "prefix": prefix,
        "prefix_tokens": repr("".join(tokens[:prefix]).strip()),
    }
    return Prediction(values, reveal, bounds=(0, n))


def predict_padding_leak(loaded, texts: list[str | None]) -> Prediction:
    """Whether the real tokens of the padded sentence of a batch would get other outputs if the
    batch ran without its padding mask."""
    if any(text is None for text in texts):
        raise ValueError(_("type two sentences for the batch"))
    limit = token_room(loaded.model, MAX_TOKENS)
    sequences = batch_ids(loaded.tokenizer, texts, loaded.family, limit)
    row = padded_row([len(ids) for ids in sequences])
    pads = max(len(ids) for ids in sequences) - len(sequences[row])
    if pads == 0:
        raise ValueError(_("your two sentences have the same number of tokens, so none is padded"))

    def reveal() -> Reveal:
        batch = padded_batch(loaded.model, sequences, pad_id_of(loaded.tokenizer))
        change = batch.differences_without_mask[row]
        answer = LEAK_CHOICES[0] if change > CHANGED else LEAK_CHOICES[1]
        strings = batch_tokens(loaded.tokenizer, sequences)
        title = _("The padded batch with its mask · {model}, layer 0, head 0").format(
            model=loaded.name
        )
        data = {"batch": batch, "tokens": strings, "layer": 0, "head": 0, "title": title}
        return Reveal(answer, {"change": change}, data)

    values = {"model": loaded.name, "padded": repr(texts[row].strip()), "pads": pads}
    return Prediction(values, reveal, LEAK_CHOICES)
