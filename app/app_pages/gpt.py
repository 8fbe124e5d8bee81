"""GPT and text generation: next-token distributions, sampling controls, step-by-step
generation, greedy against sampled text, beam search, and the per-token training loss."""

from __future__ import annotations

import questions
import streamlit as st
import widgets
from widgets import BIND, Jump

from tinyformers.course import gpt as course
from tinyformers.course.gpt import DECODINGS, DEFAULT_MODEL, DEFAULT_PROMPT, GREEDY
from tinyformers.figures import gpt as figs
from tinyformers.figures.common import token_chips
from tinyformers.hub.registry import LoadedModel
from tinyformers.i18n import _
from tinyformers.model.build import count_parameters
from tinyformers.model.sampling import BeamSettings, SamplingSettings, next_token_distribution

SLUG = "gpt"
MAX_PROMPT_TOKENS = 128
MAX_TEMPERATURE = 5.0
MAX_TOP_K = 100
MAX_BARS = 40
MAX_GENERATED = 200  # tokens one step-by-step text may grow by
MAX_COMPARE = 200
MAX_SEARCH_BEAMS = 8
MAX_SEARCH_TOKENS = 40
RUN_KEY = "gpt-run"
TOKENS_KEY = "gpt-tokens"
DECODING_NAMES = {
    "Greedy": lambda: _("Greedy"),
    "Sampling": lambda: _("Sampling"),
    "Beam search": lambda: _("Beam search"),
}


def decoding_name(strategy: str) -> str:
    """A decoding's name in the current language, for titles."""
    return DECODING_NAMES[strategy]() if strategy in DECODING_NAMES else strategy


@st.cache_data(max_entries=16, show_spinner=False)
def cached_continuation(key: str, _loaded: LoadedModel, ids: tuple[int, ...], *args):
    return course.continuation(_loaded.model, list(ids), *args)


@st.cache_data(max_entries=16, show_spinner=False)
def cached_search(key: str, _loaded: LoadedModel, ids: tuple[int, ...], *args):
    return course.decode(_loaded.model, list(ids), *args)


@st.cache_data(max_entries=4, show_spinner=False)
def learned_vocabulary(key: str, _loaded: LoadedModel) -> course.LearnedTokens:
    return course.learned_tokens(_loaded.tokenizer)


def sampling_controls() -> SamplingSettings:
    """Temperature, top-k and top-p (0 and 1 switch the filters off)."""
    temperature = st.slider(
        _("Temperature (0 = greedy)"),
        0.0,
        MAX_TEMPERATURE,
        1.0,
        step=0.05,
        key="gpt-temperature",
        bind=BIND,
    )
    top_k = st.slider(_("Top-k (0 = off)"), 0, MAX_TOP_K, 0, key="gpt-top-k", bind=BIND)
    top_p = st.slider(_("Top-p (1 = off)"), 0.05, 1.0, 1.0, step=0.05, key="gpt-top-p", bind=BIND)
    return course.slider_settings(temperature, top_k, top_p)


def prompt_ids(loaded: LoadedModel) -> list[int] | None:
    """The prompt's token ids, cut to what the model reads, or None with a message; under the
    prompt, its tokens and whether its capitalised words are single tokens."""
    tokenizer = loaded.tokenizer
    limit = min(loaded.config.block_size, MAX_PROMPT_TOKENS)
    text = widgets.sentence_input(
        _("Your prompt"),
        DEFAULT_PROMPT,
        key="gpt-prompt",
        tokenizer=tokenizer,
        max_tokens=limit,
    )
    if text is None:
        return None
    ids = tokenizer.encode(text)[:limit]
    if not ids:
        st.warning(_("This prompt has no tokens the model can read; type a few words."))
        return None
    if unknown := course.unknown_count(tokenizer, ids):
        st.warning(figs.unknown_warning(unknown, len(ids)))
    st.html(token_chips(tokenizer.display_tokens(ids), ids))
    words = course.capital_words(tokenizer, tokenizer.decode(ids))
    if words and tokenizer.kind == "bpe":
        learned = learned_vocabulary(course.model_key(loaded), loaded)
        st.caption(figs.capital_words_caption(loaded.name, words, learned))
    return ids


def show_distribution(
    loaded: LoadedModel, ids: list[int], settings: SamplingSettings, n_bars: int
) -> None:
    distribution = next_token_distribution(course.next_token_logits(loaded.model, ids), settings)
    shown = figs.bar_ids(distribution, n_bars)
    tokens = loaded.tokenizer.display_tokens(shown)
    label = figs.settings_label(settings)
    title = _("Next token after your prompt")
    widgets.chart(figs.distribution_chart(distribution, shown, tokens, title, subtitle=label))
    st.caption(figs.distribution_caption(distribution, shown[0], tokens[0]))


