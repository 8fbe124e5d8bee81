"""Figures for the tokenization lesson: merge steps, token comparisons, compression and the
captions under them.

HTML builders return strings for ``st.html``; every token and label in them is html-escaped,
because tokens come from text a student typed. Plotly figures escape their hover text for the
same reason (Plotly renders a few HTML tags in labels).
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from tinyformers.course.tokenization import (
    BASE_VOCAB_SIZE,
    CORPUS_NAMES,
    RUSSIAN_BPE_ROW,
    SCRIPT_NAMES,
    TRAINED_BPE_ROW,
    CharBytes,
    MergeStep,
    ScriptTotal,
    TokenCount,
    TrainedBPE,
    letter_count,
    tie_counts,
)
from tinyformers.figures.common import token_chips
from tinyformers.i18n import _, ngettext

FONT_SIZE = 16
MERGED_COLOR = "#cddafd"
PART_COLOR = "#fff1e6"
TIE_COLOR = "#d62728"
PLAIN_COLOR = "#1f77b4"
LINE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")


def visible(token: str) -> str:
    """A token with spaces and newlines drawn as ``␣`` and ``⏎`` so they can be seen."""
    return token.replace(" ", "␣").replace("\n", "⏎")


def _chip(token: str, color: str, token_id: int | None = None) -> str:
    label = html.escape(visible(token))
    sub = (
        f'<sub style="color:#555;font-size:0.7em"> {token_id}</sub>' if token_id is not None else ""
    )
    return (
        f'<span style="background:{color};padding:4px 10px;margin:2px;border-radius:6px;'
        f'font-family:monospace;font-size:1.4em;display:inline-block"><bdi>{label}</bdi>{sub}</span>'
    )


def _pair_text(pair: tuple[str, str], shown: dict[str, str]) -> str:
    left, right = (html.escape(visible(shown.get(t, t))) for t in pair)
    return f"<code>{left}</code> + <code>{right}</code>"


def merge_step_html(step: MergeStep, shown: dict[str, str], new_id: int | None = None) -> str:
    """One merge drawn as ``left + right → token``, with the closest rival pair underneath.

    ``shown`` maps byte-level token strings to readable text (``"Ġcat"`` to ``" cat"``).
    When the rival was exactly as frequent, the sentence says why the merged pair won.
    """
    left, right, token = (shown.get(t, t) for t in (step.left, step.right, step.token))
    arrow = '<span style="font-size:1.6em;margin:0 8px">→</span>'
    plus = '<span style="font-size:1.6em;margin:0 4px">+</span>'
    line = (
        _chip(left, PART_COLOR, step.pair_ids[0])
        + plus
        + _chip(right, PART_COLOR, step.pair_ids[1])
        + arrow
        + _chip(token, MERGED_COLOR, new_id)
    )
    return (
        f'<div style="font-size:{FONT_SIZE}px;line-height:2.2">{line}'
        f'<div style="margin-top:6px;line-height:1.5">{_rival_sentence(step, shown)}</div></div>'
    )


def _rival_sentence(step: MergeStep, shown: dict[str, str]) -> str:
    if step.runner_up is None:
        return _("No other pair was left to merge.")
    rival = _pair_text(step.runner_up, shown)
    if not step.is_tie:
        return _(
            "The next most frequent pair, {rival}, occurred {count} times, fewer than {winner}."
        ).format(rival=rival, count=f"{step.runner_up_count:,}", winner=f"{step.count:,}")
    winner_ids, rival_ids = step.pair_ids, step.runner_up_ids
    if winner_ids[0] != rival_ids[0]:
        because = _(
            "{pair} won because its ids {winner_ids} come before {rival_ids}: "
            "the smaller left id wins."
        )
    else:
        because = _(
            "{pair} won because its ids {winner_ids} come before {rival_ids}: "
            "the smaller right id wins."
        )
    tie = _("Tie.")
    also = _("{rival} also occurred {count} times.").format(rival=rival, count=f"{step.count:,}")
    return f'<b style="color:{TIE_COLOR}">{tie}</b> {also} ' + because.format(
        pair=_pair_text(step.pair, shown), winner_ids=winner_ids, rival_ids=rival_ids
    )


def _pair_plain(pair: tuple[str, str], shown: dict[str, str]) -> str:
    return " + ".join(visible(shown.get(t, t)) for t in pair)


def merge_table(
    steps: Sequence[MergeStep], shown: dict[str, str], k: int, rows: int = 8
) -> list[dict[str, object]]:
    """Rows for a table of the latest merges up to step ``k`` (newest first)."""
    latest = list(steps[max(0, k - rows) : k])[::-1]
    return [
        {
            "step": step.step,
            "left": visible(shown.get(step.left, step.left)),
            "right": visible(shown.get(step.right, step.right)),
            "new token": visible(shown.get(step.token, step.token)),
            "count": step.count,
            "vocab size": step.vocab_size,
            "won a tie against": _pair_plain(step.runner_up, shown) if step.is_tie else "",
        }
        for step in latest
    ]


def comparison_html(rows: Sequence[tuple[str, list[str], list[int]]]) -> str:
    """Tokenizations of the same text one under another: label, token count and chips."""
    parts = []
    for label, tokens, ids in rows:
        if len(tokens) != len(ids):
            raise ValueError(f"{label}: {len(tokens)} tokens but {len(ids)} ids")
        parts.append(
            f'<div style="margin-bottom:10px;font-size:{FONT_SIZE}px">'
            f"<b>{html.escape(label)}</b> · "
            + ngettext("{n} token", "{n} tokens", len(tokens))
            + f'<div style="font-size:1.15em">{token_chips(tokens, ids)}</div></div>'
        )
    return "<div>" + "".join(parts) + "</div>"


def merge_counts_figure(
    steps: Sequence[MergeStep], current: int, shown: dict[str, str] | None = None
) -> go.Figure:
    """Count of the merged pair at every step, ties in red, with step ``current`` marked.

    Coordinates are numpy arrays, which Plotly checks far faster than lists of thousands of
    numbers; ``shown`` maps tokens to readable text for the hover boxes.
    """
    shown = shown or {}
    number = np.array([s.step for s in steps], dtype=np.int64)
    count = np.array([s.count for s in steps], dtype=np.int64)
    tie = np.array([s.is_tie for s in steps], dtype=bool)
    label = np.array(
        [html.escape(visible(shown.get(s.token, s.token))) for s in steps], dtype=object
    )
    figure = go.Figure(
        [
            go.Scatter(
                x=number[chosen],
                y=count[chosen],
                text=label[chosen],
                mode="markers",
                name=name,
                marker={"color": color, "size": 6},
                hovertemplate=_("step %{x}: count %{y}") + "<br>%{text}<extra></extra>",
            )
            for chosen, name, color in (
                (~tie, _("clear winner"), PLAIN_COLOR),
                (tie, _("tie"), TIE_COLOR),
            )
        ]
    )
    if current >= 1:
        figure.add_vline(x=current, line_dash="dash", line_color="#444")
    figure.update_layout(
        xaxis_title=_("merge step"),
        yaxis_title=_("count of the merged pair"),
        yaxis={"type": "log", "dtick": 1},
        font_size=FONT_SIZE,
        height=380,
        template="plotly_white",
        margin={"l": 80, "r": 20, "t": 50, "b": 70},
        legend={"orientation": "h", "y": 1.08},
    )
    return figure


def compression_figure(curves: dict[str, Sequence[float]], current: int) -> go.Figure:
    """Tokens per character against the number of merges, one line per text."""
    figure = go.Figure()
    for (label, curve), color in zip(curves.items(), LINE_COLORS, strict=False):
        figure.add_trace(
            go.Scatter(
                x=np.arange(len(curve)),
                y=np.asarray(curve, dtype=float),
                mode="lines",
                name=html.escape(label),
                line={"color": color, "width": 3},
                hovertemplate=_("%{x} merges: %{y:.3f} tokens per character") + "<extra></extra>",
            )
        )
    figure.add_vline(x=current, line_dash="dash", line_color="#444")
    figure.update_layout(
        title={"text": _("Tokens per character as BPE learns merges"), "x": 0, "xanchor": "left"},
        xaxis_title=_("number of merges k"),
        yaxis_title=_("tokens per character"),
        yaxis_rangemode="tozero",
        font_size=FONT_SIZE,
        height=400,
        template="plotly_white",
        margin={"l": 80, "r": 20, "t": 80, "b": 70},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
    )
    return figure


# --------------------------------------------------------------------------------------------
# Captions (Markdown)
# --------------------------------------------------------------------------------------------


def training_caption(trained: TrainedBPE, vocab_size: int) -> str:
    """The corpus and vocabulary in numbers, and whether training stopped before ``vocab_size``."""
    caption = _(
        "{characters} characters, {words} words ({distinct} distinct). {merges} merges learned; "
        "the vocabulary has {tokens} tokens ({base} special and byte tokens + merges)."
    ).format(
        characters=f"{len(trained.text):,}",
        words=f"{sum(trained.words.values()):,}",
        distinct=f"{len(trained.words):,}",
        merges=f"{trained.n_merges:,}",
        tokens=f"{trained.bpe.vocab_size:,}",
        base=BASE_VOCAB_SIZE,
    )
    if trained.bpe.vocab_size < vocab_size:
        caption += " " + _("Training stopped early: no pair of symbols occurs twice any more.")
    return caption


def ties_caption(steps: Sequence[MergeStep]) -> str:
    """How many merges the tie-break decided, and how often the smaller ids won."""
    n_ties, smaller_ids = tie_counts(list(steps))
    return _(
        "{ties} of the {merges} merges were decided by the tie-break; "
        "the merged pair had the smaller ids in {smaller} of them."
    ).format(ties=f"{n_ties:,}", merges=f"{len(steps):,}", smaller=f"{smaller_ids:,}")


def compression_caption(curves: dict[str, Sequence[float]], k: int) -> str:
    """Tokens per character of each text with no merges, with ``k`` and with all of them."""
    return " · ".join(
        _(
            "{label}: {none} tokens per character with no merges, {at_k} with k = {k}, "
            "{all} with all {merges}"
        ).format(
            label=label,
            none=f"{curve[0]:.2f}",
            at_k=f"{curve[k]:.2f}",
            k=k,
            all=f"{curve[-1]:.2f}",
            merges=f"{len(curve) - 1:,}",
        )
        for label, curve in curves.items()
    )


# --------------------------------------------------------------------------------------------
# Other scripts: the bytes of every character, and tokens per word and per character
# --------------------------------------------------------------------------------------------

BYTE_COLORS = {1: "#e9ecef", 2: "#cddafd", 3: "#fde2e4", 4: "#fff1e6"}
"""The background of a character's chip, by how many UTF-8 bytes it takes."""


def shown_char(char: str) -> str:
    """A character as its chip shows it: a space as ``␣``, a combining mark on ``◌``, and an
    invisible character (a control, format or other space character) as its code point."""
    if char == " ":
        return "␣"
    category = unicodedata.category(char)
    if category.startswith("M"):
        return "◌" + char
    if category.startswith(("C", "Z")):
        return f"U+{ord(char):04X}"
    return char


def _byte_count(n_bytes: int) -> str:
    return ngettext("{n} byte", "{n} bytes", n_bytes)


def char_bytes_html(chars: Sequence[CharBytes]) -> str:
    """Every character as a chip with its UTF-8 bytes in hexadecimal underneath, coloured by
    how many bytes it takes, and a legend of those colours."""
    chips = [
        f'<span title="{html.escape(_(SCRIPT_NAMES[c.script]))} · {_byte_count(c.n_bytes)}" '
        f'style="background:{BYTE_COLORS.get(c.n_bytes, PART_COLOR)};padding:2px 6px;margin:2px;'
        'border-radius:6px;display:inline-block;text-align:center;vertical-align:top">'
        f'<span style="font-family:monospace;font-size:1.4em"><bdi>{html.escape(shown_char(c.char))}'
        f'</bdi></span><br><span style="font-family:monospace;font-size:0.75em;color:#555">'
        f"{c.hex}</span></span>"
        for c in chars
    ]
    legend = " ".join(
        f'<span style="background:{BYTE_COLORS.get(n, PART_COLOR)};padding:0 8px;'
        f'border-radius:4px">{_byte_count(n)}</span>'
        for n in sorted({c.n_bytes for c in chars})
    )
    return (
        f'<div style="font-size:{FONT_SIZE}px;line-height:1.3">{"".join(chips)}'
        f'<div style="margin-top:6px;font-size:0.85em">{legend}</div></div>'
    )


