"""The training loop's speed measurement: tokens per second counts training steps only."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tinyformers.text.corpora import lesson_corpus
from tinyformers.training import loop
from tinyformers.training.loop import TrainSettings, train
from tinyformers.training.runs import Run, RunSpec

STEP_S, EVALUATION_S, CALLBACK_S = 1.0, 1_000.0, 5_000.0


class Clock:
    """A clock that moves only when told: one second per training batch, much more for an
    evaluation or a callback, so any of them counted in a window shows in its speed."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TimedTask:
    """A task whose every training batch takes ``STEP_S`` on the clock."""

    def __init__(self, task, clock: Clock) -> None:
        self.task, self.clock = task, clock

    def batch(self, *args, **kwargs):
        self.clock.now += STEP_S
        return self.task.batch(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.task, name)


@pytest.mark.parametrize("eval_interval", [5, 0])
def test_tokens_per_second_leaves_out_evaluations_and_the_callback(
    monkeypatch, eval_interval: int
) -> None:
    settings = TrainSettings(
        max_steps=20, batch_size=4, learning_rate=1e-3, warmup_steps=2, eval_interval=eval_interval
    )
    spec = RunSpec(family="gpt", tokenizer="char", preset="nano", block_size=16, settings=settings)
    run = Run(spec, lesson_corpus()[:4_000])
    clock = Clock()
    real_evaluate = loop.evaluate

    def slow_evaluate(*args, **kwargs) -> float:
        clock.now += EVALUATION_S
        return real_evaluate(*args, **kwargs)

    def slow_callback(progress) -> None:
        clock.now += CALLBACK_S  # samples, snapshots, sending the update

    monkeypatch.setattr(loop, "time", SimpleNamespace(perf_counter=clock))
    monkeypatch.setattr(loop, "evaluate", slow_evaluate)
    state = train(
        run.model, TimedTask(run.task, clock), settings, callback=slow_callback, log_interval=5
    )
    tokens_per_step = settings.batch_size * spec.block_size
    assert len(state.history) == 4
    assert any(p.val_loss is not None for p in state.history)
    for progress in state.history:
        assert progress.tokens_per_s == pytest.approx(tokens_per_step / STEP_S)
