"""Inputs and lesson rendering shared by every page.

Shared, read-only objects (shipped models in eval mode, parsed lessons) are cached per process
with ``st.cache_resource``; anything a student makes lives in ``st.session_state``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

import streamlit as st

from tinyformers import i18n
from tinyformers.figures.bertviz import projector_theme, translated_menus
from tinyformers.figures.common import code_block, fit_height, split_code_blocks
from tinyformers.hosting import Hosting
from tinyformers.hub.checkpoint import CheckpointError
from tinyformers.hub.registry import LoadedModel, load_huggingface, load_shipped, shipped_names
from tinyformers.hub.workspace import (
    WorkLimits,
    Workspace,
    WorkspaceError,
    default_root,
    is_valid_id,
    new_id,
    prune,
)
from tinyformers.i18n import DEFAULT_LANGUAGE, LANGUAGES, _, negotiate, ngettext
from tinyformers.lessons import Lesson, fill_placeholders, get_lesson, load_lessons, translated
from tinyformers.model import published
from tinyformers.text.corpora.user_text import UserTextError, clean_user_text, decode_upload
from tinyformers.text.display import plain
from tinyformers.training.backends import backend_from_env
from tinyformers.training.jobs import (
    FINISHED,
    QUEUED,
    SESSION_CLOSED,
    STOPPED,
    Job,
    Limits,
    Slots,
    Snapshot,
)

PAGES_DIR = Path(__file__).parent / "app_pages"
ASSETS = Path(__file__).resolve().parents[1] / "assets"
STYLE_DIR, SCRIPT_DIR = ASSETS / "style", ASSETS / "js"
MAX_INPUT_CHARS = 2_000
BIND = "query-params"  # a widget's value lives in the page's URL under its key: views are links
PRESENT_PARAM = "present"  # ?present=1: presenter mode
PRESENTING_KEY = "presenting"
LANGUAGE_KEY = "lang"  # ?lang=ru|en: the language of the interface and of the lessons
STEP_PARAM = "step"  # ?step=N: the step (section) of a lesson a link opens at
LINK_SEEN_KEY = "_link-seen"  # the URL's parameters as the last run ended
URL_SEEN_KEY = "_url-seen"  # key -> its URL values as this session's page last left them
PROJECTOR_FONT = 20  # px: chart text in presenter mode
OTHER_MODEL = "Other: a Hugging Face model or a folder…"
ENGLISH_NOTE_KEY = "_english-models-noted"  # this page run said that the models read English
ENGLISH_FAMILIES = {"gpt", "bert"}  # the shipped language models, trained on English stories
TRAINED_KEY = "trained_models"  # name -> LoadedModel, every model trained in this session
WORK_COOKIE = "tinyformers_work"
ERROR_DETAILS_OPTION = "client.showErrorDetails"

log = logging.getLogger(__name__)


def hosting() -> Hosting:
    """This server's settings (``TINYFORMERS_HOSTED`` and the variables over it)."""
    return Hosting.from_env()


def apply_hosting() -> None:
    """Streamlit's settings that a script may change, as this server's hosting asks: on a class
    server, students see no error details (Streamlit logs them on the server)."""
    wanted = hosting()
    if wanted.hosted and st.get_option(ERROR_DETAILS_OPTION) != wanted.error_details:
        st.set_option(ERROR_DETAILS_OPTION, wanted.error_details)


# --------------------------------------------------------------------------------------------
# Languages
# --------------------------------------------------------------------------------------------


def language() -> str:
    """This session's language (``language_switch`` sets it on every run)."""
    chosen = st.session_state.get(LANGUAGE_KEY)
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def language_switch() -> str:
    """The sidebar's language switch. A session's first run takes the URL's ``?lang=``, else
    the browser's language; the URL then always names the session's language, so a link opens
    in the language it was made in."""
    if LANGUAGE_KEY not in st.session_state:
        asked = st.query_params.get(LANGUAGE_KEY)
        chosen = asked if asked in LANGUAGES else negotiate(st.context.locale)
        st.session_state[LANGUAGE_KEY] = chosen
    st.sidebar.radio(
        "Language · Язык",
        list(LANGUAGES),
        format_func=LANGUAGES.get,
        key=LANGUAGE_KEY,
        horizontal=True,
    )
    if st.query_params.get(LANGUAGE_KEY) != language():
        st.query_params[LANGUAGE_KEY] = language()
    st.session_state[ENGLISH_NOTE_KEY] = False  # a new page run: its first model picker says it
    return language()


def number(value: float) -> str:
    """``value`` written as this session's language writes numbers."""
    return i18n.number(value, language())


def _session_language() -> str:
    """The language of the session whose script runs in this thread; English in any other
    thread (a background job)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if get_script_run_ctx(suppress_warning=True) is None:
        return DEFAULT_LANGUAGE
    return language()


i18n.set_language_source(_session_language)


# --------------------------------------------------------------------------------------------
# Lessons
# --------------------------------------------------------------------------------------------


def page_file(slug: str) -> Path:
    """The page script of a lesson: ``app_pages/<slug with underscores>.py``."""
    return PAGES_DIR / f"{slug.replace('-', '_')}.py"


@st.cache_resource
def _lesson_in(slug: str, language: str) -> Lesson:
    return translated(get_lesson(slug), language)


def lesson(slug: str) -> Lesson:
    """The lesson in this session's language (in English where it has no translation yet)."""
    return _lesson_in(slug, language())


