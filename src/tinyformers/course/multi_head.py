"""Multi-head attention, looked at head by head.

Four things live here, all plain PyTorch:

* ``head_statistics``: a few numbers per head, computed from attention in the one format used
  everywhere (per layer a ``(1, heads, q, k)`` tensor, plus the token strings), so that heads
  with a recognisable habit (look at the previous token, at ``[SEP]``, at themselves, far away
  or everywhere at once) can be sorted to the top of a table;
* ``attention_shapes``: the shape of every tensor on the way through ``MultiHeadAttention``,
  for a model's config and a sentence of ``T`` tokens;
* ``head_outputs``: the per-head outputs of one layer, read from a trace's record, before and
  after the heads are concatenated and projected by ``c_proj``;
* ``agreement_probe``: in a generated agreement sentence, the verb's row and the subject's
  columns, where a head that links verbs to their subjects shows itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tinyformers.i18n import _
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.corpora.stories import Sentence
from tinyformers.text.inputs import bert_wrap, word_token_spans
from tinyformers.trace import Trace, trace_ids

# What the lesson's page starts with (the lesson plans time the same computation).
DEFAULT_MODEL = "gpt-stories"
DEFAULT_SENTENCE = "the old man near the birds sings . he is happy ."
ROW_SUM_TOLERANCE = 1e-3
STATISTICS = ("entropy", "distance", "previous", "anchor", "itself")
"""The names of the per-head numbers in ``HeadStats``, in the order tables show them."""

# ---------------------------------------------------------------------------------------------
# Running a model on a sentence
# ---------------------------------------------------------------------------------------------


def trace_sentence(model: nn.Module, tokenizer, text: str) -> Trace:
    """Trace a GPT on the tokens of ``text``, or a BERT on ``[CLS] text [SEP]``.

    Like ``trace.trace_text``, but a text longer than the model's context is cut to fit
    (BERT keeps two positions for ``[CLS]`` and ``[SEP]``).
    """
    family = model.config.family
    if family not in ("gpt", "bert"):
        raise ValueError(f"this needs a GPT or BERT model, not a {family} model")
    ids = tokenizer.encode(text)
    if not ids:
        raise ValueError(_("the text is empty: type a few words first"))
    if family == "gpt":
        ids = ids[: model.config.block_size]
        return trace_ids(model, ids, tokenizer.display_tokens(ids))
    ids = bert_wrap(tokenizer, ids, model.config.block_size)
    segments = [0] * len(ids)  # one sentence: segment A throughout
    return trace_ids(model, ids, tokenizer.display_tokens(ids), token_type_ids=segments)


def attention_fingerprint(trace: Trace) -> str:
    """A short digest of a trace's tokens and attention weights: the attention views of a
    sentence depend on nothing else, so equal fingerprints mean equal views."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update("\x00".join(trace.tokens).encode("utf-8", "surrogatepass"))
    for weights in trace.attentions:
        digest.update(weights.float().contiguous().numpy().tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Per-head statistics
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadStats:
    """What one head does on one sentence, each number averaged over the query rows.

    entropy   mean of -Σⱼ pᵢⱼ log pᵢⱼ (nats): 0 when every row looks at one token,
              log(k) when a row spreads evenly over k tokens
    distance  mean of Σⱼ pᵢⱼ |i − j|: how many positions away the attention goes
    previous  mean of pᵢ,ᵢ₋₁ over rows 1..T−1: the share given to the token just before
    anchor    mean of the weight on the anchor token(s): ``[SEP]`` for BERT, the first token
              for GPT
    itself    mean of pᵢᵢ: the share a token gives to its own position
    """

    layer: int
    head: int
    entropy: float
    distance: float
    previous: float
    anchor: float
    itself: float

    @property
    def name(self) -> str:
        return f"layer {self.layer}, head {self.head}"


FIRST_TOKEN = "the first token"  # GPT's anchor in English, as the sort menu's links hold it


def anchor_of(family: str) -> tuple[str | None, str]:
    """The token a model family's anchor score measures (None = the first token), and its name
    in a sentence: BERT parks attention on ``[SEP]``, GPT on the first token."""
    if family not in ("gpt", "bert"):
        raise ValueError(f"anchor scores need a GPT or BERT model, not {family}")
    if family == "bert":
        return "[SEP]", "[SEP]"
    return None, _("the first token")


def anchor_positions(tokens: Sequence[str], anchor_token: str | None) -> list[int]:
    """Positions of ``anchor_token`` in ``tokens``, or ``[0]`` (the first token) for None."""
    if anchor_token is None:
        return [0]
    positions = [i for i, token in enumerate(tokens) if token == anchor_token]
    if not positions:
        raise ValueError(_("there is no {token} token in the sentence").format(token=anchor_token))
    return positions


def head_statistics(
    attentions: Sequence[Tensor], tokens: Sequence[str], anchor_token: str | None = None
) -> list[HeadStats]:
    """One ``HeadStats`` per (layer, head), layer by layer, from per-layer ``(1, heads, T, T)``
    attention over ``tokens``. ``anchor_token`` names the token the "anchor" score measures
    (``"[SEP]"`` for BERT); None measures attention to the first token."""
    layers = _checked_attention(attentions, len(tokens))
    anchors = anchor_positions(tokens, anchor_token)
    t = len(tokens)
    position = torch.arange(t, dtype=torch.float64)
    distance = (position[:, None] - position[None, :]).abs()  # (T, T): |i − j|
    stats = []
    for layer, weights in enumerate(layers):
        w = weights[0]  # (heads, T, T)
        entropy = -torch.special.xlogy(w, w).sum(-1).mean(-1)  # 0·log 0 counts as 0
        far = (w * distance).sum(-1).mean(-1)
        previous = w.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1)
        anchor = w[:, :, anchors].sum(-1).mean(-1)
        itself = w.diagonal(dim1=-2, dim2=-1).mean(-1)
        for head in range(w.shape[0]):
            stats.append(
                HeadStats(
                    layer=layer,
                    head=head,
                    entropy=entropy[head].item(),
                    distance=far[head].item(),
                    previous=previous[head].item(),
                    anchor=anchor[head].item(),
                    itself=itself[head].item(),
                )
            )
    return stats


