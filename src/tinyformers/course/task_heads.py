"""Task heads: one pretrained encoder, three small output layers, three kinds of task.

* The tasks (``make_examples``), all labelled exactly by the stories grammar:
  - ``pair``: ``[CLS] A [SEP] B [SEP]`` with segment ids 0 and 1. B starts with a pronoun; the
    label says whether that pronoun is the one a story uses for A's subject (a story's pronoun
    always refers to the subject of the sentence before). A's subject and B's pronoun are each
    drawn evenly from the four pronouns and the labels are balanced, so neither sentence alone
    tells the answer.
  - ``tags``: every word's category in the grammar (noun, verb, adjective, ...), predicted at the
    first token of the word; the other tokens carry no label (-100).
  - ``span``: the subject of the sentence, everything before its main verb, as a start and an
    end token (as SQuAD marks an answer in a paragraph).
* The model (``TaskModel``): a deep copy of the whole pretrained BERT, masked-LM head included
  (so its masked-LM loss can be measured after fine-tuning), and one linear head: two classes
  from ``[CLS]``, one score per tag at every token, or a start and an end score at every token.
* The methods: full fine-tuning or one parameter-efficient method of ``fine_tuning.METHODS``,
  set up by ``fine_tuning.adapt_body`` with the functions of ``peft.py``.
* The runs (``run_heads``): every head with full fine-tuning and with the compared method,
  reporting ``fine_tuning.MethodUpdate``s through ``report`` (the protocol of ``jobs.py``), each
  measured on held-out examples and beside the best constant answer (``baseline``).
* Forgetting (``masked_lm_score``): the encoder's masked-LM loss and accuracy on held-out
  stories sentences (masked as the zoo measures bert-stories) before and after fine-tuning.
* The student's sentences (``read_sentence``, ``read_pair``) and the lesson's prediction
  questions (``predict_*``).

The shared model is never changed: every run trains its own deep copy.
"""

from __future__ import annotations

import copy
import random
import statistics
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinyformers.course import distillation, fine_tuning
from tinyformers.i18n import N_, _
from tinyformers.model import peft
from tinyformers.model.bert import Bert
from tinyformers.model.build import count_parameters
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.corpora import stories
from tinyformers.text.inputs import SPECIAL_IDS, bert_inputs, word_token_spans
from tinyformers.text.masking import IGNORE_INDEX
from tinyformers.training.loop import Progress, pad_batch, spread, train

Report = Callable[[object], bool]

MODEL = "bert-stories"
DEFAULT_A = "the small dogs near the river chase Mia ."
DEFAULT_B = "they run ."
HEADS = {
    "pair": "Sentence pair: does B's pronoun refer to A's subject?",
    "tags": "Word tags: each word's category",
    "span": "Span: the subject of the sentence",
}
PAIR_LABELS = {1: "continues A", 0: "does not fit A"}
TAGS = stories.CATEGORIES
TAG_NAMES = {
    "the": "the",
    "that": "that",
    "end": "full stop",
    "noun": "noun",
    "name": "name",
    "pronoun": "pronoun",
    "verb": "verb",
    "copula": "is/are",
    "adjective": "adjective",
    "preposition": "preposition",
}
FULL = "full"
COMPARED = ("head", "bitfit", "lora")  # methods a run can set beside full fine-tuning
PRONOUNS = tuple(sorted(stories.PRONOUNS))
MIN_EXAMPLES, MAX_EXAMPLES = 20, 5_000
MIN_STEPS, MAX_STEPS = 5, 1_000
MIN_MLM, MAX_MLM = 20, 1_000
MAX_SPAN_TOKENS = 30  # the longest span the decoder considers
DATA_SEED_OFFSET = 7_919  # the examples' generator is seeded with seed + this


def _check_number(value: object, name: str, low: int, high: int) -> int:
    return peft.check_whole_number(value, name, low, high)


@dataclass(frozen=True)
class HeadSettings:
    """One run: every head in ``heads`` with full fine-tuning and with ``compare``."""

    steps: int = 100
    batch_size: int = 32
    seed: int = 0
    compare: str = "head"
    heads: tuple[str, ...] = tuple(HEADS)
    train_examples: int = 1_000
    held_out: int = 200
    mlm_sentences: int = 200

    def __post_init__(self) -> None:
        _check_number(self.steps, "steps", MIN_STEPS, MAX_STEPS)
        _check_number(self.batch_size, "batch size", 1, fine_tuning.MAX_BATCH)
        _check_number(self.seed, "the seed", 0, 2**31 - 1)
        _check_number(self.train_examples, "training examples", MIN_EXAMPLES, MAX_EXAMPLES)
        _check_number(self.held_out, "held-out examples", MIN_EXAMPLES, MAX_EXAMPLES)
        _check_number(self.mlm_sentences, "masked-LM sentences", MIN_MLM, MAX_MLM)
        if self.compare not in COMPARED:
            names = ", ".join(fine_tuning.METHODS[m] for m in COMPARED)
            raise ValueError(f"compare full fine-tuning with one of: {names}")
        if not self.heads or any(head not in HEADS for head in self.heads):
            raise ValueError(f"choose one or more heads among {', '.join(HEADS)}")

    def method(self, method: str) -> fine_tuning.MethodSettings:
        """The fine-tuning settings of ``method``, with its default learning rate."""
        return fine_tuning.MethodSettings(
            method=method, steps=self.steps, batch_size=self.batch_size, seed=self.seed
        )


# ---------------------------------------------------------------------------------------------
# The tasks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One labelled input. ``label`` is the pair's class, the words' tags (indices of ``TAGS``)
    or the subject's first and last word."""

    text: str
    label: int | tuple[int, ...]
    text_b: str | None = None


def subject_pronoun(sentence: stories.Sentence) -> str:
    """The pronoun a story's next sentence uses for this sentence's subject ("" if none)."""
    return stories.referring_pronoun(sentence.text.split()[sentence.subject_index])


def continuation(rng: random.Random, pronoun: str) -> str:
    """A grammatical sentence whose subject is ``pronoun``: a generated sentence with its
    subject replaced and its main verb put in the pronoun's number."""
    while True:
        sentence = stories.generate_sentence(rng)
        words = sentence.text.split()
        verb = words[sentence.verb_index]
        if stories.PRONOUNS[pronoun] != sentence.number:
            verb = stories.flip_verb_number(verb)
        text = " ".join([pronoun, verb, *words[sentence.verb_index + 1 :]])
        if stories.is_grammatical(text):
            return text


def pair_example(rng: random.Random) -> Example:
    """A's subject refers back with a pronoun drawn evenly from the four; B's pronoun is the
    same (label 1) or one of the three others (label 0), evenly."""
    wanted = rng.choice(PRONOUNS)
    while True:
        sentence = stories.generate_sentence(rng)
        if subject_pronoun(sentence) == wanted:
            break
    label = rng.randrange(2)
    pronoun = wanted if label else rng.choice([p for p in PRONOUNS if p != wanted])
    return Example(sentence.text, label, continuation(rng, pronoun))


def tag_example(rng: random.Random) -> Example:
    text = stories.generate_sentence(rng).text
    tags = tuple(TAGS.index(stories.word_category(word)) for word in text.split())
    return Example(text, tags)


def span_example(rng: random.Random) -> Example:
    sentence = stories.generate_sentence(rng)
    return Example(sentence.text, (0, sentence.verb_index - 1))


MAKERS = {"pair": pair_example, "tags": tag_example, "span": span_example}


@dataclass(frozen=True)
class HeadData:
    head: str
    train: tuple[Example, ...]
    held_out: tuple[Example, ...]


def make_examples(head: str, n_train: int, n_held_out: int, seed: int) -> HeadData:
    """Seeded train and held-out examples of ``head``'s task; no held-out input is also a
    training input."""
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose from {', '.join(HEADS)}")
    _check_number(n_train, "training examples", MIN_EXAMPLES, MAX_EXAMPLES)
    _check_number(n_held_out, "held-out examples", MIN_EXAMPLES, MAX_EXAMPLES)
    rng = random.Random(seed + DATA_SEED_OFFSET)
    train_split = [MAKERS[head](rng) for _ in range(n_train)]
    seen = {(e.text, e.text_b) for e in train_split}
    held_out: list[Example] = []
    while len(held_out) < n_held_out:
        example = MAKERS[head](rng)
        if (example.text, example.text_b) not in seen:
            held_out.append(example)
    return HeadData(head, tuple(train_split), tuple(held_out))


# ---------------------------------------------------------------------------------------------
# What the model reads: ids, segment ids and the target at token positions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    segments: list[int]
    target: int | list[int]  # the class; a tag or -100 per token; [start, end] token positions
    word_tokens: list[tuple[int, int]]  # (first, end) token positions of each word of A


