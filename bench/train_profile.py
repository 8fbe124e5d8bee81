"""Where a training run's time goes: forward, backward, optimizer, evaluation, the rest.

    python bench/train_profile.py [--corpus PATH] [--steps N] [--before]

Trains the `char` preset with the command line's defaults for ``--steps`` steps under
``torch.profiler`` and prints the share of each phase (the loop marks them with
``record_function``). The run is cut short, so it ends with one whole-split evaluation, as a
run that reaches its target does. ``--before`` uses the old schedule instead: a whole-split
evaluation, with a sample and an attention snapshot, every 100 steps. The profiler slows small
operations down, so the shares matter, not the seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from tinyformers.training.runs import CHAR_SETTINGS, Run, RunSpec

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
PHASES = ("batch", "forward", "backward", "optimizer", "evaluate", "snapshot")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--before", action="store_true", help="the old evaluation schedule")
    args = parser.parse_args()
    text = args.corpus.read_text(encoding="utf-8")
    if args.before:
        settings = replace(CHAR_SETTINGS, max_steps=args.steps, eval_interval=100, check_interval=0)
    else:
        settings = replace(CHAR_SETTINGS, max_steps=args.steps)
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with record_function("train/setup"):
            run = Run(RunSpec(settings=settings, target_val_loss=0.01), text)
        sample, probe = run.sample, run.probe_attention

        def marked(fn):
            def inner(*a, **k):
                with record_function("train/snapshot"):
                    return fn(*a, **k)

            return inner

        run.sample, run.probe_attention = marked(sample), marked(probe)
        run.train(log_interval=50, snapshots=args.before)
    wall = time.perf_counter() - start
    totals = {p: 0.0 for p in ("setup", *PHASES)}
    for event in prof.key_averages():
        name = event.key.removeprefix("train/")
        if event.key.startswith("train/") and name in totals:
            totals[name] += event.cpu_time_total / 1e6
    print(
        f"{'before' if args.before else 'after'}: {args.steps} steps, {torch.get_num_threads()} "
        f"threads, wall {wall:.1f} s under the profiler"
    )
    rest = wall - sum(totals.values())
    for name, seconds in [*totals.items(), ("overhead (Python, the rest)", rest)]:
        print(f"  {name:28s} {seconds:7.2f} s  {100 * seconds / wall:5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
