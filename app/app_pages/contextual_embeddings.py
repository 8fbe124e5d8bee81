"""Static vs contextual embeddings: word2vec's one vector per word against BERT's per layer."""

import questions
import streamlit as st
import torch
import widgets
from widgets import BIND, plain

from tinyformers.course import contextual_embeddings as ctx
from tinyformers.figures import contextual_embeddings as figs
from tinyformers.hub.registry import LoadedModel, model_key
from tinyformers.i18n import _
from tinyformers.text.corpora.user_text import UserTextError, clean_user_text
from tinyformers.training.zoo import stories_text

SLUG = "contextual-embeddings"
DIMS = (8, 16, 32, 64)
BANK_SENTENCES = 300
NEIGHBOURS = 8


@st.cache_data(max_entries=1, show_spinner=False)
def corpus() -> str:
    return stories_text()


@st.cache_data(max_entries=8, show_spinner=_("Training skip-gram on the stories…"))
def static_model(dim: int, window: int, seed: int) -> ctx.StaticEmbeddings:
    """Skip-gram vectors for these settings: the same settings, the same vectors."""
    return ctx.train_skip_gram(corpus(), ctx.SkipGramSettings(dim=dim, window=window, seed=seed))


@st.cache_data(max_entries=4, show_spinner=_("Reading the corpus sentences with the model…"))
def bank(key: str, _loaded: LoadedModel) -> ctx.ContextBank:
    """Every word of the first corpus sentences, read by the model (cached by model)."""
    sentences = ctx.bank_sentences(corpus(), BANK_SENTENCES)
    return ctx.context_bank(_loaded.model, _loaded.tokenizer, sentences)


def sentence_lines(text: str) -> list[str]:
    """The non-empty lines of the box, each checked, with a message for what is left out."""
    if len(text) > widgets.MAX_INPUT_CHARS:
        st.warning(
            _("Your text has {count} characters; only the first {kept} are used.").format(
                count=f"{len(text):,}", kept=f"{widgets.MAX_INPUT_CHARS:,}"
            )
        )
        text = text[: widgets.MAX_INPUT_CHARS]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > ctx.MAX_SENTENCES:
        st.warning(_("Only the first {count} sentences are used.").format(count=ctx.MAX_SENTENCES))
        lines = lines[: ctx.MAX_SENTENCES]
    kept = []
    for line in lines:
        try:
            kept.append(clean_user_text(line))
        except UserTextError as err:
            st.warning(plain(err))
    return kept


lesson = widgets.lesson_header(SLUG)

# ---------------------------------------------------------------------------------------------
# The input strip: the model, the word, the sentences
# ---------------------------------------------------------------------------------------------

with st.container():
    left, right = st.columns([1, 2])
    with left:
        loaded = widgets.model_picker(
            _("Model (BERT)"), "bert", key="ctx-model", default=ctx.DEFAULT_MODEL
        )
        typed_word = widgets.url_text_input(_("Word to follow"), ctx.DEFAULT_WORD, "ctx-word")
    with right:
        text = widgets.url_text_input(
            _("Sentences that contain the word, one per line"),
            "\n".join(ctx.DEFAULT_SENTENCES),
            "ctx-sentences",
            draw=st.text_area,
            height=150,
        )
    word = None
    try:
        word = ctx.check_word(typed_word)
    except ValueError as err:
        st.error(f"{plain(err)}.")
    sentences = sentence_lines(text)
    if not sentences:
        st.error(_("Type at least one sentence, one per line."))

vectors = None
if loaded is not None and word and sentences:
    vectors = ctx.contextual_vectors(loaded.model, loaded.tokenizer, word, sentences)
found = vectors.found if vectors is not None else []
first_screen = st.container()  # the live figure, drawn once the static vectors are trained

# ---------------------------------------------------------------------------------------------
# Static vectors: train skip-gram
# ---------------------------------------------------------------------------------------------

widgets.lesson_section(lesson, "static")
training_text = st.container()
dim_column, window_column, seed_column = st.columns(3)
dim = dim_column.select_slider(_("Vector size"), DIMS, value=32, key="ctx-dim", bind=BIND)
window = window_column.slider(
    _("Window (words on each side)"), 1, 5, 2, key="ctx-window", bind=BIND
)
with seed_column:
    seed = widgets.seed_control(key="ctx-seed")
static = static_model(dim, window, seed)
with training_text:
    widgets.lesson_section(lesson, "training", pairs=static.pairs, steps=len(static.losses))
widgets.chart(figs.loss_chart(static.losses))
st.caption(
    _(
        "{types} word types, {dim} numbers each; loss {first} at the first step, {last} at the "
        "last."
    ).format(
        types=f"{len(static.words):,}",
        dim=static.settings.dim,
        first=f"{static.losses[0]:.3f}",
        last=f"{static.losses[-1]:.3f}",
    )
)

