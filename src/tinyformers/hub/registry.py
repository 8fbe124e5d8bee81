"""Finding and loading models by name: shipped ones in ``models/``, local folders, and (when the
machine can reach it or has it cached) a Hugging Face model id.

Every loader returns a ``LoadedModel``: one of our models plus a tokenizer with the same small
interface (``encode``, ``decode``, ``display_tokens`` and the special-token ids), so every figure
and lesson works the same whatever the model's origin.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from tinyformers.hub.checkpoint import CheckpointError, load_checkpoint
from tinyformers.model.config import CONFIG_CLASSES

MODELS_DIR = Path(__file__).resolve().parents[3] / "models"


@dataclass
class LoadedModel:
    name: str
    family: str  # "gpt", "bert" or "seq2seq"
    model: nn.Module
    tokenizer: Any
    source: str  # "shipped", "folder", "huggingface" or "trained"
    metadata: dict

    @property
    def config(self):
        return self.model.config


def model_key(loaded: LoadedModel) -> str:
    """A key that tells models apart for caches and for resetting a choice: the source, the
    name and the model object (two trained models may share a name)."""
    return f"{loaded.source}:{loaded.name}:{id(loaded.model)}"


def shipped_names(
    models_dir: Path = MODELS_DIR, family: str | tuple[str, ...] | None = None
) -> list[str]:
    """Names of the model folders shipped in ``models/``, in alphabetical order.

    ``family`` keeps only the models of one family (``"gpt"``) or of any of several
    (``("gpt", "bert")``). A shipped folder's name starts with its family, as in ``gpt-stories``.
    """
    families = (family,) if isinstance(family, str) else tuple(family or ())
    for name in families:
        if name not in CONFIG_CLASSES:
            raise ValueError(
                f"unknown model family {name!r}; expected one of {', '.join(CONFIG_CLASSES)}"
            )
    names = []
    for folder in sorted(Path(models_dir).iterdir()) if Path(models_dir).is_dir() else []:
        if (folder / "config.json").is_file() and (
            family is None or folder.name.startswith(families)
        ):
            names.append(folder.name)
    return names


def load_folder(path: str | Path, source: str = "folder") -> LoadedModel:
    """A Tinyformers model folder (config.json + model.safetensors + tokenizer.json)."""
    checkpoint = load_checkpoint(path)
    if checkpoint.tokenizer is None:
        raise CheckpointError(f"{path} has no tokenizer.json, so text cannot be fed to it")
    return LoadedModel(
        name=Path(path).name,
        family=checkpoint.config.family,
        model=checkpoint.model,
        tokenizer=checkpoint.tokenizer,
        source=source,
        metadata=checkpoint.metadata,
    )


def load_shipped(name: str, models_dir: Path = MODELS_DIR) -> LoadedModel:
    if name not in shipped_names(models_dir):
        raise CheckpointError(
            f"no shipped model called {name!r}; available: {', '.join(shipped_names(models_dir))}"
        )
    return load_folder(Path(models_dir) / name, source="shipped")


# ---------------------------------------------------------------------------------------------
# Hugging Face models (GPT-2 and BERT layouts), from a local folder or the machine's cache
# ---------------------------------------------------------------------------------------------

ALLOW_DOWNLOAD_ENV = "TINYFORMERS_ALLOW_DOWNLOAD"
HF_CLASSES = {"gpt2": "GPT2LMHeadModel", "bert": "BertForMaskedLM"}


class HFTokenizer:
    """A ``transformers`` tokenizer behind the small interface our figures use."""

    def __init__(self, tokenizer, kind: str):
        self.hf = tokenizer
        self.kind = kind  # "bpe" (GPT-2's byte-level BPE) or "wordpiece" (BERT)
        self.pad_id = tokenizer.pad_token_id
        self.unk_id = tokenizer.unk_token_id
        self.cls_id = tokenizer.cls_token_id
        self.sep_id = tokenizer.sep_token_id
        self.mask_id = tokenizer.mask_token_id
        self.bos_id = tokenizer.bos_token_id
        self.eos_id = tokenizer.eos_token_id

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False)

    def decode(self, ids: list[int]) -> str:
        return self.hf.decode(ids, skip_special_tokens=True)

    def display_tokens(self, ids: list[int]) -> list[str]:
        return [self.hf.decode([i]) for i in ids]

    def tokens(self, text: str) -> list[str]:
        return self.display_tokens(self.encode(text))

    def id_to_token(self, i: int) -> str:
        return self.hf.convert_ids_to_tokens(int(i))


def downloads_allowed() -> bool:
    return os.environ.get(ALLOW_DOWNLOAD_ENV, "") == "1"


def load_huggingface(name_or_path: str) -> LoadedModel:
    """A GPT-2 or BERT model from a local folder or this machine's Hugging Face cache, converted
    to our classes. Downloads happen only when TINYFORMERS_ALLOW_DOWNLOAD=1."""
    name_or_path = name_or_path.strip()
    if not name_or_path:
        raise CheckpointError("type a Hugging Face model id (such as gpt2) or a folder path")
    path = Path(name_or_path).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        try:
            return load_folder(path)
        except CheckpointError as err:
            if "not a Tinyformers config" not in str(err):
                raise
    import transformers

    from tinyformers.hub.interop import from_hf

    local_only = not downloads_allowed()
    try:
        config = transformers.AutoConfig.from_pretrained(name_or_path, local_files_only=local_only)
    except (OSError, ValueError) as err:
        where = "on this machine" if local_only else "on this machine or online"
        hint = (
            f" Downloads are off; on a machine with internet access set {ALLOW_DOWNLOAD_ENV}=1."
            if local_only
            else ""
        )
        raise CheckpointError(
            f"cannot find a model called {name_or_path!r} {where}.{hint}"
        ) from err
    class_name = HF_CLASSES.get(config.model_type)
    if class_name is None:
        raise CheckpointError(
            f"{name_or_path!r} is a {config.model_type!r} model; the lessons can use GPT-2 and "
            "BERT models"
        )
    model_class = getattr(transformers, class_name)
    hf_model = model_class.from_pretrained(
        name_or_path, local_files_only=local_only, attn_implementation="eager"
    )
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        name_or_path, local_files_only=local_only
    )
    return LoadedModel(
        name=name_or_path,
        family="gpt" if config.model_type == "gpt2" else "bert",
        model=from_hf(hf_model),
        tokenizer=HFTokenizer(tokenizer, "bpe" if config.model_type == "gpt2" else "wordpiece"),
        source="huggingface",
        metadata={"huggingface": name_or_path},
    )
