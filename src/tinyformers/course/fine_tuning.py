"""Adapting a pretrained model to a small task: is a sentence of the stories language grammatical?

* The task (``make_task``): real sentences from the stories grammar are the positives; the
  negatives are other real sentences, corrupted (main verb in the wrong number, one word left
  out, or two neighbouring words swapped) and kept only if the grammar's own parser rejects
  them. Train and held-out sentences come from one seeded generator and never overlap; both
  splits are balanced, and the corruptions are used in turn.
* The classifier (``SequenceClassifier``): a copy of a pretrained GPT or BERT without its
  language-model head, a pooled sentence vector, and a linear layer to two classes.
* The methods (``METHODS``): full fine-tuning, head only, BitFit, adapters, LoRA and prefix
  tuning, each set up by ``prepare`` with the functions of ``peft.py``.
* The measurements (``fine_tune``): trainable parameters, held-out accuracy, the median wall
  time of one training step and the bytes of the optimizer's state after training.
* Without any training (``zero_shot``): how well gpt-stories separates the classes by how
  likely it finds each sentence, and what a few-shot prompt gets out of it.
* For the page: the parser's verdict on a task (``task_checks``), the settings of every method
  from one set of choices (``plan_methods``) and a training job's progress (``runs_progress``).
* The lesson's prediction questions (``predict_*``): about the classifier a run would train,
  answered by building it and running it once, never by training.

Training reports ``MethodUpdate``s (and each finished ``MethodResult``) through ``report``, the
protocol of ``jobs.py``: report returns False when someone asked to stop.
"""

from __future__ import annotations

import copy
import functools
import itertools
import random
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinyformers.i18n import N_
from tinyformers.model import peft
from tinyformers.model.bert import Bert
from tinyformers.model.build import build_model, count_parameters
from tinyformers.model.config import BertConfig
from tinyformers.model.gpt import GPT
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.corpora.stories import (
    Sentence,
    flip_verb_number,
    generate_sentence,
    is_grammatical,
)
from tinyformers.text.inputs import model_input_ids
from tinyformers.training.loop import Progress, TrainSettings, pad_batch, train

Report = Callable[[object], bool]

GRAMMATICAL, UNGRAMMATICAL = 1, 0
LABELS = {GRAMMATICAL: N_("grammatical"), UNGRAMMATICAL: N_("ungrammatical")}
ORIGINAL = "original"
CORRUPTIONS = {
    "verb": N_("main verb in the wrong number"),
    "drop": N_("one word left out"),
    "swap": N_("two neighbouring words swapped"),
}
MIN_EXAMPLES, MAX_TRAIN, MAX_HELD_OUT = 20, 5_000, 2_000

# ---------------------------------------------------------------------------------------------
# The task
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    text: str
    label: int  # GRAMMATICAL or UNGRAMMATICAL
    kind: str  # ORIGINAL or a key of CORRUPTIONS
    source: str  # the real sentence it was made from (itself for an original)


@dataclass(frozen=True)
class TaskData:
    train: tuple[Example, ...]
    held_out: tuple[Example, ...]
    seed: int
    corruptions: tuple[str, ...]

    def summary(self) -> str:
        return f"{len(self.train)} / {len(self.held_out)}, {'+'.join(self.corruptions)}, seed {self.seed}"


def corrupt(sentence: Sentence, kind: str, rng: random.Random) -> str:
    """One corrupted version of ``sentence`` (it may still be grammatical: check it)."""
    words = sentence.text.split()[:-1]  # without the final "."
    if kind == "verb":
        words[sentence.verb_index] = flip_verb_number(words[sentence.verb_index])
    elif kind == "drop":
        del words[rng.randrange(len(words))]
    elif kind == "swap":
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    else:
        raise ValueError(f"unknown corruption {kind!r}; choose from {', '.join(CORRUPTIONS)}")
    return " ".join([*words, "."])


def ungrammatical_version(sentence: Sentence, kind: str, rng: random.Random) -> str | None:
    """A corruption of ``sentence`` that the grammar rejects, or None if a few tries find none
    (dropping an adjective, say, leaves a grammatical sentence)."""
    for _ in range(5):
        text = corrupt(sentence, kind, rng)
        if text != sentence.text and not is_grammatical(text):
            return text
    return None


