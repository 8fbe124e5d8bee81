"""Figures for the GPT lesson: next-token distributions, attention of the predicting position,
generated text, the beams of a search step by step, the per-token loss of a prompt, and the
captions under them.

Tokens come from text a student typed, so every token, label and title is html-escaped here,
in the HTML strings (for ``st.html``) and in the Plotly figures (Plotly renders a few HTML tags
in labels). Token axes are numbered positions with the tokens as tick text, so two different
tokens that look alike never merge into one bar.
"""

from __future__ import annotations

import html
import math

import numpy as np
import plotly.graph_objects as go
from torch import Tensor

from tinyformers.course.gpt import (
    BEAM,
    GREEDY,
    CapitalWord,
    LearnedTokens,
    NextToken,
    PromptLoss,
    kept_mass,
    most_attended,
    on_best_path,
    token_rank,
)
from tinyformers.figures.common import number
from tinyformers.figures.tokenization import visible
from tinyformers.i18n import _, ngettext
from tinyformers.model.sampling import Beam, BeamSearch, Distribution, SamplingSettings
from tinyformers.text.display import plain

FONT_SIZE = 16
RAW_COLOR = "#b0b0b0"
KEPT_COLOR = "#ff7f0e"
FILTERED_COLOR = "#f6dcc4"
FINAL_COLOR = "#1f77b4"
PROMPT_CHIP = "#ececec"
NEW_CHIP = "#dfe7fd"
SELECTED_BORDER = "#d62728"
NO_LOSS_CHIP = "#f4f4f4"
GRID_COLOR = "#e5e5e5"
LEGEND_ROOM = 0.7  # headroom above the tallest bar, for the legend in the top right corner
DISTRIBUTION_HEIGHT = 440  # px: the chart opens the lesson, so it fits a first screen


def label(token: str) -> str:
    """A token as a safe, visible label: spaces as ␣, newlines as ⏎, markup escaped."""
    return html.escape(visible(token))


def quoted(text: str) -> str:
    """Text in quotes with spaces and newlines visible, for figure titles (which are escaped)."""
    return f"“{visible(text)}”"


def markdown_text(text: str) -> str:
    """Text that Markdown (``st.caption``, ``st.info``) shows exactly as typed: every
    punctuation character that Markdown or HTML could read as syntax is backslash-escaped."""
    return plain(text)


def markdown_quote(text: str) -> str:
    """A token or text for a caption: quoted, spaces and newlines visible, Markdown escaped."""
    return markdown_text(quoted(text))


def settings_label(settings: SamplingSettings) -> str:
    """``greedy`` or ``temperature 0.80, top-k 5, top-p 0.90`` (filters that are off left out)."""
    if settings.greedy:
        return _("greedy")
    parts = [_("temperature {value}").format(value=f"{settings.temperature:.2f}")]
    if settings.top_k is not None:
        parts.append(_("top-k {value}").format(value=settings.top_k))
    if settings.top_p is not None:
        parts.append(_("top-p {value}").format(value=f"{settings.top_p:.2f}"))
    return ", ".join(parts)


def entropy(probabilities: Tensor) -> float:
    """Entropy in nats of a distribution (0 · log 0 counted as 0)."""
    p = probabilities.double()
    return float(-(p[p > 0] * p[p > 0].log()).sum())


def token_axis(positions: np.ndarray, labels: list[str]) -> dict:
    """An axis with one tick per token, the labels slanted, and smaller when there are many."""
    crowded = len(labels) > 20
    return {
        "tickmode": "array",
        "tickvals": positions,
        "ticktext": labels,
        "tickangle": -90 if crowded else -45,
        "tickfont": {"size": 12 if crowded else FONT_SIZE},
    }


