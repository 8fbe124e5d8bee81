"""Headless tests of the alignment page: the student's answer and its flipped twin are scored as
the core scores them, a run aligns gpt-stories in the background and fills the results with its
measurements, and bad input gets a message."""

from __future__ import annotations

import pytest

from tests.page_checks import caption, english_leftovers, rerun
from tests.page_order import first_chart, index_after_header, is_subheader, strip_keys
from tests.plotly_json import chart, decode, title
from tests.test_user_text import assert_no_markup
from tinyformers.course import alignment as course
from tinyformers.figures import alignment as figs
from tinyformers.hub.registry import load_shipped
from tinyformers.text.display import plain

PAGE = "app_pages/alignment.py"


@pytest.fixture(scope="module")
def base():
    return load_shipped("gpt-stories")


def bars(spec: dict) -> dict[str, list[float]]:
    return {t["name"]: decode(t["y"]).tolist() for t in spec["data"]}


def test_the_page_opens_on_the_answer_beside_its_scores(page, base) -> None:
    assert strip_keys(page) == ["al-topic", "al-answer"]
    assert index_after_header(page, is_subheader) == 1  # the lesson text follows the strip
    spec = first_chart(page)
    assert title(spec) == "Your answer to “tell a story about the cat :”"
    found = course.compare_answers(
        {course.BASE_NAME: base.model}, base.tokenizer, "cat", course.DEFAULT_SENTENCE
    )
    assert bars(spec)[course.BASE_NAME] == pytest.approx(list(found.log_probs["gpt-stories"]))
    text = caption(page, plain("Your answer “the cat sees the small dog .”"))
    assert "the grammar accepts it" in text and "once a run has trained one" in text
    assert any("No run yet" in info.value for info in page.info)


def test_the_setup_names_the_instruction(page) -> None:
    text = " ".join(m.value for m in page.markdown).replace("\n", " ")
    assert "The instruction is “tell a story about the {topic} :”".format(topic="cat") in text
    settings = course.AlignSettings()
    count = course.sft_example_count(settings)
    assert f"{settings.sft_steps} supervised steps on {count} instruction → answer pairs" in text


def test_another_topic_and_answer_change_the_chart(fresh, base) -> None:
    at = fresh
    at.selectbox(key="al-topic").set_value("dog")
    at.text_input(key="al-answer").set_value("the dogs runs .")
    rerun(at)
    spec = first_chart(at)
    assert title(spec) == "Your answer to “tell a story about the dog :”"
    found = course.compare_answers({"b": base.model}, base.tokenizer, "dog", "the dogs runs .")
    assert bars(spec)[course.BASE_NAME] == pytest.approx(list(found.log_probs["b"]))
    assert found.other == "the dogs run ."
    assert plain("the grammar: verb 'runs'") in caption(at, plain("Your answer “the dogs runs .”"))


def test_a_run_aligns_the_model_and_fills_the_results(fresh) -> None:
    at = fresh
    at.number_input(key="al-dpo").set_value(2)
    at.number_input(key="al-rl").set_value(2)
    rerun(at)
    at.button(key="al-train").click().run()
    assert not at.exception, at.exception
    job = at.session_state["al-job"]
    job.join(600)
    assert job.status == "finished", (job.status, job.error_details)
    rerun(at)
    result = job.result
    frames = [d.value for d in at.dataframe if "alignment tax" in d.value.columns]
    assert frames[0].to_dict("records") == figs.score_rows(result)
    assert chart(at, "Sampled answers to the instructions")
    assert chart(at, "REINFORCE + KL: reward and KL over steps")
    assert caption(at, "The grammar accepts") == plain(figs.summary_text(result))
    names = {t["name"] for t in first_chart(at)["data"]}
    assert names == {course.BASE_NAME, course.SFT_NAME, course.DPO_NAME, course.RL_NAME}
    assert "The reward model scores your answer" in caption(at, plain("Your answer “"))


def test_bad_input_is_a_message_not_a_crash(fresh) -> None:
    at = fresh
    at.text_input(key="al-answer").set_value("   ").run()
    assert not at.exception and (at.warning or at.info)
    at.number_input(key="al-beta").set_value(0.01).run()
    assert not at.exception


def test_a_typed_answer_reaches_the_page_as_text(fresh) -> None:
    at = fresh
    at.text_input(key="al-answer").set_value("**pwned** <b>pwned</b> $pwned$ .").run()
    assert not at.exception, at.exception
    assert_no_markup(at)
    assert first_chart(at)


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []
