"""Static against contextual word vectors: the computations behind the lesson.

* ``train_skip_gram``: word2vec's skip-gram with negative sampling, in plain PyTorch, on the
  stories corpus. Every word type gets one vector, whatever sentence it stands in.
* ``contextual_vectors``: the vectors a BERT model gives one word in several sentences, layer
  by layer, read from the record of each forward pass (layer 0 is what the first block reads:
  token + position + segment rows after the embedding LayerNorm; layer ``l`` is what block
  ``l - 1`` writes).
* ``cosine_matrix``, ``pair_similarities``: how alike the word's vectors are across the
  sentences, per layer. Static vectors are the same row every time, so their similarity is 1.
* ``static_neighbours``, ``context_bank`` and ``contextual_neighbours``: the nearest words to a
  static vector, and the nearest word occurrences to a contextual one.
* ``pca_2d``: a 2-D map of vectors along their two main directions of variation.

Words are found by their characters: a typed word matches wherever it stands as a whole word
(any letter case), and its vector is the mean of the vectors of the tokens that cover it, so a
word that the tokenizer splits into pieces still gets one vector.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tinyformers.i18n import _
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.inputs import bert_wrap

# What the page starts with: "that" as the subject of its clause and as its object.
DEFAULT_MODEL = "bert-stories"
DEFAULT_WORD = "that"
DEFAULT_SENTENCES = (
    "the dogs that chase the cat run .",
    "the dogs that chase the fox run .",
    "the dogs that the cat sees run .",
    "the dogs that the fox sees run .",
)
MAX_WORD_CHARS = 40
MAX_SENTENCES = 8
MAX_NEIGHBOURS = 20
WORD_PATTERN = re.compile(r"\w+|[^\w\s]")  # words and single punctuation marks


# ---------------------------------------------------------------------------------------------
# Static vectors: skip-gram with negative sampling
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkipGramSettings:
    """What a skip-gram run depends on. The defaults train in a few seconds on one CPU thread."""

    dim: int = 32  # numbers per word vector
    window: int = 2  # context words on each side of the centre word
    negatives: int = 5  # noise words drawn per (centre, context) pair
    epochs: int = 1
    stories: int = 4_000  # the first stories (lines) of the text that are read
    batch_size: int = 4096
    learning_rate: float = 0.03
    min_count: int = 1
    seed: int = 0

    def check(self) -> SkipGramSettings:
        limits = {
            "dim": (2, 256),
            "window": (1, 10),
            "negatives": (1, 50),
            "epochs": (1, 20),
            "stories": (1, 1_000_000),
            "batch_size": (1, 65_536),
            "min_count": (1, 1_000),
            "seed": (0, 2**31 - 1),
        }
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be a whole number from {low:,} to {high:,}")
        if not (math.isfinite(self.learning_rate) and 0 < self.learning_rate <= 1):
            raise ValueError("the learning rate must be above 0 and at most 1")
        return self


@dataclass(frozen=True)
class StaticEmbeddings:
    """One vector per word type, and how training went."""

    words: list[str]  # the vocabulary, most frequent first
    counts: list[int]
    vectors: Tensor  # (V, dim) the input ("centre word") vectors: the word vectors
    losses: list[float]  # mean loss of each training step
    pairs: int  # (centre, context) pairs seen per epoch
    settings: SkipGramSettings

    def index(self, word: str) -> int | None:
        """The row of ``word`` (any letter case), or None if training never saw it."""
        try:
            return self.words.index(word.lower())
        except ValueError:
            return None

    def vector(self, word: str) -> Tensor:
        row = self.index(word)
        if row is None:
            raise KeyError(f"{word!r} never appears in the training text, so it has no vector")
        return self.vectors[row]


def corpus_sentences(text: str) -> list[list[str]]:
    """The text as lowercase sentences of words: split at line ends and full stops, the full
    stops themselves left out (a window never reaches across a sentence)."""
    sentences = []
    for line in text.lower().splitlines():
        for part in line.split("."):
            words = part.split()
            if words:
                sentences.append(words)
    return sentences


def skip_gram_pairs(sentences: list[list[int]], window: int) -> Tensor:
    """Every (centre, context) pair of word ids at most ``window`` apart in a sentence: (N, 2),
    ordered by distance, then by the centre word's place in the text."""
    words = torch.tensor([i for ids in sentences for i in ids], dtype=torch.long)
    owner = torch.repeat_interleave(torch.tensor([len(ids) for ids in sentences]))
    pairs = []
    for distance in range(1, window + 1):
        same = owner[distance:] == owner[:-distance]  # both words in one sentence
        left, right = words[:-distance][same], words[distance:][same]
        pairs += [torch.stack([left, right], 1), torch.stack([right, left], 1)]
    found = torch.cat(pairs) if pairs else torch.zeros(0, 2, dtype=torch.long)
    if len(found) == 0:
        raise ValueError("the text has no two words close enough to make a pair")
    return found


