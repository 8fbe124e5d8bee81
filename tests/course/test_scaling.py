"""The scaling sweep's core: the power-law fit against exact and noisy data and against numpy's
least squares, parameter counts against built models, settings validation and a tiny sweep."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from tinyformers.course.scaling import (
    CHINCHILLA_TOKENS_PER_PARAMETER,
    LADDER,
    SOURCES,
    SweepSettings,
    all_parameters,
    char_task,
    compute_frontier,
    embedding_parameters,
    fit_power_law,
    frontier_labels,
    kaplan_approximation,
    ladder_configs,
    live_curves,
    model_label,
    non_embedding_parameters,
    plan_sweep,
    predict_chinchilla_steps,
    predict_smallest_embedding_share,
    run_sweep,
    sweep_progress,
    text_sizes,
    training_flops,
    training_text,
    undertrained,
)
from tinyformers.model.build import build_model, count_parameters
from tinyformers.model.config import GPTConfig
from tinyformers.text.corpora import generate_corpus, lesson_corpus
from tinyformers.training.experiments import RunUpdate
from tinyformers.training.loop import Progress
from tinyformers.training.zoo import char_text

SIZES = np.geomspace(1e3, 1e6, 8)


# ---------------------------------------------------------------------------------------------
# The fit
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefactor,exponent", [(3.2, -0.076), (11.0, -0.5), (2e-6, 2.0)])
def test_fit_recovers_an_exact_power_law(prefactor, exponent) -> None:
    fit = fit_power_law(SIZES, prefactor * SIZES**exponent)
    assert fit.exponent == pytest.approx(exponent, abs=1e-12)
    assert fit.alpha == pytest.approx(-exponent, abs=1e-12)
    assert fit.prefactor == pytest.approx(prefactor, rel=1e-10)
    assert fit.r_squared == pytest.approx(1.0, abs=1e-12)
    assert fit.exponent_se < 1e-9 and fit.prefactor_se < 1e-9 * prefactor
    assert fit.n_points == len(SIZES)
    assert fit.predict(5e4) == pytest.approx(prefactor * 5e4**exponent, rel=1e-10)


def noisy_losses(seed: int, prefactor: float = 4.0, alpha: float = 0.07, sigma: float = 0.02):
    rng = np.random.default_rng(seed)
    return prefactor * SIZES**-alpha * np.exp(rng.normal(0.0, sigma, len(SIZES)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_fit_lands_within_its_reported_uncertainty(seed) -> None:
    fit = fit_power_law(SIZES, noisy_losses(seed))
    assert abs(fit.alpha - 0.07) < 3 * fit.exponent_se
    log_prefactor_se = fit.prefactor_se / fit.prefactor  # delta method, back to ln a
    assert abs(math.log(fit.prefactor) - math.log(4.0)) < 3 * log_prefactor_se
    assert 0 < fit.exponent_se < 0.02 and 0 < fit.r_squared < 1


def test_fit_equals_numpy_least_squares_with_its_covariance() -> None:
    losses = noisy_losses(7)
    fit = fit_power_law(SIZES, losses)
    (slope, intercept), cov = np.polyfit(np.log(SIZES), np.log(losses), 1, cov=True)
    assert fit.exponent == pytest.approx(slope, rel=1e-9)
    assert math.log(fit.prefactor) == pytest.approx(intercept, rel=1e-9)
    assert fit.exponent_se == pytest.approx(math.sqrt(cov[0, 0]), rel=1e-6)
    assert fit.prefactor_se / fit.prefactor == pytest.approx(math.sqrt(cov[1, 1]), rel=1e-6)


def test_one_standard_error_covers_the_truth_as_often_as_the_t_distribution_says() -> None:
    trials = 400
    hits = sum(
        abs(fit.alpha - 0.07) < fit.exponent_se
        for fit in (fit_power_law(SIZES, noisy_losses(seed)) for seed in range(trials))
    )
    expected = 2 * stats.t.cdf(1.0, df=len(SIZES) - 2) - 1  # 0.644 for 6 degrees of freedom
    spread = 3 * math.sqrt(expected * (1 - expected) / trials)
    assert abs(hits / trials - expected) < spread


def test_two_points_give_an_exponent_but_no_standard_error() -> None:
    fit = fit_power_law([10, 1000], [2.0, 1.0])
    assert fit.exponent == pytest.approx(math.log(0.5) / math.log(100))
    assert math.isnan(fit.exponent_se) and math.isnan(fit.prefactor_se)


@pytest.mark.parametrize(
    "x,y,message",
    [
        ([1, 2, 3], [1, 2], "as many x as y"),
        ([5], [1], "at least 2 points"),
        ([1, 0, 3], [1, 2, 3], "positive, finite x"),
        ([1, 2, 3], [1, -2, 3], "positive, finite y"),
        ([1, 2, 3], [1, float("nan"), 3], "positive, finite y"),
        ([4, 4, 4], [1, 2, 3], "every x value is the same"),
    ],
)
def test_fit_rejects_bad_data(x, y, message) -> None:
    with pytest.raises(ValueError, match=message):
        fit_power_law(x, y)


# ---------------------------------------------------------------------------------------------
# Counting parameters and compute
# ---------------------------------------------------------------------------------------------


def direct_non_embedding_count(model) -> int:
    embeddings = model.wte.weight.numel()
    if getattr(model, "wpe", None) is not None:
        embeddings += sum(p.numel() for p in model.wpe.parameters())
    return count_parameters(model) - embeddings


@pytest.mark.parametrize("config", ladder_configs(vocab_size=51), ids=model_label)
def test_non_embedding_count_equals_the_built_ladder_model(config) -> None:
    model = build_model(config)
    assert non_embedding_parameters(config) == direct_non_embedding_count(model)
    assert non_embedding_parameters(config) + embedding_parameters(config) == count_parameters(
        model
    )


@pytest.mark.parametrize(
    "changes",
    [
        dict(position="rotary"),
        dict(position="sinusoidal"),
        dict(position="none"),
        dict(n_inner=50),
        dict(layer_norm=False),
        dict(n_layer=3, n_embd=40, n_head=5, vocab_size=300, block_size=20),
    ],
)
def test_non_embedding_count_follows_the_config(changes) -> None:
    config = GPTConfig(
        **{**dict(vocab_size=60, block_size=16, n_layer=2, n_head=2, n_embd=32), **changes}
    )
    model = build_model(config)
    assert non_embedding_parameters(config) == direct_non_embedding_count(model)
    assert non_embedding_parameters(config) + embedding_parameters(config) == count_parameters(
        model
    )


def test_kaplans_shorthand_leaves_out_exactly_the_biases_and_layer_norms() -> None:
    for config in ladder_configs(vocab_size=51):
        c, layers = config.n_embd, config.n_layer
        per_layer = 4 * c + 5 * c + 4 * c  # attention biases, MLP biases, two LayerNorms
        left_out = non_embedding_parameters(config) - kaplan_approximation(config)
        assert left_out == layers * per_layer + 2 * c  # + the final LayerNorm


def test_ladder_grows_and_keeps_heads_16_wide() -> None:
    configs = ladder_configs(vocab_size=51)
    counts = [non_embedding_parameters(c) for c in configs]
    assert len(configs) == len(LADDER)
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    assert all(c.head_size == 16 for c in configs)
    assert [(c.n_layer, c.n_embd) for c in ladder_configs(51, n_models=3)] == list(LADDER[:3])


def test_training_flops_and_tokens() -> None:
    assert training_flops(1_000, 2_000) == 12_000_000
    settings = SweepSettings(steps=40, batch_size=8, block_size=32)
    assert settings.tokens == 40 * 8 * 32 and settings.tokens_per_step == 256


def test_counting_refuses_other_families() -> None:
    from tinyformers.model.config import BertConfig

    with pytest.raises(ValueError, match="GPT configs"):
        non_embedding_parameters(BertConfig())


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes,message",
    [
        (dict(n_models=0), "number of models must be a whole number from 3 to 8, got 0"),
        (dict(n_models=2), "from 3 to 8, got 2"),
        (dict(n_models=100), "from 3 to 8, got 100"),
        (dict(n_models=True), "from 3 to 8, got True"),
        (dict(n_models=4.5), "from 3 to 8, got 4.5"),
        (dict(steps=0), "steps must be a whole number from 10 to 5000, got 0"),
        (dict(steps=10**9), "steps must be a whole number from 10 to 5000"),
        (dict(seed=-1), "seed must be a whole number"),
        (dict(learning_rate=0.0), "learning rate must be in"),
        (dict(evaluations=0), "number of evaluations"),
    ],
)
def test_settings_reject_absurd_values(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        SweepSettings(**changes)


def test_train_settings_evaluate_at_the_end() -> None:
    train = SweepSettings(steps=300, evaluations=4).train_settings()
    assert train.max_steps == 300 and train.eval_interval == 75 and train.warmup_steps == 20
    assert SweepSettings(steps=10, evaluations=4).train_settings().eval_interval == 3


# ---------------------------------------------------------------------------------------------
# The compute frontier
# ---------------------------------------------------------------------------------------------


def test_frontier_keeps_only_points_no_cheaper_point_beats() -> None:
    points = [(1, 5.0), (2, 4.0), (3, 4.5), (4, 3.0), (4, 3.5), (5, 3.0), (6, 2.0)]
    assert compute_frontier(points) == [(1, 5.0), (2, 4.0), (4, 3.0), (6, 2.0)]
    rng = np.random.default_rng(0)
    random_points = [(float(f), float(loss)) for f, loss in rng.uniform(1, 10, (50, 2))]
    frontier = compute_frontier(random_points)
    for flops, loss in frontier:
        assert not any(f <= flops and other < loss for f, other in random_points)
    assert [f for f, _ in frontier] == sorted(f for f, _ in frontier)


# ---------------------------------------------------------------------------------------------
# A tiny sweep
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def text() -> str:
    return generate_corpus(300, seed=0)


def test_tiny_sweep_gives_one_point_per_model(text) -> None:
    settings = SweepSettings(n_models=3, steps=10, evaluations=2)
    updates = []
    result = run_sweep(text, settings, "stories", report=lambda u: updates.append(u) is None)
    labels = [model_label(c) for c in ladder_configs(result.vocab_size, 3)]
    assert [p.label for p in result.points] == labels
    assert not result.stopped and not result.failed
    assert [u.label for u in updates if isinstance(u, RunUpdate)][0] == labels[0]
    vocab_size, task = char_task(text, settings.block_size)
    assert (result.vocab_size, result.val_tokens) == (vocab_size, len(task.val_ids))
    for point in result.points:
        assert math.isfinite(point.val_loss) and 0 < point.val_loss < 10
        assert point.non_embedding_parameters == non_embedding_parameters(point.config)
        assert point.tokens == 10 * 16 * 64
        assert point.flops == 6 * point.non_embedding_parameters * point.tokens
        assert point.history[-1].step == 10 and point.history[-1].val_loss == point.val_loss
        flops, losses = point.curve()
        assert flops[-1] == point.flops and losses[-1] == point.val_loss
        assert len(flops) == 2  # evaluations at steps 5 and 10
    fit = result.fit()
    direct = fit_power_law(
        [p.non_embedding_parameters for p in result.points], [p.val_loss for p in result.points]
    )
    assert fit == direct and fit.n_points == 3


def test_stopping_keeps_only_finished_models(text) -> None:
    settings = SweepSettings(n_models=3, steps=40)
    result = run_sweep(text, settings, report=lambda update: update.progress.step < 10)
    assert result.stopped and result.points == () and result.failed == ()


@pytest.mark.parametrize("bad", ["", "   ", "too short"])
def test_sweep_rejects_text_it_cannot_train_on(bad) -> None:
    with pytest.raises(ValueError, match="empty|too short"):
        run_sweep(bad, SweepSettings(n_models=3, steps=10))


# ---------------------------------------------------------------------------------------------
# The sweep as the page plans it and follows it
# ---------------------------------------------------------------------------------------------


def test_training_text_is_the_stories_or_the_lessons() -> None:
    assert list(SOURCES) == ["stories", "lessons"]
    assert training_text("stories") == char_text()
    assert training_text("lessons") == lesson_corpus()
    with pytest.raises(ValueError, match="must be one of stories, lessons; got 'poems'"):
        training_text("poems")


def test_text_sizes_are_the_character_task_sizes(text) -> None:
    vocab_size, task = char_task(text, 32)
    assert text_sizes(text, 32) == (vocab_size, len(task.train_ids), len(task.val_ids))
    assert sum(text_sizes(text, 32)[1:]) == len(text)  # every character in one split


def test_plan_counts_every_model_of_the_ladder() -> None:
    settings = SweepSettings(n_models=4, steps=100)
    plan = plan_sweep("lessons", settings, (40, 9_000, 1_000))
    configs = ladder_configs(40, 4, settings.block_size)
    assert plan.configs == tuple(configs)
    assert plan.key == ("lessons", settings) and plan.source_name == "The lessons' text"
    assert plan.labels == [model_label(c) for c in configs]
    n = [non_embedding_parameters(c) for c in configs]
    assert list(plan.parameters.values()) == n
    assert plan.largest_parameters() == count_parameters(build_model(configs[-1]))
    assert plan.flops() == pytest.approx(sum(6 * x * settings.tokens for x in n))
    everything = [count_parameters(build_model(c)) for c in configs]
    assert [all_parameters(c) for c in configs] == everything
    assert list(plan.tokens_per_parameter().values()) == [settings.tokens / x for x in everything]
    with pytest.raises(ValueError, match="must be one of"):
        plan_sweep("poems", settings, (40, 9_000, 1_000))


def test_undertrained_models_are_below_twenty_tokens_per_parameter() -> None:
    assert CHINCHILLA_TOKENS_PER_PARAMETER == 20
    ratios = {"small": 45.0, "edge": 20.0, "large": 19.9, "huge": 2.5}
    assert undertrained(ratios) == ["large", "huge"]
    assert undertrained({"small": 45.0}) == []


def progress(step: int, val_loss: float | None) -> Progress:
    return Progress(step, 2.0, val_loss, 1e-3, 1000.0, step / 10)


def test_progress_counts_finished_models_and_the_current_step() -> None:
    plan = plan_sweep("stories", SweepSettings(n_models=3, steps=100), (40, 9_000, 1_000))
    first, second, _ = plan.labels
    assert sweep_progress([], plan) is None
    assert sweep_progress(["not an update"], plan) is None
    updates = [RunUpdate(first, progress(100, 2.0)), RunUpdate(second, progress(25, None))]
    now = sweep_progress(updates, plan)
    assert (now.model, now.n_models, now.label, now.step, now.steps) == (1, 3, second, 25, 100)
    assert now.fraction == pytest.approx((1 + 25 / 100) / 3)
    past_the_end = sweep_progress([RunUpdate(plan.labels[-1], progress(150, None))], plan)
    assert past_the_end.fraction == 1.0


def test_live_curves_are_compute_and_loss_at_every_evaluation() -> None:
    settings = SweepSettings(n_models=3, steps=100)
    plan = plan_sweep("stories", settings, (40, 9_000, 1_000))
    first, second, _ = plan.labels
    updates = [
        RunUpdate(first, progress(10, None)),
        RunUpdate(first, progress(50, 2.5)),
        "not an update",
        RunUpdate(second, progress(50, 2.4)),
        RunUpdate(first, progress(100, 2.1)),
    ]
    curves = live_curves(updates, plan)
    n = plan.parameters
    tokens = settings.tokens_per_step
    assert curves == {
        first: ([6 * n[first] * 50 * tokens, 6 * n[first] * 100 * tokens], [2.5, 2.1]),
        second: ([6 * n[second] * 50 * tokens], [2.4]),
    }


def test_frontier_labels_name_the_curves_that_reach_the_frontier() -> None:
    curves = {
        "small": ([1.0, 2.0, 4.0], [5.0, 4.0, 3.8]),
        "medium": ([2.0, 4.0, 8.0], [4.5, 3.5, 3.0]),
        "large": ([4.0, 8.0, 16.0], [4.2, 3.2, 2.0]),
    }
    # (1, 5.0) small, (2, 4.0) small, (4, 3.5) medium, (8, 3.0) medium, (16, 2.0) large
    assert frontier_labels(curves) == ["small", "medium", "large"]
    assert frontier_labels({"only": ([1.0, 2.0], [3.0, 3.5])}) == ["only"]
    assert frontier_labels({"a": ([1.0], [2.0]), "b": ([2.0], [2.5])}) == ["a"]


# ---------------------------------------------------------------------------------------------
# Predict, then reveal: the planned sweep, before anything trains
# ---------------------------------------------------------------------------------------------


PLAN_SIZES = (51, 300_000, 30_000)  # gpt-char's stories: 51 characters


@pytest.mark.parametrize(
    ("n_models", "steps"),
    [
        (6, 3_075),  # 3 layers × 64 wide: 157,440 × 20 = 3,148,800 tokens, 1,024 a step
        (3, 570),  # 2 layers × 32 wide: 29,152 × 20 = 583,040 tokens: 569.4 steps, rounded up
    ],
)
def test_chinchilla_steps_by_hand(n_models, steps):
    plan = plan_sweep("stories", SweepSettings(n_models=n_models, steps=300), PLAN_SIZES)
    prediction = predict_chinchilla_steps(plan)
    assert prediction.values["ratio"] == CHINCHILLA_TOKENS_PER_PARAMETER == 20
    assert prediction.values["parameters"] == count_parameters(build_model(plan.configs[-1]))
    reveal = prediction.reveal()
    assert reveal.answer == steps
    assert reveal.values["per_step"] == 16 * 64


def test_smallest_embedding_share_by_hand():
    plan = plan_sweep("stories", SweepSettings(n_models=3), PLAN_SIZES)
    prediction = predict_smallest_embedding_share(plan)
    assert prediction.values == {"label": "1 layer × 16 wide", "vocab": 51, "context": 64}
    reveal = prediction.reveal()
    # tables: 51 × 16 + 64 × 16 = 1,840 of 5,152 parameters
    assert (reveal.values["embedding"], reveal.values["total"]) == (1_840, 5_152)
    assert reveal.answer == pytest.approx(1_840 / 5_152)
    assert reveal.values["total"] == all_parameters(plan.configs[0])
