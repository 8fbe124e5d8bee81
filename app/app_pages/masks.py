"""Attention masks: causal, padding, prefix-LM and cross-attention, drawn on one head of a real
model; a padded batch that gives the real tokens the same outputs as a run alone; and a tiny GPT
trained with and without its causal mask, in the background."""

from collections.abc import Callable
from functools import partial

import questions
import streamlit as st
import widgets
from widgets import BIND, plain

from tinyformers.course import masks as mask_views
from tinyformers.course.masks import CORPORA, DEFAULT_MODEL, DEFAULT_SENTENCE, MAX_TOKENS
from tinyformers.figures import masks as figs
from tinyformers.figures.common import token_chips
from tinyformers.figures.masks import KIND_NAMES
from tinyformers.hub.registry import LoadedModel
from tinyformers.i18n import _, ngettext
from tinyformers.training import experiments
from tinyformers.training.experiments import MAX_STEPS, MIN_STEPS
from tinyformers.training.jobs import STOPPED, Snapshot

SLUG = "masks"
DATE_MODEL = "seq2seq-date"
BERT_MODEL = "bert-stories"
DEFAULT_DATE = "12 March 2021"


def sentence_fields() -> tuple[tuple[str, str, str], ...]:
    """Label, default text and key of the two sentence inputs."""
    return (
        (_("Your sentence"), DEFAULT_SENTENCE, "mk-sentence"),
        (_("A second sentence of another length, for padding"), "Tom runs .", "mk-second"),
    )


def date_fields() -> tuple[tuple[str, str, str, str], ...]:
    """Label, default date, key and name in messages of the two date inputs."""
    return (
        (_("Date for the encoder"), DEFAULT_DATE, "mk-date", _("date")),
        (
            _("A second, shorter date in the same batch"),
            "5 May 1999",
            "mk-date-2",
            _("second date"),
        ),
    )


MODEL_WIDTH = 150  # px of the model box: with layer and head it fits a phone's row
INDEX_WIDTH = 80  # px of a layer or head box
DEFAULT_STEPS = 300
JOB_KEY = "mk-leak-job"
RUN_KEY = "mk-leak-run"


builtin_corpus = st.cache_data(max_entries=2, show_spinner=False)(mask_views.builtin_corpus)


@st.cache_data(max_entries=32, show_spinner=False)
def date_decoder_input(source: str) -> list[int]:
    """[BOS] and the date model's greedy output for ``source``: what its decoder reads."""
    loaded = widgets.shipped_model(DATE_MODEL)
    return mask_views.decoder_input(loaded.model, loaded.tokenizer, loaded.tokenizer.encode(source))


def layer_and_head(
    row, layers: int, heads: int, key: str, what: str | None = None
) -> tuple[int, int]:
    """Layer and head side by side in ``row``, a horizontal container."""
    layer_box, head_box = (row.container(width=INDEX_WIDTH) for _ in range(2))
    what = _("Layer") if what is None else what
    layer = widgets.choose_index(what, layers, f"{key}-layer", container=layer_box)
    head = widgets.choose_index(_("Head"), heads, f"{key}-head", container=head_box)
    return layer, head


def read_ids(read: Callable, tokenizer, text: str | None, *args) -> list[int] | None:
    """``read(tokenizer, text, *args)``, or None: for no text, or with a message (a warning for
    an empty text, an error for one the model cannot read)."""
    if text is None:
        return None
    try:
        return read(tokenizer, text, *args)
    except mask_views.EmptyText as err:
        st.warning(str(err))
    except ValueError as err:
        st.error(str(err))
    return None


# ---------------------------------------------------------------------------------------------
# The kinds of mask
# ---------------------------------------------------------------------------------------------


def cross_view(row) -> tuple[mask_views.MaskView | None, int, int]:
    """Decoder layer and head (in ``row``), the two dates, and cross-attention on them."""
    loaded = widgets.shipped_model(DATE_MODEL)
    tok, config = loaded.tokenizer, loaded.config
    sizes = (config.n_decoder_layer, config.n_head)
    layer, head = layer_and_head(row, *sizes, "mk-cross", _("Decoder layer"))
    dates = []
    for column, (label, default, key, what) in zip(st.columns(2), date_fields(), strict=True):
        with column:
            dates.append(
                (widgets.sentence_input(label, default, key, tok, config.block_size), what)
            )
    sources = [read_ids(mask_views.date_ids, tok, text, what, DEFAULT_DATE) for text, what in dates]
    if any(ids is None for ids in sources):
        return None, layer, head
    targets = [date_decoder_input(tok.decode(ids)) for ids in sources]
    view = mask_views.date_cross_view(loaded.model, tok, sources, targets, layer, head)
    return view, layer, head


