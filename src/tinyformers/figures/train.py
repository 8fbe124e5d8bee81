"""Figures for the training lesson: loss curves, speed, the learning-rate schedule, one
attention snapshot of the probe sentence, head scores over time, a sample as HTML, and the
captions and messages that put a run's numbers into words.

Every string that comes from a tokenizer or a student's text is html-escaped before it reaches
a label, a hover box or an HTML block: Plotly renders a few HTML tags in labels, and samples
are written by a model trained on whatever text was pasted.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import replace

import plotly.graph_objects as go
from torch import Tensor

from tinyformers.course.train import (
    CORPUS_LABELS,
    SCORES,
    SIZE_LABELS,
    STEPS_CHOICE,
    VOCAB_CHOICE,
    Choice,
    CorpusProfile,
    NumberChoice,
    RunSample,
    SnapshotView,
    Status,
    Timeline,
    Training,
    even_guess_loss,
    format_duration,
)
from tinyformers.i18n import N_, _, current_language, ngettext, translate_written
from tinyformers.model.config import PRESETS, TransformerConfig
from tinyformers.training.jobs import Limits
from tinyformers.training.loop import Progress, TrainSettings

FONT_SIZE = 16
TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#d62728"
EARLIER_COLOR = "#9e9e9e"
HEAD_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
SCHEDULE_POINTS = 400  # points drawn along the planned learning-rate schedule
SCORE_TITLES = {
    "previous": "weight on the previous token",
    "first": "weight on the first token",
    "self": "weight on the token itself",
}
SCORE_NAMES = {"previous": "the previous token", "first": "the first token", "self": "itself"}
SCORE_LABELS = {  # the score picker's options
    "previous": N_("weight on the previous token"),
    "first": N_("weight on the first token"),
    "self": N_("weight on itself"),
}


# The labels above and in course.train in the current language, for captions and titles.
def family_labels() -> dict[str, str]:
    return {"gpt": _("GPT (causal LM)"), "bert": _("BERT (masked LM)")}


def corpus_labels() -> dict[str, str]:
    return {
        "char": _("gpt-char's stories"),
        "stories": _("More stories (gpt-stories' text)"),
        "lessons": _("The lessons' text"),
        "own": _("Your own text"),
    }


def corpus_label(label: str) -> str:
    """A corpus label of ``CORPUS_LABELS`` in the current language (others as they are)."""
    keys = {english: key for key, english in CORPUS_LABELS.items()}
    return corpus_labels()[keys[label]] if label in keys else label


def tokenizer_labels() -> dict[str, str]:
    return {"char": _("Characters"), "bpe": _("Byte-level BPE"), "wordpiece": _("WordPiece")}


def score_titles() -> dict[str, str]:
    return {
        "previous": _("weight on the previous token"),
        "first": _("weight on the first token"),
        "self": _("weight on the token itself"),
    }


def score_names() -> dict[str, str]:
    return {"previous": _("the previous token"), "first": _("the first token"), "self": _("itself")}


def number_choice(choice: NumberChoice) -> NumberChoice:
    """A whole-number choice of ``course.train`` with its label and help in the current
    language."""
    labels = {
        VOCAB_CHOICE.label: _("Vocabulary size (BPE, WordPiece)"),
        STEPS_CHOICE.label: _("Steps"),
        SIZE_LABELS["n_layer"]: _("Layers"),
        SIZE_LABELS["n_head"]: _("Heads per layer"),
        SIZE_LABELS["n_embd"]: _("Width (n_embd)"),
        SIZE_LABELS["block_size"]: _("Context (tokens)"),
    }
    helps = {
        VOCAB_CHOICE.help: _(
            "At most this many tokens are learned. Characters: one token per distinct character "
            "of the text."
        )
    }
    return replace(
        choice,
        label=labels.get(choice.label, choice.label),
        help=helps.get(choice.help, choice.help) if choice.help else choice.help,
    )


def _layout(fig: go.Figure, title: str, height: int, x_title: str, y_title: str) -> go.Figure:
    fig.update_layout(
        title=html.escape(title, quote=False),
        height=height,
        font_size=FONT_SIZE,
        margin=dict(l=80, r=20, t=70, b=60),
        xaxis_title=x_title,
        yaxis_title=y_title,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
    )
    return fig


def _check_total(total_steps: int) -> None:
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"total_steps must be a positive whole number, got {total_steps!r}")


# ---------------------------------------------------------------------------------------------
# Curves
# ---------------------------------------------------------------------------------------------


def loss_figure(
    history: Sequence[Progress],
    total_steps: int,
    earlier: Sequence[Progress] = (),
    even_guess: float | None = None,
    start_val_loss: float | None = None,
) -> go.Figure:
    """Training loss at every logged step and validation loss at every evaluation, on an
    x axis running to ``total_steps``. ``earlier``: an earlier attempt, drawn in grey;
    ``even_guess``: the loss of guessing evenly among all tokens (ln V), drawn dashed;
    ``start_val_loss``: the untrained model's validation loss, drawn at step 0."""
    _check_total(total_steps)
    fig = go.Figure()
    if even_guess is not None:
        fig.add_hline(
            y=even_guess,
            line=dict(color="black", dash="dash"),
            annotation_text=_("guessing evenly (ln V)"),
            annotation_position="top right",
        )
    if earlier:
        fig.add_scatter(
            x=[p.step for p in earlier],
            y=[p.train_loss for p in earlier],
            mode="lines",
            name=_("training (earlier attempt)"),
            line=dict(color=EARLIER_COLOR, dash="dot"),
        )
    fig.add_scatter(
        x=[p.step for p in history],
        y=[p.train_loss for p in history],
        mode="lines",
        name=_("training batch"),
        line=dict(color=TRAIN_COLOR, width=2),
    )
    evaluated = [(p.step, p.val_loss) for p in history if p.val_loss is not None]
    if start_val_loss is not None:
        evaluated.insert(0, (0, start_val_loss))
    fig.add_scatter(
        x=[step for step, _ in evaluated],
        y=[loss for _, loss in evaluated],
        mode="lines+markers",
        name=_("validation"),
        line=dict(color=VAL_COLOR, width=3),
        marker=dict(size=9),
    )
    fig.update_xaxes(range=[0, total_steps])
    return _legend_below(
        _layout(fig, _("Loss while training"), 440, _("step"), _("loss (nats per token)"))
    )


