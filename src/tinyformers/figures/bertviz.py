"""Self-contained bertviz attention views that work without a network.

bertviz draws its head view and model view with d3, jQuery and require.js, which
it loads from a CDN. Tinyformers runs offline, so this module asks bertviz for its
HTML and rewrites it into one complete document that carries those libraries
inline, read from ``assets/vendor``.

The result goes into an iframe that is allowed to run scripts, so nothing in it may
come from the data as markup. bertviz writes tokens onto the page with d3's
``.text()``, which never interprets them as HTML. What remains is the ``<script>``
blocks themselves: the attention data and tokens are inlined there as JSON, and a
token such as ``</script><img src=x onerror=...>`` would end the script early and
inject its own markup. Every ``</`` and ``<!--`` inside a script is therefore
written as ``<\\/`` and ``<\\!--``, which mean the same thing to JavaScript and
nothing to the HTML parser.

Tokens are shown the way bertviz prettifies them: the word-start markers ``Ġ`` and
``▁`` become spaces and ``</w>`` is dropped.

``projector_theme`` restyles a finished view for a projector: black on white, large bold text
and a head view's lines drawn thicker, readable from the back of a room.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from bertviz import head_view, model_view

from tinyformers.i18n import DEFAULT_LANGUAGE, _, current_language

VENDOR_LIBRARIES = ("d3.min.js", "jquery.min.js", "require.js")
"""Vendored files in the order they must load: d3 and jQuery set their globals
before require.js defines ``define``, so neither registers as an anonymous module."""

ASSETS_ENV_VAR = "TINYFORMERS_ASSETS"

DECIMALS = 4
"""Attention weights are rounded to this many decimals; it keeps the page small and
changes nothing a line's opacity can show."""

_AMD_SHIM = (
    "define('d3', [], function () { return window.d3; });\n"
    "define('jquery', [], function () { return window.jQuery; });"
)

_CDN_REQUIRE_TAG = re.compile(r'<script src="https://[^"]*/require(?:\.min)?\.js"></script>')
_INLINE_SCRIPT_OPEN = '<script type="text/javascript">'
_SCRIPT_CLOSE = "</script>"
_REQUIRE_CONFIG = re.compile(r"require\.config\(\{.*?\}\);", re.DOTALL)

