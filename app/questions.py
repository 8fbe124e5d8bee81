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

import rooms
import streamlit as st
import widgets
from widgets import number, plain

from tinyformers.i18n import _, current_language, restyle
from tinyformers.lessons import (
    Lesson,
    PredictQuestion,
    QuizQuestion,
    fill_placeholders,
)
from tinyformers.predict import Prediction, Reveal, is_right, parse_guess, signature
from tinyformers.store import answers as stored
from tinyformers.store.checks import StoreError

ANSWERS_KEY = "_answers"  # (lesson, question, context) -> committed answer, this browser's


def ask(current: Lesson, **state) -> None:
    """The lesson's prediction questions on the page's current ``state``, then its quiz."""
    if current.predict:
        st.subheader(_("Predict, then see"))
        module = course_module(current.slug)
        for question in current.predict:
            prediction = _predict(module, question, state)
            if prediction is not None:
                _prediction(current, question, prediction)
    if current.quiz:
        st.subheader(_("Check your understanding"))
        for n, question in enumerate(current.quiz):
            _quiz_question(current, n, question)


def course_module(slug: str):
    return importlib.import_module(f"tinyformers.course.{slug.replace('-', '_')}")


def figures_module(slug: str):
    return importlib.import_module(f"tinyformers.figures.{slug.replace('-', '_')}")


def answers() -> dict[tuple[str, str, str], dict]:
    """This browser's committed answers: on a session's first run, those the store kept."""
    if ANSWERS_KEY not in st.session_state:
        st.session_state[ANSWERS_KEY] = restored_answers()
    return st.session_state[ANSWERS_KEY]


def restored_answers() -> dict[tuple[str, str, str], dict]:
    """The answers this browser committed before (a reload, another visit), from the store.
    The model's answer is computed again when its question is shown."""
    store = rooms.shared_store()
    if store is None or "work_id" not in st.session_state:
        return {}
    try:
        kept = stored.answers_of(store, st.session_state.work_id)
    except StoreError:
        return {}
    restored = {}
    for answer in kept:
        record = {"guess": answer.answer, "correct": answer.correct, "answer": None}
        if answer.question.startswith("quiz-") and not answer.context:
            record["answer"] = quiz_answer(answer.lesson, answer.question)
        restored.setdefault((answer.lesson, answer.question, answer.context), record)
    return restored


def quiz_answer(slug: str, key: str) -> str | None:
    """The right option of a lesson's fixed question ``quiz-N``."""
    try:
        question = widgets.lesson(slug).quiz[int(key.removeprefix("quiz-")) - 1]
    except (KeyError, ValueError, IndexError):
        return None
    return question.options[question.answer]


def keep(slug: str, key: str, context: str, record: dict) -> None:
    """A committed answer: in this session, and in the store for later visits and the class."""
    answers()[(slug, key, context)] = record
    rooms.record(slug, key, record["guess"], record["correct"], context, nickname_given())


def _predict(module, question: PredictQuestion, state: dict) -> Prediction | None:
    compute = getattr(module, question.compute)
    wanted = inspect.signature(compute).parameters
    if any(state.get(name) is None for name in wanted):
        st.caption(
            _("{question} — needs a working input above.").format(
                question=plain(_short(question.prompt))
            )
        )
        return None
    try:
        return compute(**{name: state[name] for name in wanted})
    except ValueError as err:
        st.caption(
            _("This question does not apply to the current input: {reason}").format(
                reason=plain(err)
            )
        )
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
    posed = rooms.posed_here(current.slug, question.key)
    waiting = posed is not None and posed.phase != "revealed"  # the instructor reveals it
    with st.container(border=True, key=f"predict-{current.slug}-{question.key}"):
        if posed is not None:
            st.caption(_("Your instructor asks the class this question."))
        st.markdown(prompt)
        committed = answers().get(record_key)
        if committed is None and waiting and posed.phase == "locked":
            st.info(_("Answers to this question are locked."))
            return
        if committed is None:
            committed = _ask(question, prediction, sig, record_key)
        if committed is None:
            return
        if waiting:
            st.markdown(
                _("Your prediction: **{guess}**").format(guess=_show_value(committed["guess"]))
            )
            st.info(_("Committed. Your instructor reveals the model's answer to the class."))
            return
        if committed.get("reveal") is None:  # kept from an earlier visit: the model answers again
            committed["reveal"] = prediction.reveal()
            committed["answer"] = committed["reveal"].answer
        _show_reveal(current, question, committed)