def _legend_below(fig: go.Figure) -> go.Figure:
    """The legend under the plot, clear of the title and the axis title: these charts sit in
    narrow columns (beside the controls, or two side by side)."""
    fig.update_layout(
        legend=dict(orientation="h", yref="container", yanchor="bottom", y=0, x=0),
        margin=dict(b=120),
    )
    return fig


def run_loss_figure(training: Training, history: Sequence[Progress]) -> go.Figure:
    """``loss_figure`` of a session's run: up to its step count, from the untrained model's
    validation loss, with the attempt before a restart and the loss of guessing evenly among
    its vocabulary."""
    choice = training.choice
    even_guess = even_guess_loss(choice.config.vocab_size)
    total, start = choice.spec.settings.max_steps, training.initial_val_loss
    return loss_figure(history, total, training.earlier, even_guess, start)


def throughput_figure(history: Sequence[Progress]) -> go.Figure:
    """Tokens per second over the steps logged since the previous log (evaluations excluded)."""
    fig = go.Figure()
    fig.add_scatter(
        x=[p.step for p in history],
        y=[p.tokens_per_s for p in history],
        mode="lines",
        name=_("tokens per second"),
        line=dict(color=TRAIN_COLOR, width=2),
    )
    fig.update_yaxes(rangemode="tozero")
    return _layout(fig, _("Training speed"), 320, _("step"), _("tokens per second"))


