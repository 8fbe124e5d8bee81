"""Headless tests of the tokenization page: it runs on good and bad input, and the numbers it
shows equal a direct computation with the core package."""

import re

import pytest
from streamlit.testing.v1 import AppTest

from tests.page_checks import (
    BLANK_TEXTS,
    MARKUP,
    code_texts,
    english_leftovers,
    html_bodies,
    is_code_block,
    metrics,
)
from tests.page_order import elements_before_first_chart, first_chart, strip_keys
from tests.plotly_json import charts, decode, named_trace, title
from tinyformers.course.tokenization import (
    RUSSIAN_BPE_ROW,
    TRAINED_BPE_ROW,
    char_bytes,
    compression_curve,
    letter_count,
    replay_tokenizer,
    script_of,
    script_totals,
    segment_text,
    train_russian_bpe,
    word_counts,
)
from tinyformers.figures.common import split_code_blocks
from tinyformers.hub.registry import load_shipped
from tinyformers.lessons import get_lesson
from tinyformers.text.corpora import UserTextError, decode_upload, generate_corpus, lesson_corpus
from tinyformers.text.tokenizers import (
    Tokenizer,
    train_bpe,
    train_char,
    train_wordpiece,
    wordpiece_min_vocab_size,
)

PAGE = "app_pages/tokenization.py"
# The page's defaults: 500 generated stories, a vocabulary of 1000, the replay at step 10.
STORIES = 500
VOCAB = 1000
START_STEP = 10
CHIP_ID = re.compile(r'<sub style="color:#666"> (\d+)</sub>')


@pytest.fixture(scope="module")
def reference():
    text = generate_corpus(STORIES, seed=0)
    tok = train_bpe(text, VOCAB)
    return text, tok, replay_tokenizer(tok, text)


def rows_of(body: str) -> dict[str, list[int]]:
    """Label -> token ids of every row of a comparison block."""
    rows = {}
    for block in body.split("<b>")[1:]:
        label = block.split("</b>")[0]
        rows[label] = [int(i) for i in CHIP_ID.findall(block)]
    return rows


def training_caption(at: AppTest) -> str:
    """The caption that describes the trained tokenizer in numbers."""
    found = [c.value for c in at.caption if "merges learned" in c.value]
    assert len(found) == 1, [c.value for c in at.caption]
    return found[0]


def comparison_rows(at: AppTest, which: int = 0) -> dict[str, list[int]]:
    """Rows of the side-by-side comparison (``which=0``) or of the unseen word (``which=1``)."""
    blocks = [rows_of(body) for body in html_bodies(at) if "<b>Characters</b>" in body]
    return blocks[which]


def test_default_page_replays_the_merges_it_trained(fresh: AppTest, reference) -> None:
    text, tok, steps = reference
    step = steps[START_STEP - 1]
    assert fresh.slider(key="tok-step").value == START_STEP
    shown = metrics(fresh)
    assert shown["Count before the merge"] == f"{step.count:,}"
    assert shown["Vocabulary size after it"] == f"{step.vocab_size:,}"
    caption = training_caption(fresh)
    assert f"{len(text):,} characters" in caption
    assert f"{len(steps):,} merges learned" in caption
    assert f"{tok.vocab_size:,} tokens" in caption
    table = fresh.dataframe[0].value
    assert list(table["step"]) == list(range(START_STEP, START_STEP - 8, -1))
    assert list(table["count"]) == [s.count for s in steps[START_STEP - 8 : START_STEP][::-1]]


def test_the_page_opens_on_the_inputs_and_the_compression_of_your_sentence(
    fresh: AppTest, reference
) -> None:
    text, tok, _steps = reference
    assert strip_keys(fresh) == ["tok-sentence", "tok-vocab", "tok-source"]
    assert elements_before_first_chart(fresh) == ["flex_container"]
    spec = first_chart(fresh)
    assert title(spec) == "Tokens per character as BPE learns merges"
    sentence = "Zoe sees Zoe"
    fresh.text_input(key="tok-sentence").set_value(sentence).run()
    spec = first_chart(fresh)
    assert decode(named_trace(spec, "your sentence")["y"]).tolist() == pytest.approx(
        compression_curve(tok, sentence)
    )
    assert spec["layout"]["shapes"][0]["x0"] == START_STEP
    fresh.slider(key="tok-step").set_value(40).run()
    assert first_chart(fresh)["layout"]["shapes"][0]["x0"] == 40