def _ask(question: PredictQuestion, prediction: Prediction, sig: str, record_key: tuple):
    """The answer box and its Commit button; the committed answer once the button was pressed."""
    guess_key = f"guess-{question.key}-{sig}"
    guess = _guess_widget(question.judge, prediction, guess_key)
    st.button(
        _("Commit my prediction"),
        key=f"commit-{question.key}-{sig}",
        disabled=guess is None,
        help=_("Your answer is fixed once committed; then the model answers."),
        on_click=_commit,
        args=(question, prediction, guess_key, record_key),
    )
    problem = st.session_state.pop(f"{guess_key}-problem", None)
    if problem:
        st.error(
            _("That is not an answer to this question: {problem}").format(problem=plain(problem))
        )
    return answers().get(record_key)


def _guess_widget(judge: str, prediction: Prediction, key: str):
    if judge == "choice":
        return st.radio(  # each choice shown in the page's language, kept as it is
            _("Your prediction"),
            prediction.choices,
            index=None,
            key=key,
            format_func=widgets.OptionNames.of(list(prediction.choices), _shown_choice),
            horizontal=True,
        )
    low, high = prediction.bounds
    if judge == "integer":
        low, high, step = int(low), int(high), 1
    else:
        low, high, step = float(low), float(high), 0.01
    return st.number_input(_("Your prediction"), low, high, value=None, step=step, key=key)


def _commit(question, prediction, guess_key: str, record_key: tuple) -> None:
    """Fix the guess and let the model answer (before the page runs again, so the page shows
    the committed answer and no widget that could change it)."""
    try:
        parsed = parse_guess(question.judge, st.session_state.get(guess_key))
    except ValueError as err:
        st.session_state[f"{guess_key}-problem"] = str(err)
        return
    reveal = prediction.reveal()
    record = {
        "guess": parsed,
        "answer": reveal.answer,
        "correct": is_right(question.judge, parsed, reveal.answer, question.tolerance),
        "reveal": reveal,
    }
    keep(*record_key, record)


def _translated(choice: object) -> object:
    """A choice in the page's language (an answer is kept in English; gettext's "" is the
    catalog's header, not a translation)."""
    return _(choice) if isinstance(choice, str) and choice else choice


def _shown_choice(choice: str) -> str:
    return plain(_translated(choice))


def _show_value(value) -> str:
    if isinstance(value, float):
        return restyle(f"{value:.3g}", current_language())
    return _shown_choice(value) if isinstance(value, str) else plain(value)


def _show_reveal(current: Lesson, question: PredictQuestion, record: dict) -> None:
    st.markdown(_("Your prediction: **{guess}**").format(guess=_show_value(record["guess"])))
    verdict = _("Right") if record["correct"] else _("Not this time")
    answer = _show_value(record["answer"])
    message = _("{verdict}. The model's answer: **{answer}**").format(
        verdict=verdict, answer=answer
    )
    if question.tolerance:
        message += _(" (a guess within {tolerance} counts as right)").format(
            tolerance=f"{question.tolerance:g}"
        )
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
                _("Your answer"),
                question.options,
                index=None,
                key=f"quiz-{current.slug}-{n}-choice",
            )
            st.button(
                _("Commit my answer"),
                key=f"quiz-commit-{n}",
                disabled=choice is None,
                on_click=_commit_quiz,
                args=(question, f"quiz-{current.slug}-{n}-choice", record_key),
            )
            committed = answers().get(record_key)
        if committed is not None:
            st.markdown(_("Your answer: {guess}").format(guess=committed["guess"]))
            if committed["correct"]:
                st.success(_("Right.") + " " + question.explanation)
            else:
                wrong = _("Not quite: the answer is {answer}").format(answer=committed["answer"])
                st.error(wrong + " " + question.explanation)


