"""Figures for the Transformer-block lesson: the block's code path as a flow diagram, the size of
the residual stream layer by layer, LayerNorm statistics and its learned γ and β, the block's
parameters by part, and the residual / LayerNorm ablation.

Pure functions: Plotly figures, or HTML strings for ``st.html`` in which every piece of text
that may come from a student (tokens, samples, model names) is html-escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots
from torch import Tensor

from tinyformers.course.transformer_block import (
    ACTIVATION,
    ADD,
    ATTENTION,
    LAYER_NORM,
    LINEAR,
    REPLACE,
    SELF_ATTENTION,
    STREAM,
    BlockInspection,
    BlockParameters,
    LayerNormStats,
    Step,
    code_path,
    step_shapes,
)
from tinyformers.figures.common import number
from tinyformers.figures.gpt import markdown_text
from tinyformers.figures.tokenization import visible
from tinyformers.i18n import _, ngettext
from tinyformers.training.loop import Progress

FONT_SIZE = 16
TEMPLATE = "plotly_white"
STAGE_COLORS = ("#7f7f7f", "#1f77b4", "#d62728")
FORMULA = {
    "pre": "GPT-2 layout: x = x + f(LayerNorm(x))",
    "post": "BERT layout: x = LayerNorm(x + f(x))",
}
OUTER_NORMS = {
    "ln_f": "after the last block",
    "ln_emb": "on the embeddings",
    "mlm_head.ln": "in the output head",
}


def shown_name(name: str) -> str:
    """A stream point, a LayerNorm stage, a part of the block or an ablation variant, named in
    the current language (the English names stay the keys of the data)."""
    names = {
        "block input": _("block input"),
        "after attention + residual": _("after attention + residual"),
        "after MLP + residual": _("after MLP + residual"),
        "attention + residual, before LayerNorm": _("attention + residual, before LayerNorm"),
        "MLP + residual, before LayerNorm": _("MLP + residual, before LayerNorm"),
        "input x": _("input x"),
        "normalized (before γ, β)": _("normalized (before γ, β)"),
        "output γ·x̂ + β": _("output γ·x̂ + β"),
        "attention": _("attention"),
        "cross-attention": _("cross-attention"),
        "other": _("other"),
        "residual + LayerNorm": _("residual + LayerNorm"),
        "no residual connections": _("no residual connections"),
        "no LayerNorm": _("no LayerNorm"),
        "neither": _("neither"),
    }
    return names.get(name, name)


MAX_HEIGHT = 560  # px of any chart: it and the controls above it fit a projector
RESIDUAL_HEIGHT = 450  # px: the lesson's first figure, with the inputs above it, fits a screen
VARIANT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


def _layout(
    figure: go.Figure, title: str, height: int, subplot_titles: bool = False, **extra
) -> go.Figure:
    """Title, fonts and a legend above the plot (higher up when subplot titles sit there)."""
    figure.update_layout(
        title={"text": html.escape(title)},
        font_size=FONT_SIZE,
        height=height,
        template=TEMPLATE,
        margin={"l": 80, "r": 30, "t": 150 if subplot_titles else 110, "b": 70},
        legend={"orientation": "h", "y": 1.1 if subplot_titles else 1.02, "yanchor": "bottom"},
        **extra,
    )
    return figure


def token_labels(tokens: Sequence[str]) -> list[str]:
    """Tick labels for tokens: spaces and newlines visible, markup escaped."""
    return [html.escape(visible(token)) for token in tokens]


# ---------------------------------------------------------------------------------------------
# The code path of a block, drawn as a flow diagram (SVG)
# ---------------------------------------------------------------------------------------------

BOX_COLORS = {
    LAYER_NORM: "#fde68a",
    SELF_ATTENTION: "#bfdbfe",
    LINEAR: "#bbf7d0",
    ACTIVATION: "#d9f99d",
    REPLACE: "#fecaca",
}
SUBLAYER_TINT = {ATTENTION: "#eff6ff", "mlp": "#f0fdf4"}
SUBLAYER_NAME = {ATTENTION: "attention sub-layer", "mlp": "MLP sub-layer"}
DIAGRAM_WIDTH = 490
ROW = 66  # vertical distance between two boxes
BOX_H = 46
TOP = 56  # room for the title
LANE_X = {STREAM: 118, "branch": 352}  # centre of each lane
BOX_W = {STREAM: 196, "branch": 216}
RESIDUAL_X = LANE_X[STREAM]
ADD_RADIUS = 17


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ")"


def _shape_text(shapes: tuple[Sequence[int], Sequence[int]]) -> str:
    before, after = shapes
    if tuple(before) == tuple(after):
        return _shape(after)
    return f"{_shape(before)} → {_shape(after)}"


def _row_top(row: int) -> float:
    return TOP + row * ROW


def _text(x: float, y: float, text: str, size: int = 15, **attrs: str) -> str:
    extra = "".join(f' {key.replace("_", "-")}="{value}"' for key, value in attrs.items())
    return f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}"{extra}>{html.escape(text)}</text>'


def _arrowhead(x: float, y: float, direction: str) -> str:
    """A small filled triangle whose tip is at (x, y), pointing down or left."""
    if direction == "down":
        points = f"{x - 6:.0f},{y - 9:.0f} {x + 6:.0f},{y - 9:.0f} {x:.0f},{y:.0f}"
    else:
        points = f"{x + 9:.0f},{y - 6:.0f} {x + 9:.0f},{y + 6:.0f} {x:.0f},{y:.0f}"
    return f'<polygon points="{points}" fill="#374151"/>'


def _line(points: list[tuple[float, float]], dashed: bool = False) -> str:
    path = " ".join(f"{x:.0f},{y:.0f}" for x, y in points)
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    return f'<polyline points="{path}" fill="none" stroke="#374151" stroke-width="2"{dash}/>'


def _box(row: int, lane: str, title: str, subtitle: str, fill: str, dashed: bool = False) -> str:
    x, y = LANE_X[lane] - BOX_W[lane] / 2, _row_top(row)
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    color = "#9ca3af" if dashed else "#111827"
    return (
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W[lane]}" height="{BOX_H}" rx="8" '
        f'fill="{fill}" stroke="{color}" stroke-width="1.5"{dash}/>'
        + _text(LANE_X[lane], y + 20, title, 15, text_anchor="middle", fill=color)
        + _text(
            LANE_X[lane],
            y + 38,
            subtitle,
            13,
            text_anchor="middle",
            font_family="monospace",
            fill="#374151",
        )
    )


def _add_node(row: int, label: str) -> str:
    cx, cy = LANE_X[STREAM], _row_top(row) + BOX_H / 2
    return (
        f'<circle cx="{cx}" cy="{cy:.0f}" r="{ADD_RADIUS}" fill="#ffffff" stroke="#111827" '
        'stroke-width="2"/>'
        + _text(cx, cy + 7, "+", 22, text_anchor="middle", font_weight="bold")
        + _text(cx - 26, cy + 5, label, 14, text_anchor="end", fill="#374151")
    )


def _sublayer_bands(path: Sequence[Step]) -> str:
    """A tinted band behind the rows of each sub-layer, named at its top right."""
    parts = []
    for sublayer in dict.fromkeys(step.sublayer for step in path):
        rows = [i + 1 for i, step in enumerate(path) if step.sublayer == sublayer]
        top, bottom = _row_top(rows[0]) - 16, _row_top(rows[-1]) + BOX_H + 8
        x, middle = DIAGRAM_WIDTH - 14, (top + bottom) / 2
        parts.append(
            f'<rect x="4" y="{top:.0f}" width="{DIAGRAM_WIDTH - 8}" height="{bottom - top:.0f}" '
            f'rx="10" fill="{SUBLAYER_TINT.get(sublayer, "#f9fafb")}"/>'
            + _text(
                x,
                middle,
                SUBLAYER_NAME.get(sublayer, sublayer),
                14,
                text_anchor="middle",
                fill="#6b7280",
                transform=f"rotate(90 {x:.0f} {middle:.0f})",
            )
        )
    return "".join(parts)


def _edges(path: Sequence[Step]) -> str:
    """Arrows from the box that last wrote each register to the box that reads it."""
    writer = {STREAM: 0, "branch": None}  # row that last wrote each register (row 0: input)
    lane_of_row = {0: STREAM}
    add_rows = {i + 1 for i, step in enumerate(path) if step.kind == ADD}

    def bottom(row: int) -> float:
        if row in add_rows:
            return _row_top(row) + BOX_H / 2 + ADD_RADIUS
        return _row_top(row) + BOX_H

    parts = []
    for i, step in enumerate(path):
        row = i + 1
        lane = step.writes
        top = _row_top(row)
        if step.kind in (ADD, REPLACE):
            source = writer["branch"]
            mid = top + BOX_H / 2
            target_x = LANE_X[STREAM] + (ADD_RADIUS if step.kind == ADD else BOX_W[STREAM] / 2)
            parts.append(
                _line(
                    [
                        (LANE_X["branch"], bottom(source)),
                        (LANE_X["branch"], mid),
                        (target_x, mid),
                    ]
                )
                + _arrowhead(target_x, mid, "left")
            )
            if step.kind == ADD:  # the residual connection: the stream skips the sub-layer
                start, end = bottom(writer[STREAM]), top + BOX_H / 2 - ADD_RADIUS
                parts.append(
                    _line([(RESIDUAL_X, start), (RESIDUAL_X, end)])
                    + _arrowhead(RESIDUAL_X, end, "down")
                )
                if writer[STREAM] < row - 1:
                    label_y = (start + top) / 2
                    parts.append(
                        _text(
                            RESIDUAL_X - 10,
                            label_y,
                            _("residual"),
                            14,
                            text_anchor="end",
                            fill="#374151",
                            font_style="italic",
                        )
                    )
        else:
            source = writer[step.reads]
            source_x = LANE_X[lane_of_row[source]]
            bend = top - 12
            points = [(source_x, bottom(source))]
            if source_x != LANE_X[lane]:
                points += [(source_x, bend), (LANE_X[lane], bend)]
            points.append((LANE_X[lane], top))
            parts.append(_line(points) + _arrowhead(LANE_X[lane], top, "down"))
        writer[step.writes] = row
        lane_of_row[row] = lane
    last = len(path) + 1
    parts.append(
        _line([(LANE_X[STREAM], bottom(writer[STREAM])), (LANE_X[STREAM], _row_top(last))])
        + _arrowhead(LANE_X[STREAM], _row_top(last), "down")
    )
    return "".join(parts)


def code_path_svg(
    path: Sequence[Step],
    shapes: Sequence[tuple[Sequence[int], Sequence[int]]],
    title: str,
    subtitle: str = "",
) -> str:
    """The operations of one block, top to bottom, as an SVG document (for ``st.image``, which
    shows it as an inert image).

    Boxes on the left carry the residual stream, boxes on the right the sub-layer's branch;
    each box names the module that runs and the real tensor shapes it reads and writes.
    """
    if len(shapes) != len(path):
        raise ValueError(f"{len(path)} steps need {len(path)} shapes, got {len(shapes)}")
    if not path:
        raise ValueError("the code path has no steps to draw")
    n_rows = len(path) + 2
    height = _row_top(n_rows) + 6
    stream_shape = _shape(shapes[0][0])
    parts = [
        _text(8, 24, title, 18, font_weight="bold", fill="#111827"),
        _text(8, 44, subtitle, 14, fill="#4b5563") if subtitle else "",
        _sublayer_bands(path),
        _edges(path),
        _box(0, STREAM, _("block input x"), stream_shape, "#e5e7eb"),
    ]
    for i, step in enumerate(path):
        row = i + 1
        if step.kind == ADD:
            parts.append(_add_node(row, "add"))
            continue
        fill = BOX_COLORS.get(step.kind, "#f3f4f6")
        if not step.active:
            fill = "#f9fafb"
        parts.append(
            _box(row, step.writes, step.label, _shape_text(shapes[i]), fill, dashed=not step.active)
        )
    parts.append(_box(n_rows - 1, STREAM, _("block output"), _shape(shapes[-1][1]), "#e5e7eb"))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {DIAGRAM_WIDTH} {height:.0f}" '
        f'width="{DIAGRAM_WIDTH}" height="{height:.0f}" font-family="sans-serif" role="img" '
        f'aria-label="{html.escape(title, quote=True)}">' + "".join(parts) + "</svg>"
    )


# ---------------------------------------------------------------------------------------------
# The residual stream, layer by layer
# ---------------------------------------------------------------------------------------------


def residual_norm_chart(norms: dict[str, Sequence[float]], title: str) -> go.Figure:
    """Per layer, the mean L2 norm of the residual stream at each point of the block.

    The first three entries are drawn as solid lines; any further ones (the post-LN sums
    before their LayerNorm) as dotted lines."""
    if not norms:
        raise ValueError("no residual-stream norms to draw")
    figure = go.Figure()
    for n, (name, values) in enumerate(norms.items()):
        figure.add_trace(
            go.Scatter(
                x=list(range(len(values))),
                y=list(values),
                name=html.escape(shown_name(name)),
                mode="lines+markers",
                marker={"size": 10},
                line={"dash": "solid" if n < 3 else "dot", "width": 3},
                hovertemplate=_("layer %{x}<br>mean ‖x‖ %{y:.3f}")
                + "<extra>"
                + html.escape(shown_name(name))
                + "</extra>",
            )
        )
    n_layers = max(len(v) for v in norms.values())
    figure.update_xaxes(title=_("layer"), tickmode="array", tickvals=list(range(n_layers)))
    figure.update_yaxes(title=_("mean over tokens of ‖x‖₂"), rangemode="tozero")
    _layout(figure, title, RESIDUAL_HEIGHT)
    figure.update_layout(  # up to five long names: list them under the chart
        legend={"orientation": "h", "y": -0.22, "yanchor": "top", "x": 0},
        margin={"t": 70, "b": 150},
    )
    return figure


# ---------------------------------------------------------------------------------------------
# LayerNorm
# ---------------------------------------------------------------------------------------------


def layer_norm_stats_chart(stats: LayerNormStats, tokens: Sequence[str], title: str) -> go.Figure:
    """Per token, the mean (top) and standard deviation (bottom) of the LayerNorm's input, of
    the normalized values before γ and β, and of its output."""
    if len(tokens) != stats.input.shape[0]:
        raise ValueError(f"{stats.input.shape[0]} rows need as many tokens, got {len(tokens)}")
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=(_("mean of each token's vector"), _("standard deviation (biased)")),
    )
    positions = list(range(len(tokens)))
    for color, (stage, (mean, std)) in zip(STAGE_COLORS, stats.stages().items(), strict=True):
        for row, values in ((1, mean), (2, std)):
            figure.add_trace(
                go.Scatter(
                    x=positions,
                    y=values.tolist(),
                    name=html.escape(shown_name(stage)),
                    legendgroup=stage,
                    showlegend=row == 1,
                    mode="lines+markers",
                    marker={"size": 9, "color": color},
                    line={"color": color, "width": 2},
                ),
                row=row,
                col=1,
            )
    figure.update_xaxes(tickmode="array", tickvals=positions, ticktext=token_labels(tokens))
    figure.update_xaxes(title=_("token"), row=2, col=1)
    return _layout(figure, title, MAX_HEIGHT, subplot_titles=True)


def gamma_beta_chart(weight: Tensor, bias: Tensor, title: str) -> go.Figure:
    """The learned gain γ (top) and shift β (bottom) of a LayerNorm, one bar per dimension."""
    if weight.shape != bias.shape or weight.dim() != 1:
        raise ValueError(
            f"γ and β must be vectors of one size, got {tuple(weight.shape)} and {tuple(bias.shape)}"
        )
    dims = list(range(weight.numel()))
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.1,
        subplot_titles=(_("γ (gain; starts at 1)"), _("β (shift; starts at 0)")),
    )
    for row, values, color in ((1, weight, "#9467bd"), (2, bias, "#ff7f0e")):
        figure.add_trace(
            go.Bar(
                x=dims,
                y=values.tolist(),
                marker_color=color,
                showlegend=False,
                hovertemplate="dimension %{x}<br>%{y:.4f}<extra></extra>",
            ),
            row=row,
            col=1,
        )
    figure.add_hline(y=1.0, line_dash="dot", line_color="#555", row=1, col=1)
    figure.update_xaxes(title=_("dimension"), row=2, col=1)
    return _layout(figure, title, MAX_HEIGHT, subplot_titles=True)


# ---------------------------------------------------------------------------------------------
# Parameters by part
# ---------------------------------------------------------------------------------------------


def parameter_share_chart(counts: dict[str, int], title: str) -> go.Figure:
    """One horizontal bar per part of the block, labelled with its count and share."""
    total = sum(counts.values())
    if total <= 0:
        raise ValueError("the block has no parameters to show")
    names = list(counts)
    figure = go.Figure(
        go.Bar(
            x=[counts[n] for n in names],
            y=[html.escape(shown_name(n)) for n in names],
            orientation="h",
            marker_color=["#1f77b4", "#2ca02c", "#f2b701", "#9467bd"][: len(names)],
            text=[f"{counts[n]:,} ({counts[n] / total:.1%})" for n in names],
            textposition="auto",
            hovertemplate=_("%{y}: %{x:,} parameters") + "<extra></extra>",
        )
    )
    figure.update_xaxes(title=_("parameters in one block"))
    figure.update_yaxes(autorange="reversed")
    return _layout(figure, title, min(MAX_HEIGHT, 120 + 70 * len(names)), showlegend=False)


# ---------------------------------------------------------------------------------------------
# The ablation
# ---------------------------------------------------------------------------------------------


def ablation_loss_chart(
    histories: dict[str, Sequence[Progress]], title: str, max_steps: int | None = None
) -> go.Figure:
    """Training loss (left) and validation loss (right) against step, one line per variant."""
    figure = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.06,
        subplot_titles=(_("training loss"), _("validation loss")),
    )
    for color, (label, history) in zip(VARIANT_COLORS, histories.items(), strict=False):
        validation = [p for p in history if p.val_loss is not None and math.isfinite(p.val_loss)]
        for col, points, value in (
            (1, list(history), lambda p: p.train_loss),
            (2, validation, lambda p: p.val_loss),
        ):
            figure.add_trace(
                go.Scatter(
                    x=[p.step for p in points],
                    y=[value(p) if math.isfinite(value(p)) else None for p in points],
                    name=html.escape(shown_name(label)),
                    legendgroup=label,
                    showlegend=col == 1,
                    mode="lines+markers" if col == 2 else "lines",
                    line={"color": color, "width": 3},
                    hovertemplate=_("step %{x}<br>loss %{y:.3f}")
                    + "<extra>"
                    + html.escape(shown_name(label))
                    + "</extra>",
                ),
                row=1,
                col=col,
            )
    if max_steps is not None:
        figure.update_xaxes(range=[0, max_steps])
    figure.update_xaxes(title=_("step"))
    figure.update_yaxes(title=_("cross-entropy (nats)"), row=1, col=1)
    return _layout(figure, title, 540, subplot_titles=True)


def ablation_rows(variants: Sequence) -> list[dict[str, object]]:
    """One table row per variant (``experiments.VariantResult``): final losses, parameters and
    why training stopped."""
    rows = []
    for variant in variants:
        rows.append(
            {
                _("variant"): shown_name(variant.label),
                _("final training loss"): _rounded(variant.final_train_loss),
                _("final validation loss"): _rounded(variant.final_val_loss),
                _("steps trained"): variant.history[-1].step if variant.history else 0,
                _("parameters"): variant.n_parameters,
                _("stopped because"): variant.stop_reason or _("finished"),
            }
        )
    return rows


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def samples_html(prompt: str, samples: dict[str, str | None]) -> str:
    """Each variant's sample after the shared prompt: prompt in grey, sample in bold, escaped."""
    blocks = []
    for label, sample in samples.items():
        blocks.append(
            f'<div style="margin-bottom:12px"><div style="font-weight:600">'
            f"{html.escape(shown_name(label))}"
            '</div><div style="white-space:pre-wrap;font-family:monospace;line-height:1.5;'
            'background:#fafafa;border:1px solid #ddd;border-radius:6px;padding:8px">'
            f'<span style="color:#888">{html.escape(prompt)}</span>'
            f"<b><bdi>{html.escape(sample or '')}</bdi></b></div></div>"
        )
    return f'<div style="font-size:{FONT_SIZE}px">' + "".join(blocks) + "</div>"