def script_table(totals: Sequence[ScriptTotal]) -> list[dict[str, object]]:
    """Rows of a table of characters and UTF-8 bytes per group of characters."""
    return [
        {
            _("kind"): _(SCRIPT_NAMES[total.script]),
            _("characters"): total.characters,
            _("bytes"): total.n_bytes,
            _("bytes per character"): round(total.bytes_per_character, 2),
        }
        for total in totals
    ]


def bytes_metrics(chars: Sequence[CharBytes]) -> dict[str, str]:
    """The text's characters, letters and UTF-8 bytes, and the bytes per character, by the
    label each is shown under."""
    chars = list(chars)
    if not chars:
        raise ValueError("no characters to count")
    n_bytes = sum(c.n_bytes for c in chars)
    return {
        _("Characters (code points)"): f"{len(chars):,}",
        _("Letters"): f"{letter_count(chars):,}",
        _("Bytes in UTF-8"): f"{n_bytes:,}",
        _("Bytes per character"): f"{n_bytes / len(chars):.2f}",
    }


def _rate(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def token_count_table(counts: Sequence[TokenCount]) -> list[dict[str, object]]:
    """Rows of a table of how many tokens each tokenizer needs, per word and per character."""
    return [
        {
            _("tokenizer"): count.label,
            _("tokens"): count.tokens,
            _("tokens per word"): _rate(count.per_word),
            _("tokens per character"): _rate(count.per_character),
        }
        for count in counts
    ]


def scripts_caption(corpus: str, counts: Sequence[TokenCount]) -> str:
    """How many tokens the byte-level BPE trained on ``corpus`` (a key of ``CORPUS_NAMES``) and
    the one trained on Russian text need for the same text, and how many times as many.

    ``counts`` are in the order of ``script_tokenizers``."""
    trained, russian = counts[TRAINED_BPE_ROW], counts[RUSSIAN_BPE_ROW]
    numbers = {
        "corpus": _(CORPUS_NAMES[corpus]),
        "trained": ngettext("{n} token", "{n} tokens", trained.tokens),
        "russian": ngettext("{n} token", "{n} tokens", russian.tokens),
    }
    larger, smaller = sorted((trained.tokens, russian.tokens), reverse=True)
    ratio = f"{larger / smaller:.1f}" if smaller else ""
    if ratio in ("", "1.0"):
        message = _(
            "The byte-level BPE trained on {corpus} cuts this text into {trained}, the one of "
            "the same size trained on the Russian lessons into {russian}."
        )
    elif trained.tokens > russian.tokens:
        message = _(
            "The byte-level BPE trained on {corpus} cuts this text into {trained}, the one of "
            "the same size trained on the Russian lessons into {russian}: {ratio} times fewer."
        )
    else:
        message = _(
            "The byte-level BPE trained on {corpus} cuts this text into {trained}, the one of "
            "the same size trained on the Russian lessons into {russian}: {ratio} times more."
        )
    return message.format(**numbers, ratio=ratio)
