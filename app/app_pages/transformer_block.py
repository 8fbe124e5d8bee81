"""The Transformer block: its code path (pre-LN or post-LN) with real shapes, the residual stream
layer by layer, LayerNorm statistics with γ and β, the MLP's shapes and parameter shares, and a
background ablation of residual connections and LayerNorm."""

from __future__ import annotations

from functools import partial

import streamlit as st
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
    start_job,
)

from tinyformers.course.transformer_block import (
    BlockInspection,
    BlockParameters,
    LayerNormStats,
    block_parameters,
    code_path,
    inspect_ids,
    model_inputs,
    step_shapes,
)
from tinyformers.figures import transformer_block as figs
from tinyformers.figures.common import token_chips
from tinyformers.figures.gpt import markdown_text
from tinyformers.hub.registry import LoadedModel, shipped_names
from tinyformers.model.build import count_parameters
from tinyformers.text.corpora import generate_corpus, lesson_corpus
from tinyformers.training.experiments import (
    FULL,
    MAX_STEPS,
    MIN_STEPS,
    NEITHER,
    NO_LAYER_NORM,
    NO_RESIDUAL,
    ExperimentResult,
    ablation_experiment,
    check_text,
    histories_by_variant,
)
from tinyformers.training.jobs import Snapshot

SLUG = "transformer-block"
DEFAULT_MODEL = "gpt-stories"
DEFAULT_SENTENCE = "Zoe sees the big dog . the dog"
MAX_SENTENCE_TOKENS = 64
ABLATION_KEY = "tb-ablation"
ABLATION_SETTINGS_KEY = "tb-ablation-settings"
VARIANTS = (FULL, NO_RESIDUAL, NO_LAYER_NORM, NEITHER)
DEFAULT_STEPS = 300
STORIES = 300
SOURCES = {
    "lessons": "The lessons' text",
    "stories": "Generated stories",
    "own": "Your own text",
}
FORMULA = {
    "pre": "GPT-2 layout: x = x + f(LayerNorm(x))",
    "post": "BERT layout: x = LayerNorm(x + f(x))",
}
OUTER_NORMS = {
    "ln_f": "after the last block",
    "ln_emb": "on the embeddings",
    "mlm_head.ln": "in the output head",
}


# ---------------------------------------------------------------------------------------------
# Cached computations (keyed by a model key, since models themselves are not hashable)
# ---------------------------------------------------------------------------------------------


def model_key(loaded: LoadedModel) -> str:
    return f"{loaded.source}:{loaded.name}:{id(loaded.model)}"


@st.cache_data(max_entries=8, show_spinner=False)
def cached_inspection(
    key: str, _loaded: LoadedModel, ids: tuple[int, ...], segments: tuple[int, ...] | None
) -> BlockInspection:
    return inspect_ids(_loaded.model, list(ids), list(segments) if segments else None)


@st.cache_data(max_entries=4, show_spinner=False)
def cached_parameters(key: str, _loaded: LoadedModel) -> tuple[BlockParameters, int]:
    """The first block's parameters by part, and the whole model's parameter count."""
    return block_parameters(_loaded.model.h[0]), count_parameters(_loaded.model)


@st.cache_data(max_entries=2, show_spinner=False)
def lessons_text() -> str:
    return lesson_corpus()


@st.cache_data(max_entries=2, show_spinner=False)
def stories_text(n_stories: int) -> str:
    return generate_corpus(n_stories, seed=0)


def show_chart(figure) -> None:
    """A figure with its own fonts and colours (not Streamlit's theme), readable from afar."""
    st.plotly_chart(figure, theme=None)


# ---------------------------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------------------------


def chosen_model() -> LoadedModel | None:
    loaded = model_picker(
        "Model",
        None,
        key="tb-model",
        choices=shipped_names(family=("gpt", "bert")),
        default=DEFAULT_MODEL,
    )
    if loaded is not None and loaded.family not in ("gpt", "bert"):
        name = markdown_text(loaded.name)
        st.error(f"{name} is a {loaded.family} model; pick a GPT or BERT model.")
        return None
    return loaded


