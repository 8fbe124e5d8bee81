"""Hostile model folders: every one is refused with a one-line CheckpointError, nothing in them
runs, and nothing is built from a config before it passes the size limits.

Each case is a real file made here: a pickle that would run a shell command, a pickle renamed
to model.safetensors, truncated and lying safetensors headers, absurd configs, and links that
lead out of the folder models may be loaded from. Both loaders are tried where a case applies:
Tinyformers folders (``load_checkpoint``) and GPT-2 folders saved by ``transformers``
(``load_huggingface``, which the app's model picker calls for both).
"""

from __future__ import annotations

import json
import os
import pickle
import shlex
import struct
from pathlib import Path

import pytest
import torch
import transformers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from tinyformers.hub import checkpoint, registry
from tinyformers.hub.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinyformers.hub.interop import export_hf
from tinyformers.hub.registry import MODELS_DIR_ENV, load_folder, load_huggingface

KINDS = ["tinyformers", "gpt2"]


class Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.fixture(autouse=True)
def offline(monkeypatch) -> None:
    monkeypatch.delenv("TINYFORMERS_ALLOW_DOWNLOAD", raising=False)
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "payload-ran"


@pytest.fixture
def pickle_bytes(marker) -> bytes:
    """A live payload: unpickling it does create a file (checked on another one here)."""
    proof = marker.with_name("proof-the-payload-works")
    pickle.loads(pickle.dumps(Payload(proof)))
    assert proof.exists()
    return pickle.dumps(Payload(marker))


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def folder(tmp_path, kind, tiny_gpt, char_tokenizer) -> Path:
    """A valid model folder of ``kind``: ours, or a GPT-2 folder saved by ``transformers``."""
    ours = save_checkpoint(tiny_gpt, tmp_path / "models" / "ours", char_tokenizer)
    if kind == "tinyformers":
        return ours
    return export_hf(ours, tmp_path / "models" / "hf-gpt2")


def load(folder: Path, kind: str, **kwargs):
    if kind == "tinyformers":
        return load_checkpoint(folder, **kwargs)
    return load_huggingface(str(folder), **kwargs)


def refused(call, match: str, *paths: Path) -> str:
    """Run ``call``; it must raise a CheckpointError matching ``match`` whose message is one
    line that shows none of ``paths``."""
    with pytest.raises(CheckpointError, match=match) as caught:
        call()
    message = str(caught.value)
    assert message and "\n" not in message and "Traceback" not in message
    for path in paths:
        assert str(path) not in message, f"the message shows a server path: {message}"
    return message


def refused_both_ways(folder: Path, kind: str, match: str, tmp_path: Path) -> None:
    refused(lambda: load(folder, kind), match, tmp_path)
    if kind == "tinyformers":
        refused(lambda: load_huggingface(str(folder)), match, tmp_path)


def weights(folder: Path) -> Path:
    return folder / "model.safetensors"


def safetensors_bytes(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def test_the_valid_folders_load(folder, kind) -> None:
    assert load(folder, kind) is not None


# ---------------------------------------------------------------------------------------------
# Pickles
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["pickle", "torch.save"])
def test_a_pickle_pytorch_model_bin_is_never_opened(
    folder, kind, tmp_path, marker, pickle_bytes, form
) -> None:
    bin_file = folder / "pytorch_model.bin"
    if form == "pickle":
        bin_file.write_bytes(pickle_bytes)
    else:
        torch.save(Payload(marker), bin_file)
    weights(folder).unlink()
    refused_both_ways(folder, kind, r"has no model.safetensors \(only safetensors", tmp_path)
    assert not marker.exists()


def test_a_pickle_beside_safetensors_weights_is_ignored(folder, kind, marker, pickle_bytes) -> None:
    (folder / "pytorch_model.bin").write_bytes(pickle_bytes)
    assert load(folder, kind) is not None
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["gpt2"])
def test_the_gpt2_message_names_the_pickle(folder, kind, tmp_path, pickle_bytes) -> None:
    (folder / "pytorch_model.bin").write_bytes(pickle_bytes)
    weights(folder).unlink()
    refused(lambda: load(folder, kind), "pytorch_model.bin is a pickle file", tmp_path)


def test_a_pickle_renamed_model_safetensors(folder, kind, tmp_path, marker, pickle_bytes) -> None:
    weights(folder).write_bytes(pickle_bytes)
    refused_both_ways(folder, kind, "model.safetensors is not a safetensors file", tmp_path)
    assert not marker.exists()


def test_a_torch_zip_renamed_model_safetensors(folder, kind, tmp_path, marker) -> None:
    torch.save(Payload(marker), weights(folder))
    refused_both_ways(folder, kind, "model.safetensors is not a safetensors file", tmp_path)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# Broken and lying safetensors files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0, 5, 8, 40, 0.5, -1])
def test_a_truncated_weights_file(folder, kind, tmp_path, keep) -> None:
    raw = weights(folder).read_bytes()
    cut = int(len(raw) * keep) if isinstance(keep, float) else keep % len(raw)
    weights(folder).write_bytes(raw[:cut])
    refused_both_ways(
        folder,
        kind,
        r"model.safetensors (is truncated|is not a safetensors|has \d+ bytes)",
        tmp_path,
    )


def test_a_header_length_beyond_any_limit(folder, kind, tmp_path) -> None:
    weights(folder).write_bytes(struct.pack("<Q", 2**63) + b"{}")
    refused_both_ways(folder, kind, "header length .* is not between", tmp_path)


def test_a_header_claiming_a_huge_tensor(folder, kind, tmp_path) -> None:
    shape = [2**40, 2**20]
    header = {"wte.weight": {"dtype": "F32", "shape": shape, "data_offsets": [0, 4 * 2**60]}}
    weights(folder).write_bytes(safetensors_bytes(header, b"\0" * 64))
    refused_both_ways(
        folder, kind, r"has 64 bytes of tensor data but its header describes", tmp_path
    )


def test_a_shape_that_does_not_fit_its_bytes(folder, kind, tmp_path) -> None:
    header = {"a": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 16]}}
    weights(folder).write_bytes(safetensors_bytes(header, b"\0" * 16))
    refused_both_ways(
        folder, kind, r"shape \(1000, 1000\) of float32, which does not fit", tmp_path
    )


@pytest.mark.parametrize(
    "offsets, match",
    [
        ([[0, 16], [8, 24]], "starts at byte 8, not at 16"),  # overlapping
        ([[0, 16], [32, 48]], "starts at byte 32, not at 16"),  # a hole
        ([[16, 32], [0, 16]], "has 48 bytes of tensor data but its header describes 32"),
        ([[0, 16], [16, 0]], "ends \\(byte 0\\) before it begins"),
        ([[0, 16], [16, -16]], "data_offsets that are not two whole numbers"),
        ([[0, 16], [16, 32.0]], "data_offsets that are not two whole numbers"),
    ],
)
def test_bad_offsets(folder, kind, tmp_path, offsets, match) -> None:
    header = {
        name: {"dtype": "F32", "shape": [4], "data_offsets": span}
        for name, span in zip(["a", "b"], offsets, strict=True)
    }
    weights(folder).write_bytes(safetensors_bytes(header, b"\0" * 48))
    refused_both_ways(folder, kind, match, tmp_path)


@pytest.mark.parametrize(
    "header, match",
    [
        (b"[1, 2]", "header is not a JSON object"),
        (b'{"a": 1}', "is not described by dtype, shape and data_offsets"),
        (b'{"a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}, "a": 1}', "appears twice"),
        (b'{"a": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 4]}}', "unknown dtype"),
        (b'{"a": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 4]}}', "not valid JSON"),
        (b'{"a": {"dtype": "F32", "shape": "big", "data_offsets": [0, 4]}}', "has a shape"),
        (b'{"__metadata__": {"a": 1}}', "__metadata__ .* is not a table of strings"),
        (b'{"x": ' * 100_000, "not valid JSON"),
        (b"{\xff\xfe}", "not valid JSON"),
    ],
)
def test_a_malformed_header(folder, kind, tmp_path, header, match) -> None:
    weights(folder).write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    refused_both_ways(folder, kind, match, tmp_path)


