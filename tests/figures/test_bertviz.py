"""The bertviz views render offline, keep their data intact and never run token text."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from bertviz import head_view

from tinyformers.figures import bertviz as bertviz_html
from tinyformers.figures.bertviz import (
    VENDOR_LIBRARIES,
    encoder_decoder_head_view_html,
    escape_script_text,
    head_view_html,
    make_offline,
    model_view_html,
    projector_theme,
    vendor_dir,
)

HOSTILE_TOKEN = "</script><img src=x onerror=alert(1)>"
TOKENS = ["The", "cat", HOSTILE_TOKEN, "<!--", "sat", "."]
N_LAYERS, N_HEADS = 2, 3


def random_attention(n_layers: int, n_heads: int, n_queries: int, n_keys: int, seed: int = 0):
    """One (1, heads, q, k) tensor of softmax weights per layer, like output_attentions=True."""
    generator = torch.Generator().manual_seed(seed)
    shape = (1, n_heads, n_queries, n_keys)
    return [
        torch.softmax(2 * torch.randn(shape, generator=generator), dim=-1) for _ in range(n_layers)
    ]


@pytest.fixture(scope="module")
def attention():
    return random_attention(N_LAYERS, N_HEADS, len(TOKENS), len(TOKENS))


@pytest.fixture(scope="module")
def seq2seq():
    encoder_tokens = ["a", "b", "c", "d", "e"]
    decoder_tokens = ["x", "y", "z"]
    return {
        "encoder_attention": random_attention(N_LAYERS, N_HEADS, 5, 5, seed=1),
        "decoder_attention": random_attention(N_LAYERS, N_HEADS, 3, 3, seed=2),
        "cross_attention": random_attention(N_LAYERS, N_HEADS, 3, 5, seed=3),
        "encoder_tokens": encoder_tokens,
        "decoder_tokens": decoder_tokens,
    }


@pytest.fixture(scope="module")
def pages(attention, seq2seq):
    return {
        "head": head_view_html(attention, TOKENS, sentence_b_start=3),
        "model": model_view_html(attention, TOKENS),
        "encoder_decoder": encoder_decoder_head_view_html(**seq2seq),
    }


class TagCounter(HTMLParser):
    """Counts start tags the way an HTML parser sees them (script bodies are raw text)
    and collects every attribute that could make the browser load something."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.urls += [value for name, value in attrs if name in ("src", "href", "srcset")]


def parse(html: str) -> TagCounter:
    counter = TagCounter()
    counter.feed(html)
    return counter


def page_params(html: str) -> dict:
    """The JSON that bertviz inlines into the view script."""
    match = re.search(r"const params = (\{.*?\}); // HACK", html)
    assert match is not None
    return json.loads(match.group(1))


# --- the document ---------------------------------------------------------------------


def test_vendored_libraries_and_licenses_are_present():
    directory = vendor_dir()
    assert directory == Path(__file__).resolve().parents[2] / "assets" / "vendor"
    for name in VENDOR_LIBRARIES:
        assert (directory / name).stat().st_size > 10_000
    for name in ("LICENSE-d3.txt", "LICENSE-jquery.txt", "LICENSE-requirejs.txt", "README.md"):
        assert (directory / name).is_file()


@pytest.mark.parametrize("view", ["head", "model", "encoder_decoder"])
def test_pages_are_complete_documents_without_network_references(pages, view):
    html = pages[view]
    assert html.startswith("<!DOCTYPE html>\n<html>")
    assert html.rstrip().endswith("</html>")
    assert 'src="http' not in html
    assert "src='http" not in html
    assert "cdnjs" not in html
    assert re.search(r"require\.config\(\{\s*paths", html) is None
    assert parse(html).urls == []


@pytest.mark.parametrize("view", ["head", "model", "encoder_decoder"])
def test_libraries_are_inlined_before_the_view_in_load_order(pages, view):
    html = pages[view]
    markers = [
        "https://d3js.org v5.7.0",
        "jQuery v2.2.4",
        "RequireJS 2.3.6",
        "define('d3', [], function () { return window.d3; });",
        "define('jquery', [], function () { return window.jQuery; });",
        "requirejs(['jquery', 'd3']",
    ]
    positions = [html.find(marker) for marker in markers]
    assert -1 not in positions
    assert positions == sorted(positions)
    for name in VENDOR_LIBRARIES:
        source = (vendor_dir() / name).read_text(encoding="utf-8")
        assert escape_script_text(source) in html


@pytest.mark.parametrize("view", ["head", "model", "encoder_decoder"])
def test_page_has_exactly_the_expected_elements(pages, view):
    """Five scripts (three libraries, the module shim, the view) and no injected markup."""
    tags = parse(pages[view]).counts
    assert tags["script"] == 5
    assert "img" not in tags