# ---------------------------------------------------------------------------------------------
# Captions and choices: every number computed from what the page shows
# ---------------------------------------------------------------------------------------------


def config_caption(model_name: str, inspection: BlockInspection) -> str:
    """The config settings that decide the block's code path, and the sizes on this input
    (Markdown; the model name is escaped)."""
    config = inspection.config
    return _(
        "From {model}'s config: ln_placement = {placement}, residual = {residual}, layer_norm = "
        "{layer_norm}; {tokens}, width C = {width}, MLP width n_inner = {inner}."
    ).format(
        model=markdown_text(model_name),
        placement=repr(config.ln_placement),
        residual=config.residual,
        layer_norm=config.layer_norm,
        tokens=ngettext("{n} token", "{n} tokens", inspection.n_tokens),
        width=config.n_embd,
        inner=config.mlp_width,
    )


def formula(placement: str) -> str:
    """``FORMULA[placement]`` in the current language."""
    return {
        "pre": _("GPT-2 layout: x = x + f(LayerNorm(x))"),
        "post": _("BERT layout: x = LayerNorm(x + f(x))"),
    }[placement]


def code_path_pair(inspection: BlockInspection) -> tuple[str, str]:
    """The code path of the inspected model's blocks, with its real shapes, and for comparison
    the path of the other LayerNorm placement (pre-LN against post-LN) on as many tokens."""
    config = inspection.config
    placement = config.ln_placement
    other = "post" if placement == "pre" else "pre"
    own = code_path_svg(
        inspection.path,
        inspection.layers[0].shapes,
        _("This model: {placement}-LN").format(placement=placement),
        formula(placement),
    )
    other_path = code_path(config.replace(ln_placement=other))
    compared = code_path_svg(
        other_path,
        step_shapes(other_path, inspection.n_tokens),
        _("For comparison: {placement}-LN").format(placement=other),
        formula(other),
    )
    return own, compared


