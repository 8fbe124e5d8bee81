"""The computations and figures of the positional-encoding lesson, against closed forms."""

import math

import numpy as np
import pytest
import torch

from tinyformers.figures import positional_encoding as figs
from tinyformers.model.positional import cosine_similarity_matrix, sinusoidal_encoding
from tinyformers.text.inputs import model_input_ids


def closed_form_adjacent(d_model: int, offset: int = 1) -> float:
    """cos-sim(PE_p, PE_{p+offset}) = (2/d) Σ_i cos(offset · 10000^(-2i/d)), for even d."""
    frequencies = [10000.0 ** (-2 * i / d_model) for i in range(d_model // 2)]
    return 2 / d_model * sum(math.cos(offset * w) for w in frequencies)


# ---------------------------------------------------------------------------------------------
# Similarity of positions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d_model", [2, 8, 64, 512])
def test_sinusoidal_adjacent_similarity_matches_closed_form(d_model):
    pe = sinusoidal_encoding(100, d_model)
    assert figs.mean_adjacent_similarity(pe) == pytest.approx(
        closed_form_adjacent(d_model), abs=1e-5
    )
    neighbours = figs.adjacent_similarities(pe)
    assert neighbours.shape == (99,)
    assert (neighbours.max() - neighbours.min()).item() < 1e-5  # the same for every p


def test_adjacent_similarity_of_hand_made_rows():
    rows = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 3.0]])
    expected = [1 / math.sqrt(2), 1 / math.sqrt(2)]
    assert figs.adjacent_similarities(rows).tolist() == pytest.approx(expected)


def test_adjacent_similarity_needs_two_rows():
    with pytest.raises(ValueError, match="at least 2 rows"):
        figs.adjacent_similarities(torch.ones(1, 4))


def test_adjacent_by_d_model_follows_the_closed_form_and_checks_sizes():
    values = figs.sinusoidal_adjacent_by_d_model([2, 16, 128], length=20)
    assert values == pytest.approx([closed_form_adjacent(d) for d in (2, 16, 128)], abs=1e-5)
    with pytest.raises(ValueError, match="even number"):
        figs.sinusoidal_adjacent_by_d_model([7], length=20)


@pytest.mark.parametrize(
    "length, d_model, message",
    [
        (0, 8, "number of positions"),
        (10**6, 8, "number of positions"),
        (8, 0, "even"),
        (8, 9, "even"),
        (8, 10**9, "even"),
    ],
)
def test_size_check_rejects_absurd_sizes(length, d_model, message):
    with pytest.raises(ValueError, match=message):
        figs.check_sinusoidal_size(length, d_model)


def test_sinusoidal_offset_curves_coincide_and_match_closed_form():
    curves = figs.similarity_by_offset(sinusoidal_encoding(80, 32), [0, 10, 40], max_offset=39)
    assert list(curves) == [0, 10, 40]
    assert figs.curves_spread(curves) < 1e-5
    expected = [closed_form_adjacent(32, offset) for offset in range(40)]
    assert curves[10] == pytest.approx(expected, abs=1e-5)


def test_random_table_offset_curves_differ():
    table = torch.randn(30, 16, generator=torch.Generator().manual_seed(0))
    curves = figs.similarity_by_offset(table, [0, 5], max_offset=10)
    assert curves[0][0] == pytest.approx(1.0)
    assert figs.curves_spread(curves) > 0.1


def test_offset_window_must_fit():
    with pytest.raises(ValueError, match="must be below 10"):
        figs.similarity_by_offset(torch.randn(10, 4), [5], max_offset=5)


def test_diagonal_spread():
    toeplitz = torch.tensor([[1.0, 2.0, 3.0], [4.0, 1.0, 2.0], [5.0, 4.0, 1.0]])
    assert figs.diagonal_spread(toeplitz) == 0.0
    changed = toeplitz.clone()
    changed[2, 1] = 1.5  # offset +1 now holds 4.0 and 1.5
    assert figs.diagonal_spread(changed) == pytest.approx(2.5)


# ---------------------------------------------------------------------------------------------
# Rotary positions
# ---------------------------------------------------------------------------------------------


