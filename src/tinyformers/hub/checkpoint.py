"""Checkpoints as Hugging Face-style folders.

    model_dir/
      config.json        {"format": "tinyformers", "version": 1, "model": {...config...}, "metadata": {...}}
      model.safetensors  the weights (tied copies stored once)
      tokenizer.json     the tokenizer, in the `tokenizers` format
      README.md          the model card

Weights are only ever read with ``safetensors`` (which cannot run code), and loading is strict:
the config is checked against the size limits and the weights' header against the shapes the
config needs (``tinyformers.hub.safety``) before anything is built, and a missing, unexpected or
wrongly shaped tensor stops the load with a message naming it.

Saving is all or nothing: the new folder is written beside the old one and swapped in with
renames (``replaced_folder``), so a save killed part way leaves the old folder or the new one,
never a mix of the two.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tinyformers.hub.safety import (
    CheckpointError,
    check_inside,
    check_links,
    check_tensors,
    checkpoint_errors,
    expected_tensors,
    file_label,
    read_header,
    read_json,
)
from tinyformers.i18n import _
from tinyformers.model.build import build_model
from tinyformers.model.config import TransformerConfig, config_from_dict

FORMAT = "tinyformers"
VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
CARD_FILE = "README.md"


@dataclass
class Checkpoint:
    model: nn.Module
    config: TransformerConfig
    tokenizer: Any = None  # tinyformers.text.tokenizers.Tokenizer, when the folder has one
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def saveable_state_dict(model: nn.Module) -> dict:
    """The state dict without tied duplicates, every tensor contiguous (safetensors needs both)."""
    tied = getattr(model, "tied_weights", {})
    return {k: v.detach().contiguous() for k, v in model.state_dict().items() if k not in tied}


def save_checkpoint(
    model: nn.Module,
    out_dir: str | Path,
    tokenizer: Any = None,
    card: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a model folder at ``out_dir``, replacing any folder there in one step."""
    out = Path(out_dir)
    config = {
        "format": FORMAT,
        "version": VERSION,
        "model": model.config.to_dict(),
        "metadata": metadata or {},
    }
    with replaced_folder(out) as staging:
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        save_file(
            saveable_state_dict(model), str(staging / WEIGHTS_FILE), metadata={"format": "pt"}
        )
        if tokenizer is not None:
            tokenizer.save(staging / TOKENIZER_FILE)
        if card is not None:
            (staging / CARD_FILE).write_text(card, encoding="utf-8")
    return out


@contextmanager
def replaced_folder(out: Path) -> Iterator[Path]:
    """Yield an empty folder beside ``out``; when the block ends, it becomes ``out``.

    The files are flushed to disk before the swap. If the block fails, ``out`` is untouched and
    the half-written folder is removed. ``recover_folder`` finishes a swap that a killed process
    left half done.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        yield staging
        _fsync_tree(staging)
        if out.exists():
            old = out.parent / f".{out.name}.old-{staging.name.rsplit('-', 1)[-1]}"
            os.rename(out, old)
            os.rename(staging, out)
            shutil.rmtree(old)
        else:
            os.rename(staging, out)
        _fsync_path(out.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def recover_folder(out: Path) -> None:
    """Undo what an interrupted ``replaced_folder`` left beside ``out``: a killed swap put the
    old folder back, half-written folders go."""
    out = Path(out)
    if not out.parent.is_dir():
        return
    olds = sorted(out.parent.glob(f".{out.name}.old-*"))
    if olds and not out.exists():
        os.rename(olds.pop(), out)
    for leftover in [*olds, *out.parent.glob(f".{out.name}.new-*")]:
        shutil.rmtree(leftover, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        _fsync_path(path)
    _fsync_path(folder)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_config(model_dir: Path) -> tuple[TransformerConfig, dict[str, Any]]:
    """The model config and metadata of a Tinyformers folder, checked against the size limits
    before anything is built."""
    path = Path(model_dir) / CONFIG_FILE
    where = file_label(path)
    if not path.is_file():
        raise CheckpointError(
            _("{folder} has no {file}; is it a Tinyformers model folder?").format(
                folder=Path(model_dir).name, file=CONFIG_FILE
            )
        )
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f'{where} is not a Tinyformers config (no "format": "{FORMAT}")')
    if data.get("version") != VERSION:
        raise CheckpointError(
            f"{where} has format version {str(data.get('version'))[:20]}; expected {VERSION}"
        )
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{where}: the metadata is not a JSON object")
    try:
        config = config_from_dict(data.get("model", {}))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{where}: invalid model config: {err}") from err
    return config, metadata


def load_checkpoint(model_dir: str | Path, allowed_root: str | Path | None = None) -> Checkpoint:
    """Build the model its config describes and load its weights strictly, in eval mode.

    The config is checked against the size limits and the weights' header against the shapes
    the config needs before the model is built or a tensor read. The folder, and everything in
    it, must lie inside ``allowed_root`` once links are followed (by default, inside the folder
    itself). Every failure is a ``CheckpointError``.
    """
    path = Path(model_dir)
    root = Path(allowed_root) if allowed_root is not None else path
    what = _("the model folder {name}").format(name=repr(path.name))
    with checkpoint_errors(what):
        if not path.is_dir():
            raise CheckpointError(_("no model folder at {name}").format(name=repr(path.name)))
        check_inside(path, root, what)
        check_links(path, root)
        config, metadata = read_config(path)
        weights = path / WEIGHTS_FILE
        where = file_label(weights)
        if not weights.is_file():
            raise CheckpointError(
                _("{name} has no {file} (only safetensors weights are loaded)").format(
                    name=path.name, file=WEIGHTS_FILE
                )
            )
        with torch.device("meta"):
            skeleton = build_model(config)
        expected = expected_tensors(skeleton, getattr(skeleton, "tied_weights", {}))
        check_tensors(read_header(weights), expected, where)
        tensors = load_file(str(weights))
        if {k: tuple(v.shape) for k, v in tensors.items()} != {
            k: shape for k, (shape, _offsets) in expected.items()
        }:
            raise CheckpointError(f"{where} changed while it was being loaded")
        model = build_model(config)
        state = model.state_dict()
        model.load_state_dict({k: v.to(state[k].dtype) for k, v in tensors.items()}, strict=False)
        tokenizer = None
        if (path / TOKENIZER_FILE).is_file():
            from tinyformers.text.tokenizers import Tokenizer

            try:
                tokenizer = Tokenizer.load(path / TOKENIZER_FILE)
            except ValueError as err:
                raise CheckpointError(f"{file_label(path / TOKENIZER_FILE)}: {err}") from err
    return Checkpoint(model.eval(), config, tokenizer, metadata, path)
