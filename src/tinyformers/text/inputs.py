"""The one place that turns text into what a model reads.

- GPT reads the plain token ids of the text.
- BERT reads ``[CLS] A [SEP]``, or ``[CLS] A [SEP] B [SEP]`` for a sentence pair, with a segment
  id per position (0 for A and its specials, 1 for B).

Every tokenizer trained here keeps the special tokens at the same ids (``SPECIAL_TOKENS`` in
``tokenizers``), so ``SPECIAL_IDS`` is the same set for all of them.

A student may type a special token. ``read_typed_text`` gives it the meaning students expect
from other demos: ``[MASK]`` is BERT's mask token, ``[SEP]`` splits a BERT sentence pair and
``<|endoftext|>`` is GPT's end of text. Any other special-token string is read as plain text,
with a note saying so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tinyformers.i18n import _
from tinyformers.text.tokenizers import SPECIAL_TOKENS

SPECIAL_IDS = frozenset(range(len(SPECIAL_TOKENS)))
END_OF_TEXT = "<|endoftext|>"
TYPED_SPECIALS = {  # family -> typed string -> the tokenizer attribute holding its id
    "bert": {"[MASK]": "mask_id", "[SEP]": "sep_id"},
    "gpt": {END_OF_TEXT: "eos_id"},
}
_SPECIAL_PATTERN = re.compile(
    "(" + "|".join(re.escape(s) for s in [*SPECIAL_TOKENS, END_OF_TEXT]) + ")"
)


def bert_wrap(tokenizer, ids: list[int], max_length: int | None = None) -> list[int]:
    """``[CLS] ids [SEP]``, with ``ids`` cut so that the whole fits in ``max_length``."""
    if max_length is not None:
        if max_length < 3:
            raise ValueError(f"BERT needs room for [CLS], one token and [SEP], got {max_length}")
        ids = ids[: max_length - 2]
    return [tokenizer.cls_id, *ids, tokenizer.sep_id]


def text_room(family: str, positions: int) -> int:
    """How many tokens of a text fit in ``positions`` model positions: BERT spends two of them
    on ``[CLS]`` and ``[SEP]``, other families none."""
    room = positions - (2 if family == "bert" else 0)
    if room < 1:
        raise ValueError(f"{positions} positions leave no room for text in a {family} model")
    return room


def bert_inputs(tokenizer, text_a: str, text_b: str | None = None) -> tuple[list[int], list[int]]:
    """``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]`` ids, and the segment id of each position."""
    ids = bert_wrap(tokenizer, tokenizer.encode(text_a))
    segments = [0] * len(ids)
    if text_b is not None:
        b = [*tokenizer.encode(text_b), tokenizer.sep_id]
        ids += b
        segments += [1] * len(b)
    return ids, segments


def model_input_ids(tokenizer, family: str, text: str, max_length: int | None = None) -> list[int]:
    """What a model of ``family`` reads for ``text``: ``[CLS] text [SEP]`` for BERT, the plain
    tokens otherwise; cut to ``max_length`` ids when it is given."""
    ids = tokenizer.encode(text)
    if family == "bert":
        return bert_wrap(tokenizer, ids, max_length)
    return ids if max_length is None else ids[:max_length]


def word_token_spans(tokenizer, words: list[str], offset: int = 0) -> list[tuple[int, int]]:
    """(start, end) token positions of each word when ``" ".join(words)`` is encoded.

    Both our BPE and WordPiece pre-tokenize on spaces, so a sentence's ids are the
    concatenation of its words' ids; ``offset`` accounts for a leading [CLS].
    """
    spans, position = [], offset
    for i, word in enumerate(words):
        n = len(tokenizer.encode(word if i == 0 else " " + word))
        spans.append((position, position + n))
        position += n
    return spans


@dataclass(frozen=True)
class TypedInput:
    """What a model reads for the text a student typed, special tokens included."""

    ids: list[int]
    segments: list[int] | None = None  # BERT's segment id per position
    notes: list[str] = field(default_factory=list)  # what was read differently from its looks


def read_typed_text(tokenizer, family: str, text: str, max_length: int | None = None) -> TypedInput:
    """Token ids for ``text`` in which typed special tokens keep their meaning for ``family``.

    For BERT the result is ``[CLS] A [SEP]`` (``[CLS] A [SEP] B [SEP]`` when ``[SEP]`` was
    typed), with a ``[MASK]`` id wherever ``[MASK]`` was typed. ``max_length`` cuts the text so
    the whole, specials included, fits.
    """
    known = TYPED_SPECIALS.get(family, {})
    ids: list[int] = []
    notes: list[str] = []
    for piece in _SPECIAL_PATTERN.split(text):
        if not piece:
            continue
        if piece in known:
            ids.append(getattr(tokenizer, known[piece]))
            continue
        if _SPECIAL_PATTERN.fullmatch(piece):
            note = _(
                "'{token}' means nothing special to this model, so it is read as ordinary text."
            ).format(token=piece)
            if note not in notes:
                notes.append(note)
        ids.extend(tokenizer.encode(piece))
    if family != "bert":
        return TypedInput(ids if max_length is None else ids[:max_length], None, notes)
    return _bert_pair(tokenizer, ids, max_length, notes)


def _bert_pair(tokenizer, body: list[int], max_length: int | None, notes: list[str]) -> TypedInput:
    """``[CLS] body [SEP]`` with segment 1 after the first typed ``[SEP]``."""
    while body and body[-1] == tokenizer.sep_id:
        body = body[:-1]  # the closing [SEP] is added below
    ids = bert_wrap(tokenizer, body, max_length)
    first_sep = ids.index(tokenizer.sep_id, 1)
    segments = [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)
    if ids.count(tokenizer.sep_id) > 2:
        notes = [*notes, "BERT reads two segments: every part after the first [SEP] is segment B."]
    return TypedInput(ids, segments, notes)
