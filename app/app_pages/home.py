"""Course map: every lesson, what it teaches and what you will do there."""

import streamlit as st
from widgets import page_file

from tinyformers.config import presets_table
from tinyformers.lessons import load_lessons

st.title("Tinyformers")
st.write(
    "Small, live Transformer models you can poke: every chart in this app is computed by a "
    "model running on your input, right now."
)

st.header("Course map")
for lesson in load_lessons():
    if not page_file(lesson.slug).is_file():
        continue
    with st.container(border=True):
        st.page_link(str(page_file(lesson.slug)), label=f"**{lesson.order}. {lesson.title}**")
        st.write(f"*What you will do:* {lesson.summary}")
        st.markdown("\n".join(f"- {outcome}" for outcome in lesson.outcomes))

st.header("Model sizes")
st.caption("Parameter counts measured on freshly built models (vocabulary of 512 tokens).")
st.dataframe(presets_table(), hide_index=True)
