"""GPT: a decoder-only Transformer language model in the GPT-2 layout.

    token ids ──► wte + wpe ──► n_layer × Block (pre-LN, causal self-attention) ──► ln_f ──► lm_head

The language-model head shares its weight matrix with the token embedding ``wte`` ("tied
embeddings"), as in GPT-2. Parameter names follow GPT-2, so ``interop.py`` can map them onto
``transformers.GPT2LMHeadModel`` one to one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinyformers.model.attention import causal_mask, combine_masks, padding_mask
from tinyformers.model.blocks import (
    Block,
    ModelOutput,
    check_length,
    init_weights,
    layer_norm,
    run_blocks,
)
from tinyformers.model.config import GPTConfig
from tinyformers.model.positional import position_embedding, rotary_angles
from tinyformers.model.record import EmbeddingRecord, LayerNormRecord, RunRecord


class GPT(nn.Module):
    tied_weights = {"lm_head.weight": "wte.weight"}

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embeddings
        self.wpe = position_embedding(config.position, config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = layer_norm(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        init_weights(self, config.n_layer)
        self.lm_head.weight = self.wte.weight  # tie after init so both names share one tensor
        if config.position == "rotary":
            cos, sin = rotary_angles(config.block_size, config.head_size)
            self.register_buffer("rotary_cos", cos, persistent=False)
            self.register_buffer("rotary_sin", sin, persistent=False)

    def attention_mask(self, t: int, attention_mask: Tensor | None, device) -> Tensor | None:
        """The mask every self-attention layer uses: causal, and/or hiding padded keys."""
        causal = causal_mask(t, device) if self.config.causal else None
        padding = padding_mask(attention_mask) if attention_mask is not None else None
        return combine_masks(causal, padding)

    def rotary(self, t: int) -> tuple[Tensor, Tensor] | None:
        """(cos, sin) of the first ``t`` positions, each (T, hs / 2); None without rotary."""
        if self.config.position != "rotary":
            return None
        return self.rotary_cos[:t], self.rotary_sin[:t]

    def embed(self, idx: Tensor) -> EmbeddingRecord:
        """Token plus position embeddings: (B, T) -> the vectors and their sum (B, T, C)."""
        token = self.wte(idx)  # (B, T, C)
        if self.wpe is None:
            return EmbeddingRecord(total=token, token=token)
        position = self.wpe(torch.arange(idx.size(1), device=idx.device))  # (T, C)
        return EmbeddingRecord(total=token + position, token=token, position=position)

    def forward(
        self,
        idx: Tensor | None,
        targets: Tensor | None = None,
        attention_mask: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        return_record: bool = False,
        self_attention_mask: Tensor | None = None,
        input_vectors: Tensor | None = None,
    ) -> ModelOutput:
        """idx: (B, T) token ids. targets: (B, T) the *next* token at each position (already
        shifted, as nanoGPT does), -100 where no loss should be taken.

        For experiments: ``self_attention_mask`` is a boolean mask every layer uses instead of
        the causal one; ``input_vectors`` (B, T, C) replace the token + position embeddings
        (pass ``idx=None``). ``return_record`` keeps every intermediate tensor in ``record``.
        """
        t = (idx if input_vectors is None else input_vectors).size(1)
        check_length(t, self.config.block_size)
        embeddings = self.embed(idx) if input_vectors is None else EmbeddingRecord(input_vectors)
        rotary = self.rotary(t)
        mask = self_attention_mask
        if mask is None:
            mask = self.attention_mask(t, attention_mask, embeddings.total.device)
        stack = run_blocks(
            self.h,
            self.drop(embeddings.total),
            mask,
            rotary,
            need_weights=output_attentions,
            return_record=return_record,
        )
        x = self.ln_f(stack.x)  # (B, T, C)
        hidden_states = stack.hidden_states
        hidden_states[-1] = x  # like transformers: the last hidden state is after ln_f
        logits = self.lm_head(x)  # (B, T, vocab_size)

        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        record = None
        if return_record:
            norms = {"ln_f": LayerNormRecord(stack.x, x)}
            record = RunRecord(embeddings, stack.records, norms, mask, rotary)
        return ModelOutput(
            logits=logits,
            loss=loss,
            hidden_states=tuple(hidden_states) if output_hidden_states else (),
            attentions=tuple(stack.attentions) if output_attentions else (),
            masks={"self": mask} if mask is not None else {},
            record=record,
        )
