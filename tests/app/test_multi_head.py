"""Headless tests of the multi-head page: it runs for every model, setting and bad input, and the
numbers it shows equal a direct computation on the same model."""

import json
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.page_checks import BLANK_TEXTS, MARKUP, caption, english_leftovers
from tests.page_order import after_header, index_after_header, is_subheader, strip_keys
from tests.plotly_json import chart, chart_titled, charts, decode
from tinyformers.course.multi_head import (
    agreement_probe,
    attention_shapes,
    head_outputs,
    head_statistics,
    sort_heads,
    trace_sentence,
)
from tinyformers.figures import multi_head as figs
from tinyformers.hub.registry import LoadedModel, load_shipped
from tinyformers.model.build import build_model
from tinyformers.model.config import GPTConfig, Seq2SeqConfig
from tinyformers.text.corpora import agreement_examples
from tinyformers.training.zoo import AGREEMENT_SEED, subject_head_scores

PAGE = "app_pages/multi_head.py"
SENTENCE = "the old man near the birds sings . he is happy ."


@pytest.fixture(scope="module")
def shipped():
    return {name: load_shipped(name) for name in ("gpt-stories", "bert-stories")}


@pytest.fixture(scope="module")
def subject_scores(shipped):
    """The reference: every head's subject score, measured directly on each model."""
    return {name: subject_head_scores(loaded) for name, loaded in shipped.items()}


def views(at: AppTest) -> list[str]:
    """The srcdoc of every iframe (the bertviz views)."""
    return [frame.proto.srcdoc for frame in at.get("iframe")]


class TagCollector(HTMLParser):
    """Every start tag of a document, as a browser's parser sees it (script bodies are text)."""

    def __init__(self, document: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(document)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags(document: str) -> list[tuple[str, dict]]:
    return TagCollector(document).tags


def set_model(at: AppTest, name: str) -> AppTest:
    at.selectbox(key="mh-model").set_value(name).run()
    assert not at.exception, at.exception
    return at


def assert_heatmap_is_the_head(at: AppTest, loaded, layer: int, head: int, text=SENTENCE):
    trace = trace_sentence(loaded.model, loaded.tokenizer, text)
    spec = chart_titled(at, f"{loaded.name}, layer {layer}, head {head}")
    # the page's trace keeps the run record; the fused projection may differ in the last bits
    np.testing.assert_allclose(
        decode(spec["data"][0]["z"]), trace.head(layer, head).numpy(), rtol=1e-5, atol=1e-6
    )
    assert spec["data"][0]["y"] == figs.token_labels(trace.tokens)


# ---------------------------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------------------------


def test_default_heatmap_is_the_models_attention(page, shipped):
    assert not page.exception
    assert page.selectbox(key="mh-model").value == "gpt-stories"
    assert_heatmap_is_the_head(page, shipped["gpt-stories"], 0, 0)


def test_both_bertviz_views_are_drawn_offline(page, shipped):
    head_view, model_view = views(page)
    trace = trace_sentence(shipped["gpt-stories"].model, shipped["gpt-stories"].tokenizer, SENTENCE)
    for view in (head_view, model_view):
        assert not [attrs for tag, attrs in tags(view) if "src" in attrs or "href" in attrs]
        assert json.dumps(trace.tokens[1]) in view  # the tokens travel as JSON


def test_the_page_opens_on_the_inputs_and_the_head_view_they_give(fresh, shipped):
    at = fresh
    assert strip_keys(at) == ["mh-model", "mh-sentence"]
    lesson_inputs = [t for t in at.sidebar.text_input if not t.key.startswith("room-")]
    assert not at.sidebar.selectbox and not lesson_inputs  # the lesson's inputs left the sidebar
    primary = after_header(at)[1]
    assert primary.type == "iframe" and primary.proto.srcdoc == views(at)[0]
    assert index_after_header(at, is_subheader) == 2  # the prose comes after the view
    text = "Zoe sees the big dog ."
    at.text_input(key="mh-sentence").set_value(text)
    set_model(at, "bert-stories")
    loaded = shipped["bert-stories"]
    trace = trace_sentence(loaded.model, loaded.tokenizer, text)
    head_view = after_header(at)[1].proto.srcdoc
    assert json.dumps(trace.tokens) in head_view and "[CLS]" in head_view
    assert all(spec["layout"]["height"] <= 560 for spec in charts(at))


def test_ranking_table_matches_direct_statistics(page, shipped):
    loaded = shipped["gpt-stories"]
    trace = trace_sentence(loaded.model, loaded.tokenizer, SENTENCE)
    ranked = sort_heads(head_statistics(trace.attentions, trace.tokens), "entropy", False)
    table = page.dataframe[0].value
    assert list(zip(table["layer"], table["head"], strict=True)) == [
        (s.layer, s.head) for s in ranked
    ]
    column = figs.stat_names("the first token")["entropy"]
    np.testing.assert_allclose(table[column], [s.entropy for s in ranked], atol=5e-4)
    assert "attends to the first token" in table.columns
    bars = chart(page, "Heads ranked by")
    assert bars["layout"]["yaxis"]["categoryarray"] == [s.name for s in ranked]


def test_shapes_table_uses_the_model_and_the_sentence(page, shipped):
    loaded = shipped["gpt-stories"]
    n_tokens = len(loaded.tokenizer.encode(SENTENCE))
    rows = page.table[0].value
    expected = attention_shapes(loaded.config, n_tokens)
    assert list(rows["shape"]) == [step.dims for step in expected]
    shown = rows[f"{loaded.name}, your sentence"]
    assert list(shown) == [" × ".join(map(str, step.shape)) for step in expected]
    assert f"T = {n_tokens} tokens" in caption(page, "T = ")


def test_concatenation_panel_shows_the_models_own_layer(page, shipped):
    loaded = shipped["gpt-stories"]
    trace = trace_sentence(loaded.model, loaded.tokenizer, SENTENCE)
    outputs = head_outputs(trace, 0)
    spec = chart(page, "Layer 0: what the heads return")
    np.testing.assert_allclose(
        decode(spec["data"][0]["z"]), outputs.concatenated.numpy(), atol=1e-6
    )
    np.testing.assert_allclose(decode(spec["data"][1]["z"]), outputs.projected.numpy(), atol=1e-6)


def test_subject_head_grid_and_sentence(page, shipped, subject_scores):
    loaded = shipped["bert-stories"]
    scores = subject_scores["bert-stories"]
    layer, head = divmod(int(scores.argmax()), scores.shape[1])
    grid = chart(page, "bert-stories: how often the verb points at its subject")
    np.testing.assert_allclose(decode(grid["data"][0]["z"]), scores.numpy(), atol=1e-6)
    assert f"Best: layer {layer}, head {head}" in caption(page, "200 held-out")
    assert f"{scores[layer, head].item():.0%}" in caption(page, "200 held-out")
    example = agreement_examples(1, seed=AGREEMENT_SEED)[0]
    trace = trace_sentence(loaded.model, loaded.tokenizer, example.text)
    probe = agreement_probe(loaded.tokenizer, example, "bert")
    spec = chart_titled(page, f"bert-stories, layer {layer}, head {head}, on an agreement sentence")
    # the page's trace keeps the run record; the fused projection may differ in the last bits
    np.testing.assert_allclose(
        decode(spec["data"][0]["z"]), trace.head(layer, head).numpy(), rtol=1e-5, atol=1e-6
    )
    row = [s for s in spec["layout"]["shapes"] if s["line"].get("dash") != "dash"][0]
    assert (row["y0"], row["y1"]) == (probe.query - 0.5, probe.query + 0.5)
    assert caption(page, f"Row {probe.query} ")


# ---------------------------------------------------------------------------------------------
# Widgets
# ---------------------------------------------------------------------------------------------


def test_bert_reads_cls_sentence_sep(fresh, shipped):
    at = set_model(fresh, "bert-stories")
    loaded = shipped["bert-stories"]
    assert_heatmap_is_the_head(at, loaded, 0, 0)
    spec = chart_titled(at, "bert-stories, layer 0, head 0")
    assert spec["data"][0]["y"][0] == "0: [CLS]" and spec["data"][0]["y"][-1].endswith("[SEP]")
    table = at.dataframe[0].value
    assert "attends to [SEP]" in table.columns
    trace = trace_sentence(loaded.model, loaded.tokenizer, SENTENCE)
    stats = {(s.layer, s.head): s for s in head_statistics(trace.attentions, trace.tokens, "[SEP]")}
    for layer, head, value in zip(
        table["layer"], table["head"], table["attends to [SEP]"], strict=True
    ):
        assert value == pytest.approx(stats[(layer, head)].anchor, abs=5e-4)
    assert len(views(at)) == 2


def test_layer_and_head_picker(fresh, shipped):
    at = fresh
    at.radio(key="mh-layer").set_value(2)
    at.radio(key="mh-head").set_value(3).run()
    assert not at.exception
    assert_heatmap_is_the_head(at, shipped["gpt-stories"], 2, 3)
    assert chart(at, "Layer 2: what the heads return")


def test_a_smaller_model_resets_the_layer_and_head_with_a_note(fresh, char_tokenizer):
    at = fresh
    at.radio(key="mh-layer").set_value(2)
    at.radio(key="mh-head").set_value(1).run()
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=char_tokenizer.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=16
    )
    small = LoadedModel("small", "gpt", build_model(config).eval(), char_tokenizer, "trained", {})
    at.session_state["trained_models"] = {"small": small}
    at.run()
    set_model(at, "small")
    assert (at.radio(key="mh-layer").value, at.radio(key="mh-head").value) == (0, 1)
    assert caption(at, "Layer 2 does not exist here, so layer 0 is shown.")
    text = "the cat sat on the mat."
    at.text_input(key="mh-sentence").set_value(text).run()
    assert_heatmap_is_the_head(at, small, 0, 1, text=text)