def self_attention_view(
    kind: str, loaded: LoadedModel, first: list[int], second: list[int] | None, row, sentences
) -> tuple[mask_views.MaskView | None, int, int, int]:
    """Layer and head (in ``row``), the prefix (beside the ``sentences``), and the causal,
    padding or prefix view on them."""
    layer, head = layer_and_head(row, loaded.config.n_layer, loaded.config.n_head, "mk-self")
    prefix_len = 0
    if kind == "prefix":
        label = _("Prefix length (tokens that see each other both ways)")
        prefix_len = widgets.length_slider(label, len(first), 3, "mk-prefix", sentences)
    if kind == "padding" and second is None:
        st.info(_("Type a second sentence above: padding needs a batch of two."))
        return None, layer, head, prefix_len
    sequences = [first] if second is None else [first, second]
    view = mask_views.sentence_view(
        kind, loaded.model, loaded.tokenizer, sequences, layer, head, prefix_len
    )
    return view, layer, head, prefix_len


def show_kind(kind: str, loaded: LoadedModel | None, first, second, strip, rows) -> None:
    """The controls of one kind of mask (in the input strip's ``rows``) and its view."""
    if kind != "cross" and (loaded is None or first is None):
        st.info(_("Pick a model and type a sentence above to see this mask on a real head."))
        return
    prefix_len = 0
    try:
        with strip:
            if kind == "cross":
                view, layer, head = cross_view(rows[0])
            else:
                view, layer, head, prefix_len = self_attention_view(
                    kind, loaded, first, second, *rows
                )
    except ValueError as err:
        if kind == "cross":
            message = _("The date model cannot read this: {reason}")
        else:
            message = _("The model cannot show this: {reason}")
        st.error(message.format(reason=plain(err)))
        return
    if view is None:
        return
    widths, figures = figs.mask_figures(view)
    for column, figure in zip(st.columns(widths), figures, strict=True):
        with column:
            widgets.chart(figure)
    name = DATE_MODEL if kind == "cross" else loaded.name
    st.caption(figs.kind_caption(view, kind, name, layer, head, prefix_len))


# ---------------------------------------------------------------------------------------------
# A padded batch
# ---------------------------------------------------------------------------------------------


def show_padding(loaded: LoadedModel | None, texts: list[str | None]) -> None:
    if any(text is None for text in texts):
        st.info(_("Type two sentences above to build a padded batch."))
        return
    choices = ([loaded.name] if loaded is not None else []) + [BERT_MODEL]
    name = st.radio(
        _("Model for the batch (GPT is causal; BERT reads in both directions)"),
        choices,
        format_func=plain,
        horizontal=True,
        key="mk-pad-model",
        bind=BIND,
    )
    model = (
        loaded if loaded is not None and name == loaded.name else widgets.shipped_model(BERT_MODEL)
    )
    tok, limit = model.tokenizer, mask_views.token_room(model.model, MAX_TOKENS)
    sequences = read_ids(mask_views.batch_ids, tok, texts, model.family, limit)
    if sequences is None:
        return
    row = st.container(horizontal=True)
    layer, head = layer_and_head(row, model.config.n_layer, model.config.n_head, "mk-pad")
    try:
        batch = mask_views.padded_batch(model.model, sequences, mask_views.pad_id_of(tok))
    except ValueError as err:
        st.error(_("The model cannot run this batch: {reason}").format(reason=plain(err)))
        return
    strings = mask_views.batch_tokens(tok, sequences)
    title = _("One padded batch · {model}, layer {layer}, head {head}").format(
        model=model.name, layer=layer, head=head
    )
    widgets.chart(figs.padded_batch_figure(batch, strings, layer, head, title))
    st.dataframe(figs.difference_table(batch), hide_index=True)
    st.caption(figs.padding_caption(batch, layer, head))


# ---------------------------------------------------------------------------------------------
# Information leakage, trained in the background
# ---------------------------------------------------------------------------------------------


def start_leakage(text: str, source: str, steps: int, seed: int) -> None:
    try:
        experiments.check_text(text)
    except ValueError as err:
        st.error(
            _("This text cannot be used: {reason}. Paste a longer text.").format(reason=plain(err))
        )
        return
    st.session_state[RUN_KEY] = dict(
        source=CORPORA[source], corpus=source, chars=len(text), steps=steps, seed=seed
    )
    # the job calls leakage_experiment(text, steps, seed, report)
    widgets.start_job(
        JOB_KEY, partial(experiments.leakage_experiment, text, steps, seed), name="leakage"
    )


