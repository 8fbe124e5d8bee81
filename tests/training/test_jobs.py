"""Background jobs: updates, stopping, failures, and a fair cap on concurrent runs."""

from __future__ import annotations

import threading
import time

import pytest

from tinyformers.training.jobs import FAILED, FINISHED, QUEUED, RUNNING, STOPPED, Job, Limits, Slots


def wait_for(predicate, timeout: float = 120.0) -> None:
    """Wait for a state, with a limit generous enough for a busy machine."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def counting_work(n: int):
    def work(report):
        for i in range(n):
            if not report(i):
                return i
        return n

    return work


def test_job_records_updates_and_result() -> None:
    job = Job(counting_work(5)).start()
    job.join(120)
    snap = job.snapshot()
    assert snap.status == FINISHED and snap.updates == [0, 1, 2, 3, 4] and snap.result == 5
    assert not snap.active


def test_stop_is_seen_by_the_worker_at_its_next_report() -> None:
    gate = threading.Event()

    def work(report):
        report("first")
        gate.wait(120)
        return report("second")

    job = Job(work).start()
    wait_for(lambda: job.snapshot().updates == ["first"])
    job.stop()
    gate.set()
    job.join(120)
    snap = job.snapshot()
    assert snap.status == STOPPED and snap.result is False


def test_failure_becomes_a_message_not_a_dead_thread() -> None:
    def work(report):
        raise ValueError("learning rate too high")

    job = Job(work).start()
    job.join(120)
    snap = job.snapshot()
    assert snap.status == FAILED and "learning rate too high" in snap.error
    assert "Traceback" in job.error_details


def test_a_job_starts_once() -> None:
    job = Job(counting_work(1)).start()
    with pytest.raises(RuntimeError):
        job.start()


def test_slots_cap_runs_and_say_how_many_are_ahead() -> None:
    slots = Slots(1)
    gate = threading.Event()

    def blocking(report):
        report("running")
        gate.wait(120)

    first = Job(blocking, slots).start()
    wait_for(lambda: first.status == RUNNING)
    second = Job(counting_work(2), slots).start()
    third = Job(counting_work(2), slots).start()
    wait_for(lambda: third.snapshot().ahead == 2)
    assert second.snapshot().status == QUEUED and second.snapshot().ahead == 1
    assert third.snapshot().ahead == 2
    assert slots.busy == 1
    gate.set()
    for job in (first, second, third):
        job.join(120)
    assert [j.status for j in (first, second, third)] == [FINISHED] * 3
    assert slots.busy == 0


def test_stopping_a_queued_job_leaves_the_queue() -> None:
    slots = Slots(1)
    gate = threading.Event()
    first = Job(lambda report: gate.wait(120), slots).start()
    wait_for(lambda: first.status == RUNNING)
    waiting = Job(counting_work(1), slots).start()
    behind = Job(counting_work(1), slots).start()
    wait_for(lambda: behind.snapshot().ahead == 2)
    waiting.stop()
    waiting.join(120)
    assert waiting.status == STOPPED and waiting.snapshot().updates == []
    wait_for(lambda: behind.snapshot().ahead == 1)
    gate.set()
    behind.join(120)
    assert behind.status == FINISHED


def test_limits_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("TINYFORMERS_MAX_TRAININGS", "1")
    monkeypatch.setenv("TINYFORMERS_MAX_SECONDS", "30")
    limits = Limits.from_env()
    assert limits.max_concurrent == 1 and limits.max_seconds == 30.0
    monkeypatch.setenv("TINYFORMERS_MAX_STEPS", "lots")
    with pytest.raises(ValueError, match="TINYFORMERS_MAX_STEPS must be a number"):
        Limits.from_env()
    monkeypatch.setenv("TINYFORMERS_MAX_STEPS", "-5")
    with pytest.raises(ValueError, match="must be positive"):
        Limits.from_env()


def test_parameter_cap_has_a_clear_message() -> None:
    with pytest.raises(ValueError, match="at most 1,000 per run"):
        Limits(max_parameters=1000).check_parameters(5000)
    Limits(max_parameters=1000).check_parameters(1000)


def test_a_job_past_its_time_limit_is_asked_to_stop() -> None:
    def work(report):
        n = 0
        while report(n):
            n += 1
            time.sleep(0.01)
        return n

    job = Job(work, max_seconds=0.1).start()
    job.join(120)
    assert job.status == STOPPED and job.timed_out and job.result >= 1


def test_the_readme_states_the_default_limits() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    defaults = Limits()
    rows = {
        "TINYFORMERS_MAX_TRAININGS": defaults.max_concurrent,
        "TINYFORMERS_MAX_SECONDS": f"{defaults.max_seconds:g}",
        "TINYFORMERS_MAX_STEPS": defaults.max_steps,
        "TINYFORMERS_MAX_PARAMETERS": defaults.max_parameters,
    }
    for name, value in rows.items():
        assert f"| `{name}` | {value} |" in readme
