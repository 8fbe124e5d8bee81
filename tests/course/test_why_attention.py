"""Why attention's computations: the bottleneck on a short seeded run (the GRU without attention
loses more of its exact match on longer sources than the GRU with attention), the same batches for
every model, the measurements against the encoder-decoder lesson's own, the alignments against
the models' forward passes, and every prediction question on a known input."""

from __future__ import annotations

import copy

import pytest
import torch

from tinyformers.course import encoder_decoder as ed
from tinyformers.course import why_attention as w
from tinyformers.hub.registry import load_shipped
from tinyformers.model.build import count_parameters
from tinyformers.text.corpora import tasks
from tinyformers.training.loop import Progress, Seq2SeqTask

# A short run on which the bottleneck shows reliably: a few seconds per model on one thread.
BOTTLENECK = w.WhySettings(steps=250, n_hidden=64, seed=0, train_pairs=3_000, test_pairs=200)
TINY = w.WhySettings(
    steps=w.MIN_STEPS, n_hidden=8, train_pairs=200, test_pairs=40, timing_repeats=1
)


@pytest.fixture(scope="module")
def reversing():
    """The two GRUs trained on reversing with the same batches, and their exact match."""
    tokenizer = w.task_tokenizer("reverse")
    train_pairs, test_pairs = w.task_pairs("reverse", BOTTLENECK.train_pairs, BOTTLENECK.test_pairs)
    task = w.make_task(tokenizer, train_pairs)
    models, exact = {}, {}
    for name in (w.PLAIN, w.ATTENTION):
        models[name] = w.build(name, tokenizer.vocab_size, BOTTLENECK.n_hidden, BOTTLENECK.seed)
        w.train_model(name, models[name], task, BOTTLENECK)
        exact[name] = w.exact_match_by_length(models[name], tokenizer, test_pairs)
    return models, exact


@pytest.fixture(scope="module")
def untrained():
    return w.untrained_models(w.WhySettings(n_hidden=16))


# ---------------------------------------------------------------------------------------------
# The bottleneck
# ---------------------------------------------------------------------------------------------


def test_the_one_context_vector_loses_more_on_longer_sources(reversing) -> None:
    _, exact = reversing
    short, long = w.length_bands(exact[w.PLAIN])
    assert short == [3, 4, 5, 6, 7] and long == [8, 9, 10, 11, 12]
    # the GRU without attention learned the short words, so its failure on long ones is length
    assert w.share(exact[w.PLAIN], short) > 0.1
    assert w.share(exact[w.PLAIN], long) < 0.05
    assert w.share_lost(exact[w.PLAIN]) > 0.8
    assert w.share_lost(exact[w.ATTENTION]) < 0.5
    assert w.share(exact[w.ATTENTION], long) > 0.4


def test_a_trained_attention_gru_reads_the_end_of_the_word_first(reversing) -> None:
    models, _ = reversing
    source = w.read_source("reverse", "attention")
    prediction = w.predict_first_look(models, source, trained=True)
    assert prediction.choices[0] == "0: 'a'" and prediction.choices[-1] == "8: 'n'"
    assert prediction.values["which"] == "the attention GRU you trained"
    revealed = prediction.reveal()
    assert revealed.answer == "8: 'n'"
    assert revealed.values["first"] == "'n'" and float(revealed.values["weight"]) > 0.5
    assert revealed.values["state"] == "after training"


def test_share_lost_is_one_minus_the_ratio_of_the_halves() -> None:
    counts = {3: (8, 10), 4: (6, 10), 5: (3, 10), 6: (1, 10)}
    assert w.length_bands(counts) == ([3, 4], [5, 6])
    assert w.share(counts) == pytest.approx(18 / 40)
    assert w.share_lost(counts) == pytest.approx(1 - (4 / 20) / (14 / 20))
    with pytest.raises(ValueError, match="nothing to lose"):
        w.share_lost({3: (0, 5), 4: (0, 5)})
    with pytest.raises(ValueError, match="two different"):
        w.length_bands({3: (1, 2)})


