"""Menus whose choice is kept in the link: the URL holds the option itself, the page shows it in
the session's language, so a link made in one language opens the same choice in the other."""

from __future__ import annotations

from tinyformers.figures.attention import STEPS, step_name
from tinyformers.figures.masks import KIND_NAMES
from tinyformers.i18n import translate

MASKS = "app_pages/masks.py"
ATTENTION = "app_pages/attention.py"


def test_the_options_are_shown_in_russian_and_the_link_keeps_the_option(open_link) -> None:
    at = open_link(MASKS, {"lang": "ru"})
    kind = at.radio(key="mk-kind")
    assert kind.options == [translate(name, "ru") for name in KIND_NAMES.values()]
    assert kind.options != list(KIND_NAMES.values())
    assert kind.value == "causal" and "mk-kind" not in at.query_params  # the default
    # (AppTest picks an option by its English text: the session's choice is set directly)
    at.session_state["mk-kind"] = "prefix"
    at.run()
    assert not at.exception
    assert at.query_params["mk-kind"] == "prefix"
    assert at.query_params["lang"] == "ru"


def test_a_link_made_in_one_language_opens_the_same_choice_in_the_other(open_link) -> None:
    english = open_link(MASKS, {"lang": "en"})
    english.radio(key="mk-kind").set_value("padding").run()
    assert english.query_params["mk-kind"] == "padding"
    russian = open_link(MASKS, {**english.query_params, "lang": "ru"})
    assert not russian.exception
    kind = russian.radio(key="mk-kind")
    assert kind.value == "padding"
    assert kind.options[1] == translate(KIND_NAMES["padding"], "ru")
    russian.session_state["mk-kind"] = "causal"
    russian.run()
    assert "mk-kind" not in russian.query_params


def test_an_option_the_menu_does_not_have_is_dropped(open_link) -> None:
    for asked in ("Padding", translate("Padding", "ru"), "<b>x</b>", "causal" * 1000):
        at = open_link(MASKS, {"mk-kind": asked})
        assert not at.exception
        assert at.radio(key="mk-kind").value == "causal"
        assert "mk-kind" not in at.query_params


def test_the_address_changing_under_the_page_changes_the_choice(open_link) -> None:
    """As when Back is pressed, or a class room takes the page to its instructor's view."""
    at = open_link(MASKS, {"mk-kind": "prefix"})
    at.query_params["mk-kind"] = "padding"
    at.run()
    assert at.radio(key="mk-kind").value == "padding"
    del at.query_params["mk-kind"]
    at.run()
    assert at.radio(key="mk-kind").value == "causal"


def test_a_computation_step_is_kept_by_its_number_and_named_in_the_language(open_link) -> None:
    at = open_link(ATTENTION, {"lang": "ru", "att-step": "2"})
    assert not at.exception
    step = at.select_slider(key="att-step")
    assert step.value == 2
    assert step.options[2] == f"3. {translate(step_name(STEPS[2]), 'ru')}"
    at.button(key="att-next").click().run()
    assert not at.exception
    assert at.query_params["att-step"] == "3"
    english = open_link(ATTENTION, {"lang": "en", "att-step": "3"})
    assert english.select_slider(key="att-step").value == 3