def test_the_lesson_code_is_shown_as_written_and_coloured(page: AppTest) -> None:
    lesson = get_lesson("tokenization")
    written = [
        code
        for section in lesson.sections
        for code, language in split_code_blocks(section.body)
        if language == "python"
    ]
    assert written and code_texts(page)[: len(written)] == written
    assert not page.code  # coloured on the server: no highlighter for the browser to load
    coloured = [b for b in html_bodies(page) if is_code_block(b) and "<span" in b]
    assert len(coloured) == len(written)


def test_slider_and_buttons_move_through_the_merges(fresh: AppTest, reference) -> None:
    _text, _tok, steps = reference
    fresh.slider(key="tok-step").set_value(1).run()
    first = steps[0]
    assert first.runner_up_count >= 1_000 and not first.is_tie
    assert any(
        f"occurred {first.runner_up_count:,} times, fewer than {first.count:,}" in body
        for body in html_bodies(fresh)
    )
    fresh.slider(key="tok-step").set_value(200).run()
    assert metrics(fresh)["Count before the merge"] == f"{steps[199].count:,}"
    fresh.button(key="tok-next").click().run()
    assert fresh.slider(key="tok-step").value == 201
    fresh.button(key="tok-prev").click().run()
    fresh.button(key="tok-prev").click().run()
    assert fresh.slider(key="tok-step").value == 199
    fresh.button(key="tok-next-tie").click().run()
    next_tie = next(s.step for s in steps[199:] if s.is_tie)
    assert fresh.slider(key="tok-step").value == next_tie
    assert any("Tie." in body for body in html_bodies(fresh))
    fresh.slider(key="tok-step").set_value(0).run()
    assert not fresh.exception
    assert fresh.button(key="tok-prev").disabled


def test_word_is_split_with_the_first_k_merges(fresh: AppTest, reference) -> None:
    _text, tok, _steps = reference
    for k in (START_STEP, len(reference[2])):
        fresh.slider(key="tok-step").set_value(k).run()
        body = next(b for b in html_bodies(fresh) if f"With the first {k} merges" in b)
        pieces = segment_text(tok, " jumped", k)
        assert [int(i) for i in CHIP_ID.findall(body)] == [tok.token_to_id(p) for p in pieces]
    fresh.checkbox(key="tok-space").uncheck().run()
    body = next(b for b in html_bodies(fresh) if "With the first" in b)
    assert [int(i) for i in CHIP_ID.findall(body)] == tok.encode("jumped")


def test_charts_plot_the_computed_numbers(fresh: AppTest, reference) -> None:
    text, tok, steps = reference
    compression_chart, counts_chart = charts(fresh)
    plotted = sorted(
        (x, y)
        for trace in counts_chart["data"]
        for x, y in zip(decode(trace["x"]).tolist(), decode(trace["y"]).tolist(), strict=True)
    )
    assert plotted == [(s.step, s.count) for s in steps]
    tie_trace = named_trace(counts_chart, "tie")
    assert decode(tie_trace["x"]).tolist() == [s.step for s in steps if s.is_tie]
    corpus_line = named_trace(compression_chart, "training corpus")
    assert decode(corpus_line["y"]).tolist() == pytest.approx(compression_curve(tok, text))
    sentence = fresh.text_input(key="tok-sentence").value
    sentence_line = named_trace(compression_chart, "your sentence")
    assert decode(sentence_line["y"]).tolist() == pytest.approx(compression_curve(tok, sentence))
    ties = sum(s.is_tie for s in steps)
    assert any(f"{ties:,} of the {len(steps):,} merges" in c.value for c in fresh.caption)


