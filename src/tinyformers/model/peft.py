"""Parameter-efficient fine-tuning: train a few numbers, keep the pretrained weights frozen.

Every function here changes the model it is given, in place, so always call them on a copy of a
pretrained model (``classify.build_classifier`` makes one). Three of them *add* small modules:

* ``add_lora``: each chosen attention projection ``W`` becomes ``W + (alpha / r) · B A`` with a
  trainable pair ``A`` (r × d_in) and ``B`` (d_out × r); ``B`` starts at zero, so the model
  starts exactly where it was. ``merge_lora`` folds ``B A`` into ``W`` after training.
* ``add_adapters``: a bottleneck (down-project, GELU, up-project, plus a residual) after the
  attention and/or MLP sub-layer of every block; the up-projection starts at zero.
* ``add_prefix``: ``length`` trainable key and value vectors per layer that every query can
  attend to, as if the sentence were preceded by ``length`` extra tokens (prefix tuning).

and two only choose which existing parameters train:

* ``train_only_biases``: BitFit, every bias vector (attention, MLP and LayerNorm) trains.
* ``freeze``: nothing trains (the classifier's head is added afterwards, so it still does).

What a method trains is recorded by ``requires_grad``; ``trainable_names`` lists it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinyformers.i18n import _
from tinyformers.model.attention import MultiHeadAttention, attention, fast_attention
from tinyformers.model.blocks import Block
from tinyformers.model.positional import apply_rotary

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "c_proj")
ADAPTER_PLACES = ("attn", "mlp")
MAX_RANK = 64
MAX_ALPHA = 1024.0
MAX_BOTTLENECK = 512
MAX_PREFIX = 64


def check_whole_number(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _named_blocks(model: nn.Module) -> list[tuple[str, Block]]:
    blocks = [(name, module) for name, module in model.named_modules() if isinstance(module, Block)]
    if not blocks:
        raise ValueError("this model has no Transformer blocks to adapt")
    return blocks


# ---------------------------------------------------------------------------------------------
# Choosing what trains
# ---------------------------------------------------------------------------------------------


def freeze(model: nn.Module) -> None:
    """Make every parameter of ``model`` untrainable."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)


def train_only_biases(model: nn.Module) -> list[str]:
    """BitFit: only the bias vectors train (linear layers and LayerNorms). Returns their names."""
    names = []
    for name, parameter in model.named_parameters():
        is_bias = name.endswith(".bias")
        parameter.requires_grad_(is_bias)
        if is_bias:
            names.append(name)
    return names


