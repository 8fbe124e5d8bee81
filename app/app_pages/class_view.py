"""The class view, for instructors (behind the server's instructor token): open a room, pose a
prediction question to it, lock and reveal it, and see live what the class answered."""

import questions
import rooms
import streamlit as st
import widgets
from widgets import plain

from tinyformers.figures.classroom import answers_chart
from tinyformers.lessons import load_lessons
from tinyformers.store import answers as stored
from tinyformers.store import rooms as store_rooms
from tinyformers.store.checks import StoreError

LIVE_SECONDS = 2.0

st.title("Class view")
if not rooms.token_gate():
    st.stop()
store = rooms.shared_store()
if store is None:
    st.error("The answers database cannot be opened on this server; its log says why.")
    st.stop()


def room_controls() -> str | None:
    """Open or close the room this session drives; its code."""
    code = rooms.driving()
    if code is None:
        st.write("Open a room, then give its code to the class.")
        st.button("Open a room", key="class-open", on_click=rooms.open_new_room, type="primary")
        return None
    st.html(f'<div class="tf-room-code-large">{plain(code)}</div>')
    st.caption(
        "Students type this code under Class room in the sidebar. While you move through the "
        "lessons, their pages follow yours."
    )
    st.button("Close the room", key="class-close", on_click=rooms.close_driven_room)
    return code


def question_picker(code: str) -> None:
    """Pose a lesson's prediction question to the room, then lock and reveal it."""
    asked = {
        (lesson.slug, q.key): f"{lesson.order}. {lesson.title}: {q.key}"
        for lesson in load_lessons()
        for q in lesson.predict
    }
    choice = st.selectbox("Question", list(asked), format_func=asked.get, key="class-question")
    posed = store_rooms.posed(store, code)
    pose, lock, reveal = st.columns(3)
    me = rooms.instructor_id()
    try:
        if pose.button("Pose it", key="class-pose", disabled=choice is None):
            store_rooms.pose(store, code, instructor=me, lesson=choice[0], question=choice[1])
            st.rerun()
        if lock.button("Lock answers", key="class-lock", disabled=not _in(posed, "open")):
            store_rooms.lock(store, code, instructor=me)
            st.rerun()
        if reveal.button("Reveal", key="class-reveal", disabled=not _in(posed, "open", "locked")):
            store_rooms.reveal(store, code, instructor=me)
            st.rerun()
    except StoreError as err:
        st.error(plain(err))


def _in(posed, *phases: str) -> bool:
    return posed is not None and posed.phase in phases


@st.fragment(run_every=LIVE_SECONDS)
def live(code: str | None) -> None:
    """The posed question's answers in the room, then every question's summary."""
    if code is not None:
        posed = store_rooms.posed(store, code)
        if posed is not None:
            counts = store_rooms.room_tally(store, code, posed.lesson, posed.question)
            st.subheader(f"Room {code}: {posed.lesson} / {posed.question} ({posed.phase})")
            st.caption(f"{sum(counts.values()):,} answers so far.")
            if counts:
                revealed = posed.phase == "revealed"
                widgets.chart(answers_chart(counts, revealed), key="class-room-answers")
    everyone = st.toggle("Every answer on this server", key="class-everyone")
    summary = stored.class_summary(store, room=None if everyone or code is None else code)
    widgets.table(questions.summary_rows(summary))


code = room_controls()
if code is not None:
    question_picker(code)
live(code)
