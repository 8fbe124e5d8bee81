"""Encoder-decoder models: where the three families fit, the date model's three kinds of
attention, greedy decoding step by step, and T5's span corruption."""

import questions
import streamlit as st
import widgets
from widgets import BIND, Jump

from tinyformers.course.encoder_decoder import (
    DATE_MODEL,
    MEAN,
    N_EXAMPLES,
    DecodingStep,
    decode_with_trace,
    encode_source,
    generated_ids,
    held_out_sources,
    known_tokens,
    model_shape,
)
from tinyformers.figures import encoder_decoder as figs
from tinyformers.figures.common import token_chips
from tinyformers.figures.encoder_decoder import escape_markdown
from tinyformers.i18n import _
from tinyformers.text.corpora import tasks
from tinyformers.text.span_corruption import MIN_RATE, corrupt_spans
from tinyformers.trace import Trace

SLUG = "encoder-decoder"
FAMILY_MODELS = ("bert-stories", "gpt-stories", "seq2seq-date")
SOURCE_KEY = "ed-source"
EXAMPLE_KEY = "ed-example"
STEP_KEY = "ed-step"
DEFAULT_SENTENCE = (
    "the small dog sees the big cat near the river . the old man who lives by the bridge reads "
    "a book to the children every evening before they go home ."
)


@st.cache_data(max_entries=1, show_spinner=False)
def held_out_examples() -> list[str]:
    """Sources of the date task's held-out pairs: the model never saw them in training."""
    return held_out_sources(N_EXAMPLES)


@st.cache_data(max_entries=32, show_spinner=False)
def decode(source: str) -> tuple[list[DecodingStep], Trace]:
    """Greedy decoding of ``source`` step by step, and the trace of the finished output: the
    decoder reads [BOS] and every output token but the last, so position t predicts step t."""
    loaded = widgets.shipped_model(DATE_MODEL)
    return decode_with_trace(loaded.model, loaded.tokenizer, source)


@st.cache_data(max_entries=8, show_spinner=False)
def head_view(source: str) -> str:
    return figs.head_view_html(decode(source)[1])


def family_rows() -> list[dict]:
    """The table of the three families, measured on the shipped models."""
    shapes = {}
    for name in FAMILY_MODELS:
        loaded = widgets.shipped_model(name)
        shapes[name] = model_shape(loaded.family, loaded.model)
    return figs.family_rows(shapes)


# ---------------------------------------------------------------------------------------------
# The date input
# ---------------------------------------------------------------------------------------------


def copy_example() -> None:
    if st.session_state.get(EXAMPLE_KEY):
        st.session_state[SOURCE_KEY] = st.session_state[EXAMPLE_KEY]


def input_strip(examples: list[str]) -> tuple[str | None, int, int | str]:
    """Under the title: a held-out example or the student's own date, and the layer and head
    whose attention every chart shows. Returns the date (None, with a message, if unusable),
    the layer and the head."""
    st.session_state.setdefault(SOURCE_KEY, examples[0])
    config = widgets.shipped_model(DATE_MODEL).config
    pick, own, layer_column, head_column = st.columns([1.1, 1.2, 0.7, 2])
    pick.selectbox(
        _("Held-out example"),
        examples,
        index=None,
        placeholder=_("Choose one…"),
        key=EXAMPLE_KEY,
        bind=BIND,
        on_change=copy_example,
    )
    text = own.text_input(_("Date to rewrite"), key=SOURCE_KEY, bind=BIND)
    layer = widgets.choose_index(_("Layer"), config.n_layer, "ed-layer", True, layer_column)
    head = widgets.url_choice(
        head_column.radio,
        _("Head"),
        [*range(config.n_head), MEAN],
        "ed-head",
        format_func=figs.head_label,
        horizontal=True,
    )
    return checked_date(text), layer, head


def checked_date(text: str) -> str | None:
    """The date to rewrite, or None with a message when the model cannot read it."""
    loaded = widgets.shipped_model(DATE_MODEL)
    if len(text) > widgets.MAX_INPUT_CHARS:
        st.warning(
            _(
                "Your text has {count} characters; this model reads at most {limit} characters. "
                "Type a date such as 12 March 2021."
            ).format(count=f"{len(text):,}", limit=loaded.config.block_size)
        )
        return None
    try:
        encode_source(loaded.tokenizer, text, loaded.config.block_size)
    except ValueError as err:
        st.warning(escape_markdown(_("This cannot be rewritten: {problem}").format(problem=err)))
        st.caption(figs.known_characters_caption(known_tokens(loaded.tokenizer)))
        return None
    return text.strip()


def show_answer(source: str, steps: list[DecodingStep]) -> None:
    tok = widgets.shipped_model(DATE_MODEL).tokenizer
    output = tok.decode(generated_ids(steps))
    model_col, task_col = st.columns(2)
    model_col.metric(_("The model's output (greedy)"), output or _("(empty)"))
    try:
        answer = tasks.solve("date", source)
    except ValueError as err:
        task_col.metric(_("The task's answer"), _("none"))
        st.info(
            escape_markdown(
                _("The task's rules do not accept this input: {problem}").format(problem=err)
            )
        )
        return
    task_col.metric(_("The task's answer"), answer)
    if output == answer:
        st.caption(_("The model's output matches the task's answer."))
    else:
        st.caption(_("The model's output does not match the task's answer."))


# ---------------------------------------------------------------------------------------------
# Attention heatmaps
# ---------------------------------------------------------------------------------------------


