"""A page in Russian, read in the browser: no English sentence left in what it shows, outside
code, formulas, links and the model's own text (tokens, generated text), with the same English
detector as the headless page tests (tests/page_checks.py)."""

from __future__ import annotations

from collections.abc import Iterable

from tests.page_checks import english_left

# What is not interface text: code, what the user types, formulas, attention views (bertviz
# iframes), the links of a lesson's text, and tokens and model output, which the figures draw in <bdi> (a token keeps its
# own direction) or in a monospace font (figures/common.token_chips, the generated samples).
# Charts are read apart: their titles and axis titles only.
NOT_INTERFACE = ", ".join(
    (
        "pre",
        "code",
        "textarea",
        "input",
        "iframe",
        "bdi",
        "[style*='monospace']",
        ".katex",
        "[data-testid='stMarkdownContainer'] a",
        ".js-plotly-plot",
    )
)
AREAS = "[data-testid='stSidebar'], [data-testid='stMain']"
CHART_TITLES = ".js-plotly-plot text[class$='title']"

# The shown text of the sidebar and the main area with NOT_INTERFACE hidden for the moment of
# reading (innerText gives only what is rendered, a line per block), then the chart titles.
READ_TEXTS = """([hide, areas, titles]) => {
    const hidden = [...document.querySelectorAll(hide)].map((el) => {
        const before = el.style.getPropertyValue('display');
        el.style.setProperty('display', 'none', 'important');
        return [el, before];
    });
    try {
        const texts = [...document.querySelectorAll(areas)].map((el) => el.innerText);
        return texts.concat([...document.querySelectorAll(titles)].map((el) => el.textContent));
    } finally {
        for (const [el, before] of hidden) {
            if (before) el.style.setProperty('display', before);
            else el.style.removeProperty('display');
        }
    }
}"""


# Settled: the script has drawn the page's title, no widget is still a loading placeholder
# (Streamlit shows a skeleton until a widget's code has loaded), every chart has its SVG, and
# the page's text is the same as at the last three looks.
SETTLED = """(areas) => {
    if (!document.querySelector("[data-testid='stMain'] h1")) return false;
    const state = document.querySelector("[data-testid='stApp']")
        ?.getAttribute('data-test-script-state');
    const charts = document.querySelectorAll("[data-testid='stPlotlyChart']");
    const loading = document.querySelector("[data-testid='stSkeleton']");
    const undrawn = [...charts].some((c) => !c.querySelector('.main-svg'));
    if (state !== 'notRunning' || loading || undrawn) {
        window.tfLooks = [];
        return false;
    }
    const now = [...document.querySelectorAll(areas)].map((el) => el.innerText).join('|')
        + document.querySelectorAll('.js-plotly-plot text').length;
    window.tfLooks = (window.tfLooks || []).concat([now]).slice(-4);
    return window.tfLooks.length === 4 && window.tfLooks.every((look) => look === now);
}"""


def wait_until_drawn(page) -> None:
    """Wait until the page's script has run, its charts are drawn and its text has settled."""
    page.evaluate("() => { window.tfLooks = []; }")
    page.wait_for_function(SETTLED, arg=AREAS, polling=300)


def shown_lines(page) -> list[str]:
    """Every line of interface text the page shows, in the sidebar, the main area (widget labels
    and the options of radios and selects included) and chart titles."""
    texts = page.evaluate(READ_TEXTS, [NOT_INTERFACE, AREAS, CHART_TITLES])
    return [line.strip() for text in texts for line in text.splitlines() if line.strip()]


def check_russian_page(page, model_input: Iterable[str] = ()) -> list[str]:
    """The English left on a page opened with ``?lang=ru``: each line of its interface text
    that holds three English words in a row, with the run found. A line that is one of
    ``model_input`` (English sentences the page feeds its model and shows as they are) is not
    interface text."""
    wait_until_drawn(page)
    kept = set(model_input)
    lines = [line for line in shown_lines(page) if line not in kept]
    return [found for line in lines if (found := english_left(line))]
