"""Why attention: a GRU encoder-decoder that squeezes its source into one vector, the same model
with additive attention, and a Transformer encoder-decoder, trained on the same batches.

* The task (``WhySettings.task``): ``reverse`` ("hello" -> "olleh", 3 to 12 letters) or
  ``date`` ("12 March 2021" -> "2021-03-12"), from ``text.corpora.tasks``, one character a token.
* The runs (``run_comparison``): the three models, each built with the same seed and trained by
  ``training.loop.train`` with the same settings, so each sees exactly the same batches; then
  exact match on held-out pairs by source length, and the wall time of a training step at
  several source lengths (the fastest of a few tries), the models taking turns so that other
  work on the machine slows them alike. Progress goes to ``report``, the protocol of ``training.jobs``.
* The student's own input: where the attention GRU and the Transformer's cross-attention look
  while each writes its answer (``rnn_alignment``, ``transformer_alignment``; the Transformer's
  weights are read from the run record its forward pass returns).
* The lesson's prediction questions (``predict_*``).
"""

from __future__ import annotations

import random
import statistics
import string
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from tinyformers.course.encoder_decoder import encode_source, greedy_decode_batch
from tinyformers.i18n import _
from tinyformers.model.build import build_model, count_parameters
from tinyformers.model.config import Seq2SeqConfig
from tinyformers.model.rnn import GRUEncoderDecoder, RNNConfig
from tinyformers.model.seq2seq import Seq2Seq
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.corpora import tasks
from tinyformers.text.tokenizers import SPECIAL_TOKENS, Tokenizer, train_char
from tinyformers.training.loop import Progress, Seq2SeqTask, TrainSettings, pad_batch, train

Report = Callable[[object], bool]

TASKS = {
    "reverse": "reverse letters (hello → olleh)",
    "date": "rewrite a date (12 March 2021 → 2021-03-12)",
}
DEFAULT_SOURCES = {"reverse": "attention", "date": "12 March 2021"}
PLAIN, ATTENTION, TRANSFORMER = "gru", "gru-attention", "transformer"
MODEL_NAMES = {
    PLAIN: "GRU, one context vector",
    ATTENTION: "GRU with attention",
    TRANSFORMER: "Transformer",
}
DATA_SEED = 0  # the held-out pairs are the same for every run
BLOCK_SIZE = 24  # the Transformer's positions: the longest source and target it reads
TRANSFORMER_SHAPE = {"n_layer": 2, "n_decoder_layer": 2, "n_head": 4, "n_embd": 64}
TIMING_LENGTHS = (4, 8, 12, 16, 20)  # source lengths at which a training step is timed
MIN_STEPS, MAX_STEPS = 20, 1_000
MIN_HIDDEN, MAX_HIDDEN = 8, 256


def _check_number(value: object, name: str, low: float, high: float, whole: bool) -> None:
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"{name} must be {kind} from {low:g} to {high:g}, got {value!r}")


def check_task(task: object) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


@dataclass(frozen=True)
class WhySettings:
    """One comparison of the three models on one task."""

    task: str = "reverse"
    steps: int = 250
    batch_size: int = 64
    learning_rate: float = 3e-3
    n_hidden: int = 64  # the GRU's state: the one context vector of the model without attention
    seed: int = 0
    train_pairs: int = 5_000
    test_pairs: int = 500
    timing_repeats: int = 5

    def __post_init__(self) -> None:
        check_task(self.task)
        _check_number(self.steps, "steps", MIN_STEPS, MAX_STEPS, True)
        _check_number(self.batch_size, "batch size", 1, 512, True)
        _check_number(self.learning_rate, "the learning rate", 1e-5, 0.1, False)
        _check_number(self.n_hidden, "the GRU's state size", MIN_HIDDEN, MAX_HIDDEN, True)
        _check_number(self.seed, "the seed", 0, 2**31 - 1, True)
        _check_number(self.train_pairs, "training pairs", 100, 50_000, True)
        _check_number(self.test_pairs, "held-out pairs", 20, 5_000, True)
        _check_number(self.timing_repeats, "timing repeats", 1, 50, True)


# ---------------------------------------------------------------------------------------------
# Data and models
# ---------------------------------------------------------------------------------------------


def alphabet(task: str) -> str:
    """Every character a source or target of ``task`` can hold."""
    check_task(task)
    if task == "reverse":
        return string.ascii_lowercase
    return "".join(sorted(set(string.digits + " -" + "".join(tasks.MONTHS))))


def task_tokenizer(task: str) -> Tokenizer:
    """One token per character of the task's alphabet, after the special tokens."""
    return train_char(alphabet(task))


def task_pairs(task: str, n_train: int, n_test: int) -> tuple[list, list]:
    """Distinct (source, target) pairs: training pairs and held-out pairs, never the same
    source in both (the same split for every run)."""
    return tasks.train_test_split(task, n_train, n_test, seed=DATA_SEED)


def make_task(tokenizer: Tokenizer, pairs: Sequence[tuple[str, str]]) -> Seq2SeqTask:
    ids = [(tokenizer.encode(s), tokenizer.encode(t)) for s, t in pairs]
    return Seq2SeqTask(ids, tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id, 0.05)


def build(name: str, vocab_size: int, n_hidden: int, seed: int) -> nn.Module:
    """A new model ``name`` (PLAIN, ATTENTION or TRANSFORMER), its weights drawn with ``seed``."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    torch.manual_seed(seed)
    if name == TRANSFORMER:
        config = Seq2SeqConfig(vocab_size=vocab_size, block_size=BLOCK_SIZE, **TRANSFORMER_SHAPE)
        return build_model(config).eval()
    config = RNNConfig(
        vocab_size=vocab_size,
        n_hidden=n_hidden,
        attention=name == ATTENTION,
        max_output=BLOCK_SIZE - 1,
    )
    return GRUEncoderDecoder(config).eval()


def untrained_models(settings: WhySettings) -> dict[str, nn.Module]:
    vocab_size = task_tokenizer(settings.task).vocab_size
    return {name: build(name, vocab_size, settings.n_hidden, settings.seed) for name in MODEL_NAMES}


# ---------------------------------------------------------------------------------------------
# Decoding and measuring
# ---------------------------------------------------------------------------------------------


def decode(model: nn.Module, tokenizer: Tokenizer, sources: Sequence[Sequence[int]]) -> list:
    """Greedy outputs (ids without [BOS] and [EOS]) for many sources at once."""
    if isinstance(model, GRUEncoderDecoder):
        src, mask = pad_batch([list(s) for s in sources], tokenizer.pad_id)
        ids, _ = model.generate_greedy(src, tokenizer.bos_id, tokenizer.eos_id, mask)
        return ids
    if isinstance(model, Seq2Seq):
        return greedy_decode_batch(model, tokenizer, sources).ids
    raise ValueError(f"cannot decode with a {type(model).__name__}")


def exact_match_by_length(
    model: nn.Module, tokenizer: Tokenizer, pairs: Sequence[tuple[str, str]]
) -> dict[int, tuple[int, int]]:
    """For each source length (in characters): (outputs equal to the target, pairs)."""
    by_length: dict[int, list[tuple[str, str]]] = {}
    for source, target in pairs:
        by_length.setdefault(len(source), []).append((source, target))
    found = {}
    for length in sorted(by_length):
        group = by_length[length]
        outputs = decode(model, tokenizer, [tokenizer.encode(s) for s, _ in group])
        right = sum(tokenizer.decode(o) == t for o, (_, t) in zip(outputs, group, strict=True))
        found[length] = (right, len(group))
    return found


def share(counts: Mapping[int, tuple[int, int]], lengths: Sequence[int] | None = None) -> float:
    """The exact-match share over ``lengths`` (all of them by default)."""
    chosen = [counts[n] for n in (counts if lengths is None else lengths) if n in counts]
    total = sum(n for _, n in chosen)
    if not total:
        raise ValueError("no held-out pairs of those lengths")
    return sum(r for r, _ in chosen) / total


def length_bands(counts: Mapping[int, tuple[int, int]]) -> tuple[list[int], list[int]]:
    """The shorter and the longer half of the source lengths present."""
    lengths = sorted(counts)
    if len(lengths) < 2:
        raise ValueError("the held-out pairs need at least two different source lengths")
    half = len(lengths) // 2
    return lengths[:half], lengths[-half:]


def share_lost(counts: Mapping[int, tuple[int, int]]) -> float:
    """How much of its exact match on the shorter half of the lengths a model loses on the
    longer half: 1 − long / short (0 when it keeps all of it, 1 when it keeps nothing)."""
    short, long = length_bands(counts)
    on_short = share(counts, short)
    if on_short == 0:
        raise ValueError(
            "the model got none of the shorter sources right: there is nothing to lose"
        )
    return 1 - share(counts, long) / on_short


def timing_batch(vocab_size: int, length: int, batch_size: int, seed: int) -> dict[str, Tensor]:
    """A batch of random sources of ``length`` ordinary tokens, each target its reverse."""
    rng = random.Random(seed + length)
    first = len(SPECIAL_TOKENS)
    sources = [[rng.randrange(first, vocab_size) for _ in range(length)] for _ in range(batch_size)]
    bos, eos, pad = (SPECIAL_TOKENS.index(t) for t in ("[BOS]", "[EOS]", "[PAD]"))
    task = Seq2SeqTask([(s, s[::-1]) for s in sources] * 2, bos, eos, pad, val_fraction=0.5)
    return task.make([(s, s[::-1]) for s in sources])


def time_steps(
    models: Mapping[str, nn.Module],
    vocab_size: int,
    lengths: Sequence[int] = TIMING_LENGTHS,
    batch_size: int = 64,
    repeats: int = 5,
    seed: int = 0,
) -> dict[str, dict[int, float]]:
    """The wall time, in seconds, of one training step's forward and backward pass at each
    source length: the fastest of ``repeats`` tries, the one other work on the machine disturbed
    least. The models take turns at every length, and every round goes through all the lengths,
    so a busy moment slows no model and no length alone. Gradients are cleared after."""
    for length in lengths:
        if length + 1 > BLOCK_SIZE:
            raise ValueError(f"a source of {length} tokens is longer than the models read")
    batches = {length: timing_batch(vocab_size, length, batch_size, seed) for length in lengths}
    times: dict[str, dict[int, list[float]]] = {n: {k: [] for k in lengths} for n in models}
    for _repeat in range(repeats):
        for length, batch in batches.items():
            for name, model in models.items():
                model.train()
                start = time.perf_counter()
                model(**batch).loss.backward()
                times[name][length].append(time.perf_counter() - start)
                model.zero_grad(set_to_none=True)
                model.eval()
    return {n: {k: min(v) for k, v in by.items()} for n, by in times.items()}


def step_seconds(history: Sequence[Progress]) -> list[float]:
    """The wall time of each training step, from a history logged at every step."""
    times, previous = [], 0.0
    for progress in history:
        times.append(progress.elapsed_s - previous)
        previous = progress.elapsed_s
    return times


# ---------------------------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelUpdate:
    """One logged training step of one of the three models."""

    model: str
    progress: Progress


@dataclass
class ComparisonResult:
    settings: WhySettings
    models: dict[str, nn.Module]  # the trained models, by PLAIN / ATTENTION / TRANSFORMER
    histories: dict[str, list[Progress]] = field(default_factory=dict)
    exact: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict)
    timing: dict[str, dict[int, float]] = field(default_factory=dict)  # seconds per step
    parameters: dict[str, int] = field(default_factory=dict)
    stop_reason: str | None = None
    threads: int = 1  # the torch threads the run trained and was timed with

    @property
    def complete(self) -> bool:
        return self.stop_reason is None and set(self.exact) == set(MODEL_NAMES)

    def median_step_ms(self, name: str) -> float:
        return 1000 * statistics.median(step_seconds(self.histories[name]))


def train_settings(settings: WhySettings) -> TrainSettings:
    return TrainSettings(
        max_steps=settings.steps,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        warmup_steps=min(20, settings.steps // 10),
        weight_decay=0.01,
        eval_interval=0,
        seed=settings.seed,
    )


def train_model(
    name: str,
    model: nn.Module,
    task: Seq2SeqTask,
    settings: WhySettings,
    report: Report | None = None,
    report_every: int = 5,
):
    """Train ``model`` in place (the run's own model); the training state."""

    def callback(progress: Progress) -> bool:
        if report is None or (progress.step % report_every and progress.val_loss is None):
            return True
        return report(ModelUpdate(name, progress)) is not False

    state = train(model, task, train_settings(settings), callback=callback, log_interval=1)
    model.eval()
    return state


def run_comparison(settings: WhySettings, report: Report | None = None) -> ComparisonResult:
    """Train the three models on the same batches, then measure each: exact match by source
    length on the held-out pairs and the time of a training step by source length. Stops
    after the model that was training if ``report`` returns False."""
    tokenizer = task_tokenizer(settings.task)
    train_pairs, test_pairs = task_pairs(settings.task, settings.train_pairs, settings.test_pairs)
    task = make_task(tokenizer, train_pairs)
    models = untrained_models(settings)
    result = ComparisonResult(settings, models, threads=torch.get_num_threads())
    result.parameters = {name: count_parameters(m) for name, m in models.items()}
    for name, model in models.items():
        state = train_model(name, model, task, settings, report)
        result.histories[name] = state.history
        if state.stop_reason is not None:
            result.stop_reason = state.stop_reason
            return result
    for name, model in models.items():
        result.exact[name] = exact_match_by_length(model, tokenizer, test_pairs)
    result.timing = time_steps(
        models, tokenizer.vocab_size, TIMING_LENGTHS, settings.batch_size, settings.timing_repeats
    )
    return result


def histories_of(updates: Sequence[object]) -> dict[str, list[Progress]]:
    """A job's ``ModelUpdate``s sorted by model."""
    found: dict[str, list[Progress]] = {}
    for update in updates:
        if isinstance(update, ModelUpdate):
            found.setdefault(update.model, []).append(update.progress)
    return found


# ---------------------------------------------------------------------------------------------
# The student's own input
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A source the student typed, checked against the task."""

    task: str
    text: str
    ids: list[int]
    tokens: list[str]  # one per character, as shown
    target: str  # the right answer


def longest_source(task: str) -> int:
    """The longest source the task produces in training."""
    check_task(task)
    if task == "reverse":
        return tasks.MAX_LENGTH
    return max(len(f"28 {month} 2000") for month in tasks.MONTHS)


def read_source(task: str, text: str) -> Source:
    """``text`` as a source of ``task``, or a ValueError that says what is wrong with it."""
    check_task(task)
    tokenizer = task_tokenizer(task)
    text = text.strip()
    target = tasks.solve(task, text)
    ids = encode_source(tokenizer, text, BLOCK_SIZE - 1)
    if len(ids) > longest_source(task):
        raise ValueError(
            _(
                "the source has {count} characters; the models were trained on sources of at "
                "most {most}. Type a shorter one."
            ).format(count=len(ids), most=longest_source(task))
        )
    return Source(task, text, ids, tokenizer.display_tokens(ids), target)


@dataclass(frozen=True)
class Alignment:
    """Where a model looked in the source while it wrote each output token."""

    model: str
    source: list[str]  # the source tokens
    output: list[str]  # what the model wrote, then [EOS] if it ended the output itself
    weights: Tensor  # (len(output), len(source)); each row sums to 1

    @property
    def text(self) -> str:
        return "".join(t for t in self.output if t != "[EOS]")


def _output_tokens(tokenizer: Tokenizer, ids: Sequence[int], ended: bool) -> list[str]:
    return [*tokenizer.display_tokens(list(ids)), *(["[EOS]"] if ended else [])]


@torch.no_grad()
def rnn_alignment(model: GRUEncoderDecoder, tokenizer: Tokenizer, source: Source) -> Alignment:
    """The attention GRU's weights over the source at every step of its greedy output."""
    if model.attention is None:
        raise ValueError("the GRU without attention has no weights over the source")
    src = torch.tensor([source.ids])  # (1, S)
    ids, weights = model.generate_greedy(src, tokenizer.bos_id, tokenizer.eos_id)
    steps = weights.size(1)
    ended = steps > len(ids[0])
    return Alignment(ATTENTION, source.tokens, _output_tokens(tokenizer, ids[0], ended), weights[0])


@torch.no_grad()
def transformer_alignment(
    model: Seq2Seq, tokenizer: Tokenizer, source: Source, layer: int | None = None
) -> Alignment:
    """The Transformer's cross-attention, the mean of the heads of decoder ``layer`` (the last
    by default), at every step of its greedy output: one forward pass over [BOS] and the output,
    read from the record that pass returns."""
    src = torch.tensor([source.ids])  # (1, S)
    written = model.generate_greedy(src, tokenizer.bos_id, tokenizer.eos_id)[0].tolist()
    ended = len(written) < model.config.block_size - 1
    tgt = torch.tensor([[tokenizer.bos_id, *written]])  # (1, T)
    record = model(src, tgt, return_record=True).record
    layer = model.config.n_decoder_layer - 1 if layer is None else layer
    weights = record.block(layer).cross_attn.weights[0].mean(dim=0)  # (T, S)
    output = _output_tokens(tokenizer, written, ended)
    return Alignment(TRANSFORMER, source.tokens, output, weights[: len(output)])


def alignments(models: Mapping[str, nn.Module], source: Source) -> dict[str, Alignment]:
    """The attention GRU's and the Transformer's alignments for ``source``."""
    tokenizer = task_tokenizer(source.task)
    return {
        ATTENTION: rnn_alignment(models[ATTENTION], tokenizer, source),
        TRANSFORMER: transformer_alignment(models[TRANSFORMER], tokenizer, source),
    }


@torch.no_grad()
def outputs(models: Mapping[str, nn.Module], source: Source) -> dict[str, str]:
    """What each model writes for ``source``."""
    tokenizer = task_tokenizer(source.task)
    return {
        name: tokenizer.decode(decode(model, tokenizer, [source.ids])[0])
        for name, model in models.items()
    }


# ---------------------------------------------------------------------------------------------
# Predict, then see
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def predict_context_size(models: Mapping[str, nn.Module], source: Source) -> Prediction:
    """How many numbers the GRU without attention passes from its encoder to its decoder."""
    plain = models[PLAIN]

    def reveal() -> Reveal:
        memory = plain.encode(torch.tensor([source.ids]))
        attended = models[ATTENTION].encode(torch.tensor([source.ids]))
        values = {
            "hidden": memory.last.numel(),
            "annotations": attended.annotations.numel(),
            "length": len(source.ids),
        }
        return Reveal(memory.last.numel(), values)

    values = {"source": source.text, "length": len(source.ids)}
    return Prediction(values, reveal, bounds=(0, 1_000_000))


@torch.no_grad()
def predict_sequential_steps(models: Mapping[str, nn.Module], source: Source) -> Prediction:
    """How many GRU steps run one after the other in one training step on ``source``: the
    encoder's, then the decoder's (the answer and [EOS])."""
    tokenizer = task_tokenizer(source.task)
    target = tokenizer.encode(source.target)

    def reveal() -> Reveal:
        model = models[PLAIN]
        src = torch.tensor([source.ids])  # (1, S)
        tgt = torch.tensor([[tokenizer.bos_id, *target]])  # (1, T)
        memory = model.encode(src)
        decoder_steps = model(src, tgt).logits.size(1)
        encoder_steps = memory.annotations.size(1)
        layers = models[TRANSFORMER].config
        values = {
            "encoder": encoder_steps,
            "decoder": decoder_steps,
            "layers": layers.n_layer + layers.n_decoder_layer,
        }
        return Reveal(encoder_steps + decoder_steps, values)

    values = {"source": source.text, "target": source.target}
    return Prediction(values, reveal, bounds=(0, 10_000))


def source_labels(source: Source) -> tuple[str, ...]:
    return tuple(f"{i}: {token!r}" for i, token in enumerate(source.tokens))


def predict_first_look(
    models: Mapping[str, nn.Module], source: Source, trained: bool
) -> Prediction:
    """Which source character the attention GRU weighs most as it writes its first output
    character (the models of the last run, or the untrained ones before a run)."""
    labels = source_labels(source)
    tokenizer = task_tokenizer(source.task)

    def reveal() -> Reveal:
        found = rnn_alignment(models[ATTENTION], tokenizer, source)
        if not len(found.output):
            raise ValueError(_("the model wrote nothing for this source"))
        row = found.weights[0]  # (S,)
        best = int(row.argmax())
        values = {
            "weight": f"{row[best].item():.2f}",
            "first": repr(found.output[0]),
            "state": _("after training") if trained else _("before any training"),
        }
        return Reveal(labels[best], values, {"alignment": found})

    if trained:
        which = _("the attention GRU you trained")
    else:
        which = _("the attention GRU before training")
    values = {"source": source.text, "which": which}
    return Prediction(values, reveal, labels)


def lesson_values(settings: WhySettings) -> dict[str, object]:
    """The placeholders of the lesson's "models" section."""
    shape = TRANSFORMER_SHAPE
    return {
        "hidden": settings.n_hidden,
        "enc_layers": shape["n_layer"],
        "dec_layers": shape["n_decoder_layer"],
        "heads": shape["n_head"],
        "width": shape["n_embd"],
        "shortest": tasks.MIN_LENGTH,
        "longest": tasks.MAX_LENGTH,
    }
