"""Encoder-decoder Transformer, as in "Attention Is All You Need" (and T5 / BART).

    source ids ──► wte + enc_wpe ──► encoder: n_layer × Block (bidirectional) ──► enc_ln_f ─┐
                                                                             memory     │
    target ids ──► wte + dec_wpe ──► decoder: n_decoder_layer × Block ◄──────────────────┘
                                    (causal self-attention, then cross-attention to memory)
                                 ──► ln_f ──► lm_head (tied to wte)

Unlike gpt.py: there are two stacks. The encoder reads the whole source with no causal mask;
each decoder block has an extra sub-layer, cross-attention, whose queries come from the decoder
and whose keys and values come from the encoder output. Source and target share one vocabulary
and one embedding table.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinyformers.model.attention import causal_mask, cross_attention_mask, padding_mask
from tinyformers.model.blocks import (
    Block,
    ModelOutput,
    StackOutput,
    check_length,
    init_weights,
    layer_norm,
    run_blocks,
)
from tinyformers.model.config import Seq2SeqConfig
from tinyformers.model.positional import position_embedding
from tinyformers.model.record import EmbeddingRecord, LayerNormRecord, RunRecord


class Seq2Seq(nn.Module):
    tied_weights = {"lm_head.weight": "wte.weight"}

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        if config.position == "rotary":
            raise ValueError("the encoder-decoder supports learned, sinusoidal or no positions")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # shared by both stacks
        self.enc_wpe = position_embedding(config.position, config.block_size, config.n_embd)
        self.dec_wpe = position_embedding(config.position, config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.encoder = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.enc_ln_f = layer_norm(config)
        self.decoder = nn.ModuleList(
            Block(config, cross_attention=True) for _ in range(config.n_decoder_layer)
        )
        self.ln_f = layer_norm(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        init_weights(self, config.n_layer + config.n_decoder_layer)
        self.lm_head.weight = self.wte.weight

    def embed(self, idx: Tensor, wpe: nn.Module | None) -> EmbeddingRecord:
        """Token plus position embeddings of one stack: (B, T) -> (B, T, C)."""
        token = self.wte(idx)  # (B, T, C)
        if wpe is None:
            return EmbeddingRecord(total=token, token=token)
        position = wpe(torch.arange(idx.size(1), device=idx.device))  # (T, C) broadcasts
        return EmbeddingRecord(total=token + position, token=token, position=position)

    def run_encoder(
        self,
        src: Tensor,
        src_attention_mask: Tensor | None = None,
        need_weights: bool = False,
        return_record: bool = False,
    ) -> tuple[Tensor, StackOutput, RunRecord | None]:
        """src: (B, S) -> memory (B, S, C), what the encoder's blocks computed, and its record."""
        check_length(src.size(1), self.config.block_size, "source")
        mask = padding_mask(src_attention_mask) if src_attention_mask is not None else None
        embeddings = self.embed(src, self.enc_wpe)
        stack = run_blocks(
            self.encoder,
            self.drop(embeddings.total),
            mask,
            need_weights=need_weights,
            return_record=return_record,
        )
        memory = self.enc_ln_f(stack.x)  # (B, S, C)
        stack.hidden_states[-1] = memory  # as in the decoder: the last one is after the final norm
        record = None
        if return_record:
            norms = {"enc_ln_f": LayerNormRecord(stack.x, memory)}
            record = RunRecord(embeddings, stack.records, norms, mask)
        return memory, stack, record

    def encode(
        self, src: Tensor, src_attention_mask: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, list[Tensor], list[Tensor | None]]:
        """src: (B, S) -> memory (B, S, C), hidden states per layer, self-attention per layer."""
        memory, stack, _ = self.run_encoder(src, src_attention_mask, need_weights)
        return memory, stack.hidden_states, stack.attentions

    def forward(
        self,
        src: Tensor,
        tgt: Tensor,
        src_attention_mask: Tensor | None = None,
        targets: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        memory: Tensor | None = None,
        return_record: bool = False,
    ) -> ModelOutput:
        """src: (B, S) source ids; tgt: (B, T) decoder input (starting with [BOS]); targets:
        (B, T) the next target token at each decoder position, -100 where no loss is taken.
        Pass ``memory`` (from ``encode``) to skip re-running the encoder while decoding.
        ``return_record`` keeps every intermediate tensor of both stacks in ``record``."""
        encoder, encoder_record = None, None
        if memory is None:
            memory, encoder, encoder_record = self.run_encoder(
                src, src_attention_mask, output_attentions, return_record
            )
        t = tgt.size(1)
        check_length(t, self.config.block_size, "target")
        self_mask = causal_mask(t, tgt.device)  # (T, T)
        cross_mask = None
        if src_attention_mask is not None:
            cross_mask = cross_attention_mask(src_attention_mask, t)  # (B, 1, T, S)

        embeddings = self.embed(tgt, self.dec_wpe)
        stack = run_blocks(
            self.decoder,
            self.drop(embeddings.total),
            self_mask,
            memory=memory,
            memory_mask=cross_mask,
            need_weights=output_attentions,
            return_record=return_record,
        )
        x = self.ln_f(stack.x)  # (B, T, C)
        hidden_states = stack.hidden_states
        hidden_states[-1] = x
        logits = self.lm_head(x)  # (B, T, vocab_size)

        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        masks = {"self": self_mask}
        if cross_mask is not None:
            masks["cross"] = cross_mask
            masks["encoder"] = padding_mask(src_attention_mask)
        record = None
        if return_record:
            norms = {"ln_f": LayerNormRecord(stack.x, x)}
            record = RunRecord(embeddings, stack.records, norms, self_mask, encoder=encoder_record)
        return ModelOutput(
            logits=logits,
            loss=loss,
            hidden_states=tuple(hidden_states) if output_hidden_states else (),
            attentions=tuple(stack.attentions) if output_attentions else (),
            cross_attentions=tuple(stack.cross_attentions) if output_attentions else (),
            encoder_hidden_states=(
                tuple(encoder.hidden_states) if output_hidden_states and encoder else ()
            ),
            encoder_attentions=tuple(encoder.attentions) if output_attentions and encoder else (),
            masks=masks,
            record=record,
        )

    @torch.no_grad()
    def generate_greedy(
        self, src: Tensor, bos_id: int, eos_id: int, max_new_tokens: int | None = None
    ) -> Tensor:
        """Greedy decoding for a (1, S) source: returns the (1, T) generated ids after [BOS],
        stopping at [EOS] (not included) or after ``max_new_tokens``."""
        limit = self.config.block_size - 1 if max_new_tokens is None else max_new_tokens
        memory, _, _ = self.encode(src)
        tgt = torch.tensor([[bos_id]], device=src.device)
        for _ in range(min(limit, self.config.block_size - 1)):
            logits = self(src, tgt, memory=memory).logits[:, -1]  # (1, vocab_size)
            next_id = logits.argmax(dim=-1, keepdim=True)  # (1, 1)
            if next_id.item() == eos_id:
                break
            tgt = torch.cat([tgt, next_id], dim=1)
        return tgt[:, 1:]
