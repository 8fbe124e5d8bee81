"""Headless page tests (Streamlit's AppTest): every page runs without an exception."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.page_checks import markdown_table_cells


@pytest.fixture
def app(open_page) -> AppTest:
    return open_page()


def test_home_page_runs(app: AppTest) -> None:
    assert not app.exception
    assert app.title[0].value == "Tinyformers"


def test_home_page_shows_measured_parameter_counts(app: AppTest) -> None:
    from tinyformers.model.build import presets_table

    header, *rows = markdown_table_cells(app, "parameters")
    counts = [row[header.index("parameters")] for row in rows]
    assert counts == [f"{row['parameters']:,}" for row in presets_table()]
    assert not app.dataframe  # a markdown table: no table viewer for the browser to load


def test_home_page_starts_with_a_live_model(app: AppTest) -> None:
    """The tokens and the next-token chart are computed from the sentence in the box."""
    import numpy as np

    from tests.plotly_json import chart, decode, named_trace
    from tinyformers.course.gpt import next_token_logits
    from tinyformers.figures import gpt as figs
    from tinyformers.hub.registry import load_shipped
    from tinyformers.model.sampling import SamplingSettings, next_token_distribution

    loaded = load_shipped("gpt-stories")
    sentence = "the big cat sees the"
    app.text_input(key="home-sentence").set_value(sentence).run()
    assert not app.exception
    ids = loaded.tokenizer.encode(sentence)
    assert any(f"{len(ids):,} tokens" in m.value for m in app.markdown)
    dist = next_token_distribution(next_token_logits(loaded.model, ids), SamplingSettings())
    shown = figs.bar_ids(dist, 10)
    spec = chart(app, "2. What the model expects next")
    bars = decode(named_trace(spec, "softmax(logits)")["y"])
    np.testing.assert_allclose(bars, dist.raw[shown].numpy(), atol=1e-6)


def test_home_page_says_what_an_empty_sentence_needs(app: AppTest) -> None:
    app.text_input(key="home-sentence").set_value("   ").run()
    assert not app.exception
    assert not app.get("plotly_chart")
