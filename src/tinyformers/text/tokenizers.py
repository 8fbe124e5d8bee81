"""Tokenizers: turn text into the integer ids a Transformer reads, and back.

Three kinds are trained here with the Hugging Face ``tokenizers`` library:

* ``"char"`` -- every distinct character (Unicode code point) of the training text is one
  token. Lossless for text made of characters it has seen; anything else becomes ``[UNK]``.
* ``"bpe"`` -- byte-level Byte-Pair Encoding, as in GPT-2. Text is first turned into UTF-8
  bytes, so every string can be encoded and ``decode(encode(s)) == s`` always holds. Training
  starts from the 256 bytes and repeatedly merges the most frequent neighbouring pair.
* ``"wordpiece"`` -- WordPiece, as in BERT. It is *lossy*: text is lowercased, accents are
  removed, whitespace runs collapse to a single space, and punctuation is split off, so
  ``decode(encode(s))`` gives the normalized text, not ``s``. Pieces that continue a word are
  written with a ``##`` prefix (``"play" "##ing"``).

Every tokenizer trained here puts the same special tokens at the same ids, ``[PAD]`` = 0 up to
``[EOS]`` = 6 (see :data:`SPECIAL_TOKENS`). :meth:`Tokenizer.encode` never produces them: the
text ``"[MASK]"`` is tokenized like any other text, which keeps byte-level BPE lossless. To put
a special token into a sequence, insert its id (``tok.mask_id``) into the list of ids.
"""

from __future__ import annotations

import json
import operator
from itertools import islice
from pathlib import Path

import tokenizers
from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, trainers

from tinyformers.i18n import _

KINDS = ("char", "bpe", "wordpiece")
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[BOS]", "[EOS]"]
MAX_VOCAB_SIZE = 1_000_000
DEFAULT_VOCAB_SIZE = 1000
BYTE_ALPHABET_SIZE = 256
WORDPIECE_PREFIX = "##"

_KIND_BY_MODEL_TYPE = {"WordLevel": "char", "BPE": "bpe", "WordPiece": "wordpiece"}


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table from each byte to a printable character (a space becomes ``"Ġ"``).

    Byte-level BPE stores its tokens in these characters so that every token is visible text.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    table = {byte: chr(byte) for byte in printable}
    next_free = 0
    for byte in range(BYTE_ALPHABET_SIZE):
        if byte not in table:
            table[byte] = chr(BYTE_ALPHABET_SIZE + next_free)
            next_free += 1
    return table


_BYTE_OF_CHAR = {char: byte for byte, char in _bytes_to_unicode().items()}


def _readable_byte_level(token: str) -> str:
    """Turn a byte-level token such as ``"Ġcat"`` into the text it stands for (``" cat"``).

    A token can hold only part of a multi-byte character (an emoji is four bytes); such stray
    bytes are shown as ``<0xF0>``.
    """
    if any(char not in _BYTE_OF_CHAR for char in token):
        return token
    raw = bytes(_BYTE_OF_CHAR[char] for char in token)
    text = raw.decode("utf-8", errors="surrogateescape")
    return "".join(
        f"<0x{ord(char) - 0xDC00:02X}>" if "\udc80" <= char <= "\udcff" else char for char in text
    )


class Tokenizer:
    """Thin wrapper around :class:`tokenizers.Tokenizer` with the project's conventions.

    ``kind`` is one of :data:`KINDS` and ``hf`` is the wrapped Hugging Face object. Build one
    with :func:`train_tokenizer` (or ``train_char``/``train_bpe``/``train_wordpiece``), or read
    one back with :meth:`load` / :meth:`from_str`. Special-token strings in the input are
    tokenized as plain text, so ``hf.encode_special_tokens`` is switched on here.
    """

    def __init__(self, hf: tokenizers.Tokenizer, kind: str):
        if kind not in KINDS:
            raise ValueError(f"unknown tokenizer kind {kind!r}; choose one of {', '.join(KINDS)}")
        for expected_id, token in enumerate(SPECIAL_TOKENS):
            if hf.token_to_id(token) != expected_id:
                raise ValueError(
                    f"tokenizer does not follow the project's conventions: expected special "
                    f"token {token} at id {expected_id}, found id {hf.token_to_id(token)}"
                )
        hf.encode_special_tokens = True
        self.hf = hf
        self.kind = kind

    def __repr__(self) -> str:
        return f"Tokenizer(kind={self.kind!r}, vocab_size={self.vocab_size})"

    def encode(self, text: str) -> list[int]:
        """Token ids for ``text``, without adding any special tokens."""
        _check_is_text(text)
        return self.hf.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        """Text for a list of token ids; special tokens such as ``[PAD]`` are left out."""
        ids = [operator.index(i) for i in ids]
        for token_id in ids:
            self._check_id(token_id)
        return self.hf.decode(ids, skip_special_tokens=True)

    def tokens(self, text: str) -> list[str]:
        """The tokens of ``text`` as readable strings, one per id of :meth:`encode`.

        Byte-level BPE tokens are shown as the text they stand for (``" cat"``, not ``"Ġcat"``);
        WordPiece keeps its ``##`` prefix, which marks a piece that continues a word.
        """
        _check_is_text(text)
        raw_tokens = self.hf.encode(text, add_special_tokens=False).tokens
        if self.kind == "bpe":
            return [_readable_byte_level(token) for token in raw_tokens]
        return raw_tokens

    def display_tokens(self, ids: list[int]) -> list[str]:
        """Readable strings for any list of ids (special tokens included), as :meth:`tokens` shows."""
        raw_tokens = [self.id_to_token(i) for i in ids]
        if self.kind == "bpe":
            special = set(SPECIAL_TOKENS)
            return [t if t in special else _readable_byte_level(t) for t in raw_tokens]
        return raw_tokens

    def id_to_token(self, i: int) -> str:
        """The token string stored for id ``i`` (byte-level BPE tokens keep their ``Ġ``)."""
        i = operator.index(i)
        self._check_id(i)
        return self.hf.id_to_token(i)

    def token_to_id(self, tok: str) -> int | None:
        """The id of token string ``tok``, or ``None`` if it is not in the vocabulary."""
        return self.hf.token_to_id(tok)

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""
        return self.hf.get_vocab_size(with_added_tokens=True)

    @property
    def pad_id(self) -> int:
        return SPECIAL_TOKENS.index("[PAD]")

    @property
    def unk_id(self) -> int:
        return SPECIAL_TOKENS.index("[UNK]")

    @property
    def cls_id(self) -> int:
        return SPECIAL_TOKENS.index("[CLS]")

    @property
    def sep_id(self) -> int:
        return SPECIAL_TOKENS.index("[SEP]")

    @property
    def mask_id(self) -> int:
        return SPECIAL_TOKENS.index("[MASK]")

    @property
    def bos_id(self) -> int:
        return SPECIAL_TOKENS.index("[BOS]")

    @property
    def eos_id(self) -> int:
        return SPECIAL_TOKENS.index("[EOS]")

    def save(self, path: str | Path) -> None:
        """Write the tokenizer as a standard ``tokenizer.json`` file."""
        Path(path).write_text(self.to_str(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Read a ``tokenizer.json`` written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no tokenizer file at {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"could not read tokenizer file {path}: {error}") from error
        try:
            return cls.from_str(text)
        except ValueError as error:
            raise ValueError(f"{path} is not a valid tokenizer file: {error}") from error

    def to_str(self) -> str:
        """The tokenizer as a JSON string (the contents of ``tokenizer.json``)."""
        return self.hf.to_str()

    def __reduce__(self):
        """Pickle through the JSON form, so the settings it restores survive (caches pickle)."""
        return (Tokenizer.from_str, (self.to_str(),))

    @classmethod
    def from_str(cls, s: str) -> Tokenizer:
        """Rebuild a tokenizer from the JSON string made by :meth:`to_str`."""
        try:
            model_type = json.loads(s)["model"]["type"]
        except (TypeError, KeyError, json.JSONDecodeError) as error:
            raise ValueError(f"not a tokenizer JSON: {error!r}") from error
        try:
            hf = tokenizers.Tokenizer.from_str(s)
        except Exception as error:  # the tokenizers library raises a bare Exception
            raise ValueError(f"not a tokenizer JSON: {error}") from error
        if model_type not in _KIND_BY_MODEL_TYPE:
            raise ValueError(
                f"unsupported tokenizer model {model_type!r}; "
                f"expected one of {', '.join(_KIND_BY_MODEL_TYPE)}"
            )
        return cls(hf, _KIND_BY_MODEL_TYPE[model_type])

    def _check_id(self, token_id: int) -> None:
        if not 0 <= token_id < self.vocab_size:
            raise ValueError(
                f"token id {token_id} is outside the vocabulary (0 to {self.vocab_size - 1})"
            )


def _check_is_text(text: object) -> None:
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")


def _check_training_text(text: object) -> None:
    _check_is_text(text)
    if not text:
        raise ValueError(_("cannot train a tokenizer on empty text"))


def _check_vocab_size(vocab_size: object, minimum: int, what: str) -> None:
    allowed = f"between {minimum} and {MAX_VOCAB_SIZE} for {what}"
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise ValueError(f"vocabulary size must be a whole number {allowed}, got {vocab_size!r}")
    if not minimum <= vocab_size <= MAX_VOCAB_SIZE:
        raise ValueError(f"vocabulary size must be {allowed}, got {vocab_size}")


def _check_min_frequency(min_frequency: object) -> None:
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(
            f"min_frequency must be a whole number of at least 1, got {min_frequency!r}"
        )


def train_char(text: str) -> Tokenizer:
    """A character tokenizer: one token per distinct character of ``text``.

    Ids are the special tokens first, then the characters sorted by code point.
    """
    _check_training_text(text)
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for char in sorted(set(text)):
        vocab.setdefault(char, len(vocab))
    hf = tokenizers.Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    hf.decoder = decoders.Fuse()
    hf.add_special_tokens(SPECIAL_TOKENS)
    return Tokenizer(hf, "char")


def train_bpe(text: str, vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """A byte-level BPE tokenizer (GPT-2 style) with at most ``vocab_size`` tokens.

    Ids are the special tokens, then the 256 byte tokens, then one token per learned merge.
    Merging stops early when no pair occurs at least ``min_frequency`` times.
    """
    _check_training_text(text)
    _check_vocab_size(vocab_size, len(SPECIAL_TOKENS) + BYTE_ALPHABET_SIZE, "byte-level BPE")
    _check_min_frequency(min_frequency)
    hf = tokenizers.Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf.train_from_iterator([text], trainer)
    return Tokenizer(hf, "bpe")


def _wordpiece_pipeline(model: models.Model) -> tokenizers.Tokenizer:
    """BERT's text handling around ``model``: lowercase, split words and punctuation."""
    hf = tokenizers.Tokenizer(model)
    hf.normalizer = normalizers.BertNormalizer(lowercase=True)
    hf.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    hf.decoder = decoders.WordPiece(prefix=WORDPIECE_PREFIX)
    return hf


def _wordpiece_words(text: str) -> list[str]:
    """The words WordPiece sees in ``text``, after lowercasing and splitting off punctuation."""
    _check_training_text(text)
    pipeline = _wordpiece_pipeline(models.WordPiece(unk_token="[UNK]"))
    normalized = pipeline.normalizer.normalize_str(text)
    words = [word for word, _span in pipeline.pre_tokenizer.pre_tokenize_str(normalized)]
    if not words:
        raise ValueError(_("cannot train a WordPiece tokenizer on text without words"))
    return words


def _wordpiece_alphabet(words: list[str]) -> tuple[list[str], list[str]]:
    """All characters of ``words``, and those that also appear after a word's first letter."""
    all_chars = sorted({char for word in words for char in word})
    continuing_chars = sorted({char for word in words for char in word[1:]})
    return all_chars, continuing_chars


def wordpiece_min_vocab_size(text: str) -> int:
    """Smallest WordPiece vocabulary for ``text``: the specials plus every character as a word
    start (``"a"``) and every character that continues a word as ``"##a"``."""
    all_chars, continuing_chars = _wordpiece_alphabet(_wordpiece_words(text))
    return len(SPECIAL_TOKENS) + len(all_chars) + len(continuing_chars)


def _private_use_chars(count: int, avoid: set[str]) -> list[str]:
    """``count`` characters from Unicode's private use planes that are not in ``avoid``."""
    planes = (range(0xF0000, 0xFFFFE), range(0x100000, 0x10FFFE))
    free = (chr(code) for plane in planes for code in plane if chr(code) not in avoid)
    chars = list(islice(free, count))
    if len(chars) < count:
        raise ValueError(f"text has too many distinct characters ({count}) for WordPiece")
    return chars


def train_wordpiece(text: str, vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """A BERT-style WordPiece tokenizer with at most ``vocab_size`` tokens.

    The text is lowercased and split on whitespace and punctuation before training, so the
    tokenizer is lossy (see the module docstring). Training is BPE on the words, where a
    character that continues a word counts as a different symbol from the same character
    starting a word; each learned piece that continues a word gets the ``##`` prefix.

    To make training repeatable, every continuing character is first written as a stand-in
    character from Unicode's private use area, so all symbols are known (and sorted) before
    training starts; the stand-ins are turned back into ``##`` pieces afterwards.
    """
    words = _wordpiece_words(text)
    all_chars, continuing_chars = _wordpiece_alphabet(words)
    minimum = len(SPECIAL_TOKENS) + len(all_chars) + len(continuing_chars)
    _check_vocab_size(vocab_size, minimum, "WordPiece on this text")
    _check_min_frequency(min_frequency)
    stand_ins = _private_use_chars(len(continuing_chars), set(all_chars))
    stand_in_of = dict(zip(continuing_chars, stand_ins, strict=True))
    original_of = dict(zip(stand_ins, continuing_chars, strict=True))

    bpe = tokenizers.Tokenizer(models.BPE())
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=all_chars,
        show_progress=False,
    )
    marked_words = (word[0] + "".join(stand_in_of[char] for char in word[1:]) for word in words)
    bpe.train_from_iterator(marked_words, trainer)

    def to_wordpiece(token: str) -> str:
        if token in SPECIAL_TOKENS:
            return token
        if token[0] in original_of:
            return WORDPIECE_PREFIX + "".join(original_of[char] for char in token)
        return token[0] + "".join(original_of[char] for char in token[1:])

    vocab = {to_wordpiece(token): i for token, i in bpe.get_vocab().items()}
    assert len(vocab) == bpe.get_vocab_size(), "stand-in characters must map back one to one"
    hf = _wordpiece_pipeline(
        models.WordPiece(vocab=vocab, unk_token="[UNK]", continuing_subword_prefix=WORDPIECE_PREFIX)
    )
    hf.add_special_tokens(SPECIAL_TOKENS)
    return Tokenizer(hf, "wordpiece")


def train_tokenizer(kind: str, text: str, vocab_size: int | None = None) -> Tokenizer:
    """Train a tokenizer of the given ``kind`` on ``text``.

    ``vocab_size`` is ignored for ``"char"`` (the text fixes the vocabulary). For the other
    kinds ``None`` means :data:`DEFAULT_VOCAB_SIZE`, raised to the smallest size the text allows.
    """
    if kind == "char":
        return train_char(text)
    if kind == "bpe":
        return train_bpe(text, DEFAULT_VOCAB_SIZE if vocab_size is None else vocab_size)
    if kind == "wordpiece":
        if vocab_size is None:
            vocab_size = max(DEFAULT_VOCAB_SIZE, wordpiece_min_vocab_size(text))
        return train_wordpiece(text, vocab_size)
    raise ValueError(f"unknown tokenizer kind {kind!r}; choose one of {', '.join(KINDS)}")


def bpe_merges(tok: Tokenizer) -> list[tuple[str, str]]:
    """The merges a BPE tokenizer learned, in the order it learned them.

    Tokens are in byte-level form, so a leading space shows as ``"Ġ"``.
    """
    if tok.kind != "bpe":
        raise ValueError(f"only BPE tokenizers have merges, this one is {tok.kind!r}")
    merges = json.loads(tok.to_str())["model"]["merges"]
    pairs = []
    for merge in merges:
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        pairs.append((left, right))
    return pairs
