"""BPE merge replay: learning merges reproduces the ``tokenizers`` library, counts are right,
and segmenting with the first k merges matches tokenizers trained with k merges."""

import random
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyformers.course.tokenization import (
    BASE_VOCAB_SIZE,
    RUSSIAN_BPE_ROW,
    SCRIPT_NAMES,
    TRAINED_BPE_ROW,
    MergeStep,
    base_vocabulary,
    byte_level,
    char_bytes,
    comparison_tokenizers,
    compression_curve,
    labelled_tokenizers,
    learn_merges,
    letter_count,
    merge_pair,
    next_tie,
    predict_first_whole_word,
    predict_next_tie,
    predict_tokens_after_k,
    readable_tokens,
    replay_merges,
    replay_tokenizer,
    russian_corpus,
    script_of,
    script_tokenizers,
    script_totals,
    segment,
    segment_text,
    tie_counts,
    token_counts,
    tokenized_rows,
    train_and_replay,
    train_russian_bpe,
    word_counts,
    word_occurrences,
)
from tinyformers.text.corpora import generate_corpus
from tinyformers.text.tokenizers import (
    bpe_merges,
    train_bpe,
    train_char,
    train_wordpiece,
    wordpiece_min_vocab_size,
)

ROOT = Path(__file__).resolve().parents[2]


def _random_words(seed: int) -> str:
    """Many short words over three letters: lots of equally frequent pairs."""
    rng = random.Random(seed)
    words = ["".join(rng.choice("abc") for _ in range(rng.randint(2, 7))) for _ in range(25)]
    return " ".join(rng.choice(words) for _ in range(300))


CORPORA = {
    "stories": generate_corpus(200, seed=0),
    "stories-seed-7": generate_corpus(120, seed=7),
    "readme": (ROOT / "README.md").read_text(encoding="utf-8"),
    "multilingual": "Привет, мир! 🙂👍🏽 שלום עולם. Naïve café, déjà vu.\n" * 15
    + "The quick brown fox jumps over the lazy dog.\n" * 10,
    "three-letters": _random_words(0),
    "three-letters-2": _random_words(1),
}


@pytest.fixture(scope="module")
def stories():
    text = CORPORA["stories"]
    tok = train_bpe(text, vocab_size=600)
    return text, tok, replay_tokenizer(tok, text)


@pytest.mark.parametrize("name", sorted(CORPORA))
@pytest.mark.parametrize("vocab_size", [300, 700])
def test_learn_merges_reproduces_the_tokenizers_library(name: str, vocab_size: int) -> None:
    text = CORPORA[name]
    tok = train_bpe(text, vocab_size)
    steps = learn_merges(word_counts(tok, text), vocab_size)
    assert [step.pair for step in steps] == bpe_merges(tok)
    assert steps[-1].vocab_size == tok.vocab_size
    for step in steps:
        assert step.pair_ids == (tok.token_to_id(step.left), tok.token_to_id(step.right))


def test_min_frequency_is_honoured_like_the_library() -> None:
    text = CORPORA["readme"]
    tok = train_bpe(text, vocab_size=2000, min_frequency=3)
    steps = learn_merges(word_counts(tok, text), 2000, min_frequency=3)
    assert [step.pair for step in steps] == bpe_merges(tok)
    assert min(step.count for step in steps) >= 3


@settings(max_examples=30, deadline=None)
@given(
    words=st.lists(st.text(alphabet="abcd é", min_size=1, max_size=8), min_size=1, max_size=40),
    vocab_size=st.integers(min_value=BASE_VOCAB_SIZE, max_value=BASE_VOCAB_SIZE + 40),
)
def test_learn_merges_matches_on_random_texts(words: list[str], vocab_size: int) -> None:
    text = " ".join(words)
    tok = train_bpe(text, vocab_size)
    steps = learn_merges(word_counts(tok, text), vocab_size)
    assert [step.pair for step in steps] == bpe_merges(tok)


def test_ties_go_to_the_smaller_ids_not_to_alphabetical_order() -> None:
    text = "zz zz zzq abq zzq abq zzq abq"
    tok = train_bpe(text, vocab_size=300)
    merges = bpe_merges(tok)
    assert merges.index(("Ġzz", "q")) < merges.index(("Ġab", "q"))
    step = learn_merges(word_counts(tok, text), 300)[merges.index(("Ġzz", "q"))]
    assert step.is_tie
    assert step.runner_up == ("Ġab", "q")
    assert step.pair_ids < step.runner_up_ids


