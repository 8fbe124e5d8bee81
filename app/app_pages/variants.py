"""Architecture variants: learned, sinusoidal, rotary and no positions, and pre-LN against
post-LN with and without warm-up, trained side by side in the background on the stories; then
each position scheme read on windows longer than it was trained on."""

from functools import partial

import questions
import streamlit as st
import widgets
from widgets import BIND

from tinyformers.course import variants as course
from tinyformers.figures import variants as figs
from tinyformers.i18n import _, ngettext
from tinyformers.training.jobs import STOPPED, Snapshot

SLUG = "variants"
JOB_KEY = "var-job"


@st.cache_data(show_spinner=False)
def vocab_size() -> int:
    return course.stories_vocab_size()


@st.cache_data(show_spinner=False)
def parameter_counts(size: int) -> dict[str, tuple[int, int]]:
    return course.parameter_counts(size)


def show_controls() -> None:
    top = min(course.MAX_STEPS, widgets.server_limits().max_steps)
    steps_column, rate_column, seed_column, button_column = st.columns(
        4, vertical_alignment="bottom"
    )
    label, first = _("Training steps per variant"), min(course.STEPS, top)
    steps = steps_column.number_input(
        label, course.MIN_STEPS, top, first, 50, key="var-steps", bind=BIND
    )
    rate = rate_column.select_slider(
        _("Learning rate"),
        course.LEARNING_RATES,
        course.LEARNING_RATE,
        format_func=lambda r: f"{r:g}",
        key="var-rate",
        bind=BIND,
    )
    with seed_column:
        seed = widgets.seed_control(key="var-seed")
    if button_column.button(_("Train every variant"), type="primary", key="var-start"):
        work = partial(course.run_variants, int(steps), float(rate), seed)
        widgets.start_job(JOB_KEY, work, name="architecture variants")


def show_curves(histories: dict) -> None:
    groups = {
        "positions": _("Training loss of each position scheme (pre-LN, warm-up)"),
        "layernorm": _("Training loss with LayerNorm before or after each sublayer"),
    }
    for group, title in groups.items():
        labels = [v.label for v in course.VARIANTS if v.group == group]
        if group == "layernorm":
            labels = [course.LEARNED, *labels]
        shown = {label: histories[label] for label in labels if label in histories}
        if group == "layernorm" and course.LEARNED in shown:
            shown = {course.PRE_WARM: shown.pop(course.LEARNED), **shown}
        if shown:
            widgets.chart(figs.loss_curves_chart(shown, title), key=f"var-curves-{group}")


def show_run(snap: Snapshot) -> None:
    result = snap.result
    histories = result.histories if result is not None else course.live_histories(snap.updates)
    show_curves(histories)
    if result is None:
        if snap.status == STOPPED:
            st.info(_("Stopped. Change the settings if you like and train again."))
        return
    st.dataframe(figs.final_rows(result.histories, result.parameters), hide_index=True)
    if result.extrapolations:
        widgets.chart(figs.extrapolation_chart(result.extrapolations), key="var-extrapolation")
        st.caption(figs.extrapolation_caption(result.extrapolations))


lesson = widgets.lesson_header(SLUG)
show_controls()  # the inputs first, then a figure: both on the first screen
size = vocab_size()
widgets.chart(figs.parameters_chart(parameter_counts(size)))
st.caption(
    _(
        "Every variant: {layers}, {heads}, width {width}, a context of {context} and a "
        "vocabulary of {vocabulary}."
    ).format(
        layers=ngettext("{n} layer", "{n} layers", course.SIZE["n_layer"]),
        heads=ngettext("{n} head", "{n} heads", course.SIZE["n_head"]),
        width=course.SIZE["n_embd"],
        context=ngettext("{n} character", "{n} characters", course.CONTEXT),
        vocabulary=ngettext("{n} character", "{n} characters", size),
    )
)

widgets.lesson_section(lesson, "positions")
widgets.lesson_section(lesson, "layernorm")
widgets.lesson_section(lesson, "run", context=course.CONTEXT, longest=course.LONGEST)
if widgets.job_progress(JOB_KEY, show_run) is None:
    st.info(_("Press Train every variant: the runs take about a minute in the background."))
widgets.lesson_section(lesson, "extrapolation")

questions.ask(lesson, vocab_size=size)
