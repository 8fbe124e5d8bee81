"""A GRU encoder-decoder, with or without additive (Bahdanau) attention: the models that came
before the Transformer.

    source ids ──► wte ──► encoder GRU ──► annotations h_1 … h_S (B, S, H)
                                         └► h_S, the state after the last source token
    decoder, one step at a time (a GRUCell):
        context c_t = h_S                              (no attention: one fixed vector)
                    = Σ_j α_tj h_j                     (additive attention)
        α_tj = softmax_j( vᵀ tanh(W s_{t-1} + U h_j) )
        s_t = GRUCell([wte(y_{t-1}); c_t], s_{t-1})
        logits_t = head([s_t; c_t])

Without attention the decoder sees the source only through h_S, one vector of H numbers,
however long the source is (Cho et al., Sutskever et al., 2014). With attention it reads every
h_j again at every step, weighted by how well h_j fits its current state (Bahdanau, Cho and
Bengio, 2015, who also read the source in both directions; this encoder reads left to right).

The encoder and the decoder share one embedding table; sources and targets use one vocabulary,
as in ``seq2seq.py``. ``forward`` takes the same batches as ``Seq2Seq`` (``Seq2SeqTask``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class RNNConfig:
    vocab_size: int = 45
    n_embd: int = 32  # width of a token embedding
    n_hidden: int = 64  # H: the GRU state, and every annotation h_j
    attention: bool = False  # additive attention over the annotations, or h_S alone
    max_output: int = 24  # the longest output greedy decoding writes

    def __post_init__(self) -> None:
        for name, low, high in (
            ("vocab_size", 1, 1_000_000),
            ("n_embd", 1, 4096),
            ("n_hidden", 1, 4096),
            ("max_output", 1, 4096),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(
                    f"{name} must be a whole number from {low} to {high}, got {value!r}"
                )
        if not isinstance(self.attention, bool):
            raise ValueError(f"attention must be True or False, got {self.attention!r}")


@dataclass
class RNNOutput:
    logits: Tensor  # (B, T, vocab_size)
    loss: Tensor | None
    attentions: Tensor | None  # (B, T, S) each decoder step's weights over the source


def last_states(annotations: Tensor, src_attention_mask: Tensor | None) -> Tensor:
    """The encoder state after each source's last real token: (B, S, H) -> (B, H). Padding sits
    on the right and a GRU reads left to right, so the states before it never saw it."""
    if src_attention_mask is None:
        return annotations[:, -1]  # (B, H)
    lengths = src_attention_mask.sum(dim=1)  # (B,)
    if (lengths == 0).any():
        raise ValueError("every source needs at least one token")
    rows = torch.arange(annotations.size(0), device=annotations.device)
    return annotations[rows, lengths - 1]  # (B, H)


class AdditiveAttention(nn.Module):
    """score(s, h_j) = vᵀ tanh(W s + U h_j); weights = the softmax of the scores over j."""

    def __init__(self, n_hidden: int):
        super().__init__()
        self.query = nn.Linear(n_hidden, n_hidden, bias=False)  # W
        self.key = nn.Linear(n_hidden, n_hidden, bias=True)  # U (and the bias inside tanh)
        self.score = nn.Linear(n_hidden, 1, bias=False)  # v

    def forward(
        self, state: Tensor, keys: Tensor, annotations: Tensor, mask: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """state: (B, H) the decoder's last state; keys: (B, S, H) U h_j, computed once per
        source; annotations: (B, S, H); mask: (B, S), 1 for real tokens. Returns the context
        (B, H) and the weights (B, S), which sum to 1 over the real tokens."""
        mixed = torch.tanh(self.query(state)[:, None, :] + keys)  # (B, S, H)
        scores = self.score(mixed).squeeze(-1)  # (B, S)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (B, S)
        context = (weights[:, :, None] * annotations).sum(dim=1)  # (B, H)
        return context, weights


@dataclass
class Memory:
    """What the decoder reads of one batch of sources, computed once."""

    annotations: Tensor  # (B, S, H)
    keys: Tensor | None  # (B, S, H) U h_j, with attention only
    mask: Tensor | None  # (B, S)
    last: Tensor  # (B, H) h_S, the first decoder state (and the only context without attention)


class GRUEncoderDecoder(nn.Module):
    """The encoder-decoder of the module docstring; ``config.attention`` chooses the context."""

    def __init__(self, config: RNNConfig):
        super().__init__()
        self.config = config
        e, h = config.n_embd, config.n_hidden
        self.wte = nn.Embedding(config.vocab_size, e)
        self.encoder = nn.GRU(e, h, batch_first=True)
        self.attention = AdditiveAttention(h) if config.attention else None
        self.decoder = nn.GRUCell(e + h, h)
        self.head = nn.Linear(2 * h, config.vocab_size)

    def encode(self, src: Tensor, src_attention_mask: Tensor | None = None) -> Memory:
        """src: (B, S) -> the annotations and the state after the last real token."""
        if src.size(1) == 0:
            raise ValueError("the source is empty; there is nothing to encode")
        annotations, _ = self.encoder(self.wte(src))  # (B, S, H)
        keys = self.attention.key(annotations) if self.attention is not None else None
        last = last_states(annotations, src_attention_mask)  # (B, H)
        return Memory(annotations, keys, src_attention_mask, last)

    def step(self, token: Tensor, state: Tensor, memory: Memory) -> tuple[Tensor, Tensor, Tensor]:
        """One decoder step. token: (B,) the previous output; state: (B, H) s_{t-1}. Returns
        logits (B, vocab_size), s_t (B, H) and the weights over the source (B, S)."""
        if self.attention is None:
            context = memory.last  # (B, H): the same vector at every step
            weights = torch.zeros(memory.annotations.shape[:2], device=state.device)  # (B, S)
        else:
            context, weights = self.attention(state, memory.keys, memory.annotations, memory.mask)
        x = torch.cat([self.wte(token), context], dim=-1)  # (B, E + H)
        state = self.decoder(x, state)  # (B, H)
        logits = self.head(torch.cat([state, context], dim=-1))  # (B, vocab_size)
        return logits, state, weights

    def forward(
        self,
        src: Tensor,
        tgt: Tensor,
        src_attention_mask: Tensor | None = None,
        targets: Tensor | None = None,
    ) -> RNNOutput:
        """src: (B, S) source ids; tgt: (B, T) decoder input starting with [BOS] (teacher
        forcing); targets: (B, T) the next token at each position, -100 where no loss is taken."""
        memory = self.encode(src, src_attention_mask)
        state = memory.last  # (B, H)
        logits, weights = [], []
        for t in range(tgt.size(1)):
            step_logits, state, step_weights = self.step(tgt[:, t], state, memory)
            logits.append(step_logits)
            weights.append(step_weights)
        logits = torch.stack(logits, dim=1)  # (B, T, vocab_size)
        attentions = (
            torch.stack(weights, dim=1) if self.attention is not None else None
        )  # (B, T, S)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return RNNOutput(logits, loss, attentions)

    @torch.no_grad()
    def generate_greedy(
        self,
        src: Tensor,
        bos_id: int,
        eos_id: int,
        src_attention_mask: Tensor | None = None,
        max_new_tokens: int | None = None,
    ) -> tuple[list[list[int]], Tensor]:
        """Greedy decoding of a (B, S) batch. Returns each source's ids after [BOS] up to its
        [EOS] (not included) and the weights of every step (B, T, S), zeros without attention."""
        limit = self.config.max_output if max_new_tokens is None else max_new_tokens
        memory = self.encode(src, src_attention_mask)
        state = memory.last  # (B, H)
        token = torch.full((src.size(0),), bos_id, dtype=torch.long)  # (B,)
        written, weights = [], []
        finished = torch.zeros(src.size(0), dtype=torch.bool)
        for _ in range(limit):
            logits, state, step_weights = self.step(token, state, memory)
            token = logits.argmax(dim=-1)  # (B,)
            written.append(token)
            weights.append(step_weights)
            finished |= token == eos_id
            if finished.all():
                break
        ids = []
        rows = torch.stack(written, dim=1).tolist() if written else [[] for _ in range(src.size(0))]
        for row in rows:
            ids.append(row[: row.index(eos_id)] if eos_id in row else row)
        empty = torch.zeros(src.size(0), 0, src.size(1))
        return ids, torch.stack(weights, dim=1) if weights else empty
