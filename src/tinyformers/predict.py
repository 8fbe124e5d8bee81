"""Predict, then reveal: questions a lesson asks about the student's own input and model.

A lesson lists its prediction questions in its front matter (``predict:``, read by
``tinyformers.lessons``). Each names a function in the lesson's ``course`` module. The page calls
that function with its current state (the sentence, the model, the layer …) and gets a
``Prediction``: the values that fill the question's prompt, the choices a student picks from, and
``reveal``, which runs the model and gives its answer. ``reveal`` is called only when the student
commits, so the answer is computed after the prediction is fixed. A question may also name a
function of the lesson's ``figures`` module that draws the revealed answer.

How a prediction is judged against the model's answer:

    choice    the chosen option equals the answer
    integer   the typed whole number equals the answer
    number    the typed number is within the question's ``tolerance`` of the answer
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Real

JUDGES = ("choice", "integer", "number")


@dataclass(frozen=True)
class Reveal:
    """The model's answer, the values its explanation shows, and ``data``: what the question's
    figure function (named by ``figure:`` in the front matter, in the lesson's ``figures``
    module) takes as keyword arguments to draw why."""

    answer: str | int | float
    values: Mapping[str, object] = field(default_factory=dict)
    data: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Prediction:
    """A question put to one input: prompt values, choices, and how to compute the answer."""

    values: Mapping[str, object]
    reveal: Callable[[], Reveal]
    choices: tuple[str, ...] = ()
    bounds: tuple[float, float] = (-1e6, 1e6)  # what a typed guess may be (number questions)

    def __post_init__(self) -> None:
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"the choices repeat an option: {list(self.choices)}")
        low, high = self.bounds
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"the bounds of a guess must be finite and increasing: {self.bounds}")


def signature(prompt: str, choices: tuple[str, ...]) -> str:
    """A short id for a question as asked: its filled-in prompt and its choices. A committed
    answer belongs to one signature; a new input asks a new question."""
    text = "\x1f".join((prompt, *choices))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def parse_guess(judge: str, guess: object) -> str | int | float:
    """A student's guess in the form its judge compares: a string, a whole number or a number.
    Raises ``ValueError`` with a message a student can read for anything else."""
    if judge == "choice":
        return str(guess)
    if judge == "integer":
        number = _finite(guess)
        if number != int(number):
            raise ValueError(f"{number:g} is not a whole number")
        return int(number)
    if judge == "number":
        return _finite(guess)
    raise ValueError(f"unknown judge {judge!r}; expected one of {', '.join(JUDGES)}")


def is_right(judge: str, guess: object, answer: object, tolerance: float = 0.0) -> bool:
    """Whether a guess matches the model's answer under ``judge``."""
    guess = parse_guess(judge, guess)
    if judge == "choice":
        return guess == str(answer)
    if judge == "integer":
        return guess == int(answer)
    return abs(guess - float(answer)) <= tolerance


def _finite(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (Real, str)):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = float(value)
    except ValueError as err:
        raise ValueError(f"{value!r} is not a number") from err
    if not math.isfinite(number):
        raise ValueError("the guess must be a finite number")
    return number
