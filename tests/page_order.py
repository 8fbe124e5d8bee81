"""What a page shows first, read under AppTest: the lesson header (title, summary, the folded
introduction), then the input strip, then the primary live figure."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

HEADER = ("title", "markdown", "expander")
ROW_TYPES = {"horizontal", "flex_container"}  # st.columns, as Streamlit versions name it
INPUT_TYPES = {
    "text_input",
    "text_area",
    "selectbox",
    "multiselect",
    "number_input",
    "radio",
    "slider",
    "select_slider",
    "toggle",
    "checkbox",
}


def _type(node) -> str:
    return getattr(node, "type", type(node).__name__.lower())


def _walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def after_header(at: AppTest) -> list:
    """The main column's top-level elements after the header, which must come first."""
    nodes = list(at.main.children.values())
    assert [_type(n) for n in nodes[: len(HEADER)]] == list(HEADER), [_type(n) for n in nodes[:4]]
    return nodes[len(HEADER) :]


def strip_inputs(at: AppTest) -> list:
    """The widgets of the input strip: the first element after the header must be a row of
    columns holding inputs (and no chart)."""
    strip = after_header(at)[0]
    kind = _type(strip)
    assert kind in ROW_TYPES, f"the first element after the header is a {kind}, not a row"
    inputs = [n for n in _walk(strip) if _type(n) in INPUT_TYPES]
    assert inputs, "the strip under the header holds no input"
    return inputs


def strip_keys(at: AppTest) -> list[str]:
    """The keys of the strip's widgets, in order."""
    return [node.key for node in strip_inputs(at)]


def first_chart(at: AppTest) -> dict:
    """The JSON spec of the first Plotly chart in the main column."""
    found = [n for n in _walk(at.main) if _type(n) == "plotly_chart"]
    assert found, "the page shows no chart"
    return json.loads(found[0].proto.spec)


def index_after_header(at: AppTest, wanted) -> int:
    """Where the top-level element containing a node for which ``wanted(node)`` holds comes,
    counting from the first element after the header (the strip is 0)."""
    for index, node in enumerate(after_header(at)):
        if any(wanted(n) for n in _walk(node)):
            return index
    raise AssertionError("no such element in the main column")


def is_chart(node) -> bool:
    return _type(node) == "plotly_chart"


def is_subheader(node) -> bool:
    return _type(node) == "subheader"


def elements_before_first_chart(at: AppTest) -> list[str]:
    """The types of the top-level elements between the header and the first chart."""
    return [_type(n) for n in after_header(at)[: index_after_header(at, is_chart)]]
