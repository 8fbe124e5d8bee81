"""Figures of the fine-tuning lesson draw exactly the measurements they are given, in order,
and escape every piece of text."""

from __future__ import annotations

import html

import numpy as np
import pytest

from tinyformers.course.fine_tuning import (
    GRAMMATICAL,
    UNGRAMMATICAL,
    Example,
    MethodResult,
    MethodSettings,
    ZeroShotResult,
    make_task,
)
from tinyformers.figures import fine_tuning as figs
from tinyformers.training.loop import Progress

ATTACK = "</script><img src=x onerror=alert(1)>"


def result(method: str, trainable: int, accuracy: float, steps: list[float], state: int, **kw):
    return MethodResult(
        model_name=kw.get("model", "bert-stories"),
        settings=MethodSettings(method=method, steps=len(steps)),
        trainable=trainable,
        total=kw.get("total", 1000),
        held_out_accuracy=accuracy,
        accuracy_by_kind={"original": 0.9, "verb": 0.5},
        step_seconds=steps,
        optimizer_state_bytes=state,
        optimizer_tensors=2,
        task=kw.get("task", "60 / 40, verb, seed 0"),
    )


@pytest.fixture
def results() -> list[MethodResult]:
    return [
        result("full", 1000, 0.85, [0.03, 0.01, 0.02], 8008),
        result("lora", 64, 0.8, [0.012, 0.014, 0.01, 0.011], 520, total=1064),
        result("head", 10, 0.7, [0.004, 0.005], 88),
    ]


def test_rows_hold_each_runs_measurements(results) -> None:
    rows = figs.result_rows(results)
    assert [row["run"] for row in rows] == [
        "1. Full fine-tuning",
        "2. LoRA",
        "3. Head only (linear probe)",
    ]
    lora = rows[1]
    assert lora["trainable parameters"] == 64
    assert lora["% trainable"] == round(100 * 64 / 1064, 3)
    assert lora["held-out accuracy"] == 0.8
    assert lora["ms per step (median)"] == round(1000 * 0.0115, 2)
    assert lora["optimizer state (KB)"] == round(520 / 1024, 1)
    assert lora["steps"] == 4
    assert lora["learning rate"] == MethodSettings(method="lora").lr
    assert lora["settings"] == "r = 4, α = 8 on q_proj, v_proj"
    assert lora["task (train / held-out, corruptions, seed)"] == "60 / 40, verb, seed 0"
    assert rows[0]["ms per step (median)"] == 20.0


def test_kind_rows_name_each_kind(results) -> None:
    rows = figs.kind_rows(results)
    assert rows[0] == {
        "run": "1. Full fine-tuning",
        "real sentences": 0.9,
        "verb number flipped": 0.5,
    }


def test_results_chart_draws_the_four_measurements(results) -> None:
    figure = figs.results_chart(results, "title <b>")
    assert figure.layout.title.text == html.escape("title <b>")
    bars = figure.data
    assert len(bars) == 4
    names = list(bars[0].y)
    assert names == [html.escape(n) for n in figs.run_names(results)]
    np.testing.assert_allclose(bars[0].x, [1000, 64, 10])
    np.testing.assert_allclose(bars[1].x, [0.85, 0.8, 0.7])
    np.testing.assert_allclose(bars[2].x, [20.0, 11.5, 4.5])
    np.testing.assert_allclose(bars[3].x, [8008 / 1024, 520 / 1024, 88 / 1024])
    assert [bar.marker.color for bar in bars][0] == tuple(
        figs.METHOD_COLORS[m] for m in ("full", "lora", "head")
    )
    titles = [a.text for a in figure.layout.annotations]
    assert titles == [
        "trainable parameters",
        "held-out accuracy",
        "median time per step (ms)",
        "optimizer state (KB)",
    ]
    assert figure.layout.xaxis.type == "log" and figure.layout.xaxis4.type == "log"


def test_results_chart_needs_runs() -> None:
    with pytest.raises(ValueError, match="no runs"):
        figs.results_chart([], "t")


def test_plan_chart_draws_each_methods_trainable_count() -> None:
    figure = figs.plan_chart({"full": (1000, 1000), "lora": (64, 1064)}, ATTACK)
    (bar,) = figure.data
    assert list(bar.x) == [1000, 64]
    assert list(bar.y) == ["Full fine-tuning", "LoRA"]
    assert list(bar.text) == ["1,000 (100.00%)", "64 (6.02%)"]
    assert figure.layout.title.text == html.escape(ATTACK) and figure.layout.xaxis.type == "log"
    with pytest.raises(ValueError, match="no methods"):
        figs.plan_chart({}, "t")


def test_loss_chart_has_a_training_line_and_held_out_markers_per_run() -> None:
    history = [Progress(s, 1.0 / s, 0.9 if s == 3 else None, 1e-3, 1.0, 0.1) for s in (1, 2, 3)]
    figure = figs.loss_chart({"1. LoRA": history, ATTACK: history[:1]}, ATTACK, max_steps=3)
    assert figure.layout.title.text == html.escape(ATTACK)
    train, held, *_ = figure.data
    assert list(train.x) == [1, 2, 3] and list(train.y) == [1.0, 0.5, 1.0 / 3]
    assert list(held.x) == [3] and list(held.y) == [0.9]
    assert train.line.color == figs.METHOD_COLORS["lora"]
    assert figure.data[2].name == html.escape(ATTACK)
    assert list(figure.layout.xaxis.range) == [0, 3]


def test_examples_html_escapes_and_labels() -> None:
    examples = [
        Example(ATTACK, UNGRAMMATICAL, "swap", "the <b>dog</b> runs ."),
        Example("the dog runs .", GRAMMATICAL, "original", "the dog runs ."),
    ]
    body = figs.examples_html(examples)
    assert ATTACK not in body and html.escape(ATTACK) in body
    assert "<b>dog" not in body and html.escape("the <b>dog</b> runs .") in body
    assert body.count("<tr style") == 2
    assert "ungrammatical" in body and "two neighbouring words swapped" in body


def test_split_counts_and_text_add_up() -> None:
    data = make_task(60, 40, seed=0)
    counts = figs.split_counts(data.train)
    assert counts == {"original": 30, "verb": 10, "drop": 10, "swap": 10}
    assert figs.split_text(data.train) == (
        "30 real sentences and 30 corrupted (10 verb number flipped, 10 word left out, "
        "10 words swapped)"
    )


def test_zero_shot_rows_show_the_three_accuracies() -> None:
    zero = ZeroShotResult(
        pair_accuracy=0.9,
        pairs=20,
        pair_accuracy_by_kind={"verb": 0.8},
        threshold=-3.0,
        threshold_train_accuracy=0.75,
        threshold_accuracy=0.7,
        few_shot_prompt="a . happy\nb . sad\n",
        few_shot_accuracy=0.5,
        few_shot_grammatical_share=0.4,
    )
    rows = figs.zero_shot_rows(zero)
    assert [row["held-out accuracy"] for row in rows] == [0.9, 0.7, 0.5]
    assert "20 pairs" in rows[0]["approach"] and "2 labelled examples" in rows[2]["approach"]
