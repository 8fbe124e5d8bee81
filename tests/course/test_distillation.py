"""Distillation's computations: the loss against a direct formula and PyTorch's ``kl_div``, the
factor T², the student made of every other teacher layer, the measurements against the zoo's own,
and a short run in which the distilled student imitates the teacher better than the same student
trained alone."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from tinyformers.course import distillation as d
from tinyformers.hub.registry import load_shipped
from tinyformers.model.build import count_parameters
from tinyformers.model.config import BertConfig
from tinyformers.training import zoo


@pytest.fixture(scope="module")
def loaded():
    return load_shipped("bert-stories")


def random_logits(seed: int, rows: int = 6, vocab: int = 13, scale: float = 3.0):
    generator = torch.Generator().manual_seed(seed)
    return scale * torch.randn(rows, vocab, generator=generator)


# ---------------------------------------------------------------------------------------------
# The loss
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 2.5, 7.0])
def test_the_loss_is_t_squared_times_the_kl_divergence_of_the_softened_distributions(
    temperature,
) -> None:
    student, teacher = random_logits(0), random_logits(1)
    loss = d.distillation_loss(student, teacher, temperature)
    # written out: p and q are softmax(z / T); KL(p || q) = sum p (log p - log q), mean over rows
    p = torch.exp(teacher / temperature) / torch.exp(teacher / temperature).sum(-1, keepdim=True)
    q = torch.exp(student / temperature) / torch.exp(student / temperature).sum(-1, keepdim=True)
    direct = (p * (p.log() - q.log())).sum(-1).mean() * temperature**2
    torch.testing.assert_close(loss, direct)
    reference = F.kl_div(
        F.log_softmax(student / temperature, -1),
        F.log_softmax(teacher / temperature, -1),
        reduction="batchmean",
        log_target=True,
    )
    torch.testing.assert_close(loss, reference * temperature**2)


def test_the_loss_is_zero_only_when_the_student_matches_the_teacher() -> None:
    teacher = random_logits(2)
    assert d.distillation_loss(teacher.clone(), teacher, 3.0).item() == pytest.approx(0, abs=1e-6)
    shifted = teacher + 5.0  # the same distribution: softmax ignores a shift
    assert d.distillation_loss(shifted, teacher, 3.0).item() == pytest.approx(0, abs=1e-5)
    assert d.distillation_loss(random_logits(3), teacher, 3.0).item() > 0.1


def soft_gradient(temperature: float, scaled: bool) -> float:
    """Size of the soft loss's gradient with respect to the student's logits."""
    student = random_logits(4, scale=1.0)
    student = (student - student.mean(-1, keepdim=True)).requires_grad_(True)
    teacher = random_logits(5, scale=1.0)
    teacher = teacher - teacher.mean(-1, keepdim=True)
    loss = d.distillation_loss(student, teacher, temperature)
    if not scaled:
        loss = loss / temperature**2
    loss.backward()
    return student.grad.norm().item()


def test_t_squared_keeps_the_gradient_s_size_as_the_temperature_grows() -> None:
    # Without the factor, doubling a large T divides the gradient by about four ...
    unscaled = soft_gradient(8.0, scaled=False) / soft_gradient(16.0, scaled=False)
    assert unscaled == pytest.approx(4.0, rel=0.05)
    # ... with it, the gradient keeps its size (it tends to (z_s - z_t) / (N V) for large T).
    scaled = soft_gradient(8.0, scaled=True) / soft_gradient(16.0, scaled=True)
    assert scaled == pytest.approx(1.0, rel=0.05)


def test_the_gradient_is_q_minus_p_over_t_times_t_squared() -> None:
    temperature = 3.0
    student = random_logits(6).requires_grad_(True)
    teacher = random_logits(7)
    d.distillation_loss(student, teacher, temperature).backward()
    p, q = d.soften(teacher, temperature), d.soften(student.detach(), temperature)
    expected = temperature**2 * (q - p) / temperature / student.shape[0]
    torch.testing.assert_close(student.grad, expected)


def test_soften_divides_the_logits_by_t() -> None:
    logits = torch.tensor([2.0, 1.0, 0.0])
    torch.testing.assert_close(d.soften(logits, 1.0), logits.softmax(-1))
    softened = d.soften(logits, 4.0)
    torch.testing.assert_close(softened, torch.tensor([0.5, 0.25, 0.0]).softmax(-1))
    assert softened.max() < logits.softmax(-1).max()


def masked_batch(loaded, seed: int = 0):
    task = d.make_task(loaded.model, loaded.tokenizer, d.DistillSettings(train_sentences=200))
    return task.batch(8, torch.Generator().manual_seed(seed))


def test_the_objective_mixes_the_soft_and_the_hard_loss(loaded) -> None:
    batch = masked_batch(loaded)
    student = d.make_student(loaded.model)
    alone = d.DistillationObjective(student, loaded.model, 2.0, 0.0)(**batch)
    with torch.no_grad():  # α = 0: the masked-LM loss the model computes itself
        reference = student(
            batch["idx"], attention_mask=batch["attention_mask"], labels=batch["labels"]
        )
    torch.testing.assert_close(alone.loss, reference.loss)
    assert alone.soft is None
    mixed = d.DistillationObjective(student, loaded.model, 2.0, 0.25)(**batch)
    selected = batch["labels"] != -100
    with torch.no_grad():
        teacher_logits = loaded.model(batch["idx"], attention_mask=batch["attention_mask"]).logits
        student_logits = student(batch["idx"], attention_mask=batch["attention_mask"]).logits
    soft = d.distillation_loss(student_logits[selected], teacher_logits[selected], 2.0)
    torch.testing.assert_close(mixed.soft, soft)
    torch.testing.assert_close(mixed.loss, 0.25 * soft + 0.75 * reference.loss)
    only_teacher = d.DistillationObjective(student, loaded.model, 2.0, 1.0)(**batch)
    torch.testing.assert_close(only_teacher.loss, soft)


def test_a_batch_with_nothing_masked_costs_nothing(loaded) -> None:
    batch = masked_batch(loaded)
    batch["labels"] = torch.full_like(batch["labels"], -100)
    out = d.DistillationObjective(d.make_student(loaded.model), loaded.model, 2.0, 0.5)(**batch)
    assert out.loss.item() == 0.0 and out.loss.requires_grad


def test_only_the_student_is_trained() -> None:
    teacher = d.make_student(load_shipped("bert-stories").model)  # any BERT will do
    objective = d.DistillationObjective(d.make_student(teacher), teacher, 2.0, 0.5)
    assert {id(p) for p in objective.parameters()}.isdisjoint(id(p) for p in teacher.parameters())


# ---------------------------------------------------------------------------------------------
# The student
# ---------------------------------------------------------------------------------------------


def test_every_other_layer_is_kept() -> None:
    assert d.kept_layers(3) == (0, 2)
    assert d.kept_layers(12) == (0, 2, 4, 6, 8, 10)  # DistilBERT: 6 of 12
    assert d.kept_layers(2) == (0,)
    with pytest.raises(ValueError, match="no layers to leave out"):
        d.kept_layers(1)


def test_the_student_starts_as_the_teacher_s_chosen_layers(loaded) -> None:
    teacher = loaded.model
    before = {name: t.clone() for name, t in teacher.state_dict().items()}
    student = d.make_student(teacher)
    assert student.config.n_layer == 2 and student.config.n_embd == teacher.config.n_embd
    own = student.state_dict()
    for i, layer in enumerate((0, 2)):
        block = {k: v for k, v in own.items() if k.startswith(f"h.{i}.")}
        assert block
        for name, tensor in block.items():
            assert torch.equal(tensor, before[name.replace(f"h.{i}.", f"h.{layer}.", 1)]), name
    for name in (
        "wte.weight",
        "wpe.weight",
        "wse.weight",
        "ln_emb.weight",
        "mlm_head.dense.weight",
    ):
        assert torch.equal(own[name], before[name])
    assert student.mlm_head.decoder.weight is student.wte.weight  # still tied
    block = count_parameters(teacher.h[0])
    assert count_parameters(student) == count_parameters(teacher) - block
    # a copy: training the student leaves the teacher alone
    with torch.no_grad():
        for parameter in student.parameters():
            parameter.add_(1.0)
    for name, tensor in teacher.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_a_random_student_shares_nothing_with_the_teacher(loaded) -> None:
    student = d.make_student(loaded.model, "random", seed=3)
    assert not torch.equal(student.wte.weight, loaded.model.wte.weight)
    again = d.make_student(loaded.model, "random", seed=3)
    assert all(
        torch.equal(a, b) for a, b in zip(student.parameters(), again.parameters(), strict=True)
    )


def test_only_a_bert_with_two_layers_or_more_can_teach(tiny_gpt) -> None:
    with pytest.raises(ValueError, match="must be a BERT"):
        d.make_student(tiny_gpt)
    from tinyformers.model.build import build_model

    with pytest.raises(ValueError, match="no layers to leave out"):
        d.make_student(build_model(BertConfig(n_layer=1)))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"temperature": 0.5}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"alpha": 1.5}, "α"),
        ({"steps": 5_000}, "steps"),
        ({"steps": True}, "steps"),
        ({"init": "magic"}, "initialisation"),
        ({"held_out": 5}, "held-out"),
    ],
)
def test_settings_out_of_bounds_are_refused(change, message) -> None:
    with pytest.raises(ValueError, match=message):
        d.DistillSettings(**change)


# ---------------------------------------------------------------------------------------------
# Measuring, against the zoo's own measurements of the teacher
# ---------------------------------------------------------------------------------------------


def test_verb_predictions_are_the_zoo_s(loaded) -> None:
    probes = d.agreement_probes(40)
    assert d.verb_predictions(loaded.model, loaded.tokenizer, probes) == (
        zoo.masked_verb_predictions(loaded, probes)
    )


def test_the_teacher_s_masked_accuracy_is_the_zoo_s(loaded) -> None:
    (scores,) = d.measure({"teacher": loaded.model}, loaded.tokenizer, 100, probes=40)
    assert scores.masked_accuracy == pytest.approx(zoo.masked_accuracy(loaded, n=100), abs=1e-6)
    assert scores.teacher_agreement == 1.0 and scores.agreement_accuracy == 1.0
    assert len(scores.sentence_seconds) == len(d.masked_held_out(loaded.tokenizer, 100, 48))
    assert scores.parameters == count_parameters(loaded.model)


def test_training_sentences_avoid_the_held_out_ones() -> None:
    held_out = d.held_out_sentences(200)
    train = d.training_sentences(2_000, 0, held_out)
    assert not set(train) & set(held_out)
    assert train == d.training_sentences(2_000, 0, held_out)  # seeded
    assert train != d.training_sentences(2_000, 1, held_out)


# ---------------------------------------------------------------------------------------------
# A short run
# ---------------------------------------------------------------------------------------------


def test_a_short_run_the_distilled_student_agrees_more_with_its_teacher(loaded) -> None:
    """Tiny setup: 30 steps per student on 400 sentences, T = 4, α = 0.9, seed 0. Agreement
    with the teacher: 0.60 distilled against 0.55 alone (seeds 0 to 3: margins of 0.046 to
    0.062). The two students' masked-LM accuracies differ by no more than noise in either
    direction, so only agreement is asserted."""
    before = {name: t.clone() for name, t in loaded.model.state_dict().items()}
    updates = []
    settings = d.DistillSettings(temperature=4.0, alpha=0.9, steps=30, train_sentences=400)
    result = d.run_students(loaded.model, loaded.tokenizer, settings, updates.append)
    names = [s.name for s in result.scores]
    assert names == [d.TEACHER, d.UNTRAINED, "distilled student", "student trained alone"]
    teacher, untrained, distilled, alone = result.scores
    assert distilled.teacher_agreement > alone.teacher_agreement + 0.02
    assert distilled.parameters == alone.parameters < teacher.parameters
    assert {u.student for u in updates} == {d.DISTILLED, d.ALONE}
    assert [p.step for p in result.histories[d.ALONE]][-1] == 30
    assert result.stop_reason is None and result.kept == (0, 2)
    for name, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert loaded.model.training is False


def test_a_stop_ends_the_run_after_the_first_student(loaded) -> None:
    settings = d.DistillSettings(steps=30, train_sentences=400, held_out=20)
    result = d.run_students(loaded.model, loaded.tokenizer, settings, lambda update: False)
    assert result.stop_reason == "stopped" and list(result.students) == [d.DISTILLED]
    assert [s.name for s in result.scores][-1] == "distilled student"


# ---------------------------------------------------------------------------------------------
# The masked word, and the prediction questions
# ---------------------------------------------------------------------------------------------


def test_the_masked_word_is_the_typed_mask_or_the_last_verb(loaded) -> None:
    tok = loaded.tokenizer
    typed = d.masked_word(tok, "the dogs near the cat [MASK] .", 48)
    assert typed.typed and typed.tokens[typed.position] == "[MASK]" and typed.answer is None
    chosen = d.masked_word(tok, "the cats see the dog and run .", 48)
    assert not chosen.typed and chosen.answer == "run"
    assert chosen.tokens[chosen.position] == "[MASK]" and chosen.ids.count(tok.mask_id) == 1
    with pytest.raises(ValueError, match="no word to mask"):
        d.masked_word(tok, "[SEP]", 48)


def test_distributions_soften_every_model_at_the_chosen_t(loaded) -> None:
    word = d.masked_word(loaded.tokenizer, d.DEFAULT_SENTENCE, 48)
    student = d.make_student(loaded.model)
    found = d.distributions({"t": loaded.model, "s": student}, loaded.tokenizer, word, 3.0, 4)
    with torch.no_grad():
        z = loaded.model(torch.tensor([word.ids])).logits[0, word.position]
    top = z.topk(4).indices
    assert found.tokens == loaded.tokenizer.display_tokens(top.tolist())
    assert found.at_one["t"] == pytest.approx(z.softmax(-1)[top].tolist())
    assert found.at_t["t"] == pytest.approx((z / 3.0).softmax(-1)[top].tolist())
    assert found.top["t"] == found.tokens[0]


def test_predict_the_top_probability_falls_at_a_higher_temperature(loaded) -> None:
    word = d.masked_word(loaded.tokenizer, "the cats [MASK] happy .", 48)
    hot = d.predict_top_probability(loaded, word, d.DistillSettings(temperature=4.0))
    assert set(hot.choices) == {d.UP, d.DOWN, d.SAME}
    revealed = hot.reveal()
    assert revealed.answer == d.DOWN and revealed.values["token"] == "are"
    assert float(revealed.values["at_one"]) > 0.9 > 0.1 > float(revealed.values["at_t"])
    same = d.predict_top_probability(loaded, word, d.DistillSettings(temperature=1.0))
    assert same.reveal().answer == d.SAME


def test_predict_the_student_s_size(loaded) -> None:
    prediction = d.predict_student_size(loaded)
    assert prediction.values["teacher_parameters"] == 709_701
    revealed = prediction.reveal()
    block = count_parameters(loaded.model.h[0])
    assert revealed.answer == 709_701 - block
    assert revealed.values["rest"] + 3 * block == 709_701


def test_predict_the_student_s_top_word(loaded) -> None:
    word = d.masked_word(loaded.tokenizer, "the cats [MASK] happy .", 48)
    same_as_teacher = {d.DISTILLED: copy.deepcopy(loaded.model)}
    prediction = d.predict_student_top(loaded, word, same_as_teacher)
    assert prediction.choices[0] == "are" and prediction.choices[-1] == d.OTHER_WORD
    assert prediction.values["student"] == "the distilled student you trained"
    assert prediction.reveal().answer == "are"
    before = d.predict_student_top(loaded, word, {d.UNTRAINED: d.make_student(loaded.model)})
    assert before.reveal().answer == "are"  # layers 0 and 2 still agree on this one
    with pytest.raises(ValueError, match="no student"):
        d.predict_student_top(loaded, word, {})