# ---------------------------------------------------------------------------------------------
# Data, settings and runs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", list(w.TASKS))
def test_the_alphabet_covers_every_pair_and_the_split_keeps_the_test_apart(task) -> None:
    train_pairs, test_pairs = w.task_pairs(task, 2_000, 200)
    letters = set(w.alphabet(task))
    assert {c for s, t in train_pairs + test_pairs for c in s + t} <= letters
    assert not {s for s, _ in train_pairs} & {s for s, _ in test_pairs}
    tokenizer = w.task_tokenizer(task)
    assert all(tokenizer.unk_id not in tokenizer.encode(s) for s, _ in test_pairs)


def test_the_date_tokenizer_is_the_shipped_date_model_s() -> None:
    shipped = load_shipped("seq2seq-date").tokenizer
    ours = w.task_tokenizer("date")
    every = list(range(shipped.vocab_size))
    assert ours.display_tokens(every) == shipped.display_tokens(every)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"task": "sort"}, "unknown task"),
        ({"steps": 5}, "steps"),
        ({"steps": 20.5}, "steps"),
        ({"n_hidden": 1000}, "state size"),
        ({"seed": -1}, "seed"),
        ({"learning_rate": 2.0}, "learning rate"),
        ({"test_pairs": 1}, "held-out"),
    ],
)
def test_settings_out_of_bounds_are_refused(change, message) -> None:
    with pytest.raises(ValueError, match=message):
        w.WhySettings(**change)


class RecordingTask(Seq2SeqTask):
    def __init__(self, task: Seq2SeqTask):
        self.__dict__.update(task.__dict__)
        self.seen: list[torch.Tensor] = []

    def batch(self, batch_size, generator):
        made = super().batch(batch_size, generator)
        self.seen.append(made["src"])
        return made


def test_every_model_trains_on_the_same_batches() -> None:
    tokenizer = w.task_tokenizer("reverse")
    train_pairs, _ = w.task_pairs("reverse", TINY.train_pairs, TINY.test_pairs)
    seen = {}
    for name in w.MODEL_NAMES:
        task = RecordingTask(w.make_task(tokenizer, train_pairs))
        model = w.build(name, tokenizer.vocab_size, TINY.n_hidden, TINY.seed)
        w.train_model(name, model, task, TINY)
        seen[name] = task.seen
    first, *others = seen.values()
    assert len(first) == TINY.steps
    for batches in others:
        assert all(torch.equal(a, b) for a, b in zip(first, batches, strict=True))


def test_a_short_run_trains_and_measures_all_three() -> None:
    updates = []
    result = w.run_comparison(TINY, report=lambda u: updates.append(u) or True)
    assert result.complete and set(result.models) == set(w.MODEL_NAMES)
    assert result.threads == torch.get_num_threads()
    for name, model in result.models.items():
        assert not model.training
        assert result.parameters[name] == count_parameters(model)
        assert result.histories[name][-1].step == TINY.steps
        assert sum(n for _, n in result.exact[name].values()) == TINY.test_pairs
        assert set(result.timing[name]) == set(w.TIMING_LENGTHS)
        assert all(seconds > 0 for seconds in result.timing[name].values())
        assert result.median_step_ms(name) > 0
    live = w.histories_of(updates)
    assert list(live) == list(w.MODEL_NAMES)
    assert live[w.PLAIN][-1].step == TINY.steps


def test_the_same_settings_train_the_same_models() -> None:
    first, second = w.run_comparison(TINY), w.run_comparison(TINY)
    for name in w.MODEL_NAMES:
        losses = [[p.train_loss for p in r.histories[name]] for r in (first, second)]
        assert losses[0] == losses[1]
        assert first.exact[name] == second.exact[name]
        for key, value in first.models[name].state_dict().items():
            assert torch.equal(value, second.models[name].state_dict()[key]), key


def test_a_stop_ends_the_run_after_the_model_that_was_training() -> None:
    result = w.run_comparison(TINY, report=lambda update: False)
    assert not result.complete and result.stop_reason is not None
    assert list(result.histories) == [w.PLAIN] and not result.exact


