"""Tests for the generated corpora (stories, seq2seq tasks) and the user-text checks."""

import datetime
import random
import re

import pytest

from tinyformers.text.corpora import (
    MAX_USER_TEXT_CHARS,
    PLURAL_VERBS,
    SINGULAR_VERBS,
    TASKS,
    VOCABULARY,
    UserTextError,
    agreement_examples,
    clean_user_text,
    decode_upload,
    explain,
    generate_corpus,
    generate_sentence,
    generate_story,
    is_grammatical,
    lesson_corpus,
    make_dataset,
    make_example,
    solve,
    split_sentences,
    stories,
    train_test_split,
)
from tinyformers.text.corpora.stories import (
    GENDERED_NOUNS,
    NAMES,
    PLURAL_NOUNS,
    PRONOUNS,
    SINGULAR_NOUNS,
    flip_verb_number,
)

VERBS = SINGULAR_VERBS | PLURAL_VERBS


def _sentences(n: int, seed: int) -> list[stories.Sentence]:
    rng = random.Random(seed)
    return [generate_sentence(rng, max_depth=rng.randint(0, 3)) for _ in range(n)]


SENTENCES = _sentences(3000, seed=11)


def _number_of(word: str) -> str | None:
    if word in SINGULAR_NOUNS or word in NAMES:
        return "sg"
    if word in PLURAL_NOUNS:
        return "pl"
    return PRONOUNS.get(word)


def _with_word(sentence: str, index: int, word: str) -> str:
    words = sentence.split()
    words[index] = word
    return " ".join(words)


# ---------------------------------------------------------------------------------------------
# Stories: generation
# ---------------------------------------------------------------------------------------------


def test_corpus_is_deterministic_by_seed():
    assert generate_corpus(40, seed=3) == generate_corpus(40, seed=3)
    assert generate_corpus(40, seed=3) != generate_corpus(40, seed=4)
    assert len(generate_corpus(40, seed=3).split("\n")) == 40


def test_generators_use_only_the_given_rng():
    random.seed(0)
    first = [generate_sentence(random.Random(5)).text for _ in range(3)]
    random.seed(1)
    second = [generate_sentence(random.Random(5)).text for _ in range(3)]
    assert first == second
    assert generate_story(random.Random(8)) == generate_story(random.Random(8))


def test_vocabulary_is_a_few_hundred_words_and_verb_forms_are_split_by_number():
    assert 250 <= len(VOCABULARY) <= 500
    assert "." in VOCABULARY
    assert not SINGULAR_VERBS & PLURAL_VERBS
    assert len(SINGULAR_VERBS) == len(PLURAL_VERBS) >= 50
    assert {"runs", "is", "has"} <= SINGULAR_VERBS and {"run", "are", "have"} <= PLURAL_VERBS
    for verb in VERBS:
        assert flip_verb_number(flip_verb_number(verb)) == verb
        assert (flip_verb_number(verb) in PLURAL_VERBS) == (verb in SINGULAR_VERBS)
    with pytest.raises(ValueError, match="not a verb"):
        flip_verb_number("dog")
    emitted = {word for sentence in SENTENCES for word in sentence.text.split()}
    assert emitted == VOCABULARY


def test_generated_text_has_the_documented_format():
    corpus = generate_corpus(200, seed=1)
    for line in corpus.split("\n"):
        assert line.endswith(" .")
        assert "  " not in line and line == line.strip()
        for word in line.split():
            assert word in VOCABULARY
            assert word.islower() or word == "." or word in NAMES


def test_every_generated_sentence_is_grammatical():
    story_sentences = split_sentences(generate_corpus(500, seed=2))
    texts = [sentence.text for sentence in SENTENCES] + story_sentences
    assert len(texts) > 4000
    rejected = [(text, explain(text)) for text in texts if not is_grammatical(text)]
    assert rejected == []


def test_sentences_vary_in_structure():
    texts = [sentence.text for sentence in SENTENCES]
    assert len(set(texts)) > 0.95 * len(texts)
    assert sum(" that " in text for text in texts) > 300
    assert sum(any(p in text.split() for p in stories.PREPOSITIONS) for text in texts) > 300
    assert {"sg", "pl"} == {sentence.number for sentence in SENTENCES}
    depth_zero = [generate_sentence(random.Random(i), max_depth=0).text for i in range(200)]
    assert not any(" that " in text for text in depth_zero)


def test_sentence_indices_point_at_an_agreeing_subject_and_verb():
    for sentence in SENTENCES:
        words = sentence.text.split()
        subject, verb = words[sentence.subject_index], words[sentence.verb_index]
        assert _number_of(subject) == sentence.number, sentence
        assert verb in (SINGULAR_VERBS if sentence.number == "sg" else PLURAL_VERBS), sentence
        assert sentence.subject_index < sentence.verb_index


def test_flipping_the_main_verb_breaks_agreement():
    for sentence in SENTENCES:
        verb = sentence.text.split()[sentence.verb_index]
        wrong = _with_word(sentence.text, sentence.verb_index, flip_verb_number(verb))
        assert not is_grammatical(wrong), wrong
        assert "does not agree" in explain(wrong), wrong


def test_flipping_a_relative_clause_verb_breaks_agreement():
    checked = 0
    for sentence in SENTENCES:
        words = sentence.text.split()
        for index, word in enumerate(words):
            if word in VERBS and index != sentence.verb_index:
                wrong = _with_word(sentence.text, index, flip_verb_number(word))
                assert "in the relative clause does not agree" in explain(wrong), wrong
                checked += 1
    assert checked > 300


def test_deleting_the_main_verb_or_adding_junk_is_rejected():
    for sentence in SENTENCES[:500]:
        words = sentence.text.split()
        without_verb = words[: sentence.verb_index] + words[sentence.verb_index + 1 :]
        assert not is_grammatical(" ".join(without_verb)), without_verb
        for junk in ("the", "dog", "happy", "near", "that", "runs"):
            assert not is_grammatical(" ".join(words[:-1] + [junk, "."]))


def test_moving_a_function_word_is_rejected():
    function_words = {"the", "that", *stories.PREPOSITIONS}
    swapped = 0
    for sentence in SENTENCES[:1000]:
        words = sentence.text.split()
        for i in range(len(words) - 2):
            pair = {words[i], words[i + 1]}
            if len(pair) == 2 and pair & function_words:
                wrong = words[:i] + [words[i + 1], words[i]] + words[i + 2 :]
                assert not is_grammatical(" ".join(wrong)), wrong
                swapped += 1
    assert swapped > 1000


def test_unknown_words_are_rejected_with_their_name():
    rng = random.Random(0)
    for sentence in SENTENCES[:300]:
        index = rng.randrange(len(sentence.text.split()) - 1)
        wrong = _with_word(sentence.text, index, "xyzzy")
        assert explain(wrong) == "unknown word 'xyzzy'"


@pytest.mark.parametrize(
    "sentence",
    [
        "the dog runs .",
        "the dogs run",
        "the small red fox sleeps .",
        "the cat near the river sleeps .",
        "the keys near the cabinet are old .",
        "the dogs that chase the cat run .",
        "the dogs that the cat sees run .",
        "the river that the children see is cold .",
        "Mia sees the fox .",
        "she smiles .",
        "they run .",
        "it is wet .",
        "the owls near the tree that the boy climbs sleep .",
    ],
)
def test_hand_written_sentences_are_accepted(sentence):
    assert explain(sentence) == "ok"


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("the dog run .", "verb 'run' does not agree with singular subject 'dog'"),
        ("the dogs runs .", "verb 'runs' does not agree with plural subject 'dogs'"),
        ("the keys near the cabinet is old .", "verb 'is' does not agree with plural"),
        ("the dogs that the cat see run .", "verb 'see' in the relative clause"),
        ("the dogs that chases the cat run .", "verb 'chases' in the relative clause"),
        ("she run .", "does not agree with singular subject 'she'"),
        ("they runs .", "does not agree with plural subject 'they'"),
        ("the dog xyz .", "unknown word 'xyz'"),
        ("The dog runs .", "'The' should be written 'the'"),
        ("mia runs .", "'mia' should be written 'Mia'"),
        ("the dog the cat .", "the sentence has no verb"),
        ("runs the dog .", "expected a subject but found 'runs'"),
        ("the runs the dog .", "expected a noun but found 'runs'"),
        ("the dogs that the cat sleeps run .", "expected a transitive verb but found 'sleeps'"),
        ("the dog near runs .", "expected a noun phrase but found 'runs'"),
        ("the dog runs the cat .", "extra words after a complete sentence: 'the cat'"),
        ("the dog sees .", "ends too early after 'sees': expected an object"),
        ("the dog is .", "expected an adjective"),
        ("the red small dog runs .", "'small' should come before 'red'"),
        ("the big small dog runs .", "both size adjectives"),
        ("the happy big red dog runs .", "too many adjectives"),
        ("the river runs .", "'river' is not a person or animal"),
        ("the tree is sad .", "'sad' describes people and animals"),
        ("the dog runs . the cat runs .", "one sentence at a time"),
        ("", "empty"),
        ("the dog " + "that the cat " * 100 + "sees " * 100 + "runs .", "too long"),
    ],
)
def test_bad_sentences_are_rejected_with_a_reason(sentence, reason):
    assert not is_grammatical(sentence)
    assert reason in explain(sentence)


