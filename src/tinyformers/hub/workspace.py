"""A student's saved work on the server, under an id that only their browser holds.

Models a student trains and results they compute live in their session; a copy is kept here so
that a page reload or a reconnect brings them back. Each browser gets a random id (kept in a
cookie); its work is a folder named by that id:

    <root>/<id>/models/<folder>/  model folders (config.json, model.safetensors, tokenizer.json);
                                  the model's name is in its metadata, the folder name is safe
    <root>/<id>/results/<key>.json

Nothing is shared between ids, and an id that is not of the expected form is refused, so no
path outside the root can be named. Every write is atomic (a folder or file is written beside
its place and renamed into it). Work is capped per browser in size and in number of models, and
removed after a number of days without use.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyformers.hosting import Hosting
from tinyformers.hub.checkpoint import CheckpointError, recover_folder, save_checkpoint
from tinyformers.hub.registry import LoadedModel, load_folder
from tinyformers.i18n import _

WORK_DIR_ENV = "TINYFORMERS_WORK_DIR"
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{32}")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_MODEL_NAME = 100
NAME_KEY = "workspace_name"  # the model's name, kept in its folder's metadata
TOUCH_FILE = ".last-used"


class WorkspaceError(ValueError):
    """A request the workspace refuses, with a message a student can read."""


@dataclass(frozen=True)
class WorkLimits:
    """How much a host keeps for each browser."""

    max_bytes: int = 200 * 2**20
    max_models: int = 5
    max_age_days: float = 7.0

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_models <= 0 or self.max_age_days <= 0:
            raise ValueError("work limits must be positive")

    @classmethod
    def from_env(cls) -> WorkLimits:
        """The caps of ``Hosting.from_env()``: ``TINYFORMERS_HOSTED`` and ``_WORK_MAX_MB``,
        ``_WORK_MAX_MODELS``, ``_WORK_MAX_DAYS``."""
        hosting = Hosting.from_env()
        return cls(
            max_bytes=int(hosting.work_max_mb * 2**20),
            max_models=hosting.work_max_models,
            max_age_days=hosting.work_max_days,
        )


def default_root() -> Path:
    """``TINYFORMERS_WORK_DIR``, or a folder in the user's cache."""
    configured = os.environ.get(WORK_DIR_ENV)
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "tinyformers" / "work"


def new_id() -> str:
    """A fresh id that nobody can guess (192 random bits)."""
    return secrets.token_urlsafe(24)


def is_valid_id(work_id: object) -> bool:
    return isinstance(work_id, str) and ID_PATTERN.fullmatch(work_id) is not None


class Workspace:
    """The saved work of one browser."""

    def __init__(self, root: Path, work_id: str, limits: WorkLimits | None = None) -> None:
        if not is_valid_id(work_id):
            raise WorkspaceError("this work id is not one the server hands out")
        self.root = Path(root)
        self.folder = self.root / work_id
        self.limits = limits or WorkLimits()

    # --- models ------------------------------------------------------------------------------

    def save_model(self, loaded: LoadedModel) -> list[str]:
        """Keep a trained model; returns the names of older models removed to stay in the caps."""
        folder = self._models / model_folder_name(loaded.name)
        metadata = {**loaded.metadata, NAME_KEY: loaded.name}
        save_checkpoint(loaded.model, folder, loaded.tokenizer, metadata=metadata)
        self._touch()
        return self._enforce_caps(keep=folder.name)

    def model_folders(self) -> list[Path]:
        """The saved models' folders, oldest first."""
        if not self._models.is_dir():
            return []
        folders = [f for f in self._models.iterdir() if NAME_PATTERN.fullmatch(f.name)]
        for folder in folders:
            recover_folder(folder)
        folders = [f for f in folders if (f / "config.json").is_file()]
        return sorted(folders, key=lambda f: (f.stat().st_mtime, f.name))

    def model_names(self) -> list[str]:
        """Saved model names, oldest first."""
        return list(self.load_models())

    def load_models(self) -> dict[str, LoadedModel]:
        """Every saved model that still loads, by name, oldest first (a damaged one is left out)."""
        models = {}
        for folder in self.model_folders():
            try:
                loaded = load_folder(folder, source="trained", allowed_root=self.folder)
            except (CheckpointError, OSError, ValueError):
                continue
            loaded.name = str(loaded.metadata.pop(NAME_KEY, folder.name))
            models[loaded.name] = loaded
        if self.folder.is_dir():
            self._touch()
        return models

    def remove_model(self, name: str) -> None:
        shutil.rmtree(self._models / model_folder_name(name), ignore_errors=True)

    # --- results -----------------------------------------------------------------------------

    def save_result(self, key: str, data: Any) -> None:
        """Keep a JSON-serialisable result under ``key``, replacing any earlier one."""
        path = self._results / f"{check_name(key)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(data)
        if len(text.encode()) > self.limits.max_bytes:
            raise WorkspaceError(_("this result is too large to keep"))
        handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        self._touch()

    def load_result(self, key: str) -> Any | None:
        path = self._results / f"{check_name(key)}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    # --- the whole -----------------------------------------------------------------------------

    def forget(self) -> None:
        """Remove everything kept for this browser."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def size_bytes(self) -> int:
        if not self.folder.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())

    @property
    def _models(self) -> Path:
        return self.folder / "models"

    @property
    def _results(self) -> Path:
        return self.folder / "results"

    def _touch(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / TOUCH_FILE).write_text(str(time.time()), encoding="utf-8")

    def _enforce_caps(self, keep: str) -> list[str]:
        """Remove the oldest models (never ``keep``, a folder name) until within the caps."""
        removed = []
        for folder in self.model_folders():
            over_count = len(self.model_folders()) > self.limits.max_models
            over_size = self.size_bytes() > self.limits.max_bytes
            if folder.name == keep or not (over_count or over_size):
                continue
            removed.append(str(read_name(folder)))
            shutil.rmtree(folder, ignore_errors=True)
        if self.size_bytes() > self.limits.max_bytes:
            shutil.rmtree(self._models / keep, ignore_errors=True)
            raise WorkspaceError(
                _(
                    "this model is larger than the {size} MB the server keeps for you, so it "
                    "lives in this tab only"
                ).format(size=f"{self.limits.max_bytes / 2**20:.0f}")
            )
        return removed


def model_folder_name(name: str) -> str:
    """A safe, stable folder name for a model name such as ``my-gpt (step 600)``."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_MODEL_NAME:
        raise WorkspaceError(
            _("a model name is 1 to {limit} characters").format(limit=MAX_MODEL_NAME)
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise WorkspaceError(_("a model name cannot hold control characters"))
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")[:40] or "model"
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
    return f"{readable}-{digest}"


def read_name(folder: Path) -> str:
    """The model name a saved folder holds (its folder name if the config cannot be read)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        return str(config["metadata"][NAME_KEY])
    except (OSError, ValueError, KeyError, TypeError):
        return folder.name


def check_name(name: str) -> str:
    """A model or result name that is safe as one folder or file name."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise WorkspaceError(
            _("names are 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        )
    return name


def prune(root: Path, limits: WorkLimits, now: float | None = None) -> list[str]:
    """Remove the work of browsers unused for longer than ``limits.max_age_days``."""
    root = Path(root)
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    removed = []
    for folder in root.iterdir():
        if not is_valid_id(folder.name):
            continue
        touch = folder / TOUCH_FILE
        last = touch.stat().st_mtime if touch.exists() else folder.stat().st_mtime
        if now - last > limits.max_age_days * 86_400:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed
