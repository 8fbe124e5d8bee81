"""The BERT page, headless: the numbers it shows equal a direct computation, every control works
at its extremes, and bad input gets a message instead of a traceback."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import APP_SCRIPT
from tests.page_checks import (
    BLANK_TEXTS,
    MARKUP,
    caption,
    english_leftovers,
    expected_published_counts,
    is_code_block,
    published_counts,
    rerun,
)
from tests.page_order import elements_before_first_chart, first_chart, strip_keys
from tests.plotly_json import chart_titled, chart_titles, charts, decode, title
from tinyformers.course.bert import (
    attention_from,
    embedding_breakdown,
    epoch_ledgers,
    expected_selected_distribution,
    fill_in_blanks,
    ledger_statistics,
    masking_draws,
    selection_units,
    suggest_blank,
    trained_positions,
    word_starts,
)
from tinyformers.figures import bert as figs
from tinyformers.hub.registry import load_shipped
from tinyformers.text.inputs import bert_inputs, read_typed_text
from tinyformers.text.masking import MASKED, RANDOM, UNCHANGED, MaskingRates

PAGE = "app_pages/bert.py"
PAIR = ("Mia sees the friendly fox .", "she smiles .")
LEDGER_SENTENCE = "the friendly dogs that Mia sees run home ."
FILL_SENTENCE = "the lion that the girls fix cries ."
TEXT_INPUTS = ("bert-a", "bert-b", "bert-ledger-text", "bert-fill-text")


@pytest.fixture(scope="module")
def bert():
    return load_shipped("bert-stories")


def ledger_caption(ledger, seed: int, draw: int) -> str:
    loss = ledger.loss_positions
    where = f"positions {', '.join(map(str, loss))}" if loss else "no position"
    eligible = len(ledger.ids) - sum(ledger.special)
    return (
        f"Seed {seed}, draw {draw}: {len(loss)} of {eligible} ordinary tokens selected "
        f"({ledger.count(MASKED)} → [MASK], {ledger.count(RANDOM)} → random, "
        f"{ledger.count(UNCHANGED)} unchanged). Loss at {where}; the other "
        f"{len(ledger.ids) - len(loss)} labels are -100."
    )


def ledger_ids(bert) -> list[int]:
    return bert_inputs(bert.tokenizer, LEDGER_SENTENCE)[0]


def set_rates(at: AppTest, select: int, mask: int, random: int) -> AppTest:
    at.slider(key="bert-select").set_value(select)
    at.slider(key="bert-mask").set_value(mask)
    at.slider(key="bert-random").set_value(random)
    return rerun(at)


def type_everywhere(at: AppTest, text: str) -> AppTest:
    """The same text in every text box of the page."""
    for key in TEXT_INPUTS:
        at.text_input(key=key).set_value(text)
    return rerun(at)


# ---------------------------------------------------------------------------------------------
# Defaults: every number equals a direct computation
# ---------------------------------------------------------------------------------------------


def figures_html(at: AppTest) -> list[str]:
    """The page's HTML figures in order (token chips, the masking ledger), code blocks left
    out."""
    return [h.value for h in at.html if not is_code_block(h.value)]


def test_default_page_runs(page):
    assert not page.exception
    assert not page.warning and not page.error
    assert set(chart_titles(page)) == {
        "BERT's input: three rows added, then LayerNorm",
        "How long each row is",
        "10,000 draws of the masking",
        "The same sentence, epoch after epoch",
        "The model's guesses for each [MASK]",
        "Where position 7 ([MASK]) looks",
    }


def test_input_figure_is_the_models_embedding_rows(page, bert):
    parts = embedding_breakdown(bert.model, bert.tokenizer, *PAIR)
    spec = chart_titled(page, "BERT's input: three rows added, then LayerNorm")
    np.testing.assert_allclose(decode(spec["data"][3]["z"]), parts.total.numpy(), atol=1e-6)
    np.testing.assert_allclose(decode(spec["data"][1]["z"]), parts.segment.numpy(), atol=1e-6)
    assert spec["data"][0]["y"][0] == "0: [CLS] (A)" and spec["data"][0]["y"][-1].endswith("(B)")
    b_count = sum(parts.segments)
    assert caption(page, f"{len(parts.ids)} positions, {b_count} of them in segment B")
    chips = figures_html(page)[0]
    assert chips == figs.pair_chips(parts.tokens, parts.segments)


def test_ledger_is_draw_one_of_the_seed(page, bert):
    ledger = masking_draws(ledger_ids(bert), bert.tokenizer, MaskingRates(), 0, 1)[0]
    assert figures_html(page)[1] == figs.ledger_html(ledger)
    assert caption(page, "Seed 0, draw 1") == ledger_caption(ledger, 0, 1)


def test_resample_statistics_are_computed(page, bert):
    rates = MaskingRates()
    stats = ledger_statistics(ledger_ids(bert), bert.tokenizer, rates, 0, 10_000)
    text = caption(page, "10,000 draws with seed 0")
    assert f"{stats.select_rate:.2%} selected" in text
    assert f"{stats.share(MASKED):.2%} → [MASK], {stats.share(RANDOM):.2%} → random" in text
    spec = chart_titled(page, "10,000 draws of the masking")
    observed = decode(spec["data"][0]["y"])
    np.testing.assert_allclose(observed, np.array(stats.selected_histogram) / 10_000)
    np.testing.assert_allclose(decode(spec["data"][1]["y"]), stats.expected_histogram)


def test_static_and_dynamic_counts_are_computed(page, bert):
    ids, tok, rates = ledger_ids(bert), bert.tokenizer, MaskingRates()
    static = trained_positions(epoch_ledgers(ids, tok, rates, 0, 4, False))
    dynamic = trained_positions(epoch_ledgers(ids, tok, rates, 0, 4, True))
    text = caption(page, "Over 4 epochs with seed 0")
    assert f"static masking trained on {len(static)}, dynamic masking on {len(dynamic)}" in text


def test_guesses_and_attention_equal_a_direct_forward(page, bert):
    ids = bert_inputs(bert.tokenizer, FILL_SENTENCE)[0]
    trace, (guess,) = fill_in_blanks(bert.model, bert.tokenizer, ids, [7], k=5)
    bars = chart_titled(page, "The model's guesses for each [MASK]")["data"][0]
    np.testing.assert_allclose(decode(bars["x"]), guess.probabilities, rtol=1e-5)
    assert [label.split(". ", 1)[1] for label in bars["y"]] == guess.tokens
    assert caption(page, "Position 7") == (
        f"Position 7: the original 'cries' is choice {guess.answer_rank} "
        f"({guess.answer_probability:.1%})."
    )
    heatmap = chart_titled(page, "Where position 7 ([MASK]) looks")["data"][0]
    expected = attention_from(trace, 7).reshape(-1, len(ids)).numpy()
    np.testing.assert_allclose(decode(heatmap["z"]), expected, atol=1e-6)
    (view,) = page.get("iframe")
    assert "[MASK]" in view.proto.srcdoc and "svg" in view.proto.srcdoc


def test_the_page_opens_on_the_fill_in_sentence_and_the_guesses(fresh, bert):
    at = fresh
    assert strip_keys(at) == ["bert-model", "bert-fill-text", "bert-blanks", "bert-k"]
    assert elements_before_first_chart(at) == ["flex_container"]
    assert title(first_chart(at)) == "The model's guesses for each [MASK]"
    assert not at.sidebar.get("slider")
    assert [t.key for t in at.sidebar.get("toggle")] == ["present-toggle"]  # the app's, not BERT's
    sentence = "the dogs [MASK] home ."
    at.text_input(key="bert-fill-text").set_value(sentence).run()
    ids = read_typed_text(bert.tokenizer, "bert", sentence).ids
    _, (guess,) = fill_in_blanks(
        bert.model, bert.tokenizer, ids, [ids.index(bert.tokenizer.mask_id)], k=5
    )
    bars = first_chart(at)["data"][0]
    np.testing.assert_allclose(decode(bars["x"]), guess.probabilities, rtol=1e-5)


def test_many_blanks_and_k_keep_the_guesses_within_450_px(fresh):
    at = fresh
    at.slider(key="bert-k").set_value(10)
    at.multiselect[0].set_value([1, 2, 4, 7]).run()
    spec = first_chart(at)
    assert len(spec["data"]) == 4 and all(len(trace["y"]) == 10 for trace in spec["data"])
    assert spec["layout"]["height"] <= 450


# ---------------------------------------------------------------------------------------------
# Controls
# ---------------------------------------------------------------------------------------------


def test_resample_button_moves_to_the_next_draw(fresh, bert):
    at = fresh
    draws = masking_draws(ledger_ids(bert), bert.tokenizer, MaskingRates(), 0, 3)
    at.button(key="bert-resample").click().run()
    at.button(key="bert-resample").click().run()
    assert not at.exception
    assert caption(at, "Seed 0, draw 3") == ledger_caption(draws[2], 0, 3)
    assert figures_html(at)[1] == figs.ledger_html(draws[2])
    at.button(key="bert-first-draw").click().run()
    assert caption(at, "Seed 0, draw 1") == ledger_caption(draws[0], 0, 1)


def test_seed_changes_every_draw(fresh, bert):
    at = fresh
    at.number_input(key="bert-seed").set_value(5).run()
    assert not at.exception
    ledger = masking_draws(ledger_ids(bert), bert.tokenizer, MaskingRates(), 5, 1)[0]
    assert caption(at, "Seed 5, draw 1") == ledger_caption(ledger, 5, 1)
    assert caption(at, "10,000 draws with seed 5")


def test_whole_word_toggle(fresh, bert):
    at = fresh
    at.toggle(key="bert-whole-word").set_value(True).run()
    assert not at.exception
    ids, tok = ledger_ids(bert), bert.tokenizer
    ledger = masking_draws(ids, tok, MaskingRates(), 0, 1, whole_word=True)[0]
    assert figures_html(at)[1] == figs.ledger_html(ledger)
    units = selection_units(ids, word_starts(tok.display_tokens(ids)))
    assert units != [1] * len(units)  # the default sentence has words of several pieces
    expected = expected_selected_distribution(units, 0.15)
    spec = chart_titled(at, "10,000 draws of the masking")
    np.testing.assert_allclose(decode(spec["data"][1]["y"]), expected)


@pytest.mark.parametrize(
    "rates,expected",
    [
        ((0, 80, 10), "0 of 12 ordinary tokens selected (0 → [MASK], 0 → random, 0 unchanged)"),
        ((100, 100, 0), "12 of 12 ordinary tokens selected (12 → [MASK], 0 → random, 0 unchanged)"),
        ((100, 0, 100), "12 of 12 ordinary tokens selected (0 → [MASK], 12 → random, 0 unchanged)"),
        ((100, 0, 0), "12 of 12 ordinary tokens selected (0 → [MASK], 0 → random, 12 unchanged)"),
    ],
)
def test_rates_at_their_extremes(fresh, rates, expected):
    at = set_rates(fresh, *rates)
    assert expected in caption(at, "Seed 0, draw 1")
    statistics = caption(at, "10,000 draws with seed 0")
    if rates[0] == 0:
        assert "0.00% selected" in statistics and "No draw selected anything" in statistics
    else:
        assert "100.00% selected" in statistics


def test_impossible_rates_are_explained(fresh):
    at = set_rates(fresh, 15, 100, 100)
    assert any("cannot exceed 1" in e.value for e in at.error)
    assert not [c for c in at.caption if c.value.startswith("Seed")]
    # the rest of the page still runs
    assert "The model's guesses for each [MASK]" in chart_titles(at)


def test_epochs_and_samples_controls(fresh):
    at = fresh
    at.number_input(key="bert-epochs").set_value(1)
    at.radio(key="bert-samples").set_value(100).run()
    assert not at.exception
    assert caption(at, "Over 1 epoch with seed 0")
    assert caption(at, "100 draws with seed 0")
    at.number_input(key="bert-epochs").set_value(12).run()
    assert caption(at, "Over 12 epochs with seed 0")


def test_blanks_and_top_k(fresh, bert):
    at = fresh
    at.slider(key="bert-k").set_value(10)
    at.multiselect[0].set_value([2, 7]).run()
    assert not at.exception
    guesses = chart_titled(at, "The model's guesses for each [MASK]")["data"]
    assert len(guesses) == 2 and len(guesses[0]["y"]) == 10
    at.selectbox(key="bert-follow").set_value(2).run()
    assert "Where position 2 ([MASK]) looks" in chart_titles(at)
    at.multiselect[0].set_value([]).run()
    assert any("at least one position" in i.value for i in at.info)
    assert not at.get("iframe")


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", BLANK_TEXTS)
def test_empty_text_gets_a_warning(fresh, text):
    at = type_everywhere(fresh, text)
    assert sum("empty" in w.value for w in at.warning) == len(TEXT_INPUTS)
    assert any("Type sentence A" in i.value for i in at.info)


def test_huge_text_is_cut_with_a_warning(fresh):
    at = type_everywhere(fresh, "the dog " * 6_250)  # 50 000 characters
    assert any("50,000 characters" in w.value for w in at.warning)
    assert any("only the first" in w.value and "tokens" in w.value for w in at.warning)
    assert caption(at, "Seed 0, draw 1")


@pytest.mark.parametrize("text", ["Зоя видит собаку", "🐶🐱 🐱", "زویا سگ را می‌بیند"])
def test_unknown_scripts_are_explained(fresh, text):
    at = type_everywhere(fresh, text)
    assert any("[UNK]" in i.value for i in at.info)
    assert "[UNK]" in figures_html(at)[0]


def test_emoji_among_words_still_works(fresh):
    at = fresh
    at.text_input(key="bert-fill-text").set_value("the dogs 🐶 run .").run()
    assert not at.exception
    assert "The model's guesses for each [MASK]" in chart_titles(at)


def test_markup_is_shown_as_text(fresh):
    at = type_everywhere(fresh, f"the dog {MARKUP} runs .")
    for element in at.html:  # (the app's own step-through script is the only script)
        assert "<img" not in element.value and "</script><img" not in element.value
    for spec in charts(at):
        assert "<img" not in json.dumps(spec)
    for view in at.get("iframe"):
        assert "<img" not in view.proto.srcdoc
        assert not re.search(r"</script>\s*<img", view.proto.srcdoc)
    assert "[UNK]" in figures_html(at)[1]  # the tokenizer has no "<": it reads [UNK]


def test_typed_mask_is_the_mask_token(fresh, bert):
    """Typing [MASK] masks that position, as in every BERT demo; no other blank is added."""
    at = fresh
    sentence = "the girl [MASK] the big dog ."
    at.text_input(key="bert-fill-text").set_value(sentence).run()
    assert not at.exception
    ids = read_typed_text(bert.tokenizer, "bert", sentence).ids
    blank = ids.index(bert.tokenizer.mask_id)
    assert ids.count(bert.tokenizer.mask_id) == 1
    guesses = chart_titled(at, "The model's guesses for each [MASK]")["data"]
    assert len(guesses) == 1
    assert caption(at, f"Position {blank}: you typed [MASK]")
    assert "[UNK]" not in " ".join(at.multiselect[0].options) and "##k" not in str(
        at.multiselect[0].options
    )
    assert at.multiselect[0].value == []  # the typed blank is the blank


def test_positions_to_mask_follow_the_sentence(fresh, bert):
    """A chosen position keeps its token when the sentence changes, or goes with a note."""
    at = fresh
    at.text_input(key="bert-fill-text").set_value("the dogs run to the cat .").run()
    tokens = bert.tokenizer.display_tokens(
        bert_inputs(bert.tokenizer, "the dogs run to the cat .")[0]
    )
    cat = tokens.index("cat")
    at.multiselect[0].set_value([cat]).run()
    at.text_input(key="bert-fill-text").set_value("a big cat runs .").run()
    new_tokens = bert.tokenizer.display_tokens(bert_inputs(bert.tokenizer, "a big cat runs .")[0])
    assert at.multiselect[0].value == [new_tokens.index("cat")]
    at.text_input(key="bert-fill-text").set_value("the dogs run .").run()
    ids = bert_inputs(bert.tokenizer, "the dogs run .")[0]
    suggested = suggest_blank(bert.tokenizer.display_tokens(ids))
    assert at.multiselect[0].value == [suggested]  # back to the page's suggestion
    assert any("not in the new input" in c.value for c in at.caption)
    assert not at.exception


def test_published_models_are_counted_from_their_configurations(page):
    assert published_counts(page) == expected_published_counts("bert")


def tiny_bert(name: str):
    """A one-layer BERT with a WordPiece vocabulary of two sentences, as if trained here."""
    import torch

    from tinyformers.hub.registry import LoadedModel
    from tinyformers.model.build import build_model
    from tinyformers.model.config import BertConfig
    from tinyformers.text.tokenizers import train_wordpiece

    tokenizer = train_wordpiece(f"{FILL_SENTENCE} the girls see the big dog .", 60, 1)
    config = BertConfig(vocab_size=tokenizer.vocab_size, n_layer=1, n_head=2, n_embd=16)
    torch.manual_seed(0)
    return LoadedModel(name, "bert", build_model(config).eval(), tokenizer, "trained", {})


def test_the_picker_offers_a_bert_trained_here_and_the_page_uses_it():
    loaded = tiny_bert("my-bert")
    at = AppTest.from_file(APP_SCRIPT, default_timeout=180)
    at.session_state["trained_models"] = {"my-bert": loaded}
    at.run()
    at.switch_page(PAGE).run()
    picker = at.selectbox(key="bert-model")
    assert picker.value == "bert-stories" and "my-bert" in picker.options
    assert not any(option.startswith("gpt") for option in picker.options)
    picker.set_value("my-bert").run()
    sentence = "the girls [MASK] the big dog ."
    at.text_input(key="bert-fill-text").set_value(sentence).run()
    assert not at.exception, at.exception
    ids = read_typed_text(loaded.tokenizer, "bert", sentence).ids
    blank = ids.index(loaded.tokenizer.mask_id)
    _, (guess,) = fill_in_blanks(loaded.model, loaded.tokenizer, ids, [blank], k=5)
    bars = first_chart(at)["data"][0]
    np.testing.assert_allclose(decode(bars["x"]), guess.probabilities, rtol=1e-5)
    assert [label.split(". ", 1)[1] for label in bars["y"]] == guess.tokens


def prediction_keys(at) -> list[str]:
    """The prediction questions the page asks: the keys of their commit buttons, without the
    ``commit-`` before and the question's signature after."""
    found = [b.key for b in at.button if b.key and b.key.startswith("commit-")]
    return sorted(key.removeprefix("commit-").rsplit("-", 1)[0] for key in found)


def test_predictions_follow_the_inputs_they_need(fresh):
    at = fresh
    assert prediction_keys(at) == [
        "blank-attention",
        "blank-confidence",
        "masked-count",
        "segment-b",
    ]
    at.text_input(key="bert-b").set_value("").run()  # no sentence B: no segment B to count
    at = set_rates(at, 15, 100, 100)  # impossible rates: no ledger to average
    assert not at.exception
    assert prediction_keys(at) == ["blank-attention", "blank-confidence"]
    skipped = [c.value for c in at.caption if "needs a working input above" in c.value]
    assert len(skipped) == 2, skipped


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []
