"""Finding and loading models by name: shipped ones in ``models/``, local folders, and (when the
machine can reach it or has it cached) a Hugging Face model id.

Every loader returns a ``LoadedModel``: one of our models plus a tokenizer with the same small
interface (``encode``, ``decode``, ``display_tokens`` and the special-token ids), so every figure
and lesson works the same whatever the model's origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from tinyformers.checkpoint import CheckpointError, load_checkpoint

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


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


def shipped_names(models_dir: Path = MODELS_DIR, family: str | None = None) -> list[str]:
    """Names of the model folders shipped in ``models/`` (optionally of one family)."""
    names = []
    for folder in sorted(Path(models_dir).iterdir()) if Path(models_dir).is_dir() else []:
        if (folder / "config.json").is_file() and (
            family is None or folder.name.startswith(family)
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
