"""The record a forward pass keeps: it agrees with the model's own outputs, it is complete for
every family and arrangement, and asking for it changes nothing about the result."""

from __future__ import annotations

import math

import pytest
import torch

from tinyformers.model import peft
from tinyformers.model.attention import causal_mask
from tinyformers.model.config import BertConfig, GPTConfig

IDS = torch.tensor([[5, 17, 3, 22, 9, 31, 2]])  # (1, T)
T = IDS.size(1)


def run(model, **kwargs):
    with torch.no_grad():
        return model(
            IDS, output_attentions=True, output_hidden_states=True, return_record=True, **kwargs
        )


@pytest.mark.parametrize("family", [GPTConfig, BertConfig])
@pytest.mark.parametrize("placement", ["pre", "post"])
def test_record_agrees_with_the_outputs(make_model, family, placement) -> None:
    model = make_model(family, ln_placement=placement)
    out = run(model)
    record = out.record
    assert len(record.blocks) == model.config.n_layer
    for layer, block in enumerate(record.blocks):
        torch.testing.assert_close(block.input, out.hidden_states[layer], rtol=0, atol=0)
        torch.testing.assert_close(block.attn.weights, out.attentions[layer], rtol=0, atol=0)
        if layer + 1 < model.config.n_layer:
            torch.testing.assert_close(block.output, out.hidden_states[layer + 1], rtol=0, atol=0)
        attn, nh, hs = block.attn, model.config.n_head, model.config.head_size
        assert attn.q.shape == attn.k.shape == attn.v.shape == (1, nh, T, hs)
        assert attn.scores.shape == attn.weights.shape == (1, nh, T, T)
        torch.testing.assert_close(attn.scores, attn.q @ attn.k.transpose(-2, -1) / math.sqrt(hs))
        torch.testing.assert_close(attn.heads, attn.weights @ attn.v)
        reads = block.ln_1.output if placement == "pre" else block.input
        torch.testing.assert_close(attn.input, reads, rtol=0, atol=0)
        assert block.mlp.hidden.shape == (1, T, model.config.mlp_width)
        if placement == "post":  # the LayerNorm reads the sum stream + branch
            torch.testing.assert_close(block.ln_1.input, block.input + attn.output)
            torch.testing.assert_close(block.ln_1.output, block.after_attn, rtol=0, atol=0)


def test_gpt_record_keeps_its_causal_mask_rotary_angles_and_final_norm(make_model) -> None:
    model = make_model(GPTConfig, position="rotary")
    record = run(model).record
    assert torch.equal(record.mask, causal_mask(T))
    assert record.blocks[0].attn.mask is record.mask
    cos, sin = record.rotary
    assert cos.shape == sin.shape == (T, model.config.head_size // 2)
    assert record.blocks[1].attn.rotary is record.rotary
    assert record.embeddings.position is None
    torch.testing.assert_close(record.norms["ln_f"].input, record.blocks[-1].output)


def test_bert_record_keeps_embeddings_and_the_padding_mask(make_model) -> None:
    model = make_model(BertConfig)
    segments = torch.tensor([[0, 0, 0, 1, 1, 1, 1]])
    attention_mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0]])
    record = run(model, token_type_ids=segments, attention_mask=attention_mask).record
    embeddings = record.embeddings
    torch.testing.assert_close(embeddings.token, model.wte.weight[IDS].detach())
    torch.testing.assert_close(embeddings.segment, model.wse.weight[segments].detach())
    torch.testing.assert_close(
        embeddings.total, embeddings.token + embeddings.segment + embeddings.position
    )
    assert set(record.norms) == {"ln_emb", "mlm_head.ln"}
    assert record.mask.shape == (1, 1, 1, T) and not record.mask[0, 0, 0, -1]
    assert (record.blocks[0].attn.weights[..., -2:] == 0).all()


def test_seq2seq_record_has_the_encoder_and_cross_attention(tiny_seq2seq) -> None:
    src, tgt = torch.tensor([[4, 5, 6, 7]]), torch.tensor([[1, 8, 9]])
    with torch.no_grad():
        out = tiny_seq2seq(src, tgt, output_attentions=True, return_record=True)
    record = out.record
    assert len(record.encoder.blocks) == tiny_seq2seq.config.n_layer
    cross = record.blocks[0].cross_attn
    assert cross.q.shape[2] == 3 and cross.k.shape[2] == 4
    torch.testing.assert_close(cross.source, record.encoder.norms["enc_ln_f"].output)
    torch.testing.assert_close(cross.weights, out.cross_attentions[0], rtol=0, atol=0)
    assert record.blocks[0].after_cross is not None


@pytest.mark.parametrize("family", [GPTConfig, BertConfig])
def test_asking_for_a_record_changes_no_result(make_model, family) -> None:
    """Recording computes attention step by step, as ``output_attentions`` does: bit for bit the
    same result. The fused kernel used otherwise differs only by rounding."""
    model = make_model(family)
    with torch.no_grad():
        fused = model(IDS)
        with_weights = model(IDS, output_attentions=True)
        recorded = model(IDS, return_record=True)
    assert fused.record is None and with_weights.record is None
    torch.testing.assert_close(recorded.logits, with_weights.logits, rtol=0, atol=0)
    torch.testing.assert_close(recorded.logits, fused.logits, rtol=1e-5, atol=1e-5)


def test_gpt_takes_a_mask_and_input_vectors_of_ones_own(tiny_gpt) -> None:
    with torch.no_grad():
        own = tiny_gpt(IDS, return_record=True)
        again = tiny_gpt(
            None, input_vectors=own.record.embeddings.total, self_attention_mask=causal_mask(T)
        )
        open_mask = tiny_gpt(IDS, self_attention_mask=torch.ones(T, T, dtype=torch.bool))
    torch.testing.assert_close(again.logits, own.logits)
    assert not torch.allclose(open_mask.logits[0, 0], own.logits[0, 0])


def test_a_wrapped_block_refuses_to_record(make_model) -> None:
    model = make_model(GPTConfig)
    peft.add_adapters(model, 4)
    with pytest.raises(ValueError, match="wrapped \\(WithAdapter"):
        run(model)
    model(IDS)  # the ordinary forward pass still works
