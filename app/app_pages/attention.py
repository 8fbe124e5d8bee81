"""Self-attention step by step: one head of a shipped model (or a toy), matrix by matrix, and
the experiment that shows why the scores are divided by √d_k."""

import questions
import streamlit as st
import torch
import widgets
from widgets import BIND, plain

from tinyformers.course import attention as stepwise
from tinyformers.course.attention import DEFAULT_MODEL, DEFAULT_SENTENCE, MAX_TOKENS, HeadSteps
from tinyformers.figures import attention as figs
from tinyformers.figures.common import token_chips
from tinyformers.hub.registry import LoadedModel, shipped_names
from tinyformers.i18n import N_, _, ngettext
from tinyformers.text.inputs import text_room

SLUG = "attention"
SOURCES = {"model": N_("A shipped model"), "toy": N_("Toy: tiny random weights")}
STEP_KEY = "att-step"
QUERY_KEY = "att-query"
DIMENSIONS = stepwise.powers_of_two(1, 1024)
MAX_KEYS = 64
MAX_SAMPLES = 400
TOY_WIDTH = stepwise.MAX_TOY_WIDTH
MODEL_WIDTH = 150  # px of the model box: with layer and head it fits a phone's row
INDEX_WIDTH = 80


@st.cache_data(max_entries=8, show_spinner=False)
def scaling_stats(dims: tuple[int, ...], n_keys: int, n_samples: int, seed: int):
    return stepwise.scaling_experiment(dims, n_keys, n_samples, seed)


def scaling_stats_shown(dims: tuple[int, ...], n_keys: int, n_samples: int, seed: int):
    """The experiment, with a spinner in the session's language while it is drawn."""
    with st.spinner(_("Drawing random queries and keys…")):
        return scaling_stats(dims, n_keys, n_samples, seed)


@st.cache_data(max_entries=8, show_spinner=False)
def one_draw(d: int, n_keys: int, seed: int) -> torch.Tensor:
    return stepwise.random_scores(d, n_keys, 1, seed)[0]


# ---------------------------------------------------------------------------------------------
# Small widgets
# ---------------------------------------------------------------------------------------------


def step_controls() -> str:
    """The step slider with Back and Next beside it, which stay in one row on a phone."""
    number = widgets.computation_steps(
        _("Step"),
        STEP_KEY,
        len(figs.STEPS) - 1,
        (_("◀ Back"), "att-back"),
        (_("Next ▶"), "att-next"),
        names=lambda n: f"{n + 1}. {figs.step_name(figs.STEPS[n])}",
    )
    return figs.STEPS[number]


def show_step(steps: HeadSteps, step: str, focus: int) -> None:
    """The step's panels side by side, each in its own column (stacked on a narrow screen)."""
    widths, figures = figs.step_figures(steps, step, focus)
    for column, figure in zip(st.columns(widths), figures, strict=True):
        with column:
            widgets.chart(figure)


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
        st.error(_("The model cannot read this text: {reason}").format(reason=plain(err)))
        return None, None
    return steps, trace.head(layer, head)


