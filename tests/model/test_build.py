"""Configs and the three model families: validation, shapes, causality, masks, loss, ties."""

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tinyformers.model.blocks import Block
from tinyformers.model.build import build_model, count_parameters, presets_table
from tinyformers.model.config import (
    CONFIG_CLASSES,
    PRESETS,
    BertConfig,
    GPTConfig,
    Seq2SeqConfig,
    TransformerConfig,
    config_from_dict,
    preset,
)

# ---------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------

BAD_CONFIGS = [
    (GPTConfig, dict(n_embd=30, n_head=4), r"n_embd \(30\) must be divisible by n_head \(4\)"),
    (GPTConfig, dict(vocab_size=0), "vocab_size must be between 1 and"),
    (GPTConfig, dict(vocab_size=10**9), "vocab_size must be between 1 and"),
    (GPTConfig, dict(n_layer=True), "n_layer must be a whole number, got True"),
    (GPTConfig, dict(n_head=2.0), "n_head must be a whole number"),
    (GPTConfig, dict(block_size=0), "block_size must be between 1 and"),
    (GPTConfig, dict(n_inner=0), "n_inner must be between 1 and"),
    (GPTConfig, dict(position="alibi"), "position must be one of learned, sinusoidal, rotary"),
    (GPTConfig, dict(ln_placement="middle"), "ln_placement must be one of pre, post"),
    (GPTConfig, dict(activation="relu"), "activation must be one of"),
    (GPTConfig, dict(dropout=1.0), r"dropout must be a number in \[0, 1\)"),
    (GPTConfig, dict(dropout=-0.1), r"dropout must be a number in \[0, 1\)"),
    (GPTConfig, dict(dropout="0.1"), r"dropout must be a number in \[0, 1\)"),
    (GPTConfig, dict(layer_norm_eps=0.0), "layer_norm_eps must be a small positive float"),
    (GPTConfig, dict(n_embd=6, n_head=2, position="rotary"), "even head size, got 3"),
    (BertConfig, dict(type_vocab_size=0), "type_vocab_size must be between 1 and"),
    (Seq2SeqConfig, dict(n_decoder_layer=0), "n_decoder_layer must be between 1 and"),
]


@pytest.mark.parametrize("cls, changes, message", BAD_CONFIGS)
def test_config_validation_names_the_field(cls, changes, message):
    with pytest.raises(ValueError, match=message):
        cls(**changes)


def test_config_replace_is_validated_too():
    with pytest.raises(ValueError, match="n_head"):
        GPTConfig().replace(n_head=3)


@pytest.mark.parametrize("cls", CONFIG_CLASSES.values())
def test_configs_are_frozen(cls):
    config = cls()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.n_layer = 5


ODD_CONFIGS = [
    GPTConfig(vocab_size=77, n_inner=48, dropout=0.1, position="rotary", causal=False),
    BertConfig(vocab_size=99, type_vocab_size=3, position="sinusoidal", layer_norm_eps=1e-7),
    Seq2SeqConfig(n_decoder_layer=3, ln_placement="post", residual=False, layer_norm=False),
]


@pytest.mark.parametrize("config", ODD_CONFIGS, ids=lambda c: c.family)
def test_config_round_trips_through_json(config):
    data = json.loads(json.dumps(config.to_dict()))
    assert data["family"] == config.family
    rebuilt = config_from_dict(data)
    assert type(rebuilt) is type(config)
    assert rebuilt == config


def test_config_from_dict_rejects_unknown_family_and_fields():
    with pytest.raises(ValueError, match="unknown model family 'rnn'"):
        config_from_dict({"family": "rnn"})
    with pytest.raises(ValueError, match="unknown model family None"):
        config_from_dict({"n_layer": 2})
    with pytest.raises(ValueError, match="fields this version does not know: colour"):
        config_from_dict({"family": "gpt", "colour": "blue"})


def test_preset_and_overrides():
    config = preset("mini", "bert", vocab_size=100)
    assert isinstance(config, BertConfig)
    assert (config.n_layer, config.n_head, config.n_embd, config.vocab_size) == (4, 4, 128, 100)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        preset("huge")
    with pytest.raises(ValueError, match="unknown model family 'rnn'"):
        preset("nano", "rnn")


