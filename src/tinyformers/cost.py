"""What self-attention costs as the sequence grows, measured on this machine.

One attention layer scores every query against every key: for n tokens of width C that is an
n × n matrix per head, about 2 · n² · C multiply-adds for the scores and the weighted sum, on top
of the 4 · n · C² of the four projections. The MLP handles each token on its own: 2 · n · C · F
multiply-adds for a hidden width F, linear in n. So attention's share grows with n.

``measure_cost`` times, for growing n, the forward pass (and optionally forward + backward) of

- our ``MultiHeadAttention`` with ``need_weights=True``, which materialises the n × n weights;
- the same layer through PyTorch's fused kernel (``need_weights=False``), which does not;
- the model's ``MLP``;

and measures the peak memory PyTorch allocates during each forward pass with its profiler.
``score_matrix_bytes`` gives the size of one (batch, heads, n, n) float32 matrix, exactly.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from tinyformers.attention import MultiHeadAttention
from tinyformers.blocks import MLP
from tinyformers.config import GPTConfig
from tinyformers.scaling import PowerLawFit, fit_power_law

Report = Callable[[object], bool]

MIN_LENGTH, MAX_LENGTH = 8, 2048
MIN_WIDTH, MAX_WIDTH = 16, 512
MAX_HEADS = 16
MAX_REPEATS = 25
FLOAT32_BYTES = 4
KINDS = ("attention", "fused", "mlp")  # what is timed at every length


# ---------------------------------------------------------------------------------------------
# Settings and what can be computed without measuring
# ---------------------------------------------------------------------------------------------


def _check_whole(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")


def sequence_lengths(min_length: int, max_length: int) -> list[int]:
    """Powers of two and 1.5 × powers of two from ``min_length`` to ``max_length``, both ends
    included: even steps on a log axis."""
    _check_whole("the shortest sequence length", min_length, MIN_LENGTH, MAX_LENGTH)
    _check_whole("the longest sequence length", max_length, MIN_LENGTH, MAX_LENGTH)
    if max_length < min_length:
        raise ValueError(
            f"the longest sequence length ({max_length}) is shorter than the shortest "
            f"({min_length})"
        )
    candidates = {min_length, max_length}
    power = 1
    while power <= max_length:
        candidates.update({power, power * 3 // 2})
        power *= 2
    return sorted(n for n in candidates if min_length <= n <= max_length)


@dataclass(frozen=True)
class CostSettings:
    max_length: int = 1024
    n_embd: int = 128
    n_head: int = 4
    min_length: int = 32
    repeats: int = 5  # timed runs per measurement; the median is reported
    backward: bool = False  # also time forward + backward
    memory: bool = True  # also measure peak memory with the profiler

    def __post_init__(self) -> None:
        _check_whole("the width", self.n_embd, MIN_WIDTH, MAX_WIDTH)
        _check_whole("the number of heads", self.n_head, 1, MAX_HEADS)
        if self.n_embd % self.n_head:
            raise ValueError(
                f"the width ({self.n_embd}) must be divisible by the number of heads "
                f"({self.n_head})"
            )
        _check_whole("the number of repeats", self.repeats, 1, MAX_REPEATS)
        sequence_lengths(self.min_length, self.max_length)  # validates both lengths
        if len(self.lengths) < 3:
            raise ValueError(
                f"measure at least 3 lengths to fit a slope; {self.min_length} to "
                f"{self.max_length} gives {len(self.lengths)}"
            )

    @property
    def lengths(self) -> list[int]:
        return sequence_lengths(self.min_length, self.max_length)

    @property
    def mlp_width(self) -> int:
        return 4 * self.n_embd


def score_matrix_bytes(
    n: int, n_head: int, batch: int = 1, element_size: int = FLOAT32_BYTES
) -> int:
    """Bytes of one (batch, heads, n, n) matrix: the scores, or the weights, of one layer."""
    return batch * n_head * n * n * element_size


def mlp_hidden_bytes(
    n: int, mlp_width: int, batch: int = 1, element_size: int = FLOAT32_BYTES
) -> int:
    """Bytes of the MLP's widened (batch, n, hidden) activation: linear in n."""
    return batch * n * mlp_width * element_size


def multiply_adds(n: int, n_embd: int, mlp_width: int) -> dict[str, int]:
    """Multiply-adds of one forward pass over n tokens (weights only; softmax, biases and the
    GELU are left out, they are small)."""
    return {
        "attention projections": 4 * n * n_embd * n_embd,  # W_Q, W_K, W_V, W_O
        "attention scores and weighted sum": 2 * n * n * n_embd,  # Q·Kᵀ, then weights·V
        "MLP": 2 * n * n_embd * mlp_width,  # widen, then project back
    }


