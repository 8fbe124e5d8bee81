"""The shipped model zoo: how each model in ``models/`` is built, and how its quality is measured.

``build_all`` trains every model from data this project generates (fixed seeds) and writes
``models/<name>/`` with config, weights, tokenizer and a model card recording data, size, steps,
wall time, versions and measured metrics. ``check_all`` reloads every shipped model, measures
the metrics again and compares them with the ones recorded at build time.
"""

from __future__ import annotations

import platform
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from tinyformers.hub.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from tinyformers.hub.registry import MODELS_DIR
from tinyformers.model.build import build_model, count_parameters
from tinyformers.model.config import BertConfig, GPTConfig, Seq2SeqConfig
from tinyformers.model.sampling import SamplingSettings, generate
from tinyformers.text.corpora import stories, tasks
from tinyformers.text.inputs import SPECIAL_IDS, bert_wrap, word_token_spans
from tinyformers.text.masking import IGNORE_INDEX, MaskingRates, mask_tokens
from tinyformers.text.tokenizers import Tokenizer, train_bpe, train_char, train_wordpiece
from tinyformers.training.loop import (
    CausalLMTask,
    MaskedLMTask,
    Seq2SeqTask,
    TrainSettings,
    evaluate,
    train,
)

TOLERANCE = 0.02  # a re-measured metric may be at most 2% worse than its card

# What each metric must reach, and whether larger is better.
QUALITY_BARS: dict[str, dict[str, float]] = {
    "gpt-stories": {"grammatical_rate": 0.90},
    "bert-stories": {"verb_number_accuracy": 0.95},
    "seq2seq-date": {"exact_match": 0.98},
    "gpt-char": {},
}
LOWER_IS_BETTER = {"val_loss"}


@dataclass
class Built:
    model: torch.nn.Module
    tokenizer: Tokenizer
    data: str  # one line describing the training data
    settings: TrainSettings
    steps: int


@dataclass(frozen=True)
class ZooModel:
    name: str
    summary: str
    build: Callable[[], Built]
    measure: Callable[[Checkpoint], dict[str, float]]


# ---------------------------------------------------------------------------------------------
# gpt-stories: GPT on the stories language, BPE tokenizer
# ---------------------------------------------------------------------------------------------

STORIES_SEED = 0
AGREEMENT_PROBES, AGREEMENT_SEED = 400, 987  # held-out agreement sentences for measuring
STORIES_COUNT = 12_000


def stories_text() -> str:
    return stories.generate_corpus(STORIES_COUNT, seed=STORIES_SEED)


def build_gpt(text: str, tokenizer: Tokenizer, n_layer: int, data: str) -> Built:
    """A GPT (4 heads, width 128, context 64) trained on ``text`` for 1500 steps."""
    ids = torch.tensor(tokenizer.encode(text))
    config = GPTConfig(
        vocab_size=tokenizer.vocab_size, block_size=64, n_layer=n_layer, n_head=4, n_embd=128
    )
    torch.manual_seed(0)
    model = build_model(config)
    settings = TrainSettings(
        max_steps=1500,
        batch_size=32,
        learning_rate=2e-3,
        warmup_steps=100,
        eval_interval=500,
        seed=0,
        fused_optimizer=False,  # the kernel the shipped weights were trained with
    )
    state = train(model, CausalLMTask(ids, config.block_size), settings)
    return Built(model, tokenizer, f"{data}, {len(ids)} tokens", settings, state.step)


def build_gpt_stories() -> Built:
    text = stories_text()
    data = f"{STORIES_COUNT} generated stories (seed {STORIES_SEED}), BPE"
    return build_gpt(text, train_bpe(text, vocab_size=768), n_layer=3, data=data)


def sample_sentences(
    model, tokenizer: Tokenizer, n: int, temperature: float = 0.8, seed: int = 0
) -> list[str]:
    """``n`` complete sentences sampled from the start of fresh stories."""
    newline = tokenizer.encode("\n")
    settings = SamplingSettings(temperature=temperature)
    sentences: list[str] = []
    attempt = 0
    while len(sentences) < n:
        new = generate(
            model,
            newline,
            max_new_tokens=model.config.block_size - 1,
            settings=settings,
            seed=seed + attempt,
        )
        text = tokenizer.decode(new).split("\n")[0]
        complete = [s for s in stories.split_sentences(text) if s.endswith(".")]
        sentences.extend(complete)
        attempt += 1
    return sentences[:n]


