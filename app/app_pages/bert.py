"""BERT and masked language modelling: input sum, masking ledger, a BERT filling in blanks."""

from __future__ import annotations

import questions
import streamlit as st
import widgets
from widgets import BIND

from tinyformers.course.bert import (
    DEFAULT_A,
    DEFAULT_B,
    MAX_DRAWS,
    MODEL,
    BlankGuess,
    LedgerStatistics,
    attention_from,
    embedding_breakdown,
    epoch_ledgers,
    fill_in_blanks,
    ledger_statistics,
    masking_draws,
    ordinary_positions,
    pair_token_limits,
    segment_row_lengths,
    suggest_blank,
    typed_blanks,
)
from tinyformers.figures import bert as figs
from tinyformers.figures.bertviz import head_view_html
from tinyformers.hub.registry import LoadedModel, model_key
from tinyformers.i18n import _
from tinyformers.text.inputs import bert_inputs, read_typed_text
from tinyformers.text.masking import MaskingRates
from tinyformers.trace import Trace

SLUG = "bert"
DEFAULT_LEDGER = "the friendly dogs that Mia sees run home ."
DEFAULT_FILL = "the lion that the girls fix cries ."
SAMPLE_CHOICES = (100, 1_000, 10_000)
MAX_EPOCHS = 12
MAX_BLANKS = 4
MAX_K = 10
DRAW_KEY = "bert-draw"


@st.cache_data(max_entries=16, show_spinner=False)
def statistics(
    key: str,
    _loaded: LoadedModel,
    ids: tuple[int, ...],
    rates: tuple[float, float, float],
    options: tuple[int, int, bool],  # seed, samples, whole-word masking
) -> LedgerStatistics:
    return ledger_statistics(list(ids), _loaded.tokenizer, MaskingRates(*rates), *options)


@st.cache_data(max_entries=16, show_spinner=False)
def guesses(
    key: str, _loaded: LoadedModel, ids: tuple[int, ...], positions: tuple[int, ...]
) -> tuple[Trace, list[BlankGuess]]:
    """The model's top ``MAX_K`` guesses for each blank (the page shows the first k)."""
    return fill_in_blanks(_loaded.model, _loaded.tokenizer, list(ids), list(positions), MAX_K)


@st.cache_data(max_entries=8, show_spinner=False)
def head_view(key: str, _loaded: LoadedModel, ids: tuple, positions: tuple, layer) -> str:
    trace = guesses(key, _loaded, ids, positions)[0]
    return head_view_html(trace.attentions, trace.tokens, layer=layer)


def input_section(loaded: LoadedModel) -> tuple[str, str] | None:
    """[CLS] A [SEP] B [SEP]: chips, the three rows and their sum, and their lengths. Returns
    the sentences A and B when both are there."""
    max_a, max_b = pair_token_limits(loaded.config.block_size)
    left, right = st.columns(2)
    with left:
        text_a = widgets.sentence_input(
            _("Sentence A"), DEFAULT_A, "bert-a", loaded.tokenizer, max_a
        )
    with right:
        text_b = widgets.sentence_input(
            _("Sentence B"), DEFAULT_B, "bert-b", loaded.tokenizer, max_b
        )
    if text_a is None or not loaded.tokenizer.encode(text_a):
        st.info(_("Type sentence A to see BERT's input."))
        return None
    if text_b is not None and not loaded.tokenizer.encode(text_b):
        text_b = None
    try:
        breakdown = embedding_breakdown(loaded.model, loaded.tokenizer, text_a, text_b)
    except ValueError as err:
        st.error(str(err))
        return None
    normalized = breakdown.after_layer_norm
    st.html(figs.pair_chips(breakdown.tokens, breakdown.segments))
    widgets.chart(figs.embedding_sum_figure(breakdown, normalized))
    widgets.chart(figs.embedding_norms_figure(breakdown))
    lengths = breakdown.mean_lengths()
    st.caption(figs.embedding_caption(breakdown, lengths, segment_row_lengths(loaded.model)))
    return None if text_b is None else (text_a, text_b)