def noise_distribution(counts: Sequence[int], power: float = 0.75) -> Tensor:
    """Word2vec's distribution for negative samples: unigram counts raised to ``power``."""
    weights = torch.tensor(counts, dtype=torch.float64) ** power
    return (weights / weights.sum()).float()


def negative_sampling_loss(
    centre: Tensor, context: Tensor, negatives: Tensor, reduce: bool = True
) -> Tensor:
    """Skip-gram's loss with negative sampling: −log σ(v·u) − Σ_k log σ(−v·u_k).

    ``centre`` (B, d) are the centre words' input vectors v, ``context`` (B, d) the context
    words' output vectors u, ``negatives`` (B, k, d) the output vectors of the noise words."""
    positive = F.logsigmoid((centre * context).sum(-1))  # (B,)
    negative = F.logsigmoid(-torch.einsum("bkd,bd->bk", negatives, centre)).sum(-1)  # (B,)
    loss = -(positive + negative)
    return loss.mean() if reduce else loss


def train_skip_gram(text: str, settings: SkipGramSettings | None = None) -> StaticEmbeddings:
    """Train skip-gram word vectors on the first ``settings.stories`` lines of ``text`` (seeded: the same text and settings give the
    same vectors). Only tensors made here are trained; nothing global is seeded or changed."""
    settings = (settings or SkipGramSettings()).check()
    sentences = corpus_sentences("\n".join(text.splitlines()[: settings.stories]))
    counts = Counter(word for sentence in sentences for word in sentence)
    vocabulary = [w for w, c in counts.most_common() if c >= settings.min_count]
    if len(vocabulary) < 2:
        raise ValueError("the text needs at least two different words")
    index = {word: i for i, word in enumerate(vocabulary)}
    ids = [[index[w] for w in s if w in index] for s in sentences]
    pairs = skip_gram_pairs(ids, settings.window)
    noise = noise_distribution([counts[w] for w in vocabulary])

    generator = torch.Generator().manual_seed(settings.seed)
    size = (len(vocabulary), settings.dim)
    centre_vectors = nn.Parameter((torch.rand(size, generator=generator) - 0.5) / settings.dim)
    context_vectors = nn.Parameter(torch.zeros(size))
    optimizer = torch.optim.Adam([centre_vectors, context_vectors], lr=settings.learning_rate)
    losses = []
    with torch.enable_grad():
        for _ in range(settings.epochs):
            order = torch.randperm(len(pairs), generator=generator)
            for start in range(0, len(pairs), settings.batch_size):
                batch = pairs[order[start : start + settings.batch_size]]
                drawn = torch.multinomial(
                    noise, len(batch) * settings.negatives, True, generator=generator
                ).view(len(batch), settings.negatives)
                loss = negative_sampling_loss(
                    centre_vectors[batch[:, 0]],
                    context_vectors[batch[:, 1]],
                    context_vectors[drawn],
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
    return StaticEmbeddings(
        words=vocabulary,
        counts=[counts[w] for w in vocabulary],
        vectors=centre_vectors.detach().clone(),
        losses=losses,
        pairs=len(pairs),
        settings=settings,
    )


def static_context_vectors(static: StaticEmbeddings, word: str, contexts: int) -> Tensor:
    """The word's static vector in each of ``contexts`` sentences: the same row every time,
    because a lookup table does not read the sentence. (contexts, dim)"""
    return static.vector(word).expand(contexts, -1).clone()


# ---------------------------------------------------------------------------------------------
# Similarity
# ---------------------------------------------------------------------------------------------


def cosine_matrix(vectors: Tensor) -> Tensor:
    """Cosine similarity of every pair of rows of ``vectors`` (N, d): (N, N). Computed in
    double precision, so two identical rows give exactly 1."""
    unit = F.normalize(vectors.double(), dim=-1)
    return (unit @ unit.T).clamp(-1.0, 1.0).float()


def pair_similarities(layers: Tensor) -> dict[tuple[int, int], Tensor]:
    """For vectors ``layers`` (L, S, d), each pair (i, j) of the S contexts, i < j, with the
    cosine of their vectors at every layer: (L,)."""
    matrices = torch.stack([cosine_matrix(layer) for layer in layers])  # (L, S, S)
    return {(i, j): matrices[:, i, j] for i, j in combinations(range(layers.size(1)), 2)}


def mean_pair_similarity(layers: Tensor) -> Tensor:
    """The mean cosine over every pair of contexts, per layer: (L,)."""
    pairs = pair_similarities(layers)
    if not pairs:
        raise ValueError("similarity across contexts needs the word in at least two sentences")
    return torch.stack(list(pairs.values())).mean(dim=0)


# ---------------------------------------------------------------------------------------------
# Contextual vectors: BERT, read from the record of the forward pass
# ---------------------------------------------------------------------------------------------


def check_word(word: str) -> str:
    """The typed word, stripped; a clear ``ValueError`` for anything that is not one word."""
    word = word.strip()
    if not word:
        raise ValueError(_("type a word to follow through the sentences"))
    if len(word) > MAX_WORD_CHARS:
        raise ValueError(_("a word has at most {count} characters").format(count=MAX_WORD_CHARS))
    if any(char.isspace() for char in word):
        raise ValueError(_("type one word, without spaces"))
    return word


def find_word(text: str, word: str) -> tuple[int, int] | None:
    """The character span of the first place ``word`` stands in ``text`` as a whole word (any
    letter case), or None."""
    match = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, flags=re.IGNORECASE)
    return match.span() if match else None


