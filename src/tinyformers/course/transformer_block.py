"""Look inside the Transformer blocks of a model while it reads one input.

``code_path(config)`` writes down, as data, the operations ``blocks.Block.forward`` runs for a
config: which sub-module runs, in which order, what it reads and what it writes. A block works on
two tensors, which we call registers:

* ``stream``: the residual stream, the (B, T, C) tensor that flows from block to block;
* ``branch``: the sub-layer's own computation (attention or MLP) before it rejoins the stream.

``inspect_ids`` runs the model once with ``return_record=True`` (see ``record.py``), then walks
every block's record in the order ``code_path`` lists: each sub-module step takes the tensor the
forward pass recorded for that module, each residual step adds the two registers itself. The
walk must end where the model's own forward pass ends, and every step must read what the module
really read; ``BlockInspection.max_difference`` says how close it came. Nothing is called on, or
attached to, the model's sub-modules, so a model shared between threads is safe to inspect.

``block_parameters`` counts a block's parameters by part (attention, MLP, LayerNorm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from tinyformers.i18n import N_, _
from tinyformers.model.blocks import Block
from tinyformers.model.config import TransformerConfig
from tinyformers.model.record import BlockRecord, RunRecord
from tinyformers.predict import Prediction, Reveal
from tinyformers.text.corpora import generate_corpus, lesson_corpus
from tinyformers.text.inputs import bert_wrap
from tinyformers.training.experiments import (
    FULL,
    NEITHER,
    NO_LAYER_NORM,
    NO_RESIDUAL,
    ablation_variants,
)

STREAM, BRANCH = "stream", "branch"
ATTENTION, MLP = "attention", "mlp"

# What a step does; a diagram colours its box by this.
LAYER_NORM, SELF_ATTENTION, LINEAR, ACTIVATION, ADD, REPLACE = (
    "layernorm",
    "attention",
    "linear",
    "activation",
    "add",
    "replace",
)

# The residual stream at the points the lesson compares, per layer.
# What the lesson's page starts with (the lesson plans time the same computation).
DEFAULT_MODEL = "gpt-stories"
DEFAULT_SENTENCE = "Zoe sees the big dog . the dog"
MAX_SENTENCE_TOKENS = 64
BLOCK_INPUT = "block input"
AFTER_ATTENTION = "after attention + residual"
AFTER_MLP = "after MLP + residual"
ATTENTION_SUM = "attention + residual, before LayerNorm"
MLP_SUM = "MLP + residual, before LayerNorm"


# ---------------------------------------------------------------------------------------------
# The code path of a block, as data
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One operation of a block, in the order ``Block.forward`` runs it."""

    kind: str  # LAYER_NORM, SELF_ATTENTION, LINEAR, ACTIVATION, ADD or REPLACE
    label: str  # what a diagram writes in the box
    module: str | None  # the block's sub-module that runs it ("ln_1", "mlp.c_fc"); None for + / =
    reads: str  # STREAM or BRANCH (ADD reads both)
    writes: str
    sublayer: str  # ATTENTION or MLP
    in_width: int  # last dimension of the tensor read
    out_width: int  # last dimension of the tensor written
    active: bool = True  # False for a LayerNorm the config switches off (a pass-through)


def _norm_step(config: TransformerConfig, name: str, sublayer: str, reads: str, writes: str):
    c = config.n_embd
    if config.layer_norm:
        return Step(LAYER_NORM, f"{name}: LayerNorm", name, reads, writes, sublayer, c, c)
    label = f"{name}: LayerNorm off"
    return Step(LAYER_NORM, label, name, reads, writes, sublayer, c, c, active=False)


def _body_steps(config: TransformerConfig, sublayer: str, first_reads: str) -> list[Step]:
    """The sub-layer's own computation: attention, or the MLP's widen / GELU / project."""
    c, inner = config.n_embd, config.mlp_width
    if sublayer == ATTENTION:
        label = "attn: self-attention"
        return [Step(SELF_ATTENTION, label, "attn", first_reads, BRANCH, ATTENTION, c, c)]
    gelu = "GELU (tanh)" if config.activation == "gelu_tanh" else "GELU"
    return [
        Step(LINEAR, "c_fc: widen", "mlp.c_fc", first_reads, BRANCH, MLP, c, inner),
        Step(ACTIVATION, f"act: {gelu}", "mlp.act", BRANCH, BRANCH, MLP, inner, inner),
        Step(LINEAR, "c_proj: project back", "mlp.c_proj", BRANCH, BRANCH, MLP, inner, c),
    ]


