"""What the store accepts: ids, slugs, answer text, room parameters; times in UTC.

Every value that reaches the database passes one of these checks first. A value that does not
pass raises ``StoreError`` with a message a student or instructor can read; the message never
repeats the refused value.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import datetime, timezone

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
PARAM_KEY_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,40}")
MAX_ANSWER = 200
MAX_NICKNAME = 40
MAX_PARAMS = 40
MAX_PARAM_VALUE = 1000
CONTEXT_PATTERN = re.compile(r"[0-9a-f]{0,16}")
MAX_STEP = 1000


class StoreError(ValueError):
    """A request the store refuses, with a message a student or instructor can read."""


def check_id(value: object, what: str = "a browser id") -> str:
    """An opaque id: 1 to 64 letters, digits, '-' or '_'."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise StoreError(f"{what} is 1 to 64 letters, digits, '-' or '_'")
    return value


def check_slug(value: object, what: str) -> str:
    """A lesson or question slug: lowercase letters, digits and '-', at most 64 characters."""
    if not isinstance(value, str) or not SLUG_PATTERN.fullmatch(value):
        raise StoreError(
            f"a {what} slug is lowercase letters, digits and '-', at most 64 characters"
        )
    return value


def check_text(value: object, what: str, limit: int) -> str:
    """One line of text a person typed: stripped, not empty, at most ``limit`` characters;
    ``what`` names it in messages ("an answer")."""
    if not isinstance(value, str):
        raise StoreError(f"{what} is text, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise StoreError(f"{what} cannot be empty")
    if len(text) > limit:
        raise StoreError(f"{what} is at most {limit} characters")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise StoreError(f"{what} cannot contain control characters")
    return text


def check_answer(value: object) -> str:
    return check_text(value, "an answer", MAX_ANSWER)


def check_nickname(value: object) -> str | None:
    """An optional nickname; ``None`` or blank means none."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return check_text(value, "a nickname", MAX_NICKNAME)


def check_context(value: object) -> str:
    """The question as asked: up to 16 hex digits (a hash of its prompt), or '' for a fixed one."""
    if not isinstance(value, str) or not CONTEXT_PATTERN.fullmatch(value):
        raise StoreError("a question's context is up to 16 hexadecimal digits")
    return value


def check_correct(value: object) -> bool:
    if not isinstance(value, bool):
        raise StoreError("whether an answer is correct is True or False")
    return value


def check_step(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_STEP:
        raise StoreError(f"a step is a whole number from 0 to {MAX_STEP}")
    return value


def check_params(value: object) -> str:
    """Query parameters of a room's page: a dict of short strings, returned as JSON."""
    if not isinstance(value, dict):
        raise StoreError("room parameters are a dict of strings")
    if len(value) > MAX_PARAMS:
        raise StoreError(f"a room has at most {MAX_PARAMS} parameters")
    for key, item in value.items():
        if not isinstance(key, str) or not PARAM_KEY_PATTERN.fullmatch(key):
            raise StoreError("a room parameter's name is 1 to 40 letters, digits, '.', '-' or '_'")
        if not isinstance(item, str) or len(item) > MAX_PARAM_VALUE:
            raise StoreError(
                f"a room parameter's value is text of at most {MAX_PARAM_VALUE} characters"
            )
        if any(unicodedata.category(c) == "Cc" for c in item):
            raise StoreError("a room parameter's value cannot contain control characters")
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def check_time(value: object, what: str = "time") -> datetime:
    """An aware datetime, in UTC."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise StoreError(f"a {what} is a datetime with a time zone")
    return value.astimezone(timezone.utc)


def now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """A time read back from the database, in UTC (SQLite returns it without a time zone)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)
