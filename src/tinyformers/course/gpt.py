"""Text generation one token at a time, and the training objective on a prompt.

A GPT writes text by repeating a single step:

    context ──► model ──► logits of the last position ──► Distribution ──► draw a token ──► append

This module runs that step in the open so a lesson can show each part of it:

* ``next_token`` explains one step: the distribution the next token is drawn from (built by
  ``sampling.next_token_distribution`` from exactly the logits ``sampling.generate`` uses) and
  where the last position of the context looked, per layer and head.
* ``GenerationRun`` keeps a prompt, the tokens drawn so far and its random generator, so tokens
  can be added one click at a time and still match ``sampling.generate`` with the same seed.
* ``continuation`` generates a whole continuation and measures it (greedy against sampled).
* ``decode`` continues a prompt greedily, by sampling or by beam search, and returns every text
  it looked at step by step with its log-probability (one path for greedy and sampled text).
* ``prompt_loss`` is the training objective on a prompt: −log p of each next token, whose mean is
  the model's own cross-entropy loss.
* ``predict_*`` are the lesson's prediction questions on the student's prompt and settings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinyformers.hub.registry import model_key as model_key  # the GPT page reads it from here
from tinyformers.model.sampling import (
    Beam,
    BeamSearch,
    BeamSettings,
    BeamStep,
    Candidate,
    Distribution,
    SamplingSettings,
    beam_search,
    next_token_distribution,
    sample,
)
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.tokenizers import SPECIAL_TOKENS

# What the lesson's page starts with (the lesson plans time the same computation).
DEFAULT_MODEL = "gpt-stories"
DEFAULT_PROMPT = "Zoe sees the big dog . the dog"
MAX_NEW_TOKENS = 10_000  # the same cap as sampling.generate


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


def check_prompt(ids: list[int], vocab_size: int, minimum: int = 1) -> list[int]:
    """The prompt as a list of ints; a clear ValueError if it is too short or has a bad id."""
    ids = [int(i) for i in ids]
    if len(ids) < minimum:
        needed = "one token" if minimum == 1 else f"{minimum} tokens"
        raise ValueError(f"the prompt needs at least {needed}; it has {len(ids)}")
    outside = [i for i in ids if not 0 <= i < vocab_size]
    if outside:
        raise ValueError(
            f"token id {outside[0]} is outside the model's vocabulary (0 to {vocab_size - 1})"
        )
    return ids


def check_new_tokens(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_NEW_TOKENS:
        raise ValueError(
            f"the number of new tokens must be between 0 and {MAX_NEW_TOKENS}, got {n!r}"
        )
    return n


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"the seed must be a whole number of at least 0, got {seed!r}")
    return seed


def slider_settings(temperature: float, top_k: int, top_p: float) -> SamplingSettings:
    """Sampling settings from the lesson's sliders, where top-k 0 and top-p 1 mean "off"."""
    return SamplingSettings(
        temperature=float(temperature),
        top_k=int(top_k) or None,
        top_p=float(top_p) if top_p < 1.0 else None,
    )


def unknown_count(tokenizer, ids: list[int]) -> int:
    """How many of ``ids`` are the tokenizer's unknown token (0 if it has none)."""
    unk_id = getattr(tokenizer, "unk_id", None)
    return sum(1 for i in ids if i == unk_id)


def per_character(tokenizer) -> bool:
    """True if ``tokenizer`` has one token per character."""
    return getattr(tokenizer, "kind", "") == "char"


def context_of(model: nn.Module, ids: list[int]) -> list[int]:
    """What the model reads: the last ``block_size`` tokens, as ``sampling.generate`` crops."""
    return list(ids[-model.config.block_size :])


# ---------------------------------------------------------------------------------------------
# One step, explained
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def next_token_logits(model: nn.Module, ids: list[int]) -> Tensor:
    """Logits (vocab_size,) for the token after ``ids``: the very call ``sampling.generate``
    makes, so a distribution built from them is exactly what it samples from."""
    context = torch.tensor([context_of(model, ids)])  # (1, T)
    return model(context).logits[0, -1]


