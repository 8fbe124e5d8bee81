"""Headless tests of the scaling page: the plan and the computed costs on first load, a tiny
sweep and a small attention measurement run in the background and shown with the numbers of
their own runs, finished runs kept for the session, Stop, bad numbers, and rerun speed."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.page_checks import (
    captions,
    english_leftovers,
    expected_published_counts,
    metric,
    published_counts,
    rerun,
)
from tests.page_order import first_chart, index_after_header, is_subheader, strip_keys
from tests.plotly_json import chart, chart_titles, named_trace, title
from tinyformers.course.scaling import (
    CostSettings,
    SweepSettings,
    all_parameters,
    char_task,
    fit_power_law,
    ladder_configs,
    multiply_adds,
    non_embedding_parameters,
)
from tinyformers.figures import scaling as figs
from tinyformers.text.corpora import lesson_corpus
from tinyformers.training.zoo import char_text

PAGE = "app_pages/scaling.py"
SWEEP_JOB, SWEEP_CACHE = "sc-sweep-job", "sc-sweeps"
COST_JOB, COST_CACHE = "sc-cost-job", "sc-costs"


@pytest.fixture(scope="module")
def vocab_size() -> int:
    return char_task(char_text(), 64)[0]


def small_sweep(at: AppTest, steps: int = 10) -> AppTest:
    at.number_input(key="sc-models").set_value(3)
    at.number_input(key="sc-steps").set_value(steps)
    rerun(at)
    at.button(key="sc-train").click()
    return rerun(at)


# ---------------------------------------------------------------------------------------------
# First load
# ---------------------------------------------------------------------------------------------


def test_default_plan_is_computed_from_the_ladder(page, vocab_size) -> None:
    assert page.number_input(key="sc-models").value == 6
    assert page.number_input(key="sc-steps").value == 300
    settings = SweepSettings(n_models=6, steps=300)
    configs = ladder_configs(vocab_size, 6)
    table = page.dataframe[0].value
    expected = figs.plan_rows(configs, settings)
    assert list(table["model"]) == [row["model"] for row in expected]
    assert list(table["N (non-embedding)"]) == [row["N (non-embedding)"] for row in expected]
    assert list(table["D / all parameters"]) == [row["D / all parameters"] for row in expected]
    assert any(f"D = {settings.tokens:,} tokens" in c for c in captions(page))
    ratios = ", ".join(f"{settings.tokens / all_parameters(c):.1f}" for c in configs)
    assert any(
        ratios in c and f"≈ {settings.tokens / 20:,.0f} parameters" in c for c in captions(page)
    )
    assert any("Train the sweep to see the fit." in i.value for i in page.info)
    assert SWEEP_JOB not in page.session_state and COST_JOB not in page.session_state


def test_the_page_opens_on_the_sweeps_controls_beside_its_plan(fresh, vocab_size) -> None:
    at = fresh
    assert strip_keys(at) == ["sc-source", "sc-models", "sc-steps", "sc-seed"]
    assert [b.key for b in at.button][:1] == ["sc-train"]
    assert index_after_header(at, is_subheader) == 1  # the prose comes after the strip
    at.number_input(key="sc-models").set_value(4)
    at.number_input(key="sc-steps").set_value(100)
    rerun(at)
    plan = first_chart(at)
    settings = SweepSettings(n_models=4, steps=100)
    assert title(plan) == (f"The planned sweep<br>4 models, D = {settings.tokens:,} tokens each")
    assert plan["layout"]["height"] <= 450
    for config in ladder_configs(vocab_size, 4):
        n = non_embedding_parameters(config)
        point = named_trace(plan, figs.model_label(config))
        ratio = settings.tokens / all_parameters(config)
        assert point["x"] == [n] and point["y"] == [pytest.approx(ratio)]
    assert named_trace(plan, "Chinchilla: 20 tokens per parameter")["y"] == [20, 20]


def test_computed_cost_chart_is_the_multiply_add_formula(page) -> None:
    settings = CostSettings()
    spec = chart(page, "Computed: multiply-adds of one layer, width C = 128")
    for part in multiply_adds(1, 128, 512):
        shown = named_trace(spec, part)
        assert shown["x"] == settings.lengths
        assert shown["y"] == [multiply_adds(n, 128, 512)[part] for n in settings.lengths]
    assert any("n = 2C = 256" in c and "16.00 MiB (computed)" in c for c in captions(page))
    assert not page.button(key="sc-measure").disabled


def test_lessons_text_can_be_planned_too(fresh) -> None:
    at = fresh
    at.radio(key="sc-source").set_value("lessons")
    rerun(at)
    vocab_size, task = char_task(lesson_corpus(), 64)
    expected = f"The lessons' text: {len(task.train_ids):,} training and {len(task.val_ids):,}"
    assert any(c.startswith(expected) and f"{vocab_size} distinct" in c for c in captions(at))


# ---------------------------------------------------------------------------------------------
# The sweep, in the background
# ---------------------------------------------------------------------------------------------


def test_tiny_sweep_shows_the_fit_of_its_own_points(fresh) -> None:
    at = small_sweep(fresh)
    job = at.session_state[SWEEP_JOB]
    job.join(600)
    assert job.status == "finished", job.error_details
    rerun(at)
    points = job.result.points
    assert len(points) == 3 and all(np.isfinite(p.val_loss) for p in points)
    fit = fit_power_law([p.non_embedding_parameters for p in points], [p.val_loss for p in points])
    assert metric(at, "Exponent α") == f"{fit.alpha:.3f} ± {fit.exponent_se:.3f}"
    assert metric(at, "Prefactor a") == f"{fit.prefactor:.3g} ± {fit.prefactor_se:.2g}"
    assert metric(at, "R² (log–log)") == f"{fit.r_squared:.3f}"
    spec = first_chart(at)  # the fit replaces the plan beside the controls
    assert title(spec).startswith("Validation loss against size")
    for point in points:
        assert named_trace(spec, point.label)["y"] == [point.val_loss]
    line = named_trace(spec, f"fit: {figs.fit_label(fit)}")
    np.testing.assert_allclose(line["y"], [fit.predict(x) for x in line["x"]])
    compute = chart(at, "Validation loss against training compute")
    assert named_trace(compute, points[-1].label)["x"][-1] == pytest.approx(points[-1].flops)
    key = ("stories", SweepSettings(n_models=3, steps=10))
    assert at.session_state[SWEEP_CACHE][key] is job.result

    # kept for the session: a finished sweep is shown again without training again
    assert not [b for b in at.button if b.key == "sc-train"]
    at.number_input(key="sc-steps").set_value(20)
    rerun(at)
    assert [b for b in at.button if b.key == "sc-train"]
    at.number_input(key="sc-steps").set_value(10)
    rerun(at)
    assert at.session_state[SWEEP_JOB] is job
    assert metric(at, "Exponent α") == f"{fit.alpha:.3f} ± {fit.exponent_se:.3f}"


def test_stopped_sweep_is_shown_but_not_kept(fresh) -> None:
    at = small_sweep(fresh, steps=2000)
    job = at.session_state[SWEEP_JOB]
    beside = title(first_chart(at))  # the plan, until the first evaluation draws the curves
    assert beside.startswith(("The planned sweep", "Validation loss so far")), beside
    at.button(key=f"{SWEEP_JOB}-stop").click()
    rerun(at)
    job.join(600)
    assert job.status == "stopped"
    rerun(at)
    assert any("The sweep was stopped" in i.value for i in at.info)
    assert any("needs at least 3 finished models" in i.value for i in at.info)
    assert SWEEP_CACHE not in at.session_state  # nothing was kept


# ---------------------------------------------------------------------------------------------
# The measurement, in the background
# ---------------------------------------------------------------------------------------------


def test_measurement_shows_the_slopes_of_its_own_times(fresh) -> None:
    at = fresh
    at.number_input(key="sc-width").set_value(32)
    at.selectbox(key="sc-heads").set_value(2)
    at.number_input(key="sc-length").set_value(256)
    rerun(at)
    at.button(key="sc-measure").click()
    rerun(at)
    job = at.session_state[COST_JOB]
    job.join(600)
    assert job.status == "finished", job.error_details
    rerun(at)
    result = job.result
    assert result.lengths == [32, 48, 64, 96, 128, 192, 256]
    assert all(p.seconds[k] > 0 for p in result.points for k in p.seconds)
    for kind, name in figs.KIND_NAMES.items():
        fit = result.slope(kind)
        assert metric(at, f"Slope: {name}") == f"{fit.exponent:.2f} ± {fit.exponent_se:.2f}"
    spec = chart(at, "Measured time of one layer, C = 32, 2 heads")
    attention = named_trace(spec, f"{figs.KIND_NAMES['attention']}, forward")
    np.testing.assert_allclose(
        attention["y"], [p.seconds["attention"] * 1000 for p in result.points]
    )
    memory = chart(at, "Memory of one forward pass")
    computed = named_trace(memory, "computed: one heads × n × n matrix")
    np.testing.assert_allclose(computed["y"], [2 * n * n * 4 / 2**20 for n in result.lengths])
    last = result.points[-1]
    assert any(
        f"{last.score_bytes / 2**20:.2f} MiB (computed)" in c
        and f"{last.peak_bytes['attention'] / 2**20:.2f} MiB (measured" in c
        for c in captions(at)
    )
    assert at.session_state[COST_CACHE][result.settings] is result
    assert any("Measured in this session" in c for c in captions(at))


# ---------------------------------------------------------------------------------------------
# Bad numbers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key,value,kept",
    [
        ("sc-models", 100, 6),
        ("sc-models", 0, 6),
        ("sc-steps", 10**9, 300),
        ("sc-steps", -5, 300),
        ("sc-length", 10**6, 1024),
        ("sc-length", 1, 1024),
        ("sc-width", 10**6, 128),
        ("sc-width", 0, 128),
    ],
)
def test_absurd_numbers_are_refused_by_the_inputs(fresh, key, value, kept) -> None:
    """Streamlit's number inputs refuse values outside their bounds, which are the core's own
    limits; the core's messages for such values are tested in test_scaling.py and
    test_cost.py."""
    at = fresh
    at.number_input(key=key).set_value(value)
    rerun(at)
    assert at.number_input(key=key).value == kept
    assert not at.error
    assert chart(at, "Computed: multiply-adds of one layer")


def test_width_that_heads_cannot_share_gets_a_message(fresh) -> None:
    at = fresh
    at.number_input(key="sc-width").set_value(40)
    at.selectbox(key="sc-heads").set_value(16)
    rerun(at)
    message = "the width (40) must be divisible by the number of heads (16)"
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="sc-measure").disabled
    assert not any(title.startswith("Computed") for title in chart_titles(at))


def test_published_models_are_counted_from_their_configurations(page):
    assert published_counts(page) == expected_published_counts()


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []
