"""Traces of our models and of transformers models: shapes, probabilities, masks, validation."""

import pytest
import torch

from tinyformers.model.config import BertConfig, GPTConfig
from tinyformers.text.inputs import bert_inputs
from tinyformers.trace import Trace, trace_hf, trace_ids, trace_seq2seq, trace_text


def assert_attention_rows(attentions, q_len, k_len, causal=False, n_head=2):
    """Every layer (1, heads, q_len, k_len), every row a probability distribution."""
    for weights in attentions:
        assert weights.shape == (1, n_head, q_len, k_len)
        assert (weights >= 0).all()
        torch.testing.assert_close(weights.sum(-1), torch.ones(1, n_head, q_len))
        if causal:
            assert (weights[..., torch.ones(q_len, k_len, dtype=torch.bool).triu(1)] == 0).all()


def test_trace_ids_on_gpt(tiny_gpt, tiny):
    ids = [3, 14, 15, 9, 26, 5]
    tokens = list("abcdef")
    trace = trace_ids(tiny_gpt, ids, tokens)
    assert trace.tokens == tokens and trace.input_ids == ids
    assert trace.n_layer == tiny["n_layer"] and trace.n_head == tiny["n_head"] == 2
    assert_attention_rows(trace.attentions, 6, 6, causal=True)
    assert len(trace.hidden_states) == tiny["n_layer"] + 1
    assert trace.logits.shape == (1, 6, tiny["vocab_size"])
    with torch.no_grad():
        torch.testing.assert_close(trace.logits, tiny_gpt(torch.tensor([ids])).logits)
    assert torch.equal(trace.masks["self"], torch.ones(6, 6, dtype=torch.bool).tril())
    assert torch.equal(trace.head(1, 0), trace.attentions[1][0, 0])
    assert not trace.logits.requires_grad


def test_trace_ids_accepts_a_tensor(tiny_gpt):
    from_list = trace_ids(tiny_gpt, [1, 2, 3], ["x", "y", "z"])
    from_tensor = trace_ids(tiny_gpt, torch.tensor([[1, 2, 3]]), ["x", "y", "z"])
    assert torch.equal(from_list.logits, from_tensor.logits)


def test_trace_ids_on_bert(tiny_bert):
    ids, segments = [2, 10, 11, 3, 12, 3], [0, 0, 0, 0, 1, 1]
    trace = trace_ids(tiny_bert, ids, list("abcdef"), token_type_ids=segments)
    assert_attention_rows(trace.attentions, 6, 6)
    assert (torch.stack(trace.attentions) > 0).all()  # bidirectional: no key is hidden
    with torch.no_grad():
        expected = tiny_bert(torch.tensor([ids]), token_type_ids=torch.tensor([segments])).logits
    torch.testing.assert_close(trace.logits, expected)
    without_segments = trace_ids(tiny_bert, ids, list("abcdef"))
    assert not torch.allclose(without_segments.logits, trace.logits)


def test_trace_seq2seq(tiny_seq2seq, tiny):
    src, tgt = [7, 8, 9, 10, 11, 12, 13], [5, 20, 21]
    trace = trace_seq2seq(tiny_seq2seq, src, tgt, list("ABCDEFG"), ["[BOS]", "x", "y"])
    assert trace.tokens == ["[BOS]", "x", "y"] and trace.encoder_tokens == list("ABCDEFG")
    assert trace.input_ids == tgt
    assert_attention_rows(trace.attentions, 3, 3, causal=True)
    assert_attention_rows(trace.encoder_attentions, 7, 7)
    assert_attention_rows(trace.cross_attentions, 3, 7)
    assert len(trace.encoder_hidden_states) == tiny["n_layer"] + 1
    assert trace.logits.shape == (1, 3, tiny["vocab_size"])


def test_trace_seq2seq_checks_token_counts(tiny_seq2seq):
    with pytest.raises(ValueError, match="encoder attention layer 0 has 3 query positions but 2"):
        trace_seq2seq(tiny_seq2seq, [7, 8, 9], [5], ["A", "B"], ["[BOS]"])


# ---------------------------------------------------------------------------------------------
# Trace validation
# ---------------------------------------------------------------------------------------------


def make_trace(attention_shape=(1, 2, 6, 6), logits_shape=(1, 6, 40), **extra):
    return Trace(
        tokens=list("abcdef"),
        attentions=[torch.zeros(1, 2, 6, 6), torch.zeros(attention_shape)],
        logits=torch.zeros(logits_shape),
        **extra,
    )


def test_valid_trace():
    trace = make_trace()
    assert trace.n_layer == 2 and trace.n_head == 2


@pytest.mark.parametrize(
    "shape, message",
    [
        ((1, 2, 7, 6), "attention layer 1 has 7 query positions but 6 tokens"),
        ((1, 2, 6, 5), "attention layer 1 has 5 key positions but 6 tokens"),
        ((2, 2, 6, 6), r"attention layer 1 has shape \(2, 2, 6, 6\); expected \(1, heads, q, k\)"),
        ((2, 6, 6), r"attention layer 1 has shape \(2, 6, 6\); expected \(1, heads, q, k\)"),
    ],
)
def test_trace_rejects_wrong_attention_shapes(shape, message):
    with pytest.raises(ValueError, match=message):
        make_trace(attention_shape=shape)


@pytest.mark.parametrize("shape", [(1, 5, 40), (2, 6, 40), (1, 6)])
def test_trace_rejects_wrong_logits(shape):
    with pytest.raises(ValueError, match=r"logits have shape .*; expected \(1, 6, vocab\)"):
        make_trace(logits_shape=shape)


