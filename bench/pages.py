"""How fast pages respond, per page: the median server-side rerun after a widget change; the
first paint in Chromium on a warm server (every chart drawn, no skeleton left) in a new browser
(nothing cached), with where its time goes; the same page opened by its address in a browser
that has been to the app before (a reload, a shared link, a typed address); the same page
opened from the app's sidebar (the way a student moves between lessons); and the time from
process start to the first page served.

    python bench/pages.py [--runs N] [--paints N]

Targets: a rerun under 300 ms, a page drawn under 2 s, the first page served under 5 s (on the
2-core reference machine).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import urllib.request
from math import nan
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "app"))

sys.path.insert(0, str(ROOT))
from widgets import page_file  # noqa: E402

from bench.app_server import (  # noqa: E402
    free_port,
    launch,
    start_server,
    stop_server,
    wait_healthy,
)
from deploy.streamlit_client import Session  # noqa: E402
from tinyformers.lessons import load_lessons  # noqa: E402

RERUN_TARGET_MS = 300
START_TARGET_S = 5
PAINT_TARGET_S = 2.0
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Fully drawn: the script has finished, no skeleton is left, every chart has its SVG and every
# attention view (an iframe) has drawn its lines.
DRAWN = """() => {
  const app = document.querySelector("[data-testid='stApp']");
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector("[data-testid='stSkeleton']")) return false;
  if (!document.querySelector("[data-testid='stMain'] h1")) return false;
  const charts = [...document.querySelectorAll('.stPlotlyChart')];
  if (charts.some((c) => !c.querySelector('.main-svg'))) return false;
  const frames = [...document.querySelectorAll("[data-testid='stMain'] iframe")];
  return frames.every((f) => f.contentDocument && f.contentDocument.readyState === 'complete'
    && (!f.contentDocument.querySelector('svg') || f.contentDocument.querySelector('svg *')));
}"""
SCRIPTS_FETCHED = """() => performance.getEntriesByType('resource')
  .filter((e) => e.name.endsWith('.js'))
  .reduce((sum, e) => [sum[0] + 1, sum[1] + (e.encodedBodySize || 0)], [0, 0])"""


def change_a_widget(at: AppTest, i: int) -> None:
    """Alternate the first text box (or, failing that, the first slider / enabled number
    input)."""
    if at.text_input:
        box = at.text_input[0]
        base = box.value.removesuffix(" again") if box.value else "hello"
        box.set_value(base if i % 2 else base + " again")
    elif at.slider:
        slider = at.slider[0]
        slider.set_value(slider.min if i % 2 else slider.max)
    else:
        enabled = [n for n in at.number_input if not n.disabled]
        if enabled:
            number = enabled[0]
            number.set_value(number.value + (1 if i % 2 else -1) * (number.step or 1))


def rerun_times(page: str, runs: int) -> list[float]:
    at = AppTest.from_file(str(ROOT / "app" / "streamlit_app.py"), default_timeout=120)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    at.run()  # warm caches
    times = []
    for i in range(runs):
        change_a_widget(at, i)
        start = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - start) * 1000)
        if at.exception:
            raise RuntimeError(f"{page or 'home'}: {at.exception[0].message}")
    return times


def first_render(url: str) -> float | None:
    """Seconds until the course map has been drawn in Chromium, or None without a browser."""
    if (sync_playwright := chromium_and_playwright()) is None:
        return None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        page = browser.new_page()
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_function(
            "() => document.querySelector(\"[data-testid='stApp']\")"
            "?.getAttribute('data-test-script-state') === 'notRunning' "
            "&& document.querySelector('h1')",
            timeout=60_000,
        )
        elapsed = time.perf_counter() - start
        browser.close()
    return elapsed


def script_run_seconds(url: str, path: str) -> float:
    """How long the server takes to run the page's script for a new session (warm server)."""

    async def run() -> float:
        async with Session(url) as session:
            result = await session.open_page(path)
        if not result.ok:
            raise RuntimeError(f"/{path}: {result.status} {result.exceptions[:1]}")
        return result.seconds

    return asyncio.run(run())


PLOTLY_ARRIVED = """() => performance.getEntriesByType('resource')
  .filter((e) => e.name.includes('PlotlyChart')).map((e) => e.responseEnd / 1000)[0] ?? null"""