def unknown_warning(unknown: int, n_tokens: int) -> str:
    """How many of the tokens the model reads as [UNK] (Markdown)."""
    return _(
        "{unknown} of the {tokens} are not in this model's vocabulary and are read as \\[UNK\\]."
    ).format(unknown=unknown, tokens=ngettext("{n} token", "{n} tokens", n_tokens))


def replay_metric(inspection: BlockInspection) -> tuple[str, str]:
    """Label and value of the replay check: the largest gap between the walk and the model."""
    label = _("Largest |replay − model| over the steps and outputs of all {blocks}").format(
        blocks=ngettext("{n} block", "{n} blocks", len(inspection.layers))
    )
    return label, f"{inspection.max_difference():.1e}"


def replay_caption(inspection: BlockInspection) -> str | None:
    """What the last block is compared with when the model normalizes after it, else None."""
    if inspection.final_norm is None:
        return None
    return _("The last block's output is compared with what {norm} read.").format(
        norm=inspection.final_norm
    )


def residual_caption(inspection: BlockInspection, norms: dict[str, Sequence[float]]) -> str:
    """How much longer the token vectors leave the last block than they enter the first, from
    ``inspection.residual_norms()``; and after the final LayerNorm, if any."""
    first, last = norms["block input"][0], norms["after MLP + residual"][-1]
    caption = _(
        "Mean token-vector length entering block 0: {first}; leaving block {block}: {last} "
        "({ratio} times as long)."
    ).format(
        first=number(first, 3),
        block=len(inspection.layers) - 1,
        last=number(last, 3),
        ratio=number(last / first, 2),
    )
    if inspection.final_norm is not None:
        final = inspection.outer_norms[inspection.final_norm].output.norm(dim=-1).mean().item()
        caption += " " + _("After {norm}: {length}.").format(
            norm=inspection.final_norm, length=number(final, 3)
        )
    return caption


