"""Self-attention step by step: one head of a shipped model (or a toy), matrix by matrix, and
the experiment that shows why the scores are divided by √d_k."""

import streamlit as st
import torch
from widgets import (
    choose_index,
    choose_position,
    lesson_header,
    lesson_section,
    model_picker,
    quiz,
    seed_control,
    sentence_input,
)

from tinyformers.course import attention as stepwise
from tinyformers.course.attention import HeadSteps
from tinyformers.figures import attention as figs
from tinyformers.figures.common import token_chips
from tinyformers.hub.registry import LoadedModel, shipped_names
from tinyformers.text.inputs import text_room

SLUG = "attention"
DEFAULT_MODEL = "gpt-stories"
DEFAULT_SENTENCE = "the old dog sees Mia . she runs ."
MAX_TOKENS = 24
SOURCES = {"model": "A shipped model", "toy": "Toy: tiny random weights"}
STEP_KEY = "att-step"
QUERY_KEY = "att-query"
DIMENSIONS = stepwise.powers_of_two(1, 1024)
MAX_KEYS = 64
MAX_SAMPLES = 400
TOY_WIDTH = stepwise.MAX_TOY_WIDTH


@st.cache_data(max_entries=8, show_spinner="Drawing random queries and keys…")
def scaling_stats(dims: tuple[int, ...], n_keys: int, n_samples: int, seed: int):
    return stepwise.scaling_experiment(dims, n_keys, n_samples, seed)


@st.cache_data(max_entries=8, show_spinner=False)
def one_draw(d: int, n_keys: int, seed: int) -> torch.Tensor:
    return stepwise.random_scores(d, n_keys, 1, seed)[0]


# ---------------------------------------------------------------------------------------------
# Small widgets
# ---------------------------------------------------------------------------------------------


def move_step(delta: int) -> None:
    st.session_state[STEP_KEY] = figs.step_after(st.session_state[STEP_KEY], delta)


def step_controls() -> str:
    st.session_state.setdefault(STEP_KEY, figs.STEPS[0])
    slider, back, next_ = st.columns([6, 1, 1], vertical_alignment="bottom")
    with slider:
        step = st.select_slider(
            "Step",
            options=figs.STEPS,
            format_func=lambda s: f"{figs.STEPS.index(s) + 1}. {figs.STEP_NAMES[s]}",
            key=STEP_KEY,
        )
    number = figs.STEPS.index(step)
    back.button(
        "◀ Back",
        key="att-back",
        on_click=move_step,
        args=(-1,),
        disabled=number == 0,
        width="stretch",
    )
    next_.button(
        "Next ▶",
        key="att-next",
        on_click=move_step,
        args=(1,),
        disabled=number == len(figs.STEPS) - 1,
        width="stretch",
    )
    return step


# ---------------------------------------------------------------------------------------------
# Computing the head
# ---------------------------------------------------------------------------------------------


def model_head(
    loaded: LoadedModel, text: str, layer: int, head: int
) -> tuple[HeadSteps | None, torch.Tensor | None]:
    """The head's steps and the model's own weights for it, or (None, None) with a message."""
    try:
        trace = stepwise.trace_sentence(loaded.model, loaded.tokenizer, text, MAX_TOKENS)
        steps = stepwise.model_head(loaded.model, trace, layer, head)
    except ValueError as err:
        st.error(f"The model cannot read this text: {err}")
        return None, None
    return steps, trace.head(layer, head)


def toy_head(text: str, d_model: int, d_k: int, seed: int, causal: bool) -> HeadSteps | None:
    """The toy head on the words of text, or None with a message."""
    words = text.split()
    if len(words) > stepwise.MAX_TOY_TOKENS:
        st.warning(
            f"Your text has {len(words)} words; the toy uses the first {stepwise.MAX_TOY_TOKENS}."
        )
    try:
        tokens = stepwise.toy_tokens(text)
        return stepwise.toy_head(tokens, d_model, d_k, seed, causal)
    except ValueError as err:
        st.error(str(err))
        return None


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

