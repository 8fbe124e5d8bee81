"""Helpers every lesson's figures share."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest

from tinyformers.figures.common import MAX_FIGURE_HEIGHT, fit_height, number, token_chips


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