def toy_head(text: str, d_model: int, d_k: int, seed: int, causal: bool) -> HeadSteps | None:
    """The toy head on the words of text, or None with a message."""
    words = text.split()
    if len(words) > stepwise.MAX_TOY_TOKENS:
        st.warning(
            _("Your text has {words}; the toy uses the first {first}.").format(
                words=ngettext("{n} word", "{n} words", len(words)), first=stepwise.MAX_TOY_TOKENS
            )
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

lesson = widgets.lesson_header(SLUG)

strip = st.container()  # the input strip: rows that wrap, not stack, on a phone
choices = strip.container(horizontal=True)
mode = widgets.labelled_radio(_("Weights"), SOURCES, "att-source", choices, horizontal=False)
loaded = None
layer = head = 0
if mode == "model":
    with choices.container(width=MODEL_WIDTH):
        loaded = widgets.model_picker(
            _("Model"),
            None,
            key="att-model",
            choices=shipped_names(family="gpt") + shipped_names(family="bert"),
            default=DEFAULT_MODEL,
        )
    if loaded is not None and loaded.family not in ("gpt", "bert"):
        strip.error(
            _("{model} is not a GPT or BERT model; pick another one.").format(
                model=plain(loaded.name)
            )
        )
        loaded = None
    if loaded is not None:
        small = [choices.container(width=INDEX_WIDTH) for _ in range(2)]
        layer = widgets.choose_index(
            _("Layer"), loaded.config.n_layer, "att-layer", container=small[0]
        )
        head = widgets.choose_index(_("Head"), loaded.config.n_head, "att-head", container=small[1])
else:
    d_model = choices.number_input(
        _("Width of X (d_model)"),
        1,
        TOY_WIDTH,
        4,
        key="att-toy-d-model",
        bind=BIND,
        width=MODEL_WIDTH,
    )
    d_k = choices.number_input(
        _("Head width d_k"), 1, TOY_WIDTH, 3, key="att-toy-d-k", bind=BIND, width=120
    )
    with choices.container(width=MODEL_WIDTH):
        seed = widgets.seed_control(key="att-seed")
    causal = choices.checkbox(_("Causal mask (as in GPT)"), key="att-toy-causal", bind=BIND)

sentence_column, query_column = strip.columns([4, 3], wrap=False)
steps = returned = None
with sentence_column:
    if mode == "model" and loaded is not None:
        room = text_room(loaded.family, min(MAX_TOKENS, loaded.config.block_size))
        text = widgets.sentence_input(
            _("Your sentence"), DEFAULT_SENTENCE, "att-sentence", loaded.tokenizer, max_tokens=room
        )
        if text is not None:
            steps, returned = model_head(loaded, text, layer, head)
        source = _("{model}, layer {layer}, head {head}").format(
            model=loaded.name, layer=layer, head=head
        )
    elif mode == "toy":
        text = widgets.sentence_input(_("Your sentence"), DEFAULT_SENTENCE, "att-sentence")
        if text is not None:
            steps = toy_head(text, int(d_model), int(d_k), seed, causal)
        source = _("toy head")

if steps is not None:
    with query_column:
        focus = widgets.choose_position(
            _("Query token (the row under focus)"),
            steps.tokens,
            QUERY_KEY,
            stepwise.default_query(steps.tokens),
        )
    step = step_controls()
    show_step(steps, step, focus)
    placement = None if loaded is None else loaded.model.h[layer].ln_placement
    caption = figs.step_caption(steps, step, focus, placement, layer, returned, source)
    st.caption(f"{figs.step_title(step, source)}. {caption}")
    widgets.lesson_section(lesson, f"step-{step}")

widgets.lesson_section(lesson, "setup")
if steps is not None:
    st.html(token_chips(steps.tokens))
    widgets.lesson_section(lesson, "query")
    widgets.chart(figs.attention_bars(steps, focus))
    st.caption(figs.query_caption(steps, focus, source))

widgets.lesson_section(lesson, "why-scale")
range_column, keys_column, samples_column, seed_column = st.columns([3, 1, 1, 1])
with range_column:
    low, high = st.select_slider(
        _("Dimensions d (powers of two)"),
        options=DIMENSIONS,
        value=(1, 1024),
        key="att-dims",
        bind=BIND,
    )
with keys_column:
    n_keys = st.number_input(_("Keys per query"), 2, MAX_KEYS, 16, key="att-keys", bind=BIND)
with samples_column:
    n_samples = st.number_input(
        _("Queries per d"), 1, MAX_SAMPLES, 200, key="att-samples", bind=BIND
    )
if mode == "model":
    with seed_column:
        seed = widgets.seed_control(key="att-seed")
st.caption(_("The seed sets the toy's numbers and the random vectors of the √d experiment."))
try:
    dims = tuple(stepwise.powers_of_two(low, high))
    stats = scaling_stats_shown(dims, int(n_keys), int(n_samples), seed)
except ValueError as err:
    st.error(str(err))
    stats = None
if stats is not None:
    widgets.chart(figs.scaling_figure(stats))
    st.caption(figs.scaling_caption(stats))
    st.dataframe(figs.stats_table(stats), hide_index=True)
    d = stats.dims[-1]
    widgets.chart(figs.draw_figure(one_draw(d, int(n_keys), seed), d))

widgets.lesson_section(lesson, "in-the-model")
if steps is not None:
    st.caption(figs.spread_caption(steps, focus, source))
else:
    st.info(_("Type a sentence above to measure the scores of a head on it."))

widgets.lesson_section(lesson, "by-hand")
questions.ask(lesson, steps=steps, focus=focus if steps is not None else None)