def current_run(loaded: LoadedModel, ids: list[int], seed: int) -> course.GenerationRun:
    """The step-by-step text of this session; a new one when the prompt, model or seed change."""
    key = (course.model_key(loaded), tuple(ids), seed)
    stored = st.session_state.get(RUN_KEY)
    if stored is None or stored[0] != key:
        stored = (key, course.GenerationRun(list(ids), seed))
        st.session_state[RUN_KEY] = stored
    return stored[1]


def drawn_run(loaded: LoadedModel, ids: list[int], settings: SamplingSettings, seed: int):
    """The text drawn token by token: the tokens drawn so far (kept in the link) with Back, Add
    one token, Generate all and Start over; new tokens are drawn with the settings of now."""
    n = st.number_input(
        _("Tokens to generate"), 1, MAX_GENERATED, 20, key="gpt-n", bind=BIND, width=200
    )
    drawn = widgets.computation_steps(
        _("Tokens drawn"),
        TOKENS_KEY,
        int(n),
        (_("◀ Back"), "gpt-back"),
        (_("Add one token ▶"), "gpt-step"),
        restart_on=(course.model_key(loaded), tuple(ids), seed),
        jumps=lambda _step: [
            Jump(_("Generate {count} tokens").format(count=n), "gpt-generate", int(n)),
            Jump(_("Start over"), "gpt-restart", 0),
        ],
    )
    return current_run(loaded, ids, seed).advance(loaded.model, drawn, settings)


def show_steps(loaded: LoadedModel, ids: list[int], settings: SamplingSettings, seed: int) -> None:
    run = drawn_run(loaded, ids, settings, seed)
    if not run.new:
        st.html(figs.sequence_html(loaded.tokenizer.display_tokens(ids), len(ids)))
        st.info(_("Press Add one token to generate the first token."))
        return
    chosen = len(run.new)
    if len(run.new) > 1:
        chosen = st.slider(
            _("Show the step that drew token"),
            1,
            len(run.new),
            len(run.new),
            key=f"gpt-show-{id(run)}-{len(run.new)}",
        )
    sequence = loaded.tokenizer.display_tokens(run.sequence)
    st.html(figs.sequence_html(sequence, len(run.prompt), selected=len(run.prompt) + chosen - 1))
    st.caption(
        _("{count} tokens generated with seed {seed}.").format(count=len(run.new), seed=run.seed)
    )
    show_step(loaded, run, chosen - 1)


def show_step(loaded: LoadedModel, run: course.GenerationRun, i: int) -> None:
    step = run.explain(loaded.model, i)
    tokenizer = loaded.tokenizer
    token = tokenizer.display_tokens([step.token])[0]
    shown = figs.bar_ids(step.distribution, 15, chosen=step.token)
    title = _("Step {number}: drew {token} ({settings})").format(
        number=i + 1, token=figs.quoted(token), settings=figs.settings_label(step.settings)
    )
    widgets.chart(
        figs.distribution_chart(
            step.distribution, shown, tokenizer.display_tokens(shown), title, chosen=step.token
        )
    )
    st.caption(figs.step_caption(step, token, run.left_window(step, i)))
    context_tokens = tokenizer.display_tokens(step.context)
    title = _("Where the last position, {token}, looked").format(
        token=figs.quoted(context_tokens[-1])
    )
    widgets.chart(figs.attention_row_chart(step.attention, context_tokens, title))
    st.caption(figs.attention_caption(step.attention, context_tokens))


def show_comparison(
    loaded: LoadedModel, ids: list[int], settings: SamplingSettings, seed: int
) -> None:
    by_character = course.per_character(loaded.tokenizer)
    n = st.slider(
        _("Characters to generate") if by_character else _("Tokens to generate"),
        5,
        MAX_COMPARE,
        60 if by_character else 30,
        key="gpt-compare-chars" if by_character else "gpt-compare-tokens",
        bind=BIND,
    )
    key, prompt = course.model_key(loaded), tuple(ids)
    results = {
        _("Greedy (temperature 0)"): cached_continuation(
            key, loaded, prompt, n, SamplingSettings(temperature=0), 0
        ),
        _("Sampled: {settings}, seed {seed}").format(
            settings=figs.settings_label(settings), seed=seed
        ): cached_continuation(key, loaded, prompt, n, settings, seed),
    }
    prompt_text = loaded.tokenizer.decode(ids)
    for column, (heading, result) in zip(st.columns(2), results.items(), strict=True):
        text = loaded.tokenizer.decode(result.new)
        repeated = course.repeated_share(text.split(), 3)
        with column:
            st.html(figs.continuation_html(prompt_text, text, heading))
            left, right = st.columns(2)
            left.metric(_("Repeated three-word sequences"), figs.share_text(repeated))
            right.metric(_("Mean −log p of its tokens"), f"{result.mean_loss:.3f}")
    if settings.greedy:
        st.caption(_("With temperature 0 both columns decode greedily, so they are the same."))