def formula_parameters(config: TransformerConfig) -> int:
    """Parameter count from the architecture on paper (tied output matrices counted once)."""
    c, v, p, f = config.n_embd, config.vocab_size, config.block_size, config.mlp_width
    attn = 4 * (c * c + c)
    norm = 2 * c
    mlp = c * f + f + f * c + c
    block = attn + mlp + 2 * norm
    if config.family == "gpt":
        return v * c + p * c + config.n_layer * block + norm
    if config.family == "bert":
        head = c * c + c + norm + v  # dense, LayerNorm, decoder bias
        return v * c + p * c + config.type_vocab_size * c + norm + config.n_layer * block + head
    decoder_block = block + attn + norm  # plus cross-attention and its LayerNorm
    encoder = p * c + config.n_layer * block + norm
    decoder = p * c + config.n_decoder_layer * decoder_block + norm
    return v * c + encoder + decoder


def unique_parameters(model: nn.Module) -> int:
    shared = {id(p): p.numel() for _, p in model.named_parameters(remove_duplicate=False)}
    return sum(shared.values())


def test_presets_table_counts_parameters_of_built_models():
    rows = presets_table(vocab_size=300)
    assert len(rows) == len(PRESETS) * len(CONFIG_CLASSES)
    for row in rows:
        config = preset(row["preset"], row["family"], vocab_size=300)
        model = build_model(config)
        assert row["parameters"] == formula_parameters(config), row
        assert row["parameters"] == unique_parameters(model), row
        assert (row["n_layer"], row["n_embd"]) == (config.n_layer, config.n_embd)


def test_count_parameters_counts_tied_weights_once(tiny_gpt):
    every_name = sum(p.numel() for _, p in tiny_gpt.named_parameters(remove_duplicate=False))
    assert count_parameters(tiny_gpt) == every_name - tiny_gpt.wte.weight.numel()
    tiny_gpt.wpe.weight.requires_grad_(False)
    assert count_parameters(tiny_gpt, trainable_only=True) == (
        count_parameters(tiny_gpt) - tiny_gpt.wpe.weight.numel()
    )


def test_build_model_rejects_the_base_config():
    with pytest.raises(ValueError, match="no model family for config type TransformerConfig"):
        build_model(TransformerConfig())


# ---------------------------------------------------------------------------------------------
# GPT
# ---------------------------------------------------------------------------------------------


