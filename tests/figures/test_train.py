"""Training figures and captions: the data they draw equals the data given, the numbers they
write are the ones given, and every user string is escaped."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.plotly_json import figure_trace
from tinyformers import i18n
from tinyformers.course import train as course
from tinyformers.course.train import (
    SCORES,
    Choice,
    CorpusProfile,
    RunSample,
    SnapshotView,
    Status,
    Training,
    attention_timeline,
    head_scores,
)
from tinyformers.figures import train as figs
from tinyformers.i18n import N_, translate
from tinyformers.training.jobs import Limits
from tinyformers.training.loop import Progress, TrainSettings

EVIL = "</script><img src=x onerror=alert(1)>"


def history() -> list[Progress]:
    steps = range(10, 110, 10)
    return [
        Progress(s, 4.0 - s / 50, 4.1 - s / 50 if s % 50 == 0 else None, 1e-3, 1000.0 + s, s / 10)
        for s in steps
    ]


def test_loss_figure_draws_both_losses_at_their_steps() -> None:
    data = history()
    fig = figs.loss_figure(data, 300)
    train, val = figure_trace(fig, "training batch"), figure_trace(fig, "validation")
    assert list(train.x) == [p.step for p in data]
    assert list(train.y) == [p.train_loss for p in data]
    assert list(val.x) == [50, 100]
    assert list(val.y) == [p.val_loss for p in data if p.val_loss is not None]
    assert tuple(fig.layout.xaxis.range) == (0, 300)
    assert not fig.layout.shapes


def test_loss_figure_starts_at_the_untrained_models_validation_loss() -> None:
    fig = figs.loss_figure(history(), 300, start_val_loss=3.95)
    val = figure_trace(fig, "validation")
    assert list(val.x) == [0, 50, 100] and list(val.y) == pytest.approx([3.95, 3.1, 2.1])


def test_loss_figure_with_an_earlier_attempt_and_the_even_guess() -> None:
    earlier = history()[:3]
    fig = figs.loss_figure(history(), 100, earlier, even_guess=float(np.log(51)))
    grey = figure_trace(fig, "training (earlier attempt)")
    assert list(grey.y) == [p.train_loss for p in earlier]
    assert fig.layout.shapes[0].y0 == pytest.approx(np.log(51))
    with pytest.raises(ValueError, match="total_steps"):
        figs.loss_figure(history(), 0)


def test_throughput_figure() -> None:
    data = history()
    fig = figs.throughput_figure(data)
    assert list(fig.data[0].y) == [p.tokens_per_s for p in data]


def test_learning_rate_figure_follows_the_schedule() -> None:
    settings = TrainSettings(max_steps=1000, warmup_steps=50, learning_rate=3e-3)
    fig = figs.learning_rate_figure(settings, 300)
    planned, done = figure_trace(fig, "planned"), figure_trace(fig, "so far")
    for x, y in zip(planned.x, planned.y, strict=True):
        assert y == pytest.approx(settings.lr_at(x))
    assert max(planned.y) == pytest.approx(3e-3)  # the peak, right after warm-up
    assert 50 in planned.x and 999 in planned.x
    assert max(done.x) == 300 and set(done.x) <= set(planned.x)
    assert figs.learning_rate_figure(settings, 1000).data[1].x[-1] == 999
    with pytest.raises(ValueError, match="step must be between"):
        figs.learning_rate_figure(settings, 1001)


def test_attention_snapshot_figure_draws_the_matrix_with_escaped_labels() -> None:
    tokens = ["a", " ", "\n", EVIL]
    weights = torch.rand(4, 4).softmax(-1)
    fig = figs.attention_snapshot_figure(weights, tokens, f"head {EVIL}")
    np.testing.assert_allclose(np.asarray(fig.data[0].z), weights.numpy(), rtol=1e-6)
    assert list(fig.data[0].x) == [
        "0: a",
        "1: ␣",
        "2: ⏎",
        "3: &lt;/script&gt;&lt;img␣src=x␣onerror=alert(1)&gt;",
    ]
    spec = fig.to_json()
    assert "<img" not in spec and "</script>" not in spec
    with pytest.raises(ValueError, match="expected a \\(4, 4\\) matrix"):
        figs.attention_snapshot_figure(torch.rand(3, 3), tokens, "x")


def test_head_score_figure_has_one_line_per_head() -> None:
    generator = torch.Generator().manual_seed(0)
    snapshots = [
        (step, [torch.rand(1, 3, 5, 5, generator=generator).softmax(-1) for _ in range(2)])
        for step in (0, 10, 20)
    ]
    timeline = attention_timeline(snapshots)
    fig = figs.head_score_figure(timeline, "previous", selected=(1, 2), uniform=0.2, total_steps=30)
    assert [t.name for t in fig.data] == [
        f"L{layer} H{head}" for layer in range(2) for head in range(3)
    ]
    chosen = figure_trace(fig, "L1 H2")
    assert chosen.line.width > figure_trace(fig, "L0 H0").line.width
    assert list(chosen.x) == [0, 10, 20]
    expected = [head_scores(a)["previous"][1, 2].item() for _, a in snapshots]
    np.testing.assert_allclose(chosen.y, expected, rtol=1e-6)
    assert fig.layout.shapes[0].y0 == 0.2
    assert tuple(fig.layout.xaxis.range) == (0, 30)
    with pytest.raises(ValueError, match="score must be one of"):
        figs.head_score_figure(timeline, "entropy")


def test_sample_html_escapes_the_sample_and_the_prompt() -> None:
    body = figs.sample_html(f"line one\n{EVIL}", f"Step {EVIL}", prompt="<b>")
    assert "<img" not in body and "</script>" not in body
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in body
    assert "<b>&lt;b&gt;</b>" in body
    assert "line one\n" in body and "white-space:pre-wrap" in body
    assert "<b>" not in figs.sample_html("plain", "heading")


def test_figures_serialise_to_json() -> None:
    data = history()
    for fig in (figs.loss_figure(data, 100), figs.throughput_figure(data)):
        json.loads(fig.to_json())


# ---------------------------------------------------------------------------------------------
# The timeline of a session's run, and its loss
# ---------------------------------------------------------------------------------------------


def snapshot_views() -> tuple:
    generator = torch.Generator().manual_seed(1)
    snapshots = [
        (step, [torch.rand(1, 2, 4, 4, generator=generator).softmax(-1) for _ in range(2)])
        for step in (0, 10)
    ]
    timeline = attention_timeline(snapshots)
    view = SnapshotView(
        index=1,
        count=2,
        step=10,
        layer=1,
        head=0,
        weights=snapshots[1][1][1][0, 0],
        tokens=["a", "b", EVIL, "d"],
        scores=timeline.head_values(1, 1, 0),
        uniform={name: 0.25 for name in SCORES},
    )
    return timeline, view


def test_the_snapshot_of_a_view() -> None:
    timeline, view = snapshot_views()
    fig = figs.snapshot_view_figure(view)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), view.weights.numpy(), rtol=1e-6)
    assert fig.layout.title.text == "Layer 1, head 0 at step 10"
    previous = float(head_scores([view.weights[None, None]])["previous"][0, 0])
    assert view.scores["previous"] == pytest.approx(previous)
    caption = figs.snapshot_caption(view)
    assert caption == (
        f"Snapshot 2 of 2. This head's mean weight on the previous token: {previous:.2f}, on "
        f"the first token: {view.scores['first']:.2f}, on itself: {view.scores['self']:.2f} "
        "(evenly spread attention: 0.25)."
    )


def test_the_score_lines_of_a_view() -> None:
    timeline, view = snapshot_views()
    fig = figs.view_score_figure(timeline, view, "self", 30)
    assert figure_trace(fig, "L1 H0").line.width > figure_trace(fig, "L0 H0").line.width
    assert fig.layout.shapes[0].y0 == 0.25
    assert tuple(fig.layout.xaxis.range) == (0, 30)
    layer, head, value = timeline.strongest_head("self")
    assert figs.strongest_head_caption(timeline, "self") == (
        f"At step 10 the strongest head on this score is layer {layer}, head {head} ({value:.2f})."
    )
    assert list(figs.SCORE_LABELS) == list(SCORES)
    assert figs.SCORE_LABELS["self"] == "weight on itself"


def small_choice() -> Choice:
    text = "The cat sat on the mat. A dog ran. " * 30
    profile = course.corpus_profile(text, "char", None)
    settings = course.train_settings(300, 8, 3e-3, 5)
    spec, config = course.run_spec("gpt", profile, "nano", {"n_layer": 2}, settings)
    return Choice(spec, text, "My <text>", config, 12_345, profile)


def test_the_loss_of_a_run_and_its_caption() -> None:
    training = Training(small_choice(), earlier=history()[:2])
    vocab = training.choice.config.vocab_size
    fig = figs.run_loss_figure(training, history())
    assert fig.layout.shapes[0].y0 == pytest.approx(np.log(vocab))
    assert tuple(fig.layout.xaxis.range) == (0, 300)
    assert list(figure_trace(fig, "training (earlier attempt)").x) == [10, 20]
    assert figs.loss_caption(vocab, restarted=False) == (
        f"Guessing evenly among {vocab:,} tokens: ln V = {np.log(vocab):.3f}."
    )
    assert figs.loss_caption(vocab, restarted=True).endswith(
        " Grey dots: the attempt before the restart."
    )


# ---------------------------------------------------------------------------------------------
# Captions of the choice
# ---------------------------------------------------------------------------------------------


def test_sizes_in_words() -> None:
    assert figs.size_text(1, 1, 32, 16) == "1 layer × 1 head, width 32, context 16"
    assert figs.size_text(4, 2, 128, 64) == "4 layers × 2 heads, width 128, context 64"
    assert figs.preset_label("nano") == "nano: 1 layer × 2 heads, width 32, context 32"


def test_corpus_caption() -> None:
    profile = CorpusProfile("wordpiece", 12_000, 300, 420, 415, 3_100, 240)
    assert figs.corpus_caption(profile) == (
        "12,000 characters → 3,100 tokens, 240 sentences; the vocabulary has 415 tokens. "
        "WordPiece needs at least 420 tokens for this text's characters, so the size was "
        "raised to that."
    )
    plain = CorpusProfile("char", 50, None, None, 20, 50, 2)
    assert figs.corpus_caption(plain) == (
        "50 characters → 50 tokens, 2 sentences; the vocabulary has 20 tokens."
    )


def test_the_choice_and_run_captions_use_the_settings() -> None:
    choice = small_choice()
    settings, config = choice.spec.settings, choice.config
    caption = figs.choice_caption(choice)
    assert caption.startswith(
        f"2 layers × 2 heads, width 32, context 32, vocabulary {config.vocab_size:,}. "
    )
    assert "Each step averages over 8 examples of 32 tokens." in caption
    assert f"Warm-up for {settings.warmup_steps} steps" in caption
    assert f"every {settings.eval_interval} steps." in caption
    bert = figs.settings_caption(settings, config, "bert")
    assert "8 examples of one sentence" in bert
    run = figs.run_caption(Training(choice))
    assert run == (
        f"This run: GPT (causal LM), characters ({config.vocab_size:,} tokens), 2 layers × 2 "
        "heads, width 32, context 32: 12,345 parameters. Learning rate 0.003, batch 8, 300 "
        f"steps, seed 5. Corpus: My <text> ({len(choice.text):,} characters)."
    )


def test_size_warning() -> None:
    assert figs.size_warning(1_000, Limits(max_parameters=1_000)) is None
    assert figs.size_warning(1_001, Limits(max_parameters=1_000)) == (
        "This server trains models of at most 1,000 parameters: choose a smaller size."
    )


# ---------------------------------------------------------------------------------------------
# Captions of a run's status and outcome
# ---------------------------------------------------------------------------------------------


def test_status_metrics() -> None:
    status = Status(1_200, 2_000, 245.0, 30.4, 90.0, 12_345.6, 1.23456, 1.5)
    assert figs.status_metrics(status) == {
        "Step": "1,200",
        "Elapsed": "4m 05s",
        "Tokens per second": "12,346",
        "Training loss": "1.235",
        "Validation loss": "1.500",
    }
    unknown = figs.status_metrics(Status(0, 10, 0.0, None, None, None, None, None))
    assert list(unknown.values()) == ["0", "0s", "–", "–", "–"]
    assert figs.progress_text(status) == "Step 1,200 of 2,000"


def test_one_estimate_of_the_time_left() -> None:
    cut = Status(100, 2_000, 60.0, 30.0, 600.0, None, None, None)
    assert figs.time_left_text(cut, 90) == (
        "Time left: about 30s, when this server's limit of 90 s of training per start stops "
        "the run before step 2,000; Resume then continues."
    )  # the estimate that counts the limit; not also the 10 minutes all steps would need
    whole = Status(100, 2_000, 60.0, 30.0, 30.5, None, None, None)
    assert figs.time_left_text(whole, 90) == "Time left: about 30s."
    unknown = Status(0, 2_000, 0.0, None, None, None, None, None)
    assert figs.time_left_text(unknown, 90) == "Time left: estimated once the first steps are done."


def test_buttons_say_what_they_were_asked_to_do() -> None:
    assert figs.button_labels("idle") == {
        "start": "Start training",
        "stop": "Stop",
        "resume": "Resume",
        "restart": "Restart from the same initialization",
        "reset": "Reset",
    }
    assert figs.button_labels("stopping")["stop"] == "Stopping…"
    assert figs.button_labels("resuming")["resume"] == "Resuming…"
    assert figs.button_labels("starting")["start"] == "Starting…"
    assert figs.button_labels("restarting")["restart"] == "Restarting…"
    assert set(figs.button_labels("running").values()) == set(figs.button_labels("idle").values())


def test_notes_above_the_loss_curves() -> None:
    status = Status(30, 100, 3.0, 4.0, 4.0, None, None, None)
    training = Training(small_choice(), job=type("Job", (), {"status": "running"})())
    assert figs.run_notes(training, status, 300) == [("info", figs.PREPARING)]
    training.run = object()  # built: the notes say how long is left
    assert figs.run_notes(training, status, 300) == [("caption", "Time left: about 4s.")]
    queued = figs.run_notes(training, status, 300, ahead=2, error=None)
    assert queued == [
        ("info", "Busy: 2 runs are ahead of you. Yours starts as soon as a slot frees up.")
    ]
    failed = figs.run_notes(training, status, 300, error="ValueError: no")
    assert ("error", "The run failed: ValueError: no") in failed


def test_outcome_messages() -> None:
    status = Status(1_234, 2_000, 60.0, None, None, None, None, None)
    assert figs.outcome_message("finished", status, 300, None) == "Finished all 2,000 steps."
    assert figs.outcome_message("stopped", status, 300, "stopped").startswith(
        "Stopped at step 1,234. The model keeps"
    )
    assert figs.outcome_message("budget", status, 1.5, "stopped").startswith(
        "Stopped at step 1,234 by this server's limit of 1.5 s per start."
    )
    diverged = figs.outcome_message("diverged", status, 300, "the loss exploded.")
    assert diverged.startswith("Training stopped: the loss exploded. The weights")
    assert "lower learning rate" in diverged
    with pytest.raises(ValueError, match="kind must be one of"):
        figs.outcome_message("paused", status, 300, None)


# ---------------------------------------------------------------------------------------------
# Samples and the export
# ---------------------------------------------------------------------------------------------


def test_samples_side_by_side() -> None:
    first, latest = RunSample(0, "qZ!x", prompt="Once"), RunSample(80, "upon a time", "Once")
    both = figs.samples_html("gpt", first, latest, 80)
    assert both.index("Sample at step 0, untrained") < both.index("Sample at step 80:")
    assert "flex-wrap:wrap" in both
    waiting = figs.samples_html("gpt", first, None, 80)
    assert "The next sample comes at the first evaluation, at step 80." in waiting


def test_run_sample_html() -> None:
    gpt = figs.run_sample_html("gpt", RunSample(1_000, f"more {EVIL}", prompt="Once"))
    assert "Sample at step 1,000: the model continues the text in bold." in gpt
    assert "<b>Once</b>" in gpt and "<img" not in gpt
    bert = figs.run_sample_html("bert", RunSample(20, "a [cat] sat", prompt=None))
    assert "Fill in the blanks at step 20: the model&#x27;s guesses are in [brackets]." in bert
    assert "<b>" not in bert


def test_export_texts() -> None:
    assert figs.export_message("my-gpt (step 20)", ["old", "my-gpt (step 20)"]) == (
        "“my-gpt (step 20)” is in the model pickers of the other lessons for this session. "
        "Your models there now: old, my-gpt (step 20)."
    )
    assert figs.export_commands("my-gpt-step-20") == (
        "unzip my-gpt-step-20.zip\ntinyformers export-hf my-gpt-step-20 my-gpt-step-20-hf"
    )


def test_parameter_parts_figure_draws_each_part_with_its_share():
    parts = {"the embedding tables": 112, "the <b>MLPs</b>": 888}
    figure = figs.parameter_parts_figure(parts)
    assert list(figure.data[0].x) == [112, 888]
    assert list(figure.data[0].text) == ["112 (11%)", "888 (89%)"]
    assert "<b>" not in figure.data[0].y[1]
    with pytest.raises(ValueError, match="no parameters"):
        figs.parameter_parts_figure({})


def test_a_failure_written_by_the_worker_is_shown_in_the_pages_language(monkeypatch) -> None:
    message = "the worker running it ended unexpectedly ({note})"
    lost = N_(message).format(note="exit code 9")
    status = Status(30, 100, 3.0, 4.0, 4.0, None, None, None)
    training = Training(small_choice(), job=type("Job", (), {"status": "failed"})())
    english = dict(figs.run_notes(training, status, 300, error=lost))
    assert english["error"] == f"The run failed: {lost}"
    monkeypatch.setattr(i18n, "_language_source", lambda: "ru")
    russian = dict(figs.run_notes(training, status, 300, error=lost))
    assert translate(message, "ru").format(note="exit code 9") in russian["error"]
    assert "unexpectedly" not in russian["error"]
