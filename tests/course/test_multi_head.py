"""Head statistics against hand computation, the shapes through MultiHeadAttention against what
the module really produces, and per-head outputs recomputed from a trace."""

import dataclasses
import math
from types import SimpleNamespace

import pytest
import torch

from tinyformers.course.multi_head import (
    STATISTICS,
    AgreementProbe,
    HeadStats,
    agreement_probe,
    anchor_of,
    attention_fingerprint,
    attention_shapes,
    best_head,
    head_outputs,
    head_statistics,
    points_at_subject,
    predict_anchor_share,
    predict_open_weights,
    predict_sharpest_head,
    projection_parameters,
    sort_heads,
    strongest_key_habits,
    strongest_other_key,
    trace_sentence,
    uniform_entropy,
)
from tinyformers.hub.registry import load_shipped
from tinyformers.model.attention import MultiHeadAttention
from tinyformers.model.config import BertConfig, GPTConfig, Seq2SeqConfig
from tinyformers.text.corpora import agreement_examples
from tinyformers.trace import Trace, trace_ids


def previous_token_head(t: int) -> torch.Tensor:
    """A causal head that puts all its weight on the token before (row 0 on itself)."""
    weights = torch.zeros(t, t)
    weights[0, 0] = 1.0
    for i in range(1, t):
        weights[i, i - 1] = 1.0
    return weights


def as_layers(*heads: torch.Tensor) -> list[torch.Tensor]:
    """One layer holding the given (T, T) heads, in the (1, heads, T, T) format."""
    return [torch.stack(heads)[None]]


def by_hand(weights: torch.Tensor, anchors: list[int]) -> dict[str, float]:
    """The five statistics of one (T, T) head, with plain Python loops."""
    t = weights.shape[0]
    rows = weights.tolist()
    entropy = sum(-sum(p * math.log(p) for p in row if p > 0) for row in rows) / t
    distance = sum(sum(p * abs(i - j) for j, p in enumerate(row)) for i, row in enumerate(rows))
    previous = sum(rows[i][i - 1] for i in range(1, t)) / (t - 1)
    anchor = sum(sum(row[a] for a in anchors) for row in rows) / t
    itself = sum(rows[i][i] for i in range(t)) / t
    return dict(
        entropy=entropy, distance=distance / t, previous=previous, anchor=anchor, itself=itself
    )


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


def test_perfect_previous_token_head():
    t = 6
    (stats,) = head_statistics(as_layers(previous_token_head(t)), ["x"] * t)
    assert stats.previous == pytest.approx(1.0)
    assert stats.entropy == pytest.approx(0.0)
    assert stats.itself == pytest.approx(1 / t)  # only row 0, which can see nothing else
    assert stats.anchor == pytest.approx(2 / t)  # rows 0 and 1 look at the first token
    assert stats.distance == pytest.approx((t - 1) / t)


def test_uniform_rows_have_entropy_log_k():
    t = 7
    tokens = ["[CLS]", "a", "b", "c", "d", "e", "[SEP]"]
    (stats,) = head_statistics(as_layers(torch.full((t, t), 1 / t)), tokens, "[SEP]")
    assert stats.entropy == pytest.approx(math.log(t))
    assert stats.previous == stats.itself == stats.anchor == pytest.approx(1 / t)
    mean_distance = sum(abs(i - j) for i in range(t) for j in range(t)) / t / t
    assert stats.distance == pytest.approx(mean_distance)


def test_uniform_causal_rows_match_uniform_entropy():
    t = 9
    causal = torch.ones(t, t).tril()
    weights = causal / causal.sum(-1, keepdim=True)
    (stats,) = head_statistics(as_layers(weights), ["x"] * t)
    expected = sum(math.log(i + 1) for i in range(t)) / t
    assert stats.entropy == pytest.approx(expected)
    assert uniform_entropy(causal.bool(), t) == pytest.approx(expected)
    assert uniform_entropy(None, t) == pytest.approx(math.log(t))


def test_head_that_parks_on_sep():
    tokens = ["[CLS]", "the", "dog", "runs", "[SEP]"]
    weights = torch.zeros(5, 5)
    weights[:, 4] = 1.0
    (stats,) = head_statistics(as_layers(weights), tokens, "[SEP]")
    assert stats.anchor == pytest.approx(1.0)
    assert stats.itself == pytest.approx(1 / 5)
    assert stats.distance == pytest.approx((4 + 3 + 2 + 1 + 0) / 5)


