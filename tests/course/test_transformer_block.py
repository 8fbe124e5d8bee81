"""Block inspection: the replay ends where the model's own forward pass ends, LayerNorm statistics
match torch, the code path is the order blocks.py really runs, parameter counts are exact."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tinyformers.course import transformer_block as tb
from tinyformers.course.transformer_block import (
    ABLATION_VARIANTS,
    ADD,
    AFTER_ATTENTION,
    AFTER_MLP,
    ATTENTION_SUM,
    BLOCK_INPUT,
    MLP_SUM,
    LayerNormStats,
    ablation_progress,
    best_variant,
    block_parameters,
    code_path,
    inspect_ids,
    model_inputs,
    step_shapes,
    walk_block,
)
from tinyformers.hub.registry import load_shipped
from tinyformers.model.blocks import Block
from tinyformers.model.config import BertConfig, GPTConfig
from tinyformers.text.corpora import generate_corpus, lesson_corpus
from tinyformers.text.tokenizers import train_char
from tinyformers.training.experiments import (
    BLOCK_SIZE,
    FULL,
    NEITHER,
    NO_LAYER_NORM,
    NO_RESIDUAL,
    VariantResult,
    check_text,
)
from tinyformers.training.loop import CausalLMTask, Progress

IDS = [5, 17, 3, 22, 9, 31, 2, 14, 7]
SENTENCE = "Zoe sees the big dog . the dog"

# Every arrangement blocks.py supports: placement x residual x LayerNorm, for both families.
VARIANTS = [
    (family, dict(ln_placement=placement, residual=residual, layer_norm=layer_norm))
    for family in (GPTConfig, BertConfig)
    for placement in ("pre", "post")
    for residual in (True, False)
    for layer_norm in (True, False)
]


def variant_id(variant) -> str:
    family, changes = variant
    flags = "-".join(f"{k}={v}" for k, v in changes.items())
    return f"{family.__name__}-{flags}"


@pytest.fixture(scope="module")
def shipped():
    return {name: load_shipped(name) for name in ("gpt-stories", "bert-stories")}


def own_hidden_states(model: nn.Module, ids, segments=None) -> list[torch.Tensor]:
    """The model's hidden states from a forward pass of its own, run here in the test."""
    kwargs = {} if segments is None else {"token_type_ids": torch.tensor([segments])}
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=True, **kwargs)
    return [h[0] for h in out.hidden_states]


def assert_replay_matches(model: nn.Module, ids, segments=None) -> None:
    inspection = inspect_ids(model, ids, segments)
    expected = own_hidden_states(model, ids, segments)
    assert len(inspection.layers) == len(expected) - 1 == model.config.n_layer
    for layer in range(len(inspection.layers)):
        torch.testing.assert_close(
            inspection.replayed_hidden_state(layer), expected[layer + 1], atol=1e-5, rtol=1e-5
        )
    torch.testing.assert_close(inspection.layers[0].block_input, expected[0])
    assert inspection.max_difference() < 1e-5


# ---------------------------------------------------------------------------------------------
# The replay equals the model's own hidden states
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_replay_equals_hidden_states_of_every_arrangement(make_model, variant) -> None:
    family, changes = variant
    model = make_model(family, **changes)
    segments = [0] * 4 + [1] * 5 if family is BertConfig else None
    assert_replay_matches(model, IDS, segments)


def test_replay_follows_rotary_positions(make_model) -> None:
    assert_replay_matches(make_model(GPTConfig, position="rotary"), IDS)


@pytest.mark.parametrize("name", ["gpt-stories", "bert-stories"])
def test_replay_equals_hidden_states_of_shipped_models(shipped, name) -> None:
    loaded = shipped[name]
    ids, segments = model_inputs(loaded.model, loaded.tokenizer, SENTENCE)
    assert_replay_matches(loaded.model, ids, segments)


