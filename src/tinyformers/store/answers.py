"""Students' answers to "predict, then reveal" questions, and what a class answered.

An answer is committed once: a browser answers a question of a lesson, as asked on one input (its
``context``), once on its own and once
in each class room, and a second commit is refused (``already answered``), so a prediction can
never be changed after the answer is shown. Where a question was answered more than once (on
one's own, then in a room), progress and the class summary count the first answer.

A browser is the opaque id its cookie holds; its answers can be listed, downloaded (CSV or
JSON) and forgotten.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Subquery, case, delete, func, insert, not_, select
from sqlalchemy.exc import IntegrityError

from tinyformers.store.checks import (
    StoreError,
    as_utc,
    check_answer,
    check_context,
    check_correct,
    check_id,
    check_nickname,
    check_slug,
    check_time,
    now,
)
from tinyformers.store.db import Store
from tinyformers.store.rooms import check_answerable, normalise_code
from tinyformers.store.schema import NO_ROOM, answers

EXPORT_FIELDS = ("lesson", "question", "answer", "correct", "at", "room", "nickname")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as a formula
TOP_WRONG = 3


@dataclass(frozen=True)
class Answer:
    """One committed answer of a browser; ``room`` is ``None`` for one given on one's own."""

    lesson: str
    question: str
    answer: str
    correct: bool
    at: datetime
    room: str | None
    context: str = ""


@dataclass(frozen=True)
class QuestionSummary:
    """What a class answered to one question (each student's first answer)."""

    lesson: str
    question: str
    students: int  # students who answered
    right: int  # of them, those whose answer was right
    wrong: tuple[tuple[str, int], ...]  # the most common wrong answers, with their counts

    @property
    def share_right(self) -> float:
        return self.right / self.students if self.students else 0.0


# --- answering -------------------------------------------------------------------------------


def record_answer(
    store: Store,
    *,
    browser: str,
    lesson: str,
    question: str,
    answer: str,
    correct: bool,
    room: str | None = None,
    nickname: str | None = None,
    context: str = "",
    at: datetime | None = None,
) -> Answer:
    """Commit a browser's answer; in a room, only while that question is posed and open."""
    row = {
        "browser": check_id(browser),
        "lesson": check_slug(lesson, "lesson"),
        "question": check_slug(question, "question"),
        "room": NO_ROOM if room is None else normalise_code(room),
        "answer": check_answer(answer),
        "correct": check_correct(correct),
        "nickname": check_nickname(nickname),
        "context": check_context(context),
        "at": now() if at is None else check_time(at, "time of an answer"),
    }
    try:
        with store.write() as connection:
            if row["room"] != NO_ROOM:
                check_answerable(connection, row["room"], row["lesson"], row["question"])
            connection.execute(insert(answers).values(**row))
    except IntegrityError:
        raise StoreError("already answered") from None
    return answer_of(row)


def answer_of(row: Mapping[str, Any]) -> Answer:
    """An ``answers`` row as the ``Answer`` it records."""
    return Answer(
        lesson=row["lesson"],
        question=row["question"],
        answer=row["answer"],
        correct=bool(row["correct"]),
        at=as_utc(row["at"]),
        room=row["room"] or None,
        context=row["context"],
    )


# --- a browser's own answers -----------------------------------------------------------------


def answers_of(store: Store, browser: str) -> list[Answer]:
    """A browser's answers, oldest first."""
    query = (
        select(answers)
        .where(answers.c.browser == check_id(browser))
        .order_by(answers.c.at, answers.c.id)
    )
    with store.read() as connection:
        return [answer_of(row._mapping) for row in connection.execute(query)]


def progress(store: Store, browser: str) -> dict[str, tuple[int, int]]:
    """Per lesson: (questions answered right, questions answered), by first answers."""
    first = first_answers(answers.c.browser == check_id(browser))
    query = (
        select(first.c.lesson, count_right(first), func.count())
        .group_by(first.c.lesson)
        .order_by(first.c.lesson)
    )
    with store.read() as connection:
        return {
            lesson: (int(right), answered) for lesson, right, answered in connection.execute(query)
        }