def test_split_sentences_keeps_the_final_period():
    text = "Mia sees the fox . she smiles .\nthe dogs run ."
    assert split_sentences(text) == ["Mia sees the fox .", "she smiles .", "the dogs run ."]
    assert split_sentences("the dog runs . the cat") == ["the dog runs .", "the cat"]
    assert split_sentences("") == []


def _pronoun_for(subject: str) -> str:
    if subject in NAMES:
        return NAMES[subject]
    if subject in PRONOUNS:
        return subject
    if subject in PLURAL_NOUNS:
        return "they"
    return GENDERED_NOUNS.get(subject, "it")


def test_story_pronouns_match_the_previous_subject():
    rng = random.Random(4)
    pronoun_sentences = 0
    for _ in range(300):
        sentences = split_sentences(generate_story(rng))
        assert 2 <= len(sentences) <= 5
        previous = None
        for sentence in sentences:
            words = sentence.split()
            first_verb = next(i for i, word in enumerate(words) if word in VERBS)
            subject = words[first_verb - 1]
            if words[0] in PRONOUNS:
                assert previous is not None and words[0] == previous, sentences
                pronoun_sentences += 1
            previous = _pronoun_for(subject)
    assert pronoun_sentences > 100
    assert len(split_sentences(generate_story(random.Random(0), n_sentences=7))) == 7
    with pytest.raises(ValueError, match="at least one sentence"):
        generate_story(random.Random(0), n_sentences=0)


def test_agreement_examples_put_an_opposite_number_noun_between_subject_and_verb():
    examples = agreement_examples(500, seed=9)
    assert examples == agreement_examples(500, seed=9)
    assert examples != agreement_examples(500, seed=10)
    for example in examples:
        words = example.text.split()
        assert is_grammatical(example.text)
        assert _number_of(words[example.subject_index]) == example.number
        between = words[example.subject_index + 1 : example.verb_index]
        other = "pl" if example.number == "sg" else "sg"
        assert any(_number_of(word) == other for word in between), example
        flipped = flip_verb_number(words[example.verb_index])
        wrong = _with_word(example.text, example.verb_index, flipped)
        assert not is_grammatical(wrong)
    assert {"sg", "pl"} == {example.number for example in examples}
    assert any(" that " not in example.text for example in examples)
    assert any(" that the " in example.text for example in examples)


def test_generator_arguments_are_checked():
    with pytest.raises(ValueError, match="max_depth"):
        generate_sentence(random.Random(0), max_depth=-1)
    with pytest.raises(ValueError, match="n_stories"):
        generate_corpus(-1)
    with pytest.raises(ValueError, match="n must be"):
        agreement_examples(-2)


# ---------------------------------------------------------------------------------------------
# Sequence-to-sequence tasks
# ---------------------------------------------------------------------------------------------


def test_reverse_and_sort_match_python():
    for source, target in make_dataset("reverse", 300, seed=1):
        assert re.fullmatch(r"[a-z]{3,12}", source)
        assert target == "".join(reversed(source))
    for source, target in make_dataset("sort", 300, seed=1):
        digits = source.split(" ")
        assert 3 <= len(digits) <= 12 and all(len(d) == 1 and d.isdigit() for d in digits)
        assert target == " ".join(sorted(digits, key=int))


def test_date_examples_match_datetime():
    for source, target in make_dataset("date", 300, seed=1):
        date = datetime.date.fromisoformat(target)
        assert 1900 <= date.year <= 2099
        assert source == f"{date.day} {date.strftime('%B')} {date.year}"
        assert target == date.strftime("%Y-%m-%d")


