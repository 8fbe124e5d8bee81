"""Byte-Pair Encoding one merge at a time: learn merges, replay them, and split words with them.

BPE training starts with every word of the corpus split into single symbols (for byte-level BPE:
bytes, each written as one printable character, so a leading space shows as ``"Ġ"``). It then
repeats one step: count every pair of neighbouring symbols, weighted by how often each word
occurs, merge the most frequent pair into a new symbol everywhere, and add that symbol to the
vocabulary. It stops when the vocabulary is full or no pair occurs often enough.

When two pairs occur equally often, the Hugging Face ``tokenizers`` trainer takes the pair whose
*left* symbol has the smaller id, and if the left symbols are the same, the one whose right
symbol has the smaller id (its priority queue orders merges by count, then by the pair of ids in
ascending order). Ids are given in this order: the special tokens, then the initial alphabet
sorted by code point, then each merged symbol when it is created. So among equally frequent
pairs, the one built from older or "smaller" symbols wins.

:func:`learn_merges` runs that procedure on word counts and gives the same merge list as
``tokenizers`` (the tests check this on several corpora). :func:`replay_merges` takes a merge
list that was already learned and reports, for every step, how often the merged pair occurred at
that moment and which other pair came closest. :func:`segment` splits a word with the first
``k`` merges, and :func:`compression_curve` counts the tokens of a text after every merge.
:class:`TrainedBPE` holds what the lesson shows about one trained tokenizer.
"""

from __future__ import annotations

import hashlib
import heapq
import unicodedata
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise

from tokenizers import pre_tokenizers

from tinyformers.i18n import N_, _, ngettext
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.corpora import DEFAULT_LESSONS_DIR, lesson_corpus
from tinyformers.text.tokenizers import (
    BYTE_ALPHABET_SIZE,
    SPECIAL_TOKENS,
    Tokenizer,
    bpe_merges,
    train_bpe,
    train_char,
    train_wordpiece,
    wordpiece_min_vocab_size,
)

Pair = tuple[str, str]

# What the lesson's page starts with (the lesson plans time the same computation): BPE trained
# on this many generated stories, to this vocabulary size.
STORIES = 500
DEFAULT_VOCAB = 1000
BASE_VOCAB_SIZE = len(SPECIAL_TOKENS) + BYTE_ALPHABET_SIZE
"""Vocabulary size before the first merge: the special tokens and the 256 bytes."""


@dataclass(frozen=True)
class MergeStep:
    """One merge: ``left + right`` becomes ``token``.

    ``count`` is how many times the pair stood side by side in the corpus just before this merge
    (occurrences inside each distinct word, times that word's frequency). ``runner_up`` is the
    best other pair at that moment and ``runner_up_count`` its count; when the two counts are
    equal the merge was decided by the tie-break rule. Token strings are in byte-level form
    (``"Ġ"`` is a space). ``pair_ids`` and ``runner_up_ids`` are the ids the tie-break compares.
    """

    step: int
    left: str
    right: str
    count: int
    vocab_size: int
    pair_ids: tuple[int, int]
    runner_up: Pair | None = None
    runner_up_count: int = 0
    runner_up_ids: tuple[int, int] | None = None

    @property
    def pair(self) -> Pair:
        return (self.left, self.right)

    @property
    def token(self) -> str:
        return self.left + self.right

    @property
    def is_tie(self) -> bool:
        """True if another pair was exactly as frequent and lost on the tie-break."""
        return self.runner_up is not None and self.runner_up_count == self.count


def base_vocabulary() -> dict[str, int]:
    """Ids before any merge: special tokens, then the 256 byte symbols sorted by code point."""
    ids = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        ids.setdefault(symbol, len(ids))
    return ids


