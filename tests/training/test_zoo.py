"""The shipped models: they load, they still measure up to their model cards (the same check as
``tinyformers zoo check``), and the cards tell the truth about the verb-subject head."""

from __future__ import annotations

import pytest
import torch

from tinyformers.hub.registry import MODELS_DIR, load_shipped, shipped_names
from tinyformers.trace import trace_text
from tinyformers.training import zoo

SHIPPED = list(zoo.ZOO)


def test_every_zoo_model_is_shipped() -> None:
    assert sorted(shipped_names()) == sorted(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_checkpoint_is_small_and_loads(name: str) -> None:
    assert (MODELS_DIR / name / "model.safetensors").stat().st_size < 5 * 1024 * 1024
    loaded = load_shipped(name)
    assert not loaded.model.training
    assert loaded.metadata["metrics"], "the card records no metrics"


@pytest.mark.parametrize("name", ["gpt-stories", "bert-stories", "gpt-char"])
def test_shipped_model_traces_a_sentence(name: str) -> None:
    loaded = load_shipped(name)
    trace = trace_text(loaded.model, loaded.tokenizer, "the dogs that the cat sees run .")
    for weights in trace.attentions:
        assert torch.allclose(weights.sum(-1), torch.ones(()), atol=1e-5)


@pytest.mark.parametrize("name", SHIPPED)
def test_zoo_check(name: str) -> None:
    measured, problems = zoo.check_one(name)
    assert problems == [], problems
    for metric, bar in zoo.QUALITY_BARS[name].items():
        assert measured[metric] >= bar


def test_compare_flags_a_worse_metric() -> None:
    assert zoo.compare("gpt-char", {"val_loss": 1.0}, {"val_loss": 1.03})
    assert not zoo.compare("gpt-char", {"val_loss": 1.0}, {"val_loss": 1.01})
    assert zoo.compare("seq2seq-date", {"exact_match": 0.99}, {"exact_match": 0.97})
    assert zoo.compare("seq2seq-date", {"exact_match": 0.97}, {"exact_match": 0.97})  # below bar


def test_sampled_sentences_are_judged_by_the_validator() -> None:
    loaded = load_shipped("gpt-stories")
    checkpoint = zoo.Checkpoint(loaded.model, loaded.config, loaded.tokenizer)
    sentences = zoo.sample_sentences(checkpoint.model, checkpoint.tokenizer, 20)
    assert len(sentences) == 20 and all(s.endswith(".") for s in sentences)


@pytest.mark.parametrize("name", zoo.SUBJECT_HEAD_MODELS)
def test_verb_subject_head_is_reported_honestly(name: str) -> None:
    loaded = load_shipped(name)
    checkpoint = zoo.Checkpoint(loaded.model, loaded.config, loaded.tokenizer)
    found = zoo.best_subject_head(checkpoint)
    recorded = loaded.metadata["subject_head"]
    assert found["query"] == recorded["query"]
    assert (found["subject_head_layer"], found["subject_head"]) == (
        recorded["subject_head_layer"],
        recorded["subject_head"],
    )
    assert found["subject_head_rate"] == pytest.approx(recorded["subject_head_rate"])
    card = (MODELS_DIR / name / "README.md").read_text(encoding="utf-8")
    assert zoo.subject_head_text(found) in card


def test_some_head_links_verbs_to_subjects() -> None:
    rates = [
        load_shipped(n).metadata["subject_head"]["subject_head_rate"]
        for n in zoo.SUBJECT_HEAD_MODELS
    ]
    assert max(rates) > 0.5, "no shipped model has a verb-subject head; the cards must say so"