def norm_titles(inspection: BlockInspection, layer: int) -> dict[str, str]:
    """The LayerNorms a student can open, by name, each with a label in the current language:
    the layer's own, then those outside the blocks."""
    pre = inspection.config.ln_placement == "pre"
    sublayer = {
        "ln_1": _("before attention") if pre else _("after attention"),
        "ln_2": _("before the MLP") if pre else _("after the MLP"),
    }
    other = _("before its sub-layer") if pre else _("after its sub-layer")
    titles = {
        name: _("layer {layer}: {name} ({where})").format(
            layer=layer, name=name, where=sublayer.get(name, other)
        )
        for name in inspection.norm_names(layer)
    }
    outer = {
        "ln_f": _("after the last block"),
        "ln_emb": _("on the embeddings"),
        "mlm_head.ln": _("in the output head"),
    }
    elsewhere = _("outside the blocks")
    for name in inspection.outer_norms:
        titles[name] = f"{name} ({outer.get(name, elsewhere)})"
    return titles


def layer_norm_caption(stats: LayerNormStats) -> str:
    """The spread of the tokens before, inside and after one LayerNorm, with √(σ²/(σ²+ε)) as
    the prediction for the normalized spread."""
    stages = stats.stages()
    (in_mean, in_std), (n_mean, n_std), (out_mean, out_std) = stages.values()
    variance = stats.input.var(dim=-1, unbiased=False)
    expected = (variance / (variance + stats.eps)).sqrt()
    return _(
        "ε = {eps}. Input: std from {in_low} to {in_high}. Normalized: largest |mean| {n_mean}; "
        "std from {n_low} to {n_high} (√(σ²/(σ²+ε)) predicts it to within {gap}). After γ and "
        "β: mean from {mean_low} to {mean_high}, std from {out_low} to {out_high}."
    ).format(
        eps=f"{stats.eps:.0e}",
        in_low=number(in_std.min(), 3),
        in_high=number(in_std.max(), 3),
        n_mean=f"{n_mean.abs().max():.1e}",
        n_low=number(n_std.min(), 6),
        n_high=number(n_std.max(), 6),
        gap=f"{(n_std - expected).abs().max():.1e}",
        mean_low=number(out_mean.min(), 3),
        mean_high=number(out_mean.max(), 3),
        out_low=number(out_std.min(), 3),
        out_high=number(out_std.max(), 3),
    )


