"""The one place that turns text into what a model reads.

- GPT reads the plain token ids of the text.
- BERT reads ``[CLS] A [SEP]``, or ``[CLS] A [SEP] B [SEP]`` for a sentence pair, with a segment
  id per position (0 for A and its specials, 1 for B).

Every tokenizer trained here keeps the special tokens at the same ids (``SPECIAL_TOKENS`` in
``tokenizers``), so ``SPECIAL_IDS`` is the same set for all of them.
"""

from __future__ import annotations

from tinyformers.text.tokenizers import SPECIAL_TOKENS

SPECIAL_IDS = frozenset(range(len(SPECIAL_TOKENS)))


def bert_wrap(tokenizer, ids: list[int], max_length: int | None = None) -> list[int]:
    """``[CLS] ids [SEP]``, with ``ids`` cut so that the whole fits in ``max_length``."""
    if max_length is not None:
        if max_length < 3:
            raise ValueError(f"BERT needs room for [CLS], one token and [SEP], got {max_length}")
        ids = ids[: max_length - 2]
    return [tokenizer.cls_id, *ids, tokenizer.sep_id]


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