def test_three_tokenizers_show_the_ids_they_produce(fresh: AppTest, reference) -> None:
    text, tok, _steps = reference
    sentence = fresh.text_input(key="tok-sentence").value
    char = train_char(text)
    wordpiece = train_wordpiece(text, max(VOCAB, wordpiece_min_vocab_size(text)))
    rows = comparison_rows(fresh)
    assert list(rows.values()) == [
        char.encode(sentence),
        tok.encode(sentence),
        wordpiece.encode(sentence),
    ]


@pytest.mark.parametrize(
    "sentence",
    ["Привет, мир 🙂 שלום עולם", MARKUP, "[MASK] tabs\tand spaces"],
    ids=["scripts", "markup", "specials"],
)
def test_unusual_sentences_are_tokenized_and_escaped(fresh: AppTest, sentence: str) -> None:
    fresh.text_input(key="tok-sentence").set_value(sentence).run()
    assert not fresh.exception
    assert not fresh.warning
    bodies = html_bodies(fresh)
    assert all("<img" not in body and "</script>" not in body for body in bodies)
    rows = comparison_rows(fresh)
    assert len(rows) == 3 and all(rows.values())


@pytest.mark.parametrize("value", [*BLANK_TEXTS, "x" * 50_000], ids=["empty", "blank", "50k"])
def test_empty_or_huge_text_gives_a_warning(fresh: AppTest, value: str) -> None:
    keys = ["tok-sentence", "tok-word", "tok-oov", "tok-script"]
    for key in keys:
        fresh.text_input(key=key).set_value(value)
    fresh.run()
    assert not fresh.exception
    assert len(fresh.warning) == len(keys)


def test_words_with_markup_are_shown_as_text(fresh: AppTest) -> None:
    for key in ("tok-word", "tok-oov", "tok-script"):
        fresh.text_input(key=key).set_value(MARKUP)
    fresh.run()
    assert not fresh.exception
    bodies = html_bodies(fresh)
    assert all("<img" not in body and "</script>" not in body for body in bodies)
    assert sum("&lt;" in body for body in bodies) >= 4


def test_unseen_word_is_split_into_known_pieces(fresh: AppTest, reference) -> None:
    text, tok, _steps = reference
    counts = word_counts(tok, text)
    assert any("occurs 0 times" in c.value for c in fresh.caption)
    assert list(comparison_rows(fresh, 1).values())[1] == tok.encode("unfoxable")
    fresh.text_input(key="tok-oov").set_value("fox").run()
    expected = counts.get("Ġfox", 0) + counts.get("fox", 0)
    assert expected > 0
    assert any(f"occurs {expected:,} times" in c.value for c in fresh.caption)


@pytest.mark.parametrize("value", [0, 10**9])
def test_absurd_vocabulary_sizes_never_crash(fresh: AppTest, value: int) -> None:
    fresh.number_input(key="tok-vocab").set_value(value).run()
    assert not fresh.exception
    assert 263 <= fresh.number_input(key="tok-vocab").value <= 5000


def test_smaller_vocabulary_gives_fewer_merges(fresh: AppTest) -> None:
    fresh.number_input(key="tok-vocab").set_value(300).run()
    assert not fresh.exception
    assert "37 merges learned" in training_caption(fresh)
    assert fresh.slider(key="tok-step").max == 37


def test_lesson_corpus(fresh: AppTest) -> None:
    fresh.radio(key="tok-source").set_value("lessons").run()
    assert not fresh.exception
    assert f"{len(lesson_corpus()):,} characters" in training_caption(fresh)


def test_own_text_waits_for_text_then_trains_on_it(fresh: AppTest) -> None:
    fresh.radio(key="tok-source").set_value("own").run()
    assert not fresh.exception
    assert not fresh.get("plotly_chart")
    own = "Привет мир 😀 שלום עולם low lower lowest " * 40
    fresh.text_area(key="tok-corpus-paste").set_value(own).run()
    assert not fresh.exception
    tok = train_bpe(own, VOCAB)
    assert f"{len(replay_tokenizer(tok, own)):,} merges learned" in training_caption(fresh)


@pytest.mark.parametrize(
    ("pasted", "shown"),
    [("a", "learned no merges"), ("\x01\x02\x03 binary \x04\x05" * 10, "binary")],
)
def test_own_text_that_cannot_teach_much(fresh: AppTest, pasted: str, shown: str) -> None:
    fresh.radio(key="tok-source").set_value("own").run()
    fresh.text_area(key="tok-corpus-paste").set_value(pasted).run()
    assert not fresh.exception
    messages = [m.value for m in [*fresh.info, *fresh.error]]
    assert any(shown in message for message in messages)


# AppTest cannot drive st.file_uploader, so the decoding the upload widget relies on is tested
# directly: non-UTF-8 and binary files are refused with a message for the student.
@pytest.mark.parametrize(
    "data", [b"\xff\xfe\x00bad", "caf\u00e9".encode("latin-1"), bytes(range(256))]
)
def test_bad_uploads_are_refused_with_a_message(data: bytes) -> None:
    with pytest.raises(UserTextError):
        decode_upload(data, "corpus.txt")


def test_tokenizer_json_round_trip_keeps_special_text_as_text(reference) -> None:
    # The page caches tokenizers as JSON and rebuilds them on every run.
    _text, tok, _steps = reference
    rebuilt = Tokenizer.from_str(tok.to_str())
    assert rebuilt.encode("[MASK]") == tok.encode("[MASK]")
    assert tok.mask_id not in rebuilt.encode("[MASK]")


# --------------------------------------------------------------------------------------------
# Other scripts
# --------------------------------------------------------------------------------------------

SCRIPT_METRICS = ("Characters (code points)", "Letters", "Bytes in UTF-8", "Bytes per character")


def script_tables(at: AppTest) -> tuple[list[dict], list[dict]]:
    """The table of bytes by kind of character and the table of tokens per tokenizer."""
    frames = [df.value for df in at.dataframe]
    by_kind = [f for f in frames if "kind" in f.columns]
    by_tokenizer = [f for f in frames if "tokenizer" in f.columns]
    assert len(by_kind) == len(by_tokenizer) == 1, [list(f.columns) for f in frames]
    return by_kind[0].to_dict("records"), by_tokenizer[0].to_dict("records")


def script_chip_rows(at: AppTest) -> dict[str, list[int]]:
    """The token ids of every row of the comparison of the other-scripts section."""
    blocks = [rows_of(body) for body in html_bodies(at) if "<b>Characters seen in" in body]
    assert len(blocks) == 1
    return blocks[0]


@pytest.fixture(scope="module")
def compared(reference) -> dict[str, Tokenizer]:
    """The six tokenizers the section compares, trained and loaded here, in its order."""
    text, tok, _steps = reference
    return {
        "char": train_char(text),
        "bpe": tok,
        "russian": train_russian_bpe(VOCAB),
        "wordpiece": train_wordpiece(text, max(VOCAB, wordpiece_min_vocab_size(text))),
        "gpt-stories": load_shipped("gpt-stories").tokenizer,
        "bert-stories": load_shipped("bert-stories").tokenizer,
    }


def check_script_section(at: AppTest, text: str, compared: dict[str, Tokenizer]) -> list[dict]:
    """The section's numbers equal a direct computation on ``text``; returns the token table."""
    chars = char_bytes(text)
    n_bytes = len(text.encode("utf-8"))
    assert {label: metrics(at)[label] for label in SCRIPT_METRICS} == {
        "Characters (code points)": f"{len(text):,}",
        "Letters": f"{letter_count(chars):,}",
        "Bytes in UTF-8": f"{n_bytes:,}",
        "Bytes per character": f"{n_bytes / len(text):.2f}",
    }
    by_kind, by_tokenizer = script_tables(at)
    totals = script_totals(chars)
    assert [(row["characters"], row["bytes"]) for row in by_kind] == [
        (t.characters, t.n_bytes) for t in totals
    ]
    words = len(text.split())
    expected = [len(tok.encode(text)) for tok in compared.values()]
    assert [row["tokens"] for row in by_tokenizer] == expected
    assert [row["tokens per word"] for row in by_tokenizer] == [
        round(n / words, 2) for n in expected
    ]
    assert [row["tokens per character"] for row in by_tokenizer] == [
        round(n / len(text), 2) for n in expected
    ]
    assert list(script_chip_rows(at).values()) == [tok.encode(text) for tok in compared.values()]
    return by_tokenizer