def test_script_breaking_token_is_escaped_but_kept(pages):
    for html in pages.values():
        assert "</script><img" not in html
        assert "<!--" not in html
    escaped = "<\\/script><img src=x onerror=alert(1)>"
    assert escaped in pages["head"]
    assert escaped in pages["model"]


def test_page_carries_tokens_and_rounded_weights(attention):
    tokens = ["[CLS]", "a </b> token", "x", "[SEP]"]
    weights = random_attention(N_LAYERS, N_HEADS, len(tokens), len(tokens), seed=5)
    params = page_params(head_view_html(weights, tokens, layer=1, heads=[0, 2]))
    data = params["attention"][0]
    assert data["left_text"] == tokens
    assert data["right_text"] == tokens
    expected = torch.stack([w[0] for w in weights]).double().round(decimals=4)
    assert torch.equal(torch.tensor(data["attn"], dtype=torch.float64), expected)
    assert params["layer"] == 1
    assert params["heads"] == [0, 2]


def test_sentence_pair_adds_the_sentence_menu(attention):
    params = page_params(head_view_html(attention, TOKENS[:2] + ["x"] * 4, sentence_b_start=2))
    names = [entry["name"] for entry in params["attention"]]
    assert names == [
        "All",
        "Sentence A -> Sentence A",
        "Sentence B -> Sentence B",
        "Sentence A -> Sentence B",
        "Sentence B -> Sentence A",
    ]


def test_escape_script_text_removes_every_closing_and_comment_sequence():
    text = 'a</script>b</SCRIPT>c<!--d"</"'
    escaped = escape_script_text(text)
    assert "</" not in escaped
    assert "<!--" not in escaped
    assert escaped == 'a<\\/script>b<\\/SCRIPT>c<\\!--d"<\\/"'


def test_make_offline_accepts_bertviz_output_and_rejects_other_html(attention):
    raw = head_view(attention, TOKENS, html_action="return").data
    assert "cdnjs" in raw
    assert "cdnjs" not in make_offline(raw)
    with pytest.raises(ValueError, match="bertviz's head_view or model_view"):
        make_offline("<p>not a bertviz view</p>")
    with pytest.raises(ValueError, match="require.config"):
        make_offline(raw.replace("require.config(", "configure("))


def test_vendor_dir_follows_the_environment_variable(tmp_path, monkeypatch, attention):
    monkeypatch.setenv("TINYFORMERS_ASSETS", str(tmp_path))
    assert vendor_dir() == tmp_path / "vendor"
    with pytest.raises(FileNotFoundError, match="d3.min.js, jquery.min.js, require.js"):
        head_view_html(attention, TOKENS)
    shutil.copytree(Path(__file__).resolve().parents[2] / "assets" / "vendor", tmp_path / "vendor")
    assert "RequireJS 2.3.6" in head_view_html(attention, TOKENS)


# --- validation -------------------------------------------------------------------------


def good(n_tokens: int = 6):
    return random_attention(N_LAYERS, N_HEADS, n_tokens, n_tokens)


@pytest.mark.parametrize(
    ("attention", "kwargs", "message"),
    [
        (good(7), {}, "attention layer 0 has 7 positions but there are 6 tokens"),
        (
            [torch.ones(1, 3, 6, 6), torch.ones(1, 3, 6, 5)],
            {},
            "attention layer 1 attends to 5 positions but there are 6 tokens",
        ),
        (
            [torch.ones(3, 6, 6)],
            {},
            r"expected a \(1, heads, q, k\) tensor per layer, got shape "
            r"\(3, 6, 6\) for attention layer 0",
        ),
        ([torch.ones(2, 3, 6, 6)], {}, r"got shape \(2, 3, 6, 6\)"),
        ([], {}, "attention has no layers"),
        ([[[0.5]]], {}, "attention layer 0 is a list, expected a torch.Tensor"),
        (
            [torch.ones(1, 3, 6, 6), torch.ones(1, 2, 6, 6)],
            {},
            "attention layer 1 has 2 heads but layer 0 has 3",
        ),
        ([torch.full((1, 3, 6, 6), float("nan"))], {}, "layer 0 contains NaN"),
        (good(), {"layer": 2}, "layer must be between 0 and 1, got 2"),
        (good(), {"heads": [0, 3]}, r"heads must be between 0 and 2, got \[3\]"),
        (good(), {"heads": []}, "heads must name at least one head"),
        (good(), {"sentence_b_start": 0}, "sentence_b_start .* between 1 and 5; got 0"),
        (good(), {"sentence_b_start": 6}, "between 1 and 5; got 6"),
    ],
)
def test_head_view_rejects_bad_input_with_a_specific_message(attention, kwargs, message):
    with pytest.raises(ValueError, match=message):
        head_view_html(attention, TOKENS, **kwargs)


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ("The cat", "tokens must be a list of strings, got str"),
        ([], "tokens is empty"),
        (["a", 1, "b", "c", "d", "e"], "item 1 is int"),
    ],
)
def test_tokens_are_validated(tokens, message):
    with pytest.raises(ValueError, match=message):
        model_view_html(good(), tokens)


