"""Head scores over training, and the time-left estimate: checked against loops written out by
hand and against attention whose scores are known exactly."""

from __future__ import annotations

import math

import pytest
import torch

from tinyformers.course.train import (
    MIN_SNAPSHOT_INTERVAL,
    SCORES,
    attention_timeline,
    format_duration,
    head_scores,
    snapshot_at,
    snapshot_interval,
    steps_per_second,
    time_left,
    uniform_scores,
)
from tinyformers.training.loop import Progress


def random_attention(n_layer: int, n_head: int, t: int, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    mask = torch.tril(torch.ones(t, t, dtype=torch.bool))
    layers = []
    for _ in range(n_layer):
        scores = torch.randn(1, n_head, t, t, generator=generator)
        layers.append(scores.masked_fill(~mask, float("-inf")).softmax(-1))
    return layers


def loop_scores(attentions: list[torch.Tensor]) -> dict[str, list[list[float]]]:
    """The three scores written out with loops over layers, heads and query rows 1 … T−1."""
    out = {name: [] for name in SCORES}
    for weights in attentions:
        t = weights.shape[-1]
        for name in SCORES:
            row = []
            for head in range(weights.shape[1]):
                matrix = weights[0, head]
                picks = {
                    "previous": [matrix[i, i - 1] for i in range(1, t)],
                    "first": [matrix[i, 0] for i in range(1, t)],
                    "self": [matrix[i, i] for i in range(1, t)],
                }[name]
                row.append(float(sum(picks)) / (t - 1))
            out[name].append(row)
    return out


def test_scores_equal_a_loop_over_rows() -> None:
    attentions = random_attention(n_layer=3, n_head=4, t=9)
    scores = head_scores(attentions)
    expected = loop_scores(attentions)
    for name in SCORES:
        assert scores[name].shape == (3, 4)
        torch.testing.assert_close(scores[name], torch.tensor(expected[name]))


def test_a_perfect_previous_token_head() -> None:
    t = 6
    weights = torch.zeros(1, 1, t, t)
    weights[0, 0, 0, 0] = 1.0
    for i in range(1, t):
        weights[0, 0, i, i - 1] = 1.0
    scores = head_scores([weights])
    assert scores["previous"].item() == pytest.approx(1.0)
    assert scores["first"].item() == pytest.approx(1 / (t - 1))  # only row 1 looks at token 0
    assert scores["self"].item() == pytest.approx(0.0)


@pytest.mark.parametrize("causal", [True, False])
def test_even_attention_scores_what_uniform_scores_says(causal: bool) -> None:
    t = 7
    visible = torch.tril(torch.ones(t, t)) if causal else torch.ones(t, t)
    weights = (visible / visible.sum(-1, keepdim=True))[None, None]  # (1, 1, T, T)
    scores = head_scores([weights])
    expected = uniform_scores(t, causal)
    for name in SCORES:
        assert scores[name].item() == pytest.approx(expected[name])
    if not causal:
        assert expected["previous"] == pytest.approx(1 / t)


@pytest.mark.parametrize(
    "attentions,message",
    [
        ([], "at least one layer"),
        ([torch.ones(1, 2, 3, 4)], "shape \\(1, heads, T, T\\)"),
        ([torch.ones(2, 2, 3, 3)], "shape \\(1, heads, T, T\\)"),
        ([torch.ones(1, 2, 3, 3), torch.ones(1, 2, 4, 4)], "same shape"),
        ([torch.ones(1, 2, 1, 1)], "at least two tokens"),
    ],
)
def test_bad_snapshots_are_refused(attentions, message) -> None:
    with pytest.raises(ValueError, match=message):
        head_scores(attentions)


def test_uniform_scores_validate() -> None:
    with pytest.raises(ValueError, match="at least two tokens"):
        uniform_scores(1, causal=True)


def test_timeline_stacks_snapshots_and_finds_the_strongest_head() -> None:
    early = random_attention(2, 3, 8, seed=1)
    late = random_attention(2, 3, 8, seed=2)
    late[1][0, 2] = torch.diag(torch.ones(7), -1) + torch.eye(8) * torch.tensor(
        [1.0] + [0.0] * 7
    )  # layer 1, head 2 becomes a perfect previous-token head
    timeline = attention_timeline([(0, early), (50, late)])
    assert timeline.steps == (0, 50)
    assert (timeline.n_layer, timeline.n_head) == (2, 3)
    for name in SCORES:
        assert timeline.scores[name].shape == (2, 2, 3)
        torch.testing.assert_close(timeline.scores[name][0], head_scores(early)[name])
    assert timeline.strongest_head("previous") == (1, 2, pytest.approx(1.0))
    with pytest.raises(ValueError, match="score must be one of"):
        timeline.strongest_head("entropy")


def test_timeline_refuses_disorder_and_mixed_models() -> None:
    a, b = random_attention(1, 2, 5), random_attention(2, 2, 5)
    with pytest.raises(ValueError, match="training order"):
        attention_timeline([(20, a), (10, a)])
    with pytest.raises(ValueError, match="same model"):
        attention_timeline([(0, a), (10, b)])
    with pytest.raises(ValueError, match="at least one snapshot"):
        attention_timeline([])


def test_snapshot_at_picks_the_latest_taken_by_then() -> None:
    steps = [0, 10, 20, 27]
    assert [snapshot_at(steps, s) for s in (0, 9, 10, 15, 26, 27, 100)] == [0, 0, 1, 1, 2, 3, 3]
    assert snapshot_at([10, 20], 5) == 0
    with pytest.raises(ValueError, match="no snapshots"):
        snapshot_at([], 5)


def test_snapshot_interval() -> None:
    assert snapshot_interval(1500) == 100
    assert snapshot_interval(1000) == math.ceil(1000 / 15)
    assert snapshot_interval(30) == MIN_SNAPSHOT_INTERVAL
    assert snapshot_interval(1) == MIN_SNAPSHOT_INTERVAL
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="positive whole number"):
            snapshot_interval(bad)


def progress(step: int, elapsed: float) -> Progress:
    return Progress(step, 1.0, None, 1e-3, 1000.0, elapsed)


def test_time_left_at_a_steady_speed() -> None:
    history = [progress(10 * k, 2.0 * k) for k in range(1, 11)]  # 5 steps per second
    assert steps_per_second(history) == pytest.approx(5.0)
    assert time_left(history, 300) == pytest.approx((300 - 100) / 5)
    assert time_left(history, 300, budget_left_s=7.0) == pytest.approx(7.0)
    assert time_left(history, 300, budget_left_s=-1.0) == 0.0
    assert time_left(history, 100) == 0.0


def test_time_left_follows_the_recent_speed() -> None:
    slow = [progress(10 * k, 10.0 * k) for k in range(1, 6)]  # 1 step per second
    fast = [progress(50 + 10 * k, 50.0 + 1.0 * k) for k in range(1, 11)]  # 10 steps per second
    history = slow + fast
    assert steps_per_second(history) == pytest.approx(10.0)
    assert time_left(history, 250) == pytest.approx((250 - 150) / 10)


def test_time_left_is_unknown_before_any_step() -> None:
    assert steps_per_second([]) is None
    assert time_left([], 100) is None
    assert time_left([], 100, budget_left_s=30.0) == 30.0
    assert steps_per_second([progress(10, 4.0)]) == pytest.approx(2.5)


def test_format_duration() -> None:
    assert format_duration(None) == "–"
    assert format_duration(math.inf) == "–"
    assert format_duration(0.4) == "0s"
    assert format_duration(42.4) == "42s"
    assert format_duration(245) == "4m 05s"
    assert format_duration(-3) == "0s"
