"""The step-by-step head against PyTorch's attention, our ``attention()``, and what the models
themselves compute; the √d experiment against closed forms and direct computations."""

import math

import pytest
import torch
import torch.nn.functional as F

from tinyformers.course import attention as stepwise
from tinyformers.hub.registry import load_shipped
from tinyformers.model.attention import attention, causal_mask
from tinyformers.model.config import GPTConfig
from tinyformers.trace import trace_ids, trace_text

SENTENCE = "the old dog sees Mia . she runs ."


@pytest.fixture(scope="module")
def shipped():
    return {name: load_shipped(name) for name in ("gpt-stories", "bert-stories")}


def random_head(t=6, c=8, d_k=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(t, c, generator=gen)
    weights = [torch.randn(c, d_k, generator=gen) for _ in range(3)]
    biases = tuple(torch.randn(d_k, generator=gen) for _ in range(3))
    return x, weights, biases


def inside_the_model(model, ids, layer, token_type_ids=None):
    """What the chosen layer's attention reads (its input) and the per-head outputs it merges
    (the input of c_proj), captured with hooks during a normal forward pass."""
    seen = {}
    attn = model.h[layer].attn
    hooks = [
        attn.register_forward_pre_hook(lambda m, args: seen.__setitem__("x", args[0])),
        attn.c_proj.register_forward_pre_hook(lambda m, args: seen.__setitem__("heads", args[0])),
    ]
    kwargs = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
    try:
        with torch.no_grad():
            out = model(torch.tensor([ids]), output_attentions=True, **kwargs)
    finally:
        for hook in hooks:
            hook.remove()
    return seen["x"][0], seen["heads"][0], out.attentions[layer][0]


# ---------------------------------------------------------------------------------------------
# The computation against references
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("causal", [False, True])
def test_head_steps_match_attention_and_sdpa(causal):
    x, (w_q, w_k, w_v), biases = random_head()
    mask = causal_mask(6) if causal else None
    steps = stepwise.head_steps(list("abcdef"), x, w_q, w_k, w_v, biases, mask)
    q = F.linear(x, w_q.T, biases[0])
    k = F.linear(x, w_k.T, biases[1])
    v = F.linear(x, w_v.T, biases[2])
    torch.testing.assert_close(steps.q, q)
    torch.testing.assert_close(steps.k, k)
    torch.testing.assert_close(steps.v, v)
    out, weights = attention(q, k, v, mask)
    torch.testing.assert_close(steps.weights, weights)
    torch.testing.assert_close(steps.output, out)
    sdpa = F.scaled_dot_product_attention(q[None], k[None], v[None], attn_mask=mask)[0]
    torch.testing.assert_close(steps.output, sdpa, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(steps.scores, q @ k.T)  # every entry, before masking
    assert steps.scale == pytest.approx(2.0)


@pytest.mark.parametrize("name", ["gpt-stories", "bert-stories"])
def test_every_head_of_the_shipped_models_matches_the_model(shipped, name):
    loaded = shipped[name]
    model, tok = loaded.model, loaded.tokenizer
    trace = trace_text(model, tok, SENTENCE)
    segments = torch.zeros(1, len(trace.input_ids), dtype=torch.long)
    head_size = model.config.head_size
    for layer in range(model.config.n_layer):
        kwargs = {"token_type_ids": segments} if name.startswith("bert") else {}
        x, heads, returned = inside_the_model(model, trace.input_ids, layer, **kwargs)
        for head in range(model.config.n_head):
            steps = stepwise.model_head(model, trace, layer, head)
            torch.testing.assert_close(steps.x, x, atol=1e-6, rtol=0)
            torch.testing.assert_close(steps.weights, trace.head(layer, head), atol=1e-6, rtol=0)
            torch.testing.assert_close(steps.weights, returned[head], atol=1e-6, rtol=0)
            own = heads[:, head * head_size : (head + 1) * head_size]
            torch.testing.assert_close(steps.output, own, atol=1e-5, rtol=0)


def test_gpt_x_is_after_ln_1_and_bert_x_is_the_block_input(shipped):
    gpt, bert = shipped["gpt-stories"], shipped["bert-stories"]
    gpt_trace = trace_text(gpt.model, gpt.tokenizer, SENTENCE)
    hidden = gpt_trace.hidden_states[1][0]
    with torch.no_grad():
        expected = gpt.model.h[1].ln_1(hidden)
    torch.testing.assert_close(stepwise.attention_input(gpt_trace, 1), expected)
    assert not torch.allclose(expected, hidden)
    bert_trace = trace_text(bert.model, bert.tokenizer, SENTENCE)
    block_input = bert_trace.hidden_states[2][0]
    torch.testing.assert_close(stepwise.attention_input(bert_trace, 2), block_input)


def test_rotary_gpt_matches_the_model(make_model):
    model = make_model(GPTConfig, position="rotary")
    ids = [3, 1, 4, 1, 5, 9, 2, 6]
    trace = trace_ids(model, ids, [str(i) for i in ids])
    x, heads, _ = inside_the_model(model, ids, 1)
    for head in range(model.config.n_head):
        steps = stepwise.model_head(model, trace, 1, head)
        assert steps.rotary
        torch.testing.assert_close(steps.weights, trace.head(1, head), atol=1e-6, rtol=0)
        hs = model.config.head_size
        torch.testing.assert_close(
            steps.output, heads[:, head * hs : (head + 1) * hs], atol=1e-5, rtol=0
        )


def test_trace_sentence_equals_trace_text_and_cuts_to_max_tokens(shipped):
    for loaded in shipped.values():
        short = stepwise.trace_sentence(loaded.model, loaded.tokenizer, SENTENCE, 24)
        full = trace_text(loaded.model, loaded.tokenizer, SENTENCE)
        assert short.tokens == full.tokens
        for ours, theirs in zip(short.attentions, full.attentions, strict=True):
            torch.testing.assert_close(ours, theirs)
    bert = shipped["bert-stories"]
    ids = stepwise.sentence_ids(bert.model, bert.tokenizer, "the dog runs . " * 20, 10)
    assert len(ids) == 10 and ids[0] == bert.tokenizer.cls_id and ids[-1] == bert.tokenizer.sep_id
    gpt = shipped["gpt-stories"]
    assert len(stepwise.sentence_ids(gpt.model, gpt.tokenizer, "the dog runs . " * 40, 500)) == 64


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_rows_sum_to_one_and_causal_entries_are_exactly_zero(seed):
    x, (w_q, w_k, w_v), biases = random_head(t=7, seed=seed)
    steps = stepwise.head_steps(list("abcdefg"), x, w_q, w_k, w_v, biases, causal_mask(7))
    torch.testing.assert_close(steps.weights.sum(dim=-1), torch.ones(7))
    above = torch.ones(7, 7, dtype=torch.bool).triu(diagonal=1)
    assert (steps.weights[above] == 0).all()
    assert torch.isneginf(steps.scaled[above]).all()
    assert torch.isfinite(steps.scaled[~above]).all()
    assert (steps.weights[0, 0] == 1).item()  # the first token can only look at itself
    torch.testing.assert_close(steps.scaled[~above], (steps.scores / math.sqrt(4))[~above])


def test_shipped_gpt_uses_its_causal_mask_and_bert_none(shipped):
    gpt, bert = shipped["gpt-stories"], shipped["bert-stories"]
    steps = stepwise.model_head(gpt.model, trace_text(gpt.model, gpt.tokenizer, SENTENCE), 0, 0)
    assert steps.mask is not None
    assert (steps.weights.triu(diagonal=1) == 0).all()
    steps = stepwise.model_head(bert.model, trace_text(bert.model, bert.tokenizer, SENTENCE), 0, 0)
    assert steps.mask is None and (steps.weights > 0).all()


# ---------------------------------------------------------------------------------------------
# The toy
# ---------------------------------------------------------------------------------------------


def test_toy_is_seeded_and_repeated_words_share_rows():
    tokens = ["the", "dog", "sees", "the", "cat"]
    first = stepwise.toy_head(tokens, d_model=4, d_k=2, seed=3)
    again = stepwise.toy_head(tokens, d_model=4, d_k=2, seed=3)
    other = stepwise.toy_head(tokens, d_model=4, d_k=2, seed=4)
    torch.testing.assert_close(first.x, again.x)
    torch.testing.assert_close(first.w_q, again.w_q)
    assert not torch.equal(first.x, other.x)
    torch.testing.assert_close(first.x[0], first.x[3])
    torch.testing.assert_close(first.q[0], first.q[3])
    assert not torch.equal(first.x[0], first.x[1])
    assert first.x.shape == (5, 4) and first.q.shape == (5, 2) and first.weights.shape == (5, 5)
    assert torch.equal(first.x * 10, (first.x * 10).round())  # one decimal
    assert first.mask is None and (first.b_q == 0).all()
    causal = stepwise.toy_head(tokens, d_model=4, d_k=2, seed=3, causal=True)
    assert (causal.weights.triu(diagonal=1) == 0).all()


@pytest.mark.parametrize(
    "tokens, d_model, d_k, message",
    [
        ([], 4, 2, "1 to 12 tokens"),
        (["a"] * 13, 4, 2, "1 to 12 tokens"),
        (["a"], 0, 2, "d_model"),
        (["a"], 10**9, 2, "d_model"),
        (["a"], 4, -1, "d_k"),
        (["a"], 4, 17, "d_k"),
        (["a"], True, 2, "d_model"),
        (["a"], 4, 2.5, "d_k"),
    ],
)
def test_toy_rejects_bad_sizes(tokens, d_model, d_k, message):
    with pytest.raises(ValueError, match=message):
        stepwise.toy_head(tokens, d_model, d_k, seed=0)


def test_toy_tokens():
    assert stepwise.toy_tokens("  Зоя видит 🐶  ") == ["Зоя", "видит", "🐶"]
    assert len(stepwise.toy_tokens("a " * 50)) == stepwise.MAX_TOY_TOKENS
    with pytest.raises(ValueError, match="empty"):
        stepwise.toy_tokens(" \n ")


def test_bad_arguments_are_named(shipped):
    gpt = shipped["gpt-stories"]
    trace = trace_text(gpt.model, gpt.tokenizer, SENTENCE)
    with pytest.raises(ValueError, match="layer must be between 0 and 2"):
        stepwise.model_head(gpt.model, trace, 3, 0)
    with pytest.raises(ValueError, match="head must be between 0 and 3"):
        stepwise.model_head(gpt.model, trace, 0, -1)
    with pytest.raises(ValueError, match="empty"):
        stepwise.sentence_ids(gpt.model, gpt.tokenizer, "", 24)
    with pytest.raises(ValueError, match="max_tokens"):
        stepwise.sentence_ids(gpt.model, gpt.tokenizer, SENTENCE, 0)
    x, (w_q, w_k, w_v), _ = random_head()
    with pytest.raises(ValueError, match="6 rows but there are 2 tokens"):
        stepwise.head_steps(["a", "b"], x, w_q, w_k, w_v)
    with pytest.raises(ValueError, match="W_K has shape"):
        stepwise.head_steps(list("abcdef"), x, w_q, w_k[:, :3], w_v)
    with pytest.raises(ValueError, match="mask has shape"):
        stepwise.head_steps(list("abcdef"), x, w_q, w_k, w_v, mask=causal_mask(5))


# ---------------------------------------------------------------------------------------------
# Why √d: the experiment
# ---------------------------------------------------------------------------------------------


def test_unscaled_scores_spread_like_sqrt_d_and_scaled_ones_like_one():
    dims = [1, 16, 256]
    stats = stepwise.scaling_experiment(dims, n_keys=16, n_samples=500, seed=0)
    for d, std, scaled in zip(dims, stats.unscaled.std, stats.scaled.std, strict=True):
        assert std == pytest.approx(math.sqrt(d), rel=0.1)
        assert scaled == pytest.approx(1.0, rel=0.1)
    # a normal variable with standard deviation s has mean |x| = s √(2/π)
    assert stats.scaled.mean_abs[-1] == pytest.approx(math.sqrt(2 / math.pi), rel=0.1)


def test_unscaled_softmax_saturates_and_scaled_does_not():
    dims = stepwise.powers_of_two(1, 1024)
    stats = stepwise.scaling_experiment(dims, n_keys=16, n_samples=200, seed=1)
    assert stats.unscaled.entropy[-1] < 0.25 < 2.0 < stats.scaled.entropy[-1]
    assert stats.unscaled.max_weight[-1] > 0.9 > 0.4 > stats.scaled.max_weight[-1]
    assert stats.unscaled.entropy[-1] < stats.unscaled.entropy[3] < stats.unscaled.entropy[0]
    assert max(stats.scaled.entropy) - min(stats.scaled.entropy) < 0.3
    assert all(e <= math.log(16) + 1e-9 for e in stats.scaled.entropy)
    assert stats.unscaled.entropy[0] == stats.scaled.entropy[0]  # √1 = 1


def test_statistics_equal_a_direct_computation():
    scores = stepwise.random_scores(64, n_keys=8, n_samples=50, seed=7)
    assert scores.shape == (50, 8)
    stats = stepwise.scaling_experiment([64], n_keys=8, n_samples=50, seed=7)
    for values, s in ((stats.unscaled, scores), (stats.scaled, scores / 8)):
        p = torch.softmax(s, dim=-1)
        entropy = -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(dim=-1)
        assert values.mean_abs[0] == pytest.approx(s.abs().mean().item())
        assert values.std[0] == pytest.approx(s.std().item())
        assert values.entropy[0] == pytest.approx(entropy.mean().item())
        assert values.max_weight[0] == pytest.approx(p.max(dim=-1).values.mean().item())


def test_a_dimension_gives_the_same_numbers_whatever_the_range_and_seed_matters():
    alone = stepwise.scaling_experiment([32], 8, 40, seed=5)
    among = stepwise.scaling_experiment([4, 32, 128], 8, 40, seed=5)
    assert alone.unscaled.std[0] == among.unscaled.std[1]
    other = stepwise.scaling_experiment([32], 8, 40, seed=6)
    assert other.unscaled.std[0] != alone.unscaled.std[0]
    chunked = stepwise.random_scores(4096, 512, 3, seed=2)  # more than one chunk
    assert chunked.shape == (3, 512) and torch.isfinite(chunked).all()


def test_softmax_entropy_of_uniform_and_one_hot():
    uniform = torch.full((2, 8), 1 / 8, dtype=torch.float64)
    assert stepwise.softmax_entropy(uniform).tolist() == pytest.approx([math.log(8)] * 2)
    assert stepwise.softmax_entropy(torch.tensor([[0.0, 1.0, 0.0]])).item() == 0


@pytest.mark.parametrize(
    "dims, n_keys, n_samples, message",
    [
        ([], 8, 10, "at least one dimension"),
        ([0], 8, 10, "each dimension"),
        ([10**9], 8, 10, "each dimension"),
        ([4.0], 8, 10, "each dimension"),
        ([4], 1, 10, "number of keys"),
        ([4], 10**9, 10, "number of keys"),
        ([4], 8, 0, "number of samples"),
        ([4], 8, 10**9, "number of samples"),
        ([4096, 2048], 1024, 10_000, "random numbers; the limit"),
    ],
)
def test_experiment_rejects_absurd_sizes(dims, n_keys, n_samples, message):
    with pytest.raises(ValueError, match=message):
        stepwise.scaling_experiment(dims, n_keys, n_samples)


def test_powers_of_two():
    assert stepwise.powers_of_two(1, 16) == [1, 2, 4, 8, 16]
    assert stepwise.powers_of_two(3, 100) == [4, 8, 16, 32, 64]
    with pytest.raises(ValueError):
        stepwise.powers_of_two(8, 4)
    with pytest.raises(ValueError):
        stepwise.powers_of_two(1, 10**9)


def test_default_query_is_the_last_ordinary_token():
    assert stepwise.default_query(["[CLS]", "the", "dog", "runs", ".", "[SEP]"]) == 3
    assert stepwise.default_query(["the", " 42", " !"]) == 1
    assert stepwise.default_query([".", "!"]) == 1  # no ordinary token: the last one
    with pytest.raises(ValueError, match="no tokens"):
        stepwise.default_query([])


# --- predict, then reveal --------------------------------------------------------------------


def diagonal_head(strength: float, causal: bool = False) -> stepwise.HeadSteps:
    """Three tokens whose queries match only their own keys: scores = strength · I."""
    tokens = ["a", "b", "c"]
    eye = torch.eye(3)
    mask = torch.ones(3, 3).tril().bool() if causal else None
    return stepwise.head_steps(tokens, eye, eye * strength, eye, eye, mask=mask)


def test_strongest_key_is_the_query_itself_on_a_diagonal_head() -> None:
    prediction = stepwise.predict_strongest_key(diagonal_head(2.0), 1)
    assert prediction.choices == ("0: 'a'", "1: 'b'", "2: 'c'")
    assert prediction.values == {"query": "1: 'b'"}
    reveal = prediction.reveal()
    assert reveal.answer == "1: 'b'"
    expected = math.exp(2 / math.sqrt(3)) / (math.exp(2 / math.sqrt(3)) + 2)
    assert reveal.values["weight"] == pytest.approx(expected)


def test_a_causal_query_chooses_only_among_the_keys_it_sees() -> None:
    prediction = stepwise.predict_strongest_key(diagonal_head(2.0, causal=True), 1)
    assert prediction.choices == ("0: 'a'", "1: 'b'")


def test_self_weight_is_the_diagonal_weight() -> None:
    reveal = stepwise.predict_self_weight(diagonal_head(2.0), 0).reveal()
    assert reveal.answer == pytest.approx(
        math.exp(2 / math.sqrt(3)) / (math.exp(2 / math.sqrt(3)) + 2)
    )
    assert reveal.values["visible"] == 3


@pytest.mark.parametrize("strength, answer", [(2.0, "More than half"), (0.5, "Half or less")])
def test_unscaled_peak_follows_the_raw_softmax(strength, answer) -> None:
    # unscaled row [s, 0, 0]: the peak is e^s / (e^s + 2): 0.79 for s = 2, 0.45 for s = 0.5
    prediction = stepwise.predict_unscaled_peak(diagonal_head(strength), 0)
    reveal = prediction.reveal()
    assert reveal.answer == answer
    assert reveal.values["peak"] == pytest.approx(math.exp(strength) / (math.exp(strength) + 2))
    assert prediction.values["scale"] == pytest.approx(math.sqrt(3))
