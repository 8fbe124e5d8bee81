"""Shared widgets, run headless through a tiny script."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from tinyformers.hub.checkpoint import save_checkpoint
from tinyformers.hub.interop import export_hf
from tinyformers.model.build import build_model
from tinyformers.model.config import GPTConfig
from tinyformers.text.display import plain
from tinyformers.text.tokenizers import train_bpe

APP_DIR = str(Path(__file__).resolve().parents[2] / "app")


def picker_script(app_dir: str, family: str) -> None:
    import sys

    import streamlit as st

    sys.path.insert(0, app_dir)
    from widgets import model_picker

    loaded = model_picker("Model", family, key="m")
    if loaded is not None:
        st.write(f"loaded {loaded.name} ({loaded.family}, {loaded.source})")


def run_picker(family: str = "gpt") -> AppTest:
    at = AppTest.from_function(picker_script, args=(APP_DIR, family), default_timeout=180)
    at.run()
    return at


def test_shipped_model_is_the_default() -> None:
    at = run_picker()
    assert not at.exception
    assert at.markdown[0].value.startswith("loaded gpt-")
    assert "shipped" in at.markdown[0].value


def choose_other(at: AppTest, text: str) -> AppTest:
    at.selectbox(key="m").select_index(len(at.selectbox(key="m").options) - 1).run()
    at.text_input(key="m-other").set_value(text).run()
    return at


def test_unknown_model_id_gets_a_clear_offline_message() -> None:
    at = choose_other(run_picker(), "no-such-owner/no-such-model")
    assert not at.exception
    assert plain("cannot find a model called 'no-such-owner/no-such-model'") in at.error[0].value


@pytest.fixture(scope="module")
def exported_gpt2(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hf")
    tokenizer = train_bpe("the cat sat on the mat . " * 40, 300)
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=16
    )
    save_checkpoint(build_model(config).eval(), root / "ours", tokenizer)
    return export_hf(root / "ours", root / "hf")


def test_a_transformers_folder_loads_through_the_picker(exported_gpt2: Path) -> None:
    at = choose_other(run_picker(), str(exported_gpt2))
    assert not at.exception
    assert not at.error
    assert at.markdown[-1].value == f"loaded {exported_gpt2} (gpt, huggingface)"


def test_a_model_of_the_wrong_family_is_refused(exported_gpt2: Path) -> None:
    at = choose_other(run_picker("bert"), str(exported_gpt2))
    assert "is a GPT model; this lesson needs BERT" in at.error[0].value


def test_hosts_can_switch_external_models_off(monkeypatch) -> None:
    monkeypatch.setenv("TINYFORMERS_EXTERNAL_MODELS", "0")
    at = run_picker()
    assert not any(o.startswith("Other") for o in at.selectbox(key="m").options)


def job_script(app_dir: str, gate: str) -> None:
    import sys
    from functools import partial

    import streamlit as st

    sys.path.insert(0, app_dir)
    from widgets import job_progress, start_job

    from tests.training.work import wait_for_file

    if st.button("Start", key="start"):
        start_job("job", partial(wait_for_file, gate, first=1, then=2))  # runs in a worker
    job_progress("job", lambda snap: st.write(f"updates {snap.updates} status {snap.status}"))


def test_job_progress_shows_updates_a_stop_button_then_the_result(tmp_path) -> None:
    gate = tmp_path / "go"
    at = AppTest.from_function(job_script, args=(APP_DIR, str(gate)), default_timeout=180)
    at.run()
    assert not at.markdown  # nothing started yet
    at.button(key="start").click().run()
    job = at.session_state["job"]
    assert any(b.label == "Stop" for b in at.button)
    gate.touch()
    job.join(600)
    at.run()
    assert not at.exception
    assert at.markdown[-1].value == "updates [1, 2] status finished"
    assert not any(b.label == "Stop" for b in at.button)


def test_stop_button_stops_the_job(tmp_path) -> None:
    gate = tmp_path / "go"
    at = AppTest.from_function(job_script, args=(APP_DIR, str(gate)), default_timeout=180)
    at.run()
    at.button(key="start").click().run()
    job = at.session_state["job"]
    at.button(key="job-stop").click().run()
    gate.touch()
    job.join(600)
    assert job.status == "stopped"


def failing_job_script(app_dir: str) -> None:
    import sys

    import streamlit as st

    sys.path.insert(0, app_dir)
    from widgets import job_progress, start_job

    from tests.training.work import fail

    if st.button("Start", key="start"):
        start_job("job", fail)
    job_progress("job", lambda snap: st.write(f"status {snap.status}"))


def test_a_failed_run_is_a_message_on_the_page() -> None:
    at = AppTest.from_function(failing_job_script, args=(APP_DIR,), default_timeout=180)
    at.run()
    at.button(key="start").click().run()
    at.session_state["job"].join(600)
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "The run failed: " + plain("ValueError: learning rate too high")
    ]
    assert at.markdown[-1].value == "status failed"


def test_jobs_of_a_page_run_in_a_worker_watched_for_their_session(monkeypatch) -> None:
    """``start_job`` gives each job the server's limits and, under a Streamlit server, an
    owner check that asks the runtime whether this session is still connected."""
    import sys

    sys.path.insert(0, APP_DIR)
    import widgets

    from tinyformers.training.jobs import Limits

    asked: list[str] = []

    class Runtime:
        def is_active_session(self, session_id: str) -> bool:
            asked.append(session_id)
            return False

    monkeypatch.setattr("streamlit.runtime.exists", lambda: True)
    monkeypatch.setattr("streamlit.runtime.get_instance", lambda: Runtime())
    context = type("Context", (), {"session_id": "session-a"})()
    monkeypatch.setattr(
        "streamlit.runtime.scriptrunner.get_script_run_ctx", lambda *args, **kwargs: context
    )
    owner = widgets.session_owner()
    assert owner is not None and owner() is False and asked == ["session-a"]
    monkeypatch.setattr("streamlit.runtime.scriptrunner.get_script_run_ctx", lambda *a, **k: None)
    assert widgets.session_owner() is None  # outside a script run: nobody to watch
    assert Limits().session_grace_s > 0


# --- selections that follow the input ---------------------------------------------------------


def follow(chosen, tokens):
    import sys

    sys.path.insert(0, APP_DIR)
    from widgets import follow_positions

    return follow_positions(chosen, tokens)


def test_a_position_stays_when_its_token_is_unchanged() -> None:
    assert follow([(1, " cat")], ["the", " cat", " runs"]) == ([1], [], [])


def test_a_position_moves_to_the_nearest_same_token() -> None:
    tokens = [" cat", "the", " big", " cat", " runs", " cat"]
    assert follow([(2, " cat")], tokens) == ([3], [" cat"], [])


def test_a_position_whose_token_is_gone_is_dropped() -> None:
    assert follow([(7, " runs"), (0, "the")], ["the", " dog", " sleeps"]) == ([0], [], [" runs"])


def test_two_choices_never_land_on_one_position() -> None:
    kept, moved, dropped = follow([(0, " a"), (5, " a")], [" b", " a"])
    assert kept == [1] and dropped == [" a"]


def selection_script(app_dir: str) -> None:
    import sys

    import streamlit as st

    sys.path.insert(0, app_dir)
    from widgets import choose_index, choose_position, choose_positions

    text = st.text_input("Sentence", "the cat runs")
    tokens = text.split()
    layers = st.number_input("Layers", 1, 12, 4)
    query = choose_position("Query", tokens, key="q", default=len(tokens) - 1)
    masked = choose_positions("Mask", tokens, key="m", default=[0])
    layer = choose_index("Layer", int(layers), key="layer")
    st.write(f"query={query} masked={masked} layer={layer}")


def test_selections_follow_a_new_sentence() -> None:
    at = AppTest.from_function(selection_script, args=(APP_DIR,), default_timeout=180)
    at.run()
    assert at.markdown[0].value == "query=2 masked=[0] layer=0"
    at.selectbox(key="layer").set_value(3).run()
    at.text_input[0].set_value("a dog runs and the cat sleeps").run()
    assert at.markdown[-1].value == "query=2 masked=[4] layer=3"
    assert any("moved" in c.value for c in at.caption)
    at.text_input[0].set_value("birds fly").run()
    assert at.markdown[-1].value == "query=1 masked=[0] layer=3"  # both back to their defaults
    assert any("not in the new input" in c.value for c in at.caption)
    at.number_input[0].set_value(2).run()
    assert at.markdown[-1].value.endswith("layer=0")
    assert any("Layer 3 does not exist here" in c.value for c in at.caption)


def test_a_new_choice_on_the_same_sentence_is_kept() -> None:
    at = AppTest.from_function(selection_script, args=(APP_DIR,), default_timeout=180)
    at.run()
    at.selectbox(key="q").set_value(0).run()
    assert at.markdown[-1].value == "query=0 masked=[0] layer=0"
    at.multiselect(key="m").select(2).run()
    assert at.markdown[-1].value == "query=0 masked=[0, 2] layer=0"
    at.number_input[0].set_value(3).run()  # a rerun that changes neither the sentence nor them
    assert at.markdown[-1].value == "query=0 masked=[0, 2] layer=0"
    assert not at.caption
    at.text_input[0].set_value("the dog runs").run()
    assert at.markdown[-1].value == "query=0 masked=[0, 2] layer=0"


def kept_script(app_dir: str) -> None:
    import sys

    import streamlit as st

    sys.path.insert(0, app_dir)
    from widgets import job_active, job_result, keep_result, metric_row

    from tests.training.work import answer
    from tinyformers.training.jobs import FINISHED, STOPPED, Job

    if "job" not in st.session_state:
        st.session_state["job"] = Job(answer).start()
    job = st.session_state["job"]
    job.join(600)
    st.write(f"active {job_active('job')} {job_active('no-such-job')}")
    st.write(
        f"finished {job_result('job', FINISHED, int)} stopped {job_result('job', STOPPED, int)}"
    )
    st.write(f"as text {job_result('job', FINISHED, str)}")
    for n, key in enumerate(["a", "b", "a", "c", "d"]):
        keep_result("store", key, n, limit=3)
    st.write(f"kept {st.session_state['store']}")
    metric_row({"first": "1.0", "second": 2})


def test_job_results_are_read_and_kept_by_key() -> None:
    at = AppTest.from_function(kept_script, args=(APP_DIR,), default_timeout=180)
    at.run()
    assert not at.exception
    assert [m.value for m in at.markdown] == [
        "active False False",
        "finished 42 stopped None",
        "as text None",
        "kept {'b': 1, 'c': 3, 'd': 4}",  # a second "a" is not kept; the first "a" goes first
    ]
    assert [(m.label, m.value) for m in at.metric] == [("first", "1.0"), ("second", "2")]
