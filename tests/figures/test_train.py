"""Training figures: the data they draw equals the data given, and every user string is
escaped."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.plotly_json import figure_trace
from tinyformers.course.train import attention_timeline, head_scores
from tinyformers.figures import train as figs
from tinyformers.training.loop import Progress, TrainSettings

EVIL = "</script><img src=x onerror=alert(1)>"


def history() -> list[Progress]:
    steps = range(10, 110, 10)
    return [
        Progress(s, 4.0 - s / 50, 4.1 - s / 50 if s % 50 == 0 else None, 1e-3, 1000.0 + s, s / 10)
        for s in steps
    ]


def test_loss_figure_draws_both_losses_at_their_steps() -> None:
    data = history()
    fig = figs.loss_figure(data, 300)
    train, val = figure_trace(fig, "training batch"), figure_trace(fig, "validation")
    assert list(train.x) == [p.step for p in data]
    assert list(train.y) == [p.train_loss for p in data]
    assert list(val.x) == [50, 100]
    assert list(val.y) == [p.val_loss for p in data if p.val_loss is not None]
    assert tuple(fig.layout.xaxis.range) == (0, 300)
    assert not fig.layout.shapes


def test_loss_figure_with_an_earlier_attempt_and_the_even_guess() -> None:
    earlier = history()[:3]
    fig = figs.loss_figure(history(), 100, earlier, even_guess=float(np.log(51)))
    grey = figure_trace(fig, "training (earlier attempt)")
    assert list(grey.y) == [p.train_loss for p in earlier]
    assert fig.layout.shapes[0].y0 == pytest.approx(np.log(51))
    with pytest.raises(ValueError, match="total_steps"):
        figs.loss_figure(history(), 0)


def test_throughput_figure() -> None:
    data = history()
    fig = figs.throughput_figure(data)
    assert list(fig.data[0].y) == [p.tokens_per_s for p in data]


def test_learning_rate_figure_follows_the_schedule() -> None:
    settings = TrainSettings(max_steps=1000, warmup_steps=50, learning_rate=3e-3)
    fig = figs.learning_rate_figure(settings, 300)
    planned, done = figure_trace(fig, "planned"), figure_trace(fig, "so far")
    for x, y in zip(planned.x, planned.y, strict=True):
        assert y == pytest.approx(settings.lr_at(x))
    assert max(planned.y) == pytest.approx(3e-3)  # the peak, right after warm-up
    assert 50 in planned.x and 999 in planned.x
    assert max(done.x) == 300 and set(done.x) <= set(planned.x)
    assert figs.learning_rate_figure(settings, 1000).data[1].x[-1] == 999
    with pytest.raises(ValueError, match="step must be between"):
        figs.learning_rate_figure(settings, 1001)


def test_attention_snapshot_figure_draws_the_matrix_with_escaped_labels() -> None:
    tokens = ["a", " ", "\n", EVIL]
    weights = torch.rand(4, 4).softmax(-1)
    fig = figs.attention_snapshot_figure(weights, tokens, f"head {EVIL}")
    np.testing.assert_allclose(np.asarray(fig.data[0].z), weights.numpy(), rtol=1e-6)
    assert list(fig.data[0].x) == [
        "0: a",
        "1: ␣",
        "2: ⏎",
        "3: &lt;/script&gt;&lt;img␣src=x␣onerror=alert(1)&gt;",
    ]
    spec = fig.to_json()
    assert "<img" not in spec and "</script>" not in spec
    with pytest.raises(ValueError, match="expected a \\(4, 4\\) matrix"):
        figs.attention_snapshot_figure(torch.rand(3, 3), tokens, "x")


def test_head_score_figure_has_one_line_per_head() -> None:
    generator = torch.Generator().manual_seed(0)
    snapshots = [
        (step, [torch.rand(1, 3, 5, 5, generator=generator).softmax(-1) for _ in range(2)])
        for step in (0, 10, 20)
    ]
    timeline = attention_timeline(snapshots)
    fig = figs.head_score_figure(timeline, "previous", selected=(1, 2), uniform=0.2, total_steps=30)
    assert [t.name for t in fig.data] == [
        f"L{layer} H{head}" for layer in range(2) for head in range(3)
    ]
    chosen = figure_trace(fig, "L1 H2")
    assert chosen.line.width > figure_trace(fig, "L0 H0").line.width
    assert list(chosen.x) == [0, 10, 20]
    expected = [head_scores(a)["previous"][1, 2].item() for _, a in snapshots]
    np.testing.assert_allclose(chosen.y, expected, rtol=1e-6)
    assert fig.layout.shapes[0].y0 == 0.2
    assert tuple(fig.layout.xaxis.range) == (0, 30)
    with pytest.raises(ValueError, match="score must be one of"):
        figs.head_score_figure(timeline, "entropy")


def test_sample_html_escapes_the_sample_and_the_prompt() -> None:
    body = figs.sample_html(f"line one\n{EVIL}", f"Step {EVIL}", prompt="<b>")
    assert "<img" not in body and "</script>" not in body
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in body
    assert "<b>&lt;b&gt;</b>" in body
    assert "line one\n" in body and "white-space:pre-wrap" in body
    assert "<b>" not in figs.sample_html("plain", "heading")


def test_figures_serialise_to_json() -> None:
    data = history()
    for fig in (figs.loss_figure(data, 100), figs.throughput_figure(data)):
        json.loads(fig.to_json())
