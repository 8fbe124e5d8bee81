"""Step-by-step greedy decoding: the same output as ``Seq2Seq.generate_greedy``, attention rows
that are distributions over the source, padding that gets no attention, and the model card's
exact-match metric reproduced."""

import json
from types import SimpleNamespace

import pytest
import torch

from tinyformers.course.encoder_decoder import (
    MEAN,
    DecodingStep,
    decode_with_trace,
    encode_source,
    exact_match,
    future_weight,
    generated_ids,
    greedy_decode_batch,
    greedy_steps,
    head_weights,
    known_tokens,
    model_shape,
    pad_sources,
    predict_decoder_runs,
    predict_last_character_source,
    predict_span_target_length,
    row_sum_deviation,
    stack_depths,
    step_row,
    strongest_sources,
    what_if_rate,
)
from tinyformers.hub.registry import MODELS_DIR, load_shipped
from tinyformers.model.build import count_parameters
from tinyformers.model.config import Seq2SeqConfig
from tinyformers.text.span_corruption import corrupt_spans
from tinyformers.text.tokenizers import SPECIAL_TOKENS
from tinyformers.trace import trace_seq2seq
from tinyformers.training.zoo import date_splits

MODEL = "seq2seq-date"
ODD_SOURCES = ["31 February 2021", "1 1 1", "hello", "2", "June June June June", "0"]


@pytest.fixture(scope="module")
def date_model():
    return load_shipped(MODEL)


@pytest.fixture(scope="module")
def held_out():
    return date_splits()[1]


def reference(model, tokenizer, src_ids, max_new_tokens=None) -> list[int]:
    src = torch.tensor([src_ids])
    out = model.generate_greedy(src, tokenizer.bos_id, tokenizer.eos_id, max_new_tokens)
    return out[0].tolist()


# ---------------------------------------------------------------------------------------------
# One source, step by step
# ---------------------------------------------------------------------------------------------


def test_steps_equal_generate_greedy(date_model, held_out):
    model, tok = date_model.model, date_model.tokenizer
    sources = [source for source, _ in held_out[:25]] + ODD_SOURCES
    for source in sources:
        src = encode_source(tok, source, model.config.block_size)
        steps = greedy_steps(model, tok, src)
        assert generated_ids(steps) == reference(model, tok, src), source
        assert [s.index for s in steps] == list(range(len(steps)))
        assert all(not s.is_end for s in steps[:-1])


def test_steps_end_with_eos_on_real_dates(date_model, held_out):
    model, tok = date_model.model, date_model.tokenizer
    for source, target in held_out[:10]:
        steps = greedy_steps(model, tok, encode_source(tok, source, model.config.block_size))
        assert steps[-1].is_end and steps[-1].token == "[EOS]"
        assert tok.decode(generated_ids(steps)) == target


def test_a_length_limit_stops_like_generate_greedy(date_model):
    model, tok = date_model.model, date_model.tokenizer
    src = encode_source(tok, "12 March 2021", model.config.block_size)
    for limit in (0, 1, 3):
        steps = greedy_steps(model, tok, src, max_new_tokens=limit)
        assert len(steps) == limit
        assert generated_ids(steps) == reference(model, tok, src, limit)
    with pytest.raises(ValueError, match="max_new_tokens"):
        greedy_steps(model, tok, src, max_new_tokens=-1)


def test_a_model_that_never_ends_stops_at_its_block_size(make_model, char_tokenizer):
    model = make_model(Seq2SeqConfig, vocab_size=char_tokenizer.vocab_size)
    src = char_tokenizer.encode("the cat sat")
    steps = greedy_steps(model, char_tokenizer, src)
    assert generated_ids(steps) == reference(model, char_tokenizer, src)
    if not steps[-1].is_end:
        assert len(steps) == model.config.block_size - 1


def test_probability_is_that_of_the_chosen_token(date_model):
    model, tok = date_model.model, date_model.tokenizer
    src = encode_source(tok, "7 October 1950", model.config.block_size)
    steps = greedy_steps(model, tok, src)
    decoder_input = torch.tensor([[tok.bos_id, *generated_ids(steps)]])
    with torch.no_grad():
        logits = model(torch.tensor([src]), decoder_input).logits[0]  # (T, vocab)
    for step in steps:
        expected = torch.softmax(logits[step.index], dim=-1)
        assert step.probability == pytest.approx(expected[step.token_id].item(), abs=1e-5)
        assert step.alternatives[0] == (step.token, pytest.approx(step.probability))
        assert [p for _, p in step.alternatives] == sorted(
            (p for _, p in step.alternatives), reverse=True
        )


