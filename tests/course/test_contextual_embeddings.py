"""Static and contextual word vectors: skip-gram against its formula, BERT's per-layer vectors
against the model's own hidden states, and the properties the lesson states."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tinyformers.course import contextual_embeddings as ctx
from tinyformers.hub.registry import load_shipped
from tinyformers.text.corpora.stories import ANIMATE_NOUNS, THING_NOUNS
from tinyformers.trace import trace_ids
from tinyformers.training.zoo import stories_text

NOUNS = {form for pair in ANIMATE_NOUNS + THING_NOUNS for form in pair}
SUBJECT_THAT = "the dogs that chase the cat run ."
SUBJECT_THAT_AGAIN = "the dogs that chase the fox run ."
OBJECT_THAT = "the dogs that the cat sees run ."


@pytest.fixture(scope="module")
def bert():
    return load_shipped("bert-stories")


@pytest.fixture(scope="module")
def static():
    """The page's default skip-gram vectors."""
    return ctx.train_skip_gram(stories_text(), ctx.SkipGramSettings())


# ---------------------------------------------------------------------------------------------
# Skip-gram
# ---------------------------------------------------------------------------------------------


def test_pairs_are_every_word_within_the_window_of_one_sentence() -> None:
    pairs = ctx.skip_gram_pairs([[0, 1, 2], [3, 4]], window=2)
    found = sorted(map(tuple, pairs.tolist()))
    want = sorted([(0, 1), (1, 0), (1, 2), (2, 1), (0, 2), (2, 0), (3, 4), (4, 3)])
    assert found == want  # no pair reaches from 2 to 3: they are in different sentences
    with pytest.raises(ValueError, match="no two words"):
        ctx.skip_gram_pairs([[5], [6]], window=3)


def test_corpus_sentences_split_at_full_stops_and_lowercase() -> None:
    assert ctx.corpus_sentences("Mia sees the dog . she smiles .\nthe cat runs .") == [
        ["mia", "sees", "the", "dog"],
        ["she", "smiles"],
        ["the", "cat", "runs"],
    ]


def test_the_loss_is_the_negative_sampling_formula() -> None:
    generator = torch.Generator().manual_seed(0)
    centre, context = torch.randn(3, 4, generator=generator), torch.randn(3, 4, generator=generator)
    noise = torch.randn(3, 2, 4, generator=generator)
    by_hand = []
    for b in range(3):
        value = -math.log(1 / (1 + math.exp(-float(centre[b] @ context[b]))))
        for k in range(2):
            value -= math.log(1 / (1 + math.exp(float(noise[b, k] @ centre[b]))))
        by_hand.append(value)
    got = ctx.negative_sampling_loss(centre, context, noise, reduce=False)
    np.testing.assert_allclose(got.numpy(), by_hand, rtol=1e-5)
    assert ctx.negative_sampling_loss(centre, context, noise).item() == pytest.approx(
        sum(by_hand) / 3, rel=1e-5
    )


def test_the_noise_distribution_is_counts_to_the_three_quarters() -> None:
    got = ctx.noise_distribution([16, 1])
    assert got.tolist() == pytest.approx([8 / 9, 1 / 9])


def test_skip_gram_loss_starts_at_k_plus_one_ln_two_and_falls(static) -> None:
    k = static.settings.negatives
    assert static.losses[0] == pytest.approx((k + 1) * math.log(2), abs=1e-3)
    assert np.mean(static.losses[-5:]) < np.mean(static.losses[:5]) - 1.0
    assert static.vectors.shape == (len(static.words), static.settings.dim)


def test_skip_gram_is_seeded() -> None:
    text = "the dog sees the cat .\nthe cat sees the bird .\n" * 30
    settings = ctx.SkipGramSettings(dim=8, batch_size=32)
    first, again = ctx.train_skip_gram(text, settings), ctx.train_skip_gram(text, settings)
    assert torch.equal(first.vectors, again.vectors) and first.losses == again.losses
    other = ctx.train_skip_gram(text, ctx.SkipGramSettings(dim=8, batch_size=32, seed=1))
    assert not torch.equal(first.vectors, other.vectors)


def test_nearest_neighbours_of_a_frequent_noun_are_nouns(static) -> None:
    neighbours = ctx.static_neighbours(static, "dog", k=8)
    assert len(neighbours) == 8 and "dog" not in [w for w, _ in neighbours]
    assert {w for w, _ in neighbours} <= NOUNS, neighbours
    scores = [s for _, s in neighbours]
    assert scores == sorted(scores, reverse=True)


