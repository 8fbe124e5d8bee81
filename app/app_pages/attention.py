"""Self-attention step by step: one head of a shipped model (or a toy), matrix by matrix, and
the experiment that shows why the scores are divided by √d_k."""

import math

import streamlit as st
import torch
from widgets import (
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
from tinyformers.text.tokenizers import SPECIAL_TOKENS

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


def valid_index(value, count: int) -> bool:
    """True for a position 0 .. count-1. A selectbox whose options changed under it may hold
    the label it showed (a string) instead."""
    return isinstance(value, int) and 0 <= value < count


def index_choice(label: str, count: int, key: str) -> int:
    """A selectbox over 0 .. count-1 that falls back to 0 when the range shrinks."""
    if not valid_index(st.session_state.get(key, 0), count):
        st.session_state[key] = 0
    return st.selectbox(label, list(range(count)), key=key)


def default_query(tokens: list[str]) -> int:
    """The last token with a letter or digit that is not a special token such as [SEP]."""
    ordinary = [
        i
        for i, token in enumerate(tokens)
        if token not in SPECIAL_TOKENS and any(c.isalnum() for c in token)
    ]
    return ordinary[-1] if ordinary else len(tokens) - 1


def query_choice(tokens: list[str]) -> int:
    if not valid_index(st.session_state.get(QUERY_KEY), len(tokens)):
        st.session_state[QUERY_KEY] = default_query(tokens)
    return st.selectbox(
        "Query token (the row under focus)",
        list(range(len(tokens))),
        format_func=lambda i: f"{i}: {tokens[i]!r}",
        key=QUERY_KEY,
    )


def move_step(delta: int) -> None:
    position = figs.STEPS.index(st.session_state[STEP_KEY]) + delta
    st.session_state[STEP_KEY] = figs.STEPS[min(max(position, 0), len(figs.STEPS) - 1)]


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
# Captions: every number computed from the matrices shown
# ---------------------------------------------------------------------------------------------


def label(steps: HeadSteps, i: int) -> str:
    return f"{i} ({steps.tokens[i]!r})"


def input_caption(steps: HeadSteps, focus: int, loaded: LoadedModel | None, layer: int) -> str:
    size = f"{steps.n_tokens} tokens × {steps.x.size(1)} numbers"
    row = steps.x[focus]
    focus_text = (
        f" Row {label(steps, focus)}: mean {row.mean():.3f}, standard deviation "
        f"{row.std(unbiased=False):.3f}."
    )
    if loaded is None:
        return f"{size}: one random row per distinct word.{focus_text}"
    if loaded.model.h[layer].ln_placement == "pre":
        where = f"the output of ln_1 in layer {layer} (pre-LN)"
    else:
        where = f"the input of block {layer} (post-LN)"
    return f"{size}: {where}.{focus_text}"


def projection_caption(steps: HeadSteps, step: str, focus: int) -> str:
    letter = step.upper()
    bias = {"q": steps.b_q, "k": steps.b_k, "v": steps.b_v}[step]
    result = {"q": steps.q, "k": steps.k, "v": steps.v}[step]
    largest_bias = bias.abs().max().item()
    bias_text = (
        f"Bias b_{letter}: largest |entry| {largest_bias:.3f}." if largest_bias else "No bias."
    )
    text = (
        f"W_{letter}: {steps.x.size(1)} × {steps.d_k}. {bias_text} Row {label(steps, focus)} "
        f"of {letter} has length {result[focus].norm():.3f}."
    )
    if steps.rotary and step in ("q", "k"):
        text += f" {letter} is shown after the rotary position rotation."
    return text


def scores_caption(steps: HeadSteps, focus: int) -> str:
    row = steps.scores[focus]
    allowed = steps.allowed()[focus]
    visible = row.masked_fill(~allowed, -math.inf)
    best = int(visible.argmax())
    product = (steps.q[focus] * steps.k[best]).sum()
    return (
        f"Row {label(steps, focus)}: the largest score it may use is {row[best]:.3f}, with "
        f"{label(steps, best)}; written out, q·k = sum of {steps.d_k} products = {product:.3f}. "
        f"Scores range from {steps.scores.min():.2f} to {steps.scores.max():.2f}."
    )


def scale_caption(steps: HeadSteps) -> str:
    text = f"√d_k = √{steps.d_k} = {steps.scale:.3f}. "
    hidden = int((~steps.allowed()).sum())
    if steps.mask is None:
        return text + "No mask: every token may look at every token."
    return text + (
        f"The causal mask hides {hidden} of {steps.n_tokens**2} entries (key after query): "
        "they become −∞ and are drawn blank."
    )


def softmax_caption(
    steps: HeadSteps, focus: int, returned: torch.Tensor | None, source: str
) -> str:
    row = steps.weights[focus]
    best = int(row.argmax())
    text = (
        f"Row {label(steps, focus)} sums to {row.sum():.6f}; its largest weight is "
        f"{row[best]:.3f}, on {label(steps, best)}."
    )
    if returned is not None:
        difference = (steps.weights - returned).abs().max().item()
        text += (
            f" The model's own attention weights ({source}) differ from this matrix by at "
            f"most {difference:.1e}."
        )
    return text


def output_caption(steps: HeadSteps, focus: int) -> str:
    row = steps.weights[focus]
    top = row.topk(min(2, steps.n_tokens))
    parts = " + ".join(
        f"{w:.2f} × v[{label(steps, int(j))}]" for w, j in zip(top.values, top.indices, strict=True)
    )
    more = " + …" if steps.n_tokens > 2 else ""
    return (
        f"Output row {label(steps, focus)} = {parts}{more}; it has {steps.d_k} numbers and length "
        f"{steps.output[focus].norm():.3f}."
    )


def step_caption(
    steps: HeadSteps,
    step: str,
    focus: int,
    loaded: LoadedModel | None,
    layer: int,
    returned: torch.Tensor | None,
    source: str,
) -> str:
    """The computed caption under the figure of ``step``."""
    if step == "x":
        return input_caption(steps, focus, loaded, layer)
    if step in ("q", "k", "v"):
        return projection_caption(steps, step, focus)
    if step == "scores":
        return scores_caption(steps, focus)
    if step == "scale":
        return scale_caption(steps)
    if step == "softmax":
        return softmax_caption(steps, focus, returned, source)
    return output_caption(steps, focus)


def spread_caption(steps: HeadSteps, focus: int, source: str) -> str:
    allowed = steps.allowed()
    raw = steps.scores[allowed]
    unscaled_row = steps.scores[focus].masked_fill(~allowed[focus], -math.inf)
    without = torch.softmax(unscaled_row, dim=-1).max()
    return (
        f"{source}: the {raw.numel()} scores the mask lets through have standard deviation "
        f"{raw.std(unbiased=False):.3f} before the division and "
        f"{(raw / steps.scale).std(unbiased=False):.3f} after it (÷ {steps.scale:.3f}). "
        f"The largest weight of row {label(steps, focus)} is {steps.weights[focus].max():.3f}; "
        f"without the division it would be {without:.3f}."
    )


def stats_table(stats: stepwise.ScalingStats) -> dict[str, list]:
    """The experiment's numbers per dimension, three decimals, one column per statistic."""
    columns = {
        "mean |q·k|": stats.unscaled.mean_abs,
        "std q·k": stats.unscaled.std,
        "entropy (unscaled)": stats.unscaled.entropy,
        "max weight (unscaled)": stats.unscaled.max_weight,
        "mean |q·k|/√d": stats.scaled.mean_abs,
        "std q·k/√d": stats.scaled.std,
        "entropy (scaled)": stats.scaled.entropy,
        "max weight (scaled)": stats.scaled.max_weight,
    }
    return {"d": list(stats.dims)} | {
        name: [round(value, 3) for value in values] for name, values in columns.items()
    }


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
            layer = index_choice("Layer", loaded.config.n_layer, "att-layer")
            head = index_choice("Head", loaded.config.n_head, "att-head")
    else:
        d_model = st.number_input("Width of X (d_model)", 1, TOY_WIDTH, 4, key="att-toy-d-model")
        d_k = st.number_input("Head width d_k", 1, TOY_WIDTH, 3, key="att-toy-d-k")
        causal = st.checkbox("Causal mask (as in GPT)", key="att-toy-causal")
    seed = seed_control(key="att-seed")
    st.caption("The seed sets the toy's numbers and the random vectors of the √d experiment.")

lesson_section(lesson, "setup")
steps = returned = None
if mode == "model" and loaded is not None:
    room = min(MAX_TOKENS, loaded.config.block_size) - (2 if loaded.family == "bert" else 0)
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
    focus = query_choice(steps.tokens)
    step = step_controls()
    lesson_section(lesson, f"step-{step}")
    st.plotly_chart(figs.step_figure(steps, step, focus, source))
    st.caption(step_caption(steps, step, focus, loaded, layer, returned, source))

    lesson_section(lesson, "query")
    st.plotly_chart(figs.attention_bars(steps, focus))
    visible = int(steps.allowed()[focus].sum())
    entropy = stepwise.softmax_entropy(steps.weights[focus]).item()
    st.caption(
        f"{source}. Row {label(steps, focus)} may see {visible} of {steps.n_tokens} tokens. "
        f"Entropy of its weights: {entropy:.3f} nats (uniform over the keys it may see: "
        f"{math.log(visible):.3f})."
    )

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
    largest = len(stats.dims) - 1
    d = stats.dims[largest]
    st.caption(
        f"At d = {d}: unscaled scores have standard deviation {stats.unscaled.std[largest]:.3f} "
        f"(√d = {math.sqrt(d):.3f}), scaled ones {stats.scaled.std[largest]:.3f}. Mean largest "
        f"weight {stats.unscaled.max_weight[largest]:.3f} unscaled, "
        f"{stats.scaled.max_weight[largest]:.3f} scaled; mean entropy "
        f"{stats.unscaled.entropy[largest]:.3f} and {stats.scaled.entropy[largest]:.3f} nats "
        f"(uniform: {math.log(stats.n_keys):.3f})."
    )
    st.dataframe(stats_table(stats), hide_index=True)
    st.plotly_chart(figs.draw_figure(one_draw(d, int(n_keys), seed), d))

lesson_section(lesson, "in-the-model")
if steps is not None:
    st.caption(spread_caption(steps, focus, source))
else:
    st.info("Type a sentence above to measure the scores of a head on it.")

lesson_section(lesson, "by-hand")
quiz(lesson)
