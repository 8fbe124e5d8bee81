"""Task heads: a sentence pair as BERT reads it (segment ids), a pair classifier, a tagger and
a span finder trained on copies of bert-stories in the background (full fine-tuning beside a
parameter-efficient method), their held-out accuracy, the encoder's masked-LM loss before and
after, and the heads on the student's own sentences."""

from __future__ import annotations

from functools import partial

import questions
import streamlit as st
import widgets
from widgets import BIND, plain

from tinyformers.course import fine_tuning
from tinyformers.course import task_heads as course
from tinyformers.course.task_heads import COMPARED, MODEL, HeadSettings, HeadsResult
from tinyformers.figures import task_heads as figs
from tinyformers.hub.registry import LoadedModel, shipped_names
from tinyformers.i18n import _
from tinyformers.training.jobs import STOPPED, Snapshot

SLUG = "task-heads"
JOB_KEY = "th-job"
RUN_KEY = "th-run"  # the settings of the job under JOB_KEY
DEFAULT_STEPS = 100


def pair_controls(loaded: LoadedModel) -> course.PairInput | None:
    """Sentences A and B; the pair BERT reads, or None with a message."""
    room = loaded.config.block_size - 3
    text_a = widgets.sentence_input(
        _("Sentence A"), course.DEFAULT_A, "th-a", loaded.tokenizer, max_tokens=room // 2
    )
    text_b = widgets.sentence_input(
        _("Sentence B (it should start with he, she, it or they)"),
        course.DEFAULT_B,
        "th-b",
        loaded.tokenizer,
        max_tokens=(room + 1) // 2,
    )
    if text_a is None or text_b is None:
        return None
    try:
        return course.pair_input(loaded.tokenizer, text_a, text_b, loaded.config.block_size)
    except ValueError as err:
        st.info(plain(err))
        return None


def run_controls() -> HeadSettings | None:
    """Steps, the compared method and the seed; the settings, or None with a message."""
    row = st.container(horizontal=True, vertical_alignment="bottom")
    most = min(course.MAX_STEPS, widgets.server_limits().max_steps)
    steps = row.number_input(
        _("Steps per run"),
        course.MIN_STEPS,
        most,
        min(DEFAULT_STEPS, most),
        10,
        key="th-steps",
        bind=BIND,
        width=170,
    )
    methods = {m: fine_tuning.METHODS[m] for m in COMPARED}

    compare = widgets.labelled_select(
        _("Compared with full fine-tuning"), methods, "th-compare", row, width=260
    )
    with row.container(width=170):
        seed = widgets.seed_control(key="th-seed")
    try:
        return HeadSettings(steps=int(steps), compare=compare, seed=seed)
    except ValueError as err:
        st.error(_("Cannot train with these settings: {reason}").format(reason=plain(err)))
        return None


def start_run(loaded: LoadedModel, settings: HeadSettings) -> None:
    st.session_state[RUN_KEY] = settings
    work = partial(course.run_heads, loaded.model, loaded.tokenizer, settings)
    widgets.start_job(JOB_KEY, work, name="task heads")


def finished_result() -> HeadsResult | None:
    """The result of the last run, once it finished (or stopped with a result)."""
    return widgets.finished_job_result(JOB_KEY, HeadsResult)


def render_progress(snapshot: Snapshot) -> None:
    settings: HeadSettings | None = st.session_state.get(RUN_KEY)
    if settings is None:
        return
    found = course.job_progress(snapshot.updates)
    if snapshot.active:
        st.progress(*figs.progress_text(found.histories, 2 * len(settings.heads), settings.steps))
    if found.histories:
        widgets.chart(figs.loss_chart(found.histories), "th-loss")
    if found.scores and snapshot.active:
        widgets.table(
            figs.score_rows(found.scores, found.before),
            percent=(_("held-out accuracy"), _("commonest answer")),
        )
    if snapshot.status == STOPPED:
        st.info(_("Stopped before every run had trained; train again to compare all of them."))


def show_results(result: HeadsResult | None) -> None:
    if result is None:
        st.info(_("No run yet: press “Train the heads” above."))
        return
    widgets.chart(figs.accuracy_chart(result), "th-accuracy")
    widgets.table(
        figs.result_rows(result),
        percent=(_("held-out accuracy"), _("commonest answer"), _("masked-LM accuracy after")),
        counts=(_("trainable parameters"),),
    )
    st.caption(figs.settings_text(result))


def show_forgetting(result: HeadsResult | None) -> None:
    if result is None:
        st.info(_("The masked-LM loss before and after fine-tuning appears once a run finished."))
        return
    widgets.chart(figs.forgetting_chart(result), "th-forgetting")
    summary = figs.forgetting_text(result)
    if summary is not None:
        st.caption(summary)


def show_readings(loaded: LoadedModel, pair: course.PairInput | None, result) -> None:
    if pair is None:
        return
    if result is None:
        st.info(_("Train the heads to see what they make of your sentences."))
        return
    found = course.readings(result, loaded.tokenizer, pair.text_a, pair.text_b)
    if not found:
        st.info(_("This run did not train all three heads; train again to read your sentences."))
        return
    words = pair.text_a.split()
    widgets.table(figs.reading_rows(words, course.grammar_tags(pair.text_a), found))
    st.caption(plain(figs.pair_text(found)))


lesson = widgets.lesson_header(SLUG)
if MODEL not in shipped_names():
    st.error(
        _("{model} is not shipped in models/, so there is no encoder to put heads on.").format(
            model=MODEL
        )
    )
    st.stop()
loaded = widgets.shipped_model(MODEL)
controls, figure_column = st.columns([1, 2])
with controls:
    pair = pair_controls(loaded)
with figure_column:
    if pair is not None:
        widgets.chart(figs.pair_figure(pair), "th-pair")

widgets.lesson_section(lesson, "heads", course.lesson_values(loaded))
widgets.lesson_section(lesson, "pair")
widgets.lesson_section(lesson, "tags")
widgets.lesson_section(lesson, "span")
widgets.lesson_section(lesson, "train")
settings = run_controls()
if st.button(_("Train the heads"), key="th-train", type="primary", disabled=not settings):
    start_run(loaded, settings)
widgets.job_progress(JOB_KEY, render_progress)
result = finished_result()
widgets.lesson_section(lesson, "results")
show_results(result)
widgets.lesson_section(lesson, "forgetting")
show_forgetting(result)
widgets.lesson_section(lesson, "yours")
show_readings(loaded, pair, result)

questions.ask(lesson, loaded=loaded, pair=pair, settings=settings)
