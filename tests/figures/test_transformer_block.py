"""Figures of the Transformer-block lesson: they draw exactly the data they are given, in order,
and every piece of text a student could have typed is escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.plotly_json import decode
from tinyformers.course.transformer_block import (
    ADD,
    AFTER_ATTENTION,
    AFTER_MLP,
    BLOCK_INPUT,
    MLP_SUM,
    LayerNormStats,
    block_parameters,
    code_path,
    inspect_ids,
    step_shapes,
)
from tinyformers.figures import transformer_block as figs
from tinyformers.model.config import BertConfig, GPTConfig
from tinyformers.training.loop import Progress

ATTACK = "</script><img src=x onerror=alert(1)>"
SVG = "{http://www.w3.org/2000/svg}"


def svg_texts(svg: str) -> list[str]:
    """The text elements of an SVG document, top to bottom as drawn."""
    root = ET.fromstring(svg)  # also proves the document is well-formed XML
    return [element.text or "" for element in root.iter(f"{SVG}text")]


# ---------------------------------------------------------------------------------------------
# The code-path diagram
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        GPTConfig(n_embd=32, n_head=2),
        BertConfig(n_embd=32, n_head=2),
        GPTConfig(n_embd=32, n_head=2, residual=False, layer_norm=False),
    ],
    ids=["pre-LN", "post-LN", "neither"],
)
def test_diagram_boxes_follow_the_code_path_with_shapes(config) -> None:
    path = code_path(config)
    svg = figs.code_path_svg(path, step_shapes(path, 7), "title", "subtitle")
    texts = svg_texts(svg)
    labels = [step.label for step in path if step.kind != ADD]
    drawn = [t for t in texts if t in labels]
    assert drawn == labels  # every box, in the order the block runs it
    assert texts.count("+") == sum(step.kind == ADD for step in path)
    assert ("residual" in texts) == config.residual
    assert "(1, 7, 32) → (1, 7, 128)" in texts  # c_fc widens to n_inner = 4C
    assert "(1, 7, 128) → (1, 7, 32)" in texts  # c_proj projects back
    assert texts[:2] == ["title", "subtitle"]


def test_switched_off_layer_norms_are_drawn_dashed() -> None:
    path = code_path(GPTConfig(n_embd=32, n_head=2, layer_norm=False))
    svg = figs.code_path_svg(path, step_shapes(path, 3), "t")
    root = ET.fromstring(svg)
    dashed = [r for r in root.iter(f"{SVG}rect") if r.get("stroke-dasharray")]
    assert len(dashed) == 2


def test_diagram_escapes_its_title_and_checks_its_input() -> None:
    path = code_path(GPTConfig(n_embd=32, n_head=2))
    svg = figs.code_path_svg(path, step_shapes(path, 3), ATTACK, ATTACK)
    assert "<img" not in svg and "</script>" not in svg
    assert svg_texts(svg)[0] == ATTACK
    with pytest.raises(ValueError, match="need 8 shapes"):
        figs.code_path_svg(path, step_shapes(path, 3)[:-1], "t")
    with pytest.raises(ValueError, match="no steps"):
        figs.code_path_svg((), [], "t")


# ---------------------------------------------------------------------------------------------
# Charts
# ---------------------------------------------------------------------------------------------


def test_residual_norm_chart_draws_each_point_per_layer() -> None:
    norms = {
        BLOCK_INPUT: [1.0, 2.0],
        AFTER_ATTENTION: [1.5, 2.5],
        AFTER_MLP: [2.0, 3.0],
        MLP_SUM: [2.2, 3.3],
    }
    figure = figs.residual_norm_chart(norms, f"title {ATTACK}")
    assert [trace.name for trace in figure.data] == list(norms)
    for trace, expected in zip(figure.data, norms.values(), strict=True):
        assert list(trace.x) == [0, 1] and list(trace.y) == expected
    assert [trace.line.dash for trace in figure.data] == ["solid", "solid", "solid", "dot"]
    assert "<img" not in figure.layout.title.text
    with pytest.raises(ValueError):
        figs.residual_norm_chart({}, "t")


def make_stats(tokens: int = 3, width: int = 6) -> LayerNormStats:
    torch.manual_seed(0)
    module = torch.nn.LayerNorm(width)
    with torch.no_grad():
        module.weight.uniform_(0.5, 1.5)
        module.bias.uniform_(-0.2, 0.2)
        x = torch.randn(tokens, width) * 3 + 1
        return LayerNormStats.of("ln_1", module, x, module(x))


def test_layer_norm_chart_shows_three_stages_of_mean_and_std() -> None:
    stats = make_stats()
    tokens = ["a", ATTACK, " b"]
    figure = figs.layer_norm_stats_chart(stats, tokens, "t")
    assert len(figure.data) == 6
    for (mean, std), stage in zip(stats.stages().values(), range(3), strict=True):
        mean_trace, std_trace = figure.data[2 * stage], figure.data[2 * stage + 1]
        np.testing.assert_allclose(decode(mean_trace.y), mean.numpy(), rtol=1e-6)
        np.testing.assert_allclose(decode(std_trace.y), std.numpy(), rtol=1e-6)
    ticks = figure.layout.xaxis.ticktext
    assert ticks[2] == "␣b" and "<img" not in ticks[1] and "&lt;img" in ticks[1]
    with pytest.raises(ValueError, match="3 rows"):
        figs.layer_norm_stats_chart(stats, ["a"], "t")


def test_gamma_beta_chart_shows_the_vectors() -> None:
    stats = make_stats()
    figure = figs.gamma_beta_chart(stats.weight, stats.bias, "t")
    np.testing.assert_allclose(decode(figure.data[0].y), stats.weight.numpy(), rtol=1e-6)
    np.testing.assert_allclose(decode(figure.data[1].y), stats.bias.numpy(), rtol=1e-6)
    with pytest.raises(ValueError):
        figs.gamma_beta_chart(stats.weight, stats.bias[:-1], "t")


def test_parameter_share_chart_labels_counts_and_shares() -> None:
    figure = figs.parameter_share_chart({"attention": 100, "MLP": 300}, "t")
    assert list(figure.data[0].x) == [100, 300]
    assert list(figure.data[0].text) == ["100 (25.0%)", "300 (75.0%)"]
    with pytest.raises(ValueError):
        figs.parameter_share_chart({"MLP": 0}, "t")


# ---------------------------------------------------------------------------------------------
# The ablation
# ---------------------------------------------------------------------------------------------


def progress(step: int, train: float, val: float | None) -> Progress:
    return Progress(step, train, val, 1e-3, 1000.0, 0.1)


def test_ablation_chart_has_train_and_validation_panels() -> None:
    histories = {
        "residual + LayerNorm": [progress(10, 3.0, None), progress(20, 2.5, 2.6)],
        ATTACK: [progress(10, 3.5, float("nan")), progress(20, float("inf"), 3.4)],
    }
    figure = figs.ablation_loss_chart(histories, "t", max_steps=20)
    assert len(figure.data) == 4
    train, val, bad_train, bad_val = figure.data
    assert list(train.x) == [10, 20] and list(train.y) == [3.0, 2.5]
    assert list(val.x) == [20] and list(val.y) == [2.6]
    assert list(bad_train.y) == [3.5, None]  # infinite losses are left out, not drawn
    assert list(bad_val.x) == [20]
    assert "<img" not in bad_train.name
    assert train.xaxis == "x" and val.xaxis == "x2"


def test_ablation_rows_and_samples() -> None:
    variant = SimpleNamespace(
        label="no LayerNorm",
        history=[progress(10, 3.0, 3.1), progress(20, 2.123456, None)],
        n_parameters=1234,
        stop_reason=None,
        final_train_loss=2.123456,
        final_val_loss=3.1,
    )
    (row,) = figs.ablation_rows([variant])
    assert row["final training loss"] == 2.1235 and row["final validation loss"] == 3.1
    assert row["steps trained"] == 20 and row["stopped because"] == "finished"
    html = figs.samples_html(ATTACK, {"no LayerNorm": ATTACK + "\nline", "neither": None})
    assert "<img" not in html and "</script>" not in html
    assert html.count("&lt;img") == 3  # the prompt above both samples, and one sample


# ---------------------------------------------------------------------------------------------
# Captions and choices
# ---------------------------------------------------------------------------------------------

IDS = [5, 17, 3, 22, 9]


@pytest.fixture
def gpt_inspection(tiny_gpt):
    return inspect_ids(tiny_gpt, IDS)


def test_code_path_pair_draws_this_model_and_the_other_placement(gpt_inspection) -> None:
    own, other = figs.code_path_pair(gpt_inspection)
    assert "This model: pre-LN" in svg_texts(own) and figs.FORMULA["pre"] in svg_texts(own)
    assert "For comparison: post-LN" in svg_texts(other)
    post = code_path(gpt_inspection.config.replace(ln_placement="post"))
    drawn = figs.code_path_svg(
        post, step_shapes(post, 5), "For comparison: post-LN", figs.FORMULA["post"]
    )
    assert other == drawn


def test_config_and_replay_captions(gpt_inspection) -> None:
    config = gpt_inspection.config
    assert figs.config_caption("my_model", gpt_inspection) == (
        f"From my\\_model's config: ln_placement = 'pre', residual = True, layer_norm = True; "
        f"5 tokens, width C = {config.n_embd}, MLP width n_inner = {config.mlp_width}."
    )
    label, value = figs.replay_metric(gpt_inspection)
    assert label.endswith(f"of all {config.n_layer} blocks")
    assert value == f"{gpt_inspection.max_difference():.1e}"
    assert figs.replay_caption(gpt_inspection) == (
        "The last block's output is compared with what ln_f read."
    )


def test_replay_caption_is_none_without_a_final_norm(tiny_bert) -> None:
    assert figs.replay_caption(inspect_ids(tiny_bert, IDS, [0] * 5)) is None


def test_residual_caption_compares_first_and_last(gpt_inspection) -> None:
    norms = {"block input": [2.0, 3.0], "after MLP + residual": [4.0, 5.0]}
    last = len(gpt_inspection.layers) - 1
    final = gpt_inspection.outer_norms["ln_f"].output.norm(dim=-1).mean().item()
    assert figs.residual_caption(gpt_inspection, norms) == (
        f"Mean token-vector length entering block 0: 2.000; leaving block {last}: 5.000 "
        f"(2.50 times as long). After ln_f: {final:.3f}."
    )


def test_norm_titles_name_the_layer_and_the_outer_norms(gpt_inspection, tiny_bert) -> None:
    assert figs.norm_titles(gpt_inspection, 1) == {
        "ln_1": "layer 1: ln_1 (before attention)",
        "ln_2": "layer 1: ln_2 (before the MLP)",
        "ln_f": "ln_f (after the last block)",
    }
    bert = figs.norm_titles(inspect_ids(tiny_bert, IDS, [0] * 5), 0)
    assert bert["ln_1"] == "layer 0: ln_1 (after attention)"
    assert "ln_emb" in bert


def test_layer_norm_and_gamma_beta_captions() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0, 6.0], [0.0, 0.0, 1.0, -1.0]])
    module = torch.nn.LayerNorm(4)
    with torch.no_grad():
        module.weight.copy_(torch.tensor([1.0, 2.0, 0.5, 0.5]))
        module.bias.copy_(torch.tensor([0.0, 0.25, -0.25, 0.0]))
    stats = LayerNormStats.of("ln", module, x, module(x).detach())
    std = x.std(dim=-1, unbiased=False)
    text = figs.layer_norm_caption(stats)
    assert text.startswith(f"ε = 1e-05. Input: std from {std.min():.3f} to {std.max():.3f}. ")
    assert figs.gamma_beta_caption(stats) == (
        "4 dimensions. γ: mean 1.000, from 0.500 to 2.000. β: mean 0.000, from -0.250 to 0.250."
    )


def test_parameters_caption_gives_the_share_of_the_blocks(tiny_gpt) -> None:
    parameters = block_parameters(tiny_gpt.h[0])
    config = tiny_gpt.config
    total = 4 * parameters.total * config.n_layer
    text = figs.parameters_caption(parameters, config, total)
    assert text.startswith(f"One block: {parameters.total:,} parameters (MLP tensors: mlp.")
    assert f"hold {parameters.total * config.n_layer:,} of the model's {total:,}" in text
    assert "(25.0%)" in text


def test_ablation_texts() -> None:
    settings = {"source": "Generated stories", "characters": 12345, "steps": 20, "seed": 3}
    assert figs.settings_caption(settings, 4.25, True) == (
        "Generated stories, 12,345 characters; 20 steps per variant, seed 3; 4.2 s so far."
    )
    assert figs.settings_caption(settings, 4.25, False).endswith("4.2 s.")
    runs = {"a": [Progress(20, 1.0, None, 0.1, 1.0, 0.1)], "b": [Progress(7, 1.0, None, 0, 1, 0)]}
    assert figs.progress_text(runs, 20) == "Training b: step 7 of 20"
    best = SimpleNamespace(label="neither", final_val_loss=1.23456)
    assert figs.best_caption(best) == "Lowest validation loss: neither, 1.235 nats per character."
    assert figs.unknown_warning(2, 9) == (
        "2 of the 9 tokens are not in this model's vocabulary and are read as \\[UNK\\]."
    )
