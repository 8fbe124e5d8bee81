"""Questions at the end of a lesson: predictions the live model answers, then the lesson's own
check-your-understanding questions. Both follow one flow: pick or type an answer, commit it (it
cannot change after), then see the answer and why.

A prediction question is data in the lesson's front matter (``predict:``); the function it names
in the lesson's ``course`` module is called with the page's current state (only the arguments
it declares) and returns a ``tinyformers.predict.Prediction``. Its ``reveal`` runs when the
student commits.
"""

from __future__ import annotations

import importlib
import inspect

import streamlit as st
import widgets
from widgets import plain

from tinyformers.lessons import Lesson, PredictQuestion, QuizQuestion, fill_placeholders
from tinyformers.predict import Prediction, Reveal, is_right, parse_guess, signature

ANSWERS_KEY = "_answers"  # (lesson, question, signature) -> Answer record, this session's


def ask(current: Lesson, **state) -> None:
    """The lesson's prediction questions on the page's current ``state``, then its quiz."""
    if current.predict:
        st.subheader("Predict, then see")
        module = course_module(current.slug)
        for question in current.predict:
            prediction = _predict(module, question, state)
            if prediction is not None:
                _prediction(current, question, prediction)
    if current.quiz:
        st.subheader("Check your understanding")
        for n, question in enumerate(current.quiz):
            _quiz_question(current, n, question)


def course_module(slug: str):
    return importlib.import_module(f"tinyformers.course.{slug.replace('-', '_')}")


def figures_module(slug: str):
    return importlib.import_module(f"tinyformers.figures.{slug.replace('-', '_')}")


def answers() -> dict[tuple[str, str, str], dict]:
    """This session's committed answers."""
    return st.session_state.setdefault(ANSWERS_KEY, {})


def _predict(module, question: PredictQuestion, state: dict) -> Prediction | None:
    compute = getattr(module, question.compute)
    wanted = inspect.signature(compute).parameters
    if any(state.get(name) is None for name in wanted):
        st.caption(f"{plain(_short(question.prompt))} — needs a working input above.")
        return None
    try:
        return compute(**{name: state[name] for name in wanted})
    except ValueError as err:
        st.caption(f"This question does not apply to the current input: {plain(err)}")
        return None


def _short(prompt: str) -> str:
    first = prompt.split("?")[0]
    return first if len(first) < 80 else first[:77] + "…"


def _escaped(values) -> dict:
    return {
        name: plain(value) if isinstance(value, str) else value for name, value in values.items()
    }


def _prediction(current: Lesson, question: PredictQuestion, prediction: Prediction) -> None:
    prompt = fill_placeholders(
        question.prompt, _escaped(prediction.values), f"{current.slug}: {question.key}"
    )
    sig = signature(prompt, prediction.choices)
    record_key = (current.slug, question.key, sig)
    with st.container(border=True, key=f"predict-{current.slug}-{question.key}"):
        st.markdown(prompt)
        committed = answers().get(record_key)
        if committed is None:
            guess_key = f"guess-{question.key}-{sig}"
            guess = _guess_widget(question.judge, prediction, guess_key)
            st.button(
                "Commit my prediction",
                key=f"commit-{question.key}-{sig}",
                disabled=guess is None,
                help="Your answer is fixed once committed; then the model answers.",
                on_click=_commit,
                args=(question, prediction, guess_key, record_key),
            )
            committed = answers().get(record_key)
            problem = st.session_state.pop(f"{guess_key}-problem", None)
            if problem:
                st.error(f"That is not an answer to this question: {plain(problem)}")
        if committed is not None:
            _show_reveal(current, question, committed)


def _guess_widget(judge: str, prediction: Prediction, key: str):
    if judge == "choice":
        return st.radio(
            "Your prediction",
            prediction.choices,
            index=None,
            key=key,
            format_func=plain,
            horizontal=True,
        )
    low, high = prediction.bounds
    if judge == "integer":
        low, high, step = int(low), int(high), 1
    else:
        low, high, step = float(low), float(high), 0.01
    return st.number_input("Your prediction", low, high, value=None, step=step, key=key)


def _commit(question, prediction, guess_key: str, record_key: tuple) -> None:
    """Fix the guess and let the model answer (before the page runs again, so the page shows
    the committed answer and no widget that could change it)."""
    try:
        parsed = parse_guess(question.judge, st.session_state.get(guess_key))
    except ValueError as err:
        st.session_state[f"{guess_key}-problem"] = str(err)
        return
    reveal = prediction.reveal()
    answers()[record_key] = {
        "guess": parsed,
        "answer": reveal.answer,
        "correct": is_right(question.judge, parsed, reveal.answer, question.tolerance),
        "reveal": reveal,
    }


def _show_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return plain(value)


def _show_reveal(current: Lesson, question: PredictQuestion, record: dict) -> None:
    st.markdown(f"Your prediction: **{_show_value(record['guess'])}**")
    verdict = "Right" if record["correct"] else "Not this time"
    message = f"{verdict}. The model's answer: **{_show_value(record['answer'])}**"
    if question.tolerance:
        message += f" (a guess within {question.tolerance:g} counts as right)"
    message += "."
    (st.success if record["correct"] else st.error)(message)
    reveal: Reveal | None = record.get("reveal")
    if reveal is None:
        return
    if question.explanation:
        st.markdown(
            fill_placeholders(
                question.explanation, _escaped(reveal.values), f"{current.slug}: {question.key}"
            )
        )
    if question.figure:
        draw = getattr(figures_module(current.slug), question.figure)
        widgets.chart(draw(**reveal.data), key=f"reveal-{question.key}")


def _quiz_question(current: Lesson, n: int, question: QuizQuestion) -> None:
    record_key = (current.slug, f"quiz-{n + 1}", "")
    with st.container(border=True, key=f"quiz-{current.slug}-{n}"):
        st.markdown(question.question)  # the lesson's own text: Markdown is allowed
        committed = answers().get(record_key)
        if committed is None:
            choice = st.radio(
                "Your answer",
                question.options,
                index=None,
                key=f"quiz-{current.slug}-{n}-choice",
            )
            st.button(
                "Commit my answer",
                key=f"quiz-commit-{n}",
                disabled=choice is None,
                on_click=_commit_quiz,
                args=(question, f"quiz-{current.slug}-{n}-choice", record_key),
            )
            committed = answers().get(record_key)
        if committed is not None:
            st.markdown(f"Your answer: {committed['guess']}")
            if committed["correct"]:
                st.success("Right. " + question.explanation)
            else:
                st.error(f"Not quite: the answer is {committed['answer']} " + question.explanation)


def _commit_quiz(question: QuizQuestion, choice_key: str, record_key: tuple) -> None:
    choice = st.session_state.get(choice_key)
    if choice in question.options:
        right = question.options[question.answer]
        answers()[record_key] = {"guess": choice, "answer": right, "correct": choice == right}
