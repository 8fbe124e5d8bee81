"""Tokenization and BPE: train byte-level BPE, replay its merges, compare three tokenizers."""

from __future__ import annotations

import questions
import streamlit as st
import widgets
from widgets import BIND, Jump, plain

from tinyformers.course.tokenization import (
    BASE_VOCAB_SIZE,
    DEFAULT_VOCAB,
    STORIES,
    MergeStep,
    TrainedBPE,
    char_bytes,
    comparison_tokenizers,
    compression_curve,
    labelled_tokenizers,
    next_tie,
    script_tokenizers,
    script_totals,
    token_counts,
    tokenized_rows,
    train_and_replay,
    train_russian_bpe,
    units_values,
    word_occurrences,
)
from tinyformers.figures import tokenization as fig
from tinyformers.hub.registry import shipped_names
from tinyformers.i18n import _, ngettext
from tinyformers.text.corpora import generate_corpus, lesson_corpus
from tinyformers.text.tokenizers import Tokenizer

SLUG = "tokenization"
VOCAB_MAX = 5000
START_STEP = 10
MAX_SENTENCE_CHARS = 300
MAX_WORD_CHARS = 60
STEP_KEY = "tok-step"
SCRIPT_SENTENCE = "Хитрая лиса здоровается с Мией, и та смеётся. 🦊"
SHIPPED_TOKENIZERS = ("gpt-stories", "bert-stories")


def sources() -> dict[str, str]:
    """The corpus choices: the URL keeps the key, the page shows the label."""
    return {
        "stories": _("Generated stories"),
        "lessons": _("The lessons' text"),
        "own": _("Your own text"),
    }


@st.cache_data(max_entries=2, show_spinner=False)
def stories_text(n_stories: int) -> str:
    return generate_corpus(n_stories, seed=0)


@st.cache_data(max_entries=2, show_spinner=False)
def lessons_text() -> str:
    return lesson_corpus()


@st.cache_data(max_entries=4, show_spinner=_("Training BPE and replaying its merges…"))
def bpe_and_replay(
    text: str, vocab_size: int
) -> tuple[str, list[MergeStep], dict[str, int], dict[str, str]]:
    """The trained tokenizer as JSON and the rest of ``TrainedBPE``, rebuilt on each run."""
    trained = train_and_replay(text, vocab_size)
    return trained.bpe.to_str(), trained.steps, trained.words, trained.shown


@st.cache_data(max_entries=4, show_spinner=_("Training the character and WordPiece tokenizers…"))
def char_and_wordpiece(text: str, vocab_size: int) -> tuple[str, str]:
    char, wordpiece = comparison_tokenizers(text, vocab_size)
    return char.to_str(), wordpiece.to_str()


@st.cache_data(max_entries=4, show_spinner=_("Training BPE on the Russian lessons…"))
def russian_bpe(vocab_size: int) -> str:
    return train_russian_bpe(vocab_size).to_str()


@st.cache_data(max_entries=8, show_spinner=False)
def compression(bpe_json: str, text: str) -> list[float]:
    return compression_curve(Tokenizer.from_str(bpe_json), text)


# --------------------------------------------------------------------------------------------
# Corpus and training
# --------------------------------------------------------------------------------------------


def chosen_corpus() -> str | None:
    source = widgets.labelled_radio(_("Corpus"), sources(), "tok-source")
    if source == "stories":
        return stories_text(STORIES)
    if source == "lessons":
        try:
            return lessons_text()
        except ValueError as err:
            st.error(str(err))
            return None
    return widgets.corpus_input("tok-corpus")


def train(text: str, vocab_size: int) -> TrainedBPE | None:
    try:
        bpe_json, steps, words, shown = bpe_and_replay(text, vocab_size)
    except ValueError as err:
        st.error(_("Could not train BPE: {reason}").format(reason=plain(err)))
        return None
    return TrainedBPE(text, Tokenizer.from_str(bpe_json), steps, words, shown)


# --------------------------------------------------------------------------------------------
# Merge replay
# --------------------------------------------------------------------------------------------


def step_controls(trained: TrainedBPE) -> int:
    """The merges applied so far (k), with Prev, Next and a jump to the next tie."""
    help_ = _("Jump to the next merge decided by a tie.")
    return widgets.computation_steps(
        _("Merges applied (k)"),
        STEP_KEY,
        trained.n_merges,
        (_("◀ Prev"), "tok-prev"),
        (_("Next ▶"), "tok-next"),
        start=min(START_STEP, trained.n_merges),
        jumps=lambda k: [Jump(_("Next tie ▶▶"), "tok-next-tie", next_tie(trained.steps, k), help_)],
    )


def show_step(trained: TrainedBPE, k: int) -> None:
    if k == 0:
        st.info(_("k = 0: no merge yet. Every word is a sequence of single bytes."))
        return
    step = trained.steps[k - 1]
    pair_col, count_col, vocab_col = st.columns([4, 1, 1])
    with pair_col:
        st.html(fig.merge_step_html(step, trained.shown, trained.bpe.token_to_id(step.token)))
    count_col.metric(_("Count before the merge"), f"{step.count:,}")
    vocab_col.metric(_("Vocabulary size after it"), f"{step.vocab_size:,}")


def show_segmentation(trained: TrainedBPE, k: int) -> None:
    word_col, space_col = st.columns([3, 1], vertical_alignment="bottom")
    with word_col:
        word = widgets.sentence_input(
            _("A word to split"), "jumped", "tok-word", max_chars=MAX_WORD_CHARS
        )
    with space_col:
        leading_space = st.checkbox(_("after a space"), value=True, key="tok-space", bind=BIND)
    if word is None:
        return
    shown, ids = trained.split((" " + word) if leading_space else word, k)
    st.html(fig.comparison_html([(_("With the first {k} merges").format(k=k), shown, ids)]))


def merge_columns() -> dict[str, str]:
    """The merge table's columns (the data keeps the English names) as the page shows them."""
    return {
        "step": _("step"),
        "left": _("left"),
        "right": _("right"),
        "new token": _("new token"),
        "count": _("count"),
        "vocab size": _("vocab size"),
        "won a tie against": _("won a tie against"),
    }


def show_replay(trained: TrainedBPE) -> int:
    if trained.n_merges == 0:
        st.info(_("This tokenizer learned no merges: its vocabulary is just the bytes."))
        return 0
    k = step_controls(trained)
    show_step(trained, k)
    show_segmentation(trained, k)
    st.dataframe(
        fig.merge_table(trained.steps, trained.shown, k),
        hide_index=True,
        column_config=merge_columns(),
    )
    return k


def show_ties(trained: TrainedBPE, k: int) -> None:
    if trained.n_merges == 0:
        return
    widgets.chart(fig.merge_counts_figure(trained.steps, k, trained.shown), key="tok-counts")
    st.caption(fig.ties_caption(trained.steps))


# --------------------------------------------------------------------------------------------
# Comparison, compression, unseen words
# --------------------------------------------------------------------------------------------


def tokenizers_for(trained: TrainedBPE, vocab_size: int) -> dict[str, Tokenizer] | None:
    try:
        char_json, wordpiece_json = char_and_wordpiece(trained.text, vocab_size)
    except ValueError as err:
        st.error(
            _("Could not train the character and WordPiece tokenizers: {reason}").format(
                reason=plain(err)
            )
        )
        return None
    return labelled_tokenizers(
        Tokenizer.from_str(char_json), trained.bpe, Tokenizer.from_str(wordpiece_json)
    )


def current_step(trained: TrainedBPE) -> int:
    """The merge step the replay below is at (its slider's value), before the slider is drawn."""
    return min(max(st.session_state.get(STEP_KEY, START_STEP), 0), trained.n_merges)


def show_compression(trained: TrainedBPE, k: int, sentence: str | None) -> None:
    bpe_json = trained.bpe.to_str()
    curves = {_("training corpus"): compression(bpe_json, trained.text)}
    if sentence is not None:
        curves[_("your sentence")] = compression(bpe_json, sentence)
    widgets.chart(fig.compression_figure(curves, k), key="tok-compression")
    st.caption(fig.compression_caption(curves, k))