def stored_names(kind: str) -> tuple[str, str]:
    """The name of the position table in each kind of folder, and of the final LayerNorm bias."""
    if kind == "tinyformers":
        return "wpe.weight", "ln_f.bias"
    return "transformer.wpe.weight", "transformer.ln_f.bias"


def edit_tensors(folder: Path, change) -> None:
    tensors = load_file(str(weights(folder)))
    change(tensors)
    save_file(tensors, str(weights(folder)))


def test_a_tensor_shaped_unlike_the_config(folder, kind, tmp_path) -> None:
    positions, _ = stored_names(kind)
    edit_tensors(folder, lambda t: t.update({positions: torch.zeros(8, 32)}))
    refused_both_ways(
        folder, kind, r"has shape \(8, 32\) but the config needs \(16, 32\)", tmp_path
    )


def test_integer_weights(folder, kind, tmp_path) -> None:
    _, bias = stored_names(kind)
    edit_tensors(folder, lambda t: t.update({bias: torch.zeros(32, dtype=torch.int64)}))
    refused_both_ways(folder, kind, "has dtype int64, expected floats", tmp_path)


def test_a_missing_tensor(folder, kind, tmp_path) -> None:
    _, bias = stored_names(kind)
    edit_tensors(folder, lambda t: t.pop(bias))
    refused_both_ways(folder, kind, f"is missing tensor '{bias}'", tmp_path)


@pytest.mark.parametrize("kind", ["gpt2"])
def test_a_gpt2_folder_may_carry_a_few_unused_tensors_but_not_a_flood(folder, kind, tmp_path):
    edit_tensors(folder, lambda t: t.update({"unused": torch.zeros(4)}))
    assert load(folder, kind) is not None
    edit_tensors(folder, lambda t: t.update({"unused": torch.zeros(17 * 2**20, dtype=torch.int8)}))
    refused(lambda: load(folder, kind), "more bytes of tensors the model does not use", tmp_path)


# ---------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------


def edit_config(folder: Path, kind: str, **changes) -> None:
    path = folder / "config.json"
    data = json.loads(path.read_text())
    (data["model"] if kind == "tinyformers" else data).update(changes)
    path.write_text(json.dumps(data))


@pytest.fixture
def builds(monkeypatch) -> list[str]:
    """The models anything tried to build (ours or transformers')."""
    built: list[str] = []

    def refuse(name):
        def build(*args, **kwargs):
            built.append(name)
            raise AssertionError(f"{name} was built")

        return build

    monkeypatch.setattr(checkpoint, "build_model", refuse("build_model"))
    for name in ("GPT2LMHeadModel", "BertForMaskedLM"):
        monkeypatch.setattr(getattr(transformers, name), "__init__", refuse(name))
    return built


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(n_layer=100_000), "n_layer must be between 1 and 48, got 100000"),
        (dict(n_embd=2**40), "n_embd must be between 1 and 4096"),
        (
            dict(n_layer=48, n_embd=4096, n_head=32),
            "this configuration would have about .* parameters; the limit",
        ),
        (dict(n_layer="12"), ".*n_layer"),
        (dict(n_layer=True), ".*n_layer"),
    ],
)
def test_a_config_beyond_the_limits_is_refused_before_building(
    folder, kind, tmp_path, builds, changes, match
) -> None:
    edit_config(folder, kind, **changes)
    refused_both_ways(folder, kind, "invalid model config: " + match, tmp_path)
    assert builds == []


@pytest.mark.parametrize(
    "content, match",
    [
        (b'{"format": ', "config.json is not valid JSON"),
        (b"\xff\xfe{}", "config.json is not valid JSON"),
        (b"", "config.json is not valid JSON"),
        (b'{"n_layer": NaN}', "config.json is not valid JSON"),
        (b'{"a": 1, "a": 2}', "config.json is not valid JSON: .*appears twice"),
        (b"[" * 100_000, "config.json is not valid JSON"),
        (b" " * (2**20 + 1), "config.json is larger than 1024 KB"),
    ],
)
def test_a_broken_config_json(folder, kind, tmp_path, builds, content, match) -> None:
    (folder / "config.json").write_bytes(content)
    refused_both_ways(folder, kind, match, tmp_path)
    assert builds == []


