"""Figures of the architecture-variants lesson plot exactly the numbers they are given."""

from __future__ import annotations

import numpy as np

from tests.plotly_json import figure_trace
from tinyformers.course.variants import CONTEXT, LONGEST, Extrapolation
from tinyformers.figures import variants as figs
from tinyformers.training.loop import Progress

ATTACK = "</script><img src=x onerror=alert(1)>"


def history(losses, every=10, val_at=(20,)):
    return [
        Progress(every * (i + 1), loss, 0.5 if every * (i + 1) in val_at else None, 0.01, 1, 1)
        for i, loss in enumerate(losses)
    ]


def test_loss_curves_plot_every_logged_loss():
    histories = {"learned": history([3.0, 2.5, 2.0]), ATTACK: history([3.1, 2.9])}
    figure = figs.loss_curves_chart(histories, "Curves")
    learned = figure_trace(figure, "learned")
    assert list(learned.x) == [10, 20, 30] and list(learned.y) == [3.0, 2.5, 2.0]
    validation = figure_trace(figure, "learned (validation)")
    assert list(validation.x) == [20] and list(validation.y) == [0.5]
    names = [trace.name for trace in figure.data]
    assert not any("<img" in name for name in names) and any("&lt;img" in n for n in names)


def test_extrapolation_chart_and_caption():
    rotary = Extrapolation("rotary", [1.0] * CONTEXT + [2.0] * (LONGEST - CONTEXT))
    learned = Extrapolation("learned", [1.5] * CONTEXT, "no vector for position 32")
    figure = figs.extrapolation_chart({"rotary": rotary, "learned": learned})
    line = figure_trace(figure, "rotary")
    assert list(line.x) == list(range(LONGEST)) and list(line.y) == rotary.losses
    assert len(figure_trace(figure, "learned (cannot read further)").y) == CONTEXT
    assert figure.layout.shapes[0].x0 == CONTEXT - 0.5
    caption = figs.extrapolation_caption({"rotary": rotary, "learned": learned})
    assert "rotary: 1.000 inside, 2.000 past it" in caption
    assert "learned: 1.500 inside; refused past it (no vector for position 32)" in caption


def test_parameters_chart_stacks_position_vectors_on_the_rest():
    figure = figs.parameters_chart({"learned": (100, 1100), "rotary": (0, 1000)})
    np.testing.assert_array_equal(figure_trace(figure, "position vectors").y, [100, 0])
    np.testing.assert_array_equal(figure_trace(figure, "the rest of the model").y, [1000, 1000])
    assert figure.layout.barmode == "stack"


def test_final_rows_hold_the_last_losses():
    rows = figs.final_rows({"a": history([3.0, 2.1234]), "b": []}, {"a": 10, "b": 20})
    assert rows[0] == {
        "Variant": "a",
        "Parameters": 10,
        "Steps": 20,
        "Training loss": 2.123,
        "Validation loss": 0.5,
    }
    assert rows[1]["Steps"] == 0 and rows[1]["Training loss"] is None
