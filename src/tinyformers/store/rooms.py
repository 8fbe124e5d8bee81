"""Class rooms: an instructor opens one, students join it with a short code and follow along.

A room carries what the instructor shows (a lesson, a step in it, the page's query parameters)
and the question posed to the class, which goes from ``open`` (answers accepted) to ``locked``
(answers refused) to ``revealed``. Its ``version`` goes up by one with every change, so a
student's page can poll ``follow_state`` and redraw only when the version moved.

Only the instructor who opened a room can change it: the room keeps a SHA-256 of the
instructor's id, and every change must name that id. A room expires ``max_age_hours`` after it
was opened; an expired or closed room can no longer be joined, followed or changed.

Every change is one ``UPDATE … WHERE`` that checks owner, expiry and phase itself, so replicas
changing one room at once never lose an update.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from tinyformers.store.checks import (
    StoreError,
    as_utc,
    check_id,
    check_params,
    check_slug,
    check_step,
    check_time,
    now,
)
from tinyformers.store.db import Store
from tinyformers.store.schema import answers, rooms

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: easy to read off a projector
CODE_LENGTH = 5
CODE_ATTEMPTS = 20
DEFAULT_MAX_AGE_HOURS = 12.0
MAX_AGE_HOURS = 168  # a week
PHASES = ("open", "locked", "revealed")


@dataclass(frozen=True)
class Room:
    """A class room as students see it (never its owner)."""

    code: str
    opened_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class RoomState:
    """What the instructor shows: a lesson, a step in it and the page's query parameters."""

    code: str
    lesson: str | None
    step: int
    params: dict[str, str]
    version: int
    updated_at: datetime


@dataclass(frozen=True)
class Posed:
    """The question posed to a room, and its phase: open, locked or revealed."""

    lesson: str
    question: str
    phase: str


def normalise_code(code: object) -> str:
    """A room code as typed ("abc de") in its stored form ("ABCDE"), or ``StoreError``."""
    cleaned = "".join(code.split()).upper() if isinstance(code, str) else ""
    if len(cleaned) != CODE_LENGTH or any(c not in ALPHABET for c in cleaned):
        raise StoreError(
            f"a room code is {CODE_LENGTH} letters and digits, such as {ALPHABET[:CODE_LENGTH]}"
        )
    return cleaned


def owner_hash(instructor: str) -> str:
    return hashlib.sha256(check_id(instructor, "an instructor id").encode()).hexdigest()


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


# --- opening, joining, closing ---------------------------------------------------------------


def open_room(
    store: Store,
    *,
    instructor: str,
    max_age_hours: float = DEFAULT_MAX_AGE_HOURS,
    at: datetime | None = None,
) -> Room:
    """Open a room under a fresh code; ``at`` is when it opened (now by default)."""
    owner = owner_hash(instructor)
    if not isinstance(max_age_hours, (int, float)) or not 0 < max_age_hours <= MAX_AGE_HOURS:
        raise StoreError(f"a room lasts more than 0 and at most {MAX_AGE_HOURS} hours")
    opened = now() if at is None else check_time(at, "room's opening time")
    expires = opened + timedelta(hours=max_age_hours)
    fresh = {"owner": owner, "opened_at": opened, "expires_at": expires, "updated_at": opened}
    fresh.update(step=0, params="{}", version=0)
    for _ in range(CODE_ATTEMPTS):
        code = new_code()
        try:
            with store.write() as connection:
                connection.execute(insert(rooms).values(code=code, **fresh))
        except IntegrityError:
            continue  # the code is taken: draw another
        return Room(code, opened, expires)
    raise StoreError("no free room code was found; try again")


def join(store: Store, code: str) -> Room:
    """The open room with this code (any case, spaces ignored)."""
    code = normalise_code(code)
    with store.read() as connection:
        row = live_room(connection, code)
    return Room(code, as_utc(row.opened_at), as_utc(row.expires_at))


def close_room(store: Store, code: str, *, instructor: str) -> None:
    """Close a room: it can no longer be joined, followed or answered in."""
    change(store, code, instructor, {"closed_at": now()})


def live_room(connection: Connection, code: str, *, share: bool = False) -> Any:
    """The row of an open, unexpired room, or ``StoreError``; ``share`` locks it against
    changes until the transaction ends (PostgreSQL; SQLite's write transactions already do)."""
    query = select(rooms).where(rooms.c.code == code)
    if share:
        query = query.with_for_update(read=True)
    row = connection.execute(query).one_or_none()
    if row is None or row.closed_at is not None:
        raise StoreError(f"no open room with code {code}")
    if as_utc(row.expires_at) <= now():
        raise StoreError(f"room {code} has expired")
    return row


# --- what the instructor shows ----------------------------------------------------------------


def follow_state(store: Store, code: str) -> RoomState:
    """What the room's instructor shows now."""
    code = normalise_code(code)
    with store.read() as connection:
        row = live_room(connection, code)
    return state_of(row)