def lessons() -> list[Lesson]:
    """Every lesson that has a page, in course order, in this session's language."""
    return [lesson(x.slug) for x in load_lessons() if page_file(x.slug).is_file()]


def lesson_header(slug: str) -> Lesson:
    """The lesson's title and one line on what you will do; its introduction and learning
    outcomes wait in a collapsed section, so the live model comes first. Returns the lesson."""
    current = lesson(slug)
    st.title(current.title)
    if current is get_lesson(slug) and language() != DEFAULT_LANGUAGE:
        st.caption(_("This lesson has no translation yet, so its text is in English."))
    st.markdown(current.summary)
    with st.expander(_("About this lesson: what you will learn")):
        st.markdown(current.intro)
        st.markdown("\n".join(f"- {outcome}" for outcome in current.outcomes))
    return current


@st.cache_resource
def _style(name: str) -> str:
    return (STYLE_DIR / f"{name}.css").read_text(encoding="utf-8")


def presenting() -> bool:
    """Whether this session shows pages in presenter mode."""
    return bool(st.session_state.get(PRESENTING_KEY))


def chart(figure, key: str | None = None) -> None:
    """A Plotly figure in its own colours and fonts (not Streamlit's theme), never taller than
    a projector's screen; in presenter mode, with large dark text."""
    if presenting():
        figure.update_layout(font=dict(size=PROJECTOR_FONT, color="#000000"))
    st.plotly_chart(fit_height(figure), theme=None, key=key)


def attention_view(page: str, height: int) -> None:
    """A bertviz view (a page from ``tinyformers.figures.bertviz``) in its frame; in presenter
    mode, in the projector theme: black on white, with large bold text."""
    page = translated_menus(page)
    st.iframe(projector_theme(page) if presenting() else page, height=height)


@st.cache_resource
def _script(name: str) -> str:
    return (SCRIPT_DIR / f"{name}.js").read_text(encoding="utf-8")


def page_style() -> None:
    """The app's stylesheets and its step-through script (our own files, no user text in
    them), given its words in the session's language."""
    sheets = ["app", "present"] if presenting() else ["app"]
    st.html("".join(f"<style>{_style(name)}</style>" for name in sheets))
    words = {
        "step": _("Step {n} of {total}"),
        "previous": _("Previous step (←, Page Up)"),
        "next": _("Next step (→, Page Down)"),
    }
    # as JSON that cannot close the script: <, > and & written as \u escapes
    given = json.dumps(words).translate({ord(c): f"\\u{ord(c):04x}" for c in "<>&"})
    script = f"window.tinyformersStepperText = {given};\n{_script('stepper')}"
    # in the sidebar, so the lesson's own elements come first in the main column
    st.sidebar.html(f"<script>{script}</script>", unsafe_allow_javascript=True)


def asked_presenter_mode() -> bool:
    """Whether the URL asks for presenter mode (``?present=1``)."""
    return st.query_params.get(PRESENT_PARAM, "").strip().lower() in ("1", "true", "yes")


def start_presenting_if_asked() -> bool:
    """On a session's first run, presenter mode follows the URL. Returns whether it is on."""
    if PRESENTING_KEY not in st.session_state:
        st.session_state[PRESENTING_KEY] = asked_presenter_mode()
    return presenting()


def _follow_toggle() -> None:
    st.session_state[PRESENTING_KEY] = st.session_state["present-toggle"]


def presenter_toggle() -> None:
    """The sidebar's presenter-mode switch, kept in the URL as ``?present=1``."""
    on = st.sidebar.toggle(
        _("Presenter mode"),
        value=presenting(),
        key="present-toggle",
        help=_("Large type and dark chart text for a projector; the link keeps the mode."),
        on_change=_follow_toggle,  # before the rerun starts, so the page is styled at once
    )
    if on and st.query_params.get(PRESENT_PARAM) != "1":
        st.query_params[PRESENT_PARAM] = "1"
    elif not on and PRESENT_PARAM in st.query_params:
        del st.query_params[PRESENT_PARAM]


def link_parameters() -> dict[str, list[str]]:
    """The URL's parameters now (a parameter may repeat, as a range slider's does)."""
    return {key: st.query_params.get_all(key) for key in st.query_params}


def link_notice(asked: dict[str, list[str]]) -> None:
    """After a page ran on a link: say which of the link's settings it could not use. (Streamlit
    drops a value a widget cannot take from the URL; a key no widget has stays unused.)"""
    now = link_parameters()
    seen, st.session_state[LINK_SEEN_KEY] = st.session_state.get(LINK_SEEN_KEY), now
    if asked == seen:  # nothing new came with this run: the student is using the page
        return
    own = {PRESENT_PARAM, STEP_PARAM}
    unused = [k for k in asked if k not in own and (k not in now or k not in st.session_state)]
    if unused:
        st.toast(link_notice_text(unused), icon=":material/link_off:")