def sentence_ids(loaded: LoadedModel) -> tuple[list[int], list[int] | None] | None:
    """The model's input for the student's sentence, or None with a message."""
    specials = 2 if loaded.family == "bert" else 0
    limit = min(loaded.config.block_size, MAX_SENTENCE_TOKENS) - specials
    text = sentence_input(
        "Your sentence",
        DEFAULT_SENTENCE,
        key="tb-sentence",
        tokenizer=loaded.tokenizer,
        max_tokens=limit,
    )
    if text is None:
        return None
    try:
        ids, segments = model_inputs(loaded.model, loaded.tokenizer, text, MAX_SENTENCE_TOKENS)
    except ValueError as err:
        st.warning(str(err))
        return None
    unknown = sum(1 for i in ids if i == getattr(loaded.tokenizer, "unk_id", None))
    if unknown:
        st.warning(
            f"{unknown} of the {len(ids)} tokens are not in this model's vocabulary and are read "
            "as \\[UNK\\]."
        )
    st.html(token_chips(loaded.tokenizer.display_tokens(ids), ids))
    return ids, segments


# ---------------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------------


def show_code_path(loaded: LoadedModel, inspection: BlockInspection) -> None:
    config = inspection.config
    placement = config.ln_placement
    other = "post" if placement == "pre" else "pre"
    st.caption(
        f"From {markdown_text(loaded.name)}'s config: ln_placement = {placement!r}, "
        f"residual = {config.residual}, layer_norm = {config.layer_norm}; "
        f"{inspection.n_tokens} tokens, width C = {config.n_embd}, MLP width "
        f"n_inner = {config.mlp_width}."
    )
    own, compared = st.columns(2)
    own.image(
        figs.code_path_svg(
            inspection.path,
            inspection.layers[0].shapes,
            f"This model: {placement}-LN",
            FORMULA[placement],
        )
    )
    other_path = code_path(config.replace(ln_placement=other))
    compared.image(
        figs.code_path_svg(
            other_path,
            step_shapes(other_path, inspection.n_tokens),
            f"For comparison: {other}-LN",
            FORMULA[other],
        )
    )


def show_replay(inspection: BlockInspection) -> None:
    n_layer = len(inspection.layers)
    st.metric(
        f"Largest |replay − model| over the steps and outputs of all {n_layer} blocks",
        f"{inspection.max_difference():.1e}",
    )
    if inspection.final_norm is not None:
        st.caption(f"The last block's output is compared with what {inspection.final_norm} read.")


def show_residual(loaded: LoadedModel, inspection: BlockInspection) -> None:
    norms = inspection.residual_norms()
    title = f"Size of the residual stream in {loaded.name}, per layer"
    show_chart(figs.residual_norm_chart(norms, title))
    first, last = norms["block input"][0], norms["after MLP + residual"][-1]
    caption = (
        f"Mean token-vector length entering block 0: {first:.3f}; leaving block "
        f"{len(inspection.layers) - 1}: {last:.3f} ({last / first:.2f} times as long)."
    )
    if inspection.final_norm is not None:
        final = inspection.outer_norms[inspection.final_norm].output.norm(dim=-1).mean().item()
        caption += f" After {inspection.final_norm}: {final:.3f}."
    st.caption(caption)


def norm_options(inspection: BlockInspection, layer: int) -> dict[str, str]:
    """The LayerNorms a student can open: the layer's own, then those outside the blocks."""
    placement = "before" if inspection.config.ln_placement == "pre" else "after"
    sublayer = {"ln_1": "attention", "ln_2": "the MLP"}
    options = {
        name: f"layer {layer}: {name} ({placement} {sublayer.get(name, 'its sub-layer')})"
        for name in inspection.norm_names(layer)
    }
    for name in inspection.outer_norms:
        options[name] = f"{name} ({OUTER_NORMS.get(name, 'outside the blocks')})"
    return options


