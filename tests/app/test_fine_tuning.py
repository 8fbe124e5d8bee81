"""Headless tests of the fine-tuning page: its task, plans, results table and chart show what the
core computes, runs made on the page fill the table, and bad settings get a clear message."""

from __future__ import annotations

import html
import statistics

import pytest
from streamlit.testing.v1 import AppTest

from tests.page_checks import caption, code_texts, english_leftovers, html_bodies, rerun
from tests.page_order import first_chart, index_after_header, is_subheader, strip_keys
from tests.plotly_json import chart, title
from tinyformers.course.fine_tuning import (
    METHODS,
    MethodResult,
    MethodSettings,
    make_task,
    parameter_arithmetic,
    prepare,
    zero_shot,
)
from tinyformers.figures import fine_tuning as figs
from tinyformers.hub.registry import load_shipped
from tinyformers.model import peft
from tinyformers.model.build import count_parameters

PAGE = "app_pages/fine_tuning.py"


def small(at: AppTest, steps: int = 10) -> AppTest:
    """A small task and short runs, so tests train in a second or two."""
    at.number_input(key="ft-n-train").set_value(40)
    at.number_input(key="ft-n-held-out").set_value(40)
    at.number_input(key="ft-steps").set_value(steps)
    return rerun(at)


def finish(at: AppTest) -> AppTest:
    job = at.session_state["ft-job"]
    job.join(600)
    assert job.status == "finished", (job.status, job.error_details)
    return rerun(at)


def table(at: AppTest, first_column: str = "run") -> list[dict]:
    frames = [d.value for d in at.dataframe if first_column in d.value.columns]
    assert frames, [list(d.value.columns) for d in at.dataframe]
    return frames[0].to_dict("records")


# ---------------------------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------------------------


def test_default_task_is_described_by_computed_counts(page) -> None:
    data = make_task(800, 400, 0)
    text = caption(page, "Training split")
    assert figs.split_text(data.train) in text and figs.split_text(data.held_out) in text
    assert "rejects 600 of the 600 negatives and accepts 600 of the 600 positives" in text
    assert "share 0 source sentences" in text
    body = next(body for body in html_bodies(page) if "made from" in body)
    assert body == figs.examples_html(data.train[:8])


def test_default_plan_counts_the_parameters_of_full_fine_tuning(page) -> None:
    loaded = load_shipped("bert-stories")
    total = count_parameters(prepare(loaded.model, MethodSettings(method="full")))
    assert caption(page, "Full fine-tuning on bert-stories") == (
        f"Full fine-tuning on bert-stories trains {total:,} of the classifier's {total:,} "
        "parameters (100.00%)."
    )
    assert any("No runs yet" in info.value for info in page.info)


def test_the_page_opens_on_the_run_controls_beside_what_each_method_trains(fresh) -> None:
    at = fresh
    assert strip_keys(at) == ["ft-model", "ft-method", "ft-steps"]
    assert [b.key for b in at.button][:2] == ["ft-train-one", "ft-train-all"]
    assert index_after_header(at, is_subheader) == 1  # the prose comes after the strip
    first = first_chart(at)
    assert title(first) == "Parameters each method trains in a<br>classifier on bert-stories"
    assert first["layout"]["height"] <= 450
    at.selectbox(key="ft-model").set_value("gpt-stories")
    at.selectbox(key="ft-method").set_value("lora")
    at.number_input(key="ft-rank").set_value(8).run()
    first = first_chart(at)
    assert title(first).replace("<br>", " ").endswith("classifier on gpt-stories")
    loaded = load_shipped("gpt-stories")
    lora = MethodSettings(method="lora", lora_rank=8, pooling="mean")
    assert first["data"][0]["x"][list(METHODS).index("lora")] == peft.count_trainable(
        prepare(loaded.model, lora)
    )
    assert at.button(key="ft-train-one").label == "Train: LoRA"


def test_default_plan_chart_counts_every_method(page) -> None:
    loaded = load_shipped("bert-stories")
    spec = chart(page, "Parameters each method trains")
    expected = []
    for method in METHODS:
        classifier = prepare(loaded.model, MethodSettings(method=method))
        expected.append(peft.count_trainable(classifier))
    assert spec["data"][0]["x"] == expected
    assert spec["data"][0]["y"] == list(METHODS.values())


