"""Task heads' computations: the examples against the grammar, the pair input against the
`transformers` BERT tokenizer, span decoding against a brute-force search, the heads' losses
against their formulas, a short seeded run in which every head beats the best constant answer
and full fine-tuning forgets more than a frozen encoder, and the prediction questions."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from tinyformers.course import fine_tuning
from tinyformers.course import task_heads as th
from tinyformers.hub.registry import load_shipped
from tinyformers.text.corpora import stories
from tinyformers.text.inputs import bert_inputs

SETTINGS = th.HeadSettings(steps=100, compare="head", held_out=200, mlm_sentences=100)


@pytest.fixture(scope="module")
def bert():
    return load_shipped("bert-stories")


@pytest.fixture(scope="module")
def result(bert):
    before = {k: v.clone() for k, v in bert.model.state_dict().items()}
    found = th.run_heads(bert.model, bert.tokenizer, SETTINGS)
    after = bert.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items()), "the shared model changed"
    assert not bert.model.training
    return found


# ---------------------------------------------------------------------------------------------
# The tasks, labelled by the grammar
# ---------------------------------------------------------------------------------------------


def subject_word(text: str) -> str:
    """The head of a sentence's subject: its first name, pronoun or noun (modifiers follow it)."""
    return next(w for w in text.split() if stories.word_category(w) in ("name", "pronoun", "noun"))


def test_a_pair_is_labelled_by_whether_b_s_pronoun_refers_to_a_s_subject() -> None:
    data = th.make_examples("pair", 400, 100, seed=3)
    for example in data.train + data.held_out:
        assert stories.is_grammatical(example.text) and stories.is_grammatical(example.text_b)
        pronoun = example.text_b.split()[0]
        right = stories.referring_pronoun(subject_word(example.text))
        assert example.label == int(pronoun == right), example


def test_neither_sentence_alone_tells_the_pair_s_label() -> None:
    data = th.make_examples("pair", 4_000, 20, seed=0)
    labels = [e.label for e in data.train]
    assert 0.47 < sum(labels) / len(labels) < 0.53
    by_pronoun = Counter((e.text_b.split()[0], e.label) for e in data.train)
    by_subject = Counter(
        (stories.referring_pronoun(subject_word(e.text)), e.label) for e in data.train
    )
    for counts in (by_pronoun, by_subject):
        for pronoun in th.PRONOUNS:
            share = counts[(pronoun, 1)] / (counts[(pronoun, 1)] + counts[(pronoun, 0)])
            assert 0.4 < share < 0.6, (pronoun, share)


def test_tags_are_the_grammar_s_categories_and_spans_the_subjects() -> None:
    tags = th.make_examples("tags", 50, 20, seed=1)
    for example in tags.train:
        got = [th.TAGS[t] for t in example.label]
        assert got == [stories.word_category(w) for w in example.text.split()]
    spans = th.make_examples("span", 50, 20, seed=1)
    rng = random.Random(1 + th.DATA_SEED_OFFSET)
    for example in spans.train:
        sentence = stories.generate_sentence(rng)
        assert example.text == sentence.text
        first, last = example.label
        assert first == 0 and last == sentence.verb_index - 1
        assert sentence.subject_index <= last


def test_train_and_held_out_share_no_input() -> None:
    for head in th.HEADS:
        data = th.make_examples(head, 300, 100, seed=2)
        inputs = {(e.text, e.text_b) for e in data.train}
        assert not inputs & {(e.text, e.text_b) for e in data.held_out}
        assert data == th.make_examples(head, 300, 100, seed=2)


# ---------------------------------------------------------------------------------------------
# What the model reads
# ---------------------------------------------------------------------------------------------


def hf_tokenizer(bert, tmp_path):
    from transformers import BertTokenizer

    vocab = tmp_path / "vocab.txt"
    tokens = [bert.tokenizer.id_to_token(i) for i in range(bert.tokenizer.vocab_size)]
    vocab.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return BertTokenizer(str(vocab), do_lower_case=True)


