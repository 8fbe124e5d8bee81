"""One attention head, one step at a time, and the experiment that explains the √d_k.

    X ──► Q = X W_Q + b_Q, K = X W_K + b_K, V = X W_V + b_V
      ──► scores = Q Kᵀ ──► scaled = scores / √d_k (masked entries set to -inf)
      ──► weights = softmax(scaled, row by row) ──► output = weights V

``head_steps`` does this for any matrices and keeps every intermediate result. ``model_head``
takes the weights of one head of a GPT or BERT (its slice of ``q_proj``, ``k_proj`` and
``v_proj``, see ``attention.MultiHeadAttention``) and what that layer's attention read in the
traced forward pass (its record); ``toy_head`` makes tiny random matrices instead. The shapes below use T for the
number of tokens, C for the width of the model and d_k for the width of one head.

``scaling_experiment`` measures what the division by √d_k is for: the dot product of two random
vectors grows with their dimension, and a softmax over such large scores puts almost all of its
weight on one key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tinyformers.i18n import N_, _
from tinyformers.model.positional import apply_rotary
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.inputs import bert_wrap
from tinyformers.text.tokenizers import SPECIAL_TOKENS
from tinyformers.trace import Trace, trace_ids

# What the lesson's page starts with (the lesson plans time the same computation).
DEFAULT_MODEL = "gpt-stories"
DEFAULT_SENTENCE = "the old dog sees Mia . she runs ."
MAX_TOKENS = 24  # tokens of the sentence a model reads
MAX_TOY_TOKENS = 12
MAX_TOY_WIDTH = 16
MAX_DIMENSION = 4096
MAX_KEYS = 1024
MAX_SAMPLES = 10_000
MAX_EXPERIMENT_WORK = 2**26  # random numbers drawn by one experiment, all dimensions together
CHUNK_ELEMENTS = 2**21  # random numbers drawn at once, to keep memory small


# ---------------------------------------------------------------------------------------------
# Every intermediate matrix of one head
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadSteps:
    """Everything one attention head computes on one sequence (no batch dimension)."""

    tokens: list[str]  # T token strings
    x: Tensor  # (T, C) the input to attention
    w_q: Tensor  # (C, d_k) this head's columns of W_Q, so that Q = X W_Q + b_Q
    w_k: Tensor  # (C, d_k)
    w_v: Tensor  # (C, d_k)
    b_q: Tensor  # (d_k,) biases (zeros when the projection has none)
    b_k: Tensor  # (d_k,)
    b_v: Tensor  # (d_k,)
    q: Tensor  # (T, d_k) one query per token (after rotary positions, if the model uses them)
    k: Tensor  # (T, d_k) one key per token (likewise)
    v: Tensor  # (T, d_k) one value per token
    scores: Tensor  # (T, T) Q Kᵀ, every entry, before scaling and masking
    scaled: Tensor  # (T, T) scores / √d_k, with -inf where the mask forbids looking
    mask: Tensor | None  # (T, T) bool, True = query (row) may look at key (column); None = all
    weights: Tensor  # (T, T) softmax of each row of ``scaled``; each row sums to 1
    output: Tensor  # (T, d_k) weights V: each token's weighted average of the values
    rotary: bool = False  # True if Q and K were rotated by their positions (RoPE)

    @property
    def n_tokens(self) -> int:
        return self.x.size(0)

    @property
    def d_k(self) -> int:
        return self.q.size(-1)

    @property
    def scale(self) -> float:
        """√d_k, the number every score is divided by."""
        return math.sqrt(self.d_k)

    def allowed(self) -> Tensor:
        """(T, T) bool: which entries the mask lets through (all of them without a mask)."""
        if self.mask is None:
            return torch.ones(self.n_tokens, self.n_tokens, dtype=torch.bool)
        return self.mask


def _check_matrix(name: str, matrix: Tensor, rows: int | None, columns: int | None) -> None:
    if matrix.dim() != 2:
        raise ValueError(f"{name} must be a matrix, got shape {tuple(matrix.shape)}")
    if (rows is not None and matrix.size(0) != rows) or (
        columns is not None and matrix.size(1) != columns
    ):
        raise ValueError(
            f"{name} has shape {tuple(matrix.shape)}; expected ({rows}, {columns}) "
            "(None = any size)"
        )


@torch.no_grad()
def head_steps(
    tokens: Sequence[str],
    x: Tensor,
    w_q: Tensor,
    w_k: Tensor,
    w_v: Tensor,
    biases: tuple[Tensor, Tensor, Tensor] | None = None,
    mask: Tensor | None = None,
    rotary: tuple[Tensor, Tensor] | None = None,
) -> HeadSteps:
    """Run one head on x (T, C) with projections (C, d_k) and keep every step.

    biases: (b_Q, b_K, b_V), each (d_k,), or None for none. mask: (T, T) bool, True = may look.
    rotary: (cos, sin), each (T, d_k / 2), to rotate queries and keys by their positions.
    """
    _check_matrix("X", x, None, None)
    t, c = x.shape
    if len(tokens) != t or t == 0:
        raise ValueError(f"X has {t} rows but there are {len(tokens)} tokens (need at least 1)")
    _check_matrix("W_Q", w_q, c, None)
    d_k = w_q.size(1)
    _check_matrix("W_K", w_k, c, d_k)
    _check_matrix("W_V", w_v, c, d_k)
    if biases is None:
        biases = (torch.zeros(d_k), torch.zeros(d_k), torch.zeros(d_k))
    if any(b.shape != (d_k,) for b in biases):
        raise ValueError(f"each bias must have {d_k} entries, one per column of the head")
    if mask is not None and mask.shape != (t, t):
        raise ValueError(f"the mask has shape {tuple(mask.shape)}; expected ({t}, {t})")

    b_q, b_k, b_v = biases
    q = x @ w_q + b_q  # (T, d_k)
    k = x @ w_k + b_k  # (T, d_k)
    v = x @ w_v + b_v  # (T, d_k)
    if rotary is not None:
        q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
    scores = q @ k.T  # (T, T)
    scaled = scores / math.sqrt(d_k)  # (T, T)
    if mask is not None:
        scaled = scaled.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scaled, dim=-1)  # (T, T)
    if mask is not None:
        weights = torch.nan_to_num(weights, nan=0.0)  # a row that may see no key at all
    output = weights @ v  # (T, d_k)
    return HeadSteps(
        list(tokens),
        x,
        w_q,
        w_k,
        w_v,
        b_q,
        b_k,
        b_v,
        q,
        k,
        v,
        scores,
        scaled,
        mask,
        weights,
        output,
        rotary is not None,
    )


# ---------------------------------------------------------------------------------------------
# A head of a shipped (or any GPT / BERT) model
# ---------------------------------------------------------------------------------------------


def sentence_ids(model: nn.Module, tokenizer, text: str, max_tokens: int) -> list[int]:
    """The ids the model reads for ``text``, at most ``max_tokens`` of them: GPT reads the
    tokens as they are, BERT reads ``[CLS] tokens [SEP]``."""
    block_size = model.config.block_size
    limit = min(max_tokens, block_size)
    bert = model.config.family == "bert"
    if limit < (3 if bert else 1):
        raise ValueError(f"max_tokens must leave room for at least one token, got {max_tokens}")
    ids = tokenizer.encode(text)
    if not ids:
        raise ValueError(_("the text is empty: type a few words first"))
    if bert:
        return bert_wrap(tokenizer, ids, limit)
    return ids[:limit]


def trace_sentence(model: nn.Module, tokenizer, text: str, max_tokens: int) -> Trace:
    """Run the model on (at most ``max_tokens`` tokens of) ``text`` and keep its attention
    weights and hidden states."""
    ids = sentence_ids(model, tokenizer, text, max_tokens)
    return trace_ids(model, ids, tokenizer.display_tokens(ids))


def default_query(tokens: Sequence[str]) -> int:
    """The query a lesson starts on: the last token with a letter or digit that is not a special
    token such as [SEP] (the last token if there is none)."""
    if not tokens:
        raise ValueError("there are no tokens to choose a query from")
    ordinary = [
        i
        for i, token in enumerate(tokens)
        if token not in SPECIAL_TOKENS and any(c.isalnum() for c in token)
    ]
    return ordinary[-1] if ordinary else len(tokens) - 1


def check_layer_and_head(model: nn.Module, layer: int, head: int) -> None:
    n_layer, n_head = model.config.n_layer, model.config.n_head
    if not 0 <= layer < n_layer:
        raise ValueError(f"layer must be between 0 and {n_layer - 1}, got {layer}")
    if not 0 <= head < n_head:
        raise ValueError(f"head must be between 0 and {n_head - 1}, got {head}")


def head_projection(linear: nn.Linear, head: int, head_size: int) -> tuple[Tensor, Tensor]:
    """One head's slice of a projection as (W, b) with W: (C, d_k), so that x W + b equals the
    head's columns of ``linear(x)``."""
    rows = slice(head * head_size, (head + 1) * head_size)
    weight = linear.weight.detach()[rows].T  # (C, d_k)
    bias = linear.bias.detach()[rows] if linear.bias is not None else torch.zeros(head_size)
    return weight, bias


