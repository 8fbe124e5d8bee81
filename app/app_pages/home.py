"""Course map: a live model to try first, then every lesson and what you will do there."""

import questions
import streamlit as st
import widgets

from tinyformers.course.gpt import next_token_logits
from tinyformers.figures import gpt as figs
from tinyformers.figures.common import markdown_table, token_chips
from tinyformers.i18n import _, ngettext
from tinyformers.model.build import presets_table
from tinyformers.model.sampling import SamplingSettings, next_token_distribution

DEMO_MODEL = "gpt-stories"
DEMO_SENTENCE = "the small dog sees the"
DEMO_BARS = 10
TEXT_COLUMNS = ("preset", "family")


@st.cache_data
def model_sizes() -> list[dict]:
    """Builds a model per preset and family once per process, not on every rerun."""
    return presets_table()


def start_here() -> None:
    """Type a sentence: see its tokens, then what a small GPT thinks comes next."""
    st.subheader(_("Start here: type a sentence"))
    loaded = widgets.shipped_model(DEMO_MODEL)
    text = widgets.sentence_input(
        _("Your sentence"),
        DEMO_SENTENCE,
        key="home-sentence",
        tokenizer=loaded.tokenizer,
        max_tokens=loaded.config.block_size,
    )
    if not text:
        return
    ids = loaded.tokenizer.encode(text)
    if not ids:
        st.info(_("Type a few words to see them as tokens."))
        return
    count = ngettext("{n} token", "{n} tokens", len(ids))
    st.markdown(
        _("**1. {count}** — the pieces {model} reads:").format(count=count, model=DEMO_MODEL)
    )
    st.html(token_chips(loaded.tokenizer.display_tokens(ids), ids))
    st.caption(_("Lesson 1 shows how these pieces are learned from text."))
    with st.container():
        distribution = next_token_distribution(
            next_token_logits(loaded.model, ids), SamplingSettings()
        )
        shown = figs.bar_ids(distribution, DEMO_BARS)
        labels = loaded.tokenizer.display_tokens(shown)
        title = _("2. What the model expects next")
        st.plotly_chart(figs.distribution_chart(distribution, shown, labels, title), theme=None)
        st.caption(figs.distribution_caption(distribution, shown[0], labels[0]))


def model_sizes_table() -> None:
    """Every preset's size per family, counted on freshly built models."""
    st.header(_("Model sizes"))
    st.caption(_("Parameter counts measured on freshly built models (vocabulary of 512 tokens)."))
    sizes = model_sizes()
    names = {"preset": _("preset"), "family": _("family"), "parameters": _("parameters")}
    columns = list(sizes[0])
    numbers = tuple(i for i, column in enumerate(columns) if column not in TEXT_COLUMNS)
    rows = [
        [str(row[c]) if c in TEXT_COLUMNS else widgets.number(row[c]) for c in columns]
        for row in sizes
    ]
    st.markdown(markdown_table([names.get(c, c) for c in columns], rows, right=numbers))


st.title("Tinyformers")
st.write(
    _(
        "Small, live Transformer models you can poke: every chart in this app is computed by a "
        "model running on your input, right now."
    )
)
start_here()

st.header(_("Course map"))
done = questions.progress()
for lesson in widgets.lessons():
    with st.container(border=True):
        st.page_link(
            str(widgets.page_file(lesson.slug)), label=f"**{lesson.order}. {lesson.title}**"
        )
        st.write(_("*What you will do:* {summary}").format(summary=lesson.summary))
        st.markdown("\n".join(f"- {outcome}" for outcome in lesson.outcomes))
        if line := questions.progress_line(lesson.slug, done):
            st.caption(line)

st.header(_("Your answers"))
questions.progress_panel()

model_sizes_table()
