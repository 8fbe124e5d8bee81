"""A training run described the way a student (or the command line) describes it.

``RunSpec`` says what to train: GPT or BERT, which tokenizer, which size, which settings.
``Run`` turns a spec and a text into a tokenizer, a model and a task, trains it (resumably,
stoppably), and keeps what a page shows while it learns: the loss history, a sample or a
fill-in-the-blank at every evaluation, and an *attention timeline* — the attention of a fixed
probe sentence, snapshotted at every evaluation, so heads can be watched as they form.
"""

from __future__ import annotations

import io
import re
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor

from tinyformers.hub.checkpoint import save_checkpoint
from tinyformers.hub.registry import LoadedModel
from tinyformers.model.build import build_model, count_parameters
from tinyformers.model.config import PRESETS, preset
from tinyformers.model.sampling import SamplingSettings, generate
from tinyformers.text.inputs import SPECIAL_IDS, bert_wrap
from tinyformers.text.tokenizers import Tokenizer, train_tokenizer
from tinyformers.training.loop import (
    CausalLMTask,
    MaskedLMTask,
    Progress,
    TrainSettings,
    TrainState,
    train,
)

FAMILIES = ("gpt", "bert")
TOKENIZERS = ("char", "bpe", "wordpiece")
# The default for character-level text: the `char` preset trained this way reaches a validation
# loss of 1.89 on Shakespeare fast (see bench/train_speed.py and the README).
CHAR_SETTINGS = TrainSettings(
    max_steps=1200,
    batch_size=16,
    learning_rate=5e-3,
    warmup_steps=50,
    eval_interval=500,
    check_interval=50,
    check_tokens=8192,
    check_margin=0.05,
)
PROBE_TOKENS = 24  # length of the probe sentence whose attention is snapshotted
SAMPLE_TOKENS = 120


@dataclass(frozen=True)
class RunSpec:
    family: str = "gpt"
    tokenizer: str = "char"
    vocab_size: int | None = None  # ignored for "char"
    preset: str = "char"
    n_layer: int | None = None  # None: the preset's value
    n_head: int | None = None
    n_embd: int | None = None
    block_size: int | None = None
    settings: TrainSettings = field(default_factory=TrainSettings)
    target_val_loss: float | None = None  # stop once the validation loss reaches this

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}; got {self.family!r}")
        if self.tokenizer not in TOKENIZERS:
            raise ValueError(
                f"tokenizer must be one of {', '.join(TOKENIZERS)}; got {self.tokenizer!r}"
            )
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.target_val_loss is not None and not self.target_val_loss > 0:
            raise ValueError(f"target loss must be positive, got {self.target_val_loss!r}")

    def config(self, vocab_size: int):
        overrides = {
            name: getattr(self, name)
            for name in ("n_layer", "n_head", "n_embd", "block_size")
            if getattr(self, name) is not None
        }
        return preset(self.preset, self.family, vocab_size=vocab_size, **overrides)


@dataclass(frozen=True)
class TrainUpdate:
    """What one logged step tells a page: the progress, plus at evaluations a sample (GPT) or
    fill-in-the-blank line (BERT) and the probe's attention."""

    progress: Progress
    sample: str | None = None
    attentions: list[Tensor] | None = None  # per layer (1, n_head, T, T), the probe's


def split_sentences(text: str) -> list[str]:
    """Lines and sentences (ending in . ! or ?) of a text, stripped, empty ones dropped."""
    pieces = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [p.strip() for p in pieces if p.strip()]


def bert_sequences(tokenizer: Tokenizer, text: str, block_size: int) -> list[list[int]]:
    """``[CLS] sentence [SEP]`` for every sentence, cut to ``block_size`` tokens."""
    body = block_size - 2
    sequences = []
    for sentence in split_sentences(text):
        ids = tokenizer.encode(sentence)[:body]
        if ids:
            sequences.append(bert_wrap(tokenizer, ids))
    return sequences


