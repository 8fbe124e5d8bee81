"""Text a student types, a model or file name, a token, or a message built from them, reaches
Streamlit's Markdown (messages, captions, labels) as text: never bold, a link, HTML, LaTeX or a
colour directive. Each message path is fed Markdown and HTML and must show it escaped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import _open_page
from tinyformers.text.display import plain

APP_DIR = str(Path(__file__).resolve().parents[1] / "app")
PAYLOADS = [  # each marked "pwned", so that no lesson text of the page can look like them
    "**pwned**",
    "[pwned](javascript:alert(1))",
    "<b>pwned</b>",
    "<script>pwned",
    "$pwned$",
    ":red[pwned]",
]
RAW_MARKUP = ["**pwned", "](javascript", "<b>", "</b>", "<script>", "$pwned$", ":red["]


def shown_texts(at: AppTest) -> list[str]:
    """Every message, caption and Markdown element's source, and every widget label."""
    texts = [
        element.value
        for kind in ("error", "warning", "info", "success", "caption", "markdown", "toast")
        for element in getattr(at, kind)
        if not getattr(element.proto, "allow_html", False)  # our own HTML (chips, styles)
    ]
    for kind in ("radio", "selectbox", "multiselect", "text_input", "button"):
        texts += [widget.label for widget in getattr(at, kind)]
    return texts


def assert_no_markup(at: AppTest) -> None:
    for text in shown_texts(at):
        for raw in RAW_MARKUP:
            assert raw not in text, f"{raw!r} reached Markdown unescaped in {text!r}"


def assert_shown_escaped(at: AppTest, expected: str) -> None:
    assert any(plain(expected) in text for text in shown_texts(at)), (
        f"{plain(expected)!r} is not on the page: {shown_texts(at)}"
    )


