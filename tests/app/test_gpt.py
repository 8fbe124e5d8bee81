"""Headless tests of the GPT lesson page: it runs for every model, setting and bad input, and
what it shows equals a direct computation with the core package."""

from __future__ import annotations

import html

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from streamlit.testing.v1 import AppTest

from tests.page_checks import (
    BLANK_TEXTS,
    MARKUP,
    UNUSUAL_TEXTS,
    caption,
    captions,
    english_leftovers,
    expected_published_counts,
    html_bodies,
    metrics,
    published_counts,
    rerun,
)
from tests.page_order import elements_before_first_chart, first_chart, strip_keys
from tests.plotly_json import chart, charts, decode, named_trace, title
from tinyformers.course.gpt import last_position_attention, learned_tokens, next_token_logits
from tinyformers.figures import gpt as figs
from tinyformers.hub.interop import export_hf
from tinyformers.hub.registry import MODELS_DIR, LoadedModel, load_shipped
from tinyformers.model.build import build_model
from tinyformers.model.config import GPTConfig
from tinyformers.model.sampling import (
    BeamSettings,
    SamplingSettings,
    beam_search,
    generate,
    next_token_distribution,
)
from tinyformers.text.tokenizers import train_char

PAGE = "app_pages/gpt.py"
PROMPT = "Zoe sees the big dog . the dog"
FINAL = "sampled from (kept, renormalised)"


# ---------------------------------------------------------------------------------------------
# Reading what the page shows
# ---------------------------------------------------------------------------------------------


def bars(spec: dict, name: str) -> np.ndarray:
    """The heights of the bars called ``name``."""
    return decode(named_trace(spec, name)["y"])


def distribution_for(name: str, text: str, settings: SamplingSettings):
    loaded = load_shipped(name)
    ids = loaded.tokenizer.encode(text)
    return loaded, ids, next_token_distribution(next_token_logits(loaded.model, ids), settings)


def assert_distribution_chart(at: AppTest, name: str, text: str, settings: SamplingSettings):
    """The live chart's bars are exactly the sampler's distribution for the prompt."""
    loaded, ids, dist = distribution_for(name, text, settings)
    spec = chart(at, "Next token after your prompt")
    shown = figs.bar_ids(dist, 15)
    np.testing.assert_allclose(bars(spec, FINAL), dist.final[shown].numpy(), atol=1e-6)
    np.testing.assert_allclose(bars(spec, "softmax(logits)"), dist.raw[shown].numpy(), atol=1e-6)
    labels = [figs.label(t) for t in loaded.tokenizer.display_tokens(shown)]
    assert spec["layout"]["xaxis"]["ticktext"] == labels
    return dist


def set_settings(at: AppTest, temperature=None, top_k=None, top_p=None) -> AppTest:
    if temperature is not None:
        at.slider(key="gpt-temperature").set_value(temperature)
    if top_k is not None:
        at.slider(key="gpt-top-k").set_value(top_k)
    if top_p is not None:
        at.slider(key="gpt-top-p").set_value(top_p)
    return rerun(at)


# ---------------------------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------------------------


def test_default_chart_is_what_the_sampler_draws_from(page):
    assert page.selectbox(key="gpt-model").value == "gpt-stories"
    dist = assert_distribution_chart(page, "gpt-stories", PROMPT, SamplingSettings())
    top = int(dist.raw.argmax())
    expected = f"with p = {dist.raw[top]:.3f}. {int(dist.kept.sum())} of 768 tokens are kept"
    assert expected in caption(page, "Most likely")


def test_the_page_opens_on_the_prompt_and_the_next_token_distribution(fresh):
    at = fresh
    assert strip_keys(at) == ["gpt-model", "gpt-prompt"]
    assert elements_before_first_chart(at) == ["flex_container"]
    assert title(first_chart(at)) == "Next token after your prompt"
    assert first_chart(at)["layout"]["title"]["subtitle"]["text"] == "temperature 1.00"
    assert first_chart(at)["layout"]["height"] <= 450
    assert not at.sidebar.get("slider") and not at.sidebar.get("selectbox")
    at.text_input(key="gpt-prompt").set_value("the cat").run()
    assert_distribution_chart(at, "gpt-stories", "the cat", SamplingSettings())
    assert title(first_chart(at)).startswith("Next token after your prompt")