def sort_heads(stats: Sequence[HeadStats], key: str, descending: bool = True) -> list[HeadStats]:
    """Heads ordered by one statistic (ties keep layer-then-head order)."""
    if key not in STATISTICS:
        raise ValueError(f"cannot sort heads by {key!r}; choose one of {', '.join(STATISTICS)}")
    return sorted(stats, key=lambda s: getattr(s, key), reverse=descending)


def strongest_key_habits(weights: Tensor) -> tuple[int, int]:
    """For one head's (T, T) weights: how many rows weigh the previous token most (of rows 1 to
    T − 1), and how many weigh their own token most (of all T rows)."""
    if weights.dim() != 2 or weights.shape[0] != weights.shape[1]:
        raise ValueError(f"one head's weights must be (T, T), got {tuple(weights.shape)}")
    strongest = weights.argmax(dim=-1)  # for every row, the key it weighs most
    rows = torch.arange(weights.shape[0])
    previous = int((strongest[1:] == rows[1:] - 1).sum())
    itself = int((strongest == rows).sum())
    return previous, itself


def uniform_entropy(mask: Tensor | None, n_tokens: int) -> float:
    """The mean row entropy of a head that spreads every row evenly over the keys it may see:
    log T without a mask, the mean of log(i + 1) over rows i under a causal mask."""
    if n_tokens < 1:
        raise ValueError(f"the number of tokens must be at least 1, got {n_tokens}")
    if mask is None:
        visible = torch.full((n_tokens,), float(n_tokens))
    else:
        square = mask.reshape(-1, *mask.shape[-2:])[0]  # (T or 1, T): the first sequence's mask
        visible = torch.broadcast_to(square, (n_tokens, n_tokens)).sum(-1).double()
    return visible.clamp_min(1).log().mean().item()


