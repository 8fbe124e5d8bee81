"""Finding shipped models by name and family."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinyformers.hub.checkpoint import read_config
from tinyformers.hub.registry import MODELS_DIR, LoadedModel, model_key, shipped_names
from tinyformers.model.config import CONFIG_CLASSES, GPTConfig

FOLDERS = ["gpt-stories", "bert-stories", "seq2seq-date", "gpt-char"]


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """Model folders of three families, a folder without a config and a stray file."""
    for name in FOLDERS:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    (tmp_path / "gpt-unfinished").mkdir()  # no config.json: not a model
    (tmp_path / "notes.txt").write_text("not a model")
    return tmp_path


def test_every_model_folder_in_alphabetical_order(models_dir: Path) -> None:
    assert shipped_names(models_dir) == sorted(FOLDERS)


@pytest.mark.parametrize(
    "family, expected",
    [
        ("gpt", ["gpt-char", "gpt-stories"]),
        (("gpt",), ["gpt-char", "gpt-stories"]),
        (("gpt", "bert"), ["bert-stories", "gpt-char", "gpt-stories"]),
        (("bert", "gpt"), ["bert-stories", "gpt-char", "gpt-stories"]),
        (("seq2seq", "bert"), ["bert-stories", "seq2seq-date"]),
        ((), []),
    ],
    ids=["gpt", "gpt-in-a-tuple", "gpt-or-bert", "bert-or-gpt", "seq2seq-or-bert", "none"],
)
def test_one_family_or_several(models_dir: Path, family, expected: list[str]) -> None:
    assert shipped_names(models_dir, family=family) == expected


def test_an_unknown_family_is_refused_by_name(models_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown model family 'GPT'; expected one of gpt"):
        shipped_names(models_dir, family="GPT")
    with pytest.raises(ValueError, match="unknown model family 't5'"):
        shipped_names(models_dir, family=("gpt", "t5"))


def test_a_missing_models_folder_has_no_models(tmp_path: Path) -> None:
    assert shipped_names(tmp_path / "nowhere", family=("gpt", "bert")) == []


def test_the_family_filter_agrees_with_every_shipped_config() -> None:
    """The filter reads folder names, which must name the family their config.json holds."""
    for family in CONFIG_CLASSES:
        in_config = [
            name for name in shipped_names() if read_config(MODELS_DIR / name)[0].family == family
        ]
        assert shipped_names(family=family) == in_config


def test_model_key_tells_apart_models_of_the_same_name(tiny_gpt, make_model) -> None:
    first = LoadedModel("mine", "gpt", tiny_gpt, None, "trained", {})
    again = LoadedModel("mine", "gpt", tiny_gpt, None, "trained", {})
    other = LoadedModel("mine", "gpt", make_model(GPTConfig, seed=1), None, "trained", {})
    shipped = LoadedModel("mine", "gpt", tiny_gpt, None, "shipped", {})
    assert model_key(first) == model_key(again)
    assert model_key(first) != model_key(other)
    assert model_key(first) != model_key(shipped)
    assert model_key(first) == f"trained:mine:{id(tiny_gpt)}"


def test_folders_left_by_an_interrupted_save_are_not_models(models_dir: Path) -> None:
    for leftover in (".gpt-stories.new-abc123", ".gpt-stories.old-abc123"):
        (models_dir / leftover).mkdir()
        (models_dir / leftover / "config.json").write_text("{}")
    assert shipped_names(models_dir) == sorted(FOLDERS)
