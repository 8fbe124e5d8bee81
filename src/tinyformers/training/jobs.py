"""Training in the background: a job per run, a fair queue of slots, server limits.

A page starts a ``Job`` for a function ``work(report)``. The work runs in a worker process
(``workers.LocalProcesses``, the default) or on a Ray cluster (``ray_backend.RayBackend``), never
in the web process, so ``work`` must be a top-level function (or a ``functools.partial`` of
one) with picklable arguments. It calls ``report(update)`` whenever it has something to show (a
``train.Progress``, a sample, a snapshot; anything picklable); ``report`` returns False once a
stop was asked for or the time limit has passed, which ``train.train`` takes as its cue to stop.
Its return value (trained weights, a result) comes back as the job's ``result``. The page only
ever reads ``job.snapshot()``, so a run never holds up a rerun.

``Slots`` caps how many jobs train at once. Jobs wait in arrival order and can say how many runs
are ahead of them. ``Limits`` holds the caps a host sets in the environment.

A job may be given ``owner``, a function saying whether whoever started it is still there (the
app passes "is this browser session still connected?"); once the owner has been gone for
``owner_grace_s`` seconds, the job stops (or leaves the queue) with the reason "session closed".
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tinyformers.hosting import Hosting, read_number
from tinyformers.i18n import N_, _
from tinyformers.training.workers import local_processes

QUEUED, RUNNING, FINISHED, STOPPED, FAILED = "queued", "running", "finished", "stopped", "failed"
ACTIVE = (QUEUED, RUNNING)
# Why a job stopped (``Job.stop_reason``)
ASKED, TIME_LIMIT, SESSION_CLOSED = "asked to stop", "time limit", "session closed"

POLL_S = 0.2  # how often a job's monitor looks at its worker, its owner and its stop flag
# A worker that has not ended this long after a stop is ended, losing what it learned: soon for
# a closed session or a run past its time limit, later for a student's own Stop (whose run may
# still be preparing, and whose partial model the student wants back).
KILL_AFTER_S = 10.0
KILL_AFTER_ASKED_S = 120.0

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Limits a host sets for a shared server
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Caps on what one training run may use. Read from the environment with ``from_env``."""

    max_steps: int = 20_000
    max_seconds: float = 300.0
    max_parameters: int = 5_000_000
    max_concurrent: int = 2
    threads_per_run: int = max(1, (os.cpu_count() or 1) // 2)  # torch threads of one run
    session_grace_s: float = 10.0  # a run outlives its closed browser tab this long

    def __post_init__(self) -> None:
        for name in (
            "max_steps",
            "max_seconds",
            "max_parameters",
            "max_concurrent",
            "threads_per_run",
            "session_grace_s",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")

    @classmethod
    def from_env(cls) -> Limits:
        """The caps of ``Hosting.from_env()`` (``TINYFORMERS_HOSTED`` and ``_MAX_STEPS``,
        ``_MAX_SECONDS``, ``_MAX_PARAMETERS``, ``_MAX_TRAININGS``), with ``_TRAIN_THREADS``
        and ``_SESSION_GRACE``."""
        environ, defaults, hosting = os.environ, cls(), Hosting.from_env()
        return cls(
            max_steps=hosting.max_steps,
            max_seconds=hosting.max_seconds,
            max_parameters=hosting.max_parameters,
            max_concurrent=hosting.max_trainings,
            threads_per_run=read_number(environ, "TINYFORMERS_TRAIN_THREADS", int)
            or defaults.threads_per_run,
            session_grace_s=read_number(environ, "TINYFORMERS_SESSION_GRACE")
            or defaults.session_grace_s,
        )

    def check_parameters(self, n_parameters: int) -> None:
        if n_parameters > self.max_parameters:
            raise ValueError(
                _(
                    "this model has {count} parameters; this server allows at most {limit} "
                    "per run. Choose fewer layers or a smaller width."
                ).format(count=f"{n_parameters:,}", limit=f"{self.max_parameters:,}")
            )


# ---------------------------------------------------------------------------------------------
# A fair queue of training slots
# ---------------------------------------------------------------------------------------------


class FairQueue:
    """The bookkeeping of a queue of tickets for ``capacity`` slots, first come, first served
    (not thread-safe: ``Slots`` and the Ray queue actor guard it)."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.holders: set[int] = set()
        self.waiting: list[int] = []
        self._tickets = itertools.count()

    def ticket(self) -> int:
        number = next(self._tickets)
        self.waiting.append(number)
        return number

    def ahead_of(self, number: int) -> int:
        if number not in self.waiting:
            return 0
        all_busy = len(self.holders) >= self.capacity
        return self.waiting.index(number) + int(all_busy)

    def try_acquire(self, number: int) -> bool:
        if number in self.holders:
            return True
        if self.waiting and self.waiting[0] == number and len(self.holders) < self.capacity:
            self.waiting.pop(0)
            self.holders.add(number)
            return True
        return False

    def leave(self, number: int) -> None:
        if number in self.waiting:
            self.waiting.remove(number)

    def release(self, number: int) -> None:
        self.holders.discard(number)


class Slots:
    """At most ``capacity`` holders at once in this process; waiters are served first come,
    first served."""

    def __init__(self, capacity: int):
        self._queue = FairQueue(capacity)
        self.capacity = capacity
        self._cond = threading.Condition()

    def ticket(self) -> int:
        """Join the queue; returns the ticket to pass to ``acquire``."""
        with self._cond:
            return self._queue.ticket()

    def ahead_of(self, number: int) -> int:
        """How many runs must start before this ticket can (0 once it holds a slot)."""
        with self._cond:
            return self._queue.ahead_of(number)

    def acquire(self, number: int, cancelled) -> bool:
        """Wait until this ticket is first in line and a slot is free. Returns False (and
        leaves the queue) if ``cancelled.is_set()`` becomes true while waiting."""
        with self._cond:
            while not self._queue.try_acquire(number):
                if cancelled.is_set():
                    self._queue.leave(number)
                    self._cond.notify_all()
                    return False
                self._cond.wait(timeout=POLL_S)
            self._cond.notify_all()
            return True

    def release(self, number: int) -> None:
        with self._cond:
            self._queue.release(number)
            self._cond.notify_all()

    @property
    def busy(self) -> int:
        with self._cond:
            return len(self._queue.holders)


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
    stop_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


class Handle(Protocol):
    """A run on a backend, seen from the web process (see ``workers.py``)."""

    ended: bool

    def receive(self, timeout: float) -> list[tuple]: ...
    def stop(self) -> None: ...
    def kill(self) -> None: ...
    def close(self) -> None: ...
    @property
    def exit_note(self) -> str: ...


class Backend(Protocol):
    name: str

    def launch(
        self, work: Callable, threads: int | None, max_seconds: float | None, name: str
    ) -> Handle: ...


class _Cancelled:
    """What ``Slots.acquire`` polls while a job waits: its stop flag, after a look at its owner."""

    def __init__(self, job: Job):
        self._job = job

    def is_set(self) -> bool:
        self._job._check_owner()
        return self._job.stop_requested


@dataclass(eq=False)
class Job:
    """A background run of ``work(report)`` on ``backend`` (local worker processes unless
    given), waiting for a slot first if ``slots`` is given."""

    work: Callable[[Callable[[Any], bool]], Any]
    slots: Any = None  # a ``Slots`` (or the Ray backend's cluster-wide queue)
    name: str = "training"
    threads: int | None = None  # torch threads of the worker
    max_seconds: float | None = None  # after this much running time, reports ask it to stop
    backend: Backend | None = None
    owner: Callable[[], bool] | None = None  # is whoever started the job still there?
    owner_grace_s: float = 10.0
    status: str = QUEUED
    result: Any = None
    error: str | None = None
    error_details: str | None = None  # the traceback, for logs and tests
    timed_out: bool = False  # stopped because it reached ``max_seconds``
    stop_reason: str | None = None  # ASKED, TIME_LIMIT or SESSION_CLOSED once it stopped
    _updates: list[Any] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None
    _ticket: int | None = None
    _started_at: float | None = None
    _ended_at: float | None = None
    _owner_gone_since: float | None = None
    _handle: Handle | None = None

    def start(self) -> Job:
        if self._thread is not None:
            raise RuntimeError("a job can be started only once")
        if self.backend is None:
            self.backend = local_processes()
        if self.slots is not None:
            self._ticket = self.slots.ticket()
        self._thread = threading.Thread(target=self._run, name=f"job-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, reason: str = ASKED) -> None:
        """Ask the run to stop at its next report (or leave the queue if still waiting)."""
        if not self._stop.is_set():
            self.stop_reason = reason
        self._stop.set()
        handle = self._handle
        if handle is not None:
            # tell the worker now, not at the monitor's next look (if it has ended meanwhile,
            # the monitor sees to the rest)
            with contextlib.suppress(Exception):
                handle.stop()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the job has ended and everything it sent has arrived."""
        if self._thread is not None:
            self._thread.join(timeout)

    def snapshot(self) -> Snapshot:
        with self._lock:
            updates = list(self._updates)
            status, result, error = self.status, self.result, self.error
        ahead = 0
        if status == QUEUED and self.slots is not None and self._ticket is not None:
            ahead = self.slots.ahead_of(self._ticket)
        end = self._ended_at or time.perf_counter()
        elapsed = end - self._started_at if self._started_at is not None else 0.0
        return Snapshot(status, updates, ahead, elapsed, result, error, self.stop_reason)

    # -- the monitor thread (in the web process; the work runs elsewhere) --------------------

    def _check_owner(self) -> None:
        """Stop the job once its owner has been gone for ``owner_grace_s`` seconds."""
        if self.owner is None or self._stop.is_set():
            return
        try:
            present = bool(self.owner())
        except Exception:  # a failing check must not end a student's run
            present = True
        now = time.monotonic()
        if present:
            self._owner_gone_since = None
        elif self._owner_gone_since is None:
            self._owner_gone_since = now
        elif now - self._owner_gone_since >= self.owner_grace_s:
            log.warning(
                "stopping a %s run: its session closed %.0f s ago (%s)",
                self.name,
                now - self._owner_gone_since,
                SESSION_CLOSED,
            )
            self.stop(SESSION_CLOSED)

    def _kill_after(self) -> float:
        return KILL_AFTER_ASKED_S if self.stop_reason == ASKED else KILL_AFTER_S

    def _end(self, status: str, result: Any = None, error: str | None = None) -> None:
        if status == FAILED:  # the page may show students only that it failed: details go here
            log.error("a %s run failed: %s\n%s", self.name, error, self.error_details or "")
        with self._lock:
            self._ended_at = time.perf_counter()
            self.result, self.error, self.status = result, error, status

    def _run(self) -> None:
        holding = False
        try:
            if self.slots is not None:
                holding = self.slots.acquire(self._ticket, _Cancelled(self))
                if not holding:
                    self._end(STOPPED)
                    return
            self._started_at = time.perf_counter()
            self.status = RUNNING
            self._serve()
        except Exception as err:  # the page shows the message; the monitor must not die silently
            self.error_details = traceback.format_exc()
            self._end(FAILED, error=f"{type(err).__name__}: {err}")
        finally:
            if holding:
                self.slots.release(self._ticket)

    def _serve(self) -> None:
        if self._stop.is_set():  # stopped while it got its slot: nothing to launch
            self._end(STOPPED)
            return
        try:
            handle = self.backend.launch(self.work, self.threads, self.max_seconds, self.name)
        except Exception as err:
            self.error_details = traceback.format_exc()
            self._end(
                FAILED, error=N_("the run could not start in a worker: {error}").format(error=err)
            )
            return
        stop_sent_at: float | None = None
        self._handle = handle
        if self._stop.is_set():  # a stop asked for while it launched reaches the worker now
            handle.stop()
            stop_sent_at = time.monotonic()
        try:
            while True:
                for message in handle.receive(POLL_S):
                    if message[0] == "update":
                        with self._lock:
                            self._updates.append(message[1])
                    elif message[0] == "done":
                        _kind, result, timed_out, stopped = message
                        if timed_out:
                            self.timed_out = True
                            self.stop_reason = self.stop_reason or TIME_LIMIT
                        if stopped and self.stop_reason is None:
                            self.stop_reason = ASKED
                        self._end(STOPPED if stopped else FINISHED, result)
                        return
                    elif message[0] == "failed":
                        self.error_details = message[2]
                        self._end(FAILED, error=message[1])
                        return
                if handle.ended:  # gone without a last word
                    if stop_sent_at is not None:
                        self._end(STOPPED)
                    else:
                        note = handle.exit_note
                        ended = N_("the worker running it ended unexpectedly ({note})")
                        self._end(FAILED, error=ended.format(note=note))
                    return
                self._check_owner()
                running = time.perf_counter() - self._started_at
                if self.max_seconds is not None and running > self.max_seconds + KILL_AFTER_S:
                    self.timed_out = True  # a run that has not reported for a long while
                    self.stop(TIME_LIMIT)
                if self._stop.is_set():
                    if stop_sent_at is None:
                        handle.stop()
                        stop_sent_at = time.monotonic()
                    elif time.monotonic() - stop_sent_at > self._kill_after():
                        handle.kill()  # it ignores the stop: end it, keep nothing
                        self._end(STOPPED)
                        return
        finally:
            self._handle = None
            handle.close()
