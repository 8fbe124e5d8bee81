"""Links in a real browser: a view changed on a lesson, its URL opened in a new browser context,
shows the same inputs and the same chart data (checked during each lesson's visit in
test_pages.py); presenter mode comes with its link."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import STATE_TIMEOUT, new_page, screenshot, wait_for_app
from tinyformers.course.encoder_decoder import DATE_MODEL, decode_with_trace, held_out_sources
from tinyformers.course.tokenization import BASE_VOCAB_SIZE
from tinyformers.figures.attention import STEPS
from tinyformers.hub.registry import load_shipped

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Lessons whose view is opened from its link in a second browser during their visit, one per
# kind of input (every lesson's link is checked headless, tests/test_links.py): the URL path, an
# input of the view (its key) and the value typed into it.
CHANGES = [
    ("tokenization", "tok-vocab", "300"),
    ("attention", "att-sentence", "the cat sees Mia ."),
    ("gpt", "gpt-seed", "7"),
    ("task-heads", "th-b", "she smiles ."),
]
LINK_CHANGES = {path: (key, value) for path, key, value in CHANGES}

CHART_DATA = """() => JSON.stringify([...document.querySelectorAll('.js-plotly-plot')].map(
    el => (el.data || []).map(trace => [trace.x, trace.y, trace.z, trace.text])))"""


SAME_WITHIN_S = 180  # a limit for two pages to settle on the same charts, not an expected time


def settle(page) -> None:
    wait_for_app(page)


def charts(page) -> object:
    return json.loads(page.evaluate(CHART_DATA))


def wait_for_same_charts(first, second) -> None:
    """Wait until both pages show the same chart data (each may still be redrawing)."""
    deadline = time.monotonic() + SAME_WITHIN_S
    while (a := charts(first)) != (b := charts(second)):
        assert time.monotonic() < deadline, f"the charts differ: {len(a)} against {len(b)}"
        second.wait_for_timeout(200)


def field(page, key: str):
    return page.locator(f".st-key-{key} input").first


# Presenter mode and the step-through keys are one stylesheet and one script for every lesson
# (tests/test_links.py checks the presenter switch headless); in the browser each is checked on
# two lessons, together of each kind: text input and generation, model views and decoding.
PRESENTED = ["tokenization", "gpt"]
STEPPED = ["attention", "encoder-decoder"]


def check_the_link_of_a_changed_view(browser, server_url, page, path: str) -> None:
    """On ``page`` (the lesson at ``path``, drawn): change the lesson's input of ``CHANGES``,
    then open the page's URL in a new browser context: the same input, the same chart data.
    Called during each lesson's one visit in test_pages.py."""
    key, value = LINK_CHANGES[path]
    field(page, key).fill(value)
    field(page, key).press("Enter")
    page.wait_for_url(lambda url: f"{key}=" in url)
    settle(page)
    expect(field(page, key)).to_have_value(value, timeout=STATE_TIMEOUT)
    link = page.url

    other = new_page(browser, server_url)  # a new browser: its own cookies and session
    other.goto(link)
    settle(other)
    expect(field(other, key)).to_have_value(value, timeout=STATE_TIMEOUT)
    wait_for_same_charts(page, other)
    assert other.locator("[data-testid='stException']").count() == 0
    other.context.close()


TEXT_SIZE = """() => parseFloat(getComputedStyle(
    document.querySelector("[data-testid='stMarkdownContainer'] p")).fontSize)"""


def text_size(page) -> float:
    """The font size (px) of the page's first paragraph."""
    return page.evaluate(TEXT_SIZE)


ATTENTION_VIEWS = ("multi-head", "bert", "encoder-decoder")  # lessons with bertviz views
THEMED = (
    "t => [getComputedStyle(t).fontSize, getComputedStyle(t).fontWeight, getComputedStyle(t).fill]"
)


