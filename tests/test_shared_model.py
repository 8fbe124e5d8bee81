"""A shipped model is shared by every session of the app: lessons may only read it.

Every lesson computation runs on one model object from many threads at once and gets what it
gets alone; none of them leaves a hook, a changed parameter, a changed attribute or a changed
training flag on the model; and no code under src/ or app/ registers a hook at all.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from tinyformers import trace
from tinyformers.course import alignment as align
from tinyformers.course import attention as stepwise
from tinyformers.course import bert as mlm
from tinyformers.course import distillation as distil
from tinyformers.course import encoder_decoder as decoding_steps
from tinyformers.course import fine_tuning as classify
from tinyformers.course import gpt as generation_steps
from tinyformers.course import masks as mask_views
from tinyformers.course import multi_head as heads
from tinyformers.course import task_heads
from tinyformers.course import transformer_block as block_inspect
from tinyformers.course import why_attention as why
from tinyformers.figures import positional_encoding as positional
from tinyformers.hub.registry import load_shipped

ROOT = Path(__file__).resolve().parents[1]
N_THREADS = 16
ROUNDS = 2
SHORT = "Zoe sees the big dog ."
LONG = "Zoe sees the big dog . the dog sees Zoe ."


@pytest.fixture(scope="module")
def shipped():
    return {name: load_shipped(name) for name in ("gpt-stories", "bert-stories", "seq2seq-date")}


def lesson_computations(shipped) -> dict[str, Callable[[], object]]:
    """One call per lesson computation that runs a model, each on the shared shipped models."""
    gpt, bert, seq = shipped["gpt-stories"], shipped["bert-stories"], shipped["seq2seq-date"]
    g, gt = gpt.model, gpt.tokenizer
    b, bt = bert.model, bert.tokenizer
    short, long = gt.encode(SHORT), gt.encode(LONG)
    bert_ids, segments = block_inspect.model_inputs(b, bt, LONG)
    source = seq.tokenizer.encode("12 March 2021")
    pad = gt.pad_id or 0
    masked = distil.masked_word(bt, "the dogs near the cat [MASK] .", b.config.block_size)
    probes = distil.agreement_probes(8)
    date = why.read_source("date", "12 March 2021")

    def first_attention_reordering():
        wte, wpe = g.wte.weight.detach(), g.wpe.weight.detach()
        reverse = torch.arange(len(long) - 1, -1, -1)
        layer = positional.first_attention(g)
        return positional.reorder_change(layer, wte[long], wpe[: len(long)], reverse)

    def cross_view():
        sources = [source, source[:4]]
        targets = [[seq.tokenizer.bos_id, 5, 6], [seq.tokenizer.bos_id, 7, 8]]
        names = [[str(i) for i in s] for s in sources]
        target_names = [[str(i) for i in t] for t in targets]
        return mask_views.cross_view(seq.model, sources, targets, names, target_names, 0, 1, 1, 0)

    return {
        "block_inspect, 8 tokens": lambda: block_inspect.inspect_ids(g, long[:8]),
        "block_inspect, 9 tokens": lambda: block_inspect.inspect_ids(g, long[:9]),
        "block_inspect, BERT": lambda: block_inspect.inspect_ids(b, bert_ids, segments),
        "heads": lambda: heads.head_outputs(heads.trace_sentence(g, gt, LONG), 1),
        "mask_views causal": lambda: mask_views.causal_view(
            g, short, gt.display_tokens(short), 1, 2
        ),
        "mask_views prefix": lambda: mask_views.prefix_view(
            g, long, gt.display_tokens(long), 0, 1, 3
        ),
        "mask_views padding": lambda: mask_views.padded_batch(g, [long, short], pad),
        "mask_views cross": cross_view,
        "stepwise": lambda: stepwise.model_head(g, stepwise.trace_sentence(g, gt, LONG, 24), 2, 1),
        "stepwise BERT": lambda: stepwise.model_head(
            b, stepwise.trace_sentence(b, bt, SHORT, 24), 1, 0
        ),
        "generation_steps": lambda: (
            generation_steps.next_token_logits(g, short),
            generation_steps.last_position_attention(g, long),
            generation_steps.prompt_loss(g, long),
        ),
        "mlm fill-in": lambda: mlm.fill_in_blanks(b, bt, bert_ids, [2, 4]),
        "mlm embeddings": lambda: mlm.embedding_breakdown(b, bt, SHORT, "she smiles ."),
        "distillation distributions": lambda: distil.distributions({"t": b}, bt, masked, 3.0),
        "distillation verbs": lambda: distil.verb_predictions(b, bt, probes),
        "why-attention cross-attention": lambda: why.transformer_alignment(
            seq.model, seq.tokenizer, date
        ),
        "why-attention outputs": lambda: why.outputs({"t": seq.model}, date),
        "task heads masked-LM score": lambda: task_heads.masked_lm_score(b, bt, 20),
        "alignment answers": lambda: align.compare_answers({"g": g}, gt, "cat", SHORT),
        "alignment kl": lambda: align.token_kl(g, g, gt, align.instruction("dog"), [short]),
        "classify log-likelihoods": lambda: classify.log_likelihoods(
            g, gt, ["\n", "the dog"], [SHORT, " sees Zoe ."]
        ),
        "trace": lambda: trace.trace_text(g, gt, SHORT),
        "first attention": first_attention_reordering,
        "decoding": lambda: decoding_steps.greedy_steps(seq.model, seq.tokenizer, source),
    }


def leaves(value: object) -> list:
    """Every tensor and plain value inside a result (dataclasses, lists, dicts), in order."""
    if isinstance(value, Tensor):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return leaves([getattr(value, f.name) for f in dataclasses.fields(value)])
    if isinstance(value, list | tuple):
        return [leaf for item in value for leaf in leaves(item)]
    if isinstance(value, dict):
        return leaves(list(value.items()))
    return [value]


def assert_identical(got: object, expected: object, name: str) -> None:
    got, expected = leaves(got), leaves(expected)
    assert len(got) == len(expected), name
    for a, b in zip(got, expected, strict=True):
        if isinstance(b, Tensor):
            assert isinstance(a, Tensor) and torch.equal(a, b), name
        else:
            assert a == b, name


# ---------------------------------------------------------------------------------------------
# Many sessions at once
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Page runs use one torch thread each, as the app's router sets (``torch.set_num_threads``
    is per process): then each operation adds up in one order, and a result does not depend on
    how many other sessions compute at the same moment."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_sixteen_threads_on_one_model_get_what_each_gets_alone(shipped, one_torch_thread) -> None:
    """Each thread runs every computation, starting at a different one, so at any moment
    different lessons run side by side on the same model objects."""
    computations = lesson_computations(shipped)
    names = list(computations)
    expected = {name: run() for name, run in computations.items()}
    start = threading.Barrier(N_THREADS)
    failures: list[str] = []

    def session(offset: int) -> None:
        start.wait()
        order = names[offset % len(names) :] + names[: offset % len(names)]
        for name in order * ROUNDS:
            try:
                assert_identical(computations[name](), expected[name], name)
            except Exception as err:  # noqa: BLE001 — report every failure, from every thread
                failures.append(f"thread {offset}, {name}: {type(err).__name__}: {err}")

    threads = [threading.Thread(target=session, args=(i,)) for i in range(N_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, "\n".join(failures[:20])


# ---------------------------------------------------------------------------------------------
# Nothing is left on the model
# ---------------------------------------------------------------------------------------------

HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_load_state_dict_pre_hooks",
)


def module_state(model: nn.Module) -> dict[str, tuple]:
    """Per sub-module: which object it is, how many hooks of each kind it has, its training flag
    and which object each of its attributes holds."""
    return {
        name: (
            id(module),
            tuple(len(getattr(module, hooks)) for hooks in HOOK_DICTS),
            module.training,
            tuple((key, id(value)) for key, value in sorted(vars(module).items())),
        )
        for name, module in model.named_modules()
    }


def tensors_of(model: nn.Module) -> dict[str, Tensor]:
    """Copies of every parameter and buffer (persistent or not), and each requires_grad flag."""
    tensors = {f"buffer {n}": b.detach().clone() for n, b in model.named_buffers()}
    for name, parameter in model.named_parameters():
        tensors[name] = parameter.detach().clone()
        tensors[f"{name} requires_grad"] = torch.tensor(parameter.requires_grad)
    return tensors


def global_hooks() -> tuple[int, ...]:
    module = torch.nn.modules.module
    return tuple(
        len(getattr(module, name))
        for name in ("_global_forward_hooks", "_global_forward_pre_hooks")
    )


def watch_attribute_writes(monkeypatch, models: list[nn.Module]) -> list[str]:
    """Record every attribute assignment on a module of ``models`` (``.eval()`` and ``.train()``
    assign ``training`` too, even when it does not change)."""
    watched = {id(m): name for model in models for name, m in model.named_modules()}
    writes: list[str] = []
    original = nn.Module.__setattr__

    def setattr_and_record(module: nn.Module, key: str, value: object) -> None:
        if id(module) in watched:
            writes.append(f"{watched[id(module)] or 'model'}.{key}")
        original(module, key, value)

    monkeypatch.setattr(nn.Module, "__setattr__", setattr_and_record)
    return writes


def test_no_lesson_computation_leaves_a_trace_on_the_model(shipped, monkeypatch) -> None:
    models = {name: loaded.model for name, loaded in shipped.items()}
    writes = watch_attribute_writes(monkeypatch, list(models.values()))
    for computation, run in lesson_computations(shipped).items():
        before = {name: (module_state(m), tensors_of(m)) for name, m in models.items()}
        hooks = global_hooks()
        run()
        assert global_hooks() == hooks, computation
        assert writes == [], f"{computation} assigned {', '.join(writes)}"
        for name, model in models.items():
            states, tensors = before[name]
            assert module_state(model) == states, f"{computation} changed {name}"
            after = tensors_of(model)
            assert after.keys() == tensors.keys(), f"{computation} changed {name}'s tensors"
            for key, tensor in tensors.items():
                assert torch.equal(after[key], tensor), f"{computation} changed {name}: {key}"


def test_the_checks_above_catch_a_hook_a_mode_switch_and_a_parameter_change(
    shipped, monkeypatch
) -> None:
    model = shipped["gpt-stories"].model
    states, tensors = module_state(model), tensors_of(model)
    handle = model.h[0].register_forward_hook(lambda *args: None)
    try:
        assert module_state(model) != states
    finally:
        handle.remove()
    model.train()
    try:
        assert module_state(model) != states
    finally:
        model.eval()
    with torch.no_grad():
        model.ln_f.bias[0] += 1.0
        try:
            assert not torch.equal(tensors_of(model)["ln_f.bias"], tensors["ln_f.bias"])
        finally:
            model.ln_f.bias[0] -= 1.0
    assert module_state(model) == states
    writes = watch_attribute_writes(monkeypatch, [model])
    model.eval()  # already in eval mode: no change, but still a write
    assert "model.training" in writes and "h.0.attn.training" in writes


# ---------------------------------------------------------------------------------------------
# No code registers a hook
# ---------------------------------------------------------------------------------------------


def test_no_source_registers_a_forward_hook() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("src", "app")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "register_forward_hook" in line or "register_forward_pre_hook" in line
    ]
    assert offenders == []