def word_counts(tok: Tokenizer, text: str) -> dict[str, int]:
    """How often each word occurs in ``text``, split exactly as ``tok`` splits text into words.

    For byte-level BPE the words are in byte-level form: ``" cat"`` is counted as ``"Ġcat"``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    if tok.hf.normalizer is not None:
        text = tok.hf.normalizer.normalize_str(text)
    words = (word for word, _span in tok.hf.pre_tokenizer.pre_tokenize_str(text))
    return dict(Counter(words))


class _PairCounter:
    """The corpus as lists of symbols, with a count of every neighbouring pair.

    Counts are kept up to date after each merge by recounting only the words that contained the
    merged pair. A heap ordered like the library's queue (highest count first, then the smaller
    pair of ids) finds the next pair to merge; heap entries whose count is out of date are
    skipped when they come up.
    """

    def __init__(self, counts: dict[str, int]):
        if not counts:
            raise ValueError("cannot learn merges from a corpus without words")
        self.ids = base_vocabulary()
        self.words = [list(word) for word in counts]
        self.freqs = list(counts.values())
        self.pair_counts: Counter[Pair] = Counter()
        self.words_with: dict[Pair, set[int]] = {}
        for index, symbols in enumerate(self.words):
            for symbol in symbols:
                self.ids.setdefault(symbol, len(self.ids))
            for pair in pairwise(symbols):
                self.pair_counts[pair] += self.freqs[index]
                self.words_with.setdefault(pair, set()).add(index)
        self.heap: list[tuple[int, int, int, Pair]] = []
        for pair in self.pair_counts:
            self._push(pair)

    @property
    def vocab_size(self) -> int:
        return len(self.ids)

    def pair_ids(self, pair: Pair) -> tuple[int, int]:
        return (self.ids[pair[0]], self.ids[pair[1]])

    def _push(self, pair: Pair) -> None:
        count = self.pair_counts[pair]
        if count > 0:
            heapq.heappush(self.heap, (-count, *self.pair_ids(pair), pair))

    def best_pairs(self, limit: int) -> list[Pair]:
        """Up to ``limit`` distinct pairs in the order the trainer would pick them."""
        found: list[Pair] = []
        popped = []
        while self.heap and len(found) < limit:
            entry = heapq.heappop(self.heap)
            pair = entry[-1]
            if -entry[0] == self.pair_counts[pair] and pair not in found:
                found.append(pair)
                popped.append(entry)
        for entry in popped:
            heapq.heappush(self.heap, entry)
        return found

    def merge(self, pair: Pair) -> None:
        """Replace every occurrence of ``pair`` by one new symbol and update the counts."""
        self.ids.setdefault(pair[0] + pair[1], len(self.ids))
        changed: set[Pair] = set()
        for index in self.words_with.pop(pair, set()):
            old = self.words[index]
            new = merge_pair(old, pair)
            if len(new) == len(old):
                continue
            freq = self.freqs[index]
            for old_pair in pairwise(old):
                self.pair_counts[old_pair] -= freq
                changed.add(old_pair)
            for new_pair in pairwise(new):
                self.pair_counts[new_pair] += freq
                self.words_with.setdefault(new_pair, set()).add(index)
                changed.add(new_pair)
            self.words[index] = new
        for changed_pair in changed:
            self._push(changed_pair)


def merge_pair(symbols: list[str], pair: Pair) -> list[str]:
    """``symbols`` with each occurrence of ``pair`` joined into one symbol, left to right."""
    merged = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            merged.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return merged


def _step(counter: _PairCounter, number: int, pair: Pair) -> MergeStep:
    """Merge ``pair`` and describe the merge, with the best other pair before it happened."""
    count = counter.pair_counts[pair]
    rivals = [other for other in counter.best_pairs(2) if other != pair]
    runner_up = rivals[0] if rivals else None
    runner_up_count = counter.pair_counts[runner_up] if runner_up else 0
    runner_up_ids = counter.pair_ids(runner_up) if runner_up else None
    ids = counter.pair_ids(pair)
    counter.merge(pair)
    return MergeStep(
        step=number,
        left=pair[0],
        right=pair[1],
        count=count,
        vocab_size=counter.vocab_size,
        pair_ids=ids,
        runner_up=runner_up,
        runner_up_count=runner_up_count,
        runner_up_ids=runner_up_ids,
    )


def _check_counts(counts: dict[str, int]) -> None:
    for word, count in counts.items():
        if not isinstance(word, str) or not word:
            raise ValueError(f"words must be non-empty strings, got {word!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"word counts must be whole numbers of at least 1, got {count!r}")


def learn_merges(
    counts: dict[str, int], vocab_size: int, min_frequency: int = 2
) -> list[MergeStep]:
    """Train byte-level BPE on word counts the way ``tokenizers`` does, one step at a time.

    At each step the most frequent pair is merged; ties go to the pair with the smaller left id,
    then the smaller right id. Training stops when the vocabulary (special tokens included) has
    ``vocab_size`` tokens or no pair occurs at least ``min_frequency`` times.
    """
    _check_counts(counts)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 0:
        raise ValueError(f"vocab_size must be a whole number, got {vocab_size!r}")
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(
            f"min_frequency must be a whole number of at least 1, got {min_frequency!r}"
        )
    counter = _PairCounter(counts)
    steps: list[MergeStep] = []
    while counter.vocab_size < vocab_size:
        best = counter.best_pairs(1)
        if not best or counter.pair_counts[best[0]] < min_frequency:
            break
        steps.append(_step(counter, len(steps) + 1, best[0]))
    return steps


def replay_merges(counts: dict[str, int], merges: list[Pair]) -> list[MergeStep]:
    """Apply already-learned ``merges`` in order to the words and describe every step.

    A merge whose pair no longer occurs gets a count of 0.
    """
    _check_counts(counts)
    counter = _PairCounter(counts)
    steps = []
    for number, (left, right) in enumerate(merges, start=1):
        unknown = [symbol for symbol in (left, right) if symbol not in counter.ids]
        if unknown:
            raise ValueError(
                f"merge {number} ({left!r}, {right!r}) uses {unknown[0]!r}, which is not in the "
                "vocabulary at that point"
            )
        steps.append(_step(counter, number, (left, right)))
    return steps


def replay_tokenizer(tok: Tokenizer, text: str) -> list[MergeStep]:
    """Replay the merges a byte-level BPE tokenizer learned, on the text it was trained on."""
    return replay_merges(word_counts(tok, text), bpe_merges(tok))


def _ranks(merges: list[Pair], k: int) -> dict[Pair, int]:
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= len(merges):
        raise ValueError(f"k must be a whole number from 0 to {len(merges)}, got {k!r}")
    return {pair: rank for rank, pair in enumerate(merges[:k])}


def _segment_with_ranks(word: str, ranks: dict[Pair, int]) -> tuple[list[str], list[int]]:
    """Split ``word`` by merging the lowest-ranked pair present until none is left.

    Returns the pieces and the rank of every merge applied, in order. The ranks never decrease:
    a pair formed by a merge contains the new symbol, and every merge that uses a symbol was
    learned after the symbol itself. So merging in rank order is the same as applying the merge
    list from the start, which is how :func:`compression_curve` reads off every ``k`` at once.
    """
    pieces = list(word)
    applied = []
    while len(pieces) > 1:
        candidates = [(ranks[p], p) for p in pairwise(pieces) if p in ranks]
        if not candidates:
            break
        rank, pair = min(candidates)
        merged = merge_pair(pieces, pair)
        applied.extend([rank] * (len(pieces) - len(merged)))
        pieces = merged
    return pieces, applied


def segment(word: str, merges: list[Pair], k: int) -> list[str]:
    """The pieces ``word`` is split into by the first ``k`` merges.

    ``word`` and the pieces are in byte-level form, like the merges (see :func:`byte_level`).
    With ``k = len(merges)`` this is how the trained tokenizer splits the word.
    """
    if not isinstance(word, str):
        raise TypeError(f"word must be a string, got {type(word).__name__}")
    pieces, _applied = _segment_with_ranks(word, _ranks(merges, k))
    return pieces


def byte_level(text: str) -> str:
    """``text`` written in byte-level symbols: one printable character per UTF-8 byte."""
    split = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    return "".join(piece for piece, _span in split.pre_tokenize_str(text))


def compression_curve(tok: Tokenizer, text: str) -> list[float]:
    """Tokens per character of ``text`` after 0, 1, ..., all merges of ``tok``.

    Entry ``k`` equals the number of pieces :func:`segment` gives for every word of ``text``
    with the first ``k`` merges, divided by the number of characters of ``text``.
    """
    if not text:
        raise ValueError("cannot measure compression on empty text")
    merges = bpe_merges(tok)
    ranks = _ranks(merges, len(merges))
    tokens = 0
    merged_at_rank = [0] * len(merges)
    for word, freq in word_counts(tok, text).items():
        tokens += freq * len(word)
        _pieces, applied = _segment_with_ranks(word, ranks)
        for rank in applied:
            merged_at_rank[rank] += freq
    curve = [tokens / len(text)]
    for merged in merged_at_rank:
        tokens -= merged
        curve.append(tokens / len(text))
    return curve


def segment_text(tok: Tokenizer, text: str, k: int) -> list[str]:
    """The tokens of ``text`` when ``tok`` may use only its first ``k`` merges.

    The text is split into words as ``tok`` splits it, then each word with :func:`segment`.
    With every merge this gives the tokens ``tok`` itself produces.
    """
    merges = bpe_merges(tok)
    ranks = _ranks(merges, k)
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    words = [word for word, _span in tok.hf.pre_tokenizer.pre_tokenize_str(text)]
    return [piece for word in words for piece in _segment_with_ranks(word, ranks)[0]]


def readable_tokens(tok: Tokenizer) -> dict[str, str]:
    """Every token of ``tok`` in its stored form, mapped to the text it stands for."""
    ids = list(range(tok.vocab_size))
    return {
        tok.id_to_token(i): shown for i, shown in zip(ids, tok.display_tokens(ids), strict=True)
    }


# --------------------------------------------------------------------------------------------
# The lesson's tokenizers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainedBPE:
    """A byte-level BPE tokenizer and what the lesson shows about it.

    ``text`` is the corpus it was trained on, ``steps`` its merges replayed on that corpus,
    ``words`` the corpus's word counts (see :func:`word_counts`) and ``shown`` the readable text
    of every token (see :func:`readable_tokens`).
    """

    text: str
    bpe: Tokenizer
    steps: list[MergeStep]
    words: dict[str, int]
    shown: dict[str, str]

    @property
    def n_merges(self) -> int:
        return len(self.steps)

    def split(self, text: str, k: int) -> tuple[list[str], list[int]]:
        """The readable tokens of ``text`` with the first ``k`` merges, and their ids."""
        pieces = segment_text(self.bpe, text, k)
        return [self.shown[piece] for piece in pieces], [self.bpe.token_to_id(p) for p in pieces]


def train_and_replay(text: str, vocab_size: int) -> TrainedBPE:
    """Train byte-level BPE on ``text`` and replay its merges on the same text."""
    tok = train_bpe(text, vocab_size)
    return TrainedBPE(
        text, tok, replay_tokenizer(tok, text), word_counts(tok, text), readable_tokens(tok)
    )


def comparison_tokenizers(text: str, vocab_size: int) -> tuple[Tokenizer, Tokenizer]:
    """A character tokenizer and a WordPiece tokenizer of ``text`` to set beside BPE.

    WordPiece gets ``vocab_size`` tokens, or more if its alphabet alone needs more.
    """
    wordpiece_size = max(vocab_size, wordpiece_min_vocab_size(text))
    return train_char(text), train_wordpiece(text, wordpiece_size)


def labelled_tokenizers(
    char: Tokenizer, bpe: Tokenizer, wordpiece: Tokenizer
) -> dict[str, Tokenizer]:
    """The three tokenizers the lesson compares, by the label each row of the comparison has."""
    return {
        _("Characters"): char,
        ngettext("Byte-level BPE ({n} token)", "Byte-level BPE ({n} tokens)", bpe.vocab_size): bpe,
        ngettext(
            "WordPiece ({n} token)", "WordPiece ({n} tokens)", wordpiece.vocab_size
        ): wordpiece,
    }


def tokenized_rows(toks: dict[str, Tokenizer], text: str) -> list[tuple[str, list[str], list[int]]]:
    """``(label, tokens, ids)`` of ``text`` for every labelled tokenizer."""
    return [(label, tok.tokens(text), tok.encode(text)) for label, tok in toks.items()]


# --------------------------------------------------------------------------------------------
# Ties and unseen words
# --------------------------------------------------------------------------------------------


def next_tie(steps: list[MergeStep], k: int) -> int | None:
    """The step number of the first merge after the first ``k`` that a tie decided, or None."""
    if k < 0:
        raise ValueError(f"k must be 0 or more, got {k}")
    return next((step.step for step in steps[k:] if step.is_tie), None)


def tie_counts(steps: list[MergeStep]) -> tuple[int, int]:
    """How many merges a tie decided, and in how many of them the merged pair had smaller ids."""
    ties = [step for step in steps if step.is_tie]
    return len(ties), sum(step.pair_ids < step.runner_up_ids for step in ties)


def word_occurrences(words: dict[str, int], word: str) -> int:
    """How often ``word`` (surrounding spaces removed) occurs as a word of its own in the word
    counts ``words``, at the start of the text or after a space."""
    bare = word.strip()
    return sum(words.get(byte_level(form), 0) for form in {bare, " " + bare})


def units_values(sentence: str | None) -> dict[str, object]:
    """The numbers the lesson's "units" section quotes about the student's sentence: its words
    (split at whitespace), its characters (one token each for a character-level tokenizer,
    spaces and punctuation included) and how many characters that makes per word."""
    words = len(sentence.split()) if sentence else 0
    if not words:
        return {"sentence_words": "no", "sentence_characters": "no", "characters_per_word": "no"}
    return {
        "sentence_words": words,
        "sentence_characters": len(sentence),
        "characters_per_word": f"{len(sentence) / words:.1f}",
    }


# --------------------------------------------------------------------------------------------
# Other scripts: bytes per character, and tokenizers trained on English or on Russian text
# --------------------------------------------------------------------------------------------

RUSSIAN_LESSONS = DEFAULT_LESSONS_DIR / "ru"
"""The Russian lesson files, the Russian text the lesson trains a second BPE on."""

SCRIPT_NAMES = {
    "latin": N_("Latin letters"),
    "cyrillic": N_("Cyrillic letters"),
    "greek": N_("Greek letters"),
    "arabic": N_("Arabic letters"),
    "hebrew": N_("Hebrew letters"),
    "cjk": N_("Chinese characters (CJK)"),
    "kana": N_("Japanese kana"),
    "hangul": N_("Korean hangul"),
    "letters": N_("other letters"),
    "digits": N_("digits"),
    "spaces": N_("spaces"),
    "punctuation": N_("punctuation"),
    "emoji": N_("emoji"),
    "other": N_("other symbols"),
}
"""The groups :func:`script_of` sorts characters into, by the name the page shows."""

_SCRIPT_WORDS = {
    "LATIN": "latin",
    "CYRILLIC": "cyrillic",
    "GREEK": "greek",
    "ARABIC": "arabic",
    "HEBREW": "hebrew",
    "CJK": "cjk",
    "HIRAGANA": "kana",
    "KATAKANA": "kana",
    "HANGUL": "hangul",
}
_FIRST_EMOJI = 0x1F000  # pictographs from here on (the emoji blocks) take four bytes in UTF-8

CORPUS_NAMES = {
    "stories": N_("English stories"),
    "lessons": N_("English lessons"),
    "own": N_("your text"),
    "russian": N_("Russian lessons"),
}
"""What each corpus the page trains on is called where the comparison says what a tokenizer
was trained on ("trained on {corpus}", "seen in {corpus}")."""

TRAINED_BPE_ROW, RUSSIAN_BPE_ROW = 1, 2
"""Where :func:`script_tokenizers` puts the BPE trained on the page's corpus and the one
trained on Russian text."""

TOKENIZER_KINDS = {
    "bpe": N_("byte-level BPE"),
    "wordpiece": N_("WordPiece"),
    "char": N_("characters"),
}


def script_of(char: str) -> str:
    """The group a character belongs to (a key of :data:`SCRIPT_NAMES`): letters by the script
    their Unicode name starts with, then digits, spaces, punctuation, emoji and the rest."""
    if len(char) != 1:
        raise ValueError(f"expected one character, got {char!r}")
    category = unicodedata.category(char)
    if category.startswith("L"):
        first_word = unicodedata.name(char, "").split(" ")[0]
        return _SCRIPT_WORDS.get(first_word, "letters")
    if category == "Nd":
        return "digits"
    if category.startswith("Z") or char.isspace():
        return "spaces"
    if category.startswith("P"):
        return "punctuation"
    if category == "So" and ord(char) >= _FIRST_EMOJI:
        return "emoji"
    return "other"


@dataclass(frozen=True)
class CharBytes:
    """One character of a text (one Unicode code point) and its UTF-8 bytes."""

    char: str
    script: str
    utf8: bytes

    @property
    def n_bytes(self) -> int:
        return len(self.utf8)

    @property
    def hex(self) -> str:
        """The bytes in hexadecimal, as ``"D0 BC"``."""
        return self.utf8.hex(" ").upper()


def char_bytes(text: str) -> list[CharBytes]:
    """Every character of ``text`` with its group and its UTF-8 bytes, in order."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return [CharBytes(char, script_of(char), char.encode("utf-8")) for char in text]