def show_search(loaded: LoadedModel, ids: list[int], settings: SamplingSettings, seed: int):
    """Greedy, sampled or beam-search text with every candidate each step looked at."""
    choice, size, length = st.columns(3)
    # The options stay in English: a link keeps the option's label (see decoding_name).
    strategy = widgets.url_choice(
        choice.radio, _("Decoding"), DECODINGS, "gpt-decoding", format_func=_, index=2
    )
    k = size.slider(_("Beams k"), 1, MAX_SEARCH_BEAMS, 3, key="gpt-beams", bind=BIND)
    n = length.slider(
        _("New tokens at most"), 1, MAX_SEARCH_TOKENS, 16, key="gpt-search-n", bind=BIND
    )
    normalise = length.toggle(_("Length normalisation"), True, key="gpt-normalise", bind=BIND)
    stop = size.toggle(_("A line break ends a text"), True, key="gpt-line-ends", bind=BIND)
    eos = course.end_token(loaded.tokenizer) if stop else None
    args = (BeamSettings(int(k), float(normalise)), settings, seed, eos)
    key, prompt = course.model_key(loaded), tuple(ids)
    try:
        search, greedy = (
            cached_search(key, loaded, prompt, n, s, *args) for s in (strategy, GREEDY)
        )
    except ValueError as error:
        st.warning(_("This search cannot run: {problem}.").format(problem=error))
        return
    labels, texts = course.search_texts(loaded.tokenizer, search)
    title = _("{decoding}, step by step").format(decoding=decoding_name(strategy))
    subtitle = figs.search_subtitle(strategy, k, settings)
    widgets.chart(figs.beam_chart(search, labels, title, subtitle))
    st.dataframe(figs.beam_rows(search, texts, eos), hide_index=True)
    st.caption(figs.beam_caption(search, strategy, greedy.best))


def show_objective(loaded: LoadedModel, ids: list[int]) -> None:
    if len(ids) < 2:
        st.info(_("The loss needs at least two tokens: type a longer prompt."))
        return
    result = course.prompt_loss(loaded.model, ids)
    tokens = loaded.tokenizer.display_tokens(ids)
    losses = result.losses.tolist()
    st.html(figs.loss_chips(tokens, losses))
    title = _("−log p of each token given the tokens before it")
    widgets.chart(figs.loss_chart(tokens, losses, result.mean, title))
    for column, (name, value) in zip(st.columns(3), figs.loss_metrics(result), strict=True):
        column.metric(name, value)
    val_loss = loaded.metadata.get("metrics", {}).get("val_loss")
    st.caption(figs.loss_caption(result, tokens, val_loss))


lesson = widgets.lesson_header(SLUG)

# The input strip: the model and your prompt, with its tokens.
with st.container():
    model_column, prompt_column = st.columns([1, 2])
    with model_column:
        loaded = widgets.model_picker(_("Model"), "gpt", key="gpt-model", default=DEFAULT_MODEL)
    with prompt_column:
        ids = prompt_ids(loaded) if loaded is not None else None

# The live figure: the next-token distribution, with the settings that shape it beside it
# (under it on a phone).
figure_column, controls_column = st.columns([3, 1])
with controls_column:
    settings = sampling_controls()
    n_bars = st.slider(_("Bars to show"), 5, MAX_BARS, 15, key="gpt-bars", bind=BIND)
    seed = widgets.seed_control(key="gpt-seed")
with figure_column:
    if ids:
        show_distribution(loaded, ids, settings, n_bars)
    elif loaded is None:
        st.info(_("Pick a model above to see its predictions."))

widgets.lesson_section(lesson, "next-token")
widgets.lesson_section(lesson, "sampling")

widgets.lesson_section(lesson, "steps")
if ids:
    show_steps(loaded, ids, settings, seed)

widgets.lesson_section(lesson, "greedy")
if ids:
    show_comparison(loaded, ids, settings, seed)

widgets.lesson_section(lesson, "beam", max_beams=MAX_SEARCH_BEAMS, max_tokens=MAX_SEARCH_TOKENS)
if ids:
    show_search(loaded, ids, settings, seed)

widgets.lesson_section(lesson, "objective")
if ids:
    show_objective(loaded, ids)

widgets.lesson_section(lesson, "limits")
if loaded is not None:
    size = count_parameters(loaded.model)
    st.caption(figs.model_size_caption(loaded.name, loaded.config, size))
widgets.published_models(lesson, "gpt")
widgets.lesson_section(lesson, "code")

questions.ask(lesson, loaded=loaded, ids=ids or None, settings=settings)
