"""Embeddings and positional encoding: token tables; sinusoidal, learned and rotary positions."""

import math

import questions
import streamlit as st
import torch
import widgets
from widgets import BIND, plain

from tinyformers.course.positional_encoding import D_MODEL, DEFAULT_MODEL, DEFAULT_SENTENCE, LENGTH
from tinyformers.figures import positional_encoding as figs
from tinyformers.figures.common import token_chips
from tinyformers.hub.checkpoint import CheckpointError, read_config
from tinyformers.hub.registry import MODELS_DIR, LoadedModel, shipped_names
from tinyformers.i18n import _, ngettext
from tinyformers.model.positional import cosine_similarity_matrix, sinusoidal_encoding
from tinyformers.text.inputs import model_input_ids

SLUG = "positional-encoding"
MAX_LENGTH = 512
MAX_D_MODEL = 512
D_MODEL_GRID = (2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


@st.cache_data(max_entries=4)
def models_with_learned_positions() -> list[str]:
    """Shipped GPT and BERT models whose position table is learned (they have ``wpe``)."""
    names = []
    for name in shipped_names(family=("gpt", "bert")):
        try:
            config, _checkpoint = read_config(MODELS_DIR / name)
        except CheckpointError:
            continue
        if config.position == "learned":
            names.append(name)
    return names


@st.cache_data(max_entries=8)
def sinusoidal_adjacent_grid(length: int) -> list[float]:
    return figs.sinusoidal_adjacent_by_d_model(D_MODEL_GRID, length)


@st.cache_data(max_entries=4)
def token_map(name: str, _loaded: LoadedModel) -> tuple[figs.Projection, list[str], list[str]]:
    """PCA of a model's token table, with each token's string and category (cached by name)."""
    loaded = _loaded
    weights = loaded.model.wte.weight
    tokens = loaded.tokenizer.display_tokens(list(range(weights.size(0))))
    categories = [figs.token_category(t, loaded.tokenizer.kind) for t in tokens]
    return figs.pca_2d(weights), tokens, categories


lesson = widgets.lesson_header(SLUG)

# ---------------------------------------------------------------------------------------------
# The input strip: the model, your sentence, and the size of the sinusoidal table
# ---------------------------------------------------------------------------------------------

with st.container():
    model_column, sentence_column = st.columns([1, 2])
    with model_column:
        loaded = widgets.model_picker(
            _("Model (learned positions)"),
            None,
            key="pe-model",
            choices=models_with_learned_positions(),
            default=DEFAULT_MODEL,
        )
        if loaded is not None and (
            loaded.family not in ("gpt", "bert") or loaded.config.position != "learned"
        ):
            st.error(
                _("{model} has no learned position table; pick a GPT or BERT model.").format(
                    model=plain(loaded.name)
                )
            )
            loaded = None
    sentence = None
    with sentence_column:
        if loaded:
            sentence = widgets.sentence_input(
                _("Your sentence"),
                DEFAULT_SENTENCE,
                key="pe-sentence",
                tokenizer=loaded.tokenizer,
                max_tokens=loaded.config.block_size - (2 if loaded.family == "bert" else 0),
            )
    d_column, length_column = st.columns(2)
    d_model = d_column.slider(
        _("d_model (width of each vector)"), 2, MAX_D_MODEL, D_MODEL, step=2, key="pe-d", bind=BIND
    )
    length = length_column.slider(
        _("Number of positions"), 1, MAX_LENGTH, LENGTH, key="pe-length", bind=BIND
    )
    try:
        figs.check_sinusoidal_size(length, d_model)
        size_ok = True
    except ValueError as err:
        st.error(str(err))
        size_ok = False

model_name = loaded.name if loaded is not None else None
wte = loaded.model.wte.weight.detach() if loaded else None
wpe = loaded.model.wpe.weight.detach() if loaded else None
ids = None
if sentence is not None:
    ids = model_input_ids(loaded.tokenizer, loaded.family, sentence, loaded.config.block_size)

# ---------------------------------------------------------------------------------------------
# The live figure: the input vectors of your sentence, token + position
# ---------------------------------------------------------------------------------------------

if ids:
    tokens = loaded.tokenizer.display_tokens(ids)
    token_rows, position_rows = wte[ids], wpe[: len(ids)]
    widgets.chart(figs.input_vectors_figure(tokens, token_rows, position_rows))
    st.caption(
        _(
            "Your sentence, {count}, in {model}. Average vector length: token {token}, "
            "position {position}, sum {sum}."
        ).format(
            count=ngettext("{n} token", "{n} tokens", len(ids)),
            model=model_name,
            token=f"{token_rows.norm(dim=-1).mean():.3f}",
            position=f"{position_rows.norm(dim=-1).mean():.3f}",
            sum=f"{(token_rows + position_rows).norm(dim=-1).mean():.3f}",
        )
    )
elif loaded:
    st.info(_("Type a sentence above to see its input vectors."))

if not size_ok:
    st.stop()

learned_length = min(length, wpe.size(0)) if loaded else 0
sinusoidal = sinusoidal_encoding(length, d_model)

# ---------------------------------------------------------------------------------------------
# Token embeddings
# ---------------------------------------------------------------------------------------------

widgets.lesson_section(lesson, "lookup")
if loaded:
    projection, vocabulary, categories = token_map(model_name, loaded)
    widgets.chart(figs.embedding_scatter(projection, vocabulary, categories))
    first, second = projection.explained
    st.caption(
        _(
            "{model}: {vectors} token vectors of {width} numbers each. Component 1 keeps "
            "{first} of their variance, component 2 {second}; together {both}."
        ).format(
            model=model_name,
            vectors=f"{wte.size(0):,}",
            width=f"{wte.size(1):,}",
            first=f"{first:.1%}",
            second=f"{second:.1%}",
            both=f"{first + second:.1%}",
        )
    )

# ---------------------------------------------------------------------------------------------
# Why positions: reorder a sentence
# ---------------------------------------------------------------------------------------------

widgets.lesson_section(lesson, "why-positions")
if ids:
    st.html(token_chips(loaded.tokenizer.display_tokens(ids), ids))
    if len(ids) < 2:
        st.info(_("Reordering needs at least two tokens; type a longer sentence."))
    else:
        reverse = torch.arange(len(ids) - 1, -1, -1)
        layer = figs.first_attention(loaded.model)
        without = figs.reorder_change(layer, wte[ids], None, reverse)
        with_positions = figs.reorder_change(layer, wte[ids], wpe[: len(ids)], reverse)
        left, right = st.columns(2)
        left.metric(_("Token vectors only: largest change of an output"), f"{without:.1e}")
        right.metric(_("Token + position vectors: largest change"), f"{with_positions:.2f}")
        st.caption(
            _(
                "First attention layer of {model} (with its LayerNorm, without a mask) on the "
                "{count} vectors of your sentence, in their order and reversed. Change of a "
                "token's output = |new − old| / |old|: 1.00 means as large as the output itself."
            ).format(model=model_name, count=f"{len(ids):,}")
        )

# ---------------------------------------------------------------------------------------------
# Sinusoidal and learned tables
# ---------------------------------------------------------------------------------------------

widgets.lesson_section(lesson, "sinusoidal")
widgets.chart(figs.encoding_heatmap(sinusoidal, _("Sinusoidal encodings")))
norms = sinusoidal.norm(dim=-1)
st.caption(
    _(
        "{length} positions × {d_model} dimensions. Row lengths range from {low} to {high}; "
        "√(d_model/2) = {expected}."
    ).format(
        length=length,
        d_model=d_model,
        low=f"{norms.min():.4f}",
        high=f"{norms.max():.4f}",
        expected=f"{math.sqrt(d_model / 2):.4f}",
    )
)

widgets.lesson_section(lesson, "learned")
if loaded:
    widgets.chart(
        figs.encoding_heatmap(wpe, _("Learned position table of {model}").format(model=model_name))
    )
    st.caption(
        _("{positions} positions × {dimensions} dimensions; values from {low} to {high}.").format(
            positions=f"{wpe.size(0):,}",
            dimensions=f"{wpe.size(1):,}",
            low=f"{wpe.min():.3f}",
            high=f"{wpe.max():.3f}",
        )
    )

widgets.lesson_section(lesson, "rotary")
probe_column, seed_column = st.columns(2)
with probe_column:
    probe = st.selectbox(
        _("Query and key to rotate"),
        figs.PROBE_KINDS,
        format_func=figs.probe_label,
        key="pe-probe",
        bind=BIND,
    )
with seed_column:
    seed = widgets.seed_control(key="pe-seed")

# ---------------------------------------------------------------------------------------------
# Similarity matrices
# ---------------------------------------------------------------------------------------------

widgets.lesson_section(lesson, "similarity")
query, key = figs.rotary_probe_vectors(d_model, probe, seed)
similarities = {
    "sinusoidal": cosine_similarity_matrix(sinusoidal),
    "rotary": figs.rotary_similarity(length, query, key),
}
titles = [
    _("Sinusoidal (d_model {d_model})").format(d_model=d_model),
    _("Rotary (head size {size})").format(size=d_model),
]
names = {"sinusoidal": _("sinusoidal"), "rotary": _("rotary"), "learned": _("learned")}
if loaded:
    similarities["learned"] = cosine_similarity_matrix(wpe[:learned_length])
    titles.append(_("Learned ({model})").format(model=model_name))
widgets.chart(figs.similarity_panels(dict(zip(titles, similarities.values(), strict=True))))
spreads = [
    f"{names[name]} {figs.diagonal_spread(matrix):.1e}" for name, matrix in similarities.items()
]
st.caption(
    _("Largest difference between two entries at the same distance: {spreads}").format(
        spreads=", ".join(spreads)
    )
)
if loaded and learned_length < length:
    st.caption(
        _("{model} has only {positions} positions, so its panel stops there.").format(
            model=plain(model_name), positions=f"{wpe.size(0):,}"
        )
    )

# ---------------------------------------------------------------------------------------------
# Adjacent positions
# ---------------------------------------------------------------------------------------------

widgets.lesson_section(lesson, "adjacent")
if length < 2:
    st.info(_("Comparing neighbours needs at least two positions; raise the number of positions."))
else:
    neighbours = figs.adjacent_similarities(sinusoidal)
    marked = {
        _("sinusoidal, d_model {d_model}").format(d_model=d_model): (
            d_model,
            neighbours.mean().item(),
        )
    }
    columns = st.columns(2)
    columns[0].metric(
        _("Sinusoidal, d_model {d_model}: mean cos(p, p+1)").format(d_model=d_model),
        f"{neighbours.mean():.4f}",
    )
    caption = _(
        "Averaged over positions 0 to {last}. Sinusoidal: from {low} to {high} across p."
    ).format(last=length - 1, low=f"{neighbours.min():.4f}", high=f"{neighbours.max():.4f}")
    if loaded and learned_length >= 2:
        learned_neighbours = figs.adjacent_similarities(wpe[:learned_length])
        marked[_("learned, {model}").format(model=model_name)] = (
            wpe.size(1),
            learned_neighbours.mean().item(),
        )
        columns[1].metric(
            _("Learned, {model} (d_model {d_model})").format(model=model_name, d_model=wpe.size(1)),
            f"{learned_neighbours.mean():.4f}",
        )
        caption += " " + _(
            "Learned: from {low} to {high} across its first {count} positions."
        ).format(
            low=f"{learned_neighbours.min():.4f}",
            high=f"{learned_neighbours.max():.4f}",
            count=learned_length,
        )
    st.caption(caption)
    grid = sinusoidal_adjacent_grid(length)
    widgets.chart(figs.adjacent_similarity_chart(D_MODEL_GRID, grid, marked))

# ---------------------------------------------------------------------------------------------
# Similarity against distance
# ---------------------------------------------------------------------------------------------

widgets.lesson_section(lesson, "offset")
tables = {"sinusoidal": sinusoidal}
table_labels = {"sinusoidal": _("sinusoidal")}
if loaded:
    tables[f"learned ({model_name})"] = wpe[:learned_length]
    table_labels[f"learned ({model_name})"] = _("learned ({model})").format(model=model_name)
table_name = st.radio(
    _("Position table"),
    list(tables),
    format_func=lambda name: plain(table_labels.get(name, name)),
    horizontal=True,
    key="pe-offset-table",
    bind=BIND,
)
table = tables[table_name]
n = table.size(0)
if n < 2:
    st.info(_("Offsets need at least two positions; raise the number of positions."))
else:
    starts = st.multiselect(
        _("Start positions p"),
        list(range(n - 1)),
        default=sorted({0, n // 8, n // 3}),
        key=f"pe-offset-starts-{table_name}-{n}",
        bind=BIND,
    )
    if not starts:
        st.info(_("Pick at least one start position."))
    else:
        curves = figs.similarity_by_offset(table, starts, n - 1 - max(starts))
        title = _("Similarity against distance, {table}").format(table=table_labels[table_name])
        widgets.chart(figs.offset_similarity_chart(curves, title))
        st.caption(
            _("Largest gap between the curves at the same offset: {gap}").format(
                gap=f"{figs.curves_spread(curves):.1e}"
            )
        )

# ---------------------------------------------------------------------------------------------
# The input vectors of your sentence
# ---------------------------------------------------------------------------------------------

widgets.lesson_section(lesson, "input")

questions.ask(lesson, loaded=loaded, ids=ids or None, d_model=d_model, length=length)