def _layout(
    figure: go.Figure,
    title: str,
    height: int,
    left_margin: int = 80,
    subtitle: str | None = None,
    **extra,
) -> go.Figure:
    """White background, the title at the top left (and a smaller ``subtitle`` under it), and
    the legend inside the plot's top right corner, so a chart half a screen wide still reads."""
    heading = {
        "text": html.escape(title),
        "font": {"size": FONT_SIZE + 2},
        "x": 0,
        "xanchor": "left",
        "xref": "container",
        "y": 1,
        "yanchor": "top",
        "yref": "container",
        "pad": {"t": 12, "l": 10},
    }
    if subtitle:
        heading["subtitle"] = {"text": html.escape(subtitle), "font": {"size": FONT_SIZE - 2}}
    figure.update_layout(
        title=heading,
        font_size=FONT_SIZE,
        height=height,
        template="none",  # plain white, set below; a full template costs ~8 ms per figure
        plot_bgcolor="white",
        paper_bgcolor="white",
        xaxis={"gridcolor": GRID_COLOR, "zeroline": False},
        yaxis={"gridcolor": GRID_COLOR, "zeroline": False},
        margin={"l": left_margin, "r": 20, "t": 90 if subtitle else 70, "b": 90},
        legend={  # inside, top right: bars are sorted, tallest on the left
            "x": 1,
            "xanchor": "right",
            "y": 1,
            "yanchor": "top",
            "font": {"size": FONT_SIZE - 3},
            "bgcolor": "rgba(255,255,255,0.85)",
            "bordercolor": GRID_COLOR,
            "borderwidth": 1,
        },
        **extra,
    )
    return figure


# ---------------------------------------------------------------------------------------------
# Next-token distribution
# ---------------------------------------------------------------------------------------------


def bar_ids(distribution: Distribution, n_bars: int, chosen: int | None = None) -> list[int]:
    """The ``n_bars`` most likely token ids, most likely first, plus ``chosen`` if it is not
    among them. Temperature never reorders tokens, so the raw order is every stage's order."""
    if n_bars < 1:
        raise ValueError(f"the chart needs at least one bar, got {n_bars}")
    n_bars = min(n_bars, distribution.raw.numel())
    ids = distribution.raw.topk(n_bars).indices.tolist()
    if chosen is not None and chosen not in ids:
        ids.append(int(chosen))
    return ids


def distribution_chart(
    distribution: Distribution,
    ids: list[int],
    tokens: list[str],
    title: str,
    chosen: int | None = None,
    subtitle: str | None = None,
) -> go.Figure:
    """Bars for the tokens ``ids`` (shown as ``tokens``) at each stage of sampling.

    Grey: softmax of the logits. Orange: after temperature, strong where the token survived
    top-k and top-p, pale where it was filtered out. Blue: the kept tokens renormalised, the
    distribution the next token is drawn from. ``chosen`` marks the token that was drawn;
    ``subtitle`` (the settings, say) goes under the title.
    """
    if len(ids) != len(tokens):
        raise ValueError(f"{len(ids)} ids but {len(tokens)} token strings")
    index = np.asarray(ids, dtype=np.int64)
    x = np.arange(len(ids))
    kept = distribution.kept[index].numpy()
    tempered = distribution.tempered[index].numpy().astype(float)
    labels = np.array([label(t) for t in tokens], dtype=object)
    stages = [
        (_("softmax(logits)"), distribution.raw[index].numpy(), RAW_COLOR, -0.3, None),
        (_("after temperature: kept"), np.where(kept, tempered, np.nan), KEPT_COLOR, 0.0, None),
        (
            _("after temperature: filtered out"),
            np.where(kept, np.nan, tempered),
            FILTERED_COLOR,
            0.0,
            "/",
        ),
        (
            _("sampled from (kept, renormalised)"),
            distribution.final[index].numpy(),
            FINAL_COLOR,
            0.3,
            None,
        ),
    ]
    figure = go.Figure()
    for name, values, color, shift, pattern in stages:
        figure.add_trace(
            go.Bar(
                x=x + shift,
                y=values,
                width=0.28,
                name=name,
                marker={"color": color, "pattern": {"shape": pattern or ""}},
                customdata=labels,
                hovertemplate=f"%{{customdata}}<br>{name}: %{{y:.4f}}<extra></extra>",
            )
        )
    if chosen is not None and chosen in ids:
        position = ids.index(chosen)
        top = float(max(distribution.raw[chosen], distribution.final[chosen]))
        figure.add_annotation(
            x=position,
            y=top,
            text=_("drawn"),
            showarrow=True,
            arrowhead=2,
            ay=-36,
            font={"color": SELECTED_BORDER, "size": FONT_SIZE},
        )
    figure.update_xaxes(token_axis(x, labels))
    tallest = max(float(np.nan_to_num(values).max()) for _name, values, *_rest in stages)
    top, ticks = probability_axis(tallest)
    return _layout(
        figure,
        title,
        DISTRIBUTION_HEIGHT,
        subtitle=subtitle,
        barmode="overlay",
        yaxis_title=_("probability"),
        yaxis_range=[0, top],
        yaxis_tickvals=ticks,
    )