def gamma_beta_caption(stats: LayerNormStats) -> str:
    """The size, mean and range of the learned γ and β."""
    weight, bias = stats.weight, stats.bias
    return _(
        "{dimensions}. γ: mean {g_mean}, from {g_low} to {g_high}. β: mean {b_mean}, from {b_low} "
        "to {b_high}."
    ).format(
        dimensions=ngettext("{n} dimension", "{n} dimensions", weight.numel()),
        g_mean=number(weight.mean(), 3),
        g_low=number(weight.min(), 3),
        g_high=number(weight.max(), 3),
        b_mean=number(bias.mean(), 3),
        b_low=number(bias.min(), 3),
        b_high=number(bias.max(), 3),
    )


def mlp_metrics(config) -> dict[str, str]:
    """The MLP's sizes as metrics: the model width, the MLP width and how much wider it is."""
    return {
        "n_embd (C)": f"{config.n_embd:,}",
        _("n_inner (MLP width)"): f"{config.mlp_width:,}",
        _("Widening factor"): f"{config.mlp_width / config.n_embd:.2f}×",
    }


def parameters_caption(parameters: BlockParameters, config, model_total: int) -> str:
    """One block's parameters and the MLP's tensors, and the share of the model's parameters
    its ``config.n_layer`` blocks hold."""
    in_blocks = parameters.total * config.n_layer
    shapes = "; ".join(
        f"{name} {shape}" for name, shape, _count in parameters.tensors.get("MLP", [])
    )
    return _(
        "One block: {parameters} (MLP tensors: {shapes}). The {blocks} hold {in_blocks} of the "
        "model's {total} parameters ({share}); the rest are embeddings and final layers."
    ).format(
        parameters=ngettext("{n} parameter", "{n} parameters", parameters.total),
        shapes=shapes,
        blocks=ngettext("{n} block", "{n} blocks", config.n_layer),
        in_blocks=f"{in_blocks:,}",
        total=f"{model_total:,}",
        share=f"{in_blocks / model_total:.1%}",
    )