def learning_rate_figure(settings: TrainSettings, step: int) -> go.Figure:
    """The planned schedule (linear warm-up, then cosine decay) with the steps done so far
    drawn solid and the rest dotted."""
    total = settings.max_steps
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= total:
        raise ValueError(f"step must be between 0 and {total}, got {step!r}")
    stride = max(1, total // SCHEDULE_POINTS)
    corners = {min(settings.warmup_steps, total - 1), min(step, total - 1), total - 1}
    steps = sorted({*range(0, total, stride), *corners})
    done = [s for s in steps if s <= step]
    fig = go.Figure()
    fig.add_scatter(
        x=steps,
        y=[settings.lr_at(s) for s in steps],
        mode="lines",
        name=_("planned"),
        line=dict(color=EARLIER_COLOR, dash="dot", width=2),
    )
    fig.add_scatter(
        x=done,
        y=[settings.lr_at(s) for s in done],
        mode="lines",
        name=_("so far"),
        line=dict(color=TRAIN_COLOR, width=3),
    )
    fig.update_xaxes(range=[0, total])
    fig.update_yaxes(rangemode="tozero", exponentformat="e")
    return _legend_below(
        _layout(fig, _("Learning-rate schedule"), 360, _("step"), _("learning rate"))
    )


def run_schedule_figure(training: Training, status: Status) -> go.Figure:
    """``learning_rate_figure`` of a session's run, drawn solid up to the step it has reached."""
    return learning_rate_figure(training.choice.spec.settings, status.planned_step)


# ---------------------------------------------------------------------------------------------
# The attention timeline
# ---------------------------------------------------------------------------------------------


def token_labels(tokens: Sequence[str]) -> list[str]:
    """Unique, escaped axis labels: position and token, spaces and newlines made visible."""
    return [
        f"{i}: {html.escape(token.replace(' ', '␣').replace(chr(10), '⏎'), quote=False)}"
        for i, token in enumerate(tokens)
    ]


def attention_snapshot_figure(weights: Tensor, tokens: Sequence[str], title: str) -> go.Figure:
    """One head's (query × key) attention on the probe: queries down, keys across, 0 to 1."""
    n = len(tokens)
    if weights.dim() != 2 or tuple(weights.shape) != (n, n):
        raise ValueError(f"expected a ({n}, {n}) matrix for {n} tokens, got {tuple(weights.shape)}")
    labels = token_labels(tokens)
    fig = go.Figure(
        go.Heatmap(
            z=weights.detach().float().numpy(),
            x=labels,
            y=labels,
            zmin=0.0,
            zmax=1.0,
            colorscale="Blues",
            colorbar=dict(title="weight"),
            hovertemplate=_("query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>"),
        )
    )
    fig.update_yaxes(autorange="reversed", tickfont_size=13)
    fig.update_xaxes(tickangle=-60, tickfont_size=13)
    return _layout(fig, title, 560, _("key (attended to)"), _("query (attending)"))


def head_name(layer: int, head: int) -> str:
    return f"L{layer} H{head}"


def head_score_figure(
    timeline: Timeline,
    score: str,
    selected: tuple[int, int] | None = None,
    uniform: float | None = None,
    total_steps: int | None = None,
) -> go.Figure:
    """One line per head (``L1 H2``: layer 1, head 2): ``score`` at every snapshot. The
    ``selected`` head is drawn thick; ``uniform`` (the score of evenly spread attention) is
    drawn as a dashed reference; the x axis runs to ``total_steps`` when given."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}; got {score!r}")
    values = timeline.scores[score]  # (n_snapshots, n_layer, n_head)
    steps = list(timeline.steps)
    fig = go.Figure()
    for layer in range(timeline.n_layer):
        for head in range(timeline.n_head):
            chosen = selected == (layer, head)
            color = HEAD_COLORS[(layer * timeline.n_head + head) % len(HEAD_COLORS)]
            fig.add_scatter(
                x=steps,
                y=values[:, layer, head].tolist(),
                mode="lines+markers",
                name=head_name(layer, head),
                line=dict(color=color, width=5 if chosen else 1.5),
                marker=dict(size=9 if chosen else 5),
                opacity=1.0 if chosen or selected is None else 0.55,
            )
    if uniform is not None:
        fig.add_hline(
            y=uniform,
            line=dict(color="black", dash="dash"),
            annotation_text=_("evenly spread attention"),
            annotation_position="top right",
        )
    fig.update_yaxes(range=[0, 1])
    if total_steps is not None:
        _check_total(total_steps)
        fig.update_xaxes(range=[0, total_steps])
    title = _("Each head's {score}").format(score=score_titles()[score])
    _layout(fig, title, 520, _("step"), _("mean weight"))
    fig.update_layout(
        legend=dict(orientation="h", x=0, xanchor="left", y=-0.25, yanchor="top", font_size=13),
        margin=dict(b=130),
    )
    return fig


def snapshot_title(view: SnapshotView) -> str:
    return _("Layer {layer}, head {head} at step {step}").format(
        layer=view.layer, head=view.head, step=f"{view.step:,}"
    )


def snapshot_view_figure(view: SnapshotView) -> go.Figure:
    """The attention of the head a view shows, titled with its layer, head and step."""
    return attention_snapshot_figure(view.weights, view.tokens, snapshot_title(view))


def view_score_figure(
    timeline: Timeline, view: SnapshotView, score: str, total_steps: int | None = None
) -> go.Figure:
    """``head_score_figure`` with the viewed head drawn thick and the score of evenly spread
    attention as the reference."""
    selected = (view.layer, view.head)
    return head_score_figure(timeline, score, selected, view.uniform[score], total_steps)


# ---------------------------------------------------------------------------------------------
# Samples
# ---------------------------------------------------------------------------------------------


def sample_html(sample: str, heading: str, prompt: str | None = None) -> str:
    """A model's sample as a block of escaped, pre-wrapped text; ``prompt`` (what the model
    was given) is shown in bold before it."""
    shown_prompt = f"<b>{html.escape(prompt)}</b>" if prompt else ""
    return (
        '<div style="font-size:18px;line-height:1.5">'
        f'<div style="color:#555;margin-bottom:4px">{html.escape(heading)}</div>'
        '<div style="white-space:pre-wrap;font-family:monospace;background:#f6f6f6;'
        f'padding:10px 14px;border-radius:6px">{shown_prompt}{html.escape(sample)}</div>'
        "</div>"
    )


def run_sample_html(family: str, sample: RunSample) -> str:
    """A sample of a run with a heading saying what it is (step 0: the untrained model)."""
    at = _("step {step}").format(step=f"{sample.step:,}") if sample.step else _("step 0, untrained")
    if family == "gpt":
        heading = _("Sample at {at}: the model continues the text in bold.").format(at=at)
        return sample_html(sample.text, heading, sample.prompt)
    heading = _("Fill in the blanks at {at}: the model's guesses are in [brackets].").format(at=at)
    return sample_html(sample.text, heading)


def samples_html(
    family: str, first: RunSample | None, latest: RunSample | None, next_step: int
) -> str:
    """The untrained model's sample beside the latest one, side by side where they fit; before
    the first evaluation, a line saying when (``next_step``) the next sample comes."""
    shown = [run_sample_html(family, sample) for sample in (first, latest) if sample is not None]
    if latest is None:
        shown.append(
            '<div style="color:#555;font-size:16px">'
            + html.escape(
                _("The next sample comes at the first evaluation, at step {step}.").format(
                    step=f"{next_step:,}"
                )
            )
            + "</div>"
        )
    cells = "".join(f'<div style="flex:1 1 320px;min-width:0">{cell}</div>' for cell in shown)
    return f'<div style="display:flex;flex-wrap:wrap;gap:16px">{cells}</div>'


# ---------------------------------------------------------------------------------------------
# Where the parameters are (a revealed prediction)
# ---------------------------------------------------------------------------------------------


def parameter_parts_figure(parts: dict[str, int]) -> go.Figure:
    """One bar per part of the model: its parameters and its share of all of them."""
    if not parts or sum(parts.values()) <= 0:
        raise ValueError("there are no parameters to show")
    total = sum(parts.values())
    names = [html.escape(name) for name in parts]
    figure = go.Figure(
        go.Bar(
            x=list(parts.values()),
            y=names,
            orientation="h",
            marker_color=TRAIN_COLOR,
            text=[f"{n:,} ({n / total:.0%})" for n in parts.values()],
            textposition="outside",
            cliponaxis=False,
            hovertemplate=_("%{y}: %{x:,} parameters<extra></extra>"),
        )
    )
    figure.update_yaxes(autorange="reversed")
    figure = _layout(figure, _("Where your model's parameters are"), 360, _("parameters"), "")
    figure.update_layout(margin={"r": 140})
    return figure


# ---------------------------------------------------------------------------------------------
# Captions: the choice
# ---------------------------------------------------------------------------------------------


def size_text(n_layer: int, n_head: int, n_embd: int, block_size: int) -> str:
    """A model size in words: "2 layers × 1 head, width 64, context 32"."""
    layers = ngettext("{n} layer", "{n} layers", n_layer)
    heads = ngettext("{n} head", "{n} heads", n_head)
    return _("{layers} × {heads}, width {width}, context {context}").format(
        layers=layers, heads=heads, width=n_embd, context=block_size
    )


def config_size(config: TransformerConfig) -> str:
    return size_text(config.n_layer, config.n_head, config.n_embd, config.block_size)


def preset_label(name: str) -> str:
    """A size preset as the size picker lists it: its name and its size in words."""
    preset = PRESETS[name]
    layers = ngettext("{n} layer", "{n} layers", preset["n_layer"])
    heads = ngettext("{n} head", "{n} heads", preset["n_head"])
    return _("{name}: {layers} × {heads}, width {width}, context {context}").format(
        name=name, layers=layers, heads=heads, width=preset["n_embd"], context=preset["block_size"]
    )


def corpus_caption(profile: CorpusProfile) -> str:
    """Characters, tokens, sentences and vocabulary of a corpus, and why WordPiece's
    vocabulary was raised when it was."""
    caption = _(
        "{characters} characters → {tokens} tokens, {sentences} sentences; the vocabulary has "
        "{vocabulary} tokens."
    ).format(
        characters=f"{profile.characters:,}",
        tokens=f"{profile.tokens:,}",
        sentences=f"{profile.sentences:,}",
        vocabulary=f"{profile.vocab_size:,}",
    )
    if profile.raised:
        caption += _(
            " WordPiece needs at least {requested} tokens for this text's characters, so the "
            "size was raised to that."
        ).format(requested=f"{profile.requested:,}")
    return caption


def size_warning(n_parameters: int, limits: Limits) -> str | None:
    """The warning shown before a start when the model is larger than this server trains."""
    if n_parameters <= limits.max_parameters:
        return None
    return _(
        "This server trains models of at most {limit} parameters: choose a smaller size."
    ).format(limit=f"{limits.max_parameters:,}")


def settings_caption(settings: TrainSettings, config: TransformerConfig, family: str) -> str:
    """What one step averages over and the schedule, optimizer and evaluations of a run."""
    per_example = (
        ngettext("{n} token", "{n} tokens", config.block_size)
        if family == "gpt"
        else _("one sentence")
    )
    return _(
        "Each step averages over {batch} examples of {example}. Warm-up for {warmup} steps, "
        "then cosine decay to {floor} of the peak by step {steps}; AdamW with weight decay "
        "{decay}, gradients clipped to length {clip}. An evaluation, a sample and an attention "
        "snapshot every {interval} steps."
    ).format(
        batch=settings.batch_size,
        example=per_example,
        warmup=settings.warmup_steps,
        floor=f"{settings.min_lr_ratio:.0%}",
        steps=f"{settings.max_steps:,}",
        decay=f"{settings.weight_decay:g}",
        clip=f"{settings.grad_clip:g}",
        interval=settings.eval_interval,
    )


def choice_caption(choice: Choice) -> str:
    """The size, vocabulary and settings of a choice, next to its parameter count."""
    config = choice.config
    size = _("{size}, vocabulary {vocabulary}. ").format(
        size=config_size(config), vocabulary=f"{config.vocab_size:,}"
    )
    return size + settings_caption(choice.spec.settings, config, choice.spec.family)


def run_caption(training: Training) -> str:
    """One line saying what a session's run is: model, tokenizer, size, settings, corpus."""
    choice, spec = training.choice, training.choice.spec
    settings = spec.settings
    return _(
        "This run: {family}, {tokenizer} ({vocabulary} tokens), {size}: {parameters} "
        "parameters. Learning rate {rate}, batch {batch}, {steps} steps, seed {seed}. Corpus: "
        "{corpus} ({characters} characters)."
    ).format(
        family=family_labels()[spec.family],
        tokenizer=tokenizer_labels()[spec.tokenizer].lower(),
        vocabulary=f"{choice.config.vocab_size:,}",
        size=config_size(choice.config),
        parameters=f"{choice.n_parameters:,}",
        rate=f"{settings.learning_rate:g}",
        batch=settings.batch_size,
        steps=f"{settings.max_steps:,}",
        seed=settings.seed,
        corpus=corpus_label(choice.corpus),
        characters=f"{len(choice.text):,}",
    )


