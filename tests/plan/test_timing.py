"""Each lesson's live computation: the inputs its page starts with (its course module's
defaults), run and timed with the module's clock, on shipped models that stay untouched."""

from __future__ import annotations

import itertools

import pytest
import torch

from tinyformers.course.gpt import DEFAULT_PROMPT, next_token_logits
from tinyformers.hub.registry import load_shipped
from tinyformers.lessons import load_lessons
from tinyformers.model.build import count_parameters
from tinyformers.model.sampling import SamplingSettings, next_token_distribution
from tinyformers.plan import timing


def fake_clock(step: float):
    """A clock that moves ``step`` seconds each time it is read (a power of two, so that
    differences of readings are exact)."""
    ticks = itertools.count()
    return lambda: next(ticks) * step


@pytest.fixture(scope="module")
def models():
    cache = {}

    def load(name: str):
        if name not in cache:
            cache[name] = load_shipped(name)
        return cache[name]

    return load


def test_every_lesson_has_a_live_computation() -> None:
    assert set(timing.LIVE_STEPS) == {lesson.slug for lesson in load_lessons()}
    with pytest.raises(KeyError, match="no live computation"):
        timing.live_step("no-such-lesson")


def test_measure_times_with_the_clock_after_a_warm_up(monkeypatch) -> None:
    monkeypatch.setattr(timing, "clock", fake_clock(0.125))
    calls = []
    seconds, runs = timing.measure(lambda: calls.append(1), repeats=3)
    assert (seconds, runs) == (0.125, 3)
    assert len(calls) == 4  # the warm-up is not timed


def test_measure_stops_at_its_budget_but_times_at_least_once(monkeypatch) -> None:
    monkeypatch.setattr(timing, "clock", fake_clock(0.25))
    assert timing.measure(lambda: None, repeats=5, budget_s=0.4) == (0.25, 2)
    assert timing.measure(lambda: None, repeats=5, budget_s=0.0) == (0.25, 1)
    with pytest.raises(ValueError, match="at least 1"):
        timing.measure(lambda: None, repeats=0)


@pytest.mark.parametrize("slug", sorted(timing.LIVE_STEPS))
def test_every_lesson_is_timed_with_the_clock(monkeypatch, models, slug: str) -> None:
    monkeypatch.setattr(timing, "clock", fake_clock(0.125))
    result = timing.time_lesson(slug, models, repeats=2)
    assert (result.slug, result.seconds, result.runs) == (slug, 0.125, 2)
    assert result.threads == torch.get_num_threads()
    step = timing.live_step(slug)
    if step.model is None:
        assert result.parameters is None
    else:
        assert result.parameters == count_parameters(models(step.model).model)


def test_the_timed_computation_is_the_lessons_own(models) -> None:
    loaded = models("gpt-stories")
    step = timing.live_step("gpt")
    got = step.run(step.prepare(loaded))
    ids = loaded.tokenizer.encode(DEFAULT_PROMPT)
    want = next_token_distribution(next_token_logits(loaded.model, ids), SamplingSettings())
    torch.testing.assert_close(got.final, want.final)


@pytest.mark.parametrize("slug", ["fine-tuning", "bert", "distillation", "task-heads", "alignment"])
def test_timing_leaves_the_shipped_model_as_it_was(models, slug: str) -> None:
    loaded = models(timing.live_step(slug).model)
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    timing.time_lesson(slug, models, repeats=1)
    after = loaded.model.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key
    assert not loaded.model.training
    assert all(p.grad is None for p in loaded.model.parameters())


def test_the_handout_figure_is_what_the_computation_gave(models) -> None:
    loaded = models("gpt-stories")
    measured = timing.time_lesson("gpt", models, repeats=1)
    ids = loaded.tokenizer.encode(DEFAULT_PROMPT)
    raw = next_token_distribution(next_token_logits(loaded.model, ids), SamplingSettings()).raw
    top, top_ids = raw.topk(timing.TOP_TOKENS)
    assert measured.picture.values == pytest.approx([float(p) for p in top])
    assert list(measured.picture.labels) == loaded.tokenizer.display_tokens(top_ids.tolist())


@pytest.mark.parametrize("slug", sorted(timing.PICTURES))
def test_every_model_lesson_draws_its_computation(models, slug: str) -> None:
    picture = timing.time_lesson(slug, models, repeats=1).picture
    assert picture is not None and picture.title
    values = picture.values if picture.values is not None else sum(picture.matrix, [])
    assert values and all(v == v for v in values)  # numbers, none NaN


def test_lessons_that_train_have_no_figure_of_a_default_input(models) -> None:
    assert {"train", "fine-tuning", "scaling", "tokenization"}.isdisjoint(timing.PICTURES)
    assert timing.time_lesson("scaling", models, repeats=1).picture is None


def test_the_why_attention_step_is_a_training_step_of_the_attention_gru() -> None:
    step = timing.live_step("why-attention")
    model, batch = step.prepare(None)
    assert model.config.attention and model.training
    loss = step.run((model, batch))
    assert loss == pytest.approx(float(model(**batch).loss.detach()), rel=1e-5)
    assert all(p.grad is None for p in model.parameters())


def test_the_handout_figure_is_labelled_in_the_language_asked_for(models) -> None:
    english = timing.time_lesson("transformer-block", models, repeats=1).picture
    russian = timing.time_lesson("transformer-block", models, repeats=1, language="ru").picture
    assert russian.values == pytest.approx(english.values)
    assert english.title == "Mean length of the residual stream"
    assert russian.title == "Средняя длина остаточного потока"
    assert russian.labels[:2] == ["эмбеддинги", "после блока 1"]
    assert "residual" not in russian.caption