def settings_caption(settings: dict, elapsed_s: float, active: bool) -> str:
    """What the ablation trains on (``settings``: source, characters, steps, seed) and for how
    long it has run."""
    text = _("{source}, {characters}; {steps} per variant, seed {seed}; {elapsed} s").format(
        source=settings["source"],
        characters=ngettext("{n} character", "{n} characters", settings["characters"]),
        steps=ngettext("{n} step", "{n} steps", settings["steps"]),
        seed=settings["seed"],
        elapsed=f"{elapsed_s:.1f}",
    )
    return text + (_(" so far.") if active else ".")


def progress_text(runs: dict[str, list], steps: int) -> str:
    """The variant training now (the last in ``runs``) and its step."""
    label, history = list(runs.items())[-1]
    return _("Training {variant}: step {step} of {steps}").format(
        variant=shown_name(label), step=history[-1].step, steps=steps
    )


def best_caption(best) -> str:
    """The variant (``experiments.VariantResult``) with the lowest validation loss."""
    return _("Lowest validation loss: {variant}, {loss} nats per character.").format(
        variant=shown_name(best.label), loss=f"{best.final_val_loss:.3f}"
    )


def update_sizes_chart(
    tokens: Sequence[str], sizes: dict[str, Sequence[float]], title: str
) -> go.Figure:
    """Grouped bars: for every token, the length of what each sub-layer adds to the stream."""
    labels = [f"{i}: {label}" for i, label in enumerate(token_labels(tokens))]
    figure = go.Figure(
        [
            go.Bar(
                x=labels,
                y=list(values),
                name=html.escape(shown_name(name)),
                marker_color=color,
                hovertemplate=_("%{x}<br>‖update‖ %{y:.3f}")
                + "<extra>"
                + html.escape(shown_name(name))
                + "</extra>",
            )
            for (name, values), color in zip(sizes.items(), STAGE_COLORS[1:], strict=False)
        ]
    )
    figure.update_xaxes(type="category", tickangle=-45)
    figure.update_yaxes(title=_("length ‖x‖₂ of the update"), rangemode="tozero")
    return _layout(figure, title, 420, barmode="group")
