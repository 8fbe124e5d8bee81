"""The cost of attention: sequence lengths, the computed sizes against real tensors, the
profiler's allocation accounting against known allocations, a small live measurement (only
"positive" is asserted about times), the slope fit on exact data, and bad settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tinyformers.course.scaling import (
    COST_PARTS,
    KINDS,
    CostPoint,
    CostResult,
    CostSettings,
    CostUpdate,
    crossover_length,
    half_time_length,
    measure_cost,
    mlp_hidden_bytes,
    multiply_adds,
    peak_allocated_bytes,
    predict_doubled_score_memory,
    predict_largest_cost,
    score_matrix_bytes,
    sequence_lengths,
)
from tinyformers.model.attention import MultiHeadAttention
from tinyformers.model.blocks import MLP
from tinyformers.model.config import GPTConfig


def test_lengths_step_evenly_on_a_log_axis() -> None:
    assert sequence_lengths(32, 1024) == [32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]
    assert sequence_lengths(32, 1000) == [32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1000]
    assert sequence_lengths(40, 100) == [40, 48, 64, 96, 100]
    assert CostSettings(max_length=2048).lengths[-1] == 2048


@pytest.mark.parametrize("n,n_head,batch", [(1, 1, 1), (7, 2, 1), (50, 4, 3), (129, 8, 2)])
def test_computed_matrix_size_is_the_size_of_the_weights_the_layer_returns(n, n_head, batch):
    torch.manual_seed(0)
    attention = MultiHeadAttention(32, n_head)
    _, weights = attention(torch.randn(batch, n, 32), need_weights=True)
    assert weights.shape == (batch, n_head, n, n)
    assert score_matrix_bytes(n, n_head, batch) == weights.numel() * weights.element_size()


def test_computed_mlp_activation_is_the_size_of_the_widened_tensor() -> None:
    mlp = MLP(GPTConfig(vocab_size=1, n_embd=24, n_head=2))
    hidden = mlp.c_fc(torch.randn(2, 37, 24))
    assert mlp_hidden_bytes(37, 96, batch=2) == hidden.numel() * hidden.element_size()


@pytest.mark.parametrize("n_embd", [16, 64, 128, 500])
def test_attention_matches_the_mlp_at_the_crossover(n_embd) -> None:
    n = int(crossover_length(n_embd, 4 * n_embd))
    assert n == 2 * n_embd
    counts = multiply_adds(n, n_embd, 4 * n_embd)
    attention = counts["attention projections"] + counts["attention scores and weighted sum"]
    assert attention == counts["MLP"]
    longer = multiply_adds(2 * n, n_embd, 4 * n_embd)
    assert (
        longer["attention scores and weighted sum"]
        == 4 * counts["attention scores and weighted sum"]
    )
    assert longer["MLP"] == 2 * counts["MLP"]


def test_peak_memory_accounting_follows_known_allocations() -> None:
    assert peak_allocated_bytes(lambda: torch.empty(1000, 1000)) == 4_000_000

    def both_alive():
        first = torch.empty(1000)
        second = torch.empty(2000)
        return first, second

    def one_after_the_other():
        torch.empty(1000)
        torch.empty(2000)

    assert peak_allocated_bytes(both_alive) == 12_000
    assert peak_allocated_bytes(one_after_the_other) == 8_000


@pytest.fixture(scope="module")
def measured() -> tuple[CostResult, list]:
    updates = []
    settings = CostSettings(
        max_length=512, min_length=128, n_embd=32, n_head=2, repeats=2, backward=True
    )
    result = measure_cost(settings, report=lambda u: updates.append(u) is None)
    return result, updates


def test_measurement_covers_every_length_with_positive_times(measured) -> None:
    result, updates = measured
    assert result.lengths == [128, 192, 256, 384, 512] and not result.stopped
    assert [u.done for u in updates] == [1, 2, 3, 4, 5]
    assert all(isinstance(u, CostUpdate) and u.total == 5 for u in updates)
    for point in result.points:
        assert all(point.seconds[kind] > 0 for kind in KINDS)
        assert all(point.backward_seconds[kind] > 0 for kind in KINDS)
        assert point.score_bytes == score_matrix_bytes(point.n, 2)
        assert point.mlp_bytes == mlp_hidden_bytes(point.n, 128)
        assert 0 < point.attention_share() < 1


def test_measured_peaks_hold_the_n_by_n_matrices_only_without_the_fused_kernel(measured):
    result, _ = measured
    for point in result.points:
        # scores and softmax weights are alive together in the written-out attention
        assert point.peak_bytes["attention"] >= 2 * point.score_bytes
        assert point.peak_bytes["mlp"] >= point.mlp_bytes
    last = result.points[-1]
    assert last.peak_bytes["fused"] < last.score_bytes


def test_slopes_are_fitted_on_the_measured_longer_half(measured) -> None:
    result, _ = measured
    assert result.fitted_lengths() == [256, 384, 512]
    for kind in KINDS:
        fit = result.slope(kind)
        assert fit.n_points == 3
        times = [p.seconds[kind] for p in result.points[2:]]
        slope, _ = np.polyfit(np.log([256, 384, 512]), np.log(times), 1)
        assert fit.exponent == pytest.approx(slope)
    assert result.slope("attention", backward=True).n_points == 3


def synthetic_result(lengths: list[int]) -> CostResult:
    """Times exactly 1e-9 n² for attention, 1e-8 n for the MLP, 3e-10 n² for the fused path."""
    points = tuple(
        CostPoint(
            n=n,
            seconds={"attention": 1e-9 * n * n, "fused": 3e-10 * n * n, "mlp": 1e-8 * n},
            backward_seconds=None,
            peak_bytes=None,
            score_bytes=score_matrix_bytes(n, 4),
            mlp_bytes=mlp_hidden_bytes(n, 512),
        )
        for n in lengths
    )
    return CostResult(CostSettings(), points, stopped=False)


def test_slope_of_exact_power_laws() -> None:
    result = synthetic_result(sequence_lengths(32, 1024))
    assert result.fitted_lengths() == [192, 256, 384, 512, 768, 1024]
    assert result.slope("attention").exponent == pytest.approx(2.0, abs=1e-12)
    assert result.slope("fused").prefactor == pytest.approx(3e-10, rel=1e-9)
    assert result.slope("mlp").exponent == pytest.approx(1.0, abs=1e-12)
    assert result.points[0].attention_share() == pytest.approx(32e-9 / (32e-9 + 1e-8))
    with pytest.raises(ValueError, match="kind must be one of"):
        result.slope("softmax")
    with pytest.raises(ValueError, match="forward \\+ backward was not measured"):
        result.slope("attention", backward=True)


def test_a_stop_request_ends_the_measurement_early() -> None:
    settings = CostSettings(max_length=256, n_embd=16, n_head=1, repeats=1, memory=False)
    result = measure_cost(settings, report=lambda update: update.done < 2)
    assert result.stopped and result.lengths == [32, 48]
    assert all(p.peak_bytes is None for p in result.points)


@pytest.mark.parametrize(
    "changes,message",
    [
        (dict(max_length=10**6), "longest sequence length must be a whole number from 8 to 2048"),
        (dict(max_length=0), "longest sequence length must be a whole number"),
        (dict(max_length=48), "at least 3 lengths"),
        (dict(min_length=512, max_length=256), "shorter than the shortest"),
        (dict(n_embd=0), "width must be a whole number from 16 to 512"),
        (dict(n_embd=10**6), "width must be a whole number from 16 to 512"),
        (dict(n_embd=100, n_head=8), "divisible by the number of heads"),
        (dict(n_head=0), "number of heads"),
        (dict(repeats=0), "number of repeats"),
        (dict(max_length=1024.5), "longest sequence length must be a whole number"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        CostSettings(**changes)


def share_result(shares: list[float]) -> CostResult:
    """A result whose attention takes ``shares`` of the attention + MLP time, n = 32, 48, …"""
    settings = CostSettings(max_length=1024, memory=False)
    points = tuple(
        CostPoint(
            n=n,
            seconds={"attention": share, "fused": share / 2, "mlp": 1 - share},
            backward_seconds=None,
            peak_bytes=None,
            score_bytes=score_matrix_bytes(n, settings.n_head),
            mlp_bytes=mlp_hidden_bytes(n, settings.mlp_width),
        )
        for n, share in zip(settings.lengths, shares, strict=False)
    )
    return CostResult(settings, points, stopped=False)


def test_half_time_length_is_the_first_length_where_attention_takes_half() -> None:
    result = share_result([0.2, 0.4, 0.5, 0.45, 0.7])
    assert [round(p.attention_share(), 6) for p in result.points] == [0.2, 0.4, 0.5, 0.45, 0.7]
    assert half_time_length(result) == 64
    assert half_time_length(share_result([0.1, 0.2, 0.49])) is None


# ---------------------------------------------------------------------------------------------
# Predict, then reveal: the attention settings, before anything is timed
# ---------------------------------------------------------------------------------------------


def test_doubled_score_memory_by_hand():
    prediction = predict_doubled_score_memory(CostSettings(max_length=1024, n_embd=128, n_head=4))
    # 4 heads × 1,024 × 1,024 float32 numbers = 16 MiB; at 2,048, four times that
    assert prediction.values == {"heads": 4, "n": 1024, "now": "16.00", "doubled_n": 2048}
    reveal = prediction.reveal()
    assert reveal.answer == 64.0 and reveal.values["ratio"] == "4"


def test_doubled_score_memory_is_what_the_layer_materialises():
    settings = CostSettings(max_length=64, n_embd=32, n_head=2)
    layer = MultiHeadAttention(32, 2)
    with torch.no_grad():
        _, weights = layer(torch.randn(1, 128, 32), need_weights=True)  # (1, 2, 128, 128)
    measured = weights.numel() * weights.element_size() / 2**20
    assert predict_doubled_score_memory(settings).reveal().answer == measured


@pytest.mark.parametrize(
    ("n", "width", "largest"),
    [
        (1024, 128, "attention scores and weighted sum"),  # 2n²C = 2.7e8 > 8nC² = 1.3e8
        (64, 128, "MLP"),  # 8nC² = 8.4e6 > 4nC² = 4.2e6 > 2n²C = 1.0e6
        (256, 128, "MLP"),  # n = 2C: attention as a whole ties the MLP, the MLP alone is largest
        (2048, 16, "attention scores and weighted sum"),
    ],
)
def test_largest_cost_by_hand(n, width, largest):
    prediction = predict_largest_cost(CostSettings(max_length=n, n_embd=width, n_head=4))
    assert prediction.choices == tuple(COST_PARTS.values())
    reveal = prediction.reveal()
    assert reveal.answer == COST_PARTS[largest]
    assert reveal.values["crossover"] == str(2 * width)
