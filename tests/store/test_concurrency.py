"""Several web replicas (separate processes) on one database at once: nothing lost, no errors.

Each test starts its processes with ``spawn`` (a fresh interpreter, as a replica is) and lines
them up on a barrier, so they hit the database together; the test then waits for each one's
report and for its exit.
"""

from __future__ import annotations

import multiprocessing
import sys
import types
from contextlib import contextmanager

from sqlalchemy import text

from tinyformers.store import follow_state, open_room, open_store, pose, room_answers

from .workers import answer_and_steer, open_at_once, report

PROCESSES = 4
ROUNDS = 25


@contextmanager
def bare_main():
    """A spawned process imports its parent's ``__main__`` first. Streamlit's AppTest, run by
    earlier tests in the same process, leaves the app's script there, so each process would
    run the whole app before its work: start them with an empty ``__main__`` instead."""
    saved = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = saved


def run_together(work, arguments, processes: int = PROCESSES) -> None:
    """Run ``work(*arguments(barrier, number))`` in ``processes`` spawned processes at once;
    fail with the traceback of any that raised."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=report, args=(results, work, *arguments(start, number)))
        for number in range(processes)
    ]
    with bare_main():
        for worker in workers:
            worker.start()
    failures = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert [f for f in failures if f] == []
    assert [w.exitcode for w in workers] == [0] * processes


def test_several_processes_open_a_new_database_at_once(database) -> None:
    run_together(open_at_once, lambda start, _: (database, start), processes=6)
    store = open_store(database)
    with store.read() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [
            ("0001",)
        ]
        assert connection.execute(text("SELECT count(*) FROM rooms")).scalar() == 0
    store.close()


def test_several_processes_answer_and_steer_one_room(store, database) -> None:
    room = open_room(store, instructor="teacher")
    pose(store, room.code, instructor="teacher", lesson="gpt", question="posed")
    run_together(
        answer_and_steer, lambda start, n: (database, start, n, ROUNDS, room.code, "teacher")
    )
    with store.read() as connection:
        count = connection.execute(text("SELECT count(*) FROM answers")).scalar()
    assert count == PROCESSES * (ROUNDS + 1)
    assert sum(room_answers(store, room.code, "gpt", "posed").values()) == PROCESSES
    state = follow_state(store, room.code)
    assert state.version == 1 + PROCESSES * ROUNDS  # the pose, then every worker's updates
    assert state.step == ROUNDS - 1