def crossover_length(n_embd: int, mlp_width: int) -> float:
    """The n at which attention's multiply-adds equal the MLP's:
    4nC² + 2n²C = 2nCF  ⇔  n = F − 2C (for F = 4C: n = 2C)."""
    return float(mlp_width - 2 * n_embd)


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def median_seconds(
    fn: Callable[[], object], repeats: int, min_total_s: float = 0.05, max_runs: int = 200
) -> float:
    """Median wall time of ``fn()`` after one untimed warm-up run: over ``repeats`` runs, or
    more for quick calls (until ``min_total_s`` seconds or ``max_runs`` runs), because a busy
    machine makes single short timings jumpy."""
    fn()
    times: list[float] = []
    while len(times) < repeats or (sum(times) < min_total_s and len(times) < max_runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _allocation_events(prof) -> list:
    """The allocator's events (size > 0: allocated, < 0: freed) recorded by the profiler for
    the profiled thread, in time order."""
    found, todo = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while todo:
        event = todo.pop()
        todo.extend(event.children)
        if hasattr(event.extra_fields, "alloc_size"):
            found.append(event)
    return sorted(found, key=lambda e: e.start_time_ns)


def peak_allocated_bytes(fn: Callable[[], object]) -> int:
    """Measured: the most memory PyTorch's CPU allocator held at once during ``fn()``, above what
    was held before it started. Read from the profiler's allocation events."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    held = peak = 0
    for event in _allocation_events(prof):
        held += event.extra_fields.alloc_size
        peak = max(peak, held)
    return peak


def _forward_and_backward(module: nn.Module, call: Callable[[torch.Tensor], torch.Tensor], x):
    def run() -> None:
        module.zero_grad(set_to_none=True)
        inputs = x.detach().requires_grad_(True)
        call(inputs).sum().backward()

    return run


@dataclass(frozen=True)
class CostPoint:
    """One sequence length. Times in seconds and peaks in bytes are *measured*; ``score_bytes``
    and ``mlp_bytes`` are *computed* from the shapes."""

    n: int
    seconds: dict[str, float]  # forward, per kind in KINDS
    backward_seconds: dict[str, float] | None  # forward + backward, per kind
    peak_bytes: dict[str, int] | None  # per kind
    score_bytes: int
    mlp_bytes: int

    def attention_share(self, kind: str = "attention") -> float:
        """The attention layer's part of attention + MLP forward time."""
        return self.seconds[kind] / (self.seconds[kind] + self.seconds["mlp"])


@dataclass(frozen=True)
class CostUpdate:
    """Reported after each length is measured."""

    point: CostPoint
    done: int
    total: int


@dataclass(frozen=True)
class CostResult:
    settings: CostSettings
    points: tuple[CostPoint, ...]
    stopped: bool
    threads: int = 1  # torch's intra-op threads during the measurement

    @property
    def lengths(self) -> list[int]:
        return [p.n for p in self.points]

    def fitted_lengths(self) -> list[int]:
        """The longer half of the lengths (at least 3): at short lengths fixed per-call costs,
        not the arithmetic, dominate the time."""
        lengths = self.lengths
        keep = max(3, (len(lengths) + 1) // 2)
        return lengths[-keep:]

    def slope(self, kind: str = "attention", backward: bool = False) -> PowerLawFit:
        """time ≈ a · n^slope fitted over ``fitted_lengths``; the slope is ``.exponent``."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        wanted = set(self.fitted_lengths())
        points = [p for p in self.points if p.n in wanted]
        if len(points) < 3:
            raise ValueError(f"a slope needs 3 measured lengths, got {len(points)}")
        if backward:
            if any(p.backward_seconds is None for p in points):
                raise ValueError("forward + backward was not measured")
            times = [p.backward_seconds[kind] for p in points]
        else:
            times = [p.seconds[kind] for p in points]
        return fit_power_law([p.n for p in points], times)


def build_layers(settings: CostSettings) -> tuple[MultiHeadAttention, MLP]:
    """A freshly initialised attention layer and MLP of the chosen width (seeded)."""
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=1,
        block_size=settings.max_length,
        n_layer=1,
        n_head=settings.n_head,
        n_embd=settings.n_embd,
    )
    attention = MultiHeadAttention(config.n_embd, config.n_head).eval()
    return attention, MLP(config).eval()


def measure_length(
    attention: MultiHeadAttention, mlp: MLP, n: int, settings: CostSettings
) -> CostPoint:
    """Time (and measure the memory of) one attention layer and one MLP on n tokens."""
    x = torch.randn(1, n, settings.n_embd)
    calls = {  # no mask, as in an encoder: every query sees all n keys
        "attention": (attention, lambda h: attention(h, need_weights=True)[0]),
        "fused": (attention, lambda h: attention(h, need_weights=False)[0]),
        "mlp": (mlp, mlp),
    }
    with torch.no_grad():
        seconds = {
            kind: median_seconds(lambda call=call: call(x), settings.repeats)
            for kind, (_, call) in calls.items()
        }
        peaks = None
        if settings.memory:
            peaks = {
                kind: peak_allocated_bytes(lambda call=call: call(x))
                for kind, (_, call) in calls.items()
            }
    backward = None
    if settings.backward:
        backward = {
            kind: median_seconds(_forward_and_backward(module, call, x), settings.repeats)
            for kind, (module, call) in calls.items()
        }
    return CostPoint(
        n=n,
        seconds=seconds,
        backward_seconds=backward,
        peak_bytes=peaks,
        score_bytes=score_matrix_bytes(n, settings.n_head),
        mlp_bytes=mlp_hidden_bytes(n, settings.mlp_width),
    )


def measure_cost(settings: CostSettings, report: Report | None = None) -> CostResult:
    """Measure every length of ``settings.lengths``, shortest first. ``report`` receives a
    ``CostUpdate`` after each length and may return False to stop."""
    attention, mlp = build_layers(settings)
    threads = torch.get_num_threads()
    points: list[CostPoint] = []
    lengths = settings.lengths
    for n in lengths:
        points.append(measure_length(attention, mlp, n, settings))
        update = CostUpdate(points[-1], len(points), len(lengths))
        if report is not None and report(update) is False:
            return CostResult(settings, tuple(points), stopped=True, threads=threads)
    return CostResult(settings, tuple(points), stopped=False, threads=threads)