def _commit_quiz(question: QuizQuestion, choice_key: str, record_key: tuple) -> None:
    choice = st.session_state.get(choice_key)
    if choice in question.options:
        right = question.options[question.answer]
        keep(*record_key, {"guess": choice, "answer": right, "correct": choice == right})


# --------------------------------------------------------------------------------------------
# Progress: this browser's answers, per lesson, on the course map and as a download
# --------------------------------------------------------------------------------------------

NICKNAME_KEY = "answers-nickname"


def progress() -> dict[str, tuple[int, int]]:
    """Lesson slug -> (right, answered), each question counted by its first answer."""
    store = rooms.shared_store()
    if store is not None and "work_id" in st.session_state:
        try:
            return stored.progress(store, st.session_state.work_id)
        except StoreError:
            pass
    first: dict[tuple[str, str], bool] = {}
    for (slug, key, _context), record in answers().items():
        first.setdefault((slug, key), bool(record["correct"]))
    counts: dict[str, tuple[int, int]] = {}
    for (slug, _key), right in first.items():
        done, answered = counts.get(slug, (0, 0))
        counts[slug] = (done + right, answered + 1)
    return counts


def progress_line(slug: str, counts: dict[str, tuple[int, int]]) -> str | None:
    """'Your answers: 2 of 3 right' for a lesson, or None before its first answer."""
    right, answered = counts.get(slug, (0, 0))
    if not answered:
        return None
    return _("Your answers: {right} of {answered} right").format(
        right=number(right), answered=number(answered)
    )


def nickname_given() -> str | None:
    """The nickname the student typed, if any (nothing else identifies them)."""
    text = " ".join(str(st.session_state.get(NICKNAME_KEY) or "").split())
    return text or None


def progress_panel() -> None:
    """A nickname (optional), and this browser's answers to download or forget."""
    st.text_input(
        _("Nickname (optional)"),
        key=NICKNAME_KEY,
        max_chars=40,
        help=_(
            "Kept with the answers you commit from now on, so your instructor can tell them "
            "apart. Leave it empty to stay anonymous."
        ),
    )
    store = rooms.shared_store()
    if store is None:
        st.caption(_("Answers are kept in this tab only on this server."))
        return
    try:
        rows = stored.export_rows(store, st.session_state.work_id)
    except StoreError as err:
        st.caption(_("Your answers cannot be read now: {reason}").format(reason=plain(err)))
        return
    if not rows:
        st.caption(_("Answers you commit in the lessons are kept here, in this browser only."))
        return
    csv_column, json_column, forget_column = st.columns(3)
    csv_column.download_button(
        _("Download my answers (CSV)"), stored.to_csv(rows), "answers.csv", "text/csv"
    )
    json_column.download_button(
        _("Download my answers (JSON)"),
        stored.to_json(rows),
        "answers.json",
        "application/json",
    )
    forget_column.button(_("Forget my answers"), key="answers-forget", on_click=_forget)


def _forget() -> None:
    store = rooms.shared_store()
    if store is not None:
        stored.forget(store, st.session_state.work_id)
    st.session_state[ANSWERS_KEY] = {}


def summary_rows(summary: list[stored.QuestionSummary]) -> list[dict]:
    """The class view's table: one row per question."""
    return [
        {
            "lesson": item.lesson,
            "question": item.question,
            "students": item.students,
            "right": f"{item.share_right:.0%}",
            "most common wrong answers": ", ".join(
                f"{_translated(a)} ({n:,})" for a, n in item.wrong
            ),
        }
        for item in summary
    ]
