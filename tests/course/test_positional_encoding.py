"""The positional-encoding lesson's prediction questions, on tables built by hand."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from tinyformers.course.positional_encoding import (
    predict_nearest_position,
    predict_repeated_token,
    predict_same_distance,
    repeated_token,
)
from tinyformers.figures import positional_encoding as figs

WORDS = ["a", "b", "c", "d", "e", "f"]


def toy_model(token_rows: list[list[float]], position_rows: list[list[float]]):
    """What the questions read of a loaded model: its name, tables and token strings."""
    wte, wpe = nn.Embedding(len(token_rows), 3), nn.Embedding(len(position_rows), 3)
    with torch.no_grad():
        wte.weight.copy_(torch.tensor(token_rows))
        wpe.weight.copy_(torch.tensor(position_rows))
    tokenizer = SimpleNamespace(display_tokens=lambda ids: [WORDS[i] for i in ids])
    return SimpleNamespace(name="toy", model=SimpleNamespace(wte=wte, wpe=wpe), tokenizer=tokenizer)


def test_nearest_position_is_the_row_with_the_largest_cosine() -> None:
    positions = [[1, 0, 0], [0, 1, 0], [1, 1, 0], [-1, 0, 0], [0.9, 1, 0.1]]
    loaded = toy_model([[1, 0, 0]] * 6, positions)
    prediction = predict_nearest_position(loaded, [0, 1, 2, 3, 4])
    assert prediction.values == {"model": "toy", "position": "2: 'c'"}  # the middle position
    assert prediction.choices == ("0: 'a'", "1: 'b'", "3: 'd'", "4: 'e'")
    reveal = prediction.reveal()
    assert reveal.answer == "4: 'e'"  # not a neighbour: the table says so, not the distance
    expected = 1.9 / (math.sqrt(2) * math.sqrt(0.81 + 1 + 0.01))
    assert reveal.values["similarity"] == pytest.approx(expected)
    assert reveal.values["distance"] == 2
    assert reveal.data["values"][2] == pytest.approx(-1 / math.sqrt(2))  # position 3
    figs.similarity_bars(**reveal.data)
    with pytest.raises(ValueError, match="three tokens"):
        predict_nearest_position(loaded, [0, 1])


def test_repeated_token_compares_token_plus_position() -> None:
    # token row (1, 0, 0); positions 1 and 3 add (0, 1, 0) and (0, 0, 1): sums at 60 degrees
    positions = [[0, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1]]
    loaded = toy_model([[0, 0, 0], [1, 0, 0], [0, 1, 1]], positions)
    prediction = predict_repeated_token(loaded, [2, 1, 2, 1])  # 'c' at 0 and 2 comes back first
    assert prediction.values == {"model": "toy", "token": "'c'", "first": 0, "second": 2}
    prediction = predict_repeated_token(loaded, [0, 1, 2, 1])
    assert (prediction.values["first"], prediction.values["second"]) == (1, 3)
    reveal = prediction.reveal()
    assert reveal.answer == pytest.approx(0.5)
    assert reveal.values["position_similarity"] == pytest.approx(0.0)
    assert reveal.values["token_length"] == pytest.approx(1.0)
    figs.similarity_bars(**reveal.data)


def test_a_sentence_without_a_repeated_token_has_no_question() -> None:
    assert repeated_token([5, 6, 5, 6]) == (0, 2)
    with pytest.raises(ValueError, match="no token"):
        repeated_token([1, 2, 3])


@pytest.mark.parametrize("d_model, length", [(64, 64), (16, 40), (8, 3)])
def test_same_distance_gives_the_same_similarity_as_the_formula(d_model, length) -> None:
    prediction = predict_same_distance(d_model, length)
    values = prediction.values
    distance = values["first_next"]
    assert values["later_next"] - values["later"] == distance and values["first"] == 0
    # PE_p · PE_(p+k) = Σ_i cos(k ω_i), and every encoding has squared length d_model / 2
    omegas = [10000 ** (-2 * i / d_model) for i in range(d_model // 2)]
    formula = sum(math.cos(distance * w) for w in omegas) / (d_model / 2)
    reveal = prediction.reveal()
    assert reveal.answer == pytest.approx(formula, abs=1e-5)
    assert values["given"] == pytest.approx(formula, abs=1e-5)
    figs.offset_similarity_chart(**reveal.data)


def test_same_distance_needs_three_positions() -> None:
    with pytest.raises(ValueError, match="three positions"):
        predict_same_distance(8, 2)