def token_offsets(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """The ids of ``text`` (as ``tokenizer.encode`` gives them) and each token's character span.

    Our tokenizers wrap a ``tokenizers.Tokenizer``; a ``transformers`` fast tokenizer holds one
    as its ``backend_tokenizer``."""
    backend = getattr(tokenizer.hf, "backend_tokenizer", tokenizer.hf)
    encoding = backend.encode(text, add_special_tokens=False)
    return list(encoding.ids), list(encoding.offsets)


def covering_tokens(offsets: list[tuple[int, int]], span: tuple[int, int]) -> list[int]:
    """The positions of the tokens whose characters overlap ``span``."""
    start, end = span
    return [i for i, (a, b) in enumerate(offsets) if a < end and b > start]


@dataclass(frozen=True)
class SentenceStates:
    """One sentence as BERT reads it, and the vector of every position at every layer."""

    text: str
    ids: list[int]  # [CLS] … [SEP]
    tokens: list[str]
    states: Tensor  # (n_layer + 1, T, C): layer 0 = the first block's input


@torch.no_grad()
def sentence_states(model: nn.Module, tokenizer, text: str) -> SentenceStates:
    """Run BERT on ``[CLS] text [SEP]`` (cut to the model's context) once and read every
    layer's vectors from the run record."""
    if model.config.family != "bert":
        raise ValueError(f"this lesson reads a BERT model, not a {model.config.family} model")
    ids = bert_wrap(tokenizer, tokenizer.encode(text), model.config.block_size)
    out = model(torch.tensor([ids]), return_record=True)  # ids: (1, T)
    record = out.record
    layers = [record.norms["ln_emb"].output[0], *(block.output[0] for block in record.blocks)]
    return SentenceStates(text, ids, tokenizer.display_tokens(ids), torch.stack(layers))


@dataclass(frozen=True)
class ContextualVectors:
    """One word's vectors in the sentences that contain it, at every layer."""

    word: str
    sentences: list[SentenceStates]  # every sentence given, in order
    found: list[int]  # indices of the sentences that contain the word (within the context)
    spans: list[list[int]]  # for each found sentence, the positions of the word's tokens
    layers: Tensor  # (n_layer + 1, len(found), C): the mean over the word's tokens

    @property
    def missing(self) -> list[int]:
        return [i for i in range(len(self.sentences)) if i not in self.found]


def contextual_vectors(
    model: nn.Module, tokenizer, word: str, sentences: Sequence[str]
) -> ContextualVectors:
    """The vectors BERT gives ``word`` in each of ``sentences`` (one forward pass each)."""
    word = check_word(word)
    if not sentences:
        raise ValueError("type at least one sentence")
    if len(sentences) > MAX_SENTENCES:
        raise ValueError(f"at most {MAX_SENTENCES} sentences")
    states, found, spans, vectors = [], [], [], []
    for n, text in enumerate(sentences):
        state = sentence_states(model, tokenizer, text)
        states.append(state)
        span = find_word(text, word)
        if span is None:
            continue
        _, offsets = token_offsets(tokenizer, text)
        positions = [1 + p for p in covering_tokens(offsets, span)]  # 1: after [CLS]
        positions = [p for p in positions if p < len(state.ids) - 1]  # cut with the context
        if not positions:
            continue
        found.append(n)
        spans.append(positions)
        vectors.append(state.states[:, positions].mean(dim=1))  # (L, C)
    n_layers = model.config.n_layer + 1
    layers = (
        torch.stack(vectors, dim=1) if vectors else torch.zeros(n_layers, 0, model.config.n_embd)
    )
    return ContextualVectors(word, states, found, spans, layers)


# ---------------------------------------------------------------------------------------------
# Nearest neighbours
# ---------------------------------------------------------------------------------------------


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_NEIGHBOURS:
        raise ValueError(f"the number of neighbours must be from 1 to {MAX_NEIGHBOURS}")
    return k


def static_neighbours(static: StaticEmbeddings, word: str, k: int = 8) -> list[tuple[str, float]]:
    """The ``k`` words whose static vectors are closest (cosine) to ``word``'s, itself left out."""
    k = _check_k(k)
    row = static.index(word)
    if row is None:
        raise KeyError(f"{word!r} never appears in the training text, so it has no vector")
    unit = F.normalize(static.vectors.double(), dim=-1)
    scores = unit @ unit[row]
    scores[row] = -math.inf
    best = scores.topk(min(k, len(static.words) - 1))
    return [(static.words[i], float(s)) for s, i in zip(best.values, best.indices, strict=True)]


@dataclass(frozen=True)
class Occurrence:
    """One word where it stands in one sentence of the bank."""

    word: str
    sentence: str


@dataclass(frozen=True)
class ContextBank:
    """Every word occurrence in a set of sentences, with its contextual vector at each layer."""

    occurrences: list[Occurrence]
    vectors: Tensor  # (n_layer + 1, N, C)


def sentence_words(text: str) -> list[tuple[str, tuple[int, int]]]:
    """The words and punctuation marks of ``text``, each with its character span."""
    return [(m.group(), m.span()) for m in WORD_PATTERN.finditer(text)]


def context_bank(model: nn.Module, tokenizer, sentences: Sequence[str]) -> ContextBank:
    """Run BERT on each sentence and keep the vector of every word (punctuation left out)."""
    occurrences, vectors = [], []
    for text in sentences:
        state = sentence_states(model, tokenizer, text)
        _, offsets = token_offsets(tokenizer, text)
        for word, span in sentence_words(text):
            if not word[0].isalnum():
                continue
            positions = [1 + p for p in covering_tokens(offsets, span)]
            positions = [p for p in positions if p < len(state.ids) - 1]
            if positions:
                occurrences.append(Occurrence(word.lower(), text))
                vectors.append(state.states[:, positions].mean(dim=1))
    if not occurrences:
        raise ValueError("the bank's sentences hold no word")
    return ContextBank(occurrences, torch.stack(vectors, dim=1))


def contextual_neighbours(
    bank: ContextBank, vector: Tensor, layer: int, k: int = 8
) -> list[tuple[Occurrence, float]]:
    """The ``k`` word occurrences of ``bank`` whose vectors at ``layer`` are closest (cosine) to
    ``vector``."""
    k = _check_k(k)
    if not 0 <= layer < bank.vectors.size(0):
        raise ValueError(f"layer must be between 0 and {bank.vectors.size(0) - 1}, got {layer}")
    unit = F.normalize(bank.vectors[layer].double(), dim=-1)
    scores = unit @ F.normalize(vector.double(), dim=-1)
    best = scores.topk(min(k, len(bank.occurrences)))
    return [(bank.occurrences[i], float(s)) for s, i in zip(best.values, best.indices, strict=True)]


def bank_sentences(text: str, count: int) -> list[str]:
    """The first ``count`` different sentences of a corpus, each ending in " ." as written."""
    seen: dict[str, None] = {}
    for line in text.splitlines():
        for part in line.split(" ."):
            sentence = part.strip()
            if sentence:
                seen.setdefault(sentence + " .", None)
                if len(seen) == count:
                    return list(seen)
    return list(seen)


# ---------------------------------------------------------------------------------------------
# A 2-D map
# ---------------------------------------------------------------------------------------------


def pca_2d(vectors: Tensor) -> tuple[Tensor, tuple[float, float]]:
    """Rows of ``vectors`` (N, d) projected on their two main directions of variation, and the
    share of the variance each direction keeps (PCA through the SVD of the centred rows)."""
    if vectors.dim() != 2 or vectors.size(0) < 2 or vectors.size(1) < 2:
        raise ValueError(_("a 2-D map needs at least two vectors of at least two numbers"))
    centred = vectors.double() - vectors.double().mean(dim=0)
    u, s, _vh = torch.linalg.svd(centred, full_matrices=False)
    total = (s**2).sum()
    if total == 0:
        raise ValueError(_("every vector is the same, so there is no variation to map"))
    s2 = torch.cat([s, s.new_zeros(2)])[:2]
    u2 = torch.cat([u, u.new_zeros(u.size(0), 2)], dim=1)[:, :2]
    explained = (s2**2 / total).tolist()
    return (u2 * s2).float(), (explained[0], explained[1])


# ---------------------------------------------------------------------------------------------
# Predict, then reveal (the lesson's ``predict:`` questions)
# ---------------------------------------------------------------------------------------------

LABEL_CHARS = 48  # characters of a sentence shown in a choice


def sentence_choice(vectors: ContextualVectors, k: int) -> str:
    """'sentence n (text)' for the k-th sentence that contains the word (text cut short)."""
    n = vectors.found[k]
    text = vectors.sentences[n].text
    cut = text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"
    return f"sentence {n + 1} ({cut})"


def _pair_cosines(vectors: ContextualVectors, a: int, b: int) -> list[float]:
    """The cosine of the word's vectors in found sentences ``a`` and ``b``, layer by layer."""
    return [float(cosine_matrix(layer[[a, b]])[0, 1]) for layer in vectors.layers]


def _chart_data(vectors: ContextualVectors, pairs: list[tuple[int, int]]) -> dict:
    """What ``figures.contextual_embeddings.similarity_chart`` draws for pairs of found
    sentences (numbered among all the sentences given)."""
    return {
        "pairs": {
            (vectors.found[a], vectors.found[b]): _pair_cosines(vectors, a, b) for a, b in pairs
        },
        "sentences": [state.text for state in vectors.sentences],
        "word": vectors.word,
        "static": None,
    }


def _needs(vectors: ContextualVectors, sentences: int) -> None:
    if len(vectors.found) < sentences:
        raise ValueError(
            _("the word must stand in at least {count} of your sentences").format(count=sentences)
        )


def predict_layer_zero(vectors: ContextualVectors, loaded) -> Prediction:
    """The cosine of the word's layer-0 vectors in the first two sentences that contain it."""
    _needs(vectors, 2)

    def reveal() -> Reveal:
        cosines = _pair_cosines(vectors, 0, 1)
        values = {
            "first_position": vectors.spans[0][0],
            "second_position": vectors.spans[1][0],
            "last": cosines[-1],
        }
        return Reveal(cosines[0], values, _chart_data(vectors, [(0, 1)]))

    values = {
        "model": loaded.name,
        "word": repr(vectors.word),
        "first": vectors.found[0] + 1,
        "second": vectors.found[1] + 1,
    }
    return Prediction(values, reveal, bounds=(-1.0, 1.0))


def predict_closest_sentence(vectors: ContextualVectors, loaded) -> Prediction:
    """At the last layer, which other sentence gives the word the vector closest to its vector
    in the first sentence that contains it."""
    _needs(vectors, 3)
    others = range(1, len(vectors.found))
    labels = [sentence_choice(vectors, k) for k in range(len(vectors.found))]

    def reveal() -> Reveal:
        last = {k: _pair_cosines(vectors, 0, k)[-1] for k in others}
        closest, farthest = max(last, key=last.get), min(last, key=last.get)
        values = {
            "similarity": last[closest],
            "farthest": labels[farthest],
            "lowest": last[farthest],
        }
        return Reveal(labels[closest], values, _chart_data(vectors, [(0, k) for k in others]))

    values = {"model": loaded.name, "word": repr(vectors.word), "sentence": labels[0]}
    return Prediction(values, reveal, tuple(labels[k] for k in others))


def predict_least_alike_layer(vectors: ContextualVectors, loaded) -> Prediction:
    """The layer at which the word's vectors in the first and the last sentence that contain it
    are least alike."""
    _needs(vectors, 2)
    last = len(vectors.found) - 1
    cosines = _pair_cosines(vectors, 0, last)
    if max(cosines) - min(cosines) < 1e-6:
        raise ValueError(_("the word has the same vector at every layer in those two sentences"))

    def reveal() -> Reveal:
        layer = min(range(len(cosines)), key=cosines.__getitem__)
        values = {"similarity": cosines[layer], "zero": cosines[0], "top": cosines[-1]}
        return Reveal(layer, values, _chart_data(vectors, [(0, last)]))

    values = {
        "model": loaded.name,
        "word": repr(vectors.word),
        "first": vectors.found[0] + 1,
        "second": vectors.found[last] + 1,
        "layers": len(cosines) - 1,
    }
    return Prediction(values, reveal, bounds=(0, len(cosines) - 1))