def test_sort_key_and_order(fresh, shipped):
    at = fresh
    at.selectbox(key="mh-sort").set_value("previous").run()
    assert not at.exception
    assert at.radio(key="mh-order-previous").value == "largest first"
    loaded = shipped["gpt-stories"]
    trace = trace_sentence(loaded.model, loaded.tokenizer, SENTENCE)
    stats = head_statistics(trace.attentions, trace.tokens)
    table = at.dataframe[0].value
    ranked = sort_heads(stats, "previous")
    assert list(table["layer"]) == [s.layer for s in ranked]
    assert list(table["head"]) == [s.head for s in ranked]
    at.radio(key="mh-order-previous").set_value("smallest first").run()
    ranked = sort_heads(stats, "previous", descending=False)
    assert list(at.dataframe[0].value["head"]) == [s.head for s in ranked]


def test_button_opens_the_top_head(fresh, shipped):
    at = fresh
    at.selectbox(key="mh-sort").set_value("distance").run()
    loaded = shipped["gpt-stories"]
    trace = trace_sentence(loaded.model, loaded.tokenizer, SENTENCE)
    best = sort_heads(head_statistics(trace.attentions, trace.tokens), "distance")[0]
    at.button(key="mh-open-top").click().run()
    assert not at.exception
    assert (at.radio(key="mh-layer").value, at.radio(key="mh-head").value) == (
        best.layer,
        best.head,
    )
    assert_heatmap_is_the_head(at, loaded, best.layer, best.head)


def test_gpt_agreement_rows_are_before_the_verb(fresh, shipped, subject_scores):
    at = fresh
    at.radio(key="mh-agree-model").set_value("gpt-stories")
    at.selectbox(key="mh-agree-sentence").set_value(3).run()
    assert not at.exception
    loaded = shipped["gpt-stories"]
    scores = subject_scores["gpt-stories"]
    grid = chart(at, "gpt-stories: how often the token before the verb")
    np.testing.assert_allclose(decode(grid["data"][0]["z"]), scores.numpy(), atol=1e-6)
    layer, head = divmod(int(scores.argmax()), scores.shape[1])
    example = agreement_examples(4, seed=AGREEMENT_SEED)[3]
    probe = agreement_probe(loaded.tokenizer, example, "gpt")
    assert probe.query == probe.verb[0] - 1
    title = f"gpt-stories, layer {layer}, head {head}, on an agreement sentence"
    row = chart_titled(at, title)["layout"]["shapes"][0]
    assert (row["y0"], row["y1"]) == (probe.query - 0.5, probe.query + 0.5)


