"""Each lesson's main live computation, run on its default model and input, and timed.

A ``LiveStep`` names what a lesson computes first when its page opens, on the model and the
input its page starts with, as two functions: ``prepare`` builds what the computation reads
(loading, copying and building are not timed) and ``run`` is the computation that is timed.
``measure`` times it with ``clock`` after one warm-up run and reports the median.

What is timed and the input are written in English and marked with ``N_``: the handout
translates them where it shows them (``plan/handout.py``). The figure of what the computation
gave is drawn inside the timing, which the page caches, so its words come in the language given.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from tinyformers.course import alignment as alignment_course
from tinyformers.course import attention as attention_course
from tinyformers.course import bert as bert_course
from tinyformers.course import contextual_embeddings as contextual_course
from tinyformers.course import distillation as distillation_course
from tinyformers.course import encoder_decoder as encoder_decoder_course
from tinyformers.course import fine_tuning as fine_tuning_course
from tinyformers.course import gpt as gpt_course
from tinyformers.course import masks as masks_course
from tinyformers.course import multi_head as multi_head_course
from tinyformers.course import positional_encoding as positions_course
from tinyformers.course import scaling as scaling_course
from tinyformers.course import task_heads as task_heads_course
from tinyformers.course import tokenization as tokenization_course
from tinyformers.course import train as train_course
from tinyformers.course import transformer_block as block_course
from tinyformers.course import variants as variants_course
from tinyformers.course import why_attention as why_attention_course
from tinyformers.hub.registry import LoadedModel
from tinyformers.i18n import DEFAULT_LANGUAGE, N_, translate
from tinyformers.model.build import build_model, count_parameters
from tinyformers.model.positional import cosine_similarity_matrix, sinusoidal_encoding
from tinyformers.model.sampling import SamplingSettings, next_token_distribution
from tinyformers.plan.svg import Picture
from tinyformers.text.corpora import generate_corpus
from tinyformers.text.inputs import model_input_ids

clock: Callable[[], float] = time.perf_counter  # what ``measure`` reads
MAX_REPEATS = 5
BUDGET_S = 0.5  # timed runs stop once they have taken this long together

Loader = Callable[[str], LoadedModel]

# The inputs the lesson pages start with: each lesson's own, from its course module.
BERT_PAIR = (bert_course.DEFAULT_A, bert_course.DEFAULT_B)


@dataclass(frozen=True)
class LiveStep:
    """A lesson's main live computation on the input its page starts with."""

    slug: str
    what: str  # what is timed, in a few words (marked with N_)
    model: str | None  # the shipped model it runs, if any
    input: str  # the input, as the page shows it: a template (marked with N_) of ``values``
    prepare: Callable[[LoadedModel | None], object]
    run: Callable[[object], object]
    # The template's values: numbers, or the model's text (a string or a tuple of strings)
    values: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Timing:
    """Measured seconds of a lesson's live computation: the median of ``runs`` timed runs."""

    slug: str
    seconds: float
    runs: int
    threads: int  # torch threads it ran on
    parameters: int | None  # of the model it ran, counted on that model
    picture: Picture | None = None  # what the computation gave, for the handout


