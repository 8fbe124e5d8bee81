"""A closed tab frees its training slot: on a server that trains one run at a time, a student
starts a long run and closes the tab; a second student, waiting in line, starts soon after,
because the first run was stopped for its closed session (not by a time or step limit).

Every wait is for a state of the page, with limits generous enough for a busy machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench.app_server import ROOT, free_port, wait_healthy
from tests.e2e.conftest import wait_for_app
from tests.e2e.test_training import (
    STATE_TIMEOUT,
    new_page,
    open_lesson,
    press,
    wait_for_enabled,
    wait_for_step_past,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GRACE_S = 5  # the server's grace period for a closed session
FREED_LIMIT_MS = 120_000  # how long the test waits for it on a busy machine


@pytest.fixture(scope="module")
def one_slot_server(tmp_path_factory):
    """A server with one training slot, a time limit no run here can reach, a short grace
    period, and its log kept in a file."""
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    port = free_port()
    env = {
        **os.environ,
        "TINYFORMERS_MAX_TRAININGS": "1",
        "TINYFORMERS_MAX_SECONDS": "3000",
        "TINYFORMERS_SESSION_GRACE": str(GRACE_S),
    }
    command = [
        *(sys.executable, "-m", "streamlit", "run", "app", "--server.headless", "true"),
        *("--server.port", str(port), "--server.address", "127.0.0.1"),
    ]  # the rest of the settings from the repository's .streamlit/config.toml
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield url, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def long_run(page) -> None:
    """Start a run with as many steps as the server allows: it cannot end by itself here."""
    steps = page.get_by_role("spinbutton", name="Steps", exact=True)
    steps.fill("20000")
    steps.press("Enter")
    wait_for_app(page, timeout=STATE_TIMEOUT)
    press(page, "Start training")


def test_a_closed_tab_frees_its_slot_for_the_next_student(browser, one_slot_server) -> None:
    url, log_path = one_slot_server
    first, second = new_page(browser, url), new_page(browser, url)
    for page in (first, second):
        open_lesson(page, url, "train")
    long_run(first)
    wait_for_enabled(first, "Stop")
    wait_for_step_past(first, 0)  # it is training, not preparing

    press(second, "Start training")
    second.get_by_text("Busy: 1 run is ahead of you").wait_for()

    first.context.close()  # the student closes the tab mid-run
    closed_at = time.monotonic()
    second.get_by_text("Busy: 1 run is ahead of you").wait_for(
        state="detached", timeout=FREED_LIMIT_MS
    )
    wait_for_enabled(second, "Stop")
    freed_after = time.monotonic() - closed_at
    print(f"the slot was freed {freed_after:.1f} s after the tab closed")

    log = log_path.read_text(encoding="utf-8", errors="replace")
    assert "session closed" in log, log[-2000:]  # stopped for its closed session…
    assert second.locator("[data-testid='stException']").count() == 0

    press(second, "Stop")
    wait_for_enabled(second, "Resume")
    second.context.close()