def test_random_heads_match_hand_computation():
    generator = torch.Generator().manual_seed(0)
    t, n_head, n_layer = 8, 3, 2
    tokens = ["[CLS]", "a", "[SEP]", "b", "c", "d", "e", "[SEP]"]
    layers = [
        torch.softmax(3 * torch.randn(1, n_head, t, t, generator=generator), dim=-1)
        for _ in range(n_layer)
    ]
    stats = head_statistics(layers, tokens, "[SEP]")
    assert [(s.layer, s.head) for s in stats] == [
        (layer, head) for layer in range(n_layer) for head in range(n_head)
    ]
    for s in stats:
        expected = by_hand(layers[s.layer][0, s.head], anchors=[2, 7])
        for name in STATISTICS:
            assert getattr(s, name) == pytest.approx(expected[name], rel=1e-6), name


def test_statistics_of_a_real_model_are_within_bounds(tiny_gpt):
    trace = trace_ids(tiny_gpt, [1, 5, 7, 2, 9], list("abcde"))
    stats = head_statistics(trace.attentions, trace.tokens)
    assert len(stats) == trace.n_layer * trace.n_head
    for s in stats:
        assert 0 <= s.entropy <= uniform_entropy(trace.masks["self"], 5) + 1e-6
        for name in ("previous", "anchor", "itself"):
            assert 0 <= getattr(s, name) <= 1


@pytest.mark.parametrize(
    "layers, tokens, anchor, message",
    [
        ([], ["a", "b"], None, "no attention"),
        ([torch.full((1, 1, 2, 2), 0.5)], ["a"], None, "at least two tokens"),
        ([torch.full((1, 2, 2), 0.5)], ["a", "b"], None, "expected"),
        ([torch.full((1, 1, 3, 3), 1 / 3)], ["a", "b"], None, "3 tokens|2 tokens"),
        ([torch.full((1, 1, 2, 2), 0.4)], ["a", "b"], None, "do not sum to 1"),
        ([torch.tensor([[[[1.5, -0.5], [0.5, 0.5]]]])], ["a", "b"], None, "negative"),
        ([torch.full((1, 1, 2, 2), 0.5)], ["a", "b"], "[SEP]", "no \\[SEP\\] token"),
        (
            [torch.full((1, 1, 2, 2), 0.5), torch.full((1, 2, 2, 2), 0.5)],
            ["a", "b"],
            None,
            "2 heads but layer 0 has 1",
        ),
    ],
)
def test_bad_attention_is_refused_clearly(layers, tokens, anchor, message):
    with pytest.raises(ValueError, match=message):
        head_statistics(layers, tokens, anchor)


def test_sorting():
    stats = [
        HeadStats(0, 0, 1.0, 2.0, 0.1, 0.5, 0.2),
        HeadStats(0, 1, 0.5, 1.0, 0.9, 0.1, 0.3),
        HeadStats(1, 0, 2.0, 3.0, 0.4, 0.2, 0.1),
        HeadStats(1, 1, 0.2, 0.5, 0.4, 0.9, 0.6),
    ]
    assert [s.previous for s in sort_heads(stats, "previous")] == [0.9, 0.4, 0.4, 0.1]
    assert [s.entropy for s in sort_heads(stats, "entropy", descending=False)] == [
        0.2,
        0.5,
        1.0,
        2.0,
    ]
    ranked = sort_heads(stats, "previous")
    assert [(s.layer, s.head) for s in ranked] == [(0, 1), (1, 0), (1, 1), (0, 0)]  # ties stay
    with pytest.raises(ValueError, match="cannot sort heads by 'loudness'"):
        sort_heads(stats, "loudness")


# ---------------------------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------------------------