# ---------------------------------------------------------------------------------------------
# Captions: a run's status and outcome
# ---------------------------------------------------------------------------------------------


def progress_text(status: Status) -> str:
    return _("Step {step} of {total}").format(step=f"{status.step:,}", total=f"{status.total:,}")


def status_metrics(status: Status) -> dict[str, str]:
    """The status as metric label -> shown value, in the order shown ("–": not known yet)."""
    return {
        _("Step"): f"{status.step:,}",
        _("Elapsed"): format_duration(status.elapsed_s),
        _("Tokens per second"): _number(status.tokens_per_s, ",.0f"),
        _("Training loss"): _number(status.train_loss, ".3f"),
        _("Validation loss"): _number(status.val_loss, ".3f"),
    }


def _number(value: float | None, spec: str) -> str:
    return format(value, spec) if value is not None else "–"


def time_left_text(status: Status, max_seconds: float) -> str:
    """The one estimate of the time left, from the recent speed: until the last step, or until
    this server's time limit stops the run when that comes first (and then it says so)."""
    if status.time_left_s is None:
        return _("Time left: estimated once the first steps are done.")
    left = format_duration(status.time_left_s)
    if not status.budget_cuts_short:
        return _("Time left: about {left}.").format(left=left)
    return _(
        "Time left: about {left}, when this server's limit of {limit} s of training per start "
        "stops the run before step {total}; Resume then continues."
    ).format(left=left, limit=f"{max_seconds:g}", total=f"{status.total:,}")


