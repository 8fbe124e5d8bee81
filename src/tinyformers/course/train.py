"""What a training page computes from a run while it learns: how each attention head's habits
change over time, and how long the run has left.

A *snapshot* is the attention of the run's fixed probe sentence at one step, in the format used
everywhere (per layer a ``(1, n_head, T, T)`` tensor, queries down, keys across). From every
snapshot three numbers per head are taken, each averaged over the query rows 1 … T−1 (row 0
is left out: in a causal model the first token can only look at itself):

previous  the weight on the token just before the query, pᵢ,ᵢ₋₁. A head that copies the
          previous token's information along (a "previous-token head") scores near 1.
first     the weight on the first token, pᵢ,₀. Heads with nothing useful to do often park
          their attention there.
self      the weight a token gives to its own position, pᵢ,ᵢ.

``uniform_scores`` gives the same numbers for attention spread evenly, the untrained
starting point a score has to rise above to mean anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from tinyformers.training.loop import Progress

SCORES = ("previous", "first", "self")
"""The names of the per-head scores, in the order pages offer them."""

SNAPSHOTS_PER_RUN = 15  # evaluations (and so attention snapshots) a run aims for
MIN_SNAPSHOT_INTERVAL = 10  # never evaluate more often than this many steps
RATE_WINDOW = 5  # logged steps the time-left estimate looks back over


# ---------------------------------------------------------------------------------------------
# Per-head scores of one snapshot
# ---------------------------------------------------------------------------------------------


def _check_snapshot(attentions: Sequence[Tensor]) -> tuple[int, int]:
    """The (n_head, T) of a snapshot, after checking every layer has the same square shape."""
    if not attentions:
        raise ValueError("a snapshot needs the attention of at least one layer")
    shape = tuple(attentions[0].shape)
    for layer, weights in enumerate(attentions):
        if weights.dim() != 4 or weights.shape[0] != 1 or weights.shape[-1] != weights.shape[-2]:
            raise ValueError(
                f"layer {layer}: expected attention of shape (1, heads, T, T), "
                f"got {tuple(weights.shape)}"
            )
        if tuple(weights.shape) != shape:
            raise ValueError(
                f"layer {layer} has shape {tuple(weights.shape)}, layer 0 has {shape}; "
                "every layer of a snapshot must have the same shape"
            )
    if shape[-1] < 2:
        raise ValueError("the scores need a probe of at least two tokens")
    return shape[1], shape[-1]


def head_scores(attentions: Sequence[Tensor]) -> dict[str, Tensor]:
    """Each score of ``SCORES`` for every head of one snapshot, as an (n_layer, n_head) tensor."""
    _n_head, t = _check_snapshot(attentions)
    weights = torch.cat([a.float() for a in attentions])  # (n_layer, n_head, T, T)
    rows = torch.arange(1, t)
    return {
        "previous": weights[:, :, rows, rows - 1].mean(-1),
        "first": weights[:, :, rows, 0].mean(-1),
        "self": weights[:, :, rows, rows].mean(-1),
    }


def uniform_scores(n_tokens: int, causal: bool) -> dict[str, float]:
    """The scores of attention spread evenly over every visible key: over keys 0 … i for a
    causal model, over all ``n_tokens`` keys otherwise. All three scores are equal then."""
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 2:
        raise ValueError(f"the probe needs at least two tokens, got {n_tokens!r}")
    if causal:
        value = sum(1 / (i + 1) for i in range(1, n_tokens)) / (n_tokens - 1)
    else:
        value = 1 / n_tokens
    return dict.fromkeys(SCORES, value)


# ---------------------------------------------------------------------------------------------
# Scores over time
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeline:
    """The scores of every head at every snapshot.

    ``scores[name][s, layer, head]`` is score ``name`` of that head at snapshot ``s``, taken
    at training step ``steps[s]``.
    """

    steps: tuple[int, ...]
    scores: dict[str, Tensor]  # name -> (n_snapshots, n_layer, n_head)

    @property
    def n_layer(self) -> int:
        return self.scores[SCORES[0]].shape[1]

    @property
    def n_head(self) -> int:
        return self.scores[SCORES[0]].shape[2]

    def strongest_head(self, score: str) -> tuple[int, int, float]:
        """(layer, head, value) of the head with the highest ``score`` at the last snapshot."""
        _check_score(score)
        last = self.scores[score][-1]  # (n_layer, n_head)
        best = int(last.argmax())
        layer, head = divmod(best, self.n_head)
        return layer, head, float(last[layer, head])


def _check_score(score: str) -> None:
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}; got {score!r}")


def attention_timeline(snapshots: Sequence[tuple[int, Sequence[Tensor]]]) -> Timeline:
    """The ``Timeline`` of ``(step, attentions)`` snapshots, given in training order."""
    if not snapshots:
        raise ValueError("the timeline needs at least one snapshot")
    steps = [step for step, _ in snapshots]
    if any(later < earlier for earlier, later in zip(steps, steps[1:], strict=False)):
        raise ValueError(f"snapshots must be in training order, got steps {steps}")
    per_snapshot = [head_scores(attentions) for _, attentions in snapshots]
    shapes = {tuple(s["previous"].shape) for s in per_snapshot}
    if len(shapes) > 1:
        raise ValueError(f"every snapshot must come from the same model; got shapes {shapes}")
    scores = {name: torch.stack([s[name] for s in per_snapshot]) for name in SCORES}
    return Timeline(tuple(steps), scores)


def snapshot_at(steps: Sequence[int], step: int) -> int:
    """Index of the latest snapshot taken at or before ``step`` (the first one if none was)."""
    if not steps:
        raise ValueError("there are no snapshots yet")
    earlier = [i for i, s in enumerate(steps) if s <= step]
    return earlier[-1] if earlier else 0


def snapshot_interval(total_steps: int) -> int:
    """Steps between evaluations so a run takes about ``SNAPSHOTS_PER_RUN`` snapshots, but
    never fewer than ``MIN_SNAPSHOT_INTERVAL`` steps apart (each one costs an evaluation)."""
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(
            f"the number of steps must be a positive whole number, got {total_steps!r}"
        )
    return max(MIN_SNAPSHOT_INTERVAL, math.ceil(total_steps / SNAPSHOTS_PER_RUN))


# ---------------------------------------------------------------------------------------------
# Time left
# ---------------------------------------------------------------------------------------------


def steps_per_second(history: Sequence[Progress], window: int = RATE_WINDOW) -> float | None:
    """Recent speed: steps per second of training time over the last ``window`` logged steps
    (from the start of the run when only one step has been logged). None before any step."""
    if not history or history[-1].elapsed_s <= 0:
        return None
    last = history[-1]
    if len(history) < 2:
        return last.step / last.elapsed_s
    first = history[-min(window, len(history) - 1) - 1]
    seconds = last.elapsed_s - first.elapsed_s
    if seconds <= 0:
        return last.step / last.elapsed_s
    return (last.step - first.step) / seconds


def time_left(
    history: Sequence[Progress], total_steps: int, budget_left_s: float | None = None
) -> float | None:
    """Seconds until ``total_steps`` at the recent speed, or until the time budget runs out
    if that comes first. None while the speed is still unknown."""
    if history and history[-1].step >= total_steps:
        return 0.0
    rate = steps_per_second(history)
    if rate is None or rate <= 0:
        return budget_left_s
    estimate = (total_steps - history[-1].step) / rate
    if budget_left_s is not None:
        estimate = min(estimate, max(budget_left_s, 0.0))
    return estimate


def format_duration(seconds: float | None) -> str:
    """Short enough for a metric: "4m 05s", "42s", or "–" when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = max(0, round(seconds))
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m {rest:02d}s" if minutes else f"{rest}s"