@pytest.mark.parametrize("year", [1900, 2000, 2023, 2024, 2099])
def test_date_solves_every_day_of_a_year(year):
    day = datetime.date(year, 1, 1)
    while day.year == year:
        assert solve("date", f"{day.day} {day.strftime('%B')} {year}") == day.strftime("%Y-%m-%d")
        day += datetime.timedelta(days=1)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("31 February 2021", "not a real date"),
        ("29 February 2023", "not a real date"),
        ("29 February 1900", "not a real date"),
        ("31 April 2021", "April 2021 has 30 days"),
        ("0 March 2021", "days start at 1"),
        ("05 March 2021", "leading zero"),
        ("12 Mar 2021", "unknown month 'Mar'"),
        ("12 march 2021", "unknown month"),
        ("1 January 1899", "between 1900 and 2099"),
        ("1 January 2100", "between 1900 and 2099"),
        ("12 March 21", "like '12 March 2021'"),
        ("2021-03-12", "like '12 March 2021'"),
        ("", "like '12 March 2021'"),
    ],
)
def test_invalid_dates_are_rejected(source, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        solve("date", source)


@pytest.mark.parametrize(
    ("task", "source"),
    [
        ("reverse", "Hello"),
        ("reverse", "ab1"),
        ("reverse", ""),
        ("reverse", "a b"),
        ("sort", "3  1"),
        ("sort", "31 2"),
        ("sort", "a b"),
        ("sort", ""),
        ("sort", "1 2 "),
    ],
)
def test_malformed_task_sources_are_rejected(task, source):
    with pytest.raises(ValueError, match=f"{task} expects"):
        solve(task, source)


def test_unknown_task_is_rejected():
    with pytest.raises(ValueError, match="unknown task 'add'"):
        make_example("add", random.Random(0))
    with pytest.raises(ValueError, match="unknown task"):
        solve("add", "1 2")


@pytest.mark.parametrize("task", TASKS)
def test_datasets_are_deterministic_and_splits_disjoint(task):
    assert make_dataset(task, 50, seed=2) == make_dataset(task, 50, seed=2)
    assert make_dataset(task, 50, seed=2) != make_dataset(task, 50, seed=3)
    train, test = train_test_split(task, 2000, 300, seed=5)
    assert (len(train), len(test)) == (2000, 300)
    train_sources = [source for source, _ in train]
    test_sources = [source for source, _ in test]
    assert len(set(train_sources)) == len(train_sources)
    assert not set(train_sources) & set(test_sources)
    assert all(solve(task, source) == target for source, target in train + test)
    assert train_test_split(task, 2000, 300, seed=5) == (train, test)


def test_split_larger_than_the_task_is_rejected():
    days_1900_to_2099 = (datetime.date(2100, 1, 1) - datetime.date(1900, 1, 1)).days
    with pytest.raises(ValueError, match=f"only {days_1900_to_2099:,} different 'date' sources"):
        train_test_split("date", days_1900_to_2099, 1)
    with pytest.raises(ValueError, match="n_train and n_test must be 0 or more"):
        train_test_split("sort", -1, 10)


# ---------------------------------------------------------------------------------------------
# User text
# ---------------------------------------------------------------------------------------------


def test_upload_accepts_emoji_cyrillic_and_right_to_left_text():
    text = "Привет, мир! 👋🏽 Hello.\n\u200fשלום עולם\nمرحبا بالعالم\n"
    assert decode_upload(text.encode("utf-8"), "notes.txt") == text
    assert decode_upload(text.encode("utf-8")) == text
    assert decode_upload(text.encode("utf-8"), "NOTES.TXT") == text
    assert clean_user_text(text) == text


def test_upload_strips_bom_and_normalizes_newlines():
    data = "\ufeffline one\r\nline two\rline three\n".encode()
    assert decode_upload(data, "a.txt") == "line one\nline two\nline three\n"
    assert clean_user_text("\ufeffa\r\nb") == "a\nb"


@pytest.mark.parametrize("filename", ["model.pt", "notes.md", "notes.txt.exe", "README"])
def test_upload_rejects_other_file_types(filename):
    message = f"only .txt files are supported, got '{filename}'"
    with pytest.raises(UserTextError, match=re.escape(message)):
        decode_upload(b"hello", filename)


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"hello\x00world",
        bytes(range(1, 32)) * 10,
    ],
)
def test_upload_rejects_binary_data(data):
    with pytest.raises(UserTextError, match="binary"):
        decode_upload(data, "data.txt")


def test_upload_names_utf16_text_and_archives_with_advice():
    for encoding in ("utf-16", "utf-16-be", "utf-16-le"):
        data = "\ufeffZoe sees the dog.".encode(encoding)
        with pytest.raises(UserTextError, match="UTF-16 text; save it as UTF-8"):
            decode_upload(data, "notes.txt")
    with pytest.raises(UserTextError, match="compressed archive, not text; unpack it"):
        decode_upload(b"PK\x03\x04\x14\x00" + bytes(100), "notes.txt")