def test_exact_match_is_the_encoder_decoder_lesson_s(untrained) -> None:
    shipped = load_shipped("seq2seq-date")
    _, test_pairs = w.task_pairs("date", 100, 60)
    counts = w.exact_match_by_length(shipped.model, shipped.tokenizer, test_pairs)
    expected = ed.exact_match(shipped.model, shipped.tokenizer, test_pairs)
    assert w.share(counts) == pytest.approx(expected)
    assert expected > 0.9  # the shipped model rewrites dates


def test_the_gru_is_decoded_one_source_at_a_time_alike(untrained) -> None:
    tokenizer = w.task_tokenizer("reverse")
    sources = [tokenizer.encode(s) for s in ("abc", "hello", "z")]
    together = w.decode(untrained[w.ATTENTION], tokenizer, sources)
    for source, ids in zip(sources, together, strict=True):
        alone, _ = untrained[w.ATTENTION].generate_greedy(
            torch.tensor([source]), tokenizer.bos_id, tokenizer.eos_id
        )
        assert alone[0] == ids


def test_step_seconds_are_the_differences_of_the_elapsed_times() -> None:
    history = [Progress(i + 1, 1.0, None, 0.001, 0.0, t) for i, t in enumerate([0.5, 0.75, 1.5])]
    assert w.step_seconds(history) == pytest.approx([0.5, 0.25, 0.75])


def test_timing_keeps_the_fastest_try_with_models_and_lengths_taking_turns(monkeypatch) -> None:
    calls = iter(range(1_000))
    monkeypatch.setattr(w.time, "perf_counter", lambda: next(calls) ** 2 / 1000)
    models = {name: w.untrained_models(TINY)[name] for name in (w.PLAIN, w.ATTENTION)}
    found = w.time_steps(models, w.task_tokenizer("reverse").vocab_size, (4, 8), 4, 3)
    # each timed pass reads the clock twice; passes run: plain 4, attention 4, plain 8, ... so
    # the n-th pass takes (2n + 1) ms and the first round is the fastest
    assert found[w.PLAIN] == pytest.approx({4: 0.001, 8: 0.009})
    assert found[w.ATTENTION] == pytest.approx({4: 0.005, 8: 0.013})


def test_timing_leaves_the_models_as_it_found_them() -> None:
    models = w.untrained_models(TINY)
    before = {n: copy.deepcopy(m.state_dict()) for n, m in models.items()}
    found = w.time_steps(models, w.task_tokenizer("reverse").vocab_size, (4, 8), 8, 1)
    assert set(found) == set(models) and all(set(t) == {4, 8} for t in found.values())
    for name, model in models.items():
        assert not model.training
        assert all(p.grad is None for p in model.parameters())
        for key, value in model.state_dict().items():
            assert torch.equal(value, before[name][key])
    with pytest.raises(ValueError, match="longer than the models read"):
        w.time_steps(models, 30, (w.BLOCK_SIZE,), 2, 1)


# ---------------------------------------------------------------------------------------------
# The student's source and the alignments
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "task, text, message",
    [
        ("reverse", "Hello", "lowercase letters"),
        ("reverse", "abcdefghijklm", "at most 12"),
        ("reverse", "", "lowercase letters"),
        ("date", "31 February 2021", "not a real date"),
        ("date", "12 march 2021", "unknown month"),
        ("sort", "1 2", "unknown task"),
    ],
)
def test_a_bad_source_is_refused_with_a_reason(task, text, message) -> None:
    with pytest.raises(ValueError, match=message):
        w.read_source(task, text)


def test_a_source_knows_its_answer() -> None:
    source = w.read_source("date", " 12 March 2021 ")
    assert source.text == "12 March 2021" and source.target == "2021-03-12"
    assert source.tokens == list("12 March 2021")
    assert w.longest_source("date") == len("28 September 2000")


def test_the_rnn_alignment_is_the_forward_pass_s_attention(untrained) -> None:
    tokenizer = w.task_tokenizer("reverse")
    source = w.read_source("reverse", "hello")
    found = w.rnn_alignment(untrained[w.ATTENTION], tokenizer, source)
    assert found.weights.shape == (len(found.output), len(source.ids))
    torch.testing.assert_close(found.weights.sum(-1), torch.ones(len(found.output)))
    src = torch.tensor([source.ids])
    written, _ = untrained[w.ATTENTION].generate_greedy(src, tokenizer.bos_id, tokenizer.eos_id)
    assert tokenizer.display_tokens(written[0]) == found.output[: len(written[0])]
    tgt = torch.tensor([[tokenizer.bos_id, *written[0]]])
    with torch.no_grad():
        out = untrained[w.ATTENTION](src, tgt)
    steps = len(found.output)
    torch.testing.assert_close(found.weights, out.attentions[0, :steps], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="no weights"):
        w.rnn_alignment(untrained[w.PLAIN], tokenizer, source)