@pytest.mark.parametrize("path", PRESENTED)
def test_presenter_mode_comes_with_its_link(browser, server_url, screenshots, path) -> None:
    page = new_page(browser, server_url)
    page.goto(f"{server_url}/{path}")
    settle(page)
    normal = text_size(page)
    page.goto(f"{server_url}/{path}?present=1")
    settle(page)
    page.get_by_text("Notes").first.wait_for()  # the lesson's text waits under its headlines
    page.wait_for_function(f"() => ({TEXT_SIZE})() > {normal}", timeout=STATE_TIMEOUT)
    if path in ATTENTION_VIEWS:  # bertviz's views in the projector theme: large black text
        frames = page.locator("iframe[title='st.iframe']")
        frames.first.wait_for()
        for n in range(frames.count()):
            frame = page.frame_locator("iframe[title='st.iframe']").nth(n)
            text = frame.locator("body.projector svg text").first
            text.wait_for(state="attached")
            assert text.evaluate(THEMED) == ["20px", "700", "rgb(0, 0, 0)"]
    if path == "gpt":  # the README's picture of the mode
        page.locator(".js-plotly-plot .main-svg").first.wait_for()
        screenshot(page, screenshots, "presenter-mode")
    assert page.locator("[data-testid='stException']").count() == 0
    page.context.close()


def test_a_hostile_link_gives_defaults_and_a_notice(browser, server_url) -> None:
    page = new_page(browser, server_url)
    page.goto(f"{server_url}/gpt?gpt-top-k=<script>alert(1)</script>&gpt-model=nope&layer=99")
    settle(page)
    page.get_by_text("do not fit this page").wait_for()
    assert page.dialogs == [] and page.locator("[data-testid='stException']").count() == 0
    page.context.close()


STEP = "() => document.body.dataset.step"
# A computation in a lesson's first sections, at its last step: the keys move between sections.
AT_THE_END = {"attention": {"att-step": str(len(STEPS) - 1)}}
CHARTS_DRAWN = """() => [...document.querySelectorAll('.js-plotly-plot')].every(
    plot => plot.querySelector('.main-svg'))"""


@pytest.mark.parametrize("path", STEPPED)
def test_keys_step_through_the_lesson_and_the_step_is_in_the_link(browser, server_url, path):
    page = new_page(browser, server_url)
    page.goto(f"{server_url}/{path}?{urlencode(AT_THE_END.get(path, {}))}")
    settle(page)
    page.locator(".tf-stepper").wait_for()  # the step-through script has loaded
    page.wait_for_function(CHARTS_DRAWN)  # nothing above a step grows after it is reached
    page.locator("h1").first.click()  # the page has the focus, no input
    for key in ("PageDown", "ArrowRight"):  # a clicker's key, then an arrow key
        page.keyboard.press(key)
    page.wait_for_function(f"() => ({STEP})() === '2'")
    page.wait_for_function("() => window.location.search.includes('step=2')")
    page.wait_for_function(  # the third step's headline is at the top of the screen
        "() => { const top = document.querySelectorAll("
        "\"[data-testid='stMain'] h1, [data-testid='stMain'] h3\")[2]"
        ".getBoundingClientRect().top; return top >= 0 && top < 200; }"
    )
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"() => ({STEP})() === '1'")

    other = new_page(browser, server_url)
    other.goto(f"{server_url}/{path}?step=2")
    settle(other)
    other.wait_for_function(f"() => ({STEP})() === '2'")
    page.locator(".tf-stepper button").last.click()
    page.wait_for_function(f"() => ({STEP})() === '2'")
    page.context.close()
    other.context.close()


def steps_to_decode() -> int:
    """Greedy decoding steps of the date the encoder-decoder lesson starts with."""
    loaded = load_shipped(DATE_MODEL)
    return len(decode_with_trace(loaded.model, loaded.tokenizer, held_out_sources(1)[0])[0])


