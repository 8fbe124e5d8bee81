"""The grammaticality task, the classifier, the fine-tuning runs and their measurements, and the
no-training baselines with gpt-stories."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from tinyformers.course import fine_tuning as C
from tinyformers.hub.registry import load_shipped
from tinyformers.model import peft
from tinyformers.text.corpora.stories import Sentence, is_grammatical
from tinyformers.text.inputs import model_input_ids
from tinyformers.training.loop import Progress, train


@pytest.fixture(scope="module")
def bert():
    return load_shipped("bert-stories")


@pytest.fixture(scope="module")
def gpt():
    return load_shipped("gpt-stories")


@pytest.fixture(scope="module")
def small_task() -> C.TaskData:
    return C.make_task(n_train=60, n_held_out=40, seed=3)


def state(model) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


# ---------------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------------


def test_negatives_are_ungrammatical_and_positives_grammatical() -> None:
    data = C.make_task(n_train=400, n_held_out=200, seed=0)
    for example in data.train + data.held_out:
        assert is_grammatical(example.text) == (example.label == C.GRAMMATICAL), example
        assert is_grammatical(example.source)
        assert (example.kind == C.ORIGINAL) == (example.label == C.GRAMMATICAL)
        assert (example.text == example.source) == (example.kind == C.ORIGINAL)


@pytest.mark.parametrize("n_train,n_held_out", [(400, 200), (41, 21)])
def test_splits_are_balanced_disjoint_and_take_the_corruptions_in_turn(n_train, n_held_out):
    data = C.make_task(n_train, n_held_out, seed=5, corruptions=("verb", "swap"))
    for split, n in ((data.train, n_train), (data.held_out, n_held_out)):
        labels = Counter(e.label for e in split)
        assert len(split) == n and labels[C.GRAMMATICAL] == n // 2
        kinds = Counter(e.kind for e in split if e.label == C.UNGRAMMATICAL)
        assert set(kinds) == {"verb", "swap"} and abs(kinds["verb"] - kinds["swap"]) <= 1
        assert len({e.source for e in split}) == n  # each example from its own sentence
    assert not {e.source for e in data.train} & {e.source for e in data.held_out}


def test_the_seed_decides_the_task() -> None:
    assert C.make_task(60, 40, seed=1) == C.make_task(60, 40, seed=1)
    assert C.make_task(60, 40, seed=1).train != C.make_task(60, 40, seed=2).train


def test_corruptions_do_what_they_say() -> None:
    sentence = Sentence("the dogs near the cat run .", 1, 5, "pl")
    rng = random.Random(0)
    assert C.corrupt(sentence, "verb", rng) == "the dogs near the cat runs ."
    for _ in range(20):
        dropped = C.corrupt(sentence, "drop", rng).split()
        assert len(dropped) == 6 and dropped[-1] == "."
        swapped = C.corrupt(sentence, "swap", rng).split()
        assert sorted(swapped) == sorted(sentence.text.split()) and swapped[-1] == "."
        assert sum(a != b for a, b in zip(swapped, sentence.text.split(), strict=True)) in (0, 2)


def test_a_corruption_that_stays_grammatical_is_not_used() -> None:
    # Only adjectives can be dropped from "the big dog runs" and stay grammatical sometimes;
    # whatever is returned must be rejected by the parser.
    sentence = Sentence("the big dog runs .", 2, 3, "sg")
    for seed in range(30):
        text = C.ungrammatical_version(sentence, "drop", random.Random(seed))
        assert text is None or not is_grammatical(text)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"n_train": 0}, "training examples must be a whole number from 20 to 5000"),
        ({"n_train": 10**9}, "training examples must be a whole number from 20 to 5000"),
        ({"n_held_out": 19}, "held-out examples must be a whole number from 20 to 2000"),
        ({"n_held_out": True}, "held-out examples must be a whole number"),
        ({"corruptions": ()}, "choose one or more corruptions"),
        ({"corruptions": ("reverse",)}, "choose one or more corruptions"),
    ],
)
def test_bad_task_settings_are_rejected(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        C.make_task(**kwargs)


# ---------------------------------------------------------------------------------------------
# The classifier
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["mean", "first", "last"])
def test_pooling_ignores_padding(bert, small_task, pooling) -> None:
    classifier = C.SequenceClassifier(C.body_of(bert.model), pooling).eval()
    short = model_input_ids(bert.tokenizer, "bert", "the dog runs .")
    long = model_input_ids(bert.tokenizer, "bert", "the small dogs near the cat are happy .")
    task = C.ClassificationTask(bert.model, bert.tokenizer, small_task)
    together = task.make([short, long], [1, 1])
    alone = task.make([short], [1])
    with torch.no_grad():
        both = classifier.features(together["idx"], together["attention_mask"])
        one = classifier.features(alone["idx"], alone["attention_mask"])
        hidden = classifier.body(alone["idx"], output_hidden_states=True).hidden_states[-1][0]
    torch.testing.assert_close(both[0], one[0], atol=1e-5, rtol=1e-5)
    expected = {"mean": hidden.mean(0), "first": hidden[0], "last": hidden[-1]}[pooling]
    torch.testing.assert_close(one[0], expected, atol=1e-5, rtol=1e-5)


def test_the_body_is_a_copy_without_the_output_head(bert, gpt) -> None:
    for loaded, head in ((bert, "mlm_head"), (gpt, "lm_head")):
        body = C.body_of(loaded.model)
        assert isinstance(getattr(body, head), torch.nn.Identity)
        assert body.wte.weight is not loaded.model.wte.weight
        assert torch.equal(body.wte.weight, loaded.model.wte.weight)
    with pytest.raises(ValueError, match="only GPT and BERT"):
        C.body_of(torch.nn.Linear(2, 2))


def test_a_sentence_too_long_for_the_model_is_reported(gpt) -> None:
    long = C.Example(" ".join(["the dog runs ."] * 30), 1, C.ORIGINAL, "x")
    data = C.TaskData((long,), (long,), 0, ("verb",))
    with pytest.raises(ValueError, match="but the model reads at most 64"):
        C.ClassificationTask(gpt.model, gpt.tokenizer, data)


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"method": "magic"}, "unknown method 'magic'"),
        ({"steps": 0}, "steps must be a whole number from 1 to 5000"),
        ({"steps": 10**9}, "steps must be a whole number from 1 to 5000"),
        ({"learning_rate": 0.0}, "learning rate must be between 1e-06 and 1"),
        ({"learning_rate": -1e-3}, "learning rate must be between"),
        ({"learning_rate": 1e6}, "learning rate must be between"),
        ({"learning_rate": math.nan}, "learning rate must be between"),
        ({"batch_size": 0}, "batch size must be a whole number from 1 to 256"),
        ({"pooling": "max"}, "unknown pooling 'max'"),
        ({"lora_rank": 0}, "LoRA rank must be a whole number from 1 to 64"),
        ({"lora_rank": 10**6}, "LoRA rank must be a whole number from 1 to 64"),
        ({"lora_alpha": -1.0}, "LoRA alpha must be above 0"),
        ({"lora_targets": ()}, "choose at least one projection for LoRA"),
        ({"method": "adapters", "adapter_bottleneck": 0}, "adapter bottleneck must be"),
        ({"method": "adapters", "adapter_places": ()}, "adapters go after"),
        ({"method": "prefix", "prefix_length": 10**6}, "prefix length must be"),
    ],
)
def test_absurd_settings_are_rejected(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        C.MethodSettings(**kwargs)


def test_each_method_has_its_default_learning_rate() -> None:
    for method, rate in C.DEFAULT_LEARNING_RATES.items():
        assert C.MethodSettings(method=method).lr == rate
    assert C.MethodSettings(method="full", learning_rate=0.1).lr == 0.1


@pytest.mark.parametrize("method", ["head", "adapters", "lora", "prefix"])
def test_the_worked_out_count_equals_the_counted_one(bert, method) -> None:
    settings = C.MethodSettings(
        method=method,
        lora_rank=3,
        lora_targets=("k_proj", "c_proj"),
        adapter_bottleneck=7,
        adapter_places=("mlp",),
        prefix_length=5,
    )
    count, text = C.parameter_arithmetic(settings, bert.config)
    assert peft.count_trainable(C.prepare(bert.model, settings)) == count
    assert text.endswith(f"{count:,}")


def test_full_and_bitfit_have_no_formula(bert) -> None:
    for method in ("full", "bitfit"):
        assert C.parameter_arithmetic(C.MethodSettings(method=method), bert.config) is None


# ---------------------------------------------------------------------------------------------
# Training and measuring
# ---------------------------------------------------------------------------------------------


def test_head_only_leaves_the_encoder_and_the_shipped_model_unchanged(bert, small_task):
    shipped = state(bert.model)
    settings = C.MethodSettings(method="head", steps=4, batch_size=8)
    classifier = C.prepare(bert.model, settings)
    body_before = state(classifier.body)
    head_before = state(classifier.head)
    task = C.ClassificationTask(bert.model, bert.tokenizer, small_task)
    train(classifier, task, C.train_settings(settings), log_interval=1)
    assert all(torch.equal(body_before[k], v) for k, v in classifier.body.state_dict().items())
    assert any(not torch.equal(head_before[k], v) for k, v in classifier.head.state_dict().items())
    assert all(torch.equal(shipped[k], v) for k, v in bert.model.state_dict().items())


def test_fine_tune_measures_what_it_reports(bert, small_task) -> None:
    shipped = state(bert.model)
    updates = []
    settings = C.MethodSettings(method="bitfit", steps=6, batch_size=8, seed=1)
    result = C.fine_tune(
        bert.model,
        bert.tokenizer,
        small_task,
        settings,
        "bert-stories",
        report=updates.append,
        report_every=2,
    )
    classifier = C.prepare(bert.model, settings)
    assert result.trainable == peft.count_trainable(classifier)
    assert result.total == sum(p.numel() for p in classifier.parameters())
    assert result.optimizer_tensors == len(peft.trainable_names(classifier))
    # AdamW keeps exp_avg and exp_avg_sq (float32) per parameter and a float32 step per tensor.
    assert result.optimizer_state_bytes == 8 * result.trainable + 4 * result.optimizer_tensors
    assert result.steps_done == 6 and all(s > 0 for s in result.step_seconds)
    assert [u.progress.step for u in updates] == [2, 4, 6]  # every 2nd step
    assert updates[-1].progress.val_loss is not None  # held-out loss at the end
    assert all(isinstance(u, C.MethodUpdate) and u.label == "BitFit (biases only)" for u in updates)
    assert 0 <= result.held_out_accuracy <= 1
    assert set(result.accuracy_by_kind) == {"original", "verb", "drop", "swap"}
    assert result.task == small_task.summary() == "60 / 40, verb+drop+swap, seed 3"
    assert all(torch.equal(shipped[k], v) for k, v in bert.model.state_dict().items())


def test_the_same_seed_gives_the_same_run(bert, small_task) -> None:
    settings = C.MethodSettings(method="lora", steps=5, batch_size=8, seed=2)
    a = C.fine_tune(bert.model, bert.tokenizer, small_task, settings)
    b = C.fine_tune(bert.model, bert.tokenizer, small_task, settings)
    assert [p.train_loss for p in a.history] == [p.train_loss for p in b.history]
    assert a.held_out_accuracy == b.held_out_accuracy


def test_lora_runs_report_a_merge_that_changes_nothing(gpt, small_task) -> None:
    settings = C.MethodSettings(method="lora", steps=5, batch_size=8, pooling="last")
    result = C.fine_tune(gpt.model, gpt.tokenizer, small_task, settings, "gpt-stories")
    assert result.merge_difference is not None and result.merge_difference < 1e-5
    head_only = C.prepare(gpt.model, C.MethodSettings(method="head", pooling="last"))
    assert result.merged_parameters == sum(p.numel() for p in head_only.parameters())
    assert result.total - result.merged_parameters == result.trainable - (2 * 128 + 2)


def test_run_methods_reports_results_and_stops_when_asked(bert, small_task) -> None:
    runs = [C.MethodSettings(method=m, steps=3, batch_size=4) for m in ("head", "prefix")]
    seen = []
    results = C.run_methods(bert.model, bert.tokenizer, small_task, runs, "bert", seen.append)
    assert [r.settings.method for r in results] == ["head", "prefix"]
    assert [u for u in seen if isinstance(u, C.MethodResult)] == results

    def stop_after_first_result(update) -> bool:
        return not isinstance(update, C.MethodResult)

    stopped = C.run_methods(
        bert.model, bert.tokenizer, small_task, runs, "bert", stop_after_first_result
    )
    assert len(stopped) == 1


def test_optimizer_state_bytes_sums_the_state_tensors() -> None:
    weight = torch.nn.Parameter(torch.ones(3, 4))
    bias = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    optimizer = torch.optim.AdamW([weight, bias])
    assert C.optimizer_state_bytes(optimizer) == 0
    (weight.sum() + bias.sum()).backward()
    optimizer.step()
    step_bytes = sum(s["step"].numel() * s["step"].element_size() for s in optimizer.state.values())
    assert C.optimizer_state_bytes(optimizer) == 2 * 12 * 4 + 2 * 4 * 8 + step_bytes


def test_accuracy_by_kind_counts_each_kind_on_its_own() -> None:
    examples = [
        C.Example("a", 1, C.ORIGINAL, "a"),
        C.Example("b", 0, "verb", "x"),
        C.Example("c", 0, "verb", "y"),
    ]
    assert C.accuracy([1, 0, 1], examples) == pytest.approx(2 / 3)
    assert C.accuracy_by_kind([1, 0, 1], examples) == {"original": 1.0, "verb": 0.5}


# ---------------------------------------------------------------------------------------------
# Without training
# ---------------------------------------------------------------------------------------------


def test_batched_log_likelihoods_equal_one_sentence_at_a_time(gpt) -> None:
    texts = ["the dog runs .", "Mia sees the big red foxes that sleep .", "they ."]
    contexts = ["\n", "the cat is happy .\n", "\n"]
    batched = C.log_likelihoods(gpt.model, gpt.tokenizer, contexts, texts, batch_size=2)
    for score, context, text in zip(batched, contexts, texts, strict=True):
        context_ids, text_ids = gpt.tokenizer.encode(context), gpt.tokenizer.encode(text)
        ids = torch.tensor([context_ids + text_ids])
        with torch.no_grad():
            log_probs = F.log_softmax(gpt.model(ids).logits[0, :-1], dim=-1)
        targets = ids[0, 1:]
        per_token = log_probs[torch.arange(len(targets)), targets][-len(text_ids) :]
        assert score == pytest.approx(per_token.sum().item(), abs=1e-4)


def test_best_threshold_is_the_best_cut() -> None:
    rng = random.Random(0)
    scores = [rng.gauss(0, 1) for _ in range(40)]
    labels = [int(s + rng.gauss(0, 1) > 0) for s in scores]
    cut, best = C.best_threshold(scores, labels)

    def right(threshold: float) -> float:
        return sum((s > threshold) == (y == 1) for s, y in zip(scores, labels, strict=True)) / 40

    assert best == right(cut)
    candidates = [min(scores) - 1] + [(a + b) / 2 for a, b in itertools.pairwise(sorted(scores))]
    assert best == max(right(c) for c in candidates)


def test_zero_shot_numbers_are_what_they_say(gpt, small_task) -> None:
    result = C.zero_shot(gpt.model, gpt.tokenizer, small_task, shots=4)
    negatives = [e for e in small_task.held_out if e.label == C.UNGRAMMATICAL]
    real = C.sentence_scores(gpt.model, gpt.tokenizer, [e.source for e in negatives])
    fake = C.sentence_scores(gpt.model, gpt.tokenizer, [e.text for e in negatives])
    assert result.pairs == len(negatives)
    assert result.pair_accuracy == pytest.approx(
        sum(r > f for r, f in zip(real, fake, strict=True)) / len(negatives)
    )
    scores = C.sentence_scores(gpt.model, gpt.tokenizer, [e.text for e in small_task.held_out])
    predictions = [int(s > result.threshold) for s in scores]
    assert result.threshold_accuracy == C.accuracy(predictions, small_task.held_out)
    lines = result.few_shot_prompt.splitlines()
    assert len(lines) == 4
    assert sum(line.endswith(" happy") for line in lines) == 2
    assert 0 <= result.few_shot_accuracy <= 1
    with pytest.raises(ValueError, match="needs a GPT"):
        C.zero_shot(load_shipped("bert-stories").model, gpt.tokenizer, small_task)


# ---------------------------------------------------------------------------------------------
# What the page checks, plans and follows
# ---------------------------------------------------------------------------------------------


def test_task_checks_count_what_the_parser_says(small_task) -> None:
    examples = small_task.train + small_task.held_out
    checks = C.task_checks(small_task)
    assert checks == {
        "negatives rejected": 50,
        "negatives": 50,
        "positives accepted": 50,
        "positives": 50,
        "shared sentences": 0,
    }
    assert checks["negatives"] == sum(e.label == C.UNGRAMMATICAL for e in examples)
    shared = C.TaskData(small_task.train, small_task.train[:3], 3, small_task.corruptions)
    assert C.task_checks(shared)["shared sentences"] == 3


def test_base_models_keep_their_order_and_only_what_is_available() -> None:
    assert C.base_models(["gpt-stories", "gpt-char", "bert-stories"]) == [
        "bert-stories",
        "gpt-stories",
    ]
    assert C.base_models(["gpt-stories"]) == ["gpt-stories"]
    assert C.base_models([]) == []


def test_parameter_counts_are_those_of_the_prepared_classifier(bert) -> None:
    settings = C.MethodSettings(method="lora", lora_rank=2)
    classifier = C.prepare(bert.model, settings)
    trainable = sum(p.numel() for p in classifier.parameters() if p.requires_grad)
    total = sum(p.numel() for p in classifier.parameters())
    assert C.parameter_counts(bert.model, settings) == (trainable, total)
    assert trainable < total


def test_plans_give_every_valid_method_its_rate_and_say_why_the_others_are_not() -> None:
    rates = {method: 1e-3 * (n + 1) for n, method in enumerate(C.METHODS)}
    options = {"lora_rank": 2, "lora_targets": (), "adapter_places": ("mlp",)}
    plans = C.plan_methods(20, 7, "first", rates, options)
    assert list(plans.settings) == ["full", "head", "bitfit", "adapters", "prefix"]
    assert list(plans.errors) == ["lora"]
    assert "choose at least one projection for LoRA" in plans.errors["lora"]
    adapters = plans.settings["adapters"]
    assert adapters == C.MethodSettings(
        method="adapters",
        steps=20,
        learning_rate=rates["adapters"],
        seed=7,
        pooling="first",
        **options,
    )
    assert [s.lr for s in plans.settings.values()] == [rates[m] for m in plans.settings]
    bad = C.plan_methods(20, 7, "first", rates, {"adapter_places": ()})
    assert list(bad.errors) == ["adapters"]


def test_runs_progress_sorts_updates_by_run_and_counts_finished_runs() -> None:
    def step(n: int) -> Progress:
        return Progress(n, 0.7, None, 1e-3, 100.0, n / 10)

    finished = C.MethodResult("bert-stories", C.MethodSettings(), 1, 2, 0.5, {}, [0.1], 8, 1)
    updates = [
        C.MethodUpdate("LoRA", step(1)),
        C.MethodUpdate("LoRA", step(2)),
        finished,
        "something else",
        C.MethodUpdate("Adapters", step(1)),
    ]
    progress = C.runs_progress(updates)
    assert progress.histories == {"LoRA": [step(1), step(2)], "Adapters": [step(1)]}
    assert progress.finished == 1
    assert C.runs_progress([]) == C.RunsProgress({}, 0)


def test_grammatical_share(small_task) -> None:
    assert C.grammatical_share(small_task.held_out) == 0.5
    assert C.grammatical_share(small_task.held_out[:1]) == small_task.held_out[0].label
    with pytest.raises(ValueError, match="no examples"):
        C.grammatical_share([])


def test_bitfit_share_is_counted_on_bert_base() -> None:
    biases, total = C.bert_base_bias_count()
    c, layers = 768, 12
    per_layer = 4 * c + (4 * c + c) + 2 * c  # attention, MLP, the shifts of two LayerNorms
    assert biases == layers * per_layer + c  # + the embedding LayerNorm's shift
    assert total == pytest.approx(110e6, rel=0.02)  # Devlin et al.: 110M with the pooler
    values = C.lesson_values("bitfit")
    assert values["bert_base_bias_share"] == f"{100 * biases / total:.2f}%"
    assert C.lesson_values("lora") == {}


# ---------------------------------------------------------------------------------------------
# Predict, then reveal: the classifier a run would train, built and run once
# ---------------------------------------------------------------------------------------------

OPTIONS = dict(
    lora_rank=4,
    lora_alpha=8.0,
    lora_targets=("q_proj", "v_proj"),
    adapter_bottleneck=16,
    adapter_places=peft.ADAPTER_PLACES,
    prefix_length=8,
)


def plans(**changes) -> C.MethodPlans:
    return C.plan_methods(150, 0, "mean", dict(C.DEFAULT_LEARNING_RATES), {**OPTIONS, **changes})


@pytest.mark.parametrize("name", ["bert", "gpt"])
def test_head_size_is_two_rows_of_width_and_two_biases(request, name) -> None:
    loaded = request.getfixturevalue(name)
    prediction = C.predict_head_size(loaded, plans().settings["full"])
    assert prediction.values == {"model": loaded.name, "width": 128}
    reveal = prediction.reveal()
    assert reveal.answer == 2 * 128 + 2 == 258
    assert reveal.values == {"weights": 256, "biases": 2}


@pytest.mark.parametrize(("rank", "targets"), [(4, ("q_proj", "v_proj")), (3, ("k_proj",))])
def test_lora_doubled_rank_by_hand(bert, rank, targets) -> None:
    # bert-stories: 3 layers of width 128; LoRA adds r × (128 + 128) per projection
    prediction = C.predict_lora_doubled_rank(bert, plans(lora_rank=rank, lora_targets=targets))
    now = 3 * len(targets) * rank * 256
    assert prediction.values["trainable"] == now + 258
    assert prediction.values["doubled"] == 2 * rank
    reveal = prediction.reveal()
    assert reveal.answer == 2 * now + 258
    assert (reveal.values["before"], reveal.values["lora"], reveal.values["head"]) == (
        now,
        2 * now,
        258,
    )


def test_lora_doubled_rank_needs_usable_lora_settings(bert) -> None:
    with pytest.raises(ValueError, match="LoRA's settings"):
        C.predict_lora_doubled_rank(bert, plans(lora_targets=()))


@pytest.mark.parametrize("name", ["bert", "gpt"])
def test_only_prefix_tuning_changes_the_sentence_vector_before_training(request, name, small_task):
    loaded = request.getfixturevalue(name)
    prediction = C.predict_changed_before_training(loaded, plans(), small_task)
    assert prediction.choices == ("BitFit (biases only)", "Adapters", "LoRA", "Prefix tuning")
    reveal = prediction.reveal()
    assert reveal.answer == "Prefix tuning"
    assert float(reveal.values["change"]) > C.UNCHANGED_TOLERANCE


def test_choices_leave_out_a_method_whose_settings_cannot_be_used(bert, small_task):
    prediction = C.predict_changed_before_training(bert, plans(lora_targets=()), small_task)
    assert "LoRA" not in prediction.choices
    assert prediction.reveal().answer == "Prefix tuning"


@pytest.mark.parametrize("method", ["full", "prefix"])
def test_untrained_accuracy_is_that_of_the_prepared_classifier(bert, small_task, method):
    settings = plans().settings[method]
    prediction = C.predict_untrained_accuracy(bert, settings, small_task)
    assert prediction.values["examples"] == len(small_task.held_out) == 40  # fewer than 100
    reveal = prediction.reveal()
    classifier = C.prepare(bert.model, settings)
    task = C.ClassificationTask(bert.model, bert.tokenizer, small_task)
    predictions = C.held_out_logits(classifier, task).argmax(dim=-1).tolist()
    assert reveal.answer == pytest.approx(C.accuracy(predictions, small_task.held_out))
    assert reveal.values["called"] == f"{sum(predictions) / len(predictions):.0%}"