@pytest.mark.parametrize("layer", [0, 1])
def test_the_transformer_alignment_is_its_cross_attention(layer) -> None:
    shipped = load_shipped("seq2seq-date")
    source = w.read_source("date", "12 March 2021")
    found = w.transformer_alignment(shipped.model, shipped.tokenizer, source, layer)
    assert found.text == "2021-03-12" and found.output[-1] == "[EOS]"
    written = shipped.tokenizer.encode(found.text)
    tgt = torch.tensor([[shipped.tokenizer.bos_id, *written]])
    with torch.no_grad():
        out = shipped.model(torch.tensor([source.ids]), tgt, output_attentions=True)
    expected = out.cross_attentions[layer][0].mean(dim=0)  # (T, S)
    torch.testing.assert_close(found.weights, expected)
    torch.testing.assert_close(found.weights.sum(-1), torch.ones(len(found.output)))


def test_alignments_and_outputs_leave_the_models_untouched(untrained) -> None:
    source = w.read_source("reverse", "hello")
    before = {n: copy.deepcopy(m.state_dict()) for n, m in untrained.items()}
    found = w.alignments(untrained, source)
    written = w.outputs(untrained, source)
    assert set(found) == {w.ATTENTION, w.TRANSFORMER} and set(written) == set(w.MODEL_NAMES)
    for name, model in untrained.items():
        assert not model.training
        for key, value in model.state_dict().items():
            assert torch.equal(value, before[name][key])


# ---------------------------------------------------------------------------------------------
# Predict, then see
# ---------------------------------------------------------------------------------------------


def test_predict_the_context_size(untrained) -> None:
    source = w.read_source("reverse", "hello")
    prediction = w.predict_context_size(untrained, source)
    assert prediction.values == {"source": "hello", "length": 5}
    revealed = prediction.reveal()
    assert revealed.answer == 16  # the GRU's state, whatever the source's length
    assert revealed.values["annotations"] == 5 * 16
    longer = w.predict_context_size(untrained, w.read_source("reverse", "attention"))
    assert longer.reveal().answer == 16


def test_predict_the_sequential_steps(untrained) -> None:
    source = w.read_source("reverse", "hello")
    prediction = w.predict_sequential_steps(untrained, source)
    assert prediction.values == {"source": "hello", "target": "olleh"}
    revealed = prediction.reveal()
    assert revealed.answer == 5 + 5 + 1  # read five letters, write five and the end token
    assert revealed.values["layers"] == 4
    date = w.predict_sequential_steps(
        w.untrained_models(w.WhySettings(task="date")), w.read_source("date", "1 May 1990")
    )
    assert date.reveal().answer == len("1 May 1990") + len("1990-05-01") + 1


def test_predict_the_first_look_before_training(untrained) -> None:
    source = w.read_source("reverse", "abc")
    prediction = w.predict_first_look(untrained, source, trained=False)
    assert prediction.choices == ("0: 'a'", "1: 'b'", "2: 'c'")
    assert prediction.values["which"] == "the attention GRU before training"
    revealed = prediction.reveal()
    row = w.rnn_alignment(untrained[w.ATTENTION], w.task_tokenizer("reverse"), source).weights[0]
    assert revealed.answer == prediction.choices[int(row.argmax())]
    assert revealed.values["state"] == "before any training"
    assert revealed.data["alignment"].weights.shape[1] == 3


def test_the_lesson_values_are_the_settings_and_the_task_s() -> None:
    values = w.lesson_values(w.WhySettings(n_hidden=32))
    assert values["hidden"] == 32
    assert (values["shortest"], values["longest"]) == (tasks.MIN_LENGTH, tasks.MAX_LENGTH)