PREPARING = "Preparing the run: training the tokenizer and cutting the text into batches…"
OUTCOME_KINDS = {"finished": "success", "stopped": "info", "budget": "info", "diverged": "error"}


def run_notes(
    training: Training,
    status: Status,
    max_seconds: float,
    ahead: int | None = None,
    error: str | None = None,
) -> list[tuple[str, str]]:
    """What the page says above a run's loss curves, as (kind, text) with kind the Streamlit
    call that shows it: its place in the queue (``ahead``: runs before it, None unless it
    waits), why it failed, the run being prepared or the time left, or how it ended."""
    notes = []
    if ahead is not None:
        busy = ngettext(
            "Busy: {n} run is ahead of you. Yours starts as soon as a slot frees up.",
            "Busy: {n} runs are ahead of you. Yours starts as soon as a slot frees up.",
            ahead,
        )
        notes.append(("info", busy))
    if error:
        written = translate_written(error, current_language())  # written in English by the run
        notes.append(("error", _("The run failed: {error}").format(error=written)))
    if training.active and training.run is None and ahead is None:
        preparing = _(
            "Preparing the run: training the tokenizer and cutting the text into batches…"
        )
        notes.append(("info", preparing))
    elif training.active and ahead is None:
        notes.append(("caption", time_left_text(status, max_seconds)))
    elif not training.active and (kind := training.stop_kind()) is not None:
        reason = training.run.state.stop_reason
        notes.append((OUTCOME_KINDS[kind], outcome_message(kind, status, max_seconds, reason)))
    return notes


