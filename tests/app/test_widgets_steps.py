"""A computation shown step by step (``widgets.computation_steps``): its step in the URL, Back
and Next that stop at the ends, jumps, a restart when its input changes, and the containers
that mark its Next and Back for the step-through keys."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP_DIR = str(Path(__file__).resolve().parents[2] / "app")


def steps_script(app_dir: str) -> None:
    import sys

    import streamlit as st

    sys.path.insert(0, app_dir)
    from widgets import Jump, computation_steps

    text = st.text_input("Input", "abcd")
    named = st.query_params.get("named") == "1"  # a page's steps are named, or they are not
    step = computation_steps(
        "Step",
        "s",
        len(text),
        ("◀ Back", "s-back"),
        ("Next ▶", "s-next"),
        names=(lambda n: f"{n}: {text[:n]}") if named else None,
        start=1,
        restart_on=text,
        jumps=lambda n: [Jump("To the end", "s-end", len(text)), Jump("Nowhere", "s-none", None)],
    )
    st.write(f"step={step}")


def app(params: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_function(steps_script, args=(APP_DIR,), default_timeout=180)
    at.query_params.update(params or {})
    return at.run()


def shown(at: AppTest) -> str:
    return at.markdown[-1].value


def keys_inside(at: AppTest, container: str) -> set[str]:
    """The keys of the elements inside the container keyed ``container`` (Streamlit gives that
    container the class ``st-key-<container>`` in the browser)."""
    return {node.key for node in at.get_by_key(container) if getattr(node, "key", None)}


def test_back_and_next_move_one_step_and_stop_at_the_ends() -> None:
    at = app()
    assert shown(at) == "step=1" and at.slider(key="s").value == 1  # a new session's start
    at.button(key="s-back").click().run()
    assert shown(at) == "step=0" and at.button(key="s-back").disabled
    for expected in range(1, 5):
        at.button(key="s-next").click().run()
        assert shown(at) == f"step={expected}"
    assert at.button(key="s-next").disabled and not at.button(key="s-back").disabled
    assert not at.exception


def test_the_step_is_kept_in_the_link_and_a_link_opens_at_it() -> None:
    at = app()
    at.button(key="s-next").click().run()
    assert at.query_params["s"] == "2"
    linked = app({"s": "3"})
    assert shown(linked) == "step=3" and linked.slider(key="s").value == 3
    assert not linked.button(key="s-next").disabled


def test_named_steps_are_labelled_in_the_slider_and_kept_in_the_link_by_number() -> None:
    """The number, not the name: a link opens the same step in every language."""
    at = app({"named": "1", "s": "2"})
    assert shown(at) == "step=2" and at.select_slider(key="s").value == 2
    assert at.select_slider(key="s").options == ["0: ", "1: a", "2: ab", "3: abc", "4: abcd"]
    at.button(key="s-next").click().run()
    assert shown(at) == "step=3" and at.query_params["s"] == "3"
    at.button(key="s-back").click().run()
    at.button(key="s-back").click().run()
    assert shown(at) == "step=1" and "s" not in at.query_params  # the start: a plain link
    for asked in ("2: ab", "9", "-1", "<b>1</b>"):
        assert shown(app({"named": "1", "s": asked})) == "step=1"


def test_jumps_go_to_their_step_and_are_disabled_where_they_would_change_nothing() -> None:
    at = app()
    assert at.button(key="s-none").disabled
    at.button(key="s-end").click().run()
    assert shown(at) == "step=4" and at.button(key="s-end").disabled


def test_a_new_input_starts_again_and_a_shorter_one_keeps_the_step_in_range() -> None:
    at = app()
    at.button(key="s-next").click().run()
    at.button(key="s-next").click().run()
    assert shown(at) == "step=3"
    at.text_input[0].set_value("xy").run()
    assert shown(at) == "step=1" and at.slider(key="s").max == 2
    linked = app({"s": "4"})
    assert shown(linked) == "step=4"
    assert not linked.exception


def test_next_and_back_sit_in_the_containers_the_step_through_keys_look_for() -> None:
    at = app()
    assert "s-next" in keys_inside(at, "step-next-s")
    assert "s-back" in keys_inside(at, "step-back-s")
    assert "s-end" not in keys_inside(at, "step-next-s")


def test_the_step_through_script_holds_nothing_read_as_markup() -> None:
    """The script reaches the page through ``st.html``, whose sanitizer drops a script that
    holds what reads as a tag (such as ``<key>`` in a comment): then no key steps anything."""
    script = (Path(APP_DIR).parent / "assets" / "js" / "stepper.js").read_text(encoding="utf-8")
    assert re.search(r"<[A-Za-z!/?]", script) is None