def measure(
    run: Callable[[], object], repeats: int = MAX_REPEATS, budget_s: float = BUDGET_S
) -> tuple[float, int]:
    """Median seconds of ``run()`` after one untimed warm-up, and how many runs were timed:
    ``repeats`` runs, fewer once they have taken ``budget_s`` together (at least one)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    run()
    times: list[float] = []
    while len(times) < repeats and (not times or sum(times) < budget_s):
        start = clock()
        run()
        times.append(clock() - start)
    return statistics.median(times), len(times)


# ---------------------------------------------------------------------------------------------
# The computations, lesson by lesson
# ---------------------------------------------------------------------------------------------


def _loaded(loaded: LoadedModel | None) -> LoadedModel:
    if loaded is None:
        raise ValueError("this computation runs a shipped model; none was given")
    return loaded


def _tokenization(_: None) -> str:
    return generate_corpus(tokenization_course.STORIES, seed=0)


def _positions(loaded: LoadedModel):
    text = positions_course.DEFAULT_SENTENCE
    ids = model_input_ids(loaded.tokenizer, loaded.family, text, loaded.config.block_size)
    weights = loaded.model.wte.weight.detach(), loaded.model.wpe.weight.detach()
    inputs = weights[0][ids] + weights[1][: len(ids)]
    return cosine_similarity_matrix(inputs), cosine_similarity_matrix(
        sinusoidal_encoding(positions_course.LENGTH, positions_course.D_MODEL)
    )


def _attention(loaded: LoadedModel):
    model, tok = loaded.model, loaded.tokenizer
    text, limit = attention_course.DEFAULT_SENTENCE, attention_course.MAX_TOKENS
    trace = attention_course.trace_sentence(model, tok, text, limit)
    return attention_course.model_head(model, trace, 0, 0)


def _multi_head(loaded: LoadedModel):
    text = multi_head_course.DEFAULT_SENTENCE
    trace = multi_head_course.trace_sentence(loaded.model, loaded.tokenizer, text)
    anchor, _ = multi_head_course.anchor_of(loaded.family)
    return multi_head_course.head_statistics(trace.attentions, trace.tokens, anchor)


def _masks(loaded: LoadedModel):
    tok = loaded.tokenizer
    ids = masks_course.sentence_ids(tok, masks_course.DEFAULT_SENTENCE, masks_course.MAX_TOKENS)
    return masks_course.causal_view(loaded.model, ids, tok.display_tokens(ids), 0, 0)


def _block(loaded: LoadedModel):
    text, limit = block_course.DEFAULT_SENTENCE, block_course.MAX_SENTENCE_TOKENS
    ids, segments = block_course.model_inputs(loaded.model, loaded.tokenizer, text, limit)
    return block_course.inspect_ids(loaded.model, ids, segments)


def _bert(loaded: LoadedModel):
    return bert_course.embedding_breakdown(loaded.model, loaded.tokenizer, *BERT_PAIR)


def _contextual(loaded: LoadedModel):
    vectors = contextual_course.contextual_vectors(
        loaded.model,
        loaded.tokenizer,
        contextual_course.DEFAULT_WORD,
        contextual_course.DEFAULT_SENTENCES,
    )
    return contextual_course.pair_similarities(vectors.layers)


def _gpt(loaded: LoadedModel):
    ids = loaded.tokenizer.encode(gpt_course.DEFAULT_PROMPT)
    logits = gpt_course.next_token_logits(loaded.model, ids)
    return next_token_distribution(logits, SamplingSettings())


def _encoder_decoder(loaded: LoadedModel):
    return encoder_decoder_course.decode_with_trace(
        loaded.model, loaded.tokenizer, encoder_decoder_course.held_out_sources(1)[0]
    )


def _train_prepare(_: None):
    """The model the training page builds by default, and one batch of its size."""
    choice = train_course.default_choice()
    torch.manual_seed(0)
    model = build_model(choice.config).train()
    shape = (choice.spec.settings.batch_size, choice.config.block_size)
    ids = torch.randint(choice.config.vocab_size, shape)
    return model, ids


def _train_step(state) -> float:
    """Forward and backward pass of one training batch."""
    model, ids = state
    with torch.enable_grad():
        loss = model(ids[:, :-1], targets=ids[:, 1:]).loss
        loss.backward()
    model.zero_grad(set_to_none=True)
    return float(loss.detach())


def _fine_tuning_prepare(loaded: LoadedModel):
    """A LoRA classifier on a copy of the model (the page's default method) and one batch."""
    settings = fine_tuning_course.MethodSettings()
    classifier = fine_tuning_course.prepare(loaded.model, settings).train()
    data = fine_tuning_course.make_task(settings.batch_size, 20)
    task = fine_tuning_course.ClassificationTask(loaded.model, loaded.tokenizer, data)
    batch = task.batch(settings.batch_size, torch.Generator().manual_seed(0))
    return classifier, batch


def _fine_tuning_step(state) -> float:
    classifier, batch = state
    with torch.enable_grad():
        loss = classifier(**batch).loss
        loss.backward()
    classifier.zero_grad(set_to_none=True)
    return float(loss.detach())


def _distillation_prepare(loaded: LoadedModel):
    """The page's default student (every other teacher layer) scored against the teacher with
    the default temperature and α, and one batch of the training sentences."""
    settings = distillation_course.DistillSettings(train_sentences=200)
    student = distillation_course.make_student(loaded.model).train()
    objective = distillation_course.DistillationObjective(
        student, loaded.model, settings.temperature, settings.alpha
    )
    task = distillation_course.make_task(loaded.model, loaded.tokenizer, settings)
    return objective, task.batch(settings.batch_size, torch.Generator().manual_seed(0))


def _distillation_step(state) -> float:
    objective, batch = state
    with torch.enable_grad():
        loss = objective(**batch).loss
        loss.backward()
    objective.zero_grad(set_to_none=True)
    return float(loss.detach())


def _task_heads_prepare(loaded: LoadedModel):
    """The pair head on a fully trainable copy of the page's encoder, and one batch of the
    pair task."""
    settings = task_heads_course.HeadSettings()
    task_model = task_heads_course.build(loaded.model, "pair", settings.method("full")).train()
    data = task_heads_course.make_examples("pair", 64, 20, settings.seed)
    task = task_heads_course.HeadTask(loaded.tokenizer, data, loaded.config.block_size)
    return task_model, task.batch(settings.batch_size, torch.Generator().manual_seed(0))


def _alignment_prepare(loaded: LoadedModel):
    """A copy of the shipped model as the DPO policy, the shipped model as its reference, and
    one pair for every topic: the default answer against the same answer with a flipped verb."""
    policy = copy.deepcopy(loaded.model).train()
    tokenizer = loaded.tokenizer
    chosen = alignment_course.answer_ids(tokenizer, alignment_course.DEFAULT_SENTENCE)
    flipped = alignment_course.flipped(alignment_course.DEFAULT_SENTENCE)
    rejected = alignment_course.answer_ids(tokenizer, flipped)
    pairs = [
        alignment_course.Pair(topic, tuple(chosen), tuple(rejected))
        for topic in alignment_course.TOPICS
    ]
    return policy, loaded.model, tokenizer, pairs


def _alignment_step(state) -> float:
    policy, reference, tokenizer, pairs = state
    beta = alignment_course.AlignSettings().beta
    with torch.enable_grad():
        loss = alignment_course.pair_dpo_loss(policy, reference, tokenizer, pairs, beta)
        loss.backward()
    policy.zero_grad(set_to_none=True)
    return float(loss.detach())


def _scaling_prepare(_: None):
    """One attention layer of the cost measurement's default width, and its longest input."""
    settings = scaling_course.CostSettings()
    attention, _ = scaling_course.build_layers(settings)
    return attention, torch.randn(1, settings.max_length, settings.n_embd)


def _scaling(state):
    attention, x = state
    return attention(x, need_weights=True)[0]


def _variants_prepare(_: None):
    """The learned-positions variant as its run builds it, and one batch of the stories."""
    tokenizer, task = variants_course.stories_task()
    variant = variants_course.variant(variants_course.LEARNED)
    torch.manual_seed(0)
    model = build_model(variants_course.config_of(variant, tokenizer.vocab_size)).train()
    return model, task.batch(16, torch.Generator().manual_seed(0))


def _variants_step(state) -> float:
    model, batch = state
    with torch.enable_grad():
        loss = model(**batch).loss
        loss.backward()
    model.zero_grad(set_to_none=True)
    return float(loss.detach())


def _why_attention_prepare(_: None):
    """The GRU with attention as a run builds it (the default settings), and one batch of the
    reversing task."""
    settings = why_attention_course.WhySettings()
    tokenizer = why_attention_course.task_tokenizer(settings.task)
    pairs, _ = why_attention_course.task_pairs(settings.task, 200, 20)
    task = why_attention_course.make_task(tokenizer, pairs)
    model = why_attention_course.build(
        why_attention_course.ATTENTION, tokenizer.vocab_size, settings.n_hidden, settings.seed
    ).train()
    return model, task.batch(settings.batch_size, torch.Generator().manual_seed(0))


def _why_attention_step(state) -> float:
    model, batch = state
    with torch.enable_grad():
        loss = model(**batch).loss
        loss.backward()
    model.zero_grad(set_to_none=True)
    return float(loss.detach())


def _same(state):
    return state


def _run(function: Callable[[LoadedModel], object]) -> Callable[[LoadedModel | None], object]:
    """A ``run`` that calls ``function`` on the loaded model, without gradients."""

    def run(loaded: LoadedModel | None) -> object:
        with torch.no_grad():
            return function(_loaded(loaded))

    return run


def _model_step(slug: str, what: str, model: str, text, function) -> LiveStep:
    """A computation of a shipped model on ``text``, the sentence (or sentences) its page
    starts with."""
    return LiveStep(slug, what, model, "{text}", _same, _run(function), {"text": text})


_ENCODER_DECODER = LiveStep(
    "encoder-decoder",
    N_("greedy decoding step by step, with the cross-attention of every step and the trace"),
    encoder_decoder_course.DATE_MODEL,
    N_("the first held-out date"),
    _same,
    _run(_encoder_decoder),
)

LIVE_STEPS: dict[str, LiveStep] = {
    step.slug: step
    for step in (
        LiveStep(
            "tokenization",
            N_("training byte-level BPE and replaying every merge"),
            None,
            N_("{stories} generated stories, vocabulary of {vocab}"),
            _tokenization,
            lambda text: tokenization_course.train_and_replay(
                text, tokenization_course.DEFAULT_VOCAB
            ),
            {"stories": tokenization_course.STORIES, "vocab": tokenization_course.DEFAULT_VOCAB},
        ),
        _model_step(
            "positional-encoding",
            N_("token + position vectors and the similarity matrices"),
            positions_course.DEFAULT_MODEL,
            positions_course.DEFAULT_SENTENCE,
            _positions,
        ),
        LiveStep(
            "contextual-embeddings",
            N_("a forward pass per sentence with its run record, the word's similarity per layer"),
            contextual_course.DEFAULT_MODEL,
            N_("'{word}' in: {sentences}"),
            _same,
            _run(_contextual),
            {
                "word": contextual_course.DEFAULT_WORD,
                "sentences": contextual_course.DEFAULT_SENTENCES,
            },
        ),
        _model_step(
            "attention",
            N_("a forward pass with its run record, then layer 0, head 0 step by step"),
            attention_course.DEFAULT_MODEL,
            attention_course.DEFAULT_SENTENCE,
            _attention,
        ),
        _model_step(
            "multi-head",
            N_("a forward pass and the statistics of every head"),
            multi_head_course.DEFAULT_MODEL,
            multi_head_course.DEFAULT_SENTENCE,
            _multi_head,
        ),
        _model_step(
            "masks",
            N_("a forward pass and the causal mask's scores and weights"),
            masks_course.DEFAULT_MODEL,
            masks_course.DEFAULT_SENTENCE,
            _masks,
        ),
        _model_step(
            "transformer-block",
            N_("a forward pass with its run record, every block walked step by step"),
            block_course.DEFAULT_MODEL,
            block_course.DEFAULT_SENTENCE,
            _block,
        ),
        _model_step(
            "bert",
            N_("BERT's input embeddings for a sentence pair"),
            bert_course.MODEL,
            BERT_PAIR,
            _bert,
        ),
        _model_step(
            "gpt",
            N_("a forward pass and the next-token distribution"),
            gpt_course.DEFAULT_MODEL,
            gpt_course.DEFAULT_PROMPT,
            _gpt,
        ),
        _ENCODER_DECODER,
        LiveStep(
            "train",
            N_("one training step (forward and backward) of the default model"),
            None,
            N_("the default settings: a micro GPT, one batch"),
            _train_prepare,
            _train_step,
        ),
        LiveStep(
            "fine-tuning",
            N_("one LoRA fine-tuning step (forward and backward) on a batch of the task"),
            fine_tuning_course.BASE_MODELS[0],
            N_("a batch of the grammatical-or-not task"),
            _fine_tuning_prepare,
            _fine_tuning_step,
        ),
        LiveStep(
            "task-heads",
            N_("one full fine-tuning step (forward and backward) of the sentence-pair head"),
            task_heads_course.MODEL,
            N_("a batch of the sentence-pair task"),
            _task_heads_prepare,
            _fine_tuning_step,
        ),
        LiveStep(
            "distillation",
            N_(
                "one distillation step: the teacher's and the student's forward pass, the "
                "student's backward pass"
            ),
            distillation_course.TEACHER,
            N_("a batch of stories sentences, masked the BERT way"),
            _distillation_prepare,
            _distillation_step,
        ),
        LiveStep(
            "alignment",
            N_(
                "one DPO step: the policy's and the reference's forward pass, the policy's "
                "backward pass"
            ),
            alignment_course.BASE,
            N_("a preference pair for each topic: the default answer against its verb flipped"),
            _alignment_prepare,
            _alignment_step,
        ),
        LiveStep(
            "scaling",
            N_("one attention layer (with weights) on the longest default sequence"),
            None,
            N_("{n} random vectors"),
            _scaling_prepare,
            _scaling,
            {"n": scaling_course.CostSettings().max_length},
        ),
        LiveStep(
            "why-attention",
            N_(
                "one training step (forward and backward) of the GRU encoder-decoder with attention"
            ),
            None,
            N_("a batch of the reversing task"),
            _why_attention_prepare,
            _why_attention_step,
        ),
        LiveStep(
            "variants",
            N_("one training step (forward and backward) of the learned-positions variant"),
            None,
            N_("a batch of the stories, one character per token"),
            _variants_prepare,
            _variants_step,
        ),
    )
}


# ---------------------------------------------------------------------------------------------
# What each computation gave, drawn for the handout
# ---------------------------------------------------------------------------------------------

TOP_TOKENS = 10


def _matrix(tensor) -> list[list[float]]:
    return [[float(v) for v in row] for row in tensor]


def _in(language: str, message: str, **values: object) -> str:
    """``message`` (marked with ``N_``) in ``language``, its placeholders filled."""
    return translate(message, language).format(**values)


def _positions_picture(loaded: LoadedModel, result, language: str) -> Picture:
    text = positions_course.DEFAULT_SENTENCE
    ids = model_input_ids(loaded.tokenizer, loaded.family, text, loaded.config.block_size)
    tokens = [f"{i}: {t}" for i, t in enumerate(loaded.tokenizer.display_tokens(ids))]
    return Picture(
        _in(language, N_("Cosine similarity of the input vectors (token + position)")),
        _in(
            language,
            N_("{model}, every pair of positions of the sentence; darker is more similar."),
            model=loaded.name,
        ),
        matrix=_matrix(result[0]),
        rows=tokens,
        columns=tokens,
    )


def _attention_picture(loaded: LoadedModel, steps, language: str) -> Picture:
    return Picture(
        _in(language, N_("Attention weights of layer 0, head 0")),
        _in(
            language,
            N_("{model}: each row is a query, each column a key; every row sums to 1."),
            model=loaded.name,
        ),
        matrix=_matrix(steps.weights),
        rows=steps.tokens,
        columns=steps.tokens,
    )


def _masks_picture(loaded: LoadedModel, view, language: str) -> Picture:
    return Picture(
        _in(language, N_("Weights under the causal mask (layer 0, head 0)")),
        _in(
            language,
            N_("{model}: above the diagonal every weight is exactly 0."),
            model=loaded.name,
        ),
        matrix=_matrix(view.weights),
        rows=view.query_tokens,
        columns=view.key_tokens,
    )


def _multi_head_picture(loaded: LoadedModel, stats, language: str) -> Picture:
    return Picture(
        _in(language, N_("Entropy of each head's attention (nats)")),
        _in(
            language,
            N_("{model}: low entropy means a head looks at few tokens, high means it spreads."),
            model=loaded.name,
        ),
        values=[head.entropy for head in stats],
        labels=[head.name for head in stats],
    )


def _block_picture(loaded: LoadedModel, inspection, language: str) -> Picture:
    norms = [float(h.norm(dim=-1).mean()) for h in inspection.hidden_states]
    after = [_in(language, N_("after block {n}"), n=n) for n in range(1, len(norms))]
    return Picture(
        _in(language, N_("Mean length of the residual stream")),
        _in(
            language,
            N_("{model}: the embeddings, then the stream after each block."),
            model=loaded.name,
        ),
        values=norms,
        labels=[_in(language, N_("embeddings"))] + after,
    )


def _bert_picture(loaded: LoadedModel, breakdown, language: str) -> Picture:
    return Picture(
        _in(language, N_("Length of each token's input vector (token + segment + position)")),
        _in(language, N_("{model}, the sentence pair the page starts with."), model=loaded.name),
        values=[float(v) for v in breakdown.total.norm(dim=-1)],
        labels=[f"{i}: {t}" for i, t in enumerate(breakdown.tokens)],
    )


def _contextual_picture(loaded: LoadedModel, pairs, language: str) -> Picture:
    layers = len(next(iter(pairs.values())))
    return Picture(
        _in(
            language,
            N_("Similarity of '{word}' between two sentences, layer by layer"),
            word=contextual_course.DEFAULT_WORD,
        ),
        _in(
            language,
            N_("{model}: rows are sentence pairs, columns the input (0) and each layer."),
            model=loaded.name,
        ),
        matrix=[[float(v) for v in values] for values in pairs.values()],
        rows=[_in(language, N_("sentences {i} and {j}"), i=i + 1, j=j + 1) for i, j in pairs],
        columns=[str(layer) for layer in range(layers)],
    )


def _gpt_picture(loaded: LoadedModel, distribution, language: str) -> Picture:
    probabilities, ids = distribution.raw.topk(TOP_TOKENS)
    return Picture(
        _in(language, N_("The {n} likeliest next tokens"), n=TOP_TOKENS),
        _in(
            language,
            N_("{model}, after the prompt '{prompt}' (temperature 1)."),
            model=loaded.name,
            prompt=gpt_course.DEFAULT_PROMPT,
        ),
        values=[float(p) for p in probabilities],
        labels=loaded.tokenizer.display_tokens([int(i) for i in ids]),
    )


def _encoder_decoder_picture(loaded: LoadedModel, decoded, language: str) -> Picture:
    _, trace = decoded
    cross = trace.cross_attentions[-1][0].mean(dim=0)  # (T_dec, T_enc), heads averaged
    return Picture(
        _in(language, N_("Cross-attention of the last decoder layer (heads averaged)")),
        _in(
            language,
            N_("{model}: each output token (row) and where in the source it read (columns)."),
            model=loaded.name,
        ),
        matrix=_matrix(cross),
        rows=trace.tokens,
        columns=trace.encoder_tokens,
    )


PICTURES: dict[str, Callable[[LoadedModel, object, str], Picture]] = {
    "positional-encoding": _positions_picture,
    "contextual-embeddings": _contextual_picture,
    "attention": _attention_picture,
    "multi-head": _multi_head_picture,
    "masks": _masks_picture,
    "transformer-block": _block_picture,
    "bert": _bert_picture,
    "gpt": _gpt_picture,
    "encoder-decoder": _encoder_decoder_picture,
}


def live_step(slug: str) -> LiveStep:
    try:
        return LIVE_STEPS[slug]
    except KeyError:
        raise KeyError(f"lesson {slug!r} has no live computation to time") from None


def time_lesson(
    slug: str, load: Loader, repeats: int = MAX_REPEATS, language: str = DEFAULT_LANGUAGE
) -> Timing:
    """Time lesson ``slug``'s live computation; ``load`` gives a shipped model by name. The
    figure of what it computed is labelled in ``language``."""
    step = live_step(slug)
    loaded = load(step.model) if step.model is not None else None
    state = step.prepare(loaded)
    seconds, runs = measure(lambda: step.run(state), repeats)
    parameters = count_parameters(loaded.model) if loaded is not None else None
    draw = PICTURES.get(slug)
    ran = draw is not None and loaded is not None
    picture = draw(loaded, step.run(state), language) if ran else None
    return Timing(slug, seconds, runs, torch.get_num_threads(), parameters, picture)