def probability_axis(tallest: float) -> tuple[float, list[float]]:
    """The top of a probability axis with room above the tallest bar for the legend, and its
    ticks: round steps, none above 1."""
    top = max(tallest, 1e-6) * (1 + LEGEND_ROOM)
    step = next(
        (s for s in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25) if top / s <= 6),
        0.5,
    )
    count = int(min(top, 1.0) / step + 1e-9)
    return top, [round(i * step, 6) for i in range(count + 1)]


# ---------------------------------------------------------------------------------------------
# Attention of the position that predicts the next token
# ---------------------------------------------------------------------------------------------


def attention_row_chart(attention: Tensor, tokens: list[str], title: str) -> go.Figure:
    """Heatmap: one row per (layer, head), one column per context token, the attention weight
    of the last position on that token. ``attention`` is (n_layer, n_head, T)."""
    if attention.dim() != 3 or attention.shape[-1] != len(tokens):
        raise ValueError(
            f"attention has shape {tuple(attention.shape)}; expected (layers, heads, {len(tokens)})"
        )
    n_layer, n_head, length = attention.shape
    z = attention.reshape(n_layer * n_head, length).numpy()
    rows = [
        _("layer {layer}, head {head}").format(layer=layer + 1, head=head + 1)
        for layer in range(n_layer)
        for head in range(n_head)
    ]
    labels = [label(t) for t in tokens]
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=np.arange(length),
            y=np.arange(len(rows)),
            zmin=0,
            zmax=max(float(z.max()), 1e-9),
            colorscale="Blues",
            colorbar={"title": {"text": _("weight")}},
            customdata=np.array([[labels[k] for k in range(length)]] * len(rows), dtype=object),
            text=np.array([[row] * length for row in rows], dtype=object),
            hovertemplate=_("%{text}<br>on %{customdata} (position %{x}): %{z:.3f}<extra></extra>"),
        )
    )
    figure.update_xaxes(token_axis(np.arange(length), labels))
    figure.update_yaxes(
        tickmode="array", tickvals=np.arange(len(rows)), ticktext=rows, autorange="reversed"
    )
    row_height = max(8, min(30, 640 // len(rows)))
    return _layout(figure, title, 170 + row_height * len(rows), left_margin=170)


# ---------------------------------------------------------------------------------------------
# Text: the sequence being generated, continuations side by side
# ---------------------------------------------------------------------------------------------


def _chip(
    text: str, background: str, border: str | None = None, tooltip: str = "", sub: str = ""
) -> str:
    outline = f"outline:3px solid {border};" if border else ""
    title = f' title="{html.escape(tooltip)}"' if tooltip else ""
    below = f'<sub style="color:#444;font-size:0.7em"> {html.escape(sub)}</sub>' if sub else ""
    return (
        f'<span{title} style="background:{background};{outline}padding:3px 6px;margin:2px;'
        f'border-radius:5px;font-family:monospace;display:inline-block">'
        f"<bdi>{label(text)}</bdi>{below}</span>"
    )


def sequence_html(tokens: list[str], n_prompt: int, selected: int | None = None) -> str:
    """The prompt's tokens in grey, generated ones in blue; ``selected`` (an index into
    ``tokens``) gets a red outline."""
    chips = [
        _chip(
            token,
            PROMPT_CHIP if i < n_prompt else NEW_CHIP,
            SELECTED_BORDER if i == selected else None,
            tooltip=_("prompt")
            if i < n_prompt
            else _("generated token {number}").format(number=i - n_prompt + 1),
        )
        for i, token in enumerate(tokens)
    ]
    return f'<div style="font-size:{FONT_SIZE + 2}px;line-height:2.1">{"".join(chips)}</div>'


def continuation_html(prompt: str, new: str, heading: str) -> str:
    """A heading, then the prompt in grey and the generated text in bold, newlines kept."""
    return (
        f'<div style="font-size:{FONT_SIZE + 2}px">'
        f'<div style="font-weight:600;margin-bottom:4px">{html.escape(heading)}</div>'
        f'<div style="white-space:pre-wrap;font-family:monospace;line-height:1.6;'
        f'background:#fafafa;border:1px solid #ddd;border-radius:6px;padding:8px">'
        f'<span style="color:#888">{html.escape(prompt)}</span>'
        f"<b><bdi>{html.escape(new)}</bdi></b></div></div>"
    )


# ---------------------------------------------------------------------------------------------
# The training objective: −log p of each next token
# ---------------------------------------------------------------------------------------------


def loss_color(loss: float, top: float) -> str:
    """White for a loss of 0, deepening to red at ``top``."""
    share = 0.0 if top <= 0 else min(max(loss / top, 0.0), 1.0)
    green_blue = round(255 - share * (255 - 80))
    return f"rgb(255,{green_blue},{green_blue})"


def loss_chips(tokens: list[str], losses: list[float]) -> str:
    """Each token coloured by −log p of it given the tokens before it, the value below it.
    The first token has no loss (nothing predicts it), so ``losses`` is one shorter."""
    if len(losses) != len(tokens) - 1:
        raise ValueError(f"{len(tokens)} tokens need {len(tokens) - 1} losses, got {len(losses)}")
    top = max(losses, default=0.0)
    first = _("first token: nothing predicts it")
    chips = [_chip(tokens[0], NO_LOSS_CHIP, tooltip=first, sub="–")]
    for token, loss in zip(tokens[1:], losses, strict=True):
        tooltip = f"−log p = {loss:.3f}, p = {np.exp(-loss):.3f}"
        chips.append(_chip(token, loss_color(loss, top), tooltip=tooltip, sub=f"{loss:.2f}"))
    return f'<div style="font-size:{FONT_SIZE + 2}px;line-height:2.3">{"".join(chips)}</div>'


def loss_chart(tokens: list[str], losses: list[float], mean: float, title: str) -> go.Figure:
    """A bar of −log p for every predicted token (tokens 2 to T), the mean as a dashed line."""
    if len(losses) != len(tokens) - 1 or not losses:
        raise ValueError(
            f"{len(tokens)} tokens need {len(tokens) - 1} losses (at least one), got {len(losses)}"
        )
    labels = [label(t) for t in tokens[1:]]
    x = np.arange(1, len(tokens))
    figure = go.Figure(
        go.Bar(
            x=x,
            y=np.asarray(losses, dtype=float),
            marker={
                "color": [loss_color(v, max(losses)) for v in losses],
                "line": {"color": "#a33", "width": 1},
            },
            customdata=np.array(labels, dtype=object),
            hovertemplate=_("%{customdata} (position %{x}): −log p = %{y:.3f}<extra></extra>"),
            name="−log p",
        )
    )
    figure.add_hline(
        y=mean,
        line_dash="dash",
        line_color="#333",
        annotation_text=_("mean {value}").format(value=f"{mean:.3f}"),
        annotation_position="top right",
        annotation_bgcolor="white",
    )
    figure.update_xaxes(token_axis(x, labels))
    return _layout(
        figure, title, 420, yaxis_title=_("−log p(token | tokens before)"), showlegend=False
    )


# ---------------------------------------------------------------------------------------------
# A search over texts, step by step (greedy, sampled or beam search)
# ---------------------------------------------------------------------------------------------

FATES = {  # how each kind of candidate is drawn: name in the legend, marker, colour
    "dropped": ("not kept", "circle-open", RAW_COLOR),
    "kept": ("kept: a beam of the next step", "circle", FINAL_COLOR),
    "finished": ("finished text", "star", "#2ca02c"),
}
BEST_COLOR = SELECTED_BORDER


def fate_names() -> dict[str, str]:
    """The legend names of ``FATES`` in the current language."""
    return {
        "dropped": _("not kept"),
        "kept": _("kept: a beam of the next step"),
        "finished": _("finished text"),
    }


def _edges(points: list[tuple[float, float, float, float]]) -> tuple[list, list]:
    """Line segments (x0, y0) → (x1, y1) as one trace's x and y, broken by None."""
    xs, ys = [], []
    for x0, y0, x1, y1 in points:
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    return xs, ys


def beam_chart(
    search: BeamSearch, token_text: dict[int, str], title: str, subtitle: str | None = None
) -> go.Figure:
    """Every candidate of every step at (step, its text's log p), joined to the beam it extends:
    the kept beams, the finished texts and the candidates dropped, with the way to the best text
    in red. ``token_text`` maps each token id to how it is shown."""
    parents: list[tuple[float, float]] = [(0.0, 0.0)]  # the prompt: no new token, log p 0
    nodes = {fate: ([], [], [], []) for fate in FATES}  # x, y, label, hover
    edges = {"best": [], "other": []}
    for step_number, step in enumerate(search.steps, start=1):
        for candidate in step.candidates:
            beam = candidate.beam
            x, y = float(step_number), beam.log_prob
            best = on_best_path(search, candidate)
            edges["best" if best else "other"].append((*parents[candidate.parent], x, y))
            token = label(token_text[beam.tokens[-1]])
            xs, ys, labels, hovers = nodes[candidate.fate]
            xs.append(x)
            ys.append(y)
            labels.append(token if candidate.fate != "dropped" or best else "")
            hovers.append(
                f"{html.escape(visible(''.join(token_text[t] for t in beam.tokens)))}<br>"
                + _("log p of the text {text}; of {token}: {value}").format(
                    text=f"{beam.log_prob:.3f}",
                    token=token,
                    value=f"{candidate.token_log_prob:.3f}",
                )
            )
        parents = [(float(step_number), beam.log_prob) for beam in step.beams]
    figure = go.Figure()
    for kind, color, width in (("other", GRID_COLOR, 1), ("best", BEST_COLOR, 3)):
        xs, ys = _edges(edges[kind])
        name = _("the way to the best text") if kind == "best" else _("extends")
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={"color": color, "width": width},
                name=name,
                hoverinfo="skip",
                showlegend=kind == "best",
            )
        )
    names = fate_names()
    for fate, (_name, symbol, color) in FATES.items():
        xs, ys, labels, hovers = nodes[fate]
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers+text",
                text=labels,
                textposition="top center",
                textfont={"size": FONT_SIZE - 3},
                marker={"symbol": symbol, "size": 12 if fate == "finished" else 9, "color": color},
                customdata=np.array(hovers, dtype=object),
                hovertemplate="%{customdata}<extra></extra>",
                name=names[fate],
            )
        )
    figure.update_xaxes(title=_("new tokens"), dtick=1, rangemode="tozero")
    figure.update_yaxes(title=_("log p of the text so far"))
    return _layout(figure, title, 460, subtitle=subtitle)