def test_greedy_entropy_is_zero_not_negative_zero(fresh):
    at = set_settings(fresh, temperature=0.0)
    text = caption(at, "Most likely")
    assert text.endswith("Entropy of the distribution sampled from: 0.000 nats.")
    assert "-0.000" not in " ".join(captions(at))


def test_capitalised_words_are_checked_against_the_vocabulary(fresh):
    at = fresh
    tokenizer = load_shipped("gpt-stories").tokenizer
    at.text_input(key="gpt-prompt").set_value("The dog sees Zoe .").run()
    assert tokenizer.token_to_id("The") is None and tokenizer.token_to_id("the") is not None
    pieces = tokenizer.display_tokens(tokenizer.encode("The"))
    learned = learned_tokens(tokenizer)
    text = caption(at, figs.markdown_quote("The"))
    assert f"it is read as {len(pieces)} pieces, " in text
    assert " ".join(figs.markdown_quote(p) for p in pieces) in text
    assert f"while {figs.markdown_quote('the')} is one token." in text
    assert f"{figs.markdown_quote(' Zoe')} is one token of gpt\\-stories." in text
    assert f"Of the {learned.learned:,} tokens its byte-level BPE learned" in text
    assert f"{len(learned.capitalised):,} hold a capital letter" in text
    assert "mostly lowercase" in text
    at.text_input(key="gpt-prompt").set_value("Zoe sees the cat").run()
    assert caption(at, "“Zoe”") == "“Zoe” is one token of gpt\\-stories."
    at.text_input(key="gpt-prompt").set_value("the dog sees the cat").run()
    assert not [c for c in captions(at) if "token of gpt" in c]


def test_default_objective_equals_the_model_loss(page):
    loaded = load_shipped("gpt-stories")
    ids = loaded.tokenizer.encode(PROMPT)
    logits = loaded.model(torch.tensor([ids])).logits[0, :-1]
    losses = F.cross_entropy(logits, torch.tensor(ids[1:]), reduction="none")
    shown = metrics(page)
    assert shown["Mean of the per-token losses"] == f"{losses.mean():.4f}"
    assert shown["The model's own loss on the prompt"] == f"{losses.mean():.4f}"
    assert shown["Perplexity e^loss"] == f"{losses.mean().exp():.2f}"
    spec = chart(page, "−log p of each token")
    np.testing.assert_allclose(decode(spec["data"][0]["y"]), losses.detach().numpy(), atol=1e-5)
    chips = next(body for body in html_bodies(page) if "nothing predicts it" in body)
    assert chips.count("<sub") == len(ids)


def test_default_comparison_equals_generate(page):
    loaded = load_shipped("gpt-stories")
    ids = loaded.tokenizer.encode(PROMPT)
    greedy = generate(loaded.model, ids, 30, SamplingSettings(temperature=0))
    sampled = generate(loaded.model, ids, 30, SamplingSettings(), seed=0)
    bodies = html_bodies(page)
    for new, heading in ((greedy, "Greedy"), (sampled, "Sampled: temperature 1.00, seed 0")):
        body = next(b for b in bodies if heading in b)
        assert html.escape(loaded.tokenizer.decode(new)) in body
    assert "Repeated three-word sequences" in metrics(page)


def test_default_step_section_waits_for_a_click(page):
    assert any("Add one token" in info.value for info in page.info)
    assert page.button(key="gpt-step").disabled is False


def test_gpt_char_defaults(fresh):
    at = fresh
    at.selectbox(key="gpt-model").set_value("gpt-char").run()
    assert not at.exception
    assert_distribution_chart(at, "gpt-char", PROMPT, SamplingSettings())
    loaded = load_shipped("gpt-char")
    new = generate(loaded.model, loaded.tokenizer.encode(PROMPT), 60, SamplingSettings(), seed=0)
    assert any(html.escape(loaded.tokenizer.decode(new)) in body for body in html_bodies(at))
    assert "4 layers × 4 heads" in caption(at, "gpt\\-char")


# ---------------------------------------------------------------------------------------------
# Step-by-step generation
# ---------------------------------------------------------------------------------------------


