"""The Transformer block: its code path (pre-LN or post-LN) with real shapes, the residual stream
layer by layer, LayerNorm statistics with γ and β, the MLP's shapes and parameter shares, and a
background ablation of residual connections and LayerNorm."""

from __future__ import annotations

from functools import partial

import questions
import streamlit as st
import widgets
from widgets import BIND, plain

from tinyformers.course import transformer_block as blocks
from tinyformers.course.gpt import unknown_count
from tinyformers.course.transformer_block import (
    DEFAULT_MODEL,
    DEFAULT_SENTENCE,
    MAX_SENTENCE_TOKENS,
    SOURCES,
    BlockInspection,
    BlockParameters,
    ablation_progress,
    best_variant,
    block_parameters,
    inspect_ids,
    model_inputs,
)
from tinyformers.figures import transformer_block as figs
from tinyformers.figures.common import token_chips
from tinyformers.figures.gpt import markdown_text
from tinyformers.hub.registry import LoadedModel, model_key, shipped_names
from tinyformers.i18n import _
from tinyformers.model.build import count_parameters
from tinyformers.text.inputs import text_room
from tinyformers.training.experiments import (
    MAX_STEPS,
    MIN_STEPS,
    ExperimentResult,
    ablation_experiment,
    check_text,
    histories_by_variant,
)
from tinyformers.training.jobs import Snapshot

SLUG = "transformer-block"
ABLATION_KEY = "tb-ablation"
ABLATION_SETTINGS_KEY = "tb-ablation-settings"
DEFAULT_STEPS = 300


# ---------------------------------------------------------------------------------------------
# Cached computations (keyed by a model key, since models themselves are not hashable)
# ---------------------------------------------------------------------------------------------


@st.cache_data(max_entries=8, show_spinner=False)
def cached_inspection(
    key: str, _loaded: LoadedModel, ids: list[int], segments: list[int] | None
) -> BlockInspection:
    return inspect_ids(_loaded.model, ids, segments or None)


@st.cache_data(max_entries=4, show_spinner=False)
def cached_parameters(key: str, _loaded: LoadedModel) -> tuple[BlockParameters, int]:
    """The first block's parameters by part, and the whole model's parameter count."""
    return block_parameters(_loaded.model.h[0]), count_parameters(_loaded.model)


builtin_corpus = st.cache_data(max_entries=2, show_spinner=False)(blocks.builtin_corpus)


# ---------------------------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------------------------


def chosen_model() -> LoadedModel | None:
    choices = shipped_names(family=("gpt", "bert"))
    loaded = widgets.model_picker(
        _("Model"), None, key="tb-model", choices=choices, default=DEFAULT_MODEL
    )
    if loaded is not None and loaded.family not in ("gpt", "bert"):
        name = markdown_text(loaded.name)
        st.error(
            _("{model} is a {family} model; pick a GPT or BERT model.").format(
                model=plain(name), family=loaded.family
            )
        )
        return None
    return loaded


def sentence_ids(loaded: LoadedModel) -> tuple[list[int], list[int] | None] | None:
    """The model's input for the student's sentence, or None with a message."""
    limit = text_room(loaded.family, min(loaded.config.block_size, MAX_SENTENCE_TOKENS))
    text = widgets.sentence_input(
        _("Your sentence"), DEFAULT_SENTENCE, "tb-sentence", loaded.tokenizer, limit
    )
    if text is None:
        return None
    try:
        ids, segments = model_inputs(loaded.model, loaded.tokenizer, text, MAX_SENTENCE_TOKENS)
    except ValueError as err:
        st.warning(str(err))
        return None
    unknown = unknown_count(loaded.tokenizer, ids)
    if unknown:
        st.warning(figs.unknown_warning(unknown, len(ids)))
    return ids, segments


# ---------------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------------


def show_code_path(loaded: LoadedModel, inspection: BlockInspection) -> None:
    st.caption(figs.config_caption(loaded.name, inspection))
    own, compared = st.columns(2)
    own_path, other_path = figs.code_path_pair(inspection)
    own.image(own_path)
    compared.image(other_path)


def show_replay(inspection: BlockInspection) -> None:
    st.metric(*figs.replay_metric(inspection))
    caption = figs.replay_caption(inspection)
    if caption is not None:
        st.caption(caption)


def show_residual(loaded: LoadedModel, inspection: BlockInspection) -> None:
    norms = inspection.residual_norms()
    title = _("Size of the residual stream in {model}, per layer").format(model=loaded.name)
    widgets.chart(figs.residual_norm_chart(norms, title))
    st.caption(figs.residual_caption(inspection, norms))


def show_layer_norm(loaded: LoadedModel, inspection: BlockInspection, tokens: list[str]) -> None:
    left, right = st.columns([1, 3])
    layer = widgets.choose_index(_("Layer"), len(inspection.layers), "tb-layer", container=left)
    options = figs.norm_titles(inspection, layer)
    if not options:
        name = markdown_text(loaded.name)
        st.info(
            _("{model} has its LayerNorms switched off: there is nothing to normalize.").format(
                model=name
            )
        )
        return
    norm_key = f"tb-norm-{model_key(loaded)}"
    name = widgets.labelled_radio(_("LayerNorm"), options, norm_key, right)
    stats = inspection.layers[layer].norms.get(name) or inspection.outer_norms[name]
    title = _("{norm}: per-token mean and spread").format(norm=options[name])
    widgets.chart(figs.layer_norm_stats_chart(stats, tokens, title))
    st.caption(figs.layer_norm_caption(stats))
    title = _("Learned γ and β of {norm}").format(norm=name)
    widgets.chart(figs.gamma_beta_chart(stats.weight, stats.bias, title))
    st.caption(figs.gamma_beta_caption(stats))


def show_feed_forward(loaded: LoadedModel) -> None:
    config = loaded.config
    parameters, model_total = cached_parameters(model_key(loaded), loaded)
    widgets.metric_row(figs.mlp_metrics(config))
    title = _("Where one block of {model} keeps its parameters").format(model=loaded.name)
    widgets.chart(figs.parameter_share_chart(parameters.counts(), title))
    st.caption(figs.parameters_caption(parameters, config, model_total))


# ---------------------------------------------------------------------------------------------
# The ablation, trained in the background
# ---------------------------------------------------------------------------------------------


def source_name(label: str) -> str:
    """A training text's label from ``SOURCES``, in the session's language."""
    names = {
        SOURCES["lessons"]: _("The lessons' text"),
        SOURCES["stories"]: _("Generated stories"),
        SOURCES["own"]: _("Your own text"),
    }
    return names.get(label, label)


def training_text() -> tuple[str, str] | None:
    source = widgets.labelled_radio(_("Training text"), SOURCES, "tb-source")
    if source == "own":
        text = widgets.corpus_input("tb-corpus")
        return (text, SOURCES[source]) if text is not None else None
    try:
        return builtin_corpus(source), SOURCES[source]
    except ValueError as err:
        st.error(str(err))
        return None


def ablation_controls() -> None:
    chosen = training_text()
    steps_column, seed_column = st.columns(2)
    top = min(MAX_STEPS, widgets.server_limits().max_steps)
    steps = steps_column.number_input(
        _("Training steps per variant"),
        MIN_STEPS,
        top,
        min(DEFAULT_STEPS, top),
        10,
        key="tb-steps",
        bind=BIND,
    )
    with seed_column:
        seed = widgets.seed_control(key="tb-seed")
    start = st.button(
        _("Train the four variants"), key="tb-start", type="primary", disabled=chosen is None
    )
    if not start or chosen is None:
        return
    text, source = chosen
    try:
        check_text(text)
    except ValueError as err:
        st.error(_("Cannot train on this text: {reason}").format(reason=plain(err)))
        return
    steps = int(steps)
    st.session_state[ABLATION_SETTINGS_KEY] = dict(
        source=source, characters=len(text), steps=steps, seed=seed
    )
    # the job calls ablation_experiment(text, steps, seed, report)
    widgets.start_job(
        ABLATION_KEY, partial(ablation_experiment, text, steps, seed), name="ablation"
    )


def render_ablation(snapshot: Snapshot) -> None:
    settings = st.session_state.get(ABLATION_SETTINGS_KEY, {})
    steps = settings.get("steps")
    runs = histories_by_variant(snapshot.updates)
    if snapshot.active and runs and steps:
        st.progress(ablation_progress(runs, steps), text=figs.progress_text(runs, steps))
    if settings:
        shown = dict(settings, source=source_name(settings.get("source", "")))
        st.caption(figs.settings_caption(shown, snapshot.elapsed_s, snapshot.active))
    if runs:
        title = _("Four-block character GPTs: loss while training")
        widgets.chart(figs.ablation_loss_chart(runs, title, steps))
    result = snapshot.result
    if isinstance(result, ExperimentResult):
        show_ablation_result(result)


def show_ablation_result(result: ExperimentResult) -> None:
    if result.stopped:
        st.info(_("The run was stopped: the table shows the variants trained so far."))
    st.dataframe(figs.ablation_rows(result.variants), hide_index=True)
    best = best_variant(result.variants)
    if best is not None:
        st.caption(figs.best_caption(best))
    samples = {v.label: v.sample for v in result.variants}
    st.html(figs.samples_html(result.prompt, samples))


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

lesson = widgets.lesson_header(SLUG)

model_column, sentence_column = st.columns([2, 5])  # the input strip
with model_column:
    loaded = chosen_model()
inspection = tokens = None
if loaded is None:
    st.info(_("Pick a GPT or BERT model above to open its blocks."))
else:
    with sentence_column:
        model_input = sentence_ids(loaded)
    if model_input is not None:
        ids, segments = model_input
        inspection = cached_inspection(model_key(loaded), loaded, ids, segments)
        tokens = loaded.tokenizer.display_tokens(ids)
        show_residual(loaded, inspection)

widgets.lesson_section(lesson, "code-path")
if inspection is not None:
    st.html(token_chips(tokens, ids))
    show_code_path(loaded, inspection)

widgets.lesson_section(lesson, "replay")
if inspection is not None:
    show_replay(inspection)

widgets.lesson_section(lesson, "residual")

widgets.lesson_section(lesson, "layernorm")
if inspection is not None:
    show_layer_norm(loaded, inspection, tokens)

widgets.lesson_section(lesson, "feed-forward")
if loaded is not None:
    show_feed_forward(loaded)

widgets.lesson_section(lesson, "ablation", blocks.ablation_values())
ablation_controls()
widgets.job_progress(ABLATION_KEY, render_ablation)

widgets.lesson_section(lesson, "code")
questions.ask(lesson, inspection=inspection, loaded=loaded, tokens=tokens)
