"""Beam search against ``transformers``' ``generate(num_beams=k)`` on the same weights, and its
properties: one beam is greedy decoding, and a beam's score is the sum of its tokens' log p."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import TINY, seeded_model
from tinyformers.hub.interop import gpt_to_hf
from tinyformers.hub.registry import load_shipped
from tinyformers.model.config import GPTConfig
from tinyformers.model.sampling import (
    MAX_BEAM_TOKENS,
    MAX_BEAMS,
    Beam,
    BeamSettings,
    SamplingSettings,
    beam_search,
    generate,
)

transformers = pytest.importorskip("transformers")

EOS = 3  # the tiny model's end token in the tests that have one
PROMPTS = ([1, 2, 3], [5], [7, 8, 9, 10])
NEW = 12


@pytest.fixture(scope="module")
def model():
    """A tiny GPT with weights spread wide enough for its beams to differ from greedy text."""
    return seeded_model(GPTConfig(**{**TINY, "block_size": 32}), seed=0, std=0.5)


@pytest.fixture(scope="module")
def hf(model):
    return gpt_to_hf(model)


@pytest.fixture(scope="module")
def stories():
    return load_shipped("gpt-stories")


def hf_beams(hf, ids, n, settings: BeamSettings, eos: int | None):
    """The best text of ``generate`` with beams (its new tokens up to the end token) and its
    score."""
    out = hf.generate(
        torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        num_beams=settings.num_beams,
        do_sample=False,
        early_stopping=settings.early_stopping,
        length_penalty=settings.length_penalty,
        max_new_tokens=n,
        eos_token_id=eos,
        pad_token_id=0 if eos is None else eos,
        return_dict_in_generate=True,
        output_scores=True,
    )
    new = out.sequences[0, len(ids) :].tolist()
    if eos in new:
        new = new[: new.index(eos) + 1]
    return new, out.sequences_scores[0].item()


def assert_same_as_transformers(model, hf, ids, settings, eos):
    ours = beam_search(model, ids, NEW, settings, eos_id=eos)
    theirs, score = hf_beams(hf, ids, NEW, settings, eos)
    assert list(ours.best.tokens) == theirs
    assert ours.best.score(settings.length_penalty) == pytest.approx(score, rel=1e-5, abs=1e-5)
    return ours


@pytest.mark.parametrize("ids", PROMPTS)
@pytest.mark.parametrize(
    "settings",
    [
        BeamSettings(2, 1.0, False),
        BeamSettings(3, 0.0, True),
        BeamSettings(5, 2.0, "never"),
        BeamSettings(4, -1.0, False),
    ],
    ids=repr,
)
@pytest.mark.parametrize("eos", [None, EOS])
def test_beam_search_equals_transformers_generate(model, hf, ids, settings, eos):
    assert_same_as_transformers(model, hf, ids, settings, eos)


def test_the_reference_tests_can_fail(model, hf):
    """Beam search here finds a text greedy decoding does not, so comparing the two can fail."""
    ids = PROMPTS[0]
    greedy = generate(model, ids, NEW, SamplingSettings(temperature=0))
    found = assert_same_as_transformers(model, hf, ids, BeamSettings(3, 0.0, False), None)
    assert list(found.best.tokens) != greedy
    assert found.best.log_prob > log_prob_of(model, ids, greedy)


def test_early_stopping_rules_are_followed_as_transformers_follows_them(model, hf):
    """With end token 11 the first prompt finishes a short text early: "never" (with a positive
    length penalty) goes on hoping for a longer, better-scored text, False gives up, True stops
    once k texts are finished; each as ``generate`` does it."""
    found = {
        rule: assert_same_as_transformers(model, hf, PROMPTS[0], BeamSettings(2, 2.0, rule), 11)
        for rule in (True, False, "never")
    }
    assert len(found[False].steps) < len(found["never"].steps) == NEW
    assert found[False].best != found["never"].best


@pytest.mark.parametrize("prompt", ["Zoe sees the big dog . the dog", "Tom waits ."])
@pytest.mark.parametrize("early_stopping", [True, False])
def test_shipped_model_equals_transformers_generate(stories, prompt, early_stopping):
    ids = stories.tokenizer.encode(prompt)
    hf = gpt_to_hf(stories.model)
    end_of_line = stories.tokenizer.encode("\n")[0]
    settings = BeamSettings(4, 1.0, early_stopping)
    assert_same_as_transformers(stories.model, hf, ids, settings, end_of_line)


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


def log_prob_of(model, ids: list[int], new: list[int]) -> float:
    """log p(new | ids), summed token by token from one forward pass."""
    sequence = torch.tensor([ids + new])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(sequence).logits[0].double(), dim=-1)
    return sum(log_probs[len(ids) - 1 + i, token].item() for i, token in enumerate(new))


@pytest.mark.parametrize("ids", PROMPTS)
@pytest.mark.parametrize("penalty", [0.0, 1.0, 2.0])
@pytest.mark.parametrize("early_stopping", [True, False, "never"])
def test_one_beam_is_greedy_decoding(model, ids, penalty, early_stopping):
    greedy = generate(model, ids, NEW, SamplingSettings(temperature=0))
    found = beam_search(model, ids, NEW, BeamSettings(1, penalty, early_stopping))
    assert list(found.best.tokens) == greedy
    assert all(len(step.beams) <= 1 for step in found.steps)


@pytest.mark.parametrize("ids", PROMPTS)
def test_one_beam_with_an_end_token_stops_where_greedy_stops(model, ids):
    greedy = generate(model, ids, NEW, SamplingSettings(temperature=0), stop_ids={EOS})
    found = beam_search(model, ids, NEW, BeamSettings(1, 1.0, True), eos_id=EOS)
    ended = len(greedy) < NEW
    assert list(found.best.tokens) == greedy + [EOS] * ended


@pytest.mark.parametrize("settings", [BeamSettings(3, 1.0), BeamSettings(5, 0.0, "never")])
@pytest.mark.parametrize("eos", [None, EOS])
def test_every_beams_log_prob_is_the_sum_of_its_token_log_probs(model, settings, eos):
    found = beam_search(model, PROMPTS[0], NEW, settings, eos_id=eos)
    for beam in found.finished:
        assert beam.log_prob == pytest.approx(log_prob_of(model, PROMPTS[0], list(beam.tokens)))
        expected = beam.log_prob / len(beam.tokens) ** settings.length_penalty
        assert beam.score(settings.length_penalty) == pytest.approx(expected)
    scores = [beam.score(settings.length_penalty) for beam in found.finished]
    assert scores == sorted(scores, reverse=True) and len(scores) == settings.num_beams


def test_each_step_keeps_the_k_best_extensions_of_its_beams(model):
    """Brute force: every extension of every beam, scored; the kept ones are the k best."""
    k = 3
    found = beam_search(model, PROMPTS[2], 5, BeamSettings(k))
    beams = [Beam((), 0.0)]
    for step in found.steps[:-1]:  # the last step finishes every text instead
        scored = sorted(
            (beam.log_prob + log_prob_of(model, PROMPTS[2] + list(beam.tokens), [token]), i, token)
            for i, beam in enumerate(beams)
            for token in range(model.config.vocab_size)
        )[::-1]
        assert [(i, t) for _, i, t in scored[:k]] == [
            (c.parent, c.beam.tokens[-1]) for c in step.candidates if c.fate == "kept"
        ]
        assert [c.beam for c in step.candidates if c.fate == "kept"] == step.beams
        assert len(step.candidates) == 2 * k
        beams = step.beams
    assert {c.fate for c in found.steps[-1].candidates} == {"finished", "dropped"}


def test_the_context_is_cropped_to_the_window_as_generate_crops_it(model):
    """Past ``block_size`` the model reads the last positions only; one beam stays greedy."""
    ids = list(range(1, 30))
    greedy = generate(model, ids, 10, SamplingSettings(temperature=0))
    assert list(beam_search(model, ids, 10, BeamSettings(1)).best.tokens) == greedy


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(num_beams=0), f"between 1 and {MAX_BEAMS}, got 0"),
        (dict(num_beams=MAX_BEAMS + 1), f"between 1 and {MAX_BEAMS}"),
        (dict(num_beams=2.5), "between 1 and"),
        (dict(num_beams=True), "between 1 and"),
        (dict(length_penalty="long"), "length penalty must be a number"),
        (dict(length_penalty=float("nan")), "length penalty must be between"),
        (dict(early_stopping="sometimes"), "early stopping must be True, False or 'never'"),
    ],
)
def test_bad_settings_are_refused_with_a_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BeamSettings(**kwargs)


@pytest.mark.parametrize(
    ("ids", "n", "k", "message"),
    [
        ([], 5, 2, "at least one token"),
        ([1], 0, 2, f"between 1 and {MAX_BEAM_TOKENS} new tokens, got 0"),
        ([1], MAX_BEAM_TOKENS + 1, 2, f"between 1 and {MAX_BEAM_TOKENS} new tokens"),
        ([1], 2.0, 2, "whole number"),
    ],
)
def test_bad_searches_are_refused_with_a_message(model, ids, n, k, message):
    with pytest.raises(ValueError, match=message):
        beam_search(model, ids, n, BeamSettings(k))


def test_more_extensions_than_tokens_are_refused():
    small = seeded_model(GPTConfig(**{**TINY, "vocab_size": 9}))
    with pytest.raises(ValueError, match="5 beams look at 10 extensions a step, more than the 9"):
        beam_search(small, [1], 3, BeamSettings(5))
    assert len(beam_search(small, [1], 3, BeamSettings(4)).best.tokens) == 3
