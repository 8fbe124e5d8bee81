"""Figures for the alignment lesson: the student's answer and its verb-flipped twin under every
model, the run's curves (the losses of instruction tuning, the reward model and DPO; reward and
KL over the REINFORCE steps), and what the run measured.

Pure functions: Plotly figures, table rows (lists of dicts for ``st.dataframe``) and the texts
of the page's captions; every piece of text that reaches a figure is html-escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tinyformers.course.alignment import (
    BASE_NAME,
    DPO_NAME,
    RL_NAME,
    SFT_NAME,
    STAGES,
    AlignmentResult,
    AlignSettings,
    AnswerComparison,
    ModelScores,
    StageUpdate,
    follows_rule,
    instruction,
)
from tinyformers.figures.common import finite, grouped_layout
from tinyformers.i18n import N_, _

HEIGHT = 420  # px: the chart beside the controls fits the first screen
COLORS = {BASE_NAME: "#9e9e9e", SFT_NAME: "#1f77b4", DPO_NAME: "#d62728", RL_NAME: "#2ca02c"}
STAGE_NAMES = {
    "sft": N_("instruction tuning (cross-entropy)"),
    "reward": N_("reward model (Bradley–Terry)"),
    "dpo": "DPO",
    "rl": "REINFORCE + KL",
}
RATES = {"follow_rate": N_("grammar accepts"), "on_topic_rate": N_("names the animal")}


def _color(name: str) -> str:
    return COLORS.get(name, "#333333")


# ---------------------------------------------------------------------------------------------
# The student's answer
# ---------------------------------------------------------------------------------------------


def answer_figure(found: AnswerComparison) -> go.Figure:
    """log π(answer | instruction) of the student's answer and of its flipped twin, one group of
    bars per model."""
    figure = go.Figure()
    labels = [_("your answer")] + ([_("verb flipped")] if found.other is not None else [])
    for name, (mine, other) in found.log_probs.items():
        values = [mine] + ([other] if found.other is not None else [])
        figure.add_trace(
            go.Bar(
                x=labels,
                y=[finite(v) for v in values],
                name=html.escape(name),
                marker_color=_color(name),
                text=[f"{v:.1f}" for v in values],
                textposition="outside",
                cliponaxis=False,
                hovertemplate=f"{html.escape(name)}<br>%{{x}}: %{{y:.2f}}<extra></extra>",
            )
        )
    figure.update_yaxes(title=_("log-probability of the answer"))
    title = _("Your answer to “{instruction}”").format(instruction=instruction(found.topic))
    return grouped_layout(figure, title, HEIGHT)


def answer_caption(found: AnswerComparison) -> str:
    """The grammar's verdicts and, once there is one, the reward model's scores."""
    verdict = (
        _("the grammar accepts it")
        if found.verdict == "ok"
        else _("the grammar: {verdict}").format(verdict=found.verdict)
    )
    topic = (
        _("it names the {topic}") if found.on_topic else _("it does not name the {topic}")
    ).format(topic=found.topic)
    parts = [
        _("Your answer “{sentence}”: {verdict}; {topic}.").format(
            sentence=found.sentence, verdict=verdict, topic=topic
        )
    ]
    if found.other is not None:
        other = (
            _("accepted")
            if found.other_verdict == "ok"
            else _("rejected ({verdict})").format(verdict=found.other_verdict)
        )
        parts.append(
            _("Flipped: “{sentence}”, {verdict}.").format(sentence=found.other, verdict=other)
        )
    if found.rewards is not None:
        mine, other = found.rewards
        if other is not None:
            scored = _(
                "The reward model scores your answer {mine} and the flipped one {other}."
            ).format(mine=f"{mine:.2f}", other=f"{other:.2f}")
        else:
            scored = _("The reward model scores your answer {mine}.").format(mine=f"{mine:.2f}")
        parts.append(scored)
    else:
        parts.append(_("The reward model scores it once a run has trained one."))
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# The run, live
# ---------------------------------------------------------------------------------------------


def losses_chart(stages: Mapping[str, Sequence[StageUpdate]]) -> go.Figure:
    """The training loss of instruction tuning, the reward model and DPO against step."""
    figure = go.Figure()
    colors = {"sft": COLORS[SFT_NAME], "reward": "#9467bd", "dpo": COLORS[DPO_NAME]}
    for stage in ("sft", "reward", "dpo"):
        updates = stages.get(stage, [])
        figure.add_trace(
            go.Scatter(
                x=[u.step for u in updates],
                y=[finite(u.values["loss"]) for u in updates],
                name=html.escape(_(STAGE_NAMES[stage])),
                mode="lines",
                line={"color": colors[stage], "width": 3},
                hovertemplate=_("step %{x}<br>loss %{y:.3f}") + "<extra></extra>",
            )
        )
    figure.add_hline(y=math.log(2), line_dash="dot", line_color="#777777")
    figure.update_xaxes(title=_("step"))
    figure.update_yaxes(title=_("training loss"), rangemode="tozero")
    title = _("Losses (dotted: log 2, where DPO and Bradley–Terry start)")
    return grouped_layout(figure, title, HEIGHT)


def rl_chart(updates: Sequence[StageUpdate]) -> go.Figure:
    """Mean reward and mean KL to the reference over the REINFORCE steps, one panel each."""
    figure = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.14,
        subplot_titles=(_("mean reward of the batch"), _("KL(policy ‖ reference) per answer")),
    )
    steps = [u.step for u in updates]
    for column, key, color in ((1, "reward", COLORS[RL_NAME]), (2, "kl", "#ff7f0e")):
        figure.add_trace(
            go.Scatter(
                x=steps,
                y=[finite(u.values[key]) for u in updates],
                name=key,
                mode="lines+markers",
                line={"color": color, "width": 3},
                showlegend=False,
                hovertemplate=_("step %{x}") + f"<br>{key} %{{y:.3f}}<extra></extra>",
            ),
            row=1,
            col=column,
        )
    figure.update_xaxes(title=_("step"))
    figure.update_yaxes(rangemode="tozero", row=1, col=2)
    return grouped_layout(figure, _("REINFORCE + KL: reward and KL over steps"), HEIGHT)


def stage_steps(settings: AlignSettings) -> dict[str, int]:
    return {
        "sft": settings.sft_steps,
        "reward": settings.reward_steps,
        "dpo": settings.dpo_steps,
        "rl": settings.rl_steps,
    }


def progress_text(
    stages: Mapping[str, Sequence[StageUpdate]], settings: AlignSettings
) -> tuple[float, str]:
    """The share of the run's steps done and what it is doing."""
    totals = stage_steps(settings)
    if not stages:
        return 0.0, _("Starting: instruction tuning comes first…")
    done = sum(updates[-1].step for updates in stages.values())
    stage = [s for s in STAGES if s in stages][-1]
    last = stages[stage][-1].step
    text = _("{stage}: step {step} of {steps}").format(
        stage=_(STAGE_NAMES[stage]), step=last, steps=totals[stage]
    )
    if stage == "sft" and last == totals["sft"]:
        text += _("; sampling the preference pairs…")
    return min(1.0, done / max(1, sum(totals.values()))), text


