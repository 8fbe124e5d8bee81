"""Multi-head attention: bertviz views, heads ranked by what they do, one head up close, the
reshape into heads and back, and the head that links verbs to their subjects."""

from __future__ import annotations

import questions
import streamlit as st
import torch
import widgets
from widgets import BIND, plain

from tinyformers.course.multi_head import (
    DEFAULT_MODEL,
    DEFAULT_SENTENCE,
    STATISTICS,
    agreement_probe,
    anchor_of,
    attention_fingerprint,
    attention_shapes,
    best_head,
    head_outputs,
    head_statistics,
    projection_parameters,
    sort_heads,
    trace_sentence,
    uniform_entropy,
)
from tinyformers.figures import multi_head as figs
from tinyformers.figures.bertviz import head_view_html, model_view_html
from tinyformers.figures.common import token_chips
from tinyformers.hub.registry import LoadedModel, shipped_names
from tinyformers.i18n import N_, _
from tinyformers.text.corpora import agreement_examples
from tinyformers.text.inputs import text_room
from tinyformers.trace import Trace
from tinyformers.training.zoo import (
    AGREEMENT_SEED,
    SUBJECT_HEAD_EXAMPLES,
    SUBJECT_HEAD_MODELS,
    subject_head_scores,
)

SLUG = "multi-head"
AGREEMENT_DEFAULT_MODEL = "bert-stories"
AGREEMENT_CHOICES = 12  # agreement sentences offered for the close-up
SMALLEST_FIRST = {"entropy"}  # statistics whose interesting heads have small values
ORDERS = (N_("largest first"), N_("smallest first"))
TOP_HEADS = 24
LAYER_KEY = "mh-layer"
HEAD_KEY = "mh-head"


@st.cache_data(max_entries=32, show_spinner=False)
def shipped_trace(name: str, text: str) -> Trace:
    """A shipped model's trace of one text (shipped models never change, so the name is a key)."""
    loaded = widgets.shipped_model(name)
    return trace_sentence(loaded.model, loaded.tokenizer, text)


def sentence_trace(loaded: LoadedModel, text: str) -> Trace:
    """The model's trace of ``text``: cached for shipped models, run afresh for any other."""
    if loaded.source == "shipped":
        return shipped_trace(loaded.name, text)
    return trace_sentence(loaded.model, loaded.tokenizer, text)


@st.cache_data(max_entries=16, show_spinner=False)
def attention_views(model_name: str, text: str, key: str, _trace: Trace) -> tuple[str, str]:
    """bertviz's head view and model view for one (model, text); ``key`` fingerprints the trace,
    so two models that share a name never share a view."""
    return (
        head_view_html(_trace.attentions, _trace.tokens),
        figs.fit_width(model_view_html(_trace.attentions, _trace.tokens)),
    )


@st.cache_data(max_entries=4, show_spinner=False)
def cached_subject_scores(name: str) -> list[list[float]]:
    """For a shipped model: per (layer, head), the share of agreement sentences whose verb row
    puts its strongest weight on the subject."""
    return subject_head_scores(widgets.shipped_model(name)).tolist()


def subject_scores(name: str) -> list[list[float]]:
    """``cached_subject_scores`` with a spinner in the session's language."""
    with st.spinner(_("Measuring every head on the agreement sentences…")):
        return cached_subject_scores(name)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


def show_head_view(loaded: LoadedModel, text: str, trace: Trace) -> None:
    head_html, _model_html = attention_views(loaded.name, text, attention_fingerprint(trace), trace)
    height = figs.head_view_height(len(trace.tokens), figs.FIRST_VIEW_HEIGHT)
    widgets.attention_view(head_html, height)


def show_model_view(loaded: LoadedModel, text: str, trace: Trace) -> None:
    _head_html, model_html = attention_views(loaded.name, text, attention_fingerprint(trace), trace)
    n_tokens = len(trace.tokens)
    widgets.attention_view(
        model_html, figs.model_view_height(trace.n_layer, trace.n_head, n_tokens)
    )
    st.caption(figs.model_view_caption(loaded.name, trace.n_layer, trace.n_head, n_tokens))


def open_head(layer: int, head: int) -> None:
    st.session_state[LAYER_KEY] = layer
    st.session_state[HEAD_KEY] = head


def show_ranking(loaded: LoadedModel, trace: Trace) -> None:
    anchor_token, anchor_name = anchor_of(loaded.family)
    names = figs.stat_names(anchor_name)
    try:
        stats = head_statistics(trace.attentions, trace.tokens, anchor_token)
    except ValueError as err:
        st.info(_("Head statistics are not available: {reason}.").format(reason=plain(err)))
        return
    key_column, order_column = st.columns([3, 2])
    key = widgets.url_choice(
        key_column.selectbox, _("Sort heads by"), STATISTICS, "mh-sort", format_func=names.get
    )
    order = widgets.url_choice(
        order_column.radio,
        _("Order"),
        ORDERS,
        f"mh-order-{key}",
        format_func=_,
        index=1 if key in SMALLEST_FIRST else 0,
        horizontal=True,
    )
    ranked = sort_heads(stats, key, descending=order == "largest first")
    widgets.chart(figs.head_ranking_chart(ranked, key, anchor_name, top=TOP_HEADS))
    st.dataframe(
        figs.ranking_rows(ranked, names),
        hide_index=True,
        height=min(38 + 35 * len(ranked), 460),
    )
    uniform = uniform_entropy(trace.masks.get("self"), len(trace.tokens))
    st.caption(figs.ranking_caption(ranked, key, names, len(trace.tokens), uniform, TOP_HEADS))
    best = ranked[0]
    st.button(
        _("Show {head} in the heatmap below").format(head=best.name),
        key="mh-open-top",
        on_click=open_head,
        args=(best.layer, best.head),
    )


