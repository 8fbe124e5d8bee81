"""Encoder-decoder models: where the three families fit, the date model's three kinds of
attention, greedy decoding step by step, and T5's span corruption."""

import re

import streamlit as st
from widgets import (
    MAX_INPUT_CHARS,
    lesson_header,
    lesson_section,
    quiz,
    seed_control,
    sentence_input,
    shipped_model,
)

from tinyformers.course.encoder_decoder import (
    DecodingStep,
    encode_source,
    generated_ids,
    greedy_steps,
)
from tinyformers.figures import encoder_decoder as figs
from tinyformers.figures.bertviz import encoder_decoder_head_view_html
from tinyformers.figures.common import token_chips
from tinyformers.model.build import count_parameters
from tinyformers.text.corpora import tasks
from tinyformers.text.span_corruption import MIN_RATE, corrupt_spans
from tinyformers.text.tokenizers import SPECIAL_TOKENS
from tinyformers.trace import Trace, trace_seq2seq
from tinyformers.training.zoo import date_splits

SLUG = "encoder-decoder"
DATE_MODEL = "seq2seq-date"
FAMILY_MODELS = ("bert-stories", "gpt-stories", "seq2seq-date")
FAMILIES = {  # family: (kind, well-known models, trained to predict)
    "bert": ("encoder-only", "BERT", "masked tokens"),
    "gpt": ("decoder-only", "GPT", "the next token"),
    "seq2seq": ("encoder–decoder", "T5, BART", "the output, given the input"),
}
N_EXAMPLES = 8
SOURCE_KEY = "ed-source"
EXAMPLE_KEY = "ed-example"
STEP_KEY = "ed-step"
STEP_SOURCE_KEY = "ed-step-source"
MEAN = "mean"
DEFAULT_SENTENCE = (
    "the small dog sees the big cat near the river . the old man who lives by the bridge reads "
    "a book to the children every evening before they go home ."
)
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def escape_markdown(text: str) -> str:
    """Text shown inside Markdown (warnings, captions) exactly as typed."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


@st.cache_data(max_entries=1, show_spinner=False)
def held_out_examples() -> list[str]:
    """Sources of the date task's held-out pairs: the model never saw them in training."""
    return [source for source, _ in date_splits()[1][:N_EXAMPLES]]


@st.cache_data(max_entries=32, show_spinner=False)
def decode(source: str) -> tuple[list[DecodingStep], Trace]:
    """Greedy decoding of ``source`` step by step, and the trace of the finished output: the
    decoder reads [BOS] and every output token but the last, so position t predicts step t."""
    loaded = shipped_model(DATE_MODEL)
    tok = loaded.tokenizer
    src = encode_source(tok, source, loaded.config.block_size)
    steps = greedy_steps(loaded.model, tok, src)
    decoder_ids = [tok.bos_id, *(step.token_id for step in steps[:-1])]
    trace = trace_seq2seq(
        loaded.model, src, decoder_ids, tok.display_tokens(src), tok.display_tokens(decoder_ids)
    )
    return steps, trace


@st.cache_data(max_entries=8, show_spinner=False)
def head_view(source: str) -> str:
    _, trace = decode(source)
    visible = [
        [t.replace(" ", "␣") for t in tokens] for tokens in (trace.encoder_tokens, trace.tokens)
    ]
    return encoder_decoder_head_view_html(
        trace.encoder_attentions, trace.attentions, trace.cross_attentions, *visible
    )


def head_weights(layers: list, layer: int, head: int | str):
    """One head's (q, k) matrix, or the mean over heads."""
    weights = layers[layer][0]  # (heads, q, k)
    return weights.mean(dim=0) if head == MEAN else weights[head]


def head_name(layer: int, head: int | str) -> str:
    return f"layer {layer}, {'mean of the heads' if head == MEAN else f'head {head}'}"


# ---------------------------------------------------------------------------------------------
# Where the three families fit
# ---------------------------------------------------------------------------------------------