def test_a_model_trained_in_the_session_appears(fresh, char_tokenizer):
    at = fresh
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=char_tokenizer.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=16
    )
    gpt = LoadedModel("my-gpt", "gpt", build_model(config).eval(), char_tokenizer, "trained", {})
    seq2seq_config = Seq2SeqConfig(vocab_size=char_tokenizer.vocab_size, n_embd=16, n_head=2)
    seq2seq = LoadedModel(
        "my-seq2seq", "seq2seq", build_model(seq2seq_config).eval(), char_tokenizer, "trained", {}
    )
    at.session_state["trained_models"] = {"my-gpt": gpt, "my-seq2seq": seq2seq}
    at.run()
    assert {"my-gpt", "my-seq2seq"} <= set(at.selectbox(key="mh-model").options)
    set_model(at, "my-gpt")
    text = "the cat sat on the mat."
    at.text_input(key="mh-sentence").set_value(text).run()
    assert not at.exception
    assert_heatmap_is_the_head(at, gpt, 0, 0, text=text)
    assert at.table[0].value["my-gpt, your sentence"].iloc[3] == "2 × 23 × 8"
    set_model(at, "my-seq2seq")
    assert any("pick a GPT or BERT model" in e.value for e in at.error)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_empty_sentence_gets_a_warning(fresh):
    at = fresh
    for text in BLANK_TEXTS:
        at.text_input(key="mh-sentence").set_value(text).run()
        assert not at.exception
        assert any("empty" in w.value for w in at.warning)
        assert not views(at)
        assert charts(at)  # the agreement section still works


def test_huge_sentence_is_cut(fresh, shipped):
    at = fresh
    at.text_input(key="mh-sentence").set_value("the dog " * 6_250).run()  # 50 000 characters
    assert not at.exception
    assert any("only the first" in w.value for w in at.warning)
    block_size = shipped["gpt-stories"].config.block_size
    assert len(chart_titled(at, "gpt-stories, layer 0, head 0")["data"][0]["y"]) == block_size
    assert len(views(at)) == 2


@pytest.mark.parametrize("model", ["gpt-stories", "bert-stories"])
def test_unusual_scripts_run(fresh, shipped, model):
    at = set_model(fresh, model)
    for text in ["Zoe 🐶 sees 🐱🐱", "Зоя видит собаку", "زویا سگ را می‌بیند", "\u202eZoe\u202c"]:
        at.text_input(key="mh-sentence").set_value(text).run()
        assert not at.exception, text
        assert_heatmap_is_the_head(at, shipped[model], 0, 0, text=text)
        assert len(views(at)) == 2


@pytest.mark.parametrize("model", ["gpt-stories", "bert-stories"])
def test_markup_is_escaped_everywhere(fresh, model):
    at = set_model(fresh, model)
    plain = [tags(view) for view in views(at)]
    at.text_input(key="mh-sentence").set_value(MARKUP).run()
    assert not at.exception
    for before, view in zip(plain, views(at), strict=True):
        assert [tag for tag, _ in tags(view)] == [tag for tag, _ in before]  # no tag injected
        assert "<img" not in view
    chips = at.html[0].value
    assert "<img" not in chips and "</script>" not in chips
    labels = chart_titled(at, f"{model}, layer 0, head 0")["data"][0]["x"]
    assert not any("<" in label for label in labels)
    for element in at.caption:  # Markdown: a token's "<" is shown through a backslash escape
        assert "<" not in element.value.replace("\\<", "")


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []
