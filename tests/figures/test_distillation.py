"""Distillation's figures show the numbers the course computed, with every text escaped."""

from __future__ import annotations

from tinyformers.course.distillation import (
    ALONE,
    DISTILLED,
    TEACHER,
    UNTRAINED,
    DistillationResult,
    DistillSettings,
    Distributions,
    MaskedWord,
    ModelScores,
)
from tinyformers.figures import distillation as figs
from tinyformers.training.loop import Progress

FOUND = Distributions(
    tokens=["run", "<b>x</b>"],
    temperature=2.5,
    at_one={TEACHER: [0.7, 0.2], UNTRAINED: [0.4, 0.1]},
    at_t={TEACHER: [0.4, 0.3], UNTRAINED: [0.2, 0.15]},
    top={TEACHER: "run", UNTRAINED: "**bold**"},
    top_probability={TEACHER: (0.7, 0.4), UNTRAINED: (0.5, 0.3)},
)


def scores(name: str, agreement: float, ms: float, parameters: int = 500) -> ModelScores:
    return ModelScores(name, parameters, 2, 0.5, 0.9, agreement, [ms / 1000] * 3)


def result(names=(TEACHER, UNTRAINED, "distilled student", "student trained alone")):
    values = {
        TEACHER: scores(TEACHER, 1.0, 2.0, 1000),
        UNTRAINED: scores(UNTRAINED, 0.5, 1.0),
        "distilled student": scores("distilled student", 0.7, 1.0),
        "student trained alone": scores("student trained alone", 0.6, 1.5),
    }
    return DistillationResult(DistillSettings(), [values[n] for n in names], {}, kept=(0, 2))


def test_the_distributions_show_each_model_at_both_temperatures() -> None:
    figure = figs.distributions_figure(FOUND)
    bars = [(t.name, t.xaxis, list(t.y)) for t in figure.data]
    assert bars == [
        (TEACHER, "x", [0.7, 0.2]),
        (UNTRAINED, "x", [0.4, 0.1]),
        (TEACHER, "x2", [0.4, 0.3]),
        (UNTRAINED, "x2", [0.2, 0.15]),
    ]
    assert list(figure.data[0].x) == ["run", "&lt;b&gt;x&lt;/b&gt;"]
    assert [a.text for a in figure.layout.annotations] == ["T = 1", "T = 2.5"]


def test_the_caption_names_the_masked_word_and_each_first_choice() -> None:
    word = MaskedWord([2, 5, 4, 3], 1, ["[CLS]", "[MASK]", ".", "[SEP]"], False, "runs")
    text = figs.word_caption(word, FOUND)
    assert "position 1 (it held 'runs'" in text
    assert f"{UNTRAINED}: '**bold**' 0.500 at T = 1, 0.300 at T = 2.5" in text


def test_rows_and_chart_hold_the_measurements() -> None:
    rows = figs.score_rows(result().scores)
    assert rows[0] == {
        "model": TEACHER,
        "layers": 2,
        "parameters": 1000,
        "masked-LM accuracy": 0.5,
        "verb number": 0.9,
        "agrees with the teacher": 1.0,
        "ms per sentence (median)": 2.0,
    }
    chart = figs.scores_chart(result().scores)
    assert [t.name for t in chart.data][2] == "distilled student"
    assert list(chart.data[2].y) == [0.5, 0.9, 0.7]


def test_the_summary_compares_the_students_or_says_nothing_without_both() -> None:
    text = figs.summary_text(result())
    assert "50% of the teacher's parameters" in text and "0.50× its time" in text
    assert "70.0% of the masked positions against 60.0% trained alone" in text
    assert figs.summary_text(result(names=(TEACHER, UNTRAINED, "distilled student"))) is None


def test_progress_counts_both_students() -> None:
    assert figs.progress_text({}, 20) == (0.0, "Preparing the training sentences…")
    history = [Progress(10, 1.0, None, 1e-3, 1.0, 1.0)]
    share, text = figs.progress_text({DISTILLED: history}, 20)
    assert share == 0.25 and text == "Training the distilled student: step 10 of 20"
    assert figs.progress_text({DISTILLED: history, ALONE: history}, 20)[0] == 0.75


def test_the_loss_chart_has_one_line_per_student() -> None:
    history = [Progress(s, 3.0 - s / 10, None, 1e-3, 1.0, 1.0) for s in (5, 10)]
    chart = figs.loss_chart({DISTILLED: history, ALONE: history}, 10)
    assert [t.name for t in chart.data] == ["distilled student", "student trained alone"]
    assert list(chart.data[0].y) == [2.5, 2.0]