@pytest.mark.parametrize("method", ["lora", "adapters", "prefix", "head", "bitfit"])
def test_plan_caption_equals_the_core_count(fresh, method) -> None:
    at = fresh
    at.selectbox(key="ft-method").set_value(method).run()
    assert not at.exception
    loaded = load_shipped("bert-stories")
    settings = MethodSettings(method=method)
    classifier = prepare(loaded.model, settings)
    trainable, total = peft.count_trainable(classifier), count_parameters(classifier)
    text = caption(at, f"{METHODS[method]} on bert-stories")
    assert f"trains {trainable:,} of the classifier's {total:,} parameters" in text
    arithmetic = parameter_arithmetic(settings, loaded.config)
    if arithmetic is not None:
        assert arithmetic[1] in text


# ---------------------------------------------------------------------------------------------
# Runs fill the table
# ---------------------------------------------------------------------------------------------


def test_a_run_fills_the_table_with_its_own_measurements(fresh) -> None:
    at = small(fresh)
    at.selectbox(key="ft-method").set_value("lora").run()
    at.button(key="ft-train-one").click().run()
    assert not at.exception
    job = at.session_state["ft-job"]
    finish(at)
    (result,) = job.result
    assert isinstance(result, MethodResult) and result.steps_done == 10
    rows = table(at)
    assert rows == figs.result_rows([result])
    row = rows[0]
    assert row["trainable parameters"] == result.trainable
    assert row["held-out accuracy"] == round(result.held_out_accuracy, 4)
    assert row["ms per step (median)"] == round(1000 * statistics.median(result.step_seconds), 2)
    assert row["optimizer state (KB)"] == round(result.optimizer_state_bytes / 1024, 1)
    spec = chart(at, "What each run trained")
    assert [bar["x"] for bar in spec["data"]][1] == [result.held_out_accuracy]
    assert table(at, "real sentences") == figs.kind_rows([result])
    assert f"at most {result.merge_difference:.1e}" in caption(at, "Merging LoRA")
    assert "in 1 of 1 runs" in caption(at, "Optimizer state")
    # A rerun does not add the same run twice; clearing empties the table.
    at.run()
    assert len(table(at)) == 1
    at.button(key="ft-clear").click().run()
    assert not at.exception
    assert any("No runs yet" in info.value for info in at.info)


def test_run_all_trains_every_method_in_one_job(fresh) -> None:
    at = small(fresh, steps=10)
    at.button(key="ft-train-all").click().run()
    job = at.session_state["ft-job"]
    finish(at)
    assert [r.settings.method for r in job.result] == list(METHODS)
    rows = table(at)
    assert rows == figs.result_rows(job.result)
    full = job.result[0]
    assert rows[0]["% trainable"] == 100.0 and full.trainable == full.total
    assert "in 6 of 6 runs" in caption(at, "Optimizer state")
    speed = caption(at, "Median time per training step")
    assert "Step time relative to 1. Full fine-tuning" in speed
    loss = first_chart(at)  # the curves replace the plan beside the controls
    assert title(loss) == "Loss while fine-tuning bert-stories"
    assert chart(at, "Parameters each method trains in a classifier")  # the plan, further down
    assert {t["name"] for t in loss["data"] if t.get("showlegend") is not False} == set(
        html.escape(label) for label in METHODS.values()
    )


def test_stop_keeps_finished_runs_only(fresh) -> None:
    at = small(fresh, steps=200)
    at.button(key="ft-train-all").click().run()
    job = at.session_state["ft-job"]
    at.button(key="ft-job-stop").click().run()
    job.join(600)
    assert job.status == "stopped"
    at.run()
    assert not at.exception
    assert len(at.session_state["ft-results"]) <= 1


def test_gpt_stories_can_be_fine_tuned_with_last_token_pooling(fresh) -> None:
    at = small(fresh)
    at.selectbox(key="ft-model").set_value("gpt-stories").run()
    at.selectbox(key="ft-pooling-gpt").set_value("last").run()
    at.selectbox(key="ft-method").set_value("prefix").run()
    at.button(key="ft-train-one").click().run()
    job = at.session_state["ft-job"]
    finish(at)
    (result,) = job.result
    assert result.model_name == "gpt-stories" and result.settings.pooling == "last"
    assert table(at)[0]["model"] == "gpt-stories"


