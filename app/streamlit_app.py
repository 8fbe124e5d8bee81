"""Tinyformers: the router. One page per lesson in lessons/, at the URL path of its slug."""

import pandas  # noqa: F401  imported before any page builds a figure: see below
import rooms
import streamlit as st
import torch
import widgets

from tinyformers.i18n import _

# pandas is imported here, once: Plotly imports it lazily with the first figure, and two sessions
# building their first figures at once could otherwise see it half-loaded.
# Page reruns use one torch thread (a per-thread setting), so many sessions share the cores
# fairly; background training runs set their own count (see widgets.start_job).
torch.set_num_threads(1)
widgets.apply_hosting()  # on a class server: no error details in the browser
sidebar = "collapsed" if widgets.start_presenting_if_asked() else "auto"
st.set_page_config(
    page_title="Tinyformers", page_icon="🔎", layout="wide", initial_sidebar_state=sidebar
)
widgets.language_switch()  # first: every text below is in the session's language
widgets.page_style()  # (the step-through script's words too)
widgets.workspace()  # brings back this browser's trained models before any page lists them

home = st.Page(
    str(widgets.PAGES_DIR / "home.py"), title=_("Course map"), icon=":material/map:", default=True
)
lessons = [
    st.Page(
        str(widgets.page_file(lesson.slug)),
        title=f"{lesson.order}. {lesson.title}",
        url_path=lesson.slug,
    )
    for lesson in widgets.lessons()
]
plans = st.Page(
    str(widgets.PAGES_DIR / "plan.py"),
    title=_("Lesson plans"),
    icon=":material/checklist:",
    url_path="plan",
)
class_view = st.Page(
    str(widgets.PAGES_DIR / "class_view.py"),
    title=_("Class view"),
    icon=":material/groups:",
    url_path="class",
)
page = st.navigation({_("Start"): [home, plans, class_view], _("Lessons"): lessons}, expanded=True)
widgets.presenter_toggle()
with st.sidebar:
    widgets.saved_work_panel()
rooms.room_panel(page.url_path)
asked = widgets.link_parameters()
page.run()
widgets.link_notice(asked)
widgets.link_panel()
rooms.after_run(page.url_path, widgets.link_parameters())