def test_gpt_last_layer_goes_through_ln_f_and_bert_has_no_final_norm(tiny_gpt, tiny_bert) -> None:
    gpt = inspect_ids(tiny_gpt, IDS)
    assert gpt.final_norm == "ln_f"
    with torch.no_grad():
        torch.testing.assert_close(
            gpt.outer_norms["ln_f"].output, tiny_gpt.ln_f(gpt.layers[-1].output)
        )
    bert = inspect_ids(tiny_bert, IDS)
    assert bert.final_norm is None
    assert set(bert.outer_norms) == {"ln_emb", "mlm_head.ln"}
    torch.testing.assert_close(bert.outer_norms["ln_emb"].output, bert.hidden_states[0])


def test_a_path_in_the_wrong_order_does_not_reproduce_the_block(tiny_gpt) -> None:
    """The equality above can fail: replaying a pre-LN block with the post-LN order differs."""
    block = tiny_gpt.h[0]
    x = torch.randn(1, len(IDS), tiny_gpt.config.n_embd)
    wrong = code_path(tiny_gpt.config.replace(ln_placement="post"))
    with torch.no_grad():
        record = block(x, return_record=True).record
    right = walk_block(block, record, code_path(tiny_gpt.config))
    replayed = walk_block(block, record, wrong)
    torch.testing.assert_close(right.output, record.output[0], rtol=0, atol=0)
    assert right.read_gap == 0.0
    assert (replayed.output - record.output[0]).abs().max() > 1e-2
    assert replayed.read_gap > 1e-2


def test_bert_inputs_add_cls_and_sep(shipped) -> None:
    loaded = shipped["bert-stories"]
    ids, segments = model_inputs(loaded.model, loaded.tokenizer, SENTENCE)
    assert ids[0] == loaded.tokenizer.cls_id and ids[-1] == loaded.tokenizer.sep_id
    assert segments == [0] * len(ids)
    gpt = shipped["gpt-stories"]
    assert model_inputs(gpt.model, gpt.tokenizer, SENTENCE) == (
        gpt.tokenizer.encode(SENTENCE),
        None,
    )


# ---------------------------------------------------------------------------------------------
# LayerNorm statistics
# ---------------------------------------------------------------------------------------------


def all_norms(inspection) -> list[LayerNormStats]:
    inside = [stats for layer in inspection.layers for stats in layer.norms.values()]
    return inside + list(inspection.outer_norms.values())


