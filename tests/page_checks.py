"""Reading and driving a page of the app under Streamlit's AppTest, for the page tests.

The ``page`` and ``fresh`` fixtures (tests/conftest.py) open the page a test module names in
``PAGE``; the functions here read what it shows. Charts are read with tests/plotly_json.py.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

# Text every page must show as text: markup that would run if a page pasted it into HTML.
MARKUP = "</script><img src=x onerror=alert(1)>"
# Text boxes that hold nothing to read.
BLANK_TEXTS = ("", "   ")
# Text far from the training data: emoji, Cyrillic, and a right-to-left override.
UNUSUAL_TEXTS = ("Zoe 🐶 sees 🐱🐱", "Зоя видит собаку", "\u202eZoe sees\u202c")

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]\d+)?")


def rerun(at: AppTest) -> AppTest:
    """Run the page again after a widget change; it must not raise."""
    at.run()
    assert not at.exception, at.exception
    return at


def captions(at: AppTest) -> list[str]:
    """The text of every caption, top to bottom."""
    return [element.value for element in at.caption]


def caption(at: AppTest, start: str) -> str:
    """The one caption that starts with ``start``."""
    found = [text for text in captions(at) if text.startswith(start)]
    assert len(found) == 1, captions(at)
    return found[0]


def metrics(at: AppTest) -> dict[str, str]:
    """Every metric's value by its label."""
    return {element.label: element.value for element in at.metric}


def metric(at: AppTest, label_start: str) -> str:
    """The value of the one metric whose label starts with ``label_start``."""
    found = [element.value for element in at.metric if element.label.startswith(label_start)]
    assert len(found) == 1, [element.label for element in at.metric]
    return found[0]


APP_SCRIPT = Path(__file__).resolve().parents[1] / "assets" / "js" / "stepper.js"


def stepper_script(at: AppTest) -> str:
    """The app's own step-through script as the page gives it (its words first)."""
    own = f"{APP_SCRIPT.read_text(encoding='utf-8')}</script>"
    found = [e.proto.body for e in at.get("html") if e.proto.body.endswith(own)]
    assert len(found) == 1, f"expected the step-through script once, found {len(found)}"
    return found[0]


def html_bodies(at: AppTest) -> list[str]:
    """The HTML of every ``st.html`` element but the app's own step-through script."""
    own = f"{APP_SCRIPT.read_text(encoding='utf-8')}</script>"
    return [e.proto.body for e in at.get("html") if not e.proto.body.endswith(own)]


def is_code_block(body: str) -> bool:
    """Whether an ``st.html`` body is a code block (``figures.common.code_block``)."""
    return body.startswith("<pre")


def code_text(body: str) -> str:
    """A code block's text as a reader sees it: its tags gone, its characters unescaped."""
    return html.unescape(re.sub(r"<[^>]*>", "", body))


def code_texts(at: AppTest) -> list[str]:
    """The text of every code block on the page (``widgets.code``), in order."""
    return [code_text(body) for body in html_bodies(at) if is_code_block(body)]


def markdown_table_cells(at: AppTest, column: str) -> list[list[str]]:
    """The header and rows of the first markdown table with a column named ``column``, each
    cell as a reader sees it."""
    for element in at.markdown:
        lines = element.value.splitlines()
        if lines and lines[0].startswith("|"):
            cells = [
                [re.sub(r"\\(.)", r"\1", c.strip()) for c in re.split(r"(?<!\\)\|", line)[1:-1]]
                for line in lines
                if not re.fullmatch(r"\|[-:|]+\|", line)
            ]
            if column in cells[0]:
                return cells
    raise AssertionError(f"no table with a {column!r} column")


def numbers(text: str) -> list[float]:
    """Every number written in a text, in order."""
    return [float(number) for number in NUMBER.findall(text)]


def published_counts(at: AppTest) -> dict[str, str]:
    """The published-models table on a page: model name → the count the page shows."""
    tables = [df.value for df in at.dataframe if "counted here" in df.value.columns]
    assert len(tables) == 1, f"expected one published-models table, found {len(tables)}"
    return dict(zip(tables[0]["model"], tables[0]["counted here"], strict=True))


def expected_published_counts(*families: str) -> dict[str, str]:
    """What ``published_counts`` should read: the models of ``families``, counted afresh."""
    from tinyformers.model.published import PUBLISHED

    return {p.name: f"{p.counted:,}" for p in PUBLISHED if not families or p.family in families}


# --------------------------------------------------------------------------------------------
# A page in Russian: no English sentence left outside code, quotes and model text
# --------------------------------------------------------------------------------------------

# Code, quoted text (model input and output, tokens, names), formulas, addresses, the original
# terms a translation gives in parentheses and citations ("Devlin et al.") are not prose.
NOT_PROSE = re.compile(
    r"```.*?```|`[^`]*`|«[^»]*»|“[^”]*”|\"[^\"]*\"|'[^']*'|\$[^$]*\$|https?://\S+"
    r"|\[[^\]]*\]\([^)]*\)|\([^()]*\)|\b[A-Z][a-z]+(?: and [A-Z][a-z]+)? et al\b\.?",
    re.S,
)
ENGLISH_RUN = re.compile(r"\b[A-Za-z]{2,}(?:[ ,;:]+[A-Za-z]{2,}){2,}\b")  # three English words


def shown_texts(at: AppTest) -> list[str]:
    """Every piece of interface text the page shows: headings, text, notices, widget labels and
    help, buttons, metrics, expanders and tabs, and chart titles."""
    texts = []
    for kind in (
        "title",
        "header",
        "subheader",
        "caption",
        "markdown",
        "info",
        "warning",
        "error",
        "success",
        "exception",
    ):
        texts += [str(element.value) for element in getattr(at, kind)]
    for kind in (
        "button",
        "text_input",
        "text_area",
        "number_input",
        "slider",
        "select_slider",
        "selectbox",
        "multiselect",
        "radio",
        "checkbox",
        "toggle",
    ):
        for widget in getattr(at, kind):
            texts += [widget.label or "", getattr(widget, "help", None) or ""]
    texts += [m.label for m in at.metric]
    texts += [e.label for e in at.expander] + [t.label for t in at.tabs]
    for chart in at.get("plotly_chart"):
        texts += chart_titles(chart.proto.spec)
    return [text for text in texts if text]


def chart_titles(spec: str) -> list[str]:
    import json

    layout = json.loads(spec).get("layout", {})
    found = []
    for name, part in layout.items():
        if name == "title" or name.startswith(("xaxis", "yaxis")):
            title = part.get("title") if name != "title" else part
            if isinstance(title, dict):
                found.append(str(title.get("text") or ""))
            elif isinstance(title, str):
                found.append(title)
    return found


def english_leftovers(at: AppTest) -> list[str]:
    """Interface text of a Russian page that still holds three English words in a row (outside
    code, quotes, formulas and links)."""
    return [found for text in shown_texts(at) if (found := english_left(text))]


def english_run(text: str) -> str | None:
    """The first three English words in a row in ``text`` outside tags, code, quotes, formulas
    and links, or None."""
    prose = NOT_PROSE.sub(" ", re.sub(r"<[^>]+>", " ", text))
    match = ENGLISH_RUN.search(prose)
    return match.group(0) if match else None


def english_left(text: str) -> str | None:
    """What ``english_leftovers`` reports for one shown ``text``: its English run and where."""
    run = english_run(text)
    return None if run is None else f"{run!r} in {text[:120]!r}"