def recorded_shapes(mha: MultiHeadAttention, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Run ``mha`` on ``x`` and record, with hooks, the shapes it really produces."""
    seen: dict[str, tuple[int, ...]] = {}
    split, merge = mha.split_heads, mha.merge_heads

    def record_split(y):
        seen.setdefault("split input", tuple(y.shape))
        out = split(y)
        seen.setdefault("split", tuple(out.shape))
        return out

    def record_merge(y):
        seen["heads out"] = tuple(y.shape)
        out = merge(y)
        seen["merged"] = tuple(out.shape)
        return out

    mha.split_heads, mha.merge_heads = record_split, record_merge
    mha.c_proj.register_forward_hook(lambda m, i, o: seen.update(projected=tuple(o.shape)))
    out, weights = mha(x)
    seen["weights"] = tuple(weights.shape)
    seen["input"], seen["output"] = tuple(x.shape), tuple(out.shape)
    return seen


@pytest.mark.parametrize("n_embd, n_head, t", [(128, 4, 11), (32, 2, 1), (48, 12, 16)])
def test_shapes_match_multi_head_attention(n_embd, n_head, t):
    config = GPTConfig(n_embd=n_embd, n_head=n_head, block_size=16)
    steps = {step.dims + " " + step.code: step.shape for step in attention_shapes(config, t)}
    real = recorded_shapes(MultiHeadAttention(n_embd, n_head), torch.randn(1, t, n_embd))
    strip = lambda shape: shape[1:]  # noqa: E731  the module carries a batch axis B = 1
    assert steps["(T, C) x"] == strip(real["input"])
    assert steps["(T, C) q = q_proj(x)"] == strip(real["split input"])
    hs = n_embd // n_head
    assert steps["(T, nh, hs) q.view(T, nh, hs)"] == (t, n_head, hs)
    assert steps["(nh, T, hs) q.transpose(0, 1)"] == strip(real["split"])
    assert steps["(nh, T, T) softmax(scores, dim=-1)"] == strip(real["weights"])
    assert steps["(nh, T, hs) weights @ v"] == strip(real["heads out"])
    assert steps["(T, C) out.reshape(T, C)"] == strip(real["merged"])
    assert steps["(T, C) c_proj(out)"] == strip(real["projected"]) == strip(real["output"])


def test_shape_steps_are_consistent_reshapes():
    steps = attention_shapes(BertConfig(n_embd=64, n_head=8, block_size=20), 20)
    split, heads_first = steps[2].shape, steps[3].shape
    assert math.prod(split) == math.prod(steps[1].shape)  # a view keeps every number
    assert heads_first == (split[1], split[0], split[2])
    assert steps[-2].shape == steps[1].shape


@pytest.mark.parametrize("t, message", [(0, "at least|≥ 1"), (17, "at most 16"), (2.5, "whole")])
def test_bad_token_counts_are_refused(t, message):
    with pytest.raises(ValueError, match=message):
        attention_shapes(GPTConfig(block_size=16), t)


def test_projection_parameters_count_the_module():
    config = GPTConfig(n_embd=48, n_head=6)
    mha = MultiHeadAttention(config.n_embd, config.n_head)
    counted = {
        name: sum(p.numel() for p in getattr(mha, name).parameters())
        for name in ("q_proj", "k_proj", "v_proj", "c_proj")
    }
    assert projection_parameters(config) == counted


# ---------------------------------------------------------------------------------------------
# Per-head outputs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config_class, changes",
    [(GPTConfig, {}), (GPTConfig, {"position": "rotary"}), (BertConfig, {})],
)
def test_head_outputs_rebuild_each_layer(make_model, config_class, changes):
    model = make_model(config_class, **changes)
    ids = [3, 1, 4, 1, 5, 9, 2]
    trace = trace_ids(model, ids, [str(i) for i in ids])
    for layer in range(trace.n_layer):
        outputs = head_outputs(trace, layer)
        torch.testing.assert_close(outputs.weights, trace.attentions[layer][0])
        nh, t, hs = outputs.per_head.shape
        assert outputs.concatenated.shape == (t, nh * hs)
        torch.testing.assert_close(outputs.concatenated[:, hs : 2 * hs], outputs.per_head[1])
        if layer + 1 < trace.n_layer:  # the last hidden state has the final LayerNorm applied
            block = model.h[layer]
            x = trace.hidden_states[layer][0]
            if block.ln_placement == "pre":
                after = x + outputs.projected
                expected = after + block.mlp(block.ln_2(after))
            else:
                after = block.ln_1(x + outputs.projected)
                expected = block.ln_2(after + block.mlp(after))
            torch.testing.assert_close(trace.hidden_states[layer + 1][0], expected.detach())


def test_head_outputs_check_the_layer(tiny_gpt):
    trace = trace_ids(tiny_gpt, [1, 2, 3], list("abc"))
    with pytest.raises(ValueError, match="layer must be between 0 and 1"):
        head_outputs(trace, 2)


# ---------------------------------------------------------------------------------------------
# Tracing a sentence, agreement probes
# ---------------------------------------------------------------------------------------------


def test_trace_sentence_cuts_to_the_context(tiny_gpt, tiny_bert, char_tokenizer):
    text = "the cat sat on the mat. " * 3
    gpt = trace_sentence(tiny_gpt, char_tokenizer, text)
    assert gpt.input_ids == char_tokenizer.encode(text)[:16]
    bert = trace_sentence(tiny_bert, char_tokenizer, text)
    ids = char_tokenizer.encode(text)[:14]
    assert bert.input_ids == [char_tokenizer.cls_id, *ids, char_tokenizer.sep_id]


def test_trace_sentence_refuses_what_it_cannot_read(tiny_gpt, tiny_seq2seq, char_tokenizer):
    with pytest.raises(ValueError, match="empty"):
        trace_sentence(tiny_gpt, char_tokenizer, "")
    with pytest.raises(ValueError, match="GPT or BERT"):
        trace_sentence(tiny_seq2seq, char_tokenizer, "the cat")


@pytest.mark.parametrize("name", ["bert-stories", "gpt-stories"])
def test_agreement_probe_finds_verb_and_subject(name):
    loaded = load_shipped(name)
    for example in agreement_examples(5, seed=3):
        trace = trace_sentence(loaded.model, loaded.tokenizer, example.text)
        probe = agreement_probe(loaded.tokenizer, example, loaded.family)
        words = example.text.split()
        verb = "".join(trace.tokens[probe.verb[0] : probe.verb[1]]).replace("##", "").strip()
        subject = "".join(trace.tokens[probe.subject[0] : probe.subject[1]]).replace("##", "")
        assert verb == words[example.verb_index]
        assert subject.strip() == words[example.subject_index].lower()
        assert probe.query == probe.verb[0] - (0 if loaded.family == "bert" else 1)


def test_strongest_other_key_skips_the_query():
    row = torch.tensor([0.1, 0.6, 0.3])
    assert strongest_other_key(row, 1) == 2
    assert strongest_other_key(row, 0) == 1
    assert row.tolist() == pytest.approx([0.1, 0.6, 0.3])  # the row is not changed


def test_seq2seq_configs_are_refused_for_probes():
    with pytest.raises(ValueError, match="GPT or BERT"):
        agreement_probe(None, agreement_examples(1)[0], Seq2SeqConfig.family)


def test_points_at_subject_reads_the_strongest_other_key():
    probe = AgreementProbe(query=3, verb=(3, 4), subject=(1, 3))
    row = torch.tensor([0.1, 0.05, 0.25, 0.5, 0.1])  # itself first, then token 2
    assert points_at_subject(row, probe) == (2, True)
    row = torch.tensor([0.4, 0.05, 0.05, 0.45, 0.05])
    assert points_at_subject(row, probe) == (0, False)


def test_best_head_is_the_largest_score():
    scores = torch.tensor([[0.1, 0.0, 0.2], [0.95, 0.3, 0.05]])
    assert best_head(scores) == (1, 0)
    assert best_head(torch.tensor([[0.0, 0.7]])) == (0, 1)
    with pytest.raises(ValueError, match="layers, heads"):
        best_head(torch.zeros(3))


def test_strongest_key_habits_count_rows():
    assert strongest_key_habits(previous_token_head(5)) == (4, 1)  # row 0 can only see itself
    assert strongest_key_habits(torch.eye(4)) == (0, 4)
    uniform_rows = torch.full((3, 3), 1 / 3)  # ties go to the first key
    assert strongest_key_habits(uniform_rows) == (1, 1)
    with pytest.raises(ValueError, match="T, T"):
        strongest_key_habits(torch.ones(2, 3))


def test_anchor_of_each_family():
    assert anchor_of("bert") == ("[SEP]", "[SEP]")
    assert anchor_of("gpt") == (None, "the first token")
    with pytest.raises(ValueError, match="GPT or BERT"):
        anchor_of("seq2seq")


def test_attention_fingerprint_changes_with_tokens_and_weights(tiny_gpt, char_tokenizer):
    trace = trace_sentence(tiny_gpt, char_tokenizer, "the cat")
    again = trace_sentence(tiny_gpt, char_tokenizer, "the cat")
    other = trace_sentence(tiny_gpt, char_tokenizer, "the car")
    assert attention_fingerprint(trace) == attention_fingerprint(again)
    assert attention_fingerprint(trace) != attention_fingerprint(other)
    changed = [weights.clone() for weights in trace.attentions]
    changed[-1][0, 0, -1] = changed[-1][0, 0, -1].flip(-1)  # the last row, reordered
    reordered = dataclasses.replace(trace, attentions=changed)
    assert attention_fingerprint(reordered) != attention_fingerprint(trace)


# --- predict, then reveal --------------------------------------------------------------------


def hand_trace(heads: list[torch.Tensor], tokens: list[str], causal: bool) -> Trace:
    """A one-layer trace with the given (T, T) weights per head."""
    t = len(tokens)
    masks = {"self": torch.ones(t, t).tril().bool()} if causal else {}
    attention = torch.stack(heads)[None]  # (1, heads, T, T)
    return Trace(tokens, [attention], torch.zeros(1, t, 5), masks=masks)


def causal_even(t: int) -> torch.Tensor:
    """Every row spread evenly over the keys a causal mask lets it see."""
    return torch.ones(t, t).tril() / torch.arange(1, t + 1)[:, None]


GPT = SimpleNamespace(name="toy-gpt", family="gpt")
BERT = SimpleNamespace(name="toy-bert", family="bert")


def test_sharpest_head_has_the_lowest_entropy() -> None:
    trace = hand_trace([causal_even(4), previous_token_head(4)], list("abcd"), causal=True)
    prediction = predict_sharpest_head(trace, GPT, 0)
    assert prediction.choices == ("head 0", "head 1")
    assert prediction.values == {"model": "toy-gpt", "layer": 0}
    reveal = prediction.reveal()
    assert reveal.answer == "head 1"  # one key per row: entropy 0
    even = sum(math.log(i) for i in range(1, 5)) / 4
    assert reveal.values == {
        "entropy": pytest.approx(0.0),
        "flattest": "head 0",
        "highest": pytest.approx(even),
        "uniform": pytest.approx(even),
    }
    assert torch.equal(reveal.data["weights"], previous_token_head(4))


@pytest.mark.parametrize("causal, open_cells", [(True, 10), (False, 16)])
def test_open_weights_count_the_cells_the_mask_leaves(causal, open_cells) -> None:
    trace = hand_trace([causal_even(4)] * 3, list("abcd"), causal=causal)
    prediction = predict_open_weights(trace, GPT, 0)
    assert prediction.values == {"model": "toy-gpt", "layer": 0, "heads": 3, "tokens": 4}
    reveal = prediction.reveal()
    assert reveal.answer == 3 * open_cells
    assert reveal.values == {"cells": 16, "allowed": open_cells, "heads": 3}


@pytest.mark.parametrize("config_class", [GPTConfig, BertConfig])
def test_open_weights_are_the_positive_weights_of_a_real_model(make_model, config_class) -> None:
    model = make_model(config_class)
    trace = trace_ids(model, [3, 4, 5, 6, 7], list("abcde"))
    family = SimpleNamespace(name="tiny", family=model.config.family)
    answer = predict_open_weights(trace, family, 1).reveal().answer
    assert answer == int((trace.attentions[1] > 0).sum())
    assert answer == (2 * 15 if config_class is GPTConfig else 2 * 25)  # T(T+1)/2 or T² per head


def test_anchor_share_of_a_head_that_parks_on_the_first_token() -> None:
    parked = torch.zeros(4, 4)
    parked[:, 0] = 1.0
    trace = hand_trace([causal_even(4), parked], list("abcd"), causal=True)
    prediction = predict_anchor_share(trace, GPT, 0, 1)
    assert prediction.values["anchor"] == "the first token" and prediction.bounds == (0.0, 1.0)
    reveal = prediction.reveal()
    assert reveal.answer == pytest.approx(1.0)
    assert reveal.values["even"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    assert reveal.data["highlight_column"] == 0
    even = predict_anchor_share(trace, GPT, 0, 0).reveal()
    assert even.answer == pytest.approx(even.values["even"])


def test_anchor_share_in_bert_is_the_weight_on_sep() -> None:
    tokens = ["[CLS]", "a", "b", "[SEP]"]
    weights = torch.full((4, 4), 0.1)
    weights[:, 3] = 0.7
    trace = hand_trace([weights, weights], tokens, causal=False)
    reveal = predict_anchor_share(trace, BERT, 0, 1).reveal()
    assert reveal.answer == pytest.approx(0.7)
    assert reveal.values == {"even": pytest.approx(0.25), "anchor": "[SEP]"}
    with pytest.raises(ValueError, match="no \\[SEP\\]"):
        predict_anchor_share(hand_trace([weights], ["a", "b", "c", "d"], False), BERT, 0, 0)