def test_upload_rejects_non_utf8_with_advice():
    with pytest.raises(UserTextError, match="not UTF-8 text; save it as UTF-8 and try again"):
        decode_upload("café, naïve".encode("latin-1"), "notes.txt")


@pytest.mark.parametrize("data", [b"", b"   \n\t  \r\n", "\ufeff".encode()])
def test_upload_rejects_empty_text(data):
    with pytest.raises(UserTextError, match="the text is empty"):
        decode_upload(data, "empty.txt")
    with pytest.raises(UserTextError, match="the text is empty"):
        clean_user_text(data.decode("utf-8"))


def test_text_over_the_cap_is_rejected_with_its_size():
    assert clean_user_text("a" * 100, max_chars=100) == "a" * 100
    with pytest.raises(UserTextError, match="101 characters, more than the limit of 100"):
        clean_user_text("a" * 101, max_chars=100)
    with pytest.raises(UserTextError, match="200,001 characters, more than the limit of 200,000"):
        decode_upload(b"a" * (MAX_USER_TEXT_CHARS + 1), "big.txt")
    with pytest.raises(UserTextError, match="limit of 200,000 characters"):
        decode_upload(b"a" * (5 * MAX_USER_TEXT_CHARS), "huge.txt")
    assert len(decode_upload(b"a\r\n" * 100, "crlf.txt", max_chars=200)) == 200


def test_user_text_error_is_a_value_error():
    assert issubclass(UserTextError, ValueError)


# ---------------------------------------------------------------------------------------------
# Lesson corpus
# ---------------------------------------------------------------------------------------------


def test_lesson_corpus_joins_bodies_without_front_matter(tmp_path):
    (tmp_path / "02_second.md").write_text("# Second\n\nMore text.\n", encoding="utf-8")
    (tmp_path / "01_first.md").write_text(
        "---\ntitle: First\nquiz:\n  - q: why?\n---\n# First\n\nSome text.\n", encoding="utf-8"
    )
    (tmp_path / "notes.txt").write_text("not a lesson", encoding="utf-8")
    corpus = lesson_corpus(tmp_path)
    assert corpus == "# First\n\nSome text.\n\n# Second\n\nMore text."


def test_lesson_corpus_needs_lessons(tmp_path):
    with pytest.raises(ValueError, match="no lesson files"):
        lesson_corpus(tmp_path)
    (tmp_path / "broken.md").write_text("---\ntitle: x\n# never closed\n", encoding="utf-8")
    with pytest.raises(ValueError, match="broken.md: .*no closing '---'"):
        lesson_corpus(tmp_path)


def test_word_categories_come_from_the_lexicon() -> None:
    from tinyformers.text.corpora import stories

    words = ["the", "happy", "dogs", "that", "Mia", "sees", "near", "it", "are", "old", "."]
    expected = [
        "the", "adjective", "noun", "that", "name", "verb", "preposition", "pronoun",
        "copula", "adjective", "end",
    ]  # fmt: skip
    assert [stories.word_category(w) for w in words] == expected
    assert set(stories.CATEGORIES) == set(expected)
    with pytest.raises(ValueError, match="'Dogs' should be written 'dogs'"):
        stories.word_category("Dogs")


def test_the_referring_pronoun_is_the_one_stories_use_for_the_next_sentence() -> None:
    from tinyformers.text.corpora import stories

    assert [stories.referring_pronoun(w) for w in ("Mia", "Leo", "they", "girl", "king")] == [
        "she", "he", "they", "she", "he",
    ]  # fmt: skip
    assert [stories.referring_pronoun(w) for w in ("foxes", "fox", "river", "farmer")] == [
        "they", "it", "it", "",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="cannot head a subject"):
        stories.referring_pronoun("runs")
    rng = random.Random(5)
    for _ in range(200):  # every pronoun-led sentence of a story fits the sentence before
        sentences = stories.split_sentences(stories.generate_story(rng))
        for before, after in zip(sentences, sentences[1:], strict=False):
            first = after.split()[0]
            if first in stories.PRONOUNS:
                head = next(
                    w
                    for w in before.split()
                    if stories.word_category(w) in ("name", "pronoun", "noun")
                )
                assert stories.referring_pronoun(head) == first, (before, after)
