"""Reading Plotly charts in tests: the JSON spec a page sends to the browser, and figure objects.

A page shows each ``st.plotly_chart`` by sending the figure's JSON spec, which Streamlit's AppTest
keeps as text; ``figure.to_json()`` gives the same JSON for a figure built in a test. Plotly
writes numpy data into that JSON as a base64 typed array rather than a list, so read every array
through ``decode``.
"""

from __future__ import annotations

import base64
import json

import numpy as np
from plotly import graph_objects as go
from streamlit.testing.v1 import AppTest


def decode(array) -> np.ndarray:
    """The numbers of a Plotly array as a numpy array.

    A base64 typed array (``{"dtype": "f4", "bdata": "...", "shape": "3, 4"}``) keeps its dtype
    and shape; anything else (a nested list from JSON, a figure object's tuple) becomes floats,
    with ``None`` read as NaN.
    """
    if isinstance(array, dict):
        shape = [int(n) for n in str(array.get("shape", "-1")).split(",")]
        raw = np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
        return raw.reshape(shape)
    return np.asarray(array, dtype=float)


def figure_spec(figure: go.Figure) -> dict:
    """A figure as the JSON spec the browser gets."""
    return json.loads(figure.to_json())


def title(spec: dict) -> str:
    """The title of a chart spec ("" for a chart without one)."""
    return spec["layout"].get("title", {}).get("text", "")


def charts(at: AppTest) -> list[dict]:
    """Every Plotly chart on the page as its JSON spec, top to bottom."""
    return [json.loads(element.proto.spec) for element in at.get("plotly_chart")]


def chart_titles(at: AppTest) -> list[str]:
    """The title of every chart on the page, top to bottom."""
    return [title(spec) for spec in charts(at)]


def chart(at: AppTest, title_start: str) -> dict:
    """The JSON spec of the one chart on the page whose title starts with ``title_start``."""
    found = [spec for spec in charts(at) if title(spec).startswith(title_start)]
    assert len(found) == 1, chart_titles(at)
    return found[0]


def chart_titled(at: AppTest, wanted: str) -> dict:
    """The JSON spec of the one chart on the page titled exactly ``wanted``."""
    found = [spec for spec in charts(at) if title(spec) == wanted]
    assert len(found) == 1, chart_titles(at)
    return found[0]


def named_trace(spec: dict, name: str) -> dict:
    """The one trace of a chart spec called ``name``."""
    found = [trace for trace in spec["data"] if trace.get("name") == name]
    assert len(found) == 1, [trace.get("name") for trace in spec["data"]]
    return found[0]


def figure_trace(figure: go.Figure, name: str):
    """The one trace of a figure object called ``name``."""
    found = [trace for trace in figure.data if trace.name == name]
    assert len(found) == 1, [trace.name for trace in figure.data]
    return found[0]