BUTTON_LABELS = {
    "start": ("Start training", "starting", "Starting…"),
    "stop": ("Stop", "stopping", "Stopping…"),
    "resume": ("Resume", "resuming", "Resuming…"),
    "restart": ("Restart from the same initialization", "restarting", "Restarting…"),
    "reset": ("Reset", "", ""),
}


def button_labels(phase: str) -> dict[str, str]:
    """Each button's label in a session's ``phase`` (``Training.phase``): the button whose
    request the job has not answered yet says so ("Stopping…")."""
    shown = {
        "start": (_("Start training"), _("Starting…")),
        "stop": (_("Stop"), _("Stopping…")),
        "resume": (_("Resume"), _("Resuming…")),
        "restart": (_("Restart from the same initialization"), _("Restarting…")),
        "reset": (_("Reset"), ""),
    }
    return {
        key: shown[key][1] if phase == when else shown[key][0]
        for key, (_label, when, _busy) in BUTTON_LABELS.items()
    }


# The training loop's reasons for stopping a diverging run (training/loop.py), written in
# English by the background job; the page shows them in the session's language.
_DIVERGED = re.compile(
    r"the loss became (?P<loss>\S+) at step (?P<step>\d+): training diverged\. A learning rate "
    r"of (?P<rate>\S+) is probably too high\."
)
_EXPLODED = re.compile(
    r"the loss exploded to (?P<loss>\S+) at step (?P<step>\d+) \(it started at (?P<first>\S+)\)\. "
    r"Try a lower learning rate than (?P<rate>\S+)\."
)


