"""Alignment's figures show the numbers the course computed, with every text escaped."""

from __future__ import annotations

import math

import pytest

from tinyformers.course.alignment import (
    BASE_NAME,
    DPO_NAME,
    RL_NAME,
    SFT_NAME,
    AlignmentResult,
    AlignSettings,
    AnswerComparison,
    ModelScores,
    StageUpdate,
)
from tinyformers.figures import alignment as figs

FOUND = AnswerComparison(
    topic="cat",
    sentence="<b>the cat</b> runs .",
    other="<b>the cat</b> run .",
    verdict="unknown word '<b>the'",
    other_verdict="unknown word '<b>the'",
    on_topic=True,
    log_probs={BASE_NAME: (-12.0, -15.5), DPO_NAME: (-9.0, -20.0)},
    rewards=(1.25, -0.5),
)


def scores(name: str, rate: float, loss: float, reward: float | None = 1.0) -> ModelScores:
    samples = {"cat": ["the cat runs .", "the cat run .", "<i>x</i>"]}
    return ModelScores(name, rate, rate / 2, reward, 0.5, loss, samples)


def result(names=(BASE_NAME, SFT_NAME, DPO_NAME, RL_NAME)) -> AlignmentResult:
    values = {
        BASE_NAME: scores(BASE_NAME, 0.0, 2.0),
        SFT_NAME: scores(SFT_NAME, 0.5, 2.25),
        DPO_NAME: scores(DPO_NAME, 0.75, 2.5),
        RL_NAME: scores(RL_NAME, 0.625, 2.125),
    }
    return AlignmentResult(
        AlignSettings(),
        [values[n] for n in names],
        train_pairs=30,
        held_out_pairs=10,
        reward_accuracy=0.8,
        reward_train_accuracy=0.9,
    )


def test_the_answer_figure_shows_each_model_s_log_probabilities() -> None:
    figure = figs.answer_figure(FOUND)
    assert [(t.name, list(t.y)) for t in figure.data] == [
        (BASE_NAME, [-12.0, -15.5]),
        (DPO_NAME, [-9.0, -20.0]),
    ]
    assert list(figure.data[0].x) == ["your answer", "verb flipped"]
    assert figure.layout.title.text == "Your answer to “tell a story about the cat :”"


def test_the_answer_caption_gives_the_verdicts_and_the_rewards() -> None:
    text = figs.answer_caption(FOUND)
    assert "the grammar: unknown word '<b>the'" in text and "it names the cat" in text
    assert "The reward model scores your answer 1.25 and the flipped one -0.50." in text
    alone = figs.answer_caption(
        AnswerComparison("dog", "Mia smiles .", None, "ok", None, False, {}, None)
    )
    assert "the grammar accepts it; it does not name the dog" in alone
    assert "once a run has trained one" in alone and "Flipped" not in alone


def test_the_losses_and_the_reinforce_curves_are_the_reported_values() -> None:
    stages = {
        "sft": [StageUpdate("sft", 1, {"loss": 2.0}), StageUpdate("sft", 2, {"loss": 1.5})],
        "dpo": [StageUpdate("dpo", 1, {"loss": math.log(2)})],
    }
    figure = figs.losses_chart(stages)
    assert [list(t.y) for t in figure.data] == [[2.0, 1.5], [], [pytest.approx(math.log(2))]]
    rl = [StageUpdate("rl", s, {"reward": 0.1 * s, "kl": 0.2 * s}) for s in (1, 2)]
    figure = figs.rl_chart(rl)
    assert list(figure.data[0].y) == [0.1, 0.2] and list(figure.data[1].y) == [0.2, 0.4]
    assert figure.data[1].xaxis == "x2"


def test_progress_counts_every_stage_s_steps() -> None:
    settings = AlignSettings(sft_steps=10, reward_steps=10, dpo_steps=10, rl_steps=10)
    assert figs.progress_text({}, settings)[0] == 0.0
    stages = {
        "sft": [StageUpdate("sft", 10, {"loss": 1.0})],
        "reward": [StageUpdate("reward", 5, {"loss": 1.0})],
    }
    done, text = figs.progress_text(stages, settings)
    assert done == pytest.approx(15 / 40) and text.endswith("step 5 of 10")


def test_the_rows_give_the_rates_and_the_alignment_tax() -> None:
    rows = figs.score_rows(result())
    assert [r["alignment tax"] for r in rows] == [0.0, 0.25, 0.5, 0.125]
    assert rows[2]["grammar accepts"] == 0.75 and rows[2]["names the animal"] == 0.375
    samples = figs.sample_rows(result(), "cat")
    assert (
        samples[0]["answer 1"] == "✓ the cat runs ." and samples[0]["answer 2"] == "✗ the cat run ."
    )
    figure = figs.rates_figure(result().scores)
    assert [list(t.y) for t in figure.data][2] == [0.75, 0.375]


def test_the_summary_needs_dpo_and_names_the_tax() -> None:
    text = figs.summary_text(result())
    assert "50% of the instruction-tuned model's answers and 75% after DPO" in text
    assert "+0.250 nats per token for instruction tuning, +0.500 after DPO" in text
    assert "+0.125 after REINFORCE + KL (62% accepted)" in text
    assert figs.summary_text(result((BASE_NAME, SFT_NAME))) is None
    assert "β = 0.5" in figs.settings_text(result())