_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<style>body {{ margin: 8px; background: white; color: black; }}</style>
{libraries}
</head>
<body>
{markup}
<script>
{view_script}
</script>
</body>
</html>
"""


def head_view_html(
    attention: Sequence[torch.Tensor],
    tokens: list[str],
    *,
    sentence_b_start: int | None = None,
    layer: int | None = None,
    heads: list[int] | None = None,
) -> str:
    """Return bertviz's head view as a complete offline HTML document.

    ``attention`` holds one ``(1, heads, tokens, tokens)`` tensor per layer.
    ``sentence_b_start`` is the index of the first token of a second sentence, which
    adds a menu to show attention within and between the two sentences. ``layer``
    and ``heads`` choose what is shown first (default: layer 0, all heads).
    """
    _check_tokens(tokens, "tokens")
    layers = _checked_layers(attention, "attention", tokens, tokens)
    _check_sentence_b_start(sentence_b_start, len(tokens))
    _check_layer(layer, len(layers))
    _check_heads(heads, layers[0].shape[1])
    html = head_view(
        layers,
        list(tokens),
        sentence_b_start=sentence_b_start,
        layer=layer,
        heads=heads,
        html_action="return",
    ).data
    return make_offline(widen_head_view(html))


def model_view_html(
    attention: Sequence[torch.Tensor],
    tokens: list[str],
    *,
    sentence_b_start: int | None = None,
) -> str:
    """Return bertviz's model view (every layer and head at once) as offline HTML.

    Clicking a thumbnail opens a larger view of that head with the tokens.
    """
    _check_tokens(tokens, "tokens")
    layers = _checked_layers(attention, "attention", tokens, tokens)
    _check_sentence_b_start(sentence_b_start, len(tokens))
    html = model_view(
        layers,
        list(tokens),
        sentence_b_start=sentence_b_start,
        display_mode="light",
        html_action="return",
    ).data
    return make_offline(html)


def encoder_decoder_head_view_html(
    encoder_attention: Sequence[torch.Tensor],
    decoder_attention: Sequence[torch.Tensor],
    cross_attention: Sequence[torch.Tensor],
    encoder_tokens: list[str],
    decoder_tokens: list[str],
) -> str:
    """Return the head view of an encoder-decoder model as offline HTML.

    A menu switches between encoder self-attention, decoder self-attention and
    cross-attention (decoder positions attending to encoder positions), so
    ``cross_attention`` tensors are shaped ``(1, heads, decoder tokens, encoder tokens)``.
    """
    _check_tokens(encoder_tokens, "encoder_tokens")
    _check_tokens(decoder_tokens, "decoder_tokens")
    enc, dec = "encoder tokens", "decoder tokens"
    encoder = _checked_layers(
        encoder_attention, "encoder attention", encoder_tokens, encoder_tokens, enc, enc
    )
    decoder = _checked_layers(
        decoder_attention, "decoder attention", decoder_tokens, decoder_tokens, dec, dec
    )
    cross = _checked_layers(
        cross_attention, "cross attention", decoder_tokens, encoder_tokens, dec, enc
    )
    _check_same_layout(encoder, decoder, cross)
    html = head_view(
        encoder_attention=encoder,
        decoder_attention=decoder,
        cross_attention=cross,
        encoder_tokens=list(encoder_tokens),
        decoder_tokens=list(decoder_tokens),
        html_action="return",
    ).data
    return make_offline(widen_head_view(html))


# The head view's layout, widened to fill a lesson's column, and its head colours numbered.
HEAD_VIEW_LAYOUT = {
    "const BOXWIDTH = 110;": "const BOXWIDTH = 190;",
    "const MATRIX_WIDTH = 115;": "const MATRIX_WIDTH = 260;",
    "const CHECKBOX_SIZE = 20;": "const CHECKBOX_SIZE = 24;",
}
_CHECKBOXES_DRAWN = """            .attr("width", CHECKBOX_SIZE)
            .attr("height", CHECKBOX_SIZE);
"""
_HEAD_NUMBERS = """
        checkboxContainer.selectAll("text")
            .data(config.headVis)
            .enter()
            .append("text")
            .text((d, i) => i)
            .attr("x", (d, i) => i * CHECKBOX_SIZE + CHECKBOX_SIZE / 2)
            .attr("y", top + CHECKBOX_SIZE / 2)
            .attr("text-anchor", "middle")
            .attr("dominant-baseline", "central")
            .attr("font-size", 12)
            .attr("fill", "white")
            .attr("class", "head-number")
            .style("pointer-events", "none");