def rotate_pairs(vector: torch.Tensor, position: int) -> torch.Tensor:
    """RoPE written with complex numbers: pair i times e^(i · position · ω_i)."""
    hs = vector.numel()
    omega = 10000.0 ** (-torch.arange(0, hs, 2, dtype=torch.float64) / hs)
    pairs = torch.complex(vector[0::2].double(), vector[1::2].double())
    turned = pairs * torch.polar(torch.ones_like(omega), position * omega)
    return torch.stack((turned.real, turned.imag), dim=-1).flatten()


@pytest.mark.parametrize("kind", figs.PROBE_KINDS)
def test_rotary_similarity_matches_a_complex_rotation_and_depends_on_distance_only(kind):
    query, key = figs.rotary_probe_vectors(16, kind, seed=3)
    similarity = figs.rotary_similarity(12, query, key)
    for m, n in [(0, 0), (3, 7), (11, 2)]:
        q, k = rotate_pairs(query, m), rotate_pairs(key, n)
        expected = (q @ k / (q.norm() * k.norm())).item()
        assert similarity[m, n].item() == pytest.approx(expected, abs=1e-5)
    assert figs.diagonal_spread(similarity) < 1e-5


def test_rotary_with_all_ones_equals_the_sinusoidal_similarity():
    query, key = figs.rotary_probe_vectors(32, "all-ones vector", seed=0)
    rotary = figs.rotary_similarity(40, query, key)
    sinusoidal = cosine_similarity_matrix(sinusoidal_encoding(40, 32))
    assert torch.allclose(rotary, sinusoidal, atol=1e-5)


def test_rotary_probes():
    same_q, same_k = figs.rotary_probe_vectors(8, "same random vector", seed=1)
    assert torch.equal(same_q, same_k)
    q, k = figs.rotary_probe_vectors(8, "different random vectors", seed=1)
    assert not torch.equal(q, k)
    assert torch.equal(q, figs.rotary_probe_vectors(8, "different random vectors", seed=1)[0])
    with pytest.raises(ValueError, match="unknown probe"):
        figs.rotary_probe_vectors(8, "zeros", seed=1)


# ---------------------------------------------------------------------------------------------
# Token embeddings
# ---------------------------------------------------------------------------------------------


def test_pca_matches_numpy_eigendecomposition():
    weights = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    weights[:, 0] *= 5  # a dominant direction
    projection = figs.pca_2d(weights)
    centered = weights.double().numpy() - weights.double().numpy().mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(centered.T @ centered)
    top = eigenvectors[:, ::-1][:, :2]
    assert projection.explained == pytest.approx(
        list(eigenvalues[::-1][:2] / eigenvalues.sum()), abs=1e-9
    )
    np.testing.assert_allclose(np.abs(projection.coords.numpy()), np.abs(centered @ top), atol=1e-4)


def test_pca_keeps_all_variance_of_points_on_a_plane():
    plane = torch.randn(20, 2) @ torch.randn(2, 5)
    first, second = figs.pca_2d(plane).explained
    assert first + second == pytest.approx(1.0)


def test_pca_rejects_constant_rows():
    with pytest.raises(ValueError, match="no variation"):
        figs.pca_2d(torch.ones(5, 3))


@pytest.mark.parametrize(
    "token, kind, category",
    [
        ("[CLS]", "wordpiece", "special"),
        ("[PAD]", "bpe", "special"),
        (" .", "bpe", "punctuation"),
        ("\n", "bpe", "punctuation"),
        (" cat", "bpe", "word start"),
        ("ing", "bpe", "piece"),
        ("##ing", "wordpiece", "piece"),
        ("play", "wordpiece", "word start"),
        ("a", "char", "character"),
    ],
)
def test_token_category(token, kind, category):
    assert figs.token_category(token, kind) == category


def test_model_input_ids(bpe_tokenizer):
    text = "the cat sat on the mat"
    ids = bpe_tokenizer.encode(text)
    assert model_input_ids(bpe_tokenizer, "gpt", text, 3) == ids[:3]
    bert_ids = model_input_ids(bpe_tokenizer, "bert", text, 4)
    assert bert_ids == [bpe_tokenizer.cls_id, *ids[:2], bpe_tokenizer.sep_id]


