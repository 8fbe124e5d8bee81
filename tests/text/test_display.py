"""Text shown inside Markdown as typed: ``plain`` escapes every character that starts markup."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from tinyformers.text.display import MARKDOWN_SPECIAL, plain

SPECIALS = set("\\`*_{}[]()#+-.!|<>~$:&=")


def unescape(shown: str) -> str:
    """What CommonMark renders for backslash-escaped punctuation: the character itself."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", shown)


def test_markup_is_escaped() -> None:
    assert plain("**bold**") == r"\*\*bold\*\*"
    assert plain("[x](javascript:alert(1))") == r"\[x\]\(javascript\:alert\(1\)\)"
    assert plain("<b>x</b> & <script>") == r"\<b\>x\</b\> \& \<script\>"
    assert plain("$x$ :red[x] :smile:") == r"\$x\$ \:red\[x\] \:smile\:"
    assert plain("# title\n- item\n1. one\n===") == "\\# title\n\\- item\n1\\. one\n\\=\\=\\="
    assert plain("plain words, 'quoted'") == "plain words, 'quoted'"
    assert plain(ValueError("a *b*")) == r"a \*b\*"


@given(st.text())
def test_every_special_character_is_escaped_and_nothing_is_lost(text: str) -> None:
    shown = plain(text)
    assert unescape(shown) == text
    unescaped = re.sub(r"\\.", "", shown, flags=re.DOTALL)
    assert not SPECIALS & set(unescaped)


def test_the_pattern_covers_the_specials() -> None:
    assert {c for c in map(chr, range(128)) if MARKDOWN_SPECIAL.fullmatch(c)} == SPECIALS