def search_subtitle(strategy: str, k: int, settings: SamplingSettings) -> str:
    if strategy == BEAM:
        return _("k = {k} beams").format(k=k)
    return _("one beam") if strategy == GREEDY else settings_label(settings)


def ending(beam: Beam, eos_id: int | None) -> str:
    if eos_id is not None and beam.tokens[-1] == eos_id:
        return _("end of line")
    return _("length limit")


def beam_rows(search: BeamSearch, texts: list[str], eos_id: int | None) -> list[dict]:
    """The finished texts of a search, best first, as table rows (``texts`` are their decoded
    new tokens)."""
    penalty = search.settings.length_penalty
    return [
        {
            _("Text"): text.replace("\n", "⏎"),
            _("New tokens"): len(beam.tokens),
            "log p": round(beam.log_prob, 3),
            _("Score"): round(beam.score(penalty), 3),
            _("Ended at"): ending(beam, eos_id),
        }
        for beam, text in zip(search.finished, texts, strict=True)
    ]


def beam_caption(search: BeamSearch, strategy: str, greedy: Beam | None = None) -> str:
    """What the search kept and found, and how its best text compares with greedy decoding's."""
    best, penalty = search.best, search.settings.length_penalty
    k = search.settings.num_beams
    text = _("{steps}. The best text has {tokens} and log p = {log_p}").format(
        steps=ngettext("{n} step", "{n} steps", len(search.steps)),
        tokens=ngettext("{n} new token", "{n} new tokens", len(best.tokens)),
        log_p=f"{best.log_prob:.3f}",
    )
    if strategy == BEAM:
        if penalty == 0:
            score = _("the plain sum of log p")
        elif penalty == 1:
            score = _("log p ÷ length")
        else:
            score = _("log p ÷ length^{power}").format(power=f"{penalty:g}")
        text = _(
            "{text}; its score, {score}, is {value}. With {k} beams, each step scored every "
            "token after each beam and kept the {k} best extensions that go on; an extension "
            "that ends its text became a finished text instead."
        ).format(text=text, score=score, value=f"{best.score(penalty):.3f}", k=k)
    else:
        text += "."
    if greedy is not None and strategy != GREEDY:
        if greedy.tokens == best.tokens:
            text += _(" Greedy decoding finds the same text.")
        else:
            text += _(" Greedy decoding's text has log p = {log_p}.").format(
                log_p=f"{greedy.log_prob:.3f}"
            )
    return text


