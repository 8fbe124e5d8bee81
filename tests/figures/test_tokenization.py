"""Figures of the tokenization lesson: HTML is escaped, charts plot the numbers they are given."""

import pytest

from tinyformers.course.tokenization import (
    BASE_VOCAB_SIZE,
    MergeStep,
    TokenCount,
    char_bytes,
    script_totals,
    train_and_replay,
)
from tinyformers.figures.tokenization import (
    bytes_metrics,
    char_bytes_html,
    comparison_html,
    compression_caption,
    compression_figure,
    merge_counts_figure,
    merge_step_html,
    merge_table,
    script_table,
    scripts_caption,
    shown_char,
    ties_caption,
    token_count_table,
    training_caption,
    visible,
)
from tinyformers.text.corpora import generate_corpus

EVIL = "</script><img src=x onerror=alert(1)>"


def _step(number: int, count: int, runner_up_count: int, **overrides) -> MergeStep:
    fields = dict(
        step=number,
        left="Ġ",
        right="t",
        count=count,
        vocab_size=263 + number,
        pair_ids=(227, 89),
        runner_up=("t", "h"),
        runner_up_count=runner_up_count,
        runner_up_ids=(89, 75),
    )
    fields.update(overrides)
    return MergeStep(**fields)


SHOWN = {"Ġ": " ", "Ġt": " t", "t": "t", "h": "h"}


def test_visible_marks_spaces_and_newlines() -> None:
    assert visible(" a\nb") == "␣a⏎b"


def test_merge_step_html_escapes_every_token() -> None:
    step = _step(1, 5, 3, left=EVIL, right="x", runner_up=(EVIL, "y"))
    page = merge_step_html(step, {}, new_id=300)
    assert "<img" not in page and "</script>" not in page
    assert "&lt;img" in page
    assert ">300<" in page.replace(" ", "")


def test_merge_step_html_names_the_rival_when_there_is_no_tie() -> None:
    page = merge_step_html(_step(3, 10, 7), SHOWN)
    assert "occurred 7 times, fewer than 10" in page
    assert "Tie" not in page


@pytest.mark.parametrize(
    ("pair_ids", "runner_up_ids", "deciding"),
    [((227, 89), (228, 75), "left"), ((89, 75), (89, 80), "right")],
)
def test_merge_step_html_explains_a_tie(pair_ids, runner_up_ids, deciding) -> None:
    step = _step(4, 9, 9, pair_ids=pair_ids, runner_up_ids=runner_up_ids)
    page = merge_step_html(step, SHOWN)
    assert "Tie." in page
    assert f"the smaller {deciding} id wins" in page
    assert str(pair_ids) in page and str(runner_up_ids) in page


def test_merge_step_html_without_any_rival() -> None:
    page = merge_step_html(_step(1, 4, 0, runner_up=None, runner_up_ids=None), SHOWN)
    assert "No other pair" in page


def test_merge_table_lists_the_latest_merges_newest_first() -> None:
    steps = [_step(n, 100 - n, 90 - n) for n in range(1, 21)]
    steps[14] = _step(15, 50, 50)
    rows = merge_table(steps, SHOWN, k=15, rows=4)
    assert [row["step"] for row in rows] == [15, 14, 13, 12]
    assert rows[0]["won a tie against"] == "t + h"
    assert rows[1]["won a tie against"] == ""
    assert rows[0]["new token"] == "␣t"
    assert merge_table(steps, SHOWN, k=0) == []


def test_comparison_html_escapes_labels_and_tokens() -> None:
    page = comparison_html([(EVIL, [EVIL, "b"], [5, 6])])
    assert "<img" not in page and "</script>" not in page
    assert "2 tokens" in page


def test_comparison_html_rejects_mismatched_ids() -> None:
    with pytest.raises(ValueError, match="2 tokens but 1 ids"):
        comparison_html([("BPE", ["a", "b"], [1])])


def test_merge_counts_figure_splits_ties_from_clear_winners() -> None:
    steps = [_step(1, 50, 40), _step(2, 40, 40), _step(3, 30, 20), _step(4, 20, 20)]
    figure = merge_counts_figure(steps, current=2)
    clear, tie = figure.data
    assert list(clear.x) == [1, 3] and list(clear.y) == [50, 30]
    assert list(tie.x) == [2, 4] and list(tie.y) == [40, 20]
    assert figure.layout.shapes[0].x0 == 2
    assert figure.layout.yaxis.type == "log"


def test_merge_counts_figure_escapes_hover_text() -> None:
    figure = merge_counts_figure([_step(1, 5, 1, left=EVIL)], current=0)
    texts = [text for trace in figure.data for text in trace.text]
    assert texts and all("<img" not in text for text in texts)
    assert not figure.layout.shapes


def test_compression_figure_draws_one_line_per_text() -> None:
    curves = {"corpus": [1.0, 0.8, 0.5], EVIL: [1.2, 1.0, 0.9]}
    figure = compression_figure(curves, current=1)
    assert len(figure.data) == 2
    assert list(figure.data[0].x) == [0, 1, 2]
    assert list(figure.data[1].y) == [1.2, 1.0, 0.9]
    assert "<img" not in figure.data[1].name
    assert figure.layout.shapes[0].x0 == 1


