"""Hostile input in every field of every lesson, headless: each text box, text area, number
input, slider and file uploader (main column and sidebar, including the fields a choice reveals)
is fed empty and oversized text, emoji, right-to-left text, control characters, markup, the
tokenizers' special tokens, numbers at and beyond their limits, and files that are not text.
After every run the page shows no traceback, no markup reached Markdown or HTML unescaped, and
something was said about input it could not use.

Each page runs once per value: field ``n`` gets value ``n + run`` of the list, so over the runs
every field sees every value, at the cost of one page run per value rather than per field and
value. The browser test (tests/e2e/test_hostile_inputs.py) checks in Chromium that nothing runs.
"""

from __future__ import annotations

import math

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import _open_link
from tests.page_checks import html_bodies
from tests.test_links import PAGES
from tests.test_user_text import assert_no_markup
from tinyformers.text.display import plain

OWN_TEXT = "own"  # the corpus choice, as links keep it
OTHER_MODEL = "Other: a Hugging Face model or a folder…"

# The choices that reveal more fields, per page: each dict opens the page once more, as a link.
# (A field behind "Other" model is the page's first: while it holds no usable model, the page
# stops there, so the page's other fields are fed in the run without it.)
REVEAL: dict[str, list[dict[str, str]]] = {
    "app_pages/tokenization.py": [{"tok-source": OWN_TEXT}],
    "app_pages/positional_encoding.py": [{"pe-model": OTHER_MODEL}],
    "app_pages/attention.py": [
        {"att-model": OTHER_MODEL},
        {"att-source": "toy"},
    ],
    "app_pages/multi_head.py": [{"mh-model": OTHER_MODEL}],
    "app_pages/transformer_block.py": [{"tb-model": OTHER_MODEL}, {"tb-source": OWN_TEXT}],
    "app_pages/masks.py": [
        {"mk-kind": "prefix", "mk-corpus": OWN_TEXT},
        {"mk-kind": "cross"},
        {"mk-model": OTHER_MODEL},
    ],
    "app_pages/gpt.py": [{"gpt-model": "gpt-char"}, {"gpt-model": OTHER_MODEL}],
    "app_pages/train.py": [
        {
            "train-corpus": OWN_TEXT,
            "train-family": "bert",
            "train-tokenizer": "bpe",
        }
    ],
}

MARKED = "**pwned** [pwned](javascript:alert(1)) <b>pwned</b> $pwned$ :red[pwned]"
TEXTS = [
    "",
    "   \t  ",
    "Zoe sees the dog " * 3_000,  # 51,000 characters
    "Zoe 👩‍👩‍👧‍👦 sees 🏳️‍🌈 and 👨🏽‍💻",  # emoji joined with zero-width joiners
    "\u202eZoe sees the dog\u202c שלום עולם مرحبا",  # right-to-left override and scripts
    "Zoe\x00sees\x01\x02\x1b[31m the\x7f dog\x08",  # NUL and control characters
    "\u0301\u0308\u20dd Zoe \u0301",  # combining marks with nothing to combine with
    "\ufeffZoe sees the dog\ufeff",  # byte-order marks
    "</script><script>window.__pwned=1</script><img src=x onerror=window.__pwned=1>",
    f"{MARKED} <script>pwned</script>",
    "[MASK] [SEP] [CLS] [PAD] [UNK] <|endoftext|> <pad> <s></s>",
    "\n\n\n",
]
UPLOADS = [  # name, bytes, what the page says (None: it reads the file)
    ("binary.txt", bytes(range(256)) * 64, "binary file"),
    ("utf16.txt", "Zoe sees the dog. Tom runs.".encode("utf-16"), "UTF-16"),
    ("empty.txt", b"", "empty"),
    ("huge.txt", b"the cat sat on the mat. " * 2_100_000, "50.4 MB"),
    ("archive.txt", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 8, "archive"),
    ("**pwned**<img src=x onerror=alert(1)>.txt", b"the cat sat on the mat", None),
]
RAW_TAGS = ("<script>window.__pwned", "<script>pwned", "<img src=x", "<b>pwned")
FIELD_KINDS = ("text_input", "text_area", "number_input", "slider")


def number_values(widget) -> list:
    """The widget's limits, numbers beyond them, and numbers that are not numbers."""
    if isinstance(widget.value, tuple):  # a range slider: both ends at one limit, or the widest
        return [(widget.min, widget.min), (widget.max, widget.max), (widget.min, widget.max)]
    low = widget.min if widget.min is not None else -(2**31)
    high = widget.max if widget.max is not None else 2**31
    values = [low, high, low - 1_000_000, high + 10**12]
    if isinstance(widget.value, float):  # a whole-number field's browser sends no NaN
        values += [math.nan, math.inf]
    return values


def values_for(kind: str, widget) -> list:
    return list(TEXTS) if kind in ("text_input", "text_area") else number_values(widget)


# The steps of a computation shown step by step go back to their start whenever the input they
# run on changes, and a prediction's answer box is a new box for each input (its key ends with
# the question as asked), so neither can take a value in a run that also changes that input:
# they are given their values alone, after the other fields (``exercise_steps``).
STEP_KEYS = {"att-step", "tok-step", "gpt-tokens", "ed-step"}
PREDICTION_PREFIX = "guess-"


# Text a student may leave empty without a word: the class-room code (nothing happens until
# Join is pressed; tests/app/test_class_view.py sends it hostile codes) and the nickname.
OPTIONAL_TEXT = {"room-code-input", "answers-nickname"}


