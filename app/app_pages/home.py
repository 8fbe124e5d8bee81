"""Course map: what Tinyformers is and the model sizes it can build."""

import streamlit as st

from tinyformers.config import presets_table

st.title("Tinyformers")
st.write(
    "Small, live Transformer models you can poke: every chart in this app is computed by a "
    "model running on your input, right now."
)

st.subheader("Model sizes")
st.caption("Parameter counts measured on freshly built models (vocabulary of 512 tokens).")
st.dataframe(presets_table(), hide_index=True)
