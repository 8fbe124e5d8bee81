"""Background jobs on both backends (local worker processes and a real local Ray cluster):
updates, results, stopping, failures as messages, time limits, a fair cap on concurrent runs,
and runs whose owner has gone."""

from __future__ import annotations

import os
import time
import uuid
from functools import partial
from pathlib import Path

import pytest

from tests.training import work
from tinyformers.training import backends, jobs
from tinyformers.training.jobs import (
    ASKED,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    SESSION_CLOSED,
    STOPPED,
    TIME_LIMIT,
    Job,
    Limits,
    Slots,
)
from tinyformers.training.workers import LocalProcesses

LIMIT_S = 240.0  # a limit, not an expected time: the machine may be busy


def wait_for(predicate, timeout: float = LIMIT_S) -> None:
    """Wait for a state, with a limit generous enough for a busy machine."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def ray_cluster():
    """A real Ray cluster on this machine, for this module's Ray tests; shut down after."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, namespace="tinyformers-tests")
    yield ray
    ray.shutdown()


class Backend:
    """One backend under test: its name, a way to start jobs on it, and fresh slots."""

    def __init__(self, name: str, request):
        self.name = name
        if name == "ray":
            request.getfixturevalue("ray_cluster")
            from tinyformers.training.ray_backend import RayBackend

            self.backend = RayBackend()
        else:
            self.backend = LocalProcesses()

    def slots(self, capacity: int):
        if self.name == "ray":
            return self.backend.slots(capacity, name=f"slots-{uuid.uuid4().hex}")
        return Slots(capacity)

    def job(self, work_function, **options) -> Job:
        return Job(work_function, backend=self.backend, **options).start()


@pytest.fixture(params=["local", "ray"])
def backend(request) -> Backend:
    return Backend(request.param, request)


@pytest.fixture
def gate(tmp_path) -> Path:
    """A file a test creates to let a waiting work function go on."""
    return tmp_path / "go"


def test_job_records_updates_and_result(backend) -> None:
    job = backend.job(partial(work.count, 5))
    job.join(LIMIT_S)
    snap = job.snapshot()
    assert snap.status == FINISHED and snap.updates == [0, 1, 2, 3, 4] and snap.result == 5
    assert not snap.active and snap.stop_reason is None


def test_the_work_runs_in_a_worker_at_lower_priority_with_the_threads_asked_for(backend) -> None:
    job = backend.job(work.worker_facts, threads=1)
    job.join(LIMIT_S)
    facts = job.result
    assert job.status == FINISHED, job.error_details
    assert facts["pid"] != os.getpid()
    assert facts["nice"] > os.nice(0)
    assert facts["threads"] == 1


def test_stop_is_seen_by_the_worker_at_its_next_report(backend, gate) -> None:
    job = backend.job(partial(work.wait_for_file, str(gate)))
    wait_for(lambda: job.snapshot().updates == ["first"])
    job.stop()
    gate.touch()
    job.join(LIMIT_S)
    snap = job.snapshot()
    assert snap.status == STOPPED and snap.result is False and snap.stop_reason == ASKED
    assert snap.updates == ["first", "second"]