def test_step_clicks_draw_what_generate_draws(fresh):
    at = fresh
    loaded = load_shipped("gpt-stories")
    ids = loaded.tokenizer.encode(PROMPT)
    for _ in range(3):
        at.button(key="gpt-step").click().run()
        assert not at.exception
    expected = generate(loaded.model, ids, 3, SamplingSettings(), seed=0)
    assert at.session_state["gpt-run"][1].new == expected
    assert caption(at, "3 tokens generated") == "3 tokens generated with seed 0."
    drawn = loaded.tokenizer.display_tokens([expected[2]])[0]
    step = chart(at, "Step 3: drew")
    assert step["layout"]["title"]["text"] == html.escape(
        f"Step 3: drew {figs.quoted(drawn)} (temperature 1.00)"
    )
    dist = next_token_distribution(
        next_token_logits(loaded.model, ids + expected[:2]), SamplingSettings()
    )
    shown = figs.bar_ids(dist, 15, chosen=expected[2])
    np.testing.assert_allclose(bars(step, FINAL), dist.final[shown].numpy(), atol=1e-6)
    heatmap = chart(at, "Where the last position")
    attention = last_position_attention(loaded.model, ids + expected[:2])
    np.testing.assert_allclose(
        decode(heatmap["data"][0]["z"]), attention.reshape(12, -1).numpy(), atol=1e-6
    )


def test_generate_n_then_step_continues_the_same_sample(fresh):
    at = fresh
    at.number_input(key="gpt-n").set_value(10).run()
    at.button(key="gpt-generate").click().run()
    assert at.button(key="gpt-step").disabled  # the text has the tokens it was to have
    at.number_input(key="gpt-n").set_value(11).run()
    at.button(key="gpt-step").click().run()
    assert not at.exception
    loaded = load_shipped("gpt-stories")
    expected = generate(loaded.model, loaded.tokenizer.encode(PROMPT), 11, SamplingSettings(), 0)
    assert at.session_state["gpt-run"][1].new == expected
    assert caption(at, "11 tokens generated")
    at.slider(key=next(s.key for s in at.slider if s.key.startswith("gpt-show"))).set_value(4)
    at.run()
    assert not at.exception
    assert chart(at, "Step 4: drew")


def test_back_forgets_the_last_token_and_a_link_draws_the_same_tokens(fresh, open_link):
    at = fresh
    for _ in range(3):
        at.button(key="gpt-step").click().run()
    at.button(key="gpt-back").click().run()
    assert not at.exception
    loaded = load_shipped("gpt-stories")
    expected = generate(loaded.model, loaded.tokenizer.encode(PROMPT), 2, SamplingSettings(), 0)
    assert at.session_state["gpt-run"][1].new == expected
    assert at.query_params["gpt-tokens"] == "2"
    linked = open_link(PAGE, {"gpt-tokens": "2"})
    assert not linked.exception and linked.session_state["gpt-run"][1].new == expected
    assert caption(linked, "2 tokens generated") == "2 tokens generated with seed 0."


def test_changing_the_prompt_or_seed_starts_over(fresh):
    at = fresh
    at.button(key="gpt-step").click().run()
    first = at.session_state["gpt-run"]
    at.number_input(key="gpt-seed").set_value(7).run()
    assert at.session_state["gpt-run"] is not first and not at.session_state["gpt-run"][1].new
    at.button(key="gpt-step").click().run()
    at.text_input(key="gpt-prompt").set_value("the old wizard").run()
    assert not at.session_state["gpt-run"][1].new
    at.button(key="gpt-step").click().run()
    at.button(key="gpt-restart").click().run()
    assert not at.exception and not at.session_state["gpt-run"][1].new


def test_seed_changes_the_sample_reproducibly(fresh, open_link):
    at = fresh
    at.number_input(key="gpt-seed").set_value(42).run()
    loaded = load_shipped("gpt-stories")
    sampled = generate(loaded.model, loaded.tokenizer.encode(PROMPT), 30, SamplingSettings(), 42)
    body = next(b for b in html_bodies(at) if "seed 42" in b)
    assert html.escape(loaded.tokenizer.decode(sampled)) in body
    linked = open_link(PAGE, {"gpt-seed": "42"})  # the seed is in the page's link
    assert body in html_bodies(linked)


# ---------------------------------------------------------------------------------------------
# Controls at their extremes
# ---------------------------------------------------------------------------------------------


