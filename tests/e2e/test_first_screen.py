"""The first screen of every lesson holds its input and a live figure computed from it: on a
laptop (1400×900), a projector (1024×768) and a phone (390×844)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import wait_for_app
from tinyformers.lessons import load_lessons

pytestmark = pytest.mark.browser

VIEWPORTS = {"laptop": (1400, 900), "projector": (1024, 768), "phone": (390, 844)}
PATHS = ["", *(lesson.slug for lesson in load_lessons())]
# Lessons whose first screen is still prose; each leaves this set when its page is rearranged.
PROSE_FIRST = {
    "tokenization",
    "positional-encoding",
    "attention",
    "multi-head",
    "masks",
    "transformer-block",
    "bert",
    "gpt",
}
MIN_VISIBLE = 120  # px of the figure that must show on the first screen

INPUTS = (
    "[data-testid='stMain'] [data-testid='stTextInput'],"
    "[data-testid='stMain'] [data-testid='stTextArea'],"
    "[data-testid='stMain'] [data-testid='stSelectbox'],"
    "[data-testid='stMain'] [data-testid='stNumberInput'],"
    "[data-testid='stMain'] [data-testid='stRadio'],"
    "[data-testid='stMain'] [data-testid='stSlider']"
)
FIGURES = "[data-testid='stMain'] .js-plotly-plot, [data-testid='stMain'] iframe"
# Streamlit draws a grey placeholder until the code of a widget or chart has loaded.
PLACEHOLDERS_GONE = (
    "() => !document.querySelector(\"[data-testid='stMain'] [data-testid='stSkeleton']\")"
)

FIRST_TOPS = """([inputs, figures]) => {
  const top = (selector) => {
    const tops = [...document.querySelectorAll(selector)]
      .map((e) => e.getBoundingClientRect())
      .filter((r) => r.width > 0 && r.height > 0)
      .map((r) => r.top);
    return tops.length ? Math.min(...tops) : null;
  };
  return [top(inputs), top(figures)];
}"""


@pytest.fixture(params=list(VIEWPORTS), ids=list(VIEWPORTS))
def sized_page(request, browser, server_url):
    width, height = VIEWPORTS[request.param]
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(120_000)
    page = context.new_page()
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith((server_url, "data:", "about:", "blob:"))
            else route.abort()
        ),
    )
    yield page, height
    context.close()


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=pytest.mark.xfail(strict=True, reason="prose first"))
        if p in PROSE_FIRST
        else p
        for p in PATHS
    ],
    ids=[p or "course-map" for p in PATHS],
)
def test_the_first_screen_holds_the_input_and_a_live_figure(sized_page, server_url, path) -> None:
    page, height = sized_page
    page.goto(f"{server_url}/{path}")
    wait_for_app(page)
    page.locator(FIGURES).first.wait_for(state="attached")
    page.wait_for_function(PLACEHOLDERS_GONE)  # else a later iframe may be the only figure yet
    assert page.locator("[data-testid='stException']").count() == 0
    input_top, figure_top = page.evaluate(FIRST_TOPS, [INPUTS, FIGURES])
    assert input_top is not None and input_top < height, f"no input on the first screen of /{path}"
    assert figure_top is not None and figure_top <= height - MIN_VISIBLE, (
        f"the first live figure of /{path} starts at {figure_top:.0f} px, below the first "
        f"screen ({height} px)"
    )
