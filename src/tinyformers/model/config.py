"""Model configurations: frozen dataclasses, validated on construction, plus a presets table.

Each config names its fields the way GPT-2 / BERT do (``n_layer``, ``n_head``, ``n_embd``,
``block_size``) so a student can read our code beside the papers and ``transformers``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

POSITIONS = ("learned", "sinusoidal", "rotary", "none")
LN_PLACEMENTS = ("pre", "post")
ACTIVATIONS = ("gelu", "gelu_tanh")

MAX_PARAMETERS = 200_000_000


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _check_dropout(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"dropout must be a number in [0, 1), got {value!r}")


@dataclass(frozen=True)
class TransformerConfig:
    """Fields shared by every model family."""

    vocab_size: int = 512
    block_size: int = 64  # longest sequence the model accepts (number of positions)
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64
    n_inner: int | None = None  # MLP hidden width; None means 4 * n_embd
    dropout: float = 0.0
    layer_norm_eps: float = 1e-5
    activation: str = "gelu_tanh"
    ln_placement: str = "pre"  # "pre" (GPT-2) or "post" (original Transformer, BERT)
    position: str = "learned"
    residual: bool = True  # turn off only for the ablation experiment
    layer_norm: bool = True  # turn off only for the ablation experiment

    def __post_init__(self) -> None:
        _check_int("vocab_size", self.vocab_size, 1, 1_000_000)
        _check_int("block_size", self.block_size, 1, 8192)
        _check_int("n_layer", self.n_layer, 1, 48)
        _check_int("n_head", self.n_head, 1, 64)
        _check_int("n_embd", self.n_embd, 1, 4096)
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}) so every "
                "head gets the same width"
            )
        if self.n_inner is not None:
            _check_int("n_inner", self.n_inner, 1, 16384)
        _check_dropout(self.dropout)
        if not isinstance(self.layer_norm_eps, float) or not 0 < self.layer_norm_eps < 1:
            raise ValueError(
                f"layer_norm_eps must be a small positive float, got {self.layer_norm_eps!r}"
            )
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("ln_placement", self.ln_placement, LN_PLACEMENTS)
        _check_choice("position", self.position, POSITIONS)
        if self.position == "rotary" and self.head_size % 2:
            raise ValueError(f"rotary positions need an even head size, got {self.head_size}")
        if self.approx_parameters > MAX_PARAMETERS:
            raise ValueError(
                f"this configuration would have about {self.approx_parameters:,} parameters; "
                f"the limit is {MAX_PARAMETERS:,}"
            )

    @property
    def approx_parameters(self) -> int:
        """Embeddings plus, per layer, attention (4 C²) and MLP (2 C × mlp width); an upper
        bound on the order of magnitude, used to refuse absurd sizes before building."""
        c = self.n_embd
        per_layer = 4 * c * c + 2 * c * self.mlp_width
        return (self.vocab_size + self.block_size) * c + self.n_layer * per_layer

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    @property
    def mlp_width(self) -> int:
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, **asdict(self)}

    def replace(self, **changes: Any) -> TransformerConfig:
        return replace(self, **changes)

    family = "base"


@dataclass(frozen=True)
class GPTConfig(TransformerConfig):
    """Decoder-only, causal language model in the GPT-2 layout."""

    causal: bool = True  # switch off only for the information-leakage experiment

    family = "gpt"


@dataclass(frozen=True)
class BertConfig(TransformerConfig):
    """Encoder-only masked language model in the BERT layout (post-LN, segment embeddings)."""

    type_vocab_size: int = 2  # number of segments (sentence A / sentence B)
    layer_norm_eps: float = 1e-12
    activation: str = "gelu"
    ln_placement: str = "post"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("type_vocab_size", self.type_vocab_size, 1, 16)

    family = "bert"


@dataclass(frozen=True)
class Seq2SeqConfig(TransformerConfig):
    """Encoder-decoder model: an encoder stack and a decoder stack with cross-attention."""

    n_decoder_layer: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_int("n_decoder_layer", self.n_decoder_layer, 1, 48)

    family = "seq2seq"


CONFIG_CLASSES: dict[str, type[TransformerConfig]] = {
    "gpt": GPTConfig,
    "bert": BertConfig,
    "seq2seq": Seq2SeqConfig,
}


def config_from_dict(data: dict[str, Any]) -> TransformerConfig:
    """Rebuild a config written by ``to_dict`` (for example from a checkpoint's config.json)."""
    data = dict(data)
    family = data.pop("family", None)
    if family not in CONFIG_CLASSES:
        raise ValueError(
            f"unknown model family {family!r}; expected one of {', '.join(CONFIG_CLASSES)}"
        )
    cls = CONFIG_CLASSES[family]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"config has fields this version does not know: {', '.join(unknown)}")
    return cls(**data)


# Sizes students can pick. Parameter counts are computed from the models, never typed in:
# see ``build.presets_table``.
PRESETS: dict[str, dict[str, Any]] = {
    "nano": dict(n_layer=1, n_head=2, n_embd=32, block_size=32),
    "micro": dict(n_layer=2, n_head=2, n_embd=64, block_size=64),
    "mini": dict(n_layer=4, n_head=4, n_embd=128, block_size=64),
    "small": dict(n_layer=6, n_head=6, n_embd=192, block_size=128),
    # Sized for character-level text such as Shakespeare (see bench/train_speed.py).
    "char": dict(n_layer=4, n_head=4, n_embd=128, block_size=64),
}


def preset(name: str, family: str = "gpt", **overrides: Any) -> TransformerConfig:
    """Build a config of ``family`` from a named preset, with optional field overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    if family not in CONFIG_CLASSES:
        raise ValueError(
            f"unknown model family {family!r}; expected one of {', '.join(CONFIG_CLASSES)}"
        )
    return CONFIG_CLASSES[family](**{**PRESETS[name], **overrides})