def ids(model, b=2, t=10, seed=0):
    """Random (b, t) token ids in the model's vocabulary."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, model.config.vocab_size, (b, t), generator=gen)


def changed_at(x: torch.Tensor, position: int, vocab_size: int) -> torch.Tensor:
    y = x.clone()
    y[:, position] = (y[:, position] + 1) % vocab_size
    return y


def test_gpt_output_shapes(tiny_gpt, tiny):
    out = tiny_gpt(ids(tiny_gpt), output_attentions=True, output_hidden_states=True)
    assert out.logits.shape == (2, 10, tiny["vocab_size"])
    assert out.loss is None
    assert len(out.hidden_states) == tiny["n_layer"] + 1
    assert all(h.shape == (2, 10, tiny["n_embd"]) for h in out.hidden_states)
    assert len(out.attentions) == tiny["n_layer"]
    assert all(a.shape == (2, tiny["n_head"], 10, 10) for a in out.attentions)
    # the last hidden state is after ln_f, so the logits are that state times the tied matrix
    torch.testing.assert_close(out.logits, out.hidden_states[-1] @ tiny_gpt.wte.weight.T)
    plain = tiny_gpt(ids(tiny_gpt))
    assert plain.attentions == () and plain.hidden_states == ()
    torch.testing.assert_close(plain.logits, out.logits, atol=1e-5, rtol=1e-5)


def test_gpt_is_causal(tiny_gpt, tiny):
    x = ids(tiny_gpt)
    before = tiny_gpt(x).logits
    after = tiny_gpt(changed_at(x, 6, tiny["vocab_size"])).logits
    torch.testing.assert_close(after[:, :6], before[:, :6], atol=1e-6, rtol=0)
    assert (after[:, 6:] - before[:, 6:]).abs().amax() > 1e-3


def test_gpt_without_causal_mask_leaks_the_future(make_model, tiny):
    model = make_model(GPTConfig, causal=False)
    x = ids(model)
    before, after = model(x).logits, model(changed_at(x, 6, tiny["vocab_size"])).logits
    assert (after[:, :6] - before[:, :6]).abs().amax() > 1e-3


def test_gpt_causal_attention_weights(tiny_gpt, tiny):
    out = tiny_gpt(ids(tiny_gpt), output_attentions=True)
    above = torch.ones(10, 10, dtype=torch.bool).triu(1)
    for weights in out.attentions:
        assert (weights[..., above] == 0).all()
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, tiny["n_head"], 10))


def test_gpt_loss_equals_cross_entropy_by_hand(tiny_gpt):
    x, targets = ids(tiny_gpt), ids(tiny_gpt, seed=1)
    out = tiny_gpt(x, targets=targets)
    log_probs = out.logits.double().log_softmax(-1)
    by_hand = -log_probs.gather(-1, targets[..., None]).mean()
    assert out.loss.item() == pytest.approx(by_hand.item(), rel=1e-5)
    expected = F.cross_entropy(out.logits.flatten(0, 1), targets.flatten())
    torch.testing.assert_close(out.loss, expected)


def test_gpt_loss_ignores_minus_100(tiny_gpt):
    x, targets = ids(tiny_gpt), ids(tiny_gpt, seed=1)
    targets[0, :4] = -100
    targets[1, 7:] = -100
    out = tiny_gpt(x, targets=targets)
    keep = targets != -100
    log_probs = out.logits.double().log_softmax(-1)[keep]  # (N, V)
    by_hand = -log_probs.gather(-1, targets[keep][:, None]).mean()
    assert out.loss.item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_gpt_rejects_too_long_and_empty_input(tiny_gpt, tiny):
    too_long = tiny["block_size"] + 1
    message = f"{too_long} tokens but the model has only {tiny['block_size']} positions"
    with pytest.raises(ValueError, match=message):
        tiny_gpt(ids(tiny_gpt, t=too_long))
    with pytest.raises(ValueError, match="empty"):
        tiny_gpt(torch.zeros(1, 0, dtype=torch.long))


def test_gpt_right_padding_leaves_real_positions_unchanged(tiny_gpt):
    x = ids(tiny_gpt, b=1, t=6)
    padded = torch.cat([x, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    attention_mask = torch.tensor([[1] * 6 + [0] * 4])
    out = tiny_gpt(padded, attention_mask=attention_mask, output_attentions=True)
    torch.testing.assert_close(out.logits[:, :6], tiny_gpt(x).logits, atol=1e-5, rtol=0)
    for weights in out.attentions:
        assert (weights[..., 6:] == 0).all()


def test_gpt_left_padding_has_no_nan(tiny_gpt):
    x = ids(tiny_gpt, t=5)
    attention_mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    out = tiny_gpt(x, attention_mask=attention_mask, output_attentions=True)
    fast = tiny_gpt(x, attention_mask=attention_mask)
    assert torch.isfinite(out.logits).all() and torch.isfinite(fast.logits).all()
    torch.testing.assert_close(fast.logits, out.logits, atol=1e-5, rtol=1e-5)


def test_pre_ln_and_post_ln_differ(make_model):
    pre = make_model(GPTConfig, ln_placement="pre")
    post = make_model(GPTConfig, ln_placement="post")
    for a, b in zip(pre.parameters(), post.parameters(), strict=True):
        assert torch.equal(a, b)  # the same weights...
    x = ids(pre)
    assert (pre(x).logits - post(x).logits).abs().amax() > 1e-2  # ...arranged differently


@pytest.mark.parametrize("placement", ["pre", "post"])
@pytest.mark.parametrize("residual", [True, False])
def test_block_sublayer_follows_its_formula(placement, residual):
    block = Block(GPTConfig(n_embd=16, ln_placement=placement, residual=residual))
    x = torch.randn(2, 5, 16)
    norm = nn.LayerNorm(16)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    double = lambda h: 2 * h + 1  # noqa: E731
    got, _ = block.sublayer(x, norm, double)
    if placement == "pre":
        expected = x + double(norm(x)) if residual else double(norm(x))
    else:
        expected = norm(x + double(x)) if residual else norm(double(x))
    torch.testing.assert_close(got, expected)


def test_post_ln_blocks_output_normalized_vectors(tiny):
    torch.manual_seed(0)
    model = build_model(GPTConfig(**tiny, ln_placement="post")).eval()  # LayerNorm gain 1, bias 0
    out = model(ids(model), output_hidden_states=True)
    for h in out.hidden_states[1:]:
        torch.testing.assert_close(h.mean(-1), torch.zeros(2, 10), atol=1e-5, rtol=0)
        torch.testing.assert_close(h.var(-1, unbiased=False), torch.ones(2, 10), atol=1e-3, rtol=0)


ABLATIONS = [dict(residual=False), dict(layer_norm=False), dict(residual=False, layer_norm=False)]


@pytest.mark.parametrize("changes", ABLATIONS)
def test_ablations_build_and_run(make_model, changes):
    model = make_model(GPTConfig, **changes)
    if not changes.get("layer_norm", True):
        assert not any(isinstance(m, nn.LayerNorm) for m in model.modules())
    out = model(ids(model), targets=ids(model, seed=1))
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)
    reference = make_model(GPTConfig)
    assert (out.logits - reference(ids(model)).logits).abs().amax() > 1e-3


def test_rotary_gpt_runs_and_uses_positions(make_model, tiny):
    rotary = make_model(GPTConfig, position="rotary")
    assert rotary.wpe is None
    assert "rotary_cos" not in rotary.state_dict()
    x = ids(rotary, t=tiny["block_size"])
    out = rotary(x, output_attentions=True)
    assert out.logits.shape == (2, tiny["block_size"], tiny["vocab_size"])
    no_positions = make_model(GPTConfig, position="none")
    assert (out.logits - no_positions(x).logits).abs().amax() > 1e-3


@pytest.mark.parametrize("position, equivariant", [("none", True), ("rotary", False)])
def test_attention_without_positions_treats_tokens_as_a_set(make_model, position, equivariant):
    model = make_model(GPTConfig, position=position, causal=False)
    x = ids(model, b=1, t=8)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    permuted_logits = model(x[:, perm]).logits
    same = torch.allclose(permuted_logits, model(x).logits[:, perm], atol=1e-5)
    assert same == equivariant


# ---------------------------------------------------------------------------------------------
# BERT
# ---------------------------------------------------------------------------------------------


def test_bert_output_shapes(tiny_bert, tiny):
    out = tiny_bert(ids(tiny_bert), output_attentions=True, output_hidden_states=True)
    assert out.logits.shape == (2, 10, tiny["vocab_size"])
    assert len(out.hidden_states) == tiny["n_layer"] + 1
    assert len(out.attentions) == tiny["n_layer"]
    assert all(a.shape == (2, tiny["n_head"], 10, 10) for a in out.attentions)


def test_bert_is_bidirectional(tiny_bert, tiny):
    x = ids(tiny_bert)
    before = tiny_bert(x).logits
    after = tiny_bert(changed_at(x, 6, tiny["vocab_size"])).logits
    assert (after[:, :6] - before[:, :6]).abs().amax() > 1e-3


def test_bert_padding_leaves_real_positions_unchanged(tiny_bert, tiny):
    x = ids(tiny_bert, b=2, t=7)
    padded = torch.cat([x, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    attention_mask = torch.tensor([[1] * 7 + [0] * 5] * 2)
    out = tiny_bert(padded, attention_mask=attention_mask, output_attentions=True)
    torch.testing.assert_close(out.logits[:, :7], tiny_bert(x).logits, atol=1e-5, rtol=0)
    for weights in out.attentions:
        assert (weights[..., 7:] == 0).all()
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, tiny["n_head"], 12))
    unmasked = tiny_bert(padded).logits
    assert (unmasked[:, :7] - out.logits[:, :7]).abs().amax() > 1e-3  # the mask mattered


def test_bert_token_type_ids(tiny_bert):
    x = ids(tiny_bert)
    default = tiny_bert(x).logits
    torch.testing.assert_close(tiny_bert(x, token_type_ids=torch.zeros_like(x)).logits, default)
    segments = torch.zeros_like(x)
    segments[:, 5:] = 1
    assert (tiny_bert(x, token_type_ids=segments).logits - default).abs().amax() > 1e-3


def test_bert_mlm_loss_only_at_labelled_positions(tiny_bert):
    x = ids(tiny_bert)
    labels = torch.full_like(x, -100)
    labels[0, 2], labels[1, 5] = 7, 11
    out = tiny_bert(x, labels=labels)
    log_probs = out.logits.double().log_softmax(-1)
    by_hand = -(log_probs[0, 2, 7] + log_probs[1, 5, 11]) / 2
    assert out.loss.item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_bert_rejects_rotary_positions(make_model):
    with pytest.raises(ValueError, match="learned, sinusoidal or no positions"):
        make_model(BertConfig, position="rotary")


# ---------------------------------------------------------------------------------------------
# Seq2Seq
# ---------------------------------------------------------------------------------------------


def test_seq2seq_output_shapes(tiny_seq2seq, tiny):
    src, tgt = ids(tiny_seq2seq, t=9), ids(tiny_seq2seq, t=6, seed=1)
    out = tiny_seq2seq(src, tgt, output_attentions=True, output_hidden_states=True)
    nh = tiny["n_head"]
    assert out.logits.shape == (2, 6, tiny["vocab_size"])
    assert len(out.attentions) == len(out.cross_attentions) == 2
    assert all(a.shape == (2, nh, 6, 6) for a in out.attentions)
    assert all(a.shape == (2, nh, 6, 9) for a in out.cross_attentions)
    assert all(a.shape == (2, nh, 9, 9) for a in out.encoder_attentions)
    assert len(out.hidden_states) == len(out.encoder_hidden_states) == 3


def test_seq2seq_decoder_is_causal_and_reads_the_source(tiny_seq2seq, tiny):
    src, tgt = ids(tiny_seq2seq, t=9), ids(tiny_seq2seq, t=6, seed=1)
    vocab_size = tiny["vocab_size"]
    before = tiny_seq2seq(src, tgt).logits
    after = tiny_seq2seq(src, changed_at(tgt, 3, vocab_size)).logits
    torch.testing.assert_close(after[:, :3], before[:, :3], atol=1e-6, rtol=0)
    assert (after[:, 3:] - before[:, 3:]).abs().amax() > 1e-3
    other_source = tiny_seq2seq(changed_at(src, 8, vocab_size), tgt).logits
    assert (other_source[:, 0] - before[:, 0]).abs().amax() > 1e-3  # even the first position


def test_seq2seq_cross_attention_ignores_padded_source(tiny_seq2seq, tiny):
    src, tgt = ids(tiny_seq2seq, t=6), ids(tiny_seq2seq, t=5, seed=1)
    padded = torch.cat([src, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    src_mask = torch.tensor([[1] * 6 + [0] * 3] * 2)
    out = tiny_seq2seq(padded, tgt, src_attention_mask=src_mask, output_attentions=True)
    for weights in out.cross_attentions:
        assert weights.shape == (2, tiny["n_head"], 5, 9)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, tiny["n_head"], 5))
        assert (weights[..., 6:] == 0).all()
    torch.testing.assert_close(out.logits, tiny_seq2seq(src, tgt).logits, atol=1e-5, rtol=0)
    assert out.masks["cross"].shape == (2, 1, 5, 9)


def test_seq2seq_memory_shortcut_gives_the_same_logits(tiny_seq2seq):
    src, tgt = ids(tiny_seq2seq, t=7), ids(tiny_seq2seq, t=4, seed=1)
    memory, _, _ = tiny_seq2seq.encode(src)
    torch.testing.assert_close(
        tiny_seq2seq(src, tgt, memory=memory).logits, tiny_seq2seq(src, tgt).logits
    )


def greedy_by_hand(model, src, bos_id, eos_id, steps):
    tgt = [bos_id]
    for _ in range(steps):
        next_id = model(src, torch.tensor([tgt])).logits[0, -1].argmax().item()
        if next_id == eos_id:
            break
        tgt.append(next_id)
    return tgt[1:]


def test_generate_greedy_equals_an_argmax_loop(tiny_seq2seq, tiny):
    src = ids(tiny_seq2seq, b=1, t=8)
    longest = tiny["block_size"] - 1  # [BOS] takes one position
    expected = greedy_by_hand(tiny_seq2seq, src, bos_id=5, eos_id=-1, steps=longest)
    assert len(expected) == longest
    assert tiny_seq2seq.generate_greedy(src, bos_id=5, eos_id=-1)[0].tolist() == expected
    limited = tiny_seq2seq.generate_greedy(src, bos_id=5, eos_id=-1, max_new_tokens=4)
    assert limited[0].tolist() == expected[:4]


def test_generate_greedy_stops_before_eos(tiny_seq2seq):
    src = ids(tiny_seq2seq, b=1, t=8)
    sequence = greedy_by_hand(tiny_seq2seq, src, bos_id=5, eos_id=-1, steps=8)
    stop = next(i for i in range(1, 8) if sequence[i] not in sequence[:i])
    generated = tiny_seq2seq.generate_greedy(src, bos_id=5, eos_id=sequence[stop])
    assert generated[0].tolist() == sequence[:stop]


def test_seq2seq_rejects_rotary_positions(make_model):
    with pytest.raises(ValueError, match="learned, sinusoidal or no positions"):
        make_model(Seq2SeqConfig, position="rotary")


# ---------------------------------------------------------------------------------------------
# Tied embeddings
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config_class, head",
    [(GPTConfig, "lm_head"), (Seq2SeqConfig, "lm_head"), (BertConfig, "mlm_head.decoder")],
)
def test_output_matrix_is_tied_to_the_token_embedding(make_model, config_class, head):
    model = make_model(config_class)
    output = model.get_submodule(head)
    assert output.weight is model.wte.weight
    assert output.weight.data_ptr() == model.wte.weight.data_ptr()
    with torch.no_grad():
        model.wte.weight[3, 0] = 42.0
    assert output.weight[3, 0].item() == 42.0
    assert set(model.tied_weights) == {f"{head}.weight"}
