"""Checkpoint folders: exact round trips, and a precise CheckpointError for every broken folder."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from tinyformers.hub.checkpoint import (
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
    saveable_state_dict,
)
from tinyformers.model.config import BertConfig, GPTConfig, Seq2SeqConfig


def run(model):
    """Logits of ``model`` on a fixed batch of random ids."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, model.config.vocab_size, (2, 9), generator=gen)
    with torch.no_grad():
        if model.config.family == "seq2seq":
            return model(x, x[:, :5]).logits
        return model(x).logits


MODELS = [
    (GPTConfig, {}),
    (GPTConfig, dict(position="rotary", ln_placement="post", causal=False)),
    (BertConfig, dict(position="sinusoidal")),
    (Seq2SeqConfig, dict(n_decoder_layer=1)),
]


@pytest.mark.parametrize("config_class, changes", MODELS)
def test_round_trip_gives_identical_logits(
    tmp_path, make_model, char_tokenizer, config_class, changes
):
    model = make_model(config_class, **changes)
    save_checkpoint(model, tmp_path, tokenizer=char_tokenizer, card="# A card\n", metadata={"a": 1})
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint.config == model.config
    assert checkpoint.metadata == {"a": 1}
    assert checkpoint.path == tmp_path
    assert (tmp_path / "README.md").read_text() == "# A card\n"
    loaded = checkpoint.model
    assert type(loaded) is type(model)
    assert not any(module.training for module in loaded.modules())
    assert torch.equal(run(loaded), run(model))
    for head in loaded.tied_weights:
        assert loaded.get_parameter(head) is loaded.wte.weight  # still one tensor
    assert checkpoint.tokenizer.to_str() == char_tokenizer.to_str()
    assert checkpoint.tokenizer.encode("a cat") == char_tokenizer.encode("a cat")


def test_folder_without_tokenizer_loads_with_none(tmp_path, tiny_gpt):
    save_checkpoint(tiny_gpt, tmp_path)
    assert load_checkpoint(tmp_path).tokenizer is None
    assert not (tmp_path / "README.md").exists()


def test_tied_weights_are_stored_once(tmp_path, tiny_gpt):
    model = tiny_gpt
    assert "lm_head.weight" not in saveable_state_dict(model)
    save_checkpoint(model, tmp_path)
    stored = load_file(str(tmp_path / "model.safetensors"))
    assert "lm_head.weight" not in stored
    assert set(stored) == set(model.state_dict()) - {"lm_head.weight"}
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["format"] == "tinyformers" and config["version"] == 1
    assert config["model"] == model.config.to_dict()


def test_half_precision_weights_load_as_float32(tmp_path, tiny_gpt):
    model = tiny_gpt
    save_checkpoint(model, tmp_path)
    tensors = load_file(str(tmp_path / "model.safetensors"))
    save_file({k: v.half() for k, v in tensors.items()}, str(tmp_path / "model.safetensors"))
    loaded = load_checkpoint(tmp_path).model
    assert loaded.wte.weight.dtype == torch.float32
    torch.testing.assert_close(loaded.wte.weight, model.wte.weight.half().float())


# ---------------------------------------------------------------------------------------------
# Broken folders
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path, tiny_gpt):
    """A valid GPT checkpoint folder (n_embd 32, block_size 16) to break."""
    assert (tiny_gpt.config.n_embd, tiny_gpt.config.block_size) == (32, 16)
    save_checkpoint(tiny_gpt, tmp_path)
    return tmp_path


def edit_tensors(folder, change):
    path = str(folder / "model.safetensors")
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, path)


def edit_config(folder, change):
    path = folder / "config.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_wrong_shape_names_the_tensor(folder):
    edit_tensors(folder, lambda t: t.update({"wpe.weight": torch.zeros(8, 32)}))
    message = r"tensor 'wpe.weight' .* has shape \(8, 32\) but the config needs \(16, 32\)"
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(folder)


def test_missing_tensor_is_named(folder):
    edit_tensors(folder, lambda t: t.pop("h.1.mlp.c_fc.bias"))
    with pytest.raises(CheckpointError, match="missing tensor 'h.1.mlp.c_fc.bias'$"):
        load_checkpoint(folder)


def test_several_missing_tensors_are_counted(folder):
    edit_tensors(folder, lambda t: [t.pop(k) for k in ("ln_f.bias", "ln_f.weight", "wpe.weight")])
    with pytest.raises(CheckpointError, match=r"missing tensor 'ln_f.bias' \(and 2 more\)"):
        load_checkpoint(folder)


def test_unexpected_tensor_is_named(folder):
    edit_tensors(folder, lambda t: t.update({"h.7.attn.q_proj.weight": torch.zeros(2, 2)}))
    with pytest.raises(CheckpointError, match="unexpected tensor 'h.7.attn.q_proj.weight'"):
        load_checkpoint(folder)


def test_integer_tensor_is_refused(folder):
    integers = torch.zeros(32, dtype=torch.int64)
    edit_tensors(folder, lambda t: t.update({"ln_f.bias": integers}))
    with pytest.raises(CheckpointError, match="'ln_f.bias' .* dtype int64, expected floats"):
        load_checkpoint(folder)