# Per lesson: the section holding its step-by-step computation (its headline's place among the
# steps), the key of the computation's step, its last step (None: counted by the test) and a
# link's other settings.
COMPUTATIONS = [
    ("attention", 0, "att-step", len(STEPS) - 1, {}),
    ("tokenization", 3, "tok-step", 3, {"tok-vocab": str(BASE_VOCAB_SIZE + 3)}),
    ("gpt", 3, "gpt-tokens", 2, {"gpt-n": "2"}),
    ("encoder-decoder", 6, "ed-step", None, {}),
]
SECTION_OF = """key => {
    const headings = [...document.querySelectorAll(
        "[data-testid='stMain'] h1, [data-testid='stMain'] h3")];
    const next = document.querySelector(`.st-key-step-next-${key}`);
    return headings.filter(
        h => h.compareDocumentPosition(next) & Node.DOCUMENT_POSITION_FOLLOWING).length - 1;
}"""


def press_until(page, key: str, state: str) -> None:
    """Press ``key``, then wait until ``state`` (a JavaScript expression) holds and the page has
    run to its end."""
    page.keyboard.press(key)
    page.wait_for_function(f"() => {state}")
    wait_for_app(page)


@pytest.mark.parametrize(
    ("path", "section", "key", "last", "settings"), COMPUTATIONS, ids=[c[0] for c in COMPUTATIONS]
)
def test_the_keys_step_through_a_computation_before_moving_on(
    browser, server_url, path, section, key, last, settings
):
    last = steps_to_decode() if last is None else last
    query = urlencode({"step": section, key: str(last - 1), **settings})
    page = new_page(browser, server_url)
    page.goto(f"{server_url}/{path}?{query}")  # one step before the computation's end
    settle(page)
    page.locator(".tf-stepper").wait_for()
    page.wait_for_function(CHARTS_DRAWN)
    page.wait_for_function(f"() => ({STEP})() === '{section}'")
    assert page.evaluate(SECTION_OF, key) == section

    def shows(n: int) -> str:  # the computation is at step n and its section at the top
        slider = f"document.querySelector(\".st-key-{key} input[type='range']\")"
        return f"{slider}?.value === '{n}' && {at(section)}"

    def at(n: int) -> str:
        return f"({STEP})() === '{n}'"

    page.wait_for_function(f"() => {shows(last - 1)}")  # the link opened it there
    page.locator(f".st-key-step-next-{key} button:enabled").wait_for()  # drawn, not yet at its end
    press_until(page, "ArrowRight", shows(last))
    page.locator(f".st-key-step-next-{key} button:disabled").wait_for()
    press_until(page, "ArrowRight", at(section + 1))  # at its end: on to the next section
    press_until(page, "ArrowLeft", at(section))
    press_until(page, "ArrowLeft", shows(last - 1))
    assert page.locator("[data-testid='stException']").count() == 0
    page.context.close()


def test_sentences_typed_one_after_another_each_reach_the_link(page, server_url) -> None:
    """The kind of mask (a choice kept in the URL) away from its default, then five sentences
    typed one after another: after each rerun the box and the address bar hold the sentence
    just typed. With Streamlit's own binding, the browser's URL changed before the server's
    copy, and a value the page wrote in the same run sent the old sentence back."""
    page.goto(f"{server_url}/masks?mk-kind=prefix")
    settle(page)
    in_url = "([key, value]) => new URLSearchParams(location.search).get(key) === value"
    sentences = ("the dog sees Mia .", "she runs .", "the old cat sits .", "Mia sees a dog .")
    for sentence in (*sentences, "she runs ."):
        field(page, "mk-sentence").fill(sentence)
        field(page, "mk-sentence").press("Enter")
        page.wait_for_function(in_url, arg=["mk-sentence", sentence], timeout=STATE_TIMEOUT)
        settle(page)
        expect(field(page, "mk-sentence")).to_have_value(sentence)
        assert page.evaluate(in_url, ["mk-sentence", sentence]), f"lost {sentence!r}: {page.url}"
        assert page.evaluate(in_url, ["mk-kind", "prefix"]), page.url
