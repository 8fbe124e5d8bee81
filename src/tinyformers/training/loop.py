"""One training loop for every model, page and command.

A *task* knows how to cut batches from its data (``CausalLMTask`` for GPT, ``MaskedLMTask`` for
BERT, ``Seq2SeqTask`` for the encoder-decoder); ``train`` runs AdamW with warm-up and cosine decay
on any of them, reports progress to a callback, stops on NaN or an exploding loss, and can be
resumed from the ``TrainState`` it returns.

Validation loss is always measured on the whole validation split. A run aiming at a target loss
may also *check* often and cheaply on a fixed, evenly spread part of the split, and measures the
whole split as soon as that estimate says the target is near.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.profiler import record_function

from tinyformers.text.inputs import SPECIAL_IDS
from tinyformers.text.masking import IGNORE_INDEX, MaskingRates, mask_tokens


@dataclass(frozen=True)
class TrainSettings:
    max_steps: int = 1000
    batch_size: int = 32
    learning_rate: float = 1e-3
    min_lr_ratio: float = 0.1  # cosine decay ends at learning_rate * min_lr_ratio
    warmup_steps: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    eval_interval: int = 100  # steps between validation passes (0: only at the end)
    max_seconds: float | None = None  # wall-clock budget
    explode_factor: float = 4.0  # stop if the loss exceeds this multiple of the first loss
    # With a target loss: steps between cheap estimates on a fixed part of the validation split
    # (0: none), how many validation tokens an estimate reads, and how far above the target an
    # estimate triggers a whole-split evaluation before the first one has calibrated it.
    check_interval: int = 0
    check_tokens: int = 8192
    check_margin: float = 0.05
    # AdamW's fused kernel: one pass over every parameter, about four times faster on the CPU
    # than the per-tensor loop; the same update with a different rounding order. The shipped
    # models pin ``False``: they were trained that way, and a rebuild reproduces them exactly.
    fused_optimizer: bool = True

    def __post_init__(self) -> None:
        checks = [
            ("steps", self.max_steps, 1, 1_000_000),
            ("batch size", self.batch_size, 1, 4096),
            ("warm-up steps", self.warmup_steps, 0, 1_000_000),
            ("evaluation interval", self.eval_interval, 0, 1_000_000),
            ("check interval", self.check_interval, 0, 1_000_000),
            ("check tokens", self.check_tokens, 1, 100_000_000),
        ]
        for name, value, low, high in checks:
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(
                    f"{name} must be a whole number from {low} to {high}, got {value!r}"
                )
        if not isinstance(self.learning_rate, (int, float)) or not 0 < self.learning_rate <= 10:
            raise ValueError(f"learning rate must be in (0, 10], got {self.learning_rate!r}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ValueError(f"time budget must be positive, got {self.max_seconds!r}")

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine decay to ``learning_rate * min_lr_ratio``."""
        if step < self.warmup_steps:
            return self.learning_rate * (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.max_steps - self.warmup_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return self.learning_rate * (self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine)


# ---------------------------------------------------------------------------------------------
# Tasks: batches for each kind of model
# ---------------------------------------------------------------------------------------------


def split_ids(ids: Tensor, fraction: float = 0.9) -> tuple[Tensor, Tensor]:
    """First ``fraction`` for training, the rest for validation (never shuffled)."""
    cut = int(len(ids) * fraction)
    return ids[:cut], ids[cut:]


class CausalLMTask:
    """Next-token prediction on one long stream of token ids (GPT)."""

    def __init__(self, ids: Tensor, block_size: int, val_fraction: float = 0.1):
        self.train_ids, self.val_ids = split_ids(ids, 1 - val_fraction)
        if len(self.train_ids) <= block_size or len(self.val_ids) < 2:
            raise ValueError(
                f"the text is too short to train on: {len(ids)} tokens, but a context of "
                f"{block_size} needs at least {int((block_size + 2) / (1 - val_fraction)) + 1}"
            )
        self.block_size = block_size

    def batch(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        starts = torch.randint(
            len(self.train_ids) - self.block_size, (batch_size,), generator=generator
        )
        offsets = torch.arange(self.block_size)
        x = self.train_ids[starts[:, None] + offsets]  # (B, T)
        y = self.train_ids[starts[:, None] + offsets + 1]  # (B, T) the next token at each position
        return {"idx": x, "targets": y}

    def validation_batches(
        self, batch_size: int, limit: int | None = None
    ) -> Iterator[dict[str, Tensor]]:
        """The whole validation split, cut into consecutive windows (or ``limit`` of those
        windows, evenly spread over the split)."""
        n = (len(self.val_ids) - 1) // self.block_size * self.block_size
        if n == 0:
            x, y = self.val_ids[:-1][None], self.val_ids[1:][None]
            yield {"idx": x, "targets": y}
            return
        x = self.val_ids[:n].view(-1, self.block_size)  # (N, T)
        y = self.val_ids[1 : n + 1].view(-1, self.block_size)  # (N, T)
        x, y = spread(x, limit), spread(y, limit)
        for i in range(0, len(x), batch_size):
            yield {"idx": x[i : i + batch_size], "targets": y[i : i + batch_size]}


def spread(items, limit: int | None):
    """``limit`` items evenly spread from first to last (all of them without a limit)."""
    if limit is None or limit >= len(items):
        return items
    if limit <= 1:
        return items[:1]
    step = (len(items) - 1) / (limit - 1)
    picked = [round(i * step) for i in range(limit)]
    if isinstance(items, Tensor):
        return items[torch.tensor(picked)]
    return [items[i] for i in picked]


def pad_batch(sequences: list[list[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """(B, T_max) ids padded with ``pad_id`` and the (B, T_max) 0/1 attention mask."""
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


class MaskedLMTask:
    """Masked-token prediction on separate sequences (BERT). Masks are drawn anew for every
    training batch (dynamic masking) and once, with a fixed seed, for validation."""

    def __init__(
        self,
        sequences: list[list[int]],
        tokenizer,
        rates: MaskingRates | None = None,
        val_fraction: float = 0.1,
    ):
        cut = int(len(sequences) * (1 - val_fraction))
        self.train_seqs, self.val_seqs = sequences[:cut], sequences[cut:]
        if not self.train_seqs or not self.val_seqs:
            raise ValueError(f"need more sequences to train on, got {len(sequences)}")
        self.pad_id, self.mask_id = tokenizer.pad_id, tokenizer.mask_id
        self.vocab_size = tokenizer.vocab_size
        self.special_ids = SPECIAL_IDS
        self.rates = rates or MaskingRates()

    def make(self, seqs: list[list[int]], generator: torch.Generator) -> dict[str, Tensor]:
        ids, attention_mask = pad_batch(seqs, self.pad_id)
        masked = mask_tokens(
            ids, self.mask_id, self.vocab_size, self.special_ids, self.rates, generator
        )
        return {"idx": masked.input_ids, "attention_mask": attention_mask, "labels": masked.labels}

    def batch(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        rows = torch.randint(len(self.train_seqs), (batch_size,), generator=generator).tolist()
        return self.make([self.train_seqs[r] for r in rows], generator)

    def validation_batches(
        self, batch_size: int, limit: int | None = None
    ) -> Iterator[dict[str, Tensor]]:
        generator = torch.Generator().manual_seed(1234)
        seqs = spread(self.val_seqs, limit)
        for i in range(0, len(seqs), batch_size):
            yield self.make(seqs[i : i + batch_size], generator)


class Seq2SeqTask:
    """Source → target pairs (encoder-decoder). Targets are wrapped as [BOS] … [EOS]."""

    def __init__(
        self,
        pairs: list[tuple[list[int], list[int]]],
        bos_id: int,
        eos_id: int,
        pad_id: int,
        val_fraction: float = 0.1,
    ):
        cut = int(len(pairs) * (1 - val_fraction))
        self.train_pairs, self.val_pairs = pairs[:cut], pairs[cut:]
        if not self.train_pairs or not self.val_pairs:
            raise ValueError(f"need more examples to train on, got {len(pairs)}")
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id

    def make(self, pairs: list[tuple[list[int], list[int]]]) -> dict[str, Tensor]:
        src, src_mask = pad_batch([s for s, _ in pairs], self.pad_id)
        tgt_in, _ = pad_batch([[self.bos_id, *t] for _, t in pairs], self.pad_id)
        tgt_out, out_mask = pad_batch([[*t, self.eos_id] for _, t in pairs], self.pad_id)
        targets = tgt_out.masked_fill(out_mask == 0, IGNORE_INDEX)
        return {"src": src, "tgt": tgt_in, "src_attention_mask": src_mask, "targets": targets}

    def batch(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        rows = torch.randint(len(self.train_pairs), (batch_size,), generator=generator).tolist()
        return self.make([self.train_pairs[r] for r in rows])

    def validation_batches(
        self, batch_size: int, limit: int | None = None
    ) -> Iterator[dict[str, Tensor]]:
        pairs = spread(self.val_pairs, limit)
        for i in range(0, len(pairs), batch_size):
            yield self.make(pairs[i : i + batch_size])


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


@dataclass
class Progress:
    step: int
    train_loss: float
    val_loss: float | None  # on the whole validation split
    learning_rate: float
    tokens_per_s: float
    elapsed_s: float
    val_estimate: float | None = None  # a check on part of the validation split


@dataclass
class TrainState:
    """Everything needed to continue a run exactly where it stopped."""

    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    step: int = 0
    elapsed_s: float = 0.0
    tokens_seen: int = 0
    first_loss: float | None = None
    history: list[Progress] = field(default_factory=list)
    stop_reason: str | None = None  # why the last call returned
    check_offset: float | None = None  # whole-split loss minus the check's, when last both ran


def make_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (not on biases, LayerNorm gains or 1-D tensors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": settings.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    kernel = {"fused": True} if settings.fused_optimizer else {"foreach": True}
    return torch.optim.AdamW(groups, lr=settings.learning_rate, betas=(0.9, 0.99), **kernel)


def new_state(model: nn.Module, settings: TrainSettings) -> TrainState:
    return TrainState(make_optimizer(model, settings), torch.Generator().manual_seed(settings.seed))


@torch.inference_mode()
def evaluate(model: nn.Module, task, batch_size: int = 256, limit: int | None = None) -> float:
    """Mean loss over the *whole* validation split, weighted by the tokens that carry loss
    (with ``limit``: over that many windows or sequences, evenly spread over the split)."""
    was_training = model.training
    if was_training:  # a model already in eval mode (perhaps shared) is left untouched
        model.eval()
    batches = (
        task.validation_batches(batch_size)
        if limit is None
        else (task.validation_batches(batch_size, limit))
    )
    total, count = 0.0, 0
    for batch in batches:
        targets = batch.get("targets", batch.get("labels"))
        n = int((targets != IGNORE_INDEX).sum())
        if n:
            total += model(**batch).loss.item() * n
            count += n
    if was_training:
        model.train()
    return total / max(count, 1)


def estimate(model: nn.Module, task, tokens: int) -> float:
    """Validation loss on about ``tokens`` tokens of the split: a cheap, fixed check."""
    length = getattr(task, "block_size", 64)
    return evaluate(model, task, limit=max(1, tokens // length))


def batch_tokens(batch: dict[str, Tensor]) -> int:
    first = next(iter(batch.values()))
    return first.numel()


def train(
    model: nn.Module,
    task,
    settings: TrainSettings,
    state: TrainState | None = None,
    callback: Callable[[Progress], bool | None] | None = None,
    log_interval: int = 10,
    stop_at: int | None = None,
    target: float | None = None,
) -> TrainState:
    """Train until ``settings.max_steps`` (counting steps of earlier calls), the time budget,
    a callback returning False, or a diverging loss. Returns the state to resume from.

    ``stop_at`` pauses at that step without changing the learning-rate schedule, so training
    in several calls gives the same model as training in one.

    With a ``target`` loss and ``settings.check_interval``, every that many steps the loss is
    estimated on part of the validation split; when the estimate (corrected by the difference
    the last whole-split evaluation showed) comes within reach of the target, the whole split
    is evaluated at once, and the callback sees that ``val_loss``."""
    state = state or new_state(model, settings)
    state.stop_reason = None
    model.train()
    start = time.perf_counter() - state.elapsed_s
    window_start, window_tokens = time.perf_counter(), 0
    end = settings.max_steps if stop_at is None else min(stop_at, settings.max_steps)
    checking = target is not None and settings.check_interval > 0
    while state.step < end:
        lr = settings.lr_at(state.step)
        for group in state.optimizer.param_groups:
            group["lr"] = lr
        with record_function("train/batch"):
            batch = task.batch(settings.batch_size, state.generator)
        with record_function("train/forward"):
            loss = model(**batch).loss
        if not torch.isfinite(loss):
            state.stop_reason = (
                f"the loss became {loss.item()} at step {state.step}: training diverged. "
                f"A learning rate of {settings.learning_rate:g} is probably too high."
            )
            break
        loss_value = loss.item()
        state.first_loss = state.first_loss or loss_value
        if (
            loss_value > settings.explode_factor * state.first_loss
            and state.step > settings.warmup_steps
        ):
            state.stop_reason = (
                f"the loss exploded to {loss_value:.2f} at step {state.step} (it started at "
                f"{state.first_loss:.2f}). Try a lower learning rate than {settings.learning_rate:g}."
            )
            break
        with record_function("train/backward"):
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        with record_function("train/optimizer"):
            if settings.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip, foreach=True)
            state.optimizer.step()
        state.step += 1
        tokens = batch_tokens(batch)
        state.tokens_seen += tokens
        window_tokens += tokens
        state.elapsed_s = time.perf_counter() - start

        last = state.step == end
        out_of_time = settings.max_seconds is not None and state.elapsed_s >= settings.max_seconds
        evaluate_now = (
            last
            or out_of_time
            or (settings.eval_interval and state.step % settings.eval_interval == 0)
        )
        check_now = checking and state.step % settings.check_interval == 0
        if evaluate_now or check_now or state.step % log_interval == 0:
            now = time.perf_counter()
            val_estimate = val_loss = None
            with record_function("train/evaluate"):
                if check_now:
                    val_estimate = estimate(model, task, settings.check_tokens)
                    offset = state.check_offset
                    near = target + (settings.check_margin if offset is None else 0.0)
                    evaluate_now = evaluate_now or val_estimate + (offset or 0.0) <= near
                if evaluate_now:
                    val_loss = evaluate(model, task)
                    if val_estimate is not None:
                        state.check_offset = val_loss - val_estimate
            state.elapsed_s = time.perf_counter() - start
            progress = Progress(
                step=state.step,
                train_loss=loss_value,
                val_loss=val_loss,
                learning_rate=lr,
                tokens_per_s=window_tokens / max(now - window_start, 1e-9),
                elapsed_s=state.elapsed_s,
                val_estimate=val_estimate,
            )
            state.history.append(progress)
            stop = callback is not None and callback(progress) is False
            # The next window starts after the callback, so the time it spends (samples,
            # snapshots, sending the update) counts towards no window's tokens per second.
            window_start, window_tokens = time.perf_counter(), 0
            if stop:
                state.stop_reason = "stopped"
                break
        if out_of_time:
            state.stop_reason = f"reached the time budget of {settings.max_seconds:g} s"
            break
    model.eval()
    return state
