"""Run a model on one input and keep everything a figure may want to show.

A ``Trace`` holds, for a single sequence (batch of 1):

* ``tokens``: the token strings the model saw,
* ``attentions``: per layer a tensor ``(1, n_head, q_len, k_len)``, the format ``transformers``
  returns with ``output_attentions=True`` and the one bertviz draws,
* ``hidden_states``: per layer ``(1, T, C)`` (embeddings first),
* ``logits`` ``(1, T, vocab_size)`` and the boolean ``masks`` attention used,
* ``record``: for our models, the ``RunRecord`` of the forward pass (see ``record.py``): per
  block the input to attention, q, k, v, scores, each head's output, the MLP's tensors and every
  LayerNorm's input and output. Lessons that look inside a layer read it from here.

For an encoder-decoder, ``attentions`` are the decoder's masked self-attention, and the trace also
carries ``encoder_tokens``, ``encoder_attentions`` and ``cross_attentions`` (decoder × encoder).

The same structure comes out of our models (``trace_ids``, ``trace_seq2seq``) and out of a
``transformers`` model (``trace_hf``), so one set of figures serves both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from tinyformers.model.record import BlockRecord, RunRecord


@dataclass
class Trace:
    tokens: list[str]
    attentions: list[Tensor]
    logits: Tensor
    hidden_states: list[Tensor] = field(default_factory=list)
    masks: dict[str, Tensor] = field(default_factory=dict)
    input_ids: list[int] = field(default_factory=list)
    encoder_tokens: list[str] = field(default_factory=list)
    encoder_attentions: list[Tensor] = field(default_factory=list)
    encoder_hidden_states: list[Tensor] = field(default_factory=list)
    cross_attentions: list[Tensor] = field(default_factory=list)
    record: RunRecord | None = None

    def __post_init__(self) -> None:
        check_attention(self.attentions, len(self.tokens), len(self.tokens), "attention")
        check_attention(
            self.encoder_attentions,
            len(self.encoder_tokens),
            len(self.encoder_tokens),
            "encoder attention",
        )
        if self.cross_attentions:
            check_attention(
                self.cross_attentions, len(self.tokens), len(self.encoder_tokens), "cross-attention"
            )
        if self.logits.dim() != 3 or self.logits.shape[:2] != (1, len(self.tokens)):
            raise ValueError(
                f"logits have shape {tuple(self.logits.shape)}; expected (1, {len(self.tokens)}, vocab)"
            )

    @property
    def n_layer(self) -> int:
        return len(self.attentions)

    @property
    def n_head(self) -> int:
        return self.attentions[0].shape[1] if self.attentions else 0

    def head(self, layer: int, head: int) -> Tensor:
        """The (q_len, k_len) attention matrix of one head."""
        if not 0 <= layer < self.n_layer:
            raise ValueError(f"layer must be between 0 and {self.n_layer - 1}, got {layer}")
        if not 0 <= head < self.n_head:
            raise ValueError(f"head must be between 0 and {self.n_head - 1}, got {head}")
        return self.attentions[layer][0, head]

    def block(self, layer: int) -> BlockRecord:
        """What block ``layer`` computed (one of our models only: a ``transformers`` model's
        trace carries no record)."""
        if self.record is None:
            raise ValueError(
                "this trace has no record of the forward pass; trace one of our models"
            )
        return self.record.block(layer)


def check_attention(attentions: list[Tensor], q_len: int, k_len: int, what: str) -> None:
    """Each layer must be (1, heads, q_len, k_len); say exactly what is wrong if not."""
    for layer, weights in enumerate(attentions):
        if weights.dim() != 4 or weights.shape[0] != 1:
            raise ValueError(
                f"{what} layer {layer} has shape {tuple(weights.shape)}; expected (1, heads, q, k)"
            )
        if weights.shape[2] != q_len:
            raise ValueError(
                f"{what} layer {layer} has {weights.shape[2]} query positions but {q_len} tokens"
            )
        if weights.shape[3] != k_len:
            raise ValueError(
                f"{what} layer {layer} has {weights.shape[3]} key positions but {k_len} tokens"
            )


def _as_batch(ids: list[int] | Tensor) -> Tensor:
    batch = torch.as_tensor(ids, dtype=torch.long)
    if batch.dim() == 1:
        batch = batch[None]  # (1, T)
    if batch.dim() != 2 or batch.shape[0] != 1:
        raise ValueError(f"a trace is for one sequence; got ids of shape {tuple(batch.shape)}")
    if batch.shape[1] == 0:
        raise ValueError("there are no tokens to run the model on")
    return batch


def _detached(tensors) -> list[Tensor]:
    return [t.detach() for t in tensors]


@torch.no_grad()
def trace_ids(
    model: nn.Module,
    ids: list[int] | Tensor,
    tokens: list[str],
    token_type_ids: list[int] | Tensor | None = None,
) -> Trace:
    """Trace one of our decoder-only or encoder-only models (GPT, Bert) on ``ids``."""
    batch = _as_batch(ids)
    if len(tokens) != batch.shape[1]:
        raise ValueError(f"there are {batch.shape[1]} ids but {len(tokens)} token strings")
    kwargs = {}
    if token_type_ids is not None:
        kwargs["token_type_ids"] = _as_batch(token_type_ids)
    out = model(
        batch, output_attentions=True, output_hidden_states=True, return_record=True, **kwargs
    )
    return Trace(
        tokens=list(tokens),
        attentions=_detached(out.attentions),
        logits=out.logits.detach(),
        hidden_states=_detached(out.hidden_states),
        masks=dict(out.masks),
        input_ids=batch[0].tolist(),
        record=out.record,
    )


@torch.no_grad()
def trace_seq2seq(
    model: nn.Module,
    src_ids: list[int] | Tensor,
    tgt_ids: list[int] | Tensor,
    src_tokens: list[str],
    tgt_tokens: list[str],
) -> Trace:
    """Trace our encoder-decoder: ``tgt_ids`` is the decoder input (starting with [BOS])."""
    src, tgt = _as_batch(src_ids), _as_batch(tgt_ids)
    out = model(src, tgt, output_attentions=True, output_hidden_states=True, return_record=True)
    return Trace(
        tokens=list(tgt_tokens),
        attentions=_detached(out.attentions),
        logits=out.logits.detach(),
        hidden_states=_detached(out.hidden_states),
        masks=dict(out.masks),
        input_ids=tgt[0].tolist(),
        encoder_tokens=list(src_tokens),
        encoder_attentions=_detached(out.encoder_attentions),
        encoder_hidden_states=_detached(out.encoder_hidden_states),
        cross_attentions=_detached(out.cross_attentions),
        record=out.record,
    )


@torch.no_grad()
def trace_hf(
    hf_model: nn.Module,
    ids: list[int] | Tensor,
    tokens: list[str],
    decoder_ids: list[int] | Tensor | None = None,
    decoder_tokens: list[str] | None = None,
) -> Trace:
    """Trace a ``transformers`` model (GPT-2, BERT, or an encoder-decoder such as T5/BART).

    The model must have been loaded with ``attn_implementation="eager"``; other implementations
    do not return attention weights.
    """
    batch = _as_batch(ids)
    if decoder_ids is None:
        out = hf_model(batch, output_attentions=True, output_hidden_states=True)
        if not out.attentions:
            raise ValueError(
                "the model returned no attention weights; load it with attn_implementation='eager'"
            )
        return Trace(
            tokens=list(tokens),
            attentions=_detached(out.attentions),
            logits=out.logits.detach(),
            hidden_states=_detached(out.hidden_states),
            input_ids=batch[0].tolist(),
        )
    dec = _as_batch(decoder_ids)
    out = hf_model(
        input_ids=batch, decoder_input_ids=dec, output_attentions=True, output_hidden_states=True
    )
    return Trace(
        tokens=list(decoder_tokens or []),
        attentions=_detached(out.decoder_attentions),
        logits=out.logits.detach(),
        hidden_states=_detached(out.decoder_hidden_states),
        input_ids=dec[0].tolist(),
        encoder_tokens=list(tokens),
        encoder_attentions=_detached(out.encoder_attentions),
        encoder_hidden_states=_detached(out.encoder_hidden_states),
        cross_attentions=_detached(out.cross_attentions),
    )


def trace_text(model: nn.Module, tokenizer, text: str, text_b: str | None = None) -> Trace:
    """Tokenize ``text`` the way the model was trained and trace it.

    GPT sees the plain token ids; BERT sees ``[CLS] text [SEP]`` (plus ``text_b [SEP]`` for a pair).
    """
    from tinyformers.model.bert import Bert
    from tinyformers.text.inputs import bert_inputs

    if not tokenizer.encode(text):
        raise ValueError("the text is empty: type a few words first")
    if isinstance(model, Bert):
        ids, segments = bert_inputs(tokenizer, text, text_b)
        return trace_ids(model, ids, tokenizer.display_tokens(ids), token_type_ids=segments)
    if text_b is not None:
        raise ValueError("only BERT takes a sentence pair")
    ids = tokenizer.encode(text)
    return trace_ids(model, ids, tokenizer.display_tokens(ids))
