"""Finding and loading models by name: shipped ones in ``models/``, local folders, and (when the
machine can reach it or has it cached) a Hugging Face model id.

Every loader returns a ``LoadedModel``: one of our models plus a tokenizer with the same small
interface (``encode``, ``decode``, ``display_tokens`` and the special-token ids), so every figure
and lesson works the same whatever the model's origin.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from tinyformers import hosting
from tinyformers.hub import safety
from tinyformers.hub.checkpoint import CONFIG_FILE, FORMAT, WEIGHTS_FILE, load_checkpoint
from tinyformers.hub.safety import CheckpointError, public_message
from tinyformers.i18n import _
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
        if (
            not folder.name.startswith(".")
            and (folder / "config.json").is_file()
            and (family is None or folder.name.startswith(families))
        ):
            names.append(folder.name)
    return names


def load_folder(
    path: str | Path, source: str = "folder", allowed_root: str | Path | None = None
) -> LoadedModel:
    """A Tinyformers model folder (config.json + model.safetensors + tokenizer.json), inside
    ``allowed_root`` if given (see ``load_checkpoint``)."""
    checkpoint = load_checkpoint(path, allowed_root=allowed_root)
    if checkpoint.tokenizer is None:
        raise CheckpointError(
            _("{model} has no tokenizer.json, so text cannot be fed to it").format(
                model=Path(path).name
            )
        )
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
    return load_folder(Path(models_dir) / name, source="shipped", allowed_root=models_dir)


# ---------------------------------------------------------------------------------------------
# Hugging Face models (GPT-2 and BERT layouts), from a local folder or the machine's cache
# ---------------------------------------------------------------------------------------------

ALLOW_DOWNLOAD_ENV = "TINYFORMERS_ALLOW_DOWNLOAD"
MODELS_DIR_ENV = hosting.MODELS_DIR_ENV
HF_CLASSES = {"gpt2": "GPT2LMHeadModel", "bert": "BertForMaskedLM"}
HF_CONFIGS = {"gpt2": "GPT2Config", "bert": "BertConfig"}
PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.ckpt", "tf_model.h5")
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")


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


def models_root() -> Path | None:
    """The folder typed model folders must lie in (``TINYFORMERS_MODELS_DIR``), or None when
    any folder on this machine may be loaded."""
    configured = os.environ.get(MODELS_DIR_ENV, "").strip()
    return Path(configured).expanduser() if configured else None


def load_huggingface(name_or_path: str, allowed_root: str | Path | None = None) -> LoadedModel:
    """A model folder (ours, or a GPT-2 or BERT one saved by ``transformers``) or a model in this
    machine's Hugging Face cache, converted to our classes.

    A folder must lie inside ``allowed_root`` (by default ``TINYFORMERS_MODELS_DIR``; when neither
    is set, any folder), links followed, and a relative path is read from there. Only
    ``model.safetensors`` weights are read, and only after the config has passed our size limits
    and the weights' header matches the shapes the config needs. Downloads happen only when
    TINYFORMERS_ALLOW_DOWNLOAD=1. Every failure is a ``CheckpointError``.
    """
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise CheckpointError(_("type a Hugging Face model id (such as gpt2) or a folder path"))
    name_or_path = name_or_path.strip()
    root = Path(allowed_root) if allowed_root is not None else models_root()
    shown = name_or_path if HUB_ID.fullmatch(name_or_path) else Path(name_or_path).name
    with safety.checkpoint_errors(repr(shown)):
        folder = _typed_folder(name_or_path, root)
        if folder is not None:
            return _load_model_folder(folder, name_or_path, root)
        return _load_cached(name_or_path)


def _typed_folder(name_or_path: str, root: Path | None) -> Path | None:
    """The folder a typed name means, or None when it can only be a Hugging Face model id."""
    path = Path(name_or_path).expanduser()
    if root is not None and not path.is_absolute():
        path = Path(root) / path
    if path.is_dir():
        if root is not None:
            safety.check_inside(path, root, _("the folder {name}").format(name=repr(path.name)))
        return path
    if not HUB_ID.fullmatch(name_or_path) or ".." in name_or_path:
        raise CheckpointError(_("there is no model folder {name}").format(name=repr(name_or_path)))
    return None


def _load_model_folder(folder: Path, name: str, root: Path | None) -> LoadedModel:
    config_file = folder / CONFIG_FILE
    if not config_file.is_file():
        raise CheckpointError(
            _("{folder} has no {file}; is it a model folder?").format(
                folder=folder.name, file=CONFIG_FILE
            )
        )
    safety.check_links(folder, root if root is not None else folder)
    data = safety.read_json(config_file)
    if isinstance(data, dict) and data.get("format") == FORMAT:
        return load_folder(folder, allowed_root=root)
    return _load_hf_folder(folder, data, name, folder.name, tokenizer_from=folder)


def _load_cached(repo_id: str) -> LoadedModel:
    """A model id from this machine's Hugging Face cache, downloaded first if allowed."""
    from transformers.utils import cached_file

    local_only = not downloads_allowed()
    try:
        config_file = Path(cached_file(repo_id, CONFIG_FILE, local_files_only=local_only))
    except Exception as err:
        if local_only:
            message = _(
                "cannot find a model called {name} on this machine. Downloads are off; on a "
                "machine with internet access set {variable}=1."
            )
        else:
            message = _("cannot find a model called {name} on this machine or online.")
        raise CheckpointError(
            message.format(name=repr(repo_id), variable=ALLOW_DOWNLOAD_ENV)
        ) from err
    folder = config_file.parent
    # The cache keeps a model's files in <repo>/blobs and links them from <repo>/snapshots/<rev>.
    root = folder.parent.parent if folder.parent.name == "snapshots" else folder
    safety.check_links(folder, root)
    data = safety.read_json(config_file)
    try:
        cached_file(repo_id, WEIGHTS_FILE, local_files_only=local_only)
    except Exception as err:
        raise CheckpointError(_no_safetensors(repo_id, folder)) from err
    safety.check_links(folder, root)
    return _load_hf_folder(
        folder, data, repo_id, repo_id, tokenizer_from=repo_id, local_only=local_only
    )