@pytest.mark.parametrize(
    "data, match",
    [
        ([1, 2], "is neither a Tinyformers model nor a GPT-2 or BERT one"),
        ({"model_type": "llama"}, "model_type 'llama'"),
        ({"model_type": ["gpt2"]}, "is neither a Tinyformers model"),
        ({"model_type": "gpt2", "activation_function": "relu"}, "activation 'relu' has no"),
    ],
)
def test_a_config_of_no_model_we_know(folder, tmp_path, builds, data, match) -> None:
    (folder / "config.json").write_text(json.dumps(data))
    refused(lambda: load_huggingface(str(folder)), match, tmp_path)
    assert builds == []


def test_a_gpt2_folder_without_weights(folder, kind, tmp_path) -> None:
    weights(folder).unlink()
    refused_both_ways(folder, kind, r"has no model.safetensors \(only safetensors", tmp_path)


# ---------------------------------------------------------------------------------------------
# Links and the folder models may be loaded from
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path, folder) -> Path:
    """A copy of the valid folder outside ``models/``."""
    copy = tmp_path / "elsewhere" / folder.name
    copy.mkdir(parents=True)
    for file in folder.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    return copy


def test_a_linked_folder_leading_outside_the_root_is_refused(folder, kind, tmp_path, outside):
    root = folder.parent
    (root / "link").symlink_to(outside, target_is_directory=True)
    message = "is outside the folder models may be loaded from"
    refused(lambda: load_huggingface("link", allowed_root=root), message, tmp_path)
    refused(lambda: load_huggingface(str(root / "link"), allowed_root=root), message, tmp_path)
    refused(lambda: load_huggingface(str(outside), allowed_root=root), message, tmp_path)
    refused(lambda: load_huggingface("../elsewhere/" + outside.name, allowed_root=root), message)
    if kind == "tinyformers":
        refused(lambda: load_checkpoint(root / "link", allowed_root=root), message, tmp_path)
        refused(lambda: load_folder(root / "link", allowed_root=root), message, tmp_path)
    assert load_huggingface(folder.name, allowed_root=root) is not None


def test_the_models_dir_setting_is_the_default_root(folder, tmp_path, outside, monkeypatch) -> None:
    monkeypatch.setenv(MODELS_DIR_ENV, str(folder.parent))
    assert registry.models_root() == folder.parent
    assert load_huggingface(folder.name) is not None
    refused(lambda: load_huggingface(str(outside)), "is outside the folder models", tmp_path)


def test_a_linked_link_inside_the_root_is_followed(folder, kind) -> None:
    (folder.parent / "alias").symlink_to(folder, target_is_directory=True)
    assert load_huggingface("alias", allowed_root=folder.parent) is not None


@pytest.mark.parametrize("file", ["model.safetensors", "config.json", "tokenizer.json"])
def test_a_file_linked_outside_the_folder_is_refused(folder, kind, tmp_path, outside, file):
    (folder / file).unlink()
    (folder / file).symlink_to(outside / file)
    refused_both_ways(folder, kind, f"{folder.name}/{file} is outside the folder", tmp_path)


def test_a_weights_file_linked_to_a_device_is_refused(folder, kind, tmp_path) -> None:
    weights(folder).unlink()
    weights(folder).symlink_to("/dev/zero")
    refused_both_ways(folder, kind, "model.safetensors is outside the folder", tmp_path)


def test_names_that_are_neither_folders_nor_model_ids(tmp_path) -> None:
    for name in [
        "../../no-such-folder-here",
        "/nowhere/at/all",
        "a b",
        "gpt2/../../x",
        "org/name/extra",
    ]:
        refused(lambda n=name: load_huggingface(n), "there is no model folder", tmp_path)
    refused(lambda: load_huggingface("   "), "type a Hugging Face model id")
    refused(lambda: load_huggingface("a\0b"), "there is no model folder")
    refused(lambda: load_huggingface("x" * 5000), "cannot be loaded: OSError")
    refused(lambda: load_checkpoint("x" * 5000), "cannot be loaded: OSError")


