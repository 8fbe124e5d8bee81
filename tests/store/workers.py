"""What each process of the concurrency tests does (importable by a spawned interpreter)."""

from __future__ import annotations

import traceback

from tinyformers.store import open_store, record_answer, set_state


def report(results, work, *args) -> None:
    """Run ``work(*args)``; put ``None`` on ``results``, or the traceback if it raised."""
    try:
        work(*args)
    except BaseException:
        results.put(traceback.format_exc())
    else:
        results.put(None)


def open_at_once(url: str, start) -> None:
    """Open the store as soon as every process is ready to."""
    start.wait(timeout=60)
    open_store(url).close()


def answer_and_steer(url: str, start, worker: int, rounds: int, code: str, teacher: str) -> None:
    """Answer the room's posed question, then ``rounds`` times answer a question alone and
    move the room's state on."""
    store = open_store(url)
    start.wait(timeout=60)
    browser = f"student-{worker}"
    record_answer(
        store, browser=browser, lesson="gpt", question="posed", answer=str(worker),
        correct=worker % 2 == 0, room=code,
    )  # fmt: skip
    for number in range(rounds):
        record_answer(
            store, browser=browser, lesson="gpt", question=f"q{number}", answer="a",
            correct=True,
        )  # fmt: skip
        params = {"worker": str(worker), "round": str(number)}
        set_state(store, code, instructor=teacher, lesson="gpt", step=number, params=params)
    store.close()
