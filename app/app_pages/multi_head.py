"""Multi-head attention: bertviz views, heads ranked by what they do, one head up close, the
reshape into heads and back, and the head that links verbs to their subjects."""

from __future__ import annotations

import hashlib
import math

import streamlit as st
import torch
from widgets import lesson_header, lesson_section, model_picker, quiz, sentence_input, shipped_model

from tinyformers.course.multi_head import (
    STATISTICS,
    HeadStats,
    agreement_probe,
    attention_shapes,
    head_outputs,
    head_statistics,
    projection_parameters,
    sort_heads,
    strongest_other_key,
    trace_sentence,
    uniform_entropy,
)
from tinyformers.figures import multi_head as figs
from tinyformers.figures.bertviz import head_view_html, model_view_html
from tinyformers.figures.common import token_chips
from tinyformers.hub.registry import LoadedModel, shipped_names
from tinyformers.text.corpora import agreement_examples
from tinyformers.trace import Trace
from tinyformers.training.zoo import (
    AGREEMENT_SEED,
    SUBJECT_HEAD_EXAMPLES,
    SUBJECT_HEAD_MODELS,
    subject_head_scores,
)

SLUG = "multi-head"
DEFAULT_MODEL = "gpt-stories"
DEFAULT_SENTENCE = "the old man near the birds sings . he is happy ."
AGREEMENT_DEFAULT_MODEL = "bert-stories"
AGREEMENT_CHOICES = 12  # agreement sentences offered for the close-up
SMALLEST_FIRST = {"entropy"}  # statistics whose interesting heads have small values
TOP_HEADS = 24
NUMBER_NAMES = {"sg": "singular", "pl": "plural"}


@st.cache_data(max_entries=32, show_spinner=False)
def shipped_trace(name: str, text: str) -> Trace:
    """A shipped model's trace of one text (shipped models never change, so the name is a key)."""
    loaded = shipped_model(name)
    return trace_sentence(loaded.model, loaded.tokenizer, text)


def sentence_trace(loaded: LoadedModel, text: str) -> Trace:
    if loaded.source == "shipped":
        return shipped_trace(loaded.name, text)
    return trace_sentence(loaded.model, loaded.tokenizer, text)