def test_pair_ids_and_segment_ids_follow_the_transformers_bert_convention(bert, tmp_path) -> None:
    reference = hf_tokenizer(bert, tmp_path)
    data = th.make_examples("pair", 30, 20, seed=4)
    for example in data.train:
        row = th.encode(bert.tokenizer, "pair", example)
        expected = reference(example.text, example.text_b)
        assert row.ids == expected["input_ids"]
        assert row.segments == expected["token_type_ids"]
        assert row.segments[-1] == 1 and row.segments[row.ids.index(3)] == 0
    pair = th.pair_input(bert.tokenizer, th.DEFAULT_A, th.DEFAULT_B, 48)
    expected = reference(th.DEFAULT_A, th.DEFAULT_B)
    assert (pair.ids, pair.segments) == (expected["input_ids"], expected["token_type_ids"])
    single = reference("the dogs run .")
    assert bert_inputs(bert.tokenizer, "the dogs run .") == (
        single["input_ids"],
        single["token_type_ids"],
    )


def test_a_tag_sits_on_the_first_piece_of_each_word(bert) -> None:
    text = "the friendly fox runs ."  # "friendly" is two WordPiece tokens
    tags = tuple(range(5))
    row = th.encode(bert.tokenizer, "tags", th.Example(text, tags))
    tokens = bert.tokenizer.display_tokens(row.ids)
    assert tokens == ["[CLS]", "the", "friend", "##ly", "fox", "runs", ".", "[SEP]"]
    assert row.target == [-100, 0, 1, -100, 2, 3, 4, -100]


def test_a_span_target_points_at_the_subject_s_first_and_last_token(bert) -> None:
    row = th.encode(bert.tokenizer, "span", th.Example("the friendly fox near Mia runs .", (0, 4)))
    start, end = row.target
    tokens = bert.tokenizer.display_tokens(row.ids)
    assert tokens[start : end + 1] == ["the", "friend", "##ly", "fox", "near", "mia"]


def test_bad_pairs_and_settings_are_refused(bert) -> None:
    with pytest.raises(ValueError, match="type both sentences"):
        th.pair_input(bert.tokenizer, "the dog runs .", "  ", 48)
    with pytest.raises(ValueError, match="sentence A holds nothing"):
        th.pair_input(bert.tokenizer, "\u0301", "they run .", 48)
    with pytest.raises(ValueError, match="reads at most 48"):
        th.pair_input(bert.tokenizer, "the dog runs . " * 12, "they run .", 48)
    with pytest.raises(ValueError, match="steps"):
        th.HeadSettings(steps=0)
    with pytest.raises(ValueError, match="compare full fine-tuning"):
        th.HeadSettings(compare="prefix")
    with pytest.raises(ValueError, match="heads"):
        th.HeadSettings(heads=("pair", "ner"))
    with pytest.raises(ValueError, match="BERT"):
        th.build(load_shipped("gpt-stories").model, "pair", fine_tuning.MethodSettings())


# ---------------------------------------------------------------------------------------------
# Span decoding against a brute-force search
# ---------------------------------------------------------------------------------------------


def brute_force_span(start, end, allowed, max_tokens):
    best, found = None, None
    for i, j in itertools.product(range(len(start)), repeat=2):
        if not (allowed[i] and allowed[j] and i <= j < i + max_tokens):
            continue
        score = float(start[i] + end[j])
        if best is None or score > best:
            best, found = score, (i, j)
    return found


@pytest.mark.parametrize("seed", range(40))
def test_span_decoding_matches_a_brute_force_search(seed) -> None:
    generator = torch.Generator().manual_seed(seed)
    n = int(torch.randint(2, 14, (1,), generator=generator))
    start, end = torch.randn(n, generator=generator), torch.randn(n, generator=generator)
    allowed = torch.rand(n, generator=generator) > 0.3
    allowed[int(torch.randint(n, (1,), generator=generator))] = True
    max_tokens = int(torch.randint(1, n + 1, (1,), generator=generator))
    expected = brute_force_span(start.tolist(), end.tolist(), allowed.tolist(), max_tokens)
    assert th.best_span(start, end, allowed, max_tokens) == expected