def _join_step(config: TransformerConfig, sublayer: str) -> Step:
    """Where the branch rejoins the stream: added to it, or (no residual) replacing it."""
    c = config.n_embd
    if config.residual:
        return Step(ADD, "add: stream + branch", None, BRANCH, STREAM, sublayer, c, c)
    return Step(REPLACE, "= branch (no residual)", None, BRANCH, STREAM, sublayer, c, c)


def code_path(config: TransformerConfig) -> tuple[Step, ...]:
    """The operations of one block of ``config``, in the order ``Block.sublayer`` runs them.

    pre-LN:   branch = LN(stream); branch = f(branch); stream = stream + branch
    post-LN:  branch = f(stream); stream = stream + branch; stream = LN(stream)
    """
    if not isinstance(config, TransformerConfig):
        raise ValueError(f"expected a model config, got {type(config).__name__}")
    steps: list[Step] = []
    for sublayer, norm in ((ATTENTION, "ln_1"), (MLP, "ln_2")):
        if config.ln_placement == "pre":
            steps.append(_norm_step(config, norm, sublayer, STREAM, BRANCH))
            steps += _body_steps(config, sublayer, BRANCH)
            steps.append(_join_step(config, sublayer))
        else:
            steps += _body_steps(config, sublayer, STREAM)
            steps.append(_join_step(config, sublayer))
            steps.append(_norm_step(config, norm, sublayer, STREAM, STREAM))
    return tuple(steps)


def step_shapes(path: tuple[Step, ...], n_tokens: int) -> list[tuple[tuple[int, ...], ...]]:
    """The (input, output) shapes of every step for one sequence of ``n_tokens`` tokens."""
    return [((1, n_tokens, s.in_width), (1, n_tokens, s.out_width)) for s in path]


# ---------------------------------------------------------------------------------------------
# Walking the blocks of a model through the record of its forward pass
# ---------------------------------------------------------------------------------------------