# Streamlit and Plotly alone: a title and one small chart, the least a lesson's first screen needs
BARE_APP = """import plotly.graph_objects as go
import streamlit as st

st.title("Streamlit and Plotly alone")
st.plotly_chart(go.Figure(go.Heatmap(z=[[1, 2], [3, 4]])))
"""
# Streamlit alone: a title and a line of markdown (what Plotly adds is the difference)
TEXT_APP = """import streamlit as st

st.title("Streamlit alone")
st.markdown("A line of **markdown**.")
"""


def paint(browser, url: str, paints: int) -> dict[str, float]:
    """Medians over ``paints`` first visits of ``url``, each in a new browser context: seconds
    until fully drawn, when Plotly's script had arrived, and the JavaScript fetched."""
    times, plotly, scripts = [], [], (0, 0)
    for _ in range(paints):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_function(DRAWN, timeout=120_000, polling=50)
        times.append(time.perf_counter() - start)
        plotly.append(page.evaluate(PLOTLY_ARRIVED) or float("nan"))
        scripts = page.evaluate(SCRIPTS_FETCHED)
        context.close()
    return {
        "paint_s": statistics.median(times),
        "plotly_s": statistics.median(plotly),
        "js_files": scripts[0],
        "js_kb": scripts[1] / 1024,
    }