def _checked_attention(attentions: Sequence[Tensor], n_tokens: int) -> list[Tensor]:
    """Every layer (1, heads, T, T) with the same heads, rows of probabilities; as float64."""
    layers = list(attentions)
    if not layers:
        raise ValueError("there is no attention: pass one (1, heads, T, T) tensor per layer")
    if n_tokens < 2:
        raise ValueError(_("head statistics need a sentence of at least two tokens"))
    checked = []
    for index, weights in enumerate(layers):
        if not isinstance(weights, Tensor) or weights.dim() != 4 or weights.shape[0] != 1:
            shape = tuple(weights.shape) if isinstance(weights, Tensor) else type(weights).__name__
            raise ValueError(f"attention layer {index} is {shape}; expected (1, heads, T, T)")
        if weights.shape[2:] != (n_tokens, n_tokens):
            raise ValueError(
                f"attention layer {index} covers {tuple(weights.shape[2:])} positions but there "
                f"are {n_tokens} tokens"
            )
        if weights.shape[1] != layers[0].shape[1]:
            raise ValueError(
                f"attention layer {index} has {weights.shape[1]} heads but layer 0 has "
                f"{layers[0].shape[1]}"
            )
        values = weights.detach().to("cpu", torch.float64)
        if not torch.isfinite(values).all() or (values < 0).any():
            raise ValueError(f"attention layer {index} holds negative, NaN or infinite weights")
        if ((values.sum(-1) - 1).abs() > ROW_SUM_TOLERANCE).any():
            raise ValueError(f"attention layer {index} has rows that do not sum to 1")
        checked.append(values)
    return checked


# ---------------------------------------------------------------------------------------------
# Shapes on the way through MultiHeadAttention
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapeStep:
    """One step of multi-head attention for a single sequence (the batch axis B = 1 is left
    out): what happens, the code that does it, the symbolic and the actual shape."""

    what: str
    code: str
    dims: str
    shape: tuple[int, ...]


def attention_shapes(config, n_tokens: int) -> list[ShapeStep]:
    """Every tensor shape in ``MultiHeadAttention.forward`` for a model with ``config``
    (``n_embd`` = C, ``n_head`` = nh, head size hs = C / nh) on ``n_tokens`` = T tokens."""
    c, nh = int(config.n_embd), int(config.n_head)
    if nh < 1 or c % nh:
        raise ValueError(f"n_embd ({c}) must be a multiple of n_head ({nh})")
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 1:
        raise ValueError(f"the number of tokens must be a whole number ≥ 1, got {n_tokens!r}")
    block_size = int(getattr(config, "block_size", n_tokens))
    if n_tokens > block_size:
        raise ValueError(f"the model reads at most {block_size} tokens, got {n_tokens}")
    t, hs = n_tokens, c // nh
    return [
        ShapeStep("input: one vector per token", "x", "(T, C)", (t, c)),
        ShapeStep("queries (keys and values alike)", "q = q_proj(x)", "(T, C)", (t, c)),
        ShapeStep(
            "split the C features into nh heads", "q.view(T, nh, hs)", "(T, nh, hs)", (t, nh, hs)
        ),
        ShapeStep("put the head axis first", "q.transpose(0, 1)", "(nh, T, hs)", (nh, t, hs)),
        ShapeStep(
            "scores: every query with every key",
            "q @ k.transpose(-2, -1) / √hs",
            "(nh, T, T)",
            (nh, t, t),
        ),
        ShapeStep(
            "attention weights (rows sum to 1)", "softmax(scores, dim=-1)", "(nh, T, T)", (nh, t, t)
        ),
        ShapeStep("each head mixes its values", "weights @ v", "(nh, T, hs)", (nh, t, hs)),
        ShapeStep(
            "put the token axis first again", "out.transpose(0, 1)", "(T, nh, hs)", (t, nh, hs)
        ),
        ShapeStep("concatenate the heads", "out.reshape(T, C)", "(T, C)", (t, c)),
        ShapeStep("output projection W_O (C × C)", "c_proj(out)", "(T, C)", (t, c)),
    ]


