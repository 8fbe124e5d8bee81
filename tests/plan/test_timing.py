"""Each lesson's live computation: the inputs its page starts with, run and timed with the
module's clock, on shipped models that stay untouched."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest
import torch

from tinyformers.course.gpt import next_token_logits
from tinyformers.hub.registry import load_shipped
from tinyformers.lessons import load_lessons
from tinyformers.model.build import count_parameters
from tinyformers.model.sampling import SamplingSettings, next_token_distribution
from tinyformers.plan import timing

PAGES = Path(__file__).resolve().parents[2] / "app" / "app_pages"


def page_constants(page: str) -> dict[str, object]:
    """The module-level constants a page script assigns (literals only)."""
    tree = ast.parse((PAGES / f"{page}.py").read_text(encoding="utf-8"))
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    found[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    continue
    return found


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


@pytest.mark.parametrize(
    ("page", "model", "texts"),
    [
        ("attention", "DEFAULT_MODEL", ("DEFAULT_SENTENCE",)),
        ("multi_head", "DEFAULT_MODEL", ("DEFAULT_SENTENCE",)),
        ("transformer_block", "DEFAULT_MODEL", ("DEFAULT_SENTENCE",)),
        ("gpt", "DEFAULT_MODEL", ("DEFAULT_PROMPT",)),
        ("positional_encoding", "DEFAULT_MODEL", ("DEFAULT_SENTENCE",)),
        ("contextual_embeddings", "DEFAULT_MODEL", ()),
        ("bert", "MODEL", ("DEFAULT_A", "DEFAULT_B")),
        ("masks", "DEFAULT_MODEL", ()),
        ("encoder_decoder", "DATE_MODEL", ()),
    ],
)
def test_the_inputs_are_the_ones_the_page_starts_with(page, model, texts) -> None:
    constants = page_constants(page)
    step = timing.live_step(page.replace("_", "-"))
    assert step.model == constants[model]
    for name in texts:
        assert constants[name] in step.input


def test_the_other_defaults_are_the_pages_own() -> None:
    contextual = page_constants("contextual_embeddings")
    assert contextual["DEFAULT_WORD"] == timing.CONTEXT_WORD
    assert contextual["DEFAULT_SENTENCES"].splitlines() == list(timing.CONTEXT_SENTENCES)
    assert page_constants("masks")["SENTENCES"][0][1] == timing.ATTENTION_SENTENCE
    assert page_constants("attention")["MAX_TOKENS"] == timing.ATTENTION_TOKENS
    assert page_constants("transformer_block")["MAX_SENTENCE_TOKENS"] == timing.BLOCK_TOKENS
    tokenization = page_constants("tokenization")
    assert (tokenization["STORIES"], tokenization["VOCAB_DEFAULT"]) == (
        timing.BPE_STORIES,
        timing.BPE_VOCAB,
    )


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
    ids = loaded.tokenizer.encode(timing.GPT_PROMPT)
    want = next_token_distribution(next_token_logits(loaded.model, ids), SamplingSettings())
    torch.testing.assert_close(got.final, want.final)


@pytest.mark.parametrize("slug", ["fine-tuning", "bert"])
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
