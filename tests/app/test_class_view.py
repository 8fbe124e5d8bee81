"""The class view and class rooms, headless: the instructor token guards every answer, a room
follows the instructor's page, a posed question is answered in the room and revealed, and a
browser's answers come back on a later visit and after a restart."""

from __future__ import annotations

import re

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.app.test_questions import commit, keyed, verdicts
from tests.conftest import APP_SCRIPT
from tinyformers.store import answers_of, follow_state, open_store, record_answer

TOKEN = "class-secret-token"
TOKEN_ENV = "TINYFORMERS_INSTRUCTOR_TOKEN"
DRIVING_KEY, ROOM_KEY = "_driving", "_room"  # app/rooms.py: the room a session drives, joined
CLASS = "app_pages/class_view.py"
ATTENTION = "app_pages/attention.py"


def session(work_id: str, page: str | None = None) -> AppTest:
    """A browser whose cookie holds ``work_id``, on ``page``."""
    at = AppTest.from_file(APP_SCRIPT, default_timeout=180)
    at.session_state["work_id"] = work_id
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def new_id(name: str) -> str:
    return (name * 32)[:32]


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return TOKEN


def shows_class_data(at: AppTest) -> bool:
    return bool(at.get("arrow_data_frame") or at.dataframe) or any(
        b.key == "class-open" for b in at.button
    )


def test_without_a_configured_token_the_class_view_is_off(monkeypatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    at = session(new_id("a"), CLASS)
    assert any(TOKEN_ENV in i.value for i in at.info)
    assert not shows_class_data(at)
    assert not [t for t in at.text_input if t.key == "instructor-token-input"]  # no form


@pytest.mark.parametrize("given", ["", "wrong", TOKEN + "x", TOKEN[:-1]])
def test_a_wrong_or_missing_token_shows_no_data(token, given) -> None:
    at = session(new_id("b"), CLASS)
    at.text_input(key="instructor-token-input").set_value(given)
    at.button(key="instructor-token-send").click().run()
    assert not at.exception
    assert not shows_class_data(at)
    assert at.error and "not this server's instructor token" in at.error[0].value


def open_class(work_id: str) -> tuple[AppTest, str]:
    """An instructor who gave the token and opened a room; the room's code."""
    at = session(work_id, CLASS)
    at.text_input(key="instructor-token-input").set_value(TOKEN)
    at.button(key="instructor-token-send").click().run()
    at.button(key="class-open").click().run()
    assert not at.exception, at.exception
    code = at.session_state[DRIVING_KEY]
    assert re.fullmatch(r"[A-Z2-9]{5}", code)
    return at, code


def test_the_right_token_opens_a_room_that_follows_the_instructor(token) -> None:
    teacher, code = open_class(new_id("t"))
    assert any(code in h.proto.body for h in teacher.get("html"))
    teacher.switch_page(ATTENTION).run()
    teacher.text_input(key="att-sentence").set_value("the cat sees the dog .").run()
    state = follow_state(open_store(), code)
    assert state.lesson == "attention"
    # in a browser the page's address carries every setting; headless, what the server wrote
    own = {"lang"}  # each person's language stays their own
    assert state.params == {k: v for k, v in teacher.query_params.items() if k not in own}
    assert state.params and "lang" in teacher.query_params

    student = session(new_id("s"))
    student.text_input(key="room-code-input").set_value(code.lower()).run()
    student.button(key="room-join").click().run()
    assert student.session_state[ROOM_KEY]["code"] == code
    scripts = [h.proto.body for h in student.get("html") if "pushState" in h.proto.body]
    assert scripts and "./attention?" in scripts[-1] and "att-query=" in scripts[-1]
    student.button(key="room-break").click().run()
    assert student.session_state[ROOM_KEY]["following"] is False
    student.button(key="room-rejoin").click().run()
    assert student.session_state[ROOM_KEY]["following"] is True


def test_an_unknown_room_code_is_refused_with_a_message() -> None:
    student = session(new_id("u"))
    student.text_input(key="room-code-input").set_value("<b>zz</b>").run()
    student.button(key="room-join").click().run()
    assert not student.exception
    assert student.error and "room code" in student.error[0].value
    assert ROOM_KEY not in student.session_state


def test_a_posed_question_is_revealed_to_the_room_when_the_instructor_says(token) -> None:
    teacher, code = open_class(new_id("p"))
    assert follow_state(open_store(), code).lesson is None  # the class view is not followed
    teacher.switch_page(ATTENTION).run()
    teacher.selectbox(key="room-question").set_value("strongest-key").run()
    teacher.button(key="room-pose").click().run()
    student = session(new_id("q"), ATTENTION)
    student.text_input(key="room-code-input").set_value(code).run()
    student.button(key="room-join").click().run()
    student.run()  # the room's poll finds the posed question
    assert any("instructor asks" in c.value for c in student.caption)
    commit(student, "strongest-key", "choice")
    assert not verdicts(student)
    assert any("Your instructor reveals" in i.value for i in student.info)
    teacher.button(key="room-reveal").click().run()
    teacher.switch_page(CLASS).run()
    assert teacher.get("plotly_chart") or teacher.get("unknown")  # the room's answers
    student.run()
    student.run()
    assert len(verdicts(student)) == 1
    (kept,) = [a for a in answers_of(open_store(), new_id("q"))]
    assert (kept.room, kept.question) == (code, "strongest-key")


def test_answers_come_back_on_a_later_visit_and_after_a_restart() -> None:
    browser = new_id("r")
    first = session(browser, ATTENTION)
    commit(first, "strongest-key", "choice")
    (shown,) = verdicts(first)
    later = session(browser, ATTENTION)
    assert verdicts(later) == [shown]
    assert not [r for r in later.radio if r.key and r.key.startswith("guess-strongest-key-")]
    st.cache_resource.clear()  # as in a new server process: the database is opened afresh
    restarted = session(browser, ATTENTION)
    assert verdicts(restarted) == [shown]
    home = session(browser)
    assert any("Your answers: " in c.value for c in home.caption)


def test_another_browser_sees_none_of_my_answers() -> None:
    mine = session(new_id("m"), ATTENTION)
    commit(mine, "strongest-key", "choice")
    theirs = session(new_id("n"), ATTENTION)
    assert not verdicts(theirs)
    assert keyed(theirs.radio, "guess-strongest-key-")


def test_the_course_map_offers_my_answers_as_csv_and_json() -> None:
    browser = new_id("d")
    store = open_store()
    record_answer(
        store, browser=browser, lesson="gpt", question="quiz-1", answer="=1+1", correct=False
    )
    home = session(browser)
    downloads = home.get("download_button")
    assert len(downloads) == 2


def test_the_page_in_russian_has_no_english_left(token) -> None:
    from tests.page_checks import english_leftovers

    at = AppTest.from_file(APP_SCRIPT, default_timeout=180)
    at.query_params["lang"] = "ru"
    at.session_state["work_id"] = new_id("r")
    at.run()
    at.switch_page(CLASS).run()
    assert not at.exception
    assert at.sidebar.radio(key="lang").value == "ru"
    assert english_leftovers(at) == []  # the token form
    at.text_input(key="instructor-token-input").set_value(token)
    at.button(key="instructor-token-send").click().run()
    at.button(key="class-open").click().run()
    assert not at.exception
    assert english_leftovers(at) == []  # the room's code, the sidebar's driver panel
