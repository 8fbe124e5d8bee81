"""Attention masks: causal, padding, prefix-LM and cross-attention, drawn on one head of a real
model; a padded batch that gives the real tokens the same outputs as a run alone; and a tiny GPT
trained with and without its causal mask, in the background."""

import math
from functools import partial

import pandas as pd
import streamlit as st
import torch
from widgets import (
    corpus_input,
    job_progress,
    lesson_header,
    lesson_section,
    model_picker,
    quiz,
    seed_control,
    sentence_input,
    server_limits,
    shipped_model,
    start_job,
)

from tinyformers.course import masks as mask_views
from tinyformers.figures import masks as figs
from tinyformers.figures.common import token_chips
from tinyformers.hub.registry import LoadedModel
from tinyformers.text.corpora import generate_corpus, lesson_corpus
from tinyformers.text.inputs import model_input_ids
from tinyformers.training.experiments import (
    CAUSAL,
    LEAKY,
    MAX_STEPS,
    MIN_STEPS,
    ExperimentResult,
    check_text,
    histories_by_variant,
    leakage_experiment,
)
from tinyformers.training.jobs import STOPPED, Snapshot

SLUG = "masks"
DEFAULT_MODEL = "gpt-stories"
DATE_MODEL = "seq2seq-date"
BERT_MODEL = "bert-stories"
DEFAULT_SENTENCE = "the old dog sees Mia . she runs ."
DEFAULT_SECOND = "Tom runs ."
DEFAULT_DATE = "12 March 2021"
DEFAULT_SECOND_DATE = "5 May 1999"
MAX_TOKENS = 24
KIND_NAMES = {
    "causal": "Causal",
    "padding": "Padding",
    "prefix": "Prefix-LM",
    "cross": "Cross-attention",
}
CORPORA = {
    "stories": "Generated stories",
    "lessons": "The text of these lessons",
    "own": "Your own text",
}
STORIES = 200  # stories in the built-in corpus (about 18 000 characters)
DEFAULT_STEPS = 300
JOB_KEY = "mk-leak-job"
RUN_KEY = "mk-leak-run"


@st.cache_data(max_entries=2, show_spinner=False)
def builtin_corpus(name: str) -> str:
    return generate_corpus(STORIES, seed=0) if name == "stories" else lesson_corpus()


@st.cache_data(max_entries=32, show_spinner=False)
def date_decoder_input(source: str) -> list[int]:
    """[BOS] and the date model's greedy output for ``source``: what its decoder reads."""
    loaded = shipped_model(DATE_MODEL)
    tok = loaded.tokenizer
    src = torch.tensor([tok.encode(source)])
    output = loaded.model.generate_greedy(src, tok.bos_id, tok.eos_id)
    return [tok.bos_id, *output[0].tolist()]


# ---------------------------------------------------------------------------------------------
# Small widgets
# ---------------------------------------------------------------------------------------------


def index_choice(label: str, count: int, key: str) -> int:
    """A selectbox over 0 .. count-1 that falls back to 0 when the range shrinks."""
    if st.session_state.get(key, 0) >= count:
        st.session_state[key] = 0
    return st.selectbox(label, list(range(count)), key=key)


def layer_and_head(n_layer: int, n_head: int, key: str, what: str = "Layer") -> tuple[int, int]:
    layer_column, head_column = st.columns(2)
    with layer_column:
        layer = index_choice(what, n_layer, f"{key}-layer")
    with head_column:
        head = index_choice("Head", n_head, f"{key}-head")
    return layer, head


def padded_row(lengths: list[int]) -> int:
    """The sequence that gets padding: the shortest (the first if all are equally long)."""
    return lengths.index(min(lengths))


def pad_id_of(tokenizer) -> int:
    # Any id works for padding: the attention mask hides it. GPT-2's tokenizer has no [PAD].
    return tokenizer.pad_id if tokenizer.pad_id is not None else 0


# ---------------------------------------------------------------------------------------------
# Sentences as token ids
# ---------------------------------------------------------------------------------------------


def gpt_ids(loaded: LoadedModel, text: str | None) -> list[int] | None:
    if text is None:
        return None
    ids = loaded.tokenizer.encode(text)[: room(loaded)]
    if not ids:
        st.warning("The text has no tokens for this model; type a few words.")
        return None
    return ids


def room(loaded: LoadedModel) -> int:
    return min(MAX_TOKENS, loaded.config.block_size)


def bert_ids(loaded: LoadedModel, text: str) -> list[int]:
    return model_input_ids(loaded.tokenizer, "bert", text, room(loaded))