# ---------------------------------------------------------------------------------------------
# No training: gpt-stories
# ---------------------------------------------------------------------------------------------


def test_zero_shot_table_equals_a_direct_computation(fresh) -> None:
    at = small(fresh)
    at.button(key="ft-zero-shot").click().run()
    assert not at.exception
    loaded = load_shipped("gpt-stories")
    expected = zero_shot(loaded.model, loaded.tokenizer, make_task(40, 40, 0))
    assert table(at, "approach") == figs.zero_shot_rows(expected)
    assert code_texts(at)[-1] == expected.few_shot_prompt
    assert f"above {expected.threshold:.3f}" in caption(at, "Minimal pairs by corruption")


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_no_corruption_is_a_warning_not_a_crash(fresh) -> None:
    at = fresh
    at.multiselect(key="ft-corruptions").set_value([]).run()
    assert not at.exception
    assert any("Choose at least one corruption" in w.value for w in at.warning)
    assert at.button(key="ft-train-one").disabled and at.button(key="ft-train-all").disabled


def test_lora_without_projections_is_refused_with_a_message(fresh) -> None:
    at = fresh
    at.selectbox(key="ft-method").set_value("lora")
    at.multiselect(key="ft-targets").set_value([]).run()
    assert not at.exception
    assert any("choose at least one projection for LoRA" in e.value for e in at.error)
    assert at.button(key="ft-train-one").disabled
    plans = chart(at, "Parameters each method trains")
    assert "LoRA" not in plans["data"][0]["y"] and len(plans["data"][0]["y"]) == 5


def test_run_all_with_no_adapter_place_is_refused(fresh) -> None:
    at = fresh
    at.multiselect(key="ft-places").set_value([]).run()
    at.button(key="ft-train-all").click().run()
    assert not at.exception
    assert any("adapters go after" in e.value for e in at.error)
    assert "ft-job" not in at.session_state


def test_extreme_allowed_settings_run(fresh) -> None:
    at = fresh
    at.number_input(key="ft-rank").set_value(peft.MAX_RANK)
    at.number_input(key="ft-lr-full").set_value(1.0)
    at.number_input(key="ft-prefix").set_value(32)
    at.selectbox(key="ft-method").set_value("lora").run()
    assert not at.exception
    assert "r 64" in caption(at, "LoRA on bert-stories")


def test_a_diverging_run_says_why_it_stopped(fresh) -> None:
    at = small(fresh, steps=30)
    at.number_input(key="ft-lr-prefix").set_value(1.0)
    at.selectbox(key="ft-method").set_value("prefix").run()
    at.button(key="ft-train-one").click().run()
    job = at.session_state["ft-job"]
    finish(at)
    (result,) = job.result
    assert result.stop_reason and result.steps_done < 30
    assert any(
        w.value == f"Run 1. Prefix tuning stopped early: {result.stop_reason}" for w in at.warning
    )
    assert table(at)[0]["steps"] == result.steps_done


def test_without_a_task_only_the_counting_questions_are_asked(fresh) -> None:
    at = fresh
    at.multiselect(key="ft-corruptions").set_value([]).run()
    assert not at.exception
    asked = sorted(
        b.key.removeprefix("commit-").rsplit("-", 1)[0]
        for b in at.button
        if b.key and b.key.startswith("commit-")
    )
    assert asked == ["head-size", "lora-doubled-rank"]
    skipped = [c.value for c in at.caption if "needs a working input above" in c.value]
    assert len(skipped) == 2, skipped


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []


def test_the_russian_page_keeps_its_choices_and_scores_zero_shot(open_link) -> None:
    """Options bound to the URL keep their English labels: a rerun in Russian keeps them chosen."""
    at = open_link(PAGE, {"lang": "ru"})
    at.button(key="ft-zero-shot").click()
    rerun(at)
    assert not at.warning
    assert [len(df.value) for df in at.dataframe] == [3]
    # no English beyond what the page shows before the button (text this lesson does not own)
    assert english_leftovers(at) == english_leftovers(open_link(PAGE, {"lang": "ru"}))