def projection_parameters(config) -> dict[str, int]:
    """Parameters of the four projections of one attention layer (weights + biases)."""
    c = int(config.n_embd)
    return {name: c * c + c for name in ("q_proj", "k_proj", "v_proj", "c_proj")}


# ---------------------------------------------------------------------------------------------
# Per-head outputs, concatenation and c_proj, for one layer
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadOutputs:
    weights: Tensor  # (nh, T, T) attention weights
    per_head: Tensor  # (nh, T, hs) what each head returns
    concatenated: Tensor  # (T, C) the heads side by side
    projected: Tensor  # (T, C) after c_proj: the attention layer's output


def head_outputs(trace: Trace, layer: int) -> HeadOutputs:
    """Self-attention layer ``layer`` of a GPT or BERT, head by head, as the traced forward pass
    computed it: each head's output, the heads side by side, and the result of ``c_proj``."""
    attn = trace.block(layer).attn
    return HeadOutputs(attn.weights[0], attn.heads[0], attn.merged[0], attn.output[0])


# ---------------------------------------------------------------------------------------------
# Agreement sentences: which row and which columns to look at
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgreementProbe:
    """Token positions in one agreement sentence, as the model reads it.

    ``query`` is the row to read: the main verb for BERT, the token before it for GPT (which
    predicts the verb from there, since it cannot look ahead). ``verb`` and ``subject`` are
    (start, end) token spans.
    """

    query: int
    verb: tuple[int, int]
    subject: tuple[int, int]


def agreement_probe(tokenizer, example: Sentence, family: str) -> AgreementProbe:
    """Where the verb, its subject and the query row sit among the tokens the model reads (the
    same positions ``zoo.subject_head_scores`` measures)."""
    if family not in ("gpt", "bert"):
        raise ValueError(f"agreement probes need a GPT or BERT model, not {family}")
    offset = 1 if family == "bert" else 0  # BERT reads [CLS] first
    spans = word_token_spans(tokenizer, example.text.split(), offset=offset)
    verb, subject = spans[example.verb_index], spans[example.subject_index]
    query = verb[0] if family == "bert" else verb[0] - 1
    return AgreementProbe(query, verb, subject)


def strongest_other_key(row: Tensor, query: int) -> int:
    """The key a query row weighs most, leaving out the query's own position."""
    others = row.detach().clone()
    others[query] = -1
    return int(others.argmax())


def best_head(scores: Tensor) -> tuple[int, int]:
    """(layer, head) of the largest entry of a (layers, heads) grid of scores."""
    if scores.dim() != 2 or scores.numel() == 0:
        raise ValueError(
            f"scores must be a non-empty (layers, heads) grid, got {tuple(scores.shape)}"
        )
    layer, head = divmod(int(scores.argmax()), scores.shape[1])
    return layer, head


def points_at_subject(row: Tensor, probe: AgreementProbe) -> tuple[int, bool]:
    """The key the probe's query row weighs most (leaving out itself), and whether that key is
    part of the subject."""
    target = strongest_other_key(row, probe.query)
    return target, probe.subject[0] <= target < probe.subject[1]


# ---------------------------------------------------------------------------------------------
# Predict, then reveal (the lesson's ``predict:`` questions)
# ---------------------------------------------------------------------------------------------


def head_label(head: int) -> str:
    return f"head {head}"


def _layer_stats(trace: Trace, family: str, layer: int) -> list[HeadStats]:
    """The statistics of every head of one layer, in head order."""
    anchor_token, _ = anchor_of(family)
    if not 0 <= layer < trace.n_layer:
        raise ValueError(f"layer must be between 0 and {trace.n_layer - 1}, got {layer}")
    stats = head_statistics(trace.attentions, trace.tokens, anchor_token)
    return [s for s in stats if s.layer == layer]