@dataclass
class LayerNormStats:
    """What one LayerNorm did to each token (rows are tokens, columns the C dimensions)."""

    name: str
    input: Tensor  # (T, C)
    normalized: Tensor  # (T, C): (x - mean) / sqrt(var + eps), before gamma and beta
    output: Tensor  # (T, C): the module's own output, gamma * normalized + beta
    weight: Tensor  # (C,) gamma
    bias: Tensor  # (C,) beta
    eps: float

    @staticmethod
    def of(name: str, module: nn.LayerNorm, x: Tensor, output: Tensor) -> LayerNormStats:
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, unbiased=False, keepdim=True)  # biased, as LayerNorm uses
        normalized = (x - mean) / torch.sqrt(var + module.eps)
        c = x.shape[-1]
        weight = module.weight if module.weight is not None else torch.ones(c)
        bias = module.bias if module.bias is not None else torch.zeros(c)
        return LayerNormStats(
            name, x, normalized, output, weight.detach(), bias.detach(), module.eps
        )

    @staticmethod
    def per_token(x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and (biased) standard deviation of each row: two (T,) tensors."""
        return x.mean(dim=-1), x.std(dim=-1, unbiased=False)

    def stages(self) -> dict[str, tuple[Tensor, Tensor]]:
        """Per-token (mean, std) at the three stages: input, normalized, after gamma and beta."""
        return {
            "input x": self.per_token(self.input),
            "normalized (before γ, β)": self.per_token(self.normalized),
            "output γ·x̂ + β": self.per_token(self.output),
        }


@dataclass
class LayerTrace:
    """One block walked step by step: the tensor every step read and wrote, batch dropped."""

    layer: int
    path: tuple[Step, ...]
    block_input: Tensor  # (T, C)
    inputs: list[Tensor]  # per step, the tensor it read (ADD: the branch)
    outputs: list[Tensor]  # per step, the tensor it wrote
    shapes: list[tuple[tuple[int, ...], tuple[int, ...]]]  # per step, real (input, output) shapes
    norms: dict[str, LayerNormStats] = field(default_factory=dict)
    read_gap: float = 0.0  # largest |what a step read − what its module really read|

    @property
    def output(self) -> Tensor:
        return self.outputs[-1]

    def stream_after(self, sublayer: str) -> Tensor:
        """The residual stream once ``sublayer`` (ATTENTION or MLP) is done."""
        last = max(i for i, s in enumerate(self.path) if s.sublayer == sublayer)
        return self.outputs[last]

    def stream_before_norm(self, sublayer: str) -> Tensor | None:
        """post-LN only: the sum stream + branch that the sub-layer's LayerNorm then normalizes."""
        for i, step in enumerate(self.path):
            if step.sublayer == sublayer and step.kind in (ADD, REPLACE):
                followed_by_norm = any(
                    s.kind == LAYER_NORM and s.active and s.sublayer == sublayer
                    for s in self.path[i + 1 :]
                )
                return self.outputs[i] if followed_by_norm else None
        return None


@dataclass
class BlockInspection:
    """Every block of a model walked on one input, next to the model's own hidden states."""

    config: TransformerConfig
    path: tuple[Step, ...]
    layers: list[LayerTrace]
    hidden_states: list[Tensor]  # the model's own: n_layer + 1 tensors of (T, C)
    outer_norms: dict[str, LayerNormStats]  # LayerNorms outside the blocks (ln_f, ln_emb, …)
    final_norm: str | None  # the LayerNorm the model applies after its last block (GPT: ln_f)

    @property
    def n_tokens(self) -> int:
        return self.layers[0].block_input.shape[0]

    def replayed_hidden_state(self, layer: int) -> Tensor:
        """What the walk gives for the model's ``hidden_states[layer + 1]``: the block output,
        passed through the final LayerNorm for the last layer of a model that has one."""
        out = self.layers[layer].output
        if layer == len(self.layers) - 1 and self.final_norm is not None:
            return self.outer_norms[self.final_norm].output
        return out

    def model_block_output(self, layer: int) -> Tensor:
        """(T, C): the residual stream the model's own block ``layer`` handed on."""
        if layer == len(self.layers) - 1 and self.final_norm is not None:
            return self.outer_norms[self.final_norm].input  # what ln_f read
        return self.hidden_states[layer + 1]

    def max_difference(self) -> float:
        """Largest |walk − model| over every layer's output and every step's input."""
        outputs = [
            (trace.output - self.model_block_output(i)).abs().max().item()
            for i, trace in enumerate(self.layers)
        ]
        return max(outputs + [trace.read_gap for trace in self.layers])

    def residual_norms(self) -> dict[str, list[float]]:
        """Per layer, the mean over tokens of the L2 norm of the residual stream at each point."""

        def mean_norm(x: Tensor) -> float:
            return x.norm(dim=-1).mean().item()

        norms = {
            BLOCK_INPUT: [mean_norm(t.block_input) for t in self.layers],
            AFTER_ATTENTION: [mean_norm(t.stream_after(ATTENTION)) for t in self.layers],
            AFTER_MLP: [mean_norm(t.stream_after(MLP)) for t in self.layers],
        }
        for name, sublayer in ((ATTENTION_SUM, ATTENTION), (MLP_SUM, MLP)):
            sums = [t.stream_before_norm(sublayer) for t in self.layers]
            if all(s is not None for s in sums):
                norms[name] = [mean_norm(s) for s in sums]
        return norms

    def norm_names(self, layer: int) -> list[str]:
        """The LayerNorms of one layer that normalize (switched-off ones are left out)."""
        return list(self.layers[layer].norms)


def blocks_of(model: nn.Module) -> nn.ModuleList:
    """The model's stack of blocks (``model.h`` in GPT and BERT)."""
    blocks = getattr(model, "h", None)
    if not isinstance(blocks, nn.ModuleList) or not all(isinstance(b, Block) for b in blocks):
        raise ValueError(
            "this model has no stack of Transformer blocks to inspect; pick a GPT or BERT model"
        )
    if any(b.cross_attn is not None for b in blocks):
        raise ValueError("decoder blocks with cross-attention are not covered here")
    return blocks


def recorded_io(record: BlockRecord, module: str) -> tuple[Tensor, Tensor]:
    """What the block's sub-module ``module`` read and wrote in the recorded forward pass."""
    io = {
        "ln_1": (record.ln_1.input, record.ln_1.output),
        "attn": (record.attn.input, record.attn.output),
        "ln_2": (record.ln_2.input, record.ln_2.output),
        "mlp.c_fc": (record.mlp.input, record.mlp.hidden),
        "mlp.act": (record.mlp.hidden, record.mlp.activated),
        "mlp.c_proj": (record.mlp.activated, record.mlp.output),
    }
    if module not in io:
        raise ValueError(f"the record of a block has no sub-module {module!r}")
    return io[module]


def walk_block(
    block: Block, record: BlockRecord, path: tuple[Step, ...], layer: int = 0
) -> LayerTrace:
    """Follow ``path`` through one block's record of a single sequence.

    A sub-module step writes what the forward pass recorded for that module; ADD and REPLACE
    are done here, on the registers. ``read_gap`` measures how far what each step read (by the
    path) is from what its module really read: zero when the path is the block's true order.
    """
    x = record.input  # (1, T, C)
    registers = {STREAM: x, BRANCH: x}
    inputs, outputs, shapes, norms, gaps = [], [], [], {}, [0.0]
    for step in path:
        read = registers[step.reads]
        if step.kind == ADD:
            written = registers[STREAM] + read
        elif step.kind == REPLACE:
            written = read
        else:
            really_read, written = recorded_io(record, step.module)
            gaps.append((read - really_read).abs().max().item())
        registers[step.writes] = written
        inputs.append(read[0])
        outputs.append(written[0])
        shapes.append((tuple(read.shape), tuple(written.shape)))
        module = block.get_submodule(step.module) if step.module else None
        if isinstance(module, nn.LayerNorm):
            norms[step.module] = LayerNormStats.of(step.module, module, read[0], written[0])
    return LayerTrace(layer, path, x[0], inputs, outputs, shapes, norms, max(gaps))


def _check_ids(model: nn.Module, ids: Tensor) -> None:
    if ids.dim() != 2 or ids.shape[0] != 1:
        raise ValueError(f"inspect one sequence at a time; got ids of shape {tuple(ids.shape)}")
    if ids.shape[1] == 0:
        raise ValueError("there are no tokens to run the model on")
    if ids.shape[1] > model.config.block_size:
        raise ValueError(
            f"the input has {ids.shape[1]} tokens but the model has only "
            f"{model.config.block_size} positions"
        )


def _outer_norms(model: nn.Module, record: RunRecord) -> dict[str, LayerNormStats]:
    """Statistics of the LayerNorms outside the blocks that normalize (not switched off)."""
    stats = {}
    for name, norm in record.norms.items():
        module = model.get_submodule(name)
        if isinstance(module, nn.LayerNorm):
            stats[name] = LayerNormStats.of(name, module, norm.input[0], norm.output[0])
    return stats


@torch.no_grad()
def inspect_ids(
    model: nn.Module, ids: list[int] | Tensor, token_type_ids: list[int] | Tensor | None = None
) -> BlockInspection:
    """Run ``model`` (a GPT or BERT in eval mode) on one sequence and walk every block.

    One forward pass with ``return_record=True`` supplies everything: the hidden states, the
    tensors each sub-module read and wrote, and the LayerNorms outside the blocks.
    """
    blocks = blocks_of(model)
    if model.training:
        raise ValueError("put the model in eval mode first: dropout would make the replay differ")
    batch = torch.as_tensor(ids, dtype=torch.long).reshape(1, -1)  # (1, T)
    _check_ids(model, batch)
    kwargs = {}
    if token_type_ids is not None:
        segments = torch.as_tensor(token_type_ids, dtype=torch.long).reshape(1, -1)  # (1, T)
        kwargs["token_type_ids"] = segments
    out = model(batch, output_hidden_states=True, return_record=True, **kwargs)

    path = code_path(model.config)
    layers = [
        walk_block(block, record, path, layer=i)
        for i, (block, record) in enumerate(zip(blocks, out.record.blocks, strict=True))
    ]
    outer_norms = _outer_norms(model, out.record)
    return BlockInspection(
        config=model.config,
        path=path,
        layers=layers,
        hidden_states=[h[0] for h in out.hidden_states],
        outer_norms=outer_norms,
        final_norm="ln_f" if "ln_f" in outer_norms else None,
    )


def model_inputs(
    model: nn.Module, tokenizer, text: str, max_length: int | None = None
) -> tuple[list[int], list[int] | None]:
    """Token ids as the model was trained to read ``text`` (BERT: ``[CLS] text [SEP]``), cut to
    fit the model's positions (and ``max_length``), and, for BERT, the segment ids."""
    limit = (
        model.config.block_size if max_length is None else min(max_length, model.config.block_size)
    )
    body = tokenizer.encode(text)
    if not body:
        raise ValueError(_("the text has no tokens: type a few words first"))
    if model.config.family != "bert":
        return body[:limit], None
    ids = bert_wrap(tokenizer, body, limit)
    return ids, [0] * len(ids)


# ---------------------------------------------------------------------------------------------
# Parameters of a block
# ---------------------------------------------------------------------------------------------

PART_OF_CHILD = {
    "attn": "attention",
    "cross_attn": "cross-attention",
    "mlp": "MLP",
    "ln_1": "LayerNorm",
    "ln_2": "LayerNorm",
    "ln_cross": "LayerNorm",
}


@dataclass
class BlockParameters:
    """A block's parameter tensors, grouped by part ("attention", "MLP", "LayerNorm")."""

    tensors: dict[str, list[tuple[str, tuple[int, ...], int]]]  # part -> (name, shape, numel)

    def count(self, part: str) -> int:
        return sum(n for _, _, n in self.tensors.get(part, []))

    @property
    def total(self) -> int:
        return sum(self.count(part) for part in self.tensors)

    def share(self, part: str) -> float:
        return self.count(part) / self.total if self.total else 0.0

    def counts(self) -> dict[str, int]:
        """Parameters per part, in the order the parts were found."""
        return {part: self.count(part) for part in self.tensors}


def block_parameters(block: nn.Module) -> BlockParameters:
    """Count one block's parameters by part, straight from its tensors."""
    tensors: dict[str, list[tuple[str, tuple[int, ...], int]]] = {}
    for name, parameter in block.named_parameters():
        part = PART_OF_CHILD.get(name.split(".")[0], "other")
        tensors.setdefault(part, []).append((name, tuple(parameter.shape), parameter.numel()))
    return BlockParameters(tensors)


# ---------------------------------------------------------------------------------------------
# The residual / LayerNorm ablation while it trains and once it is done
# ---------------------------------------------------------------------------------------------


ABLATION_VARIANTS = (FULL, NO_RESIDUAL, NO_LAYER_NORM, NEITHER)  # in the order they train


def ablation_progress(
    runs: dict[str, list], steps: int, n_variants: int = len(ABLATION_VARIANTS)
) -> float:
    """The share of the ablation done, from 0 to 1: the variants trained before the latest one in
    ``runs`` (variant label -> its progress so far, in training order), plus the latest one's
    steps out of ``steps``."""
    if not runs:
        return 0.0
    if steps < 1 or n_variants < 1:
        raise ValueError(f"need at least one step and one variant, got {steps} and {n_variants}")
    latest = list(runs.values())[-1]
    done = (len(runs) - 1 + latest[-1].step / steps) / n_variants
    return min(done, 1.0)


def best_variant(variants: list):
    """The variant (``experiments.VariantResult``) with the lowest final validation loss, or
    None if none has one yet."""
    return min(
        (v for v in variants if v.final_val_loss is not None),
        key=lambda v: v.final_val_loss,
        default=None,
    )


SOURCES = {"lessons": "The lessons' text", "stories": "Generated stories", "own": "Your own text"}
STORIES = 300  # stories in the built-in corpus of the ablation


def builtin_corpus(name: str) -> str:
    """A built-in text for the ablation: the lessons' own text, or the generated stories."""
    if name not in ("stories", "lessons"):
        raise ValueError(f"unknown built-in corpus {name!r}; the corpora are stories and lessons")
    return generate_corpus(STORIES, seed=0) if name == "stories" else lesson_corpus()


def ablation_values() -> dict[str, object]:
    """The size of the ablation's GPTs, as the lesson's "ablation" section quotes it (read from
    the configs the experiment trains; the vocabulary does not change it)."""
    config = ablation_variants(vocab_size=1)[FULL]
    return {
        "ablation_models": len(ABLATION_VARIANTS),
        "ablation_layers": config.n_layer,
        "ablation_heads": config.n_head,
        "ablation_width": config.n_embd,
    }


# ---------------------------------------------------------------------------------------------
# Predict, then reveal (the lesson's ``predict:`` questions)
# ---------------------------------------------------------------------------------------------

GROWTH_CHOICES = (
    N_("It grows by more than a tenth"),
    N_("It changes by a tenth or less"),
    N_("It shrinks by more than a tenth"),
)
UPDATE_CHOICES = (N_("The attention sub-layer"), N_("The MLP sub-layer"))


def predict_stream_growth(inspection: BlockInspection, loaded) -> Prediction:
    """Whether the mean length of the residual stream grows or shrinks from the input of the
    first block to the output of the last."""

    def reveal() -> Reveal:
        norms = inspection.residual_norms()
        start, end = norms[BLOCK_INPUT][0], norms[AFTER_MLP][-1]
        ratio = end / start
        answer = GROWTH_CHOICES[0] if ratio > 1.1 else GROWTH_CHOICES[2 if ratio < 0.9 else 1]
        values = {"start": start, "end": end, "ratio": ratio}
        title = f"Size of the residual stream in {loaded.name}, per layer"
        return Reveal(answer, values, {"norms": norms, "title": title})

    values = {"model": loaded.name, "placement": inspection.config.ln_placement}
    return Prediction(values, reveal, GROWTH_CHOICES)


def predict_block_parameters(loaded) -> Prediction:
    """How many parameters one block of the model has, weights, biases and LayerNorms."""
    config = loaded.config

    def reveal() -> Reveal:
        parameters = block_parameters(blocks_of(loaded.model)[0])
        counts = parameters.counts()
        values = {
            "attention": parameters.count("attention"),
            "mlp": parameters.count("MLP"),
            "norms": parameters.count("LayerNorm"),
        }
        title = f"Where one block of {loaded.name} keeps its parameters"
        return Reveal(parameters.total, values, {"counts": counts, "title": title})

    values = {"model": loaded.name, "width": config.n_embd, "inner": config.mlp_width}
    return Prediction(values, reveal, bounds=(0, 10**10))


def sublayer_updates(layer: LayerTrace) -> tuple[Tensor, Tensor]:
    """Per token, the length of what the attention and the MLP sub-layer of one block add to
    the residual stream (the branch just before it joins the stream): two (T,) tensors."""
    written = dict(zip((s.module for s in layer.path), layer.outputs, strict=True))
    return written["attn"].norm(dim=-1), written["mlp.c_proj"].norm(dim=-1)


def predict_larger_update(inspection: BlockInspection, loaded, tokens: list[str]) -> Prediction:
    """Which sub-layer of the first block adds the larger vectors to the residual stream, on
    average over the tokens."""

    def reveal() -> Reveal:
        attention, mlp = sublayer_updates(inspection.layers[0])
        larger = UPDATE_CHOICES[0] if attention.mean() > mlp.mean() else UPDATE_CHOICES[1]
        values = {
            "attention": attention.mean().item(),
            "mlp": mlp.mean().item(),
            "stream": inspection.layers[0].block_input.norm(dim=-1).mean().item(),
        }
        data = {
            "tokens": tokens,
            "sizes": {"attention": attention.tolist(), "MLP": mlp.tolist()},
            "title": f"What the first block of {loaded.name} adds, token by token",
        }
        return Reveal(larger, values, data)

    return Prediction({"model": loaded.name}, reveal, UPDATE_CHOICES)
