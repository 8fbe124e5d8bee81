"""What every lesson's figures share: tokens as coloured chips, code blocks as HTML (every
token and line escaped), chart sizes, colours and number formatting."""

from __future__ import annotations

import html
import math
import re

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

PALETTE = ["#fde2e4", "#e2ece9", "#dfe7fd", "#fff1e6", "#e9edc9", "#f0efeb", "#cddafd"]


def token_chips(tokens: list[str], ids: list[int] | None = None) -> str:
    """HTML for tokens as coloured chips (every token escaped; the caller renders with
    ``st.html``)."""
    chips = []
    for i, token in enumerate(tokens):
        shown = html.escape(token.replace(" ", "␣").replace("\n", "⏎"))
        title = f' title="id {ids[i]}"' if ids is not None else ""
        chips.append(
            f'<span{title} style="background:{PALETTE[i % len(PALETTE)]};padding:2px 4px;'
            f'margin:1px;border-radius:4px;font-family:monospace;display:inline-block"><bdi>{shown}</bdi>'
            + (f'<sub style="color:#666"> {ids[i]}</sub>' if ids is not None else "")
            + "</span>"
        )
    return '<div style="line-height:2">' + "".join(chips) + "</div>"


# line and marker colours of things drawn side by side (models, sentences), in order
SERIES_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
)

TOP_COLORBAR = dict(  # a thin horizontal colour bar under a panel's title
    orientation="h",
    y=1.0,
    yanchor="bottom",
    len=0.9,
    thickness=8,
    ypad=2,
    nticks=3,
    tickfont_size=12,
    outlinewidth=0,
)

MAX_FIGURE_HEIGHT = 560  # px: a chart and the controls above it fit a 1024×768 projector


def fit_height(figure, limit: int = MAX_FIGURE_HEIGHT):
    """The figure with its height capped at ``limit`` pixels (it is changed and returned)."""
    height = figure.layout.height
    if height is None or height > limit:
        figure.update_layout(height=min(height or limit, limit))
    return figure


def number(value: float, digits: int = 3) -> str:
    """A number as a page shows it: thousands separators, ``digits`` decimals, and never a
    negative zero ("-0.000" is "0.000")."""
    text = f"{value:,.{digits}f}"
    return text[1:] if text.startswith("-") and float(text[1:].replace(",", "")) == 0 else text


LESSON_FONT_SIZE = 15
LESSON_TEMPLATE = "plotly_white"


def grouped_layout(figure, title: str, height: int):
    """A lesson chart's frame: escaped title, white template, legend under the plot, bars in
    groups (the layout the distillation and alignment charts share)."""
    figure.update_layout(
        title={"text": html.escape(title), "font": {"size": LESSON_FONT_SIZE + 1}},
        font_size=LESSON_FONT_SIZE,
        height=height,
        template=LESSON_TEMPLATE,
        margin={"l": 60, "r": 20, "t": 80, "b": 60},
        legend={"orientation": "h", "y": -0.22, "yanchor": "top", "x": 0},
        barmode="group",
    )
    return figure


def finite(value: float | None) -> float | None:
    """``value`` if it is a finite number, else None (a chart leaves a gap there)."""
    return value if value is not None and math.isfinite(value) else None


# A fenced block in a lesson's markdown: ```python, the code, then ``` alone on its line
FENCE = re.compile(r"^```([\w+-]*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_STYLE = (
    "background:#f0f2f6;border-radius:0.5rem;padding:0.75rem 1rem;margin:0 0 1rem;"
    "overflow-x:auto;font-family:'Source Code Pro',monospace;font-size:0.85rem;line-height:1.5"
)


def split_code_blocks(markdown: str) -> list[tuple[str, str | None]]:
    """``markdown`` cut at its fenced code blocks, in order: ``(text, None)`` for the prose
    between them and ``(code, language)`` for each block ("" when the fence names none)."""
    parts: list[tuple[str, str | None]] = []
    end = 0
    for fence in FENCE.finditer(markdown):
        if prose := markdown[end : fence.start()].strip():
            parts.append((prose, None))
        parts.append((fence.group(2).rstrip("\n"), fence.group(1)))
        end = fence.end()
    if prose := markdown[end:].strip():
        parts.append((prose, None))
    return parts


def code_block(source: str, language: str = "", wrap: bool = False) -> str:
    """HTML for ``source`` as a code block, coloured by Pygments when ``language`` names one
    it knows (every character escaped; the caller renders with ``st.html``). ``wrap`` breaks
    long lines instead of scrolling them."""
    try:
        lexer = get_lexer_by_name(language) if language else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        body = html.escape(source)
    else:
        body = highlight(source, lexer, HtmlFormatter(noclasses=True, nowrap=True)).rstrip("\n")
    spacing = "pre-wrap;overflow-wrap:anywhere" if wrap else "pre"
    return f'<pre style="{CODE_STYLE};white-space:{spacing}"><code>{body}</code></pre>'


MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~])")


def markdown_table(header: list[str], rows: list[list[str]], right: tuple[int, ...] = ()) -> str:
    """A markdown table: ``header``, then ``rows`` of cells, the columns numbered in ``right``
    aligned right (for numbers). Every cell is escaped and kept on one line, so it reads as
    plain text. Streamlit draws it with the markdown it already has, where a dataframe would
    load a table viewer."""
    if any(len(row) != len(header) for row in rows):
        raise ValueError(f"every row needs {len(header)} cells")

    def line(cells: list[str]) -> str:
        cells = [MARKDOWN_PUNCTUATION.sub(r"\\\1", " ".join(c.splitlines())) for c in cells]
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join("---:" if i in right else "---" for i in range(len(header))) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])