def date_ids(text: str | None, what: str) -> list[int] | None:
    """The date model's ids for ``text``, or None with a message if it cannot read it."""
    if text is None:
        return None
    tok = shipped_model(DATE_MODEL).tokenizer
    ids = tok.encode(text.strip())
    if not ids:
        st.warning(f"The {what} is empty: type a date such as {DEFAULT_DATE}.")
        return None
    if tok.unk_id in ids:
        st.error(
            f"The {what} has characters the date model has never seen: it knows only the "
            f"digits, letters and spaces of dates such as {DEFAULT_DATE}."
        )
        return None
    return ids


# ---------------------------------------------------------------------------------------------
# The kinds of mask
# ---------------------------------------------------------------------------------------------


def self_attention_view(kind, loaded, first, second, layer, head, prefix_len):
    """The view for a causal, padding or prefix mask, or None with a message."""
    tok, model = loaded.tokenizer, loaded.model
    tokens = tok.display_tokens(first)
    if kind == "causal":
        return mask_views.causal_view(model, first, tokens, layer, head)
    if kind == "prefix":
        return mask_views.prefix_view(model, first, tokens, layer, head, prefix_len)
    if second is None:
        st.info("Type a second sentence above: padding needs a batch of two.")
        return None
    batch = [first, second]
    row = padded_row([len(ids) for ids in batch])
    strings = [tok.display_tokens(ids) for ids in batch]
    return mask_views.padding_view(model, batch, strings, layer, head, row, pad_id_of(tok))


def cross_view(layer: int, head: int):
    loaded = shipped_model(DATE_MODEL)
    tok = loaded.tokenizer
    limit = loaded.config.block_size
    source_column, second_column = st.columns(2)
    with source_column:
        first = sentence_input("Date for the encoder", DEFAULT_DATE, "mk-date", tok, limit)
    with second_column:
        second = sentence_input(
            "A second, shorter date in the same batch", DEFAULT_SECOND_DATE, "mk-date-2", tok, limit
        )
    sources = [date_ids(first, "date"), date_ids(second, "second date")]
    if any(ids is None for ids in sources):
        return None
    targets = [date_decoder_input(tok.decode(ids)) for ids in sources]
    row = padded_row([len(ids) for ids in sources])
    return mask_views.cross_view(
        loaded.model,
        sources,
        targets,
        [tok.display_tokens(ids) for ids in sources],
        [tok.display_tokens(ids) for ids in targets],
        layer,
        head,
        row,
        pad_id_of(tok),
    )


def view_caption(view: mask_views.MaskView, extra: str) -> str:
    total = view.mask.numel()
    row_sums = view.weights.sum(dim=-1)
    seen = view.mask.any(dim=-1)
    deviation = (row_sums[seen] - 1).abs().max().item()
    largest_masked = view.weights[~view.mask].abs().max().item() if view.n_masked else 0.0
    return (
        f"{extra}{view.n_masked} of {total} (query, key) pairs are masked: their score becomes "
        f"−∞, and their weight is {largest_masked:g}. Every row of weights sums to 1 (largest "
        f"deviation {deviation:.1e}). The weights computed here from the head's queries and keys "
        f"differ from the ones the model returned by at most {view.max_difference():.1e}."
    )


def kind_details(view: mask_views.MaskView, kind: str, prefix_len: int) -> str:
    t_q, t_k = view.mask.shape
    if kind == "prefix" and prefix_len == 0:
        return "Prefix length 0: the same as the causal mask. "
    if kind == "prefix":
        return f"Prefix: positions 0 to {prefix_len - 1} ({prefix_len} of {t_q} tokens). "
    if kind in ("padding", "cross"):
        pads = view.key_tokens.count(mask_views.PAD_TOKEN)
        keys = "source tokens" if kind == "cross" else "tokens"
        return f"This sequence has {t_k - pads} real {keys} and {pads} [PAD] after them. "
    return ""


def kind_title(kind: str, model_name: str, layer: int, head: int) -> str:
    where = "decoder layer" if kind == "cross" else "layer"
    return f"{KIND_NAMES[kind]} mask · {model_name}, {where} {layer}, head {head}"


