"""Reading the top of a lesson page under AppTest: the header (title, summary, the folded
introduction), then the input strip, then the primary live figure."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

HEADER = ("title", "markdown", "expander")


def widget_keys(node) -> list[str]:
    """The keys of every widget inside ``node`` (an element or a block), top to bottom."""
    keys = [node.key] if getattr(node, "key", None) else []
    for child in getattr(node, "children", {}).values():
        keys.extend(widget_keys(child))
    return keys


def after_header(at: AppTest) -> list:
    """The main column's top-level elements that follow the lesson header."""
    nodes = list(at.main.children.values())
    assert [node.type for node in nodes[: len(HEADER)]] == list(HEADER), [
        node.type for node in nodes[:5]
    ]
    return nodes[len(HEADER) :]


def strip_keys(at: AppTest) -> list[str]:
    """The keys of the widgets in the first element after the header: the input strip."""
    return widget_keys(after_header(at)[0])


def first_chart(at: AppTest) -> dict:
    """The JSON spec of the first Plotly chart in the main column."""
    element = at.main.get("plotly_chart")[0]
    return json.loads(element.proto.spec)


def elements_before_first_chart(at: AppTest) -> list[str]:
    """The types of the top-level elements between the header and the first chart."""
    types = []
    for node in after_header(at):
        if node.type == "plotly_chart" or any(
            getattr(inner, "type", None) == "plotly_chart" for inner in _walk(node)
        ):
            return types
        types.append(node.type)
    raise AssertionError("the page shows no chart")


def _walk(node):
    for child in getattr(node, "children", {}).values():
        yield child
        yield from _walk(child)
