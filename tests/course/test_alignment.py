"""Alignment's computations: the DPO and Bradley–Terry losses against direct formulas, the
direction of DPO's gradient, answer log-probabilities against a token-by-token computation,
the KL penalty against PyTorch's ``kl_div``, the language-model loss against the model's own,
and a short seeded run in which the reward model beats chance on held-out pairs, DPO raises the
share of answers the grammar accepts and the alignment tax is measured."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from tinyformers.course import alignment as al
from tinyformers.hub.registry import load_shipped
from tinyformers.text.corpora import stories

TINY = al.AlignSettings(
    sft_steps=30,
    pairs_per_topic=8,
    reward_steps=40,
    dpo_steps=30,
    rl_steps=4,
    eval_samples=8,
    held_out_stories=10,
    seed=2,
)


@pytest.fixture(scope="module")
def loaded():
    return load_shipped("gpt-stories")


@pytest.fixture(scope="module")
def run(loaded):
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    updates = []
    result = al.run_alignment(loaded.model, loaded.tokenizer, TINY, updates.append)
    after = loaded.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the shipped model is unchanged
    assert not loaded.model.training
    return result, updates


def values(seed: int, n: int = 7, scale: float = 4.0) -> torch.Tensor:
    return scale * torch.randn(n, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------
# The losses
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_the_dpo_loss_is_the_written_out_formula(beta) -> None:
    pw, pl, rw, rl = values(0), values(1), values(2), values(3)
    loss = al.dpo_loss(pw, pl, rw, rl, beta)
    margin = beta * ((pw - rw) - (pl - rl))
    direct = torch.log(1 + torch.exp(-margin)).mean()  # −log σ(m) = log(1 + e^(−m))
    torch.testing.assert_close(loss, direct)
    as_bce = F.binary_cross_entropy_with_logits(margin, torch.ones_like(margin))
    torch.testing.assert_close(loss, as_bce)


def test_the_dpo_loss_is_log_two_when_the_policy_is_the_reference() -> None:
    rw, rl = values(4), values(5)
    loss = al.dpo_loss(rw.clone(), rl.clone(), rw, rl, 0.7)
    assert loss.item() == pytest.approx(math.log(2))


def test_the_dpo_gradient_raises_the_preferred_answer_and_lowers_the_rejected_one() -> None:
    pw, pl = values(6).requires_grad_(True), values(7).requires_grad_(True)
    al.dpo_loss(pw, pl, values(8), values(9), 0.5).backward()
    assert (pw.grad < 0).all() and (pl.grad > 0).all()  # descent raises log π(y_w), lowers y_l
    torch.testing.assert_close(pw.grad, -pl.grad)


def test_a_dpo_step_on_the_model_widens_the_margin(loaded) -> None:
    tok = loaded.tokenizer
    good = tuple(tok.encode(" the cat is tall ."))
    bad = tuple(tok.encode(" the cat are tall ."))
    pair = al.Pair("cat", good, bad)
    policy = copy.deepcopy(loaded.model).train()
    optimizer = torch.optim.SGD(policy.parameters(), lr=1e-3)

    def margin(model) -> float:
        with torch.no_grad():
            lp = al.answer_log_probs(model, tok, al.instruction("cat"), [good, bad])
        return (lp[0] - lp[1]).item()

    start = margin(policy)
    al.pair_dpo_loss(policy, loaded.model, tok, [pair], 0.5).backward()
    optimizer.step()
    assert margin(policy) > start


def test_the_bradley_terry_loss_is_the_written_out_formula() -> None:
    chosen, rejected = values(10), values(11)
    loss = al.bradley_terry_loss(chosen, rejected)
    win = torch.exp(chosen) / (torch.exp(chosen) + torch.exp(rejected))
    torch.testing.assert_close(loss, -torch.log(win).mean())
    assert al.bradley_terry_loss(chosen, chosen).item() == pytest.approx(math.log(2))


def test_reinforce_raises_answers_above_the_mean_reward_and_lowers_those_below() -> None:
    log_probs = values(12, n=4).requires_grad_(True)
    reward = torch.tensor([1.0, 3.0, 2.0, 6.0])
    kl = torch.tensor([0.5, 0.0, 1.5, 2.0], requires_grad=True)
    loss = al.reinforce_loss(log_probs, reward, kl, 0.25)
    direct = -((reward - 3.0) * log_probs).mean() + 0.25 * kl.mean()
    torch.testing.assert_close(loss, direct)
    loss.backward()
    # descent moves log π(y) along −grad = (r − mean r) / B: up above the mean, down below it
    torch.testing.assert_close(-log_probs.grad, (reward - 3.0) / 4)
    torch.testing.assert_close(kl.grad, torch.full((4,), 0.25 / 4))  # the penalty pulls KL down
    same = al.reinforce_loss(log_probs, torch.full((4,), 5.0), torch.zeros(4), 0.25)
    assert same.item() == 0.0  # equal rewards: nothing to learn


# ---------------------------------------------------------------------------------------------
# Log-probabilities and the KL penalty
# ---------------------------------------------------------------------------------------------


def test_answer_log_probs_match_a_token_by_token_computation(loaded) -> None:
    tok, model = loaded.tokenizer, loaded.model
    prompt = al.instruction("dog")
    answers = [tok.encode(" the dog runs ."), tok.encode(" Mia sees the big dog .")]
    batched = al.answer_log_probs(model, tok, prompt, answers).detach()
    for row, answer in enumerate(answers):
        ids, total = tok.encode(prompt), 0.0
        for token in answer:
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0, -1]
            total += F.log_softmax(logits, -1)[token].item()
            ids.append(token)
        assert batched[row].item() == pytest.approx(total, abs=1e-4)


def test_the_kl_is_zero_for_the_reference_itself_and_positive_otherwise(loaded) -> None:
    tok = loaded.tokenizer
    answers = [tok.encode(" the cat runs ."), tok.encode(" the cats run .")]
    prompt = al.instruction("cat")
    same = al.token_kl(copy.deepcopy(loaded.model), loaded.model, tok, prompt, answers)
    torch.testing.assert_close(same, torch.zeros(2), atol=1e-5, rtol=0)
    other = copy.deepcopy(loaded.model)
    with torch.no_grad():
        other.h[0].mlp.c_fc.weight.mul_(1.5)
    kl = al.token_kl(other, loaded.model, tok, prompt, answers)
    assert (kl > 0).all()
    ids, mask, answer_mask = al._joined(tok, prompt, answers)
    with torch.no_grad():
        log_p = F.log_softmax(other(ids, attention_mask=mask).logits[:, :-1], -1)
        log_q = F.log_softmax(loaded.model(ids, attention_mask=mask).logits[:, :-1], -1)
    reference = F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(-1)
    torch.testing.assert_close(kl.detach(), (reference * answer_mask).sum(-1), atol=1e-5, rtol=1e-4)


def test_the_language_model_loss_is_the_model_s_own(loaded) -> None:
    tok, model = loaded.tokenizer, loaded.model
    text = al.held_out_stories(1)[0]
    ids = torch.tensor([tok.encode(text)[: model.config.block_size + 1]])
    with torch.no_grad():
        own = model(ids[:, :-1], targets=ids[:, 1:]).loss.item()
    assert al.lm_loss(model, tok, [text]) == pytest.approx(own, abs=1e-5)


# ---------------------------------------------------------------------------------------------
# Pairs, the rule and the student's answer
# ---------------------------------------------------------------------------------------------


def test_the_rule_is_the_grammar_s_verdict() -> None:
    assert al.follows_rule("the cat is tall .") and stories.is_grammatical("the cat is tall .")
    assert not al.follows_rule("the cat are tall .") and not al.follows_rule(" ")
    assert al.on_topic("the small cats run .", "cat") and not al.on_topic("the dog runs .", "cat")
    assert al.flipped("the cat sees the dog .") == "the cat see the dog ."
    with pytest.raises(ValueError, match="no verb"):
        al.flipped("the cat .")
    with pytest.raises(ValueError, match="unknown topic"):
        al.instruction("<b>")


def test_pairs_prefer_the_grammatical_answer(loaded, run) -> None:
    tuned = run[0].models[al.SFT_NAME]  # gpt-stories itself never answers the instruction well
    generator = torch.Generator().manual_seed(0)
    pairs = al.make_pairs(tuned, loaded.tokenizer, 2, generator, tries=2)
    assert pairs
    for pair in pairs:
        assert al.follows_rule(loaded.tokenizer.decode(list(pair.chosen)))
        assert not al.follows_rule(loaded.tokenizer.decode(list(pair.rejected)))
    train, held = al.split_pairs(pairs, 0)
    assert len(train) + len(held) == len(pairs) and not set(train) & set(held)


def test_answers_stop_at_the_full_stop(loaded, run) -> None:
    tuned, end = run[0].models[al.SFT_NAME], al.stop_id(loaded.tokenizer)
    generator = torch.Generator().manual_seed(3)
    answers = al.sample_answers(tuned, loaded.tokenizer, al.instruction("fox"), 8, generator)
    for answer in answers:
        assert end not in answer[:-1] and len(answer) <= al.MAX_ANSWER_TOKENS
        assert answer[-1] == end or len(answer) == al.MAX_ANSWER_TOKENS


def test_the_student_s_answer_is_scored_by_every_model_and_the_reward_model(loaded, run) -> None:
    result, tok = run[0], loaded.tokenizer
    models = {al.BASE_NAME: loaded.model, **result.models}
    found = al.compare_answers(models, tok, "dog", " the dog  runs . ", result.reward_model)
    assert found.sentence == "the dog runs ." and found.other == "the dog run ."
    assert found.verdict == "ok" and found.other_verdict != "ok" and found.on_topic
    both = [tok.encode(" the dog runs ."), tok.encode(" the dog run .")]
    prompt = al.instruction("dog")
    for name, model in models.items():
        with torch.no_grad():
            expected = al.answer_log_probs(model, tok, prompt, both).tolist()
        assert found.log_probs[name] == pytest.approx(tuple(expected))
    with torch.no_grad():
        scores = al.rewards(result.reward_model, tok, prompt, both).tolist()
    assert found.rewards == pytest.approx(tuple(scores))
    alone = al.compare_answers({"b": loaded.model}, tok, "dog", "Mia .")
    assert alone.other is None and alone.rewards is None and alone.log_probs["b"][1] is None


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="β must be a number"):
        al.AlignSettings(beta=0)
    with pytest.raises(ValueError, match="dpo steps must be a whole number"):
        al.AlignSettings(dpo_steps=1.5)
    with pytest.raises(ValueError, match="type an answer"):
        al.answer_ids(None, "   ")


# ---------------------------------------------------------------------------------------------
# A short seeded run
# ---------------------------------------------------------------------------------------------


def test_the_reward_model_beats_chance_on_held_out_pairs(run) -> None:
    result, _ = run
    assert result.held_out_pairs >= 8
    assert result.reward_accuracy > 0.7  # 14 of 16 with this seed; chance is one half


def test_dpo_raises_the_share_of_answers_the_grammar_accepts(run) -> None:
    result, _ = run
    tuned, dpo = result.score(al.SFT_NAME), result.score(al.DPO_NAME)
    assert dpo.follow_rate > tuned.follow_rate + 0.1  # 53% to 70% with this seed
    texts = [t for topic in al.TOPICS for t in dpo.samples[topic]]
    assert dpo.follow_rate == pytest.approx(sum(map(al.follows_rule, texts)) / len(texts))


def test_the_run_reports_every_stage_with_a_kl_that_is_never_negative(run) -> None:
    result, updates = run
    stages = al.updates_of(updates)
    assert [len(stages[s]) for s in al.STAGES] == [30, 40, 30, 4]
    assert all(u.values["kl"] >= 0 for u in stages["rl"])
    assert result.score(al.SFT_NAME).mean_kl == pytest.approx(0, abs=1e-5)  # the reference itself
    assert all(s.mean_kl >= 0 for s in result.scores)


def test_the_alignment_tax_is_the_difference_of_held_out_losses(run, loaded) -> None:
    result, _ = run
    texts = al.held_out_stories(TINY.held_out_stories)
    base = al.lm_loss(loaded.model, loaded.tokenizer, texts)
    assert result.score(al.BASE_NAME).lm_loss == pytest.approx(base)
    for name, model in result.models.items():
        own = al.lm_loss(model, loaded.tokenizer, texts)
        assert result.tax(name) == pytest.approx(own - base)
    assert result.tax(al.SFT_NAME) > 0  # instruction tuning costs some language modelling


def test_a_stopped_run_keeps_what_it_has(loaded) -> None:
    calls = []

    def stop_in_dpo(update) -> bool:
        calls.append(update)
        return update.stage != "dpo"

    result = al.run_alignment(loaded.model, loaded.tokenizer, TINY, stop_in_dpo)
    assert result.stop_reason == "stopped" and al.RL_NAME not in result.models
    assert [s.name for s in result.scores] == [al.BASE_NAME, al.SFT_NAME, al.DPO_NAME]


# ---------------------------------------------------------------------------------------------
# The prediction questions
# ---------------------------------------------------------------------------------------------


def test_predict_the_dpo_loss_at_the_start(loaded) -> None:
    prediction = al.predict_start_loss(loaded, "cat", 0.5, 0)
    assert prediction.values["beta"] == "0.5"
    assert prediction.reveal().answer == pytest.approx(math.log(2), abs=1e-4)


def test_predict_the_share_of_grammatical_answers(loaded) -> None:
    prediction = al.predict_follow_rate(loaded, "cat", 0)
    assert prediction.choices == al.RATE_BANDS
    generator = torch.Generator().manual_seed(0)
    prompt = al.instruction("cat")
    answers = al.sample_answers(loaded.model, loaded.tokenizer, prompt, 16, generator)
    rate = sum(al.follows_rule(loaded.tokenizer.decode(a)) for a in answers) / 16
    assert prediction.reveal().answer == al.rate_band(rate) == "under 25%"


def test_predict_the_likelier_sentence(loaded) -> None:
    prediction = al.predict_likelier(loaded, "cat", "the cats  chase the dog .")
    assert prediction.values["flipped"] == "the cats chases the dog ."
    revealed = prediction.reveal()
    assert revealed.answer == al.YOURS
    assert float(revealed.values["mine"]) > float(revealed.values["theirs"])
