"""Predict, then reveal, headless: on every lesson a prediction is committed once, the model's
answer is revealed with its verdict, and the static questions follow the same flow."""

import re

import pytest

from tests.conftest import _open_page
from tinyformers.lessons import load_lessons

LESSONS = [lesson for lesson in load_lessons() if lesson.predict]


def page_of(slug: str) -> str:
    return f"app_pages/{slug.replace('-', '_')}.py"


def keyed(elements, prefix: str):
    found = [e for e in elements if e.key and e.key.startswith(prefix)]
    assert len(found) == 1, [e.key for e in elements]
    return found[0]


def commit(at, key: str, judge: str) -> None:
    """Give the first choice (or 0) to question ``key`` and commit it."""
    if judge == "choice":
        radio = keyed(at.radio, f"guess-{key}-")
        radio.set_value(unescaped(radio.options[0]))
    else:
        keyed(at.number_input, f"guess-{key}-").set_value(0)
    at.run()
    keyed(at.button, f"commit-{key}-").click().run()
    assert not at.exception, at.exception


def unescaped(option: str) -> str:
    """A radio option as the page passed it (AppTest lists options as Markdown-escaped)."""
    return re.sub(r"\\(.)", r"\1", option)


def verdicts(at) -> list[str]:
    return [e.value for e in (*at.success, *at.error) if "The model's answer" in e.value]


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_every_prediction_commits_and_reveals(lesson) -> None:
    at = _open_page(page_of(lesson.slug))
    for n, question in enumerate(lesson.predict, start=1):
        assert keyed(at.button, f"commit-{question.key}-").disabled  # nothing chosen yet
        commit(at, question.key, question.judge)
        assert len(verdicts(at)) == n, verdicts(at)
        # committed: no widget left to change the answer
        guesses = (*at.radio, *at.number_input)
        assert not [w for w in guesses if w.key and w.key.startswith(f"guess-{question.key}-")]


QUIZZED = [lesson for lesson in load_lessons() if lesson.quiz]


@pytest.mark.parametrize("lesson", QUIZZED, ids=lambda lesson: lesson.slug)
def test_a_quiz_answer_is_committed_then_explained(lesson) -> None:
    at = _open_page(page_of(lesson.slug))
    question = lesson.quiz[0]
    wrong = next(i for i in range(len(question.options)) if i != question.answer)
    at.radio(key=f"quiz-{lesson.slug}-0-choice").set_value(question.options[wrong]).run()
    at.button(key="quiz-commit-0").click().run()
    assert not at.exception, at.exception
    (shown,) = [e.value for e in at.error if e.value.startswith("Not quite")]
    assert question.options[question.answer] in shown and question.explanation in shown
    assert not [r for r in at.radio if r.key == f"quiz-{lesson.slug}-0-choice"]
    at.radio(key=f"quiz-{lesson.slug}-1-choice").set_value(question_right(lesson, 1)).run()
    at.button(key="quiz-commit-1").click().run()
    assert [s.value for s in at.success if s.value.startswith("Right.")]


def question_right(lesson, n: int) -> str:
    question = lesson.quiz[n]
    return question.options[question.answer]


def test_a_new_sentence_asks_the_question_again() -> None:
    at = _open_page("app_pages/attention.py")
    commit(at, "strongest-key", "choice")
    assert len(verdicts(at)) == 1
    at.text_input(key="att-sentence").set_value("the cat sat on the mat .").run()
    assert not at.exception, at.exception
    assert not verdicts(at)
    radio = keyed(at.radio, "guess-strongest-key-")
    assert "cat" in " ".join(radio.options)
