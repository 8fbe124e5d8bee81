"""Tinyformers: the router. Every page lives in app_pages/ and is listed here."""

import streamlit as st

st.set_page_config(page_title="Tinyformers", page_icon="🔎", layout="wide")

pages = [
    st.Page("app_pages/home.py", title="Course map", icon="🗺️", default=True),
]

st.navigation(pages).run()