def show_self_attention(trace: Trace, layer: int, head: int | str) -> None:
    left, right = st.columns(2)
    with left:
        widgets.chart(figs.encoder_attention_figure(trace, layer, head), key="ed-encoder-attention")
    with right:
        widgets.chart(figs.decoder_attention_figure(trace, layer, head), key="ed-decoder-attention")
    st.caption(figs.self_attention_caption(trace, layer, head))


def show_cross_attention(trace: Trace, steps: list[DecodingStep], layer: int, head: int | str):
    outputs = [step.token for step in steps]
    widgets.chart(
        figs.cross_attention_figure(trace, outputs, layer, head), key="ed-cross-attention"
    )
    st.caption(figs.cross_attention_caption(trace, outputs, layer, head))


# ---------------------------------------------------------------------------------------------
# Step-by-step decoding
# ---------------------------------------------------------------------------------------------


def step_controls(source: str, n_steps: int) -> int:
    """Steps decoded so far (0 to n_steps), with Back, Next step, Run to the end and Start
    over; a new source starts again at 0."""
    return widgets.computation_steps(
        _("Steps decoded"),
        STEP_KEY,
        n_steps,
        (_("◀ Back"), "ed-back"),
        (_("Next step ▶"), "ed-next"),
        restart_on=source,
        jumps=lambda _step: [
            Jump(_("Run to the end ▶▶"), "ed-run", n_steps),
            Jump(_("Start over"), "ed-reset", 0),
        ],
    )


def show_step(step: DecodingStep, trace: Trace, layer: int, head: int | str) -> None:
    token_col, probability_col, runner_col = st.columns(3)
    token_col.metric(
        _("Step {number}: chosen token").format(number=step.index + 1),
        figs.shown_token(step.token),
    )
    probability_col.metric(_("Its probability"), f"{step.probability:.6f}")
    runner_col.metric(_("Runner-up"), figs.runner_up_text(step))
    widgets.chart(figs.step_bars_figure(step, trace, layer, head), key="ed-step-bars")
    st.caption(figs.step_attention_caption(step, trace.encoder_tokens, layer, head))
    widgets.chart(figs.step_all_heads_figure(step, trace), key="ed-step-heads")


def show_decoding(source: str, steps: list[DecodingStep], trace: Trace, layer, head) -> None:
    tok = widgets.shipped_model(DATE_MODEL).tokenizer
    shown = step_controls(source, len(steps))
    decoder_so_far = ["[BOS]", *(step.token for step in steps[:shown])]
    st.html(token_chips(decoder_so_far))
    if shown == 0:
        st.info(
            _(
                "The encoder has read the {count} source tokens; the decoder holds only [BOS]. "
                "Press Next step."
            ).format(count=len(trace.encoder_tokens))
        )
        return
    show_step(steps[shown - 1], trace, layer, head)
    if shown == len(steps):
        summary = figs.decoding_summary(steps, tok.decode(generated_ids(steps)))
        (st.success if steps[-1].is_end else st.info)(summary)


# ---------------------------------------------------------------------------------------------
# Span corruption
# ---------------------------------------------------------------------------------------------


def show_span_corruption() -> tuple[list[str], float, float, int] | None:
    """The sentence corrupted T5's way; returns its words, the rate, the mean span length and
    the seed (None if there is nothing to corrupt)."""
    sentence = widgets.sentence_input(_("Your sentence"), DEFAULT_SENTENCE, key="ed-span-sentence")
    seed_col, rate_col, span_col = st.columns(3)
    with seed_col:
        seed = widgets.seed_control(key="ed-seed")
    rate = rate_col.slider(
        _("Corruption rate"),
        MIN_RATE,
        0.5,
        0.15,
        step=0.01,
        key="ed-rate",
        bind=BIND,
        format="%.2f",
    )
    mean_span = span_col.slider(
        _("Mean span length"), 1.0, 8.0, 3.0, step=0.5, key="ed-span", bind=BIND
    )
    if sentence is None:
        return None
    try:
        corruption = corrupt_spans(sentence.split(), rate, mean_span, seed)
    except ValueError as err:
        st.warning(escape_markdown(str(err)))
        return None
    st.html(figs.span_corruption_html(corruption))
    st.caption(figs.span_caption(corruption, rate))
    return sentence.split(), rate, mean_span, seed


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

current = widgets.lesson_header(SLUG)
source, layer, head = input_strip(held_out_examples())
steps = trace = None
if source is not None:
    steps, trace = decode(source)
    show_cross_attention(trace, steps, layer, head)
    show_answer(source, steps)

widgets.lesson_section(current, "families")
st.dataframe(
    family_rows(),
    hide_index=True,
    column_config={_("Parameters"): st.column_config.NumberColumn(format="localized")},
)

widgets.lesson_section(current, "date-task")
if source is not None:
    st.html(
        token_chips(
            trace.encoder_tokens, widgets.shipped_model(DATE_MODEL).tokenizer.encode(source)
        )
    )

widgets.lesson_section(current, "three-attentions")
if trace is not None:
    show_self_attention(trace, layer, head)

widgets.lesson_section(current, "cross-attention")  # its chart opens the page

widgets.lesson_section(current, "head-view")
if trace is not None:
    widgets.attention_view(head_view(source), figs.head_view_height(trace))

widgets.lesson_section(current, "decoding")
if trace is not None:
    show_decoding(source, steps, trace, layer, head)

widgets.lesson_section(current, "span-corruption")
span = show_span_corruption()

widgets.published_models(current, "encoder-decoder")
questions.ask(current, source=source, steps=steps, trace=trace, layer=layer, head=head, span=span)