@pytest.mark.parametrize("model_fixture", ["tiny_gpt", "tiny_bert"])
def test_reordering_changes_outputs_only_when_positions_are_added(model_fixture, request):
    model = request.getfixturevalue(model_fixture)
    layer = figs.first_attention(model)
    tokens = model.wte.weight[torch.tensor([3, 7, 1, 9, 4])].detach()
    positions = model.wpe.weight[:5].detach()
    reverse = torch.arange(4, -1, -1)
    assert figs.reorder_change(layer, tokens, None, reverse) < 1e-5
    assert figs.reorder_change(layer, tokens, positions, reverse) > 1e-2


def test_first_attention_applies_the_models_layer_norms(tiny_gpt, tiny_bert):
    x = torch.randn(4, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        gpt_block = tiny_gpt.h[0]
        expected_gpt = gpt_block.attn(gpt_block.ln_1(x)[None])[0][0]
        expected_bert = tiny_bert.h[0].attn(tiny_bert.ln_emb(x)[None])[0][0]
        assert torch.allclose(figs.first_attention(tiny_gpt)(x), expected_gpt, atol=1e-6)
        assert torch.allclose(figs.first_attention(tiny_bert)(x), expected_bert, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def test_heatmaps_show_the_data():
    pe = sinusoidal_encoding(6, 4)
    fig = figs.encoding_heatmap(pe, "PE")
    np.testing.assert_array_equal(fig.data[0].z, pe.numpy())
    similarity = cosine_similarity_matrix(pe)
    fig = figs.similarity_panels({"a <b>": similarity, "b": similarity[:3, :3]})
    np.testing.assert_array_equal(fig.data[0].z, similarity.numpy())
    np.testing.assert_array_equal(fig.data[1].z, similarity[:3, :3].numpy())
    assert all((trace.zmin, trace.zmax) == (-1, 1) for trace in fig.data)
    assert [trace.showscale for trace in fig.data] == [False, True]
    assert fig.layout.annotations[0].text == "a &lt;b&gt;"


def test_embedding_scatter_escapes_tokens_and_groups_by_category():
    tokens = ["[PAD]", "</script><img src=x onerror=alert(1)>", " cat", "s"]
    categories = [figs.token_category(t, "bpe") for t in tokens]
    projection = figs.pca_2d(torch.randn(4, 3, generator=torch.Generator().manual_seed(0)))
    fig = figs.embedding_scatter(projection, tokens, categories)
    hover = [text for trace in fig.data for text in trace.hovertext]
    assert len(hover) == 4
    assert not any("<" in text for text in hover)
    assert any("&lt;/script&gt;&lt;img" in text for text in hover)
    assert {trace.name for trace in fig.data} == set(categories)
    assert "%" in fig.layout.xaxis.title.text


def test_input_vectors_figure_shows_token_position_and_sum_with_unique_labels():
    tokens = ["the", "<b>", "the"]
    token_rows, position_rows = torch.randn(3, 4), torch.randn(3, 4)
    fig = figs.input_vectors_figure(tokens, token_rows, position_rows)
    np.testing.assert_allclose(fig.data[2].z, (token_rows + position_rows).numpy(), rtol=1e-6)
    labels = list(fig.data[0].y)
    assert len(set(labels)) == 3
    assert "&lt;b&gt;" in labels[1]


def test_line_charts():
    chart = figs.adjacent_similarity_chart([2, 4], [0.5, 0.7], {"learned <x>": (128, 0.3)})
    assert list(chart.data[0].y) == [0.5, 0.7]
    assert chart.data[1].name == "learned &lt;x&gt;"
    assert list(chart.data[1].x) == [128]
    assert list(chart.layout.xaxis.tickvals) == [2, 4]
    offsets = figs.offset_similarity_chart({0: [1.0, 0.5], 3: [1.0, 0.4]}, "t")
    assert [trace.name for trace in offsets.data] == ["p = 0", "p = 3"]
    assert offsets.data[0].line.width > offsets.data[1].line.width  # coinciding curves show