def test_static_vectors_are_the_same_in_every_context(static) -> None:
    copies = ctx.static_context_vectors(static, "that", 4)
    assert all(torch.equal(row, static.vector("that")) for row in copies)
    assert (ctx.cosine_matrix(copies) == 1.0).all()  # exactly 1, by construction
    assert (ctx.mean_pair_similarity(copies[None]) == 1.0).all()


def test_an_unseen_word_has_no_static_vector(static) -> None:
    assert static.index("bank") is None and static.index("DOG") == static.index("dog")
    with pytest.raises(KeyError, match="never appears"):
        ctx.static_neighbours(static, "bank")


@pytest.mark.parametrize(
    ("change", "message"),
    [({"dim": 1}, "dim"), ({"window": 0}, "window"), ({"learning_rate": 0.0}, "learning rate")],
)
def test_bad_settings_are_refused(change, message) -> None:
    with pytest.raises(ValueError, match=message):
        ctx.SkipGramSettings(**change).check()


# ---------------------------------------------------------------------------------------------
# Contextual vectors
# ---------------------------------------------------------------------------------------------


def test_layers_are_the_models_own_hidden_states(bert) -> None:
    """The record's layers equal the hidden states the forward pass returns."""
    state = ctx.sentence_states(bert.model, bert.tokenizer, SUBJECT_THAT)
    trace = trace_ids(bert.model, state.ids, state.tokens, token_type_ids=[0] * len(state.ids))
    assert state.states.shape == (bert.config.n_layer + 1, len(state.ids), bert.config.n_embd)
    for layer, hidden in enumerate(trace.hidden_states):
        torch.testing.assert_close(state.states[layer], hidden[0])


def test_the_same_word_at_the_same_position_is_identical_at_layer_zero(bert) -> None:
    vectors = ctx.contextual_vectors(
        bert.model, bert.tokenizer, "that", [SUBJECT_THAT, OBJECT_THAT]
    )
    assert torch.equal(vectors.layers[0, 0], vectors.layers[0, 1])
    assert ctx.pair_similarities(vectors.layers)[(0, 1)][0].item() == 1.0
    assert (ctx.pair_similarities(vectors.layers)[(0, 1)][1:] < 1.0).all()


def test_an_ambiguous_word_differs_more_across_meanings_than_across_near_copies(bert) -> None:
    """The word "that" as the subject of its clause and as its object, against two subject
    uses."""
    vectors = ctx.contextual_vectors(
        bert.model, bert.tokenizer, "that", [SUBJECT_THAT, SUBJECT_THAT_AGAIN, OBJECT_THAT]
    )
    pairs = ctx.pair_similarities(vectors.layers)
    last = bert.config.n_layer
    assert pairs[(0, 2)][last] < pairs[(0, 1)][last] - 0.01
    assert pairs[(0, 2)][last] < pairs[(0, 2)][0]


def test_a_word_split_into_pieces_gets_the_mean_of_its_pieces(bert) -> None:
    text = "the bank is old ."
    vectors = ctx.contextual_vectors(bert.model, bert.tokenizer, "BANK", [text])
    state = vectors.sentences[0]
    assert [state.tokens[p] for p in vectors.spans[0]] == ["b", "##an", "##k"]
    torch.testing.assert_close(vectors.layers[:, 0], state.states[:, 2:5].mean(dim=1))


def test_words_are_found_whole(bert) -> None:
    assert ctx.find_word("the dogs that chase", "dog") is None
    assert ctx.find_word("Mia sees the dog.", "dog") == (13, 16)
    vectors = ctx.contextual_vectors(
        bert.model, bert.tokenizer, "dog", ["the dogs run .", "Mia sees the dog .", "the dog ."]
    )
    assert vectors.found == [1, 2] and vectors.missing == [0]
    assert vectors.layers.shape == (bert.config.n_layer + 1, 2, bert.config.n_embd)


def test_offsets_come_the_same_from_a_transformers_tokenizer(bert) -> None:
    from transformers import PreTrainedTokenizerFast

    from tinyformers.hub.registry import HFTokenizer

    text = "the Dogs, chase Zoe. bankx"
    wrapped = HFTokenizer(PreTrainedTokenizerFast(tokenizer_object=bert.tokenizer.hf), "wordpiece")
    ids, offsets = ctx.token_offsets(wrapped, text)
    assert (ids, offsets) == ctx.token_offsets(bert.tokenizer, text)
    assert ids == bert.tokenizer.encode(text) and offsets[1] == (4, 8)


@pytest.mark.parametrize(
    ("word", "message"), [("", "type a word"), ("two words", "one word"), ("x" * 41, "at most")]
)
def test_a_word_that_is_not_one_word_is_refused(bert, word, message) -> None:
    with pytest.raises(ValueError, match=message):
        ctx.contextual_vectors(bert.model, bert.tokenizer, word, ["the dog runs ."])


def test_the_shared_model_is_left_as_it_was(bert) -> None:
    before = {k: v.clone() for k, v in bert.model.state_dict().items()}
    ctx.contextual_vectors(bert.model, bert.tokenizer, "that", [SUBJECT_THAT, OBJECT_THAT])
    ctx.context_bank(bert.model, bert.tokenizer, [SUBJECT_THAT])
    for key, value in bert.model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not bert.model.training
    assert all(p.grad is None for p in bert.model.parameters())


# ---------------------------------------------------------------------------------------------
# Contextual neighbours and the map
# ---------------------------------------------------------------------------------------------


def test_an_occurrence_is_its_own_nearest_neighbour(bert) -> None:
    sentences = ctx.bank_sentences(stories_text(), 40)
    assert len(sentences) == 40 and all(s.endswith(" .") for s in sentences)
    bank = ctx.context_bank(bert.model, bert.tokenizer, sentences)
    n = 7
    for layer in range(bert.config.n_layer + 1):
        (best, score), *_ = ctx.contextual_neighbours(bank, bank.vectors[layer, n], layer, k=3)
        assert best == bank.occurrences[n] and score == pytest.approx(1.0, abs=1e-6)


def test_contextual_neighbours_of_that_follow_its_role(bert) -> None:
    """Among corpus occurrences of "that", the ones nearest a subject "that" are subjects."""
    bank = ctx.context_bank(bert.model, bert.tokenizer, ctx.bank_sentences(stories_text(), 300))
    vectors = ctx.contextual_vectors(bert.model, bert.tokenizer, "that", [SUBJECT_THAT])
    last = bert.config.n_layer
    near = ctx.contextual_neighbours(bank, vectors.layers[last, 0], last, k=5)
    assert all(o.word == "that" for o, _ in near)
    verbs_after = [o.sentence.split(" that ")[1].split()[0] for o, _ in near]
    assert sum(word != "the" for word in verbs_after) >= 4, verbs_after  # verb right after


def test_pca_matches_the_covariance_eigenvalues() -> None:
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(30, 5, generator=generator) * torch.tensor([5.0, 3.0, 1.0, 0.5, 0.1])
    coords, explained = ctx.pca_2d(points)
    centred = (points - points.mean(0)).double().numpy()
    eigen = np.sort(np.linalg.eigvalsh(centred.T @ centred))[::-1]
    np.testing.assert_allclose(explained, eigen[:2] / eigen.sum(), rtol=1e-6)
    np.testing.assert_allclose((coords.double() ** 2).sum(0).numpy(), eigen[:2], rtol=1e-4)
    two, share = ctx.pca_2d(points[:2])
    assert two.shape == (2, 2) and share[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no variation"):
        ctx.pca_2d(torch.ones(3, 4))


def test_cosine_matrix_is_cosine_similarity() -> None:
    generator = torch.Generator().manual_seed(1)
    rows = torch.randn(4, 6, generator=generator)
    want = F.cosine_similarity(rows[:, None], rows[None], dim=-1)
    torch.testing.assert_close(ctx.cosine_matrix(rows), want)


# ---------------------------------------------------------------------------------------------
# Predict, then reveal
# ---------------------------------------------------------------------------------------------


class Named:
    name = "toy-bert"


def hand_vectors(layers: list[list[list[float]]], found: list[int]) -> ctx.ContextualVectors:
    """The word in the sentences ``found`` (of five), with ``layers[l][k]`` its vector at layer
    l in the k-th of them, at position k + 1."""
    sentences = [
        ctx.SentenceStates(f"text {n}", [], [], torch.zeros(len(layers), 1, 2)) for n in range(5)
    ]
    spans = [[k + 1] for k in range(len(found))]
    return ctx.ContextualVectors("word", sentences, found, spans, torch.tensor(layers))


def test_layer_zero_is_the_cosine_of_the_first_two_sentences_at_layer_zero() -> None:
    vectors = hand_vectors([[[1, 0], [1, 1], [0, 1]], [[1, 0], [1, 0], [1, 0]]], [0, 2, 4])
    prediction = ctx.predict_layer_zero(vectors, Named())
    assert prediction.values == {"model": "toy-bert", "word": "'word'", "first": 1, "second": 3}
    reveal = prediction.reveal()
    assert reveal.answer == pytest.approx(1 / math.sqrt(2))
    assert reveal.values == {"first_position": 1, "second_position": 2, "last": pytest.approx(1)}
    assert list(reveal.data["pairs"]) == [(0, 2)]


def test_the_same_word_at_the_same_position_answers_one_and_elsewhere_less(bert) -> None:
    same = ctx.contextual_vectors(bert.model, bert.tokenizer, "that", [SUBJECT_THAT, OBJECT_THAT])
    assert ctx.predict_layer_zero(same, bert).reveal().answer == pytest.approx(1.0, abs=1e-6)
    moved = ["the dogs that chase the cat run .", "that dog runs ."]
    moved = ctx.contextual_vectors(bert.model, bert.tokenizer, "that", moved)
    assert ctx.predict_layer_zero(moved, bert).reveal().answer < 0.99


def test_closest_sentence_is_the_largest_cosine_at_the_last_layer() -> None:
    first_layer = [[1, 0], [1, 0], [1, 0], [1, 0]]
    last_layer = [[1, 0], [0, 1], [1, 0.2], [-1, 0]]
    vectors = hand_vectors([first_layer, last_layer], [0, 1, 2, 3])
    prediction = ctx.predict_closest_sentence(vectors, Named())
    assert prediction.values["sentence"] == "sentence 1 (text 0)"
    assert prediction.choices == (
        "sentence 2 (text 1)",
        "sentence 3 (text 2)",
        "sentence 4 (text 3)",
    )
    reveal = prediction.reveal()
    assert reveal.answer == "sentence 3 (text 2)"
    assert reveal.values["farthest"] == "sentence 4 (text 3)"
    assert reveal.values["lowest"] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="at least 3"):
        ctx.predict_closest_sentence(hand_vectors([[[1, 0], [1, 0]]], [0, 1]), Named())


def test_a_long_sentence_is_cut_in_its_choice() -> None:
    vectors = hand_vectors([[[1, 0]]], [0])
    long = "word " * 30
    vectors.sentences[0] = ctx.SentenceStates(long, [], [], torch.zeros(1, 1, 2))
    label = ctx.sentence_choice(vectors, 0)
    assert label.startswith("sentence 1 (word word") and label.endswith("…)")
    assert len(label) == len("sentence 1 ()") + ctx.LABEL_CHARS


def test_least_alike_layer_is_the_smallest_cosine_between_first_and_last() -> None:
    # first and last sentence: cosines 1, 0, 1/√2 at layers 0, 1, 2; the middle one is ignored
    layers = [[[1, 0], [5, 5], [1, 0]], [[1, 0], [5, 5], [0, 1]], [[1, 0], [5, 5], [1, 1]]]
    prediction = ctx.predict_least_alike_layer(hand_vectors(layers, [0, 1, 2]), Named())
    assert (prediction.values["first"], prediction.values["second"]) == (1, 3)
    assert prediction.values["layers"] == 2 and prediction.bounds == (0, 2)
    reveal = prediction.reveal()
    assert reveal.answer == 1
    assert reveal.values == {
        "similarity": pytest.approx(0.0),
        "zero": pytest.approx(1.0),
        "top": pytest.approx(1 / math.sqrt(2)),
    }
    with pytest.raises(ValueError, match="same vector at every layer"):
        ctx.predict_least_alike_layer(hand_vectors([[[1, 0], [1, 0]]] * 3, [0, 1]), Named())


def test_least_alike_layer_agrees_with_the_hidden_states(bert) -> None:
    sentences = [SUBJECT_THAT, "the cat sees the dog that runs ."]
    vectors = ctx.contextual_vectors(bert.model, bert.tokenizer, "that", sentences)
    answer = ctx.predict_least_alike_layer(vectors, bert).reveal().answer
    states = [ctx.sentence_states(bert.model, bert.tokenizer, s).states for s in sentences]
    positions = [3, 6]  # "that" after [CLS] the dogs / [CLS] the cat sees the dog
    assert vectors.spans == [[3], [6]]
    cosines = [
        F.cosine_similarity(states[0][layer, positions[0]], states[1][layer, positions[1]], dim=0)
        for layer in range(states[0].size(0))
    ]
    assert answer == int(torch.stack(cosines).argmin())
