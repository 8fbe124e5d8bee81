"""Work functions for job tests: top-level, so they can run in a worker process or on Ray."""

from __future__ import annotations

import os
import time
from pathlib import Path


def count(n: int, report) -> int:
    """Report 0 .. n-1; returns how many reports were made before a stop."""
    for i in range(n):
        if not report(i):
            return i
    return n


def count_forever(report, pause_s: float = 0.01) -> int:
    """Report 0, 1, 2, … until told to stop; returns the number reached."""
    n = 0
    while report(n):
        n += 1
        time.sleep(pause_s)
    return n


def wait_for_file(path: str, report, first="first", then="second"):
    """Report ``first``, wait until ``path`` exists, report ``then``; return that report's
    answer (False if a stop was asked for meanwhile)."""
    report(first)
    while not Path(path).exists():
        time.sleep(0.01)
    return report(then)


def fail(report) -> None:
    report("about to fail")
    raise ValueError("learning rate too high")


def unpicklable_update(report) -> None:
    report(lambda: None)


def ignore_stops(path: str, report) -> None:
    """Report once, then never again: only ending the worker stops it."""
    report("started")
    Path(path).write_text(str(os.getpid()))
    while True:
        time.sleep(0.05)


def crash(report) -> None:
    report("crashing")
    os._exit(3)


def worker_facts(report) -> dict:
    """What a worker looks like from inside: its process, priority and torch threads."""
    import torch

    return {"pid": os.getpid(), "nice": os.nice(0), "threads": torch.get_num_threads()}


def answer(report) -> int:
    report(0)
    return 42
