"""Published models, counted: the closed-form count equals our models' own count and
``transformers``' count of the same configuration."""

from __future__ import annotations

import pytest
import torch
import transformers

from tinyformers.model.build import build_model, count_parameters
from tinyformers.model.config import BertConfig, GPTConfig, Seq2SeqConfig
from tinyformers.model.published import PUBLISHED, Architecture, count, human, rows

SMALL = [
    dict(vocab_size=97, block_size=16, n_layer=1, n_head=2, n_embd=8),
    dict(vocab_size=211, block_size=40, n_layer=3, n_head=4, n_embd=32, n_inner=48),
]


@pytest.mark.parametrize("shape", SMALL)
def test_a_gpt_counts_as_our_gpt_does(shape) -> None:
    config = GPTConfig(**shape)
    architecture = Architecture(
        vocab_size=config.vocab_size,
        n_embd=config.n_embd,
        n_head=config.n_head,
        n_inner=config.mlp_width,
        n_layer=config.n_layer,
        learned_positions=config.block_size,
    )
    assert count(architecture) == count_parameters(build_model(config))


@pytest.mark.parametrize("shape", SMALL)
def test_a_bert_counts_as_our_bert_does_without_its_masked_lm_head(shape) -> None:
    config = BertConfig(**shape)
    model = build_model(config)
    architecture = Architecture(
        vocab_size=config.vocab_size,
        n_embd=config.n_embd,
        n_head=config.n_head,
        n_inner=config.mlp_width,
        n_layer=config.n_layer,
        learned_positions=config.block_size,
        segments=config.type_vocab_size,
        embedding_norm=True,
        final_norm=False,
    )
    head = sum(p.numel() for p in model.mlm_head.parameters() if p is not model.wte.weight)
    assert count(architecture) == count_parameters(model) - head


@pytest.mark.parametrize("shape", SMALL)
def test_an_encoder_decoder_counts_as_our_seq2seq_does(shape) -> None:
    config = Seq2SeqConfig(**shape, n_decoder_layer=2)
    architecture = Architecture(
        vocab_size=config.vocab_size,
        n_embd=config.n_embd,
        n_head=config.n_head,
        n_inner=config.mlp_width,
        n_layer=config.n_layer,
        n_decoder_layer=config.n_decoder_layer,
        learned_positions=config.block_size,
    )
    assert count(architecture) == count_parameters(build_model(config))


def reference(name: str) -> torch.nn.Module:
    """The same configuration as a ``transformers`` model, on the meta device (no memory)."""
    a = next(p for p in PUBLISHED if p.name == name).architecture
    if name == "GPT-1":
        config = transformers.OpenAIGPTConfig(
            vocab_size=a.vocab_size,
            n_positions=a.learned_positions,
            n_embd=a.n_embd,
            n_layer=a.n_layer,
            n_head=a.n_head,
        )
        model_class = transformers.OpenAIGPTLMHeadModel
    elif name.startswith("GPT"):
        config = transformers.GPT2Config(
            vocab_size=a.vocab_size,
            n_positions=a.learned_positions,
            n_embd=a.n_embd,
            n_layer=a.n_layer,
            n_head=a.n_head,
        )
        model_class = transformers.GPT2LMHeadModel
    elif name.startswith("BERT"):
        config = transformers.BertConfig(
            vocab_size=a.vocab_size,
            hidden_size=a.n_embd,
            num_hidden_layers=a.n_layer,
            num_attention_heads=a.n_head,
            intermediate_size=a.n_inner,
            max_position_embeddings=a.learned_positions,
            type_vocab_size=a.segments,
        )
        model_class = transformers.BertModel
    else:
        config = transformers.T5Config(
            vocab_size=a.vocab_size,
            d_model=a.n_embd,
            d_kv=a.width // a.n_head,
            d_ff=a.n_inner,
            num_layers=a.n_layer,
            num_decoder_layers=a.n_decoder_layer,
            num_heads=a.n_head,
            relative_attention_num_buckets=a.relative_buckets,
            feed_forward_proj="relu",
            tie_word_embeddings=True,
        )
        model_class = transformers.T5ForConditionalGeneration
    with torch.device("meta"):
        return model_class(config)


@pytest.mark.parametrize(
    "name", [p.name for p in PUBLISHED if p.name != "Transformer (base)"], ids=str
)
def test_each_published_configuration_counts_as_transformers_does(name) -> None:
    model = next(p for p in PUBLISHED if p.name == name)
    assert model.counted == count_parameters(reference(name))


def test_the_original_transformer_counts_as_our_seq2seq_less_its_final_norms() -> None:
    """``transformers`` has no model of the 2017 layout; ours has it, plus a final LayerNorm
    after each stack that the post-LN original does without."""
    model = next(p for p in PUBLISHED if p.name == "Transformer (base)")
    a = model.architecture
    config = Seq2SeqConfig(
        vocab_size=a.vocab_size,
        n_embd=a.n_embd,
        n_head=a.n_head,
        n_inner=a.n_inner,
        n_layer=a.n_layer,
        n_decoder_layer=a.n_decoder_layer,
        position="sinusoidal",
        ln_placement="post",
    )
    with torch.device("meta"):
        ours = build_model(config)
    final_norms = count_parameters(ours.enc_ln_f) + count_parameters(ours.ln_f)
    assert model.counted == count_parameters(ours) - final_norms


def test_quoted_sizes_are_near_the_counts() -> None:
    """A typo in a configuration would show as a count far from the published size."""
    for model in PUBLISHED:
        assert 0.9 < model.counted / model.quoted < 1.1, model.name


def test_rows_filter_by_family_and_refuse_unknown_ones() -> None:
    assert {row["model"] for row in rows(("bert",))} == {"BERT-base", "BERT-large"}
    assert len(rows()) == len(PUBLISHED)
    with pytest.raises(ValueError, match="unknown families"):
        rows(("rnn",))


@pytest.mark.parametrize(
    ("n", "text"),
    [(124_439_808, "124M"), (1_557_611_200, "1.56B"), (174_604_259_328, "175B"), (512, "512")],
)
def test_human_sizes(n, text) -> None:
    assert human(n) == text


def test_an_impossible_architecture_is_refused() -> None:
    with pytest.raises(ValueError, match="n_head must be a positive whole number"):
        Architecture(vocab_size=10, n_embd=8, n_head=0, n_inner=32, n_layer=1)
