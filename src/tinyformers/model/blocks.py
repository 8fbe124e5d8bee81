"""The pieces every model is stacked from: the MLP and the Transformer block.

A block is two sub-layers, attention then MLP (a decoder block has cross-attention between
them). Each sub-layer is wrapped in a residual connection and a LayerNorm, in one of two
arrangements:

    pre-LN  (GPT-2):                 x = x + sublayer(LayerNorm(x))
    post-LN (original Transformer, BERT): x = LayerNorm(x + sublayer(x))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import Tensor, nn

from tinyformers.model.attention import MultiHeadAttention
from tinyformers.model.config import TransformerConfig
from tinyformers.model.record import BlockRecord, LayerNormRecord, MLPRecord, RunRecord


class MLP(nn.Module):
    """Position-wise feed-forward network: widen, GELU, project back."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        approximate = "tanh" if config.activation == "gelu_tanh" else "none"
        self.c_fc = nn.Linear(config.n_embd, config.mlp_width)
        self.act = nn.GELU(approximate=approximate)
        self.c_proj = nn.Linear(config.mlp_width, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))  # (B, T, C)

    def recorded(self, x: Tensor) -> MLPRecord:
        """The same computation as ``forward``, keeping the widened tensor before and after GELU."""
        hidden = self.c_fc(x)  # (B, T, mlp_width)
        activated = self.act(hidden)  # (B, T, mlp_width)
        return MLPRecord(x, hidden, activated, self.dropout(self.c_proj(activated)))  # (B, T, C)


def layer_norm(config: TransformerConfig) -> nn.Module:
    """A LayerNorm, or a pass-through when the ablation switches LayerNorm off."""
    if not config.layer_norm:
        return nn.Identity()
    return nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps)


@dataclass
class BlockOutput:
    x: Tensor  # (B, T, C) the residual stream leaving the block
    after_attn: Tensor  # (B, T, C) the residual stream after the self-attention sub-layer
    attn: Tensor | None  # (B, nh, T, T) self-attention weights
    cross_attn: Tensor | None = None  # (B, nh, T, T_enc) cross-attention weights
    record: BlockRecord | None = None  # every intermediate tensor, when asked for


class Block(nn.Module):
    """Self-attention and MLP; with ``cross_attention=True`` also attends to an encoder output."""

    def __init__(self, config: TransformerConfig, cross_attention: bool = False):
        super().__init__()
        self.ln_placement = config.ln_placement
        self.residual = config.residual
        self.ln_1 = layer_norm(config)
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, config.dropout)
        if cross_attention:
            self.ln_cross = layer_norm(config)
            self.cross_attn = MultiHeadAttention(config.n_embd, config.n_head, config.dropout)
        else:
            self.cross_attn = None
        self.ln_2 = layer_norm(config)
        self.mlp = MLP(config)

    def sublayer(
        self, x: Tensor, norm: nn.Module, fn: Callable[[Tensor], Tensor]
    ) -> tuple[Tensor, LayerNormRecord]:
        """Wrap ``fn`` in the residual connection and LayerNorm, pre-LN or post-LN.

        Returns the new residual stream and what the LayerNorm read and wrote.
        """
        if self.ln_placement == "pre":
            normed = norm(x)
            out = fn(normed)
            return (x + out if self.residual else out), LayerNormRecord(x, normed)
        out = fn(x)
        total = x + out if self.residual else out
        normed = norm(total)
        return normed, LayerNormRecord(total, normed)

    def check_recordable(self) -> None:
        """A record needs the plain sub-modules; a fine-tuning method may have wrapped them."""
        plain = [self.attn, self.mlp] + ([self.cross_attn] if self.cross_attn is not None else [])
        wrapped = [type(m).__name__ for m in plain if not isinstance(m, MultiHeadAttention | MLP)]
        if wrapped:
            raise ValueError(
                f"this block's sub-layers are wrapped ({', '.join(wrapped)}); "
                "a record is only kept for plain attention and MLP"
            )

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        memory: Tensor | None = None,
        memory_mask: Tensor | None = None,
        rotary: tuple[Tensor, Tensor] | None = None,
        need_weights: bool = True,
        return_record: bool = False,
    ) -> BlockOutput:
        """x: (B, T, C). With ``return_record`` every intermediate tensor comes back in the
        output's ``record`` (attention then always computes its weights explicitly)."""
        if return_record:
            self.check_recordable()
        if self.cross_attn is not None and memory is None:
            raise ValueError("a decoder block needs the encoder output (memory) to attend to")
        seen: dict[str, object] = {}

        def attend(name: str, attn: nn.Module, h: Tensor, **kwargs) -> Tensor:
            if return_record:
                seen[name] = attn.recorded(h, **kwargs)
                seen[f"{name} weights"] = seen[name].weights
                return seen[name].output
            out, seen[f"{name} weights"] = attn(h, need_weights=need_weights, **kwargs)
            return out

        def feed_forward(h: Tensor) -> Tensor:
            if not return_record:
                return self.mlp(h)
            seen["mlp"] = self.mlp.recorded(h)
            return seen["mlp"].output

        block_input = x
        x, ln_1 = self.sublayer(
            x, self.ln_1, lambda h: attend("attn", self.attn, h, mask=mask, rotary=rotary)
        )
        after_attn = x
        ln_cross = after_cross = None
        if self.cross_attn is not None:
            x, ln_cross = self.sublayer(
                x,
                self.ln_cross,
                lambda h: attend("cross", self.cross_attn, h, mask=memory_mask, memory=memory),
            )
            after_cross = x
        x, ln_2 = self.sublayer(x, self.ln_2, feed_forward)
        record = None
        if return_record:
            record = BlockRecord(
                input=block_input,
                ln_1=ln_1,
                attn=seen["attn"],
                after_attn=after_attn,
                ln_2=ln_2,
                mlp=seen["mlp"],
                output=x,
                ln_cross=ln_cross,
                cross_attn=seen.get("cross"),
                after_cross=after_cross,
            )
        return BlockOutput(x, after_attn, seen["attn weights"], seen.get("cross weights"), record)


