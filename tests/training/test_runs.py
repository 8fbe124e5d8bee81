"""Training runs: they learn, resume exactly, stop on divergence, and export a usable folder."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import replace

import pytest
import torch

from tinyformers.cli import main
from tinyformers.hub.checkpoint import load_checkpoint
from tinyformers.text.corpora import lesson_corpus
from tinyformers.text.tokenizers import train_char
from tinyformers.training.loop import TrainSettings
from tinyformers.training.runs import Run, RunSpec, bert_sequences, split_sentences

TEXT = lesson_corpus()[:8_000]


def tiny_spec(**settings) -> RunSpec:
    base = dict(max_steps=30, batch_size=8, learning_rate=3e-3, warmup_steps=5, eval_interval=10)
    return RunSpec(
        family="gpt",
        tokenizer="char",
        preset="nano",
        block_size=16,
        settings=TrainSettings(**{**base, **settings}),
    )


def test_loss_decreases_when_overfitting_one_batch() -> None:
    run = Run(tiny_spec(), TEXT)
    generator = torch.Generator().manual_seed(0)
    batch = run.task.batch(8, generator)
    optimizer = torch.optim.AdamW(run.model.parameters(), lr=3e-3)
    run.model.train()
    losses = []
    for _ in range(60):
        loss = run.model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_resume_continues_from_the_same_step_and_optimizer_state() -> None:
    straight = Run(tiny_spec(eval_interval=0), TEXT)
    straight.train()
    halves = Run(tiny_spec(eval_interval=0), TEXT)
    halves.train(max_steps=15)
    assert halves.step == 15
    exp_avg = [s["exp_avg"].clone() for s in halves.state.optimizer.state.values()]
    assert exp_avg and all(t.abs().sum() > 0 for t in exp_avg)
    halves.train()
    assert halves.step == 30
    for a, b in zip(straight.model.parameters(), halves.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_huge_learning_rate_stops_with_an_explanation() -> None:
    run = Run(tiny_spec(learning_rate=10.0, warmup_steps=0, max_steps=200), TEXT)
    state = run.train()
    assert state.step < 200
    assert "learning rate" in state.stop_reason


def test_restart_returns_to_the_same_initialization() -> None:
    run = Run(tiny_spec(eval_interval=0), TEXT)
    run.train()
    first = [p.train_loss for p in run.state.history]
    run.restart()
    assert run.step == 0 and run.updates == []
    run.train()
    assert [p.train_loss for p in run.state.history] == first


def test_updates_carry_samples_and_the_probe_attention_at_evaluations() -> None:
    run = Run(tiny_spec(), TEXT)
    seen = []
    run.train(lambda u: seen.append(u) or True)
    evals = [u for u in seen if u.progress.val_loss is not None]
    assert [u.progress.step for u in evals] == [10, 20, 30]
    for update in evals:
        assert isinstance(update.sample, str) and update.sample
        assert len(update.attentions) == run.config.n_layer
        t = len(run.probe_ids)
        assert update.attentions[0].shape == (1, run.config.n_head, t, t)
        torch.testing.assert_close(
            update.attentions[0].sum(-1), torch.ones(1, run.config.n_head, t)
        )
    # The timeline changes as the model learns.
    assert not torch.equal(evals[0].attentions[0], evals[-1].attentions[0])


def test_a_report_returning_false_stops_and_keeps_what_was_learned() -> None:
    run = Run(tiny_spec(), TEXT)
    state = run.train(lambda u: u.progress.step < 20)
    assert state.step == 20 and state.stop_reason == "stopped"
    before = [p.clone() for p in run.model.parameters()]
    loaded = run.as_loaded_model("mine")
    assert loaded.source == "trained" and loaded.family == "gpt"
    for a, b in zip(before, loaded.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert loaded.model is not run.model


def test_target_loss_stops_and_records_the_time() -> None:
    spec = replace(tiny_spec(max_steps=200), target_val_loss=100.0)
    run = Run(spec, TEXT)
    state = run.train()
    assert state.step == 10 and run.time_to_target_s is not None
    assert "target" in state.stop_reason
    never = Run(replace(tiny_spec(), target_val_loss=1e-6), TEXT)
    never.train()
    assert never.summary()["time_to_target_s"] is None


def test_cheap_checks_call_a_whole_split_evaluation_when_the_target_is_near() -> None:
    spec = replace(
        tiny_spec(max_steps=60, eval_interval=0, check_interval=5), target_val_loss=100.0
    )
    run = Run(spec, TEXT)
    state = run.train(snapshots=False)
    assert state.step == 5 and "target" in state.stop_reason
    last = state.history[-1]
    assert last.val_estimate is not None and last.val_loss is not None
    assert run.time_to_target_s >= run.setup_s > 0
    assert run.updates[-1].sample is None  # no samples were asked for

    never = Run(replace(spec, target_val_loss=1e-6), TEXT)
    never.train(snapshots=False)
    checks = [p for p in never.state.history if p.val_estimate is not None]
    whole = [p.step for p in never.state.history if p.val_loss is not None]
    assert len(checks) == 12 and whole == [60]  # far from the target: only the final one


def test_validation_checks_read_an_even_spread_of_the_split() -> None:
    run = Run(tiny_spec(), TEXT)
    windows = list(run.task.validation_batches(1000))[0]["idx"]
    picked = list(run.task.validation_batches(1000, limit=3))[0]["idx"]
    assert torch.equal(picked, windows[[0, round((len(windows) - 1) / 2), len(windows) - 1]])


def test_bert_runs_fill_in_blanks() -> None:
    spec = replace(tiny_spec(), family="bert", tokenizer="wordpiece", vocab_size=300)
    run = Run(spec, TEXT)
    run.train()
    assert run.step == 30
    assert "[" in run.updates[-1].sample
    assert run.probe_ids[0] == run.tokenizer.cls_id


def test_sentences_and_bert_sequences() -> None:
    assert split_sentences("One. Two!\nThree?  Four") == ["One.", "Two!", "Three?", "Four"]
    tokenizer = train_char("abc. ab.")
    seqs = bert_sequences(tokenizer, "abcabcabc. ab.", block_size=5)
    assert seqs[0] == [tokenizer.cls_id, *tokenizer.encode("abc")[:3], tokenizer.sep_id]
    assert all(len(s) <= 5 for s in seqs)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(family="t5"), "family must be one of"),
        (dict(tokenizer="words"), "tokenizer must be one of"),
        (dict(preset="huge"), "unknown preset"),
        (dict(target_val_loss=-1.0), "target loss must be positive"),
    ],
)
def test_specs_are_validated(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        RunSpec(**kwargs)


def test_too_short_text_is_reported() -> None:
    with pytest.raises(ValueError, match="too short"):
        Run(tiny_spec(), "abc abc abc")


def test_zip_holds_a_folder_that_loads_and_exports(tmp_path) -> None:
    run = Run(tiny_spec(eval_interval=0, max_steps=5), TEXT)
    run.train()
    with zipfile.ZipFile(io.BytesIO(run.to_zip("mine"))) as archive:
        archive.extractall(tmp_path)
    checkpoint = load_checkpoint(tmp_path / "mine")
    ids = torch.tensor([run.probe_ids])
    torch.testing.assert_close(checkpoint.model(ids).logits, run.model(ids).logits)
    assert checkpoint.tokenizer.encode("the") == run.tokenizer.encode("the")


def test_cli_prints_json_lines_and_a_summary(tmp_path, capsys) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    code = main(
        [
            "train", "--corpus", str(corpus), "--preset", "nano", "--max-steps", "20",
            "--batch-size", "8", "--eval-interval", "10", "--log-interval", "5",
            "--target-val-loss", "0.01", "--out", str(tmp_path / "out"),
        ]
    )  # fmt: skip
    assert code == 0
    assert torch.get_num_threads() == 1  # the command's own thread count ends with it
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    steps, summary = lines[:-1], lines[-1]
    assert [s["step"] for s in steps] == [5, 10, 15, 20]
    assert steps[1]["val_loss"] is not None and steps[0]["val_loss"] is None
    assert summary["summary"] and summary["steps"] == 20
    assert summary["time_to_target_s"] is None
    assert summary["final_val_loss"] == pytest.approx(steps[-1]["val_loss"], abs=1e-4)
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_cli_rejects_a_binary_corpus(tmp_path, capsys) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"\x00\x01\x02")
    assert main(["train", "--corpus", str(corpus)]) == 2
    assert "error:" in capsys.readouterr().err


def test_the_downloaded_folder_loads_in_transformers_after_export(tmp_path) -> None:
    from transformers import GPT2LMHeadModel

    from tinyformers.hub.interop import export_hf

    run = Run(tiny_spec(eval_interval=0, max_steps=5), TEXT)
    run.train()
    with zipfile.ZipFile(io.BytesIO(run.to_zip("mine"))) as archive:
        archive.extractall(tmp_path)
    export_hf(tmp_path / "mine", tmp_path / "hf")
    hf = GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    ids = torch.tensor([run.probe_ids])
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, run.model(ids).logits, atol=1e-5, rtol=1e-5)


def test_the_fused_optimizer_takes_the_same_steps_as_the_per_tensor_one() -> None:
    """Same seed, same batches: the fused AdamW kernel and the per-tensor loop end a run with
    the same weights up to rounding."""
    runs = [Run(tiny_spec(max_steps=20, fused_optimizer=fused), TEXT) for fused in (True, False)]
    for run in runs:
        run.train()
    assert runs[0].state.optimizer.defaults["fused"]
    assert (
        runs[1].state.optimizer.defaults["foreach"]
        and not runs[1].state.optimizer.defaults["fused"]
    )
    fused, looped = (dict(run.model.named_parameters()) for run in runs)
    assert fused.keys() == looped.keys()
    for name in fused:
        # softmax ignores a key bias (it adds the same q·b to every score of a query), so its
        # gradient is rounding noise, which each kernel rounds its own way: it barely moves
        atol = 1e-4 if name.endswith("k_proj.bias") else 1e-5
        torch.testing.assert_close(fused[name], looped[name], rtol=1e-4, atol=atol, msg=name)
