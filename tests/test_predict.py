"""How a prediction is judged, and the prediction questions every lesson declares."""

import inspect

import pytest

from tinyformers.lessons import LessonError, load_lessons, parse_lesson, placeholders
from tinyformers.predict import Prediction, Reveal, is_right, parse_guess, signature

LESSONS = load_lessons()
QUESTIONS = [(lesson, q) for lesson in LESSONS for q in lesson.predict]


def module(layer: str, slug: str):
    return __import__(f"tinyformers.{layer}.{slug.replace('-', '_')}", fromlist=["x"])


def test_choice_is_judged_by_equality() -> None:
    assert is_right("choice", "7: ' runs'", "7: ' runs'")
    assert not is_right("choice", "6: ' she'", "7: ' runs'")


def test_integer_must_be_whole_and_equal() -> None:
    assert is_right("integer", 4.0, 4)
    assert not is_right("integer", 5, 4)
    with pytest.raises(ValueError, match="not a whole number"):
        parse_guess("integer", 4.5)


def test_number_is_judged_within_its_tolerance() -> None:
    assert is_right("number", 0.3, 0.39, tolerance=0.1)
    assert not is_right("number", 0.3, 0.41, tolerance=0.1)
    assert is_right("number", "0.5", 0.5)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "abc", None, True, [1]])
def test_a_guess_that_is_no_number_is_refused(bad) -> None:
    with pytest.raises(ValueError):
        parse_guess("number", bad)


def test_unknown_judge_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown judge"):
        parse_guess("vibes", 1)


def test_signature_changes_with_the_question_as_asked() -> None:
    first = signature("Which token will 'cat' attend to?", ("a", "b"))
    assert first == signature("Which token will 'cat' attend to?", ("a", "b"))
    assert first != signature("Which token will 'dog' attend to?", ("a", "b"))
    assert first != signature("Which token will 'cat' attend to?", ("a", "c"))


def test_choices_must_not_repeat() -> None:
    with pytest.raises(ValueError, match="repeat"):
        Prediction({}, lambda: Reveal("a"), ("a", "a"))


def write_lesson(tmp_path, predict: str):
    path = tmp_path / "x.md"
    path.write_text(
        "---\ntitle: X\nslug: x\norder: 1\nsummary: s\noutcomes: [o]\n"
        f"predict:\n{predict}---\nText.\n",
        encoding="utf-8",
    )
    return path


def test_predict_front_matter_is_parsed(tmp_path) -> None:
    lesson = parse_lesson(
        write_lesson(
            tmp_path,
            "  - key: top\n    prompt: Which {{q}}?\n    compute: f\n    judge: number\n"
            "    tolerance: 0.1\n    figure: g\n    explanation: Because {{w}}.\n",
        )
    )
    (question,) = lesson.predict
    assert (question.key, question.compute, question.judge) == ("top", "f", "number")
    assert (question.tolerance, question.figure) == (0.1, "g")


@pytest.mark.parametrize(
    "item, message",
    [
        ("  - key: top\n    prompt: P\n    compute: f\n    judge: vibes\n", "judge 'vibes'"),
        ("  - key: Top Q\n    prompt: P\n    compute: f\n    judge: choice\n", "not a slug"),
        ("  - key: top\n    prompt: P\n    judge: choice\n", "malformed"),
        (
            "  - key: top\n    prompt: P\n    compute: f\n    judge: choice\n    tolerance: 1\n",
            "tolerance",
        ),
        (
            "  - key: a\n    prompt: P\n    compute: f\n    judge: choice\n" * 2,
            "share a key",
        ),
    ],
)
def test_bad_predict_front_matter_names_the_problem(tmp_path, item, message) -> None:
    with pytest.raises(LessonError, match=message):
        parse_lesson(write_lesson(tmp_path, item))


@pytest.mark.parametrize(
    "lesson, question", QUESTIONS, ids=[f"{lesson.slug}-{q.key}" for lesson, q in QUESTIONS]
)
def test_every_question_names_functions_that_exist(lesson, question) -> None:
    compute = getattr(module("course", lesson.slug), question.compute)
    assert inspect.signature(compute).return_annotation in (Prediction, "Prediction")
    if question.figure:
        assert callable(getattr(module("figures", lesson.slug), question.figure))
    assert question.prompt.strip() and placeholders(question.prompt) is not None