@torch.no_grad()
def last_position_attention(model: nn.Module, ids: list[int]) -> Tensor:
    """(n_layer, n_head, T): how the last position of the context attends over the context.

    That position's output becomes the logits of the next token, so these rows show where the
    model looked when it chose it. Each is the last row of a layer's (1, heads, T, T) attention.
    """
    context = torch.tensor([context_of(model, ids)])
    attentions = model(context, output_attentions=True).attentions
    return torch.stack([layer[0, :, -1, :] for layer in attentions])


@dataclass(frozen=True)
class NextToken:
    """One generation step: what the model read, what it predicted, and where it looked."""

    context: list[int]  # the ids the model read (at most block_size of them)
    settings: SamplingSettings
    distribution: Distribution  # what the next token is drawn from
    attention: Tensor  # (n_layer, n_head, len(context)) attention of the last position
    token: int | None = None  # the token drawn, when one was


def next_token(
    model: nn.Module, ids: list[int], settings: SamplingSettings, token: int | None = None
) -> NextToken:
    """Explain the step after ``ids`` (``token`` is the one that was drawn, if any)."""
    ids = check_prompt(ids, model.config.vocab_size)
    distribution = next_token_distribution(next_token_logits(model, ids), settings)
    return NextToken(
        context_of(model, ids), settings, distribution, last_position_attention(model, ids), token
    )


def token_rank(distribution: Distribution, token: int) -> int:
    """The rank of ``token`` in the model's own distribution (1 = the most likely)."""
    return int((distribution.raw > distribution.raw[token]).sum()) + 1


def kept_mass(distribution: Distribution) -> tuple[int, float]:
    """How many tokens survive the filters, and the probability they hold after temperature
    and before renormalising."""
    return int(distribution.kept.sum()), distribution.tempered[distribution.kept].sum().item()


def most_attended(attention: Tensor) -> int:
    """The context position with the most attention summed over every layer and head of an
    ``(n_layer, n_head, T)`` tensor."""
    if attention.dim() != 3:
        raise ValueError(
            f"expected (layers, heads, positions) weights, got {tuple(attention.shape)}"
        )
    return attention.sum(dim=(0, 1)).argmax().item()


def draw(
    model: nn.Module, ids: list[int], settings: SamplingSettings, generator: torch.Generator
) -> tuple[int, Distribution]:
    """One step of ``sampling.generate``: the token drawn after ``ids`` and its distribution."""
    distribution = next_token_distribution(next_token_logits(model, ids), settings)
    return sample(distribution, generator), distribution


# ---------------------------------------------------------------------------------------------
# Generation that can be advanced one token at a time
# ---------------------------------------------------------------------------------------------


@dataclass
class GenerationRun:
    """A prompt and the tokens drawn after it so far, with the generator that drew them.

    Advancing it token by token with the same settings gives exactly
    ``sampling.generate(model, prompt, n, settings, seed)``. The settings may change between
    steps; each token remembers the ones it was drawn with.
    """

    prompt: list[int]
    seed: int
    new: list[int] = field(default_factory=list)
    settings: list[SamplingSettings] = field(default_factory=list)
    generator: torch.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.prompt:
            raise ValueError("generation needs a prompt of at least one token")
        self.prompt = [int(i) for i in self.prompt]
        self.generator = torch.Generator().manual_seed(check_seed(self.seed))

    @property
    def sequence(self) -> list[int]:
        return self.prompt + self.new

    def step(self, model: nn.Module, settings: SamplingSettings) -> int:
        """Draw one more token and return it."""
        check_prompt(self.prompt, model.config.vocab_size)
        token, _ = draw(model, self.sequence, settings, self.generator)
        self.new.append(token)
        self.settings.append(settings)
        return token

    def extend(self, model: nn.Module, n: int, settings: SamplingSettings) -> list[int]:
        """Draw ``n`` more tokens and return them."""
        return [self.step(model, settings) for _ in range(check_new_tokens(n))]

    def rewind(self, model: nn.Module, n: int) -> None:
        """Keep the first ``n`` generated tokens only, as if no later one had been drawn: the
        generator comes back to where it was by drawing them again with their own settings."""
        if not 0 <= n <= len(self.new):
            raise ValueError(f"cannot keep {n} of the {len(self.new)} generated tokens")
        if n == len(self.new):
            return
        again = GenerationRun(self.prompt, self.seed)
        for settings in self.settings[:n]:
            again.step(model, settings)
        self.new, self.settings, self.generator = again.new, again.settings, again.generator

    def advance(self, model: nn.Module, n: int, settings: SamplingSettings) -> GenerationRun:
        """Hold exactly ``n`` generated tokens: forget the later ones, or draw the missing ones
        with ``settings``."""
        if n < len(self.new):
            self.rewind(model, n)
        else:
            self.extend(model, n - len(self.new), settings)
        return self

    def left_window(self, step: NextToken, i: int) -> int:
        """How many earlier tokens had left the model's window when new token ``i`` was drawn
        (``step`` is ``explain(model, i)``)."""
        return len(self.prompt) + i - len(step.context)

    def explain(self, model: nn.Module, i: int) -> NextToken:
        """The step that drew new token ``i``: its context, distribution and attention."""
        if not 0 <= i < len(self.new):
            raise ValueError(f"there is no generated token {i}; {len(self.new)} were generated")
        before = self.prompt + self.new[:i]
        return next_token(model, before, self.settings[i], token=self.new[i])