def stop_reason_text(reason: str | None) -> str | None:
    """The training loop's stop ``reason`` in the current language (others as they are)."""
    if reason is None:
        return None
    if found := _DIVERGED.fullmatch(reason):
        return _(
            "the loss became {loss} at step {step}: training diverged. A learning rate of {rate} "
            "is probably too high."
        ).format(**found.groupdict())
    if found := _EXPLODED.fullmatch(reason):
        return _(
            "the loss exploded to {loss} at step {step} (it started at {first}). Try a lower "
            "learning rate than {rate}."
        ).format(**found.groupdict())
    return reason


def outcome_message(kind: str, status: Status, max_seconds: float, reason: str | None) -> str:
    """What to tell the student about how a start ended (``kind`` from ``stop_kind``;
    ``reason``: the training loop's stop reason)."""
    step, total = f"{status.step:,}", f"{status.total:,}"
    messages = {
        "finished": _("Finished all {total} steps.").format(total=total),
        "stopped": _(
            "Stopped at step {step}. The model keeps what it learned: Resume continues."
        ).format(step=step),
        "budget": _(
            "Stopped at step {step} by this server's limit of {limit} s per start. The model "
            "keeps what it learned: Resume continues for as long again."
        ).format(step=step, limit=f"{max_seconds:g}"),
        "diverged": _(
            "Training stopped: {reason} The weights are no longer usable, so this model is not "
            "offered to the other lessons. Reset, choose a lower learning rate and start again."
        ).format(reason=stop_reason_text(reason)),
    }
    if kind not in messages:
        raise ValueError(f"kind must be one of {', '.join(messages)}; got {kind!r}")
    return messages[kind]


def loss_caption(vocab_size: int, restarted: bool) -> str:
    """The even-guess reference of the loss chart, and the grey dots of a restart."""
    caption = _("Guessing evenly among {vocabulary} tokens: ln V = {loss}.").format(
        vocabulary=f"{vocab_size:,}", loss=f"{even_guess_loss(vocab_size):.3f}"
    )
    if restarted:
        caption += _(" Grey dots: the attempt before the restart.")
    return caption


# ---------------------------------------------------------------------------------------------
# Captions: the attention timeline and the export
# ---------------------------------------------------------------------------------------------


def snapshot_caption(view: SnapshotView) -> str:
    """Which snapshot is shown, the head's scores in it, and the evenly spread reference."""
    names = score_names()
    return _(
        "Snapshot {number} of {count}. This head's mean weight on {scores} (evenly spread "
        "attention: {even})."
    ).format(
        number=view.index + 1,
        count=view.count,
        scores=_(", on ").join(f"{names[n]}: {view.scores[n]:.2f}" for n in SCORES),
        even=f"{view.uniform['previous']:.2f}",
    )


def strongest_head_caption(timeline: Timeline, score: str) -> str:
    """Which head scores highest on ``score`` at the latest snapshot."""
    layer, head, value = timeline.strongest_head(score)
    return _(
        "At step {step} the strongest head on this score is layer {layer}, head {head} ({value})."
    ).format(step=f"{timeline.steps[-1]:,}", layer=layer, head=head, value=f"{value:.2f}")


def export_message(name: str, trained: Sequence[str]) -> str:
    """Where a published model can be used, and the session's trained models."""
    return _(
        "“{name}” is in the model pickers of the other lessons for this session. Your models "
        "there now: {models}."
    ).format(name=name, models=", ".join(trained))


def export_commands(folder: str) -> str:
    """The shell lines that unpack a downloaded model and convert it for ``transformers``."""
    return f"unzip {folder}.zip\ntinyformers export-hf {folder} {folder}-hf"
