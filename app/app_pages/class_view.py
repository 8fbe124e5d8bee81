"""The class view, for instructors (behind the server's instructor token): open a room, pose a
prediction question to it, lock and reveal it, and see live what the class answered."""

import questions
import rooms
import streamlit as st
import widgets
from widgets import plain

from tinyformers.figures.classroom import answers_chart
from tinyformers.i18n import _, ngettext
from tinyformers.store import answers as stored
from tinyformers.store import rooms as store_rooms

LIVE_SECONDS = 2.0

st.title(_("Class view"))
if not rooms.token_gate():
    st.stop()
store = rooms.shared_store()
if store is None:
    st.error(_("The answers database cannot be opened on this server; its log says why."))
    st.stop()


def room_controls() -> str | None:
    """Open or close the room this session drives; its code."""
    code = rooms.driving()
    if code is None:
        st.write(_("Open a room, then give its code to the class."))
        st.button(_("Open a room"), key="class-open", on_click=rooms.open_new_room, type="primary")
        return None
    st.html(f'<div class="tf-room-code-large">{plain(code)}</div>')
    st.caption(
        _(
            "Students type this code under Class room in the sidebar. While you move through "
            "the lessons, their pages follow yours."
        )
    )
    st.button(_("Close the room"), key="class-close", on_click=rooms.close_driven_room)
    return code


@st.fragment(run_every=LIVE_SECONDS)
def live(code: str | None) -> None:
    """The posed question's answers in the room, then every question's summary."""
    if code is not None:
        posed = store_rooms.posed(store, code)
        if posed is not None:
            counts = store_rooms.room_tally(store, code, posed.lesson, posed.question)
            st.subheader(
                _("Room {code}: {lesson} / {question} ({phase})").format(
                    code=code,
                    lesson=posed.lesson,
                    question=posed.question,
                    phase=rooms.phase_name(posed.phase),
                )
            )
            total = sum(counts.values())
            st.caption(ngettext("{n} answer so far.", "{n} answers so far.", total))
            if counts:
                revealed = posed.phase == "revealed"
                widgets.chart(answers_chart(counts, revealed), key="class-room-answers")
                right = sorted({answer for answer, correct in counts if correct})
                if revealed:
                    shown = ", ".join(plain(a) for a in right) or _("none of the answers given")
                    st.markdown(
                        _(
                            "**Right, by the model's answer on each student's page:** {answers}"
                        ).format(answers=shown)
                    )
    everyone = st.toggle(_("Every answer on this server"), key="class-everyone")
    summary = stored.class_summary(store, room=None if everyone or code is None else code)
    widgets.table(questions.summary_rows(summary))


code = room_controls()
if code is not None:
    st.caption(
        _(
            "Pose a lesson's prediction question from the sidebar while you show the lesson; "
            "the room's answers appear here, and the model's answer once you reveal it."
        )
    )
live(code)
