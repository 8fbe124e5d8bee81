"""What the shared widgets do on a class server (TINYFORMERS_HOSTED=1), run headless."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tinyformers.text.display import plain

APP_DIR = str(Path(__file__).resolve().parents[2] / "app")
HOSTED_VARIABLES = (
    "TINYFORMERS_HOSTED",
    "TINYFORMERS_EXTERNAL_MODELS",
    "TINYFORMERS_MODELS_DIR",
    "TINYFORMERS_MAX_UPLOAD_MB",
    "TINYFORMERS_SESSION_MODELS",
    "STREAMLIT_CLIENT_SHOW_ERROR_DETAILS",
)


@pytest.fixture(autouse=True)
def hosted(monkeypatch) -> None:
    for name in HOSTED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TINYFORMERS_HOSTED", "1")


def corpus_script(app_dir: str) -> None:
    import sys

    import streamlit as st

    sys.path.insert(0, app_dir)
    from widgets import corpus_input

    text = corpus_input("c")
    if text is not None:
        st.write(f"read {len(text)} characters")


def run(script, *args) -> AppTest:
    at = AppTest.from_function(script, args=(APP_DIR, *args), default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


def test_an_upload_over_the_cap_is_refused_before_it_is_read() -> None:
    at = run(corpus_script)
    at.file_uploader[0].upload("big.txt", b"word " * 120_000, "text/plain").run()
    assert not at.exception
    (error,) = at.error
    assert plain("the file is 0.6 MB; this server reads uploads of up to 0.5 MB") in error.value
    assert not [m for m in at.markdown if m.value.startswith("read ")]


def test_the_upload_cap_can_be_raised_or_is_absent_off_a_class_server(monkeypatch) -> None:
    monkeypatch.setenv("TINYFORMERS_MAX_UPLOAD_MB", "1")
    at = run(corpus_script)
    at.file_uploader[0].upload("big.txt", b"word " * 120_000, "text/plain").run()
    assert "more than the limit of 200,000" in at.error[0].value  # the text's own cap
    monkeypatch.setenv("TINYFORMERS_HOSTED", "0")
    monkeypatch.delenv("TINYFORMERS_MAX_UPLOAD_MB")
    at = run(corpus_script)
    at.file_uploader[0].upload("small.txt", b"the cat sat. " * 100, "text/plain").run()
    assert not at.error and at.markdown[-1].value == "read 1300 characters"


def picker_script(app_dir: str) -> None:
    import sys

    sys.path.insert(0, app_dir)
    from widgets import model_picker

    model_picker("Model", "gpt", key="m")


def test_the_external_option_is_off_unless_a_models_folder_is_set(monkeypatch, tmp_path) -> None:
    options = run(picker_script).selectbox(key="m").options
    assert not any(o.startswith("Other") for o in options)
    monkeypatch.setenv("TINYFORMERS_MODELS_DIR", str(tmp_path))
    assert run(picker_script).selectbox(key="m").options[-1].startswith("Other")
    monkeypatch.setenv("TINYFORMERS_EXTERNAL_MODELS", "0")
    assert not run(picker_script).selectbox(key="m").options[-1].startswith("Other")


def keep_script(app_dir: str, names: list[str]) -> None:
    import sys

    import streamlit as st

    sys.path.insert(0, app_dir)
    from widgets import TRAINED_KEY

    from tests.kept_models import keep_tiny_models

    if st.button("Keep", key="keep"):
        keep_tiny_models(names)
    st.write(f"kept {list(st.session_state.get(TRAINED_KEY, {}))}")


def test_a_session_keeps_at_most_the_cap_of_trained_models(monkeypatch) -> None:
    monkeypatch.setenv("TINYFORMERS_SESSION_MODELS", "2")
    at = run(keep_script, ["first-*x*", "second", "third"])
    at.button(key="keep").click().run()
    assert not at.exception
    assert at.markdown[-1].value == "kept ['second', 'third']"
    assert any(r"first\-\*x\*" in info.value for info in at.info)


def test_failed_runs_show_no_details_on_a_class_server(monkeypatch) -> None:
    sys.path.insert(0, APP_DIR)
    from widgets import failure_message

    hidden = failure_message("OSError: /srv/secret/path is gone")
    assert "secret" not in hidden and "log" in hidden
    monkeypatch.setenv("STREAMLIT_CLIENT_SHOW_ERROR_DETAILS", "full")
    assert failure_message("ValueError: **x**") == r"The run failed: ValueError\: \*\*x\*\*"


def details_script(app_dir: str) -> None:
    import sys

    import streamlit as st

    sys.path.insert(0, app_dir)
    from widgets import apply_hosting

    apply_hosting()
    st.write(f"details {st.get_option('client.showErrorDetails')}")


def test_error_details_are_hidden_at_startup_on_a_class_server() -> None:
    import streamlit as st

    before = st.get_option("client.showErrorDetails")
    try:
        assert run(details_script).markdown[0].value == "details none"
    finally:
        st.set_option("client.showErrorDetails", before)


def test_off_a_class_server_streamlit_s_setting_stands(monkeypatch) -> None:
    import streamlit as st

    monkeypatch.setenv("TINYFORMERS_HOSTED", "0")
    before = st.get_option("client.showErrorDetails")
    assert run(details_script).markdown[0].value == f"details {before}"
