"""Alignment: gpt-stories is instruction-tuned, then aligned to a preference (answers the stories
grammar accepts) with a Bradley–Terry reward model, DPO and REINFORCE with a KL penalty, all in
the background; the student's own answer is scored by every model and the reward model."""

from __future__ import annotations

from functools import partial

import questions
import streamlit as st
import widgets
from widgets import BIND, plain

from tinyformers.course import alignment as course
from tinyformers.course.alignment import BASE, AlignmentResult, AlignSettings
from tinyformers.figures import alignment as figs
from tinyformers.hub.registry import LoadedModel, shipped_names
from tinyformers.i18n import _
from tinyformers.training.jobs import FINISHED, STOPPED, Snapshot

SLUG = "alignment"
JOB_KEY = "al-job"
RUN_KEY = "al-run"  # the settings of the job under JOB_KEY
TOPICS = {topic: f"the {topic}" for topic in course.TOPICS}


def answer_controls(loaded: LoadedModel) -> tuple[str, str | None]:
    """The topic of the instruction and the student's answer (None, with a message, if unusable)."""
    topic = widgets.labelled_select(_("Tell a story about"), TOPICS, "al-topic")
    text = widgets.sentence_input(
        _("Your answer (one sentence)"),
        course.DEFAULT_SENTENCE,
        "al-answer",
        loaded.tokenizer,
        max_tokens=3 * course.MAX_ANSWER_TOKENS,
    )
    if text is not None and not text.strip():
        st.info(_("Type an answer: one sentence of the stories language."))
        return topic, None
    return topic, text


def show_answer(loaded: LoadedModel, topic: str, text: str, result) -> None:
    """The answer and its flipped twin under every model, and the reward model's scores."""
    models = {course.BASE_NAME: loaded.model}
    reward_model = None
    if result is not None:
        models |= result.models
        reward_model = result.reward_model
    try:
        found = course.compare_answers(models, loaded.tokenizer, topic, text, reward_model)
    except ValueError as err:
        st.info(plain(err))
        return
    widgets.chart(figs.answer_figure(found), "al-answer-chart")
    st.caption(plain(figs.answer_caption(found)))


def run_controls() -> AlignSettings | None:
    """The steps of DPO and REINFORCE, β, the KL weight and the seed of a run."""
    most = min(course.MAX_STEPS, widgets.server_limits().max_steps)
    row = st.container(horizontal=True, vertical_alignment="bottom")
    options = {"bind": BIND, "width": 160}
    dpo_steps = row.number_input(
        _("DPO steps"), 1, most, min(AlignSettings.dpo_steps, most), 10, key="al-dpo", **options
    )
    beta = row.number_input(
        _("DPO's β"), 0.01, 10.0, AlignSettings.beta, 0.1, key="al-beta", **options
    )
    rl_steps = row.number_input(
        _("REINFORCE steps"),
        1,
        most,
        min(AlignSettings.rl_steps, most),
        10,
        key="al-rl",
        **options,
    )
    kl_weight = row.number_input(
        _("KL weight"), 0.0, 10.0, AlignSettings.kl_weight, 0.05, key="al-kl", **options
    )
    with row.container(width=160):
        seed = widgets.seed_control(key="al-seed")
    try:
        return AlignSettings(
            dpo_steps=int(dpo_steps),
            beta=float(beta),
            rl_steps=int(rl_steps),
            kl_weight=float(kl_weight),
            seed=seed,
        )
    except ValueError as err:
        st.error(_("Cannot train with these settings: {reason}").format(reason=plain(err)))
        return None


def start_run(settings: AlignSettings) -> None:
    base = widgets.shipped_model(BASE)
    st.session_state[RUN_KEY] = settings
    work = partial(course.run_alignment, base.model, base.tokenizer, settings)
    widgets.start_job(JOB_KEY, work, name="alignment")


def finished_result() -> AlignmentResult | None:
    for status in (FINISHED, STOPPED):
        result = widgets.job_result(JOB_KEY, status, AlignmentResult)
        if result is not None:
            return result
    return None


def render_progress(snapshot: Snapshot) -> None:
    settings: AlignSettings | None = st.session_state.get(RUN_KEY)
    if settings is None:
        return
    stages = course.updates_of(snapshot.updates)
    if snapshot.active:
        st.progress(*figs.progress_text(stages, settings))
    if stages:
        widgets.chart(figs.losses_chart(stages), "al-losses-chart")
    if stages.get("rl"):
        widgets.chart(figs.rl_chart(stages["rl"]), "al-rl-chart")
    if snapshot.status == STOPPED:
        st.info(_("Stopped. The models trained so far are measured below."))


def show_results(result: AlignmentResult | None, topic: str) -> None:
    if result is None:
        st.info(_("No run yet: press “Align gpt-stories” above."))
        return
    if result.reward_accuracy is not None:
        widgets.metric_row(
            {
                _("preference pairs (train / held out)"): f"{result.train_pairs} / "
                f"{result.held_out_pairs}",
                _("reward model, held-out pairs ranked right"): f"{result.reward_accuracy:.0%}",
            }
        )
    widgets.chart(figs.rates_figure(result.scores), "al-rates-chart")
    widgets.table(figs.score_rows(result), percent=(_("grammar accepts"), _("names the animal")))
    st.markdown(
        _("**Answers to “{instruction}”** (✓: the grammar accepts it)").format(
            instruction=plain(course.instruction(topic))
        )
    )
    st.dataframe(figs.sample_rows(result, topic), hide_index=True)
    summary = figs.summary_text(result)
    if summary is not None:
        st.caption(plain(summary))
    else:
        st.warning(_("The run stopped before DPO had trained; train again to compare."))
    st.caption(figs.settings_text(result))


lesson = widgets.lesson_header(SLUG)
if BASE not in shipped_names():
    st.error(
        _("{model} is not shipped in models/, so there is no model to align.").format(model=BASE)
    )
    st.stop()
base = widgets.shipped_model(BASE)
result = finished_result()
controls, figure_column = st.columns([1, 2])
with controls:
    topic, answer = answer_controls(base)
with figure_column:
    if answer is not None:
        show_answer(base, topic, answer, result)

widgets.lesson_section(lesson, "setup", course.lesson_values(AlignSettings()))
widgets.lesson_section(lesson, "pairs")
widgets.lesson_section(lesson, "reward")
widgets.lesson_section(lesson, "dpo")
widgets.lesson_section(lesson, "rl")
widgets.lesson_section(lesson, "train")
settings = run_controls()
if st.button(_("Align gpt-stories"), key="al-train", type="primary", disabled=not settings):
    start_run(settings)
widgets.job_progress(JOB_KEY, render_progress)
widgets.lesson_section(lesson, "results")
show_results(result, topic)

beta = settings.beta if settings is not None else AlignSettings.beta
seed = settings.seed if settings is not None else 0
questions.ask(lesson, loaded=base, topic=topic, sentence=answer, beta=beta, seed=seed)