def show_unseen_word(trained: TrainedBPE, toks: dict[str, Tokenizer]) -> None:
    word = widgets.sentence_input(
        _("An invented word"), "unfoxable", "tok-oov", max_chars=MAX_WORD_CHARS
    )
    if word is None:
        return
    seen = word_occurrences(trained.words, word)
    st.caption(
        ngettext(
            "It occurs {n} time in the training corpus as a word of its own.",
            "It occurs {n} times in the training corpus as a word of its own.",
            seen,
        )
    )
    st.html(fig.comparison_html(tokenized_rows(toks, word)))


# --------------------------------------------------------------------------------------------
# Other scripts
# --------------------------------------------------------------------------------------------


def script_comparison(
    corpus: str, toks: dict[str, Tokenizer], vocab_size: int
) -> dict[str, Tokenizer] | None:
    """The page's tokenizers, BPE of the same size trained on Russian text, and the tokenizers
    of the shipped models."""
    try:
        russian = Tokenizer.from_str(russian_bpe(vocab_size))
    except ValueError as err:
        st.error(
            _("Could not train BPE on the Russian lessons: {reason}").format(reason=plain(err))
        )
        return None
    names = [name for name in SHIPPED_TOKENIZERS if name in shipped_names()]
    shipped = {name: widgets.shipped_model(name).tokenizer for name in names}
    return script_tokenizers(corpus, toks, russian, shipped)


def show_scripts(toks: dict[str, Tokenizer] | None, vocab_size: int) -> None:
    """A text's characters with their UTF-8 bytes, then its tokens by each tokenizer."""
    text = widgets.sentence_input(
        _("A text in another script"), SCRIPT_SENTENCE, "tok-script", max_chars=MAX_SENTENCE_CHARS
    )
    if text is None:
        return
    chars = char_bytes(text)
    st.html(fig.char_bytes_html(chars))
    widgets.metric_row(fig.bytes_metrics(chars))
    st.dataframe(fig.script_table(script_totals(chars)), hide_index=True)
    corpus = st.session_state.get("tok-source", "stories")
    compared = script_comparison(corpus, toks, vocab_size) if toks is not None else None
    if compared is None:
        return
    counts = token_counts(compared, text)
    st.dataframe(fig.token_count_table(counts), hide_index=True)
    st.caption(fig.scripts_caption(corpus, counts))
    st.html(fig.comparison_html(tokenized_rows(compared, text)))


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------

current = widgets.lesson_header(SLUG)

# The input strip: your sentence, the corpus and the vocabulary size the tokenizers learn.
with st.container():
    sentence_column, vocab_column = st.columns([3, 2])
    with sentence_column:
        sentence = widgets.sentence_input(
            _("Your sentence"),
            "The clever fox greets Mia, who laughs. 🦊",
            "tok-sentence",
            max_chars=MAX_SENTENCE_CHARS,
        )
    with vocab_column:
        vocab_size = st.number_input(
            _("Vocabulary size (special tokens + 256 bytes + merges)"),
            min_value=BASE_VOCAB_SIZE,
            max_value=VOCAB_MAX,
            value=DEFAULT_VOCAB,
            step=50,
            key="tok-vocab",
            bind=BIND,
        )
    corpus_text = chosen_corpus()
trained = train(corpus_text, int(vocab_size)) if corpus_text is not None else None

# The live figure: how many tokens per character BPE needs as merges are added, then your
# sentence cut by the three tokenizers.
toks = None
if trained is not None:
    show_compression(trained, current_step(trained), sentence)
    toks = tokenizers_for(trained, int(vocab_size))
    if toks is not None and sentence is not None:
        st.html(fig.comparison_html(tokenized_rows(toks, sentence)))
    st.caption(fig.training_caption(trained, int(vocab_size)))

widgets.lesson_section(current, "units", units_values(sentence))
widgets.lesson_section(current, "corpus")

widgets.lesson_section(current, "bpe")
k = show_replay(trained) if trained is not None else 0

widgets.lesson_section(current, "ties")
if trained is not None:
    show_ties(trained, k)

widgets.lesson_section(current, "byte-level")
widgets.lesson_section(current, "scripts")
show_scripts(toks, int(vocab_size))

widgets.lesson_section(current, "compare")
widgets.lesson_section(current, "wordpiece")
widgets.lesson_section(current, "compression")

widgets.lesson_section(current, "oov")
if trained is not None and toks is not None:
    show_unseen_word(trained, toks)

questions.ask(current, trained=trained, sentence=sentence, k=k)