@dataclass(frozen=True)
class ScriptTotal:
    """How many characters of one group a text has, and how many UTF-8 bytes they take."""

    script: str
    characters: int
    n_bytes: int

    @property
    def bytes_per_character(self) -> float:
        return self.n_bytes / self.characters


def script_totals(chars: list[CharBytes]) -> list[ScriptTotal]:
    """Characters and bytes per group, the groups in the order they first occur."""
    characters: Counter[str] = Counter()
    n_bytes: Counter[str] = Counter()
    for char in chars:
        characters[char.script] += 1
        n_bytes[char.script] += char.n_bytes
    return [ScriptTotal(script, characters[script], n_bytes[script]) for script in characters]


def letter_count(chars: list[CharBytes]) -> int:
    """How many of the characters are letters (Unicode categories L*: CJK characters too)."""
    return sum(unicodedata.category(char.char).startswith("L") for char in chars)


def russian_corpus() -> str:
    """The text of the Russian lesson files (ValueError if there are none)."""
    return lesson_corpus(RUSSIAN_LESSONS)


def train_russian_bpe(vocab_size: int) -> Tokenizer:
    """Byte-level BPE with a vocabulary of ``vocab_size`` tokens, trained on the Russian lessons."""
    return train_bpe(russian_corpus(), vocab_size)


