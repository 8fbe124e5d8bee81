"""Published models, counted: each one's configuration as its paper or release gives it, and its
parameter count computed from that configuration.

The lessons compare our tiny models with the ones students read about. The sizes quoted in papers
are rounded, and some were counted differently from the released weights, so the table shows the
quoted figure beside the count ``count`` computes. ``count`` is a closed form over the parts of a
Transformer (embeddings, attention, MLP, norms, heads); the tests check it against our own models'
``count_parameters`` and against ``transformers``' models for every configuration here.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyformers.i18n import N_, _


@dataclass(frozen=True)
class Architecture:
    """What a parameter count needs to know about a Transformer."""

    vocab_size: int
    n_embd: int
    n_head: int
    n_inner: int  # the MLP's hidden width
    n_layer: int  # decoder-only or encoder-only layers; the encoder's for an encoder-decoder
    n_decoder_layer: int = 0  # > 0 for an encoder-decoder (each decoder layer has cross-attention)
    attn_width: int | None = None  # heads × head width; None means n_embd
    learned_positions: int = 0  # rows of a learned position table per stack (0: none)
    segments: int = 0  # BERT's segment (token type) embeddings
    biases: bool = True
    norm_shift: bool = True  # LayerNorm with a shift (β); T5's norm has a scale only
    embedding_norm: bool = False  # BERT normalises the summed embeddings
    final_norm: bool = True  # one after the last layer of each stack (pre-LN models)
    pooler: bool = False  # BERT's dense layer on the first token
    relative_buckets: int = 0  # T5: a bias per bucket and head, once per stack
    tied_head: bool = True  # the output layer reuses the token embeddings

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_embd", "n_head", "n_inner", "n_layer"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")

    @property
    def width(self) -> int:
        return self.attn_width if self.attn_width is not None else self.n_embd


def _norm(a: Architecture) -> int:
    return a.n_embd * (2 if a.norm_shift else 1)


def _attention(a: Architecture) -> int:
    """q, k and v (n_embd → width) and the output projection (width → n_embd)."""
    weights = 4 * a.n_embd * a.width
    return weights + (3 * a.width + a.n_embd if a.biases else 0)


def _mlp(a: Architecture) -> int:
    weights = 2 * a.n_embd * a.n_inner
    return weights + (a.n_inner + a.n_embd if a.biases else 0)


def _stack(a: Architecture, layers: int, cross: bool) -> int:
    """``layers`` blocks (with cross-attention and its norm if ``cross``), plus what each stack
    has once: learned positions, relative-position buckets and the final norm."""
    block = _attention(a) + _mlp(a) + 2 * _norm(a)
    if cross:
        block += _attention(a) + _norm(a)
    once = a.learned_positions * a.n_embd + a.relative_buckets * a.n_head
    return layers * block + once + (_norm(a) if a.final_norm else 0)


def count(a: Architecture) -> int:
    """Parameters of ``a``, tied tensors counted once."""
    total = a.vocab_size * a.n_embd + a.segments * a.n_embd
    total += _norm(a) if a.embedding_norm else 0
    total += _stack(a, a.n_layer, cross=False)
    if a.n_decoder_layer:
        total += _stack(a, a.n_decoder_layer, cross=True)
    if a.pooler:
        total += a.n_embd * a.n_embd + (a.n_embd if a.biases else 0)
    if not a.tied_head:
        total += a.vocab_size * a.n_embd
    return total


@dataclass(frozen=True)
class Published:
    name: str
    family: str  # "gpt", "bert" or "encoder-decoder"
    architecture: Architecture
    context: str  # the longest input it was trained on, as published
    quoted: int  # the parameter count its authors give
    data: str  # what it was trained on, as published
    source: str

    @property
    def counted(self) -> int:
        return count(self.architecture)


def _gpt2(n_layer: int, n_embd: int, n_head: int) -> Architecture:
    return Architecture(
        vocab_size=50257,
        n_embd=n_embd,
        n_head=n_head,
        n_inner=4 * n_embd,
        n_layer=n_layer,
        learned_positions=1024,
    )


def _bert(n_layer: int, n_embd: int, n_head: int) -> Architecture:
    return Architecture(
        vocab_size=30522,
        n_embd=n_embd,
        n_head=n_head,
        n_inner=4 * n_embd,
        n_layer=n_layer,
        learned_positions=512,
        segments=2,
        embedding_norm=True,
        final_norm=False,  # post-LN: each block ends with its own norm
        pooler=True,
    )


def _t5(n_layer: int, n_embd: int, n_head: int, n_inner: int, head_width: int) -> Architecture:
    return Architecture(
        vocab_size=32128,  # 32,000 pieces, the released embedding padded to a multiple of 128
        n_embd=n_embd,
        n_head=n_head,
        n_inner=n_inner,
        n_layer=n_layer,
        n_decoder_layer=n_layer,
        attn_width=n_head * head_width,
        biases=False,
        norm_shift=False,
        relative_buckets=32,
    )


WEBTEXT = N_("WebText: about 8 million web pages linked from Reddit (40 GB of text)")
BERT_DATA = N_("BooksCorpus (800 million words) and English Wikipedia (2,500 million words)")
C4 = N_("C4, a cleaned Common Crawl (about 750 GB), pre-trained on about 34 billion tokens")


PUBLISHED: tuple[Published, ...] = (
    Published(
        "Transformer (base)",
        "encoder-decoder",
        Architecture(
            vocab_size=37000,  # one byte-pair vocabulary shared by English and German
            n_embd=512,
            n_head=8,
            n_inner=2048,
            n_layer=6,
            n_decoder_layer=6,
            final_norm=False,  # post-LN, sinusoidal positions: nothing learned for positions
        ),
        N_("no fixed limit (sinusoidal positions)"),
        65_000_000,
        N_("WMT 2014 English–German, about 4.5 million sentence pairs"),
        "Vaswani et al. 2017, Attention Is All You Need, Table 3",
    ),
    Published(
        "GPT-1",
        "gpt",
        Architecture(
            vocab_size=40478,  # 40,000 byte-pair merges plus the base symbols
            n_embd=768,
            n_head=12,
            n_inner=3072,
            n_layer=12,
            learned_positions=512,
            final_norm=False,  # post-LN
        ),
        N_("512 tokens"),
        117_000_000,
        N_("BooksCorpus: about 7,000 unpublished books"),
        "Radford et al. 2018, Improving Language Understanding by Generative Pre-Training",
    ),
    Published(
        "GPT-2 small",
        "gpt",
        _gpt2(12, 768, 12),
        N_("1,024 tokens"),
        117_000_000,
        WEBTEXT,
        "Radford et al. 2019, Language Models are Unsupervised Multitask Learners, Table 2",
    ),
    Published(
        "GPT-2 medium",
        "gpt",
        _gpt2(24, 1024, 16),
        N_("1,024 tokens"),
        345_000_000,
        WEBTEXT,
        "Radford et al. 2019, Table 2",
    ),
    Published(
        "GPT-2 large",
        "gpt",
        _gpt2(36, 1280, 20),
        N_("1,024 tokens"),
        762_000_000,
        WEBTEXT,
        "Radford et al. 2019, Table 2",
    ),
    Published(
        "GPT-2 XL",
        "gpt",
        _gpt2(48, 1600, 25),
        N_("1,024 tokens"),
        1_542_000_000,
        WEBTEXT,
        "Radford et al. 2019, Table 2",
    ),
    Published(
        "GPT-3 175B",
        "gpt",
        Architecture(
            vocab_size=50257,
            n_embd=12288,
            n_head=96,
            n_inner=4 * 12288,
            n_layer=96,
            learned_positions=2048,
        ),
        N_("2,048 tokens"),
        175_000_000_000,
        N_("300 billion tokens of filtered Common Crawl, WebText2, two book corpora and Wikipedia"),
        "Brown et al. 2020, Language Models are Few-Shot Learners, Table 2.1",
    ),
    Published(
        "BERT-base",
        "bert",
        _bert(12, 768, 12),
        N_("512 tokens"),
        110_000_000,
        BERT_DATA,
        "Devlin et al. 2019, BERT: Pre-training of Deep Bidirectional Transformers",
    ),
    Published(
        "BERT-large",
        "bert",
        _bert(24, 1024, 16),
        N_("512 tokens"),
        340_000_000,
        BERT_DATA,
        "Devlin et al. 2019",
    ),
    Published(
        "T5-base",
        "encoder-decoder",
        _t5(12, 768, 12, 3072, 64),
        N_("512 tokens in pre-training (relative positions)"),
        220_000_000,
        C4,
        "Raffel et al. 2020, Exploring the Limits of Transfer Learning (T5), section 3.7",
    ),
    Published(
        "T5-11B",
        "encoder-decoder",
        _t5(24, 1024, 128, 65536, 128),
        N_("512 tokens in pre-training (relative positions)"),
        11_000_000_000,
        C4,
        "Raffel et al. 2020, section 3.7",
    ),
)

FAMILIES = ("gpt", "bert", "encoder-decoder")


def human(n: int) -> str:
    """A parameter count as people say it: 124.4M, 1.56B, 175B."""
    for size, unit in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if n >= size:
            value = n / size
            return f"{value:.3g}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return str(n)


def rows(families: tuple[str, ...] = FAMILIES) -> list[dict[str, object]]:
    """The table the lessons show: one row per published model of ``families``."""
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown families {sorted(unknown)}; choose from {', '.join(FAMILIES)}")
    table = []
    for model in PUBLISHED:
        if model.family not in families:
            continue
        a = model.architecture
        layers = f"{a.n_layer} + {a.n_decoder_layer}" if a.n_decoder_layer else f"{a.n_layer}"
        table.append(
            {
                "model": model.name,
                "layers": layers,
                "width (n_embd)": a.n_embd,
                "heads": a.n_head,
                "MLP width": a.n_inner,
                "vocabulary": a.vocab_size,
                "context": _(model.context),
                "quoted": human(model.quoted),
                "counted here": f"{model.counted:,}",
                "counted / quoted": f"{model.counted / model.quoted:.3f}",
                "training data": _(model.data),
                "source": model.source,
            }
        )
    return table
