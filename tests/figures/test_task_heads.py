"""Task heads' figures show the numbers the course computed, with every text escaped."""

from __future__ import annotations

from tinyformers.course.task_heads import (
    HeadRun,
    HeadSettings,
    HeadsResult,
    MaskedLMScore,
    PairInput,
    RunScore,
    SentenceReading,
)
from tinyformers.figures import task_heads as figs
from tinyformers.training.loop import Progress

PAIR = PairInput(
    "<b>x</b> runs .",
    "it runs .",
    ["[CLS]", "<b>x</b>", "runs", ".", "[SEP]", "it", "runs", ".", "[SEP]"],
    [2, 10, 11, 7, 3, 12, 11, 7, 3],
    [0, 0, 0, 0, 0, 1, 1, 1, 1],
)


def run(head: str, method: str, accuracy: float, loss: float) -> HeadRun:
    return HeadRun(head, method, accuracy, 0.5, 100, 1000, MaskedLMScore(loss, 0.4), None)


def result() -> HeadsResult:
    runs = [
        run("pair", "full", 0.7, 2.6),
        run("pair", "head", 0.55, 2.2),
        run("tags", "full", 1.0, 3.0),
        run("tags", "head", 0.9, 2.2),
    ]
    return HeadsResult(HeadSettings(compare="head"), MaskedLMScore(2.2, 0.45), runs)


def test_the_pair_figure_puts_each_token_in_its_segment() -> None:
    figure = figs.pair_figure(PAIR)
    a, b = figure.data
    assert list(a.text) == ["[CLS]", "&lt;b&gt;x&lt;/b&gt;", "runs", ".", "[SEP]"]
    assert list(b.text) == ["it", "runs", ".", "[SEP]"]
    assert list(a.y) == [0] * 5 and list(b.y) == [1] * 4
    assert "<b>" not in str(figure.to_plotly_json())


def test_accuracy_and_forgetting_charts_show_every_run() -> None:
    found = result()
    accuracy = figs.accuracy_chart(found)
    assert [t.name for t in accuracy.data] == [
        "Full fine-tuning",
        "Head only (linear probe)",
        "always the commonest answer",
    ]
    assert list(accuracy.data[0].y) == [0.7, 1.0] and list(accuracy.data[1].y) == [0.55, 0.9]
    assert list(accuracy.data[0].x) == ["sentence pair", "word tags"]
    forgetting = figs.forgetting_chart(found)
    assert list(forgetting.data[0].y) == [2.6, 3.0] and list(forgetting.data[1].y) == [2.2, 2.2]
    assert forgetting.layout.shapes[0].y0 == 2.2


def test_the_rows_and_the_summary_carry_the_measurements() -> None:
    found = result()
    rows = figs.result_rows(found)
    assert rows[0]["loss change"] == 0.4 and rows[1]["loss change"] == 0.0
    assert rows[2]["head"] == "word tags" and rows[2]["held-out accuracy"] == 1.0
    text = figs.forgetting_text(found)
    assert "rose by +0.600 with full fine-tuning and by +0.000 with head only" in text
    partial = HeadsResult(found.settings, found.before, found.runs[:1])
    assert figs.forgetting_text(partial) is None


def test_the_reading_rows_show_tags_and_the_subject() -> None:
    reading = SentenceReading(
        ["the", "dog", "runs", "."], ["the", "noun", "verb", "end"], (0, 1), 0.8
    )
    rows = figs.reading_rows(reading.words, ["the", "noun", None, "end"], {"full": reading})
    assert rows[1] == {
        "word": "dog",
        "grammar": "noun",
        "tag (Full fine-tuning)": "noun",
        "subject (Full fine-tuning)": "subject",
    }
    assert rows[2]["grammar"] == "unknown word" and rows[2]["subject (Full fine-tuning)"] == ""
    assert figs.pair_text({"full": reading}).endswith("full fine-tuning: 80%")


def test_progress_counts_finished_runs() -> None:
    def p(step):
        return Progress(step, 1.0, None, 1e-3, 1.0, 1.0)

    histories = {"pair · Full fine-tuning": [p(5), p(10)], "pair · LoRA": [p(5)]}
    fraction, text = figs.progress_text(histories, 6, 10)
    assert fraction == (10 + 5) / 60
    assert text == "1 of 6 runs trained; step 5 of 10 of the next"
    chart = figs.loss_chart(histories)
    assert [t.line.dash for t in chart.data] == ["solid", "dot"]


def test_finished_runs_are_listed_while_the_job_goes_on() -> None:
    scores = [RunScore("span", "full", 0.9, 0.3, MaskedLMScore(2.5, 0.4))]
    rows = figs.score_rows(scores, MaskedLMScore(2.2, 0.45))
    assert rows == [
        {
            "head": "subject span",
            "method": "Full fine-tuning",
            "held-out accuracy": 0.9,
            "commonest answer": 0.3,
            "masked-LM loss after": 2.5,
            "loss change": 0.3,
        }
    ]
    assert "loss change" not in figs.score_rows(scores, None)[0]