# ---------------------------------------------------------------------------------------------
# Whole continuations: greedy against sampled
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Continuation:
    new: list[int]  # the generated ids
    probabilities: list[float]  # the model's own probability (softmax of logits) of each one

    @property
    def mean_loss(self) -> float:
        """Mean −log p of the generated tokens under the model (before any temperature)."""
        if not self.probabilities:
            return float("nan")
        return -torch.tensor(self.probabilities, dtype=torch.float64).log().mean().item()


def continuation(
    model: nn.Module, ids: list[int], n: int, settings: SamplingSettings, seed: int = 0
) -> Continuation:
    """``n`` new tokens after ``ids``, as ``sampling.generate`` with this seed draws them."""
    sequence = check_prompt(ids, model.config.vocab_size)
    generator = torch.Generator().manual_seed(check_seed(seed))
    new, probabilities = [], []
    for _ in range(check_new_tokens(n)):
        token, distribution = draw(model, sequence, settings, generator)
        sequence.append(token)
        new.append(token)
        probabilities.append(distribution.raw[token].item())
    return Continuation(new, probabilities)


def repeated_share(words: list[str], n: int = 3) -> float:
    """Share of the ``n``-word sequences in ``words`` that already occurred earlier in it.

    0 means nothing repeats; close to 1 means the text loops. NaN when there is no n-gram.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return float("nan")
    seen: set[tuple[str, ...]] = set()
    repeats = 0
    for gram in grams:
        repeats += gram in seen
        seen.add(gram)
    return repeats / len(grams)


# ---------------------------------------------------------------------------------------------
# Greedy, sampling and beam search, each as a search over texts
# ---------------------------------------------------------------------------------------------

GREEDY, SAMPLING, BEAM = DECODINGS = ("Greedy", "Sampling", "Beam search")


def end_token(tokenizer) -> int | None:
    """The token of a line break, which ends a story in the stories corpus, when the tokenizer
    reads a line break as one token."""
    ids = tokenizer.encode("\n")
    return ids[0] if len(ids) == 1 and tokenizer.decode(ids) == "\n" else None


def sampled_path(
    model: nn.Module,
    ids: list[int],
    n: int,
    settings: SamplingSettings,
    seed: int,
    eos_id: int | None = None,
) -> BeamSearch:
    """A sampled text as a search that kept one path: each step's one candidate, with the log p
    the model itself gives the token (before temperature and filters), as beam search scores it.
    The tokens are those ``sampling.generate`` draws with this seed, up to ``eos_id`` included."""
    sequence = check_prompt(ids, model.config.vocab_size)
    generator = torch.Generator().manual_seed(check_seed(seed))
    beam, steps = Beam((), 0.0), []
    for i in range(check_new_tokens(n)):
        token, distribution = draw(model, sequence, settings, generator)
        token_log_prob = torch.log(distribution.raw[token]).item()
        ends = token == eos_id or i == n - 1
        beam = Beam(beam.tokens + (token,), beam.log_prob + token_log_prob, finished=ends)
        candidate = Candidate(beam, 0, token_log_prob, "finished" if ends else "kept")
        steps.append(BeamStep([candidate], [] if ends else [beam], [beam] if ends else []))
        sequence.append(token)
        if ends:
            break
    return BeamSearch(BeamSettings(1, 0.0), steps, [beam])


def decode(
    model: nn.Module,
    ids: list[int],
    n: int,
    strategy: str,
    beams: BeamSettings,
    settings: SamplingSettings,
    seed: int = 0,
    eos_id: int | None = None,
) -> BeamSearch:
    """Up to ``n`` new tokens after ``ids`` by ``strategy`` (one of ``DECODINGS``), ending at
    ``eos_id``. Greedy decoding is beam search with one beam that stops at its first finished
    text; sampling uses ``settings`` and ``seed``; beam search uses ``beams``."""
    ids = check_prompt(ids, model.config.vocab_size)
    if strategy == BEAM:
        return beam_search(model, ids, n, beams, eos_id)
    if strategy == GREEDY:
        return beam_search(model, ids, n, BeamSettings(1, beams.length_penalty, True), eos_id)
    if strategy == SAMPLING:
        return sampled_path(model, ids, n, settings, seed, eos_id)
    raise ValueError(f"the decoding must be one of {', '.join(DECODINGS)}; got {strategy!r}")


def search_tokens(search: BeamSearch) -> list[int]:
    """Every token id a search looked at, in id order (what its figure needs labels for)."""
    return sorted({c.beam.tokens[-1] for step in search.steps for c in step.candidates})


def search_texts(tokenizer, search: BeamSearch) -> tuple[dict[int, str], list[str]]:
    """How each token the search looked at is shown, and the text of each finished beam."""
    seen = search_tokens(search)
    labels = dict(zip(seen, tokenizer.display_tokens(seen), strict=True))
    return labels, [tokenizer.decode(list(beam.tokens)) for beam in search.finished]


def on_best_path(search: BeamSearch, candidate: Candidate) -> bool:
    """True when ``candidate`` is a step on the way to the best text the search returned."""
    best = search.best.tokens
    return best[: len(candidate.beam.tokens)] == candidate.beam.tokens


# ---------------------------------------------------------------------------------------------
# The training objective on a prompt
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptLoss:
    """−log p of each token of a prompt given the tokens before it (the first has none)."""

    ids: list[int]
    probabilities: Tensor  # (T - 1,) p(ids[t + 1] | ids[: t + 1])
    losses: Tensor  # (T - 1,) −log of the above
    model_loss: float  # the model's own cross-entropy, model(ids, targets).loss

    @property
    def mean(self) -> float:
        return self.losses.mean().item()

    @property
    def perplexity(self) -> float:
        """e to the mean loss."""
        return math.exp(self.mean)

    @property
    def most_surprising(self) -> int:
        """The prediction with the largest loss: ``ids[i + 1]`` after ``ids[: i + 1]``."""
        return int(self.losses.argmax())


@torch.no_grad()
def prompt_loss(model: nn.Module, ids: list[int]) -> PromptLoss:
    """The causal LM objective on ``ids``: each position predicts the next token."""
    ids = check_prompt(ids, model.config.vocab_size, minimum=2)
    if len(ids) > model.config.block_size:
        raise ValueError(
            f"the prompt has {len(ids)} tokens but the model reads at most "
            f"{model.config.block_size}"
        )
    inputs = torch.tensor([ids])  # (1, T)
    targets = torch.tensor([ids[1:] + [-100]])  # the next token at each position; none at the end
    out = model(inputs, targets=targets)
    log_probs = F.log_softmax(out.logits[0, :-1].double(), dim=-1)  # (T - 1, vocab)
    picked = log_probs.gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]  # (T - 1,)
    return PromptLoss(ids, picked.exp(), -picked, out.loss.item())


# ---------------------------------------------------------------------------------------------
# Capitalised words: one token or several pieces
# ---------------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+")  # a run of letters


@dataclass(frozen=True)
class CapitalWord:
    """A capitalised word of a prompt and how a tokenizer reads it."""

    word: str  # as written in the prompt, with the space before it when there is one
    pieces: list[str]  # the tokens it is read as
    lower_pieces: list[str]  # the tokens of the same word in lowercase

    @property
    def single(self) -> bool:
        return len(self.pieces) == 1


def capital_words(tokenizer, text: str) -> list[CapitalWord]:
    """Each distinct word of ``text`` that starts with a capital letter, read by ``tokenizer``
    as it stands in the text (a byte-level BPE reads a space and the word after it together),
    and in lowercase."""
    found: dict[str, CapitalWord] = {}
    for match in _WORD.finditer(text):
        word, start = match.group(), match.start()
        if not word[0].isupper():
            continue
        written = (" " if start > 0 and text[start - 1] == " " else "") + word
        if written not in found:
            lower = written.lower()
            found[written] = CapitalWord(
                written,
                tokenizer.display_tokens(tokenizer.encode(written)),
                tokenizer.display_tokens(tokenizer.encode(lower)),
            )
    return list(found.values())


@dataclass(frozen=True)
class LearnedTokens:
    """The tokens a byte-level BPE learned (merged from bytes), and those with a capital."""

    learned: int
    capitalised: list[str]  # in id order: the most frequent merges first

    @property
    def capital_share(self) -> float:
        return len(self.capitalised) / self.learned if self.learned else 0.0


def learned_tokens(tokenizer) -> LearnedTokens:
    """How many tokens a byte-level BPE tokenizer learned beyond its bytes and special tokens,
    and which of them hold a capital letter."""
    specials = {*SPECIAL_TOKENS, *getattr(tokenizer.hf, "all_special_tokens", ())}
    ids = [
        i
        for i in range(tokenizer.vocab_size)
        if len(raw := tokenizer.id_to_token(i)) > 1 and raw not in specials
    ]
    shown = tokenizer.display_tokens(ids)
    return LearnedTokens(len(ids), [t for t in shown if any(c.isupper() for c in t)])


# ---------------------------------------------------------------------------------------------
# Predict, then reveal (the lesson's ``predict:`` questions)
# ---------------------------------------------------------------------------------------------

WHAT_IF_TOP_P = 0.5  # the top-p a question asks about while the page's top-p is off
CANDIDATES = 5  # tokens in a row of the ranking that a top-p question offers
SHOWN_BARS = 15  # tokens the chart of a revealed answer shows


def _settings_values(settings: SamplingSettings) -> dict[str, str]:
    """The sliders as a question shows them: each filter's value, or "off"."""
    return {
        "temperature": f"{settings.temperature:.2f}",
        "top_k": "off" if settings.top_k is None else str(settings.top_k),
        "top_p": "off" if settings.top_p is None else f"{settings.top_p:.2f}",
    }


