"""How fast a character-level GPT learns Shakespeare: time to a validation loss of 1.89.

    python bench/train_speed.py [--corpus PATH] [--runs N] [--reference]

The reference is nanoGPT's CPU recipe for shakespeare-char (4 layers, 4 heads, width 128,
context 64, batch 12, lr 1e-3, 2000 iterations, no dropout), which reaches about 1.89. The goal:
our `char` preset with the page's default settings reaches 1.89 in under 60 s on the 2-core
reference machine. ``--reference`` also runs the nanoGPT recipe itself with our trainer.

Time to target is wall time from the first training step to the end of the evaluation that
first reports a validation loss at or below the target, evaluations on the *whole* validation
split included. The corpus is not part of the repository; pass its path.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from tinyformers.training.loop import TrainSettings
from tinyformers.training.runs import CHAR_SETTINGS, Run, RunSpec

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
TARGET = 1.89
GOAL_S = 60.0

NANOGPT = TrainSettings(
    max_steps=2000,
    batch_size=12,
    learning_rate=1e-3,
    min_lr_ratio=0.1,
    warmup_steps=100,
    eval_interval=250,
    weight_decay=0.1,
    seed=0,
)


def one_run(text: str, settings: TrainSettings, seed: int) -> dict:
    spec = RunSpec(
        family="gpt",
        tokenizer="char",
        preset="char",
        settings=TrainSettings(**{**settings.__dict__, "seed": seed}),
        target_val_loss=TARGET,
    )
    run = Run(spec, text)
    start = time.perf_counter()
    run.train(log_interval=50)
    wall = time.perf_counter() - start
    summary = run.summary()
    return {**summary, "wall_s": wall}


def report(name: str, results: list[dict]) -> None:
    times = [r["time_to_target_s"] for r in results]
    reached = [t for t in times if t is not None]
    rates = [r["tokens_per_s"] for r in results]
    print(f"\n{name}: {len(results)} runs")
    for r in results:
        t = r["time_to_target_s"]
        print(
            f"  steps {r['steps']:5d}  val {r['final_val_loss']:.3f}  "
            f"time to {TARGET}: {'not reached' if t is None else f'{t:6.1f} s'}  "
            f"tokens/s {r['tokens_per_s']:8.0f}"
        )
    if reached:
        median = statistics.median(reached)
        print(
            f"  median time to {TARGET}: {median:.1f} s "
            f"({len(reached)}/{len(results)} reached; goal {GOAL_S:.0f} s, "
            f"ratio {median / GOAL_S:.2f})"
        )
    print(f"  median tokens/s: {statistics.median(rates):.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reference", action="store_true", help="also run nanoGPT's recipe")
    args = parser.parse_args()
    if not args.corpus.is_file():
        print(f"corpus not found: {args.corpus} (pass --corpus PATH)", file=sys.stderr)
        return 2
    text = args.corpus.read_text(encoding="utf-8")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {len(text):,} characters")
    ours = [one_run(text, CHAR_SETTINGS, seed) for seed in range(args.runs)]
    report("char preset, default settings", ours)
    if args.reference:
        report("nanoGPT recipe", [one_run(text, NANOGPT, seed) for seed in range(args.runs)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
