"""Tinyformers: small, readable Transformers and the tools to look inside them.

The core package never imports Streamlit; the app in ``app/`` is a thin layer on top.
"""

__version__ = "0.1.0"