def _check_count(value: object, name: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_EXAMPLES <= value <= high:
        raise ValueError(
            f"{name} must be a whole number from {MIN_EXAMPLES} to {high}, got {value!r}"
        )
    return value


def _split(
    sentences: Iterator[Sentence], n: int, corruptions: tuple[str, ...], rng: random.Random
) -> list[Example]:
    """``n // 2`` originals and ``n - n // 2`` corrupted sentences (the kinds in turn), each
    made from a different sentence, shuffled."""
    examples = [
        Example(s.text, GRAMMATICAL, ORIGINAL, s.text) for s in itertools.islice(sentences, n // 2)
    ]
    kinds = itertools.cycle(corruptions)
    kind = next(kinds)
    while len(examples) < n:
        sentence = next(sentences)
        text = ungrammatical_version(sentence, kind, rng)
        if text is not None:
            examples.append(Example(text, UNGRAMMATICAL, kind, sentence.text))
            kind = next(kinds)
    rng.shuffle(examples)
    return examples


def make_task(
    n_train: int = 800,
    n_held_out: int = 400,
    seed: int = 0,
    corruptions: Sequence[str] = tuple(CORRUPTIONS),
) -> TaskData:
    """Balanced train and held-out splits; the same arguments always give the same examples."""
    _check_count(n_train, "the number of training examples", MAX_TRAIN)
    _check_count(n_held_out, "the number of held-out examples", MAX_HELD_OUT)
    corruptions = tuple(dict.fromkeys(corruptions))
    if not corruptions or any(kind not in CORRUPTIONS for kind in corruptions):
        raise ValueError(f"choose one or more corruptions among {', '.join(CORRUPTIONS)}")
    rng = random.Random(seed)
    seen: set[str] = set()

    def fresh_sentences() -> Iterator[Sentence]:
        """Generated sentences never handed out before (so the splits share none)."""
        while True:
            sentence = generate_sentence(rng)
            if sentence.text not in seen:
                seen.add(sentence.text)
                yield sentence

    sentences = fresh_sentences()
    train_split = _split(sentences, n_train, corruptions, rng)
    held_out = _split(sentences, n_held_out, corruptions, rng)
    return TaskData(tuple(train_split), tuple(held_out), seed, corruptions)


# ---------------------------------------------------------------------------------------------
# The classifier: a pretrained body, a pooled sentence vector, a linear head
# ---------------------------------------------------------------------------------------------

POOLINGS = {
    "mean": N_("mean of the token vectors"),
    "first": N_("first token ([CLS] in BERT)"),
    "last": N_("last token"),
}


@dataclass
class ClassifierOutput:
    logits: Tensor  # (B, n_classes)
    loss: Tensor | None = None


def family_of(model: nn.Module) -> str:
    if isinstance(model, Bert):
        return "bert"
    if isinstance(model, GPT):
        return "gpt"
    raise ValueError(f"only GPT and BERT models can be fine-tuned here, not {type(model).__name__}")


def body_of(model: nn.Module) -> nn.Module:
    """A deep copy of a pretrained GPT or BERT without its output head (the shipped model is
    shared and never changes). Its last hidden state is what the classifier reads."""
    body = copy.deepcopy(model)
    if family_of(model) == "bert":
        body.mlm_head = nn.Identity()
    else:
        body.lm_head = nn.Identity()
    return body


# BERT-base as Devlin et al. published it: WordPiece vocabulary of 30,522, 512 positions,
# 12 layers of width 768 with 12 heads.
BERT_BASE = BertConfig(
    vocab_size=30_522, block_size=512, n_layer=12, n_head=12, n_embd=768, layer_norm_eps=1e-12
)


@functools.lru_cache(maxsize=1)
def bert_base_bias_count() -> tuple[int, int]:
    """(bias parameters, all parameters) of BERT-base's body, the model a classifier keeps: the
    model built from ``BERT_BASE`` (on the meta device: shapes only, no memory) without its
    masked-LM head, with BitFit's selection of trainable biases."""
    with torch.device("meta"):
        body = body_of(build_model(BERT_BASE))
    peft.train_only_biases(body)
    return peft.count_trainable(body), count_parameters(body)


def bitfit_values() -> dict[str, object]:
    """The numbers the lesson's BitFit section quotes, counted on BERT-base's shape."""
    biases, total = bert_base_bias_count()
    return {
        "bert_base_biases": biases,
        "bert_base_body": total,
        "bert_base_bias_share": f"{100 * biases / total:.2f}%",
    }


def lesson_values(key: str) -> dict[str, object]:
    """The values of the placeholders in the lesson's section ``key`` (none for most)."""
    return bitfit_values() if key == "bitfit" else {}


class SequenceClassifier(nn.Module):
    """body → last hidden states (B, T, C) → one vector per sentence (B, C) → head → (B, 2)."""

    def __init__(self, body: nn.Module, pooling: str = "mean", n_classes: int = 2):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose from {', '.join(POOLINGS)}")
        self.body = body
        self.pooling = pooling
        self.head = nn.Linear(body.config.n_embd, n_classes)

    @property
    def config(self):
        return self.body.config

    def features(self, idx: Tensor, attention_mask: Tensor) -> Tensor:
        """The pooled sentence vector, (B, C)."""
        out = self.body(idx, attention_mask=attention_mask, output_hidden_states=True)
        hidden = out.hidden_states[-1]  # (B, T, C)
        if self.pooling == "first":
            return hidden[:, 0]
        if self.pooling == "last":
            last = attention_mask.sum(dim=1) - 1  # (B,) position of each last real token
            return hidden[torch.arange(hidden.size(0)), last]
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1)

    def forward(
        self, idx: Tensor, attention_mask: Tensor, labels: Tensor | None = None
    ) -> ClassifierOutput:
        logits = self.head(self.features(idx, attention_mask))  # (B, n_classes)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return ClassifierOutput(logits, loss)


class ClassificationTask:
    """Batches of (token ids, padding mask, label) in the form ``train.train`` expects."""

    def __init__(self, model: nn.Module, tokenizer, data: TaskData):
        family = family_of(model)
        self.pad_id = tokenizer.pad_id if tokenizer.pad_id is not None else 0
        self.train_seqs = [model_input_ids(tokenizer, family, e.text) for e in data.train]
        self.held_out_seqs = [model_input_ids(tokenizer, family, e.text) for e in data.held_out]
        self.train_labels = [e.label for e in data.train]
        self.held_out_labels = [e.label for e in data.held_out]
        longest = max(len(s) for s in self.train_seqs + self.held_out_seqs)
        if longest > model.config.block_size:
            raise ValueError(
                f"a sentence has {longest} tokens but the model reads at most "
                f"{model.config.block_size}"
            )

    def make(self, seqs: list[list[int]], labels: list[int]) -> dict[str, Tensor]:
        ids, mask = pad_batch(seqs, self.pad_id)
        return {"idx": ids, "attention_mask": mask, "labels": torch.tensor(labels)}

    def batch(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        rows = torch.randint(len(self.train_seqs), (batch_size,), generator=generator).tolist()
        return self.make([self.train_seqs[r] for r in rows], [self.train_labels[r] for r in rows])

    def validation_batches(self, batch_size: int) -> Iterator[dict[str, Tensor]]:
        for i in range(0, len(self.held_out_seqs), batch_size):
            yield self.make(
                self.held_out_seqs[i : i + batch_size], self.held_out_labels[i : i + batch_size]
            )


@torch.no_grad()
def held_out_logits(classifier: nn.Module, task: ClassificationTask) -> Tensor:
    """(N, n_classes) logits for every held-out example, in order."""
    classifier.eval()
    return torch.cat(
        [classifier(b["idx"], b["attention_mask"]).logits for b in task.validation_batches(128)]
    )


# ---------------------------------------------------------------------------------------------
# The methods
# ---------------------------------------------------------------------------------------------

METHODS = {
    "full": N_("Full fine-tuning"),
    "head": N_("Head only (linear probe)"),
    "bitfit": N_("BitFit (biases only)"),
    "adapters": N_("Adapters"),
    "lora": N_("LoRA"),
    "prefix": N_("Prefix tuning"),
}
DEFAULT_LEARNING_RATES = {
    "full": 5e-4,
    "head": 2e-2,
    "bitfit": 1e-2,
    "adapters": 3e-3,
    "lora": 5e-3,
    "prefix": 3e-2,
}
MIN_LEARNING_RATE, MAX_LEARNING_RATE = 1e-6, 1.0
MAX_STEPS, MAX_BATCH = 5_000, 256


@dataclass(frozen=True)
class MethodSettings:
    """One fine-tuning run. ``learning_rate=None`` takes the method's default."""

    method: str = "lora"
    steps: int = 150
    learning_rate: float | None = None
    batch_size: int = 32
    seed: int = 0
    pooling: str = "mean"
    lora_rank: int = 4
    lora_alpha: float = 8.0
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")
    adapter_bottleneck: int = 16
    adapter_places: tuple[str, ...] = peft.ADAPTER_PLACES
    prefix_length: int = 8

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {', '.join(METHODS)}")
        peft.check_whole_number(self.steps, "steps", 1, MAX_STEPS)
        peft.check_whole_number(self.batch_size, "batch size", 1, MAX_BATCH)
        rate = self.learning_rate
        if rate is not None and (
            isinstance(rate, bool)
            or not isinstance(rate, (int, float))
            or not MIN_LEARNING_RATE <= rate <= MAX_LEARNING_RATE
        ):
            raise ValueError(
                f"learning rate must be between {MIN_LEARNING_RATE:g} and {MAX_LEARNING_RATE:g}, "
                f"got {rate!r}"
            )
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; choose from {', '.join(POOLINGS)}")
        if self.method == "lora":
            peft.check_lora(self.lora_rank, self.lora_alpha, self.lora_targets)
        elif self.method == "adapters":
            peft.check_adapters(self.adapter_bottleneck, self.adapter_places)
        elif self.method == "prefix":
            peft.check_prefix(self.prefix_length)

    @property
    def lr(self) -> float:
        return self.learning_rate or DEFAULT_LEARNING_RATES[self.method]

    @property
    def label(self) -> str:
        return METHODS[self.method]

    def details(self) -> str:
        """The method's own settings, in a few words."""
        if self.method == "lora":
            return (
                f"r = {self.lora_rank}, α = {self.lora_alpha:g} on {', '.join(self.lora_targets)}"
            )
        if self.method == "adapters":
            return f"bottleneck {self.adapter_bottleneck} after {' and '.join(self.adapter_places)}"
        if self.method == "prefix":
            return f"{self.prefix_length} key/value vectors per layer"
        return ""


def prepare(model: nn.Module, settings: MethodSettings) -> SequenceClassifier:
    """A classifier on a copy of ``model``, with only what ``settings.method`` trains trainable.
    The head always trains: it is new."""
    torch.manual_seed(settings.seed)
    classifier = SequenceClassifier(body_of(model), settings.pooling)
    adapt_body(classifier.body, settings)
    classifier.head.requires_grad_(True)
    return classifier


def adapt_body(body: nn.Module, settings: MethodSettings) -> None:
    """Set up ``settings.method`` on ``body`` (a copy, changed in place): freeze what the method
    keeps, add the modules it trains. Full fine-tuning leaves every parameter trainable."""
    if settings.method == "head":
        peft.freeze(body)
    elif settings.method == "bitfit":
        peft.train_only_biases(body)
    elif settings.method == "adapters":
        peft.add_adapters(body, settings.adapter_bottleneck, settings.adapter_places)
    elif settings.method == "lora":
        peft.add_lora(body, settings.lora_rank, settings.lora_alpha, settings.lora_targets)
    elif settings.method == "prefix":
        peft.add_prefix(body, settings.prefix_length)


def parameter_arithmetic(settings: MethodSettings, config) -> tuple[int, str] | None:
    """How many parameters a method adds and trains, worked out from the model's shape, with
    the sum written out. None for full fine-tuning and BitFit, which train existing tensors."""
    n_layer, width = config.n_layer, config.n_embd
    head = 2 * width + 2
    head_text = f"the head {width} × 2 + 2 = {head:,}"
    if settings.method == "head":
        return head, head_text
    if settings.method == "lora":
        r, n = settings.lora_rank, len(settings.lora_targets)
        added = n_layer * n * r * (width + width)
        sum_text = f"{n_layer} layers × {n} projections × r {r} × ({width} + {width})"
    elif settings.method == "adapters":
        b, n = settings.adapter_bottleneck, len(settings.adapter_places)
        added = n_layer * n * (width * b + b + b * width + width)
        sum_text = f"{n_layer} layers × {n} adapters × ({width}·{b} + {b} + {b}·{width} + {width})"
    elif settings.method == "prefix":
        p = settings.prefix_length
        added = n_layer * 2 * p * width
        sum_text = f"{n_layer} layers × (keys + values) 2 × {p} vectors × {width}"
    else:
        return None
    return added + head, f"{sum_text} = {added:,}, plus {head_text}: {added + head:,}"


# ---------------------------------------------------------------------------------------------
# Training and measuring
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodUpdate:
    """One logged step of one method's run."""

    label: str
    progress: Progress


@dataclass
class MethodResult:
    model_name: str
    settings: MethodSettings
    trainable: int
    total: int
    held_out_accuracy: float
    accuracy_by_kind: dict[str, float]
    step_seconds: list[float]  # wall time of every training step
    optimizer_state_bytes: int  # exp_avg, exp_avg_sq and step of AdamW, summed
    optimizer_tensors: int  # how many parameter tensors the optimizer holds state for
    history: list[Progress] = field(default_factory=list)
    stop_reason: str | None = None
    merge_difference: float | None = None  # LoRA: largest |logit change| caused by merging
    merged_parameters: int | None = None  # LoRA: parameters of the model after merging
    task: str = ""  # which task data it was trained and measured on (TaskData.summary)

    @property
    def label(self) -> str:
        return self.settings.label

    @property
    def steps_done(self) -> int:
        return len(self.step_seconds)

    @property
    def median_step_seconds(self) -> float:
        return statistics.median(self.step_seconds) if self.step_seconds else float("nan")

    @property
    def trainable_share(self) -> float:
        return self.trainable / self.total


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held by the optimizer's state tensors (for AdamW: two moments and a step count
    per trained tensor), summed over every parameter it updates."""
    return sum(
        value.numel() * value.element_size()
        for state in optimizer.state.values()
        for value in state.values()
        if isinstance(value, Tensor)
    )


def accuracy(predictions: Sequence[int], examples: Sequence[Example]) -> float:
    return sum(p == e.label for p, e in zip(predictions, examples, strict=True)) / len(examples)


def accuracy_by_kind(predictions: Sequence[int], examples: Sequence[Example]) -> dict[str, float]:
    """Held-out accuracy on the originals and on each kind of corruption separately."""
    present = {e.kind for e in examples}
    return {
        kind: accuracy(
            [p for p, e in zip(predictions, examples, strict=True) if e.kind == kind],
            [e for e in examples if e.kind == kind],
        )
        for kind in (ORIGINAL, *CORRUPTIONS)
        if kind in present
    }


def train_settings(settings: MethodSettings) -> TrainSettings:
    return TrainSettings(
        max_steps=settings.steps,
        batch_size=settings.batch_size,
        learning_rate=settings.lr,
        warmup_steps=min(20, settings.steps // 10),
        weight_decay=0.01,
        eval_interval=max(10, settings.steps // 5),
        seed=settings.seed,
    )


def fine_tune(
    model: nn.Module,
    tokenizer,
    data: TaskData,
    settings: MethodSettings,
    model_name: str = "",
    report: Report | None = None,
    report_every: int = 5,
) -> MethodResult:
    """Train one method on a copy of ``model`` and measure it. ``model`` is never changed."""
    task = ClassificationTask(model, tokenizer, data)
    classifier = prepare(model, settings)
    step_ends: list[float] = []

    def callback(progress: Progress) -> bool:
        step_ends.append(progress.elapsed_s)
        if report is None or (progress.step % report_every and progress.val_loss is None):
            return True
        return report(MethodUpdate(settings.label, progress)) is not False

    state = train(classifier, task, train_settings(settings), callback=callback, log_interval=1)
    logits = held_out_logits(classifier, task)
    predictions = logits.argmax(dim=-1).tolist()
    result = MethodResult(
        model_name=model_name,
        settings=settings,
        trainable=peft.count_trainable(classifier),
        total=count_parameters(classifier),
        held_out_accuracy=accuracy(predictions, data.held_out),
        accuracy_by_kind=accuracy_by_kind(predictions, data.held_out),
        step_seconds=[b - a for a, b in itertools.pairwise([0.0, *step_ends])],
        optimizer_state_bytes=optimizer_state_bytes(state.optimizer),
        optimizer_tensors=len(state.optimizer.state),
        history=state.history,
        stop_reason=state.stop_reason,
        task=data.summary(),
    )
    if settings.method == "lora":
        peft.merge_lora(classifier)
        merged = held_out_logits(classifier, task)
        result.merge_difference = (merged - logits).abs().max().item()
        result.merged_parameters = count_parameters(classifier)
    return result


def run_methods(
    model: nn.Module,
    tokenizer,
    data: TaskData,
    runs: Sequence[MethodSettings],
    model_name: str = "",
    report: Report | None = None,
) -> list[MethodResult]:
    """Train each run in turn. Each finished ``MethodResult`` is also reported, so a page can
    show it before the others are done. Stops early if ``report`` returns False."""
    results = []
    for settings in runs:
        result = fine_tune(model, tokenizer, data, settings, model_name, report)
        results.append(result)
        if report is not None and (report(result) is False or result.stop_reason == "stopped"):
            break
    return results


# ---------------------------------------------------------------------------------------------
# Without training: what a pretrained GPT's likelihoods already tell
# ---------------------------------------------------------------------------------------------

FEW_SHOT_WORDS = {GRAMMATICAL: " happy", UNGRAMMATICAL: " sad"}  # words the model knows


@torch.no_grad()
def log_likelihoods(
    gpt: nn.Module, tokenizer, contexts: Sequence[str], texts: Sequence[str], batch_size: int = 64
) -> list[float]:
    """log p(text | context) under ``gpt`` (in eval mode), summed over the tokens of ``text``,
    for each pair. A context too long for the model loses its start."""
    if gpt.training:
        raise ValueError("put the model in eval mode first: dropout would make the scores random")
    rows = []
    for context, text in zip(contexts, texts, strict=True):
        text_ids = tokenizer.encode(text)
        ids = (tokenizer.encode(context) + text_ids)[-gpt.config.block_size - 1 :]
        rows.append((ids, min(len(text_ids), len(ids) - 1)))
    scores = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        inputs, mask = pad_batch([ids[:-1] for ids, _ in chunk], tokenizer.pad_id or 0)
        log_probs = F.log_softmax(gpt(inputs, attention_mask=mask).logits, dim=-1)  # (B, T, V)
        for row, (ids, n) in enumerate(chunk):
            end = len(ids) - 1  # predictions at positions end-n .. end-1 are the text's tokens
            targets = torch.tensor(ids[end - n + 1 : end + 1])
            scores.append(log_probs[row, torch.arange(end - n, end), targets].sum().item())
    return scores


def sentence_scores(gpt: nn.Module, tokenizer, texts: Sequence[str]) -> list[float]:
    """Mean log-probability per token of each sentence, read as the start of a new line."""
    totals = log_likelihoods(gpt, tokenizer, ["\n"] * len(texts), list(texts))
    return [total / len(tokenizer.encode(text)) for total, text in zip(totals, texts, strict=True)]


@dataclass
class ZeroShotResult:
    pair_accuracy: float  # the real sentence scores higher than its corruption
    pairs: int
    pair_accuracy_by_kind: dict[str, float]
    threshold: float  # score above which a sentence is called grammatical (set on train)
    threshold_train_accuracy: float
    threshold_accuracy: float  # on the held-out split
    few_shot_prompt: str
    few_shot_accuracy: float  # on the held-out split
    few_shot_grammatical_share: float  # how often the prompt answers "grammatical"


def best_threshold(scores: Sequence[float], labels: Sequence[int]) -> tuple[float, float]:
    """The cut that classifies most examples right when "score above the cut" means grammatical,
    and that accuracy. Cuts lie halfway between neighbouring scores (or below them all)."""
    pairs = sorted(zip(scores, labels, strict=True))
    right = sum(label == GRAMMATICAL for _, label in pairs)  # cut below all: all "grammatical"
    best_cut, best_right = pairs[0][0] - 1.0, right
    for (score, label), (next_score, _) in itertools.pairwise(pairs):
        right += 1 if label == UNGRAMMATICAL else -1  # this example moves below the cut
        if next_score > score and right > best_right:
            best_cut, best_right = (score + next_score) / 2, right
    return best_cut, best_right / len(pairs)


def few_shot_prompt(data: TaskData, shots: int) -> str:
    """``shots`` short training sentences, each followed by its label word, one per line."""
    short = [e for e in data.train if len(e.text.split()) <= 6]
    chosen = [e for e in short if e.label == GRAMMATICAL][: (shots + 1) // 2]
    chosen += [e for e in short if e.label == UNGRAMMATICAL][: shots // 2]
    random.Random(data.seed).shuffle(chosen)
    return "".join(f"{e.text}{FEW_SHOT_WORDS[e.label]}\n" for e in chosen)


def zero_shot(gpt: nn.Module, tokenizer, data: TaskData, shots: int = 4) -> ZeroShotResult:
    """Three ways to use gpt-stories with no weight update at all (see the fine-tuning lesson)."""
    if family_of(gpt) != "gpt":
        raise ValueError("zero-shot scoring needs a GPT: it compares how likely sentences are")
    corrupted = [e for e in data.held_out if e.label == UNGRAMMATICAL]
    real = sentence_scores(gpt, tokenizer, [e.source for e in corrupted])
    fake = sentence_scores(gpt, tokenizer, [e.text for e in corrupted])
    wins = [r > f for r, f in zip(real, fake, strict=True)]
    by_kind = {
        kind: statistics.mean(w for w, e in zip(wins, corrupted, strict=True) if e.kind == kind)
        for kind in data.corruptions
    }
    train_scores = sentence_scores(gpt, tokenizer, [e.text for e in data.train])
    threshold, train_accuracy = best_threshold(train_scores, [e.label for e in data.train])
    held_scores = sentence_scores(gpt, tokenizer, [e.text for e in data.held_out])
    threshold_predictions = [int(s > threshold) for s in held_scores]

    prompt = few_shot_prompt(data, shots)
    contexts = [f"{prompt}{e.text}" for e in data.held_out]
    options = {
        label: log_likelihoods(gpt, tokenizer, contexts, [word] * len(contexts))
        for label, word in FEW_SHOT_WORDS.items()
    }
    few_shot_predictions = [
        int(yes > no) for yes, no in zip(options[GRAMMATICAL], options[UNGRAMMATICAL], strict=True)
    ]
    return ZeroShotResult(
        pair_accuracy=statistics.mean(wins),
        pairs=len(wins),
        pair_accuracy_by_kind=by_kind,
        threshold=threshold,
        threshold_train_accuracy=train_accuracy,
        threshold_accuracy=accuracy(threshold_predictions, data.held_out),
        few_shot_prompt=prompt,
        few_shot_accuracy=accuracy(few_shot_predictions, data.held_out),
        few_shot_grammatical_share=statistics.mean(few_shot_predictions),
    )


# ---------------------------------------------------------------------------------------------
# What the page checks, plans and follows
# ---------------------------------------------------------------------------------------------

BASE_MODELS = ("bert-stories", "gpt-stories")  # the shipped models a classifier starts from
ZERO_SHOT_MODEL = "gpt-stories"
POOLINGS_OF = {"bert": ("mean", "first"), "gpt": ("mean", "last")}  # sentence vectors per family


def task_checks(data: TaskData) -> dict[str, int]:
    """What the grammar's parser says of the examples of both splits, and how many source
    sentences the two splits share (none, by construction)."""
    examples = data.train + data.held_out
    return {
        "negatives rejected": sum(
            not is_grammatical(e.text) for e in examples if e.label == UNGRAMMATICAL
        ),
        "negatives": sum(e.label == UNGRAMMATICAL for e in examples),
        "positives accepted": sum(
            is_grammatical(e.text) for e in examples if e.label == GRAMMATICAL
        ),
        "positives": sum(e.label == GRAMMATICAL for e in examples),
        "shared sentences": len({e.source for e in data.train} & {e.source for e in data.held_out}),
    }


def base_models(available: Sequence[str]) -> list[str]:
    """The ``BASE_MODELS`` among the ``available`` model names, in ``BASE_MODELS`` order."""
    return [name for name in BASE_MODELS if name in available]


def parameter_counts(model: nn.Module, settings: MethodSettings) -> tuple[int, int]:
    """(trainable, total) parameters of the classifier a run with ``settings`` would train."""
    classifier = prepare(model, settings)
    return peft.count_trainable(classifier), count_parameters(classifier)


@dataclass(frozen=True)
class MethodPlans:
    """The settings of a run of every method, from one set of choices: ``settings`` for the
    methods whose choices are valid, and ``errors`` saying why the others are not. Both follow
    the order of ``METHODS``."""

    settings: dict[str, MethodSettings]
    errors: dict[str, str]


def plan_methods(
    steps: int,
    seed: int,
    pooling: str,
    rates: dict[str, float],
    options: dict[str, object],
) -> MethodPlans:
    """The settings of one run of every method: its own learning rate from ``rates``, and the
    shared ``options`` of LoRA, adapters and prefix tuning."""
    settings, errors = {}, {}
    for method in METHODS:
        try:
            settings[method] = MethodSettings(
                method=method,
                steps=steps,
                learning_rate=rates[method],
                seed=seed,
                pooling=pooling,
                **options,
            )
        except ValueError as err:
            errors[method] = str(err)
    return MethodPlans(settings, errors)


@dataclass(frozen=True)
class RunsProgress:
    """What a job of fine-tuning runs has reported so far: every run's logged steps, by label,
    and how many runs finished."""

    histories: dict[str, list[Progress]]
    finished: int


def runs_progress(updates: Sequence[object]) -> RunsProgress:
    """Sort a job's ``MethodUpdate``s by run and count its ``MethodResult``s."""
    histories: dict[str, list[Progress]] = {}
    for update in updates:
        if isinstance(update, MethodUpdate):
            histories.setdefault(update.label, []).append(update.progress)
    finished = sum(isinstance(update, MethodResult) for update in updates)
    return RunsProgress(histories, finished)


def grammatical_share(examples: Sequence[Example]) -> float:
    """The share of ``examples`` labelled grammatical."""
    if not examples:
        raise ValueError("there are no examples to count")
    return statistics.mean(e.label == GRAMMATICAL for e in examples)


# ---------------------------------------------------------------------------------------------
# Predict, then reveal (the lesson's ``predict:`` questions): the classifier a run would
# train, built and run once, never trained
# ---------------------------------------------------------------------------------------------

REVEAL_EXAMPLES = 100  # held-out sentences an untrained classifier is scored on
ADDED_METHODS = ("bitfit", "adapters", "lora", "prefix")  # methods that adapt the body
UNCHANGED_TOLERANCE = 1e-4  # largest change of a sentence vector still counted as none


def predict_head_size(loaded, chosen: MethodSettings) -> Prediction:
    """How many parameters the new linear head of the classifier has: weights and biases."""
    width = loaded.config.n_embd

    def reveal() -> Reveal:
        head = prepare(loaded.model, chosen).head
        return Reveal(
            count_parameters(head), {"weights": head.weight.numel(), "biases": head.bias.numel()}
        )

    return Prediction({"model": loaded.name, "width": width}, reveal, bounds=(0, 100_000))


def predict_lora_doubled_rank(loaded, plans: MethodPlans) -> Prediction:
    """How many parameters LoRA would train with twice the page's rank (the head included)."""
    lora = plans.settings.get("lora")
    if lora is None:
        raise ValueError(f"LoRA's settings cannot be used: {plans.errors.get('lora')}")
    trainable, _ = parameter_arithmetic(lora, loaded.config)  # the page's count, worked out
    doubled = replace(lora, lora_rank=2 * lora.lora_rank)

    def reveal() -> Reveal:
        classifier = prepare(loaded.model, doubled)
        total = peft.count_trainable(classifier)
        head = count_parameters(classifier.head)
        return Reveal(total, {"lora": total - head, "head": head, "before": trainable - head})

    values = {
        "model": loaded.name,
        "rank": lora.lora_rank,
        "targets": ", ".join(lora.lora_targets),
        "trainable": trainable,
        "doubled": doubled.lora_rank,
    }
    return Prediction(values, reveal, bounds=(0, 100_000_000))


def _held_out_batch(loaded, data: TaskData, n: int) -> dict[str, Tensor]:
    task = ClassificationTask(loaded.model, loaded.tokenizer, data)
    seqs, labels = task.held_out_seqs[:n], task.held_out_labels[:n]
    return task.make(seqs, labels)


def predict_changed_before_training(loaded, plans: MethodPlans, data: TaskData) -> Prediction:
    """Which method's classifier reads a different sentence vector from the pretrained body's
    before any training step: prefix tuning's new keys and values are random, while LoRA (B = 0),
    adapters (up-projection 0) and BitFit (the body's own biases) start as the body itself."""
    methods = [m for m in ADDED_METHODS if m in plans.settings]
    if "prefix" not in methods:
        raise ValueError("prefix tuning's settings cannot be used")

    def reveal() -> Reveal:
        batch = _held_out_batch(loaded, data, 8)
        with torch.no_grad():
            body = SequenceClassifier(body_of(loaded.model), plans.settings["prefix"].pooling)
            reference = body.features(batch["idx"], batch["attention_mask"])
            changes = {}
            for method in methods:
                classifier = prepare(loaded.model, plans.settings[method]).eval()
                features = classifier.features(batch["idx"], batch["attention_mask"])
                changes[method] = (features - reference).abs().max().item()
        changed = [m for m in methods if changes[m] > UNCHANGED_TOLERANCE]
        answer = METHODS[changed[0]] if len(changed) == 1 else "more than one"
        values = {"change": f"{changes['prefix']:.3f}", "sentences": len(batch["labels"])}
        return Reveal(answer, values)

    return Prediction({"model": loaded.name}, reveal, tuple(METHODS[m] for m in methods))


def predict_untrained_accuracy(loaded, chosen: MethodSettings, data: TaskData) -> Prediction:
    """The held-out accuracy of the chosen method's classifier before its first training step,
    on the first ``REVEAL_EXAMPLES`` held-out sentences."""
    n = min(REVEAL_EXAMPLES, len(data.held_out))

    def reveal() -> Reveal:
        batch = _held_out_batch(loaded, data, n)
        classifier = prepare(loaded.model, chosen).eval()
        with torch.no_grad():
            logits = classifier(batch["idx"], batch["attention_mask"]).logits
        predictions = logits.argmax(dim=-1)
        right = (predictions == batch["labels"]).float().mean().item()
        called = (predictions == GRAMMATICAL).float().mean().item()
        return Reveal(right, {"called": f"{called:.0%}", "accuracy": f"{right:.0%}"})

    values = {"model": loaded.name, "method": chosen.label, "examples": n}
    return Prediction(values, reveal, bounds=(0.0, 1.0))
