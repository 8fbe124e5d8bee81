"""BERT: an encoder-only Transformer trained to fill in masked tokens.

    [CLS] A [SEP] B [SEP] ──► wte + wpe + wse ──► LayerNorm ──► n_layer × Block (post-LN)
                          ──► MLM head (dense, GELU, LayerNorm, tied decoder + bias)

Unlike gpt.py: attention is bidirectional (no causal mask: every token sees every other real
token, only padding is hidden); a third embedding table ``wse`` tells sentence A from sentence B;
the embeddings are LayerNormed; blocks are post-LN; and the output head predicts the token at
*masked* positions rather than the next token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinyformers.model.attention import padding_mask
from tinyformers.model.blocks import (
    Block,
    ModelOutput,
    check_length,
    init_weights,
    layer_norm,
    run_blocks,
)
from tinyformers.model.config import BertConfig
from tinyformers.model.positional import position_embedding
from tinyformers.model.record import EmbeddingRecord, LayerNormRecord, RunRecord


class MaskedLMHead(nn.Module):
    """Transform each hidden vector, then score it against every token embedding."""

    def __init__(self, config: BertConfig):
        super().__init__()
        approximate = "tanh" if config.activation == "gelu_tanh" else "none"
        self.dense = nn.Linear(config.n_embd, config.n_embd)
        self.act = nn.GELU(approximate=approximate)
        self.ln = layer_norm(config)
        self.decoder = nn.Linear(config.n_embd, config.vocab_size)  # weight tied to wte

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.ln(self.act(self.dense(x))))  # (B, T, vocab_size)

    def recorded(self, x: Tensor) -> tuple[Tensor, LayerNormRecord]:
        """The logits, and what the head's LayerNorm read and wrote."""
        h = self.act(self.dense(x))  # (B, T, C)
        normed = self.ln(h)
        return self.decoder(normed), LayerNormRecord(h, normed)  # (B, T, vocab_size)


class Bert(nn.Module):
    tied_weights = {"mlm_head.decoder.weight": "wte.weight"}

    def __init__(self, config: BertConfig):
        super().__init__()
        if config.position == "rotary":
            raise ValueError("the BERT layout here supports learned, sinusoidal or no positions")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embeddings
        self.wpe = position_embedding(config.position, config.block_size, config.n_embd)
        self.wse = nn.Embedding(config.type_vocab_size, config.n_embd)  # segment (A/B) embeddings
        self.ln_emb = layer_norm(config)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.mlm_head = MaskedLMHead(config)
        init_weights(self, config.n_layer)
        self.mlm_head.decoder.weight = self.wte.weight

    def embed(self, idx: Tensor, token_type_ids: Tensor | None = None) -> EmbeddingRecord:
        """Token, position and segment embeddings and their sum: (B, T) -> (B, T, C)."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(idx)
        token, segment = self.wte(idx), self.wse(token_type_ids)  # (B, T, C) each
        if self.wpe is None:
            return EmbeddingRecord(total=token + segment, token=token, segment=segment)
        position = self.wpe(torch.arange(idx.size(1), device=idx.device))  # (T, C) broadcasts
        return EmbeddingRecord(token + segment + position, token, position, segment)

    def forward(
        self,
        idx: Tensor | None,
        token_type_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_record: bool = False,
        input_vectors: Tensor | None = None,
    ) -> ModelOutput:
        """idx: (B, T) ids. labels: (B, T) the original token at masked positions, -100 elsewhere
        (those positions carry no loss).

        For experiments, ``input_vectors`` (B, T, C) replace the sum of the embeddings (pass
        ``idx=None``); the embedding LayerNorm still applies. ``return_record`` keeps every
        intermediate tensor in ``record``.
        """
        check_length(
            (idx if input_vectors is None else input_vectors).size(1), self.config.block_size
        )
        mask = padding_mask(attention_mask) if attention_mask is not None else None
        embeddings = (
            self.embed(idx, token_type_ids)
            if input_vectors is None
            else EmbeddingRecord(input_vectors)
        )
        x = self.ln_emb(embeddings.total)  # (B, T, C)
        stack = run_blocks(
            self.h,
            self.drop(x),
            mask,
            need_weights=output_attentions,
            return_record=return_record,
        )
        record = None
        if return_record:
            logits, head_norm = self.mlm_head.recorded(stack.x)  # (B, T, vocab_size)
            norms = {"ln_emb": LayerNormRecord(embeddings.total, x), "mlm_head.ln": head_norm}
            record = RunRecord(embeddings, stack.records, norms, mask)
        else:
            logits = self.mlm_head(stack.x)  # (B, T, vocab_size)

        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return ModelOutput(
            logits=logits,
            loss=loss,
            hidden_states=tuple(stack.hidden_states) if output_hidden_states else (),
            attentions=tuple(stack.attentions) if output_attentions else (),
            masks={"self": mask} if mask is not None else {},
            record=record,
        )
