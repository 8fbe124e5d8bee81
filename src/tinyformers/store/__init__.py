"""The store: students' answers to lesson questions, and class rooms, in a database.

SQLite by default, PostgreSQL for a hosted course (``TINYFORMERS_DATABASE_URL``); the tables
are created and migrated by ``open_store``. Pure Python: no Streamlit.

    store = open_store()
    record_answer(store, browser=..., lesson="attention", question="scale", answer="8",
                  correct=True)
"""

from tinyformers.store.answers import (
    Answer,
    QuestionSummary,
    answers_of,
    class_summary,
    export_rows,
    forget,
    progress,
    record_answer,
    to_csv,
    to_json,
)
from tinyformers.store.checks import StoreError
from tinyformers.store.db import Store, database_url, open_store
from tinyformers.store.rooms import (
    Posed,
    Room,
    RoomState,
    close_room,
    follow_state,
    join,
    lock,
    open_room,
    pose,
    posed,
    reveal,
    room_answers,
    room_tally,
    set_state,
)

__all__ = [
    "Answer",
    "Posed",
    "QuestionSummary",
    "Room",
    "RoomState",
    "Store",
    "StoreError",
    "answers_of",
    "class_summary",
    "close_room",
    "database_url",
    "export_rows",
    "follow_state",
    "forget",
    "join",
    "lock",
    "open_room",
    "open_store",
    "pose",
    "posed",
    "progress",
    "record_answer",
    "reveal",
    "room_answers",
    "room_tally",
    "set_state",
    "to_csv",
    "to_json",
]
