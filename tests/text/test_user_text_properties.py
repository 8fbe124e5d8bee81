"""Properties of the checks on text a student pastes or uploads, over any text or bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tinyformers.text.corpora.user_text import UserTextError, clean_user_text, decode_upload

CAPS = st.integers(min_value=1, max_value=300)


@given(st.text(max_size=400), CAPS)
def test_clean_user_text_returns_capped_text_or_says_why_not(text: str, cap: int) -> None:
    try:
        cleaned = clean_user_text(text, max_chars=cap)
    except UserTextError as err:
        assert str(err)
        return
    assert cleaned.strip() and len(cleaned) <= cap
    assert "\r" not in cleaned and not cleaned.startswith("\ufeff")
    assert clean_user_text(cleaned, max_chars=cap) == cleaned  # idempotent on its output


@given(st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text())))
def test_anything_but_text_is_refused_with_a_message(value) -> None:
    try:
        clean_user_text(value)
    except UserTextError as err:
        assert "expected text" in str(err)
    else:
        raise AssertionError(f"{value!r} was accepted")


@settings(max_examples=200)
@given(st.binary(max_size=400), st.sampled_from([None, "a.txt", "A.TXT", "a.md", "x"]), CAPS)
def test_decode_upload_never_raises_anything_else(data: bytes, name, cap: int) -> None:
    try:
        text = decode_upload(data, name, max_chars=cap)
    except UserTextError as err:
        assert str(err)
        return
    assert name is None or name.lower().endswith(".txt")
    assert text.strip() and len(text) <= cap
    assert decode_upload(text.encode("utf-8"), name, max_chars=cap) == text


@given(st.text(min_size=1, max_size=200).filter(lambda t: t.strip()))
def test_utf8_text_with_a_byte_order_mark_decodes_like_the_text(text: str) -> None:
    try:
        expected = clean_user_text(text)
    except UserTextError:
        return
    assert decode_upload(b"\xef\xbb\xbf" + text.encode("utf-8"), "t.txt") == expected