# ---------------------------------------------------------------------------------------------
# What the run measured
# ---------------------------------------------------------------------------------------------


def rates_figure(scores: Sequence[ModelScores]) -> go.Figure:
    """Per model: the share of sampled answers the grammar accepts and the share naming the
    animal asked for."""
    figure = go.Figure()
    labels = [_(label) for label in RATES.values()]
    for s in scores:
        values = [getattr(s, key) for key in RATES]
        figure.add_trace(
            go.Bar(
                x=labels,
                y=values,
                name=html.escape(s.name),
                marker_color=_color(s.name),
                text=[f"{v:.0%}" for v in values],
                textposition="outside",
                cliponaxis=False,
                hovertemplate=f"{html.escape(s.name)}<br>%{{x}}: %{{y:.1%}}<extra></extra>",
            )
        )
    figure.update_yaxes(range=[0, 1.12], tickformat=".0%")
    return grouped_layout(figure, _("Sampled answers to the instructions"), 440)


def score_rows(result: AlignmentResult) -> list[dict[str, object]]:
    """One row per model: the rates, the reward, the KL to the reference, the held-out loss and
    the alignment tax (that loss minus gpt-stories')."""
    rows = []
    for s in result.scores:
        tax = result.tax(s.name)
        rows.append(
            {
                _("model"): s.name,
                _("grammar accepts"): round(s.follow_rate, 4),
                _("names the animal"): round(s.on_topic_rate, 4),
                _("mean reward"): None if s.mean_reward is None else round(s.mean_reward, 3),
                _("KL to the reference"): round(s.mean_kl, 3),
                _("held-out LM loss"): round(s.lm_loss, 4),
                _("alignment tax"): None if tax is None else round(tax, 4),
            }
        )
    return rows


def sample_rows(result: AlignmentResult, topic: str, shown: int = 4) -> list[dict[str, str]]:
    """The first ``shown`` answers of every model to one topic's instruction (the same seed for
    every model), marked by the grammar's verdict."""
    rows = []
    for s in result.scores:
        row = {_("model"): s.name}
        for n, text in enumerate(s.samples.get(topic, [])[:shown], start=1):
            row[_("answer {n}").format(n=n)] = f"{'✓' if follows_rule(text) else '✗'} {text}"
        rows.append(row)
    return rows


def summary_text(result: AlignmentResult) -> str | None:
    """The run in a few numbers, or None when DPO did not finish (a stopped run)."""
    tuned, dpo = result.score(SFT_NAME), result.score(DPO_NAME)
    if tuned is None or dpo is None or result.reward_accuracy is None:
        return None
    text = _(
        "The grammar accepts {tuned} of the instruction-tuned model's answers and {dpo} after "
        "DPO. The reward model ranks {accuracy} of {held_out} held-out pairs right ({train_accuracy} "
        "of the {train} it trained on). Alignment tax on held-out stories: {sft_tax} nats per "
        "token for instruction tuning, {dpo_tax} after DPO"
    ).format(
        tuned=f"{tuned.follow_rate:.0%}",
        dpo=f"{dpo.follow_rate:.0%}",
        accuracy=f"{result.reward_accuracy:.0%}",
        held_out=result.held_out_pairs,
        train_accuracy=f"{result.reward_train_accuracy:.0%}",
        train=result.train_pairs,
        sft_tax=f"{result.tax(SFT_NAME):+.3f}",
        dpo_tax=f"{result.tax(DPO_NAME):+.3f}",
    )
    rl = result.score(RL_NAME)
    if rl is not None:
        text += _(", {tax} after REINFORCE + KL ({accepted} accepted)").format(
            tax=f"{result.tax(RL_NAME):+.3f}", accepted=f"{rl.follow_rate:.0%}"
        )
    return text + "."


def settings_text(result: AlignmentResult) -> str:
    s = result.settings
    return _(
        "Run: {sft} instruction-tuning steps, {reward} reward-model steps, {dpo} DPO steps "
        "(β = {beta}), {rl} REINFORCE steps (KL weight {kl}), batch {batch}, seed {seed}; "
        "{samples} answers per topic measured, held-out loss on {stories} stories."
    ).format(
        sft=s.sft_steps,
        reward=s.reward_steps,
        dpo=s.dpo_steps,
        beta=f"{s.beta:g}",
        rl=s.rl_steps,
        kl=f"{s.kl_weight:g}",
        batch=s.batch_size,
        seed=s.seed,
        samples=s.eval_samples,
        stories=s.held_out_stories,
    )
