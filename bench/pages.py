"""How fast pages respond: median server-side rerun time after a widget change, per page, and
the time from process start to the first page served.

    python bench/pages.py [--runs N]

Targets: a rerun under 300 ms, first page under 5 s (on the 2-core reference machine).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "app"))

from widgets import page_file  # noqa: E402

from tinyformers.lessons import load_lessons  # noqa: E402

RERUN_TARGET_MS = 300
START_TARGET_S = 5


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_render(url: str) -> float | None:
    """Seconds until the course map has been drawn in Chromium, or None without a browser."""
    chromium = Path("/usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not chromium.exists():
        return None
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=args)
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


def time_to_first_page() -> tuple[float, float | None]:
    """(seconds from process start to the first page served, then to the course map drawn)."""
    port = free_port()
    start = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.fileWatcherType",
            "none",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
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
