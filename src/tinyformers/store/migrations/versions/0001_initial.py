"""Answers to lesson questions, and class rooms.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

The tables as they are in this revision, written out here rather than imported from
``store/schema.py``: that file describes the newest schema, this one must not change.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("browser", sa.String(64), nullable=False),
        sa.Column("lesson", sa.String(64), nullable=False),
        sa.Column("question", sa.String(64), nullable=False),
        sa.Column("room", sa.String(8), nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("correct", sa.Boolean, nullable=False),
        sa.Column("nickname", sa.String(40), nullable=True),
        sa.Column("context", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "browser", "lesson", "question", "room", "context", name="uq_answers_once"
        ),
    )
    op.create_index("ix_answers_question", "answers", ["lesson", "question"])
    op.create_index("ix_answers_room", "answers", ["room", "lesson", "question"])
    op.create_table(
        "rooms",
        sa.Column("code", sa.String(8), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lesson", sa.String(64), nullable=True),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("posed_lesson", sa.String(64), nullable=True),
        sa.Column("posed_question", sa.String(64), nullable=True),
        sa.Column("phase", sa.String(8), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("rooms")
    op.drop_index("ix_answers_room", table_name="answers")
    op.drop_index("ix_answers_question", table_name="answers")
    op.drop_table("answers")
