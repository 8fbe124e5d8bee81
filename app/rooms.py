"""Class rooms in the app: an instructor opens a room on the class page and students join it with
its code. While joined, a student's page follows the instructor's: the lesson, its settings (the
page's link) and the step, polled from the shared store every ``FOLLOW_SECONDS``. A student can
break away to explore and rejoin with one click.

Following changes the student's address the way the browser's Back button does (a history
entry and a ``popstate`` event), so the page opens the instructor's link in the same session:
every setting in the link takes its value, and the student's own work stays.

The instructor's session publishes what it shows after every run of a page, and the step
through a lesson (kept in the address by the step-through script) whenever it changes.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
from urllib.parse import urlencode

import streamlit as st
from widgets import LANGUAGE_KEY, PRESENT_PARAM, plain, presenting

from tinyformers.i18n import _
from tinyformers.lessons import get_lesson
from tinyformers.store import answers as stored_answers
from tinyformers.store import rooms as store_rooms
from tinyformers.store.checks import StoreError
from tinyformers.store.db import Store, open_store

log = logging.getLogger(__name__)

TOKEN_ENV = "TINYFORMERS_INSTRUCTOR_TOKEN"
FOLLOW_SECONDS = 1.5
ROOM_KEY = "_room"  # a student's room: {"code", "following", "seen", "phase"}
DRIVING_KEY = "_driving"  # the code of the room this (instructor's) session drives
INSTRUCTOR_KEY = "_instructor"  # True once this session gave the instructor token
PUBLISHED_KEY = "_published"  # what this session last published to its room
LANDED_KEY = "_landed"  # a student's view after its last page run: (lesson, step, settings)
MAX_TRIES = 5  # times a student's page is sent to one view of the room before giving up
PRIVATE_PAGES = {"class", "plan"}  # pages a room does not follow the instructor to
NOT_SHARED = {PRESENT_PARAM, LANGUAGE_KEY}  # presenter mode and language are each person's own
MULTI = re.compile(r"(?P<key>.+)\.(?P<n>\d+)")


@st.cache_resource(show_spinner=False)
def shared_store() -> Store | None:
    """The database of answers and rooms, opened (and migrated) once per process; None, with
    the reason in the server log, if it cannot be opened."""
    try:
        return open_store()
    except StoreError as err:
        log.error("answers and rooms are not stored: %s", err)
        return None


# --------------------------------------------------------------------------------------------
# The instructor's token
# --------------------------------------------------------------------------------------------


def token_configured() -> bool:
    return bool(os.environ.get(TOKEN_ENV, "").strip())


def is_instructor() -> bool:
    return bool(st.session_state.get(INSTRUCTOR_KEY))


def check_token(given: str) -> bool:
    """Whether ``given`` is this server's instructor token (compared in constant time)."""
    expected = os.environ.get(TOKEN_ENV, "").strip()
    if not expected or not given:
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def token_gate() -> bool:
    """The token form (until the right token is given); True once this session may see the
    class's answers."""
    if is_instructor():
        return True
    if not token_configured():
        st.info(
            _(
                "The class view is off on this server: the person who runs it turns it on by "
                "setting {variable} to a secret and giving it to the instructors."
            ).format(variable=TOKEN_ENV)
        )
        return False
    with st.form("instructor-token"):
        given = st.text_input(_("Instructor token"), type="password", key="instructor-token-input")
        sent = st.form_submit_button(_("Open the class view"), key="instructor-token-send")
    if sent:
        if check_token(given):
            st.session_state[INSTRUCTOR_KEY] = True
            st.rerun()
        st.error(_("That is not this server's instructor token."))
    return False


# --------------------------------------------------------------------------------------------
# Query parameters <-> a room's parameters (short strings; a repeated key becomes key.0, key.1)
# --------------------------------------------------------------------------------------------


def flat_params(parameters: dict[str, list[str]]) -> dict[str, str]:
    flat = {}
    for key, values in parameters.items():
        if key in NOT_SHARED:
            continue
        if len(values) == 1:
            flat[key] = values[0]
        else:
            flat.update({f"{key}.{n}": value for n, value in enumerate(values)})
    return flat


def query_of(params: dict[str, str]) -> str:
    grouped: dict[str, list[str]] = {}
    for key, value in sorted(params.items(), key=lambda item: _order(item[0])):
        match = MULTI.fullmatch(key)
        grouped.setdefault(match["key"] if match else key, []).append(value)
    return urlencode(grouped, doseq=True)


def _order(key: str) -> tuple[str, int]:
    match = MULTI.fullmatch(key)
    return (match["key"], int(match["n"])) if match else (key, -1)


# --------------------------------------------------------------------------------------------
# The instructor: open a room, drive it, pose questions
# --------------------------------------------------------------------------------------------


def instructor_id() -> str:
    """The instructor's id: this browser's saved-work id (a random value in its cookie)."""
    return st.session_state.work_id


