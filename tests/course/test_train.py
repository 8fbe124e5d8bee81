"""Head scores over training, the time-left estimate and the training session: checked against
loops written out by hand, attention whose scores are known exactly, direct computations and a
short real run."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from tinyformers.course import train as course
from tinyformers.course.train import (
    MIN_SNAPSHOT_INTERVAL,
    SCORES,
    Choice,
    CorpusProfile,
    NumberChoice,
    Status,
    Training,
    attention_timeline,
    format_duration,
    head_scores,
    snapshot_at,
    snapshot_interval,
    steps_per_second,
    time_left,
    uniform_scores,
)
from tinyformers.model.build import build_model, count_parameters
from tinyformers.model.config import PRESETS, BertConfig, GPTConfig
from tinyformers.text.corpora import lesson_corpus
from tinyformers.text.tokenizers import train_tokenizer, wordpiece_min_vocab_size
from tinyformers.training.jobs import Job, Limits
from tinyformers.training.loop import CausalLMTask, Progress, TrainSettings
from tinyformers.training.runs import (
    CHAR_SETTINGS,
    FAMILIES,
    TOKENIZERS,
    TrainUpdate,
    split_sentences,
)


def random_attention(n_layer: int, n_head: int, t: int, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    mask = torch.tril(torch.ones(t, t, dtype=torch.bool))
    layers = []
    for _ in range(n_layer):
        scores = torch.randn(1, n_head, t, t, generator=generator)
        layers.append(scores.masked_fill(~mask, float("-inf")).softmax(-1))
    return layers


def loop_scores(attentions: list[torch.Tensor]) -> dict[str, list[list[float]]]:
    """The three scores written out with loops over layers, heads and query rows 1 … T−1."""
    out = {name: [] for name in SCORES}
    for weights in attentions:
        t = weights.shape[-1]
        for name in SCORES:
            row = []
            for head in range(weights.shape[1]):
                matrix = weights[0, head]
                picks = {
                    "previous": [matrix[i, i - 1] for i in range(1, t)],
                    "first": [matrix[i, 0] for i in range(1, t)],
                    "self": [matrix[i, i] for i in range(1, t)],
                }[name]
                row.append(float(sum(picks)) / (t - 1))
            out[name].append(row)
    return out


def test_scores_equal_a_loop_over_rows() -> None:
    attentions = random_attention(n_layer=3, n_head=4, t=9)
    scores = head_scores(attentions)
    expected = loop_scores(attentions)
    for name in SCORES:
        assert scores[name].shape == (3, 4)
        torch.testing.assert_close(scores[name], torch.tensor(expected[name]))


def test_a_perfect_previous_token_head() -> None:
    t = 6
    weights = torch.zeros(1, 1, t, t)
    weights[0, 0, 0, 0] = 1.0
    for i in range(1, t):
        weights[0, 0, i, i - 1] = 1.0
    scores = head_scores([weights])
    assert scores["previous"].item() == pytest.approx(1.0)
    assert scores["first"].item() == pytest.approx(1 / (t - 1))  # only row 1 looks at token 0
    assert scores["self"].item() == pytest.approx(0.0)


@pytest.mark.parametrize("causal", [True, False])
def test_even_attention_scores_what_uniform_scores_says(causal: bool) -> None:
    t = 7
    visible = torch.tril(torch.ones(t, t)) if causal else torch.ones(t, t)
    weights = (visible / visible.sum(-1, keepdim=True))[None, None]  # (1, 1, T, T)
    scores = head_scores([weights])
    expected = uniform_scores(t, causal)
    for name in SCORES:
        assert scores[name].item() == pytest.approx(expected[name])
    if not causal:
        assert expected["previous"] == pytest.approx(1 / t)


@pytest.mark.parametrize(
    "attentions,message",
    [
        ([], "at least one layer"),
        ([torch.ones(1, 2, 3, 4)], "shape \\(1, heads, T, T\\)"),
        ([torch.ones(2, 2, 3, 3)], "shape \\(1, heads, T, T\\)"),
        ([torch.ones(1, 2, 3, 3), torch.ones(1, 2, 4, 4)], "same shape"),
        ([torch.ones(1, 2, 1, 1)], "at least two tokens"),
    ],
)
def test_bad_snapshots_are_refused(attentions, message) -> None:
    with pytest.raises(ValueError, match=message):
        head_scores(attentions)


def test_uniform_scores_validate() -> None:
    with pytest.raises(ValueError, match="at least two tokens"):
        uniform_scores(1, causal=True)


def test_timeline_stacks_snapshots_and_finds_the_strongest_head() -> None:
    early = random_attention(2, 3, 8, seed=1)
    late = random_attention(2, 3, 8, seed=2)
    late[1][0, 2] = torch.diag(torch.ones(7), -1) + torch.eye(8) * torch.tensor(
        [1.0] + [0.0] * 7
    )  # layer 1, head 2 becomes a perfect previous-token head
    timeline = attention_timeline([(0, early), (50, late)])
    assert timeline.steps == (0, 50)
    assert (timeline.n_layer, timeline.n_head) == (2, 3)
    for name in SCORES:
        assert timeline.scores[name].shape == (2, 2, 3)
        torch.testing.assert_close(timeline.scores[name][0], head_scores(early)[name])
    assert timeline.strongest_head("previous") == (1, 2, pytest.approx(1.0))
    with pytest.raises(ValueError, match="score must be one of"):
        timeline.strongest_head("entropy")


def test_timeline_refuses_disorder_and_mixed_models() -> None:
    a, b = random_attention(1, 2, 5), random_attention(2, 2, 5)
    with pytest.raises(ValueError, match="training order"):
        attention_timeline([(20, a), (10, a)])
    with pytest.raises(ValueError, match="same model"):
        attention_timeline([(0, a), (10, b)])
    with pytest.raises(ValueError, match="at least one snapshot"):
        attention_timeline([])


def test_snapshot_at_picks_the_latest_taken_by_then() -> None:
    steps = [0, 10, 20, 27]
    assert [snapshot_at(steps, s) for s in (0, 9, 10, 15, 26, 27, 100)] == [0, 0, 1, 1, 2, 3, 3]
    assert snapshot_at([10, 20], 5) == 0
    with pytest.raises(ValueError, match="no snapshots"):
        snapshot_at([], 5)


def test_snapshot_interval() -> None:
    assert snapshot_interval(1500) == 100
    assert snapshot_interval(1000) == math.ceil(1000 / 15)
    assert snapshot_interval(30) == MIN_SNAPSHOT_INTERVAL
    assert snapshot_interval(1) == MIN_SNAPSHOT_INTERVAL
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="positive whole number"):
            snapshot_interval(bad)


def progress(step: int, elapsed: float) -> Progress:
    return Progress(step, 1.0, None, 1e-3, 1000.0, elapsed)


def test_time_left_at_a_steady_speed() -> None:
    history = [progress(10 * k, 2.0 * k) for k in range(1, 11)]  # 5 steps per second
    assert steps_per_second(history) == pytest.approx(5.0)
    assert time_left(history, 300) == pytest.approx((300 - 100) / 5)
    assert time_left(history, 300, budget_left_s=7.0) == pytest.approx(7.0)
    assert time_left(history, 300, budget_left_s=-1.0) == 0.0
    assert time_left(history, 100) == 0.0


def test_time_left_follows_the_recent_speed() -> None:
    slow = [progress(10 * k, 10.0 * k) for k in range(1, 6)]  # 1 step per second
    fast = [progress(50 + 10 * k, 50.0 + 1.0 * k) for k in range(1, 11)]  # 10 steps per second
    history = slow + fast
    assert steps_per_second(history) == pytest.approx(10.0)
    assert time_left(history, 250) == pytest.approx((250 - 150) / 10)


def test_time_left_is_unknown_before_any_step() -> None:
    assert steps_per_second([]) is None
    assert time_left([], 100) is None
    assert time_left([], 100, budget_left_s=30.0) == 30.0
    assert steps_per_second([progress(10, 4.0)]) == pytest.approx(2.5)


def test_format_duration() -> None:
    assert format_duration(None) == "–"
    assert format_duration(math.inf) == "–"
    assert format_duration(0.4) == "0s"
    assert format_duration(42.4) == "42s"
    assert format_duration(245) == "4m 05s"
    assert format_duration(-3) == "0s"


# ---------------------------------------------------------------------------------------------
# What a student may choose
# ---------------------------------------------------------------------------------------------


def test_the_choices_cover_what_a_run_accepts() -> None:
    assert tuple(course.FAMILY_LABELS) == FAMILIES
    assert tuple(course.TOKENIZER_LABELS) == TOKENIZERS
    assert set(course.SIZE_LABELS) == set(course.SIZE_LIMITS) == set(PRESETS["char"])
    assert CHAR_SETTINGS.learning_rate == course.DEFAULT_LEARNING_RATE
    assert CHAR_SETTINGS.batch_size == course.DEFAULT_BATCH_SIZE
    assert course.STEPS_CHOICE.default == CHAR_SETTINGS.max_steps
    assert course.VOCAB_CHOICE.low == 7 + 256  # the special tokens and every byte


def test_nearest_on_a_log_scale() -> None:
    assert course.nearest((1, 2, 4, 8), 3) == 4  # 4/3 is closer than 3/2
    assert course.nearest((1, 2, 4, 8), 2.7) == 2  # 2.7/2 < 4/2.7
    assert course.nearest((1e-3, 1e-2), 3e-3) == 1e-3
    with pytest.raises(ValueError, match="positive"):
        course.nearest((1, 2), 0)


def test_number_choice_validates() -> None:
    NumberChoice("n", 1, 10, 10, 1)
    for low, high, default, step in ((1, 10, 11, 1), (5, 4, 5, 1), (1, 10, 5, 0)):
        with pytest.raises(ValueError, match="low <= default <= high"):
            NumberChoice("n", low, high, default, step)


def test_size_choice_starts_at_the_preset() -> None:
    for name, sizes in PRESETS.items():
        for field, (low, high, step) in course.SIZE_LIMITS.items():
            choice = course.size_choice(name, field)
            assert (choice.low, choice.high, choice.step) == (low, high, step)
            assert choice.default == sizes[field]  # every preset fits the inputs
            assert choice.label == course.SIZE_LABELS[field]
    with pytest.raises(ValueError, match="size field must be one of"):
        course.size_choice("nano", "n_vocab")


def test_corpus_text() -> None:
    assert course.corpus_text("lessons") == lesson_corpus()
    with pytest.raises(ValueError, match="no built-in corpus"):
        course.corpus_text("own")


TEXT = "The cat sat on the mat. A dog ran! Did it? " * 40


@pytest.mark.parametrize("kind,vocab", [("char", None), ("bpe", 300)])
def test_corpus_profile_counts_what_a_tokenizer_gives(kind, vocab) -> None:
    profile = course.corpus_profile(TEXT, kind, vocab)
    tokenizer = train_tokenizer(kind, TEXT, vocab)
    assert profile == CorpusProfile(
        kind=kind,
        characters=len(TEXT),
        asked=vocab,
        requested=vocab,
        vocab_size=tokenizer.vocab_size,
        tokens=len(tokenizer.encode(TEXT)),
        sentences=len(split_sentences(TEXT)),
    )
    assert profile.sentences == 120 and not profile.raised


def test_wordpiece_is_raised_to_what_the_text_needs() -> None:
    text = "Привет, мир! Кошка спит. " * 20
    minimum = wordpiece_min_vocab_size(text)
    raised = course.corpus_profile(text, "wordpiece", minimum - 1)
    assert raised.raised and (raised.asked, raised.requested) == (minimum - 1, minimum)
    kept = course.corpus_profile(text, "wordpiece", minimum + 50)
    assert not kept.raised and kept.requested == minimum + 50


def test_train_settings_warm_up_and_evaluation_interval() -> None:
    settings = course.train_settings(1200, 16, 5e-3, 7)
    assert (settings.max_steps, settings.batch_size, settings.learning_rate) == (1200, 16, 5e-3)
    assert (settings.warmup_steps, settings.eval_interval, settings.seed) == (50, 80, 7)
    assert course.train_settings(30, 4, 1e-3, 0).warmup_steps == 3
    assert course.warmup_for(100_000) == CHAR_SETTINGS.warmup_steps


def test_run_spec_uses_the_profile_and_the_overrides() -> None:
    profile = course.corpus_profile(TEXT, "bpe", 300)
    settings = course.train_settings(20, 4, 1e-3, 0)
    spec, config = course.run_spec("bert", profile, "nano", {"n_layer": 3}, settings)
    assert (spec.family, spec.tokenizer, spec.vocab_size, spec.preset) == (
        "bert",
        "bpe",
        300,
        "nano",
    )
    assert (config.vocab_size, config.n_layer, config.n_embd) == (profile.vocab_size, 3, 32)
    assert course.parameter_count(config.to_dict()) == count_parameters(build_model(config))
    with pytest.raises(ValueError, match="divisible"):
        course.run_spec("gpt", profile, "nano", {"n_head": 3}, settings)


def profile_of(tokens: int, sentences: int) -> CorpusProfile:
    return CorpusProfile("char", 0, None, None, 50, tokens, sentences)


def test_length_problem_for_gpt_and_bert() -> None:
    assert course.length_problem(profile_of(11, 1), "gpt", 32) == (
        "the text has 11 tokens; a context of 32 needs more than 38. Use a longer text or a "
        "shorter context."
    )
    assert course.length_problem(profile_of(39, 1), "gpt", 32) is None  # 35 train, 4 val
    assert course.length_problem(profile_of(1000, 1), "bert", 32) == (
        "a BERT trains on sentences, and the text has only 1. Use a longer text."
    )
    assert course.length_problem(profile_of(5, 2), "bert", 32) is None


def small_choice(steps: int = 20, text: str = TEXT, family: str = "gpt") -> Choice:
    profile = course.corpus_profile(text, "char", None)
    settings = course.train_settings(steps, 4, 1e-3, 0)
    spec, config = course.run_spec(family, profile, "nano", {}, settings)
    return Choice(
        spec, text, "test text", config, course.parameter_count(config.to_dict()), profile
    )


def test_refusal_names_the_first_limit_broken() -> None:
    choice = small_choice()
    assert course.refusal(choice, Limits()) is None
    steps = course.refusal(choice, Limits(max_steps=10))
    assert steps == (
        "This server allows at most 10 steps per run; you asked for 20. Lower the number of steps."
    )
    large = course.refusal(choice, Limits(max_parameters=100))
    assert large.startswith(f"Too large: this model has {choice.n_parameters:,} parameters")
    short = course.refusal(small_choice(text="tiny text"), Limits())
    assert short.startswith("The text is too short to train on: the text has 9 tokens")


# ---------------------------------------------------------------------------------------------
# A training session
# ---------------------------------------------------------------------------------------------


def test_small_helpers() -> None:
    assert course.unused_name("a", ["a", "a #2", "b"]) == "a #3"
    assert course.unused_name("c", ["a"]) == "c"
    assert course.model_folder("bert", 300) == "my-bert-step-300"
    assert course.even_guess_loss(65) == pytest.approx(math.log(65))
    with pytest.raises(ValueError, match="at least one token"):
        course.even_guess_loss(0)
    settings = TrainSettings(max_steps=1000, eval_interval=67)
    assert course.last_snapshot_step(settings) == 1005  # 15 evaluations of 67 steps
    assert course.last_snapshot_step(TrainSettings(max_steps=1200, eval_interval=80)) == 1200


def test_status_properties() -> None:
    status = Status(120, 100, 3.0, 2.0, 10.0, None, None, None)
    assert status.fraction == 1.0 and status.planned_step == 100 and status.budget_cuts_short
    halfway = Status(50, 100, 3.0, 2.0, 2.5, None, None, None)
    assert halfway.fraction == 0.5 and halfway.planned_step == 50
    assert not halfway.budget_cuts_short  # within a second of the budget
    assert not Status(0, 100, 0.0, None, None, None, None, None).budget_cuts_short


def fake_training(
    stop_reason: str | None = None,
    elapsed_s: float = 5.0,
    step: int = 10,
    status: str = "finished",
    timed_out: bool = False,
    budget_end_s: float = 60.0,
    stop_requested: bool = False,
    reports: int = 1,
) -> Training:
    """A Training whose run and job are stand-ins with just the fields it reads."""
    settings = TrainSettings(max_steps=100)
    choice = SimpleNamespace(spec=SimpleNamespace(settings=settings))
    state = SimpleNamespace(stop_reason=stop_reason, elapsed_s=elapsed_s)
    run = SimpleNamespace(state=state, step=step, spec=choice.spec, updates=[])
    updates = [TrainUpdate(progress=None) for _ in range(reports)]  # steps the job reported
    job = SimpleNamespace(
        status=status,
        timed_out=timed_out,
        stop_requested=stop_requested,
        snapshot=lambda: SimpleNamespace(updates=updates, active=True, result=None),
    )
    return Training(choice, job=job, run=run, budget_end_s=budget_end_s)


def test_stop_kinds() -> None:
    assert fake_training().stop_kind() == "finished"
    assert fake_training("stopped").stop_kind() == "stopped"
    assert fake_training("stopped", timed_out=True).stop_kind() == "budget"
    assert fake_training("time limit", elapsed_s=60.0).stop_kind() == "budget"
    assert fake_training("the loss exploded.").stop_kind() == "diverged"
    not_started = fake_training()
    not_started.run.state = None
    assert not_started.stop_kind() is None


def test_what_a_session_can_do() -> None:
    assert course.actions(None, ready=True) == course.Actions(True, False, False, False)
    assert course.actions(None, ready=False) == course.Actions(False, False, False, False)
    stopped = fake_training("stopped")
    assert course.actions(stopped, ready=True) == course.Actions(True, True, True, True)
    running = fake_training(status="running")
    assert running.active
    assert course.actions(running, ready=True) == course.Actions(False, False, False, True, True)
    stopping = fake_training(status="running", stop_requested=True)
    assert course.actions(stopping, ready=True) == course.Actions(False, False, False, True)
    diverged = fake_training("the loss exploded.")
    assert (diverged.can_resume(), diverged.can_restart()) == (False, True)
    done = fake_training(step=100)
    assert not done.can_resume()


def test_the_phase_answers_a_click_before_the_job_does() -> None:
    assert course.phase_of(None) == "idle"
    assert fake_training("stopped").phase() == "idle"
    assert fake_training(status="queued", reports=0).phase() == "starting"
    for kind, phase in course.STARTS.items():
        waiting = fake_training(status="running", reports=0)
        waiting.last_start = kind
        assert waiting.phase() == phase  # asked for; the job has not reported a step yet
    assert fake_training(status="running").phase() == "running"
    assert fake_training(status="running", stop_requested=True).phase() == "stopping"
    with pytest.raises(ValueError, match="kind must be one of"):
        fake_training().begin("pause", 10.0)


def test_the_default_choice_is_small_enough_to_teach_fast() -> None:
    default = course.default_choice()
    assert (default.spec.family, default.spec.tokenizer, default.spec.preset) == (
        "gpt",
        "char",
        "micro",
    )
    assert default.corpus == course.CORPUS_LABELS["char"]
    settings = default.spec.settings
    assert (settings.max_steps, settings.batch_size) == (CHAR_SETTINGS.max_steps, 16)
    assert settings.learning_rate == CHAR_SETTINGS.learning_rate
    assert settings.eval_interval == course.snapshot_interval(settings.max_steps)
    assert default.n_parameters == count_parameters(build_model(default.config))
    assert default.n_parameters < 200_000


def test_status_of_a_history() -> None:
    training = fake_training(budget_end_s=30.0)
    history = [
        Progress(10 * k, 3.0 - k / 10, 3.1 if k == 2 else None, 1e-3, 900.0, 2.0 * k)
        for k in range(1, 5)
    ]
    running = training.status(history, active=True)
    assert (running.step, running.total, running.elapsed_s) == (40, 100, 8.0)
    assert (running.tokens_per_s, running.train_loss, running.val_loss) == (900.0, 2.6, 3.1)
    assert running.unlimited_left_s == pytest.approx(time_left(history, 100))
    assert running.time_left_s == pytest.approx(min(time_left(history, 100), 30.0 - 8.0))
    stopped = training.status(history, active=False)
    assert stopped.time_left_s is None and stopped.unlimited_left_s is None
    empty = training.status([], active=True)
    assert (empty.step, empty.elapsed_s, empty.train_loss, empty.val_loss) == (0, 0.0, None, None)


@pytest.fixture(scope="module")
def trained() -> Training:
    """A nano GPT trained for 20 steps on the lessons' text, the way the page's job does it."""
    choice = small_choice(steps=20, text=lesson_corpus())
    training = Training(choice)
    training.job = Job(training.work(600.0)).start()  # in a worker process
    training.job.join(600)
    training.sync()
    return training


def test_a_run_trains_and_keeps_its_snapshots(trained: Training) -> None:
    run = trained.run
    assert run.step == 20 and trained.stop_kind() == "finished"
    assert trained.history() == [u.progress for u in run.updates]
    assert [p.step for p in trained.history()] == [10, 20]
    snapshots = trained.timeline_snapshots()
    assert [step for step, _ in snapshots] == [0, 10, 20]
    assert trained.initial_val_loss > trained.history()[-1].val_loss  # it learned something
    first = course.first_sample(trained)
    assert (first.step, first.text) == (0, trained.initial_sample)
    assert course.samples(trained) == (first, course.latest_sample(run), 10)
    assert snapshots[0][1] is trained.initial_attention
    timeline = attention_timeline(snapshots)
    view = trained.snapshot_view(snapshots, timeline, 15, 0, 1)
    assert (view.index, view.count, view.step, view.layer, view.head) == (1, 3, 10, 0, 1)
    torch.testing.assert_close(view.weights, run.updates[0].attentions[0][0, 1])
    direct = head_scores(run.updates[0].attentions)
    assert view.scores == {name: pytest.approx(float(direct[name][0, 1])) for name in SCORES}
    assert view.uniform == uniform_scores(len(run.probe_tokens), causal=True)
    assert view.tokens == run.probe_tokens
    with pytest.raises(ValueError, match="no head 2 in layer 0"):
        trained.snapshot_view(snapshots, timeline, 15, 0, 2)
    sample = course.latest_sample(run)
    assert (sample.step, sample.text) == (20, run.updates[-1].sample)
    assert sample.prompt == run.tokenizer.decode(run.probe_ids[:4])


def test_publish_then_restart(trained: Training) -> None:
    assert trained.publishable()
    with pytest.raises(ValueError, match="nothing has been published"):
        _ = trained.folder
    models = {"older": None, "my-gpt (step 20)": None}
    name = trained.publish(models, keep=2)
    assert name == "my-gpt (step 20) #2"
    assert list(models) == ["my-gpt (step 20)", name]  # the oldest one went
    for ours, theirs in zip(
        trained.run.model.parameters(), models[name].model.parameters(), strict=True
    ):
        assert torch.equal(ours, theirs)
    assert trained.folder == "my-gpt-step-20" and trained.zip_bytes.startswith(b"PK")
    assert not trained.publishable()  # this step is in the pickers already
    with pytest.raises(ValueError, match="only a stopped or finished run"):
        trained.publish(models)

    losses = [p.train_loss for p in trained.history()]
    trained.restart()
    assert trained.attempt == 2 and trained.run.step == 0
    assert [p.train_loss for p in trained.earlier] == losses
    assert trained.initial_attention is None and trained.history() == []
    assert trained.initial_sample is None and trained.initial_val_loss is None
    assert not trained.publishable()
    with pytest.raises(ValueError, match="no run to restart"):
        Training(trained.choice).restart()


# ---------------------------------------------------------------------------------------------
# Predict, then reveal: questions about the chosen model, answered without training
# ---------------------------------------------------------------------------------------------


def chosen(config, batch_size: int = 16) -> SimpleNamespace:
    """What the questions read of a ``Choice``: its config, family and batch size."""
    spec = SimpleNamespace(family=config.family, settings=SimpleNamespace(batch_size=batch_size))
    return SimpleNamespace(config=config, spec=spec)


# One layer of width 8, a context of 4 and 10 tokens, counted by hand:
#   embeddings  10·8 + 4·8                  = 112
#   attention   4 · (8·8 + 8)               = 288
#   MLP         8·32 + 32 + 32·8 + 8        = 552
#   LayerNorms  ln_1, ln_2, ln_f: 3 · 2·8   = 48
SMALL = GPTConfig(vocab_size=10, block_size=4, n_layer=1, n_head=2, n_embd=8)


def test_parameter_parts_by_hand():
    parts = course.parameter_parts(SMALL)
    assert parts == {"embeddings": 112, "attention": 288, "mlp": 552, "layer_norms": 48}
    assert sum(parts.values()) == count_parameters(build_model(SMALL)) == 1_000


@pytest.mark.parametrize("family", ["gpt", "bert"])
def test_parameter_parts_add_up_to_the_built_models_count(family):
    config = (
        course.default_choice().config
        if family == "gpt"
        else BertConfig(**PRESETS["micro"], vocab_size=300)
    )
    parts = course.parameter_parts(config)
    assert sum(parts.values()) == count_parameters(build_model(config))
    assert ("head" in parts) == (family == "bert")  # GPT scores tokens with its token table


@pytest.mark.parametrize(
    ("config", "answer"),
    [
        (SMALL, "the MLPs"),
        (
            GPTConfig(vocab_size=1_000, block_size=64, n_layer=2, n_head=2, n_embd=64),
            "the embedding tables",
        ),
    ],
)
def test_largest_part(config, answer):
    prediction = course.predict_largest_part(chosen(config))
    assert answer in prediction.choices and "the masked-LM head" not in prediction.choices
    reveal = prediction.reveal()
    assert reveal.answer == answer
    assert sum(reveal.data["parts"].values()) == reveal.values["total"]


def test_a_berts_masked_lm_head_is_a_choice():
    config = BertConfig(**PRESETS["micro"], vocab_size=300)
    assert "the masked-LM head" in course.predict_largest_part(chosen(config)).choices


@pytest.mark.parametrize("vocab", [51, 2_000])
def test_step_zero_loss_is_ln_v_and_an_untrained_model_starts_there(vocab):
    config = GPTConfig(vocab_size=vocab, block_size=32, n_layer=2, n_head=2, n_embd=64)
    prediction = course.predict_step_zero_loss(chosen(config))
    assert prediction.values == {"family": "GPT", "vocab": vocab}
    reveal = prediction.reveal()
    assert reveal.answer == pytest.approx(math.log(vocab))
    torch.manual_seed(0)
    model = build_model(config)
    ids = torch.randint(vocab, (8, 33), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        loss = model(ids[:, :-1], targets=ids[:, 1:]).loss.item()
    assert loss == pytest.approx(math.log(vocab), abs=0.25)  # the question's tolerance


def test_scored_per_step_is_what_a_batch_holds():
    choice = course.default_choice()
    reveal = course.predict_scored_per_step(choice).reveal()
    batch, context = choice.spec.settings.batch_size, choice.config.block_size
    assert reveal.answer == batch * context == 16 * 64
    task = CausalLMTask(torch.arange(10_000) % 50, context)
    targets = task.batch(batch, torch.Generator().manual_seed(0))["targets"]
    assert targets.numel() == reveal.answer  # every position has a next token to predict


def test_scored_per_step_is_for_a_gpt():
    with pytest.raises(ValueError, match="masked positions"):
        course.predict_scored_per_step(chosen(BertConfig(**PRESETS["micro"], vocab_size=300)))


def test_doubled_width_by_hand():
    # width 16: embeddings 10·16 + 4·16 = 224, attention 4·(256 + 16) = 1,088,
    # MLP 16·64 + 64 + 64·16 + 16 = 2,128, LayerNorms 3·32 = 96: 3,536 in all
    prediction = course.predict_doubled_width(chosen(SMALL))
    assert prediction.values["doubled_width"] == 16
    reveal = prediction.reveal()
    assert reveal.values["now"] == 1_000 and reveal.values["doubled"] == 3_536
    assert reveal.answer == pytest.approx(3.536)
    assert (reveal.values["embeddings_now"], reveal.values["embeddings_doubled"]) == (112, 224)
