"""Helpers every lesson's figures share."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest
from markdown_it import MarkdownIt

from tests.page_checks import code_text
from tinyformers.figures.common import (
    MAX_FIGURE_HEIGHT,
    code_block,
    fit_height,
    markdown_table,
    number,
    split_code_blocks,
    token_chips,
)
from tinyformers.i18n import LANGUAGES
from tinyformers.lessons import load_lessons, translated


@pytest.mark.parametrize(
    ("value", "digits", "shown"),
    [
        (867072, 0, "867,072"),
        (-0.0001, 3, "0.000"),
        (-0.0, 2, "0.00"),
        (-1.23456, 3, "-1.235"),
        (1234.5, 1, "1,234.5"),
    ],
)
def test_numbers_are_formatted_for_reading(value, digits, shown) -> None:
    assert number(value, digits) == shown


def test_tall_figures_are_capped_and_short_ones_kept() -> None:
    assert fit_height(go.Figure(layout={"height": 900})).layout.height == MAX_FIGURE_HEIGHT
    assert fit_height(go.Figure(layout={"height": 300})).layout.height == 300
    assert fit_height(go.Figure()).layout.height == MAX_FIGURE_HEIGHT


def test_token_chips_escape_markup() -> None:
    html = token_chips(["<script>", " a"], [1, 2])
    assert "<script>" not in html and "&lt;script&gt;" in html and "␣a" in html


def test_prose_and_code_blocks_come_apart_in_order() -> None:
    text = "Before.\n\n```python\nx = 1\n\ny = 2\n```\n\nBetween.\n```\nplain\n```\nAfter."
    assert split_code_blocks(text) == [
        ("Before.", None),
        ("x = 1\n\ny = 2", "python"),
        ("Between.", None),
        ("plain", ""),
        ("After.", None),
    ]
    assert split_code_blocks("No code, only `inline` code.") == [
        ("No code, only `inline` code.", None)
    ]


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_lesson_code_block_is_found_as_commonmark_finds_it(language) -> None:
    parser = MarkdownIt("commonmark")
    for lesson in load_lessons():
        for section in translated(lesson, language).sections:
            theirs = [
                (t.content.rstrip("\n"), t.info)
                for t in parser.parse(section.body)
                if t.type == "fence"
            ]
            ours = [
                (code, lang) for code, lang in split_code_blocks(section.body) if lang is not None
            ]
            assert ours == theirs, f"{lesson.slug}#{section.key}"


@pytest.mark.parametrize("language", ["python", "bash", "", "no-such-language"])
def test_a_code_block_shows_its_text_exactly_and_runs_no_markup(language) -> None:
    source = 'print("</pre><script>alert(1)</script>")  # <b>&amp;\n\tindented'
    block = code_block(source, language)
    assert "<script>" not in block and "<b>" not in block
    assert code_text(block) == source


def test_python_is_coloured_and_unknown_languages_are_plain() -> None:
    assert "color" in code_block("import os", "python")
    assert "<span" not in code_block("import os", "no-such-language")
    assert "pre-wrap" in code_block("x", wrap=True) and "pre-wrap" not in code_block("x")


def table_cells(markdown: str) -> tuple[list[list[str]], list[str | None]]:
    """The cells of a markdown table and its column alignments, as a CommonMark parser with
    tables reads them."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    rows, row, aligns = [], None, []
    for token in tokens:
        if token.type == "tr_open":
            row = []
        elif token.type in ("th_open", "td_open"):
            style = token.attrs.get("style") or ""
            if token.type == "th_open":
                aligns.append(style.removeprefix("text-align:") or None)
        elif token.type == "inline" and row is not None:
            row.append("".join(c.content for c in token.children or []))
        elif token.type == "tr_close":
            rows.append(row)
            row = None
    return rows, aligns


def test_a_markdown_table_reads_back_cell_for_cell() -> None:
    header = ["name", "a|b", "count"]
    rows = [["*bold*", "<script>x</script>", "12,288"], ["back\\slash `code`", "[link](x)", "-0.5"]]
    cells, aligns = table_cells(markdown_table(header, rows, right=(2,)))
    assert cells == [header, *rows]
    assert aligns == [None, None, "right"]
    cells, _ = table_cells(markdown_table(["a", "b"], [["two\nlines", "x"]]))
    assert cells == [["a", "b"], ["two lines", "x"]]
    with pytest.raises(ValueError, match="every row needs 3 cells"):
        markdown_table(header, [["only one"]])