"""


def widen_head_view(html: str) -> str:
    """bertviz's head view with wider token columns and lines (it otherwise uses about a third
    of a lesson's column) and the head number written on each head's colour square."""
    for old, new in HEAD_VIEW_LAYOUT.items():
        if html.count(old) != 1:
            raise ValueError(f"bertviz's head view no longer has {old!r}; update the layout")
        html = html.replace(old, new)
    if html.count(_CHECKBOXES_DRAWN) != 1:
        raise ValueError("bertviz's head view no longer draws its head squares as expected")
    return html.replace(_CHECKBOXES_DRAWN, _CHECKBOXES_DRAWN + _HEAD_NUMBERS)


PROJECTOR_CLASS = "projector"
PROJECTOR_TEXT_PX = 20  # a head view's token rows are 22.5 px apart: larger text would overlap
PROJECTOR_STYLE = f"""<style>
body.{PROJECTOR_CLASS} {{ background: #ffffff; color: #000000; font-size: 22px; }}
body.{PROJECTOR_CLASS} span, body.{PROJECTOR_CLASS} select {{
  font-size: 22px; font-weight: 700; color: #000000;
}}
body.{PROJECTOR_CLASS} svg text:not(.head-number) {{
  font-size: {PROJECTOR_TEXT_PX}px !important; font-weight: 700; fill: #000000 !important;
}}
body.{PROJECTOR_CLASS} svg #attention line {{ stroke-width: 3px !important; }}
</style>
"""
_HEAD_END = "</head>\n<body>"


_MENUS = re.compile(r'<span style="user-select:none">.*?</span>', re.S)


def translated_menus(page: str) -> str:
    """A view from this module with its menus (bertviz writes them in English) in the current
    language; the view's data is left as it is. Pages cache views made in any language, so
    this is applied as a view is shown."""
    if current_language() == DEFAULT_LANGUAGE:
        return page
    words = {
        "Layer: <select": _("Layer:") + " <select",
        "Attention: <select": _("Attention:") + " <select",
        ">All</option>": ">" + _("All") + "</option>",
        ">Encoder</option>": ">" + _("Encoder") + "</option>",
        ">Decoder</option>": ">" + _("Decoder") + "</option>",
        ">Cross</option>": ">" + _("Cross") + "</option>",
        "Sentence A": _("Sentence A"),
        "Sentence B": _("Sentence B"),
    }

    def menus(found: re.Match) -> str:
        text = found.group(0)
        for english, shown in words.items():
            text = text.replace(english, shown)
        return text

    return _MENUS.sub(menus, page, count=1)


def projector_theme(page: str) -> str:
    """A view from this module restyled for a projector: bertviz's light display mode with
    pure black, large, bold text, and a head view's lines drawn thicker. (Inside its scripts every
    ``</`` is escaped, so the first ``</head>`` is the page's own.)"""
    if _HEAD_END not in page:
        raise ValueError("expected a page made by make_offline")
    themed = f'{PROJECTOR_STYLE}</head>\n<body class="{PROJECTOR_CLASS}">'
    return page.replace(_HEAD_END, themed, 1)


def make_offline(html: str) -> str:
    """Turn the HTML of bertviz's ``html_action="return"`` into a self-contained page.

    bertviz returns a require.js ``<script src>`` pointing at a CDN, the view's markup,
    and one inline script that configures CDN paths for d3 and jQuery and then draws.
    This drops the CDN tag and the ``require.config`` block, inlines the vendored
    libraries, registers them under the module names the view asks for, and escapes
    the view's script (which holds the tokens) so it cannot end early.
    """
    cdn_tag = _CDN_REQUIRE_TAG.search(html)
    script_start = html.find(_INLINE_SCRIPT_OPEN)
    script_end = html.rfind(_SCRIPT_CLOSE)
    if (
        cdn_tag is None
        or html[: cdn_tag.start()].strip()
        or script_start < cdn_tag.end()
        or script_end < script_start
        or html[script_end + len(_SCRIPT_CLOSE) :].strip()
    ):
        raise ValueError(
            "expected the HTML of bertviz's head_view or model_view with html_action='return'"
        )
    markup = html[cdn_tag.end() : script_start]
    view_script, n_configs = _REQUIRE_CONFIG.subn(
        "", html[script_start + len(_INLINE_SCRIPT_OPEN) : script_end], count=1
    )
    if n_configs != 1:
        raise ValueError("expected a require.config(...) block in bertviz's view script")
    return _PAGE.format(
        libraries=_library_scripts(vendor_dir()),
        markup=markup.strip(),
        view_script=escape_script_text(view_script.strip()),
    )


def escape_script_text(text: str) -> str:
    """Make ``text`` safe to place between ``<script>`` and ``</script>``.

    Only valid where ``</`` and ``<!--`` appear inside JavaScript string or regex
    literals (true of JSON data and of the vendored libraries), where the backslash
    escapes keep their meaning.
    """
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def vendor_dir() -> Path:
    """Folder of the vendored JavaScript: ``$TINYFORMERS_ASSETS/vendor`` or the repo's."""
    assets = os.environ.get(ASSETS_ENV_VAR)
    if assets:
        return Path(assets) / "vendor"
    return Path(__file__).resolve().parents[3] / "assets" / "vendor"


@functools.lru_cache(maxsize=4)
def _library_scripts(directory: Path) -> str:
    """The vendored libraries and the module shim as ``<script>`` tags, read once."""
    missing = [name for name in VENDOR_LIBRARIES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"bertviz views need the vendored JavaScript {', '.join(missing)} in {directory}; "
            f"set {ASSETS_ENV_VAR} to the assets folder that contains vendor/"
        )
    sources = [(directory / name).read_text(encoding="utf-8") for name in VENDOR_LIBRARIES]
    sources.append(_AMD_SHIM)
    return "\n".join(f"<script>\n{escape_script_text(source)}\n</script>" for source in sources)


def _check_tokens(tokens: list[str], name: str) -> None:
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise ValueError(f"{name} must be a list of strings, got {type(tokens).__name__}")
    if not tokens:
        raise ValueError(f"{name} is empty; there is nothing to show")
    for index, token in enumerate(tokens):
        if not isinstance(token, str):
            raise ValueError(
                f"{name} must be a list of strings; item {index} is {type(token).__name__}"
            )


def _checked_layers(
    attention: Sequence[torch.Tensor],
    what: str,
    query_tokens: list[str],
    key_tokens: list[str],
    query_name: str = "tokens",
    key_name: str = "tokens",
) -> list[torch.Tensor]:
    """Validate one attention tensor per layer; return them as small float64 CPU tensors."""
    layers = list(attention)
    if not layers:
        raise ValueError(f"{what} has no layers; pass one (1, heads, q, k) tensor per layer")
    checked = []
    for index, layer in enumerate(layers):
        if not isinstance(layer, torch.Tensor):
            raise ValueError(
                f"{what} layer {index} is a {type(layer).__name__}, expected a torch.Tensor"
            )
        if layer.dim() != 4 or layer.shape[0] != 1:
            raise ValueError(
                f"expected a (1, heads, q, k) tensor per layer, got shape {tuple(layer.shape)} "
                f"for {what} layer {index}"
            )
        _batch, n_heads, n_queries, n_keys = layer.shape
        if n_heads != layers[0].shape[1]:
            raise ValueError(
                f"{what} layer {index} has {n_heads} heads but layer 0 has {layers[0].shape[1]}"
            )
        if n_queries != len(query_tokens):
            raise ValueError(
                f"{what} layer {index} has {n_queries} positions "
                f"but there are {len(query_tokens)} {query_name}"
            )
        if n_keys != len(key_tokens):
            raise ValueError(
                f"{what} layer {index} attends to {n_keys} positions "
                f"but there are {len(key_tokens)} {key_name}"
            )
        values = layer.detach().to("cpu", torch.float64)
        if not torch.isfinite(values).all():
            raise ValueError(f"{what} layer {index} contains NaN or infinite values")
        checked.append(values.round(decimals=DECIMALS))
    return checked


def _check_sentence_b_start(sentence_b_start: int | None, n_tokens: int) -> None:
    if sentence_b_start is None:
        return
    if not isinstance(sentence_b_start, int) or not 0 < sentence_b_start < n_tokens:
        raise ValueError(
            f"sentence_b_start must be the index of the first token of sentence B, "
            f"between 1 and {n_tokens - 1}; got {sentence_b_start!r}"
        )


def _check_layer(layer: int | None, n_layers: int) -> None:
    if layer is not None and (not isinstance(layer, int) or not 0 <= layer < n_layers):
        raise ValueError(f"layer must be between 0 and {n_layers - 1}, got {layer!r}")


def _check_heads(heads: list[int] | None, n_heads: int) -> None:
    if heads is None:
        return
    if not heads:
        raise ValueError("heads must name at least one head (or be None for all heads)")
    bad = [h for h in heads if not isinstance(h, int) or not 0 <= h < n_heads]
    if bad:
        raise ValueError(f"heads must be between 0 and {n_heads - 1}, got {bad}")


def _check_same_layout(*attentions: list[torch.Tensor]) -> None:
    """Encoder, decoder and cross attention share one layer menu and one head legend."""
    n_layers = [len(layers) for layers in attentions]
    n_heads = [layers[0].shape[1] for layers in attentions]
    if len(set(n_layers)) != 1:
        raise ValueError(
            "encoder, decoder and cross attention must have the same number of layers, "
            f"got {n_layers[0]}, {n_layers[1]} and {n_layers[2]}"
        )
    if len(set(n_heads)) != 1:
        raise ValueError(
            "encoder, decoder and cross attention must have the same number of heads, "
            f"got {n_heads[0]}, {n_heads[1]} and {n_heads[2]}"
        )