def export_rows(store: Store, browser: str) -> list[dict[str, Any]]:
    """A browser's answers as rows for a download: ``EXPORT_FIELDS``, times in ISO 8601."""
    query = (
        select(*(answers.c[name] for name in EXPORT_FIELDS))
        .where(answers.c.browser == check_id(browser))
        .order_by(answers.c.at, answers.c.id)
    )
    with store.read() as connection:
        rows = [dict(row._mapping) for row in connection.execute(query)]
    for row in rows:
        row.update(correct=bool(row["correct"]), at=as_utc(row["at"]).isoformat())
        row["room"] = row["room"] or None
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text of export rows; a cell a spreadsheet would run as a formula gets a leading
    apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_FIELDS)
    for row in rows:
        writer.writerow([csv_cell(row.get(name)) for name in EXPORT_FIELDS])
    return out.getvalue()


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, ensure_ascii=False, indent=2)


def forget(store: Store, browser: str) -> int:
    """Delete every answer of a browser; how many there were."""
    query = delete(answers).where(answers.c.browser == check_id(browser))
    with store.write() as connection:
        return connection.execute(query).rowcount


# --- what a class answered -------------------------------------------------------------------


def class_summary(
    store: Store,
    *,
    lesson: str | None = None,
    room: str | None = None,
    since: datetime | None = None,
) -> list[QuestionSummary]:
    """Per question: students who answered, how many right, the most common wrong answers.

    ``lesson``, ``room`` (a room code) and ``since`` narrow the answers counted; without
    ``room`` every answer counts, in rooms or not.
    """
    first = first_answers(*summary_filters(lesson, room, since))
    totals = (
        select(first.c.lesson, first.c.question)
        .add_columns(func.count().label("students"), count_right(first).label("right"))
        .group_by(first.c.lesson, first.c.question)
        .order_by(first.c.lesson, first.c.question)
    )
    with store.read() as connection:
        wrong = common_wrong_answers(connection, first)
        rows = connection.execute(totals).all()
    return [
        QuestionSummary(
            row.lesson, row.question, row.students, int(row.right), wrong.get(row[:2], ())
        )
        for row in rows
    ]


def summary_filters(
    lesson: str | None, room: str | None, since: datetime | None
) -> list[ColumnElement[bool]]:
    filters = []
    if lesson is not None:
        filters.append(answers.c.lesson == check_slug(lesson, "lesson"))
    if room is not None:
        filters.append(answers.c.room == normalise_code(room))
    if since is not None:
        filters.append(answers.c.at >= check_time(since, "start of a summary"))
    return filters


def first_answers(*conditions: ColumnElement[bool]) -> Subquery:
    """Each browser's first answer to each question, among the answers meeting ``conditions``."""
    place = func.row_number().over(
        partition_by=(answers.c.browser, answers.c.lesson, answers.c.question),
        order_by=(answers.c.at, answers.c.id),
    )
    ranked = (
        select(answers.c.lesson, answers.c.question, answers.c.answer, answers.c.correct)
        .add_columns(place.label("place"))
        .where(*conditions)
        .subquery()
    )
    return select(ranked).where(ranked.c.place == 1).subquery()


def count_right(first: Subquery) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((first.c.correct, 1), else_=0)), 0)


def common_wrong_answers(connection, first: Subquery) -> dict[tuple[str, str], tuple]:
    """(lesson, question) -> its ``TOP_WRONG`` most common wrong answers with their counts."""
    counts = (
        select(first.c.lesson, first.c.question, first.c.answer, func.count().label("n"))
        .where(not_(first.c.correct))
        .group_by(first.c.lesson, first.c.question, first.c.answer)
        .subquery()
    )
    place = func.row_number().over(
        partition_by=(counts.c.lesson, counts.c.question),
        order_by=(counts.c.n.desc(), counts.c.answer),
    )
    ranked = select(counts).add_columns(place.label("place")).subquery()
    query = select(ranked).where(ranked.c.place <= TOP_WRONG).order_by(ranked.c.place)
    found: dict[tuple[str, str], tuple] = {}
    for row in connection.execute(query):
        key = (row.lesson, row.question)
        found[key] = (*found.get(key, ()), (row.answer, row.n))
    return found
