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
    MethodUpdate,
    ZeroShotResult,
    make_task,
    parameter_arithmetic,
    runs_progress,
    task_checks,
)
from tinyformers.figures import fine_tuning as figs
from tinyformers.model.config import BertConfig
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


def test_methods_chart_beside_the_controls_is_a_shorter_copy() -> None:
    counts = {"full": (1000, 1000), "lora": (64, 1064)}
    figure = figs.methods_chart("bert-stories", counts)
    beside = figs.beside_controls(figure)
    assert beside.layout.height == figure.layout.height < 450  # two bars: lower already
    full = figs.methods_chart("bert-stories", dict.fromkeys(figs.METHODS, (10, 100)))
    assert figs.beside_controls(full).layout.height <= 450 < full.layout.height
    title = "Parameters each method trains in a classifier on bert-stories"
    assert figure.layout.title.text == title  # the original is left as it was
    assert beside.layout.title.text == title.replace(" classifier", "<br>classifier")
    assert list(beside.data[0].x) == [1000, 64]
    assert figs.methods_chart("bert-stories", {}) is None


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


ZERO = ZeroShotResult(
    pair_accuracy=0.9,
    pairs=20,
    pair_accuracy_by_kind={"verb": 0.8, "swap": 0.625},
    threshold=-3.0,
    threshold_train_accuracy=0.75,
    threshold_accuracy=0.7,
    few_shot_prompt="a . happy\nb . sad\n",
    few_shot_accuracy=0.5,
    few_shot_grammatical_share=0.4,
)


def test_zero_shot_rows_show_the_three_accuracies() -> None:
    rows = figs.zero_shot_rows(ZERO)
    assert [row["held-out accuracy"] for row in rows] == [0.9, 0.7, 0.5]
    assert "20 pairs" in rows[0]["approach"] and "2 labelled examples" in rows[2]["approach"]


# ---------------------------------------------------------------------------------------------
# What the page says
# ---------------------------------------------------------------------------------------------


def test_task_caption_counts_both_splits_and_the_parsers_verdicts() -> None:
    data = make_task(60, 40, seed=0)
    caption = figs.task_caption(data, task_checks(data))
    assert caption == (
        f"Training split: {figs.split_text(data.train)}. Held-out split: "
        f"{figs.split_text(data.held_out)}. The grammar's parser rejects 50 of the 50 negatives "
        "and accepts 50 of the 50 positives; the two splits share 0 source sentences."
    )


CONFIG = BertConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32)


def test_plan_caption_shows_the_share_and_the_worked_out_sum() -> None:
    lora = MethodSettings(method="lora", lora_rank=2)
    count, sum_text = parameter_arithmetic(lora, CONFIG)
    caption = figs.plan_caption("bert-x", lora, (count, 4 * count), CONFIG)
    assert caption == (
        f"LoRA on bert-x trains {count:,} of the classifier's {4 * count:,} parameters "
        f"(25.00%). Worked out: {sum_text}."
    )
    full = figs.plan_caption("bert-x", MethodSettings(method="full"), (1234, 1234), CONFIG)
    assert (
        full
        == "Full fine-tuning on bert-x trains 1,234 of the classifier's 1,234 parameters (100.00%)."
    )


def test_progress_bar_counts_finished_runs_and_the_current_step(results) -> None:
    def step(n: int) -> Progress:
        return Progress(n, 0.7, None, 1e-3, 100.0, n / 10)

    labels = ["Full fine-tuning", "LoRA", "Adapters"]
    updates = [
        MethodUpdate("Full fine-tuning", step(10)),
        results[0],
        MethodUpdate("LoRA", step(4)),
    ]
    progress = runs_progress(updates)
    fraction, text = figs.progress_bar(progress, "bert-stories", labels, 10, 3.25)
    assert fraction == pytest.approx((1 + 4 / 10) / 3)
    assert text == "LoRA on bert-stories: step 4 of 10 (run 2 of 3); 3.2 s so far"
    assert figs.progress_bar(runs_progress([]), "bert-stories", labels, 10, 0.0) is None
    assert figs.stopped_text(progress, 3) == (
        "Stopped after 1 of 3 runs; finished runs are in the table."
    )
    assert figs.finished_text(progress, 61.25) == "Finished 1 run(s) in 61.2 s."


def test_texts_about_runs_name_them_by_number(results) -> None:
    speed = figs.speed_text(results)
    assert speed == (
        "Median time per training step: fastest 3. Head only (linear probe) (4.5 ms), slowest "
        "1. Full fine-tuning (20.0 ms). Step time relative to 1. Full fine-tuning: 2. LoRA "
        "0.57×, 3. Head only (linear probe) 0.23×."
    )
    assert figs.speed_text(results[1:2]) == "Median time per training step: 11.5 ms."
    memory = figs.memory_text(results)
    # 8 bytes × trainable + 4 bytes × 2 tensors: 8008 and 88 match, 520 does not (8 · 64 + 8)
    assert "equals the measured state in 3 of 3 runs." in memory
    assert memory.endswith(
        "1. Full fine-tuning keeps 91 times as much as 3. Head only (linear probe)."
    )
    assert figs.lora_merge_text(results) == ""
    results[1].merge_difference, results[1].merged_parameters = 2.5e-7, 1000
    assert figs.lora_merge_text(results) == (
        "Merging LoRA into the weights, W + (α/r)·BA: for 2. LoRA, the held-out logits changed "
        "by at most 2.5e-07, and the merged model has 1,000 parameters (with LoRA: 1,064)."
    )
    assert figs.early_stops(results) == []
    results[2].stop_reason = "loss exploded"
    assert figs.early_stops(results) == [
        "Run 3. Head only (linear probe) stopped early: loss exploded"
    ]


def test_accuracy_columns_are_every_column_but_the_run() -> None:
    rows = [{"run": "1", "real sentences": 0.9}, {"run": "2", "verb": 0.5, "real sentences": 1.0}]
    assert figs.accuracy_columns(rows) == ("real sentences", "verb")


def test_zero_shot_texts() -> None:
    data = make_task(60, 40, seed=0)
    assert figs.scoring_text(data) == "Scoring 180 sentences…"
    assert figs.zero_shot_caption(ZERO) == (
        "Minimal pairs by corruption: main verb in the wrong number 80.0%, two neighbouring "
        "words swapped 62.5%. Threshold: a mean log-probability per token above -3.000 counts "
        "as grammatical (75.0% right on the training split it was chosen on)."
    )
    assert figs.few_shot_caption(ZERO, data) == (
        "With this prompt the model answered grammatical for 40.0% of the held-out sentences; "
        "50.0% of them are grammatical."
    )
