"""Headless page tests (Streamlit's AppTest): every page runs without an exception."""

import pytest
from streamlit.testing.v1 import AppTest


@pytest.fixture
def app(open_page) -> AppTest:
    return open_page()


def test_home_page_runs(app: AppTest) -> None:
    assert not app.exception
    assert app.title[0].value == "Tinyformers"


def test_home_page_shows_measured_parameter_counts(app: AppTest) -> None:
    from tinyformers.model.build import presets_table

    table = app.dataframe[0].value
    assert list(table["parameters"]) == [row["parameters"] for row in presets_table()]
