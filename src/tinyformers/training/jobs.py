"""Training in the background: a job per run, a fair queue of slots per process, server limits.

A page starts a ``Job`` whose worker thread runs a function ``work(report)``. The worker calls
``report(update)`` whenever it has something to show (a ``train.Progress``, a sample, a
snapshot); ``report`` returns False once a stop was asked for, which ``train.train`` takes as its
cue to stop. The page only ever reads ``job.snapshot()``, so a run never holds up a rerun.

``Slots`` caps how many jobs train at once in one process. Jobs wait in arrival order and can
say how many runs are ahead of them. ``Limits`` holds the caps a host sets in the environment.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

QUEUED, RUNNING, FINISHED, STOPPED, FAILED = "queued", "running", "finished", "stopped", "failed"
ACTIVE = (QUEUED, RUNNING)


# ---------------------------------------------------------------------------------------------
# Limits a host sets for a shared server
# ---------------------------------------------------------------------------------------------


def _env_number(name: str, default: float, kind: type = int) -> Any:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return kind(default)
    try:
        value = kind(raw)
    except ValueError as err:
        raise ValueError(f"{name} must be a number, got {raw!r}") from err
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class Limits:
    """Caps on what one training run may use. Read from the environment with ``from_env``."""

    max_steps: int = 20_000
    max_seconds: float = 300.0
    max_parameters: int = 5_000_000
    max_concurrent: int = 2
    threads_per_run: int = max(1, (os.cpu_count() or 1) // 2)  # torch threads of one run

    def __post_init__(self) -> None:
        for name in (
            "max_steps",
            "max_seconds",
            "max_parameters",
            "max_concurrent",
            "threads_per_run",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")

    @classmethod
    def from_env(cls) -> Limits:
        """``TINYFORMERS_MAX_STEPS``, ``_MAX_SECONDS``, ``_MAX_PARAMETERS``, ``_MAX_TRAININGS``
        and ``_TRAIN_THREADS``."""
        defaults = cls()
        return cls(
            max_steps=_env_number("TINYFORMERS_MAX_STEPS", defaults.max_steps),
            max_seconds=_env_number("TINYFORMERS_MAX_SECONDS", defaults.max_seconds, float),
            max_parameters=_env_number("TINYFORMERS_MAX_PARAMETERS", defaults.max_parameters),
            max_concurrent=_env_number("TINYFORMERS_MAX_TRAININGS", defaults.max_concurrent),
            threads_per_run=_env_number("TINYFORMERS_TRAIN_THREADS", defaults.threads_per_run),
        )

    def check_parameters(self, n_parameters: int) -> None:
        if n_parameters > self.max_parameters:
            raise ValueError(
                f"this model has {n_parameters:,} parameters; this server allows at most "
                f"{self.max_parameters:,} per run. Choose fewer layers or a smaller width."
            )


# ---------------------------------------------------------------------------------------------
# A fair queue of training slots
# ---------------------------------------------------------------------------------------------


class Slots:
    """At most ``capacity`` holders at once; waiters are served first come, first served."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._cond = threading.Condition()
        self._holders: set[int] = set()
        self._waiting: list[int] = []
        self._tickets = itertools.count()

    def ticket(self) -> int:
        """Join the queue; returns the ticket to pass to ``acquire`` (or ``leave``)."""
        with self._cond:
            number = next(self._tickets)
            self._waiting.append(number)
            return number

    def ahead_of(self, number: int) -> int:
        """How many runs must start before this ticket can (0 once it holds a slot)."""
        with self._cond:
            if number not in self._waiting:
                return 0
            all_busy = len(self._holders) >= self.capacity
            return self._waiting.index(number) + int(all_busy)

    def acquire(self, number: int, cancelled: threading.Event) -> bool:
        """Wait until this ticket is first in line and a slot is free. Returns False (and
        leaves the queue) if ``cancelled`` is set while waiting."""
        with self._cond:
            while not (self._waiting[0] == number and len(self._holders) < self.capacity):
                if cancelled.is_set():
                    self._waiting.remove(number)
                    self._cond.notify_all()
                    return False
                self._cond.wait(timeout=0.2)
            self._waiting.pop(0)
            self._holders.add(number)
            self._cond.notify_all()
            return True

    def release(self, number: int) -> None:
        with self._cond:
            self._holders.discard(number)
            self._cond.notify_all()

    @property
    def busy(self) -> int:
        with self._cond:
            return len(self._holders)


# ---------------------------------------------------------------------------------------------
# A job: one background run
# ---------------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """What a page may read about a job at one moment (a copy: safe to keep)."""

    status: str
    updates: list[Any]
    ahead: int
    elapsed_s: float
    result: Any = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


@dataclass
class Job:
    """A background run of ``work(report)``, waiting for a slot first if ``slots`` is given."""

    work: Callable[[Callable[[Any], bool]], Any]
    slots: Slots | None = None
    name: str = "training"
    threads: int | None = None  # torch threads for the worker (a per-thread setting)
    max_seconds: float | None = None  # after this much running time, reports ask it to stop
    status: str = QUEUED
    result: Any = None
    error: str | None = None
    error_details: str | None = None  # the traceback, for logs and tests
    timed_out: bool = False  # stopped because it reached ``max_seconds``
    _updates: list[Any] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _ticket: int | None = None
    _started_at: float | None = None
    _ended_at: float | None = None

    def start(self) -> Job:
        if self._thread is not None:
            raise RuntimeError("a job can be started only once")
        if self.slots is not None:
            self._ticket = self.slots.ticket()
        self._thread = threading.Thread(target=self._run, name=f"job-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the run to stop at its next report (or leave the queue if still waiting)."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def report(self, update: Any) -> bool:
        """Called by the worker: record an update; False means "please stop now"."""
        with self._lock:
            self._updates.append(update)
        running_for = time.perf_counter() - (self._started_at or time.perf_counter())
        if self.max_seconds is not None and running_for > self.max_seconds:
            self.timed_out = True
            self._stop.set()
        return not self._stop.is_set()

    def snapshot(self) -> Snapshot:
        with self._lock:
            updates = list(self._updates)
        ahead = 0
        if self.status == QUEUED and self.slots is not None and self._ticket is not None:
            ahead = self.slots.ahead_of(self._ticket)
        end = self._ended_at or time.perf_counter()
        elapsed = end - self._started_at if self._started_at is not None else 0.0
        return Snapshot(self.status, updates, ahead, elapsed, self.result, self.error)

    def _run(self) -> None:
        if self.slots is not None and not self.slots.acquire(self._ticket, self._stop):
            self.status = STOPPED
            return
        self.status = RUNNING
        self._started_at = time.perf_counter()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            self.result = self.work(self.report)
            self.status = STOPPED if self._stop.is_set() else FINISHED
        except Exception as err:  # the page shows the message; the thread must not die silently
            self.error = f"{type(err).__name__}: {err}"
            self.error_details = traceback.format_exc()
            self.status = FAILED
        finally:
            self._ended_at = time.perf_counter()
            if self.slots is not None:
                self.slots.release(self._ticket)
