"""Headless tests of the architecture-variants page: what it shows before training, and after a
short background run the curves, table and extrapolation are exactly the run's result."""

from __future__ import annotations

import numpy as np

from tests.page_checks import caption, english_leftovers, rerun
from tests.plotly_json import chart, decode, named_trace
from tinyformers.course import variants as course
from tinyformers.figures import variants as figs

PAGE = "app_pages/variants.py"
JOB = "var-job"


def test_before_training_the_page_counts_parameters_and_waits(page):
    counts = course.parameter_counts(course.stories_vocab_size())
    spec = chart(page, "Parameters of each position scheme")
    np.testing.assert_array_equal(
        decode(named_trace(spec, "position vectors")["y"]), [c[0] for c in counts.values()]
    )
    assert caption(page, "Every variant:").startswith(
        f"Every variant: {course.SIZE['n_layer']} layers"
    )
    assert any("Press Train every variant" in info.value for info in page.info)
    assert JOB not in page.session_state


def test_a_short_run_shows_every_curve_and_the_extrapolation(fresh):
    at = fresh
    at.number_input(key="var-steps").set_value(course.MIN_STEPS)
    at.select_slider(key="var-rate").set_value(0.03)
    rerun(at)
    at.button(key="var-start").click()
    rerun(at)
    job = at.session_state[JOB]
    job.join(600)
    assert job.status == "finished", job.error_details
    rerun(at)
    result = job.result
    assert not result.stopped and len(result.histories) == len(course.VARIANTS)
    positions = chart(at, "Training loss of each position scheme")
    for label in (course.LEARNED, course.SINUSOIDAL, course.ROTARY, course.NO_POSITIONS):
        shown = decode(named_trace(positions, figs.variant_name(label))["y"])
        np.testing.assert_allclose(shown, [p.train_loss for p in result.histories[label]])
    layernorm = chart(at, "Training loss with LayerNorm")
    shown = decode(named_trace(layernorm, figs.variant_name(course.PRE_WARM))["y"])
    np.testing.assert_allclose(shown, [p.train_loss for p in result.histories[course.LEARNED]])
    assert result.histories[course.LEARNED][0].learning_rate < 0.03  # warm-up
    table = at.dataframe[-1].value
    assert list(table["Variant"]) == [figs.variant_name(v.label) for v in course.VARIANTS]
    assert list(table["Steps"]) == [course.MIN_STEPS] * len(course.VARIANTS)
    extrapolation = chart(at, "Loss at each position")
    rotary = result.extrapolations[course.ROTARY]
    np.testing.assert_allclose(decode(named_trace(extrapolation, "rotary")["y"]), rotary.losses)
    assert len(rotary.losses) == course.LONGEST
    assert result.extrapolations[course.LEARNED].refusal
    text = caption(at, "Mean loss on positions")
    assert text == figs.extrapolation_caption(result.extrapolations)
    assert "learned" in text and "refused past it" in text


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []
