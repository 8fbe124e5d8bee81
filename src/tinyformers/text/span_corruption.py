"""T5's pre-training objective: span corruption.

Some spans of the input are dropped. Each dropped span is replaced in the input by one sentinel
token (``<extra_id_0>``, ``<extra_id_1>``, ... in order), and the target lists every sentinel
followed by the tokens it stands for, ending with one more sentinel that closes the last span:

    original  Thank you for inviting me to your party last week .
    input     Thank you <extra_id_0> me to your party <extra_id_1> week .
    target    <extra_id_0> for inviting <extra_id_1> last <extra_id_2>

How much is dropped follows T5: ``round(length × rate)`` tokens, cut into
``round(dropped / mean span length)`` spans. The span lengths and the gaps between spans are
drawn at random (seeded), every span and every inner gap has at least one token, so two spans
never touch and could not be confused with one.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from tinyformers.i18n import _

SENTINEL_PATTERN = re.compile(r"<extra_id_(\d+)>")
MIN_RATE, MAX_RATE = 0.01, 0.9
MIN_MEAN_SPAN, MAX_MEAN_SPAN = 1.0, 100.0


def sentinel(i: int) -> str:
    """The i-th sentinel token, as T5 writes it: ``<extra_id_i>``."""
    return f"<extra_id_{i}>"


@dataclass(frozen=True)
class Span:
    """Tokens ``start`` to ``end`` (exclusive) of the original were replaced by ``sentinel``."""

    start: int
    end: int
    sentinel: str
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class Corruption:
    original: tuple[str, ...]
    inputs: tuple[str, ...]
    targets: tuple[str, ...]
    spans: tuple[Span, ...]

    @property
    def n_dropped(self) -> int:
        return sum(span.end - span.start for span in self.spans)

    @property
    def dropped_fraction(self) -> float:
        return self.n_dropped / len(self.original)


def check_settings(n_tokens: int, rate: float, mean_span_length: float) -> None:
    """Raise a ValueError saying what to change unless the settings can be used."""
    if n_tokens < 2:
        raise ValueError(
            _(
                "span corruption needs at least two words (one to drop, one to keep); got {count}"
            ).format(count=n_tokens)
        )
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(
            f"the corruption rate must be between {MIN_RATE} and {MAX_RATE}, got {rate}"
        )
    if not MIN_MEAN_SPAN <= mean_span_length <= MAX_MEAN_SPAN:
        raise ValueError(
            f"the mean span length must be between {MIN_MEAN_SPAN:g} and {MAX_MEAN_SPAN:g}, "
            f"got {mean_span_length}"
        )


def span_counts(n_tokens: int, rate: float, mean_span_length: float) -> tuple[int, int]:
    """(tokens to drop, number of spans): at least one of each, and at least one token kept."""
    check_settings(n_tokens, rate, mean_span_length)
    n_dropped = min(max(round(n_tokens * rate), 1), n_tokens - 1)
    n_kept = n_tokens - n_dropped
    n_spans = max(round(n_dropped / mean_span_length), 1)
    n_spans = min(n_spans, n_dropped, n_kept + 1)  # spans need a kept token between them
    return n_dropped, n_spans


def random_composition(total: int, parts: int, rng: random.Random) -> list[int]:
    """``total`` split into ``parts`` non-negative integers, every split equally likely."""
    bars = sorted(rng.sample(range(total + parts - 1), parts - 1))
    edges = [-1, *bars, total + parts - 1]
    return [edges[i + 1] - edges[i] - 1 for i in range(parts)]


def span_layout(
    n_tokens: int, rate: float, mean_span_length: float, seed: int
) -> list[tuple[int, int]]:
    """The (start, end) positions of the dropped spans, in order, never touching."""
    n_dropped, n_spans = span_counts(n_tokens, rate, mean_span_length)
    rng = random.Random(seed)
    lengths = [1 + extra for extra in random_composition(n_dropped - n_spans, n_spans, rng)]
    n_kept = n_tokens - n_dropped
    gaps = random_composition(n_kept - (n_spans - 1), n_spans + 1, rng)
    gaps = [gap + (0 < i < n_spans) for i, gap in enumerate(gaps)]  # inner gaps get one more
    spans, position = [], 0
    for gap, length in zip(gaps[:-1], lengths, strict=True):
        position += gap
        spans.append((position, position + length))
        position += length
    assert position + gaps[-1] == n_tokens
    return spans


def corrupt_spans(
    tokens: Sequence[str], rate: float = 0.15, mean_span_length: float = 3.0, seed: int = 0
) -> Corruption:
    """Drop random spans of ``tokens`` the way T5 pre-trains; the same seed, the same spans."""
    tokens = tuple(tokens)
    if any(not isinstance(token, str) for token in tokens):
        raise ValueError("span corruption works on a list of strings (words or tokens)")
    taken = sorted({t for t in tokens if SENTINEL_PATTERN.fullmatch(t)})
    if taken:
        raise ValueError(
            _(
                "the text already contains {names}; names of that form are reserved for the "
                "sentinels, so remove them first"
            ).format(names=", ".join(taken))
        )
    inputs: list[str] = []
    targets: list[str] = []
    spans: list[Span] = []
    kept_from = 0
    for i, (start, end) in enumerate(span_layout(len(tokens), rate, mean_span_length, seed)):
        mark = sentinel(i)
        inputs += [*tokens[kept_from:start], mark]
        targets += [mark, *tokens[start:end]]
        spans.append(Span(start, end, mark, tokens[start:end]))
        kept_from = end
    inputs += tokens[kept_from:]
    targets.append(sentinel(len(spans)))
    return Corruption(tokens, tuple(inputs), tuple(targets), tuple(spans))


def reassemble(inputs: Sequence[str], targets: Sequence[str]) -> list[str]:
    """The original tokens back from a corrupted input and its target."""
    filling: dict[str, list[str]] = {}
    current: list[str] | None = None
    for token in targets:
        if SENTINEL_PATTERN.fullmatch(token):
            current = filling.setdefault(token, [])
        elif current is None:
            raise ValueError(f"the target must start with a sentinel, got {token!r}")
        else:
            current.append(token)
    original: list[str] = []
    for token in inputs:
        if SENTINEL_PATTERN.fullmatch(token):
            if token not in filling:
                raise ValueError(f"the target has no span for {token}")
            original += filling[token]
        else:
            original.append(token)
    return original