def attention_input(trace: Trace, layer: int) -> Tensor:
    """(T, C): what the self-attention of ``layer`` read in the traced forward pass. For a pre-LN
    block (GPT) that is the block input after ``ln_1``; for a post-LN block (BERT) it is the
    block input itself."""
    return trace.block(layer).attn.input[0]  # (T, C)


def trace_mask(trace: Trace) -> Tensor | None:
    """The (T, T) self-attention mask the traced model used, or None if it used none."""
    mask = trace.masks.get("self")
    if mask is None:
        return None
    t = len(trace.tokens)
    return torch.broadcast_to(mask, (1, 1, t, t))[0, 0]


def model_head(model: nn.Module, trace: Trace, layer: int, head: int) -> HeadSteps:
    """Every step of one head of a GPT or BERT on the traced sentence: the head's slice of the
    model's weights applied to what its attention read, with the mask and rotary angles the
    forward pass used."""
    check_layer_and_head(model, layer, head)
    attn = model.h[layer].attn
    head_size = model.config.head_size
    w_q, b_q = head_projection(attn.q_proj, head, head_size)
    w_k, b_k = head_projection(attn.k_proj, head, head_size)
    w_v, b_v = head_projection(attn.v_proj, head, head_size)
    return head_steps(
        trace.tokens,
        attention_input(trace, layer),
        w_q,
        w_k,
        w_v,
        (b_q, b_k, b_v),
        trace_mask(trace),
        trace.block(layer).attn.rotary,
    )