def encode(tokenizer, head: str, example: Example) -> Encoded:
    """``[CLS] A [SEP]`` (``B [SEP]`` after it for a pair) and the target at token level."""
    ids, segments = bert_inputs(tokenizer, example.text, example.text_b)
    words = example.text.split()
    spans = word_token_spans(tokenizer, words, offset=1)
    if head == "pair":
        return Encoded(ids, segments, int(example.label), spans)
    if head == "tags":
        target = [IGNORE_INDEX] * len(ids)
        for (first, _), tag in zip(spans, example.label, strict=True):
            target[first] = tag
        return Encoded(ids, segments, target, spans)
    first_word, last_word = example.label
    return Encoded(ids, segments, [spans[first_word][0], spans[last_word][1] - 1], spans)


def make_batch(rows: Sequence[Encoded], head: str, pad_id: int) -> dict[str, Tensor]:
    ids, mask = pad_batch([r.ids for r in rows], pad_id)  # (B, T) each
    segments, _ = pad_batch([r.segments for r in rows], 0)  # (B, T)
    if head == "tags":
        labels, _ = pad_batch([r.target for r in rows], IGNORE_INDEX)  # (B, T)
    else:
        labels = torch.tensor([r.target for r in rows])  # (B,) or (B, 2)
    return {"idx": ids, "token_type_ids": segments, "attention_mask": mask, "labels": labels}


class HeadTask:
    """Batches of one head's task in the form ``train.train`` expects."""

    def __init__(self, tokenizer, data: HeadData, block_size: int):
        self.head = data.head
        self.pad_id = tokenizer.pad_id or 0
        self.train_rows = [encode(tokenizer, data.head, e) for e in data.train]
        self.held_out_rows = [encode(tokenizer, data.head, e) for e in data.held_out]
        longest = max(len(r.ids) for r in self.train_rows + self.held_out_rows)
        if longest > block_size:
            raise ValueError(f"an input has {longest} tokens; the model reads at most {block_size}")

    def batch(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        rows = torch.randint(len(self.train_rows), (batch_size,), generator=generator).tolist()
        return make_batch([self.train_rows[r] for r in rows], self.head, self.pad_id)

    def validation_batches(
        self, batch_size: int, limit: int | None = None
    ) -> Iterator[dict[str, Tensor]]:
        """The held-out examples in order (or ``limit`` of them, evenly spread)."""
        rows = spread(self.held_out_rows, limit)
        for i in range(0, len(rows), batch_size):
            yield make_batch(rows[i : i + batch_size], self.head, self.pad_id)


# ---------------------------------------------------------------------------------------------
# The model: a pretrained encoder and one linear head
# ---------------------------------------------------------------------------------------------

OUTPUTS = {"pair": len(PAIR_LABELS), "tags": len(TAGS), "span": 2}


@dataclass
class HeadOutput:
    logits: Tensor  # (B, 2) for a pair; (B, T, tags) for tags; (B, T, 2) start and end
    loss: Tensor | None = None


def span_positions(idx: Tensor, attention_mask: Tensor) -> Tensor:
    """Where a span may start or end: real tokens that are not special, (B, T) booleans."""
    special = torch.isin(idx, torch.tensor(sorted(SPECIAL_IDS)))
    return attention_mask.bool() & ~special


class TaskModel(nn.Module):
    """encoder → last hidden states (B, T, C) → head: [CLS] → 2 classes, every token → a tag,
    or every token → a start and an end score."""

    def __init__(self, encoder: Bert, head: str):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; choose from {', '.join(HEADS)}")
        self.encoder = encoder
        self.kind = head
        self.head = nn.Linear(encoder.config.n_embd, OUTPUTS[head])

    def forward(
        self,
        idx: Tensor,
        token_type_ids: Tensor,
        attention_mask: Tensor,
        labels: Tensor | None = None,
    ) -> HeadOutput:
        out = self.encoder(
            idx,
            token_type_ids=token_type_ids,
            attention_mask=attention_mask,
            output_hidden_states=True,
        )
        hidden = out.hidden_states[-1]  # (B, T, C)
        if self.kind == "pair":
            return self.classify(hidden, labels)
        if self.kind == "tags":
            return self.tag(hidden, labels)
        return self.find_span(hidden, span_positions(idx, attention_mask), labels)

    def classify(self, hidden: Tensor, labels: Tensor | None) -> HeadOutput:
        """Two classes from the vector at [CLS]; labels (B,)."""
        logits = self.head(hidden[:, 0])  # (B, 2)
        return HeadOutput(logits, None if labels is None else F.cross_entropy(logits, labels))

    def tag(self, hidden: Tensor, labels: Tensor | None) -> HeadOutput:
        """A score per tag at every token; labels (B, T), -100 where a token has no tag."""
        logits = self.head(hidden)  # (B, T, tags)
        if labels is None:
            return HeadOutput(logits)
        flat = logits.flatten(0, 1)  # (B·T, tags)
        return HeadOutput(logits, F.cross_entropy(flat, labels.flatten(), ignore_index=-100))

    def find_span(self, hidden: Tensor, allowed: Tensor, labels: Tensor | None) -> HeadOutput:
        """A start and an end score at every token, very low where a span may not start or end
        (``allowed`` is False); labels (B, 2), the start and end positions."""
        logits = self.head(hidden).masked_fill(~allowed.unsqueeze(-1), -1e4)  # (B, T, 2)
        if labels is None:
            return HeadOutput(logits)
        start, end = logits.unbind(-1)  # (B, T) each
        loss = (F.cross_entropy(start, labels[:, 0]) + F.cross_entropy(end, labels[:, 1])) / 2
        return HeadOutput(logits, loss)


def build(model: nn.Module, head: str, settings: fine_tuning.MethodSettings) -> TaskModel:
    """A task model on a deep copy of ``model`` (the shared one never changes), with only what
    ``settings.method`` trains trainable; the new head always trains."""
    if not isinstance(model, Bert):
        raise ValueError(f"task heads sit on a BERT, not on a {type(model).__name__}")
    torch.manual_seed(settings.seed)
    task_model = TaskModel(copy.deepcopy(model), head)
    fine_tuning.adapt_body(task_model.encoder, settings)
    task_model.head.requires_grad_(True)
    return task_model.eval()


# ---------------------------------------------------------------------------------------------
# Decoding and scoring
# ---------------------------------------------------------------------------------------------


def best_span(
    start: Tensor, end: Tensor, allowed: Tensor, max_tokens: int = MAX_SPAN_TOKENS
) -> tuple[int, int]:
    """The (start, end) with start <= end < start + max_tokens, both allowed, that maximises
    start score + end score; ties go to the earliest start, then the earliest end."""
    n = start.size(0)
    scores = start[:, None] + end[None, :]  # (T, T): row = start, column = end
    i = torch.arange(n)
    valid = (i[None, :] >= i[:, None]) & (i[None, :] - i[:, None] < max_tokens)  # (T, T)
    valid &= allowed[:, None] & allowed[None, :]
    if not valid.any():
        raise ValueError("there is no token a span could start and end at")
    flat = scores.masked_fill(~valid, float("-inf")).flatten().argmax().item()
    return divmod(int(flat), n)


@torch.no_grad()
def held_out_predictions(task_model: TaskModel, task: HeadTask) -> list[object]:
    """Per held-out example: the class, the tag at every labelled token, or the (start, end)."""
    task_model.eval()
    found: list[object] = []
    for batch in task.validation_batches(128):
        logits = task_model(batch["idx"], batch["token_type_ids"], batch["attention_mask"]).logits
        if task.head == "pair":
            found += logits.argmax(-1).tolist()
        elif task.head == "tags":
            labelled = batch["labels"] != IGNORE_INDEX  # (B, T)
            found += [
                row[keep].tolist() for row, keep in zip(logits.argmax(-1), labelled, strict=True)
            ]
        else:
            allowed = span_positions(batch["idx"], batch["attention_mask"])
            for row, ok in zip(logits, allowed, strict=True):
                found.append(best_span(row[:, 0], row[:, 1], ok))
    return found


def answers(task: HeadTask) -> list[object]:
    """The right answers, in the form ``held_out_predictions`` gives."""
    if task.head == "tags":
        return [[t for t in r.target if t != IGNORE_INDEX] for r in task.held_out_rows]
    if task.head == "span":
        return [tuple(r.target) for r in task.held_out_rows]
    return [r.target for r in task.held_out_rows]


def accuracy(head: str, predictions: Sequence[object], right: Sequence[object]) -> float:
    """Share of right classes, of right word tags (over all words) or of exact spans."""
    if head == "tags":
        pairs = [
            (p, r)
            for ps, rs in zip(predictions, right, strict=True)
            for p, r in zip(ps, rs, strict=True)
        ]
        return statistics.mean(p == r for p, r in pairs)
    return statistics.mean(p == r for p, r in zip(predictions, right, strict=True))


def baseline(head: str, right: Sequence[object]) -> float:
    """The held-out accuracy of the best constant answer: the commonest class, tag or span."""
    if head == "tags":
        counts = Counter(t for tags in right for t in tags)
        return counts.most_common(1)[0][1] / sum(counts.values())
    counts = Counter(right)
    return counts.most_common(1)[0][1] / len(right)


# ---------------------------------------------------------------------------------------------
# Forgetting: the encoder's masked-LM loss on held-out stories
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaskedLMScore:
    loss: float  # mean cross-entropy at the masked positions
    accuracy: float  # share of masked positions whose top token is the hidden one


@torch.no_grad()
def masked_lm_score(encoder: nn.Module, tokenizer, sentences: int) -> MaskedLMScore:
    """The encoder's masked-LM loss and accuracy on the zoo's held-out stories sentences,
    masked the BERT way with the zoo's seed (``distillation.masked_held_out``)."""
    _check_number(sentences, "masked-LM sentences", 1, MAX_MLM)
    held_out = distillation.masked_held_out(tokenizer, sentences, encoder.config.block_size)
    ids, mask = pad_batch([s.input_ids for s in held_out], tokenizer.pad_id or 0)  # (N, T)
    labels, _ = pad_batch([s.labels for s in held_out], IGNORE_INDEX)  # (N, T)
    logits = encoder(ids, attention_mask=mask).logits  # (N, T, V)
    selected = labels != IGNORE_INDEX
    loss = F.cross_entropy(logits[selected], labels[selected])
    right = (logits[selected].argmax(-1) == labels[selected]).float().mean()
    return MaskedLMScore(loss.item(), right.item())


# ---------------------------------------------------------------------------------------------
# Training every head with two methods
# ---------------------------------------------------------------------------------------------


@dataclass
class HeadRun:
    head: str
    method: str
    accuracy: float
    baseline: float
    trainable: int
    total: int
    masked_lm: MaskedLMScore  # the encoder after fine-tuning
    model: TaskModel
    history: list[Progress] = field(default_factory=list)
    stop_reason: str | None = None

    @property
    def label(self) -> str:
        return run_label(self.head, self.method)

    @property
    def score(self) -> RunScore:
        return RunScore(self.head, self.method, self.accuracy, self.baseline, self.masked_lm)


@dataclass(frozen=True)
class RunScore:
    """What a finished run measured, without its model: reported while the job goes on."""

    head: str
    method: str
    accuracy: float
    baseline: float
    masked_lm: MaskedLMScore


def run_label(head: str, method: str) -> str:
    return f"{head} · {fine_tuning.METHODS[method]}"


@dataclass
class HeadsResult:
    settings: HeadSettings
    before: MaskedLMScore  # the shipped encoder
    runs: list[HeadRun]
    stop_reason: str | None = None

    def run(self, head: str, method: str) -> HeadRun | None:
        return next((r for r in self.runs if (r.head, r.method) == (head, method)), None)

    def forgetting(self, run: HeadRun) -> float:
        """How much the run raised the encoder's masked-LM loss."""
        return run.masked_lm.loss - self.before.loss


def fine_tune_head(
    model: nn.Module,
    tokenizer,
    data: HeadData,
    method: fine_tuning.MethodSettings,
    mlm_sentences: int,
    report: Report | None = None,
    report_every: int = 5,
) -> HeadRun:
    """Train one head with one method on a copy of ``model`` and measure it."""
    task = HeadTask(tokenizer, data, model.config.block_size)
    task_model = build(model, data.head, method)
    label = run_label(data.head, method.method)

    def callback(progress: Progress) -> bool:
        if report is None or (progress.step % report_every and progress.val_loss is None):
            return True
        return report(fine_tuning.MethodUpdate(label, progress)) is not False

    settings = fine_tuning.train_settings(method)
    state = train(task_model, task, settings, callback=callback, log_interval=1)
    right = answers(task)
    return HeadRun(
        head=data.head,
        method=method.method,
        accuracy=accuracy(data.head, held_out_predictions(task_model, task), right),
        baseline=baseline(data.head, right),
        trainable=peft.count_trainable(task_model),
        total=count_parameters(task_model),
        masked_lm=masked_lm_score(task_model.encoder, tokenizer, mlm_sentences),
        model=task_model,
        history=state.history,
        stop_reason=state.stop_reason,
    )


def run_heads(
    model: nn.Module, tokenizer, settings: HeadSettings, report: Report | None = None
) -> HeadsResult:
    """Every chosen head with full fine-tuning and with the compared method, each on its own
    copy of ``model``. The shipped encoder's masked-LM score and every finished run's
    ``RunScore`` are reported as they come. Stops early if ``report`` returns False."""
    before = masked_lm_score(model, tokenizer, settings.mlm_sentences)
    if report is not None and report(before) is False:
        return HeadsResult(settings, before, [], "stopped")
    runs: list[HeadRun] = []
    for head in settings.heads:
        data = make_examples(head, settings.train_examples, settings.held_out, settings.seed)
        for method in (FULL, settings.compare):
            run = fine_tune_head(
                model, tokenizer, data, settings.method(method), settings.mlm_sentences, report
            )
            runs.append(run)
            if run.stop_reason is None and report is not None and report(run.score) is False:
                run.stop_reason = "stopped"
            if run.stop_reason is not None:
                return HeadsResult(settings, before, runs, run.stop_reason)
    return HeadsResult(settings, before, runs)


@dataclass(frozen=True)
class JobProgress:
    """What a job of ``run_heads`` reported so far: every run's logged steps by label, the
    shipped encoder's masked-LM score (once measured) and the finished runs' scores."""

    histories: dict[str, list[Progress]]
    before: MaskedLMScore | None
    scores: list[RunScore]


def job_progress(updates: Sequence[object]) -> JobProgress:
    before = next((u for u in updates if isinstance(u, MaskedLMScore)), None)
    scores = [u for u in updates if isinstance(u, RunScore)]
    return JobProgress(fine_tuning.runs_progress(updates).histories, before, scores)


# ---------------------------------------------------------------------------------------------
# The student's sentences
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairInput:
    text_a: str
    text_b: str
    tokens: list[str]
    ids: list[int]
    segments: list[int]


def pair_input(tokenizer, text_a: str, text_b: str, block_size: int) -> PairInput:
    """What BERT reads for the pair, with the segment id of every position."""
    if not text_a.strip() or not text_b.strip():
        raise ValueError(_("type both sentences, A and B"))
    for name, text in (("A", text_a), ("B", text_b)):
        if not tokenizer.encode(text):
            raise ValueError(
                _("sentence {name} holds nothing the tokenizer reads: type a few words").format(
                    name=name
                )
            )
    ids, segments = bert_inputs(tokenizer, text_a, text_b)
    if len(ids) > block_size:
        raise ValueError(
            _(
                "the pair has {count} tokens with [CLS] and the two [SEP]; the model reads at "
                "most {most}"
            ).format(count=len(ids), most=block_size)
        )

    return PairInput(text_a, text_b, tokenizer.display_tokens(ids), ids, segments)


def grammar_tags(text: str) -> list[str | None]:
    """The grammar's category of every word (None for a word it does not know)."""
    return [stories.word_category(w) if w in stories.VOCABULARY else None for w in text.split()]


@dataclass(frozen=True)
class SentenceReading:
    """What the trained heads say about the student's sentence A (and the pair A, B)."""

    words: list[str]
    tags: list[str]  # the tags head's category of every word
    span: tuple[int, int]  # the span head's subject: first and last word
    pair_probability: float  # the pair head's probability that B continues A


def word_of(position: int, spans: Sequence[tuple[int, int]]) -> int:
    """The word a token position belongs to."""
    for word, (first, end) in enumerate(spans):
        if first <= position < end:
            return word
    raise ValueError(f"token {position} belongs to no word")


@torch.no_grad()
def read_sentence(models: dict[str, TaskModel], tokenizer, text_a: str, text_b: str):
    """The three heads (``models`` by head) on the student's pair: A alone for the tags and the
    span, A and B for the pair."""
    words = text_a.split()
    pair = pair_input(tokenizer, text_a, text_b, models["pair"].encoder.config.block_size)
    single, segments = bert_inputs(tokenizer, text_a)
    spans = word_token_spans(tokenizer, words, offset=1)
    ids = torch.tensor([single])  # (1, T)
    ones, zeros = torch.ones_like(ids), torch.tensor([segments])
    tag_logits = models["tags"].eval()(ids, zeros, ones).logits[0]  # (T, tags)
    tags = [TAGS[int(tag_logits[first].argmax())] for first, _ in spans]
    span_logits = models["span"].eval()(ids, zeros, ones).logits[0]  # (T, 2)
    start, end = best_span(span_logits[:, 0], span_logits[:, 1], span_positions(ids, ones)[0])
    pair_ids = torch.tensor([pair.ids])  # (1, T)
    pair_logits = (
        models["pair"]
        .eval()(pair_ids, torch.tensor([pair.segments]), torch.ones_like(pair_ids))
        .logits[0]
    )
    probability = pair_logits.softmax(-1)[1].item()
    return SentenceReading(words, tags, (word_of(start, spans), word_of(end, spans)), probability)


def readings(result: HeadsResult, tokenizer, text_a: str, text_b: str) -> dict[str, object]:
    """Each method's reading of the student's sentences, by method, when it trained all heads."""
    found = {}
    for method in (FULL, result.settings.compare):
        models = {h: r.model for h in HEADS if (r := result.run(h, method)) is not None}
        if len(models) == len(HEADS):
            found[method] = read_sentence(models, tokenizer, text_a, text_b)
    return found


# ---------------------------------------------------------------------------------------------
# Predict, then see
# ---------------------------------------------------------------------------------------------

SEGMENT_CHOICES = (N_("0 (segment A)"), N_("1 (segment B)"))
RISES, FALLS, SAME = N_("rises"), N_("falls"), N_("stays exactly the same")
PROBE_STEPS = 10  # training steps of the frozen-encoder question


def predict_last_segment(loaded, pair: PairInput) -> Prediction:
    """The segment id BERT gives the final [SEP] of the student's pair."""

    def reveal() -> Reveal:
        ids, segments = bert_inputs(loaded.tokenizer, pair.text_a, pair.text_b)
        first_sep = ids.index(loaded.tokenizer.sep_id)
        values = {"first_sep": first_sep, "last": len(ids) - 1, "b_tokens": sum(segments)}
        return Reveal(SEGMENT_CHOICES[segments[-1]], values)

    return Prediction({"pair": " ".join(pair.tokens)}, reveal, SEGMENT_CHOICES)


def predict_span_head_size(loaded) -> Prediction:
    """How many parameters the span head adds: a start and an end score from every vector."""
    width = loaded.config.n_embd

    def reveal() -> Reveal:
        head = build(loaded.model, "span", fine_tuning.MethodSettings(method="head")).head
        return Reveal(count_parameters(head), {"weights": head.weight.numel(), "biases": 2})

    return Prediction({"width": width, "model": loaded.name}, reveal, bounds=(0, 1_000_000))


def predict_frozen_forgetting(loaded, settings: HeadSettings) -> Prediction:
    """What training the pair head on a frozen encoder does to the masked-LM loss."""

    def reveal() -> Reveal:
        method = fine_tuning.MethodSettings(
            method="head", steps=PROBE_STEPS, batch_size=8, seed=settings.seed
        )
        data = make_examples("pair", MIN_EXAMPLES, MIN_EXAMPLES, settings.seed)
        run = fine_tune_head(loaded.model, loaded.tokenizer, data, method, MIN_MLM)
        before = masked_lm_score(loaded.model, loaded.tokenizer, MIN_MLM)
        change = run.masked_lm.loss - before.loss
        answer = RISES if change > 1e-6 else FALLS if change < -1e-6 else SAME
        values = {"before": f"{before.loss:.4f}", "after": f"{run.masked_lm.loss:.4f}"}
        return Reveal(answer, values | {"trainable": run.trainable})

    return Prediction({"steps": PROBE_STEPS, "model": loaded.name}, reveal, (RISES, FALLS, SAME))


def lesson_values(loaded) -> dict[str, object]:
    """The placeholders of the lesson's "heads" section."""
    width = loaded.config.n_embd
    return {
        "model": loaded.name,
        "width": width,
        "tags": len(TAGS),
        "pair_head": width * 2 + 2,
        "tag_head": width * len(TAGS) + len(TAGS),
        "span_head": width * 2 + 2,
        "parameters": count_parameters(loaded.model),
    }