def test_trace_checks_encoder_and_cross_attention():
    with pytest.raises(ValueError, match="cross-attention layer 0 has 4 key positions but 3"):
        make_trace(encoder_tokens=list("xyz"), cross_attentions=[torch.zeros(1, 2, 6, 4)])
    with pytest.raises(ValueError, match="encoder attention layer 0 has 2 key positions but 3"):
        make_trace(encoder_tokens=list("xyz"), encoder_attentions=[torch.zeros(1, 2, 3, 2)])


def test_trace_head_bounds():
    trace = make_trace()
    with pytest.raises(ValueError, match="layer must be between 0 and 1, got 2"):
        trace.head(2, 0)
    with pytest.raises(ValueError, match="head must be between 0 and 1, got -1"):
        trace.head(0, -1)


def test_trace_ids_rejects_bad_inputs(tiny_gpt):
    with pytest.raises(ValueError, match="there are 3 ids but 2 token strings"):
        trace_ids(tiny_gpt, [1, 2, 3], ["a", "b"])
    with pytest.raises(ValueError, match=r"a trace is for one sequence; got ids of shape \(2, 2\)"):
        trace_ids(tiny_gpt, [[1, 2], [3, 4]], ["a", "b"])
    with pytest.raises(ValueError, match="there are no tokens to run the model on"):
        trace_ids(tiny_gpt, [], [])


# ---------------------------------------------------------------------------------------------
# transformers models
# ---------------------------------------------------------------------------------------------


def test_trace_hf_on_exported_gpt2_equals_our_trace(tiny_gpt, tiny):
    pytest.importorskip("transformers")
    from tinyformers.hub.interop import gpt_to_hf

    ids, tokens = [4, 8, 15, 16, 23, 4, 2], list("abcdefg")
    ours = trace_ids(tiny_gpt, ids, tokens)
    theirs = trace_hf(gpt_to_hf(tiny_gpt), ids, tokens)
    assert theirs.tokens == tokens and theirs.input_ids == ids
    assert len(theirs.attentions) == len(ours.attentions) == tiny["n_layer"]
    for a, b in zip(ours.attentions, theirs.attentions, strict=True):
        assert (a - b).abs().max() < 1e-5
    for a, b in zip(ours.hidden_states, theirs.hidden_states, strict=True):
        assert (a - b).abs().max() < 1e-5
    assert (ours.logits - theirs.logits).abs().max() < 1e-5


def test_trace_hf_on_an_encoder_decoder():
    transformers = pytest.importorskip("transformers")
    config = transformers.BartConfig(
        vocab_size=40, d_model=16, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_position_embeddings=32, attn_implementation="eager",
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.BartForConditionalGeneration(config).eval()
    trace = trace_hf(model, [0, 7, 8, 9, 2], list("ABCDE"), [2, 0, 11], ["<s>", "x", "y"])
    assert trace.tokens == ["<s>", "x", "y"] and trace.encoder_tokens == list("ABCDE")
    assert trace.input_ids == [2, 0, 11]
    assert len(trace.attentions) == len(trace.cross_attentions) == 2
    assert_attention_rows(trace.attentions, 3, 3, causal=True)
    assert_attention_rows(trace.encoder_attentions, 5, 5)
    assert_attention_rows(trace.cross_attentions, 3, 5)


# ---------------------------------------------------------------------------------------------
# From text
# ---------------------------------------------------------------------------------------------


def test_trace_text_on_gpt_uses_plain_ids(tiny_gpt, char_tokenizer):
    trace = trace_text(tiny_gpt, char_tokenizer, "a cat")
    assert trace.input_ids == char_tokenizer.encode("a cat")
    assert trace.tokens == list("a cat")


def test_trace_text_on_gpt_shows_readable_bpe_tokens(make_model, bpe_tokenizer):
    model = make_model(GPTConfig, vocab_size=bpe_tokenizer.vocab_size)
    trace = trace_text(model, bpe_tokenizer, "the cat sat")
    assert trace.tokens == bpe_tokenizer.tokens("the cat sat")
    assert "".join(trace.tokens) == "the cat sat"


def test_trace_text_on_bert_adds_cls_and_sep(tiny_bert, char_tokenizer):
    tok = char_tokenizer
    trace = trace_text(tiny_bert, tok, "a cat")
    assert trace.input_ids == [tok.cls_id, *tok.encode("a cat"), tok.sep_id]
    assert trace.tokens == ["[CLS]", *"a cat", "[SEP]"]
    assert_attention_rows(trace.attentions, 7, 7)


def test_trace_text_on_bert_with_a_sentence_pair(tiny_bert, char_tokenizer):
    tok = char_tokenizer
    ids, segments = bert_inputs(tok, "a cat", "dog")
    assert ids == [tok.cls_id, *tok.encode("a cat"), tok.sep_id, *tok.encode("dog"), tok.sep_id]
    assert segments == [0] * 7 + [1] * 4
    trace = trace_text(tiny_bert, tok, "a cat", "dog")
    assert trace.tokens == ["[CLS]", *"a cat", "[SEP]", *"dog", "[SEP]"]
    with torch.no_grad():
        expected = tiny_bert(torch.tensor([ids]), token_type_ids=torch.tensor([segments])).logits
    torch.testing.assert_close(trace.logits, expected)


def test_trace_text_pair_is_only_for_bert(tiny_gpt, char_tokenizer):
    with pytest.raises(ValueError, match="only BERT takes a sentence pair"):
        trace_text(tiny_gpt, char_tokenizer, "a cat", "a dog")


@pytest.mark.parametrize("family", ["gpt", "bert"])
def test_trace_text_rejects_empty_text(make_model, family, char_tokenizer):
    model = make_model(GPTConfig if family == "gpt" else BertConfig)
    with pytest.raises(ValueError, match="the text is empty"):
        trace_text(model, char_tokenizer, "")