def show_layer_norm(loaded: LoadedModel, inspection: BlockInspection, tokens: list[str]) -> None:
    n_layer = len(inspection.layers)
    left, right = st.columns([1, 3])
    layer = left.selectbox("Layer", list(range(n_layer)), key=f"tb-layer-{n_layer}")
    options = norm_options(inspection, layer)
    if not options:
        name = markdown_text(loaded.name)
        st.info(f"{name} has its LayerNorms switched off: there is nothing to normalize.")
        return
    name = right.radio(
        "LayerNorm",
        list(options),
        format_func=options.get,
        horizontal=True,
        key=f"tb-norm-{model_key(loaded)}",
    )
    stats = inspection.layers[layer].norms.get(name) or inspection.outer_norms[name]
    show_chart(
        figs.layer_norm_stats_chart(stats, tokens, f"{options[name]}: per-token mean and spread")
    )
    st.caption(stats_caption(stats))
    show_chart(figs.gamma_beta_chart(stats.weight, stats.bias, f"Learned γ and β of {name}"))
    st.caption(
        f"{stats.weight.numel()} dimensions. γ: mean {stats.weight.mean():.3f}, from "
        f"{stats.weight.min():.3f} to {stats.weight.max():.3f}. β: mean {stats.bias.mean():.3f}, "
        f"from {stats.bias.min():.3f} to {stats.bias.max():.3f}."
    )


def stats_caption(stats: LayerNormStats) -> str:
    stages = stats.stages()
    (in_mean, in_std), (n_mean, n_std), (out_mean, out_std) = stages.values()
    variance = stats.input.var(dim=-1, unbiased=False)
    expected = (variance / (variance + stats.eps)).sqrt()
    return (
        f"ε = {stats.eps:.0e}. Input: std from {in_std.min():.3f} to {in_std.max():.3f}. "
        f"Normalized: largest |mean| {n_mean.abs().max():.1e}; std from {n_std.min():.6f} to "
        f"{n_std.max():.6f} (√(σ²/(σ²+ε)) predicts it to within "
        f"{(n_std - expected).abs().max():.1e}). After γ and β: mean from {out_mean.min():.3f} "
        f"to {out_mean.max():.3f}, std from {out_std.min():.3f} to {out_std.max():.3f}."
    )


def show_feed_forward(loaded: LoadedModel) -> None:
    config = loaded.config
    parameters, model_total = cached_parameters(model_key(loaded), loaded)
    columns = st.columns(3)
    columns[0].metric("n_embd (C)", config.n_embd)
    columns[1].metric("n_inner (MLP width)", config.mlp_width)
    columns[2].metric("Widening factor", f"{config.mlp_width / config.n_embd:.2f}×")
    counts = {part: parameters.count(part) for part in parameters.tensors}
    show_chart(
        figs.parameter_share_chart(counts, f"Where one block of {loaded.name} keeps its parameters")
    )
    in_blocks = parameters.total * config.n_layer
    mlp = parameters.tensors.get("MLP", [])
    shapes = "; ".join(f"{name} {shape}" for name, shape, _ in mlp)
    st.caption(
        f"One block: {parameters.total:,} parameters (MLP tensors: {shapes}). The "
        f"{config.n_layer} blocks hold {in_blocks:,} of the model's {model_total:,} parameters "
        f"({in_blocks / model_total:.1%}); the rest are embeddings and final layers."
    )


# ---------------------------------------------------------------------------------------------
# The ablation, trained in the background
# ---------------------------------------------------------------------------------------------


def training_text() -> tuple[str, str] | None:
    source = st.radio(
        "Training text",
        list(SOURCES),
        format_func=SOURCES.get,
        horizontal=True,
        key="tb-source",
    )
    if source == "lessons":
        try:
            return lessons_text(), SOURCES[source]
        except ValueError as err:
            st.error(str(err))
            return None
    if source == "stories":
        return stories_text(STORIES), SOURCES[source]
    text = corpus_input("tb-corpus")
    return (text, SOURCES[source]) if text is not None else None


