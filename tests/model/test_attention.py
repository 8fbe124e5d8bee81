"""Attention and its masks, checked against PyTorch's kernels and a float64 softmax by hand."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyformers.model.attention import (
    MultiHeadAttention,
    attention,
    causal_mask,
    combine_masks,
    cross_attention_mask,
    fast_attention,
    padding_mask,
    prefix_lm_mask,
)
from tinyformers.model.positional import rotary_angles


def reference_weights(q, k, mask=None):
    """softmax(q kᵀ / √d) in float64, written out with exp and a sum, masked keys dropped."""
    q, k = q.double(), k.double()
    scores = torch.einsum("...qd,...kd->...qk", q, k) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    scores = scores - scores.amax(dim=-1, keepdim=True)
    exp = scores.exp()
    return exp / exp.sum(dim=-1, keepdim=True)


def random_qkv(b=2, nh=3, t_q=5, t_k=5, d=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(b, nh, t_q, d, generator=gen)
    k = torch.randn(b, nh, t_k, d, generator=gen)
    v = torch.randn(b, nh, t_k, d + 1, generator=gen)
    return q, k, v


def padding_of(lengths, t):
    """(B, T) 0/1 attention mask with the first ``lengths[b]`` tokens real."""
    return (torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]).long()


MASKS = {
    "none": lambda t: None,
    "causal": lambda t: causal_mask(t),
    "padding": lambda t: padding_mask(padding_of([t, max(1, t - 2)], t)),
    "prefix": lambda t: prefix_lm_mask(t, 2),
    "causal+padding": lambda t: combine_masks(causal_mask(t), padding_mask(padding_of([t, 2], t))),
}


@pytest.mark.parametrize("kind", MASKS)
def test_attention_matches_torch_and_reference(kind):
    q, k, v = random_qkv(t_q=6, t_k=6)
    mask = MASKS[kind](6)
    out, weights = attention(q, k, v, mask)
    expected_out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, expected_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights.double(), reference_weights(q, k, mask), atol=1e-6, rtol=0)
    assert weights.shape == (2, 3, 6, 6)


@settings(max_examples=40, deadline=None)
@given(
    b=st.integers(1, 3),
    nh=st.integers(1, 3),
    t_q=st.integers(1, 7),
    t_k=st.integers(1, 7),
    d=st.integers(1, 9),
    seed=st.integers(0, 2**16),
    use_mask=st.booleans(),
)
def test_attention_matches_torch_for_random_shapes_and_masks(b, nh, t_q, t_k, d, seed, use_mask):
    q, k, v = random_qkv(b, nh, t_q, t_k, d, seed)
    mask = None
    if use_mask:
        gen = torch.Generator().manual_seed(seed + 1)
        mask = torch.rand(b, nh, t_q, t_k, generator=gen) < 0.5
        first_key = torch.randint(0, t_k, (b, nh, t_q), generator=gen)
        mask.scatter_(-1, first_key[..., None], True)  # every query sees at least one key
    out, weights = attention(q, k, v, mask)
    torch.testing.assert_close(
        out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(weights.double(), reference_weights(q, k, mask), atol=1e-6, rtol=0)
    torch.testing.assert_close(fast_attention(q, k, v, mask), out, atol=1e-5, rtol=1e-5)
    if mask is not None:
        assert (weights[~mask] == 0).all()


@pytest.mark.parametrize("kind", MASKS)
def test_fast_attention_equals_attention(kind):
    q, k, v = random_qkv(t_q=6, t_k=6, seed=3)
    mask = MASKS[kind](6)
    out, _ = attention(q, k, v, mask)
    torch.testing.assert_close(fast_attention(q, k, v, mask), out, atol=1e-5, rtol=1e-5)


def test_causal_weights_are_exactly_zero_above_the_diagonal_and_rows_sum_to_one():
    q, k, v = random_qkv(t_q=7, t_k=7, seed=1)
    _, weights = attention(q, k, v, causal_mask(7))
    above = torch.ones(7, 7, dtype=torch.bool).triu(1)
    assert (weights[..., above] == 0).all()
    assert (weights[..., ~above] > 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 7))


def test_causal_mask_is_lower_triangular():
    mask = causal_mask(5)
    assert mask.dtype == torch.bool
    for i in range(5):
        for j in range(5):
            assert mask[i, j] == (j <= i)


def test_padded_keys_get_exactly_zero_weight():
    q, k, v = random_qkv(t_q=6, t_k=6, seed=2)
    am = padding_of([6, 4], 6)
    _, weights = attention(q, k, v, padding_mask(am))
    assert (weights[1, :, :, 4:] == 0).all()
    assert (weights[1, :, :, :4] > 0).all()
    assert (weights[0] > 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 6))


def test_padding_mask_shape_and_values():
    am = torch.tensor([[1, 1, 0], [1, 0, 0]])
    mask = padding_mask(am)
    assert mask.shape == (2, 1, 1, 3)
    assert mask.dtype == torch.bool
    assert mask[:, 0, 0].tolist() == [[True, True, False], [True, False, False]]


@pytest.mark.parametrize("bad", [torch.ones(3), torch.ones(1, 2, 3)])
def test_padding_mask_rejects_wrong_rank(bad):
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(batch, length\)"):
        padding_mask(bad)


@pytest.mark.parametrize("t, prefix", [(6, 0), (6, 1), (6, 3), (6, 6), (1, 1)])
def test_prefix_lm_mask_matches_its_definition(t, prefix):
    mask = prefix_lm_mask(t, prefix)
    assert mask.shape == (t, t)
    for i in range(t):
        for j in range(t):
            # every position sees the whole prefix; after the prefix, attention is causal
            assert mask[i, j] == (j < prefix or j <= i), (i, j)
    for i in range(prefix):  # inside the prefix: the whole prefix and nothing after it
        assert mask[i, :prefix].all()
        assert not mask[i, prefix:].any()


def test_prefix_lm_mask_edge_cases():
    assert torch.equal(prefix_lm_mask(5, 0), causal_mask(5))
    assert prefix_lm_mask(5, 5).all()


@pytest.mark.parametrize("prefix", [-1, 6])
def test_prefix_lm_mask_rejects_bad_prefix(prefix):
    with pytest.raises(ValueError, match="prefix length must be between 0 and 5"):
        prefix_lm_mask(5, prefix)


def test_cross_attention_mask_shape_and_values():
    am = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    mask = cross_attention_mask(am, t_dec=3)
    assert mask.shape == (2, 1, 3, 4)
    for b in range(2):
        for i in range(3):
            assert mask[b, 0, i].tolist() == [bool(x) for x in am[b].tolist()]


def test_combine_masks():
    a = causal_mask(3)
    b = padding_mask(torch.tensor([[1, 1, 0]]))
    assert combine_masks(None, None) is None
    assert combine_masks(None, a) is a
    both = combine_masks(a, None, b)
    assert both.shape == (1, 1, 3, 3)
    assert torch.equal(both[0, 0], a & torch.tensor([True, True, False]))


def test_fully_masked_row_gives_zero_weights_and_output():
    q, k, v = random_qkv(b=1, nh=2, t_q=3, t_k=4, seed=4)
    mask = torch.tensor(
        [[True, False, True, False], [False, False, False, False], [True, True, True, True]]
    )
    out, weights = attention(q, k, v, mask)
    assert not out.isnan().any() and not weights.isnan().any()
    assert (weights[:, :, 1] == 0).all()
    assert (out[:, :, 1] == 0).all()
    torch.testing.assert_close(weights[:, :, [0, 2]].sum(-1), torch.ones(1, 2, 2))
    fast = fast_attention(q, k, v, mask)
    assert not fast.isnan().any()
    torch.testing.assert_close(fast, out, atol=1e-5, rtol=1e-5)


def test_split_and_merge_heads():
    mha = MultiHeadAttention(n_embd=12, n_head=3)
    x = torch.randn(2, 5, 12)
    heads = mha.split_heads(x)
    assert heads.shape == (2, 3, 5, 4)
    for h in range(3):  # head h owns features h*hs ... (h+1)*hs - 1
        assert torch.equal(heads[:, h], x[:, :, 4 * h : 4 * (h + 1)])
    assert torch.equal(mha.merge_heads(heads), x)


def reference_mha(mha, x, memory, mask):
    """The same layer through torch.nn.MultiheadAttention (whose boolean mask means 'blocked')."""
    c = mha.n_embd
    ref = torch.nn.MultiheadAttention(c, mha.n_head, batch_first=True)
    with torch.no_grad():
        projections = (mha.q_proj, mha.k_proj, mha.v_proj)
        ref.in_proj_weight.copy_(torch.cat([p.weight for p in projections]))
        ref.in_proj_bias.copy_(torch.cat([p.bias for p in projections]))
        ref.out_proj.weight.copy_(mha.c_proj.weight)
        ref.out_proj.bias.copy_(mha.c_proj.bias)
    source = x if memory is None else memory
    blocked = None
    if mask is not None:
        b, t_q, t_k = x.size(0), x.size(1), source.size(1)
        blocked = ~mask.expand(b, mha.n_head, t_q, t_k).reshape(b * mha.n_head, t_q, t_k)
    return ref(x, source, source, attn_mask=blocked, need_weights=True, average_attn_weights=False)


@pytest.mark.parametrize("cross", [False, True])
def test_multi_head_attention_matches_torch_module(cross):
    torch.manual_seed(0)
    mha = MultiHeadAttention(n_embd=12, n_head=3).eval()
    x = torch.randn(2, 5, 12)
    memory = torch.randn(2, 7, 12) if cross else None
    mask = cross_attention_mask(padding_of([7, 4], 7), 5) if cross else causal_mask(5)
    out, weights = mha(x, mask, memory=memory)
    ref_out, ref_weights = reference_mha(mha, x, memory, mask)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights, ref_weights, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("with_rotary", [False, True])
@pytest.mark.parametrize("cross", [False, True])
def test_multi_head_attention_output_does_not_depend_on_need_weights(cross, with_rotary):
    torch.manual_seed(1)
    mha = MultiHeadAttention(n_embd=16, n_head=2).eval()
    x = torch.randn(2, 6, 16)
    memory = torch.randn(2, 6, 16) if cross else None
    mask = combine_masks(causal_mask(6), padding_mask(padding_of([6, 3], 6)))
    rotary = rotary_angles(6, 8) if with_rotary else None
    out, weights = mha(x, mask, memory=memory, rotary=rotary, need_weights=True)
    fast_out, no_weights = mha(x, mask, memory=memory, rotary=rotary, need_weights=False)
    assert no_weights is None
    assert weights.shape == (2, 2, 6, 6)
    torch.testing.assert_close(fast_out, out, atol=1e-5, rtol=1e-5)


def test_only_the_exact_causal_mask_takes_the_causal_kernel():
    from tinyformers.model.attention import is_plain_causal

    assert is_plain_causal(causal_mask(5), 5, 5)
    almost = causal_mask(5).clone()
    almost[3, 1] = False
    assert not is_plain_causal(almost, 5, 5)
    assert not is_plain_causal(causal_mask(5)[None, None], 5, 5)
    assert not is_plain_causal(causal_mask(5), 5, 6)
    q, k, v = random_qkv(t_q=5, t_k=5, seed=4)
    out, _ = attention(q, k, v, almost)
    torch.testing.assert_close(fast_attention(q, k, v, almost), out, atol=1e-5, rtol=1e-5)
