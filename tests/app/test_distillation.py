"""Headless tests of the distillation page: the masked word's distributions and the student's size
are what the core computes, a run trains both students in the background and fills the table
with its measurements, and bad input gets a message."""

from __future__ import annotations

import pytest
import torch

from tests.page_checks import caption, english_leftovers, rerun
from tests.page_order import first_chart, index_after_header, is_subheader, strip_keys
from tests.plotly_json import chart, decode, title
from tests.test_user_text import assert_no_markup
from tinyformers.course import distillation as course
from tinyformers.figures import distillation as figs
from tinyformers.hub.registry import load_shipped
from tinyformers.model.build import count_parameters
from tinyformers.text.display import plain

PAGE = "app_pages/distillation.py"


@pytest.fixture(scope="module")
def teacher():
    return load_shipped("bert-stories")


def bars(spec: dict, axis: str) -> dict[str, list[float]]:
    return {t["name"]: decode(t["y"]).tolist() for t in spec["data"] if t["xaxis"] == axis}


def test_the_page_opens_on_the_controls_beside_the_masked_word(page, teacher) -> None:
    assert strip_keys(page) == ["ds-temperature", "ds-sentence"]
    assert index_after_header(page, is_subheader) == 1  # the lesson text follows the strip
    spec = first_chart(page)
    assert title(spec).startswith("The masked word")
    word = course.masked_word(teacher.tokenizer, course.DEFAULT_SENTENCE, 48)
    student = course.make_student(teacher.model)
    models = {course.TEACHER: teacher.model, course.UNTRAINED: student}
    expected = course.distributions(models, teacher.tokenizer, word, 2.0)
    for axis, values in (("x", expected.at_one), ("x2", expected.at_t)):
        got = bars(spec, axis)
        assert set(got) == set(values)
        for name in values:
            assert got[name] == pytest.approx(values[name], abs=1e-6)
    assert caption(page, plain("Masked: the [MASK] you typed at position 7"))


def test_the_setup_names_the_kept_layers(page, teacher) -> None:
    text = " ".join(m.value for m in page.markdown).replace("\n", " ")
    assert f"with 3 layers and {count_parameters(teacher.model):,} parameters" in text
    assert "only 2 layers" in text and "layers 0, 2 (counting from zero)" in text
    assert any("No run yet" in info.value for info in page.info)


def test_a_new_temperature_softens_the_right_panel(fresh, teacher) -> None:
    at = fresh
    at.number_input(key="ds-temperature").set_value(8.0)
    at.text_input(key="ds-sentence").set_value("the cats are happy .")
    rerun(at)
    spec = first_chart(at)
    assert [a["text"] for a in spec["layout"]["annotations"]] == ["T = 1", "T = 8"]
    word = course.masked_word(teacher.tokenizer, "the cats are happy .", 48)
    with torch.no_grad():
        z = teacher.model(torch.tensor([word.ids])).logits[0, word.position]
    top = z.topk(course.TOP_K).indices
    expected = (z / 8.0).softmax(-1)[top].tolist()
    assert bars(spec, "x2")[course.TEACHER] == pytest.approx(expected, abs=1e-6)
    assert plain("(it held 'are'") in caption(at, plain("Masked:"))


def test_a_run_trains_both_students_and_fills_the_table(fresh) -> None:
    at = fresh
    at.number_input(key="ds-steps").set_value(10)
    rerun(at)
    at.button(key="ds-train").click().run()
    assert not at.exception, at.exception
    job = at.session_state["ds-job"]
    job.join(600)
    assert job.status == "finished", (job.status, job.error_details)
    rerun(at)
    result = job.result
    assert [h[-1].step for h in result.histories.values()] == [10, 10]
    frames = [d.value for d in at.dataframe if "agrees with the teacher" in d.value.columns]
    assert frames[0].to_dict("records") == figs.score_rows(result.scores)
    assert chart(at, "What each model got right")
    assert caption(at, "The student has") == figs.summary_text(result)
    assert chart(at, "Training the two students")
    names = {t["name"] for t in first_chart(at)["data"]}
    assert names == {course.TEACHER, "distilled student", "student trained alone"}


def test_bad_input_is_a_message_not_a_crash(fresh) -> None:
    at = fresh
    at.text_input(key="ds-sentence").set_value("   ").run()
    assert not at.exception and at.warning
    at.text_input(key="ds-sentence").set_value("[SEP]").run()
    assert not at.exception
    assert any("no word to mask" in info.value for info in at.info)


def test_a_typed_sentence_reaches_the_page_as_text(fresh) -> None:
    at = fresh
    at.text_input(key="ds-sentence").set_value("**pwned** <b>pwned</b> [MASK] $pwned$ .").run()
    assert not at.exception, at.exception
    assert_no_markup(at)
    assert first_chart(at)


def test_the_page_in_russian_has_no_english_left(open_link) -> None:
    at = open_link(PAGE, {"lang": "ru"})
    assert not at.exception
    assert english_leftovers(at) == []