def test_temperature_zero_is_greedy(fresh):
    at = set_settings(fresh, temperature=0.0)
    dist = assert_distribution_chart(at, "gpt-stories", PROMPT, SamplingSettings(temperature=0))
    assert bars(chart(at, "Next token after your prompt"), FINAL).tolist()[0] == 1.0
    assert "1 of 768 tokens are kept" in caption(at, "Most likely")
    assert dist.kept.sum() == 1
    assert any("both columns decode greedily" in c for c in captions(at))
    at.button(key="gpt-step").click().run()
    assert chart(at, "Step 1: drew")["layout"]["title"]["text"].endswith("(greedy)")


def test_maximum_temperature_top_k_one_and_top_p_extremes(fresh):
    at = set_settings(fresh, temperature=5.0)
    assert_distribution_chart(at, "gpt-stories", PROMPT, SamplingSettings(temperature=5.0))
    at = set_settings(at, top_k=1)
    dist = assert_distribution_chart(at, "gpt-stories", PROMPT, SamplingSettings(5.0, top_k=1))
    assert dist.kept.sum() == 1
    at.button(key="gpt-generate").click().run()
    loaded = load_shipped("gpt-stories")
    ids = loaded.tokenizer.encode(PROMPT)
    greedy = generate(loaded.model, ids, 20, SamplingSettings(temperature=0))
    assert at.session_state["gpt-run"][1].new == greedy  # top-k 1 is greedy at any temperature
    at = set_settings(at, top_k=0, top_p=0.05)
    assert_distribution_chart(at, "gpt-stories", PROMPT, SamplingSettings(5.0, top_p=0.05))
    at = set_settings(at, top_p=1.0, top_k=100)
    assert_distribution_chart(at, "gpt-stories", PROMPT, SamplingSettings(5.0, top_k=100))


def test_settings_may_change_between_steps(fresh):
    at = fresh
    at.button(key="gpt-step").click().run()
    at = set_settings(at, temperature=0.0)
    at.button(key="gpt-step").click().run()
    run = at.session_state["gpt-run"][1]
    assert [s.greedy for s in run.settings] == [False, True]
    assert not at.exception


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", BLANK_TEXTS)
def test_empty_prompt_gets_a_warning(fresh, text):
    at = fresh
    at.text_input(key="gpt-prompt").set_value(text).run()
    assert not at.exception
    assert any("empty" in w.value for w in at.warning)
    assert not charts(at)


def test_huge_prompt_is_cut_with_a_warning(fresh):
    at = fresh
    at.text_input(key="gpt-prompt").set_value("the dog " * 6_250).run()  # 50 000 characters
    assert not at.exception
    assert any("50,000 characters" in w.value for w in at.warning)
    assert any("only the first 64 are used" in w.value for w in at.warning)
    for _ in range(3):
        at.button(key="gpt-step").click().run()
    assert not at.exception
    assert "The model read 64 tokens; 2 earlier ones had left its window." in caption(at, "“")


@pytest.mark.parametrize("model", ["gpt-stories", "gpt-char"])
@pytest.mark.parametrize("text", UNUSUAL_TEXTS)
def test_unusual_scripts_run(fresh, model, text):
    at = fresh
    at.selectbox(key="gpt-model").set_value(model).run()
    at.text_input(key="gpt-prompt").set_value(text).run()
    assert not at.exception
    at.button(key="gpt-step").click().run()
    assert not at.exception
    if model == "gpt-char" and "Зоя" in text:
        assert any("\\[UNK\\]" in w.value for w in at.warning)
    assert chart(at, "Step 1: drew")


def test_markup_in_the_prompt_is_shown_as_text(fresh):
    at = fresh
    at.text_input(key="gpt-prompt").set_value(MARKUP).run()
    at.button(key="gpt-step").click().run()
    assert not at.exception
    for body in html_bodies(at):
        assert "<img" not in body and "</script>" not in body
    assert any("&lt;img" in body for body in html_bodies(at))
    for spec in charts(at):
        ticks = spec["layout"]["xaxis"].get("ticktext", [])
        assert not any("<" in tick for tick in ticks)
        assert "<" not in spec["layout"]["title"]["text"]
    for text in captions(at):
        assert "<img" not in text.replace("\\<img", "")