lesson = lesson_header(SLUG)

with st.sidebar:
    st.subheader("Settings for this lesson")
    mode = st.radio("Weights", list(SOURCES), format_func=SOURCES.get, key="att-source")
    loaded = None
    layer = head = 0
    if mode == "model":
        loaded = model_picker(
            "Model",
            None,
            key="att-model",
            choices=shipped_names(family="gpt") + shipped_names(family="bert"),
            default=DEFAULT_MODEL,
        )
        if loaded is not None and loaded.family not in ("gpt", "bert"):
            st.error(f"{loaded.name} is not a GPT or BERT model; pick another one.")
            loaded = None
        if loaded is not None:
            layer = choose_index("Layer", loaded.config.n_layer, "att-layer")
            head = choose_index("Head", loaded.config.n_head, "att-head")
    else:
        d_model = st.number_input("Width of X (d_model)", 1, TOY_WIDTH, 4, key="att-toy-d-model")
        d_k = st.number_input("Head width d_k", 1, TOY_WIDTH, 3, key="att-toy-d-k")
        causal = st.checkbox("Causal mask (as in GPT)", key="att-toy-causal")
    seed = seed_control(key="att-seed")
    st.caption("The seed sets the toy's numbers and the random vectors of the √d experiment.")

lesson_section(lesson, "setup")
steps = returned = None
if mode == "model" and loaded is not None:
    room = text_room(loaded.family, min(MAX_TOKENS, loaded.config.block_size))
    text = sentence_input(
        "Your sentence", DEFAULT_SENTENCE, "att-sentence", loaded.tokenizer, max_tokens=room
    )
    if text is not None:
        steps, returned = model_head(loaded, text, layer, head)
    source = f"{loaded.name}, layer {layer}, head {head}"
elif mode == "toy":
    text = sentence_input("Your sentence", DEFAULT_SENTENCE, "att-sentence")
    if text is not None:
        steps = toy_head(text, int(d_model), int(d_k), seed, causal)
    source = "toy head"

if steps is not None:
    st.html(token_chips(steps.tokens))
    focus = choose_position(
        "Query token (the row under focus)",
        steps.tokens,
        QUERY_KEY,
        stepwise.default_query(steps.tokens),
    )
    step = step_controls()
    lesson_section(lesson, f"step-{step}")
    st.plotly_chart(figs.step_figure(steps, step, focus, source))
    placement = None if loaded is None else loaded.model.h[layer].ln_placement
    st.caption(figs.step_caption(steps, step, focus, placement, layer, returned, source))

    lesson_section(lesson, "query")
    st.plotly_chart(figs.attention_bars(steps, focus))
    st.caption(figs.query_caption(steps, focus, source))

lesson_section(lesson, "why-scale")
range_column, keys_column, samples_column = st.columns([3, 1, 1])
with range_column:
    low, high = st.select_slider(
        "Dimensions d (powers of two)", options=DIMENSIONS, value=(1, 1024), key="att-dims"
    )
with keys_column:
    n_keys = st.number_input("Keys per query", 2, MAX_KEYS, 16, key="att-keys")
with samples_column:
    n_samples = st.number_input("Queries per d", 1, MAX_SAMPLES, 200, key="att-samples")
try:
    dims = tuple(stepwise.powers_of_two(low, high))
    stats = scaling_stats(dims, int(n_keys), int(n_samples), seed)
except ValueError as err:
    st.error(str(err))
    stats = None
if stats is not None:
    st.plotly_chart(figs.scaling_figure(stats))
    st.caption(figs.scaling_caption(stats))
    st.dataframe(figs.stats_table(stats), hide_index=True)
    d = stats.dims[-1]
    st.plotly_chart(figs.draw_figure(one_draw(d, int(n_keys), seed), d))

lesson_section(lesson, "in-the-model")
if steps is not None:
    st.caption(figs.spread_caption(steps, focus, source))
else:
    st.info("Type a sentence above to measure the scores of a head on it.")

lesson_section(lesson, "by-hand")
quiz(lesson)