def test_model_view_checks_positions_against_tokens():
    message = "attention layer 0 has 6 positions but there are 5 tokens"
    with pytest.raises(ValueError, match=message):
        model_view_html(good(6), TOKENS[:5])


def test_encoder_decoder_view_checks_each_attention(seq2seq):
    swapped = dict(seq2seq, cross_attention=random_attention(N_LAYERS, N_HEADS, 5, 3))
    with pytest.raises(
        ValueError, match="cross attention layer 0 has 5 positions but there are 3 decoder tokens"
    ):
        encoder_decoder_head_view_html(**swapped)
    fewer_layers = dict(seq2seq, decoder_attention=seq2seq["decoder_attention"][:1])
    with pytest.raises(ValueError, match="same number of layers, got 2, 1 and 2"):
        encoder_decoder_head_view_html(**fewer_layers)
    long_encoder = dict(seq2seq, encoder_tokens=seq2seq["encoder_tokens"] + ["f"])
    with pytest.raises(
        ValueError, match="encoder attention layer 0 has 5 positions but there are 6 encoder tokens"
    ):
        encoder_decoder_head_view_html(**long_encoder)


# --- a real browser with no network ---------------------------------------------------


class OfflinePage:
    """A page that may load nothing but data: and about: URLs and records what happens."""

    def __init__(self, browser) -> None:
        self.page = browser.new_page(viewport={"width": 1000, "height": 600})
        self.blocked: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(("data:", "about:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def show(self, html: str) -> None:
        self.page.set_content(html)
        self.page.wait_for_selector("svg line", state="attached", timeout=120_000)

    def texts(self, selector: str) -> list[str]:
        return self.page.locator(selector).all_text_contents()

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def offline_page(browser):
    page = OfflinePage(browser)
    yield page
    page.close()


@pytest.mark.browser
def test_head_view_draws_attention_lines_and_tokens_as_text(offline_page, pages):
    offline_page.show(pages["head"])
    n = len(TOKENS)
    assert offline_page.page.locator("svg #attention line").count() == N_HEADS * n * n
    assert offline_page.texts("svg #left text") == TOKENS
    assert offline_page.texts("svg #right text") == TOKENS
    offline_page.page.hover("svg #left text >> nth=2")
    offline_page.page.screenshot(path="/tmp/bertviz_head.png", full_page=True)
    assert offline_page.page.locator("img").count() == 0
    assert offline_page.dialogs == []
    assert offline_page.blocked == []
    assert offline_page.errors == []


@pytest.mark.browser
def test_model_view_draws_every_head_and_opens_a_detail(offline_page, pages):
    offline_page.show(pages["model"])
    n = len(TOKENS)
    assert offline_page.page.locator("svg line").count() == N_LAYERS * N_HEADS * n * n
    box = offline_page.page.locator("#attn_background_0_0").bounding_box()
    offline_page.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert offline_page.texts("svg text.token") == TOKENS + TOKENS
    offline_page.page.screenshot(path="/tmp/bertviz_model.png", full_page=True)
    assert offline_page.page.locator("img").count() == 0
    assert offline_page.dialogs == []
    assert offline_page.blocked == []
    assert offline_page.errors == []


@pytest.mark.browser
def test_encoder_decoder_view_switches_to_cross_attention(offline_page, pages):
    offline_page.show(pages["encoder_decoder"])
    assert offline_page.page.locator("svg #attention line").count() == N_HEADS * 5 * 5
    offline_page.page.select_option("#filter", label="Cross")
    assert offline_page.page.locator("svg #attention line").count() == N_HEADS * 3 * 5
    assert offline_page.texts("svg #left text") == ["x", "y", "z"]
    assert offline_page.texts("svg #right text") == ["a", "b", "c", "d", "e"]
    offline_page.page.screenshot(path="/tmp/bertviz_encoder_decoder.png", full_page=True)
    assert offline_page.blocked == []
    assert offline_page.errors == []


@pytest.mark.browser
def test_hostile_token_runs_only_when_escaping_is_undone(offline_page, pages):
    """The dialog check can fail: the same page without escaping does run the token."""
    offline_page.show(pages["head"])
    assert offline_page.dialogs == []
    unescaped = pages["head"].replace("<\\/script><img", "</script><img")
    offline_page.page.set_content(unescaped)
    for _ in range(600):  # wait for the dialog itself, up to a generous 30 s
        if offline_page.dialogs:
            break
        offline_page.page.wait_for_timeout(50)
    assert offline_page.dialogs
    assert set(offline_page.dialogs) == {"1"}


def test_module_reads_the_vendored_files_once(attention):
    bertviz_html._library_scripts.cache_clear()
    head_view_html(attention, TOKENS)
    model_view_html(attention, TOKENS)
    assert bertviz_html._library_scripts.cache_info().misses == 1


@pytest.mark.browser
def test_head_view_numbers_its_heads_and_widens_its_columns(offline_page, pages):
    offline_page.show(pages["head"])
    numbers = offline_page.page.evaluate(
        "() => [...document.querySelectorAll('svg g text')].map(t => t.textContent)"
    )
    assert [str(h) for h in range(N_HEADS)] == [n for n in numbers if n.isdigit()][:N_HEADS]
    widths = offline_page.page.evaluate(
        "() => [...document.querySelectorAll('svg rect')].map(r => +r.getAttribute('width'))"
    )
    assert max(widths) >= 190  # a token's box, as wide as the widened layout says


def test_the_projector_theme_only_styles_the_page(pages):
    for page in pages.values():
        themed = projector_theme(page)
        assert themed.count('<body class="projector">') == 1 and "<body>" not in themed
        assert themed.count(bertviz_html.PROJECTOR_STYLE) == 1
        assert themed.index(bertviz_html.PROJECTOR_STYLE) < themed.index("</head>")
        plain = themed.replace(bertviz_html.PROJECTOR_STYLE, "")
        assert plain.replace('<body class="projector">', "<body>") == page
        assert parse(themed).counts == parse(page).counts | {"style": 2}
    with pytest.raises(ValueError, match="make_offline"):
        projector_theme("<html><body>not a view</body></html>")


THEMED_TEXT = """() => [...document.querySelectorAll('svg text')].map(t => {
    const style = getComputedStyle(t);
    return [t.textContent, style.fontSize, style.fontWeight, style.fill];
})"""


@pytest.mark.browser
@pytest.mark.parametrize("view", ["head", "model"])
def test_the_projector_theme_draws_large_bold_black_text(offline_page, pages, view):
    offline_page.show(projector_theme(pages[view]))
    if view == "model":  # the tokens show in a head's detail
        box = offline_page.page.locator("#attn_background_0_0").bounding_box()
        offline_page.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    texts = offline_page.page.evaluate(THEMED_TEXT)
    tokens = [t for t in texts if t[0] == "cat"]
    assert tokens and all(t[1:] == ["20px", "700", "rgb(0, 0, 0)"] for t in tokens)
    numbers = [t for t in texts if t[0].isdigit() and t[3] == "rgb(255, 255, 255)"]
    assert len(numbers) == (N_HEADS if view == "head" else 0)  # head numbers keep their size
    assert all(t[1] == "12px" for t in numbers)
    widths = offline_page.page.evaluate(
        "() => [...document.querySelectorAll('svg #attention line')].map("
        "line => getComputedStyle(line).strokeWidth)"
    )
    assert set(widths) == ({"3px"} if view == "head" else set())  # a head view's lines
    assert offline_page.errors == []


def test_a_changed_bertviz_layout_is_reported() -> None:
    from tinyformers.figures.bertviz import widen_head_view

    with pytest.raises(ValueError, match="no longer has"):
        widen_head_view("<html>no view</html>")


@pytest.mark.parametrize("view", ["head", "model", "encoder_decoder"])
def test_menus_follow_the_language_and_the_data_stays(pages, view, monkeypatch):
    from tinyformers import i18n

    page = pages[view]
    assert bertviz_html.translated_menus(page) == page  # English: the page as bertviz made it
    monkeypatch.setattr(i18n, "_language_source", lambda: "ru")
    shown = bertviz_html.translated_menus(page)
    menus = re.sub(r"<script.*?</script>", "", shown, flags=re.S)
    for english in ("Layer:", "Attention:", ">All<", ">Encoder<", ">Cross<", "Sentence A"):
        assert english not in menus
    if view != "model":
        assert "Слой:" in menus
    scripts = re.findall(r"<script.*?</script>", page, flags=re.S)
    assert re.findall(r"<script.*?</script>", shown, flags=re.S) == scripts