def test_a_model_id_not_on_this_machine(tmp_path) -> None:
    refused(
        lambda: load_huggingface("tinyformers-test/no-such-model"),
        "cannot find a model called 'tinyformers-test/no-such-model' on this machine. Downloads",
    )


@pytest.fixture
def cache(tmp_path, folder, kind, monkeypatch) -> Path:
    """A Hugging Face cache entry for ``org/model`` made of ``folder``'s files, laid out as the
    cache does it (blobs, linked from a snapshot). Tests using it run for the GPT-2 folder."""
    assert kind == "gpt2"
    repo = tmp_path / "hub" / "models--org--model"
    snapshot = repo / "snapshots" / "abc"
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for file in folder.iterdir():
        blob = repo / "blobs" / file.name
        blob.write_bytes(file.read_bytes())
        (snapshot / file.name).symlink_to(blob)

    def cached_file(repo_id, filename, **kwargs):
        assert repo_id == "org/model" and kwargs["local_files_only"]
        if not (snapshot / filename).exists():
            raise OSError(f"{snapshot / filename} does not exist")
        return str(snapshot / filename)

    monkeypatch.setattr(transformers.utils, "cached_file", cached_file)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: tokenizer())
    return snapshot


def tokenizer():
    from tokenizers import Tokenizer as RawTokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=RawTokenizer(WordLevel({"a": 0}, "a")))


@pytest.mark.parametrize("kind", ["gpt2"])
def test_a_cached_model_loads(cache) -> None:
    assert load_huggingface("org/model").source == "huggingface"


@pytest.mark.parametrize("kind", ["gpt2"])
def test_a_cached_model_with_only_pickle_weights(cache, tmp_path, marker, pickle_bytes) -> None:
    (cache / "model.safetensors").unlink()
    (cache / "pytorch_model.bin").write_bytes(pickle_bytes)
    refused(lambda: load_huggingface("org/model"), "pytorch_model.bin is a pickle file", tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["gpt2"])
def test_a_cached_file_linked_outside_its_repo(cache, tmp_path, outside) -> None:
    (cache / "config.json").unlink()
    (cache / "config.json").symlink_to(outside / "config.json")
    refused(lambda: load_huggingface("org/model"), "config.json is outside the folder", tmp_path)


@pytest.mark.parametrize("kind", ["tinyformers"])
def test_a_workspace_leaves_out_a_model_linked_from_elsewhere(tmp_path, folder, kind, outside):
    from tinyformers.hub.workspace import Workspace, new_id

    work = Workspace(tmp_path / "work", new_id())
    (work.folder / "models").mkdir(parents=True)
    (work.folder / "models" / "mine").symlink_to(outside, target_is_directory=True)
    assert work.model_folders() and work.load_models() == {}


# ---------------------------------------------------------------------------------------------
# Anything at all as model.safetensors
# ---------------------------------------------------------------------------------------------

HEADER_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
ENTRY = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["F32", "F16", "I64", "BOOL", "X"]),
        "shape": st.lists(st.integers(-1, 40), max_size=3),
        "data_offsets": st.lists(st.integers(-1, 200), min_size=2, max_size=2),
    }
)
HEADERS = st.dictionaries(
    st.sampled_from(["wte.weight", "wpe.weight", "transformer.wte.weight", "__metadata__", "x"]),
    ENTRY | HEADER_VALUES,
    max_size=4,
)


def random_files():
    plain = st.binary(max_size=300)
    shaped = st.builds(
        lambda header, data, length_delta: (
            struct.pack("<Q", max(0, len(json.dumps(header)) + length_delta))
            + json.dumps(header).encode()
            + data
        ),
        HEADERS,
        st.binary(max_size=200),
        st.sampled_from([0, 0, 0, -1, 1, 2**40]),
    )
    return plain | shaped


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=random_files())
def test_any_bytes_as_weights_give_only_a_checkpoint_error(folder, kind, content) -> None:
    weights(folder).write_bytes(content)
    with pytest.raises(CheckpointError) as caught:
        load(folder, kind)
    assert str(caught.value) and "\n" not in str(caught.value)