# ---------------------------------------------------------------------------------------------
# Charts of revealed predictions (the lesson's ``predict:`` questions)
# ---------------------------------------------------------------------------------------------


def sampling_chart(
    distribution: Distribution, ids: list[int], tokens: list[str], settings: SamplingSettings
) -> go.Figure:
    """``distribution_chart`` of the tokens ``ids`` under the settings a question asked about."""
    title = _("Next token after your prompt")
    return distribution_chart(distribution, ids, tokens, title, subtitle=settings_label(settings))


def prompt_loss_chart(tokens: list[str], losses: list[float], mean: float) -> go.Figure:
    """``loss_chart`` of the prompt, as the objective section draws it."""
    return loss_chart(tokens, losses, mean, _("−log p of each token given the tokens before it"))


# ---------------------------------------------------------------------------------------------
# Captions (Markdown; every token escaped with ``markdown_quote``)
# ---------------------------------------------------------------------------------------------


def distribution_caption(distribution: Distribution, top: int, top_token: str) -> str:
    """The most likely token ``top`` (shown as ``top_token``), how many tokens the filters
    keep and the probability they hold, and the entropy of what is sampled from."""
    kept, mass = kept_mass(distribution)
    return _(
        "Most likely: {token} with p = {p}. {kept} of {total} tokens are kept; before "
        "renormalising they hold {mass} of the probability after temperature. Entropy of the "
        "distribution sampled from: {entropy} nats."
    ).format(
        token=markdown_quote(top_token),
        p=f"{distribution.raw[top]:.3f}",
        kept=f"{kept:,}",
        total=f"{distribution.raw.numel():,}",
        mass=f"{mass:.3f}",
        entropy=number(entropy(distribution.final), 3),
    )


