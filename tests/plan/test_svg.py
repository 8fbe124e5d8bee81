"""Handout figures as plain SVG: shapes checked against their numbers, labels kept as text."""

from __future__ import annotations

import re

import pytest

from tinyformers.plan.svg import Picture, bars_svg, heatmap_svg, picture_html


def test_a_heatmap_has_one_cell_per_value_shaded_from_white_to_dark() -> None:
    picture = Picture(
        "t", "c", matrix=[[0.0, 1.0], [0.5, 0.25]], rows=["a", "b"], columns=["x", "y"]
    )
    svg = heatmap_svg(picture)
    fills = re.findall(r'<rect [^>]*fill="(rgb\([^)]*\))"><title>([0-9.]+)</title>', svg)
    assert [value for _, value in fills] == ["0.000", "1.000", "0.500", "0.250"]
    assert fills[0][0] == "rgb(255,255,255)" and fills[1][0] == "rgb(8,48,107)"


def test_bars_are_as_long_as_their_values() -> None:
    svg = bars_svg(Picture("t", "c", values=[0.5, 0.25, 0.125], labels=["a", "b", "c"]))
    widths = [float(w) for w in re.findall(r'<rect [^>]*width="([0-9.]+)"', svg)]
    assert widths == pytest.approx([360.0, 180.0, 90.0])


def test_labels_and_titles_stay_text() -> None:
    markup = '<script>alert(1)</script><img src=x onerror="x">'
    picture = Picture(markup, markup, values=[1.0], labels=[markup])
    out = picture_html(picture)
    assert "<script" not in out and "<img" not in out and "&lt;script&gt;" in out


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(), "either a heatmap"),
        (dict(values=[1.0], matrix=[[1.0]], rows=["a"], columns=["b"]), "either a heatmap"),
        (dict(matrix=[[1.0, 2.0]], rows=["a"], columns=["b"]), "every matrix row needs 1"),
        (dict(matrix=[[1.0]], rows=["a", "b"], columns=["b"]), "1 matrix rows but 2 labels"),
        (dict(values=[1.0, 2.0], labels=["a"]), "2 bars but 1 labels"),
    ],
)
def test_a_picture_that_does_not_add_up_is_refused(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        Picture("t", "c", **kwargs)


def test_numbers_are_written_in_the_current_languages_style(monkeypatch) -> None:
    from tinyformers import i18n

    heatmap = Picture("t", "c", matrix=[[0.25]], rows=["a"], columns=["x"])
    bars = Picture("t", "c", values=[0.125], labels=["a"])
    assert "<title>0.250</title>" in heatmap_svg(heatmap) and ">0.125</text>" in bars_svg(bars)
    monkeypatch.setattr(i18n, "_language_source", lambda: "ru")
    assert "<title>0,250</title>" in heatmap_svg(heatmap) and ">0,125</text>" in bars_svg(bars)