def test_cross_attention_rows_are_distributions_over_the_source(date_model, held_out):
    model, tok = date_model.model, date_model.tokenizer
    config = model.config
    for source, _ in held_out[:5]:
        src = encode_source(tok, source, config.block_size)
        for step in greedy_steps(model, tok, src):
            rows = step.cross_attention
            assert rows.shape == (config.n_decoder_layer, config.n_head, len(src))
            assert (rows >= 0).all()
            torch.testing.assert_close(rows.sum(dim=-1), torch.ones(rows.shape[:2]))


def test_step_rows_equal_the_trace_of_the_whole_output(date_model):
    """Causal decoding: the row a step saw equals that row when the finished output is traced."""
    model, tok = date_model.model, date_model.tokenizer
    src = encode_source(tok, "23 November 2087", model.config.block_size)
    steps = greedy_steps(model, tok, src)
    decoder_ids = [tok.bos_id, *(s.token_id for s in steps[:-1])]
    trace = trace_seq2seq(
        model, src, decoder_ids, tok.display_tokens(src), tok.display_tokens(decoder_ids)
    )
    for step in steps:
        for layer, weights in enumerate(trace.cross_attentions):
            torch.testing.assert_close(step.cross_attention[layer], weights[0, :, step.index])


# ---------------------------------------------------------------------------------------------
# A padded batch
# ---------------------------------------------------------------------------------------------


def test_padding_gets_exactly_zero_attention_and_rows_sum_to_one(date_model):
    model, tok = date_model.model, date_model.tokenizer
    sources = ["1 May 2000", "30 September 1999", "12 June 2021", "5 July 1905"]
    ids = [encode_source(tok, s, model.config.block_size) for s in sources]
    decoded = greedy_decode_batch(model, tok, ids)
    for layer in decoded.cross_attentions:
        assert layer.shape[:2] == (len(sources), model.config.n_head)
        torch.testing.assert_close(layer.sum(dim=-1), torch.ones(layer.shape[:-1]))
        for row, source_ids in enumerate(ids):
            assert (layer[row, :, :, len(source_ids) :] == 0).all()
            assert (layer[row, :, :, : len(source_ids)] > 0).any()


def test_batch_decoding_equals_decoding_each_source_alone(date_model, held_out):
    model, tok = date_model.model, date_model.tokenizer
    sources = [source for source, _ in held_out[:30]] + ODD_SOURCES
    ids = [encode_source(tok, s, model.config.block_size) for s in sources]
    decoded = greedy_decode_batch(model, tok, ids)
    assert decoded.ids == [reference(model, tok, src) for src in ids]


def test_pad_sources_builds_ids_and_mask():
    ids, mask = pad_sources([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="at least one token"):
        pad_sources([[5], []], pad_id=0)
    with pytest.raises(ValueError, match="at least one token"):
        pad_sources([], pad_id=0)


# ---------------------------------------------------------------------------------------------
# Exact match: the model card's metric
# ---------------------------------------------------------------------------------------------


def card_metric() -> float:
    config = json.loads((MODELS_DIR / MODEL / "config.json").read_text(encoding="utf-8"))
    return config["metadata"]["metrics"]["exact_match"]


def test_exact_match_on_the_held_out_set_reproduces_the_model_card(date_model, held_out):
    measured = exact_match(date_model.model, date_model.tokenizer, held_out)
    assert measured == card_metric()


def test_exact_match_counts_wrong_targets(date_model, held_out):
    pairs = held_out[:20]
    spoiled = [(s, t if i % 4 else t[::-1]) for i, (s, t) in enumerate(pairs)]
    model, tok = date_model.model, date_model.tokenizer
    assert exact_match(model, tok, pairs, batch_size=7) == 1.0
    assert exact_match(model, tok, spoiled, batch_size=7) == 0.75


def test_exact_match_checks_its_arguments(date_model):
    model, tok = date_model.model, date_model.tokenizer
    with pytest.raises(ValueError, match="at least one"):
        exact_match(model, tok, [])
    with pytest.raises(ValueError, match="batch_size"):
        exact_match(model, tok, [("1 May 2000", "2000-05-01")], batch_size=0)


# ---------------------------------------------------------------------------------------------
# Checking what the student types
# ---------------------------------------------------------------------------------------------


def test_encode_source_strips_spaces(date_model):
    tok = date_model.tokenizer
    assert encode_source(tok, "  1 May 2000 ", 24) == tok.encode("1 May 2000")


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "nothing to read"),
        ("   ", "nothing to read"),
        ("12 Март 2021", r"'М' \(U\+041C CYRILLIC CAPITAL LETTER EM\)"),
        ("12 March 2021 🐶", r"U\+1F436 DOG FACE"),
        ("x", "this character: 'x'"),
        ("</script><img src=x onerror=alert(1)>", "LESS-THAN SIGN"),
        ("12 March 2021" * 3, "at most 24"),
        ("1" * 50_000, "50000 tokens"),
    ],
)
def test_encode_source_explains_what_is_wrong(date_model, text, message):
    with pytest.raises(ValueError, match=message):
        encode_source(date_model.tokenizer, text, 24)


def test_many_unknown_characters_are_listed_briefly(date_model):
    with pytest.raises(ValueError, match="and 4 more"):
        encode_source(date_model.tokenizer, "qwxzkQWXZKÄÖ", 24)


# ---------------------------------------------------------------------------------------------
# What the lesson page reads
# ---------------------------------------------------------------------------------------------


def test_decode_with_trace_traces_the_finished_output(date_model):
    model, tok = date_model.model, date_model.tokenizer
    steps, trace = decode_with_trace(model, tok, "  23 November 2087 ")
    src = encode_source(tok, "23 November 2087", model.config.block_size)
    assert [s.token_id for s in steps] == [s.token_id for s in greedy_steps(model, tok, src)]
    assert trace.encoder_tokens == tok.display_tokens(src)
    assert trace.input_ids == [tok.bos_id, *(s.token_id for s in steps[:-1])]
    for step in steps:  # position t of the trace predicts step t
        assert int(trace.logits[0, step.index].argmax()) == step.token_id
    with pytest.raises(ValueError, match="nothing to read"):
        decode_with_trace(model, tok, "   ")


def test_known_tokens_are_the_vocabulary_without_special_tokens(date_model):
    tok = date_model.tokenizer
    known = known_tokens(tok)
    assert not set(known) & set(SPECIAL_TOKENS)
    assert len(known) == tok.vocab_size - len(SPECIAL_TOKENS)
    assert {"0", "9", " ", "M"} <= set(known)


def test_head_weights_pick_one_head_or_the_mean():
    layers = [torch.rand(1, 3, 4, 5) for _ in range(2)]
    torch.testing.assert_close(head_weights(layers, 1, 2), layers[1][0, 2])
    torch.testing.assert_close(head_weights(layers, 0, MEAN), layers[0][0].sum(dim=0) / 3)
    with pytest.raises(ValueError, match="layer must be a number from 0 to 1"):
        head_weights(layers, 2, 0)
    with pytest.raises(ValueError, match="head must be 'mean' or a number from 0 to 2"):
        head_weights(layers, 0, 3)


def test_step_row_picks_one_head_or_the_mean():
    rows = torch.rand(2, 3, 6)  # (layers, heads, source)
    torch.testing.assert_close(step_row(rows, 1, 0), rows[1, 0])
    torch.testing.assert_close(step_row(rows, 0, MEAN), rows[0].sum(dim=0) / 3)
    with pytest.raises(ValueError, match="head must be"):
        step_row(rows, 0, "first")