def test_every_tie_is_won_by_the_smaller_ids(stories) -> None:
    _text, _tok, steps = stories
    ties = [step for step in steps if step.is_tie]
    assert ties, "the stories corpus has equally frequent pairs"
    for step in steps:
        if step.is_tie:
            assert step.pair_ids < step.runner_up_ids
        elif step.runner_up is not None:
            assert step.count > step.runner_up_count
    # Comparing the strings instead of the ids would pick a different winner somewhere.
    assert any(step.pair > step.runner_up for step in ties)


def _naive_pair_count(counts: dict[str, int], merges: list, pair: tuple[str, str]) -> int:
    """Apply ``merges`` one by one to every word, then count ``pair`` (the slow, obvious way)."""
    total = 0
    for word, freq in counts.items():
        symbols = list(word)
        for merge in merges:
            symbols = merge_pair(symbols, merge)
        total += freq * sum(1 for p in pairwise(symbols) if p == pair)
    return total


def test_replayed_counts_match_a_naive_recount(stories) -> None:
    text, tok, steps = stories
    counts = word_counts(tok, text)
    merges = bpe_merges(tok)
    for step in steps[:: max(1, len(steps) // 12)]:
        before = merges[: step.step - 1]
        assert step.count == _naive_pair_count(counts, before, step.pair)
        if step.runner_up is not None:
            assert step.runner_up_count == _naive_pair_count(counts, before, step.runner_up)


def test_replay_and_learning_agree(stories) -> None:
    text, tok, steps = stories
    learned = learn_merges(word_counts(tok, text), tok.vocab_size)
    assert steps == learned
    assert [s.vocab_size for s in steps] == list(
        range(BASE_VOCAB_SIZE + 1, BASE_VOCAB_SIZE + 1 + len(steps))
    )


def test_first_count_is_the_most_frequent_pair_in_the_corpus(stories) -> None:
    text, tok, steps = stories
    pairs = Counter()
    for word, freq in word_counts(tok, text).items():
        for pair in pairwise(word):
            pairs[pair] += freq
    assert steps[0].count == max(pairs.values())
    assert pairs[steps[0].pair] == steps[0].count


def test_replaying_a_merge_that_no_longer_occurs_reports_zero() -> None:
    steps = replay_merges({"ab": 3}, [("a", "b"), ("a", "b")])
    assert [step.count for step in steps] == [3, 0]


def test_replaying_a_merge_of_unknown_symbols_is_refused() -> None:
    with pytest.raises(ValueError, match="merge 2 .* not in the vocabulary"):
        replay_merges({"abc": 2}, [("a", "b"), ("bc", "d")])


def test_word_counts_follow_the_tokenizer_pre_tokenizer(stories) -> None:
    text, tok, _steps = stories
    counts = word_counts(tok, text)
    words = tok.hf.pre_tokenizer.pre_tokenize_str(text)
    assert sum(counts.values()) == len(words)
    assert counts["Ġthe"] == sum(1 for word, _ in words if word == "Ġthe")


def test_base_vocabulary_matches_the_trained_tokenizer(stories) -> None:
    _text, tok, _steps = stories
    base = base_vocabulary()
    assert len(base) == BASE_VOCAB_SIZE
    assert all(tok.token_to_id(token) == i for token, i in base.items())


@pytest.mark.parametrize("k", [0, 1, 5, 40, 150])
def test_segmenting_with_k_merges_matches_a_tokenizer_with_k_merges(stories, k: int) -> None:
    text, tok, _steps = stories
    small = train_bpe(text, vocab_size=BASE_VOCAB_SIZE + k)
    assert bpe_merges(small) == bpe_merges(tok)[:k]
    sample = "the clever foxes jumped over Kofi's unfoxable basket . 🦊"
    expected = [small.id_to_token(i) for i in small.encode(sample)]
    assert segment_text(tok, sample, k) == expected


def test_segment_with_all_merges_is_the_tokenizer(stories) -> None:
    _text, tok, _steps = stories
    merges = bpe_merges(tok)
    for word in [" foxes", "the", " unfoxable", " Привет", "🙂"]:
        expected = [tok.id_to_token(i) for i in tok.encode(word)]
        assert segment(byte_level(word), merges, len(merges)) == expected


def test_segment_with_no_merges_gives_bytes() -> None:
    assert segment(byte_level(" é"), [("a", "b")], 0) == ["Ġ", "Ã", "©"]


@pytest.mark.parametrize("k", [-1, 3, True, 1.5])
def test_segment_rejects_bad_k(k) -> None:
    with pytest.raises(ValueError, match="k must be"):
        segment("ab", [("a", "b"), ("ab", "c")], k)


def test_byte_level_writes_bytes_as_printable_symbols() -> None:
    assert byte_level(" cat") == "Ġcat"
    assert byte_level("é") == "Ã©"
    assert len(byte_level("🙂")) == 4


def test_readable_tokens_show_the_text_a_token_stands_for(stories) -> None:
    _text, tok, _steps = stories
    shown = readable_tokens(tok)
    assert len(shown) == tok.vocab_size
    assert shown["Ġthe"] == " the"
    assert shown["[MASK]"] == "[MASK]"


def test_compression_curve_counts_the_segmented_tokens(stories) -> None:
    text, tok, steps = stories
    sample = "the kind farmers greet Mia . Привет 🦊"
    curve = compression_curve(tok, sample)
    assert len(curve) == len(steps) + 1
    for k in [0, 1, 10, 100, len(steps)]:
        assert curve[k] == pytest.approx(len(segment_text(tok, sample, k)) / len(sample))
    assert curve[0] == pytest.approx(len(sample.encode("utf-8")) / len(sample))
    assert all(later <= earlier for earlier, later in pairwise(curve))


def test_compression_on_the_training_text_falls_by_the_merged_counts(stories) -> None:
    text, tok, steps = stories
    curve = compression_curve(tok, text)
    tokens = [round(c * len(text)) for c in curve]
    # On the training text, each merge removes one token per occurrence it joins; without
    # overlapping pairs such as "aaa" that equals the pair's count.
    assert tokens[-1] == len(tok.encode(text))
    assert tokens[0] - tokens[-1] <= sum(step.count for step in steps)


@pytest.mark.parametrize(
    ("counts", "vocab_size", "min_frequency", "message"),
    [
        ({}, 300, 2, "without words"),
        ({"ab": 0}, 300, 2, "at least 1"),
        ({"": 2}, 300, 2, "non-empty"),
        ({"ab": 2}, -5, 2, "vocab_size"),
        ({"ab": 2}, 10**9 + 0.5, 2, "vocab_size"),
        ({"ab": 2}, 300, 0, "min_frequency"),
    ],
)
def test_learn_merges_validates_its_input(counts, vocab_size, min_frequency, message) -> None:
    with pytest.raises(ValueError, match=message):
        learn_merges(counts, vocab_size, min_frequency)


def test_compression_rejects_empty_text(stories) -> None:
    _text, tok, _steps = stories
    with pytest.raises(ValueError, match="empty"):
        compression_curve(tok, "")


def _tie_step(number: int, tie: bool, pair_ids=(5, 9), runner_up_ids=(6, 1)) -> MergeStep:
    return MergeStep(
        step=number,
        left="a",
        right="b",
        count=10,
        vocab_size=300 + number,
        pair_ids=pair_ids,
        runner_up=("c", "d"),
        runner_up_count=10 if tie else 4,
        runner_up_ids=runner_up_ids,
    )


def test_train_and_replay_gathers_the_tokenizer_and_its_replay(stories) -> None:
    text, tok, steps = stories
    trained = train_and_replay(text, 600)
    assert trained.bpe.to_str() == tok.to_str()
    assert trained.steps == steps and trained.n_merges == len(bpe_merges(tok))
    assert trained.words == word_counts(tok, text)
    assert trained.shown == readable_tokens(tok)


@pytest.mark.parametrize("k", [0, 7, 100])
def test_trained_split_shows_readable_tokens_and_their_ids(stories, k: int) -> None:
    text, _tok, _steps = stories
    trained = train_and_replay(text, 600)
    shown, ids = trained.split(" the dog jumped", k)
    pieces = segment_text(trained.bpe, " the dog jumped", k)
    assert shown == [trained.shown[piece] for piece in pieces]
    assert "".join(shown) == " the dog jumped"
    assert [trained.bpe.id_to_token(i) for i in ids] == pieces


def test_comparison_tokenizers_give_wordpiece_room_for_its_alphabet() -> None:
    text = CORPORA["multilingual"]
    needed = wordpiece_min_vocab_size(text)
    char, wordpiece = comparison_tokenizers(text, 10)
    assert char.to_str() == train_char(text).to_str()
    assert wordpiece.to_str() == train_wordpiece(text, needed).to_str()
    _char, larger = comparison_tokenizers(text, needed + 200)
    assert larger.vocab_size > wordpiece.vocab_size


def test_labelled_tokenizers_name_each_row_with_its_vocabulary_size(stories) -> None:
    text, tok, _steps = stories
    char, wordpiece = comparison_tokenizers(text, 600)
    toks = labelled_tokenizers(char, tok, wordpiece)
    assert list(toks) == [
        "Characters",
        f"Byte-level BPE ({tok.vocab_size:,} tokens)",
        f"WordPiece ({wordpiece.vocab_size:,} tokens)",
    ]
    rows = tokenized_rows(toks, "the fox")
    assert [label for label, _tokens, _ids in rows] == list(toks)
    assert rows[1] == (list(toks)[1], tok.tokens("the fox"), tok.encode("the fox"))


def test_next_tie_finds_the_first_tie_after_k() -> None:
    steps = [_tie_step(1, False), _tie_step(2, True), _tie_step(3, False), _tie_step(4, True)]
    assert next_tie(steps, 0) == 2
    assert next_tie(steps, 1) == 2
    assert next_tie(steps, 2) == 4
    assert next_tie(steps, 4) is None
    with pytest.raises(ValueError, match="0 or more"):
        next_tie(steps, -1)


def test_tie_counts_count_ties_won_by_the_smaller_ids() -> None:
    steps = [
        _tie_step(1, True, pair_ids=(5, 9), runner_up_ids=(6, 1)),
        _tie_step(2, True, pair_ids=(7, 2), runner_up_ids=(7, 1)),
        _tie_step(3, False),
    ]
    assert tie_counts(steps) == (2, 1)
    assert tie_counts([]) == (0, 0)


def test_tie_counts_on_real_merges(stories) -> None:
    _text, _tok, steps = stories
    n_ties, smaller = tie_counts(steps)
    assert n_ties == sum(step.runner_up_count == step.count for step in steps if step.runner_up)
    assert smaller == n_ties  # the library's rule: the smaller ids always win


def test_word_occurrences_count_the_word_with_and_without_a_space() -> None:
    words = {"Ġdog": 3, "dog": 2, "Ġdogs": 5, byte_level(" café"): 4}
    assert word_occurrences(words, " dog ") == 5
    assert word_occurrences(words, "dogs") == 5
    assert word_occurrences(words, "café") == 4
    assert word_occurrences(words, "cat") == 0


# --- predict, then reveal --------------------------------------------------------------------

# Words " ab" four times and " cd" twice: (a, b) and (Ġ, a) tie at 4 and (a, b) wins on its
# smaller left id; then " ab" is finished at merge 2, (c, d) wins the next tie, " cd" at merge 4.
TWO_WORDS = " ab ab ab ab cd cd"


def test_tokens_after_k_counts_the_pieces_of_the_first_k_merges() -> None:
    trained = train_and_replay("ab ab ab", 300)  # merges: (a, b), then (Ġ, ab)
    answers = [predict_tokens_after_k(trained, "ab ab", k).reveal().answer for k in range(3)]
    assert answers == [5, 3, 2]  # a b Ġ a b → ab Ġ ab → ab Ġab
    prediction = predict_tokens_after_k(trained, "ab ab", 1)
    assert prediction.values == {"k": 1, "characters": 5, "bytes": 5}
    assert prediction.bounds == (0, 5)
    assert prediction.reveal().values["pieces"] == "ab | ␣ | ab"


def test_tokens_after_k_agrees_with_a_tokenizer_trained_with_k_merges() -> None:
    text = generate_corpus(60, seed=3)
    trained = train_and_replay(text, BASE_VOCAB_SIZE + 40)
    sentence = "the big dog sees Zoe. Ünïcode 🦊"
    for k in (0, 7, 25):
        expected = len(train_bpe(text, BASE_VOCAB_SIZE + k).tokens(sentence))
        assert predict_tokens_after_k(trained, sentence, k).reveal().answer == expected


def test_first_whole_word_is_the_one_finished_by_the_earlier_merge() -> None:
    trained = train_and_replay(TWO_WORDS, 300)
    assert [step.pair for step in trained.steps] == [
        ("a", "b"),
        ("Ġ", "ab"),
        ("c", "d"),
        ("Ġ", "cd"),
    ]
    prediction = predict_first_whole_word(trained, " cd ab cd x")
    assert prediction.choices == ("' cd'", "' ab'")  # in sentence order, each word once
    reveal = prediction.reveal()
    assert reveal.answer == "' ab'"
    assert reveal.values["step"] == 2 and reveal.values["pair"] == "' ' + 'ab'"
    with pytest.raises(ValueError, match="fewer than two words"):
        predict_first_whole_word(trained, " ab x y")


def test_next_tie_is_won_by_the_smaller_left_id() -> None:
    trained = train_and_replay(TWO_WORDS, 300)
    prediction = predict_next_tie(trained, 0)
    assert sorted(prediction.choices) == ["' ' + 'a'", "'a' + 'b'"]
    assert prediction.values["step"] == 1 and prediction.values["count"] == 4
    reveal = prediction.reveal()
    assert reveal.answer == "'a' + 'b'"  # 'a' is ASCII, 'Ġ' (U+0120) comes after it
    ids = base_vocabulary()
    assert reveal.values["won_ids"] == f"({ids['a']}, {ids['b']})"
    assert predict_next_tie(trained, 1).reveal().answer == "'c' + 'd'"  # the tie at merge 3
    with pytest.raises(ValueError, match="no merge after the first 3"):
        predict_next_tie(trained, 3)


# --------------------------------------------------------------------------------------------
# Other scripts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "n_bytes", "hexes", "script"),
    [
        ("a", 1, ["61"], "latin"),
        ("мир", 6, ["D0 BC", "D0 B8", "D1 80"], "cyrillic"),
        ("日", 3, ["E6 97 A5"], "cjk"),
        ("🦊", 4, ["F0 9F A6 8A"], "emoji"),
        ("ω", 2, ["CF 89"], "greek"),
    ],
)
def test_char_bytes_gives_every_character_its_utf8_bytes(text, n_bytes, hexes, script) -> None:
    chars = char_bytes(text)
    assert len(chars) == len(text)
    assert sum(c.n_bytes for c in chars) == n_bytes
    assert [c.hex for c in chars] == hexes
    assert {c.script for c in chars} == {script}


@pytest.mark.parametrize(
    ("char", "script"),
    [
        ("Z", "latin"),
        ("é", "latin"),
        ("Ё", "cyrillic"),
        ("ש", "hebrew"),
        ("ع", "arabic"),
        ("か", "kana"),
        ("カ", "kana"),
        ("한", "hangul"),
        ("ß", "latin"),
        ("7", "digits"),
        (" ", "spaces"),
        ("\t", "spaces"),
        ("\u00a0", "spaces"),
        (",", "punctuation"),
        ("«", "punctuation"),
        ("😀", "emoji"),
        ("€", "other"),
        ("\u0301", "other"),
        ("\u200d", "other"),
        ("ᚠ", "letters"),
    ],
)
def test_script_of_sorts_characters_into_groups(char: str, script: str) -> None:
    assert script_of(char) == script
    assert script in SCRIPT_NAMES


def test_script_of_takes_one_character() -> None:
    with pytest.raises(ValueError, match="one character"):
        script_of("ab")


def test_bytes_per_character_by_script() -> None:
    totals = {t.script: t for t in script_totals(char_bytes("Mia и кот 日本 🦊🦊"))}
    assert [t for t in totals] == ["latin", "spaces", "cyrillic", "cjk", "emoji"]
    assert {s: t.bytes_per_character for s, t in totals.items()} == {
        "latin": 1,
        "spaces": 1,
        "cyrillic": 2,
        "cjk": 3,
        "emoji": 4,
    }
    assert (totals["cyrillic"].characters, totals["cyrillic"].n_bytes) == (4, 8)
    assert (totals["spaces"].characters, totals["emoji"].n_bytes) == (4, 8)


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=60))
def test_script_totals_add_up_to_the_utf8_encoding(text: str) -> None:
    chars = char_bytes(text)
    totals = script_totals(chars)
    assert sum(t.characters for t in totals) == len(text)
    assert sum(t.n_bytes for t in totals) == len(text.encode("utf-8"))
    assert b"".join(c.utf8 for c in chars) == text.encode("utf-8")
    assert letter_count(chars) == sum(ch.isalpha() for ch in text)


