"""Answers: committed once, listed, downloaded, forgotten, and summed up for a class."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest

from tinyformers.store import (
    StoreError,
    answers_of,
    class_summary,
    export_rows,
    forget,
    open_room,
    pose,
    progress,
    record_answer,
    to_csv,
    to_json,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)


def answer(
    store, browser="b1", lesson="attention", question="scale", text="8", correct=True, **more
):
    return record_answer(
        store,
        browser=browser,
        lesson=lesson,
        question=question,
        answer=text,
        correct=correct,
        **more,
    )


# --- committing -----------------------------------------------------------------------------


def test_an_answer_is_kept_with_its_time(store) -> None:
    given = answer(store, text="  8 ", at=T0)
    assert given.answer == "8" and given.room is None
    assert answers_of(store, "b1") == [given]
    assert answers_of(store, "b1")[0].at == T0


def test_a_committed_answer_cannot_be_changed(store) -> None:
    answer(store, text="8", correct=True)
    with pytest.raises(StoreError, match="^already answered$"):
        answer(store, text="64", correct=False)
    assert [a.answer for a in answers_of(store, "b1")] == ["8"]


def test_the_same_question_is_answered_once_alone_and_once_in_each_room(store) -> None:
    room = open_room(store, instructor="teacher")
    pose(store, room.code, instructor="teacher", lesson="attention", question="scale")
    answer(store, text="64", correct=False)
    answer(store, text="8", correct=True, room=room.code.lower())
    with pytest.raises(StoreError, match="already answered"):
        answer(store, text="8", correct=True, room=room.code)
    assert [(a.answer, a.room) for a in answers_of(store, "b1")] == [
        ("64", None),
        ("8", room.code),
    ]


def test_a_question_asked_on_another_input_is_another_answer(store) -> None:
    answer(store, text="8", correct=True, context="00d331c9dfc21a5e")
    answer(store, text="64", correct=False, context="a4150137d5fd5681")
    with pytest.raises(StoreError, match="already answered"):
        answer(store, text="64", correct=False, context="a4150137d5fd5681")
    assert [a.context for a in answers_of(store, "b1")] == ["00d331c9dfc21a5e", "a4150137d5fd5681"]
    assert progress(store, "b1") == {"attention": (1, 1)}  # the first answer counts


@pytest.mark.parametrize("context", ["XYZ", "0" * 17, 5, None])
def test_a_context_is_a_short_hex_hash(store, context) -> None:
    with pytest.raises(StoreError, match="context is up to 16 hexadecimal digits"):
        answer(store, context=context)


def test_a_nickname_is_kept_only_when_given(store) -> None:
    answer(store, question="q1", nickname="Ada")
    answer(store, question="q2", nickname="   ")
    answer(store, question="q3")
    assert [row["nickname"] for row in export_rows(store, "b1")] == ["Ada", None, None]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("browser", "", "a browser id is 1 to 64 letters, digits, '-' or '_'"),
        ("browser", "x" * 65, "a browser id is 1 to 64"),
        ("browser", "../etc", "a browser id is 1 to 64"),
        ("lesson", "Attention", "a lesson slug is lowercase letters, digits and '-'"),
        ("lesson", "a" * 65, "a lesson slug is"),
        ("question", "what?", "a question slug is lowercase letters, digits and '-'"),
        ("question", None, "a question slug is"),
        ("answer", "", "an answer cannot be empty"),
        ("answer", "x" * 201, "an answer is at most 200 characters"),
        ("answer", "a\x00b", "an answer cannot contain control characters"),
        ("answer", 8, "an answer is text, not int"),
        ("correct", "yes", "whether an answer is correct is True or False"),
        ("nickname", "n" * 41, "a nickname is at most 40 characters"),
        ("room", "IO01", "a room code is 5 letters and digits"),
        ("at", datetime(2025, 1, 1), "a time of an answer is a datetime with a time zone"),
    ],
)
def test_what_an_answer_may_be(store, field, value, message) -> None:
    given = dict(browser="b1", lesson="attention", question="scale", answer="8", correct=True)
    with pytest.raises(StoreError, match=message):
        record_answer(store, **{**given, field: value})
    assert answers_of(store, "b1") == []


def test_the_longest_answer_and_nickname_are_kept(store) -> None:
    answer(store, text="é" * 200, nickname="n" * 40)
    assert answers_of(store, "b1")[0].answer == "é" * 200


# --- a browser's own answers ------------------------------------------------------------------


def test_progress_counts_each_question_once_by_its_first_answer(store) -> None:
    room = open_room(store, instructor="teacher")
    pose(store, room.code, instructor="teacher", lesson="attention", question="scale")
    answer(store, question="scale", text="64", correct=False, at=T0)
    answer(store, question="scale", text="8", correct=True, room=room.code)
    answer(store, question="softmax", text="1", correct=True, at=T0)
    answer(store, lesson="gpt", question="next", text="cat", correct=False, at=T0)
    answer(store, browser="b2", question="masks", text="0", correct=True)
    assert progress(store, "b1") == {"attention": (1, 2), "gpt": (0, 1)}
    assert progress(store, "nobody") == {}


def test_answers_download_as_csv_and_json(store) -> None:
    answer(store, question="q1", text="8", correct=True, at=T0, nickname="Ada")
    answer(store, question="q2", text="64", correct=False, at=T0 + timedelta(seconds=1))
    rows = export_rows(store, "b1")
    assert rows[0] == {
        "lesson": "attention",
        "question": "q1",
        "answer": "8",
        "correct": True,
        "at": "2025-03-01T09:00:00+00:00",
        "room": None,
        "nickname": "Ada",
    }
    assert json.loads(to_json(rows)) == rows
    table = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [(r["question"], r["answer"], r["correct"], r["room"]) for r in table] == [
        ("q1", "8", "true", ""),
        ("q2", "64", "false", ""),
    ]


def test_csv_cells_never_start_a_spreadsheet_formula(store) -> None:
    formulas = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)"]
    for number, text in enumerate(formulas):
        answer(store, question=f"q{number}", text=text, nickname=text)
    table = list(csv.DictReader(io.StringIO(to_csv(export_rows(store, "b1")))))
    assert [r["answer"] for r in table] == ["'" + text for text in formulas]
    assert [r["nickname"] for r in table] == ["'" + text for text in formulas]
    assert [a.answer for a in answers_of(store, "b1")] == formulas  # stored as typed


def test_forgetting_removes_only_that_browsers_answers(store) -> None:
    answer(store, browser="b1", question="q1")
    answer(store, browser="b1", question="q2")
    answer(store, browser="b2", question="q1")
    assert forget(store, "b1") == 2
    assert answers_of(store, "b1") == [] and progress(store, "b1") == {}
    assert len(answers_of(store, "b2")) == 1
    answer(store, browser="b1", question="q1")  # a forgotten question can be answered anew


# --- what a class answered -----------------------------------------------------------------

CLASS = [  # browser, lesson, question, answer, correct, minutes after T0
    ("s1", "attention", "scale", "8", True, 0),
    ("s2", "attention", "scale", "8", True, 1),
    ("s3", "attention", "scale", "64", False, 2),
    ("s4", "attention", "scale", "64", False, 3),
    ("s5", "attention", "scale", "4", False, 4),
    ("s6", "attention", "scale", "2", False, 5),
    ("s7", "attention", "scale", "16", False, 6),
    ("s1", "attention", "softmax", "1", True, 7),
    ("s2", "attention", "softmax", "0", False, 8),
    ("s1", "gpt", "next", "cat", True, 9),
]


@pytest.fixture
def class_answers(store):
    for browser, lesson, question, text, correct, minutes in CLASS:
        at = T0 + timedelta(minutes=minutes)
        answer(store, browser, lesson, question, text, correct, at=at)
    return store


def test_the_class_summary_counts_students_right_and_common_wrong_answers(class_answers) -> None:
    summary = {(s.lesson, s.question): s for s in class_summary(class_answers)}
    assert list(summary) == [("attention", "scale"), ("attention", "softmax"), ("gpt", "next")]
    scale = summary["attention", "scale"]
    assert (scale.students, scale.right) == (7, 2)
    assert scale.share_right == pytest.approx(2 / 7)
    assert scale.wrong == (("64", 2), ("16", 1), ("2", 1))  # ties: in order of the answer
    softmax = summary["attention", "softmax"]
    assert (softmax.students, softmax.right, softmax.wrong) == (2, 1, (("0", 1),))
    assert summary["gpt", "next"].wrong == ()


def test_the_class_summary_narrows_to_a_lesson_and_a_time(class_answers) -> None:
    assert [s.question for s in class_summary(class_answers, lesson="gpt")] == ["next"]
    later = class_summary(class_answers, since=T0 + timedelta(minutes=4))
    assert [(s.question, s.students, s.right) for s in later] == [
        ("scale", 3, 0),
        ("softmax", 2, 1),
        ("next", 1, 1),
    ]


def test_the_class_summary_of_a_room_counts_only_its_answers(class_answers) -> None:
    store = class_answers
    room = open_room(store, instructor="teacher")
    pose(store, room.code, instructor="teacher", lesson="attention", question="scale")
    answer(store, "s3", text="8", correct=True, room=room.code)  # answered alone before
    answer(store, "s8", text="64", correct=False, room=room.code)
    (scale,) = class_summary(store, room=room.code)
    assert (scale.students, scale.right, scale.wrong) == (2, 1, (("64", 1),))
    everyone = class_summary(store, lesson="attention")[0]
    assert (everyone.students, everyone.right) == (8, 2)  # s3 counts once, by the first answer


def test_the_class_summary_of_nothing_is_empty(store) -> None:
    assert class_summary(store) == []
    with pytest.raises(StoreError, match="a start of a summary is a datetime with a time zone"):
        class_summary(store, since=datetime(2025, 1, 1))
