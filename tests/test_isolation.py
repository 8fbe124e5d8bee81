"""Nobody sees anybody else's work: two sessions of one server (AppTest sessions share the
process, its cached models and its work folder, as a server's sessions do) each train a model,
and neither model appears in the other session's pickers or saved work. The same holds across two
replicas that share one work folder, while a browser's own work follows it from one replica to
the other."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bench.app_server import free_port

APP_DIR = str(Path(__file__).resolve().parents[1] / "app")
WORK_COOKIE = "tinyformers_work"


def student(app_dir: str, name: str) -> None:
    import sys

    import streamlit as st

    sys.path.insert(0, app_dir)
    import widgets

    from tests.kept_models import keep_tiny_models

    widgets.workspace()
    if st.button("Keep", key="keep"):
        keep_tiny_models([name])
    widgets.model_picker("Model", "gpt", key="picker")
    st.write(f"saved {sorted(widgets.workspace().load_models())}")


def test_two_sessions_never_see_each_others_models() -> None:
    sessions = {}
    for name in ("alice-gpt", "bob-gpt"):
        at = AppTest.from_function(student, args=(APP_DIR, name), default_timeout=180)
        at.run()
        at.button(key="keep").click().run()
        assert not at.exception, at.exception
        sessions[name] = at
    for name, at in sessions.items():
        at.run()
        other = next(n for n in sessions if n != name)
        options = at.selectbox(key="picker").options
        assert name in options and other not in options
        saved = at.markdown[-1].value
        assert name in saved and other not in saved
        assert at.session_state["work_id"] != sessions[other].session_state["work_id"]


# --- two replicas sharing one work folder ------------------------------------------------------


@pytest.fixture(scope="module")
def two_replicas():
    """Two servers of the app, as behind a load balancer: each its own process (its own sessions
    and caches), both keeping saved work in the one folder this test run uses."""
    from bench.app_server import launch, stop_server, wait_healthy

    started = []
    try:
        for port in (free_port(), free_port()):
            started.append((launch(port), f"http://127.0.0.1:{port}"))
        for process, url in started:
            wait_healthy(url, process)
        yield [url for _, url in started]
    finally:
        for process, _ in started:
            stop_server(process)


def saved_caption(page) -> str:
    sidebar = page.locator("[data-testid='stSidebar'] [data-testid='stCaptionContainer']")
    return " ".join(sidebar.all_inner_texts())


@pytest.mark.browser
def test_two_replicas_keep_each_browser_s_work_to_that_browser(browser, two_replicas) -> None:
    from tests.e2e.conftest import new_page, wait_for_app
    from tests.e2e.test_saved_work import model_options
    from tests.e2e.test_training import press, wait_for_enabled

    replica_a, replica_b = two_replicas
    # Each browser may reach both replicas (on this host, so one cookie reaches both), nothing else
    local = "http://127.0.0.1:"
    alice = new_page(browser, local)
    alice.goto(f"{replica_a}/train")
    wait_for_app(alice)
    steps = alice.get_by_label("Steps", exact=True)
    steps.fill("10")
    steps.press("Enter")
    alice.wait_for_url(lambda url: "train-steps=10" in url)
    wait_for_app(alice)
    press(alice, "Start training")
    alice.get_by_text("Your model appears here").wait_for(state="detached")
    wait_for_enabled(alice, "Start training")
    trained = alice.locator("[data-testid='stMain'] [data-testid='stAlert']", has_text="my-gpt")
    trained.first.wait_for()
    name = "my-gpt (step 10)"

    bob = new_page(browser, local)
    assert name not in model_options(bob, replica_b)
    assert name not in saved_caption(bob)
    bob.goto(f"{replica_b}/train")
    wait_for_app(bob)
    assert bob.get_by_text("Your model appears here").count() == 1  # no run of Alice's
    assert name not in model_options(bob, replica_a)

    # Alice's next visit lands on the other replica: her work is there
    assert name in model_options(alice, replica_b)
    assert name in saved_caption(alice)
    alice_id = next(c["value"] for c in alice.context.cookies() if c["name"] == WORK_COOKIE)
    bob_id = next(c["value"] for c in bob.context.cookies() if c["name"] == WORK_COOKIE)
    assert alice_id != bob_id
    for page in (alice, bob):
        assert page.locator("[data-testid='stException']").count() == 0
        page.context.close()