def driving() -> str | None:
    return st.session_state.get(DRIVING_KEY)


def open_new_room() -> None:
    store = shared_store()
    if store is None or not is_instructor():
        return
    room = store_rooms.open_room(store, instructor=instructor_id())
    st.session_state[DRIVING_KEY] = room.code
    st.session_state.pop(PUBLISHED_KEY, None)


def close_driven_room() -> None:
    store, code = shared_store(), driving()
    if store is not None and code is not None:
        try:
            store_rooms.close_room(store, code, instructor=instructor_id())
        except StoreError as err:
            log.info("closing room %s: %s", code, err)
    st.session_state.pop(DRIVING_KEY, None)


def after_run(lesson: str, parameters: dict[str, list[str]]) -> None:
    """After a page ran: an instructor's session shows its room what it shows; a student's
    session notes where it is, so following can check it arrived."""
    if joined() is not None:
        st.session_state[LANDED_KEY] = view_of(lesson, parameters)
    publish(lesson, parameters)


def view_of(lesson: str, parameters: dict[str, list[str]]) -> tuple[str, str, dict[str, str]]:
    """(lesson, step, settings) of a page and its address's parameters."""
    params = flat_params(parameters)
    step = params.pop("step", "0")
    return (lesson or "home", step if step.isdigit() else "0", params)


def publish(lesson: str, parameters: dict[str, list[str]]) -> None:
    """Show the instructor's room what this session shows (a lesson or the course map; the
    instructor's own pages stay with the instructor)."""
    store, code = shared_store(), driving()
    if store is None or code is None or lesson in PRIVATE_PAGES:
        return
    shown = view_of(lesson, parameters)
    lesson, step, params = shown
    if st.session_state.get(PUBLISHED_KEY) == shown:
        return
    try:
        store_rooms.set_state(
            store,
            code,
            instructor=instructor_id(),
            lesson=lesson,
            step=int(step),
            params=params,
        )
    except StoreError as err:
        st.sidebar.warning(
            _("The room does not follow this view: {error}").format(error=plain(err))
        )
        return
    st.session_state[PUBLISHED_KEY] = shown


def driver_panel(lesson: str) -> None:
    """The sidebar of an instructor who drives a room: its code (large when presenting), the
    lesson's questions to pose, and a button the step-through script presses when the step
    changes, so the room follows it."""
    code = driving()
    size = "3rem" if presenting() else "1.6rem"
    st.html(
        f'<div class="tf-room-code" style="font-size:{size};font-weight:700;letter-spacing:.2em">'
        f"{code}</div>"
    )
    st.caption(_("Students join this room with the code above."))
    st.button(_("Sync"), key="room-sync", help=_("Show the room the step you are on"))
    keys = lesson_questions(lesson)
    if keys:
        question_controls(code, lesson, keys)


def lesson_questions(lesson: str) -> list[str]:
    try:
        return [q.key for q in get_lesson(lesson).predict]
    except KeyError:
        return []


def question_controls(code: str, lesson: str, keys: list[str]) -> None:
    """Pose one of this lesson's prediction questions to the room, then lock and reveal it."""
    store, me = shared_store(), instructor_id()
    chosen = st.selectbox(_("Question for the room"), keys, key="room-question")
    try:
        posed = store_rooms.posed(store, code)
        pose, lock, reveal = st.columns(3)
        if pose.button(_("Pose"), key="room-pose"):
            posed = store_rooms.pose(store, code, instructor=me, lesson=lesson, question=chosen)
        if lock.button(_("Lock"), key="room-lock", disabled=not _phase(posed, "open")):
            posed = store_rooms.lock(store, code, instructor=me)
        if reveal.button(
            _("Reveal"), key="room-reveal", disabled=not _phase(posed, "open", "locked")
        ):
            posed = store_rooms.reveal(store, code, instructor=me)
    except StoreError as err:
        st.error(plain(err))
        return
    if posed is not None:
        st.caption(
            _("Posed: {lesson} / {question} ({phase}).").format(
                lesson=posed.lesson, question=posed.question, phase=phase_name(posed.phase)
            )
        )


def phase_name(phase: str) -> str:
    """A posed question's phase as the instructor reads it."""
    names = {"open": _("open"), "locked": _("locked"), "revealed": _("revealed")}
    return names.get(phase, phase)


def _phase(posed, *phases: str) -> bool:
    return posed is not None and posed.phase in phases


# --------------------------------------------------------------------------------------------
# A student: join, follow, break away, rejoin
# --------------------------------------------------------------------------------------------


def joined() -> dict | None:
    return st.session_state.get(ROOM_KEY)


def room_code() -> str | None:
    room = joined()
    return None if room is None else room["code"]


