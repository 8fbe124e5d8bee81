"""Masked-LM computations: the ledger follows its rates, labels mark exactly the selected
positions, the embedding sum is the model's own, and fill-in guesses are a plain forward pass."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch

from tinyformers.course.bert import (
    REVEAL_DRAWS,
    SPECIAL_IDS,
    attention_from,
    embedding_breakdown,
    epoch_ledgers,
    expected_selected_distribution,
    fill_in_blanks,
    ledger_statistics,
    masking_draws,
    ordinary_positions,
    pair_token_limits,
    predict_blank_attention,
    predict_blank_confidence,
    predict_masked_count,
    predict_segment_b,
    segment_row_lengths,
    selection_units,
    suggest_blank,
    trained_positions,
    with_blanks,
    word_starts,
)
from tinyformers.hub.registry import load_shipped
from tinyformers.text.inputs import bert_inputs
from tinyformers.text.masking import (
    IGNORE_INDEX,
    MASKED,
    NOT_SELECTED,
    RANDOM,
    UNCHANGED,
    MaskingRates,
    mask_tokens,
)
from tinyformers.trace import trace_ids

SENTENCE = "the friendly dogs that Mia sees run home ."
RATES = [
    MaskingRates(),
    MaskingRates(select_rate=0.3, mask_rate=0.5, random_rate=0.3),
    MaskingRates(select_rate=0.5, mask_rate=0.0, random_rate=1.0),
]


@pytest.fixture(scope="module")
def bert():
    return load_shipped("bert-stories")


@pytest.fixture(scope="module")
def ids(bert) -> list[int]:
    return bert_inputs(bert.tokenizer, SENTENCE)[0]


# ---------------------------------------------------------------------------------------------
# The rates hold over many draws
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("whole_word", [False, True], ids=["tokens", "whole words"])
@pytest.mark.parametrize("rates", RATES, ids=lambda r: f"{r.select_rate}-{r.mask_rate}")
def test_rates_over_ten_thousand_draws_are_within_one_point(bert, ids, rates, whole_word):
    stats = ledger_statistics(
        ids, bert.tokenizer, rates, seed=0, samples=10_000, whole_word=whole_word
    )
    assert stats.eligible == len(ids) - 2
    assert stats.select_rate == pytest.approx(rates.select_rate, abs=0.01)
    assert stats.share(MASKED) == pytest.approx(rates.mask_rate, abs=0.01)
    assert stats.share(RANDOM) == pytest.approx(rates.random_rate, abs=0.01)
    assert stats.share(UNCHANGED) == pytest.approx(rates.unchanged_rate, abs=0.01)


def test_statistics_add_up(bert, ids):
    stats = ledger_statistics(ids, bert.tokenizer, MaskingRates(), seed=3, samples=2_000)
    assert sum(stats.selected_histogram) == stats.samples
    weighted = sum(k * n for k, n in enumerate(stats.selected_histogram))
    assert weighted == stats.selected
    assert sum(stats.counts.values()) == stats.samples * stats.eligible
    assert stats.mean_selected == pytest.approx(stats.selected / stats.samples)


def test_histogram_follows_the_exact_distribution(bert, ids):
    stats = ledger_statistics(ids, bert.tokenizer, MaskingRates(), seed=1, samples=10_000)
    for observed, expected in zip(stats.selected_histogram, stats.expected_histogram, strict=True):
        assert observed / stats.samples == pytest.approx(expected, abs=0.015)


def test_special_tokens_are_never_selected():
    """[CLS], [SEP] and specials in the middle ([UNK], [PAD], [MASK]) stay untouched."""
    ids = torch.tensor([[2, 10, 1, 11, 0, 12, 4, 13, 3]]).expand(10_000, 9)
    special = torch.isin(ids[0], torch.tensor(sorted(SPECIAL_IDS)))
    out = mask_tokens(
        ids, 4, 50, SPECIAL_IDS, MaskingRates(select_rate=0.9), torch.Generator().manual_seed(0)
    )
    assert (out.ledger[:, special] == NOT_SELECTED).all()
    assert (out.labels[:, special] == IGNORE_INDEX).all()
    assert torch.equal(out.input_ids[:, special], ids[:, special])
    assert (out.ledger[:, ~special] != NOT_SELECTED).any(dim=0).all()  # the others do get picked


def test_special_tokens_never_selected_in_any_draw(bert, ids):
    for ledger in masking_draws(ids, bert.tokenizer, MaskingRates(select_rate=1.0), 0, 50):
        for code, special in zip(ledger.codes, ledger.special, strict=True):
            assert code != NOT_SELECTED or special
            assert not (special and code != NOT_SELECTED)


def test_a_sentence_of_only_unknown_characters_has_nothing_to_select(bert):
    ids = bert_inputs(bert.tokenizer, "Зоя 🐶")[0]
    stats = ledger_statistics(ids, bert.tokenizer, MaskingRates(), seed=0, samples=100)
    assert stats.eligible == 0 and stats.select_rate is None and stats.share(MASKED) is None
    assert stats.selected_histogram == [100] and stats.expected_histogram == [1.0]


# ---------------------------------------------------------------------------------------------
# One draw: the ledger, labels and inputs agree
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("whole_word", [False, True])
def test_labels_are_minus_100_exactly_where_not_selected(bert, ids, whole_word):
    tok = bert.tokenizer
    rates = MaskingRates(select_rate=0.4)
    for ledger in masking_draws(ids, tok, rates, seed=5, count=200, whole_word=whole_word):
        for i, code in enumerate(ledger.codes):
            original, seen, label = ledger.ids[i], ledger.input_ids[i], ledger.labels[i]
            if code == NOT_SELECTED:
                assert label == IGNORE_INDEX and seen == original
            else:
                assert label == original
            if code == MASKED:
                assert seen == tok.mask_id
            if code == UNCHANGED:
                assert seen == original
            if code == RANDOM:
                assert seen not in SPECIAL_IDS
        assert ledger.loss_positions == [i for i, c in enumerate(ledger.codes) if c != NOT_SELECTED]
        assert ledger.tokens == tok.display_tokens(ledger.ids)
        assert ledger.seen == tok.display_tokens(ledger.input_ids)


@pytest.mark.parametrize(
    "rates,expected",
    [
        (MaskingRates(select_rate=0.0), NOT_SELECTED),
        (MaskingRates(select_rate=1.0, mask_rate=1.0, random_rate=0.0), MASKED),
        (MaskingRates(select_rate=1.0, mask_rate=0.0, random_rate=1.0), RANDOM),
        (MaskingRates(select_rate=1.0, mask_rate=0.0, random_rate=0.0), UNCHANGED),
    ],
)
def test_extreme_rates(bert, ids, rates, expected):
    ledger = masking_draws(ids, bert.tokenizer, rates, seed=0, count=1)[0]
    ordinary = [c for c, s in zip(ledger.codes, ledger.special, strict=True) if not s]
    assert set(ordinary) == {expected}


def test_draws_are_reproducible_and_resampling_changes_them(bert, ids):
    five = masking_draws(ids, bert.tokenizer, MaskingRates(), seed=7, count=5)
    three = masking_draws(ids, bert.tokenizer, MaskingRates(), seed=7, count=3)
    assert five[:3] == three  # draw k does not depend on how many follow
    assert len({tuple(d.input_ids) for d in five}) > 1
    other_seed = masking_draws(ids, bert.tokenizer, MaskingRates(), seed=8, count=5)
    assert other_seed != five


def test_whole_word_masking_selects_all_pieces_together(bert, ids):
    tokens = bert.tokenizer.display_tokens(ids)
    friend = tokens.index("friend")
    assert tokens[friend + 1] == "##ly"
    home = [i for i, t in enumerate(tokens) if t in ("h", "##om", "##e")]
    draws = masking_draws(ids, bert.tokenizer, MaskingRates(0.5), 0, 300, whole_word=True)
    for ledger in draws:
        assert ledger.codes[friend] == ledger.codes[friend + 1]
        assert len({ledger.codes[i] for i in home}) == 1
    assert any(ledger.codes[friend] != NOT_SELECTED for ledger in draws)


def test_word_starts_and_selection_units():
    tokens = ["[CLS]", "the", "friend", "##ly", "h", "##om", "##e", "[SEP]"]
    starts = word_starts(tokens)
    assert starts == [True, True, True, False, True, False, False, True]
    ids = [2, 10, 11, 12, 13, 14, 15, 3]
    assert selection_units(ids) == [1] * 6
    assert selection_units(ids, starts) == [1, 2, 3]


def test_expected_distribution_is_a_sum_of_bernoullis():
    p = 0.15
    binomial = [math.comb(6, k) * p**k * (1 - p) ** (6 - k) for k in range(7)]
    assert expected_selected_distribution([1] * 6, p) == pytest.approx(binomial)
    q = 1 - p
    assert expected_selected_distribution([2, 1], p) == pytest.approx([q * q, q * p, p * q, p * p])
    assert sum(expected_selected_distribution([1, 2, 3], 0.3)) == pytest.approx(1.0)
    assert expected_selected_distribution([], 0.5) == [1.0]


# ---------------------------------------------------------------------------------------------
# Static and dynamic masking
# ---------------------------------------------------------------------------------------------


def test_static_masking_repeats_the_first_draw_and_dynamic_draws_again(bert, ids):
    tok, rates = bert.tokenizer, MaskingRates(select_rate=0.3)
    static = epoch_ledgers(ids, tok, rates, seed=2, epochs=4, dynamic=False)
    dynamic = epoch_ledgers(ids, tok, rates, seed=2, epochs=4, dynamic=True)
    assert len(static) == len(dynamic) == 4
    assert all(ledger == static[0] for ledger in static)
    assert dynamic == masking_draws(ids, tok, rates, seed=2, count=4)
    assert dynamic[0] == static[0]
    assert trained_positions(static) == static[0].loss_positions
    expected = sorted({p for ledger in dynamic for p in ledger.loss_positions})
    assert trained_positions(dynamic) == expected
    assert len(trained_positions(dynamic)) > len(trained_positions(static))


# ---------------------------------------------------------------------------------------------
# The input sum
# ---------------------------------------------------------------------------------------------


def test_embedding_sum_is_the_models_own_embedding_before_layer_norm(bert):
    model, tok = bert.model, bert.tokenizer
    breakdown = embedding_breakdown(model, tok, "Mia sees the friendly fox .", "she smiles .")
    ids, segments = bert_inputs(tok, "Mia sees the friendly fox .", "she smiles .")
    assert breakdown.ids == ids and breakdown.segments == segments
    assert segments[0] == 0 and segments[-1] == 1 and breakdown.tokens[0] == "[CLS]"

    seen = {}
    hook = model.ln_emb.register_forward_hook(lambda m, args, out: seen.update(x=args[0]))
    try:
        with torch.no_grad():
            out = model(
                torch.tensor([ids]),
                token_type_ids=torch.tensor([segments]),
                output_hidden_states=True,
            )
    finally:
        hook.remove()
    torch.testing.assert_close(breakdown.total, seen["x"][0])
    torch.testing.assert_close(breakdown.after_layer_norm, out.hidden_states[0][0])
    torch.testing.assert_close(breakdown.segment[-1], model.wse.weight[1].detach())


def test_embedding_of_one_sentence_is_all_segment_a(bert):
    breakdown = embedding_breakdown(bert.model, bert.tokenizer, "the dog runs .")
    assert set(breakdown.segments) == {0}
    assert breakdown.total.shape == (len(breakdown.ids), bert.config.n_embd)


def test_mean_lengths_are_the_average_row_norms(bert):
    breakdown = embedding_breakdown(bert.model, bert.tokenizer, "Mia sees the fox .", "she runs .")
    normalized = breakdown.after_layer_norm
    lengths = breakdown.mean_lengths()
    assert list(lengths) == ["token", "segment", "position", "sum", "after LayerNorm"]
    for name, row in zip(
        lengths,
        [breakdown.token, breakdown.segment, breakdown.position, breakdown.total, normalized],
        strict=True,
    ):
        norms = [math.sqrt(sum(x * x for x in vector)) for vector in row.tolist()]
        assert lengths[name] == pytest.approx(sum(norms) / len(norms), rel=1e-5)


def test_segment_row_lengths_are_the_norms_of_the_two_rows(bert):
    weight = bert.model.wse.weight.detach()
    expected = [math.sqrt(sum(x * x for x in row)) for row in weight.tolist()]
    assert segment_row_lengths(bert.model) == pytest.approx(expected, rel=1e-5)
    assert len(expected) == 2


@pytest.mark.parametrize(("block_size", "limits"), [(48, (22, 23)), (49, (23, 23)), (5, (1, 1))])
def test_pair_token_limits_fill_the_block(block_size, limits):
    assert pair_token_limits(block_size) == limits
    max_a, max_b = limits
    assert 3 + max_a + max_b <= block_size
    with pytest.raises(ValueError, match="no room for a sentence pair"):
        pair_token_limits(4)


def test_a_pair_at_the_limits_fits_the_model(bert):
    max_a, max_b = pair_token_limits(bert.config.block_size)
    ids_a = bert.tokenizer.encode("the dog runs . " * 20)[:max_a]
    ids_b = bert.tokenizer.encode("she smiles . " * 20)[:max_b]
    text_a, text_b = bert.tokenizer.decode(ids_a), bert.tokenizer.decode(ids_b)
    breakdown = embedding_breakdown(bert.model, bert.tokenizer, text_a, text_b)
    assert len(breakdown.ids) <= bert.config.block_size


def test_ordinary_positions_leave_out_special_tokens(bert, ids):
    positions = ordinary_positions(ids)
    assert positions == [i for i, token_id in enumerate(ids) if token_id not in SPECIAL_IDS]
    assert 0 not in positions and len(ids) - 1 not in positions
    assert len(positions) == len(ids) - 2  # all but [CLS] and [SEP]
    assert ordinary_positions([bert.tokenizer.cls_id, bert.tokenizer.unk_id]) == []


def test_ledger_counts_its_ordinary_tokens(bert, ids):
    ledger = masking_draws(ids, bert.tokenizer, MaskingRates(), 0, 1)[0]
    assert ledger.n_ordinary == len(ordinary_positions(ids)) == len(ids) - sum(ledger.special)


def test_too_long_a_pair_is_refused(bert):
    with pytest.raises(ValueError, match="at most 48"):
        embedding_breakdown(bert.model, bert.tokenizer, "the dog runs . " * 10, "she smiles . " * 5)


# ---------------------------------------------------------------------------------------------
# Filling in the blanks
# ---------------------------------------------------------------------------------------------


def test_fill_in_equals_a_direct_forward_and_softmax(bert):
    model, tok = bert.model, bert.tokenizer
    ids = bert_inputs(tok, "the lion that the girls fix cries .")[0]
    positions = [7, 2]
    trace, guesses = fill_in_blanks(model, tok, ids, positions, k=5)

    masked = list(ids)
    for p in positions:
        masked[p] = tok.mask_id
    with torch.no_grad():
        probabilities = model(torch.tensor([masked])).logits[0].softmax(dim=-1)
    assert trace.input_ids == masked
    for guess, position in zip(guesses, positions, strict=True):
        values, indices = probabilities[position].topk(5)
        assert guess.position == position
        assert guess.tokens == tok.display_tokens(indices.tolist())
        assert guess.probabilities == pytest.approx(values.tolist(), abs=1e-6)
        assert guess.answer == tok.display_tokens([ids[position]])[0]
        answer = probabilities[position, ids[position]].item()
        assert guess.answer_probability == pytest.approx(answer, abs=1e-6)
        assert guess.answer_rank == int((probabilities[position] > answer).sum()) + 1
        assert guess.top(2).tokens == guess.tokens[:2]


def test_attention_from_a_blank_is_the_traces_rows(bert):
    tok = bert.tokenizer
    ids = bert_inputs(tok, "the dogs run .")[0]
    trace, _ = fill_in_blanks(bert.model, tok, ids, [3])
    weights = attention_from(trace, 3)
    assert weights.shape == (bert.config.n_layer, bert.config.n_head, len(ids))
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(weights.shape[:2]))
    torch.testing.assert_close(weights[1, 2], trace.attentions[1][0, 2, 3])
    reference = trace_ids(bert.model, trace.input_ids, trace.tokens)
    torch.testing.assert_close(weights[0], reference.attentions[0][0, :, 3])


def test_suggested_blank_is_the_last_verb(bert):
    tok = bert.tokenizer
    tokens = tok.display_tokens(bert_inputs(tok, "the lion that the girls fix cries .")[0])
    assert tokens[suggest_blank(tokens)] == "cries"
    assert suggest_blank(["[CLS]", "[UNK]", "[SEP]"]) is None
    assert suggest_blank(["[CLS]", "x", "y", "z", "[SEP]"]) == 2


def test_bad_requests_are_refused_with_clear_messages(bert, ids):
    tok = bert.tokenizer
    with pytest.raises(ValueError, match="special token"):
        with_blanks(ids, [0], tok.mask_id)
    with pytest.raises(ValueError, match="outside the input"):
        with_blanks(ids, [len(ids)], tok.mask_id)
    with pytest.raises(ValueError, match="at least one position"):
        fill_in_blanks(bert.model, tok, ids, [])
    with pytest.raises(ValueError, match="k must be"):
        fill_in_blanks(bert.model, tok, ids, [1], k=0)
    with pytest.raises(ValueError, match="number of samples"):
        ledger_statistics(ids, tok, MaskingRates(), seed=0, samples=0)
    with pytest.raises(ValueError, match="seed"):
        masking_draws(ids, tok, MaskingRates(), seed=-1, count=1)
    with pytest.raises(ValueError, match="no tokens"):
        masking_draws([], tok, MaskingRates(), seed=0, count=1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        expected_selected_distribution([1], 1.5)


# ---------------------------------------------------------------------------------------------
# Predict, then reveal
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text_b", "in_b"), [("she smiles .", 4), ("the dogs run home .", 8)])
def test_segment_b_is_sentence_b_and_its_closing_sep(bert, text_b, in_b):
    # bert-stories reads "home" as h ##om ##e: sentence B has 7 tokens, then its [SEP]
    prediction = predict_segment_b(bert, ("Mia sees the friendly fox .", text_b))
    assert prediction.values == {"text_a": "Mia sees the friendly fox .", "text_b": text_b}
    reveal = prediction.reveal()
    assert reveal.answer == in_b == len(bert.tokenizer.encode(text_b)) + 1
    assert reveal.values["positions"] == len(
        bert_inputs(bert.tokenizer, "Mia sees the friendly fox .", text_b)[0]
    )


def test_segment_b_needs_both_sentences(bert):
    with pytest.raises(ValueError, match="both sentences"):
        predict_segment_b(bert, ("Mia sees the fox .", "   "))


@pytest.mark.parametrize(
    ("rates", "per_token"),
    [
        (MaskingRates(select_rate=1.0, mask_rate=1.0, random_rate=0.0), 1.0),  # every token
        (MaskingRates(select_rate=0.0), 0.0),  # none
        (MaskingRates(select_rate=1.0, mask_rate=0.0, random_rate=0.5), 0.0),  # none to [MASK]
    ],
)
def test_masked_count_by_construction(bert, ids, rates, per_token):
    reveal = predict_masked_count(bert, (ids, rates, 0, False)).reveal()
    assert reveal.answer == per_token * len(ordinary_positions(ids))
    assert reveal.values["draws"] == REVEAL_DRAWS


@pytest.mark.parametrize("whole_word", [False, True])
def test_masked_count_measures_select_times_mask_rate(bert, ids, whole_word):
    prediction = predict_masked_count(bert, (ids, MaskingRates(), 3, whole_word))
    assert prediction.values["select"] == "15%" and prediction.values["mask"] == "80%"
    reveal = prediction.reveal()
    expected = len(ordinary_positions(ids)) * 0.15 * 0.8
    assert reveal.values["expected"] == f"{expected:.3f}"
    assert reveal.answer == pytest.approx(expected, abs=0.05)  # 10,000 draws: σ ≈ 0.01
    assert reveal.data["stats"].samples == REVEAL_DRAWS


def masked_probabilities(bert, ids: list[int], positions: list[int]) -> torch.Tensor:
    masked = with_blanks(ids, positions, bert.tokenizer.mask_id)
    with torch.no_grad():
        return bert.model(torch.tensor([masked])).logits[0].softmax(dim=-1)  # (T, vocab)


def test_blank_confidence_is_the_top_probability_of_a_direct_forward(bert):
    tok = bert.tokenizer
    ids = bert_inputs(tok, "the lion that the girls fix cries .")[0]
    prediction = predict_blank_confidence(bert, (ids, [7, 2]))
    assert prediction.values["blank"] == "7: '[MASK]'"
    assert prediction.values["sentence"].split()[2] == "[MASK]"  # every blank is masked
    reveal = prediction.reveal()
    probabilities = masked_probabilities(bert, ids, [7, 2])[7]
    top = probabilities.topk(2)
    assert reveal.answer == pytest.approx(top.values[0].item(), abs=1e-6)
    assert reveal.values["top"] == repr(tok.display_tokens([top.indices[0].item()])[0])
    assert reveal.values["second_probability"] == f"{top.values[1].item():.3f}"


def test_blank_attention_is_the_argmax_of_the_mean_over_heads(bert):
    tok = bert.tokenizer
    ids = bert_inputs(tok, "the dogs that Zoe sees run .")[0]
    prediction = predict_blank_attention(bert, (ids, [6]))
    tokens = tok.display_tokens(with_blanks(ids, [6], tok.mask_id))
    assert prediction.choices == tuple(f"{i}: {t!r}" for i, t in enumerate(tokens))
    masked = with_blanks(ids, [6], tok.mask_id)
    with torch.no_grad():
        attentions = bert.model(torch.tensor([masked]), output_attentions=True).attentions
    mean = torch.stack([layer[0, :, 6] for layer in attentions]).mean(dim=(0, 1))
    best = int(mean.argmax())
    reveal = prediction.reveal()
    assert reveal.answer == f"{best}: {tokens[best]!r}"
    assert reveal.values["heads"] == bert.config.n_layer * bert.config.n_head
    assert reveal.data["position"] == 6


def test_blank_attention_of_a_model_without_queries_is_spread_evenly(bert):
    """With W_Q = 0 every score is 0, so every head spreads its attention evenly: the
    strongest position gets 1/T of it (which position wins the tie is left to rounding)."""
    blind = copy.deepcopy(bert.model)
    for block in blind.h:
        block.attn.q_proj.weight.data.zero_()
        block.attn.q_proj.bias.data.zero_()
    loaded = SimpleNamespace(model=blind, tokenizer=bert.tokenizer, config=blind.config)
    ids = bert_inputs(bert.tokenizer, "the dogs run .")[0]
    reveal = predict_blank_attention(loaded, (ids, [2])).reveal()
    assert reveal.values["weight"] == f"{1 / len(ids):.3f}"
    weights = reveal.data["weights"]
    torch.testing.assert_close(weights, torch.full_like(weights, 1 / len(ids)))
