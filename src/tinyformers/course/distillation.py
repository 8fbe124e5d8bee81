"""Knowledge distillation: a small BERT student learns from bert-stories, its teacher.

* The student (``make_student``): the teacher's configuration with fewer blocks. Initialised
  the DistilBERT way, it copies the teacher's embeddings, its masked-LM head and every other
  block (blocks 0, 2, …: half the layers, rounded up); or it starts from random weights.
* The loss (``distillation_loss``, ``DistillationObjective``): at the positions masked-LM
  selected, α · T² · KL(teacher_T ‖ student_T), the teacher's and the student's distributions
  softened by the same temperature T, plus (1 − α) · the usual cross-entropy with the hidden
  token. α = 0 is a student that trains alone, on hard labels only.
* The runs (``run_students``): the distilled student and the same student trained alone, with
  the same steps, seed and batches, each on its own copy; both report through ``report``, the
  protocol of ``jobs.py`` (it returns False once someone asked to stop).
* The comparison (``measure``): parameters, masked-LM accuracy on held-out sentences, main-verb
  number on the agreement probes the zoo measures the teacher on, top-1 agreement with the
  teacher, and the median wall time of one sentence's forward pass.
* For the page: a masked word's distributions under every model at T = 1 and at the chosen T
  (``masked_word``), and the lesson's prediction questions (``predict_*``).

The teacher is never changed: it is only ever run, without gradients.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinyformers.i18n import N_, _
from tinyformers.model.bert import Bert
from tinyformers.model.build import build_model, count_parameters
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.corpora import stories
from tinyformers.text.inputs import SPECIAL_IDS, bert_wrap, read_typed_text
from tinyformers.text.masking import IGNORE_INDEX, MaskingRates, mask_tokens
from tinyformers.training.loop import MaskedLMTask, Progress, TrainSettings, pad_batch, train
from tinyformers.training.zoo import AGREEMENT_SEED

Report = Callable[[object], bool]

TEACHER = "bert-stories"
DEFAULT_SENTENCE = "the dogs near the old cat [MASK] ."
INITS = {
    "teacher": N_("every other layer of the teacher"),
    "random": N_("random weights"),
}
DISTILLED, ALONE = "distilled", "alone"
UNTRAINED = N_("student before training")
STUDENT_NAMES = {DISTILLED: N_("distilled student"), ALONE: N_("student trained alone")}
MIN_TEMPERATURE, MAX_TEMPERATURE = 1.0, 20.0
MIN_STEPS, MAX_STEPS = 10, 500
MIN_SENTENCES, MAX_SENTENCES = 200, 20_000
MIN_HELD_OUT, MAX_HELD_OUT = 20, 1_000
HELD_OUT_SEED = 4321  # the held-out sentences the zoo measures bert-stories' masked-LM accuracy on
TRAIN_SEED_OFFSET = 1_000  # training sentences come from seed + this, never the held-out seed
TOP_K = 8  # tokens shown in a masked word's distributions


def _check_number(value: object, name: str, low: float, high: float, whole: bool) -> None:
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"{name} must be {kind} from {low:g} to {high:g}, got {value!r}")


@dataclass(frozen=True)
class DistillSettings:
    """One comparison: the distilled student and the same student trained alone."""

    temperature: float = 2.0
    alpha: float = 0.9  # weight of the teacher's soft targets; 1 - alpha on the hidden token
    steps: int = 200
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    init: str = "teacher"
    train_sentences: int = 4_000
    held_out: int = 200

    def __post_init__(self) -> None:
        _check_number(self.temperature, "the temperature", MIN_TEMPERATURE, MAX_TEMPERATURE, False)
        _check_number(self.alpha, "α", 0.0, 1.0, False)
        _check_number(self.steps, "steps", MIN_STEPS, MAX_STEPS, True)
        _check_number(self.batch_size, "batch size", 1, 256, True)
        _check_number(self.learning_rate, "the learning rate", 1e-6, 1.0, False)
        _check_number(self.seed, "the seed", 0, 2**31 - 1, True)
        _check_number(
            self.train_sentences, "training sentences", MIN_SENTENCES, MAX_SENTENCES, True
        )
        _check_number(self.held_out, "held-out sentences", MIN_HELD_OUT, MAX_HELD_OUT, True)
        if self.init not in INITS:
            raise ValueError(
                f"unknown initialisation {self.init!r}; choose from {', '.join(INITS)}"
            )


# ---------------------------------------------------------------------------------------------
# The student
# ---------------------------------------------------------------------------------------------


def check_teacher(teacher: nn.Module) -> None:
    if not isinstance(teacher, Bert):
        raise ValueError(f"the teacher must be a BERT, not {type(teacher).__name__}")
    if teacher.config.n_layer < 2:
        raise ValueError("a teacher with one layer has no layers to leave out")


def kept_layers(n_layer: int) -> tuple[int, ...]:
    """Every other layer, from the first: half of ``n_layer``, rounded up (DistilBERT kept 6
    of BERT-base's 12)."""
    if n_layer < 2:
        raise ValueError(f"a teacher with {n_layer} layer has no layers to leave out")
    return tuple(range(0, n_layer, 2))


def make_student(teacher: nn.Module, init: str = "teacher", seed: int = 0) -> Bert:
    """A BERT with the teacher's shape but only ``len(kept_layers)`` blocks. ``init="teacher"``
    copies the teacher's embeddings, its masked-LM head and its kept blocks (block i of the
    student is block ``kept_layers[i]`` of the teacher); ``"random"`` draws every weight anew."""
    check_teacher(teacher)
    if init not in INITS:
        raise ValueError(f"unknown initialisation {init!r}; choose from {', '.join(INITS)}")
    layers = kept_layers(teacher.config.n_layer)
    torch.manual_seed(seed)
    student = build_model(replace(teacher.config, n_layer=len(layers)))
    if init == "teacher":
        source = teacher.state_dict()
        copied = {}
        for name in student.state_dict():
            if name.startswith("h."):
                _, index, rest = name.split(".", 2)
                name_in_teacher = f"h.{layers[int(index)]}.{rest}"
            else:
                name_in_teacher = name
            copied[name] = source[name_in_teacher].detach().clone()
        student.load_state_dict(copied, strict=True)
    return student.eval()


# ---------------------------------------------------------------------------------------------
# The loss
# ---------------------------------------------------------------------------------------------


def soften(logits: Tensor, temperature: float) -> Tensor:
    """softmax(logits / T) over the last dimension."""
    return F.softmax(logits / temperature, dim=-1)


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """T² · KL(p_T ‖ q_T), averaged over the rows: p_T and q_T are the teacher's and the
    student's distributions at temperature T, ``(N, V)`` logits each. The factor T² keeps the
    gradient's size roughly independent of T (softening divides it by about T²)."""
    log_p = F.log_softmax(teacher_logits / temperature, dim=-1)
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()
    return temperature**2 * kl


@dataclass
class DistillationOutput:
    loss: Tensor
    soft: Tensor | None  # T² · KL at the selected positions (None when α = 0)
    hard: Tensor  # cross-entropy with the hidden tokens


class DistillationObjective(nn.Module):
    """The student, scored against the teacher: ``α · soft + (1 − α) · hard``. Only the student
    is a submodule (trained, switched between modes); the teacher is run without gradients."""

    def __init__(self, student: Bert, teacher: nn.Module, temperature: float, alpha: float):
        super().__init__()
        self.student = student
        self._teacher = (teacher,)  # a tuple: not registered, never trained or switched
        self.temperature, self.alpha = temperature, alpha

    def forward(self, idx: Tensor, attention_mask: Tensor, labels: Tensor) -> DistillationOutput:
        logits = self.student(idx, attention_mask=attention_mask).logits  # (B, T, V)
        selected = labels != IGNORE_INDEX  # (B, T)
        if not selected.any():  # nothing was masked in this batch: nothing to learn from it
            zero = logits.sum() * 0.0
            return DistillationOutput(zero, None, zero)
        hard = F.cross_entropy(logits[selected], labels[selected])
        if self.alpha == 0:
            return DistillationOutput(hard, None, hard)
        with torch.no_grad():
            teacher_logits = self._teacher[0](idx, attention_mask=attention_mask).logits
        soft = distillation_loss(logits[selected], teacher_logits[selected], self.temperature)
        return DistillationOutput(self.alpha * soft + (1 - self.alpha) * hard, soft, hard)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def held_out_sentences(n: int) -> list[str]:
    """The zoo's held-out stories sentences (seed ``HELD_OUT_SEED``), the first ``n``."""
    rng = random.Random(HELD_OUT_SEED)
    return [stories.generate_sentence(rng).text for _ in range(n)]


def agreement_probes(n: int) -> list[stories.Sentence]:
    """The zoo's agreement probes: a noun of the other number between subject and verb."""
    return stories.agreement_examples(n, seed=AGREEMENT_SEED)


def training_sentences(n: int, seed: int, avoid: Sequence[str] = ()) -> list[str]:
    """``n`` generated sentences, half of them agreement sentences, none of them in ``avoid``."""
    rng = random.Random(seed + TRAIN_SEED_OFFSET)
    agreement = stories.agreement_examples(n // 2, seed=seed + TRAIN_SEED_OFFSET)
    sentences = [s.text for s in agreement]
    sentences += [stories.generate_sentence(rng).text for _ in range(n - len(sentences))]
    banned = set(avoid)
    kept = [s for s in sentences if s not in banned]
    rng.shuffle(kept)
    return kept


def _sequences(tokenizer, sentences: Sequence[str], block_size: int) -> list[list[int]]:
    return [bert_wrap(tokenizer, tokenizer.encode(s), block_size) for s in sentences]


@dataclass(frozen=True)
class MaskedSentence:
    input_ids: list[int]
    labels: list[int]  # the hidden token at selected positions, IGNORE_INDEX elsewhere


def masked_held_out(tokenizer, n: int, block_size: int) -> list[MaskedSentence]:
    """The held-out sentences masked the BERT way, one at a time with one seeded generator, as
    ``zoo.masked_accuracy`` does (sentences where nothing was selected are left out)."""
    generator = torch.Generator().manual_seed(HELD_OUT_SEED)
    found = []
    for seq in _sequences(tokenizer, held_out_sentences(n), block_size):
        masked = mask_tokens(
            torch.tensor([seq]),
            tokenizer.mask_id,
            tokenizer.vocab_size,
            SPECIAL_IDS,
            MaskingRates(),
            generator,
        )
        if (masked.labels != IGNORE_INDEX).any():
            found.append(MaskedSentence(masked.input_ids[0].tolist(), masked.labels[0].tolist()))
    return found


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


@dataclass
class ModelScores:
    name: str
    parameters: int
    layers: int
    masked_accuracy: float  # top-1 at the selected positions of the held-out sentences
    agreement_accuracy: float  # main verb predicted in the subject's number
    teacher_agreement: float  # top-1 equals the teacher's top-1 at the selected positions
    sentence_seconds: list[float]  # one forward pass per held-out sentence

    @property
    def median_ms(self) -> float:
        return 1000 * statistics.median(self.sentence_seconds)


@torch.no_grad()
def verb_predictions(model: nn.Module, tokenizer, probes: Sequence[stories.Sentence]) -> list[str]:
    """The top token for each probe's main verb, replaced by one ``[MASK]`` (as
    ``zoo.masked_verb_predictions``), in batches."""
    rows, positions = [], []
    for probe in probes:
        words = probe.text.split()
        before = tokenizer.encode(" ".join(words[: probe.verb_index]))
        after = tokenizer.encode(" ".join(words[probe.verb_index + 1 :]))
        rows.append(bert_wrap(tokenizer, [*before, tokenizer.mask_id, *after]))
        positions.append(len(before) + 1)
    predictions = []
    for start in range(0, len(rows), 128):
        ids, mask = pad_batch(rows[start : start + 128], tokenizer.pad_id or 0)
        logits = model(ids, attention_mask=mask).logits  # (B, T, V)
        for row, position in enumerate(positions[start : start + 128]):
            predictions.append(tokenizer.id_to_token(int(logits[row, position].argmax())))
    return predictions


def agreement_accuracy(predictions: Sequence[str], probes: Sequence[stories.Sentence]) -> float:
    verbs = {stories.SINGULAR: stories.SINGULAR_VERBS, stories.PLURAL: stories.PLURAL_VERBS}
    right = [p in verbs[s.number] for p, s in zip(predictions, probes, strict=True)]
    return statistics.mean(right)


@torch.no_grad()
def timed_predictions(
    models: Mapping[str, nn.Module], held_out: Sequence[MaskedSentence]
) -> tuple[dict[str, list[Tensor]], dict[str, list[float]]]:
    """Each held-out sentence through each model alone, the models taking turns sentence by
    sentence (so other work on the machine slows them alike). Returns every model's top-1
    tokens at the selected positions and the wall time of every forward pass."""
    predictions: dict[str, list[Tensor]] = {name: [] for name in models}
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for sentence in held_out:
        ids = torch.tensor([sentence.input_ids])
        selected = torch.tensor(sentence.labels) != IGNORE_INDEX
        for name, model in models.items():
            start = time.perf_counter()
            logits = model(ids).logits[0]  # (T, V)
            seconds[name].append(time.perf_counter() - start)
            predictions[name].append(logits[selected].argmax(dim=-1))
    return predictions, seconds


def measure(
    models: Mapping[str, nn.Module], tokenizer, held_out: int, probes: int = 200
) -> list[ModelScores]:
    """Score every model (the first is the teacher) on the same held-out data."""
    teacher_name = next(iter(models))
    block_size = min(model.config.block_size for model in models.values())
    sentences = masked_held_out(tokenizer, held_out, block_size)
    labels = [torch.tensor(s.labels) for s in sentences]
    answers = torch.cat([row[row != IGNORE_INDEX] for row in labels])
    predictions, seconds = timed_predictions(models, sentences)
    examples = agreement_probes(probes)
    teacher_top = torch.cat(predictions[teacher_name])
    scores = []
    for name, model in models.items():
        top = torch.cat(predictions[name])
        verbs = verb_predictions(model, tokenizer, examples)
        scores.append(
            ModelScores(
                name=name,
                parameters=count_parameters(model),
                layers=model.config.n_layer,
                masked_accuracy=(top == answers).float().mean().item(),
                agreement_accuracy=agreement_accuracy(verbs, examples),
                teacher_agreement=(top == teacher_top).float().mean().item(),
                sentence_seconds=seconds[name],
            )
        )
    return scores


# ---------------------------------------------------------------------------------------------
# Training both students
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudentUpdate:
    """One logged step of one student's run."""

    student: str  # DISTILLED or ALONE
    progress: Progress


@dataclass
class DistillationResult:
    settings: DistillSettings
    scores: list[ModelScores]  # teacher, the student before training, distilled, alone
    students: dict[str, Bert]  # the trained students, by DISTILLED / ALONE
    histories: dict[str, list[Progress]] = field(default_factory=dict)
    stop_reason: str | None = None
    kept: tuple[int, ...] = ()


def train_settings(settings: DistillSettings) -> TrainSettings:
    return TrainSettings(
        max_steps=settings.steps,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        warmup_steps=min(20, settings.steps // 10),
        weight_decay=0.01,
        eval_interval=0,
        seed=settings.seed,
    )


def train_student(
    teacher: nn.Module,
    task: MaskedLMTask,
    settings: DistillSettings,
    alpha: float,
    label: str,
    report: Report | None = None,
    report_every: int = 5,
):
    """One student (a new model: ``teacher`` is only run) trained with weight ``alpha`` on the
    teacher's soft targets. Returns the student and the training state."""
    student = make_student(teacher, settings.init, settings.seed)
    objective = DistillationObjective(student, teacher, settings.temperature, alpha)

    def callback(progress: Progress) -> bool:
        if report is None or (progress.step % report_every and progress.val_loss is None):
            return True
        return report(StudentUpdate(label, progress)) is not False

    state = train(objective, task, train_settings(settings), callback=callback, log_interval=1)
    return student.eval(), state


def make_task(teacher: nn.Module, tokenizer, settings: DistillSettings) -> MaskedLMTask:
    avoid = held_out_sentences(settings.held_out)
    sentences = training_sentences(settings.train_sentences, settings.seed, avoid)
    sequences = _sequences(tokenizer, sentences, teacher.config.block_size)
    return MaskedLMTask(sequences, tokenizer, val_fraction=0.05)


def run_students(
    teacher: nn.Module, tokenizer, settings: DistillSettings, report: Report | None = None
) -> DistillationResult:
    """Distil ``teacher`` into a student, train the same student alone (α = 0) with the same
    seed, steps and batches, and measure all three. Stops early if ``report`` returns False."""
    check_teacher(teacher)
    task = make_task(teacher, tokenizer, settings)
    students, histories, stop_reason = {}, {}, None
    for label, alpha in ((DISTILLED, settings.alpha), (ALONE, 0.0)):
        student, state = train_student(teacher, task, settings, alpha, label, report)
        students[label], histories[label] = student, state.history
        if state.stop_reason is not None:
            stop_reason = state.stop_reason
            break
    models = {TEACHER: teacher, UNTRAINED: make_student(teacher, settings.init, settings.seed)}
    models |= {STUDENT_NAMES[k]: m for k, m in students.items()}
    scores = measure(models, tokenizer, settings.held_out)
    kept = kept_layers(teacher.config.n_layer)
    return DistillationResult(settings, scores, students, histories, stop_reason, kept)


def histories_of(updates: Sequence[object]) -> dict[str, list[Progress]]:
    """A job's ``StudentUpdate``s sorted by student."""
    found: dict[str, list[Progress]] = {}
    for update in updates:
        if isinstance(update, StudentUpdate):
            found.setdefault(update.student, []).append(update.progress)
    return found


# ---------------------------------------------------------------------------------------------
# A masked word's distributions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaskedWord:
    ids: list[int]
    position: int
    tokens: list[str]  # the model input, as shown
    typed: bool  # the student typed [MASK]; else the page chose the last verb (or middle word)
    answer: str | None  # the token that was there, when the page masked it


def masked_word(tokenizer, text: str, block_size: int) -> MaskedWord:
    """The model input for ``text`` and the position to guess: the first typed ``[MASK]``, or
    else the last verb (or the middle token), replaced by ``[MASK]``."""
    ids = read_typed_text(tokenizer, "bert", text, block_size).ids
    typed = [i for i, t in enumerate(ids) if t == tokenizer.mask_id]
    ordinary = [i for i, t in enumerate(ids) if t not in SPECIAL_IDS]
    if typed:
        position, answer = typed[0], None
    elif ordinary:
        shown = tokenizer.display_tokens(ids)
        verbs = [i for i in ordinary if shown[i] in stories.SINGULAR_VERBS | stories.PLURAL_VERBS]
        position = verbs[-1] if verbs else ordinary[len(ordinary) // 2]
        answer = shown[position]
        ids = [tokenizer.mask_id if i == position else t for i, t in enumerate(ids)]
    else:
        raise ValueError(_("the sentence holds no word to mask: type a sentence, or [MASK] in one"))
    return MaskedWord(ids, position, tokenizer.display_tokens(ids), bool(typed), answer)


@dataclass(frozen=True)
class Distributions:
    """Each model's probabilities for the masked word over ``tokens`` (the teacher's top at
    T = 1), at T = 1 and at the chosen temperature, plus each model's own top token."""

    tokens: list[str]
    temperature: float
    at_one: dict[str, list[float]]
    at_t: dict[str, list[float]]
    top: dict[str, str]  # each model's most likely token at the masked position
    top_probability: dict[str, tuple[float, float]]  # its probability at T = 1 and at T


@torch.no_grad()
def distributions(
    models: Mapping[str, nn.Module], tokenizer, word: MaskedWord, temperature: float, k: int = TOP_K
) -> Distributions:
    """The masked word's distributions; the first model (the teacher) chooses the tokens."""
    _check_number(temperature, "the temperature", MIN_TEMPERATURE, MAX_TEMPERATURE, False)
    ids = torch.tensor([word.ids])
    logits = {name: m(ids).logits[0, word.position] for name, m in models.items()}  # (V,)
    first = next(iter(logits.values()))
    chosen = first.topk(min(k, first.numel())).indices
    at_one, at_t, top, top_probability = {}, {}, {}, {}
    for name, z in logits.items():
        p1, pt = soften(z, 1.0), soften(z, temperature)
        at_one[name], at_t[name] = p1[chosen].tolist(), pt[chosen].tolist()
        best = int(z.argmax())
        top[name] = tokenizer.display_tokens([best])[0]
        top_probability[name] = (float(p1[best]), float(pt[best]))
    shown = tokenizer.display_tokens(chosen.tolist())
    return Distributions(shown, temperature, at_one, at_t, top, top_probability)


# ---------------------------------------------------------------------------------------------
# Predict, then see
# ---------------------------------------------------------------------------------------------

UP, DOWN, SAME = N_("up"), N_("down"), N_("stays the same")
OTHER_WORD = N_("a word not in this list")


def predict_top_probability(loaded, word: MaskedWord, settings: DistillSettings) -> Prediction:
    """Whether the teacher's top probability for the masked word rises or falls at T."""
    temperature = settings.temperature

    def reveal() -> Reveal:
        found = distributions({TEACHER: loaded.model}, loaded.tokenizer, word, temperature, 1)
        at_one, at_t = found.top_probability[TEACHER]
        answer = UP if at_t > at_one + 1e-9 else DOWN if at_t < at_one - 1e-9 else SAME
        values = {"at_one": f"{at_one:.3f}", "at_t": f"{at_t:.3f}", "token": found.top[TEACHER]}
        return Reveal(answer, values)

    values = {"temperature": f"{temperature:g}", "sentence": " ".join(word.tokens)}
    return Prediction(values, reveal, (UP, DOWN, SAME))


def predict_student_size(loaded) -> Prediction:
    """How many parameters the student built from every other layer has."""
    teacher = loaded.model
    check_teacher(teacher)
    layers = kept_layers(teacher.config.n_layer)

    def reveal() -> Reveal:
        student = make_student(teacher)
        block = count_parameters(teacher.h[0])
        rest = count_parameters(teacher) - teacher.config.n_layer * block
        values = {"block": block, "rest": rest, "layers": len(layers)}
        return Reveal(count_parameters(student), values)

    values = {
        "teacher": loaded.name,
        "teacher_parameters": count_parameters(teacher),
        "teacher_layers": teacher.config.n_layer,
        "student_layers": len(layers),
    }
    return Prediction(values, reveal, bounds=(0, 100_000_000))


WHICH_STUDENT = {
    DISTILLED: N_("the distilled student you trained"),
    UNTRAINED: N_("the student before any training"),
}


def predict_student_top(loaded, word: MaskedWord, students: Mapping[str, nn.Module]) -> Prediction:
    """Which token a student puts first for the masked word, among the teacher's top five: the
    distilled student once a run has finished, else the student before training."""
    name = DISTILLED if DISTILLED in students else UNTRAINED
    if name not in students:
        raise ValueError(_("there is no student to ask yet"))
    student = students[name]
    found = distributions({TEACHER: loaded.model}, loaded.tokenizer, word, 1.0, 5)
    choices = (*dict.fromkeys(found.tokens), OTHER_WORD)

    def reveal() -> Reveal:
        models = {TEACHER: loaded.model, name: student}
        both = distributions(models, loaded.tokenizer, word, 1.0, 5)
        top = both.top[name]
        values = {
            "top": top,
            "probability": f"{both.top_probability[name][0]:.3f}",
            "teacher_top": both.top[TEACHER],
        }
        return Reveal(top if top in choices else OTHER_WORD, values)

    values = {"student": _(WHICH_STUDENT[name]), "sentence": " ".join(word.tokens)}
    return Prediction(values, reveal, choices)


def lesson_values(loaded) -> dict[str, object]:
    """The placeholders of the lesson's "setup" section, for a student of ``loaded``."""
    teacher = loaded.model
    layers = kept_layers(teacher.config.n_layer)
    return {
        "teacher": loaded.name,
        "teacher_layers": teacher.config.n_layer,
        "student_layers": len(layers),
        "kept": ", ".join(str(i) for i in layers),
        "teacher_parameters": count_parameters(teacher),
    }