def chromium_and_playwright():
    """``sync_playwright`` when Chromium and Playwright are both here, else None."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    return sync_playwright if Path("/usr/bin/chromium").exists() else None


def first_paints(url: str, paths: list[str], paints: int) -> dict[str, dict] | None:
    """Per page: ``paint`` of its first visits and the server's script run for a new session.
    None without Chromium and Playwright."""
    if (sync_playwright := chromium_and_playwright()) is None:
        return None
    script = {}
    for path in paths:  # outside the browser's event loop; the first run warms the caches
        runs = [script_run_seconds(url, path) for _ in range(paints + 1)][1:]
        script[path] = statistics.median(runs)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        results = {
            path or "home": {**paint(browser, f"{url}/{path}", paints), "script_s": script[path]}
            for path in paths
        }
        browser.close()
    return results


def bare_paint(paints: int, app: str = BARE_APP) -> dict[str, float] | None:
    """``paint`` of ``app`` served by Streamlit from a temporary folder: the part of a first
    paint that is Streamlit's and Plotly's own (``BARE_APP``), or Streamlit's alone
    (``TEXT_APP``), on this machine, in this run."""
    if (sync_playwright := chromium_and_playwright()) is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "bare.py").write_text(app, encoding="utf-8")
        port = free_port()
        process = launch(port, script="bare.py", cwd=Path(folder))
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, process)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
                paint(browser, url, 1)  # the server's first run
                result = paint(browser, url, paints)
                browser.close()
        finally:
            stop_server(process)
    return result


def address_visits(url: str, paths: list[str], visits: int) -> dict[str, float] | None:
    """Per page: median seconds from typing its address until it is fully drawn, in a browser
    that has been to every page once (its cache holds the app's scripts; each visit is a new
    page load and a new session). None without Chromium."""
    if (sync_playwright := chromium_and_playwright()) is None:
        return None
    results = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        for path in paths:
            page.goto(f"{url}/{path}")
            page.wait_for_function(DRAWN, timeout=120_000, polling=50)
        for path in paths:
            times = []
            for _ in range(visits):
                page.goto("about:blank")
                start = time.perf_counter()
                page.goto(f"{url}/{path}")
                page.wait_for_function(DRAWN, timeout=120_000, polling=50)
                times.append(time.perf_counter() - start)
            results[path or "home"] = statistics.median(times)
        browser.close()
    return results


def sidebar_visits(url: str, slugs: list[str], visits: int) -> dict[str, float] | None:
    """Per lesson: median seconds from a click on its sidebar link (from the course map) until
    it is fully drawn, in a browser that has been to every page once. None without Chromium."""
    if (sync_playwright := chromium_and_playwright()) is None:
        return None
    title = "() => document.querySelector(\"[data-testid='stMain'] h1\")?.textContent"
    results = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        for path in ["", *slugs]:  # the browser has every script, the server every page
            page.goto(f"{url}/{path}")
            page.wait_for_function(DRAWN, timeout=120_000, polling=50)
        for slug in slugs:
            times = []
            for _ in range(visits):
                page.goto(url)
                page.wait_for_function(DRAWN, timeout=120_000, polling=50)
                before = page.evaluate(title)
                link = page.locator(f"[data-testid='stSidebarNav'] a[href$='/{slug}']").first
                start = time.perf_counter()
                link.click()
                page.wait_for_function(
                    f"(before) => ({title})() !== before && ({DRAWN})()",
                    arg=before,
                    timeout=120_000,
                    polling=20,
                )
                times.append(time.perf_counter() - start)
            results[slug] = statistics.median(times)
        browser.close()
    return results


def time_to_first_page() -> tuple[float, float | None]:
    """(seconds from process start to the first page served, then to the course map drawn)."""
    port = free_port()
    start = time.perf_counter()
    process = launch(port)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                    if r.status == 200:
                        served = time.perf_counter() - start
                        drawn = first_render(f"http://127.0.0.1:{port}/")
                        return served, None if drawn is None else served + drawn
            except OSError:
                time.sleep(0.05)
            if time.perf_counter() - start > 60:
                raise TimeoutError("the app did not answer within 60 s")
    finally:
        stop_server(process)


def paint_cell(value: float) -> str:
    """A time for the first-paint table, starred when it misses the target."""
    return f"{value:.2f}{'*' if value >= PAINT_TARGET_S else ' '}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--paints", type=int, default=3)
    args = parser.parse_args()
    pages = [("home", "")] + [
        (lesson.slug, str(page_file(lesson.slug).relative_to(ROOT / "app")))
        for lesson in load_lessons()
        if page_file(lesson.slug).is_file()
    ]
    print(f"{'page':<22}{'median rerun (ms)':>20}{'target':>10}")
    for name, page in pages:
        median = statistics.median(rerun_times(page, args.runs))
        verdict = "ok" if median < RERUN_TARGET_MS else "SLOW"
        print(f"{name:<22}{median:>20.0f}{RERUN_TARGET_MS:>8} {verdict}")
    slugs = [lesson.slug for lesson in load_lessons()]
    process, url = start_server()
    try:
        paints = first_paints(url, ["", *slugs], args.paints)
        again = address_visits(url, ["", *slugs], args.paints)
        visits = sidebar_visits(url, slugs, args.paints)
    finally:
        stop_server(process)
    bare = bare_paint(args.paints)
    text_only = bare_paint(args.paints, TEXT_APP)
    if paints is not None:
        print(
            f"\n{'page':<22}{'new browser (s)':>16}{'been here (s)':>16}{'script run (s)':>16}"
            f"{'Plotly arrived (s)':>20}{'JS files':>10}{'JS (KB)':>9}"
        )
        rows = [(name, {**p, "again_s": again[name]}) for name, p in paints.items()]
        if bare is not None:
            rows.append(("Streamlit+Plotly alone", {**bare, "again_s": nan, "script_s": nan}))
        if text_only is not None:
            rows.append(("Streamlit alone", {**text_only, "again_s": nan, "script_s": nan}))
        for name, p in rows:
            print(
                f"{name:<22}{paint_cell(p['paint_s']):>16}{paint_cell(p['again_s']):>16}"
                f"{p['script_s']:>16.2f}{p['plotly_s']:>20.2f}{p['js_files']:>10}"
                f"{p['js_kb']:>9.0f}"
            )
        print(f"(* over the {PAINT_TARGET_S:.0f} s target)")
    if visits is not None:
        print(f"\n{'lesson':<22}{'from the sidebar (s)':>22}")
        for slug, seconds in visits.items():
            verdict = "ok" if seconds < PAINT_TARGET_S else "SLOW"
            print(f"{slug:<22}{seconds:>22.2f} {verdict}")
    served, drawn = time_to_first_page()
    verdict = "ok" if served < START_TARGET_S else "SLOW"
    print(
        f"process start to first page served: {served:.2f} s (target {START_TARGET_S} s) {verdict}"
    )
    if drawn is not None:
        verdict = "ok" if drawn < START_TARGET_S else "SLOW"
        print(f"process start to course map drawn in Chromium: {drawn:.2f} s {verdict}")


if __name__ == "__main__":
    main()