with first_screen:
    if vectors is not None and len(found) >= 2:
        known = static.index(word) is not None
        static_sim = None
        if known:
            copies = ctx.static_context_vectors(static, word, len(found))
            static_sim = ctx.cosine_matrix(copies).min().item()
        pairs = {
            (found[i], found[j]): values.tolist()
            for (i, j), values in ctx.pair_similarities(vectors.layers).items()
        }
        widgets.chart(figs.similarity_chart(pairs, sentences, word, static_sim))
        means = ctx.mean_pair_similarity(vectors.layers)
        caption = (
            _(
                "{model}: mean cosine over {count} pairs of sentences, layer 0 {first}, last "
                "layer {last}."
            ).format(
                model=plain(loaded.name),
                count=len(pairs),
                first=f"{means[0]:.3f}",
                last=f"{means[-1]:.3f}",
            )
            + " "
        )
        caption += (
            _("word2vec: {similarity} for every pair (one vector per word).").format(
                similarity=f"{static_sim:.3f}"
            )
            if known
            else _("word2vec never saw {word} in the stories, so it has no vector at all.").format(
                word=plain(repr(word))
            )
        )
        st.caption(caption)
    elif vectors is not None:
        st.info(
            _(
                "{word} is in {count} of your sentences; comparing needs it in at least two. "
                "Type sentences that contain it."
            ).format(word=plain(repr(word)), count=len(found))
        )
    if vectors is not None:
        for n in vectors.missing:
            st.caption(
                _("Sentence {number} does not contain {word}, so it is left out.").format(
                    number=n + 1, word=plain(repr(word))
                )
            )

widgets.lesson_section(lesson, "one-vector")
widgets.lesson_section(lesson, "elmo")

# ---------------------------------------------------------------------------------------------
# BERT's layers: the map and the neighbours
# ---------------------------------------------------------------------------------------------

if loaded is None:
    questions.ask(lesson, vectors=vectors, loaded=loaded)
    st.stop()

n_layers = loaded.config.n_layer + 1
widgets.lesson_section(lesson, "bert-layers", model=loaded.name, n_layer=loaded.config.n_layer)
layer = widgets.choose_index(_("Layer"), n_layers, key="ctx-layer", horizontal=True)
layer_name = figs.layer_names(n_layers)[layer]

widgets.lesson_section(lesson, "map")
corpus_bank = bank(model_key(loaded), loaded)
if found:
    same = [n for n, o in enumerate(corpus_bank.occurrences) if word and o.word == word.lower()]
    rows = [vectors.layers[layer, k] for k in range(len(found))]
    rows += [corpus_bank.vectors[layer, n] for n in same]
    try:
        coords, explained = ctx.pca_2d(torch.stack(rows))
    except ValueError as err:
        st.info(_("No map: {reason}.").format(reason=plain(err)))
    else:
        sentence_of = [*found, *([None] * len(same))]
        background = [corpus_bank.occurrences[n].sentence for n in same]
        widgets.chart(
            figs.context_map(
                coords.tolist(), sentence_of, sentences, background, word, explained, layer_name
            )
        )
        st.caption(
            _(
                "{found} of your sentences and {same} corpus occurrences of {word}, at layer "
                "{layer}."
            ).format(found=len(found), same=len(same), word=plain(repr(word)), layer=layer_name)
        )
else:
    st.info(_("Type a word that stands in your sentences to map its vectors."))

widgets.lesson_section(
    lesson,
    "neighbours",
    bank_words=len(corpus_bank.occurrences),
    bank_sentences=BANK_SENTENCES,
)
static_column, contextual_column = st.columns(2)
with static_column:
    st.markdown("**" + _("Static (word2vec)") + "**")
    if word and static.index(word) is not None:
        rows = [
            {_("word"): w, _("cosine"): round(c, 3)} for w, c in ctx.static_neighbours(static, word)
        ]
        widgets.table(rows)
    elif word:
        st.info(
            _("word2vec has no vector for {word}: it never saw it.").format(word=plain(repr(word)))
        )
with contextual_column:
    contextual = _("Contextual ({model}, layer {layer})").format(
        model=plain(loaded.name), layer=layer_name
    )
    st.markdown(f"**{contextual}**")
    if found:
        numbers = [n + 1 for n in found]
        if st.session_state.get("ctx-sentence") not in numbers:
            st.session_state["ctx-sentence"] = numbers[0]
        number = st.selectbox(_("In sentence"), numbers, key="ctx-sentence", bind=BIND)
        choice = found.index(number - 1)
        st.caption(plain(sentences[found[choice]]))
        neighbours = ctx.contextual_neighbours(
            corpus_bank, vectors.layers[layer, choice], layer, NEIGHBOURS
        )
        widgets.table(
            [
                {_("word"): o.word, _("in the sentence"): o.sentence, _("cosine"): round(c, 3)}
                for o, c in neighbours
            ]
        )

questions.ask(lesson, vectors=vectors, loaded=loaded)