def pick_head(trace: Trace) -> tuple[int, int]:
    layer_column, head_column = st.columns(2)
    layer = widgets.choose_index(_("Layer"), trace.n_layer, LAYER_KEY, True, layer_column)
    head = widgets.choose_index(_("Head"), trace.n_head, HEAD_KEY, True, head_column)
    return layer, head


def show_one_head(loaded: LoadedModel, trace: Trace, layer: int, head: int) -> None:
    weights = trace.head(layer, head)
    title = _("{model}, layer {layer}, head {head}").format(
        model=loaded.name, layer=layer, head=head
    )
    widgets.chart(figs.attention_heatmap(weights, trace.tokens, title))
    st.caption(figs.head_caption(weights))


def show_shapes(loaded: LoadedModel, trace: Trace) -> None:
    config, n_tokens = loaded.config, len(trace.tokens)
    steps = attention_shapes(config, n_tokens)
    st.table(figs.shape_rows(steps, _("{model}, your sentence").format(model=loaded.name)))
    parameters = projection_parameters(config)
    st.caption(figs.shapes_caption(config, n_tokens, parameters))


def show_concatenation(loaded: LoadedModel, trace: Trace, layer: int) -> None:
    outputs = head_outputs(trace, layer)
    widgets.chart(
        figs.concatenation_figure(outputs.per_head, outputs.projected, trace.tokens, layer)
    )
    st.caption(figs.concatenation_caption(outputs, layer))


def show_agreement() -> None:
    available = [name for name in SUBJECT_HEAD_MODELS if name in shipped_names()]
    if not available:
        st.error(_("The shipped gpt-stories and bert-stories models are missing from models/."))
        return
    default = (
        available.index(AGREEMENT_DEFAULT_MODEL) if AGREEMENT_DEFAULT_MODEL in available else 0
    )
    name = st.radio(
        _("Model"), available, index=default, horizontal=True, key="mh-agree-model", bind=BIND
    )
    model = widgets.shipped_model(name)
    scores = torch.tensor(subject_scores(name))
    layer, head = best_head(scores)
    rate = scores[layer, head].item()
    title = _("{model}: how often {row} points at its subject").format(
        model=name, row=figs.subject_row(model.family)
    )
    widgets.chart(figs.score_grid(scores, title, (layer, head)))
    st.caption(figs.subject_grid_caption(SUBJECT_HEAD_EXAMPLES, (layer, head), rate, model.family))
    examples = agreement_examples(AGREEMENT_CHOICES, seed=AGREEMENT_SEED)
    index = st.selectbox(
        _("Agreement sentence"),
        range(len(examples)),
        format_func=lambda i: examples[i].text,
        key="mh-agree-sentence",
        bind=BIND,
    )
    example = examples[index]
    trace = shipped_trace(name, example.text)
    probe = agreement_probe(model.tokenizer, example, model.family)
    weights = trace.head(layer, head)
    title = _("{model}, layer {layer}, head {head}, on an agreement sentence").format(
        model=name, layer=layer, head=head
    )
    widgets.chart(
        figs.attention_heatmap(weights, trace.tokens, title, probe.query, probe.subject[0])
    )
    subject = model.tokenizer.decode(trace.input_ids[probe.subject[0] : probe.subject[1]])
    st.caption(figs.agreement_caption(weights, trace.tokens, probe, subject, example.number))


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

lesson = widgets.lesson_header(SLUG)

model_column, sentence_column = st.columns([2, 5])  # the input strip
with model_column:
    loaded = widgets.model_picker(
        _("Model (GPT or BERT)"),
        None,
        key="mh-model",
        choices=shipped_names(family=("gpt", "bert")),
        default=DEFAULT_MODEL,
    )
if loaded is not None and loaded.family not in ("gpt", "bert"):
    st.error(
        _("{model} is a {family} model; pick a GPT or BERT model.").format(
            model=plain(loaded.name), family=loaded.family
        )
    )
    loaded = None
text = None
if loaded is not None:
    with sentence_column:
        text = widgets.sentence_input(
            _("Your sentence"),
            DEFAULT_SENTENCE,
            key="mh-sentence",
            tokenizer=loaded.tokenizer,
            max_tokens=text_room(loaded.family, loaded.config.block_size),
        )

trace = None
if text is not None:
    try:
        trace = sentence_trace(loaded, text)
    except ValueError as err:
        st.warning(str(err))

if trace is None:
    st.info(_("Pick a GPT or BERT model and type a sentence above to see its heads."))
else:
    show_head_view(loaded, text, trace)

widgets.lesson_section(lesson, "why-heads")
if trace is not None:
    st.html(token_chips(trace.tokens, trace.input_ids))

widgets.lesson_section(lesson, "head-view")

widgets.lesson_section(lesson, "model-view")
if trace is not None:
    show_model_view(loaded, text, trace)

widgets.lesson_section(lesson, "summary")
if trace is not None:
    show_ranking(loaded, trace)

widgets.lesson_section(lesson, "one-head")
layer = head = 0
if trace is not None:
    layer, head = pick_head(trace)
    show_one_head(loaded, trace, layer, head)

widgets.lesson_section(lesson, "split")
if trace is not None:
    show_shapes(loaded, trace)

widgets.lesson_section(lesson, "concat")
if trace is not None:
    show_concatenation(loaded, trace, layer)

widgets.lesson_section(lesson, "agreement")
show_agreement()

widgets.lesson_section(lesson, "caution")
questions.ask(lesson, trace=trace, loaded=loaded, layer=layer, head=head)