def run(script, *args) -> AppTest:
    at = AppTest.from_function(script, args=(APP_DIR, *args), default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


# --- the shared widgets' message paths --------------------------------------------------------


def corpus_script(app_dir: str) -> None:
    import sys

    sys.path.insert(0, app_dir)
    from widgets import corpus_input

    corpus_input("c")


@pytest.mark.parametrize("payload", PAYLOADS)
def test_an_uploaded_file_s_name_is_text(payload: str) -> None:
    at = run(corpus_script)
    at.file_uploader[0].upload(f"{payload}.md", b"the cat sat", "text/plain").run()
    assert not at.exception
    assert_no_markup(at)
    assert_shown_escaped(at, f"got '{payload}.md'")


def picker_script(app_dir: str) -> None:
    import sys

    sys.path.insert(0, app_dir)
    from widgets import model_picker

    model_picker("Model", "gpt", key="m")


@pytest.mark.parametrize("payload", [p for p in PAYLOADS if "/" not in p])
def test_a_typed_model_name_is_text(monkeypatch, payload: str) -> None:
    monkeypatch.setenv("TINYFORMERS_EXTERNAL_MODELS", "1")
    at = run(picker_script)
    at.selectbox(key="m").select_index(len(at.selectbox(key="m").options) - 1).run()
    at.text_input(key="m-other").set_value(payload).run()
    assert not at.exception
    assert at.error
    assert_no_markup(at)
    assert_shown_escaped(at, payload)


def kept_script(app_dir: str, names: list[str]) -> None:
    import sys

    import streamlit as st

    sys.path.insert(0, app_dir)
    from widgets import saved_work_panel

    from tests.kept_models import keep_tiny_models

    if st.button("Keep", key="keep"):
        keep_tiny_models(names)
    saved_work_panel()


def test_model_names_in_the_saved_work_notes_are_text(monkeypatch) -> None:
    monkeypatch.setenv("TINYFORMERS_SESSION_MODELS", "2")
    at = run(kept_script, PAYLOADS)
    at.button(key="keep").click().run()
    assert not at.exception
    assert_no_markup(at)
    assert_shown_escaped(at, PAYLOADS[0])  # the oldest, removed: said in a note
    assert_shown_escaped(at, PAYLOADS[-1])  # kept: named in the sidebar's caption


def positions_script(app_dir: str, first: list[str]) -> None:
    import sys

    import streamlit as st

    sys.path.insert(0, app_dir)
    from widgets import choose_position

    tokens = st.session_state.setdefault("tokens", first)
    choose_position("Token", tokens, key="p")


def test_a_token_in_a_selection_note_is_text() -> None:
    for payload in PAYLOADS:
        at = run(positions_script, ["a", *PAYLOADS])
        at.selectbox(key="p").set_value(PAYLOADS.index(payload) + 1).run()
        at.session_state["tokens"] = ["a", "b"]
        at.run()
        assert not at.exception
        assert_no_markup(at)
        assert_shown_escaped(at, repr(payload))


def test_a_failed_run_s_message_is_text(monkeypatch) -> None:
    import sys

    sys.path.insert(0, APP_DIR)
    from widgets import failure_message

    monkeypatch.setenv("TINYFORMERS_HOSTED", "0")
    for payload in PAYLOADS:
        shown = failure_message(f"ValueError: {payload}")
        assert plain(payload) in shown
        assert not any(raw in shown for raw in RAW_MARKUP)


# --- pages --------------------------------------------------------------------------------------


def test_a_typed_model_folder_on_a_lesson_page_is_text(monkeypatch) -> None:
    monkeypatch.setenv("TINYFORMERS_EXTERNAL_MODELS", "1")
    at = _open_page("app_pages/positional_encoding.py")
    other = [o for o in at.selectbox(key="pe-model").options if o.startswith("Other")]
    at.selectbox(key="pe-model").set_value(other[0]).run()
    for payload in [p for p in PAYLOADS if "/" not in p]:
        at.text_input(key="pe-model-other").set_value(payload).run()
        assert not at.exception
        assert_no_markup(at)
        assert_shown_escaped(at, payload)


def test_a_typed_sentence_s_tokens_on_a_lesson_page_are_text() -> None:
    """The attention lesson's captions name the query token: one made of markup characters
    ("$", "**", "<") is shown escaped, so two of them cannot pair up into LaTeX or bold."""
    at = _open_page("app_pages/attention.py")
    at.text_input(key="att-sentence").set_value(" ".join(PAYLOADS)).run()
    tokens = at.session_state["_selections"]["att-query"][0]
    marked = [i for i, token in enumerate(tokens) if set(token) & set("$*<>[]:")]
    assert marked, tokens
    for position in marked[:4]:
        at.selectbox(key="att-query").set_value(position).run()
        assert not at.exception
        assert_no_markup(at)
        captions = [caption.value for caption in at.caption]
        assert any(plain(repr(tokens[position])) in caption for caption in captions), captions
        for caption in captions:
            assert not re.search(r"(?<!\\)[$<>*\[\]]", caption), caption


def test_a_model_of_another_family_on_the_attention_page_is_named_as_text() -> None:
    from tinyformers.hub.registry import LoadedModel, load_shipped, shipped_names

    shipped = load_shipped(shipped_names(family="seq2seq")[0])
    at = _open_page("app_pages/attention.py")
    name = " ".join(PAYLOADS)
    at.session_state["trained_models"] = {
        name: LoadedModel(name, shipped.family, shipped.model, shipped.tokenizer, "trained", {})
    }
    at.run()
    at.selectbox(key="att-model").set_value(name).run()
    assert not at.exception, at.exception
    assert at.error
    assert_no_markup(at)
    assert_shown_escaped(at, name)


def test_a_model_name_in_a_positional_encoding_chart_title_is_text() -> None:
    import torch

    from tinyformers.figures import positional_encoding as figs

    name = "<b>pwned</b><a href='https://example.com'>x</a>"
    charts = [
        figs.encoding_heatmap(torch.zeros(4, 8), f"Learned position table of {name}"),
        figs.offset_similarity_chart({0: [1.0, 0.5]}, f"Similarity against distance, {name}"),
    ]
    for chart in charts:
        title = chart.layout.title.text
        assert "<b>" not in title and "<a " not in title and "&lt;b&gt;pwned" in title
