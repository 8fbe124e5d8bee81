"""How fast the training page's default run teaches: the loss it loses and the samples it writes
in the first 30 seconds after Start.

    python bench/train_page.py [--seconds 30]

The run is the page's default (``course.train.default_choice``: every setting untouched),
started the way the page starts it: ``Training.begin`` in a background ``Job`` with this
server's torch threads per run (half the cores unless TINYFORMERS_TRAIN_THREADS says otherwise).
Before the clock starts, the page has drawn the default settings (``default_choice``) and, once
per process, warmed up PyTorch's optimizer (``warm_up``). The clock starts when the job does, so
building the run, the step-0 sample and the untrained model's evaluation count. Goal, on the 2-core reference machine: within 30 s the loss falls
visibly and a sample is on screen that is visibly better than the untrained model's.
"""

from __future__ import annotations

import argparse
import textwrap
import time

from tinyformers.course import train as course
from tinyformers.course.train import RunSample, Training
from tinyformers.figures import train as figs
from tinyformers.training.jobs import Job, Limits

SECONDS = 30.0
MIDWAY = 10.0  # the page's sample a student sees about this long after Start is printed too


def sample_at(training: Training, seconds: float, stamps: list[tuple[float, object]]):
    """The latest sample the page could show ``seconds`` after Start."""
    shown = [u for t, u in stamps if t <= seconds and u.sample is not None]
    if not shown:
        return None
    latest = shown[-1]
    return RunSample(latest.progress.step, latest.sample, course.sample_prompt(training.run))


def show(title: str, sample: RunSample | None) -> None:
    if sample is None:
        print(f"{title}: none yet")
        return
    text = (sample.prompt or "") + sample.text
    print(f"{title} (step {sample.step:,}):")
    print(textwrap.indent(textwrap.fill(repr(text), 96), "    "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=SECONDS)
    seconds = parser.parse_args().seconds
    limits = Limits.from_env()
    choice = course.default_choice()  # what the page has computed before Start is pressed…
    course.warm_up()  # …including, once per process, what the first optimizer imports
    training = Training(choice)
    stamps: list[tuple[float, object]] = []  # (seconds after Start, update)
    work = training.begin("start", limits.max_seconds)

    def timed(report):
        def stamped(update) -> bool:
            stamps.append((time.perf_counter() - started, update))
            return report(update)

        return work(stamped)

    job = Job(timed, threads=limits.threads_per_run, max_seconds=limits.max_seconds)
    started = time.perf_counter()
    job.start()
    job.join(seconds)
    looked = time.perf_counter() - started
    history = [u.progress for t, u in stamps if t <= seconds]
    job.stop()
    job.join()

    settings = choice.spec.settings
    print(figs.run_caption(training))
    print(
        f"Evaluations (with a sample) every {settings.eval_interval} steps; "
        f"{limits.threads_per_run} torch thread(s) per run."
    )
    if not history:
        print(f"No step was logged in {seconds:g} s.")
        return
    last = history[-1]
    ended = f"; the run finished at {stamps[-1][0]:.1f} s" if job.status == "finished" else ""
    print(f"After {min(looked, seconds):.1f} s: {last.step:,} steps{ended}.")
    first_eval = next((t for t, u in stamps if u.sample is not None), None)
    if first_eval is not None:
        print(f"First sample after step 0: {first_eval:.1f} s after Start.")
    start_val = training.initial_val_loss
    val = next((p.val_loss for p in reversed(history) if p.val_loss is not None), None)
    print(
        f"Loss at the start: validation {start_val:.3f} (untrained; ln V = "
        f"{course.even_guess_loss(choice.config.vocab_size):.3f}), training "
        f"{history[0].train_loss:.3f} (step {history[0].step})."
    )
    print(
        f"Loss at {min(looked, seconds):.0f} s: training {last.train_loss:.3f}, validation "
        f"{val:.3f} (step {last.step:,})."
    )
    show("Sample of the untrained model", course.first_sample(training))
    show(f"Sample shown {MIDWAY:g} s after Start", sample_at(training, MIDWAY, stamps))
    show(f"Sample shown {seconds:g} s after Start", sample_at(training, seconds, stamps))


if __name__ == "__main__":
    main()
