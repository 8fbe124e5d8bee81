"""Tinyformers: the router. One page per lesson in lessons/, at the URL path of its slug."""

import pandas  # noqa: F401  imported before any training thread starts: see below
import streamlit as st
import torch
from widgets import PAGES_DIR, page_file, page_style, saved_work_panel, workspace

from tinyformers.lessons import load_lessons

# pandas is imported here, once, because a training thread's first optimizer step imports many
# modules, and Plotly's lazy import of pandas on a page at that moment could see it half-loaded.
# Page reruns use one torch thread (a per-thread setting), so many sessions share the cores
# fairly; background training runs set their own count (see widgets.start_job).
torch.set_num_threads(1)
st.set_page_config(page_title="Tinyformers", page_icon="🔎", layout="wide")
page_style()
workspace()  # brings back this browser's trained models before any page lists them

home = st.Page(str(PAGES_DIR / "home.py"), title="Course map", icon=":material/map:", default=True)
lessons = [
    st.Page(
        str(page_file(lesson.slug)), title=f"{lesson.order}. {lesson.title}", url_path=lesson.slug
    )
    for lesson in load_lessons()
    if page_file(lesson.slug).is_file()
]
plans = st.Page(
    str(PAGES_DIR / "plan.py"), title="Lesson plans", icon=":material/checklist:", url_path="plan"
)
page = st.navigation({"Start": [home, plans], "Lessons": lessons}, expanded=True)
with st.sidebar:
    saved_work_panel()
page.run()