def test_letters_are_counted_in_every_script() -> None:
    assert letter_count(char_bytes("мир, a 日 🦊 42!")) == 5
    assert letter_count(char_bytes("🦊🦊")) == 0


@pytest.fixture(scope="module")
def english_and_russian_bpe():
    return train_bpe(generate_corpus(500, seed=0), 1000), train_russian_bpe(1000)


def test_the_russian_corpus_is_the_russian_lessons() -> None:
    text = russian_corpus()
    assert "{#scripts}" in text and "Другие письменности" in text
    letters = [ch for ch in text if ch.isalpha()]
    assert sum(script_of(ch) == "cyrillic" for ch in letters) > 0.7 * len(letters)


def test_english_bpe_falls_back_to_bytes_on_cyrillic(english_and_russian_bpe) -> None:
    english, russian = english_and_russian_bpe
    for word in ("здоровается", "кот", "Мама"):
        assert len(english.encode(word)) == len(word.encode("utf-8")) == 2 * len(word)
        assert len(russian.encode(word)) < 2 * len(word)


@pytest.mark.parametrize(
    "sentence",
    [
        "Хитрая лиса здоровается с Мией, и та смеётся.",
        "Мама мыла раму, а кот спал.",
        "Токенизатор разрезает текст на куски из словаря.",
        "Модель читает предложение слово за словом.",
    ],
)
def test_russian_bpe_needs_fewer_tokens_on_russian_text(english_and_russian_bpe, sentence) -> None:
    english, russian = english_and_russian_bpe
    assert len(russian.encode(sentence)) < len(english.encode(sentence)) / 2
    assert russian.decode(russian.encode(sentence)) == sentence