def test_char_model_with_only_unknown_characters(fresh):
    at = fresh
    at.selectbox(key="gpt-model").set_value("gpt-char").run()
    at.text_input(key="gpt-prompt").set_value("Ж").run()
    assert not at.exception
    assert any("not in this model's vocabulary" in w.value for w in at.warning)
    assert any("at least two tokens" in i.value for i in at.info)


# ---------------------------------------------------------------------------------------------
# Other models: one trained in this session, a transformers GPT-2 folder
# ---------------------------------------------------------------------------------------------


def test_a_model_trained_in_this_session(fresh):
    at = fresh
    tokenizer = train_char("the dog sees Zoe . " * 20)
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=tokenizer.vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=32
    )
    trained = LoadedModel("my-gpt", "gpt", build_model(config).eval(), tokenizer, "trained", {})
    at.session_state["trained_models"] = {"my-gpt": trained}
    at.run()
    at.selectbox(key="gpt-model").set_value("my-gpt").run()
    assert not at.exception
    ids = tokenizer.encode(tokenizer.decode(tokenizer.encode(PROMPT)[:16]))  # as the page cuts
    dist = next_token_distribution(next_token_logits(trained.model, ids), SamplingSettings())
    spec = chart(at, "Next token after your prompt")
    np.testing.assert_allclose(
        bars(spec, FINAL), dist.final[figs.bar_ids(dist, 15)].numpy(), atol=1e-6
    )
    at.button(key="gpt-generate").click().run()
    assert not at.exception
    assert at.session_state["gpt-run"][1].new == generate(trained.model, ids, 20, seed=0)


def test_a_transformers_gpt2_folder(fresh, tmp_path):
    at = fresh
    folder = export_hf(MODELS_DIR / "gpt-stories", tmp_path / "hf")
    other = next(o for o in at.selectbox(key="gpt-model").options if o.startswith("Other"))
    at.selectbox(key="gpt-model").set_value(other).run()
    at.text_input(key="gpt-model-other").set_value(str(folder)).run()
    assert not at.exception and not at.error
    assert_distribution_chart(at, "gpt-stories", PROMPT, SamplingSettings())
    at.button(key="gpt-step").click().run()
    assert not at.exception
    assert chart(at, "Where the last position")


def test_other_model_that_cannot_be_found(fresh):
    at = fresh
    other = next(o for o in at.selectbox(key="gpt-model").options if o.startswith("Other"))
    at.selectbox(key="gpt-model").set_value(other).run()
    at.text_input(key="gpt-model-other").set_value("no-such-owner/no-such-model").run()
    assert not at.exception
    assert any("cannot find a model" in e.value for e in at.error)


def test_published_models_are_counted_from_their_configurations(page):
    assert published_counts(page) == expected_published_counts("gpt")


def test_new_sampling_settings_ask_the_prediction_again(fresh) -> None:
    at = fresh
    vocab = load_shipped("gpt-stories").config.vocab_size  # no filter: every token is kept
    (guess,) = [n for n in at.number_input if n.key and n.key.startswith("guess-kept-count-")]
    guess.set_value(5).run()
    (commit,) = [b for b in at.button if b.key and b.key.startswith("commit-kept-count-")]
    commit.click().run()
    assert [e.value for e in at.error if f"The model's answer: **{vocab}**" in e.value]
    at.slider(key="gpt-top-k").set_value(5).run()  # a new question: the answer is not kept
    assert not [e.value for e in at.error if "The model's answer" in e.value]
    guesses = [n for n in at.number_input if n.key and n.key.startswith("guess-kept-count-")]
    assert len(guesses) == 1 and guesses[0].value is None


# ---------------------------------------------------------------------------------------------
# Greedy, sampling and beam search, step by step
# ---------------------------------------------------------------------------------------------

SEARCH_NEW = 16  # the page's default number of new tokens for a search


def search_nodes(spec: dict) -> list[tuple[float, float]]:
    """Every candidate the search chart draws, as (step, log p), in trace order."""
    nodes = []
    for name, _, _ in figs.FATES.values():
        trace = named_trace(spec, name)
        nodes += list(zip(decode(trace["x"]).tolist(), decode(trace["y"]).tolist(), strict=True))
    return nodes