def test_future_weight_is_zero_under_a_causal_mask_and_the_largest_weight_above_otherwise():
    causal = torch.softmax(torch.randn(5, 5).masked_fill(torch.ones(5, 5).triu(1).bool(), -1e9), -1)
    assert future_weight(causal) == 0.0
    full = torch.tensor([[0.5, 0.2, 0.3], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    assert future_weight(full) == pytest.approx(0.3)
    assert future_weight(torch.ones(1, 1)) == 0.0
    with pytest.raises(ValueError, match="square"):
        future_weight(torch.ones(2, 3))


def test_strongest_sources_and_row_sum_deviation():
    cross = torch.tensor([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1], [0.2, 0.2, 0.5]])
    assert strongest_sources(cross) == [1, 0, 2]
    assert row_sum_deviation(cross) == pytest.approx(0.1)
    assert row_sum_deviation(torch.softmax(torch.randn(4, 7), -1)) < 1e-6


def test_model_shapes_are_measured_on_the_shipped_models():
    for name, family in [("bert-stories", "bert"), ("gpt-stories", "gpt"), (MODEL, "seq2seq")]:
        loaded = load_shipped(name)
        shape = model_shape(loaded.family, loaded.model)
        config = loaded.config
        assert loaded.family == shape.family == family
        assert (shape.heads, shape.width) == (config.n_head, config.n_embd)
        assert shape.parameters == count_parameters(loaded.model)
        expected = {
            "bert": (config.n_layer, 0),
            "gpt": (0, config.n_layer),
            "seq2seq": (config.n_layer, getattr(config, "n_decoder_layer", None)),
        }
        assert (shape.encoder_layers, shape.decoder_layers) == expected[family]
    assert stack_depths("seq2seq", Seq2SeqConfig(n_layer=3, n_decoder_layer=2)) == (3, 2)
    with pytest.raises(ValueError, match="unknown model family 'rnn'"):
        stack_depths("rnn", Seq2SeqConfig())


# ---------------------------------------------------------------------------------------------
# Predict, then reveal
# ---------------------------------------------------------------------------------------------


def step(index: int, token: str, rows: torch.Tensor | None = None) -> DecodingStep:
    """A decoding step built by hand (``rows``: its (layers, heads, source) cross-attention)."""
    rows = torch.full((1, 1, 3), 1 / 3) if rows is None else rows
    return DecodingStep(index, index, token, 1.0, ((token, 1.0),), rows, token == "[EOS]")


def test_decoder_runs_once_per_output_token_and_once_for_eos():
    steps = [step(0, "4"), step(1, "2"), step(2, "[EOS]")]
    prediction = predict_decoder_runs("x", steps)
    assert prediction.values == {"source": "x"}
    reveal = prediction.reveal()
    assert reveal.answer == 3
    assert reveal.values == {"output": "42", "characters": 2, "end_runs": 1, "runs": 3}


def test_decoder_runs_on_a_real_date_are_its_output_and_eos(date_model):
    steps, _ = decode_with_trace(date_model.model, date_model.tokenizer, "2 July 1998")
    src = encode_source(date_model.tokenizer, "2 July 1998", date_model.config.block_size)
    output = reference(date_model.model, date_model.tokenizer, src)
    assert date_model.tokenizer.decode(output) == "1998-07-02"
    assert predict_decoder_runs("2 July 1998", steps).reveal().answer == len(output) + 1 == 11


# Source "a b c"; the last written step's cross-attention: head 0 looks at c, head 1 at a, and
# their mean (0.35, 0.15, 0.5) at c.
LAST_ROWS = torch.tensor([[[0.1, 0.1, 0.8], [0.6, 0.2, 0.2]]])  # (1 layer, 2 heads, 3)


@pytest.mark.parametrize(
    ("head", "answer", "weight"),
    [(0, "2: 'c'", "0.800"), (1, "0: 'a'", "0.600"), (MEAN, "2: 'c'", "0.500")],
)
def test_last_character_source_reads_the_last_written_step(head, answer, weight):
    steps = [step(0, "x"), step(1, "y", LAST_ROWS), step(2, "[EOS]")]
    trace = SimpleNamespace(encoder_tokens=["a", "b", "c"])
    prediction = predict_last_character_source("a b c", steps, trace, 0, head)
    assert prediction.choices == ("0: 'a'", "1: 'b'", "2: 'c'")
    assert prediction.values["token"] == "'y'"  # the last character, not [EOS]
    reveal = prediction.reveal()
    assert reveal.answer == answer and reveal.values["weight"] == weight
    assert reveal.data["step"] is steps[1]


def test_last_character_source_needs_a_written_character():
    trace = SimpleNamespace(encoder_tokens=["a"])
    with pytest.raises(ValueError, match="wrote nothing"):
        predict_last_character_source("a", [step(0, "[EOS]")], trace, 0, 0)


@pytest.mark.parametrize(("rate", "asked"), [(0.15, 0.3), (0.35, 0.5), (0.4, 0.25), (0.5, 0.35)])
def test_what_if_rate_stays_on_the_pages_scale(rate, asked):
    assert what_if_rate(rate) == asked


@pytest.mark.parametrize(
    ("words", "rate", "mean_span", "target"),
    [
        (20, 0.15, 3.0, 9),  # at 0.3: 6 dropped in round(6 / 3) = 2 spans, 3 sentinels
        (20, 0.4, 3.0, 8),  # at 0.25: 5 dropped in round(5 / 3) = 2 spans, 3 sentinels
        (10, 0.15, 1.0, 7),  # at 0.3: 3 dropped, one span each, 4 sentinels
        (32, 0.15, 3.0, 14),  # the page's sentence: 10 dropped in 3 spans, 4 sentinels
    ],
)
def test_span_target_length_by_hand(words, rate, mean_span, target):
    sentence = [f"w{i}" for i in range(words)]
    prediction = predict_span_target_length((sentence, rate, mean_span, 7))
    reveal = prediction.reveal()
    assert reveal.answer == target
    corruption = corrupt_spans(sentence, what_if_rate(rate), mean_span, seed=123)
    assert len(corruption.targets) == target  # any seed: the counts do not depend on it
