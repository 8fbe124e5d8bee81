"""Background runs on a Ray cluster, for a hosted course (``pip install -e ".[cluster]"``).

Set ``TINYFORMERS_RAY_ADDRESS`` to ``ray://head:10001`` (or ``auto`` on a machine of the
cluster). Each run is a Ray actor that reserves ``num_cpus`` equal to its torch threads, so staff
add training capacity by adding Ray workers. The actor runs the same worker code as a local
process (``workers.run_work``) and keeps the messages it sends until the web process drains
them. The queue of runs is a named actor too, shared by every web replica: a student's place in
line counts every replica's runs.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import ray

from tinyformers.training.jobs import POLL_S, FairQueue
from tinyformers.training.workers import dumps, loads, lower_priority, run_work

NAMESPACE = "tinyformers"
QUEUE_ACTOR = "tinyformers-slots"


@ray.remote(max_concurrency=4)
class RunActor:
    """One run: ``run`` trains in one actor thread while ``drain`` and ``stop`` answer in
    others."""

    def __init__(self) -> None:
        lower_priority()
        self._messages: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def _send(self, message: tuple) -> None:
        data = dumps(message)  # now, before the work changes what it reported
        with self._lock:
            self._messages.append(data)

    def run(self, work: Any, threads: int | None, max_seconds: float | None) -> bool:
        run_work(work, threads, max_seconds, self._send, self._stop.is_set)
        return True

    def drain(self) -> list[bytes]:
        with self._lock:
            messages, self._messages = self._messages, []
        return messages

    def stop(self) -> None:
        self._stop.set()


@ray.remote(num_cpus=0)
class QueueActor:
    """The cluster-wide queue of runs (a ``FairQueue`` behind an actor)."""

    def __init__(self, capacity: int) -> None:
        self._queue = FairQueue(capacity)

    def ticket(self) -> int:
        return self._queue.ticket()

    def ahead_of(self, number: int) -> int:
        return self._queue.ahead_of(number)

    def try_acquire(self, number: int) -> bool:
        return self._queue.try_acquire(number)

    def leave(self, number: int) -> None:
        self._queue.leave(number)

    def release(self, number: int) -> None:
        self._queue.release(number)

    def busy(self) -> int:
        return len(self._queue.holders)


class RaySlots:
    """``jobs.Slots`` for the whole cluster: the same methods, kept by a named actor."""

    def __init__(self, capacity: int, name: str = QUEUE_ACTOR):
        self.capacity = capacity
        self._actor = QueueActor.options(
            name=name, namespace=NAMESPACE, get_if_exists=True, lifetime="detached"
        ).remote(capacity)

    def ticket(self) -> int:
        return ray.get(self._actor.ticket.remote())

    def ahead_of(self, number: int) -> int:
        return ray.get(self._actor.ahead_of.remote(number))

    def acquire(self, number: int, cancelled) -> bool:
        while not ray.get(self._actor.try_acquire.remote(number)):
            if cancelled.is_set():
                ray.get(self._actor.leave.remote(number))
                return False
            time.sleep(POLL_S)
        return True

    def release(self, number: int) -> None:
        ray.get(self._actor.release.remote(number))

    @property
    def busy(self) -> int:
        return ray.get(self._actor.busy.remote())


class RayHandle:
    """One run as a Ray actor, seen from the web process."""

    def __init__(self, work, threads: int | None, max_seconds: float | None, name: str):
        self._actor = RunActor.options(num_cpus=threads or 1, name=None).remote()
        self._done = self._actor.run.remote(work, threads, max_seconds)
        self.ended = False
        self._note = "the Ray actor ended"

    def receive(self, timeout: float) -> list[tuple]:
        if self.ended:
            return []
        ready, _ = ray.wait([self._done], timeout=timeout)
        try:
            messages = [loads(data) for data in ray.get(self._actor.drain.remote())]
        except ray.exceptions.RayError as err:  # the actor died
            self._note = type(err).__name__
            self.ended = True
            return []
        if ready:
            try:
                ray.get(self._done)
            except ray.exceptions.RayError as err:
                self._note = type(err).__name__
            self.ended = True
        return messages

    @property
    def exit_note(self) -> str:
        return self._note

    def stop(self) -> None:
        with contextlib.suppress(ray.exceptions.RayError):
            ray.get(self._actor.stop.remote())  # seen by the run's next report

    def kill(self) -> None:
        ray.kill(self._actor)

    def close(self) -> None:
        ray.kill(self._actor)


class RayBackend:
    """Runs on the Ray cluster at ``address`` (connected on first use)."""

    name = "Ray"

    def __init__(self, address: str | None = None):
        self.address = address
        self._lock = threading.Lock()

    def connect(self) -> None:
        with self._lock:
            if not ray.is_initialized():
                ray.init(address=self.address, namespace=NAMESPACE, log_to_driver=False)

    def slots(self, capacity: int, name: str = QUEUE_ACTOR) -> RaySlots:
        """The cluster-wide queue (the first replica to ask creates it with ``capacity``)."""
        self.connect()
        return RaySlots(capacity, name)

    def launch(self, work, threads: int | None, max_seconds: float | None, name: str) -> RayHandle:
        self.connect()
        return RayHandle(work, threads, max_seconds, name)
