"""The first screen of every page holds its input and a live figure computed from it: on a
laptop (1400×900), a projector (1024×768) and a phone (390×844). The course map here; each
lesson during its one visit in test_pages.py."""

from __future__ import annotations

import contextlib

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.conftest import new_page, wait_for_app

pytestmark = pytest.mark.browser

VIEWPORTS = {"laptop": (1400, 900), "projector": (1024, 768), "phone": (390, 844)}
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

# Streamlit loads some elements lazily, showing a skeleton until their code arrives, and a chart
# has no size until Plotly has drawn it: measure only once every element and chart is in place.
CHARTS_DRAWN = """() => {
  const main = document.querySelector("[data-testid='stMain']");
  if (!main || main.querySelector("[data-testid='stSkeleton']")) return false;
  return [...main.querySelectorAll("[data-testid='stPlotlyChart']")].every((chart) => {
    const plot = chart.querySelector(".js-plotly-plot");
    const shown = chart.getBoundingClientRect().height > 0;
    return plot && plot.querySelector(".main-svg") && (!shown || plot.getBoundingClientRect().height > 0);
  });
}"""

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


def check_first_screen(page, path: str, sizes: tuple[str, ...] = tuple(VIEWPORTS)) -> None:
    """The window resized through ``sizes`` (laptop, projector, phone), on a page opened at
    laptop size: the page lays itself out again at each size, as it does when a student resizes
    the window. Ends at laptop size."""
    page.locator(FIGURES).first.wait_for(state="attached")
    for name in sizes:
        width, height = VIEWPORTS[name]
        page.set_viewport_size({"width": width, "height": height})
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_function(CHARTS_DRAWN)  # a chart not drawn yet has no size
        assert page.locator("[data-testid='stException']").count() == 0
        with contextlib.suppress(PlaywrightTimeout):  # charts above may still be resizing
            page.wait_for_function(
                f"([i, f]) => {{ const [a, b] = ({FIRST_TOPS})([i, f]); "
                f"return a !== null && b !== null && b <= {height - MIN_VISIBLE}; }}",
                arg=[INPUTS, FIGURES],
                timeout=30_000,
            )
        input_top, figure_top = page.evaluate(FIRST_TOPS, [INPUTS, FIGURES])
        assert input_top is not None and input_top < height, (
            f"no input on the first screen of /{path} ({name})"
        )
        assert figure_top is not None and figure_top <= height - MIN_VISIBLE, (
            f"the first live figure of /{path} ({name}) starts at {figure_top:.0f} px, below "
            f"the first screen ({height} px)"
        )
    page.set_viewport_size(dict(zip(("width", "height"), VIEWPORTS["laptop"], strict=True)))


def test_the_course_maps_first_screen_holds_an_input_and_a_live_figure(browser, server_url):
    """Lessons are checked the same way during their visit in test_pages.py."""
    page = new_page(browser, server_url, viewport=VIEWPORTS["laptop"])
    page.goto(server_url)
    wait_for_app(page)
    check_first_screen(page, "")
    page.context.close()
