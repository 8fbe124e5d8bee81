"""Move weights between our models and Hugging Face ``transformers``.

Our GPT has the GPT-2 layout and our BERT the BERT layout, so conversion is a renaming of
tensors plus two details:

* GPT-2 stores its linear layers as ``Conv1D`` with the weight transposed, ``(in, out)``;
* GPT-2 fuses W_Q, W_K and W_V into one ``c_attn`` matrix, where we keep three projections.

``transformers`` takes seconds to import, so it is imported inside the functions that need it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from tinyformers.model.bert import Bert
from tinyformers.model.config import BertConfig, GPTConfig, TransformerConfig
from tinyformers.model.gpt import GPT

if TYPE_CHECKING:
    from transformers import BertForMaskedLM, GPT2LMHeadModel

HF_ACTIVATIONS = {"gelu_tanh": "gelu_new", "gelu": "gelu"}
OUR_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}


def check_exportable(config: TransformerConfig, layout: str) -> None:
    """Only the standard layout has a counterpart in ``transformers``."""
    expected_ln = "pre" if layout == "GPT-2" else "post"
    problems = []
    if config.position != "learned":
        problems.append(f"positions are {config.position!r}, not 'learned'")
    if config.ln_placement != expected_ln:
        problems.append(f"LayerNorm is {config.ln_placement}-LN, not {expected_ln}-LN")
    if not (config.residual and config.layer_norm):
        problems.append("residual connections or LayerNorm are switched off")
    if getattr(config, "causal", True) is False:
        problems.append("the causal mask is switched off")
    if problems:
        raise ValueError(
            f"this model cannot be exported to the {layout} layout: " + "; ".join(problems)
        )


# ---------------------------------------------------------------------------------------------
# GPT <-> GPT2LMHeadModel
# ---------------------------------------------------------------------------------------------

GPT2_BLOCK_NAMES = [  # (ours, theirs, transpose) inside block i
    ("ln_1.weight", "ln_1.weight", False),
    ("ln_1.bias", "ln_1.bias", False),
    ("attn.c_proj.weight", "attn.c_proj.weight", True),
    ("attn.c_proj.bias", "attn.c_proj.bias", False),
    ("ln_2.weight", "ln_2.weight", False),
    ("ln_2.bias", "ln_2.bias", False),
    ("mlp.c_fc.weight", "mlp.c_fc.weight", True),
    ("mlp.c_fc.bias", "mlp.c_fc.bias", False),
    ("mlp.c_proj.weight", "mlp.c_proj.weight", True),
    ("mlp.c_proj.bias", "mlp.c_proj.bias", False),
]


def gpt_to_hf_state_dict(model: GPT) -> dict[str, Tensor]:
    ours = model.state_dict()
    theirs = {
        "transformer.wte.weight": ours["wte.weight"],
        "transformer.wpe.weight": ours["wpe.weight"],
        "transformer.ln_f.weight": ours["ln_f.weight"],
        "transformer.ln_f.bias": ours["ln_f.bias"],
        "lm_head.weight": ours["wte.weight"],
    }
    for i in range(model.config.n_layer):
        a = f"h.{i}.attn."
        theirs[f"transformer.h.{i}.attn.c_attn.weight"] = torch.cat(
            [ours[a + "q_proj.weight"], ours[a + "k_proj.weight"], ours[a + "v_proj.weight"]]
        ).T  # (C, 3C): Conv1D keeps (in, out)
        theirs[f"transformer.h.{i}.attn.c_attn.bias"] = torch.cat(
            [ours[a + "q_proj.bias"], ours[a + "k_proj.bias"], ours[a + "v_proj.bias"]]
        )
        for our_name, hf_name, transpose in GPT2_BLOCK_NAMES:
            tensor = ours[f"h.{i}.{our_name}"]
            theirs[f"transformer.h.{i}.{hf_name}"] = tensor.T if transpose else tensor
    return {name: t.detach().clone().contiguous() for name, t in theirs.items()}


def hf_to_gpt_state_dict(theirs: dict[str, Tensor], n_layer: int) -> dict[str, Tensor]:
    ours = {
        "wte.weight": theirs["transformer.wte.weight"],
        "wpe.weight": theirs["transformer.wpe.weight"],
        "ln_f.weight": theirs["transformer.ln_f.weight"],
        "ln_f.bias": theirs["transformer.ln_f.bias"],
    }
    for i in range(n_layer):
        p = f"transformer.h.{i}."
        weight = theirs[p + "attn.c_attn.weight"].T  # (3C, C)
        bias = theirs[p + "attn.c_attn.bias"]
        for name, w, b in zip(("q", "k", "v"), weight.chunk(3), bias.chunk(3), strict=True):
            ours[f"h.{i}.attn.{name}_proj.weight"] = w
            ours[f"h.{i}.attn.{name}_proj.bias"] = b
        for our_name, hf_name, transpose in GPT2_BLOCK_NAMES:
            tensor = theirs[p + hf_name]
            ours[f"h.{i}.{our_name}"] = tensor.T if transpose else tensor
    return {name: t.detach().clone().contiguous() for name, t in ours.items()}


def gpt_to_hf(model: GPT) -> GPT2LMHeadModel:
    """A ``transformers.GPT2LMHeadModel`` with exactly our weights."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = model.config
    check_exportable(config, "GPT-2")
    hf_config = GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.block_size,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        n_inner=config.mlp_width,
        activation_function=HF_ACTIVATIONS[config.activation],
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=0.0,
        layer_norm_epsilon=config.layer_norm_eps,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=None,
        attn_implementation="eager",  # the implementation that can return attention weights
    )
    hf = GPT2LMHeadModel(hf_config)
    load_exact(hf, gpt_to_hf_state_dict(model))
    return hf.eval()


def gpt_config_from_hf(c) -> GPTConfig:
    """Our config for a ``transformers.GPT2Config``, checked against our size limits; it needs
    no model, so an absurd config is refused before anything is built."""
    if not c.scale_attn_weights or c.scale_attn_by_inverse_layer_idx or c.reorder_and_upcast_attn:
        raise ValueError(
            "this GPT-2 scales its attention differently (scale_attn_weights / "
            "scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn); it has no "
            "counterpart here"
        )
    activation = OUR_ACTIVATIONS.get(c.activation_function)
    if activation is None:
        raise ValueError(f"activation {c.activation_function!r} has no counterpart here")
    return GPTConfig(
        vocab_size=c.vocab_size,
        block_size=c.n_positions,
        n_layer=c.n_layer,
        n_head=c.n_head,
        n_embd=c.n_embd,
        n_inner=c.n_inner,
        activation=activation,
        layer_norm_eps=float(c.layer_norm_epsilon),
    )


def gpt_from_hf(hf: GPT2LMHeadModel) -> GPT:
    """Our GPT with the weights of a ``transformers.GPT2LMHeadModel``."""
    config = gpt_config_from_hf(hf.config)
    model = GPT(config)
    load_exact(model, hf_to_gpt_state_dict(hf.state_dict(), config.n_layer))
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Bert <-> BertForMaskedLM
# ---------------------------------------------------------------------------------------------


def bert_names(n_layer: int) -> list[tuple[str, str]]:
    """(ours, theirs) for every tensor; BERT's linear layers share PyTorch's orientation."""
    pairs = [
        ("wte.weight", "bert.embeddings.word_embeddings.weight"),
        ("wpe.weight", "bert.embeddings.position_embeddings.weight"),
        ("wse.weight", "bert.embeddings.token_type_embeddings.weight"),
        ("ln_emb.weight", "bert.embeddings.LayerNorm.weight"),
        ("ln_emb.bias", "bert.embeddings.LayerNorm.bias"),
        ("mlm_head.dense.weight", "cls.predictions.transform.dense.weight"),
        ("mlm_head.dense.bias", "cls.predictions.transform.dense.bias"),
        ("mlm_head.ln.weight", "cls.predictions.transform.LayerNorm.weight"),
        ("mlm_head.ln.bias", "cls.predictions.transform.LayerNorm.bias"),
        ("mlm_head.decoder.bias", "cls.predictions.bias"),
    ]
    block = [
        ("attn.q_proj", "attention.self.query"),
        ("attn.k_proj", "attention.self.key"),
        ("attn.v_proj", "attention.self.value"),
        ("attn.c_proj", "attention.output.dense"),
        ("ln_1", "attention.output.LayerNorm"),
        ("mlp.c_fc", "intermediate.dense"),
        ("mlp.c_proj", "output.dense"),
        ("ln_2", "output.LayerNorm"),
    ]
    for i in range(n_layer):
        for ours, theirs in block:
            for kind in ("weight", "bias"):
                pairs.append((f"h.{i}.{ours}.{kind}", f"bert.encoder.layer.{i}.{theirs}.{kind}"))
    return pairs


