"""Course map: every lesson, what it teaches and what you will do there."""

import streamlit as st
from widgets import page_file

from tinyformers.lessons import load_lessons
from tinyformers.model.build import presets_table


@st.cache_data
def model_sizes() -> list[dict]:
    """Builds a model per preset and family once per process, not on every rerun."""
    return presets_table()


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
st.dataframe(model_sizes(), hide_index=True)
