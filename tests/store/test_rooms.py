"""Class rooms: opened, joined by code, driven only by their instructor, closed or expired."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from tinyformers.store import (
    Posed,
    StoreError,
    close_room,
    follow_state,
    join,
    lock,
    open_room,
    pose,
    posed,
    record_answer,
    reveal,
    room_answers,
    room_tally,
    set_state,
)
from tinyformers.store.rooms import ALPHABET, CODE_LENGTH, normalise_code

TEACHER = "teacher-1"


@pytest.fixture
def room(store):
    return open_room(store, instructor=TEACHER)


def answer_in(store, code, browser, text, correct=False, question="scale"):
    return record_answer(
        store,
        browser=browser,
        lesson="attention",
        question=question,
        answer=text,
        correct=correct,
        room=code,
    )


# --- opening and joining ---------------------------------------------------------------------


def test_a_room_has_a_short_code_from_an_unambiguous_alphabet(store) -> None:
    codes = {open_room(store, instructor=TEACHER).code for _ in range(20)}
    assert len(codes) == 20
    for code in codes:
        assert len(code) == CODE_LENGTH and set(code) <= set(ALPHABET)
    assert not set("01ILO") & set(ALPHABET)


def test_a_taken_code_is_drawn_again(store, monkeypatch) -> None:
    drawn = iter(["AAAAA", "AAAAA", "BBBBB"])
    monkeypatch.setattr("tinyformers.store.rooms.new_code", lambda: next(drawn))
    assert open_room(store, instructor=TEACHER).code == "AAAAA"
    assert open_room(store, instructor=TEACHER).code == "BBBBB"


def test_students_join_with_the_code_as_they_type_it(store, room) -> None:
    typed = " " + room.code[:2].lower() + " " + room.code[2:].lower() + "\n"
    assert join(store, typed) == room
    assert room.expires_at - room.opened_at == timedelta(hours=12)


def test_an_unknown_or_malformed_code_is_refused(store, room) -> None:
    unknown = next(c * CODE_LENGTH for c in ALPHABET if c * CODE_LENGTH != room.code)
    with pytest.raises(StoreError, match=f"^no open room with code {unknown}$"):
        join(store, unknown)
    for typed in ("", "ABCD", "ABCDEF", "ABCD0", None):
        with pytest.raises(StoreError, match="a room code is 5 letters and digits"):
            join(store, typed)


def test_a_room_expires(store) -> None:
    opened = datetime.now(timezone.utc) - timedelta(hours=13)
    old = open_room(store, instructor=TEACHER, at=opened)
    with pytest.raises(StoreError, match=f"room {old.code} has expired"):
        join(store, old.code)
    with pytest.raises(StoreError, match="has expired"):
        follow_state(store, old.code)
    with pytest.raises(StoreError, match="has expired"):
        set_state(store, old.code, instructor=TEACHER, lesson="gpt", step=1, params={})
    short = open_room(store, instructor=TEACHER, max_age_hours=2, at=opened + timedelta(hours=12))
    assert join(store, short.code) == short  # opened 1 hour ago, for 2 hours


def test_how_long_a_room_lasts_is_bounded(store) -> None:
    for hours in (0, -1, 24 * 7 + 1):
        with pytest.raises(StoreError, match="a room lasts more than 0 and at most 168 hours"):
            open_room(store, instructor=TEACHER, max_age_hours=hours)


def test_a_closed_room_is_gone(store, room) -> None:
    with pytest.raises(StoreError, match="only the instructor who opened room"):
        close_room(store, room.code, instructor="student-7")
    close_room(store, room.code, instructor=TEACHER)
    for look in (join, follow_state, posed):
        with pytest.raises(StoreError, match=f"no open room with code {room.code}"):
            look(store, room.code)
    with pytest.raises(StoreError, match="no open room"):
        close_room(store, room.code, instructor=TEACHER)


# --- following the instructor -------------------------------------------------------------


def test_students_follow_the_instructors_lesson_step_and_params(store, room) -> None:
    start = follow_state(store, room.code)
    assert (start.lesson, start.step, start.params, start.version) == (None, 0, {}, 0)
    shown = set_state(
        store, room.code, instructor=TEACHER, lesson="attention", step=3, params={"text": "a cat"}
    )
    assert follow_state(store, room.code) == shown
    assert (shown.lesson, shown.step, shown.params, shown.version) == (
        "attention",
        3,
        {"text": "a cat"},
        1,
    )
    assert shown.updated_at >= start.updated_at


def test_every_change_raises_the_version_by_one(store, room) -> None:
    code = room.code
    set_state(store, code, instructor=TEACHER, lesson="gpt", step=1, params={})
    set_state(store, code, instructor=TEACHER, lesson="gpt", step=2, params={})
    pose(store, code, instructor=TEACHER, lesson="gpt", question="next")
    lock(store, code, instructor=TEACHER)
    reveal(store, code, instructor=TEACHER)
    assert follow_state(store, code).version == 5


def test_only_the_instructor_who_opened_a_room_drives_it(store, room) -> None:
    code = room.code
    refused = f"only the instructor who opened room {code} can change it"
    with pytest.raises(StoreError, match=refused):
        set_state(store, code, instructor="teacher-2", lesson="gpt", step=1, params={})
    with pytest.raises(StoreError, match=refused):
        pose(store, code, instructor="teacher-2", lesson="gpt", question="next")
    pose(store, code, instructor=TEACHER, lesson="gpt", question="next")
    for step in (lock, reveal):
        with pytest.raises(StoreError, match=refused):
            step(store, code, instructor="teacher-2")
    with pytest.raises(StoreError, match="an instructor id is 1 to 64 letters"):
        set_state(store, code, instructor="", lesson="gpt", step=1, params={})
    assert follow_state(store, code).version == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lesson": "GPT"}, "a lesson slug is lowercase"),
        ({"step": -1}, "a step is a whole number from 0 to 1000"),
        ({"step": 1.5}, "a step is a whole number"),
        ({"params": ["a"]}, "room parameters are a dict of strings"),
        ({"params": {f"k{i}": "v" for i in range(41)}}, "a room has at most 40 parameters"),
        ({"params": {"bad key": "v"}}, "a room parameter's name is 1 to 40 letters"),
        ({"params": {"k": 3}}, "a room parameter's value is text of at most 1000 characters"),
        ({"params": {"k": "v" * 1001}}, "a room parameter's value is text of at most 1000"),
        ({"params": {"k": "a\nb"}}, "a room parameter's value cannot contain control"),
    ],
)
def test_what_a_room_may_show(store, room, changes, message) -> None:
    shown = dict(lesson="gpt", step=1, params={"prompt": "the cat"})
    with pytest.raises(StoreError, match=message):
        set_state(store, room.code, instructor=TEACHER, **{**shown, **changes})
    assert follow_state(store, room.code).version == 0


# --- questions posed to the room ----------------------------------------------------------


def test_a_posed_question_goes_open_locked_revealed(store, room) -> None:
    code = room.code
    assert posed(store, code) is None
    pose(store, code, instructor=TEACHER, lesson="attention", question="scale")
    assert posed(store, code) == Posed("attention", "scale", "open")
    answer_in(store, code, "s1", "8", correct=True)
    answer_in(store, code, "s2", "64")
    answer_in(store, code, "s3", "64")
    assert lock(store, code, instructor=TEACHER) == Posed("attention", "scale", "locked")
    with pytest.raises(StoreError, match=f"answers to this question are locked in room {code}"):
        answer_in(store, code, "s4", "8")
    assert reveal(store, code, instructor=TEACHER).phase == "revealed"
    with pytest.raises(StoreError, match="answers to this question are revealed"):
        answer_in(store, code, "s4", "8")
    assert room_answers(store, code, "attention", "scale") == Counter({"64": 2, "8": 1})
    assert room_tally(store, code, "attention", "scale") == Counter(
        {("64", False): 2, ("8", True): 1}
    )


def test_lock_and_reveal_need_a_question_in_the_right_phase(store, room) -> None:
    code = room.code
    with pytest.raises(StoreError, match=f"no question is posed in room {code}"):
        lock(store, code, instructor=TEACHER)
    pose(store, code, instructor=TEACHER, lesson="attention", question="scale")
    reveal(store, code, instructor=TEACHER)  # revealing also ends the answers
    with pytest.raises(StoreError, match="the question posed in room .* is already revealed"):
        lock(store, code, instructor=TEACHER)


def test_answers_in_a_room_go_to_the_posed_question_only(store, room) -> None:
    code = room.code
    with pytest.raises(StoreError, match=f"this question is not the one posed in room {code}"):
        answer_in(store, code, "s1", "8")
    pose(store, code, instructor=TEACHER, lesson="attention", question="scale")
    with pytest.raises(StoreError, match="this question is not the one posed"):
        answer_in(store, code, "s1", "8", question="softmax")
    pose(store, code, instructor=TEACHER, lesson="attention", question="softmax")
    answer_in(store, code, "s1", "1", question="softmax")
    assert room_answers(store, code, "attention", "softmax") == Counter({"1": 1})
    assert room_answers(store, code, "attention", "scale") == Counter()


def test_answers_in_a_closed_room_are_refused(store, room) -> None:
    pose(store, room.code, instructor=TEACHER, lesson="attention", question="scale")
    close_room(store, room.code, instructor=TEACHER)
    with pytest.raises(StoreError, match=f"no open room with code {room.code}"):
        answer_in(store, room.code, "s1", "8")


def test_codes_are_normalised() -> None:
    assert normalise_code(" ab cd\te ") == "ABCDE"