def test_span_decoding_never_ends_before_it_starts() -> None:
    start = torch.tensor([0.0, 0.0, 5.0, 0.0])
    end = torch.tensor([4.0, 0.0, 0.0, 0.0])  # the best end alone lies before the best start
    assert th.best_span(start, end, torch.ones(4, dtype=torch.bool)) == (2, 2)
    with pytest.raises(ValueError, match="no token"):
        th.best_span(start, end, torch.zeros(4, dtype=torch.bool))


# ---------------------------------------------------------------------------------------------
# The heads' outputs and losses
# ---------------------------------------------------------------------------------------------


def a_batch(bert, head: str, seed: int = 0):
    data = th.make_examples(head, 40, 20, seed)
    task = th.HeadTask(bert.tokenizer, data, bert.config.block_size)
    return task.batch(6, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("head", list(th.HEADS))
def test_each_head_s_loss_is_its_formula(bert, head) -> None:
    model = th.build(bert.model, head, fine_tuning.MethodSettings(method="head"))
    batch = a_batch(bert, head)
    with torch.no_grad():
        out = model(**batch)
        hidden = model.encoder(
            batch["idx"],
            token_type_ids=batch["token_type_ids"],
            attention_mask=batch["attention_mask"],
            output_hidden_states=True,
        ).hidden_states[-1]
    labels = batch["labels"]
    if head == "pair":
        logits = hidden[:, 0] @ model.head.weight.T + model.head.bias
        torch.testing.assert_close(out.logits, logits)
        expected = F.nll_loss(logits.log_softmax(-1), labels)
    elif head == "tags":
        logits = hidden @ model.head.weight.T + model.head.bias
        keep = labels != -100
        expected = F.nll_loss(logits[keep].log_softmax(-1), labels[keep])
    else:
        logits = out.logits
        special = batch["idx"] <= 5
        assert (logits[special | (batch["attention_mask"] == 0)] == -1e4).all()
        starts = F.nll_loss(logits[..., 0].log_softmax(-1), labels[:, 0])
        ends = F.nll_loss(logits[..., 1].log_softmax(-1), labels[:, 1])
        expected = (starts + ends) / 2
    torch.testing.assert_close(out.loss, expected)


def test_the_baseline_is_the_best_constant_answer() -> None:
    assert th.baseline("pair", [1, 0, 1, 1]) == 0.75
    assert th.baseline("tags", [[1, 2, 2], [2, 3]]) == 0.6
    assert th.baseline("span", [(1, 2), (1, 3), (1, 3)]) == pytest.approx(2 / 3)
    assert th.accuracy("tags", [[1, 2, 0], [2, 3]], [[1, 2, 2], [2, 3]]) == 0.8


def test_the_masked_lm_score_is_the_model_s_own_loss(bert) -> None:
    score = th.masked_lm_score(bert.model, bert.tokenizer, 30)
    sentences = th.distillation.masked_held_out(bert.tokenizer, 30, 48)
    total, count, right = 0.0, 0, 0
    with torch.no_grad():
        for s in sentences:  # one sentence at a time, no padding
            ids, labels = torch.tensor([s.input_ids]), torch.tensor([s.labels])
            out = bert.model(ids, labels=labels)
            n = int((labels != -100).sum())
            total += out.loss.item() * n
            count += n
            right += int((out.logits[labels != -100].argmax(-1) == labels[labels != -100]).sum())
    assert score.loss == pytest.approx(total / count, rel=1e-5)
    assert score.accuracy == pytest.approx(right / count)


# ---------------------------------------------------------------------------------------------
# A short seeded run
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("head", list(th.HEADS))
def test_every_fully_fine_tuned_head_beats_the_best_constant_answer(result, head) -> None:
    run = result.run(head, th.FULL)
    assert run.history[-1].step == SETTINGS.steps
    assert run.accuracy > run.baseline + 0.08, (run.accuracy, run.baseline)


def test_full_fine_tuning_forgets_more_than_a_frozen_encoder(result) -> None:
    for head in th.HEADS:
        full, frozen = result.run(head, th.FULL), result.run(head, "head")
        assert result.forgetting(full) > 0.1, head
        assert result.forgetting(frozen) == pytest.approx(0.0, abs=1e-6), head
        assert frozen.masked_lm.accuracy == pytest.approx(result.before.accuracy)
        assert full.trainable > 100 * frozen.trainable


def test_the_student_s_sentences_are_read_by_every_head(result, bert) -> None:
    found = th.readings(result, bert.tokenizer, "the friendly fox near Mia runs .", "it runs .")
    assert set(found) == {th.FULL, "head"}
    reading = found[th.FULL]
    assert len(reading.tags) == len(reading.words) == 7
    first, last = reading.span
    assert 0 <= first <= last < 7
    assert 0 <= reading.pair_probability <= 1
    assert th.grammar_tags("the friendly fox .") == ["the", None, "noun", "end"]
    assert th.word_of(3, [(1, 2), (2, 4)]) == 1


# ---------------------------------------------------------------------------------------------
# Predict, then see
# ---------------------------------------------------------------------------------------------


def test_the_last_sep_belongs_to_segment_b(bert) -> None:
    pair = th.pair_input(bert.tokenizer, "Mia sees the fox .", "she smiles .", 48)
    prediction = th.predict_last_segment(bert, pair)
    assert prediction.choices == th.SEGMENT_CHOICES
    reveal = prediction.reveal()
    assert reveal.answer == "1 (segment B)"
    assert reveal.values == {"first_sep": 6, "last": 10, "b_tokens": 4}


def test_the_span_head_has_two_weights_per_number_and_two_biases(bert) -> None:
    prediction = th.predict_span_head_size(bert)
    assert prediction.values["width"] == 128
    reveal = prediction.reveal()
    assert reveal.answer == 2 * 128 + 2
    assert reveal.values == {"weights": 256, "biases": 2}


def test_a_frozen_encoder_s_masked_lm_loss_stays_exactly_the_same(bert) -> None:
    prediction = th.predict_frozen_forgetting(bert, th.HeadSettings())
    reveal = prediction.reveal()
    assert reveal.answer == th.SAME
    assert reveal.values["before"] == reveal.values["after"]
    assert reveal.values["trainable"] == 2 * 128 + 2


def test_a_job_reports_the_encoder_s_score_then_every_run_as_it_finishes(bert) -> None:
    settings = th.HeadSettings(
        steps=5, heads=("tags",), train_examples=20, held_out=20, mlm_sentences=20
    )
    updates = []
    found = th.run_heads(bert.model, bert.tokenizer, settings, updates.append)
    assert updates[0] == found.before
    scores = [u for u in updates if isinstance(u, th.RunScore)]
    assert scores == [run.score for run in found.runs]
    assert [(s.head, s.method) for s in scores] == [("tags", "full"), ("tags", "head")]
    progress = th.job_progress(updates)
    assert progress.before == found.before and progress.scores == scores
    assert set(progress.histories) == {run.label for run in found.runs}
    assert [p.step for p in progress.histories["tags · Full fine-tuning"]] == [5]


def test_a_job_stops_after_the_run_during_which_it_was_asked_to(bert) -> None:
    settings = th.HeadSettings(steps=5, train_examples=20, held_out=20, mlm_sentences=20)
    found = th.run_heads(
        bert.model, bert.tokenizer, settings, lambda u: not isinstance(u, th.RunScore)
    )
    assert [(r.head, r.method) for r in found.runs] == [("pair", "full")]
    assert found.stop_reason == "stopped"


def test_the_lesson_s_example_pair_is_labelled_as_the_text_says() -> None:
    sentence = th.DEFAULT_A.split()
    assert stories.is_grammatical(th.DEFAULT_A) and th.DEFAULT_B.split()[0] == "they"
    assert stories.referring_pronoun(subject_word(th.DEFAULT_A)) == "they"
    assert sentence[-2] == "Mia" and stories.referring_pronoun("Mia") == "she"