def masking_settings() -> tuple[MaskingRates | None, int, bool]:
    """The controls shared by the masking sections: rates, seed and whole-word masking."""
    first, second, third = st.columns(3)
    select = first.slider(
        _("Selected: {percent} of ordinary tokens").format(percent="%"),
        0,
        100,
        15,
        key="bert-select",
        bind=BIND,
    )
    mask = second.slider(
        _("→ [MASK]: {percent} of the selected").format(percent="%"),
        0,
        100,
        80,
        key="bert-mask",
        bind=BIND,
    )
    random = third.slider(
        _("→ random token: {percent} of the selected").format(percent="%"),
        0,
        100,
        10,
        key="bert-random",
        bind=BIND,
    )
    rest, toggle_column, seed_column = st.columns(3, vertical_alignment="center")
    try:
        rates = MaskingRates(select / 100, mask / 100, random / 100)
        rest.caption(
            _("→ unchanged: {share} of the selected").format(share=f"{rates.unchanged_rate:.0%}")
        )
    except ValueError as err:
        rest.error(_("{problem}. Lower one of the two.").format(problem=err))
        rates = None
    with toggle_column:
        whole_word = st.toggle(_("Whole-word masking"), key="bert-whole-word", bind=BIND)
    with seed_column:
        seed = widgets.seed_control(key="bert-seed")
    return rates, seed, whole_word


def ledger_sentence(loaded: LoadedModel) -> list[int] | None:
    text = widgets.sentence_input(
        _("Sentence to mask"),
        DEFAULT_LEDGER,
        "bert-ledger-text",
        loaded.tokenizer,
        max_tokens=loaded.config.block_size - 2,
    )
    if text is None:
        return None
    ids = bert_inputs(loaded.tokenizer, text)[0]
    return ids


def ledger_section(
    loaded: LoadedModel, ids: list[int], rates: MaskingRates, seed: int, whole_word: bool
) -> None:
    draw = widgets.draw_counter(DRAW_KEY, MAX_DRAWS - 1, "bert-resample", "bert-first-draw")
    ledger = masking_draws(ids, loaded.tokenizer, rates, seed, draw + 1, whole_word)[-1]
    st.html(figs.ledger_html(ledger))
    st.caption(figs.ledger_caption(ledger, seed, draw + 1))
    if ledger.n_ordinary == 0:
        st.info(figs.all_special())


def resample_section(
    loaded: LoadedModel, ids: list[int], rates: MaskingRates, seed: int, whole_word: bool
) -> None:
    samples = st.radio(
        _("Number of draws"),
        SAMPLE_CHOICES,
        index=len(SAMPLE_CHOICES) - 1,
        format_func="{:,}".format,
        horizontal=True,
        key="bert-samples",
        bind=BIND,
    )
    rate_values = (rates.select_rate, rates.mask_rate, rates.random_rate)
    options = (seed, samples, whole_word)
    stats = statistics(model_key(loaded), loaded, tuple(ids), rate_values, options)
    if stats.eligible == 0:
        st.info(_("This sentence has no ordinary token to select, so there is nothing to count."))
        return
    widgets.chart(figs.resample_figure(stats, rates))
    st.caption(figs.resample_caption(stats, rates, seed))


def dynamic_section(
    loaded: LoadedModel, ids: list[int], rates: MaskingRates, seed: int, whole_word: bool
) -> None:
    epochs = st.number_input(_("Epochs"), 1, MAX_EPOCHS, 4, key="bert-epochs", bind=BIND)
    static = epoch_ledgers(ids, loaded.tokenizer, rates, seed, epochs, False, whole_word)
    dynamic = epoch_ledgers(ids, loaded.tokenizer, rates, seed, epochs, True, whole_word)
    widgets.chart(figs.epochs_figure(static, dynamic))
    st.caption(figs.epochs_caption(static, dynamic, seed))


def blank_positions(tokens: list[str], ids: list[int], typed: list[int]) -> list[int]:
    """Typed ``[MASK]`` positions, plus the ones chosen in a multiselect that follows the
    sentence as it changes."""
    suggested = suggest_blank(tokens)
    chosen = widgets.choose_positions(
        _("Positions to mask"),
        tokens,
        key="bert-blanks",
        default=[] if typed or suggested is None else [suggested],
        allowed=ordinary_positions(ids),
        max_selections=MAX_BLANKS - len(typed),
        help=_("Or type [MASK] in the sentence."),
    )
    return sorted(set(typed) | set(chosen))


def fill_in_strip() -> tuple[LoadedModel | None, tuple[list[int], list[int]] | None]:
    """The input strip and the lesson's first figure: a model, a sentence, the blanks in it and
    the model's guesses for them. Returns the model and (ids, positions) to guess, if any."""
    with st.container():
        model_column, text_column = st.columns([1, 3])
        with model_column:
            loaded = widgets.model_picker(
                _("Model (BERT)"), "bert", key="bert-model", default=MODEL
            )
        if loaded is None:
            return None, None
        tokenizer = loaded.tokenizer
        with text_column:
            text = widgets.sentence_input(
                _("Sentence for the model (you may type [MASK])"),
                DEFAULT_FILL,
                "bert-fill-text",
                tokenizer,
                max_tokens=loaded.config.block_size - 2,
            )
        if text is None:
            return loaded, None
        typed = read_typed_text(tokenizer, "bert", text, loaded.config.block_size)
        ids, tokens = typed.ids, tokenizer.display_tokens(typed.ids)
        for note in typed.notes:
            st.caption(note)
        typed_masks = typed_blanks(ids, tokenizer.mask_id)[:MAX_BLANKS]
        if not ordinary_positions(ids) and not typed_masks:
            st.info(figs.all_special())
            return loaded, None
        left, right = st.columns([3, 1])
        with left:
            positions = blank_positions(tokens, ids, typed_masks)
        with right:
            k = st.slider(_("Top k"), 1, MAX_K, 5, key="bert-k", bind=BIND)
    if not positions:
        st.info(_("Choose at least one position to mask, or type [MASK] in the sentence."))
        return loaded, None
    blank_guesses = guesses(model_key(loaded), loaded, tuple(ids), tuple(positions))[1]
    found = [guess.top(k) for guess in blank_guesses]
    widgets.chart(figs.predictions_figure(found))
    st.caption(figs.guesses_caption(found))
    return loaded, (ids, positions)


def attention_section(loaded: LoadedModel, ids: list[int], positions: list[int]) -> None:
    trace = guesses(model_key(loaded), loaded, tuple(ids), tuple(positions))[0]
    follow = positions[0]
    if len(positions) > 1:
        follow = st.selectbox(_("Blank to follow"), positions, key="bert-follow", bind=BIND)
    weights = attention_from(trace, follow)
    widgets.chart(figs.attention_from_figure(weights, trace.tokens, follow))
    card = loaded.metadata.get("subject_head") or {}
    layer = card.get("subject_head_layer")
    if layer is not None:
        st.caption(figs.subject_head_caption(card))
    widgets.attention_view(
        head_view(model_key(loaded), loaded, tuple(ids), tuple(positions), layer),
        170 + 22 * len(trace.tokens),
    )


lesson = widgets.lesson_header(SLUG)
model, blanks = fill_in_strip()
if model is None:
    st.stop()

widgets.lesson_section(lesson, "input")
pair = input_section(model)
widgets.lesson_section(lesson, "nsp")
widgets.lesson_section(lesson, "objective")

widgets.lesson_section(lesson, "ledger")
rates, seed, whole_word = masking_settings()
sentence_ids = ledger_sentence(model)
ready = rates is not None and sentence_ids is not None
if rates is None:
    st.error(_("The masking rates above are impossible; fix them to see the ledger."))
if ready:
    ledger_section(model, sentence_ids, rates, seed, whole_word)
widgets.lesson_section(lesson, "resamples")
if ready:
    resample_section(model, sentence_ids, rates, seed, whole_word)
widgets.lesson_section(lesson, "whole-word")
widgets.lesson_section(lesson, "dynamic")
if ready:
    dynamic_section(model, sentence_ids, rates, seed, whole_word)

widgets.lesson_section(lesson, "fill-in")
widgets.lesson_section(lesson, "attention")
if blanks is not None:
    attention_section(model, *blanks)
else:
    st.info(_("Choose a sentence and a blank at the top of the page to see where it looks."))

widgets.published_models(lesson, "bert")
ledger = (sentence_ids, rates, seed, whole_word) if ready else None
questions.ask(lesson, loaded=model, pair=pair, blanks=blanks, ledger=ledger)
