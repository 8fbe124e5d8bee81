"""The architecture variants: each builds and trains, warm-up is what it says, a trained model
reads longer windows with the same weights (learned positions are refused), and the prediction
questions give their answers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tinyformers.course import variants as course
from tinyformers.course.variants import (
    CONTEXT,
    LONGEST,
    VARIANTS,
    extrapolate,
    longer_model,
    loss_by_position,
    train_settings,
    train_variant,
    validation_windows,
)
from tinyformers.model.build import build_model


@pytest.fixture(scope="module")
def tiny_task():
    """Thirty stories: enough validation text for the long windows."""
    return course.stories_task(n_stories=30)


@pytest.fixture(scope="module")
def trained(tiny_task):
    """Every variant trained for a few steps."""
    tokenizer, task = tiny_task
    return {
        v.label: train_variant(v, tokenizer.vocab_size, task, train_settings(v, 4, 0.01, 0))
        for v in VARIANTS
    }


def test_each_variant_builds_as_described_and_trains(trained, tiny_task):
    tokenizer, _ = tiny_task
    for v in VARIANTS:
        model, state = trained[v.label]
        config = model.config
        assert (config.position, config.ln_placement) == (v.position, v.ln_placement)
        assert config.block_size == CONTEXT and config.vocab_size == tokenizer.vocab_size
        assert state.step == 4 and math.isfinite(state.history[-1].train_loss)
        assert not model.training


def test_warm_up_is_the_only_difference_between_settings():
    warm = train_settings(course.variant(course.LEARNED), 300, 0.01, 0)
    cold = train_settings(course.variant(course.PRE_COLD), 300, 0.01, 0)
    assert (warm.warmup_steps, cold.warmup_steps) == (course.WARMUP_STEPS, 0)
    assert {**vars(warm), "warmup_steps": 0} == vars(cold)
    assert train_settings(course.variant(course.POST_WARM), 40, 0.01, 0).warmup_steps == 20


def test_same_seed_same_start_so_only_the_architecture_differs(tiny_task):
    tokenizer, task = tiny_task
    first = {}
    for label in (course.LEARNED, course.PRE_COLD):
        v = course.variant(label)
        torch.manual_seed(0)
        first[label] = build_model(course.config_of(v, tokenizer.vocab_size)).state_dict()
    assert all(
        torch.equal(first[course.LEARNED][k], first[course.PRE_COLD][k])
        for k in first[course.LEARNED]
    )


@pytest.mark.parametrize("label", [course.SINUSOIDAL, course.ROTARY, course.NO_POSITIONS])
def test_a_longer_copy_reads_the_first_positions_exactly_as_the_model(trained, tiny_task, label):
    model, _ = trained[label]
    inputs, _ = validation_windows(tiny_task[1], LONGEST, 3)
    longer = longer_model(model, LONGEST)
    assert longer.config.block_size == LONGEST and model.config.block_size == CONTEXT
    with torch.no_grad():
        short = model(inputs[:, :CONTEXT]).logits
        long = longer(inputs).logits
    torch.testing.assert_close(long[:, :CONTEXT], short, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(long).all()


def test_learned_positions_are_refused_past_their_table(trained):
    model, _ = trained[course.LEARNED]
    message = f"learned positions have a vector for each of the {CONTEXT} positions"
    with pytest.raises(ValueError, match=message + ".*cannot read 64 tokens"):
        longer_model(model, 2 * CONTEXT)
    assert longer_model(model, CONTEXT).config.block_size == CONTEXT  # no longer: fine


def test_loss_by_position_is_the_cross_entropy_at_each_position(trained, tiny_task):
    model, _ = trained[course.ROTARY]
    inputs, targets = validation_windows(tiny_task[1], CONTEXT, 5)
    losses = loss_by_position(model, inputs, targets)
    with torch.no_grad():
        logits = model(inputs).logits
    for t in (0, 7, CONTEXT - 1):
        expected = F.cross_entropy(logits[:, t], targets[:, t]).item()
        assert losses[t] == pytest.approx(expected, rel=1e-5)


def test_extrapolation_measures_computed_positions_and_reports_the_refusal(trained, tiny_task):
    task = tiny_task[1]
    rotary = extrapolate(course.ROTARY, trained[course.ROTARY][0], task)
    assert rotary.refusal is None and len(rotary.losses) == LONGEST
    assert rotary.beyond == pytest.approx(sum(rotary.losses[CONTEXT:]) / (LONGEST - CONTEXT))
    learned = extrapolate(course.LEARNED, trained[course.LEARNED][0], task)
    assert len(learned.losses) == CONTEXT and learned.beyond is None
    assert "cannot read 128 tokens" in learned.refusal
    assert learned.inside == pytest.approx(sum(learned.losses) / CONTEXT)


def test_windows_need_enough_validation_text(tiny_task):
    with pytest.raises(ValueError, match="are needed"):
        validation_windows(tiny_task[1], 10**6)


@pytest.mark.parametrize(
    ("steps", "rate", "message"),
    [
        (10, 0.01, "steps must be a whole number from 50 to 600, got 10"),
        (601, 0.01, "from 50 to 600"),
        (100.0, 0.01, "whole number"),
        (100, 0.5, "learning rate must be one of 0.003, 0.01, 0.03, got 0.5"),
    ],
)
def test_bad_settings_are_refused_with_a_message(steps, rate, message):
    with pytest.raises(ValueError, match=message):
        course.run_variants(steps, rate)


def test_a_stopped_run_keeps_what_it_trained():
    updates = []

    def report(update) -> bool:
        updates.append(update)
        return False  # stop at the first report

    result = course.run_variants(50, 0.01, report=report, n_stories=30)
    assert result.stopped and list(result.histories) == [course.LEARNED]
    assert [u.label for u in updates] == [course.LEARNED]
    assert course.live_histories(updates) == {course.LEARNED: [updates[0].progress]}


def test_predictions_give_their_answers(tiny_task):
    vocab = tiny_task[0].vocab_size
    refused = course.predict_refused(vocab)
    assert refused.choices == (course.LEARNED, course.SINUSOIDAL, course.ROTARY, "none")
    assert refused.reveal().answer == course.LEARNED
    extra = course.predict_position_parameters(vocab).reveal()
    assert extra.answer == CONTEXT * course.SIZE["n_embd"]
    counts = course.parameter_counts(vocab)
    assert extra.answer == counts[course.LEARNED][1] - counts[course.ROTARY][1]
    assert counts[course.LEARNED][0] == extra.answer and counts[course.ROTARY][0] == 0
    head_size = course.SIZE["n_embd"] // course.SIZE["n_head"]
    assert course.predict_rotary_frequencies().reveal().answer == head_size // 2
