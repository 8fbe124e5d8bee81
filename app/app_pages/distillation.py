"""Distillation: bert-stories teaches a student with every other one of its layers (trained in
the background, beside the same student trained alone), and a masked word's distributions under
teacher and students, at T = 1 and at the chosen temperature."""

from __future__ import annotations

from functools import partial

import questions
import streamlit as st
import widgets
from widgets import BIND, plain

from tinyformers.course import distillation as course
from tinyformers.course.distillation import INITS, TEACHER, DistillationResult, DistillSettings
from tinyformers.figures import distillation as figs
from tinyformers.hub.registry import LoadedModel, shipped_names
from tinyformers.i18n import _
from tinyformers.training.jobs import STOPPED, Snapshot

SLUG = "distillation"
JOB_KEY = "ds-job"
RUN_KEY = "ds-run"  # the settings of the job under JOB_KEY
DEFAULT_STEPS = 200


@st.cache_resource(show_spinner=False)
def untrained_student():
    """The student made of every other teacher layer, before training (shared, read-only: a
    run trains copies of its own)."""
    return course.make_student(widgets.shipped_model(TEACHER).model)


def temperature_control() -> float:
    return st.number_input(
        _("Temperature T"),
        course.MIN_TEMPERATURE,
        course.MAX_TEMPERATURE,
        DistillSettings.temperature,
        0.5,
        key="ds-temperature",
        bind=BIND,
        help=_("Both distributions are softened with this T (in the chart and in the soft loss)."),
    )


def run_controls(temperature: float) -> DistillSettings | None:
    """α, steps, initialisation and seed of a run; the settings, or None with a message."""
    row = st.container(horizontal=True, vertical_alignment="bottom")
    alpha = row.number_input(
        _("Weight α of the teacher"),
        0.0,
        1.0,
        DistillSettings.alpha,
        0.05,
        key="ds-alpha",
        bind=BIND,
        width=170,
        help=_("α on the soft loss, 1 − α on the masked-LM loss; α = 0 ignores the teacher."),
    )
    most = min(course.MAX_STEPS, widgets.server_limits().max_steps)
    steps = row.number_input(
        _("Steps per student"),
        course.MIN_STEPS,
        most,
        min(DEFAULT_STEPS, most),
        10,
        key="ds-steps",
        bind=BIND,
        width=170,
    )
    init = widgets.labelled_select(_("The student starts from"), INITS, "ds-init", row, width=260)

    with row.container(width=170):
        seed = widgets.seed_control(key="ds-seed")
    try:
        return DistillSettings(
            temperature=float(temperature),
            alpha=float(alpha),
            steps=int(steps),
            init=init,
            seed=seed,
        )
    except ValueError as err:
        st.error(_("Cannot train with these settings: {reason}").format(reason=plain(err)))
        return None


def start_run(settings: DistillSettings) -> None:
    teacher = widgets.shipped_model(TEACHER)
    st.session_state[RUN_KEY] = settings
    work = partial(course.run_students, teacher.model, teacher.tokenizer, settings)
    widgets.start_job(JOB_KEY, work, name="distillation")


def finished_result() -> DistillationResult | None:
    """The result of the last run, once it finished (or stopped with a result)."""
    return widgets.finished_job_result(JOB_KEY, DistillationResult)


def masked_word_input(loaded: LoadedModel) -> course.MaskedWord | None:
    """The sentence box and its masked word (None, with a message, when there is none)."""
    text = widgets.sentence_input(
        _("Sentence (type [MASK] for the word to guess)"),
        course.DEFAULT_SENTENCE,
        "ds-sentence",
        loaded.tokenizer,
        max_tokens=loaded.config.block_size - 2,
    )
    if text is None:
        return None
    try:
        word = course.masked_word(loaded.tokenizer, text, loaded.config.block_size)
    except ValueError as err:
        st.info(plain(err))
        return None
    return word


def show_distributions(loaded: LoadedModel, word, temperature: float, before, result) -> None:
    """The masked word under the teacher and the students (before training, or trained)."""
    models = {TEACHER: loaded.model, course.UNTRAINED: before}
    if result is not None:
        models = {TEACHER: loaded.model}
        models |= {course.STUDENT_NAMES[k]: m for k, m in result.students.items()}
    found = course.distributions(models, loaded.tokenizer, word, temperature)
    widgets.chart(figs.distributions_figure(found), "ds-distributions")
    st.caption(plain(figs.word_caption(word, found)))


def render_progress(snapshot: Snapshot) -> None:
    settings: DistillSettings | None = st.session_state.get(RUN_KEY)
    if settings is None:
        return
    histories = course.histories_of(snapshot.updates)
    if snapshot.active:
        st.progress(*figs.progress_text(histories, settings.steps))
    if histories:
        widgets.chart(figs.loss_chart(histories, settings.steps), "ds-loss")
        st.caption(figs.loss_caption(settings))
    if snapshot.status == STOPPED:
        st.info(_("Stopped. What the students learned so far is measured below."))


def show_results(result: DistillationResult | None) -> None:
    if result is None:
        st.info(_("No run yet: press “Train both students” above."))
        return
    widgets.table(
        figs.score_rows(result.scores),
        percent=(_("masked-LM accuracy"), _("verb number"), _("agrees with the teacher")),
        counts=(_("parameters"),),
    )
    widgets.chart(figs.scores_chart(result.scores), "ds-scores")
    summary = figs.summary_text(result)
    if summary is not None:
        st.caption(summary)
    else:
        st.warning(_("The run stopped before both students had trained; train again to compare."))
    st.caption(figs.settings_text(result))


lesson = widgets.lesson_header(SLUG)
if TEACHER not in shipped_names():
    st.error(
        _("{model} is not shipped in models/, so there is no teacher to distil.").format(
            model=TEACHER
        )
    )
    st.stop()
teacher = widgets.shipped_model(TEACHER)
before = untrained_student()
controls, figure_column = st.columns([1, 2])
with controls:
    temperature = temperature_control()
    word = masked_word_input(teacher)
with figure_column:
    if word is not None:
        show_distributions(teacher, word, temperature, before, finished_result())

widgets.lesson_section(lesson, "setup", course.lesson_values(teacher))
widgets.lesson_section(lesson, "temperature")
widgets.lesson_section(lesson, "loss")
widgets.lesson_section(lesson, "train")
settings = run_controls(temperature)
if st.button(_("Train both students"), key="ds-train", type="primary", disabled=not settings):
    start_run(settings)
widgets.job_progress(JOB_KEY, render_progress)
widgets.lesson_section(lesson, "results")
result = finished_result()
show_results(result)

students = result.students if result is not None else {course.UNTRAINED: before}
questions.ask(lesson, loaded=teacher, word=word, settings=settings, students=students)
