"""Every view is a link: each lesson's choices live in its URL, a link opened in a new session
shows the same choices, and a link with values a page cannot use falls back to the defaults
with a short notice, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import _open_link, _open_page
from tinyformers.lessons import get_lesson, translated

PAGES = [
    "app_pages/tokenization.py",
    "app_pages/positional_encoding.py",
    "app_pages/contextual_embeddings.py",
    "app_pages/why_attention.py",
    "app_pages/attention.py",
    "app_pages/multi_head.py",
    "app_pages/transformer_block.py",
    "app_pages/masks.py",
    "app_pages/bert.py",
    "app_pages/gpt.py",
    "app_pages/encoder_decoder.py",
    "app_pages/train.py",
    "app_pages/fine_tuning.py",
    "app_pages/task_heads.py",
    "app_pages/scaling.py",
    "app_pages/distillation.py",
    "app_pages/alignment.py",
    "app_pages/variants.py",
]
KINDS = (
    "selectbox",
    "radio",
    "slider",
    "select_slider",
    "number_input",
    "toggle",
    "checkbox",
    "multiselect",
    "text_input",
)
# answers, predictions, the presenter switch, a class room's code, a nickname, the instructor
# token; and the language, which the router keeps in the URL itself (test_widgets_languages.py)
NOT_IN_LINKS = ("quiz-", "guess-", "present-toggle", "room-", "answers-", "instructor-", "lang")
HOSTILE = (
    "<script>alert(1)</script>",
    "99999999999",
    "-1",
    "",
    "[x](javascript:alert(1))",
    "\u202eevil",
    "x" * 3000,
)


def settings(at) -> list:
    """The page's widgets whose values belong in its link."""
    found = []
    for kind in KINDS:
        for widget in getattr(at, kind):
            if widget.key and not widget.key.startswith(NOT_IN_LINKS):
                found.append((kind, widget))
    return found


def another_value(kind: str, widget) -> tuple[object, str | list[str]] | None:
    """A value the widget can take other than its current one: (value, as the URL writes it).
    A menu is kept in the URL by its option (``widgets.url_choice``, whose options its
    ``format_func`` carries), or by the option's label (Streamlit's own binding)."""

    def in_url(index: int) -> str:
        options = getattr(widget.format_func, "options", None)
        return widget.options[index] if options is None else str(options[index])

    if kind in ("selectbox", "radio", "select_slider"):
        current = widget.format_func(widget.value)
        for index in reversed(range(len(widget.options))):
            option = widget.options[index]
            if option != current and not option.startswith("Other:"):
                return option, in_url(index)
        return None
    if kind == "multiselect":
        first = widget.options[0]
        return ([first], [in_url(0)]) if shown(kind, widget) != [first] else None
    if kind in ("toggle", "checkbox"):
        return (not widget.value), str(not widget.value).lower()
    if kind == "text_input":
        text = f"{widget.value} again".strip()
        return text, text
    if kind == "number_input":
        low = widget.min if widget.min is not None else 0
        value = low if widget.value != low else low + widget.step
        return value, f"{value:g}" if isinstance(value, float) else str(value)
    if kind == "slider":
        if isinstance(widget.value, tuple):
            return None
        value = widget.min if widget.value != widget.min else widget.max
        return value, f"{value:g}" if isinstance(value, float) else str(value)
    return None


FORMATTED = ("selectbox", "radio", "select_slider", "multiselect")  # shown by their labels


def shown(kind: str, widget) -> object:
    """The widget's value as the page shows it (choices by their labels)."""
    if kind == "multiselect":
        return [widget.format_func(v) for v in widget.value]
    if kind in FORMATTED:
        return widget.format_func(widget.value)
    return widget.value


def notices(at) -> str:
    return " ".join(toast.value for toast in at.toast)


@pytest.mark.parametrize("page_path", PAGES)
def test_a_link_brings_back_the_choices_or_says_which_it_could_not(page_path) -> None:
    at = _open_page(page_path)
    wanted = {}
    params = {}
    for kind, widget in settings(at):
        change = another_value(kind, widget)
        if change is not None:
            wanted[widget.key] = change[0]
            params[widget.key] = change[1]
    assert params, f"{page_path} keeps nothing in its link"
    linked = _open_link(page_path, params)
    assert not linked.exception, linked.exception
    now = {widget.key: (kind, widget) for kind, widget in settings(linked)}
    told = notices(linked)
    lesson = get_lesson(Path(page_path).stem.replace("_", "-"))
    titled = translated(lesson, params.get("lang", "en")).title  # a link keeps the language too
    expected = [titled if t.value == lesson.title else t.value for t in at.title]
    assert [t.value for t in linked.title] == expected, "another page opened"
    for key, value in wanted.items():
        if key in now and f"`{key}`" not in told:
            got = shown(*now[key])
            assert got == value, f"{page_path}: {key} shows {got!r}, the link asked for {value!r}"


@pytest.mark.parametrize("page_path", PAGES)
def test_hostile_links_give_defaults_and_a_notice(page_path) -> None:
    keys = [widget.key for _, widget in settings(_open_page(page_path))]
    for shift in range(2):  # every setting gets hostile values, in two links
        params = {key: HOSTILE[(n + shift) % len(HOSTILE)] for n, key in enumerate(keys)}
        params |= {"no-such-setting": "1", "../../x": "<b>"}
        linked = _open_link(page_path, params)
        assert not linked.exception, (page_path, linked.exception)
        assert "do not fit this page" in notices(linked)
        assert "../../x" not in notices(linked) and "<b>" not in notices(linked)


def test_the_notice_names_plain_keys_and_counts_the_rest() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))
    from widgets import link_notice_text

    text = link_notice_text(["gpt-top-k", "<b>x</b>", "a" * 80])
    assert "`gpt-top-k`" in text and "2 others" in text and "<b>" not in text


def test_the_presenter_switch_folds_the_text_at_once_and_keeps_the_mode_in_the_link() -> None:
    at = _open_page("app_pages/gpt.py")
    notes = lambda: [e for e in at.expander if e.label == "Notes"]  # noqa: E731
    assert not notes()
    at.toggle(key="present-toggle").set_value(True).run()
    assert notes() and at.query_params["present"] == "1"
    at.toggle(key="present-toggle").set_value(False).run()
    assert not notes() and not at.exception