def show_kinds(lesson, loaded: LoadedModel | None, first, second) -> None:
    kind = st.radio(
        "Kind of mask", list(KIND_NAMES), format_func=KIND_NAMES.get, horizontal=True, key="mk-kind"
    )
    lesson_section(lesson, f"kind-{kind}")
    if kind == "cross":
        date_model = shipped_model(DATE_MODEL)
        layer, head = layer_and_head(
            date_model.config.n_decoder_layer, date_model.config.n_head, "mk-cross", "Decoder layer"
        )
        name = DATE_MODEL
        prefix_len = 0
        try:
            view = cross_view(layer, head)
        except ValueError as err:
            st.error(f"The date model cannot read this: {err}")
            return
    else:
        if loaded is None or first is None:
            st.info("Pick a model and type a sentence above to see this mask on a real head.")
            return
        layer, head = layer_and_head(loaded.config.n_layer, loaded.config.n_head, "mk-self")
        prefix_len = 0
        if kind == "prefix":
            prefix_len = st.slider(
                "Prefix length (tokens that see each other both ways)",
                0,
                len(first),
                min(3, len(first)),
                key="mk-prefix",
            )
        name = loaded.name
        try:
            view = self_attention_view(kind, loaded, first, second, layer, head, prefix_len)
        except ValueError as err:
            st.error(f"The model cannot show this: {err}")
            return
    if view is None:
        return
    st.plotly_chart(figs.mask_figure(view, kind_title(kind, name, layer, head)))
    st.caption(view_caption(view, kind_details(view, kind, prefix_len)))


# ---------------------------------------------------------------------------------------------
# A padded batch
# ---------------------------------------------------------------------------------------------


def difference_table(batch: mask_views.PaddedBatch) -> pd.DataFrame:
    length = batch.ids.size(1)
    return pd.DataFrame(
        {
            "sequence": [row + 1 for row in range(len(batch.lengths))],
            "real tokens": batch.lengths,
            "[PAD] added": [length - n for n in batch.lengths],
            "max |difference|, with the padding mask": [f"{d:.1e}" for d in batch.differences],
            "max |difference|, without it": [f"{d:.1e}" for d in batch.differences_without_mask],
        }
    )


def show_padding(loaded: LoadedModel | None, texts: list[str | None]) -> None:
    if any(text is None for text in texts):
        st.info("Type two sentences above to build a padded batch.")
        return
    choices = ([loaded.name] if loaded is not None else []) + [BERT_MODEL]
    name = st.radio(
        "Model for the batch",
        choices,
        horizontal=True,
        key="mk-pad-model",
        help="GPT is causal; BERT reads in both directions.",
    )
    model = loaded if loaded is not None and name == loaded.name else shipped_model(BERT_MODEL)
    if model.family == "bert":
        sequences = [bert_ids(model, text) for text in texts]
    else:
        sequences = [gpt_ids(model, text) for text in texts]
        if any(ids is None for ids in sequences):
            return
    layer, head = layer_and_head(model.config.n_layer, model.config.n_head, "mk-pad")
    tok = model.tokenizer
    try:
        batch = mask_views.padded_batch(model.model, sequences, pad_id_of(tok))
    except ValueError as err:
        st.error(f"The model cannot run this batch: {err}")
        return
    length = batch.ids.size(1)
    strings = [
        tok.display_tokens(ids) + [mask_views.PAD_TOKEN] * (length - len(ids)) for ids in sequences
    ]
    title = f"One padded batch · {model.name}, layer {layer}, head {head}"
    st.plotly_chart(figs.padded_batch_figure(batch, strings, layer, head, title))
    st.dataframe(difference_table(batch), hide_index=True)
    pad_weight = max(
        batch.weights(layer, head, row)[:, n:].abs().max().item() if n < length else 0.0
        for row, n in enumerate(batch.lengths)
    )
    st.caption(
        f"Largest weight on a [PAD] key in this head: {pad_weight:g}. Each real token's output "
        f"(the last hidden state) in the batch differs from its output when its sentence runs "
        f"alone by at most {max(batch.differences):.1e} with the padding mask and "
        f"{max(batch.differences_without_mask):.1e} without it."
    )


# ---------------------------------------------------------------------------------------------
# Information leakage, trained in the background
# ---------------------------------------------------------------------------------------------


def start_leakage(text: str, source: str, steps: int, seed: int) -> None:
    try:
        check_text(text)
    except ValueError as err:
        st.error(f"This text cannot be used: {err}. Paste a longer text.")
        return
    st.session_state[RUN_KEY] = dict(
        source=CORPORA[source], chars=len(text), steps=steps, seed=seed
    )
    start_job(JOB_KEY, partial(leakage_experiment, text, steps, seed), name="leakage")


def progress_caption(histories: dict, run: dict | None) -> str:
    done = "; ".join(f"{label}, {history[-1].step}" for label, history in histories.items())
    about = ""
    if run is not None:
        about = (
            f"Trained on {run['source'].lower()} ({run['chars']:,} characters), "
            f"{run['steps']} steps per model, seed {run['seed']}. "
        )
    return f"{about}Steps done: {done}."