def script_tokenizers(
    corpus: str,
    toks: dict[str, Tokenizer],
    russian_bpe: Tokenizer,
    shipped: dict[str, Tokenizer] | None = None,
) -> dict[str, Tokenizer]:
    """The tokenizers compared on a text in another script, by label.

    ``toks`` are the page's three tokenizers trained on the corpus called ``corpus`` (a key of
    :data:`CORPUS_NAMES`), in the order :func:`labelled_tokenizers` gives them: characters,
    byte-level BPE, WordPiece. ``russian_bpe`` is the byte-level BPE of the same size trained
    on the Russian lessons; ``shipped`` are the tokenizers of shipped models, by model name.
    """
    char, bpe, wordpiece = toks.values()
    trained_on = _(CORPUS_NAMES[corpus])
    russian = _(CORPUS_NAMES["russian"])

    def bpe_label(on: str, tok: Tokenizer) -> str:
        return ngettext(
            "Byte-level BPE on {corpus} ({n} token)",
            "Byte-level BPE on {corpus} ({n} tokens)",
            tok.vocab_size,
        ).format(corpus=on)

    labelled = {
        _("Characters seen in {corpus}").format(corpus=trained_on): char,
        bpe_label(trained_on, bpe): bpe,
        bpe_label(russian, russian_bpe): russian_bpe,
        ngettext(
            "WordPiece on {corpus} ({n} token)",
            "WordPiece on {corpus} ({n} tokens)",
            wordpiece.vocab_size,
        ).format(corpus=trained_on): wordpiece,
    }
    for name, tok in (shipped or {}).items():
        kind = _(TOKENIZER_KINDS.get(tok.kind, tok.kind))
        label = ngettext(
            "{model}: {kind} ({n} token)", "{model}: {kind} ({n} tokens)", tok.vocab_size
        )
        labelled[label.format(model=name, kind=kind)] = tok
    return labelled


@dataclass(frozen=True)
class TokenCount:
    """How many tokens a tokenizer cuts a text into, against its words and characters."""

    label: str
    tokens: int
    words: int
    characters: int

    @property
    def per_word(self) -> float | None:
        return self.tokens / self.words if self.words else None

    @property
    def per_character(self) -> float | None:
        return self.tokens / self.characters if self.characters else None


def token_counts(toks: dict[str, Tokenizer], text: str) -> list[TokenCount]:
    """Tokens of ``text`` for every labelled tokenizer, with the text's words (split at
    whitespace) and characters (code points)."""
    words = len(text.split())
    return [
        TokenCount(label, len(tok.encode(text)), words, len(text)) for label, tok in toks.items()
    ]


# --------------------------------------------------------------------------------------------
# Predict, then reveal (the lesson's ``predict:`` questions)
# --------------------------------------------------------------------------------------------

MAX_WORD_CHOICES = 6  # words of the sentence offered by the "first whole word" question


def _quoted(trained: TrainedBPE, token: str) -> str:
    """A token (byte-level form) as readable text in quotes, so that a leading space shows."""
    return repr(trained.shown.get(token, token))


def predict_tokens_after_k(trained: TrainedBPE, sentence: str, k: int) -> Prediction:
    """How many tokens the sentence becomes when BPE may use only its first ``k`` merges (the
    step the merge replay is at)."""
    k = min(max(int(k), 0), trained.n_merges)
    n_bytes = len(sentence.encode("utf-8"))

    def reveal() -> Reveal:
        pieces = segment_text(trained.bpe, sentence, k)
        shown = " | ".join(trained.shown.get(p, p).replace(" ", "␣") for p in pieces)
        values = {"tokens": len(pieces), "bytes": n_bytes, "pieces": shown}
        curve = compression_curve(trained.bpe, sentence)
        return Reveal(len(pieces), values, {"curves": {"your sentence": curve}, "current": k})

    values = {"k": k, "characters": len(sentence), "bytes": n_bytes}
    return Prediction(values, reveal, bounds=(0, max(n_bytes, 1)))


def _whole_word_steps(trained: TrainedBPE, sentence: str) -> dict[str, int]:
    """The words of ``sentence`` (byte-level form, in order, each once) that the trained BPE
    keeps as one token although they are longer than one byte, with the merge step that made
    each of them a token."""
    merges = [step.pair for step in trained.steps]
    ranks = _ranks(merges, len(merges))
    found: dict[str, int] = {}
    for word, _span in trained.bpe.hf.pre_tokenizer.pre_tokenize_str(sentence):
        pieces, applied = _segment_with_ranks(word, ranks)
        if len(pieces) == 1 and applied and word not in found:
            found[word] = max(applied) + 1  # ranks count from 0, steps from 1
    return found


def predict_first_whole_word(trained: TrainedBPE, sentence: str) -> Prediction:
    """Which word of the sentence became a single token earliest while BPE trained."""
    steps = dict(list(_whole_word_steps(trained, sentence).items())[:MAX_WORD_CHOICES])
    if len(steps) < 2:
        raise ValueError(
            _("fewer than two words of your sentence are single tokens of several bytes")
        )
    labels = {word: _quoted(trained, word) for word in steps}

    def reveal() -> Reveal:
        word = min(steps, key=steps.get)
        merge = trained.steps[steps[word] - 1]
        values = {
            "word": labels[word],
            "step": merge.step,
            "merges": trained.n_merges,
            "pair": f"{_quoted(trained, merge.left)} + {_quoted(trained, merge.right)}",
            "count": merge.count,
        }
        data = {"steps": trained.steps, "current": merge.step, "shown": trained.shown}
        return Reveal(labels[word], values, data)

    return Prediction({}, reveal, tuple(labels.values()))