def follows_input(key: str) -> bool:
    return key in STEP_KEYS or key.startswith(PREDICTION_PREFIX)


def fields(at: AppTest, steps: bool = False) -> dict[str, tuple[str, object]]:
    """The page's fields a student can change, by key (only the computation steps if
    ``steps``, else every other field)."""
    return {
        w.key: (kind, w)
        for kind in FIELD_KINDS
        for w in at.get(kind)
        if w.key and not w.proto.disabled and follows_input(w.key) == steps
    }


def usable(value):
    """A field's first value, or text to use when it starts empty (a corpus to paste)."""
    return "Zoe sees the dog. Tom runs home. " * 20 if value == "" else value


def give(kind: str, widget, value) -> None:
    if kind == "slider" and isinstance(value, tuple):
        widget.set_range(*value)
    else:
        widget.set_value(value)


def said_something(at: AppTest) -> bool:
    return bool(at.warning or at.info or at.error or at.toast)


def assert_healthy(at: AppTest, what: str) -> None:
    assert not at.exception, (what, at.exception)
    assert_no_markup(at)
    for body in html_bodies(at):
        for raw in RAW_TAGS:
            assert raw not in body, (what, raw, body[:300])
    for frame in at.get("iframe"):
        for raw in RAW_TAGS:
            assert raw not in frame.proto.srcdoc, (what, raw)
    for kind in ("number_input", "slider"):
        for widget in at.get(kind):
            values = widget.value if isinstance(widget.value, tuple) else (widget.value,)
            for value in values:  # an empty number box (a prediction not typed yet) is None
                assert value is None or widget.min <= value <= widget.max, (what, widget.key)


def exercise(at: AppTest, what: str) -> None:
    """Feed every field every value.

    First, run ``n`` gives field ``k`` value ``k + n``. A field that a bad value in another field
    hid (the page stopped with a message before it) has not really taken its value: afterwards,
    each run gives every field still owed a value that value and the rest their first values,
    until every field has taken every value (or a run brings no field a new one).
    """
    first = {key: usable(widget.value) for key, (_, widget) in fields(at).items()}
    owed: dict[str, set[int]] = {}

    def run(given: dict[str, tuple]) -> None:
        at.run()
        shown = [values_for(k, w)[i] for k, w, i in given.values() if i is not None]
        assert_healthy(at, f"{what}: {shown}")
        required = [
            values_for(k, w)[i]
            for key, (k, w, i) in given.items()
            if i is not None and key not in OPTIONAL_TEXT
        ]
        if any(isinstance(v, str) and not v.strip() for v in required):
            assert said_something(at), f"{what}: blank text passed without a word"
        now = fields(at)
        for key, (_, _, index) in given.items():
            if key in now and index is not None:
                owed[key].discard(index)

    for shift in range(len(TEXTS)):
        given = {}
        for n, (key, (kind, widget)) in enumerate(fields(at).items()):
            values = values_for(kind, widget)
            owed.setdefault(key, set(range(len(values))))
            index = (n + shift) % len(values)
            give(kind, widget, values[index])
            given[key] = (kind, widget, index)
        run(given)
    while any(owed.values()):
        given = {}
        for key, (kind, widget) in fields(at).items():
            values = values_for(kind, widget)
            pending = owed.setdefault(key, set(range(len(values))))
            index = min(pending) if pending else None
            give(kind, widget, values[index] if pending else first.get(key, usable(widget.value)))
            given[key] = (kind, widget, index)
        still = sum(map(len, owed.values()))
        run(given)
        if sum(map(len, owed.values())) == still:
            break
    left = {key: sorted(indices) for key, indices in owed.items() if indices}
    assert not left, f"{what}: fields never shown with these values: {left}"
    exercise_steps(at, what)


def exercise_steps(at: AppTest, what: str) -> None:
    """Give each computation's step every value, one field and one value per run."""
    for key in list(fields(at, steps=True)):
        for value in number_values(fields(at, steps=True)[key][1]):
            if key not in (now := fields(at, steps=True)):
                break
            give(*now[key], value)
            at.run()
            assert_healthy(at, f"{what}: {key} = {value}")


def views(page: str) -> list[dict[str, str]]:
    return [{}, *REVEAL.get(page, [])]


@pytest.mark.parametrize("page", PAGES)
def test_every_field_takes_hostile_values(monkeypatch, page: str) -> None:
    monkeypatch.setenv("TINYFORMERS_EXTERNAL_MODELS", "1")
    for link in views(page):
        at = _open_link(page, link)
        assert not at.exception, (page, link, at.exception)
        taken = {key: at.query_params.get(key) for key in link}
        assert taken == link, f"{page}: the link {link} opened {taken}"  # the fields it reveals
        assert fields(at), f"{page} {link} shows no field"
        exercise(at, f"{page} {link}")


UPLOAD_PAGES = {
    page: link for page, links in REVEAL.items() for link in links if OWN_TEXT in link.values()
}


@pytest.mark.parametrize("page", sorted(UPLOAD_PAGES))
def test_every_uploader_refuses_files_that_are_not_text_with_a_message(page: str) -> None:
    at = _open_link(page, UPLOAD_PAGES[page])
    assert at.get("file_uploader"), f"{page} shows no uploader"
    for name, data, message in UPLOADS:
        for uploader in at.get("file_uploader"):
            uploader.set_value((name, data, "text/plain"))
        at.run()
        assert_healthy(at, f"{page} {name}")
        errors = " ".join(error.value for error in at.error)
        if message is not None:
            assert plain(message) in errors, f"{page}: {name} gave {errors!r}"
