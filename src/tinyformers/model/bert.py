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
from tinyformers.model.blocks import Block, ModelOutput, check_length, init_weights, layer_norm
from tinyformers.model.config import BertConfig
from tinyformers.model.positional import position_embedding


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

    def embed(self, idx: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """Sum of token, position and segment embeddings, then LayerNorm: (B, T) -> (B, T, C)."""
        t = idx.size(1)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(idx)
        x = self.wte(idx) + self.wse(token_type_ids)  # (B, T, C)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(t, device=idx.device))  # (T, C) broadcasts
        return self.drop(self.ln_emb(x))

    def forward(
        self,
        idx: Tensor,
        token_type_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> ModelOutput:
        """idx: (B, T) ids. labels: (B, T) the original token at masked positions, -100 elsewhere
        (those positions carry no loss)."""
        check_length(idx.size(1), self.config.block_size)
        mask = padding_mask(attention_mask) if attention_mask is not None else None
        x = self.embed(idx, token_type_ids)

        hidden_states, attentions = [x], []
        for block in self.h:
            out = block(x, mask, need_weights=output_attentions)
            x = out.x
            hidden_states.append(x)
            attentions.append(out.attn)
        logits = self.mlm_head(x)  # (B, T, vocab_size)

        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        return ModelOutput(
            logits=logits,
            loss=loss,
            hidden_states=tuple(hidden_states) if output_hidden_states else (),
            attentions=tuple(attentions) if output_attentions else (),
            masks={"self": mask} if mask is not None else {},
        )
