"""Text into model inputs: BERT's wrapping, sentence pairs, typed special tokens."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyformers.hub.registry import load_shipped
from tinyformers.text.inputs import (
    END_OF_TEXT,
    SPECIAL_IDS,
    bert_inputs,
    bert_wrap,
    model_input_ids,
    read_typed_text,
    text_room,
    word_token_spans,
)
from tinyformers.text.tokenizers import SPECIAL_TOKENS


@pytest.fixture(scope="module")
def bert_tok():
    return load_shipped("bert-stories").tokenizer


@pytest.fixture(scope="module")
def gpt_tok():
    return load_shipped("gpt-stories").tokenizer


def test_special_ids_are_the_special_tokens(bert_tok) -> None:
    assert {bert_tok.id_to_token(i) for i in SPECIAL_IDS} == set(SPECIAL_TOKENS)


def test_bert_wrap_cuts_the_body_to_fit(bert_tok) -> None:
    ids = bert_tok.encode("the dog runs to the big cat .")
    wrapped = bert_wrap(bert_tok, ids, max_length=5)
    assert wrapped == [bert_tok.cls_id, *ids[:3], bert_tok.sep_id]
    with pytest.raises(ValueError, match="room for \\[CLS\\], one token and \\[SEP\\]"):
        bert_wrap(bert_tok, ids, max_length=2)


def test_text_room_leaves_bert_its_two_specials(bert_tok) -> None:
    room = text_room("bert", 7)
    assert room == 5
    ids = bert_tok.encode("the dog runs to the big cat .")
    assert len(bert_wrap(bert_tok, ids[:room])) == 7
    assert text_room("gpt", 7) == 7
    with pytest.raises(ValueError, match="no room for text"):
        text_room("bert", 2)


def test_model_input_ids_by_family(bert_tok) -> None:
    ids = bert_tok.encode("the dog runs .")
    assert model_input_ids(bert_tok, "gpt", "the dog runs .", 2) == ids[:2]
    assert model_input_ids(bert_tok, "bert", "the dog runs .") == bert_wrap(bert_tok, ids)


def test_typed_mask_is_the_mask_token(bert_tok) -> None:
    typed = read_typed_text(bert_tok, "bert", "the girl [MASK] the big dog .")
    tokens = bert_tok.display_tokens(typed.ids)
    assert tokens.count("[MASK]") == 1 and "##k" not in tokens and "[UNK]" not in tokens
    plain = bert_tok.encode("the girl")
    assert typed.ids[: len(plain) + 2] == [bert_tok.cls_id, *plain, bert_tok.mask_id]
    assert typed.notes == []


def test_typed_sep_makes_a_sentence_pair(bert_tok) -> None:
    typed = read_typed_text(bert_tok, "bert", "the dog runs . [SEP] it is happy .")
    expected_ids, expected_segments = bert_inputs(bert_tok, "the dog runs . ", " it is happy .")
    assert typed.ids == expected_ids
    assert typed.segments == expected_segments


def test_a_trailing_sep_is_not_doubled(bert_tok) -> None:
    typed = read_typed_text(bert_tok, "bert", "the dog runs . [SEP]")
    assert typed.ids == bert_inputs(bert_tok, "the dog runs . ")[0]


def test_specials_without_meaning_are_text_with_a_note(bert_tok, gpt_tok) -> None:
    typed = read_typed_text(gpt_tok, "gpt", "the [MASK] runs")
    assert typed.ids == gpt_tok.encode("the [MASK] runs")
    assert typed.notes and "[MASK]" in typed.notes[0]
    typed = read_typed_text(bert_tok, "bert", "a <|endoftext|> b")
    assert bert_tok.eos_id not in typed.ids and typed.notes


def test_end_of_text_is_gpts(gpt_tok) -> None:
    typed = read_typed_text(gpt_tok, "gpt", f"the dog runs .{END_OF_TEXT}the cat")
    assert typed.ids.count(gpt_tok.eos_id) == 1
    assert typed.segments is None


def test_max_length_keeps_the_closing_sep(bert_tok) -> None:
    typed = read_typed_text(bert_tok, "bert", "the dog runs to the big cat . [MASK]", max_length=4)
    assert len(typed.ids) == 4 and typed.ids[-1] == bert_tok.sep_id


def test_word_token_spans_cover_the_sentence(bert_tok) -> None:
    words = ["the", "dogs", "near", "the", "cat", "run", "."]
    spans = word_token_spans(bert_tok, words, offset=1)
    ids = bert_tok.encode(" ".join(words))
    assert spans[0][0] == 1 and spans[-1][1] == 1 + len(ids)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", " ", ".", "[MASK]", "[SEP]", "[CLS]"]), max_size=30))
def test_bert_input_is_always_well_formed(pieces) -> None:
    text = "".join(pieces)
    tok = load_shipped("bert-stories").tokenizer
    typed = read_typed_text(tok, "bert", text, max_length=16)
    assert typed.ids[0] == tok.cls_id and typed.ids[-1] == tok.sep_id
    assert len(typed.ids) <= 16 and len(typed.segments) == len(typed.ids)
    assert typed.segments == sorted(typed.segments) and set(typed.segments) <= {0, 1}