def join_room(code: str) -> str | None:
    """Join the room with ``code``; an error message, or None once joined."""
    store = shared_store()
    if store is None:
        return _("Class rooms are not available on this server.")
    try:
        room = store_rooms.join(store, code)
    except StoreError as err:
        return str(err)
    st.session_state[ROOM_KEY] = {"code": room.code, "following": True, "seen": -1, "tries": 0}
    return None


def _join_clicked() -> None:
    problem = join_room(st.session_state.get("room-code-input", ""))
    st.session_state["room-problem"] = problem


def _set_following(following: bool) -> None:
    room = joined()
    if room is not None:
        room["following"] = following
        room["seen"], room["tries"] = -1, 0  # on rejoining, go to what the instructor shows


def _leave() -> None:
    st.session_state.pop(ROOM_KEY, None)


def student_panel() -> None:
    """Join with a code; once joined: follow, break away, rejoin, leave."""
    room = joined()
    if room is None:
        st.text_input(_("Room code"), key="room-code-input", max_chars=12, placeholder="ABCDE")
        st.button(_("Join the class"), key="room-join", on_click=_join_clicked)
        if problem := st.session_state.pop("room-problem", None):
            st.error(plain(problem))
        return
    if room["following"]:
        st.caption(_("Room {code}: you follow your instructor.").format(code=room["code"]))
        st.button(_("Break away"), key="room-break", on_click=_set_following, args=(False,))
    else:
        st.caption(_("Room {code}: you explore on your own.").format(code=room["code"]))
        st.button(_("Rejoin"), key="room-rejoin", on_click=_set_following, args=(True,))
    st.button(_("Leave the room"), key="room-leave", on_click=_leave)
    follow()


@st.fragment(run_every=FOLLOW_SECONDS)
def follow() -> None:
    """Poll the room: go where the instructor is (while following), and redraw the page when
    the posed question changes phase."""
    room, store = joined(), shared_store()
    if room is None or store is None:
        return
    try:
        state = store_rooms.follow_state(store, room["code"])
        posed = store_rooms.posed(store, room["code"])
    except StoreError as err:
        st.session_state.pop(ROOM_KEY, None)
        st.warning(_("You left the room: {error}").format(error=plain(err)))
        return
    phase = None if posed is None else (posed.lesson, posed.question, posed.phase)
    if phase != room.get("phase"):
        room["phase"] = phase
        room["posed"] = posed
        st.rerun(scope="app")
    if not room["following"] or not state.lesson:
        return
    if state.version != room["seen"]:
        room["seen"], room["tries"] = state.version, 0
    wanted = (state.lesson, str(state.step), state.params)
    # A page run can swallow the navigation (a poll of this fragment arriving at that moment):
    # until the page has run on the instructor's view, send it there again, a few times.
    if st.session_state.get(LANDED_KEY) != wanted and room["tries"] < MAX_TRIES:
        room["tries"] += 1
        go_to(state, room["tries"])


def go_to(state: store_rooms.RoomState, attempt: int) -> None:
    """Open the instructor's view in this session, as the browser's Back button would."""
    path = "./" if state.lesson == "home" else f"./{state.lesson}"
    query = query_of({**state.params, **({"step": str(state.step)} if state.step else {})})
    target = json.dumps(f"{path}?{query}" if query else path).replace("</", "<\\/")
    # a container of its own for each version: a new element, so the browser runs its script
    st.container(key=f"room-go-{state.version}-{attempt}").html(
        f"<script>/* room {state.code} version {state.version} */ (() => {{"
        f"const to = new URL({target}, window.location.href);"
        "if (to.href === window.location.href) return;"
        "history.pushState(null, '', to);"
        "window.dispatchEvent(new PopStateEvent('popstate', {state: null}));"
        "})();</script>",
        unsafe_allow_javascript=True,
    )


def posed_here(lesson: str, question: str):
    """The posed question of the student's room if it is this one, else None."""
    room = joined()
    posed = None if room is None else room.get("posed")
    if posed is not None and (posed.lesson, posed.question) == (lesson, question):
        return posed
    return None


def room_panel(lesson: str) -> None:
    """The sidebar's class-room section, for instructors and students (``lesson``: the slug of
    the page shown)."""
    with st.sidebar.expander(_("Class room"), expanded=bool(joined() or driving())):
        if driving():
            driver_panel(lesson)
        else:
            student_panel()


def record(lesson: str, question: str, answer, correct: bool, context: str, nickname) -> None:
    """Keep a committed answer in the shared store (in the student's room if the question is
    the one posed there)."""
    store = shared_store()
    if store is None:
        return
    room = room_code() if posed_here(lesson, question) else None
    try:
        stored_answers.record_answer(
            store,
            browser=st.session_state.work_id,
            lesson=lesson,
            question=question,
            answer=str(answer),
            correct=bool(correct),
            room=room,
            nickname=nickname or None,
            context=context,
        )
    except StoreError as err:
        log.info("answer not stored: %s", err)