def _pair_label(trained: TrainedBPE, pair: Pair) -> str:
    return f"{_quoted(trained, pair[0])} + {_quoted(trained, pair[1])}"


def predict_next_tie(trained: TrainedBPE, k: int) -> Prediction:
    """The next merge after the first ``k`` that a tie decided: which of the two equally
    frequent pairs the trainer merged."""
    number = next_tie(trained.steps, min(max(int(k), 0), trained.n_merges))
    if number is None:
        raise ValueError(_("no merge after the first {k} was decided by a tie").format(k=k))
    step = trained.steps[number - 1]
    won, lost = _pair_label(trained, step.pair), _pair_label(trained, step.runner_up)
    # an order that does not give the answer away
    choices = tuple(sorted((won, lost), key=lambda label: hashlib.sha256(label.encode()).digest()))

    def reveal() -> Reveal:
        values = {
            "won": won,
            "won_ids": f"({step.pair_ids[0]}, {step.pair_ids[1]})",
            "lost": lost,
            "lost_ids": f"({step.runner_up_ids[0]}, {step.runner_up_ids[1]})",
        }
        data = {"steps": trained.steps, "current": step.step, "shown": trained.shown}
        return Reveal(won, values, data)

    values = {"step": step.step, "count": step.count, "first": choices[0], "second": choices[1]}
    return Prediction(values, reveal, choices)
