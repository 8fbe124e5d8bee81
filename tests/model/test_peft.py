"""Parameter-efficient methods: each adds exactly the parameters it claims, starts where the
pretrained model is (LoRA, adapters), trains only what it claims, and LoRA merges away."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tinyformers.model import peft
from tinyformers.model.attention import MultiHeadAttention, attention, causal_mask, padding_mask
from tinyformers.model.build import count_parameters
from tinyformers.model.config import BertConfig, GPTConfig


def inputs(model: nn.Module, batch: int = 3, length: int = 9, seed: int = 1):
    """Random ids and a padding mask with a different number of real tokens per row."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(7, model.config.vocab_size, (batch, length), generator=generator)
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(1, batch):
        mask[row, length - 2 * row :] = 0
    return {"idx": ids, "attention_mask": mask}


def logits(model: nn.Module, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


def one_step(model: nn.Module, batch) -> None:
    """One AdamW step on a loss that reaches every output; only trainable tensors are given."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1)
    model.train()
    loss = model(**batch).logits.pow(2).mean()
    loss.backward()
    optimizer.step()
    model.eval()


def changed_names(before: dict[str, torch.Tensor], model: nn.Module) -> set[str]:
    """Names of the parameters that are no longer bit-identical to ``before``."""
    return {
        name
        for name, parameter in model.named_parameters()
        if name in before and not torch.equal(before[name], parameter.detach())
    }


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.fixture(params=["gpt", "bert"])
def model(request, make_model) -> nn.Module:
    return make_model(GPTConfig if request.param == "gpt" else BertConfig)


# ---------------------------------------------------------------------------------------------
# LoRA
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rank,targets",
    [(1, ("q_proj",)), (3, ("q_proj", "v_proj")), (8, peft.LORA_TARGETS)],
)
def test_lora_adds_r_times_d_in_plus_d_out_per_adapted_linear(model, rank, targets) -> None:
    before = count_parameters(model)
    adapted = peft.add_lora(model, rank, alpha=2 * rank, targets=targets)
    config = model.config
    assert len(adapted) == config.n_layer * len(targets)
    per_linear = rank * (config.n_embd + config.n_embd)
    assert count_parameters(model) - before == per_linear * len(adapted)
    assert peft.count_trainable(model) == per_linear * len(adapted)
    for name in adapted:
        layer = model.get_submodule(name)
        assert layer.lora_A.shape == (rank, layer.base.in_features)
        assert layer.lora_B.shape == (layer.base.out_features, rank)
    assert set(peft.trainable_names(model)) == {
        f"{name}.lora_{which}" for name in adapted for which in "AB"
    }


def test_lora_starts_as_the_base_model_exactly(model) -> None:
    batch = inputs(model)
    expected = logits(model, batch)
    peft.add_lora(model, 4, 8.0, peft.LORA_TARGETS)
    assert torch.equal(logits(model, batch), expected)


def test_lora_linear_computes_w_plus_scaled_b_a() -> None:
    torch.manual_seed(0)
    layer = peft.LoRALinear(nn.Linear(6, 5), rank=2, alpha=3.0)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(4, 6)
    weight = layer.base.weight + 3.0 / 2 * layer.lora_B @ layer.lora_A
    torch.testing.assert_close(layer(x), x @ weight.T + layer.base.bias)


def test_trained_lora_merges_without_changing_outputs_into_the_base_names(model) -> None:
    base_names = [name for name, _ in model.named_parameters()]
    base_count = count_parameters(model)
    frozen = snapshot(model)
    batch = inputs(model)
    pretrained = logits(model, batch)
    peft.add_lora(model, 4, 8.0, ("q_proj", "k_proj", "v_proj", "c_proj"))
    for _ in range(3):
        one_step(model, batch)
    trained = logits(model, batch)
    assert not torch.allclose(trained, pretrained)  # training moved the model
    assert peft.merge_lora(model) == model.config.n_layer * 4
    torch.testing.assert_close(logits(model, batch), trained, atol=1e-5, rtol=0)
    assert [name for name, _ in model.named_parameters()] == base_names
    assert count_parameters(model) == base_count
    assert not any(isinstance(m, peft.LoRALinear) for m in model.modules())
    moved = {name for name in base_names if not torch.equal(frozen[name], model.state_dict()[name])}
    assert moved and all(".attn." in name and name.endswith("weight") for name in moved)


def test_lora_only_trains_a_and_b(model) -> None:
    peft.add_lora(model, 2, 4.0, ("v_proj",))
    before = snapshot(model)
    one_step(model, inputs(model))
    changed = changed_names(before, model)
    assert changed and all(name.rsplit(".", 1)[-1] in ("lora_A", "lora_B") for name in changed)


@pytest.mark.parametrize(
    "rank,alpha,targets,message",
    [
        (0, 1.0, ("q_proj",), "LoRA rank must be a whole number from 1 to 64"),
        (10**6, 1.0, ("q_proj",), "LoRA rank must be a whole number from 1 to 64"),
        (2.5, 1.0, ("q_proj",), "LoRA rank must be a whole number"),
        (True, 1.0, ("q_proj",), "LoRA rank must be a whole number"),
        (4, 0.0, ("q_proj",), "alpha must be above 0"),
        (4, -3.0, ("q_proj",), "alpha must be above 0"),
        (4, 1e9, ("q_proj",), "at most 1024"),
        (4, math.nan, ("q_proj",), "alpha must be above 0"),
        (4, "big", ("q_proj",), "alpha must be a number"),
        (4, 1.0, (), "choose at least one projection"),
        (4, 1.0, ("c_fc",), "'c_fc' is not one"),
    ],
)
def test_lora_rejects_bad_settings(tiny_gpt, rank, alpha, targets, message) -> None:
    with pytest.raises(ValueError, match=message):
        peft.add_lora(tiny_gpt, rank, alpha, targets)


def test_lora_rank_larger_than_the_matrix_is_rejected(tiny_gpt) -> None:
    with pytest.raises(
        ValueError, match="larger than the 32 × 32 matrix it adapts; use at most 32"
    ):
        peft.add_lora(tiny_gpt, 40, 1.0, ("q_proj",))


# ---------------------------------------------------------------------------------------------
# BitFit and adapters
# ---------------------------------------------------------------------------------------------


def test_bitfit_trains_only_the_biases(model) -> None:
    names = peft.train_only_biases(model)
    assert names == peft.trainable_names(model)
    assert names and all(name.endswith(".bias") for name in names)
    all_biases = {n for n, _ in model.named_parameters() if n.endswith(".bias")}
    assert set(names) == all_biases
    assert any(".ln_" in name for name in names)  # LayerNorm shifts count as biases
    before = snapshot(model)
    one_step(model, inputs(model))
    changed = changed_names(before, model)
    assert changed and changed <= set(names)
    unchanged = set(before) - set(names)
    assert all(torch.equal(before[n], model.get_parameter(n)) for n in unchanged)


def test_adapters_start_as_a_no_op_and_add_what_they_claim(model) -> None:
    batch = inputs(model)
    expected = logits(model, batch)
    before = count_parameters(model)
    added = peft.add_adapters(model, bottleneck=5, places=("attn", "mlp"))
    c, b = model.config.n_embd, 5
    assert len(added) == 2 * model.config.n_layer
    assert count_parameters(model) - before == len(added) * (c * b + b + b * c + c)
    assert torch.equal(logits(model, batch), expected)


@pytest.mark.parametrize("places", [("attn",), ("mlp",), ("attn", "mlp")])
def test_adapters_train_only_their_own_parameters(model, places) -> None:
    added = peft.add_adapters(model, 4, places)
    trainable = set(peft.trainable_names(model))
    assert trainable == {
        f"{name}.{part}"
        for name in added
        for part in ("down.weight", "down.bias", "up.weight", "up.bias")
    }
    before = snapshot(model)
    one_step(model, inputs(model))
    changed = changed_names(before, model)
    assert changed and changed <= trainable
    assert all(torch.equal(before[n], model.get_parameter(n)) for n in set(before) - trainable)


def test_adapter_changes_the_sub_layer_output_once_trained(tiny_bert) -> None:
    peft.add_adapters(tiny_bert, 4, ("mlp",))
    batch = inputs(tiny_bert)
    expected = logits(tiny_bert, batch)
    one_step(tiny_bert, batch)
    one_step(tiny_bert, batch)
    assert not torch.allclose(logits(tiny_bert, batch), expected)


@pytest.mark.parametrize(
    "bottleneck,places,message",
    [
        (0, ("attn",), "adapter bottleneck must be a whole number from 1 to 512"),
        (10**9, ("attn",), "adapter bottleneck must be a whole number from 1 to 512"),
        (4, (), "adapters go after 'attn' and/or 'mlp'; got none"),
        (4, ("ln_1",), "got 'ln_1'"),
    ],
)
def test_adapters_reject_bad_settings(tiny_gpt, bottleneck, places, message) -> None:
    with pytest.raises(ValueError, match=message):
        peft.add_adapters(tiny_gpt, bottleneck, places)


# ---------------------------------------------------------------------------------------------
# Prefix tuning
# ---------------------------------------------------------------------------------------------


def test_prefix_adds_two_p_c_per_layer_and_trains_only_the_prefix(model) -> None:
    before_count = count_parameters(model)
    wrapped = peft.add_prefix(model, 3)
    config = model.config
    assert len(wrapped) == config.n_layer
    assert count_parameters(model) - before_count == config.n_layer * 2 * 3 * config.n_embd
    trainable = set(peft.trainable_names(model))
    assert trainable == {f"{n}.prefix_{kind}" for n in wrapped for kind in ("keys", "values")}
    before = snapshot(model)
    one_step(model, inputs(model))
    changed = changed_names(before, model)
    assert changed == trainable
    assert all(torch.equal(before[n], model.get_parameter(n)) for n in set(before) - trainable)


def reference_prefix_attention(layer: peft.PrefixAttention, x, mask) -> torch.Tensor:
    """The same layer written out: keys and values of [prefix; tokens], prefix always visible."""
    attn, b, t, p = layer.attn, x.size(0), x.size(1), layer.length
    k = torch.cat([layer.prefix_keys.expand(b, -1, -1), attn.k_proj(x)], dim=1)  # (B, P+T, C)
    v = torch.cat([layer.prefix_values.expand(b, -1, -1), attn.v_proj(x)], dim=1)
    q, k, v = (attn.split_heads(z) for z in (attn.q_proj(x), k, v))
    full = torch.ones(b, 1, t, p + t, dtype=torch.bool)
    full[..., p:] = torch.broadcast_to(mask, (b, 1, t, t))
    out, _ = attention(q, k, v, full)
    return attn.c_proj(attn.merge_heads(out))


@pytest.mark.parametrize("kind", ["causal", "padding"])
def test_prefix_attention_matches_a_written_out_reference(kind) -> None:
    torch.manual_seed(0)
    layer = peft.PrefixAttention(MultiHeadAttention(16, 4), length=3).eval()
    x = torch.randn(2, 5, 16)
    if kind == "causal":
        mask = causal_mask(5)
    else:
        mask = padding_mask(torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]))
    expected = reference_prefix_attention(layer, x, mask)
    slow, weights = layer(x, mask, need_weights=True)
    fast, none = layer(x, mask, need_weights=False)
    torch.testing.assert_close(slow, expected)
    torch.testing.assert_close(fast, expected, atol=1e-5, rtol=1e-5)
    assert none is None and weights.shape == (2, 4, 5, 8)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 5))
    assert (weights[..., :3] > 0).all()  # every query sees the whole prefix


def test_prefix_keeps_a_gpt_causal(tiny_gpt) -> None:
    peft.add_prefix(tiny_gpt, 2)
    ids = torch.randint(7, 40, (1, 8), generator=torch.Generator().manual_seed(0))
    changed = ids.clone()
    changed[0, 5:] = 7
    with torch.no_grad():
        a, b = tiny_gpt(ids).logits, tiny_gpt(changed).logits
    torch.testing.assert_close(a[0, :5], b[0, :5])


def test_with_prefix_columns_prepends_visible_keys() -> None:
    assert peft.with_prefix_columns(None, 4, 4, 2) is None
    causal = peft.with_prefix_columns(causal_mask(3), 3, 3, 2)
    assert causal.tolist() == [
        [True, True, True, False, False],
        [True, True, True, True, False],
        [True, True, True, True, True],
    ]
    padded = peft.with_prefix_columns(padding_mask(torch.tensor([[1, 0]])), 2, 2, 1)
    assert padded.shape == (1, 1, 2, 3) and padded[0, 0].tolist() == [[True, True, False]] * 2


@pytest.mark.parametrize("length", [0, -1, 65, 10**9, 2.0])
def test_prefix_rejects_bad_lengths(tiny_gpt, length) -> None:
    with pytest.raises(ValueError, match="prefix length must be a whole number from 1 to 64"):
        peft.add_prefix(tiny_gpt, length)


def test_a_model_without_blocks_is_refused() -> None:
    with pytest.raises(ValueError, match="no Transformer blocks"):
        peft.add_lora(nn.Sequential(nn.Linear(3, 3)), 1, 1.0, ("q_proj",))