def test_a_worker_that_ignores_a_stop_is_ended(backend, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(jobs, "KILL_AFTER_S", 1.0)
    monkeypatch.setattr(jobs, "KILL_AFTER_ASKED_S", 1.0)
    started = tmp_path / "pid"
    job = backend.job(partial(work.ignore_stops, str(started)))
    wait_for(started.exists)
    job.stop()
    job.join(LIMIT_S)
    assert job.status == STOPPED and job.result is None


def test_failures_become_a_message_and_the_next_run_still_works(backend) -> None:
    failing = backend.job(work.fail)
    failing.join(LIMIT_S)
    snap = failing.snapshot()
    assert snap.status == FAILED and snap.error == "ValueError: learning rate too high"
    assert snap.updates == ["about to fail"]
    assert "Traceback" in failing.error_details

    crashing = backend.job(work.crash)
    crashing.join(LIMIT_S)
    assert crashing.status == FAILED and "ended unexpectedly" in crashing.error

    unpicklable = backend.job(work.unpicklable_update)
    unpicklable.join(LIMIT_S)
    assert unpicklable.status == FAILED and "pickle" in unpicklable.error.lower()

    after = backend.job(partial(work.count, 2))
    after.join(LIMIT_S)
    assert after.status == FINISHED and after.result == 2


def test_work_that_cannot_cross_into_a_process_is_refused_with_a_message() -> None:
    job = Job(lambda report: 1, backend=LocalProcesses()).start()
    job.join(LIMIT_S)
    assert job.status == FAILED and job.error.startswith("the run could not start in a worker")


def test_a_job_starts_once(backend) -> None:
    job = backend.job(partial(work.count, 1))
    with pytest.raises(RuntimeError):
        job.start()
    job.join(LIMIT_S)


def test_slots_cap_runs_and_say_how_many_are_ahead(backend, gate) -> None:
    slots = backend.slots(1)
    first = backend.job(partial(work.wait_for_file, str(gate)), slots=slots)
    wait_for(lambda: first.snapshot().updates == ["first"])
    second = backend.job(partial(work.count, 2), slots=slots)
    third = backend.job(partial(work.count, 2), slots=slots)
    wait_for(lambda: third.snapshot().ahead == 2)
    assert second.snapshot().status == QUEUED and second.snapshot().ahead == 1
    assert first.status == RUNNING and slots.busy == 1
    gate.touch()
    for job in (first, second, third):
        job.join(LIMIT_S)
    assert [j.status for j in (first, second, third)] == [FINISHED] * 3
    assert slots.busy == 0


def test_stopping_a_queued_job_leaves_the_queue(backend, gate) -> None:
    slots = backend.slots(1)
    first = backend.job(partial(work.wait_for_file, str(gate)), slots=slots)
    wait_for(lambda: first.status == RUNNING)
    waiting = backend.job(partial(work.count, 1), slots=slots)
    behind = backend.job(partial(work.count, 1), slots=slots)
    wait_for(lambda: behind.snapshot().ahead == 2)
    waiting.stop()
    waiting.join(LIMIT_S)
    assert waiting.status == STOPPED and waiting.snapshot().updates == []
    wait_for(lambda: behind.snapshot().ahead == 1)
    gate.touch()
    behind.join(LIMIT_S)
    first.join(LIMIT_S)
    assert behind.status == FINISHED


def test_a_job_past_its_time_limit_is_asked_to_stop(backend) -> None:
    job = backend.job(work.count_forever, max_seconds=0.5)
    job.join(LIMIT_S)
    assert job.status == STOPPED and job.timed_out and job.result >= 1
    assert job.stop_reason == TIME_LIMIT


class Owner:
    """A stand-in for "is this browser session still connected?"."""

    def __init__(self) -> None:
        self.here = True
        self.asked = 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.here


def test_a_run_whose_owner_is_gone_past_the_grace_period_stops(backend) -> None:
    owner = Owner()
    job = backend.job(work.count_forever, owner=owner, owner_grace_s=0.5)
    wait_for(lambda: len(job.snapshot().updates) > 3)
    owner.here = False
    job.join(LIMIT_S)
    assert job.status == STOPPED and job.stop_reason == SESSION_CLOSED and not job.timed_out


def test_an_owner_back_within_the_grace_period_keeps_the_run(backend) -> None:
    owner = Owner()
    job = backend.job(work.count_forever, owner=owner, owner_grace_s=LIMIT_S)
    wait_for(lambda: len(job.snapshot().updates) > 3)
    owner.here = False  # a reconnect: gone for a moment…
    asked = owner.asked
    wait_for(lambda: owner.asked > asked + 2)
    owner.here = True  # …and back
    wait_for(lambda: owner.asked > asked + 5)
    assert job.status == RUNNING and not job.stop_requested
    job.stop()
    job.join(LIMIT_S)
    assert job.stop_reason == ASKED


def test_a_queued_run_whose_owner_is_gone_leaves_the_queue(backend, gate) -> None:
    slots = backend.slots(1)
    first = backend.job(partial(work.wait_for_file, str(gate)), slots=slots)
    wait_for(lambda: first.status == RUNNING)
    owner = Owner()
    waiting = backend.job(partial(work.count, 1), slots=slots, owner=owner, owner_grace_s=0.5)
    behind = backend.job(partial(work.count, 1), slots=slots)
    wait_for(lambda: behind.snapshot().ahead == 2)
    owner.here = False
    waiting.join(LIMIT_S)
    assert waiting.status == STOPPED and waiting.stop_reason == SESSION_CLOSED
    wait_for(lambda: behind.snapshot().ahead == 1)
    gate.touch()
    for job in (first, behind):
        job.join(LIMIT_S)
    assert behind.status == FINISHED


def test_limits_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("TINYFORMERS_MAX_TRAININGS", "1")
    monkeypatch.setenv("TINYFORMERS_MAX_SECONDS", "30")
    monkeypatch.setenv("TINYFORMERS_SESSION_GRACE", "2.5")
    limits = Limits.from_env()
    assert limits.max_concurrent == 1 and limits.max_seconds == 30.0
    assert limits.session_grace_s == 2.5
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


def test_the_readme_states_the_default_limits() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    defaults = Limits()
    rows = {
        "TINYFORMERS_MAX_TRAININGS": defaults.max_concurrent,
        "TINYFORMERS_MAX_SECONDS": f"{defaults.max_seconds:g}",
        "TINYFORMERS_MAX_STEPS": defaults.max_steps,
        "TINYFORMERS_MAX_PARAMETERS": defaults.max_parameters,
        "TINYFORMERS_SESSION_GRACE": f"{defaults.session_grace_s:g}",
    }
    for name, value in rows.items():
        assert f"| `{name}` | {value} |" in readme
    assert f"`{backends.RAY_ADDRESS_ENV}`" in readme


def test_a_run_gives_the_same_losses_and_weights_on_both_backends(request) -> None:
    """The training page's work, seeded, on local worker processes and on Ray."""
    import torch

    from tinyformers.course.train import Started, train_start
    from tinyformers.text.corpora import lesson_corpus
    from tinyformers.training.loop import TrainSettings
    from tinyformers.training.runs import RunSpec, TrainUpdate

    settings = TrainSettings(max_steps=20, batch_size=4, eval_interval=10, seed=3)
    spec = RunSpec(preset="nano", settings=settings)
    runs = {}
    for name in ("local", "ray"):
        job = Backend(name, request).job(
            partial(train_start, spec, lesson_corpus(), None, 600.0), threads=1
        )
        job.join(LIMIT_S)
        assert job.status == FINISHED, job.error_details
        run = runs[name] = job.result
        updates = job.snapshot().updates
        assert isinstance(updates[0], Started) and updates[0].view.model is None  # light
        reported = [u.progress for u in updates if isinstance(u, TrainUpdate)]
        assert reported == run.state.history and [p.step for p in reported] == [10, 20]
    local, ray = runs["local"], runs["ray"]
    assert [p.train_loss for p in local.state.history] == [p.train_loss for p in ray.state.history]
    assert [p.val_loss for p in local.state.history] == [p.val_loss for p in ray.state.history]
    for (name, ours), theirs in zip(
        local.model.state_dict().items(), ray.model.state_dict().values(), strict=True
    ):
        assert torch.equal(ours, theirs), name
