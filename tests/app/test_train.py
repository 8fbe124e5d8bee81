"""Headless tests of the training page: runs start, stop, resume, restart and reset in the
background; what the page shows equals the run's own numbers; server limits and bad input get
clear messages, never a traceback."""

from __future__ import annotations

import html
import io
import json
import sys
import threading
import time
import zipfile
from functools import partial
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.page_checks import MARKUP, caption, english_leftovers, html_bodies, metrics
from tests.page_order import first_chart, index_after_header, is_subheader, strip_keys
from tests.plotly_json import chart, chart_titled, charts, decode, named_trace, title
from tests.training import work
from tinyformers.course import train as course
from tinyformers.course.train import attention_timeline
from tinyformers.model.build import build_model, count_parameters
from tinyformers.model.config import preset
from tinyformers.text.corpora import UserTextError, decode_upload
from tinyformers.text.tokenizers import train_char, train_wordpiece, wordpiece_min_vocab_size
from tinyformers.training.loop import TrainSettings
from tinyformers.training.runs import CHAR_SETTINGS, TrainUpdate
from tinyformers.training.zoo import char_text

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "app"))

import widgets  # noqa: E402

PAGE = "app_pages/train.py"
JOIN_S = 600  # a limit, not an expected time: the CPU may be shared


@pytest.fixture
def limits(monkeypatch):
    """Set server limits through the environment; the cached limits are read afresh."""

    def set_limits(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        widgets.server_limits.clear()
        widgets.training_slots.clear()

    yield set_limits
    monkeypatch.undo()
    widgets.server_limits.clear()
    widgets.training_slots.clear()


# ---------------------------------------------------------------------------------------------
# Reading what the page shows
# ---------------------------------------------------------------------------------------------


def line(spec: dict, name: str) -> tuple[list, list]:
    """The x and the y values of the line called ``name``."""
    trace = named_trace(spec, name)
    return decode(trace["x"]).tolist(), decode(trace["y"]).tolist()


def messages(at: AppTest) -> str:
    return " ".join(m.value for m in [*at.error, *at.warning, *at.info, *at.success])


# ---------------------------------------------------------------------------------------------
# Driving the page
# ---------------------------------------------------------------------------------------------


def small_run(at: AppTest, steps: int = 30, corpus: str = "lessons", **choices) -> AppTest:
    """A nano GPT on the lessons' text with a small batch (change anything through choices)."""
    at.radio(key="train-corpus").set_value(corpus)
    at.selectbox(key="train-preset").set_value("nano")
    at.select_slider(key="train-batch").set_value(choices.pop("batch", 4))
    at.number_input(key="train-steps").set_value(steps)
    for key, value in choices.items():
        at.radio(key=f"train-{key}").set_value(value)
    return at.run()


def paste(at: AppTest, text: str) -> AppTest:
    at.radio(key="train-corpus").set_value("own").run()
    at.text_area(key="train-own-paste").set_value(text)
    return at.run()


def start(at: AppTest) -> AppTest:
    at.button(key="train-start").click().run()
    assert not at.exception, at.exception
    return at


def finish(at: AppTest):
    """Wait for the job, then redraw the page; returns the session's Training."""
    job = at.session_state["train-job"]
    job.join(JOIN_S)
    assert job.status in ("finished", "stopped"), (job.status, job.error_details)
    at.run()
    assert not at.exception, at.exception
    return at.session_state["train-current"]


def trained_some_steps(job) -> None:
    """Wait (for a state, not a time) until the run in its worker has logged a step."""
    deadline = time.monotonic() + JOIN_S
    while not any(isinstance(u, TrainUpdate) for u in job.snapshot().updates):
        assert job.snapshot().active and time.monotonic() < deadline, job.error
        time.sleep(0.05)


def history(training) -> list:
    return [update.progress for update in training.run.updates]


# ---------------------------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------------------------


def test_defaults_show_the_parameter_count_of_a_built_model(fresh) -> None:
    text = char_text()
    tokenizer = train_char(text)
    model = build_model(preset("micro", "gpt", vocab_size=tokenizer.vocab_size))
    assert metrics(fresh)["Parameters"] == f"{count_parameters(model):,}"
    assert course.default_choice().n_parameters == count_parameters(model)
    shown = caption(fresh, f"{len(text):,} characters")
    assert f"{len(text):,} characters → {len(tokenizer.encode(text)):,} tokens" in shown
    assert f"the vocabulary has {tokenizer.vocab_size:,} tokens" in shown
    assert not fresh.button(key="train-start").disabled
    assert fresh.button(key="train-resume").disabled
    assert fresh.button(key="train-reset").disabled
    assert fresh.button(key="train-stop").disabled
    (schedule,) = charts(fresh)  # only the planned schedule before a run
    planned = schedule["data"][0]
    steps = CHAR_SETTINGS.max_steps
    settings = TrainSettings(
        max_steps=steps,
        learning_rate=max(planned["y"]),
        warmup_steps=min(CHAR_SETTINGS.warmup_steps, steps // 10),
    )
    assert planned["y"] == pytest.approx([settings.lr_at(step) for step in planned["x"]])


def test_the_page_opens_on_what_to_train_and_its_buttons_beside_the_schedule(fresh) -> None:
    at = fresh
    assert strip_keys(at) == ["train-family", "train-corpus", "train-preset"]
    assert [b.key for b in at.button][:5] == [
        "train-start",
        "train-stop",
        "train-resume",
        "train-restart",
        "train-reset",
    ]
    assert index_after_header(at, is_subheader) == 1  # the prose comes after the strip
    planned = first_chart(at)
    assert title(planned) == "Learning-rate schedule"
    assert planned["layout"]["height"] <= 450
    default = course.default_choice()
    assert (default.spec.preset, default.corpus) == ("micro", "gpt-char's stories")
    at.select_slider(key="train-lr").set_value(1e-2)
    at.number_input(key="train-steps").set_value(600).run()
    y = decode(first_chart(at)["data"][0]["y"])
    assert max(y) == pytest.approx(1e-2)
    assert decode(first_chart(at)["data"][0]["x"])[-1] == 599


def test_custom_size_and_bert_counts_match_a_built_model(fresh) -> None:
    fresh.radio(key="train-family").set_value("bert")
    fresh.radio(key="train-corpus").set_value("lessons")
    fresh.radio(key="train-tokenizer").set_value("wordpiece").run()
    fresh.toggle(key="train-custom").set_value(True).run()
    fresh.number_input(key="train-n_layer").set_value(3)
    fresh.number_input(key="train-n_embd").set_value(48).run()
    assert not fresh.exception
    from tinyformers.text.corpora import lesson_corpus

    text = lesson_corpus()
    tokenizer = train_wordpiece(text, max(1000, wordpiece_min_vocab_size(text)))
    config = preset("char", "bert", vocab_size=tokenizer.vocab_size, n_layer=3, n_embd=48)
    assert metrics(fresh)["Parameters"] == f"{count_parameters(build_model(config)):,}"


# ---------------------------------------------------------------------------------------------
# A run: curves, sample, timeline, the pickers of this session only, restart, reset
# ---------------------------------------------------------------------------------------------


def test_a_short_run_is_drawn_and_joins_this_sessions_pickers(fresh, open_page) -> None:
    at = start(small_run(fresh))
    training = finish(at)
    run = training.run
    assert run.step == 30
    steps = [p.step for p in history(training)]
    assert steps == [10, 20, 30]
    shown = metrics(at)
    assert shown["Step"] == "30"
    assert shown["Training loss"] == f"{history(training)[-1].train_loss:.3f}"
    assert shown["Validation loss"] == f"{history(training)[-1].val_loss:.3f}"
    assert "Finished all 30 steps." in messages(at)

    loss = first_chart(at)  # the run's curves replace the planned schedule at the top
    assert title(loss) == "Loss while training"
    assert line(loss, "training batch") == (steps, [p.train_loss for p in history(training)])
    untrained = training.initial_val_loss  # drawn at step 0
    val = [untrained, *(p.val_loss for p in history(training))]
    assert line(loss, "validation") == ([0, *steps], val)
    sample = run.updates[-1].sample
    (samples,) = [body for body in html_bodies(at) if "Sample at step 0, untrained" in body]
    assert html.escape(sample) in samples and html.escape(training.initial_sample) in samples

    timeline = chart_titled(at, "Each head's weight on the previous token")
    x, y = line(timeline, "L0 H0")
    assert x == [0, 10, 20, 30]  # the untrained model first, then every evaluation
    last = run.updates[-1].attentions[0][0, 0]
    expected = float(torch.diagonal(last, -1).mean())
    assert y[-1] == pytest.approx(expected, rel=1e-5)

    name = "my-gpt (step 30)"
    trained = at.session_state["trained_models"]
    assert list(trained) == [name]
    for ours, theirs in zip(run.model.parameters(), trained[name].model.parameters(), strict=True):
        assert torch.equal(ours, theirs)
    assert at.get("download_button")
    with zipfile.ZipFile(io.BytesIO(training.zip_bytes)) as archive:
        assert sorted(archive.namelist()) == [
            f"my-gpt-step-30/{name}"
            for name in ("config.json", "model.safetensors", "tokenizer.json")
        ]

    at.switch_page("app_pages/gpt.py")
    at.run()
    assert name in at.selectbox(key="gpt-model").options
    other = open_page("app_pages/gpt.py")  # another browser session
    assert name not in other.selectbox(key="gpt-model").options
    assert "trained_models" not in other.session_state


def test_a_bert_run_restarts_from_the_same_weights_and_reset_forgets_it(fresh) -> None:
    at = start(small_run(fresh, steps=20, family="bert"))
    first = finish(at)
    blanks = next(body for body in html_bodies(at) if "Fill in the blanks at step 20" in body)
    assert html.escape(first.run.updates[-1].sample) in blanks
    first_losses = [p.train_loss for p in history(first)]
    initial = [a.clone() for a in first.initial_attention]
    at.button(key="train-restart").click().run()
    again = finish(at)
    assert again is first and again.attempt == 2
    assert [p.train_loss for p in again.earlier] == first_losses
    assert [p.train_loss for p in history(again)] == first_losses
    for before, after in zip(initial, again.initial_attention, strict=True):
        assert torch.equal(before, after)
    loss = chart_titled(at, "Loss while training")
    assert line(loss, "training (earlier attempt)")[1] == first_losses
    assert list(at.session_state["trained_models"]) == ["my-bert (step 20)", "my-bert (step 20) #2"]
    assert at.session_state["trained_models"]["my-bert (step 20)"].family == "bert"

    at.button(key="train-reset").click().run()
    assert not at.exception
    assert "train-current" not in at.session_state and "train-job" not in at.session_state
    assert [c.key for c in at.get("plotly_chart")] == ["train-planned-schedule"]
    assert "my-bert (step 20)" in at.session_state["trained_models"]  # kept for the pickers


def test_show_that_head_picks_the_strongest_head(fresh) -> None:
    at = start(small_run(fresh, steps=20, family="bert"))
    training = finish(at)
    at.radio(key="train-score").set_value("self").run()
    snapshots = [(0, training.initial_attention)] + [
        (u.progress.step, u.attentions) for u in training.run.updates if u.attentions
    ]
    layer, head, value = attention_timeline(snapshots).strongest_head("self")
    assert any(f"layer {layer}, head {head} ({value:.2f})" in c.value for c in at.caption)
    at.selectbox(key="train-head").set_value(1 - head).run()  # nano: one layer, two heads
    at.button(key="train-best-head").click().run()
    assert not at.exception
    assert (at.selectbox(key="train-layer").value, at.selectbox(key="train-head").value) == (
        layer,
        head,
    )
    assert chart(at, f"Layer {layer}, head {head} at step 20")


def test_stop_keeps_the_model_and_resume_continues_from_the_same_step(fresh) -> None:
    at = start(small_run(fresh, steps=1000))
    job = at.session_state["train-job"]
    at.select_slider(key="train-lr").set_value(1e-2).run()  # a setting changes mid-run…
    assert at.session_state["train-job"] is job and not job.stop_requested  # …and nothing stops
    trained_some_steps(job)
    at.button(key="train-stop").click().run()
    training = finish(at)
    stopped_at = training.run.step
    state = training.run.state
    assert 0 < stopped_at < 1000
    assert f"Stopped at step {stopped_at:,}" in messages(at)
    assert f"my-gpt (step {stopped_at})" in at.session_state["trained_models"]
    assert not at.button(key="train-resume").disabled

    at.button(key="train-resume").click().run()
    trained_some_steps(at.session_state["train-job"])
    at.session_state["train-job"].stop()
    training = finish(at)
    steps = [p.step for p in history(training)]
    assert steps == sorted(set(steps))  # one history, never going back
    after = [s for s in steps if s > stopped_at]
    assert after and after[0] <= stopped_at + 10
    # the same optimizer state and data order, continued (in a worker: a copy of the state)
    assert training.run.state.history[: len(state.history)] == state.history
    assert training.run.step > stopped_at


def test_stop_and_resume_show_their_new_state_at_once(fresh, monkeypatch, tmp_path) -> None:
    at = start(small_run(fresh, steps=1000))
    at.button(key="train-stop").click().run()
    training = finish(at)
    stopped_at = training.run.step
    release = tmp_path / "release"

    def held(self, budget_s):  # a job that answers only when the test lets it
        self._before = self.run
        return partial(work.wait_for_file, str(release))

    monkeypatch.setattr(course.Training, "work", held)
    at.button(key="train-resume").click().run()
    resume, stop = at.button(key="train-resume"), at.button(key="train-stop")
    assert (resume.label, resume.disabled) == ("Resuming…", True)
    assert (stop.label, stop.disabled) == ("Stop", False)
    at.button(key="train-stop").click().run()
    stop = at.button(key="train-stop")
    assert (stop.label, stop.disabled) == ("Stopping…", True)
    assert at.button(key="train-resume").label == "Resume"
    release.touch()  # the job answers: it stopped
    finish(at)
    assert (at.button(key="train-stop").label, at.button(key="train-stop").disabled) == (
        "Stop",
        True,
    )
    assert not at.button(key="train-resume").disabled
    assert training.run.step == stopped_at


# ---------------------------------------------------------------------------------------------
# Divergence and server limits
# ---------------------------------------------------------------------------------------------


def test_a_huge_learning_rate_is_explained(fresh) -> None:
    at = small_run(fresh, steps=200)
    at.select_slider(key="train-lr").set_value(10.0).run()
    training = finish(start(at))
    assert training.run.step < 200
    errors = " ".join(e.value for e in at.error)
    assert "Training stopped" in errors and "learning rate" in errors
    assert "trained_models" not in at.session_state
    assert at.button(key="train-resume").disabled
    assert not at.button(key="train-restart").disabled


def test_too_many_steps_or_parameters_are_refused(fresh, limits) -> None:
    limits(TINYFORMERS_MAX_STEPS="100", TINYFORMERS_MAX_PARAMETERS="20000")
    at = fresh
    at.run()
    start(at)
    assert f"at most 100 steps per run; you asked for {CHAR_SETTINGS.max_steps:,}" in messages(at)
    assert "train-job" not in at.session_state
    at.number_input(key="train-steps").set_value(50).run()
    assert "at most 20,000 parameters" in messages(at)  # said before starting, too
    start(at)
    assert "Too large: this model has 107,456 parameters" in messages(at)
    assert "train-job" not in at.session_state
    start(small_run(at, steps=20))  # a nano model within both limits starts
    assert "train-job" in at.session_state
    finish(at)


def test_the_time_limit_stops_each_start_and_resume_gets_as_long_again(fresh, limits) -> None:
    limits(TINYFORMERS_MAX_SECONDS="1")
    at = fresh
    at.run()
    at = start(small_run(at, steps=5000))
    assert "Time left (estimate)" not in metrics(at)  # one estimate only, in one line
    assert len([c for c in at.caption if c.value.startswith("Time left")]) <= 1
    training = finish(at)
    first = training.run.step
    assert 0 < first < 5000
    assert f"Stopped at step {first:,} by this server's limit of 1 s per start" in messages(at)
    at.button(key="train-resume").click().run()
    training = finish(at)
    assert first < training.run.step < 5000
    assert training.run.state.elapsed_s > 1.0  # more training time than one start allows


def test_a_full_server_queues_the_run(fresh, limits) -> None:
    limits(TINYFORMERS_MAX_TRAININGS="1")
    slots = widgets.training_slots()
    someone_else = slots.ticket()
    assert slots.acquire(someone_else, threading.Event())
    try:
        at = start(small_run(fresh, steps=20))
        assert at.session_state["train-job"].status == "queued"
        assert "Busy: 1 run is ahead of you" in messages(at)
    finally:
        slots.release(someone_else)
    assert finish(at).run.step == 20


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_empty_pasted_text_asks_for_text(fresh) -> None:
    for text in ("", "   \n  "):
        at = paste(fresh, text)
        assert not at.exception
        assert "Paste some text" in messages(at)
        assert at.button(key="train-start").disabled


def test_fifty_thousand_characters(fresh) -> None:
    text = ("The cat sat on the mat. A dog ran. " * 1500)[:50_000]
    at = paste(fresh, text)
    assert not at.exception
    vocab = train_char(text).vocab_size
    model = build_model(preset("micro", "gpt", vocab_size=vocab))
    assert metrics(at)["Parameters"] == f"{count_parameters(model):,}"
    assert caption(at, f"{len(text):,} characters")


def test_emoji_and_cyrillic_text(fresh) -> None:
    text = "Привет, мир! Кошка спит. 🦊🚀 مرحبا. " * 60
    at = paste(fresh, text)
    for tokenizer in ("char", "bpe", "wordpiece"):
        at.radio(key="train-tokenizer").set_value(tokenizer).run()
        assert not at.exception
        assert not at.error
        assert int(metrics(at)["Parameters"].replace(",", "")) > 0
    minimum = wordpiece_min_vocab_size(text)
    vocabulary = train_wordpiece(text, max(1000, minimum)).vocab_size
    assert f"the vocabulary has {vocabulary:,}" in caption(at, f"{len(text):,} characters")


def test_markup_in_the_corpus_is_shown_as_text(fresh) -> None:
    at = paste(fresh, (MARKUP + " ") * 300)
    training = finish(start(small_run(at, steps=20, corpus="own")))
    sample_block = next(body for body in html_bodies(at) if "Sample at step" in body)
    assert "<img" not in sample_block and "</script>" not in sample_block
    assert "&lt;" in sample_block or "&gt;" in sample_block
    matrix = chart(at, "Layer 0, head 0")
    labels = json.dumps(matrix["data"][0]["x"])
    assert training.run.step == 20
    assert "<" not in labels and "&lt;" in labels  # the probe starts with "</script>"


def test_a_corpus_too_short_is_refused(fresh) -> None:
    cases = [
        ("gpt", "hello world", "the text has 11 tokens; a context of 32 needs more than 38"),
        ("bert", "Just one sentence here", "a BERT trains on sentences, and the text has only 1"),
    ]
    for family, text, message in cases:
        at = paste(fresh, text)
        at.radio(key="train-family").set_value(family)
        at.selectbox(key="train-preset").set_value("nano").run()
        start(at)
        assert "The text is too short to train on" in messages(at)
        assert message in messages(at)
        assert "train-job" not in at.session_state


def test_a_size_that_cannot_be_built(fresh) -> None:
    fresh.toggle(key="train-custom").set_value(True).run()
    fresh.number_input(key="train-n_head").set_value(3).run()  # 128 is not divisible by 3
    assert not fresh.exception
    assert "must be divisible by n_head" in messages(fresh)
    assert fresh.button(key="train-start").disabled


def test_uploads_that_are_not_utf8_text_are_refused() -> None:
    # AppTest cannot upload files, so the page's upload check is tested on its core function.
    with pytest.raises(UserTextError, match="not UTF-8"):
        decode_upload("café".encode("latin-1"), "notes.txt")
    with pytest.raises(UserTextError, match="binary"):
        decode_upload(b"\x00\x01\x02 text", "data.txt")
    with pytest.raises(UserTextError, match="only .txt"):
        decode_upload(b"text", "model.bin")


def test_a_bert_is_not_asked_about_next_token_predictions(fresh) -> None:
    fresh.radio(key="train-family").set_value("bert").run()
    assert not fresh.exception
    asked = [b.key for b in fresh.button if b.key and b.key.startswith("commit-")]
    assert [k for k in asked if k.startswith("commit-largest-part-")]  # the others are asked
    assert not [k for k in asked if k.startswith("commit-scored-per-step-")]
    (note,) = [c.value for c in fresh.caption if "does not apply" in c.value]
    assert "masked positions" in note
    radio = [r for r in fresh.radio if r.key and r.key.startswith("guess-largest-part-")][0]
    assert "the masked\\-LM head" in radio.options  # a BERT's own part is offered


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []


def test_a_run_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    finish(start(small_run(at)))
    assert english_leftovers(at) == []
