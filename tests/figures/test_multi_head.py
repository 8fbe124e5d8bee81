"""Figures of the multi-head lesson: the numbers drawn are the numbers given, labels are escaped,
and the bertviz helpers do what they say."""

import pytest
import torch

from tinyformers.course.multi_head import (
    AgreementProbe,
    HeadOutputs,
    HeadStats,
    attention_shapes,
    projection_parameters,
    sort_heads,
)
from tinyformers.figures import multi_head as figs
from tinyformers.model.config import GPTConfig

TOKENS = ["[CLS]", "the", "</script><img src=x onerror=alert(1)>", " dog", "[SEP]"]


def random_attention(t: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(t, t, generator=generator), dim=-1)


def test_attention_heatmap_draws_the_weights_with_escaped_labels():
    weights = random_attention(len(TOKENS))
    fig = figs.attention_heatmap(weights, TOKENS, "layer 0, head 1", highlight_row=2)
    heatmap = fig.data[0]
    torch.testing.assert_close(torch.tensor(heatmap.z), weights)
    assert list(heatmap.x) == list(heatmap.y) == figs.token_labels(TOKENS)
    assert not any("<" in label for label in heatmap.x)
    assert "&lt;/script&gt;&lt;img" in heatmap.x[2]
    assert heatmap.zmin == 0 and heatmap.zmax == 1
    (row,) = fig.layout.shapes
    assert (row.y0, row.y1) == (1.5, 2.5)


def test_attention_heatmap_marks_a_column_and_refuses_a_wrong_matrix():
    fig = figs.attention_heatmap(random_attention(5), TOKENS, "t", highlight_column=3)
    (column,) = fig.layout.shapes
    assert (column.x0, column.x1) == (2.5, 3.5)
    with pytest.raises(ValueError, match="expected a \\(5, 5\\) matrix"):
        figs.attention_heatmap(random_attention(4), TOKENS, "t")


def test_long_sentences_drop_the_numbers_in_the_cells():
    short = figs.attention_heatmap(random_attention(5), TOKENS, "t")
    tokens = [f"t{i}" for i in range(40)]
    long = figs.attention_heatmap(random_attention(40), tokens, "t")
    assert short.data[0].texttemplate and not long.data[0].texttemplate


def test_token_labels_are_unique_and_show_spaces():
    labels = figs.token_labels(["the", " the", "the", "\n"])
    assert len(set(labels)) == 4
    assert labels[1] == "1: ␣the" and labels[3] == "3: ⏎"


STATS = [
    HeadStats(
        layer,
        head,
        entropy=0.1 * (layer + head),
        distance=1.0,
        previous=0.3 * head,
        anchor=0.2,
        itself=0.1 * layer,
    )
    for layer in range(2)
    for head in range(3)
]


def test_ranking_chart_keeps_the_order_and_values():
    ranked = sort_heads(STATS, "previous")
    fig = figs.head_ranking_chart(ranked, "previous", "[SEP]", top=4)
    order = list(fig.layout.yaxis.categoryarray)
    assert order == [s.name for s in ranked[:4]]
    drawn = {y: x for bar in fig.data for x, y in zip(bar.x, bar.y, strict=True)}
    assert drawn == {s.name: s.previous for s in ranked[:4]}
    assert {bar.name for bar in fig.data} == {f"layer {s.layer}" for s in ranked[:4]}
    assert "previous token" in fig.layout.title.text


def test_ranking_chart_names_the_anchor_and_checks_the_key():
    fig = figs.head_ranking_chart(STATS, "anchor", "the first token")
    assert fig.layout.xaxis.title.text == "attends to the first token"
    with pytest.raises(ValueError, match="no statistic 'speed'"):
        figs.head_ranking_chart(STATS, "speed", "[SEP]")


def test_score_grid_shows_the_scores_and_outlines_the_best():
    scores = torch.tensor([[0.1, 0.0, 0.2], [0.95, 0.3, 0.05]])
    fig = figs.score_grid(scores, "subject heads", best=(1, 0))
    torch.testing.assert_close(torch.tensor(fig.data[0].z), scores)
    assert list(fig.data[0].y) == ["layer 0", "layer 1"]
    (best,) = fig.layout.shapes
    assert (best.x0, best.x1, best.y0, best.y1) == (-0.5, 0.5, 0.5, 1.5)
    with pytest.raises(ValueError, match="n_layer, n_head"):
        figs.score_grid(torch.zeros(3), "x")


def test_concatenation_figure_lays_the_heads_side_by_side():
    nh, t, hs = 3, 4, 2
    per_head = torch.arange(nh * t * hs, dtype=torch.float32).reshape(nh, t, hs)
    projected = torch.randn(t, nh * hs)
    fig = figs.concatenation_figure(per_head, projected, ["a", "b", "c", "d"], layer=1)
    left = torch.tensor(fig.data[0].z)
    for head in range(nh):
        torch.testing.assert_close(left[:, head * hs : (head + 1) * hs], per_head[head])
    torch.testing.assert_close(torch.tensor(fig.data[1].z), projected)
    boxes = [shape for shape in fig.layout.shapes if shape.label.text]
    assert [box.label.text for box in boxes] == ["head 0", "head 1", "head 2"]
    with pytest.raises(ValueError, match="do not fit together"):
        figs.concatenation_figure(per_head, projected, ["a", "b"], layer=1)


def test_quoted_token_shows_markup_as_text():
    quoted = figs.quoted_token("</script><img src=x onerror=alert(1)>")
    assert "<" not in quoted.replace("\\<", "")
    assert figs.quoted_token("*dog*") == "'\\*dog\\*'"
    assert figs.quoted_token("$x$") == "'\\$x\\$'"