def results_table(result: ExperimentResult) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": [v.label for v in result.variants],
            "final training loss": [v.final_train_loss for v in result.variants],
            "validation loss": [v.final_val_loss for v in result.variants],
            "validation loss with the mask on": [v.masked_val_loss for v in result.variants],
        }
    ).round(3)


def leakage_summary(result: ExperimentResult) -> str:
    causal, leaky = result.variant(CAUSAL), result.variant(LEAKY)
    return (
        f"Training loss at the end: {leaky.final_train_loss:.3f} without the mask, "
        f"{causal.final_train_loss:.3f} with it. The leaky weights, judged with the mask "
        f"switched on (as in generation, where the next character is not there to read), score "
        f"a validation loss of {leaky.masked_val_loss:.3f}, against "
        f"{causal.masked_val_loss:.3f} for the model trained with the mask. Guessing uniformly "
        f"among the {result.tokenizer.vocab_size} tokens would score "
        f"ln {result.tokenizer.vocab_size} = {math.log(result.tokenizer.vocab_size):.3f}."
    )


def show_result(result: ExperimentResult) -> None:
    st.markdown("**Samples.** Both models continue the same prompt, the text's first characters:")
    st.code(result.prompt, language=None, wrap_lines=True)
    columns = st.columns(len(result.variants))
    for column, variant in zip(columns, result.variants, strict=True):
        with column:
            st.markdown(f"**{variant.label.capitalize()}**")
            st.code(variant.sample or "", language=None, wrap_lines=True)
    st.dataframe(results_table(result), hide_index=True)
    labels = {v.label for v in result.variants}
    if {CAUSAL, LEAKY} <= labels:
        st.caption(leakage_summary(result))
    else:
        st.info("The run was stopped before both models had trained; start it again to compare.")


def show_leakage(snap: Snapshot) -> None:
    histories = histories_by_variant(snap.updates)
    if histories:
        title = "Training loss with and without the causal mask"
        st.plotly_chart(figs.loss_curves_figure(histories, title), key="mk-leak-curves")
        st.caption(progress_caption(histories, st.session_state.get(RUN_KEY)))
    if snap.result is not None:
        show_result(snap.result)
    elif snap.status == STOPPED:
        st.info("Stopped. Change the settings if you like and train again.")


def show_leakage_controls() -> None:
    source = st.radio(
        "Text to train on", list(CORPORA), format_func=CORPORA.get, horizontal=True, key="mk-corpus"
    )
    text = corpus_input("mk-own") if source == "own" else builtin_corpus(source)
    if text is not None:
        st.caption(f"{len(text):,} characters.")
    top = min(MAX_STEPS, server_limits().max_steps)
    steps_column, seed_column, button_column = st.columns(3, vertical_alignment="bottom")
    with steps_column:
        steps = st.number_input(
            "Training steps per model", MIN_STEPS, top, min(DEFAULT_STEPS, top), 50, key="mk-steps"
        )
    with seed_column:
        seed = seed_control(key="mk-seed")
    with button_column:
        start = st.button(
            "Train both models", type="primary", disabled=text is None, key="mk-start"
        )
    if start and text is not None:
        start_leakage(text, source, int(steps), seed)


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

lesson = lesson_header(SLUG)

with st.sidebar:
    st.subheader("Settings for this lesson")
    loaded = model_picker("Model (self-attention)", "gpt", key="mk-model", default=DEFAULT_MODEL)

lesson_section(lesson, "setup")
first = second = None
texts: list[str | None] = [None, None]
if loaded is not None:
    limit = room(loaded)
    texts = [
        sentence_input("Your sentence", DEFAULT_SENTENCE, "mk-sentence", loaded.tokenizer, limit),
        sentence_input(
            "A second sentence of another length, for padding",
            DEFAULT_SECOND,
            "mk-second",
            loaded.tokenizer,
            limit,
        ),
    ]
    first, second = gpt_ids(loaded, texts[0]), gpt_ids(loaded, texts[1])
    if first is not None:
        st.html(token_chips(loaded.tokenizer.display_tokens(first)))

lesson_section(lesson, "kinds")
show_kinds(lesson, loaded, first, second)

lesson_section(lesson, "padding")
show_padding(loaded, texts)

lesson_section(lesson, "leakage")
show_leakage_controls()
job_progress(JOB_KEY, show_leakage)

lesson_section(lesson, "takeaways")
quiz(lesson)
