"""Token and position vectors: what the positional-encoding lesson's page starts with, and the
lesson's prediction questions."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from tinyformers.i18n import _
from tinyformers.model.positional import cosine_similarity_matrix, sinusoidal_encoding
from tinyformers.predict import Prediction, Reveal

# What the lesson's page starts with (the lesson plans time the same computation).
DEFAULT_MODEL = "gpt-stories"
DEFAULT_SENTENCE = "Zoe sees the big dog . the dog sees Zoe ."
D_MODEL = 64  # width of each vector of the sinusoidal table
LENGTH = 64  # positions of the sinusoidal table
SAME_DISTANCE = 3  # how far apart the two positions of the "same distance" question are


# ---------------------------------------------------------------------------------------------
# Predict, then reveal (the lesson's ``predict:`` questions)
# ---------------------------------------------------------------------------------------------


def position_label(tokens: Sequence[str], position: int) -> str:
    """'position: token', the way the page's charts label a position of the sentence."""
    return f"{position}: {tokens[position]!r}"


def _tables(loaded) -> tuple[Tensor, Tensor]:
    """The model's token table and position table (rows: ids, positions)."""
    return loaded.model.wte.weight.detach(), loaded.model.wpe.weight.detach()


def _cosine(a: Tensor, b: Tensor) -> float:
    return float(cosine_similarity_matrix(torch.stack([a, b]).double())[0, 1])


def predict_nearest_position(loaded, ids: list[int]) -> Prediction:
    """Which position of the sentence has the learned position vector most like the vector of
    the middle position (cosine similarity)."""
    if len(ids) < 3:
        raise ValueError(_("the sentence needs at least three tokens"))
    tokens = loaded.tokenizer.display_tokens(ids)
    focus = len(ids) // 2
    others = [i for i in range(len(ids)) if i != focus]
    labels = [position_label(tokens, i) for i in range(len(ids))]

    def reveal() -> Reveal:
        _, wpe = _tables(loaded)
        similarity = cosine_similarity_matrix(wpe[: len(ids)].double())[focus]  # (T,)
        nearest = max(others, key=lambda i: float(similarity[i]))
        values = {"similarity": float(similarity[nearest]), "distance": abs(nearest - focus)}
        bars = [float(similarity[i]) for i in others]
        title = f"Cosine similarity of position {focus}'s vector to the others"
        data = {"labels": [labels[i] for i in others], "values": bars, "title": title}
        return Reveal(labels[nearest], values, data)

    values = {"model": loaded.name, "position": labels[focus]}
    return Prediction(values, reveal, tuple(labels[i] for i in others))


def repeated_token(ids: Sequence[int]) -> tuple[int, int]:
    """The first two positions that hold the same token (the earliest token that comes back)."""
    for i, token in enumerate(ids):
        if token in ids[i + 1 :]:
            return i, ids.index(token, i + 1)
    raise ValueError(_("no token of your sentence comes twice"))


def predict_repeated_token(loaded, ids: list[int]) -> Prediction:
    """The cosine similarity of the input vectors (token row + position row) of one token at
    the two places where it stands in the sentence."""
    first, second = repeated_token(ids)
    tokens = loaded.tokenizer.display_tokens(ids)

    def reveal() -> Reveal:
        wte, wpe = _tables(loaded)
        token_row = wte[ids[first]]
        inputs = (token_row + wpe[first], token_row + wpe[second])
        similarity = _cosine(*inputs)
        positions = _cosine(wpe[first], wpe[second])
        values = {
            "token_length": float(token_row.norm()),
            "position_length": float((wpe[first].norm() + wpe[second].norm()) / 2),
            "position_similarity": positions,
        }
        data = {
            "labels": ["token rows", "position rows", "input vectors (sums)"],
            "values": [1.0, positions, similarity],
            "title": f"Cosine similarity of the two occurrences of {tokens[first]!r}",
        }
        return Reveal(similarity, values, data)

    values = {"model": loaded.name, "token": repr(tokens[first]), "first": first, "second": second}
    return Prediction(values, reveal, bounds=(-1.0, 1.0))


def predict_same_distance(d_model: int, length: int) -> Prediction:
    """Given the sinusoidal similarity of positions 0 and Δ, the similarity of two positions
    Δ apart further down the table."""
    later = length // 2
    distance = min(SAME_DISTANCE, length - 1 - later)
    if distance < 1:
        raise ValueError(_("the table needs at least three positions"))
    table = sinusoidal_encoding(length, d_model).double()
    similarity = cosine_similarity_matrix(table)

    def reveal() -> Reveal:
        answer = float(similarity[later, later + distance])
        span = range(length - later)  # offsets both curves reach
        curves = {
            start: [float(similarity[start, start + k]) for k in span] for start in (0, later)
        }
        title = f"Sinusoidal, d_model {d_model}: similarity against distance"
        return Reveal(answer, {"distance": distance}, {"curves": curves, "title": title})

    values = {
        "d_model": d_model,
        "first": 0,
        "first_next": distance,
        "given": float(similarity[0, distance]),
        "later": later,
        "later_next": later + distance,
    }
    return Prediction(values, reveal, bounds=(-1.0, 1.0))
