"""The course map in Russian: no interface text is left in English."""

from __future__ import annotations

from tests.page_checks import english_leftovers, markdown_table_cells
from tinyformers.i18n import number
from tinyformers.model.build import presets_table

PAGE = "app_pages/home.py"


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []


def test_parameter_counts_are_written_the_russian_way(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    header, *rows = markdown_table_cells(at, "параметры")
    counts = [row[header.index("параметры")] for row in rows]
    assert counts == [number(row["parameters"], "ru") for row in presets_table()]
    assert any("\N{NO-BREAK SPACE}" in count for count in counts)  # 12 288, not 12,288