def trainable_names(model: nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


def count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------------------------------------
# LoRA: a low-rank update next to a frozen linear layer
# ---------------------------------------------------------------------------------------------


class LoRALinear(nn.Module):
    """``base(x) + (alpha / rank) · x Aᵀ Bᵀ``: the frozen ``base`` plus a trainable low-rank update.

    A is (rank, d_in), drawn like an ordinary linear layer's weight; B is (d_out, rank) and starts
    at zero, so before training the layer computes exactly what ``base`` computes.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base = base
        self.rank = rank
        self.alpha = alpha
        self.scaling = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))  # (r, d_in)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))  # (d_out, r)
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        base.requires_grad_(False)

    def delta_weight(self) -> Tensor:
        """The update the adapter adds to ``base.weight``: (alpha / r) · B A, (d_out, d_in)."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: Tensor) -> Tensor:
        update = F.linear(F.linear(x, self.lora_A), self.lora_B)  # (..., d_out), through rank r
        return self.base(x) + self.scaling * update

    def merged(self) -> nn.Linear:
        """A plain linear layer computing the same function: W + (alpha / r) · B A."""
        layer = nn.Linear(self.base.in_features, self.base.out_features, self.base.bias is not None)
        with torch.no_grad():
            layer.weight.copy_(self.base.weight + self.delta_weight())
            if self.base.bias is not None:
                layer.bias.copy_(self.base.bias)
        return layer


def check_lora(rank: int, alpha: float, targets: Iterable[str]) -> tuple[str, ...]:
    check_whole_number(rank, "LoRA rank", 1, MAX_RANK)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise ValueError(f"LoRA alpha must be a number, got {alpha!r}")
    if not 0 < alpha <= MAX_ALPHA:
        raise ValueError(f"LoRA alpha must be above 0 and at most {MAX_ALPHA:g}, got {alpha!r}")
    targets = tuple(targets)
    if not targets:
        raise ValueError(
            _("choose at least one projection for LoRA: {targets}").format(
                targets=", ".join(LORA_TARGETS)
            )
        )
    unknown = [t for t in targets if t not in LORA_TARGETS]
    if unknown:
        raise ValueError(
            f"LoRA can adapt {', '.join(LORA_TARGETS)}; {', '.join(map(repr, unknown))} is not one"
        )
    return targets


def add_lora(
    model: nn.Module, rank: int, alpha: float, targets: Iterable[str] = ("q_proj", "v_proj")
) -> list[str]:
    """Freeze ``model`` and put a LoRA update on the chosen projections of every self-attention
    layer. Returns the names of the adapted linear layers."""
    targets = check_lora(rank, alpha, targets)
    freeze(model)
    adapted = []
    for block_name, block in _named_blocks(model):
        for target in targets:
            base = getattr(block.attn, target)
            largest = min(base.in_features, base.out_features)
            if rank > largest:
                raise ValueError(
                    f"LoRA rank {rank} is larger than the {base.in_features} × "
                    f"{base.out_features} matrix it adapts; use at most {largest}"
                )
            setattr(block.attn, target, LoRALinear(base, rank, float(alpha)))
            adapted.append(f"{block_name}.attn.{target}")
    return adapted


def merge_lora(model: nn.Module) -> int:
    """Replace every ``LoRALinear`` by the plain linear layer it computes. The merged model has
    the base model's parameter names and its speed. Returns how many layers were merged."""
    merged = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LoRALinear):
                setattr(parent, name, child.merged())
                merged += 1
    return merged


# ---------------------------------------------------------------------------------------------
# Adapters: a small bottleneck network after a sub-layer
# ---------------------------------------------------------------------------------------------


class Adapter(nn.Module):
    """h + up(GELU(down(h))): project to ``bottleneck`` numbers and back, added to its input.

    ``up`` starts at zero, so a new adapter passes its input through unchanged.
    """

    def __init__(self, width: int, bottleneck: int):
        super().__init__()
        self.down = nn.Linear(width, bottleneck)
        self.act = nn.GELU()
        self.up = nn.Linear(bottleneck, width)
        nn.init.normal_(self.down.weight, std=0.02)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.up(self.act(self.down(h)))


class WithAdapter(nn.Module):
    """A sub-layer (attention or MLP) followed by an adapter on its output, before the residual
    sum. Attention returns (output, weights); the adapter sees only the output."""

    def __init__(self, sublayer: nn.Module, adapter: Adapter):
        super().__init__()
        self.sublayer = sublayer
        self.adapter = adapter

    def forward(self, *args, **kwargs):
        out = self.sublayer(*args, **kwargs)
        if isinstance(out, tuple):
            return (self.adapter(out[0]), *out[1:])
        return self.adapter(out)


def check_adapters(bottleneck: int, places: Iterable[str]) -> tuple[str, ...]:
    check_whole_number(bottleneck, "adapter bottleneck", 1, MAX_BOTTLENECK)
    places = tuple(places)
    if not places or any(place not in ADAPTER_PLACES for place in places):
        raise ValueError(
            _("adapters go after 'attn' and/or 'mlp'; got {places}").format(
                places=", ".join(map(repr, places)) or _("none")
            )
        )

    return places


