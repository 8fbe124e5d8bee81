"""Lesson plans for instructors: each lesson's outcomes and steps, its live computation timed
on this machine, and a printable handout."""

import streamlit as st
import widgets

from tinyformers.i18n import _
from tinyformers.lessons import Lesson, load_lessons, translated
from tinyformers.plan import handout, timing

ALL = "all"
LESSON_KEY = "lesson"  # also the URL's query parameter: /plan?lesson=gpt


@st.cache_data(max_entries=64, ttl=3600, show_spinner=False)
def lesson_timing(slug: str, language: str) -> timing.Timing:
    """Measured once per process, hour and language (its figure is labelled in ``language``);
    "Measure again" clears it."""
    return timing.time_lesson(slug, widgets.shipped_model, language=language)


def lesson_plan(lesson: Lesson) -> None:
    with st.container(border=True):
        st.subheader(f"{lesson.order}. {lesson.title}")
        st.markdown(lesson.summary)
        text_column, timing_column = st.columns([3, 2])
        with text_column:
            st.markdown(_("**Learning outcomes**"))
            st.markdown("\n".join(f"- {outcome}" for outcome in lesson.outcomes))
            st.markdown(_("**Steps**"))
            for step in handout.lesson_steps(lesson):
                st.page_link(
                    str(widgets.page_file(lesson.slug)), label=f"{step.number}. {step.title}"
                )
        with timing_column:
            live = timing.live_step(lesson.slug)
            with st.spinner(_("Timing the lesson's live computation…")):  # shown after 0.5 s
                measured = lesson_timing(lesson.slug, widgets.language())
            st.metric(
                _("Live computation on this machine"),
                handout.format_seconds(measured.seconds),
                help=_("The median of the timed runs, measured when this page was opened."),
            )
            st.caption(
                " · ".join(
                    f"{label}: {value}" for label, value in handout.timing_rows(live, measured)
                )
            )
            st.download_button(
                _("Download handout (HTML)"),
                handout.handout_html(lesson, live, measured),
                file_name=handout.handout_name(lesson),
                mime="text/html",
                key=f"plan-handout-{lesson.slug}",
                on_click="ignore",
            )


lessons = [  # in the session's language
    translated(lesson, widgets.language())
    for lesson in load_lessons()
    if widgets.page_file(lesson.slug).is_file()
]
titles = {ALL: _("All lessons"), **{x.slug: f"{x.order}. {x.title}" for x in lessons}}

st.title(_("Lesson plans"))
st.markdown(
    _(
        "For instructors: what each lesson teaches, its steps in order (each opens the lesson), "
        "how long its live computation takes on this machine, and a handout to print."
    )
)
chosen = st.selectbox(
    _("Lesson"), list(titles), format_func=titles.get, key=LESSON_KEY, bind="query-params"
)
if st.button(_("Measure again"), help=_("Time every lesson's live computation again.")):
    lesson_timing.clear()
for lesson in lessons:
    if chosen in (ALL, lesson.slug):
        lesson_plan(lesson)