@dataclass
class StackOutput:
    """What a stack of blocks computed, layer by layer."""

    x: Tensor  # (B, T, C) the residual stream leaving the last block
    hidden_states: list[Tensor]  # n_layer + 1 tensors of (B, T, C): the input, then each block's
    attentions: list[Tensor | None]  # per block (B, nh, T, T), None without weights
    cross_attentions: list[Tensor | None]  # per decoder block (B, nh, T, T_enc)
    records: list[BlockRecord]  # per block, when asked for


def run_blocks(
    blocks: nn.ModuleList,
    x: Tensor,
    mask: Tensor | None = None,
    rotary: tuple[Tensor, Tensor] | None = None,
    memory: Tensor | None = None,
    memory_mask: Tensor | None = None,
    need_weights: bool = False,
    return_record: bool = False,
) -> StackOutput:
    """Run ``x`` (B, T, C) through every block in turn, each with the same masks."""
    stack = StackOutput(x, [x], [], [], [])
    for block in blocks:
        out = block(x, mask, memory, memory_mask, rotary, need_weights, return_record)
        x = out.x
        stack.hidden_states.append(x)
        stack.attentions.append(out.attn)
        stack.cross_attentions.append(out.cross_attn)
        if out.record is not None:
            stack.records.append(out.record)
    stack.x = x
    return stack


@dataclass
class ModelOutput:
    """What every model's forward returns. Tuples are indexed by layer."""

    logits: Tensor  # (B, T, vocab_size)
    loss: Tensor | None = None
    hidden_states: tuple[
        Tensor, ...
    ] = ()  # n_layer + 1 tensors of (B, T, C): embeddings, then each layer
    attentions: tuple[Tensor, ...] = ()  # n_layer tensors of (B, nh, T, T)
    cross_attentions: tuple[Tensor, ...] = ()  # decoder layers: (B, nh, T_dec, T_enc)
    encoder_hidden_states: tuple[Tensor, ...] = ()
    encoder_attentions: tuple[Tensor, ...] = ()
    masks: dict[str, Tensor] = field(default_factory=dict)  # the boolean masks attention used
    record: RunRecord | None = None  # every intermediate tensor, with ``return_record=True``


def check_length(length: int, block_size: int, what: str = "sequence") -> None:
    if length < 1:
        raise ValueError(f"the {what} is empty: the model needs at least one token")
    if length > block_size:
        raise ValueError(
            f"the {what} has {length} tokens but the model has only {block_size} positions"
        )


def init_weights(model: nn.Module, n_layer: int, std: float = 0.02) -> None:
    """GPT-2 style initialisation: N(0, 0.02) weights, zero biases, and residual projections
    scaled down by sqrt(2 * n_layer) so the residual stream does not grow with depth."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            scale = 1 / math.sqrt(2 * n_layer) if name.endswith("c_proj") else 1.0
            nn.init.normal_(module.weight, mean=0.0, std=std * scale)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
