"""A browser's saved work: kept, capped, separate from every other browser, removable."""

from __future__ import annotations

import os
import time

import pytest
import torch

from tinyformers.hub.registry import LoadedModel
from tinyformers.hub.workspace import (
    WorkLimits,
    Workspace,
    WorkspaceError,
    is_valid_id,
    new_id,
    prune,
)
from tinyformers.model.config import GPTConfig


@pytest.fixture
def trained(make_model, char_tokenizer):
    def make(name: str, seed: int = 0, **changes) -> LoadedModel:
        changes.setdefault("vocab_size", char_tokenizer.vocab_size)
        model = make_model(GPTConfig, seed=seed, **changes)
        return LoadedModel(name, "gpt", model, char_tokenizer, "trained", {"steps": seed})

    return make


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_ids_are_random_and_checked() -> None:
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100 and all(is_valid_id(i) for i in ids)
    for bad in ["", "../../etc", "a" * 31, "a" * 33, "a/b" + "c" * 29, None, 5]:
        assert not is_valid_id(bad)
        with pytest.raises(WorkspaceError):
            Workspace("/tmp", bad)


def test_a_saved_model_comes_back_identical(tmp_path, trained) -> None:
    work = Workspace(tmp_path, new_id())
    original = trained("my-gpt", seed=3)
    assert work.save_model(original) == []
    again = Workspace(tmp_path, work.folder.name).load_models()
    assert list(again) == ["my-gpt"]
    loaded = again["my-gpt"]
    assert same_weights(loaded.model, original.model) and loaded.metadata == {"steps": 3}
    ids = original.tokenizer.encode("the cat")
    assert loaded.tokenizer.encode("the cat") == ids
    with torch.no_grad():
        assert torch.equal(
            loaded.model(torch.tensor([ids])).logits, original.model(torch.tensor([ids])).logits
        )


def test_another_browser_sees_nothing(tmp_path, trained) -> None:
    mine, theirs = Workspace(tmp_path, new_id()), Workspace(tmp_path, new_id())
    mine.save_model(trained("my-gpt"))
    mine.save_result("scaling-sweep", {"losses": [3.2, 2.9]})
    assert theirs.load_models() == {} and theirs.load_result("scaling-sweep") is None
    assert mine.load_result("scaling-sweep") == {"losses": [3.2, 2.9]}


def test_forget_removes_everything(tmp_path, trained) -> None:
    work = Workspace(tmp_path, new_id())
    work.save_model(trained("my-gpt"))
    work.save_result("r", [1, 2])
    work.forget()
    assert work.load_models() == {} and work.load_result("r") is None
    assert not work.folder.exists()


def test_the_oldest_models_go_when_over_the_count(tmp_path, trained) -> None:
    work = Workspace(tmp_path, new_id(), WorkLimits(max_models=2))
    work.save_model(trained("first"))
    work.save_model(trained("second"))
    assert work.save_model(trained("third")) == ["first"]
    assert work.model_names() == ["second", "third"]


def test_a_model_over_the_size_cap_is_refused(tmp_path, trained) -> None:
    work = Workspace(tmp_path, new_id(), WorkLimits(max_bytes=10_000))
    with pytest.raises(WorkspaceError, match="larger than"):
        work.save_model(trained("big", n_embd=64))
    assert work.model_names() == []


def test_any_model_name_stays_inside_the_folder(tmp_path, trained) -> None:
    work = Workspace(tmp_path, new_id(), WorkLimits(max_models=10))
    names = ["../x", "a/b", "my-gpt (step 600)", "модель 🐶", "..", "<script>"]
    for name in names:
        work.save_model(trained(name))
    assert sorted(work.model_names()) == sorted(names)
    inside = {p.resolve().parent for p in (work.folder / "models").iterdir()}
    assert inside == {(work.folder / "models").resolve()}
    for bad in ["", " ", "x" * 101, "a\x00b", "line\nbreak"]:
        with pytest.raises(WorkspaceError):
            work.save_model(trained(bad))


def test_result_keys_cannot_leave_the_folder(tmp_path) -> None:
    work = Workspace(tmp_path, new_id())
    for bad in ["../x", "a/b", "", ".hidden", "x" * 65]:
        with pytest.raises(WorkspaceError):
            work.save_result(bad, 1)


def test_unused_work_is_pruned_after_its_age(tmp_path, trained) -> None:
    old, fresh = Workspace(tmp_path, new_id()), Workspace(tmp_path, new_id())
    old.save_result("r", 1)
    fresh.save_result("r", 2)
    ten_days_ago = time.time() - 10 * 86_400
    os.utime(old.folder / ".last-used", (ten_days_ago, ten_days_ago))
    assert prune(tmp_path, WorkLimits(max_age_days=7)) == [old.folder.name]
    assert not old.folder.exists() and fresh.load_result("r") == 2


def test_limits_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("TINYFORMERS_WORK_MAX_MB", "50")
    monkeypatch.setenv("TINYFORMERS_WORK_MAX_MODELS", "3")
    limits = WorkLimits.from_env()
    assert limits.max_bytes == 50 * 2**20 and limits.max_models == 3
    monkeypatch.setenv("TINYFORMERS_WORK_MAX_DAYS", "soon")
    with pytest.raises(ValueError, match="TINYFORMERS_WORK_MAX_DAYS must be a number"):
        WorkLimits.from_env()


def test_the_readme_states_the_default_limits() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    defaults = WorkLimits()
    for row in [
        f"| `TINYFORMERS_WORK_MAX_MB` | {defaults.max_bytes // 2**20} |",
        f"| `TINYFORMERS_WORK_MAX_MODELS` | {defaults.max_models} |",
        f"| `TINYFORMERS_WORK_MAX_DAYS` | {defaults.max_age_days:g} |",
    ]:
        assert row in readme, row