def step_caption(step: NextToken, token: str, dropped: int) -> str:
    """The drawn token's probability before and after the settings, its rank, and how much the
    model read (``dropped`` earlier tokens had left its window)."""
    distribution = step.distribution
    return _(
        "{token} had p = {p} in the distribution sampled from (p = {raw} before temperature "
        "and filters; rank {rank}). The model read {read}"
    ).format(
        token=markdown_quote(token),
        p=f"{distribution.final[step.token]:.3f}",
        raw=f"{distribution.raw[step.token]:.3f}",
        rank=token_rank(distribution, step.token),
        read=ngettext("{n} token", "{n} tokens", len(step.context)),
    ) + (
        _("; {dropped} earlier ones had left its window.").format(dropped=dropped)
        if dropped
        else "."
    )


def attention_caption(attention: Tensor, tokens: list[str]) -> str:
    """The size of an ``(n_layer, n_head, T)`` attention and the token it favours overall."""
    strongest = most_attended(attention)
    return _(
        "{layers} layers × {heads} heads. Summed over all heads, the most attended token is "
        "{token} at position {position}."
    ).format(
        layers=attention.shape[0],
        heads=attention.shape[1],
        token=markdown_quote(tokens[strongest]),
        position=strongest,
    )


def share_text(share: float) -> str:
    """A share as a whole percentage, or a dash when it is undefined (NaN)."""
    return "–" if math.isnan(share) else f"{share:.0%}"