def check_against_torch(stats: LayerNormStats) -> None:
    """γ·x̂ + β is torch's layer_norm of the input, and is what the module returned."""
    rebuilt = stats.normalized * stats.weight + stats.bias
    reference = F.layer_norm(
        stats.input, (stats.input.shape[-1],), stats.weight, stats.bias, stats.eps
    )
    torch.testing.assert_close(rebuilt, reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rebuilt, stats.output, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", [GPTConfig, BertConfig])
def test_normalized_values_have_mean_0_and_std_1(make_model, family) -> None:
    """With ε negligible (1e-12, BERT's), x̂ has mean 0 and std 1 per token; the shipped-model
    test below covers GPT-2's ε = 1e-5, which lowers the std measurably for small inputs."""
    inspection = inspect_ids(make_model(family, layer_norm_eps=1e-12), IDS)
    norms = all_norms(inspection)
    assert len(norms) == 2 * inspection.config.n_layer + len(inspection.outer_norms)
    for stats in norms:
        mean, std = LayerNormStats.per_token(stats.normalized)
        assert mean.abs().max() < 1e-4, stats.name
        assert (std - 1).abs().max() < 1e-4, stats.name
        torch.testing.assert_close(std, stats.normalized.std(dim=-1, unbiased=False))
        check_against_torch(stats)


@pytest.mark.parametrize("name", ["gpt-stories", "bert-stories"])
def test_shipped_layer_norms_match_torch_and_eps_explains_the_std(shipped, name) -> None:
    """The std of x̂ is √(σ²/(σ²+ε)): 1 within 1e-4 unless σ² is small next to ε (GPT-2's
    ε = 1e-5 against the small embeddings entering the first block)."""
    loaded = shipped[name]
    ids, segments = model_inputs(loaded.model, loaded.tokenizer, SENTENCE)
    checked = 0
    for stats in all_norms(inspect_ids(loaded.model, ids, segments)):
        mean, std = LayerNormStats.per_token(stats.normalized)
        variance = stats.input.var(dim=-1, unbiased=False)
        assert mean.abs().max() < 1e-4
        torch.testing.assert_close(std, (variance / (variance + stats.eps)).sqrt())
        large = variance > 5_000 * stats.eps  # there ε/(2σ²) < 1e-4
        assert torch.all((std[large] - 1).abs() < 1e-4)
        checked += int(large.sum())
        check_against_torch(stats)
    assert checked > 0


def test_gamma_and_beta_are_the_modules_own(shipped) -> None:
    model = shipped["gpt-stories"].model
    inspection = inspect_ids(model, IDS)
    for i, layer in enumerate(inspection.layers):
        for name, stats in layer.norms.items():
            module = model.h[i].get_submodule(name)
            assert torch.equal(stats.weight, module.weight) and torch.equal(stats.bias, module.bias)
            assert stats.eps == module.eps
    assert torch.equal(inspection.outer_norms["ln_f"].weight, model.ln_f.weight)


def test_stages_report_input_normalized_and_output(tiny_gpt) -> None:
    stats = inspect_ids(tiny_gpt, IDS).layers[1].norms["ln_2"]
    stages = stats.stages()
    assert len(stages) == 3
    for (mean, std), tensor in zip(
        stages.values(), (stats.input, stats.normalized, stats.output), strict=True
    ):
        torch.testing.assert_close(mean, tensor.mean(dim=-1))
        torch.testing.assert_close(std, tensor.std(dim=-1, unbiased=False))


# ---------------------------------------------------------------------------------------------
# The code path is the order blocks.py runs
# ---------------------------------------------------------------------------------------------


def hooked_call_order(model: nn.Module, ids, segments=None) -> list[str]:
    """Names of block 0's sub-modules in the order their forward started."""
    block = model.h[0]
    calls: list[str] = []
    hooks = [
        module.register_forward_pre_hook(lambda m, args, name=name: calls.append(name))
        for name, module in block.named_modules()
        if name
    ]
    try:
        own_hidden_states(model, ids, segments)
    finally:
        for hook in hooks:
            hook.remove()
    return calls


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_code_path_lists_modules_in_the_order_the_forward_pass_calls_them(
    make_model, variant
) -> None:
    family, changes = variant
    model = make_model(family, **changes)
    path = code_path(model.config)
    listed = [step.module for step in path if step.module]
    called = [name for name in hooked_call_order(model, IDS) if name in set(listed)]
    assert called == listed


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_code_path_shape_of_a_block(variant) -> None:
    family, changes = variant
    config = family(n_embd=32, n_head=2, **changes)
    path = code_path(config)
    kinds = [step.kind for step in path]
    assert kinds.count("attention") == 1 and kinds.count("linear") == 2
    assert kinds.count(ADD) == (2 if config.residual else 0)
    assert kinds.count("replace") == (0 if config.residual else 2)
    assert [s.active for s in path if s.kind == "layernorm"] == [config.layer_norm] * 2
    norm_positions = [i for i, s in enumerate(path) if s.kind == "layernorm"]
    if config.ln_placement == "pre":
        assert norm_positions == [0, 3]  # each sub-layer starts with its LayerNorm
    else:
        assert norm_positions == [2, len(path) - 1]  # and ends with it in post-LN


def test_step_shapes_are_the_shapes_of_the_real_tensors(make_model) -> None:
    model = make_model(GPTConfig, n_inner=48)
    inspection = inspect_ids(model, IDS)
    for layer in inspection.layers:
        assert layer.shapes == step_shapes(inspection.path, len(IDS))
    widths = {s.module: s.out_width for s in inspection.path if s.module}
    assert widths["mlp.c_fc"] == widths["mlp.act"] == 48 and widths["mlp.c_proj"] == 32


# ---------------------------------------------------------------------------------------------
# The residual stream
# ---------------------------------------------------------------------------------------------


def mean_norm(x: torch.Tensor) -> float:
    return x.norm(dim=-1).mean().item()


def test_residual_norms_of_a_pre_ln_model(tiny_gpt) -> None:
    inspection = inspect_ids(tiny_gpt, IDS)
    norms = inspection.residual_norms()
    assert list(norms) == [BLOCK_INPUT, AFTER_ATTENTION, AFTER_MLP]
    states = own_hidden_states(tiny_gpt, IDS)
    assert norms[BLOCK_INPUT][0] == pytest.approx(mean_norm(states[0]))
    assert norms[BLOCK_INPUT][1] == pytest.approx(mean_norm(states[1]))
    assert norms[AFTER_MLP][0] == pytest.approx(mean_norm(states[1]))
    block, mask = tiny_gpt.h[0], tiny_gpt.attention_mask(len(IDS), None, "cpu")
    with torch.no_grad():
        after_attn = block(states[0][None], mask).after_attn[0]
    assert norms[AFTER_ATTENTION][0] == pytest.approx(mean_norm(after_attn))


def test_post_ln_norms_include_the_sums_before_layer_norm(tiny_bert) -> None:
    inspection = inspect_ids(tiny_bert, IDS)
    norms = inspection.residual_norms()
    assert list(norms) == [BLOCK_INPUT, AFTER_ATTENTION, AFTER_MLP, ATTENTION_SUM, MLP_SUM]
    layer = inspection.layers[0]
    assert norms[ATTENTION_SUM][0] == pytest.approx(mean_norm(layer.norms["ln_1"].input))
    assert norms[MLP_SUM][0] == pytest.approx(mean_norm(layer.norms["ln_2"].input))
    no_norm = inspect_ids(
        tiny_bert.__class__(tiny_bert.config.replace(layer_norm=False)).eval(), IDS
    )
    assert ATTENTION_SUM not in no_norm.residual_norms()


# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", [GPTConfig, BertConfig])
@pytest.mark.parametrize("n_inner", [None, 80])
def test_parameter_counts_match_the_tensors(make_model, family, n_inner) -> None:
    model = make_model(family, n_inner=n_inner)
    c, inner = model.config.n_embd, model.config.mlp_width
    counted = block_parameters(model.h[0])
    assert counted.total == sum(p.numel() for p in model.h[0].parameters())
    assert counted.count("attention") == sum(p.numel() for p in model.h[0].attn.parameters())
    assert counted.count("MLP") == sum(p.numel() for p in model.h[0].mlp.parameters())
    assert counted.count("attention") == 4 * c * c + 4 * c
    assert counted.count("MLP") == 2 * c * inner + inner + c
    assert counted.count("LayerNorm") == 4 * c
    assert math.isclose(sum(counted.share(p) for p in counted.tensors), 1.0)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_inspection_refuses_what_it_cannot_replay(tiny_gpt, tiny_seq2seq) -> None:
    with pytest.raises(ValueError, match="pick a GPT or BERT model"):
        inspect_ids(nn.Linear(2, 2), IDS)
    with pytest.raises(ValueError, match="pick a GPT or BERT model"):
        inspect_ids(tiny_seq2seq, IDS)
    decoder_stack = nn.Module()
    decoder_stack.h = nn.ModuleList([Block(tiny_seq2seq.config, cross_attention=True)])
    with pytest.raises(ValueError, match="cross-attention"):
        inspect_ids(decoder_stack, IDS)
    with pytest.raises(ValueError, match="no tokens"):
        inspect_ids(tiny_gpt, [])
    with pytest.raises(ValueError, match="only 16 positions"):
        inspect_ids(tiny_gpt, list(range(17)))
    with pytest.raises(ValueError, match="a model config"):
        code_path({"n_embd": 8})
    tiny_gpt.train()
    try:
        with pytest.raises(ValueError, match="eval mode"):
            inspect_ids(tiny_gpt, IDS)
    finally:
        tiny_gpt.eval()


def test_ablation_text_check_agrees_with_the_experiment_around_the_limit() -> None:
    base = "the cat sat on the mat. "
    for length in range(30, 50):
        text = (base * 3)[:length]
        try:
            CausalLMTask(torch.tensor(train_char(text).encode(text)), BLOCK_SIZE)
            trainable = True
        except ValueError:
            trainable = False
        if trainable:
            check_text(text)
        else:
            with pytest.raises(ValueError, match="too short"):
                check_text(text)
    with pytest.raises(ValueError, match="empty"):
        check_text("   ")


# ---------------------------------------------------------------------------------------------
# The ablation while it trains and once it is done
# ---------------------------------------------------------------------------------------------


def progress(step: int, val_loss: float | None = None) -> Progress:
    return Progress(step, 2.0, val_loss, 0.01, 1.0, 0.1)


def test_ablation_progress_counts_finished_variants_and_steps() -> None:
    assert ablation_progress({}, 100) == 0.0
    runs = {FULL: [progress(100)], NO_RESIDUAL: [progress(10), progress(50)]}
    assert ablation_progress(runs, 100) == pytest.approx((1 + 0.5) / 4)
    assert ablation_progress(runs, 100, n_variants=2) == pytest.approx(0.75)
    assert ablation_progress({FULL: [progress(300)]}, 100, n_variants=1) == 1.0  # capped
    assert ABLATION_VARIANTS == (FULL, NO_RESIDUAL, NO_LAYER_NORM, NEITHER)
    with pytest.raises(ValueError, match="at least one step"):
        ablation_progress(runs, 0)


def test_best_variant_has_the_lowest_validation_loss() -> None:
    def variant(label: str, losses: list[float | None]) -> VariantResult:
        history = [progress(n + 1, loss) for n, loss in enumerate(losses)]
        return VariantResult(label, GPTConfig(), 10, history, None)

    variants = [variant(FULL, [3.0, 1.5]), variant(NEITHER, [1.0, 2.5]), variant("x", [None])]
    assert best_variant(variants).label == FULL  # the last validation loss counts
    assert best_variant([variant("x", [None])]) is None


def test_parameter_counts_by_part_sum_to_the_total(tiny_gpt) -> None:
    parameters = block_parameters(tiny_gpt.h[0])
    counts = parameters.counts()
    assert list(counts) == list(parameters.tensors)
    assert (
        sum(counts.values())
        == parameters.total
        == sum(p.numel() for p in tiny_gpt.h[0].parameters())
    )


def test_builtin_training_texts() -> None:
    assert tb.builtin_corpus("lessons") == lesson_corpus()
    assert tb.builtin_corpus("stories") == generate_corpus(tb.STORIES, seed=0)
    assert set(tb.SOURCES) == {"lessons", "stories", "own"}
    with pytest.raises(ValueError, match="unknown built-in corpus"):
        tb.builtin_corpus("own")


# --- predict, then reveal --------------------------------------------------------------------


def fake_inspection(start: float, end: float, placement: str = "pre"):
    """An inspection whose stream is ``start`` long entering block 0, ``end`` leaving the last."""
    norms = {BLOCK_INPUT: [start, 5.0], AFTER_ATTENTION: [5.0, 5.0], AFTER_MLP: [5.0, end]}
    config = SimpleNamespace(ln_placement=placement)
    return SimpleNamespace(residual_norms=lambda: norms, config=config)


@pytest.mark.parametrize(
    "end, answer", [(2.3, 0), (2.1, 1), (1.9, 1), (1.7, 2)], ids=["grows", "up", "down", "shrinks"]
)
def test_stream_growth_compares_the_first_input_with_the_last_output(end, answer) -> None:
    loaded = SimpleNamespace(name="toy")
    prediction = tb.predict_stream_growth(fake_inspection(2.0, end), loaded)
    assert prediction.values == {"model": "toy", "placement": "pre"}
    assert prediction.choices == tb.GROWTH_CHOICES
    reveal = prediction.reveal()
    assert reveal.answer == tb.GROWTH_CHOICES[answer]
    assert reveal.values == {"start": 2.0, "end": end, "ratio": pytest.approx(end / 2.0)}


def test_stream_growth_reads_the_models_own_hidden_states(tiny_gpt) -> None:
    inspection = inspect_ids(tiny_gpt, [1, 2, 3, 4, 5])
    reveal = tb.predict_stream_growth(inspection, SimpleNamespace(name="tiny")).reveal()
    out = tiny_gpt(torch.tensor([[1, 2, 3, 4, 5]]), output_hidden_states=True, return_record=True)
    entering = out.hidden_states[0][0].norm(dim=-1).mean().item()
    leaving = out.record.norms["ln_f"].input[0].norm(dim=-1).mean().item()
    assert reveal.values["start"] == pytest.approx(entering)
    assert reveal.values["end"] == pytest.approx(leaving)


@pytest.mark.parametrize("config_class", [GPTConfig, BertConfig])
def test_block_parameters_are_twelve_c_squared_plus_thirteen_c(make_model, config_class) -> None:
    model = make_model(config_class)  # C = 32, n_inner = 4C
    loaded = SimpleNamespace(name="tiny", config=model.config, model=model)
    prediction = tb.predict_block_parameters(loaded)
    assert prediction.values == {"model": "tiny", "width": 32, "inner": 128}
    reveal = prediction.reveal()
    c = 32
    assert reveal.answer == 12 * c * c + 13 * c == sum(p.numel() for p in model.h[0].parameters())
    assert reveal.values == {"attention": 4 * (c * c + c), "mlp": 8 * c * c + 5 * c, "norms": 4 * c}


@pytest.mark.parametrize("config_class", [GPTConfig, BertConfig])
def test_larger_update_compares_what_the_sub_layers_write(make_model, config_class) -> None:
    model = make_model(config_class)
    ids = [1, 2, 3, 4, 5]
    inspection = inspect_ids(model, ids, [0] * 5 if config_class is BertConfig else None)
    prediction = tb.predict_larger_update(inspection, SimpleNamespace(name="tiny"), list("abcde"))
    assert prediction.choices == tb.UPDATE_CHOICES
    reveal = prediction.reveal()
    kwargs = (
        {"token_type_ids": torch.zeros(1, 5, dtype=torch.long)}
        if config_class is BertConfig
        else {}
    )
    record = model(torch.tensor([ids]), return_record=True, **kwargs).record.blocks[0]
    attention = record.attn.output[0].norm(dim=-1)
    mlp = record.mlp.output[0].norm(dim=-1)
    assert reveal.values["attention"] == pytest.approx(attention.mean().item())
    assert reveal.values["mlp"] == pytest.approx(mlp.mean().item())
    larger = 0 if attention.mean() > mlp.mean() else 1
    assert reveal.answer == tb.UPDATE_CHOICES[larger]
    assert reveal.data["sizes"]["MLP"] == pytest.approx(mlp.tolist())


def test_larger_update_on_a_hand_made_block() -> None:
    path = (SimpleNamespace(module="attn"), SimpleNamespace(module="mlp.c_proj"))
    outputs = [torch.tensor([[3.0, 4.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0]])]
    layer = SimpleNamespace(path=path, outputs=outputs, block_input=torch.ones(2, 2))
    attention, mlp = tb.sublayer_updates(layer)
    assert attention.tolist() == [5.0, 1.0] and mlp.tolist() == [1.0, 2.0]
    inspection = SimpleNamespace(layers=[layer])
    reveal = tb.predict_larger_update(inspection, SimpleNamespace(name="toy"), ["a", "b"]).reveal()
    assert reveal.answer == "The attention sub-layer"  # mean 3 against 1.5
    assert reveal.values["stream"] == pytest.approx(math.sqrt(2))