def test_fit_width_adds_one_script_before_the_body_ends():
    page = "<!DOCTYPE html><html><body><svg></svg></body></html>"
    fitted = figs.fit_width(page, 990)
    assert fitted.startswith("<!DOCTYPE html><html><body><svg></svg><script>")
    assert fitted.endswith("</script>\n</body></html>")
    assert "window.innerWidth / 990" in fitted
    with pytest.raises(ValueError, match="</body>"):
        figs.fit_width("<svg></svg>")
    with pytest.raises(ValueError, match="positive"):
        figs.fit_width(page, 0)


def test_view_heights_follow_bertviz_layout():
    assert figs.head_view_height(16) == 16 * 22.5 + 30 + 50
    assert figs.head_view_height(16) > figs.head_view_height(10)
    # four heads: 21 px per token per layer row; the enlarged head wins for a one-layer model
    assert figs.model_view_height(2, 4, 8) == 2 * (8 * 21 + 10) + 38 + 40
    assert figs.model_view_height(1, 12, 20) == 20 * 18 + 55 + 40


def test_tall_views_scroll_inside_a_frame_that_fits_the_screen():
    assert figs.head_view_height(64) == figs.MAX_VIEW_HEIGHT == 560
    assert figs.head_view_height(64, limit=450) == 450
    assert figs.head_view_height(8, limit=450) == 8 * 22.5 + 30 + 50
    assert figs.model_view_height(3, 4, 16) == figs.MAX_VIEW_HEIGHT
    long = [f"t{i}" for i in range(64)]
    assert figs.attention_heatmap(torch.eye(64), long, "t").layout.height == 560


# ---------------------------------------------------------------------------------------------
# Tables and captions
# ---------------------------------------------------------------------------------------------


def test_ranking_rows_and_caption_follow_the_order():
    ranked = sort_heads(STATS, "previous")
    labels = figs.stat_names("[SEP]")
    rows = figs.ranking_rows(ranked, labels)
    assert [(r["layer"], r["head"]) for r in rows] == [(s.layer, s.head) for s in ranked]
    assert rows[0][labels["previous"]] == round(ranked[0].previous, 3)
    assert len(rows[0]) == 7
    text = figs.ranking_caption(ranked, "previous", labels, 9, 0.5, top=4)
    assert text == (
        f"Top head by attends to the previous token: {ranked[0].name}, "
        f"{ranked[0].previous:.3f}. 6 heads on 9 tokens, the chart shows the first 4. A head "
        "that spread every row evenly would have mean entropy 0.500 nats."
    )
    assert "the chart shows" not in figs.ranking_caption(ranked, "previous", labels, 9, 1.0, 6)
    with pytest.raises(ValueError, match="no heads"):
        figs.ranking_caption([], "previous", labels, 9, 1.0, 6)


def test_head_caption_counts_rows_and_extremes():
    weights = torch.tensor([[1.0, 0.0, 0.0], [0.7, 0.3, 0.0], [0.1, 0.2, 0.7]])
    assert figs.head_caption(weights) == (
        "Each row sums to 1 (largest deviation 0.0e+00). Rows whose largest weight is on the "
        "previous token: 1 of 2; on the token itself: 2 of 3. Largest weight in the matrix "
        "1.000, smallest 0.000."
    )


def test_shape_rows_and_caption():
    config = GPTConfig(vocab_size=50, n_embd=48, n_head=3, block_size=16, n_layer=1)
    steps = attention_shapes(config, 5)
    rows = figs.shape_rows(steps, "mine")
    assert rows[2] == {
        "step": "split the C features into nh heads",
        "code": "q.view(T, nh, hs)",
        "shape": "(T, nh, hs)",
        "mine": "5 × 3 × 16",
    }
    text = figs.shapes_caption(config, 5, projection_parameters(config))
    assert text.startswith("T = 5 tokens, C = n_embd = 48, nh = 3 heads, hs = C / nh = 16; ")
    assert "√hs = 4.000" in text
    assert f"holds {48 * 48 + 48:,} parameters" in text and f"{4 * (48 * 48 + 48):,} per" in text


def test_concatenation_and_model_view_captions():
    concatenated = torch.tensor([[3.0, 4.0], [0.0, 1.0]])  # lengths 5 and 1
    projected = torch.tensor([[6.0, 8.0], [0.0, 0.0]])  # lengths 10 and 0
    outputs = HeadOutputs(torch.ones(1), torch.ones(1), concatenated, projected)
    assert figs.concatenation_caption(outputs, 2).endswith(
        "3.000 on average before c_proj, 5.000 after."
    )
    assert figs.model_view_caption("m", 3, 4, 9) == (
        "m: 3 layers × 4 heads = 12 attention patterns over your 9 tokens."
    )


def test_subject_captions_name_the_row_and_the_verdict():
    assert "from the verb (leaving" in figs.subject_grid_caption(200, (1, 2), 0.875, "bert")
    text = figs.subject_grid_caption(200, (1, 2), 0.875, "gpt")
    assert text == (
        "200 held-out agreement sentences. Best: layer 1, head 2, whose strongest weight from "
        "the token before the verb (leaving out itself) lands on the subject noun in 88% of them."
    )
    weights = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.6, 0.1, 0.3]])
    probe = AgreementProbe(query=2, verb=(2, 3), subject=(0, 1))
    assert figs.agreement_caption(weights, ["the", "dog", "runs"], probe, " the ", "sg") == (
        "Row 2 ('runs') puts its strongest weight, 0.600, on token 0 ('the'): the subject. The "
        "subject is 'the', singular."
    )
    probe = AgreementProbe(query=2, verb=(2, 3), subject=(1, 2))
    assert "not the subject" in figs.agreement_caption(weights, ["a", "b", "c"], probe, "b", "pl")