def link_notice_text(keys: list[str]) -> str:
    """The notice for link settings a page could not use (odd names are counted, not shown)."""
    shown = [k for k in keys if re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", k)]
    parts = [f"`{k}`" for k in shown[:6]]
    if (others := len(keys) - len(parts)) > 0:
        parts.append(ngettext("{n} other", "{n} others", others))
    return _(
        "This link's {settings} do not fit this page, so it shows its defaults instead."
    ).format(settings=", ".join(parts))


def view_link() -> str | None:
    """The link to this view: the page's address with every setting kept in the URL."""
    base = st.context.url
    if not base:
        return None
    query = urlencode(link_parameters(), doseq=True)
    return f"{base}?{query}" if query else base


def link_panel() -> None:
    """The sidebar's "Link to this view", with a copy button."""
    link = view_link()
    if link is None:
        return
    with st.sidebar.expander(_("Link to this view"), icon=":material/link:"):
        st.caption(_("Opens this page with the same inputs and choices (and the same seed)."))
        code(link, wrap=True)


def lesson_section(
    current: Lesson, key: str, values: Mapping[str, object] | None = None, **more: object
) -> None:
    """A section's headline and text (in presenter mode, the text waits under "Notes").

    ``values`` (or keyword arguments) fill the text's ``{{name}}`` placeholders; a placeholder
    left without a value, or a value the text has no place for, raises ``PlaceholderError``."""
    section = current.section(key)
    body = fill_placeholders(section.body, {**(values or {}), **more}, f"{current.slug}#{key}")
    st.subheader(section.title)
    if presenting():
        with st.expander(_("Notes")):
            markdown(body)
    else:
        markdown(body)


def markdown(text: str) -> None:
    """Lesson markdown, its fenced code blocks drawn by ``code``."""
    for part, language in split_code_blocks(text):
        if language is None:
            st.markdown(part)
        else:
            code(part, language)


def code(source: str, language: str = "", wrap: bool = False) -> None:
    """A code block (or any text shown exactly as it is), coloured on the server: Streamlit's
    own code element loads a 1.5 MB highlighter into the browser, a quarter of a second of a
    page's first paint."""
    st.html(code_block(source, language, wrap))


# --------------------------------------------------------------------------------------------
# A computation shown step by step
# --------------------------------------------------------------------------------------------

STEP_NEXT, STEP_BACK = "step-next", "step-back"
"""A computation's own Next and Back buttons sit in containers keyed ``step-next-<key>`` and
``step-back-<key>``, which Streamlit gives the classes ``st-key-step-next-<key>`` and
``st-key-step-back-<key>``. The step-through keys (assets/js/stepper.js) press the enabled one
in the section at the top of the screen, and move to another section when there is none."""


@dataclass(frozen=True)
class Jump:
    """A button beside a computation's steps that goes straight to step ``target`` (None, or
    the step shown now: the button is disabled)."""

    label: str
    key: str
    target: int | None
    help: str | None = None


def _set_step(key: str, value: int) -> None:
    st.session_state[key] = value


def _move_step(key: str, delta: int, last: int) -> None:
    st.session_state[key] = min(max(st.session_state[key] + delta, 0), last)


def computation_steps(
    label: str,
    key: str,
    last: int,
    back: tuple[str, str],
    next_: tuple[str, str],
    *,
    names: Callable[[int], str] | None = None,
    start: int = 0,
    restart_on: object = None,
    jumps: Callable[[int], Sequence[Jump]] = lambda _: (),
) -> int:
    """A computation shown step by step: steps 0 .. ``last`` on a slider kept in the URL under
    ``key`` (so a link opens at the same step), with Back and Next buttons (each a label and a
    key) that the step-through keys press too, and ``jumps(step)`` beside them. ``names`` labels
    the steps; ``start`` is the step a new session starts at; when ``restart_on`` (what the
    computation runs on) changes, it goes back to ``start``. Returns the step shown."""
    last = max(last, 0)
    seen = st.session_state.get(f"{key}-input")
    st.session_state[f"{key}-input"] = restart_on
    if seen is not None and seen != restart_on:
        st.session_state[key] = start
    value = st.session_state.setdefault(key, start)
    if not isinstance(value, int) or not 0 <= value <= last:
        st.session_state[key] = min(max(value, 0), last) if isinstance(value, int) else start
    row = st.container(horizontal=True, vertical_alignment="bottom")
    if last == 0:
        step = 0
    elif names is None:
        step = row.slider(label, 0, last, key=key, bind=BIND)
    else:  # the URL keeps the step's number, the same in every language
        options = list(range(last + 1))
        first = min(max(start, 0), last)
        step = url_choice(row.select_slider, label, options, key, format_func=names, index=first)
    for (text, button_key), marker, delta, disabled in (
        (back, STEP_BACK, -1, step == 0),
        (next_, STEP_NEXT, 1, step == last),
    ):
        row.container(key=f"{marker}-{key}", width="content").button(
            text, key=button_key, on_click=_move_step, args=(key, delta, last), disabled=disabled
        )
    for jump in jumps(step):
        row.button(
            jump.label,
            key=jump.key,
            on_click=_set_step,
            args=(key, jump.target),
            disabled=jump.target in (None, step),
            help=jump.help,
        )
    return step


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def whole_number(where, choice, key: str, **options) -> int:
    """A whole-number input for ``choice`` (anything with a label, low, high, default, step and
    help, such as ``course.train.NumberChoice``), kept in the page's link."""
    options.setdefault("help", choice.help)
    low, high, default, step = choice.low, choice.high, choice.default, choice.step
    return int(
        where.number_input(choice.label, low, high, default, step, key=key, bind=BIND, **options)
    )


def seed_control(key: str = "seed", default: int = 0) -> int:
    """A seed the whole class can share: like every choice on a page, it is kept in the URL."""
    seed = st.number_input(
        _("Seed"),
        min_value=0,
        max_value=2**31 - 1,
        value=default,
        step=1,
        key=key,
        bind=BIND,
        help=_("Same seed, same result: share the page's link and everyone sees the same thing."),
    )
    return int(seed)


@dataclass(frozen=True)
class OptionNames:
    """How a menu kept in the URL shows its options: each option's name, written once, in the
    language of the run that drew the menu."""

    options: list
    names: list[str]

    @classmethod
    def of(cls, options: list, format_func: Callable[[object], str]) -> OptionNames:
        return cls(options, [format_func(option) for option in options])

    def __call__(self, option: object) -> str:
        return self.names[self.options.index(option)]


def url_choice(
    draw: Callable,
    label: str,
    options: Sequence,
    key: str,
    *,
    format_func: Callable[[object], str] = str,
    index: int = 0,
    **more,
):
    """``draw`` (a radio, selectbox or select slider) over ``options``, each shown by
    ``format_func``, its choice kept in the URL under ``key`` as the option itself.

    Streamlit's own binding writes the shown text into the URL, so a link made in one language
    would not open in the other; here the URL holds the option (``greedy``, ``2``) and the page
    shows it in the session's language. The URL is read when the widget is new and whenever the
    address changed under the page (a link, Back, a class room); a value that is not an option
    is dropped, as Streamlit drops it."""
    options = list(options)
    codes = [str(option) for option in options]
    default = options[index]
    if url_changed(key):
        asked = st.query_params.get(key)
        st.session_state[key] = options[codes.index(asked)] if asked in codes else default
    elif st.session_state[key] not in options:
        st.session_state[key] = default
    value = draw(label, options, format_func=OptionNames.of(options, format_func), key=key, **more)
    keep_in_url(key, [] if value == default else [str(value)])
    return value


def url_changed(key: str) -> bool:
    """Whether the widget under ``key`` is new, or the URL's values for it are not the ones
    ``keep_in_url`` last left there: a link, Back or a class room changed the address."""
    seen = st.session_state.get(URL_SEEN_KEY, {})
    return key not in st.session_state or st.query_params.get_all(key) != seen.get(key)


def keep_in_url(key: str, values: list[str]) -> None:
    """The URL's values under ``key`` (none: the key dropped), written only when they change,
    and remembered for ``url_changed``.

    Each write sends the whole query string as the server has it, and a widget bound to the URL
    by Streamlit (a slider, say) may have changed in the browser since: writing an unchanged
    choice again could put the widget's old value back in the address bar."""
    if st.query_params.get_all(key) != values:
        if values:
            st.query_params[key] = values if len(values) > 1 else values[0]
        else:
            st.query_params.pop(key, None)
    st.session_state.setdefault(URL_SEEN_KEY, {})[key] = st.query_params.get_all(key)


def url_choices(
    draw: Callable,
    label: str,
    options: Sequence,
    key: str,
    *,
    default: Sequence,
    format_func: Callable[[object], str] = str,
    **more,
) -> list:
    """``url_choice`` for several choices (a multiselect): the URL names each chosen option
    under ``key``, and an empty choice as one empty value."""
    options = list(options)
    codes = [str(option) for option in options]
    if url_changed(key):
        asked = st.query_params.get_all(key)
        chosen = [options[codes.index(code)] for code in asked if code in codes]
        if asked != [""] and not chosen:  # nothing usable: the default, and the link drops it
            asked = []
            st.query_params.pop(key, None)
        st.session_state[key] = chosen if asked else list(default)
    elif any(option not in options for option in st.session_state[key]):
        st.session_state[key] = [o for o in st.session_state[key] if o in options]
    value = draw(label, options, format_func=OptionNames.of(options, format_func), key=key, **more)
    chosen = [] if list(value) == list(default) else [str(option) for option in value] or [""]
    keep_in_url(key, chosen)
    return list(value)


def labelled_radio(
    label: str, labels: dict[str, str], key: str, where=st, horizontal: bool = True, **options
) -> str:
    """A radio over the keys of ``labels``, each shown by its label in the session's language,
    its key kept in the URL."""
    shown = partial(_labelled, labels)
    return url_choice(
        where.radio, label, list(labels), key, format_func=shown, horizontal=horizontal, **options
    )


def labelled_select(label: str, labels: dict[str, str], key: str, where=st, **options) -> str:
    """A selectbox over the keys of ``labels``, each shown by its label in the session's
    language, its key kept in the URL."""
    shown = partial(_labelled, labels)
    return url_choice(where.selectbox, label, list(labels), key, format_func=shown, **options)


def _labelled(labels: Mapping[str, str], key: str) -> str:
    return _(labels[key])


def url_text_input(
    label: str, default: str, key: str, draw: Callable = st.text_input, **options
) -> str:
    """A text box (``draw``: ``st.text_input`` or ``st.text_area``) whose text is kept in the
    URL under ``key`` (left out while it is ``default``), read when the box is new and whenever
    the address changed under the page.

    The page writes the URL itself, as ``url_choice`` does, rather than through Streamlit's own
    binding: the browser's copy of a bound box changes before the server's, and any other value
    the page writes in that run sends the server's whole query string, old text included."""
    if url_changed(key):
        asked = st.query_params.get(key)
        st.session_state[key] = default if asked is None else asked
    text = draw(label, key=key, **options)
    keep_in_url(key, [] if text == default else [text])
    return text


def sentence_input(
    label: str,
    default: str,
    key: str,
    tokenizer=None,
    max_tokens: int | None = None,
    max_chars: int = MAX_INPUT_CHARS,
) -> str | None:
    """A text box with a character cap and, given a tokenizer, a token cap.

    Returns the text to use (cut to the caps, with a visible message saying so), or None with a
    message when there is nothing usable.
    """
    text = url_text_input(label, default, key)
    if len(text) > max_chars:
        st.warning(
            _("Your text has {count} characters; only the first {limit} are used.").format(
                count=f"{len(text):,}", limit=f"{max_chars:,}"
            )
        )
        text = text[:max_chars]
    try:
        text = clean_user_text(text, max_chars=max_chars)
    except UserTextError as err:
        st.warning(plain(err))
        return None
    if tokenizer is not None and max_tokens is not None:
        ids = tokenizer.encode(text)
        if len(ids) > max_tokens:
            st.warning(
                _(
                    "Your text has {count} tokens; this model reads at most {limit}, "
                    "so only the first {limit} are used."
                ).format(count=len(ids), limit=max_tokens)
            )
            text = tokenizer.decode(ids[:max_tokens])
    return text


def corpus_input(key: str) -> str | None:
    """Paste text or upload a .txt file; returns the checked text or None with a message."""
    pasted = st.text_area(_("Paste text"), key=f"{key}-paste", height=120)
    upload = st.file_uploader(_("…or upload a .txt file"), type=None, key=f"{key}-upload")
    try:
        if upload is not None:
            check_upload_size(upload.size)
            return decode_upload(upload.getvalue(), upload.name)
        if pasted.strip():
            return clean_user_text(pasted)
    except UserTextError as err:
        st.error(plain(err))
        return None
    st.info(_("Paste some text or upload a .txt file to use your own corpus."))
    return None


def check_upload_size(size: int) -> None:
    """Refuse an upload over this server's cap before it is read (``UserTextError``)."""
    cap = hosting().max_upload_bytes()
    if cap is not None and size > cap:
        raise UserTextError(
            _(
                "the file is {size} MB; this server reads uploads of up to {cap} MB. "
                "Upload a shorter .txt file, or paste part of it"
            ).format(size=f"{size / 1_000_000:.1f}", cap=f"{cap / 1_000_000:g}")
        )


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


@st.cache_resource(show_spinner=i18n.LazyMessage(i18n.N_("Loading model…")))
def shipped_model(name: str) -> LoadedModel:
    """A shipped model, loaded once per process, in eval mode. Never mutate it."""
    return load_shipped(name)


@st.cache_resource(show_spinner=i18n.LazyMessage(i18n.N_("Loading model…")), max_entries=4)
def external_model(name_or_path: str) -> LoadedModel:
    """A Hugging Face model (or a model folder) loaded once per process, in eval mode."""
    return load_huggingface(name_or_path)


def external_models_allowed() -> bool:
    """Hosts serving a whole class can switch the option off (TINYFORMERS_EXTERNAL_MODELS=0);
    on a class server (TINYFORMERS_HOSTED=1) it is off unless TINYFORMERS_MODELS_DIR is set."""
    return hosting().external_models


def model_label(name: str) -> str:
    """How a model picker shows an option: the model's name, or "Other…" in the page's
    language."""
    if name == OTHER_MODEL:
        return _("Other: a Hugging Face model or a folder…")
    return name


def model_picker(
    label: str,
    family: str | None,
    key: str,
    choices: list[str] | None = None,
    default: str | None = None,
) -> LoadedModel | None:
    """Pick a shipped model (from ``choices`` if given), one trained in this session, or (where
    allowed) a Hugging Face model id or a local model folder, of the given family."""
    trained: dict[str, LoadedModel] = st.session_state.get(TRAINED_KEY, {})
    shipped = shipped_names(family=family) if choices is None else list(choices)
    options = shipped + [
        name for name, m in trained.items() if family is None or m.family == family
    ]
    if external_models_allowed():
        options.append(OTHER_MODEL)
    if not options:
        st.error(_("No model of this kind is available: the models/ folder is empty."))
        return None
    index = options.index(default) if default in options else 0
    name = url_choice(st.selectbox, label, options, key, format_func=model_label, index=index)
    if name in trained:
        return trained[name]
    if name != OTHER_MODEL:
        loaded = shipped_model(name)
        if loaded.family in ENGLISH_FAMILIES:
            english_models_note()
        return loaded
    wanted = st.text_input(
        _("Hugging Face model id or folder"),
        key=f"{key}-other",
        placeholder=_("gpt2 or ./my-model"),
    )
    if not wanted.strip():
        st.info(_("Type a model id such as gpt2 (it must already be on this machine) or a folder."))
        return None
    try:
        loaded = external_model(wanted.strip())
    except CheckpointError as err:
        st.error(_("That model cannot be used: {error}").format(error=plain(err)))
        return None
    if family is not None and loaded.family != family:
        st.error(
            _("{model} is a {family} model; this lesson needs {needed}.").format(
                model=plain(repr(wanted.strip())),
                family=loaded.family.upper(),
                needed=family.upper(),
            )
        )
        return None
    return loaded


def english_models_note() -> None:
    """Once a page, in Russian: the shipped models read English, and the train page makes a
    model that reads the student's own Russian text."""
    if language() == DEFAULT_LANGUAGE or st.session_state.get(ENGLISH_NOTE_KEY):
        return
    st.session_state[ENGLISH_NOTE_KEY] = True
    st.info(
        _(
            "The course's models were trained on English text, so type English sentences here. "
            "For a model that reads Russian, train a small one on your own Russian text on the "
            "[train page](train) (corpus: your own text); it then appears in this list."
        ),
        icon=":material/translate:",
    )


# --------------------------------------------------------------------------------------------
# Training in the background
# --------------------------------------------------------------------------------------------

POLL_SECONDS = 0.5


@st.cache_resource
def server_limits() -> Limits:
    """The host's caps (environment variables), read once per process."""
    return Limits.from_env()


@st.cache_resource
def training_slots() -> Slots:
    """One queue per server: at most ``max_concurrent`` runs train at once (on Ray, one queue
    for every replica)."""
    backend = backend_from_env()
    if hasattr(backend, "slots"):
        return backend.slots(server_limits().max_concurrent)
    return Slots(server_limits().max_concurrent)


def session_owner() -> Callable[[], bool] | None:
    """ "Is this browser session still connected?", asked by a job of this session (from its
    monitor thread, so it reads Streamlit's runtime, not the script context). None outside a
    Streamlit server."""
    from streamlit import runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not runtime.exists():
        return None
    return partial(runtime.get_instance().is_active_session, ctx.session_id)


def start_job(key: str, work: Callable, name: str = "training") -> Job:
    """Start ``work(report)`` in a worker for this session, replacing any earlier job under
    ``key`` (which is asked to stop). ``work`` crosses into another process: a top-level
    function or a ``functools.partial`` of one, with picklable arguments. The job stops by
    itself once this session has been closed for ``session_grace_s``."""
    old: Job | None = st.session_state.get(key)
    if old is not None:
        old.stop()
    limits = server_limits()
    job = Job(
        work,
        training_slots(),
        name=name,
        backend=backend_from_env(),
        threads=limits.threads_per_run,
        max_seconds=limits.max_seconds,
        owner=session_owner(),
        owner_grace_s=limits.session_grace_s,
    ).start()
    st.session_state[key] = job
    st.session_state[f"{key}-polling"] = True
    return job


def failure_message(error: str) -> str:
    """What a student reads about a failed run: its error, or on a server that hides error
    details, only that it failed (the server's log has the rest). The run wrote its error in
    English, away from the page; it is translated here, as it is shown."""
    if hosting().error_details == "none":
        return _("The run failed. The server's log has the details; try again or change a setting.")
    kind, colon, message = error.partition(": ")
    language = i18n.current_language()
    if colon and re.fullmatch(r"[A-Z]\w*", kind):  # "ValueError: …": the exception's name stays
        shown = f"{kind}: {i18n.translate_written(message, language)}"
    else:
        shown = i18n.translate_written(error, language)
    return _("The run failed: {error}").format(error=plain(shown))


def job_progress(key: str, render: Callable[[Snapshot], None]) -> Snapshot | None:
    """Show the job under ``key``: its place in the queue, a Stop button, and ``render`` of its
    latest snapshot, redrawn every half second while it runs. Returns the latest snapshot."""
    job: Job | None = st.session_state.get(key)
    if job is None:
        return None
    polling = st.session_state.get(f"{key}-polling", False)

    @st.fragment(run_every=POLL_SECONDS if polling else None)
    def live() -> None:
        snap = job.snapshot()
        if snap.status == QUEUED:
            st.info(
                ngettext(
                    "Busy: {n} run is ahead of you. Yours starts as soon as a slot frees up.",
                    "Busy: {n} runs are ahead of you. Yours starts as soon as a slot frees up.",
                    snap.ahead,
                )
            )
        if snap.active:
            st.button(_("Stop"), key=f"{key}-stop", on_click=job.stop)
        elif snap.error:
            st.error(failure_message(snap.error))
        elif snap.stop_reason == SESSION_CLOSED:
            st.info(_("The run stopped because its browser tab was closed."))
        elif job.timed_out:
            st.warning(
                _(
                    "The run reached this server's limit of {seconds} s of training "
                    "time and stopped; what it learned so far is kept."
                ).format(seconds=f"{job.max_seconds:g}")
            )
        render(snap)
        if polling and not snap.active:
            st.session_state[f"{key}-polling"] = False
            st.rerun(scope="app")

    live()
    return job.snapshot()


# --------------------------------------------------------------------------------------------
# Saved work: what a student made survives a reload, in this browser only
# --------------------------------------------------------------------------------------------


@st.cache_resource
def work_settings() -> tuple[Path, WorkLimits]:
    """Where saved work lives and how much is kept; old work is pruned once per process."""
    root, limits = default_root(), WorkLimits.from_env()
    prune(root, limits)
    return root, limits


def workspace() -> Workspace:
    """This browser's saved work. On a session's first run its trained models come back from
    the server (the browser names its work with a cookie); a new browser gets a new id."""
    root, limits = work_settings()
    if "work_id" not in st.session_state:
        cookie = st.context.cookies.get(WORK_COOKIE)
        if is_valid_id(cookie):
            st.session_state.work_id = cookie
            restored = Workspace(root, cookie, limits).load_models()
            st.session_state[TRAINED_KEY] = {**restored, **st.session_state.get(TRAINED_KEY, {})}
        else:
            st.session_state.work_id = new_id()
            st.session_state.work_cookie_pending = True
    if st.session_state.pop("work_cookie_pending", False):
        max_age = int(limits.max_age_days * 86_400)
        st.html(  # the id is ours (letters, digits, - and _), never text a user typed
            f"<script>document.cookie = '{WORK_COOKIE}={st.session_state.work_id}; path=/; "
            f"max-age={max_age}; SameSite=Lax';</script>",
            unsafe_allow_javascript=True,
        )
    return Workspace(root, st.session_state.work_id, limits)


def keep_trained_model(loaded: LoadedModel) -> None:
    """Offer a trained model to every lesson in this session and keep it for later visits;
    beyond this server's cap of models per session, the oldest goes."""
    trained = st.session_state.setdefault(TRAINED_KEY, {})
    trained.pop(loaded.name, None)  # a model trained again under its name is the newest
    trained[loaded.name] = loaded
    removed = list(trained)[: max(0, len(trained) - hosting().session_models)]
    work = workspace()
    try:
        for name in removed:
            work.remove_model(name)
        removed += work.save_model(loaded)
    except (WorkspaceError, OSError) as err:
        log.warning("could not save %r: %s", loaded.name, err)
        st.warning(
            _("{model} is kept in this tab only: {error}.").format(
                model=plain(loaded.name), error=plain(err)
            )
        )
    for name in removed:
        trained.pop(name, None)
    if removed:
        names = ", ".join(plain(name) for name in dict.fromkeys(removed))
        st.info(
            _(
                "To stay within what this server keeps for you, your oldest model ({models}) "
                "was removed."
            ).format(models=names)
        )


def saved_work_panel() -> None:
    """A line about what this browser has saved, and a button that forgets it all."""
    work = workspace()
    names = list(st.session_state.get(TRAINED_KEY, {}))
    if not names:
        st.caption(_("Models you train are kept for your next visit, in this browser only."))
        return
    kept = ", ".join(plain(name) for name in names)
    st.caption(_("Kept for your next visit: {models}.").format(models=kept))
    if st.button(_("Forget my work"), key="forget-work", help=_("Remove your trained models")):
        work.forget()
        st.session_state[TRAINED_KEY] = {}
        st.rerun()


# --------------------------------------------------------------------------------------------
# Selections that follow the input: a choice that points into a sentence (a query token,
# positions to mask) or into a model (layer, head) is checked again whenever the sentence or
# the model changes. It stays when it still means the same thing, moves when the same token
# now stands elsewhere, and otherwise resets, with a short note saying so.
# --------------------------------------------------------------------------------------------

SELECTIONS_KEY = "_selections"  # key -> (tokens or count, chosen), read by tests


def follow_positions(
    chosen: list[tuple[int, str]], tokens: list[str]
) -> tuple[list[int], list[str], list[str]]:
    """Carry positions chosen in an earlier sentence over to ``tokens``.

    ``chosen`` holds (position, token text) pairs from before. A position is kept when the same
    token still stands there, moved to the nearest position holding that token otherwise, and
    dropped when the token is gone. Returns the new positions, the tokens that moved and the
    tokens that were dropped.
    """
    kept: list[int] = []
    moved: list[str] = []
    dropped: list[str] = []
    for position, token in chosen:
        if position < len(tokens) and tokens[position] == token:
            kept.append(position)
            continue
        places = [i for i, t in enumerate(tokens) if t == token and i not in kept]
        if places:
            kept.append(min(places, key=lambda i: (abs(i - position), i)))
            moved.append(token)
        else:
            dropped.append(token)
    return kept, moved, dropped


def _remember(key: str, space, chosen) -> None:
    st.session_state.setdefault(SELECTIONS_KEY, {})[key] = (space, chosen)


def _follow(key: str, tokens: list[str]) -> tuple[list[int] | None, str | None]:
    """The positions stored under ``key`` carried over to ``tokens``, and a note if they changed."""
    before = st.session_state.get(f"{key}-meaning")
    if before is None or before[0] == tokens:  # same input: the widget's own value stands
        return None, None
    positions, moved, dropped = follow_positions(before[1], tokens)
    note = None
    if dropped:
        gone = ", ".join(plain(repr(t)) for t in dropped)
        if len(dropped) == 1:
            note = _("{tokens} is not in the new input, so the choice was reset.")
        else:
            note = _("{tokens} are not in the new input, so the choice was reset.")
        note = note.format(tokens=gone)
    elif moved:
        note = _("{tokens} moved; the choice follows it.").format(
            tokens=", ".join(plain(repr(t)) for t in moved)
        )
    return positions, note


def choose_position(
    label: str, tokens: list[str], key: str, default: int = 0, help: str | None = None
) -> int:
    """A selectbox over the positions of ``tokens`` that follows the input as it changes."""
    if not tokens:
        raise ValueError("there are no tokens to choose from")
    default = min(max(default, 0), len(tokens) - 1)
    positions, note = _follow(key, tokens)
    if positions is not None:
        st.session_state[key] = positions[0] if positions else default
    elif st.session_state.get(key) not in range(len(tokens)):
        st.session_state[key] = default
    position = st.selectbox(
        label,
        list(range(len(tokens))),
        format_func=lambda i: f"{i}: {tokens[i]!r}",
        key=key,
        bind=BIND,
        help=help,
    )
    if note:
        st.caption(note)
    st.session_state[f"{key}-meaning"] = (list(tokens), [(position, tokens[position])])
    _remember(key, list(tokens), [position])
    return position


def choose_positions(
    label: str,
    tokens: list[str],
    key: str,
    default: list[int],
    allowed: list[int] | None = None,
    max_selections: int | None = None,
    help: str | None = None,
) -> list[int]:
    """A multiselect over positions of ``tokens`` (or of ``allowed`` ones) that follows the
    input as it changes."""
    allowed = list(range(len(tokens))) if allowed is None else allowed
    positions, note = _follow(key, tokens)
    limit = len(allowed) if max_selections is None else max(max_selections, 0)
    if positions is not None:
        kept = [p for p in positions if p in allowed][:limit]
        st.session_state[key] = kept or [p for p in default if p in allowed][:limit]
    elif any(p not in allowed for p in st.session_state.get(key, [])):
        st.session_state[key] = [p for p in default if p in allowed][:limit]
    chosen = st.multiselect(
        label,
        allowed,
        default=None if key in st.session_state else [p for p in default if p in allowed][:limit],
        format_func=lambda i: f"{i}: {tokens[i]!r}",
        max_selections=max(limit, 1),
        key=key,
        bind=BIND,
        help=help,
    )
    if note:
        st.caption(note)
    st.session_state[f"{key}-meaning"] = (list(tokens), [(p, tokens[p]) for p in chosen])
    _remember(key, list(tokens), list(chosen))
    return list(chosen)


def choose_index(label: str, count: int, key: str, horizontal: bool = False, container=st) -> int:
    """A choice of 0 .. count-1 (a layer, a head, a step) that stays valid when ``count``
    changes with the model: out of range, it goes back to 0 with a note."""
    if count < 1:
        raise ValueError(f"{label} needs at least one choice, got {count}")
    note = None
    if st.session_state.get(key) is not None and st.session_state[key] not in range(count):
        note = _("{label} {index} does not exist here, so {label_lower} 0 is shown.").format(
            label=label, index=st.session_state[key], label_lower=label.lower()
        )
        st.session_state[key] = 0
    options = list(range(count))
    if horizontal:
        index = container.radio(label, options, horizontal=True, key=key, bind=BIND)
    else:
        index = container.selectbox(label, options, key=key, bind=BIND)
    if note:
        container.caption(note)
    _remember(key, count, [index])
    return index


def length_slider(label: str, length: int, default: int, key: str, container=st) -> int:
    """A slider over 0 .. ``length`` (a prefix of the input) that stays valid when the input
    gets shorter: a value past the new end becomes the whole input, with a note."""
    if length < 0:
        raise ValueError(f"{label} needs a length of at least 0, got {length}")
    note = None
    if st.session_state.get(key) is not None and st.session_state[key] > length:
        note = _("The input is shorter now: the slider moved to its end, {length}.").format(
            length=length
        )
        st.session_state[key] = length
    value = container.slider(label, 0, length, min(default, length), key=key, bind=BIND)
    if note:
        container.caption(note)
    return value


def job_active(key: str) -> bool:
    """Whether the job under ``key`` is queued or running."""
    job: Job | None = st.session_state.get(key)
    return job is not None and job.snapshot().active


def job_result(key: str, status: str, kind: type) -> object | None:
    """The result of the job under ``key`` if the job has ``status`` and its result is a
    ``kind`` (a finished or a stopped job's partial result), else None."""
    job: Job | None = st.session_state.get(key)
    if job is not None and job.status == status and isinstance(job.result, kind):
        return job.result
    return None


def finished_job_result(key: str, kind: type) -> object | None:
    """The result of the job under ``key`` once it finished, or stopped with a result of
    ``kind`` (what it had done so far), else None."""
    for status in (FINISHED, STOPPED):
        result = job_result(key, status, kind)
        if result is not None:
            return result
    return None


def keep_result(store_key: str, key: object, result: object, limit: int = 8) -> None:
    """Keep ``result`` in the session's dict under ``store_key``, by ``key``, once; beyond
    ``limit`` entries the oldest is dropped."""
    store: dict = st.session_state.setdefault(store_key, {})
    if key in store:
        return
    store[key] = result
    while len(store) > limit:
        store.pop(next(iter(store)))


def table(rows: list[dict], percent: tuple[str, ...] = (), counts: tuple[str, ...] = ()):
    """A table whose ``percent`` columns read as percentages and ``counts`` with separators."""
    config = {name: st.column_config.NumberColumn(format="percent") for name in percent}
    config |= {name: st.column_config.NumberColumn(format="localized") for name in counts}
    st.dataframe(rows, hide_index=True, column_config=config)


def published_models(current: Lesson, *families: str) -> None:
    """The lesson's "published" section and its table: published models of ``families`` with
    their configurations and the parameter count computed from each."""
    lesson_section(current, "published")
    st.dataframe(published.rows(families or published.FAMILIES), hide_index=True)


def metric_row(metrics: dict[str, object]) -> None:
    """One ``st.metric`` per column, side by side: labels and values as given."""
    for column, (label, value) in zip(st.columns(len(metrics)), metrics.items(), strict=True):
        column.metric(label, value)


def draw_counter(key: str, last: int, next_key: str, first_key: str) -> int:
    """Which draw of a random process to show, 0 to ``last``: a primary button moves to the
    next draw, another goes back to the first. Kept in the session under ``key``."""
    draw = st.session_state.setdefault(key, 0)
    first, second, _third = st.columns(3)
    if first.button(_("Resample"), key=next_key, type="primary"):
        draw = min(draw + 1, last)
    if second.button(_("Back to draw 1"), key=first_key):
        draw = 0
    st.session_state[key] = draw
    return draw