class Run:
    """One student's model in training. Not thread-safe: one worker trains it at a time, and
    pages read ``model`` only when no training job is running."""

    def __init__(self, spec: RunSpec, text: str):
        began = time.perf_counter()
        self.spec = spec
        self.tokenizer = train_tokenizer(spec.tokenizer, text, spec.vocab_size)
        self.config = spec.config(self.tokenizer.vocab_size)
        torch.manual_seed(spec.settings.seed)
        self.model = build_model(self.config)
        self.initial_weights = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.task = self._make_task(text)
        self.probe_ids = self._make_probe()
        self.state: TrainState | None = None
        self.updates: list[TrainUpdate] = []
        self.time_to_target_s: float | None = None
        # Tokenizer, ids, model and batching: counted in the time to a target loss.
        self.setup_s = time.perf_counter() - began

    # -- set-up -------------------------------------------------------------------------------

    def _make_task(self, text: str):
        if self.spec.family == "gpt":
            ids = torch.tensor(self.tokenizer.encode(text), dtype=torch.long)
            return CausalLMTask(ids, self.config.block_size)
        sequences = bert_sequences(self.tokenizer, text, self.config.block_size)
        return MaskedLMTask(sequences, self.tokenizer)

    def _make_probe(self) -> list[int]:
        """The first tokens of the validation split: text the model is not trained on."""
        length = min(PROBE_TOKENS, self.config.block_size)
        if self.spec.family == "gpt":
            return self.task.val_ids[:length].tolist()
        return self.task.val_seqs[0][:length]

    @property
    def n_parameters(self) -> int:
        return count_parameters(self.model)

    @property
    def step(self) -> int:
        return self.state.step if self.state is not None else 0

    @property
    def probe_tokens(self) -> list[str]:
        return self.tokenizer.display_tokens(self.probe_ids)

    # -- training -------------------------------------------------------------------------------

    def train(
        self,
        report: Callable[[TrainUpdate], bool] | None = None,
        max_steps: int | None = None,
        max_seconds: float | None = None,
        log_interval: int = 10,
        snapshots: bool = True,
    ) -> TrainState:
        """Train (or go on training) until the spec's step count (or a pause at ``max_steps``),
        the time budget, the target loss, or ``report`` returning False. With ``snapshots``
        every evaluation also takes a sample and the probe's attention (what a page shows).

        The time to the target counts the set-up (tokenizer, ids, model) and every step and
        evaluation up to the end of the whole-split evaluation that first reaches it."""
        settings = self.spec.settings
        if max_seconds is not None:
            settings = replace(settings, max_seconds=max_seconds)
        started = time.perf_counter()
        already = self.state.elapsed_s if self.state is not None else 0.0
        reached = False

        def callback(progress: Progress) -> bool:
            nonlocal reached
            update = TrainUpdate(progress)
            if progress.val_loss is not None:
                if snapshots:
                    update = TrainUpdate(progress, self.sample(), self.probe_attention())
                target = self.spec.target_val_loss
                if target is not None and progress.val_loss <= target and not reached:
                    reached = True
                    if self.time_to_target_s is None:
                        self.time_to_target_s = (
                            self.setup_s + already + time.perf_counter() - started
                        )
            self.updates.append(update)
            keep_going = report is None or report(update) is not False
            return keep_going and not reached

        self.state = train(
            self.model,
            self.task,
            settings,
            self.state,
            callback,
            log_interval,
            stop_at=max_steps,
            target=self.spec.target_val_loss,
        )
        if reached:
            self.state.stop_reason = (
                f"reached the target validation loss of {self.spec.target_val_loss:g}"
            )
        return self.state

    def restart(self) -> None:
        """Back to the very same initial weights and data order, history cleared."""
        self.model.load_state_dict(self.initial_weights)
        self.state = None
        self.updates = []
        self.time_to_target_s = None

    # -- what pages show -------------------------------------------------------------------------

    @torch.no_grad()
    def probe_attention(self) -> list[Tensor]:
        out = self.model(torch.tensor([self.probe_ids]), output_attentions=True)
        return [a.detach().clone() for a in out.attentions]

    @torch.no_grad()
    def sample(self, seed: int = 0) -> str:
        if self.spec.family == "gpt":
            prompt = self.probe_ids[:4]
            ids = generate(self.model, prompt, SAMPLE_TOKENS, SamplingSettings(0.8), seed=seed)
            return self.tokenizer.decode(ids)
        return self.fill_in_the_blanks()

    @torch.no_grad()
    def fill_in_the_blanks(self, every: int = 4) -> str:
        """The probe with every ``every``-th ordinary token masked, blanks filled by the model."""
        ids = list(self.probe_ids)
        positions = [i for i, t in enumerate(ids) if t not in SPECIAL_IDS][::every]
        for i in positions:
            ids[i] = self.tokenizer.mask_id
        logits = self.model(torch.tensor([ids])).logits[0]  # (T, vocab)
        for i in positions:
            ids[i] = int(logits[i].argmax())
        tokens = self.tokenizer.display_tokens(ids)
        return " ".join(f"[{t}]" if i in positions else t for i, t in enumerate(tokens))

    def summary(self) -> dict:
        history = self.state.history if self.state is not None else []
        val = [p.val_loss for p in history if p.val_loss is not None]
        elapsed = self.state.elapsed_s if self.state is not None else 0.0
        tokens = self.state.tokens_seen if self.state is not None else 0
        return {
            "steps": self.step,
            "parameters": self.n_parameters,
            "final_train_loss": history[-1].train_loss if history else None,
            "final_val_loss": val[-1] if val else None,
            "time_to_target_s": self.time_to_target_s,
            "setup_s": self.setup_s,
            "tokens_per_s": tokens / elapsed if elapsed else None,
            "elapsed_s": elapsed,
            "stop_reason": self.state.stop_reason if self.state is not None else None,
        }

    def as_loaded_model(self, name: str) -> LoadedModel:
        """The trained model as the model pickers list it (its own copy, in eval mode)."""
        model = build_model(self.config)
        model.load_state_dict(self.model.state_dict())
        model.eval()
        metadata = {"spec": repr(self.spec), **self.summary()}
        return LoadedModel(name, self.config.family, model, self.tokenizer, "trained", metadata)

    def to_zip(self, folder_name: str = "tinyformers-model") -> bytes:
        """The model as a zipped model folder (config.json, model.safetensors, tokenizer.json)
        that ``load_checkpoint`` reads and ``tinyformers export-hf`` turns into a
        ``transformers`` folder."""
        buffer = io.BytesIO()
        with tempfile.TemporaryDirectory() as tmp:
            out = save_checkpoint(
                self.model, Path(tmp) / folder_name, self.tokenizer, metadata=self.summary()
            )
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(out.iterdir()):
                    archive.write(path, f"{folder_name}/{path.name}")
        return buffer.getvalue()
