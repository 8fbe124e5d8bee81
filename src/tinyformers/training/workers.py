"""Where background runs execute: a worker process per run, never a thread of the web process.

Both backends run the same worker code, ``run_work``: it lowers its CPU priority, sets its torch
threads, calls ``work(report)`` and sends back, in order, every ``("update", object)`` the work
reported, then one final message — ``("done", result, timed_out, stopped)`` or ``("failed",
message, details)``. Each message is pickled the moment it is sent, so the work may go on
changing an object after reporting it.

``LocalProcesses`` (the default) starts one process per run from a fork server that has
already imported torch, so a run starts in a fraction of a second; ``tinyformers.training.
ray_backend`` runs each run as a Ray actor instead. A backend's ``launch`` returns a handle
with ``receive(timeout)``, ``ended``, ``stop()``, ``kill()`` and ``close()``; ``jobs.Job``
drives it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable
from functools import partial
from typing import Any

import torch

NICE = 10  # how much lower a worker's CPU priority is than the web process's
# Imported once by the fork server, so a worker starts without importing torch or the modules
# the pages' work functions live in.
PRELOAD = (
    __name__,
    "tinyformers.course.train",
    "tinyformers.course.scaling",
    "tinyformers.course.fine_tuning",
    "tinyformers.training.experiments",
)
PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL

Message = tuple


# ---------------------------------------------------------------------------------------------
# The worker's side, the same on every backend
# ---------------------------------------------------------------------------------------------


def lower_priority(increment: int = NICE) -> None:
    """Make this process yield the CPU to the web process (no-op where unsupported)."""
    with contextlib.suppress(AttributeError, OSError):
        os.nice(increment)


def set_threads(threads: int | None) -> None:
    """Use exactly ``threads`` torch threads for the maths and one for inter-op work."""
    if threads is None:
        return
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # settable only before any parallel work
        torch.set_num_interop_threads(1)


def run_work(
    work: Callable[[Callable[[Any], bool]], Any],
    threads: int | None,
    max_seconds: float | None,
    send: Callable[[Message], None],
    stop_requested: Callable[[], bool],
) -> None:
    """Run ``work(report)`` and send its updates and outcome through ``send``.

    ``report`` returns False once a stop was asked for or ``max_seconds`` have passed since the
    first report (the setup before it, such as building a model, is not counted; a run that
    never reports is ended by the web process). Exceptions become a ``failed`` message:
    nothing raises out of here."""
    started: float | None = None
    timed_out = False

    def report(update: Any) -> bool:
        nonlocal started, timed_out
        send(("update", update))
        now = time.perf_counter()
        started = now if started is None else started
        if max_seconds is not None and now - started > max_seconds:
            timed_out = True
        return not (timed_out or stop_requested())

    try:
        set_threads(threads)
        result = work(report)
    except Exception as err:
        send(("failed", f"{type(err).__name__}: {err}", traceback.format_exc()))
        return
    try:
        send(("done", result, timed_out, timed_out or stop_requested()))
    except Exception as err:  # e.g. a result that cannot be pickled
        message = f"the run finished, but its result could not be sent back: {err}"
        send(("failed", message, traceback.format_exc()))


def dumps(message: Message) -> bytes:
    return pickle.dumps(message, protocol=PICKLE_PROTOCOL)


def loads(data: bytes) -> Message:
    """A message, or a ``failed`` one saying why it could not be read."""
    try:
        return pickle.loads(data)
    except Exception as err:
        return ("failed", f"an update from the run could not be read: {err}", repr(err))


# ---------------------------------------------------------------------------------------------
# Local worker processes
# ---------------------------------------------------------------------------------------------


def _process_main(conn, stop, work: bytes, threads: int | None, max_seconds: float | None) -> None:
    """The entry point of a local worker process (``work`` pickled by the web process)."""
    lower_priority()

    def send(message: Message) -> None:
        conn.send_bytes(dumps(message))

    try:
        run_work(partial(_unpickled, work), threads, max_seconds, send, stop.is_set)
    except (BrokenPipeError, EOFError):  # the web process went away; nobody is listening
        pass
    finally:
        conn.close()


def process_context() -> multiprocessing.context.BaseContext:
    """A fork server that has imported torch on Linux (fast starts, and never a fork of the
    web process with its threads); plain spawn elsewhere."""
    if sys.platform.startswith("linux"):
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(PRELOAD))
        return context
    return multiprocessing.get_context("spawn")


def _unpickled(work: bytes, report: Callable[[Any], bool]) -> Any:
    return pickle.loads(work)(report)


_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _main_script_hidden():
    """While a worker starts, hide the web process's ``__main__`` module from multiprocessing,
    which would otherwise run its file again in the worker: under Streamlit that file is the
    page script being run, under a plain ``python script.py`` the whole script."""
    with _MAIN_LOCK:
        main = sys.modules.get("__main__")
        stand_in = types.ModuleType("__main__")
        sys.modules["__main__"] = stand_in
        try:
            yield
        finally:
            if sys.modules.get("__main__") is stand_in:  # unless a script run has set its own
                sys.modules["__main__"] = main


class ProcessHandle:
    """One run in a local worker process, seen from the web process."""

    def __init__(self, context, work, threads: int | None, max_seconds: float | None, name: str):
        # Plain pickle, not multiprocessing's: torch would move tensors through shared memory,
        # which a container may have little of. A lambda fails here, in the web process.
        work_bytes = pickle.dumps(work, protocol=PICKLE_PROTOCOL)
        self._receiver, sender = context.Pipe(duplex=False)
        self._stop = context.Event()
        self._process = context.Process(
            target=_process_main,
            args=(sender, self._stop, work_bytes, threads, max_seconds),
            name=f"tinyformers-{name}",
            daemon=True,
        )
        try:
            with _main_script_hidden():
                self._process.start()
        finally:
            sender.close()
        self.ended = False  # the worker is gone and every message it sent was received

    def receive(self, timeout: float) -> list[Message]:
        """Every message waiting, after waiting up to ``timeout`` seconds for the first."""
        messages: list[Message] = []
        if self.ended or not self._receiver.poll(timeout):
            return messages
        while True:
            try:
                messages.append(loads(self._receiver.recv_bytes()))
            except (EOFError, OSError):
                self.ended = True
                break
            if not self._receiver.poll(0):
                break
        return messages

    @property
    def exit_note(self) -> str:
        self._process.join(1.0)
        return f"exit code {self._process.exitcode}"

    def stop(self) -> None:
        self._stop.set()

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join(5.0)

    def close(self) -> None:
        """Wait briefly for the worker to exit (it has sent its last message), else end it."""
        self._process.join(5.0)
        if self._process.is_alive():
            self.kill()
        self._receiver.close()


class LocalProcesses:
    """The embedded backend: each run in its own worker process, started on demand."""

    name = "local processes"

    def __init__(self, context=None):
        self._context = context

    def launch(
        self, work, threads: int | None, max_seconds: float | None, name: str
    ) -> ProcessHandle:
        if self._context is None:
            self._context = process_context()
        return ProcessHandle(self._context, work, threads, max_seconds, name)


_LOCAL: LocalProcesses | None = None
_LOCAL_LOCK = threading.Lock()


def local_processes() -> LocalProcesses:
    """The process-wide backend of local worker processes (made on first use)."""
    global _LOCAL
    with _LOCAL_LOCK:
        if _LOCAL is None:
            _LOCAL = LocalProcesses()
        return _LOCAL