def loss_caption(result: PromptLoss, tokens: list[str], val_loss: float | None = None) -> str:
    """How many predictions the loss averages, the most surprising one, and the model's
    validation loss when it is known."""
    worst = result.most_surprising
    caption = _("{predictions}. Most surprising: {token} after {before}, p = {p}.").format(
        predictions=ngettext("{n} prediction", "{n} predictions", len(result.losses)),
        token=markdown_quote(tokens[worst + 1]),
        before=markdown_quote(tokens[worst]),
        p=f"{result.probabilities[worst]:.4f}",
    )
    if val_loss is not None:
        caption += _(" On its validation text, the model averages {loss}.").format(
            loss=f"{val_loss:.4f}"
        )
    return caption


def unknown_warning(unknown: int, total: int) -> str:
    return _(
        "{unknown} of the {total} tokens are not in this model's vocabulary and are read as "
        "\\[UNK\\]."
    ).format(unknown=unknown, total=total)


def loss_metrics(result: PromptLoss) -> list[tuple[str, str]]:
    """The objective section's three numbers, labelled."""
    return [
        (_("Mean of the per-token losses"), f"{result.mean:.4f}"),
        (_("The model's own loss on the prompt"), f"{result.model_loss:.4f}"),
        (_("Perplexity e^loss"), f"{result.perplexity:.2f}"),
    ]


def model_size_caption(name: str, config, parameters: int) -> str:
    """A model's name, parameter count and shape, from its config."""
    return _(
        "{name}: {parameters} parameters, {layers} layers × {heads} heads, width {width}, a "
        "context of {context} tokens and a vocabulary of {vocabulary} tokens."
    ).format(
        name=markdown_text(name),
        parameters=f"{parameters:,}",
        layers=config.n_layer,
        heads=config.n_head,
        width=f"{config.n_embd:,}",
        context=f"{config.block_size:,}",
        vocabulary=f"{config.vocab_size:,}",
    )


MAX_WORDS_TOLD = 4  # capitalised words the caption under the prompt speaks about
MOSTLY_LOWERCASE = 0.1  # below this share of learned tokens with a capital, text was lowercase


def _pieces(pieces: list[str]) -> str:
    return " ".join(markdown_quote(piece) for piece in pieces)


def capital_words_caption(name: str, words: list[CapitalWord], learned: LearnedTokens) -> str:
    """Whether each capitalised word of the prompt is one token of model ``name``, its pieces
    when it is not, and then why: how few of the tokens its byte-level BPE learned hold a
    capital letter."""
    parts = []
    for word in words[:MAX_WORDS_TOLD]:
        if word.single:
            parts.append(
                _("{word} is one token of {model}.").format(
                    word=markdown_quote(word.word), model=markdown_text(name)
                )
            )
            continue
        lower = markdown_quote(word.word.lower())
        lower_read = _("one token") if len(word.lower_pieces) == 1 else _pieces(word.lower_pieces)
        parts.append(
            _(
                "{word} is not a token of {model}: it is read as {count} pieces, {pieces}, "
                "while {lower} is {lower_read}."
            ).format(
                word=markdown_quote(word.word),
                model=markdown_text(name),
                count=len(word.pieces),
                pieces=_pieces(word.pieces),
                lower=lower,
                lower_read=lower_read,
            )
        )
    if len(words) > MAX_WORDS_TOLD:
        more = len(words) - MAX_WORDS_TOLD
        parts.append(
            ngettext("({n} more capitalised word.)", "({n} more capitalised words.)", more)
        )
    if all(word.single for word in words):
        return " ".join(parts)
    examples = sorted(learned.capitalised, key=len, reverse=True)[:3]
    summary = _(
        "Of the {learned} tokens its byte-level BPE learned from its training text, "
        "{capitalised} hold a capital letter"
    ).format(learned=f"{learned.learned:,}", capitalised=f"{len(learned.capitalised):,}")
    if examples:
        summary += _(" (such as {examples})").format(
            examples=", ".join(markdown_quote(t) for t in examples)
        )
    if learned.capital_share < MOSTLY_LOWERCASE:
        summary += _(
            ": that text was mostly lowercase, so a capitalised word it rarely saw is cut into "
            "pieces."
        )
    else:
        summary += "."
    return " ".join([*parts, summary])