def sample_text(checkpoint: Checkpoint, seed: int = 0) -> str:
    """A continuation of a fresh story start, as the model card shows it."""
    tok, model = checkpoint.tokenizer, checkpoint.model
    new = generate(
        model, tok.encode("\n"), 3 * model.config.block_size, SamplingSettings(0.8), seed=seed
    )
    return tok.decode(new).strip()


def measure_gpt_stories(checkpoint: Checkpoint) -> dict[str, float]:
    sentences = sample_sentences(checkpoint.model, checkpoint.tokenizer, 200)
    ok = sum(stories.is_grammatical(s) for s in sentences)
    return {
        "grammatical_rate": ok / len(sentences),
        "val_loss": gpt_val_loss(checkpoint, stories_text()),
    }


def gpt_val_loss(checkpoint: Checkpoint, text: str) -> float:
    ids = torch.tensor(checkpoint.tokenizer.encode(text))
    return evaluate(checkpoint.model, CausalLMTask(ids, checkpoint.config.block_size))


# ---------------------------------------------------------------------------------------------
# bert-stories: BERT with masked-LM on the same language, WordPiece tokenizer
# ---------------------------------------------------------------------------------------------


def bert_sequences(tokenizer: Tokenizer, sentences: list[str]) -> list[list[int]]:
    return [bert_wrap(tokenizer, tokenizer.encode(s)) for s in sentences]


AGREEMENT_TRAINING_SENTENCES = 20_000


def bert_training_sentences(text: str) -> list[str]:
    """The corpus's sentences plus generated agreement sentences (subject, attractor, verb).

    Masked-LM spreads its signal thinly: with only the stories' own mix, a small BERT learns
    that a verb is missing long after it learns words. Extra sentences from the same grammar,
    with a different seed from the held-out probe set, teach the structure sooner.
    """
    sentences = stories.split_sentences(text.replace("\n", " "))
    extra = [s.text for s in stories.agreement_examples(AGREEMENT_TRAINING_SENTENCES, seed=1)]
    held_out = {s.text for s in stories.agreement_examples(AGREEMENT_PROBES, seed=AGREEMENT_SEED)}
    mixed = [s for s in sentences + extra if s not in held_out]
    random.Random(0).shuffle(mixed)
    return mixed


def build_bert_stories() -> Built:
    text = stories_text()
    tokenizer = train_wordpiece(text, vocab_size=768)
    sentences = bert_training_sentences(text)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, block_size=48, n_layer=3, n_head=4, n_embd=128
    )
    torch.manual_seed(0)
    model = build_model(config)
    task = MaskedLMTask(bert_sequences(tokenizer, sentences), tokenizer)
    settings = TrainSettings(
        max_steps=3000,
        batch_size=64,
        learning_rate=1e-3,
        warmup_steps=200,
        eval_interval=1000,
        seed=0,
        fused_optimizer=False,  # the kernel the shipped weights were trained with
    )
    state = train(model, task, settings)
    return Built(
        model,
        tokenizer,
        f"{len(sentences)} sentences: those of {STORIES_COUNT} generated stories (seed "
        f"{STORIES_SEED}) and {AGREEMENT_TRAINING_SENTENCES} generated agreement sentences (seed 1)",
        settings,
        state.step,
    )


def masked_verb_predictions(checkpoint: Checkpoint, examples: list[stories.Sentence]) -> list[str]:
    """The top prediction for each example's main verb when that verb is replaced by [MASK]."""
    tok, model = checkpoint.tokenizer, checkpoint.model
    predictions = []
    for example in examples:
        words = example.text.split()
        before = " ".join(words[: example.verb_index])
        after = " ".join(words[example.verb_index + 1 :])
        ids = bert_wrap(tok, [*tok.encode(before), tok.mask_id, *tok.encode(after)])
        position = ids.index(tok.mask_id)
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, position]
        predictions.append(tok.id_to_token(int(logits.argmax())))
    return predictions