def bert_to_hf(model: Bert) -> BertForMaskedLM:
    """A ``transformers.BertForMaskedLM`` with exactly our weights."""
    from transformers import BertConfig as HFBertConfig
    from transformers import BertForMaskedLM

    config = model.config
    check_exportable(config, "BERT")
    hf_config = HFBertConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.n_embd,
        num_hidden_layers=config.n_layer,
        num_attention_heads=config.n_head,
        intermediate_size=config.mlp_width,
        hidden_act=HF_ACTIVATIONS[config.activation],
        hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=config.block_size,
        type_vocab_size=config.type_vocab_size,
        layer_norm_eps=config.layer_norm_eps,
        pad_token_id=0,
        tie_word_embeddings=True,
        attn_implementation="eager",
    )
    hf = BertForMaskedLM(hf_config)
    ours = model.state_dict()
    theirs = {hf_name: ours[our_name] for our_name, hf_name in bert_names(config.n_layer)}
    theirs["cls.predictions.decoder.weight"] = ours["wte.weight"]
    theirs["cls.predictions.decoder.bias"] = ours["mlm_head.decoder.bias"]
    load_exact(hf, {k: v.detach().clone().contiguous() for k, v in theirs.items()})
    return hf.eval()


def bert_config_from_hf(c) -> BertConfig:
    """Our config for a ``transformers.BertConfig``, checked against our size limits."""
    activation = OUR_ACTIVATIONS.get(c.hidden_act)
    if activation is None:
        raise ValueError(f"activation {c.hidden_act!r} has no counterpart here")
    return BertConfig(
        vocab_size=c.vocab_size,
        block_size=c.max_position_embeddings,
        n_layer=c.num_hidden_layers,
        n_head=c.num_attention_heads,
        n_embd=c.hidden_size,
        n_inner=c.intermediate_size,
        type_vocab_size=c.type_vocab_size,
        activation=activation,
        layer_norm_eps=float(c.layer_norm_eps),
    )


def bert_from_hf(hf: BertForMaskedLM) -> Bert:
    """Our Bert with the weights of a ``transformers.BertForMaskedLM``."""
    config = bert_config_from_hf(hf.config)
    model = Bert(config)
    theirs = hf.state_dict()
    ours = {our: theirs[hf_name].detach().clone() for our, hf_name in bert_names(config.n_layer)}
    load_exact(model, ours)
    return model.eval()


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def load_exact(module: torch.nn.Module, state: dict[str, Tensor]) -> None:
    """Load ``state`` and insist that every parameter was set (tied copies and buffers aside)."""
    result = module.load_state_dict(state, strict=False)
    tied = set(getattr(module, "tied_weights", {})) | {
        "lm_head.weight",
        "cls.predictions.decoder.weight",
        "cls.predictions.decoder.bias",
    }
    params = {name for name, _ in module.named_parameters(remove_duplicate=False)}
    missing = [k for k in result.missing_keys if k in params and k not in tied]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"weight conversion is incomplete: missing {missing}, unexpected {result.unexpected_keys}"
        )


def to_hf(model: torch.nn.Module):
    """Convert any exportable model of ours to its ``transformers`` counterpart."""
    if isinstance(model, GPT):
        return gpt_to_hf(model)
    if isinstance(model, Bert):
        return bert_to_hf(model)
    raise ValueError(f"{type(model).__name__} has no transformers counterpart to export to")


def config_from_hf(hf_config) -> TransformerConfig:
    """Our config for a ``transformers`` GPT-2 or BERT config."""
    if hf_config.model_type == "gpt2":
        return gpt_config_from_hf(hf_config)
    if hf_config.model_type == "bert":
        return bert_config_from_hf(hf_config)
    raise ValueError(f"a {hf_config.model_type!r} config has no counterpart here")


def from_hf(hf) -> torch.nn.Module:
    """Convert a ``GPT2LMHeadModel`` or ``BertForMaskedLM`` to our model."""
    name = type(hf).__name__
    if name == "GPT2LMHeadModel":
        return gpt_from_hf(hf)
    if name == "BertForMaskedLM":
        return bert_from_hf(hf)
    raise ValueError(f"cannot import a {name}; supported: GPT2LMHeadModel, BertForMaskedLM")


def export_hf(model_dir: str | Path, out_dir: str | Path) -> Path:
    """Turn a Tinyformers checkpoint folder into one ``transformers`` loads with from_pretrained."""
    from tinyformers.hub.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(model_dir)
    hf = to_hf(checkpoint.model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(out)
    tokenizer_file = Path(model_dir) / "tokenizer.json"
    if tokenizer_file.exists():
        shutil.copyfile(tokenizer_file, out / "tokenizer.json")
    return out