def set_state(
    store: Store, code: str, *, instructor: str, lesson: str, step: int, params: dict[str, str]
) -> RoomState:
    """Show a lesson, a step in it and the page's query parameters to the room."""
    values = {
        "lesson": check_slug(lesson, "lesson"),
        "step": check_step(step),
        "params": check_params(params),
    }
    return state_of(change(store, code, instructor, values))


def state_of(row: Any) -> RoomState:
    params = json.loads(row.params)
    return RoomState(row.code, row.lesson, row.step, params, row.version, as_utc(row.updated_at))


# --- questions posed to the room --------------------------------------------------------------


def pose(store: Store, code: str, *, instructor: str, lesson: str, question: str) -> Posed:
    """Pose a question to the room; answers to it are open until ``lock``."""
    values = {
        "posed_lesson": check_slug(lesson, "lesson"),
        "posed_question": check_slug(question, "question"),
        "phase": "open",
    }
    return posed_of(change(store, code, instructor, values))


def lock(store: Store, code: str, *, instructor: str) -> Posed:
    """Stop taking answers to the posed question."""
    row = change(store, code, instructor, {"phase": "locked"}, phases=("open",))
    return posed_of(row)


def reveal(store: Store, code: str, *, instructor: str) -> Posed:
    """Show the answer to the posed question (answers are refused from now on)."""
    row = change(store, code, instructor, {"phase": "revealed"}, phases=("open", "locked"))
    return posed_of(row)


def posed(store: Store, code: str) -> Posed | None:
    """The question posed to the room and its phase, or ``None`` if none is."""
    code = normalise_code(code)
    with store.read() as connection:
        return posed_of(live_room(connection, code))


def posed_of(row: Any) -> Posed | None:
    if row.phase is None:
        return None
    return Posed(row.posed_lesson, row.posed_question, row.phase)


def room_answers(store: Store, code: str, lesson: str, question: str) -> Counter[str]:
    """How many students in the room gave each answer to a question."""
    counts: Counter[str] = Counter()
    for (answer, _), n in room_tally(store, code, lesson, question).items():
        counts[answer] += n
    return counts


def room_tally(store: Store, code: str, lesson: str, question: str) -> Counter[tuple[str, bool]]:
    """How many students in the room gave each answer to a question, and whether it was right
    (an answer is judged on the input its student saw)."""
    code = normalise_code(code)
    query = (
        select(answers.c.answer, answers.c.correct, func.count())
        .where(answers.c.room == code)
        .where(answers.c.lesson == check_slug(lesson, "lesson"))
        .where(answers.c.question == check_slug(question, "question"))
        .group_by(answers.c.answer, answers.c.correct)
    )
    with store.read() as connection:
        rows = connection.execute(query).all()
    return Counter({(answer, bool(correct)): n for answer, correct, n in rows})


def check_answerable(connection: Connection, code: str, lesson: str, question: str) -> None:
    """Refuse an answer in a room unless this question is posed there and still open; holds
    the room against a concurrent ``lock`` until the caller's transaction ends."""
    row = live_room(connection, code, share=True)
    if (row.posed_lesson, row.posed_question) != (lesson, question):
        raise StoreError(f"this question is not the one posed in room {code}")
    if row.phase != "open":
        raise StoreError(f"answers to this question are {row.phase} in room {code}")


# --- changing a room --------------------------------------------------------------------------


def change(
    store: Store,
    code: str,
    instructor: str,
    values: dict[str, Any],
    phases: tuple[str, ...] | None = None,
) -> Any:
    """Apply ``values`` to a live room owned by ``instructor`` (and, given ``phases``, whose
    posed question is in one of them), raising the version; the changed row."""
    code = normalise_code(code)
    owner = owner_hash(instructor)
    at = now()
    query = (
        update(rooms)
        .where(rooms.c.code == code, rooms.c.owner == owner)
        .where(rooms.c.closed_at.is_(None), rooms.c.expires_at > at)
        .values(**values, version=rooms.c.version + 1, updated_at=at)
    )
    if phases is not None:
        query = query.where(rooms.c.phase.in_(phases))
    with store.write() as connection:
        if connection.execute(query).rowcount != 1:
            refuse(connection, code, owner, phases)
        return connection.execute(select(rooms).where(rooms.c.code == code)).one()


def refuse(
    connection: Connection, code: str, owner: str, phases: tuple[str, ...] | None
) -> NoReturn:
    """Raise the ``StoreError`` that says why a change to a room was not made."""
    row = live_room(connection, code)
    if not secrets.compare_digest(row.owner, owner):
        raise StoreError(f"only the instructor who opened room {code} can change it")
    if phases is not None and row.phase is None:
        raise StoreError(f"no question is posed in room {code}")
    raise StoreError(f"the question posed in room {code} is already {row.phase}")