def add_adapters(
    model: nn.Module, bottleneck: int, places: Iterable[str] = ADAPTER_PLACES
) -> list[str]:
    """Freeze ``model`` and insert an adapter after the chosen sub-layers ("attn", "mlp") of
    every block. Returns the names of the adapters."""
    places = check_adapters(bottleneck, places)
    freeze(model)
    added = []
    for block_name, block in _named_blocks(model):
        width = block.mlp.c_proj.out_features
        for place in places:
            setattr(block, place, WithAdapter(getattr(block, place), Adapter(width, bottleneck)))
            added.append(f"{block_name}.{place}.adapter")
    return added


# ---------------------------------------------------------------------------------------------
# Prefix tuning: trainable keys and values in front of every layer's sequence
# ---------------------------------------------------------------------------------------------


def with_prefix_columns(mask: Tensor | None, q_len: int, k_len: int, length: int) -> Tensor | None:
    """Extend a boolean attention mask (broadcastable to (..., q_len, k_len)) with ``length``
    always-visible key columns in front: (..., q_len, length + k_len)."""
    if mask is None:
        return None
    full = torch.broadcast_to(mask, (*mask.shape[:-2], q_len, k_len))
    visible = torch.ones((*full.shape[:-1], length), dtype=torch.bool, device=mask.device)
    return torch.cat([visible, full], dim=-1)


class PrefixAttention(nn.Module):
    """Self-attention whose keys and values start with ``length`` learned vectors.

    The frozen ``attn`` computes queries, keys and values from the tokens as usual; the prefix
    adds (length, C) keys and values that every query may attend to. The prefix has no position,
    so it needs no position embedding, and the outputs stay one per real token.
    """

    def __init__(self, attn: MultiHeadAttention, length: int):
        super().__init__()
        self.attn = attn
        self.length = length
        self.prefix_keys = nn.Parameter(torch.randn(length, attn.n_embd) * 0.02)  # (P, C)
        self.prefix_values = nn.Parameter(torch.randn(length, attn.n_embd) * 0.02)  # (P, C)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        memory: Tensor | None = None,
        rotary: tuple[Tensor, Tensor] | None = None,
        need_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        if memory is not None:
            raise ValueError("prefix tuning here adapts self-attention, not cross-attention")
        attn, b, t = self.attn, x.size(0), x.size(1)
        q = attn.split_heads(attn.q_proj(x))  # (B, nh, T, hs)
        k = attn.split_heads(attn.k_proj(x))  # (B, nh, T, hs)
        v = attn.split_heads(attn.v_proj(x))  # (B, nh, T, hs)
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        prefix_k = attn.split_heads(self.prefix_keys.expand(b, -1, -1))  # (B, nh, P, hs)
        prefix_v = attn.split_heads(self.prefix_values.expand(b, -1, -1))  # (B, nh, P, hs)
        k, v = torch.cat([prefix_k, k], dim=2), torch.cat([prefix_v, v], dim=2)  # (B, nh, P+T, hs)
        mask = with_prefix_columns(mask, t, t, self.length)
        if need_weights:
            out, weights = attention(q, k, v, mask)  # weights: (B, nh, T, P+T)
        else:
            out, weights = fast_attention(q, k, v, mask), None
        out = attn.resid_dropout(attn.c_proj(attn.merge_heads(out)))  # (B, T, C)
        return out, weights


def check_prefix(length: int) -> int:
    return check_whole_number(length, "prefix length", 1, MAX_PREFIX)


def add_prefix(model: nn.Module, length: int) -> list[str]:
    """Freeze ``model`` and give every self-attention layer ``length`` trainable key and value
    vectors. Returns the names of the wrapped attention layers."""
    check_prefix(length)
    freeze(model)
    wrapped = []
    for block_name, block in _named_blocks(model):
        block.attn = PrefixAttention(block.attn, length)
        wrapped.append(f"{block_name}.attn")
    return wrapped
