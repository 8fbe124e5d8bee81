"""The whole app on a class server (TINYFORMERS_HOSTED=1), run headless."""

from __future__ import annotations

import pytest
import streamlit as st

from tests.conftest import _open_page

OPTION = "client.showErrorDetails"


@pytest.fixture
def hosted(monkeypatch):
    for name in (
        "TINYFORMERS_EXTERNAL_MODELS",
        "TINYFORMERS_MODELS_DIR",
        "STREAMLIT_CLIENT_SHOW_ERROR_DETAILS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TINYFORMERS_HOSTED", "1")
    before = st.get_option(OPTION)
    yield
    st.set_option(OPTION, before)  # the option is the process's: other tests see the default


def test_a_class_server_hides_error_details_and_external_models(hosted) -> None:
    at = _open_page("app_pages/positional_encoding.py")
    assert st.get_option(OPTION) == "none"
    options = at.selectbox(key="pe-model").options
    assert options and not any(o.startswith("Other") for o in options)