def measure_bert_stories(checkpoint: Checkpoint) -> dict[str, float]:
    examples = stories.agreement_examples(AGREEMENT_PROBES, seed=AGREEMENT_SEED)
    predictions = masked_verb_predictions(checkpoint, examples)
    verbs = {"sg": stories.SINGULAR_VERBS, "pl": stories.PLURAL_VERBS}
    right = sum(p in verbs[e.number] for p, e in zip(predictions, examples, strict=True))
    return {
        "verb_number_accuracy": right / len(examples),
        "masked_top1_accuracy": masked_accuracy(checkpoint),
    }


def masked_accuracy(checkpoint: Checkpoint, n: int = 500, seed: int = 4321) -> float:
    """Top-1 accuracy on the selected positions of held-out sentences, masked the BERT way."""
    rng = random.Random(seed)
    sentences = [stories.generate_sentence(rng).text for _ in range(n)]
    tok = checkpoint.tokenizer
    right = total = 0
    generator = torch.Generator().manual_seed(seed)
    for seq in bert_sequences(tok, sentences):
        ids = torch.tensor([seq])
        masked = mask_tokens(
            ids, tok.mask_id, tok.vocab_size, SPECIAL_IDS, MaskingRates(), generator
        )
        selected = masked.labels != IGNORE_INDEX
        if not selected.any():
            continue
        with torch.no_grad():
            predicted = checkpoint.model(masked.input_ids).logits.argmax(-1)
        right += int((predicted[selected] == masked.labels[selected]).sum())
        total += int(selected.sum())
    return right / total


# ---------------------------------------------------------------------------------------------
# seq2seq-date: encoder-decoder on date reformatting, character tokenizer
# ---------------------------------------------------------------------------------------------

DATE_TRAIN, DATE_TEST = 20_000, 500


def date_splits():
    return tasks.train_test_split("date", DATE_TRAIN, DATE_TEST, seed=0)


def date_tokenizer() -> Tokenizer:
    alphabet = "".join(sorted({c for src, tgt in date_splits()[0] for c in src + tgt}))
    return train_char(alphabet)


def build_seq2seq_date() -> Built:
    train_pairs, _ = date_splits()
    tokenizer = date_tokenizer()
    pairs = [(tokenizer.encode(s), tokenizer.encode(t)) for s, t in train_pairs]
    config = Seq2SeqConfig(
        vocab_size=tokenizer.vocab_size,
        block_size=24,
        n_layer=2,
        n_decoder_layer=2,
        n_head=4,
        n_embd=96,
    )
    torch.manual_seed(0)
    model = build_model(config)
    task = Seq2SeqTask(
        pairs, tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id, val_fraction=0.05
    )
    settings = TrainSettings(
        max_steps=2000,
        batch_size=64,
        learning_rate=2e-3,
        warmup_steps=100,
        eval_interval=500,
        seed=0,
        fused_optimizer=False,  # the kernel the shipped weights were trained with
    )
    state = train(model, task, settings)
    return Built(
        model,
        tokenizer,
        f"{DATE_TRAIN} generated date pairs like '12 March 2021' -> '2021-03-12'",
        settings,
        state.step,
    )


def translate(checkpoint: Checkpoint, source: str) -> str:
    tok = checkpoint.tokenizer
    src = torch.tensor([tok.encode(source)])
    out = checkpoint.model.generate_greedy(src, tok.bos_id, tok.eos_id)
    return tok.decode(out[0].tolist())


def measure_seq2seq_date(checkpoint: Checkpoint) -> dict[str, float]:
    _, test = date_splits()
    right = sum(translate(checkpoint, src) == tgt for src, tgt in test)
    return {"exact_match": right / len(test)}


# ---------------------------------------------------------------------------------------------
# gpt-char: a small character-level GPT (the starting point students fine-tune or retrain)
# ---------------------------------------------------------------------------------------------


CHAR_STORIES_COUNT = 4_000


def char_text() -> str:
    return stories.generate_corpus(CHAR_STORIES_COUNT, seed=STORIES_SEED)


def build_gpt_char() -> Built:
    text = char_text()
    data = f"{CHAR_STORIES_COUNT} generated stories (seed {STORIES_SEED}), characters"
    return build_gpt(text, train_char(text), n_layer=4, data=data)


def measure_gpt_char(checkpoint: Checkpoint) -> dict[str, float]:
    return {"val_loss": gpt_val_loss(checkpoint, char_text())}


ZOO: dict[str, ZooModel] = {
    m.name: m
    for m in (
        ZooModel(
            "gpt-stories",
            "GPT on the generated stories language, byte-level BPE tokenizer.",
            build_gpt_stories,
            measure_gpt_stories,
        ),
        ZooModel(
            "bert-stories",
            "BERT trained with masked-LM on the stories language, WordPiece tokenizer.",
            build_bert_stories,
            measure_bert_stories,
        ),
        ZooModel(
            "seq2seq-date",
            "Encoder-decoder that rewrites dates such as '12 March 2021' as '2021-03-12'.",
            build_seq2seq_date,
            measure_seq2seq_date,
        ),
        ZooModel(
            "gpt-char",
            "Small character-level GPT on the stories language.",
            build_gpt_char,
            measure_gpt_char,
        ),
    )
}


# ---------------------------------------------------------------------------------------------
# Building, checking, model cards
# ---------------------------------------------------------------------------------------------


def build_one(name: str, models_dir: Path = MODELS_DIR) -> dict:
    spec = ZOO[name]
    start = time.perf_counter()
    built = spec.build()
    wall = time.perf_counter() - start
    out = models_dir / name
    save_checkpoint(built.model.eval(), out, built.tokenizer)
    checkpoint = load_checkpoint(out)
    metrics = spec.measure(checkpoint)
    metadata = {
        "name": name,
        "summary": spec.summary,
        "data": built.data,
        "parameters": count_parameters(built.model),
        "steps": built.steps,
        "batch_size": built.settings.batch_size,
        "learning_rate": built.settings.learning_rate,
        "seed": built.settings.seed,
        "train_wall_time_s": round(wall, 1),
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "metrics": metrics,
    }
    if name in SUBJECT_HEAD_MODELS:
        metadata["subject_head"] = best_subject_head(checkpoint)
    if checkpoint.config.family == "gpt":
        metadata["sample"] = sample_text(checkpoint)
    write_card(out, metadata)
    return metadata


def write_card(model_dir: Path, metadata: dict) -> None:
    """Store ``metadata`` in config.json and write the model card from it."""
    checkpoint = load_checkpoint(model_dir)
    checkpoint.metadata = metadata
    save_checkpoint(
        checkpoint.model,
        model_dir,
        checkpoint.tokenizer,
        card=model_card(metadata, checkpoint),
        metadata=metadata,
    )


def model_card(meta: dict, checkpoint: Checkpoint) -> str:
    lines = [
        f"# {meta['name']}",
        "",
        meta["summary"],
        "",
        "| | |",
        "| --- | --- |",
        f"| Training data | {meta['data']} |",
        f"| Parameters | {meta['parameters']:,} |",
        f"| Layers / heads / width | {checkpoint.config.n_layer} / {checkpoint.config.n_head} / {checkpoint.config.n_embd} |",
        f"| Context | {checkpoint.config.block_size} tokens |",
        f"| Tokenizer | {checkpoint.tokenizer.kind}, {checkpoint.tokenizer.vocab_size} tokens |",
        f"| Steps | {meta['steps']} (batch {meta['batch_size']}, learning rate {meta['learning_rate']:g}, seed {meta['seed']}) |",
        f"| Training wall time | {meta['train_wall_time_s']} s on {torch.get_num_threads()} CPU threads |",
        f"| Versions | Python {meta['versions']['python']}, PyTorch {meta['versions']['torch']} |",
        "",
        "## Measured quality",
        "",
        "Measured when the model was built; `tinyformers zoo check` measures again.",
        "",
        "| Metric | Value | Required |",
        "| --- | --- | --- |",
    ]
    bars = QUALITY_BARS.get(meta["name"], {})
    for metric, value in meta["metrics"].items():
        required = f"≥ {bars[metric]:.0%}" if metric in bars else "reported"
        lines.append(f"| {metric} | {value:.4f} | {required} |")
    if "sample" in meta:
        lines += [
            "",
            "## A sample",
            "",
            "Temperature 0.8, seed 0, starting a new story:",
            "",
            "```text",
            meta["sample"],
            "```",
        ]
    if "subject_head" in meta:
        lines += [
            "",
            "## Does a head link verbs to their subjects?",
            "",
            subject_head_text(meta["subject_head"]),
        ]
    return "\n".join(lines) + "\n"


def subject_head_text(found: dict) -> str:
    where = f"layer {found['subject_head_layer']}, head {found['subject_head']}"
    rate = f"{found['subject_head_rate']:.0%}"
    probe = (
        f"On {SUBJECT_HEAD_EXAMPLES} held-out agreement sentences (the verb separated from its subject by a "
        "noun of the other number), we looked at where each head's strongest attention goes from "
        f"the {'verb' if found.get('query') == 'verb' else 'position that predicts the verb'}."
    )
    if found["subject_head_rate"] > 0.5:
        return f"{probe} Yes: {where} links it to the subject noun on {rate} of them."
    return (
        f"{probe} No head does this on most sentences. The closest is {where}, which links it to "
        f"the subject noun on only {rate} of them."
    )


def compare(name: str, recorded: dict[str, float], measured: dict[str, float]) -> list[str]:
    """Problems: a metric more than 2% worse than recorded, or below its quality bar."""
    problems = []
    for metric, old in recorded.items():
        new = measured.get(metric)
        if new is None:
            problems.append(f"{name}: metric {metric} was not measured")
            continue
        worse = (
            new > old * (1 + TOLERANCE)
            if metric in LOWER_IS_BETTER
            else new < old - TOLERANCE * abs(old)
        )
        if worse:
            problems.append(f"{name}: {metric} is {new:.4f}, worse than the recorded {old:.4f}")
    for metric, bar in QUALITY_BARS.get(name, {}).items():
        if measured.get(metric, float("-inf")) < bar:
            problems.append(f"{name}: {metric} is {measured.get(metric)}, below the required {bar}")
    return problems


def check_one(name: str, models_dir: Path = MODELS_DIR) -> tuple[dict[str, float], list[str]]:
    checkpoint = load_checkpoint(models_dir / name)
    measured = ZOO[name].measure(checkpoint)
    return measured, compare(name, checkpoint.metadata.get("metrics", {}), measured)


# ---------------------------------------------------------------------------------------------
# Which head links a verb to its subject?
# ---------------------------------------------------------------------------------------------


SUBJECT_HEAD_MODELS = ("gpt-stories", "bert-stories")
SUBJECT_HEAD_EXAMPLES = 200


def subject_head_scores(
    checkpoint: Checkpoint, n: int = SUBJECT_HEAD_EXAMPLES, seed: int = AGREEMENT_SEED
) -> torch.Tensor:
    """(n_layer, n_head): on agreement sentences, the share where the strongest attention (over
    all other positions) lands on the subject noun, from the main verb (BERT) or from the
    position that predicts the main verb, the token before it (GPT, which cannot look ahead)."""
    from tinyformers.model.bert import Bert
    from tinyformers.trace import trace_text

    examples = stories.agreement_examples(n, seed=seed)
    is_bert = isinstance(checkpoint.model, Bert)
    config = checkpoint.model.config
    hits = torch.zeros(config.n_layer, config.n_head)
    for example in examples:
        words = example.text.split()
        spans = word_token_spans(checkpoint.tokenizer, words, offset=1 if is_bert else 0)
        verb = spans[example.verb_index][0] - (0 if is_bert else 1)
        subject = range(*spans[example.subject_index])
        trace = trace_text(checkpoint.model, checkpoint.tokenizer, example.text)
        for layer, weights in enumerate(trace.attentions):
            row = weights[0, :, verb].clone()  # (heads, keys)
            row[:, verb] = -1  # a link to itself does not count
            hits[layer] += torch.tensor([int(k) in subject for k in row.argmax(dim=-1)])
    return hits / len(examples)


def best_subject_head(checkpoint: Checkpoint) -> dict:
    scores = subject_head_scores(checkpoint)
    layer, head = divmod(int(scores.argmax()), scores.shape[1])
    return {
        "subject_head_layer": layer,
        "subject_head": head,
        "subject_head_rate": float(scores.max()),
        "query": "verb" if checkpoint.config.family == "bert" else "before-verb",
    }
