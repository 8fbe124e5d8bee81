"""Checking text that a student uploads or pastes before a model trains on it.

Both entry points return clean text (UTF-8 byte-order mark removed, newlines as "\\n") or raise
``UserTextError`` with a message that says what is wrong and what to do about it.
"""

import unicodedata
from pathlib import PurePath

from tinyformers.i18n import _

MAX_USER_TEXT_CHARS = 200_000
ALLOWED_SUFFIX = ".txt"
_BOM = "\ufeff"
_TEXT_CONTROLS = frozenset("\n\t\r\f")
_MAX_CONTROL_SHARE = 0.05  # more control characters than this and it is not prose
_UTF8_MAX_BYTES_PER_CHAR = 4
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_ARCHIVES = (b"PK\x03\x04", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!")  # zip, gzip, 7-Zip, RAR


class UserTextError(ValueError):
    """The text cannot be used; the message is meant to be shown to the student."""


def decode_upload(
    data: bytes, filename: str | None = None, max_chars: int = MAX_USER_TEXT_CHARS
) -> str:
    """Decode an uploaded ``.txt`` file as UTF-8 and check it like pasted text."""
    if filename and PurePath(filename).suffix.lower() != ALLOWED_SUFFIX:
        raise UserTextError(
            _("only {suffix} files are supported, got '{name}'").format(
                suffix=ALLOWED_SUFFIX, name=filename
            )
        )
    if len(data) > _UTF8_MAX_BYTES_PER_CHAR * max_chars + len(_BOM.encode()):
        raise UserTextError(
            _(
                "the file is {size}, which is more than the limit of {limit} characters; "
                "upload a shorter file"
            ).format(size=_format_bytes(len(data)), limit=f"{max_chars:,}")
        )
    if data.startswith(_UTF16_BOMS):
        raise UserTextError(_("the file is UTF-16 text; save it as UTF-8 and try again"))
    if data.startswith(_ARCHIVES):
        raise UserTextError(
            _("the file is a compressed archive, not text; unpack it and upload the .txt inside")
        )
    if b"\x00" in data:
        raise UserTextError(_binary_message())
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserTextError(
            _("the file is not UTF-8 text; save it as UTF-8 and try again")
        ) from None
    return clean_user_text(text, max_chars)


def clean_user_text(text: str, max_chars: int = MAX_USER_TEXT_CHARS) -> str:
    """Remove a byte-order mark, normalize newlines and check the text is usable prose."""
    if not isinstance(text, str):
        raise UserTextError(_("expected text, got {kind}").format(kind=type(text).__name__))
    text = text.removeprefix(_BOM).replace("\r\n", "\n").replace("\r", "\n")
    if _looks_binary(text):
        raise UserTextError(_binary_message())
    if not text.strip():
        raise UserTextError(_("the text is empty; add some text and try again"))
    if len(text) > max_chars:
        raise UserTextError(
            _(
                "the text has {count} characters, more than the limit of {limit}; "
                "use a shorter text"
            ).format(count=f"{len(text):,}", limit=f"{max_chars:,}")
        )
    return text


def _looks_binary(text: str) -> bool:
    """True if the text contains NUL or is more than a few percent control characters."""
    if "\x00" in text:
        return True
    controls = sum(
        1 for char in text if char not in _TEXT_CONTROLS and unicodedata.category(char) == "Cc"
    )
    return controls > _MAX_CONTROL_SHARE * len(text)


def _binary_message() -> str:
    return _("this looks like a binary file, not text; upload a plain-text .txt file instead")


def _format_bytes(size: int) -> str:
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"
