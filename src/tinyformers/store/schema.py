"""The store's tables, as SQLAlchemy Core ``Table`` objects.

This is what the code reads and writes; the migrations in ``store/migrations/versions`` build
the same tables in a database (a test checks that the two agree). Changing a table here means
adding a migration.

Times are stored in UTC. An answer given outside a class room has ``room = ''`` rather than
NULL, so that the unique constraint (one answer per browser, question and room) also holds for
answers given on one's own: SQL treats every NULL as different from every other. An answer's
``context`` names the question as it was asked (a short hash of its prompt on the student's
input; ``''`` for a fixed question): one answer per browser, question, room and context.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NO_ROOM = ""  # ``answers.room`` of an answer given outside a class room

metadata = MetaData()

answers = Table(
    "answers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("browser", String(64), nullable=False),
    Column("lesson", String(64), nullable=False),
    Column("question", String(64), nullable=False),
    Column("room", String(8), nullable=False),
    Column("answer", Text, nullable=False),
    Column("correct", Boolean, nullable=False),
    Column("nickname", String(40), nullable=True),
    Column("context", String(16), nullable=False),  # the question as asked (its input)
    Column("at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("browser", "lesson", "question", "room", "context", name="uq_answers_once"),
    Index("ix_answers_question", "lesson", "question"),
    Index("ix_answers_room", "room", "lesson", "question"),
)

rooms = Table(
    "rooms",
    metadata,
    Column("code", String(8), primary_key=True),
    Column("owner", String(64), nullable=False),  # SHA-256 of the instructor's id, in hex
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    Column("lesson", String(64), nullable=True),
    Column("step", Integer, nullable=False),
    Column("params", Text, nullable=False),  # a JSON object of short strings
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("posed_lesson", String(64), nullable=True),
    Column("posed_question", String(64), nullable=True),
    Column("phase", String(8), nullable=True),  # open, locked or revealed; NULL: nothing posed
)
