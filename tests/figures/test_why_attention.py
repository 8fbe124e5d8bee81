"""Why attention's figures show the numbers the course computed, with every text escaped."""

from __future__ import annotations

import pytest
import torch

from tests.plotly_json import decode, figure_spec
from tinyformers.course.why_attention import (
    ATTENTION,
    MODEL_NAMES,
    PLAIN,
    TRANSFORMER,
    Alignment,
    ComparisonResult,
    WhySettings,
)
from tinyformers.figures import why_attention as figs
from tinyformers.training.loop import Progress

ALIGNED = Alignment(
    ATTENTION, ["a", "<b>", " "], ["x", "[EOS]"], torch.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
)
CROSS = Alignment(TRANSFORMER, ["a", "<b>", " "], ["y"], torch.tensor([[0.1, 0.1, 0.8]]))


def history(times: list[float]) -> list[Progress]:
    return [Progress(i + 1, 2.0 - i / 10, None, 0.001, 0.0, t) for i, t in enumerate(times)]


def result() -> ComparisonResult:
    exact = {
        PLAIN: {3: (9, 10), 4: (5, 10), 5: (1, 10), 6: (0, 10)},
        ATTENTION: {3: (10, 10), 4: (9, 10), 5: (9, 10), 6: (8, 10)},
        TRANSFORMER: {3: (10, 10), 4: (10, 10), 5: (10, 10), 6: (10, 10)},
    }
    timing = {name: {4: 0.002 * (i + 1), 8: 0.004 * (i + 1)} for i, name in enumerate(exact)}
    return ComparisonResult(
        settings=WhySettings(steps=20),
        models={},
        histories={name: history([0.01, 0.03, 0.04]) for name in exact},
        exact=exact,
        timing=timing,
        parameters={PLAIN: 100, ATTENTION: 120, TRANSFORMER: 900},
        threads=2,
    )


def test_the_alignment_figure_draws_both_models_weights_with_escaped_labels() -> None:
    spec = figure_spec(figs.alignment_figure({ATTENTION: ALIGNED, TRANSFORMER: CROSS}, False))
    maps = [t for t in spec["data"] if t["type"] == "heatmap"]
    for drawn, alignment in zip(maps, (ALIGNED, CROSS), strict=True):
        torch.testing.assert_close(torch.tensor(decode(drawn["z"])).float(), alignment.weights)
    assert maps[0]["x"] == ["0: a", "1: &lt;b&gt;", "2: ␣"]
    assert maps[0]["y"] == ["0: x", "1: [EOS]"]
    titles = [a["text"] for a in spec["layout"]["annotations"]]
    assert titles == [
        f"{MODEL_NAMES[ATTENTION]} (untrained)",
        f"{MODEL_NAMES[TRANSFORMER]} (untrained)",
    ]


def test_the_exact_match_chart_is_the_share_right_at_each_length() -> None:
    spec = figure_spec(figs.exact_match_chart(result()))
    lines = {t["name"]: decode(t["y"]).tolist() for t in spec["data"]}
    assert lines[MODEL_NAMES[PLAIN]] == pytest.approx([0.9, 0.5, 0.1, 0.0])
    assert lines[MODEL_NAMES[ATTENTION]] == pytest.approx([1.0, 0.9, 0.9, 0.8])


def test_the_rows_hold_the_halves_and_the_median_step() -> None:
    rows = figs.result_rows(result())
    assert rows[0] == {
        "model": MODEL_NAMES[PLAIN],
        "parameters": 100,
        "exact match": pytest.approx(15 / 40),
        "lengths 3–4": pytest.approx(14 / 20),
        "lengths 5–6": pytest.approx(1 / 20),
        "ms per training step": 10.0,  # the steps took 10, 20 and 10 ms
    }
    assert figs.percent_columns(result()) == ("exact match", "lengths 3–4", "lengths 5–6")


def test_the_texts_state_the_measurements() -> None:
    text = figs.bottleneck_text(result())
    assert "GRU, one context vector: 70% right on sources of 3–4 characters, 5% on 5–6" in text
    assert "GRU with attention: 95% right on sources of 3–4 characters, 85% on 5–6" in text
    timing = figs.timing_text(result())
    assert timing.startswith("Measured on this machine with 2 threads: ")
    assert "Transformer 6.0 ms at 4 characters, 12.0 ms at 8 (×2.0)" in timing


def test_the_timing_chart_is_in_milliseconds() -> None:
    spec = figure_spec(figs.timing_chart(result()))
    lines = {t["name"]: decode(t["y"]).tolist() for t in spec["data"]}
    assert lines[MODEL_NAMES[ATTENTION]] == pytest.approx([4.0, 8.0])


def test_progress_counts_every_model_s_steps() -> None:
    histories = {PLAIN: history([0.1] * 20), ATTENTION: history([0.1] * 5)}
    done, text = figs.progress_text(histories, 20)
    assert done == pytest.approx(25 / 60)
    assert text == f"{MODEL_NAMES[ATTENTION]}: step 5 of 20"


def test_the_first_look_figure_is_the_first_row() -> None:
    spec = figure_spec(figs.first_look_figure(ALIGNED))
    assert decode(spec["data"][0]["y"]).tolist() == pytest.approx([0.2, 0.3, 0.5])
    assert "&lt;b&gt;" in spec["data"][0]["x"][1]


def test_the_alignment_caption_names_each_output_and_the_answer() -> None:
    outputs = {PLAIN: "cba", ATTENTION: "cb", TRANSFORMER: "cba"}
    caption = figs.alignment_caption(outputs, "cba")
    assert caption == (
        "Right answer: 'cba'. GRU, one context vector: 'cba'; GRU with attention: 'cb'; "
        "Transformer: 'cba'."
    )