def fingerprint(trace: Trace) -> str:
    """A short digest of the tokens and attention weights: the views depend on nothing else."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update("\x00".join(trace.tokens).encode("utf-8", "surrogatepass"))
    for weights in trace.attentions:
        digest.update(weights.float().contiguous().numpy().tobytes())
    return digest.hexdigest()


@st.cache_data(max_entries=16, show_spinner=False)
def attention_views(model_name: str, text: str, key: str, _trace: Trace) -> tuple[str, str]:
    """bertviz's head view and model view for one (model, text); ``key`` fingerprints the trace,
    so two models that share a name never share a view."""
    return (
        head_view_html(_trace.attentions, _trace.tokens),
        figs.fit_width(model_view_html(_trace.attentions, _trace.tokens)),
    )


@st.cache_data(max_entries=4, show_spinner="Measuring every head on the agreement sentences…")
def subject_scores(name: str) -> list[list[float]]:
    """For a shipped model: per (layer, head), the share of agreement sentences whose verb row
    puts its strongest weight on the subject."""
    return subject_head_scores(shipped_model(name)).tolist()


def anchor_of(loaded: LoadedModel) -> tuple[str | None, str]:
    """The token the anchor score measures, and how the page names it."""
    if loaded.family == "bert":
        return "[SEP]", "[SEP]"
    return None, "the first token"


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


def show_head_view(loaded: LoadedModel, text: str, trace: Trace) -> None:
    head_html, _ = attention_views(loaded.name, text, fingerprint(trace), trace)
    st.iframe(head_html, height=figs.head_view_height(len(trace.tokens)))


def show_model_view(loaded: LoadedModel, text: str, trace: Trace) -> None:
    _, model_html = attention_views(loaded.name, text, fingerprint(trace), trace)
    st.iframe(
        model_html, height=figs.model_view_height(trace.n_layer, trace.n_head, len(trace.tokens))
    )
    st.caption(
        f"{loaded.name}: {trace.n_layer} layers × {trace.n_head} heads = "
        f"{trace.n_layer * trace.n_head} attention patterns over your {len(trace.tokens)} tokens."
    )


def open_head(layer: int, head: int, n_layer: int, n_head: int) -> None:
    st.session_state[f"mh-layer-{n_layer}"] = layer
    st.session_state[f"mh-head-{n_head}"] = head


def show_ranking(loaded: LoadedModel, trace: Trace) -> None:
    anchor_token, anchor_name = anchor_of(loaded)
    labels = figs.stat_labels(anchor_name)
    try:
        stats = head_statistics(trace.attentions, trace.tokens, anchor_token)
    except ValueError as err:
        st.info(f"Head statistics are not available: {err}.")
        return
    key_column, order_column = st.columns([3, 2])
    key = key_column.selectbox("Sort heads by", STATISTICS, format_func=labels.get, key="mh-sort")
    order = order_column.radio(
        "Order",
        ("largest first", "smallest first"),
        index=1 if key in SMALLEST_FIRST else 0,
        horizontal=True,
        key=f"mh-order-{key}",
    )
    ranked = sort_heads(stats, key, descending=order == "largest first")
    st.plotly_chart(figs.head_ranking_chart(ranked, key, anchor_name, top=TOP_HEADS), theme=None)
    st.dataframe(
        ranking_rows(ranked, labels), hide_index=True, height=min(38 + 35 * len(ranked), 460)
    )
    best = ranked[0]
    uniform = uniform_entropy(trace.masks.get("self"), len(trace.tokens))
    st.caption(
        f"Top head by {labels[key]}: {best.name}, {getattr(best, key):.3f}. "
        f"{len(ranked)} heads on {len(trace.tokens)} tokens"
        + (f", the chart shows the first {TOP_HEADS}" if len(ranked) > TOP_HEADS else "")
        + f". A head that spread every row evenly would have mean entropy {uniform:.3f} nats."
    )
    st.button(
        f"Show {best.name} in the heatmap below",
        key="mh-open-top",
        on_click=open_head,
        args=(best.layer, best.head, trace.n_layer, trace.n_head),
    )


def ranking_rows(ranked: list[HeadStats], labels: dict[str, str]) -> list[dict]:
    return [
        {"layer": s.layer, "head": s.head}
        | {labels[name]: round(getattr(s, name), 3) for name in STATISTICS}
        for s in ranked
    ]


def pick_head(trace: Trace) -> tuple[int, int]:
    layer_column, head_column = st.columns(2)
    layer = layer_column.radio(
        "Layer", range(trace.n_layer), horizontal=True, key=f"mh-layer-{trace.n_layer}"
    )
    head = head_column.radio(
        "Head", range(trace.n_head), horizontal=True, key=f"mh-head-{trace.n_head}"
    )
    return int(layer), int(head)


def show_one_head(loaded: LoadedModel, trace: Trace, layer: int, head: int) -> None:
    weights = trace.head(layer, head)
    title = f"{loaded.name}, layer {layer}, head {head}"
    st.plotly_chart(figs.attention_heatmap(weights, trace.tokens, title), theme=None)
    strongest = weights.argmax(dim=-1)  # for every row, the key it weighs most
    rows = torch.arange(len(trace.tokens))
    previous = int((strongest[1:] == rows[1:] - 1).sum())
    itself = int((strongest == rows).sum())
    st.caption(
        f"Each row sums to 1 (largest deviation {(weights.sum(-1) - 1).abs().max():.1e}). "
        f"Rows whose largest weight is on the previous token: {previous} of {len(rows) - 1}; "
        f"on the token itself: {itself} of {len(rows)}. Largest weight in the matrix "
        f"{weights.max():.3f}, smallest {weights.min():.3f}."
    )


def show_shapes(loaded: LoadedModel, trace: Trace) -> None:
    config = loaded.config
    t, c, nh = len(trace.tokens), config.n_embd, config.n_head
    steps = attention_shapes(config, t)
    st.table(
        [
            {
                "step": step.what,
                "code": step.code,
                "shape": step.dims,
                f"{loaded.name}, your sentence": " × ".join(map(str, step.shape)),
            }
            for step in steps
        ]
    )
    parameters = projection_parameters(config)
    st.caption(
        f"T = {t} tokens, C = n_embd = {c}, nh = {nh} heads, hs = C / nh = {c // nh}; the scores "
        f"are divided by √hs = {math.sqrt(c // nh):.3f}. Each of q_proj, k_proj, v_proj and c_proj "
        f"holds {parameters['q_proj']:,} parameters (C × C weights + C biases), "
        f"{sum(parameters.values()):,} per layer, whatever the number of heads."
    )


def show_concatenation(loaded: LoadedModel, trace: Trace, layer: int) -> None:
    outputs = head_outputs(trace, layer)
    st.plotly_chart(
        figs.concatenation_figure(outputs.per_head, outputs.projected, trace.tokens, layer),
        theme=None,
    )
    st.caption(
        f"Layer {layer} as the model's own forward pass computed it on your sentence. "
        "Output vector lengths: "
        f"{outputs.concatenated.norm(dim=-1).mean():.3f} on average before c_proj, "
        f"{outputs.projected.norm(dim=-1).mean():.3f} after."
    )


def show_agreement() -> None:
    available = [name for name in SUBJECT_HEAD_MODELS if name in shipped_names()]
    if not available:
        st.error("The shipped gpt-stories and bert-stories models are missing from models/.")
        return
    default = (
        available.index(AGREEMENT_DEFAULT_MODEL) if AGREEMENT_DEFAULT_MODEL in available else 0
    )
    name = st.radio("Model", available, index=default, horizontal=True, key="mh-agree-model")
    model = shipped_model(name)
    scores = torch.tensor(subject_scores(name))
    layer, head = divmod(int(scores.argmax()), scores.shape[1])
    rate = scores[layer, head].item()
    where = "the verb" if model.family == "bert" else "the token before the verb"
    title = f"{name}: how often {where} points at its subject"
    st.plotly_chart(figs.score_grid(scores, title, (layer, head)), theme=None)
    st.caption(
        f"{SUBJECT_HEAD_EXAMPLES} held-out agreement sentences. Best: layer {layer}, head {head}, "
        f"whose strongest weight from {where} (leaving out itself) lands on the subject noun in "
        f"{rate:.0%} of them."
    )
    examples = agreement_examples(AGREEMENT_CHOICES, seed=AGREEMENT_SEED)
    index = st.selectbox(
        "Agreement sentence",
        range(len(examples)),
        format_func=lambda i: examples[i].text,
        key="mh-agree-sentence",
    )
    example = examples[index]
    trace = shipped_trace(name, example.text)
    probe = agreement_probe(model.tokenizer, example, model.family)
    weights = trace.head(layer, head)
    title = f"{name}, layer {layer}, head {head}, on an agreement sentence"
    st.plotly_chart(
        figs.attention_heatmap(weights, trace.tokens, title, probe.query, probe.subject[0]),
        theme=None,
    )
    target = strongest_other_key(weights[probe.query], probe.query)
    verdict = "the subject" if probe.subject[0] <= target < probe.subject[1] else "not the subject"
    subject = model.tokenizer.decode(trace.input_ids[probe.subject[0] : probe.subject[1]])
    row, key = trace.tokens[probe.query], trace.tokens[target]
    st.caption(
        f"Row {probe.query} ({figs.quoted_token(row)}) puts its strongest weight, "
        f"{weights[probe.query, target]:.3f}, on token {target} ({figs.quoted_token(key)}): "
        f"{verdict}. The subject is {figs.quoted_token(subject.strip())}, "
        f"{NUMBER_NAMES[example.number]}."
    )


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

lesson = lesson_header(SLUG)

with st.sidebar:
    st.subheader("Settings for this lesson")
    loaded = model_picker(
        "Model (GPT or BERT)",
        None,
        key="mh-model",
        choices=shipped_names(family=("gpt", "bert")),
        default=DEFAULT_MODEL,
    )
    if loaded is not None and loaded.family not in ("gpt", "bert"):
        st.error(f"{loaded.name} is a {loaded.family} model; pick a GPT or BERT model.")
        loaded = None
    text = None
    if loaded is not None:
        text = sentence_input(
            "Your sentence",
            DEFAULT_SENTENCE,
            key="mh-sentence",
            tokenizer=loaded.tokenizer,
            max_tokens=loaded.config.block_size - (2 if loaded.family == "bert" else 0),
        )

trace = None
if text is not None:
    try:
        trace = sentence_trace(loaded, text)
    except ValueError as err:
        st.warning(str(err))

lesson_section(lesson, "why-heads")
if trace is None:
    st.info("Pick a GPT or BERT model and type a sentence in the sidebar to see its heads.")
else:
    st.html(token_chips(trace.tokens, trace.input_ids))

lesson_section(lesson, "head-view")
if trace is not None:
    show_head_view(loaded, text, trace)

lesson_section(lesson, "model-view")
if trace is not None:
    show_model_view(loaded, text, trace)

lesson_section(lesson, "summary")
if trace is not None:
    show_ranking(loaded, trace)

lesson_section(lesson, "one-head")
layer = 0
if trace is not None:
    layer, head = pick_head(trace)
    show_one_head(loaded, trace, layer, head)

lesson_section(lesson, "split")
if trace is not None:
    show_shapes(loaded, trace)

lesson_section(lesson, "concat")
if trace is not None:
    show_concatenation(loaded, trace, layer)

lesson_section(lesson, "agreement")
show_agreement()

lesson_section(lesson, "caution")
quiz(lesson)
