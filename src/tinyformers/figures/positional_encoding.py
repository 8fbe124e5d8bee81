"""Figures for the lesson on embeddings and positions, and the small computations behind them.

The computations come first (similarity of neighbouring positions, similarity as a function of
distance, rotary similarity, a 2-D PCA of the token embeddings); the Plotly figures follow. Every
string that comes from a tokenizer is html-escaped before it reaches a label or a hover box,
because Plotly renders a few HTML tags in those.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import Tensor, nn

from tinyformers.i18n import _
from tinyformers.model.positional import (
    apply_rotary,
    rotary_angles,
    sinusoidal_encoding,
)
from tinyformers.text.tokenizers import SPECIAL_TOKENS, WORDPIECE_PREFIX

MAX_POSITIONS = 4096
MAX_D_MODEL = 4096
PROBE_KINDS = ("same random vector", "different random vectors", "all-ones vector")
CATEGORY_COLORS = {
    "special": "#d62728",
    "punctuation": "#ff7f0e",
    "word start": "#1f77b4",
    "piece": "#2ca02c",
    "character": "#9467bd",
}
LINE_DASHES = ("solid", "dash", "dot")


def category_label(category: str) -> str:
    """A token category (a key of ``CATEGORY_COLORS``) as the legend shows it."""
    return {
        "special": _("special"),
        "punctuation": _("punctuation"),
        "word start": _("word start"),
        "piece": _("piece"),
        "character": _("character"),
    }.get(category, category)


def probe_label(kind: str) -> str:
    """A probe (one of ``PROBE_KINDS``) as the page shows it."""
    return {
        "same random vector": _("same random vector"),
        "different random vectors": _("different random vectors"),
        "all-ones vector": _("all-ones vector"),
    }.get(kind, kind)


FONT_SIZE = 16
INPUT_VECTORS_MAX_HEIGHT = 450  # px: the first chart of the lesson, on the first screen


# ---------------------------------------------------------------------------------------------
# Checks at the boundary
# ---------------------------------------------------------------------------------------------


def check_sinusoidal_size(length: int, d_model: int) -> None:
    """Raise a friendly ValueError unless 1 <= length <= 4096 and d_model is even, 2..4096."""
    if not 1 <= length <= MAX_POSITIONS:
        raise ValueError(
            _("the number of positions must be between 1 and {most}, got {length}").format(
                most=MAX_POSITIONS, length=length
            )
        )
    if not 2 <= d_model <= MAX_D_MODEL or d_model % 2:
        raise ValueError(
            _(
                "d_model must be an even number between 2 and {most} (sine and cosine come "
                "in pairs), got {d_model}"
            ).format(most=MAX_D_MODEL, d_model=d_model)
        )


def _check_rows(vectors: Tensor, at_least: int, what: str) -> None:
    if vectors.dim() != 2 or vectors.size(0) < at_least:
        raise ValueError(
            f"{what} needs a (positions, dimensions) matrix with at least {at_least} rows"
        )


# ---------------------------------------------------------------------------------------------
# Similarity of positions
# ---------------------------------------------------------------------------------------------


def adjacent_similarities(vectors: Tensor) -> Tensor:
    """Cosine similarity of row p and row p + 1, for every p: (N, d) -> (N - 1,)."""
    _check_rows(vectors, 2, "the similarity of adjacent positions")
    return torch.nn.functional.cosine_similarity(vectors[:-1], vectors[1:], dim=-1)


def mean_adjacent_similarity(vectors: Tensor) -> float:
    """The mean cosine similarity of neighbouring rows (positions p and p + 1)."""
    return adjacent_similarities(vectors).mean().item()


def sinusoidal_adjacent_by_d_model(d_models: Sequence[int], length: int) -> list[float]:
    """Mean adjacent-position similarity of the sinusoidal encodings for each d_model."""
    values = []
    for d_model in d_models:
        check_sinusoidal_size(length, d_model)
        values.append(mean_adjacent_similarity(sinusoidal_encoding(length, d_model)))
    return values


def similarity_by_offset(
    vectors: Tensor, starts: Sequence[int], max_offset: int
) -> dict[int, list[float]]:
    """For each start p: cos-sim(row p, row p + Δ) for Δ = 0 .. max_offset."""
    n = vectors.size(0)
    if max_offset < 0 or any(p < 0 or p + max_offset >= n for p in starts):
        raise ValueError(
            f"every start position plus the largest offset ({max_offset}) must be below {n}"
        )
    curves = {}
    for p in starts:
        anchor = vectors[p].expand(max_offset + 1, -1)
        window = vectors[p : p + max_offset + 1]
        curves[int(p)] = torch.nn.functional.cosine_similarity(anchor, window, dim=-1).tolist()
    return curves


def curves_spread(curves: dict[int, list[float]]) -> float:
    """The largest gap between any two curves at the same offset (0 when they coincide)."""
    stacked = torch.tensor(list(curves.values()))  # (n_curves, n_offsets)
    return (stacked.max(dim=0).values - stacked.min(dim=0).values).max().item()


def diagonal_spread(matrix: Tensor) -> float:
    """How much a square matrix varies along its diagonals: max over offsets m - n of
    (largest - smallest entry with that offset). It is 0 exactly when every entry depends only
    on m - n."""
    n = matrix.size(0)
    offsets = (torch.arange(n)[:, None] - torch.arange(n)[None, :] + n - 1).flatten()
    values = matrix.flatten().double()
    highest = torch.full((2 * n - 1,), -torch.inf, dtype=torch.float64)
    lowest = torch.full((2 * n - 1,), torch.inf, dtype=torch.float64)
    highest = highest.scatter_reduce(0, offsets, values, "amax")
    lowest = lowest.scatter_reduce(0, offsets, values, "amin")
    return (highest - lowest).max().item()


# ---------------------------------------------------------------------------------------------
# Rotary positions
# ---------------------------------------------------------------------------------------------


def rotary_probe_vectors(head_size: int, kind: str, seed: int) -> tuple[Tensor, Tensor]:
    """A query and a key of size head_size to rotate: one random vector used twice, two
    different random vectors, or the all-ones vector used twice."""
    if kind not in PROBE_KINDS:
        raise ValueError(f"unknown probe {kind!r}; choose one of {', '.join(PROBE_KINDS)}")
    if kind == "all-ones vector":
        ones = torch.ones(head_size)
        return ones, ones
    generator = torch.Generator().manual_seed(seed)
    query = torch.randn(head_size, generator=generator)
    key = query if kind == "same random vector" else torch.randn(head_size, generator=generator)
    return query, key


def rotary_similarity(length: int, query: Tensor, key: Tensor) -> Tensor:
    """(length, length): entry [m, n] is the cosine similarity of the query rotated to
    position m and the key rotated to position n."""
    head_size = query.numel()
    check_sinusoidal_size(length, head_size)
    cos, sin = rotary_angles(length, head_size)
    queries = apply_rotary(query.expand(length, head_size), cos, sin)  # (L, hs)
    keys = apply_rotary(key.expand(length, head_size), cos, sin)  # (L, hs)
    queries = queries / queries.norm(dim=-1, keepdim=True)
    keys = keys / keys.norm(dim=-1, keepdim=True)
    return queries @ keys.T


# ---------------------------------------------------------------------------------------------
# Token embeddings
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """Rows projected onto their first principal components."""

    coords: Tensor  # (N, 2)
    explained: tuple[float, float]  # fraction of the total variance along each component


def pca_2d(weights: Tensor) -> Projection:
    """Project the rows of weights (N, d) onto their two main directions of variation (PCA via
    the SVD of the centered matrix)."""
    _check_rows(weights, 3, "a 2-D projection")
    if weights.size(1) < 2:
        raise ValueError("a 2-D projection needs vectors with at least 2 dimensions")
    centered = weights.detach().double() - weights.detach().double().mean(dim=0)
    u, s, _ = torch.linalg.svd(centered, full_matrices=False)
    total = (s**2).sum()
    if total == 0:
        raise ValueError("every vector is the same, so there is no variation to project")
    coords = (u[:, :2] * s[:2]).float()
    explained = (s[:2] ** 2 / total).tolist()
    return Projection(coords, (explained[0], explained[1]))


def token_category(token: str, kind: str) -> str:
    """A coarse label for a displayed token: special, punctuation, word start, piece (a part
    that continues a word) or, for a character tokenizer, character."""
    if token in SPECIAL_TOKENS:
        return "special"
    stripped = token.strip()
    if not stripped or all(unicodedata.category(c)[0] in "PS" for c in stripped):
        return "punctuation"
    if kind == "bpe":
        return "word start" if token[0].isspace() else "piece"
    if kind == "wordpiece":
        return "piece" if token.startswith(WORDPIECE_PREFIX) else "word start"
    return "character"


def first_attention(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """The first self-attention layer of a GPT or BERT as a function (T, C) -> (T, C), with
    the LayerNorm the model applies before it (BERT's embedding LayerNorm, a pre-LN block's
    ``ln_1``) and without any mask.

    Each call is one forward pass of the model on the given vectors in place of its embeddings
    (every key visible), read from the record of that pass.
    """
    family = model.config.family
    if family not in ("gpt", "bert"):
        raise ValueError(f"this needs a GPT or BERT model, not a {family} model")

    def layer(x: Tensor) -> Tensor:
        t = x.size(0)
        kwargs = {}
        if family == "gpt":
            kwargs["self_attention_mask"] = torch.ones(t, t, dtype=torch.bool)  # no causal mask
        out = model(None, input_vectors=x[None], return_record=True, **kwargs)  # x: (1, T, C)
        return out.record.blocks[0].attn.output[0]  # (T, C)

    return layer


def reorder_change(
    layer: Callable[[Tensor], Tensor], tokens: Tensor, positions: Tensor | None, order: Tensor
) -> float:
    """Run a layer on the token vectors in their order and in ``order`` (positions, if given,
    stay in place); return the largest relative change of a token's output, |new - old| / |old|.

    A layer that cannot see positions only permutes its outputs, so the change is rounding
    noise; once position vectors are added, a token's output depends on where it sits.
    """
    extra = 0 if positions is None else positions
    with torch.no_grad():
        original = layer(tokens + extra)[order]  # each token's output, in the new order
        reordered = layer(tokens[order] + extra)
    change = (reordered - original).norm(dim=-1) / original.norm(dim=-1).clamp_min(1e-12)
    return change.max().item()


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    """Title (escaped: it may name a model), size and margins every figure of the lesson shares."""
    fig.update_layout(
        title=html.escape(title, quote=False),
        height=height,
        font_size=FONT_SIZE,
        margin=dict(l=60, r=20, t=60, b=50),
    )
    return fig


def encoding_heatmap(encoding: Tensor, title: str) -> go.Figure:
    """Positions (rows) by dimensions (columns), values from -1 to 1 on a diverging scale."""
    fig = go.Figure(
        go.Heatmap(
            z=encoding.detach().float().numpy(),
            colorscale="RdBu",
            zmid=0,
            colorbar=dict(title=_("value")),
            hovertemplate=_("position %{y}<br>dimension %{x}<br>value %{z:.3f}")
            + "<extra></extra>",
        )
    )
    fig.update_xaxes(title=_("dimension"))
    fig.update_yaxes(title=_("position"), autorange="reversed")
    return _layout(fig, title, 460)


def similarity_panels(matrices: dict[str, Tensor]) -> go.Figure:
    """Side-by-side cosine-similarity matrices (position × position) on one fixed -1..1 scale,
    one panel per entry of ``matrices`` (title -> square matrix)."""
    titles = [html.escape(title, quote=False) for title in matrices]
    fig = make_subplots(rows=1, cols=len(matrices), subplot_titles=titles, horizontal_spacing=0.06)
    for column, matrix in enumerate(matrices.values(), start=1):
        fig.add_trace(
            go.Heatmap(
                z=matrix.detach().float().numpy(),
                colorscale="RdBu",
                zmin=-1,
                zmax=1,
                showscale=column == len(matrices),
                colorbar=dict(title="cos"),
                hovertemplate=_("positions %{y} and %{x}<br>cosine similarity %{z:.3f}")
                + "<extra></extra>",
            ),
            row=1,
            col=column,
        )
        fig.update_xaxes(title=_("position"), row=1, col=column)
        fig.update_yaxes(title=_("position") if column == 1 else None, row=1, col=column)
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, _("Cosine similarity of every pair of positions"), 470)


def adjacent_similarity_chart(
    d_models: Sequence[int], values: Sequence[float], marked: dict[str, tuple[int, float]]
) -> go.Figure:
    """The sinusoidal line over d_model, plus labelled single points (e.g. a model's learned
    positions at its own width)."""
    fig = go.Figure(
        go.Scatter(
            x=list(d_models),
            y=list(values),
            mode="lines",
            name=_("sinusoidal"),
            hovertemplate=_("d_model %{x}<br>mean cos(p, p+1) %{y:.4f}") + "<extra></extra>",
        )
    )
    for label, (d_model, value) in marked.items():
        fig.add_trace(
            go.Scatter(
                x=[d_model],
                y=[value],
                mode="markers",
                marker=dict(size=14, symbol="diamond"),
                name=html.escape(label, quote=False),
                hovertemplate=_("d_model %{x}<br>mean cos(p, p+1) %{y:.4f}") + "<extra></extra>",
            )
        )
    powers_of_two = [2**k for k in range(1, 13) if min(d_models) <= 2**k <= max(d_models)]
    fig.update_xaxes(title="d_model", type="log", tickvals=powers_of_two)
    fig.update_yaxes(title=_("mean cos-sim of positions p and p+1"))
    return _layout(fig, _("Similarity of neighbouring positions"), 420)


def offset_similarity_chart(curves: dict[int, list[float]], title: str) -> go.Figure:
    """cos-sim(p, p + Δ) against Δ, one line per start position p."""
    fig = go.Figure()
    for rank, (start, values) in enumerate(curves.items()):
        fig.add_trace(
            go.Scatter(
                x=list(range(len(values))),
                y=values,
                mode="lines",
                # earlier curves wider, so curves that coincide stay visible underneath
                line=dict(width=2 + 3 * (len(curves) - 1 - rank), dash=LINE_DASHES[rank % 3]),
                name=f"p = {start}",
                hovertemplate=f"p = {start}<br>Δ %{{x}}<br>cos-sim %{{y:.4f}}<extra></extra>",
            )
        )
    fig.update_xaxes(title=_("offset Δ (positions apart)"))
    fig.update_yaxes(title="cos-sim(p, p + Δ)")
    return _layout(fig, title, 420)


def embedding_scatter(
    projection: Projection, tokens: list[str], categories: list[str]
) -> go.Figure:
    """Every token embedding as a point in the plane of its first two principal components;
    hover shows the (escaped) token."""
    coords = projection.coords.numpy()
    fig = go.Figure()
    for category, color in CATEGORY_COLORS.items():
        rows = [i for i, c in enumerate(categories) if c == category]
        if not rows:
            continue
        fig.add_trace(
            go.Scatter(
                x=coords[rows, 0],
                y=coords[rows, 1],
                mode="markers",
                marker=dict(size=8, color=color, opacity=0.75),
                name=category_label(category),
                hovertext=[f"id {i}: {html.escape(repr(tokens[i]), quote=False)}" for i in rows],
                hoverinfo="text",
            )
        )
    first, second = projection.explained
    fig.update_xaxes(title=_("component 1 ({share} of variance)").format(share=f"{first:.1%}"))
    fig.update_yaxes(title=_("component 2 ({share} of variance)").format(share=f"{second:.1%}"))
    return _layout(fig, _("Token embeddings, projected to 2-D"), 560)


def input_vectors_figure(
    tokens: list[str], token_vectors: Tensor, position_vectors: Tensor
) -> go.Figure:
    """Token embedding, position embedding and their sum, one row per token, side by side."""
    labels = [f"{i}: {html.escape(repr(t), quote=False)}" for i, t in enumerate(tokens)]
    matrices = {
        _("token embedding"): token_vectors,
        _("+ position embedding"): position_vectors,
        _("= input vector"): token_vectors + position_vectors,
    }
    limit = max(m.abs().max().item() for m in matrices.values()) or 1.0
    titles = ["<br>".join(name.rsplit(" ", 1)) for name in matrices]  # two lines fit a phone
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, subplot_titles=titles)
    for column, (name, matrix) in enumerate(matrices.items(), start=1):
        fig.add_trace(
            go.Heatmap(
                z=matrix.detach().float().numpy(),
                y=labels,
                colorscale="RdBu",
                zmin=-limit,
                zmax=limit,
                showscale=column == 3,
                name=name,
                hovertemplate="%{y}<br>" + _("dimension %{x}") + "<br>%{z:.3f}<extra></extra>",
            ),
            row=1,
            col=column,
        )
        fig.update_xaxes(title=_("dimension"), row=1, col=column)
    fig.update_yaxes(autorange="reversed", type="category", automargin=True)
    height = min(INPUT_VECTORS_MAX_HEIGHT, max(320, 80 + 26 * len(tokens)))
    _layout(fig, _("What the first layer receives"), height)
    fig.update_layout(margin=dict(t=90))
    fig.update_annotations(font_size=13)
    return fig


def similarity_bars(labels: Sequence[str], values: Sequence[float], title: str) -> go.Figure:
    """One bar per labelled cosine similarity, on a fixed -1..1 axis."""
    fig = go.Figure(
        go.Bar(
            x=[html.escape(label, quote=False) for label in labels],
            y=list(values),
            hovertemplate="%{x}<br>" + _("cosine similarity %{y:.3f}") + "<extra></extra>",
        )
    )
    fig.update_xaxes(type="category", tickangle=-45)
    fig.update_yaxes(title=_("cosine similarity"), range=[-1, 1])
    return _layout(fig, title, 380)