def _token_labels(tokenizer, ids: list[int]) -> dict[int, str]:
    """A label for each token id, its display string quoted (with its id where two look alike)."""
    shown = [repr(token) for token in tokenizer.display_tokens(ids)]
    return {
        token_id: f"{text} (id {token_id})" if shown.count(text) > 1 else text
        for token_id, text in zip(ids, shown, strict=True)
    }


def _chart_data(loaded, distribution: Distribution, ids: list[int], settings) -> dict:
    tokens = loaded.tokenizer.display_tokens(ids)
    return {"distribution": distribution, "ids": ids, "tokens": tokens, "settings": settings}


def predict_kept_count(loaded, ids: list[int], settings: SamplingSettings) -> Prediction:
    """How many tokens of the vocabulary the sampling settings keep in the draw."""
    ids = check_prompt(ids, loaded.config.vocab_size)
    vocab = loaded.config.vocab_size

    def reveal() -> Reveal:
        distribution = next_token_distribution(next_token_logits(loaded.model, ids), settings)
        kept = int(distribution.kept.sum())
        shown = distribution.raw.topk(min(SHOWN_BARS, vocab)).indices.tolist()
        values = {"kept": kept, "vocab": vocab}
        return Reveal(kept, values, _chart_data(loaded, distribution, shown, settings))

    values = {**_settings_values(settings), "vocab": vocab, "prompt": loaded.tokenizer.decode(ids)}
    return Prediction(values, reveal, bounds=(0, vocab))