def test_missing_config(folder):
    (folder / "config.json").unlink()
    with pytest.raises(CheckpointError, match="has no config.json; is it a Tinyformers model"):
        load_checkpoint(folder)


@pytest.mark.parametrize("content", [b'{"format": "tinyformers", ', b"\xff\xfe{}", b""])
def test_corrupt_config_json(folder, content):
    (folder / "config.json").write_bytes(content)
    with pytest.raises(CheckpointError, match="config.json is not valid JSON"):
        load_checkpoint(folder)


def test_config_of_another_format(folder):
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    with pytest.raises(CheckpointError, match='is not a Tinyformers config \\(no "format"'):
        load_checkpoint(folder)


def test_config_that_is_not_an_object(folder):
    (folder / "config.json").write_text("[1, 2, 3]")
    with pytest.raises(CheckpointError, match="is not a Tinyformers config"):
        load_checkpoint(folder)


def test_model_config_that_is_not_an_object(folder):
    edit_config(folder, lambda data: data.update(model=5))
    with pytest.raises(CheckpointError, match="invalid model config"):
        load_checkpoint(folder)


def test_config_of_another_version(folder):
    edit_config(folder, lambda data: data.update(version=2))
    with pytest.raises(CheckpointError, match="has format version 2; expected 1"):
        load_checkpoint(folder)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(n_head=3), "invalid model config: n_embd \\(32\\) must be divisible"),
        (lambda m: m.update(family="rnn"), "invalid model config: unknown model family 'rnn'"),
        (lambda m: m.update(wings=2), "invalid model config: .*does not know: wings"),
        (lambda m: m.update(vocab_size="40"), "invalid model config: vocab_size must be a whole"),
    ],
)
def test_invalid_model_config(folder, change, message):
    edit_config(folder, lambda data: change(data["model"]))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(folder)


def test_missing_weights(folder):
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="has no model.safetensors"):
        load_checkpoint(folder)


def test_pytorch_bin_alone_is_refused(folder):
    weights = load_file(str(folder / "model.safetensors"))
    torch.save(weights, folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"no model.safetensors \(only safetensors"):
        load_checkpoint(folder)


@pytest.mark.parametrize("garbage", [b"", b"not a safetensors file at all", b"\xff" * 64])
def test_garbage_weights_file(folder, garbage):
    (folder / "model.safetensors").write_bytes(garbage)
    with pytest.raises(CheckpointError, match="model.safetensors is not a safetensors file"):
        load_checkpoint(folder)


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no model folder at"):
        load_checkpoint(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="no model folder at"):
        load_checkpoint(tmp_path / "file")


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


def test_corrupt_tokenizer_gives_checkpoint_error(folder):
    (folder / "tokenizer.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="tokenizer.json"):
        load_checkpoint(folder)


# ---------------------------------------------------------------------------------------------
# Saves are all or nothing
# ---------------------------------------------------------------------------------------------

SAVE_FOREVER = """
import sys, torch
from tinyformers.hub.checkpoint import save_checkpoint
from tinyformers.model.build import build_model
from tinyformers.model.config import GPTConfig
torch.manual_seed(0)
model = build_model(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=64))
print("ready", flush=True)
step = 0
while True:
    step += 1
    save_checkpoint(model, sys.argv[1], metadata={"step": step})
"""


def test_a_killed_save_leaves_a_folder_that_loads(tmp_path) -> None:
    import random
    import signal
    import subprocess
    import sys
    import time

    from tinyformers.hub.checkpoint import recover_folder

    out = tmp_path / "model"
    rng = random.Random(0)
    steps = []
    for _ in range(8):
        process = subprocess.Popen(
            [sys.executable, "-c", SAVE_FOREVER, str(out)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.3))  # a random point in some save, not a wait for a state
        process.send_signal(signal.SIGKILL)
        process.wait()
        recover_folder(out)
        if not out.exists():  # killed before its first save finished
            continue
        checkpoint = load_checkpoint(out)
        steps.append(checkpoint.metadata["step"])
        assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], "a stray file is left"
    assert steps, "no save ever finished"


def test_a_failed_save_keeps_the_old_folder(tmp_path, tiny_gpt) -> None:
    out = save_checkpoint(tiny_gpt, tmp_path / "model", metadata={"n": 1})

    class Broken:
        def save(self, path):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tiny_gpt, out, Broken(), metadata={"n": 2})
    assert load_checkpoint(out).metadata == {"n": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_the_next_save_removes_what_a_killed_save_left(tmp_path, tiny_gpt) -> None:
    out = save_checkpoint(tiny_gpt, tmp_path / "model", metadata={"n": 1})
    (tmp_path / ".model.new-killed").mkdir()
    (tmp_path / ".model.new-killed" / "config.json").write_text("{}")
    old = tmp_path / ".model.old-killed"
    out.rename(old)  # killed between its two renames: only the old folder is left
    save_checkpoint(tiny_gpt, out, metadata={"n": 2})
    assert load_checkpoint(out).metadata == {"n": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
