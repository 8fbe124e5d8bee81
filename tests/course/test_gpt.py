"""Generation one step at a time, the sampling filters and the per-token loss, checked against
``sampling.generate``, brute-force references and the model's own loss."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tinyformers.course.gpt import (
    BEAM,
    CANDIDATES,
    GREEDY,
    SAMPLING,
    GenerationRun,
    capital_words,
    continuation,
    decode,
    end_token,
    kept_mass,
    last_position_attention,
    learned_tokens,
    model_key,
    most_attended,
    next_token,
    next_token_logits,
    on_best_path,
    per_character,
    predict_favourite_at_temperature,
    predict_hardest_token,
    predict_kept_count,
    predict_never_drawn,
    prompt_loss,
    repeated_share,
    search_texts,
    search_tokens,
    slider_settings,
    token_rank,
    unknown_count,
)
from tinyformers.hub import registry
from tinyformers.hub.registry import LoadedModel, load_shipped
from tinyformers.model.config import GPTConfig
from tinyformers.model.sampling import (
    BeamSettings,
    SamplingSettings,
    beam_search,
    generate,
    next_token_distribution,
    sample,
    top_p_mask,
)
from tinyformers.text.tokenizers import train_char
from tinyformers.trace import trace_ids

PROMPT = [7, 12, 3, 25, 9]


@pytest.fixture(scope="module")
def stories():
    return load_shipped("gpt-stories")


# ---------------------------------------------------------------------------------------------
# Top-k = 1 is greedy
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.5, 100.0])
def test_top_k_one_samples_the_greedy_token_from_any_logits(temperature):
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        logits = torch.randn(50, generator=generator) * 3
        dist = next_token_distribution(logits, SamplingSettings(temperature, top_k=1))
        assert dist.kept.sum() == 1 and dist.kept[logits.argmax()]
        for seed in range(3):
            assert sample(dist, torch.Generator().manual_seed(seed)) == logits.argmax().item()


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_generation_with_top_k_one_equals_greedy(tiny_gpt, seed, temperature):
    greedy = generate(tiny_gpt, PROMPT, 20, SamplingSettings(temperature=0))
    top_1 = generate(tiny_gpt, PROMPT, 20, SamplingSettings(temperature, top_k=1), seed=seed)
    assert top_1 == greedy


def test_shipped_model_with_top_k_one_equals_greedy(stories):
    ids = stories.tokenizer.encode("the big dog")
    greedy = generate(stories.model, ids, 30, SamplingSettings(temperature=0))
    for seed, temperature in itertools.product([0, 5], [0.7, 1.5]):
        settings = SamplingSettings(temperature, top_k=1)
        assert generate(stories.model, ids, 30, settings, seed=seed) == greedy


# ---------------------------------------------------------------------------------------------
# Top-p keeps the smallest most-likely prefix whose mass reaches p
# ---------------------------------------------------------------------------------------------


def smallest_prefix_reaching(probs: list[float], p: float) -> set[int]:
    """Reference: sort by probability, add tokens until their total reaches p."""
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    kept, total = set(), 0.0
    for i in order:
        kept.add(i)
        total += probs[i]
        if total >= p:
            break
    return kept


@pytest.mark.parametrize(
    "probs, p, expected",
    [
        ([0.5, 0.25, 0.125, 0.125], 0.75, {0, 1}),  # the mass reaches p exactly at two tokens
        ([0.5, 0.25, 0.125, 0.125], 0.76, {0, 1, 2}),
        ([0.125, 0.5, 0.125, 0.25], 0.5, {1}),
        ([0.125, 0.5, 0.125, 0.25], 0.51, {1, 3}),
        ([0.25, 0.25, 0.25, 0.25], 1.0, {0, 1, 2, 3}),
        ([0.9, 0.05, 0.05], 0.05, {0}),
    ],
)
def test_top_p_mask_on_exact_probabilities(probs, p, expected):
    kept = top_p_mask(torch.tensor(probs, dtype=torch.float64), p)
    assert set(torch.nonzero(kept).flatten().tolist()) == expected


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8, 0.9, 0.99])
def test_top_p_matches_the_reference_on_random_distributions(p):
    generator = torch.Generator().manual_seed(1)
    for _ in range(30):
        probs = torch.softmax(torch.randn(40, generator=generator, dtype=torch.float64) * 2, -1)
        kept = top_p_mask(probs, p)
        assert set(torch.nonzero(kept).flatten().tolist()) == smallest_prefix_reaching(
            probs.tolist(), p
        )
        assert probs[kept].sum() >= p - 1e-12
        assert probs[kept].sum() - probs[kept].min() < p  # dropping any kept token falls short


def test_distribution_keeps_the_top_p_prefix_of_the_tempered_probabilities(stories):
    logits = next_token_logits(stories.model, stories.tokenizer.encode("the big dog"))
    settings = SamplingSettings(temperature=1.3, top_p=0.6)
    dist = next_token_distribution(logits, settings)
    expected = smallest_prefix_reaching(dist.tempered.double().tolist(), 0.6)
    assert set(torch.nonzero(dist.kept).flatten().tolist()) == expected
    assert torch.allclose(dist.final[dist.kept].sum(), torch.tensor(1.0))
    assert (dist.final[~dist.kept] == 0).all()


# ---------------------------------------------------------------------------------------------
# Per-token losses average to the model's own loss
# ---------------------------------------------------------------------------------------------


def test_per_token_losses_average_to_the_model_loss(tiny_gpt):
    result = prompt_loss(tiny_gpt, PROMPT)
    assert result.losses.shape == (len(PROMPT) - 1,)
    assert result.mean == pytest.approx(result.model_loss, abs=1e-5)
    logits = tiny_gpt(torch.tensor([PROMPT])).logits[0, :-1]
    direct = F.cross_entropy(logits, torch.tensor(PROMPT[1:]))
    assert result.mean == pytest.approx(direct.item(), abs=1e-5)
    assert torch.allclose(result.probabilities, torch.exp(-result.losses))


def test_each_token_loss_is_minus_log_of_its_next_token_probability(tiny_gpt):
    result = prompt_loss(tiny_gpt, PROMPT)
    for t in range(1, len(PROMPT)):
        logits = next_token_logits(tiny_gpt, PROMPT[:t])
        p = torch.softmax(logits.double(), -1)[PROMPT[t]].item()
        assert result.losses[t - 1].item() == pytest.approx(-math.log(p), abs=1e-5)


@pytest.mark.parametrize("name", ["gpt-stories", "gpt-char"])
def test_shipped_models_per_token_losses_average_to_their_loss(name):
    loaded = load_shipped(name)
    ids = loaded.tokenizer.encode("the big dog sees Zoe . she is happy .")
    result = prompt_loss(loaded.model, ids)
    assert result.mean == pytest.approx(result.model_loss, abs=1e-5)


@pytest.mark.parametrize(
    "ids, message",
    [
        ([], "at least 2 tokens"),
        ([5], "at least 2 tokens"),
        ([5, 40], "outside the model's vocabulary"),
    ],
)
def test_prompt_loss_rejects_bad_prompts(tiny_gpt, ids, message):
    with pytest.raises(ValueError, match=message):
        prompt_loss(tiny_gpt, ids)


def test_prompt_loss_rejects_prompts_longer_than_the_window(tiny_gpt):
    with pytest.raises(ValueError, match="reads at most 16"):
        prompt_loss(tiny_gpt, list(range(10, 30)))


# ---------------------------------------------------------------------------------------------
# Step by step equals sampling.generate
# ---------------------------------------------------------------------------------------------

SETTINGS = [
    SamplingSettings(),
    SamplingSettings(temperature=0.7, top_k=5),
    SamplingSettings(temperature=1.5, top_p=0.8),
    SamplingSettings(temperature=0),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=str)
@pytest.mark.parametrize("seed", [0, 3, 2024])
def test_step_by_step_equals_generate(tiny_gpt, settings, seed):
    run = GenerationRun(PROMPT, seed)
    for _ in range(30):  # past the 16-token window, so the context gets cropped
        run.step(tiny_gpt, settings)
    assert run.new == generate(tiny_gpt, PROMPT, 30, settings, seed=seed)
    assert run.sequence == PROMPT + run.new
    assert run.settings == [settings] * 30


def test_steps_and_blocks_of_steps_draw_the_same_tokens(stories):
    ids = stories.tokenizer.encode("the big dog")
    settings = SamplingSettings(temperature=0.9, top_p=0.95)
    run = GenerationRun(ids, seed=11)
    run.step(stories.model, settings)
    run.extend(stories.model, 20, settings)
    run.step(stories.model, settings)
    assert run.new == generate(stories.model, ids, 22, settings, seed=11)


def test_continuation_equals_generate_and_records_raw_probabilities(tiny_gpt):
    settings = SamplingSettings(temperature=1.2, top_k=10)
    result = continuation(tiny_gpt, PROMPT, 25, settings, seed=4)
    assert result.new == generate(tiny_gpt, PROMPT, 25, settings, seed=4)
    sequence = list(PROMPT)
    for token, p in zip(result.new, result.probabilities, strict=True):
        raw = torch.softmax(next_token_logits(tiny_gpt, sequence).float(), -1)[token].item()
        assert p == pytest.approx(raw)
        sequence.append(token)
    expected = -sum(math.log(p) for p in result.probabilities) / len(result.probabilities)
    assert result.mean_loss == pytest.approx(expected)


def test_explained_step_shows_the_distribution_its_token_was_drawn_from(tiny_gpt):
    settings = SamplingSettings(temperature=0.8, top_k=6)
    run = GenerationRun(PROMPT, seed=5)
    run.extend(tiny_gpt, 14, settings)
    for i in (0, 7, 13):
        step = run.explain(tiny_gpt, i)
        assert step.token == run.new[i]
        assert step.context == (PROMPT + run.new[:i])[-16:]
        logits = tiny_gpt(torch.tensor([step.context])).logits[0, -1]
        assert torch.equal(step.distribution.final, next_token_distribution(logits, settings).final)
        assert step.distribution.kept[step.token]


def test_changing_settings_between_steps_is_remembered(tiny_gpt):
    run = GenerationRun(PROMPT, seed=0)
    run.step(tiny_gpt, SamplingSettings(temperature=0))
    run.step(tiny_gpt, SamplingSettings(temperature=2.0, top_p=0.5))
    assert run.explain(tiny_gpt, 0).settings.greedy
    assert run.explain(tiny_gpt, 1).settings.top_p == 0.5


def test_generation_run_rejects_bad_input(tiny_gpt):
    with pytest.raises(ValueError, match="at least one token"):
        GenerationRun([], seed=0)
    with pytest.raises(ValueError, match="seed"):
        GenerationRun(PROMPT, seed=-1)
    run = GenerationRun(PROMPT, seed=0)
    with pytest.raises(ValueError, match="no generated token 0"):
        run.explain(tiny_gpt, 0)
    with pytest.raises(ValueError, match="between 0 and 10000"):
        run.extend(tiny_gpt, 10**9, SamplingSettings())
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        GenerationRun([1, 99], seed=0).step(tiny_gpt, SamplingSettings())


# ---------------------------------------------------------------------------------------------
# Attention of the position that predicts the next token
# ---------------------------------------------------------------------------------------------


def test_attention_row_is_the_last_row_of_the_model_attention(tiny_gpt):
    trace = trace_ids(tiny_gpt, PROMPT, [str(i) for i in PROMPT])
    row = last_position_attention(tiny_gpt, PROMPT)
    assert row.shape == (2, 2, len(PROMPT))
    for layer in range(2):
        for head in range(2):
            assert torch.equal(row[layer, head], trace.attentions[layer][0, head, -1])
    assert torch.allclose(row.sum(-1), torch.ones(2, 2))


def test_step_attention_of_a_shipped_model_matches_its_trace(stories):
    ids = stories.tokenizer.encode("the big dog sees Zoe .")
    step = next_token(stories.model, ids, SamplingSettings())
    trace = trace_ids(stories.model, ids, stories.tokenizer.display_tokens(ids))
    expected = torch.stack([layer[0, :, -1, :] for layer in trace.attentions])
    assert torch.equal(step.attention, expected)
    assert step.attention.shape == (3, 4, len(ids))


def test_attention_covers_only_the_window_once_the_text_is_longer(make_model):
    model = make_model(GPTConfig, position="rotary")
    ids = list(range(7, 37))  # 30 tokens, window 16
    row = last_position_attention(model, ids)
    trace = trace_ids(model, ids[-16:], [str(i) for i in ids[-16:]])
    assert torch.equal(row[1, 0], trace.attentions[1][0, 0, -1])


# ---------------------------------------------------------------------------------------------
# Repetition
# ---------------------------------------------------------------------------------------------


def test_repeated_share():
    assert repeated_share(list("abcde")) == 0
    assert repeated_share(list("abcabcabc")) == pytest.approx(4 / 7)
    assert math.isnan(repeated_share(["a", "b"]))
    assert repeated_share(["x"] * 5, n=1) == pytest.approx(4 / 5)
    with pytest.raises(ValueError):
        repeated_share(["a"], n=0)


def test_greedy_text_of_the_shipped_model_repeats_more_than_sampled_text(stories):
    ids = stories.tokenizer.encode("the big dog")
    greedy = continuation(stories.model, ids, 60, SamplingSettings(temperature=0))
    sampled = continuation(stories.model, ids, 60, SamplingSettings(temperature=1.0), seed=0)
    words = [stories.tokenizer.decode(c.new).split() for c in (greedy, sampled)]
    assert repeated_share(words[0]) > repeated_share(words[1])
    assert greedy.mean_loss < sampled.mean_loss


# ---------------------------------------------------------------------------------------------
# What the lesson page reads
# ---------------------------------------------------------------------------------------------


def test_model_key_is_the_registrys(tiny_gpt):
    loaded = LoadedModel("mine", "gpt", tiny_gpt, None, "trained", {})
    assert model_key is registry.model_key
    assert model_key(loaded).startswith("trained:mine:")


@pytest.mark.parametrize(
    ("sliders", "expected"),
    [
        ((1.0, 0, 1.0), SamplingSettings(1.0)),
        ((0.7, 5, 0.9), SamplingSettings(0.7, top_k=5, top_p=0.9)),
        ((0.0, 3, 1.0), SamplingSettings(0.0, top_k=3)),
        ((2.0, 0, 0.05), SamplingSettings(2.0, top_p=0.05)),
    ],
)
def test_slider_settings_switch_filters_off_at_zero_and_one(sliders, expected):
    assert slider_settings(*sliders) == expected


def test_unknown_count_counts_the_unknown_token(stories):
    tok = stories.tokenizer
    ids = tok.encode("the dog") + [tok.unk_id, tok.unk_id]
    assert unknown_count(tok, ids) == 2
    assert unknown_count(tok, tok.encode("the dog")) == 0
    assert unknown_count(object(), [0, 1]) == 0  # a tokenizer without an unknown token


def test_per_character_is_true_only_for_character_tokenizers(stories):
    class Chars:
        kind = "char"

    assert per_character(Chars())
    assert not per_character(stories.tokenizer)
    assert not per_character(object())


def test_token_rank_and_kept_mass_on_exact_probabilities():
    logits = torch.tensor([2.0, 0.5, 3.0, -1.0, 1.0, 0.0])
    dist = next_token_distribution(logits, SamplingSettings(0.5, top_k=2))
    assert [token_rank(dist, t) for t in range(6)] == [2, 4, 1, 6, 3, 5]
    kept, mass = kept_mass(dist)
    tempered = torch.softmax(logits / 0.5, dim=-1)
    assert kept == 2
    assert mass == pytest.approx((tempered[2] + tempered[0]).item())


def test_most_attended_sums_every_layer_and_head():
    attention = torch.zeros(2, 3, 4)
    attention[0, 0] = torch.tensor([0.9, 0.1, 0.0, 0.0])  # one head likes position 0
    attention[1:, :, 2] = 0.5  # every head of layer 1 gives position 2 half its attention
    assert most_attended(attention) == 2
    with pytest.raises(ValueError, match="layers, heads, positions"):
        most_attended(torch.zeros(3, 4))


def test_rewind_forgets_the_later_tokens_and_draws_them_again_the_same(tiny_gpt):
    run = GenerationRun(PROMPT, seed=2)
    greedy, sampled = SamplingSettings(temperature=0), SamplingSettings()
    run.extend(tiny_gpt, 2, greedy)
    run.extend(tiny_gpt, 6, sampled)
    before = list(run.new)
    run.rewind(tiny_gpt, 3)
    assert run.new == before[:3] and run.settings == [greedy, greedy, sampled]
    run.extend(tiny_gpt, 5, sampled)
    assert run.new == before
    run.rewind(tiny_gpt, 0)
    assert run.new == [] and run.extend(tiny_gpt, 8, sampled) == generate(
        tiny_gpt, PROMPT, 8, sampled, seed=2
    )
    with pytest.raises(ValueError, match="cannot keep 9 of the 8"):
        run.rewind(tiny_gpt, 9)


def test_left_window_counts_the_tokens_before_the_context(tiny_gpt):
    run = GenerationRun(PROMPT, seed=0)
    run.extend(tiny_gpt, 20, SamplingSettings())
    block = tiny_gpt.config.block_size
    for i in (0, 5, 19):
        before = len(PROMPT) + i
        assert run.left_window(run.explain(tiny_gpt, i), i) == max(before - block, 0)


def test_perplexity_and_the_most_surprising_prediction(tiny_gpt):
    result = prompt_loss(tiny_gpt, PROMPT)
    assert result.perplexity == pytest.approx(math.exp(result.mean))
    worst = result.most_surprising
    assert result.losses[worst] == result.losses.max()
    assert result.probabilities[worst] == result.probabilities.min()


def test_capital_words_are_read_as_they_stand_in_the_text(stories):
    tokenizer = stories.tokenizer
    words = capital_words(tokenizer, "The dog sees Zoe. The end, 42 Zoe")
    assert [w.word for w in words] == ["The", " Zoe", " The"]  # each once, space included
    the, zoe, spaced = words
    assert the.pieces == tokenizer.display_tokens(tokenizer.encode("The")) == ["T", "he"]
    assert the.lower_pieces == ["the"] and not the.single
    assert zoe.single and zoe.pieces == [" Zoe"]
    assert spaced.pieces == tokenizer.display_tokens(tokenizer.encode(" The"))
    assert capital_words(tokenizer, "the dog sees the cat") == []


def test_learned_tokens_leave_out_bytes_and_special_tokens(stories):
    tokenizer = stories.tokenizer
    learned = learned_tokens(tokenizer)
    assert learned.learned == tokenizer.vocab_size - 263  # 7 special tokens and 256 bytes
    assert " Zoe" in learned.capitalised and "[MASK]" not in learned.capitalised
    assert all(any(c.isupper() for c in t) for t in learned.capitalised)
    assert 0 < learned.capital_share < 0.1


# ---------------------------------------------------------------------------------------------
# Predict, then reveal: a model whose next-token probabilities are the same fixed list after
# every context, so every answer can be worked out by hand
# ---------------------------------------------------------------------------------------------

FIXED = [0.4, 0.2, 0.12, 0.1, 0.08, 0.05, 0.03, 0.02]  # token i gets FIXED[i]


class FixedNextToken(nn.Module):
    def __init__(self, probabilities: list[float]):
        super().__init__()
        self.log_probabilities = torch.tensor(probabilities).log()
        self.config = SimpleNamespace(vocab_size=len(probabilities), block_size=16)

    def forward(self, idx, targets=None):
        logits = self.log_probabilities.expand(idx.shape[0], idx.shape[1], -1)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return SimpleNamespace(logits=logits, loss=loss)


class Letters:
    """Token i is shown as the letter i of the alphabet."""

    def display_tokens(self, ids):
        return [chr(ord("a") + i) for i in ids]

    def decode(self, ids):
        return " ".join(self.display_tokens(ids))


@pytest.fixture
def fixed():
    model = FixedNextToken(FIXED)
    return SimpleNamespace(model=model, tokenizer=Letters(), config=model.config)


@pytest.mark.parametrize(
    ("settings", "kept"),
    [
        (SamplingSettings(), 8),  # the softmax leaves every token a probability above 0
        (SamplingSettings(temperature=3.0), 8),
        (SamplingSettings(temperature=0), 1),  # greedy
        (SamplingSettings(top_k=3), 3),
        (SamplingSettings(top_p=0.7), 3),  # 0.4 + 0.2 = 0.6 < 0.7, then 0.12 reaches it
        (SamplingSettings(top_k=2, top_p=0.9), 2),
    ],
)
def test_kept_count_by_hand(fixed, settings, kept):
    prediction = predict_kept_count(fixed, [0, 1], settings)
    assert prediction.values["vocab"] == 8 and prediction.values["prompt"] == "a b"
    reveal = prediction.reveal()
    assert reveal.answer == kept == reveal.values["kept"]


def test_kept_count_shows_off_filters_as_off(fixed):
    values = predict_kept_count(fixed, [0], SamplingSettings(0.8, top_k=5)).values
    assert (values["temperature"], values["top_k"], values["top_p"]) == ("0.80", "5", "off")


@pytest.mark.parametrize(
    ("settings", "first_dropped"),
    [
        (SamplingSettings(), 2),  # top-p off: asked at 0.5, kept 0.4 + 0.2, then c is cut
        (SamplingSettings(temperature=0), 2),  # greedy: asked at temperature 1
        (SamplingSettings(top_p=0.85), 5),  # 0.4 + 0.2 + 0.12 + 0.1 = 0.82, + 0.08 = 0.9
        (SamplingSettings(top_p=0.85, top_k=1), 5),  # top-k is left out of the question
    ],
)
@pytest.mark.parametrize("prompt", [[0], [0, 1], [3, 4, 4]])  # sum % 5: where the cut falls
def test_never_drawn_is_the_first_token_top_p_cuts(fixed, settings, first_dropped, prompt):
    prediction = predict_never_drawn(fixed, prompt, settings)
    letters = "abcdefgh"
    expected = f"rank {first_dropped + 1}: {letters[first_dropped]!r}"
    assert expected in prediction.choices
    assert len(prediction.choices) == CANDIDATES
    ranks = [int(choice.split(":")[0].removeprefix("rank ")) for choice in prediction.choices]
    assert ranks == list(range(ranks[0], ranks[0] + CANDIDATES))  # in a row, most likely first
    assert prediction.reveal().answer == expected


def test_the_cut_moves_within_the_choices_with_the_prompt(fixed):
    places = {
        predict_never_drawn(fixed, prompt, SamplingSettings()).choices.index("rank 3: 'c'")
        for prompt in ([0], [1], [2])
    }
    assert len(places) > 1


def test_never_drawn_needs_a_token_to_cut(fixed):
    flat = FixedNextToken([0.5, 0.5])
    loaded = SimpleNamespace(model=flat, tokenizer=Letters(), config=flat.config)
    with pytest.raises(ValueError, match="keeps every token"):
        predict_never_drawn(loaded, [0], SamplingSettings(top_p=1.0))


@pytest.mark.parametrize(
    ("settings", "temperature"),
    [(SamplingSettings(), 0.5), (SamplingSettings(0.7), 2.0), (SamplingSettings(0), 0.5)],
)
def test_favourite_at_another_temperature_is_p_to_the_one_over_t(fixed, settings, temperature):
    prediction = predict_favourite_at_temperature(fixed, [0], settings)
    assert prediction.values["token"] == "'a'" and prediction.values["raw"] == "0.400"
    reveal = prediction.reveal()
    powered = [p ** (1 / temperature) for p in FIXED]
    assert reveal.answer == pytest.approx(powered[0] / sum(powered), abs=1e-6)
    assert reveal.values["second_new"] == f"{powered[1] / sum(powered):.3f}"


def test_hardest_token_has_the_largest_minus_log_p(fixed):
    prediction = predict_hardest_token(fixed, [0, 1, 7, 2])
    assert prediction.choices == ("1: 'b'", "2: 'h'", "3: 'c'")  # the first token has no loss
    reveal = prediction.reveal()
    assert reveal.answer == "2: 'h'"  # p = 0.02, the least likely
    assert reveal.values["loss"] == f"{-math.log(0.02):.2f}"
    mean = -(math.log(0.2) + math.log(0.02) + math.log(0.12)) / 3
    assert reveal.values["mean"] == f"{mean:.2f}"


def test_hardest_token_needs_two_tokens(fixed):
    with pytest.raises(ValueError, match="at least 2 tokens"):
        predict_hardest_token(fixed, [3])


def test_predictions_on_the_shipped_model_offer_their_answer(stories):
    ids = stories.tokenizer.encode("Zoe sees the big dog . the dog")
    settings = SamplingSettings(temperature=0.8, top_p=0.9)
    for predict in (predict_never_drawn, predict_hardest_token):
        arguments = {"settings": settings} if predict is predict_never_drawn else {}
        prediction = predict(stories, ids, **arguments)
        assert prediction.reveal().answer in prediction.choices
    distribution = next_token_distribution(next_token_logits(stories.model, ids), settings)
    assert predict_kept_count(stories, ids, settings).reveal().answer == distribution.kept.sum()


# ---------------------------------------------------------------------------------------------
# Greedy, sampling and beam search as searches over texts
# ---------------------------------------------------------------------------------------------

END = 3  # the tiny model's end token in these tests


def log_prob_of(model, ids: list[int], new: list[int]) -> float:
    """log p(new | ids) summed from one forward pass of the whole text."""
    with torch.no_grad():
        logits = model(torch.tensor([ids + list(new)])).logits[0].double()
    log_probs = F.log_softmax(logits, dim=-1)
    return sum(log_probs[len(ids) - 1 + i, t].item() for i, t in enumerate(new))


@pytest.mark.parametrize(
    "settings", [SamplingSettings(), SamplingSettings(0.7, top_k=5), SamplingSettings(0)]
)
@pytest.mark.parametrize("seed", [0, 3])
def test_a_sampled_path_is_what_generate_draws_and_scores_its_tokens(tiny_gpt, settings, seed):
    path = decode(tiny_gpt, PROMPT, 10, SAMPLING, BeamSettings(3), settings, seed)
    assert list(path.best.tokens) == generate(tiny_gpt, PROMPT, 10, settings, seed)
    assert path.best.log_prob == pytest.approx(log_prob_of(tiny_gpt, PROMPT, path.best.tokens))
    assert [len(step.candidates) for step in path.steps] == [1] * 10
    assert [step.candidates[0].fate for step in path.steps] == ["kept"] * 9 + ["finished"]


def test_a_sampled_path_ends_at_the_end_token_as_generate_stops(tiny_gpt):
    for seed in range(20):
        drawn = generate(tiny_gpt, PROMPT, 30, SamplingSettings(), seed, stop_ids={END})
        if len(drawn) < 30:
            break
    else:
        pytest.fail("no seed drew the end token")
    path = decode(tiny_gpt, PROMPT, 30, SAMPLING, BeamSettings(), SamplingSettings(), seed, END)
    assert list(path.best.tokens) == drawn + [END]
    assert path.best.finished and len(path.steps) == len(drawn) + 1


@pytest.mark.parametrize("end", [None, 15])  # greedy text of the tiny model reaches 15 early
def test_greedy_decoding_is_the_greedy_text_up_to_its_end(tiny_gpt, end):
    greedy = generate(tiny_gpt, PROMPT, 15, SamplingSettings(0), stop_ids={end} - {None})
    found = decode(tiny_gpt, PROMPT, 15, GREEDY, BeamSettings(4, 0.0), SamplingSettings(), 0, end)
    assert list(found.best.tokens) == greedy + ([] if end is None else [end])
    assert found.settings.num_beams == 1 and len(found.steps) == len(found.best.tokens)


def test_beam_decoding_is_beam_search(tiny_gpt):
    settings = BeamSettings(4, 0.5, "never")
    found = decode(tiny_gpt, PROMPT, 8, BEAM, settings, SamplingSettings(), 0, END)
    assert found == beam_search(tiny_gpt, PROMPT, 8, settings, END)
    with pytest.raises(ValueError, match="must be one of Greedy, Sampling, Beam search"):
        decode(tiny_gpt, PROMPT, 8, "Nucleus", settings, SamplingSettings())
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        decode(tiny_gpt, [999], 8, BEAM, settings, SamplingSettings())


def test_the_end_token_is_a_line_break_read_as_one_token(stories, char_tokenizer):
    assert stories.tokenizer.decode([end_token(stories.tokenizer)]) == "\n"
    assert end_token(load_shipped("gpt-char").tokenizer) == load_shipped(
        "gpt-char"
    ).tokenizer.token_to_id("\n")
    assert end_token(char_tokenizer) == char_tokenizer.token_to_id("\n")
    no_lines = train_char("the cat sat on the mat")
    assert end_token(no_lines) is None  # "\n" is the unknown token there


def test_search_texts_and_the_best_path(make_model, char_tokenizer):
    model = make_model(GPTConfig, vocab_size=char_tokenizer.vocab_size)
    found = beam_search(model, [5, 6, 7], 6, BeamSettings(3), END)
    labels, texts = search_texts(char_tokenizer, found)
    seen = {c.beam.tokens[-1] for step in found.steps for c in step.candidates}
    assert sorted(labels) == sorted(seen) == search_tokens(found)
    assert labels == dict(zip(labels, char_tokenizer.display_tokens(list(labels)), strict=True))
    assert texts == [char_tokenizer.decode(list(beam.tokens)) for beam in found.finished]
    best = [c for step in found.steps for c in step.candidates if on_best_path(found, c)]
    assert [len(c.beam.tokens) for c in best] == list(range(1, len(found.best.tokens) + 1))
    assert best[-1].beam == found.best


def test_advance_holds_exactly_n_tokens(tiny_gpt):
    run = GenerationRun(PROMPT, 5)
    assert run.advance(tiny_gpt, 6, SamplingSettings()) is run
    assert run.new == generate(tiny_gpt, PROMPT, 6, SamplingSettings(), 5)
    run.advance(tiny_gpt, 2, SamplingSettings(0))
    assert run.new == generate(tiny_gpt, PROMPT, 2, SamplingSettings(), 5)