def test_other_scripts_section_counts_bytes_and_compares_tokenizers(page, compared) -> None:
    assert not page.exception
    text = page.text_input(key="tok-script").value
    assert sum(script_of(char) == "cyrillic" for char in text) > 20
    by_tokenizer = check_script_section(page, text, compared)
    by_kind, _rows = script_tables(page)
    cyrillic = next(row for row in by_kind if row["kind"] == "Cyrillic letters")
    assert cyrillic["bytes per character"] == 2.0
    trained = by_tokenizer[TRAINED_BPE_ROW]["tokens"]
    russian = by_tokenizer[RUSSIAN_BPE_ROW]["tokens"]
    assert trained > 2 * russian
    assert by_tokenizer[TRAINED_BPE_ROW]["tokenizer"].startswith("Byte-level BPE on English")
    assert by_tokenizer[RUSSIAN_BPE_ROW]["tokenizer"].startswith("Byte-level BPE on Russian")
    caption = next(c.value for c in page.caption if c.value.startswith("The byte-level BPE"))
    assert f"into {trained} tokens" in caption and f"into {russian} tokens" in caption
    assert f"{trained / russian:.1f} times fewer" in caption


def test_changing_the_text_updates_the_section(fresh: AppTest, compared) -> None:
    text = "Mia 日本 🦊🦊 ok"
    fresh.text_input(key="tok-script").set_value(text).run()
    assert not fresh.exception
    check_script_section(fresh, text, compared)
    by_kind, _rows = script_tables(fresh)
    per_character = {row["kind"]: row["bytes per character"] for row in by_kind}
    assert per_character == {
        "Latin letters": 1.0,
        "spaces": 1.0,
        "Chinese characters (CJK)": 3.0,
        "emoji": 4.0,
    }


@pytest.mark.parametrize("text", ["🦊🦊🦊", "日本", MARKUP], ids=["emoji", "cjk", "markup"])
def test_other_scripts_take_any_text(fresh: AppTest, compared, text: str) -> None:
    fresh.text_input(key="tok-script").set_value(text).run()
    assert not fresh.exception
    assert not fresh.warning
    check_script_section(fresh, text, compared)
    bodies = html_bodies(fresh)
    assert all("<img" not in body and "</script>" not in body for body in bodies)


def test_a_long_text_is_cut_with_a_message(fresh: AppTest, compared) -> None:
    fresh.text_input(key="tok-script").set_value("Привет, мир! " * 30).run()
    assert not fresh.exception
    assert [w.value for w in fresh.warning] == [
        "Your text has 390 characters; only the first 300 are used."
    ]
    check_script_section(fresh, ("Привет, мир! " * 30)[:300], compared)


def test_the_russian_corpus_trains_the_second_bpe_whatever_the_page_corpus(
    fresh: AppTest,
) -> None:
    fresh.radio(key="tok-source").set_value("lessons").run()
    assert not fresh.exception
    _by_kind, by_tokenizer = script_tables(fresh)
    assert by_tokenizer[TRAINED_BPE_ROW]["tokenizer"].startswith(
        "Byte-level BPE on English lessons"
    )
    assert by_tokenizer[RUSSIAN_BPE_ROW]["tokenizer"].startswith("Byte-level BPE on Russian")


# English names the Russian lesson text keeps on purpose: a term given with its English
# original, and the library's name.
ENGLISH_KEPT = ("out of vocabulary, OOV", "Hugging Face tokenizers")


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    kept = tuple(repr(name) for name in ENGLISH_KEPT)
    assert [left for left in english_leftovers(at) if not left.startswith(kept)] == []