def predict_never_drawn(loaded, ids: list[int], settings: SamplingSettings) -> Prediction:
    """The first token, down the model's ranking, that top-p filters out: the page's top-p (or
    ``WHAT_IF_TOP_P`` while it is off) at the page's temperature (1 when greedy), top-k off.
    The choices are ``CANDIDATES`` tokens in a row of the ranking around the cut, where the
    cut falls depends on the prompt."""
    ids = check_prompt(ids, loaded.config.vocab_size)
    temperature = settings.temperature if not settings.greedy else 1.0
    asked = SamplingSettings(temperature=temperature, top_p=settings.top_p or WHAT_IF_TOP_P)
    distribution = next_token_distribution(next_token_logits(loaded.model, ids), asked)
    order = distribution.tempered.argsort(descending=True, stable=True).tolist()
    cut = int(distribution.kept.sum())  # top-p keeps a prefix of the ranking
    if cut == len(order):
        raise ValueError("top-p keeps every token of the vocabulary here")
    end = min(len(order), max(cut - sum(ids) % CANDIDATES, 0) + CANDIDATES)
    ranks = range(max(end - CANDIDATES, 0), end)
    tokens = loaded.tokenizer.display_tokens([order[r] for r in ranks])
    labels = {r: f"rank {r + 1}: {token!r}" for r, token in zip(ranks, tokens, strict=True)}

    def reveal() -> Reveal:
        kept = distribution.kept.nonzero().flatten()
        values = {"kept": cut, "mass": f"{distribution.tempered[kept].sum().item():.3f}"}
        shown = order[: max(SHOWN_BARS, end)]
        return Reveal(labels[cut], values, _chart_data(loaded, distribution, shown, asked))

    values = {
        "prompt": loaded.tokenizer.decode(ids),
        "top_p": f"{asked.top_p:.2f}",
        "temperature": f"{temperature:.2f}",
    }
    return Prediction(values, reveal, tuple(labels.values()))


def what_if_temperature(settings: SamplingSettings) -> float:
    """The temperature a question asks about: 2 when the page's is below 1 (and above 0),
    else 0.5."""
    return 2.0 if 0 < settings.temperature < 1 else 0.5


def predict_favourite_at_temperature(
    loaded, ids: list[int], settings: SamplingSettings
) -> Prediction:
    """The probability the model's favourite next token gets at another temperature."""
    ids = check_prompt(ids, loaded.config.vocab_size)
    logits = next_token_logits(loaded.model, ids)
    raw = torch.softmax(logits.float(), dim=-1)
    favourite, second = raw.topk(2).indices.tolist()
    temperature = what_if_temperature(settings)
    labels = _token_labels(loaded.tokenizer, [favourite, second])

    def reveal() -> Reveal:
        asked = SamplingSettings(temperature=temperature)
        distribution = next_token_distribution(next_token_logits(loaded.model, ids), asked)
        values = {
            "temperature": f"{temperature:g}",
            "second": labels[second],
            "second_raw": f"{raw[second].item():.3f}",
            "second_new": f"{distribution.tempered[second].item():.3f}",
        }
        shown = raw.topk(min(SHOWN_BARS, raw.numel())).indices.tolist()
        data = _chart_data(loaded, distribution, shown, asked)
        return Reveal(distribution.tempered[favourite].item(), values, data)

    values = {
        "prompt": loaded.tokenizer.decode(ids),
        "token": labels[favourite],
        "raw": f"{raw[favourite].item():.3f}",
        "temperature": f"{temperature:g}",
    }
    return Prediction(values, reveal, bounds=(0.0, 1.0))


def predict_hardest_token(loaded, ids: list[int]) -> Prediction:
    """Which token of the prompt the model finds hardest to predict from the tokens before it:
    the largest −log p of the training objective."""
    ids = check_prompt(ids, loaded.config.vocab_size, minimum=2)
    ids = context_of(loaded.model, ids)
    tokens = loaded.tokenizer.display_tokens(ids)
    labels = [f"{i}: {tokens[i]!r}" for i in range(len(ids))]

    def reveal() -> Reveal:
        result = prompt_loss(loaded.model, ids)
        hardest = result.most_surprising + 1  # losses[i] is the loss of token i + 1
        values = {
            "probability": f"{result.probabilities[hardest - 1].item():.4f}",
            "loss": f"{result.losses[hardest - 1].item():.2f}",
            "mean": f"{result.mean:.2f}",
        }
        data = {"tokens": tokens, "losses": result.losses.tolist(), "mean": result.mean}
        return Reveal(labels[hardest], values, data)

    return Prediction({"prompt": loaded.tokenizer.decode(ids)}, reveal, tuple(labels[1:]))