# ---------------------------------------------------------------------------------------------
# A toy head: tiny random matrices
# ---------------------------------------------------------------------------------------------


def toy_tokens(text: str, max_tokens: int = MAX_TOY_TOKENS) -> list[str]:
    """The words of ``text`` (split at spaces), at most ``max_tokens`` of them."""
    words = text.split()
    if not words:
        raise ValueError(_("the text is empty: type a few words first"))
    return words[:max_tokens]


def _check_width(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOY_WIDTH:
        raise ValueError(f"{name} must be a whole number from 1 to {MAX_TOY_WIDTH}, got {value!r}")


def _rounded_normal(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """Standard normal numbers rounded to one decimal, easy to read in a heatmap."""
    return (torch.randn(shape, generator=generator) * 10).round() / 10 + 0.0  # no -0.0


def toy_head(
    tokens: Sequence[str], d_model: int, d_k: int, seed: int, causal: bool = False
) -> HeadSteps:
    """One head with random (seeded) input vectors and projections, without biases.

    Each distinct word gets its own random row of X, so a repeated word gets the same row, and
    the same query, key and value: the toy has no positions.
    """
    if not 1 <= len(tokens) <= MAX_TOY_TOKENS:
        raise ValueError(f"the toy takes 1 to {MAX_TOY_TOKENS} tokens, got {len(tokens)}")
    _check_width("d_model", d_model)
    _check_width("d_k", d_k)
    generator = torch.Generator().manual_seed(seed)
    w_q, w_k, w_v = (_rounded_normal((d_model, d_k), generator) for _ in range(3))
    vocabulary = list(dict.fromkeys(tokens))  # distinct words, in order of first appearance
    table = _rounded_normal((len(vocabulary), d_model), generator)
    x = table[[vocabulary.index(token) for token in tokens]]  # (T, d_model)
    t = len(tokens)
    mask = torch.ones(t, t, dtype=torch.bool).tril() if causal else None
    return head_steps(tokens, x, w_q, w_k, w_v, mask=mask)


# ---------------------------------------------------------------------------------------------
# Why divide by √d_k: random queries and keys of growing dimension
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SoftmaxStats:
    """Per dimension d (in the order of ``ScalingStats.dims``), over every sampled query."""

    mean_abs: tuple[float, ...]  # mean |score|
    std: tuple[float, ...]  # standard deviation of the scores
    entropy: tuple[float, ...]  # mean entropy of a query's softmax weights, in nats
    max_weight: tuple[float, ...]  # mean of a query's largest softmax weight


@dataclass(frozen=True)
class ScalingStats:
    """The scaling experiment: scores q·k (unscaled) and q·k / √d (scaled)."""

    dims: tuple[int, ...]
    n_keys: int
    n_samples: int
    seed: int
    unscaled: SoftmaxStats
    scaled: SoftmaxStats


def check_experiment(dims: Sequence[int], n_keys: int, n_samples: int) -> None:
    """Friendly ValueErrors for sizes the experiment cannot (or should not) run."""
    if not dims:
        raise ValueError("pick at least one dimension")
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= MAX_DIMENSION:
            raise ValueError(f"each dimension must be from 1 to {MAX_DIMENSION}, got {d!r}")
    if isinstance(n_keys, bool) or not isinstance(n_keys, int) or not 2 <= n_keys <= MAX_KEYS:
        raise ValueError(f"the number of keys must be from 2 to {MAX_KEYS}, got {n_keys!r}")
    if (
        isinstance(n_samples, bool)
        or not isinstance(n_samples, int)
        or not 1 <= n_samples <= MAX_SAMPLES
    ):
        raise ValueError(
            f"the number of samples must be from 1 to {MAX_SAMPLES}, got {n_samples!r}"
        )
    work = n_samples * n_keys * sum(dims)
    if work > MAX_EXPERIMENT_WORK:
        raise ValueError(
            _(
                "that would draw {work} random numbers; the limit is {limit}. Use fewer samples, "
                "fewer keys or smaller dimensions."
            ).format(work=f"{work:,}", limit=f"{MAX_EXPERIMENT_WORK:,}")
        )


def _generator(seed: int, d: int) -> torch.Generator:
    """One generator per (seed, dimension): a dimension's numbers do not depend on which other
    dimensions are in the experiment."""
    return torch.Generator().manual_seed(seed * (MAX_DIMENSION + 1) + d)


def random_scores(d: int, n_keys: int, n_samples: int, seed: int) -> Tensor:
    """(n_samples, n_keys): q·k for n_samples random queries, each against its own n_keys
    random keys, every component drawn from N(0, 1)."""
    check_experiment([d], n_keys, n_samples)
    generator = _generator(seed, d)
    per_chunk = max(1, CHUNK_ELEMENTS // (n_keys * d))
    chunks = []
    for start in range(0, n_samples, per_chunk):
        n = min(per_chunk, n_samples - start)
        q = torch.randn(n, 1, d, generator=generator)  # (n, 1, d)
        k = torch.randn(n, n_keys, d, generator=generator)  # (n, n_keys, d)
        chunks.append((q * k).sum(dim=-1).double())  # (n, n_keys)
    return torch.cat(chunks)


def softmax_entropy(weights: Tensor) -> Tensor:
    """Entropy in nats of each row of probabilities (a weight of 0 contributes 0)."""
    return -torch.special.xlogy(weights, weights).sum(dim=-1)


def _summaries(scores_by_dim: list[Tensor]) -> SoftmaxStats:
    mean_abs, std, entropy, max_weight = [], [], [], []
    for scores in scores_by_dim:
        weights = torch.softmax(scores, dim=-1)
        mean_abs.append(scores.abs().mean().item())
        std.append(scores.std().item() if scores.numel() > 1 else 0.0)
        entropy.append(softmax_entropy(weights).mean().item())
        max_weight.append(weights.max(dim=-1).values.mean().item())
    return SoftmaxStats(tuple(mean_abs), tuple(std), tuple(entropy), tuple(max_weight))


def scaling_experiment(
    dims: Sequence[int], n_keys: int, n_samples: int, seed: int = 0
) -> ScalingStats:
    """For each dimension d: draw random q and k, and compare the softmax of q·k with the softmax
    of q·k / √d. Unscaled scores spread like √d, so their softmax saturates (entropy → 0,
    largest weight → 1); the scaled ones keep a spread of about 1 whatever d is."""
    check_experiment(dims, n_keys, n_samples)
    unscaled = [random_scores(d, n_keys, n_samples, seed) for d in dims]
    scaled = [scores / math.sqrt(d) for scores, d in zip(unscaled, dims, strict=True)]
    return ScalingStats(
        tuple(dims), n_keys, n_samples, seed, _summaries(unscaled), _summaries(scaled)
    )


def powers_of_two(low: int, high: int) -> list[int]:
    """The powers of two from low to high (both included when they are powers of two)."""
    if not 1 <= low <= high <= MAX_DIMENSION:
        raise ValueError(f"need 1 <= low <= high <= {MAX_DIMENSION}, got {low} and {high}")
    return [2**p for p in range(13) if low <= 2**p <= high]


# ---------------------------------------------------------------------------------------------
# Predict, then reveal (the lesson's ``predict:`` questions)
# ---------------------------------------------------------------------------------------------


def position_label(tokens: Sequence[str], position: int) -> str:
    """'position: token' as the page's selectors show it."""
    return f"{position}: {tokens[position]!r}"


def _head_reveal(steps: HeadSteps, focus: int, answer: str | int | float, **values) -> Reveal:
    return Reveal(answer, values, data={"steps": steps, "focus": focus})


def predict_strongest_key(steps: HeadSteps, focus: int) -> Prediction:
    """Which key the query at ``focus`` gives the most weight to (among those it may see)."""
    visible = steps.allowed()[focus].nonzero().flatten().tolist()
    labels = [position_label(steps.tokens, i) for i in visible]

    def reveal() -> Reveal:
        row = steps.weights[focus]
        best = int(row.argmax())
        return _head_reveal(
            steps, focus, position_label(steps.tokens, best), weight=float(row[best])
        )

    return Prediction({"query": position_label(steps.tokens, focus)}, reveal, tuple(labels))


def predict_self_weight(steps: HeadSteps, focus: int) -> Prediction:
    """The share of its weight the query at ``focus`` keeps for its own position."""

    def reveal() -> Reveal:
        weight = float(steps.weights[focus, focus])
        return _head_reveal(steps, focus, weight, visible=int(steps.allowed()[focus].sum()))

    return Prediction({"query": position_label(steps.tokens, focus)}, reveal, bounds=(0.0, 1.0))


UNSCALED_CHOICES = (N_("More than half"), N_("Half or less"))


def predict_unscaled_peak(steps: HeadSteps, focus: int) -> Prediction:
    """Whether a softmax of the row's scores *without* the division by √d_k would give more
    than half of the weight to one key."""

    def reveal() -> Reveal:
        allowed = steps.allowed()[focus]
        raw = steps.scores[focus].masked_fill(~allowed, float("-inf")).softmax(-1)
        peak = float(raw.max())
        scaled_peak = float(steps.weights[focus].max())
        answer = UNSCALED_CHOICES[0] if peak > 0.5 else UNSCALED_CHOICES[1]
        return _head_reveal(steps, focus, answer, peak=peak, scaled_peak=scaled_peak)

    values = {"query": position_label(steps.tokens, focus), "scale": steps.scale}
    return Prediction(values, reveal, UNSCALED_CHOICES)