def expected_nodes(search) -> list[tuple[float, float]]:
    return [
        (float(step), c.beam.log_prob)
        for fate in figs.FATES
        for step, s in enumerate(search.steps, start=1)
        for c in s.candidates
        if c.fate == fate
    ]


def assert_search_shown(at: AppTest, strategy: str, expected) -> None:
    spec = chart(at, f"{strategy}, step by step")
    np.testing.assert_allclose(search_nodes(spec), expected_nodes(expected), atol=1e-6)
    loaded = load_shipped("gpt-stories")
    table = at.dataframe[0].value
    texts = [loaded.tokenizer.decode(list(b.tokens)).replace("\n", "⏎") for b in expected.finished]
    assert table["Text"].tolist() == texts
    np.testing.assert_allclose(table["log p"], [b.log_prob for b in expected.finished], atol=1e-3)


def test_default_beam_search_is_the_searchs_every_candidate(page):
    loaded = load_shipped("gpt-stories")
    ids = loaded.tokenizer.encode(PROMPT)
    end = loaded.tokenizer.encode("\n")[0]
    expected = beam_search(loaded.model, ids, SEARCH_NEW, BeamSettings(3, 1.0), eos_id=end)
    assert_search_shown(page, "Beam search", expected)
    assert chart(page, "Beam search, step by step")["layout"]["title"]["subtitle"]["text"] == (
        "k = 3 beams"
    )
    text = caption(page, f"{len(expected.steps)} steps. The best text has")
    assert f"log p = {expected.best.log_prob:.3f}" in text


def test_greedy_and_sampling_show_their_one_path(fresh):
    at = fresh
    loaded = load_shipped("gpt-stories")
    ids = loaded.tokenizer.encode(PROMPT)
    end = loaded.tokenizer.encode("\n")[0]
    at.radio(key="gpt-decoding").set_value("Greedy").run()
    assert not at.exception
    greedy = generate(loaded.model, ids, SEARCH_NEW, SamplingSettings(0), stop_ids={end})
    shown = at.dataframe[0].value["Text"].tolist()
    ended = greedy + [end] * (len(greedy) < SEARCH_NEW)
    assert shown == [loaded.tokenizer.decode(ended).replace("\n", "⏎")]
    at.radio(key="gpt-decoding").set_value("Sampling").run()
    at.number_input(key="gpt-seed").set_value(5).run()
    at.toggle(key="gpt-line-ends").set_value(False).run()
    assert not at.exception
    sampled = generate(loaded.model, ids, SEARCH_NEW, SamplingSettings(), seed=5)
    assert at.dataframe[0].value["Text"].tolist() == [loaded.tokenizer.decode(sampled)]
    spec = chart(at, "Sampling, step by step")
    assert len(search_nodes(spec)) == SEARCH_NEW


def test_without_length_normalisation_the_best_text_is_shorter(fresh):
    at = fresh
    at.slider(key="gpt-beams").set_value(5).run()
    normalised = at.dataframe[0].value["New tokens"].iloc[0]
    at.toggle(key="gpt-normalise").set_value(False).run()
    assert not at.exception
    loaded = load_shipped("gpt-stories")
    ids = loaded.tokenizer.encode(PROMPT)
    end = loaded.tokenizer.encode("\n")[0]
    expected = beam_search(loaded.model, ids, SEARCH_NEW, BeamSettings(5, 0.0), eos_id=end)
    assert_search_shown(at, "Beam search", expected)
    assert at.dataframe[0].value["New tokens"].iloc[0] < normalised
    assert "its score, the plain sum of log p," in caption(at, f"{len(expected.steps)} steps.")


def test_more_beams_than_a_tiny_vocabulary_allows_get_a_message(fresh):
    at = fresh
    tokenizer = train_char("ab ba ab")
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=16, n_layer=1, n_head=1)
    trained = LoadedModel("tiny-gpt", "gpt", build_model(config).eval(), tokenizer, "trained", {})
    at.session_state["trained_models"] = {"tiny-gpt": trained}
    at.run()
    at.selectbox(key="gpt-model").set_value("tiny-gpt").run()
    at.text_input(key="gpt-prompt").set_value("ab").run()
    at.slider(key="gpt-beams").set_value(8).run()
    assert not at.exception
    assert any(
        "This search cannot run: 8 beams look at 16 extensions" in w.value for w in at.warning
    )


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []
