"""Figures for a printed handout: a heatmap and a bar chart as plain SVG (no script, no font
files, every label escaped), so a handout stays one small file that prints as it looks.

The lesson pages draw with Plotly; a handout cannot carry plotly.js (4.8 MB, with CDN addresses
in it), so it draws the same numbers with these two shapes, written in the current language's
style (0.84 in English, 0,84 in Russian).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from tinyformers.i18n import current_language, restyle, significant

CELL = 22  # px per heatmap cell
LABEL_WIDTH = 110  # px kept for row labels (and the height kept for column labels)
BAR_HEIGHT = 18
BAR_LENGTH = 360
FONT = 'font-family="Georgia, serif" font-size="11"'


@dataclass(frozen=True)
class Picture:
    """What a handout draws for a lesson's live computation: a heatmap (``matrix`` with row and
    column labels) or bars (``values`` with one label each), with a title and a caption."""

    title: str
    caption: str
    matrix: Sequence[Sequence[float]] | None = None
    rows: Sequence[str] = ()
    columns: Sequence[str] = ()
    values: Sequence[float] | None = None
    labels: Sequence[str] = ()

    def __post_init__(self) -> None:
        if (self.matrix is None) == (self.values is None):
            raise ValueError("a picture is either a heatmap (matrix) or bars (values)")
        if self.matrix is not None:
            if len(self.matrix) != len(self.rows):
                raise ValueError(f"{len(self.matrix)} matrix rows but {len(self.rows)} labels")
            if any(len(row) != len(self.columns) for row in self.matrix):
                raise ValueError(f"every matrix row needs {len(self.columns)} values")
        elif len(self.values) != len(self.labels):
            raise ValueError(f"{len(self.values)} bars but {len(self.labels)} labels")


def _shade(value: float, low: float, high: float) -> str:
    """White at ``low`` to dark blue at ``high`` (prints in grey as well as in colour)."""
    t = 0.0 if high <= low else min(1.0, max(0.0, (value - low) / (high - low)))
    r, g, b = (round(255 + (end - 255) * t) for end in (8, 48, 107))
    return f"rgb({r},{g},{b})"


def _label(text: str, limit: int = 14) -> str:
    return html.escape(text if len(text) <= limit else text[: limit - 1] + "…")


def _fixed(value: float) -> str:
    """A heatmap cell's value, three decimals."""
    return restyle(f"{value:.3f}", current_language())


def heatmap_svg(picture: Picture) -> str:
    matrix = [[float(v) for v in row] for row in picture.matrix]
    flat = [v for row in matrix for v in row]
    low, high = min(flat, default=0.0), max(flat, default=1.0)
    width = LABEL_WIDTH + CELL * len(picture.columns) + 10
    height = LABEL_WIDTH + CELL * len(picture.rows) + 10
    parts = [f'<svg width="{width}" height="{height}">']
    for j, name in enumerate(picture.columns):
        x = LABEL_WIDTH + CELL * j + CELL / 2
        parts.append(
            f'<text {FONT} transform="translate({x:.1f},{LABEL_WIDTH - 4}) rotate(-60)">'
            f"{_label(name)}</text>"
        )
    for i, (name, row) in enumerate(zip(picture.rows, matrix, strict=True)):
        y = LABEL_WIDTH + CELL * i
        parts.append(
            f'<text {FONT} x="{LABEL_WIDTH - 4}" y="{y + CELL * 0.7:.1f}" text-anchor="end">'
            f"{_label(name)}</text>"
        )
        for j, value in enumerate(row):
            parts.append(
                f'<rect x="{LABEL_WIDTH + CELL * j}" y="{y}" width="{CELL}" height="{CELL}" '
                f'fill="{_shade(value, low, high)}"><title>{_fixed(value)}</title></rect>'
            )
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(picture: Picture) -> str:
    values = [float(v) for v in picture.values]
    top = max([abs(v) for v in values] + [1e-12])
    height = BAR_HEIGHT * len(values) + 10
    width = LABEL_WIDTH + BAR_LENGTH + 70
    parts = [f'<svg width="{width}" height="{height}">']
    for i, (name, value) in enumerate(zip(picture.labels, values, strict=True)):
        y = BAR_HEIGHT * i
        length = BAR_LENGTH * abs(value) / top
        parts.append(
            f'<text {FONT} x="{LABEL_WIDTH - 4}" y="{y + BAR_HEIGHT * 0.7:.1f}" '
            f'text-anchor="end">{_label(name, 18)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 2}" width="{length:.1f}" height="{BAR_HEIGHT - 4}" '
            f'fill="rgb(8,48,107)"/>'
            f'<text {FONT} x="{LABEL_WIDTH + length + 4:.1f}" y="{y + BAR_HEIGHT * 0.7:.1f}">'
            f"{significant(value, current_language())}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def picture_html(picture: Picture) -> str:
    """The picture as a captioned figure for the handout."""
    svg = heatmap_svg(picture) if picture.matrix is not None else bars_svg(picture)
    return (
        f"<figure><figcaption><b>{html.escape(picture.title)}</b></figcaption>{svg}"
        f"<figcaption>{html.escape(picture.caption)}</figcaption></figure>"
    )