def test_english_bpe_needs_fewer_tokens_on_english_stories(english_and_russian_bpe) -> None:
    english, russian = english_and_russian_bpe
    text = generate_corpus(5, seed=3)
    assert len(english.encode(text)) < len(russian.encode(text))


def test_script_tokenizers_add_the_russian_bpe_and_the_shipped_ones(stories) -> None:
    text, bpe, _steps = stories
    char, wordpiece = comparison_tokenizers(text, 600)
    russian = train_russian_bpe(600)
    toks = labelled_tokenizers(char, bpe, wordpiece)
    compared = script_tokenizers("stories", toks, russian, {"my-model": wordpiece})
    labels, tokenizers = list(compared), list(compared.values())
    assert tokenizers == [char, bpe, russian, wordpiece, wordpiece]
    assert tokenizers[TRAINED_BPE_ROW] is bpe and tokenizers[RUSSIAN_BPE_ROW] is russian
    assert labels[0] == "Characters seen in English stories"
    assert labels[TRAINED_BPE_ROW] == f"Byte-level BPE on English stories ({bpe.vocab_size} tokens)"
    assert labels[RUSSIAN_BPE_ROW] == (
        f"Byte-level BPE on Russian lessons ({russian.vocab_size} tokens)"
    )
    assert labels[-1] == f"my-model: WordPiece ({wordpiece.vocab_size} tokens)"
    lessons = script_tokenizers("lessons", toks, russian)
    assert len(lessons) == 4 and "Characters seen in English lessons" in lessons


def test_token_counts_per_word_and_per_character() -> None:
    char = train_char("ab ab")
    bpe = train_bpe("ab ab ab ab", 300)
    counts = token_counts({"c": char, "b": bpe}, "ab ab")
    assert [(c.label, c.tokens, c.words, c.characters) for c in counts] == [
        ("c", 5, 2, 5),
        ("b", len(bpe.encode("ab ab")), 2, 5),
    ]
    assert counts[0].per_word == 2.5 and counts[0].per_character == 1.0
    assert counts[1].per_character == len(bpe.encode("ab ab")) / 5
    spaces = token_counts({"c": char}, "   ")[0]
    assert spaces.words == 0 and spaces.per_word is None