def _heatmap(trace: Trace, model: str, layer: int, head: int, **highlight) -> dict:
    """What ``figures.multi_head.attention_heatmap`` draws for one head."""
    title = _("{model}, layer {layer}, head {head}").format(model=model, layer=layer, head=head)
    return {"weights": trace.head(layer, head), "tokens": trace.tokens, "title": title, **highlight}


def predict_sharpest_head(trace: Trace, loaded, layer: int) -> Prediction:
    """Which head of ``layer`` has the lowest mean row entropy on the sentence."""
    heads = tuple(head_label(h) for h in range(trace.n_head))
    if len(heads) < 2:
        raise ValueError(_("the model has a single head per layer"))

    def reveal() -> Reveal:
        stats = _layer_stats(trace, loaded.family, layer)
        sharpest = min(stats, key=lambda s: s.entropy)
        flattest = max(stats, key=lambda s: s.entropy)
        values = {
            "entropy": sharpest.entropy,
            "flattest": head_label(flattest.head),
            "highest": flattest.entropy,
            "uniform": uniform_entropy(trace.masks.get("self"), len(trace.tokens)),
        }
        data = _heatmap(trace, loaded.name, layer, sharpest.head)
        return Reveal(head_label(sharpest.head), values, data)

    return Prediction({"model": loaded.name, "layer": layer}, reveal, heads)


def allowed_pairs(trace: Trace) -> int:
    """How many (query, key) pairs the model's self-attention mask leaves open in one head (all
    of them without a mask)."""
    n = len(trace.tokens)
    mask = trace.masks.get("self")
    if mask is None:
        return n * n
    square = mask.reshape(-1, *mask.shape[-2:])[0]  # (T or 1, T): the first sequence's mask
    return int(torch.broadcast_to(square, (n, n)).sum())


def predict_open_weights(trace: Trace, loaded, layer: int) -> Prediction:
    """How many attention weights one layer computes that can be above zero, over all heads."""
    n, heads = len(trace.tokens), trace.n_head

    def reveal() -> Reveal:
        allowed = allowed_pairs(trace)
        values = {"cells": n * n, "allowed": allowed, "heads": heads}
        return Reveal(heads * allowed, values, _heatmap(trace, loaded.name, layer, 0))

    values = {"model": loaded.name, "layer": layer, "heads": heads, "tokens": n}
    return Prediction(values, reveal, bounds=(0, heads * n * n))


def anchor_baseline(trace: Trace, anchor_token: str | None) -> float:
    """The share of its weight an even head (every row spread evenly over the keys it may see)
    would give the anchor token(s), averaged over the rows."""
    n = len(trace.tokens)
    anchors = anchor_positions(trace.tokens, anchor_token)
    mask = trace.masks.get("self")
    if mask is None:
        visible = torch.ones(n, n, dtype=torch.bool)
    else:
        visible = torch.broadcast_to(mask.reshape(-1, *mask.shape[-2:])[0], (n, n))
    even = visible.double() / visible.sum(-1, keepdim=True).clamp_min(1)
    return even[:, anchors].sum(-1).mean().item()


def predict_anchor_share(trace: Trace, loaded, layer: int, head: int) -> Prediction:
    """The mean share of one head's weight that goes to the anchor token: ``[SEP]`` for BERT,
    the first token for GPT."""
    anchor_token, anchor_name = anchor_of(loaded.family)
    anchors = anchor_positions(trace.tokens, anchor_token)  # a sentence without [SEP]: no question
    if not 0 <= head < trace.n_head:
        raise ValueError(f"head must be between 0 and {trace.n_head - 1}, got {head}")

    def reveal() -> Reveal:
        share = _layer_stats(trace, loaded.family, layer)[head].anchor
        values = {"even": anchor_baseline(trace, anchor_token), "anchor": anchor_name}
        data = _heatmap(trace, loaded.name, layer, head, highlight_column=anchors[-1])
        return Reveal(share, values, data)

    values = {"model": loaded.name, "layer": layer, "head": head, "anchor": anchor_name}
    return Prediction(values, reveal, bounds=(0.0, 1.0))