def ablation_controls() -> None:
    chosen = training_text()
    steps_column, seed_column = st.columns(2)
    top = min(MAX_STEPS, server_limits().max_steps)
    steps = steps_column.number_input(
        "Training steps per variant",
        MIN_STEPS,
        top,
        min(DEFAULT_STEPS, top),
        step=10,
        key="tb-steps",
    )
    with seed_column:
        seed = seed_control(key="tb-seed")
    start = st.button(
        "Train the four variants", key="tb-start", type="primary", disabled=chosen is None
    )
    if not start or chosen is None:
        return
    text, source = chosen
    try:
        check_text(text)
    except ValueError as err:
        st.error(f"Cannot train on this text: {err}")
        return
    steps = int(steps)
    st.session_state[ABLATION_SETTINGS_KEY] = {
        "source": source,
        "characters": len(text),
        "steps": steps,
        "seed": seed,
    }
    start_job(ABLATION_KEY, partial(ablation_experiment, text, steps, seed), name="ablation")


def render_ablation(snapshot: Snapshot) -> None:
    settings = st.session_state.get(ABLATION_SETTINGS_KEY, {})
    steps = settings.get("steps")
    runs = histories_by_variant(snapshot.updates)
    if snapshot.active and runs and steps:
        label, history = list(runs.items())[-1]
        done = (len(runs) - 1 + history[-1].step / steps) / len(VARIANTS)
        st.progress(min(done, 1.0), text=f"Training {label}: step {history[-1].step} of {steps}")
    if settings:
        st.caption(
            f"{settings['source']}, {settings['characters']:,} characters; {settings['steps']} "
            f"steps per variant, seed {settings['seed']}; {snapshot.elapsed_s:.1f} s"
            + (" so far." if snapshot.active else ".")
        )
    if runs:
        title = "Four-block character GPTs: loss while training"
        show_chart(figs.ablation_loss_chart(runs, title, steps))
    result = snapshot.result
    if isinstance(result, ExperimentResult):
        show_ablation_result(result)


def show_ablation_result(result: ExperimentResult) -> None:
    if result.stopped:
        st.info("The run was stopped: the table shows the variants trained so far.")
    st.dataframe(figs.ablation_rows(result.variants), hide_index=True)
    best = min(
        (v for v in result.variants if v.final_val_loss is not None),
        key=lambda v: v.final_val_loss,
        default=None,
    )
    if best is not None:
        st.caption(
            f"Lowest validation loss: {best.label}, {best.final_val_loss:.3f} nats per character."
        )
    samples = {v.label: v.sample for v in result.variants}
    st.html(figs.samples_html(result.prompt, samples))


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

lesson = lesson_header(SLUG)

with st.sidebar:
    st.subheader("Settings for this lesson")
    loaded = chosen_model()

lesson_section(lesson, "code-path")
inspection = tokens = None
if loaded is None:
    st.info("Pick a GPT or BERT model in the sidebar to open its blocks.")
else:
    model_input = sentence_ids(loaded)
    if model_input is not None:
        ids, segments = model_input
        inspection = cached_inspection(
            model_key(loaded), loaded, tuple(ids), tuple(segments) if segments else None
        )
        tokens = loaded.tokenizer.display_tokens(ids)
        show_code_path(loaded, inspection)

lesson_section(lesson, "replay")
if inspection is not None:
    show_replay(inspection)

lesson_section(lesson, "residual")
if inspection is not None:
    show_residual(loaded, inspection)

lesson_section(lesson, "layernorm")
if inspection is not None:
    show_layer_norm(loaded, inspection, tokens)

lesson_section(lesson, "feed-forward")
if loaded is not None:
    show_feed_forward(loaded)

lesson_section(lesson, "ablation")
ablation_controls()
job_progress(ABLATION_KEY, render_ablation)

lesson_section(lesson, "code")
quiz(lesson)