def show_result(result: experiments.ExperimentResult) -> None:
    st.markdown(
        _("**Samples.** Both models continue the same prompt, the text's first characters:")
    )
    widgets.code(result.prompt, wrap=True)
    for column, variant in zip(st.columns(len(result.variants)), result.variants, strict=True):
        with column:
            st.markdown(f"**{figs.variant_name(variant.label).capitalize()}**")
            widgets.code(variant.sample or "", wrap=True)
    st.dataframe(figs.results_table(result), hide_index=True)
    summary = figs.leakage_summary(result)
    if summary is not None:
        st.caption(summary)
    else:
        st.info(_("The run was stopped before both models had trained; start it again to compare."))


def show_leakage(snap: Snapshot) -> None:
    histories = experiments.histories_by_variant(snap.updates)
    if histories:
        title = _("Training loss with and without the causal mask")
        widgets.chart(figs.loss_curves_figure(histories, title), key="mk-leak-curves")
        run = st.session_state.get(RUN_KEY)
        if run is not None and run.get("corpus") in CORPORA:
            run = dict(run, source=corpus_name(run["corpus"]))
        st.caption(figs.progress_caption(histories, run))
    if snap.result is not None:
        show_result(snap.result)
    elif snap.status == STOPPED:
        st.info(_("Stopped. Change the settings if you like and train again."))


def corpus_name(source: str) -> str:
    """A text to train on, named in the session's language (the menu keeps ``CORPORA``, which
    its links hold)."""
    names = {
        "stories": _("Generated stories"),
        "lessons": _("The text of these lessons"),
        "own": _("Your own text"),
    }
    return names.get(source, CORPORA.get(source, source))


def show_leakage_controls() -> None:
    source = widgets.labelled_radio(_("Text to train on"), CORPORA, "mk-corpus")
    text = widgets.corpus_input("mk-own") if source == "own" else builtin_corpus(source)
    if text is not None:
        st.caption(ngettext("{n} character", "{n} characters", len(text)) + ".")
    top = min(MAX_STEPS, widgets.server_limits().max_steps)
    steps_column, seed_column, button_column = st.columns(3, vertical_alignment="bottom")
    label, first = _("Training steps per model"), min(DEFAULT_STEPS, top)
    steps = steps_column.number_input(label, MIN_STEPS, top, first, 50, key="mk-steps", bind=BIND)
    with seed_column:
        seed = widgets.seed_control(key="mk-seed")
    start = button_column.button(
        _("Train both models"), type="primary", disabled=text is None, key="mk-start"
    )
    if start and text is not None:
        start_leakage(text, source, int(steps), seed)


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

lesson = widgets.lesson_header(SLUG)

strip = st.container()  # the input strip: rows that wrap, not stack, on a phone
row = strip.container(horizontal=True)
kind = widgets.labelled_radio(_("Kind of mask"), KIND_NAMES, "mk-kind", row)
with row.container(width=MODEL_WIDTH):
    loaded = widgets.model_picker(
        _("Model (self-attention)"), "gpt", key="mk-model", default=DEFAULT_MODEL
    )
sentences = strip.container(horizontal=True, vertical_alignment="bottom")
first = second = None
texts: list[str | None] = [None, None]
if loaded is not None:
    limit = mask_views.token_room(loaded.model, MAX_TOKENS)
    with sentences:
        texts[0] = widgets.sentence_input(*sentence_fields()[0], loaded.tokenizer, limit)
        if kind == "padding":  # the second sentence goes with the first into the batch
            texts[1] = widgets.sentence_input(*sentence_fields()[1], loaded.tokenizer, limit)
    first, second = (read_ids(mask_views.sentence_ids, loaded.tokenizer, t, limit) for t in texts)
show_kind(kind, loaded, first, second, strip, (row, sentences))

widgets.lesson_section(lesson, "setup")
if first is not None:
    st.html(token_chips(loaded.tokenizer.display_tokens(first)))
widgets.lesson_section(lesson, "kinds")
widgets.lesson_section(lesson, f"kind-{kind}")

widgets.lesson_section(lesson, "padding")
if loaded is not None and kind != "padding":  # else it is in the input strip
    texts[1] = widgets.sentence_input(*sentence_fields()[1], loaded.tokenizer, limit)
show_padding(loaded, texts)

widgets.lesson_section(lesson, "leakage", mask_views.leakage_values())
show_leakage_controls()
widgets.job_progress(JOB_KEY, show_leakage)

widgets.lesson_section(lesson, "takeaways")
questions.ask(lesson, loaded=loaded, first=first, texts=texts)
