"""Tinyformers: the router. One page per lesson in lessons/, at the URL path of its slug."""

import streamlit as st
from widgets import PAGES_DIR, page_file

from tinyformers.lessons import load_lessons

st.set_page_config(page_title="Tinyformers", page_icon="🔎", layout="wide")

home = st.Page(str(PAGES_DIR / "home.py"), title="Course map", icon=":material/map:", default=True)
lessons = [
    st.Page(
        str(page_file(lesson.slug)), title=f"{lesson.order}. {lesson.title}", url_path=lesson.slug
    )
    for lesson in load_lessons()
    if page_file(lesson.slug).is_file()
]
st.navigation({"Start": [home], "Lessons": lessons}).run()
