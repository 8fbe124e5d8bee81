"""Tests for the tokenizers in tinyformers.text.tokenizers."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyformers.text.tokenizers import (
    KINDS,
    SPECIAL_TOKENS,
    Tokenizer,
    bpe_merges,
    train_bpe,
    train_char,
    train_tokenizer,
    train_wordpiece,
    wordpiece_min_vocab_size,
)

TRICKY_TEXTS = [
    "",
    "🙂👍🏽",
    "Привет, мир",
    "שלום עולם",
    " \n\t  a\r\n\u2028b  ",
    "[MASK] is just text here",
]
CORPUS = (
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs!\n"
    "Playing players played the playful game.\tA cat sat on the mat.\n"
    "Привет, мир! 🙂👍🏽 שלום עולם\n"
) * 20


@pytest.fixture(scope="module")
def bpe() -> Tokenizer:
    return train_bpe(CORPUS, vocab_size=400)


@pytest.fixture(scope="module")
def wordpiece() -> Tokenizer:
    return train_wordpiece(CORPUS, vocab_size=300)


@pytest.fixture(scope="module")
def char_tok() -> Tokenizer:
    return train_char(CORPUS + "".join(TRICKY_TEXTS))


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_char_round_trip(char_tok, text):
    ids = char_tok.encode(text)
    assert len(ids) == len(text)
    assert char_tok.decode(ids) == text
    assert char_tok.tokens(text) == list(text)


def test_char_vocab_is_specials_then_sorted_characters():
    tok = train_char("ba\nб🙂a")
    expected = [*SPECIAL_TOKENS, "\n", "a", "b", "б", "🙂"]
    assert [tok.id_to_token(i) for i in range(tok.vocab_size)] == expected


def test_char_unseen_character_becomes_unk():
    tok = train_char("abc")
    assert tok.encode("abz") == [tok.token_to_id("a"), tok.token_to_id("b"), tok.unk_id]
    assert tok.decode(tok.encode("abz")) == "ab"


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_bpe_round_trip(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


def test_bpe_never_produces_special_tokens_from_text(bpe):
    ids = bpe.encode("[PAD][MASK][EOS]")
    assert all(i >= len(SPECIAL_TOKENS) for i in ids)


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_bpe_round_trip_any_text(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


def test_bpe_vocab_layout(bpe):
    tokens = [bpe.id_to_token(i) for i in range(bpe.vocab_size)]
    assert tokens[: len(SPECIAL_TOKENS)] == SPECIAL_TOKENS
    byte_tokens = tokens[len(SPECIAL_TOKENS) : len(SPECIAL_TOKENS) + 256]
    assert all(len(token) == 1 for token in byte_tokens)
    assert byte_tokens == sorted(byte_tokens)
    assert bpe.vocab_size <= 400
    merged = ["".join(pair) for pair in bpe_merges(bpe)]
    assert tokens[len(SPECIAL_TOKENS) + 256 :] == merged


def test_bpe_tokens_are_readable(bpe):
    assert "".join(bpe.tokens(" the cat\n")) == " the cat\n"
    assert " the" in bpe.tokens(" the cat")
    assert "Ġthe" in [bpe.id_to_token(i) for i in bpe.encode(" the")]


def test_bpe_tokens_show_stray_bytes_in_hex():
    tok = train_bpe("abc abc", vocab_size=263)
    assert tok.tokens("🙂") == ["<0xF0>", "<0x9F>", "<0x99>", "<0x82>"]


def test_bpe_first_merge_is_most_frequent_pair():
    tok = train_bpe("aaab aaab aaab", vocab_size=300)
    merges = bpe_merges(tok)
    assert merges[0] == ("a", "a")
    assert ("Ġ", "aaab") in merges


def test_bpe_merges_follow_pair_frequency():
    tok = train_bpe("xy " * 9 + "uv " * 4, vocab_size=300)
    merges = bpe_merges(tok)
    assert merges[:2] == [("x", "y"), ("Ġ", "xy")]
    assert len(merges) == 4
    assert "".join(merges[-1]) == "Ġuv"


def test_bpe_min_frequency_stops_merging():
    tok = train_bpe("ab ab cd", vocab_size=300, min_frequency=2)
    merged = {"".join(pair) for pair in bpe_merges(tok)}
    assert "ab" in merged
    assert "cd" not in merged


def test_bpe_merges_read_both_json_forms(bpe):
    data = json.loads(bpe.to_str())
    data["model"]["merges"] = [" ".join(pair) for pair in bpe_merges(bpe)]
    from_string_form = Tokenizer.from_str(json.dumps(data))
    data["model"]["merges"] = [list(pair) for pair in bpe_merges(bpe)]
    from_list_form = Tokenizer.from_str(json.dumps(data))
    assert bpe_merges(from_string_form) == bpe_merges(from_list_form) == bpe_merges(bpe)


def test_bpe_merges_rejects_other_kinds(char_tok):
    with pytest.raises(ValueError, match="only BPE tokenizers have merges"):
        bpe_merges(char_tok)


def test_wordpiece_round_trip_is_normalized_text(wordpiece):
    text = "The   Quick brown FOX\tjumps over the lazy dog."
    normalized = "the quick brown fox jumps over the lazy dog."
    assert wordpiece.decode(wordpiece.encode(text)) == normalized


def test_wordpiece_splits_unseen_word_into_known_pieces(wordpiece):
    assert wordpiece.token_to_id("foxes") is None
    pieces = wordpiece.tokens("foxes")
    assert len(pieces) > 1
    assert pieces[0] == "fox"
    assert all(piece.startswith("##") for piece in pieces[1:])
    assert wordpiece.decode(wordpiece.encode("foxes")) == "foxes"


def test_wordpiece_word_with_unseen_character_is_unk(wordpiece):
    assert wordpiece.encode("fox€") == [wordpiece.unk_id]


def test_wordpiece_vocab_starts_with_specials_and_alphabet():
    text = "ab ba"
    tok = train_wordpiece(text, vocab_size=wordpiece_min_vocab_size(text))
    tokens = [tok.id_to_token(i) for i in range(tok.vocab_size)]
    assert tokens == [*SPECIAL_TOKENS, "a", "b", "##a", "##b"]


@pytest.mark.parametrize("kind", KINDS)
def test_special_token_ids_are_fixed(kind):
    tok = train_tokenizer(kind, CORPUS, None if kind == "char" else 500)
    assert [tok.token_to_id(token) for token in SPECIAL_TOKENS] == list(range(7))
    assert [tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id] == [0, 1, 2, 3]
    assert [tok.mask_id, tok.bos_id, tok.eos_id] == [4, 5, 6]
    assert tok.decode([tok.cls_id, *tok.encode("the"), tok.sep_id, tok.pad_id]) == "the"


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip(kind, tmp_path):
    tok = train_tokenizer(kind, CORPUS, None if kind == "char" else 500)
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    loaded = Tokenizer.load(path)
    assert loaded.kind == kind
    assert loaded.vocab_size == tok.vocab_size
    for text in [CORPUS[:200], "[MASK] Привет 🙂"]:
        assert loaded.encode(text) == tok.encode(text)
    assert Tokenizer.from_str(tok.to_str()).encode(CORPUS[:200]) == tok.encode(CORPUS[:200])


@pytest.mark.parametrize("kind", KINDS)
def test_training_is_deterministic(kind):
    first = train_tokenizer(kind, CORPUS, None if kind == "char" else 500)
    second = train_tokenizer(kind, CORPUS, None if kind == "char" else 500)
    assert first.to_str() == second.to_str()


def test_load_missing_file(tmp_path):
    with pytest.raises(ValueError, match="no tokenizer file at"):
        Tokenizer.load(tmp_path / "missing.json")


@pytest.mark.parametrize(
    "content", ["not json", "{}", '{"model": {"type": "BPE"}}', '{"model": {"type": "Unigram"}}']
)
def test_load_corrupt_file(tmp_path, content):
    path = tmp_path / "tokenizer.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="not a valid tokenizer file"):
        Tokenizer.load(path)


def test_load_rejects_tokenizer_without_project_specials(bpe):
    data = json.loads(bpe.to_str())
    vocab = data["model"]["vocab"]
    vocab["[PAD]"], vocab["!"] = vocab["!"], vocab["[PAD]"]
    data["added_tokens"] = []
    with pytest.raises(ValueError, match=r"expected special token \[PAD\] at id 0"):
        Tokenizer.from_str(json.dumps(data))


@pytest.mark.parametrize("vocab_size", [0, 262, 1_000_001])
def test_bpe_vocab_size_out_of_range(vocab_size):
    message = (
        f"vocabulary size must be between 263 and 1000000 for byte-level BPE, got {vocab_size}"
    )
    with pytest.raises(ValueError, match=message):
        train_bpe("hello", vocab_size)


@pytest.mark.parametrize("vocab_size", [300.0, "300", True, None])
def test_bpe_vocab_size_must_be_whole_number(vocab_size):
    with pytest.raises(ValueError, match="vocabulary size must be a whole number between 263"):
        train_bpe("hello", vocab_size)


def test_bpe_smallest_vocab_size_has_no_merges():
    tok = train_bpe("hello hello", vocab_size=263)
    assert tok.vocab_size == 263
    assert bpe_merges(tok) == []


def test_wordpiece_vocab_size_too_small():
    text = "ab ba"
    assert wordpiece_min_vocab_size(text) == 11
    message = "between 11 and 1000000 for WordPiece on this text, got 10"
    with pytest.raises(ValueError, match=message):
        train_wordpiece(text, 10)


@pytest.mark.parametrize("kind", KINDS)
def test_empty_training_text(kind):
    with pytest.raises(ValueError, match="cannot train a tokenizer on empty text"):
        train_tokenizer(kind, "", 500)


def test_wordpiece_text_without_words():
    with pytest.raises(ValueError, match="without words"):
        train_wordpiece(" \n\t ", 500)


@pytest.mark.parametrize("kind", KINDS)
def test_training_text_must_be_str(kind):
    with pytest.raises(TypeError, match="text must be a string, got bytes"):
        train_tokenizer(kind, b"hello", 500)


def test_min_frequency_must_be_positive():
    with pytest.raises(ValueError, match="min_frequency must be a whole number of at least 1"):
        train_bpe("hello", 300, min_frequency=0)


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown tokenizer kind 'unigram'"):
        train_tokenizer("unigram", "hello")


def test_default_vocab_sizes():
    assert train_tokenizer("bpe", CORPUS).vocab_size <= 1000
    assert train_tokenizer("char", CORPUS, 5).vocab_size == len(SPECIAL_TOKENS) + len(set(CORPUS))


def test_decode_rejects_ids_outside_vocabulary(char_tok):
    with pytest.raises(ValueError, match="token id 100000 is outside the vocabulary"):
        char_tok.decode([100000])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        char_tok.id_to_token(-1)


def test_decode_accepts_numpy_ids(bpe):
    ids = bpe.encode("the cat")
    assert bpe.decode(np.array(ids, dtype=np.int64)) == "the cat"
    with pytest.raises(TypeError):
        bpe.decode([1.5])


def test_encode_rejects_non_text(bpe):
    with pytest.raises(TypeError, match="text must be a string"):
        bpe.encode(None)
