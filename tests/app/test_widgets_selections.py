"""Random sequences of widget changes on every page never leave a selection pointing at a
position or token the current input does not have."""

from __future__ import annotations

import random

import pytest
from streamlit.testing.v1 import AppTest

from tinyformers.lessons import load_lessons

SENTENCES = [
    "the dog runs .",
    "Zoe sees the big dog . the dog sees Zoe .",
    "a cat",
    "the small girls near the old dog are happy and the boy runs to the park .",
    "x",
    "🐶 dog",
]
STEPS = 8
SLUGS = [lesson.slug for lesson in load_lessons()]


def text_inputs(at: AppTest) -> list:
    return [t for t in at.main.text_input if t.key and not t.key.endswith("-other")]


def registered_selections(at: AppTest) -> dict:
    """What the page's ``choose_*`` widgets recorded: key -> (tokens or count, chosen)."""
    try:
        return at.session_state["_selections"]
    except KeyError:
        return {}


def choice_widgets(at: AppTest) -> list:
    """The page's selections that point into the input or the model, with their range."""
    registered = registered_selections(at)
    found = []
    for widget in [*at.main.selectbox, *at.main.radio]:
        if widget.key in registered and widget.type == "selectbox" and not widget.disabled:
            space = registered[widget.key][0]
            found.append((widget, len(space) if isinstance(space, list) else space))
    return found


def random_step(at: AppTest, rng: random.Random) -> None:
    """Change one thing a student could change: a sentence, or a choice."""
    texts, choices = text_inputs(at), choice_widgets(at)
    if texts and (not choices or rng.random() < 0.5):
        rng.choice(texts).set_value(rng.choice(SENTENCES))
        return
    if choices:
        widget, size = rng.choice(choices)
        widget.set_value(rng.randrange(size))


def token_meanings(at: AppTest) -> dict:
    """key -> (tokens, [(position, token)]) of every selection that points into a sentence."""
    registered = registered_selections(at)
    return {
        key: at.session_state[f"{key}-meaning"]
        for key, (space, _) in registered.items()
        if isinstance(space, list)
    }


def assert_meaning_kept_or_reset_aloud(before: dict, at: AppTest) -> None:
    """A chosen token that is still in the new input is still chosen; one that is gone was
    reset with a note on the page."""
    after = token_meanings(at)
    notes = " ".join(c.value for c in at.caption)
    for key, (old_tokens, old_pairs) in before.items():
        if key not in after or after[key][0] == old_tokens:
            continue
        tokens, pairs = after[key]
        chosen_tokens = {t for _, t in pairs}
        for _, token in old_pairs:
            if token in tokens:
                assert token in chosen_tokens, f"{key} lost {token!r}, still in the input"
            else:
                assert "not in the new input" in notes, f"{key} dropped {token!r} silently"


def assert_selections_point_into_the_input(at: AppTest) -> None:
    for key, (space, chosen) in at.session_state["_selections"].items():
        size = len(space) if isinstance(space, list) else space
        assert all(0 <= c < size for c in chosen), f"{key} points at {chosen} of {size}"
        meaning = at.session_state[f"{key}-meaning"] if isinstance(space, list) else None
        if meaning is not None:
            tokens, pairs = meaning
            assert tokens == space and all(space[p] == t for p, t in pairs), key


@pytest.mark.slow
@pytest.mark.parametrize("slug", SLUGS)
def test_random_changes_keep_every_selection_valid(open_page, slug) -> None:
    at = open_page(f"app_pages/{slug.replace('-', '_')}.py")
    rng = random.Random(slug)
    for _ in range(STEPS):
        before = token_meanings(at)
        random_step(at, rng)
        at.run()
        assert not at.exception, at.exception
        if "_selections" in at.session_state:
            assert_selections_point_into_the_input(at)
            assert_meaning_kept_or_reset_aloud(before, at)