def test_training_caption_gives_the_corpus_and_vocabulary_in_numbers() -> None:
    text = generate_corpus(40, seed=0)
    trained = train_and_replay(text, 400)
    caption = training_caption(trained, 400)
    assert caption.startswith(f"{len(text):,} characters, {sum(trained.words.values()):,} words")
    assert f"{trained.n_merges:,} merges learned" in caption
    assert f"has {trained.bpe.vocab_size:,} tokens ({BASE_VOCAB_SIZE} special" in caption
    assert ("stopped early" in caption) == (trained.bpe.vocab_size < 400)
    assert "stopped early" in training_caption(trained, trained.bpe.vocab_size + 1)


def test_ties_caption_counts_ties_and_smaller_ids() -> None:
    steps = [
        _step(1, 50, 40),
        _step(2, 40, 40, pair_ids=(80, 1), runner_up_ids=(89, 75)),
        _step(3, 30, 30, pair_ids=(90, 1), runner_up_ids=(89, 75)),
    ]
    assert ties_caption(steps) == (
        "2 of the 3 merges were decided by the tie-break; "
        "the merged pair had the smaller ids in 1 of them."
    )


def test_compression_caption_reads_the_curve_at_zero_k_and_the_end() -> None:
    curves = {"corpus": [1.0, 0.8, 0.5], "yours": [1.25, 1.0, 0.9]}
    assert compression_caption(curves, 1) == (
        "corpus: 1.00 tokens per character with no merges, 0.80 with k = 1, 0.50 with all 2 · "
        "yours: 1.25 tokens per character with no merges, 1.00 with k = 1, 0.90 with all 2"
    )


# --------------------------------------------------------------------------------------------
# Other scripts
# --------------------------------------------------------------------------------------------


def test_char_bytes_html_shows_every_character_with_its_bytes() -> None:
    page = char_bytes_html(char_bytes("aм日🦊"))
    assert [hexes in page for hexes in ("61", "D0 BC", "E6 97 A5", "F0 9F A6 8A")] == [True] * 4
    assert page.count("<bdi>") == 4
    assert 'title="Cyrillic letters · 2 bytes"' in page
    assert page.count("<bdi>") == 4 and "1 byte<" in page and "4 bytes<" in page


def test_char_bytes_html_escapes_markup() -> None:
    page = char_bytes_html(char_bytes(EVIL))
    assert "<img" not in page and "</script>" not in page
    assert page.count("<bdi>") == len(EVIL)
    assert "&lt;" in page and "3C" in page


@pytest.mark.parametrize(
    ("char", "shown"),
    [(" ", "␣"), ("\t", "U+0009"), ("\u202e", "U+202E"), ("\u0301", "◌\u0301"), ("ё", "ё")],
)
def test_shown_char_makes_invisible_characters_visible(char: str, shown: str) -> None:
    assert shown_char(char) == shown


def test_script_table_sums_by_group() -> None:
    rows = script_table(script_totals(char_bytes("мир, 🦊")))
    assert rows == [
        {"kind": "Cyrillic letters", "characters": 3, "bytes": 6, "bytes per character": 2.0},
        {"kind": "punctuation", "characters": 1, "bytes": 1, "bytes per character": 1.0},
        {"kind": "spaces", "characters": 1, "bytes": 1, "bytes per character": 1.0},
        {"kind": "emoji", "characters": 1, "bytes": 4, "bytes per character": 4.0},
    ]


def test_bytes_metrics_count_characters_letters_and_bytes() -> None:
    assert bytes_metrics(char_bytes("мир 日")) == {
        "Characters (code points)": "5",
        "Letters": "4",
        "Bytes in UTF-8": "10",
        "Bytes per character": "2.00",
    }
    with pytest.raises(ValueError, match="no characters"):
        bytes_metrics([])


def test_token_count_table_rounds_the_rates() -> None:
    rows = token_count_table([TokenCount("BPE", 7, 3, 9), TokenCount("none", 0, 0, 0)])
    assert rows == [
        {"tokenizer": "BPE", "tokens": 7, "tokens per word": 2.33, "tokens per character": 0.78},
        {"tokenizer": "none", "tokens": 0, "tokens per word": None, "tokens per character": None},
    ]


def _counts(trained: int, russian: int) -> list[TokenCount]:
    return [
        TokenCount("chars", 1, 1, 1),
        TokenCount("bpe", trained, 1, 1),
        TokenCount("ru", russian, 1, 1),
    ]


@pytest.mark.parametrize(
    ("trained", "russian", "ending"),
    [
        (
            86,
            31,
            "into 86 tokens, the one of the same size trained on the Russian lessons into "
            "31 tokens: 2.8 times fewer.",
        ),
        (
            10,
            25,
            "into 10 tokens, the one of the same size trained on the Russian lessons into "
            "25 tokens: 2.5 times more.",
        ),
        (
            1,
            1,
            "into 1 token, the one of the same size trained on the Russian lessons into 1 token.",
        ),
        (
            100,
            99,
            "into 100 tokens, the one of the same size trained on the Russian lessons into "
            "99 tokens.",
        ),
    ],
)
def test_scripts_caption_states_the_computed_ratio(trained, russian, ending) -> None:
    caption = scripts_caption("stories", _counts(trained, russian))
    assert caption == "The byte-level BPE trained on English stories cuts this text " + ending