def stack_depths(family: str, config) -> tuple[int, int]:
    """(encoder layers, decoder layers) of a model."""
    if family == "bert":
        return config.n_layer, 0
    if family == "gpt":
        return 0, config.n_layer
    return config.n_layer, config.n_decoder_layer


def family_rows() -> list[dict]:
    rows = []
    for name in FAMILY_MODELS:
        loaded = shipped_model(name)
        config = loaded.config
        kind, like, predicts = FAMILIES[loaded.family]
        encoder_layers, decoder_layers = stack_depths(loaded.family, config)
        rows.append(
            {
                "Model": name,
                "Family": kind,
                "Like": like,
                "Encoder layers": encoder_layers,
                "Decoder layers": decoder_layers,
                "Heads": config.n_head,
                "Width": config.n_embd,
                "Parameters": count_parameters(loaded.model),
                "Trained to predict": predicts,
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# The date input
# ---------------------------------------------------------------------------------------------


def copy_example() -> None:
    if st.session_state.get(EXAMPLE_KEY):
        st.session_state[SOURCE_KEY] = st.session_state[EXAMPLE_KEY]


def date_input(examples: list[str]) -> str | None:
    """A held-out example or the student's own text; None (with a message) if unusable."""
    st.session_state.setdefault(SOURCE_KEY, examples[0])
    pick, own = st.columns([1, 2])
    pick.selectbox(
        "Held-out example",
        examples,
        index=None,
        placeholder="Choose one…",
        key=EXAMPLE_KEY,
        on_change=copy_example,
    )
    text = own.text_input("Date to rewrite", key=SOURCE_KEY)
    loaded = shipped_model(DATE_MODEL)
    if len(text) > MAX_INPUT_CHARS:
        st.warning(
            f"Your text has {len(text):,} characters; this model reads at most "
            f"{loaded.config.block_size} characters. Type a date such as 12 March 2021."
        )
        return None
    try:
        encode_source(loaded.tokenizer, text, loaded.config.block_size)
    except ValueError as err:
        st.warning(escape_markdown(f"This cannot be rewritten: {err}"))
        vocabulary = loaded.tokenizer.display_tokens(list(range(loaded.tokenizer.vocab_size)))
        shown = " ".join(figs.shown_token(t) for t in vocabulary if t not in SPECIAL_TOKENS)
        st.caption(escape_markdown(f"The characters this model knows: {shown}"))
        return None
    return text.strip()


def show_answer(source: str, steps: list[DecodingStep]) -> None:
    tok = shipped_model(DATE_MODEL).tokenizer
    output = tok.decode(generated_ids(steps))
    model_col, task_col = st.columns(2)
    model_col.metric("The model's output (greedy)", output or "(empty)")
    try:
        answer = tasks.solve("date", source)
    except ValueError as err:
        task_col.metric("The task's answer", "none")
        st.info(escape_markdown(f"The task's rules do not accept this input: {err}"))
        return
    task_col.metric("The task's answer", answer)
    verdict = "matches" if output == answer else "does not match"
    st.caption(f"The model's output {verdict} the task's answer.")


# ---------------------------------------------------------------------------------------------
# Attention heatmaps
# ---------------------------------------------------------------------------------------------


def show_self_attention(trace: Trace, layer: int, head: int | str) -> None:
    encoder_labels = figs.token_labels(trace.encoder_tokens)
    decoder_labels = figs.token_labels(trace.tokens)
    left, right = st.columns(2)
    left.plotly_chart(
        figs.attention_heatmap(
            head_weights(trace.encoder_attentions, layer, head),
            encoder_labels,
            encoder_labels,
            f"Encoder self-attention, {head_name(layer, head)}",
            "key (source)",
            "query (source)",
        ),
        key="ed-encoder-attention",
    )
    decoder = head_weights(trace.attentions, layer, head)
    right.plotly_chart(
        figs.attention_heatmap(
            decoder,
            decoder_labels,
            decoder_labels,
            f"Decoder masked self-attention, {head_name(layer, head)}",
            "key (decoder input)",
            "query (decoder input)",
        ),
        key="ed-decoder-attention",
    )
    above = decoder.triu(diagonal=1).abs().max().item() if len(decoder_labels) > 1 else 0.0
    st.caption(
        f"Source: {len(encoder_labels)} tokens; decoder input: {len(decoder_labels)} tokens. "
        f"Largest decoder weight above the diagonal (a look into the future): {above:.1e}."
    )


def show_cross_attention(trace: Trace, steps: list[DecodingStep], layer: int, head: int | str):
    cross = head_weights(trace.cross_attentions, layer, head)  # (T, S)
    outputs = [step.token for step in steps]
    st.plotly_chart(
        figs.attention_heatmap(
            cross,
            figs.step_labels(trace.tokens, outputs),
            figs.token_labels(trace.encoder_tokens),
            f"Cross-attention, {head_name(layer, head)}",
            "source token (encoder)",
            "decoder position: reads → predicts",
        ),
        key="ed-cross-attention",
    )
    strongest = cross.argmax(dim=-1).tolist()
    links = " · ".join(
        f"{figs.shown_token(out)} ← {figs.shown_token(trace.encoder_tokens[k])} ({k})"
        for out, k in zip(outputs, strongest, strict=True)
    )
    deviation = (cross.sum(dim=-1) - 1).abs().max().item()
    st.caption(
        escape_markdown(
            f"Strongest source token for each output token (position in brackets): {links}. "
            f"Every row sums to 1 (largest deviation {deviation:.1e})."
        )
    )


# ---------------------------------------------------------------------------------------------
# Step-by-step decoding
# ---------------------------------------------------------------------------------------------


def set_step(value: int) -> None:
    st.session_state[STEP_KEY] = value


def current_step(source: str, n_steps: int) -> int:
    """Steps shown so far for this source (0 to n_steps); a new source starts again at 0."""
    if st.session_state.get(STEP_SOURCE_KEY) != source:
        st.session_state[STEP_SOURCE_KEY] = source
        st.session_state[STEP_KEY] = 0
    st.session_state[STEP_KEY] = min(max(st.session_state.get(STEP_KEY, 0), 0), n_steps)
    return st.session_state[STEP_KEY]


def step_buttons(shown: int, n_steps: int) -> None:
    next_col, end_col, reset_col, _ = st.columns([1, 1, 1, 3])
    next_col.button(
        "Next step ▶",
        key="ed-next",
        on_click=set_step,
        args=(shown + 1,),
        disabled=shown >= n_steps,
        width="stretch",
    )
    end_col.button(
        "Run to the end ▶▶",
        key="ed-run",
        on_click=set_step,
        args=(n_steps,),
        disabled=shown >= n_steps,
        width="stretch",
    )
    reset_col.button(
        "Start over",
        key="ed-reset",
        on_click=set_step,
        args=(0,),
        disabled=shown == 0,
        width="stretch",
    )


def show_step(step: DecodingStep, trace: Trace, layer: int, head: int | str) -> None:
    token, runner_up = figs.shown_token(step.token), step.alternatives[1]
    token_col, probability_col, runner_col = st.columns(3)
    token_col.metric(f"Step {step.index + 1}: chosen token", token)
    probability_col.metric("Its probability", f"{step.probability:.6f}")
    runner_col.metric("Runner-up", f"{figs.shown_token(runner_up[0])} ({runner_up[1]:.1e})")
    source_labels = figs.token_labels(trace.encoder_tokens)
    rows = step.cross_attention  # (layers, heads, source)
    row = rows[layer].mean(dim=0) if head == MEAN else rows[layer, head]
    title = f"Step {step.index + 1} ({token}): cross-attention, {head_name(layer, head)}"
    st.plotly_chart(figs.attention_bars(row, source_labels, title), key="ed-step-bars")
    strongest = int(row.argmax())
    st.caption(
        escape_markdown(
            f"To emit {token}, {head_name(layer, head)} put {row[strongest]:.1%} of its attention "
            f"on source token {strongest} ({figs.shown_token(trace.encoder_tokens[strongest])})."
        )
    )
    title = f"Step {step.index + 1} ({token}): cross-attention in every layer and head"
    st.plotly_chart(figs.step_heads_figure(rows, source_labels, title), key="ed-step-heads")


def show_decoding(source: str, steps: list[DecodingStep], trace: Trace, layer, head) -> None:
    tok = shipped_model(DATE_MODEL).tokenizer
    shown = current_step(source, len(steps))
    step_buttons(shown, len(steps))
    decoder_so_far = ["[BOS]", *(step.token for step in steps[:shown])]
    st.html(token_chips(decoder_so_far))
    if shown == 0:
        st.info(
            f"The encoder has read the {len(trace.encoder_tokens)} source tokens; the decoder "
            "holds only [BOS]. Press Next step."
        )
        return
    show_step(steps[shown - 1], trace, layer, head)
    if shown == len(steps):
        output = escape_markdown(tok.decode(generated_ids(steps)))
        if steps[-1].is_end:
            st.success(f"Done after {len(steps)} steps: the decoder chose [EOS]. Output: {output}")
        else:
            st.info(f"Stopped at the length limit after {len(steps)} steps. Output: {output}")


# ---------------------------------------------------------------------------------------------
# Span corruption
# ---------------------------------------------------------------------------------------------


def show_span_corruption() -> None:
    sentence = sentence_input("Your sentence", DEFAULT_SENTENCE, key="ed-span-sentence")
    seed_col, rate_col, span_col = st.columns(3)
    with seed_col:
        seed = seed_control(key="ed-seed")
    rate = rate_col.slider(
        "Corruption rate", MIN_RATE, 0.5, 0.15, step=0.01, key="ed-rate", format="%.2f"
    )
    mean_span = span_col.slider("Mean span length", 1.0, 8.0, 3.0, step=0.5, key="ed-span")
    if sentence is None:
        return
    words = sentence.split()
    try:
        corruption = corrupt_spans(words, rate, mean_span, seed)
    except ValueError as err:
        st.warning(escape_markdown(str(err)))
        return
    st.html(figs.span_corruption_html(corruption))
    lengths = ", ".join(str(span.end - span.start) for span in corruption.spans)
    spans = (
        "1 span of length"
        if len(corruption.spans) == 1
        else f"{len(corruption.spans)} spans of lengths"
    )
    st.caption(
        f"{corruption.n_dropped} of {len(words)} words dropped ({corruption.dropped_fraction:.1%}; "
        f"rate {rate:.0%}) in {spans} {lengths}. The encoder reads {len(corruption.inputs)} "
        f"tokens, the decoder predicts {len(corruption.targets)}."
    )


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

current = lesson_header(SLUG)
date_model = shipped_model(DATE_MODEL)

with st.sidebar:
    st.subheader("Attention to show")
    layer = st.radio(
        "Layer",
        list(range(date_model.config.n_layer)),
        horizontal=True,
        key="ed-layer",
    )
    head = st.radio(
        "Head",
        [*range(date_model.config.n_head), MEAN],
        format_func=lambda h: "mean of the heads" if h == MEAN else str(h),
        horizontal=True,
        key="ed-head",
    )

lesson_section(current, "families")
st.dataframe(
    family_rows(),
    hide_index=True,
    column_config={"Parameters": st.column_config.NumberColumn(format="localized")},
)

lesson_section(current, "date-task")
source = date_input(held_out_examples())
steps = trace = None
if source is not None:
    steps, trace = decode(source)
    st.html(token_chips(trace.encoder_tokens, shipped_model(DATE_MODEL).tokenizer.encode(source)))
    show_answer(source, steps)

lesson_section(current, "three-attentions")
if trace is not None:
    show_self_attention(trace, layer, head)

lesson_section(current, "cross-attention")
if trace is not None:
    show_cross_attention(trace, steps, layer, head)

lesson_section(current, "head-view")
if trace is not None:
    st.iframe(
        head_view(source), height=100 + 23 * max(len(trace.encoder_tokens), len(trace.tokens))
    )

lesson_section(current, "decoding")
if trace is not None:
    show_decoding(source, steps, trace, layer, head)

lesson_section(current, "span-corruption")
show_span_corruption()

quiz(current)