def _no_safetensors(name: str, folder: Path) -> str:
    message = _("{name} has no {file} (only safetensors weights are loaded)").format(
        name=name, file=WEIGHTS_FILE
    )
    pickles = [file for file in PICKLE_WEIGHTS if (folder / file).exists()]
    if pickles:
        message += _("; {file} is a pickle file, which can run code, so it is never opened").format(
            file=pickles[0]
        )
    return message


def _load_hf_folder(
    folder: Path,
    data: object,
    name: str,
    shown: str,
    tokenizer_from: str | Path,
    local_only: bool = True,
) -> LoadedModel:
    """A GPT-2 or BERT folder saved by ``transformers`` (``name`` as typed, ``shown`` in
    messages): config.json and model.safetensors are checked before any model is built."""
    import torch
    import transformers

    from tinyformers.hub.interop import config_from_hf, from_hf

    where = safety.file_label(folder / CONFIG_FILE)
    model_type = data.get("model_type") if isinstance(data, dict) else None
    class_name = HF_CLASSES.get(model_type) if isinstance(model_type, str) else None
    if class_name is None:
        raise CheckpointError(
            _(
                "{name} is neither a Tinyformers model nor a GPT-2 or BERT one (model_type "
                "{model_type}); the lessons can use GPT-2 and BERT models"
            ).format(name=repr(shown), model_type=repr(str(model_type)[:40]))
        )
    try:
        hf_config = getattr(transformers, HF_CONFIGS[model_type]).from_dict(data)
        config_from_hf(hf_config)
    except Exception as err:
        reason = public_message(err, with_type=False)
        raise CheckpointError(
            _("{where}: invalid model config: {reason}").format(where=where, reason=reason)
        ) from err
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(_no_safetensors(shown, folder))
    entries = safety.read_header(weights)
    model_class = getattr(transformers, class_name)
    with torch.device("meta"):
        skeleton = model_class(hf_config)
    expected = safety.expected_tensors(skeleton, skeleton._tied_weights_keys or {})
    needed = sum(math.prod(shape) for shape, _offsets in expected.values())
    safety.check_tensors(
        _hf_names(entries, skeleton.base_model_prefix, expected),
        expected,
        safety.file_label(weights),
        extra_bytes=max(16 * 2**20, 4 * needed),
    )
    hf_model = model_class.from_pretrained(
        folder,
        config=hf_config,
        local_files_only=True,
        use_safetensors=True,
        attn_implementation="eager",
    )
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        tokenizer_from, local_files_only=local_only
    )
    return LoadedModel(
        name=name,
        family="gpt" if model_type == "gpt2" else "bert",
        model=from_hf(hf_model),
        tokenizer=HFTokenizer(tokenizer, "bpe" if model_type == "gpt2" else "wordpiece"),
        source="huggingface",
        metadata={"huggingface": name},
    )


def _hf_names(entries: dict, prefix: str, expected: dict) -> dict:
    """The header's tensors under the names the model uses: files saved from the bare model
    lack the ``transformer.`` or ``bert.`` prefix, and old BERT files call LayerNorm's weight
    and bias gamma and beta."""
    renamed = {}
    for name, entry in entries.items():
        plain = re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", name))
        for candidate in (name, plain, f"{prefix}.{name}", f"{prefix}.{plain}"):
            if candidate in expected and candidate not in renamed:
                renamed[candidate] = entry
                break
        else:
            renamed[name] = entry
    return renamed
