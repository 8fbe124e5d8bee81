"""Figures of the GPT lesson: they plot exactly the numbers they are given, and never let a
token's markup through."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.plotly_json import figure_trace
from tinyformers.course.gpt import (
    BEAM,
    GREEDY,
    SAMPLING,
    CapitalWord,
    LearnedTokens,
    NextToken,
    PromptLoss,
)
from tinyformers.figures import gpt as figs
from tinyformers.model.build import build_model
from tinyformers.model.config import GPTConfig
from tinyformers.model.sampling import (
    Beam,
    BeamSettings,
    SamplingSettings,
    beam_search,
    next_token_distribution,
)

ATTACK = "</script><img src=x onerror=alert(1)>"
LOGITS = torch.tensor([2.0, 0.5, 3.0, -1.0, 1.0, 0.0])
TOKENS = ["a", " b", ATTACK, "\n", "Зоя", "🐶"]


def distribution(**settings):
    return next_token_distribution(LOGITS, SamplingSettings(**settings))


# ---------------------------------------------------------------------------------------------
# Next-token distribution
# ---------------------------------------------------------------------------------------------


def test_bar_ids_are_the_most_likely_first_and_add_the_chosen_token():
    dist = distribution(temperature=1.0)
    assert figs.bar_ids(dist, 3) == [2, 0, 4]
    assert figs.bar_ids(dist, 3, chosen=3) == [2, 0, 4, 3]
    assert figs.bar_ids(dist, 3, chosen=0) == [2, 0, 4]
    assert figs.bar_ids(dist, 100) == [2, 0, 4, 1, 5, 3]
    with pytest.raises(ValueError, match="at least one bar"):
        figs.bar_ids(dist, 0)


def test_distribution_chart_plots_every_stage_of_the_distribution():
    dist = distribution(temperature=0.7, top_k=3, top_p=0.9)
    ids = figs.bar_ids(dist, 6)
    figure = figs.distribution_chart(dist, ids, [TOKENS[i] for i in ids], "title")
    np.testing.assert_allclose(figure_trace(figure, "softmax(logits)").y, dist.raw[ids].numpy())
    np.testing.assert_allclose(
        figure_trace(figure, "sampled from (kept, renormalised)").y, dist.final[ids].numpy()
    )
    kept = np.array(figure_trace(figure, "after temperature: kept").y, dtype=float)
    dropped = np.array(figure_trace(figure, "after temperature: filtered out").y, dtype=float)
    mask = dist.kept[ids].numpy()
    np.testing.assert_allclose(kept[mask], dist.tempered[ids].numpy()[mask])
    np.testing.assert_allclose(dropped[~mask], dist.tempered[ids].numpy()[~mask])
    assert np.isnan(kept[~mask]).all() and np.isnan(dropped[mask]).all()
    assert 1 <= mask.sum() <= 3  # top-k 3 and top-p both applied
    assert figure_trace(figure, "sampled from (kept, renormalised)").y.sum() == pytest.approx(1.0)


def test_greedy_distribution_chart_keeps_one_token():
    dist = distribution(temperature=0)
    ids = figs.bar_ids(dist, 4)
    figure = figs.distribution_chart(dist, ids, [TOKENS[i] for i in ids], "greedy")
    assert list(figure_trace(figure, "sampled from (kept, renormalised)").y) == [1, 0, 0, 0]


def test_distribution_chart_marks_the_drawn_token_and_escapes_tokens():
    dist = distribution(temperature=1.0)
    ids = figs.bar_ids(dist, 6, chosen=2)
    figure = figs.distribution_chart(dist, ids, [TOKENS[i] for i in ids], ATTACK, chosen=2)
    ticks = list(figure.layout.xaxis.ticktext)
    assert "&lt;/script&gt;&lt;img␣src=x␣onerror=alert(1)&gt;" in ticks
    assert "⏎" in ticks and "␣b" in ticks
    assert not any("<" in tick for tick in ticks)
    assert "<" not in figure.layout.title.text
    (annotation,) = figure.layout.annotations
    assert annotation.text == "drawn" and annotation.x == ids.index(2)


def test_distribution_chart_refuses_mismatched_labels():
    with pytest.raises(ValueError, match="2 ids but 1 token"):
        figs.distribution_chart(distribution(), [0, 1], ["a"], "t")


# ---------------------------------------------------------------------------------------------
# Attention of the predicting position
# ---------------------------------------------------------------------------------------------


def test_attention_row_chart_has_one_row_per_layer_and_head():
    attention = torch.softmax(torch.randn(3, 4, 6, generator=torch.Generator().manual_seed(0)), -1)
    figure = figs.attention_row_chart(attention, TOKENS, "where it looked")
    heatmap = figure.data[0]
    np.testing.assert_allclose(heatmap.z, attention.reshape(12, 6).numpy())
    assert list(figure.layout.yaxis.ticktext)[:2] == ["layer 1, head 1", "layer 1, head 2"]
    assert list(figure.layout.yaxis.ticktext)[-1] == "layer 3, head 4"
    assert not any("<" in tick for tick in figure.layout.xaxis.ticktext)
    assert not any("<" in str(cell) for row in heatmap.customdata for cell in row)


def test_attention_row_chart_refuses_a_wrong_shape():
    with pytest.raises(ValueError, match="expected"):
        figs.attention_row_chart(torch.ones(2, 2, 3), ["a", "b"], "t")


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------


def test_sequence_html_escapes_and_marks_prompt_new_and_selected():
    page = figs.sequence_html(TOKENS, n_prompt=2, selected=4)
    assert "<img" not in page and "</script>" not in page
    assert "&lt;/script&gt;" in page
    assert page.count(figs.PROMPT_CHIP) == 2 and page.count(figs.NEW_CHIP) == 4
    assert page.count("outline:3px") == 1


def test_continuation_html_escapes_both_parts():
    page = figs.continuation_html(ATTACK, ATTACK + "\nmore", ATTACK)
    assert "<img" not in page and "</script>" not in page
    assert page.count("&lt;img") == 3


def test_loss_chips_escape_and_colour_by_loss():
    losses = [0.1, 3.0, 0.5, 2.0, 0.0]
    page = figs.loss_chips(TOKENS, losses)
    assert "<img" not in page and "&lt;img" in page
    assert page.count("<sub") == len(TOKENS)
    assert figs.loss_color(3.0, 3.0) == "rgb(255,80,80)"
    assert figs.loss_color(0.0, 3.0) == "rgb(255,255,255)"
    with pytest.raises(ValueError, match="need 5 losses"):
        figs.loss_chips(TOKENS, [1.0])


def test_loss_chart_plots_the_losses_and_their_mean():
    losses = [0.1, 3.0, 0.5, 2.0, 0.0]
    figure = figs.loss_chart(TOKENS, losses, float(np.mean(losses)), "loss")
    np.testing.assert_allclose(figure.data[0].y, losses)
    assert list(figure.data[0].x) == [1, 2, 3, 4, 5]
    assert figure.layout.shapes[0].y0 == pytest.approx(np.mean(losses))
    assert not any("<" in tick for tick in figure.layout.xaxis.ticktext)
    with pytest.raises(ValueError, match="at least one"):
        figs.loss_chart(["a"], [], 0.0, "loss")


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------


def test_markdown_quote_shows_markup_as_text():
    quoted = figs.markdown_quote(ATTACK + " *a* $x$")
    assert "\\<" in quoted and "\\*a\\*" in quoted and "\\$x\\$" in quoted
    assert "<img" not in quoted.replace("\\<", "")


@pytest.mark.parametrize(
    "settings, text",
    [
        (SamplingSettings(temperature=0), "greedy"),
        (SamplingSettings(temperature=1.0), "temperature 1.00"),
        (SamplingSettings(0.8, top_k=5, top_p=0.9), "temperature 0.80, top-k 5, top-p 0.90"),
    ],
)
def test_settings_label(settings, text):
    assert figs.settings_label(settings) == text


def test_entropy():
    assert figs.entropy(torch.tensor([1.0, 0.0])) == 0
    assert figs.entropy(torch.full((4,), 0.25)) == pytest.approx(math.log(4))


# ---------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------


def test_distribution_caption_gives_the_top_token_the_kept_mass_and_the_entropy():
    dist = distribution(temperature=0.5, top_k=2)
    caption = figs.distribution_caption(dist, 2, TOKENS[2])
    tempered = torch.softmax(LOGITS / 0.5, dim=-1)
    p = tempered[[2, 0]] / tempered[[2, 0]].sum()
    entropy = -(p * p.log()).sum().item()
    assert caption == (
        f"Most likely: {figs.markdown_quote(TOKENS[2])} with p = "
        f"{torch.softmax(LOGITS, -1)[2]:.3f}. 2 of 6 tokens are kept; before renormalising they "
        f"hold {tempered[[2, 0]].sum():.3f} of the probability after temperature. Entropy of the "
        f"distribution sampled from: {entropy:.3f} nats."
    )
    assert "\\<img" in caption and "\\</script\\>" in caption  # Markdown shows it as text


def test_distribution_caption_never_shows_a_negative_zero_entropy():
    caption = figs.distribution_caption(distribution(temperature=0.0), 2, TOKENS[2])
    assert caption.endswith("Entropy of the distribution sampled from: 0.000 nats.")


def test_capital_words_caption_says_which_words_are_single_tokens_and_why():
    words = [
        CapitalWord("The", ["T", "he"], ["the"]),
        CapitalWord(" Zoe", [" Zoe"], [" ", "z", "oe"]),
    ]
    learned = LearnedTokens(500, [" Zoe", "Mi", " Ravi"])
    caption = figs.capital_words_caption("gpt-stories", words, learned)
    assert caption == (
        "“The” is not a token of gpt\\-stories: it is read as 2 pieces, “T” “he”, while “the” "
        "is one token. “␣Zoe” is one token of gpt\\-stories. Of the 500 tokens its byte-level "
        "BPE learned from its training text, 3 hold a capital letter (such as “␣Ravi”, “␣Zoe”, "
        "“Mi”): that text was mostly lowercase, so a capitalised word it rarely saw is cut into "
        "pieces."
    )
    many = figs.capital_words_caption("m", words * 3, LearnedTokens(10, ["A", "B"]))
    assert many.count(" token of m") == 4 and "(2 more capitalised words.)" in many
    assert many.endswith("2 hold a capital letter (such as “A”, “B”).")
    single = figs.capital_words_caption("m", words[1:], learned)
    assert single == "“␣Zoe” is one token of m."


def test_step_caption_gives_probabilities_rank_and_window():
    dist = distribution(temperature=1.0)
    step = NextToken([1, 2, 3], SamplingSettings(), dist, torch.zeros(1, 1, 3), token=4)
    raw = torch.softmax(LOGITS, -1)[4]
    caption = figs.step_caption(step, "Зоя", dropped=0)
    assert caption == (
        f"“Зоя” had p = {raw:.3f} in the distribution sampled from (p = {raw:.3f} before "
        "temperature and filters; rank 3). The model read 3 tokens."
    )
    assert figs.step_caption(step, "Зоя", dropped=7).endswith(
        "read 3 tokens; 7 earlier ones had left its window."
    )


def test_attention_caption_names_the_most_attended_token():
    attention = torch.zeros(2, 4, 3)
    attention[..., 1] = 1.0
    caption = figs.attention_caption(attention, ["a", ATTACK, "c"])
    assert caption.startswith("2 layers × 4 heads. Summed over all heads")
    assert caption.endswith(f"{figs.markdown_quote(ATTACK)} at position 1.")
    assert "\\<img" in caption and "\\</script\\>" in caption  # Markdown shows it as text


def test_share_text_is_a_percentage_or_a_dash():
    assert figs.share_text(0.256) == "26%"
    assert figs.share_text(0.0) == "0%"
    assert figs.share_text(math.nan) == "–"


def test_loss_caption_names_the_most_surprising_token():
    losses = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    result = PromptLoss([1, 2, 3, 4], (-losses).exp(), losses, 1.1667)
    caption = figs.loss_caption(result, ["a", "b", ATTACK, "d"])
    assert caption == (
        f"3 predictions. Most surprising: {figs.markdown_quote(ATTACK)} after "
        f"{figs.markdown_quote('b')}, p = {math.exp(-2.0):.4f}."
    )
    with_val = figs.loss_caption(result, ["a", "b", ATTACK, "d"], val_loss=1.23456)
    assert with_val.endswith(" On its validation text, the model averages 1.2346.")


def test_model_size_caption_reads_the_config():
    config = GPTConfig(vocab_size=50, block_size=32, n_layer=2, n_head=4, n_embd=64)
    caption = figs.model_size_caption("my_model*", config, 12345)
    assert caption == (
        "my\\_model\\*: 12,345 parameters, 2 layers × 4 heads, width 64, a context of 32 tokens "
        "and a vocabulary of 50 tokens."
    )


# ---------------------------------------------------------------------------------------------
# Charts of revealed predictions
# ---------------------------------------------------------------------------------------------


def test_sampling_chart_names_the_settings_asked_about():
    settings = SamplingSettings(temperature=0.5, top_p=0.9)
    dist = next_token_distribution(LOGITS, settings)
    figure = figs.sampling_chart(dist, [2, 0], [TOKENS[2], TOKENS[0]], settings)
    assert figure.layout.title.text == "Next token after your prompt"
    assert figure.layout.title.subtitle.text == "temperature 0.50, top-p 0.90"
    assert ATTACK not in figure.to_json()


def test_prompt_loss_chart_is_the_objective_sections_chart():
    losses = [0.5, 2.0, 1.0, 0.1, 3.0]
    figure = figs.prompt_loss_chart(TOKENS, losses, 1.32)
    np.testing.assert_allclose(figure.data[0].y, losses)
    assert figure.layout.title.text.startswith("−log p of each token")


# ---------------------------------------------------------------------------------------------
# A search over texts, step by step
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def search():
    """Beam search with a tiny model whose vocabulary is ``TOKENS``; token 0 ends a text. Its
    steps keep, finish and drop candidates, and drop an ending one ranked below the k best."""
    torch.manual_seed(0)
    model = build_model(GPTConfig(vocab_size=6, block_size=16, n_layer=1, n_head=1, n_embd=8))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 1.0)
    found = beam_search(model.eval(), [0, 1], 5, BeamSettings(2, 1.0), eos_id=0)
    assert {c.fate for step in found.steps[:-1] for c in step.candidates} == set(figs.FATES)
    return found


def test_beam_chart_puts_every_candidate_at_its_step_and_log_p(search):
    figure = figs.beam_chart(search, dict(enumerate(TOKENS)), "Beams", "k = 2")
    for fate, (name, _, _) in figs.FATES.items():
        expected = [
            (step, c.beam.log_prob)
            for step, s in enumerate(search.steps, start=1)
            for c in s.candidates
            if c.fate == fate
        ]
        trace = figure_trace(figure, name)
        assert list(zip(trace.x, trace.y, strict=True)) == expected
    best = figure_trace(figure, "the way to the best text")
    ends = [(x, y) for x, y in zip(best.x, best.y, strict=True) if x is not None][1::2]
    assert ends == [
        (i, c.beam.log_prob)
        for i, s in enumerate(search.steps, start=1)
        for c in s.candidates
        if c.beam.tokens == search.best.tokens[:i]
    ]
    assert ends[-1] == (len(search.best.tokens), search.best.log_prob)
    assert figure.layout.title.subtitle.text == "k = 2"


def test_beam_chart_escapes_every_token(search):
    figure = figs.beam_chart(search, {i: ATTACK for i in range(6)}, ATTACK)
    spec = figure.to_json()
    assert "<img" not in spec.replace("\\u003c", "<").replace("&lt;img", "")
    assert "&lt;img" in spec


def test_beam_rows_and_caption(search):
    texts = [f"text {i}" for i in range(len(search.finished))]
    rows = figs.beam_rows(search, texts, eos_id=0)
    assert [row["log p"] for row in rows] == [round(b.log_prob, 3) for b in search.finished]
    assert [row["Score"] for row in rows] == sorted((row["Score"] for row in rows), reverse=True)
    assert figs.beam_rows(search, texts, eos_id=None)[0]["Ended at"] == "length limit"
    assert [row["Ended at"] == "end of line" for row in rows] == [
        b.tokens[-1] == 0 for b in search.finished
    ]
    best = search.best
    caption = figs.beam_caption(search, BEAM, greedy=Beam(best.tokens, best.log_prob, True))
    assert f"has {len(best.tokens)} new tokens and log p = {best.log_prob:.3f}" in caption
    assert f"its score, log p ÷ length, is {best.score(1.0):.3f}." in caption
    assert caption.endswith("Greedy decoding finds the same text.")
    other = figs.beam_caption(search, BEAM, greedy=Beam((0,), -9.5, True))
    assert other.endswith("Greedy decoding's text has log p = -9.500.")
    assert figs.search_subtitle(BEAM, 2, SamplingSettings()) == "k = 2 beams"
    assert figs.search_subtitle(GREEDY, 2, SamplingSettings()) == "one beam"
    assert figs.search_subtitle(SAMPLING, 2, SamplingSettings(0.5)) == "temperature 0.50"
