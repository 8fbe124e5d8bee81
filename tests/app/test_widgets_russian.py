"""Shared widgets whose text is written away from the page run, shown in the session's language:
a background run's error, the spinner of a model being loaded, the step-through control."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from streamlit.string_util import clean_text
from streamlit.testing.v1 import AppTest

from tests.page_checks import stepper_script
from tinyformers import i18n
from tinyformers.i18n import _, translate
from tinyformers.text.display import plain

APP_DIR = str(Path(__file__).resolve().parents[2] / "app")
NO_STUDENT = "there is no student to ask yet"  # a message of the catalog
LONG_WORD = "a word has at most {count} characters"  # one with a placeholder


def fail_with_a_message(report) -> None:
    """A run that fails with a message marked for translation (in the worker: English)."""
    report("about to fail")
    raise ValueError(_(NO_STUDENT))


def failing_job_script(app_dir: str, language: str) -> None:
    import sys

    import streamlit as st

    sys.path.insert(0, app_dir)
    from widgets import LANGUAGE_KEY, job_progress, start_job

    from tests.app.test_widgets_russian import fail_with_a_message

    st.session_state[LANGUAGE_KEY] = language
    if st.button("Start", key="start"):
        start_job("job", fail_with_a_message)
    job_progress("job", lambda snap: st.write(f"status {snap.status}"))


@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_failed_runs_error_is_shown_in_the_sessions_language(language: str) -> None:
    at = AppTest.from_function(failing_job_script, args=(APP_DIR, language), default_timeout=180)
    at.run()
    at.button(key="start").click().run()
    job = at.session_state["job"]
    job.join(600)
    assert job.error == f"ValueError: {NO_STUDENT}"  # written in English, in the worker
    at.run()
    assert not at.exception
    error = f"ValueError: {translate(NO_STUDENT, language)}"
    want = translate("The run failed: {error}", language).format(error=plain(error))
    assert [e.value for e in at.error] == [want]
    assert (NO_STUDENT in want) == (language == "en")


@pytest.fixture
def russian(monkeypatch) -> None:
    monkeypatch.setattr(i18n, "_language_source", lambda: "ru")


def test_a_failure_message_with_values_is_translated_around_them(russian) -> None:
    sys.path.insert(0, APP_DIR)
    from widgets import failure_message

    shown = failure_message("ValueError: " + LONG_WORD.format(count=24))
    want = translate(LONG_WORD, "ru").format(count=24)
    assert want != LONG_WORD.format(count=24)
    assert shown == translate("The run failed: {error}", "ru").format(
        error=plain(f"ValueError: {want}")
    )
    unknown = "OSError: the disk is full"  # no message of the catalog: as it was written
    assert failure_message(unknown).endswith(plain(unknown))


def test_the_loading_spinner_speaks_the_language_it_is_shown_in(monkeypatch) -> None:
    """``st.cache_resource`` takes its spinner's text once, at import, and the spinner reads it
    with ``str()`` (``clean_text``) each time it is shown."""
    sys.path.insert(0, APP_DIR)
    import widgets

    for cached in (widgets.shipped_model, widgets.external_model):
        spinner = cached._info.show_spinner
        assert clean_text(spinner) == "Loading model…"
        monkeypatch.setattr(i18n, "_language_source", lambda: "ru")
        assert clean_text(spinner) == translate("Loading model…", "ru") != "Loading model…"
        monkeypatch.setattr(i18n, "_language_source", lambda: "en")


def style_script(app_dir: str) -> None:
    import sys

    sys.path.insert(0, app_dir)
    from widgets import language_switch, page_style

    language_switch()
    page_style()


def stepper_words(at: AppTest) -> dict[str, str]:
    """The words the page gives the step-through script."""
    script = stepper_script(at)
    match = re.match(r"<script>window\.tinyformersStepperText = (\{.*?\});\n", script)
    assert match, script[:200]
    return json.loads(match[1])


@pytest.mark.parametrize("language", ["en", "ru"])
def test_the_step_through_control_is_given_its_words_in_the_sessions_language(
    language: str,
) -> None:
    at = AppTest.from_function(style_script, args=(APP_DIR,), default_timeout=60)
    at.query_params["lang"] = language
    at.run()
    assert not at.exception
    words = stepper_words(at)
    assert words["step"] == translate("Step {n} of {total}", language)
    assert words["previous"] == translate("Previous step (←, Page Up)", language)
    assert words["next"] == translate("Next step (→, Page Down)", language)
    assert ("Step" in words["step"]) == (language == "en")
    # st.html drops a script that holds what reads as a tag: the words cannot bring one
    inside = stepper_script(at).removeprefix("<script>").removesuffix("</script>")
    assert re.search(r"<[A-Za-z!/?]", inside) is None


def test_the_words_reach_the_script_as_json_that_cannot_close_it(monkeypatch) -> None:
    monkeypatch.setattr(i18n, "translate", lambda message, language: f"</script>&{message}")
    at = AppTest.from_function(style_script, args=(APP_DIR,), default_timeout=60)
    at.query_params["lang"] = "ru"
    at.run()
    script = stepper_script(at)
    assert script.count("</script>") == 1 and "&" not in script.split("\n", 1)[0]
    assert stepper_words(at)["step"] == "</script>&Step {n} of {total}"


@pytest.mark.parametrize("language", ["en", "ru"])
def test_a_lessons_computed_numbers_are_written_in_the_sessions_style(open_link, language):
    """The scaling lesson quotes how many orders of magnitude its ladder spans, computed by the
    course (as text, 1.5): the Russian page writes it 1,5."""
    from tinyformers.course.scaling import limits_values
    from tinyformers.lessons import get_lesson, translated

    at = open_link("app_pages/scaling.py", {"lang": language})
    assert not at.exception
    orders = limits_values()["ladder_orders"]
    shown = i18n.restyle(orders, language)
    assert (shown == orders) == (language == "en")
    body = translated(get_lesson("scaling"), language).section("limits").body
    want = body.replace("{{ladder_orders}}", shown)
    assert want in [element.value for element in at.markdown]


def test_prediction_choices_are_shown_in_russian_and_kept_in_english(open_link) -> None:
    at = open_link("app_pages/attention.py", {"lang": "ru"})
    shown = [option for radio in at.radio for option in radio.options]
    assert translate("More than half", "ru") in shown
    assert "More than half" not in shown
