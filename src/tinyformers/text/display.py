"""Text a student typed (or a model or file name, a token, a message built from them) shown
inside Markdown exactly as written.

Streamlit renders messages, captions and widget labels as Markdown: ``**x**`` turns bold,
``[x](url)`` into a link, ``$x$`` into LaTeX, ``:red[x]`` into coloured text and ``:smile:``
into an emoji, and ``<b>`` is dropped. ``plain`` backslash-escapes every character that starts
such markup (CommonMark lets any ASCII punctuation be escaped), so the text reads as typed.
"""

from __future__ import annotations

import re

# Markdown's specials, HTML's < > &, Streamlit's $ (LaTeX) and : (emoji, colour directives), and
# = (a line of them makes a heading)
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&=])")


def plain(text: object) -> str:
    """``text`` (anything, shown by its ``str``) escaped for Markdown: it renders as typed."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", str(text))
