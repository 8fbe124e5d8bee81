"""Positional encodings against their closed forms, and the properties that make them useful."""

import cmath
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tinyformers.model.positional import (
    SinusoidalPositions,
    apply_rotary,
    cosine_similarity_matrix,
    position_embedding,
    rotary_angles,
    sinusoidal_encoding,
)


def closed_form_pe(pos: int, dim: int, d_model: int, base: float = 10000.0) -> float:
    """PE[pos, 2i] = sin(pos / base^(2i/d)), PE[pos, 2i+1] = cos(pos / base^(2i/d))."""
    two_i = dim - dim % 2
    angle = pos / base ** (two_i / d_model)
    return math.sin(angle) if dim % 2 == 0 else math.cos(angle)


@pytest.mark.parametrize("d_model", [1, 2, 7, 8, 33])
def test_sinusoidal_matches_closed_form(d_model):
    pe = sinusoidal_encoding(50, d_model)
    assert pe.shape == (50, d_model)
    assert pe.dtype == torch.float32
    for pos in (0, 1, 5, 49):
        for dim in range(d_model):
            expected = closed_form_pe(pos, dim, d_model)
            assert pe[pos, dim].item() == pytest.approx(expected, abs=1e-6), (pos, dim)


def test_sinusoidal_custom_base():
    pe = sinusoidal_encoding(4, 6, base=100.0)
    assert pe[3, 2].item() == pytest.approx(math.sin(3 / 100.0 ** (2 / 6)), abs=1e-6)
    assert pe[3, 3].item() == pytest.approx(math.cos(3 / 100.0 ** (2 / 6)), abs=1e-6)


@pytest.mark.parametrize("length, d_model", [(-1, 4), (4, 0)])
def test_sinusoidal_rejects_bad_sizes(length, d_model):
    with pytest.raises(ValueError, match="need length >= 0 and d_model >= 1"):
        sinusoidal_encoding(length, d_model)


def test_sinusoidal_module_looks_up_the_table_and_has_no_parameters():
    module = SinusoidalPositions(block_size=10, n_embd=6)
    pos = torch.tensor([0, 3, 9])
    assert torch.equal(module(pos), sinusoidal_encoding(10, 6)[pos])
    assert list(module.parameters()) == []
    assert "table" not in module.state_dict()  # recomputed, never saved


def test_rotary_angles_closed_form():
    cos, sin = rotary_angles(6, 8)
    assert cos.shape == sin.shape == (6, 4)
    for m in range(6):
        for i in range(4):
            angle = m * 10000.0 ** (-2 * i / 8)
            assert cos[m, i].item() == pytest.approx(math.cos(angle), abs=1e-6)
            assert sin[m, i].item() == pytest.approx(math.sin(angle), abs=1e-6)


def test_rotary_rejects_odd_head_size():
    with pytest.raises(ValueError, match="even head size, got 5"):
        rotary_angles(4, 5)


def test_apply_rotary_matches_complex_multiplication():
    """RoPE turns feature pair (x_2i, x_2i+1), read as x_2i + i·x_2i+1, by e^(i·m·θ_i)."""
    hs, length = 6, 5
    x = torch.randn(length, hs, generator=torch.Generator().manual_seed(0))
    rotated = apply_rotary(x, *rotary_angles(length, hs))
    for m in range(length):
        for i in range(hs // 2):
            theta = 10000.0 ** (-2 * i / hs)
            z = complex(x[m, 2 * i].item(), x[m, 2 * i + 1].item()) * cmath.exp(1j * m * theta)
            assert rotated[m, 2 * i].item() == pytest.approx(z.real, abs=1e-5)
            assert rotated[m, 2 * i + 1].item() == pytest.approx(z.imag, abs=1e-5)


def test_rotary_dot_product_depends_only_on_relative_offset():
    hs, length = 8, 12
    gen = torch.Generator().manual_seed(1)
    q, k = torch.randn(hs, generator=gen), torch.randn(hs, generator=gen)
    cos, sin = rotary_angles(length, hs)
    rotated_q = apply_rotary(q.expand(length, hs), cos, sin)  # q placed at every position
    rotated_k = apply_rotary(k.expand(length, hs), cos, sin)
    scores = rotated_q @ rotated_k.T  # scores[m, n] = <q at m, k at n>
    for m in range(length - 3):
        for n in range(length - 3):
            for shift in (1, 3):
                assert scores[m + shift, n + shift].item() == pytest.approx(
                    scores[m, n].item(), abs=1e-4
                )
    assert not torch.allclose(scores[0, 0], scores[3, 0])  # the offset does matter


def test_rotary_at_position_zero_is_identity_and_norms_are_kept():
    x = torch.randn(2, 3, 10, 8, generator=torch.Generator().manual_seed(2))
    rotated = apply_rotary(x, *rotary_angles(10, 8))
    assert rotated.shape == x.shape
    torch.testing.assert_close(rotated[..., 0, :], x[..., 0, :])
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1))
    assert not torch.allclose(rotated[..., 1:, :], x[..., 1:, :])


def test_cosine_similarity_matrix():
    vectors = torch.randn(7, 5, generator=torch.Generator().manual_seed(3))
    sim = cosine_similarity_matrix(vectors)
    assert sim.shape == (7, 7)
    torch.testing.assert_close(sim.diagonal(), torch.ones(7))
    expected = F.cosine_similarity(vectors[:, None, :], vectors[None, :, :], dim=-1)
    torch.testing.assert_close(sim, expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(sim, sim.T)


def test_cosine_similarity_matrix_of_a_zero_vector_is_finite():
    sim = cosine_similarity_matrix(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    assert torch.isfinite(sim).all()


def test_position_embedding_kinds():
    learned = position_embedding("learned", 16, 8)
    assert isinstance(learned, nn.Embedding)
    assert learned.weight.shape == (16, 8) and learned.weight.requires_grad
    sinusoidal = position_embedding("sinusoidal", 16, 8)
    assert isinstance(sinusoidal, SinusoidalPositions)
    assert torch.equal(sinusoidal(torch.arange(16)), sinusoidal_encoding(16, 8))
    assert position_embedding("rotary", 16, 8) is None
    assert position_embedding("none", 16, 8) is None
