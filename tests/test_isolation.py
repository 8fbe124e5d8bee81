"""Nobody sees anybody else's work: two sessions of one server (AppTest sessions share the
process, its cached models and its work folder, as a server's sessions do) each train a model,
and neither model appears in the other session's pickers or saved work."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP_DIR = str(Path(__file__).resolve().parents[1] / "app")


def student(app_dir: str, name: str) -> None:
    import sys

    import streamlit as st

    sys.path.insert(0, app_dir)
    import widgets

    from tests.kept_models import keep_tiny_models

    widgets.workspace()
    if st.button("Keep", key="keep"):
        keep_tiny_models([name])
    widgets.model_picker("Model", "gpt", key="picker")
    st.write(f"saved {sorted(widgets.workspace().load_models())}")


def test_two_sessions_never_see_each_others_models() -> None:
    sessions = {}
    for name in ("alice-gpt", "bob-gpt"):
        at = AppTest.from_function(student, args=(APP_DIR, name), default_timeout=180)
        at.run()
        at.button(key="keep").click().run()
        assert not at.exception, at.exception
        sessions[name] = at
    for name, at in sessions.items():
        at.run()
        other = next(n for n in sessions if n != name)
        options = at.selectbox(key="picker").options
        assert name in options and other not in options
        saved = at.markdown[-1].value
        assert name in saved and other not in saved
        assert at.session_state["work_id"] != sessions[other].session_state["work_id"]
