"""Time to a validation loss, side by side: nanoGPT's CPU recipe against `tinyformers train`.

    python bench/train_speed.py [--corpus PATH[=TARGET]]... [--runs N]

For every corpus (default: ../shared/data/tinyshakespeare.txt at 1.89) and every run, the
reference (nanoGPT's CPU recipe for shakespeare-char: 4 layers, 4 heads, width 128, context
64, batch 12, lr 1e-3, 2000 iterations, through ../shared/reference/nanogpt_time.py) and ours
(`tinyformers train --tokenizer char --preset char --target-val-loss TARGET`, the defaults)
run one right after the other on the same corpus, and the ratio ours / nanoGPT is printed;
then the medians over the runs. Timings on a shared machine swing from minute to minute, so
only the ratio of a pair measured together means much; the load average is printed with it.

Both times run from launching the trainer's process (Python, torch, reading the corpus,
tokenizer, model: everything) to the moment it reports the target reached: for nanoGPT its
evaluation line (20 random batches), for ours the final summary, which comes after an
evaluation of the *whole* validation split confirmed the target.

Without ``=TARGET`` the target is the reference's own validation loss at its 1,750th
iteration, read from one extra reference run (printed as "calibration").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_CORPUS = f"{SHARED / 'data' / 'tinyshakespeare.txt'}=1.89"
NANOGPT = SHARED / "reference" / "nanogpt_time.py"
CALIBRATION_ITER = 1750
GOAL = 0.5  # ours / nanoGPT


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def time_nanogpt(corpus: Path, target: float) -> dict:
    """nanoGPT's recipe through the reference script: its JSON line."""
    out = subprocess.run(
        [sys.executable, str(NANOGPT), str(corpus), str(target)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_ours(corpus: Path, target: float, seed: int, extra: list[str]) -> dict:
    """`tinyformers train` with its defaults: seconds from launch to its final summary."""
    cmd = [
        sys.executable,
        "-m",
        "tinyformers.cli",
        "train",
        "--corpus",
        str(corpus),
        "--tokenizer",
        "char",
        "--preset",
        "char",
        "--target-val-loss",
        str(target),
        "--seed",
        str(seed),
        *extra,
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    summary, wall, evaluations = None, None, 0
    for line in proc.stdout:
        record = json.loads(line)
        if record.get("summary"):
            summary, wall = record, time.perf_counter() - start
        elif record.get("val_loss") is not None:
            evaluations += 1
    if proc.wait() or summary is None:
        raise SystemExit(f"tinyformers train failed with exit code {proc.returncode}")
    reached = summary["time_to_target_s"] is not None
    return {
        "time_to_target_s": wall if reached else None,
        "cli_time_to_target_s": summary["time_to_target_s"],
        "steps": summary["steps"],
        "final_val_loss": summary["final_val_loss"],
        "whole_split_evaluations": evaluations,
    }


def calibrate(corpus: Path) -> float:
    """The reference's validation loss at its 1,750th iteration, rounded up to 0.01."""
    result = time_nanogpt(corpus, 0.0)
    losses = {it: loss for it, loss, _ in result["val_curve"]}
    print(f"  calibration: nanoGPT's validation curve {result['val_curve']}")
    return math.ceil(losses[CALIBRATION_ITER] * 100) / 100


def seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:6.1f} s"


def bench_corpus(corpus: Path, target: float | None, runs: int, extra: list[str]) -> dict:
    print(f"\n{corpus} ({corpus.stat().st_size:,} bytes)", flush=True)
    if target is None:
        target = calibrate(corpus)
    print(f"  target validation loss {target}", flush=True)
    ratios, theirs, ours = [], [], []
    for run in range(runs):
        before = load()
        ref = time_nanogpt(corpus, target)
        mine = time_ours(corpus, target, seed=run, extra=extra)
        t_ref, t_ours = ref["time_to_target_s"], mine["time_to_target_s"]
        ratio = t_ours / t_ref if t_ref and t_ours else None
        theirs.append(t_ref)
        ours.append(t_ours)
        if ratio is not None:
            ratios.append(ratio)
        print(
            f"  run {run + 1}: nanoGPT {seconds(t_ref)} (iteration {ref['iters_to_target']})  "
            f"ours {seconds(t_ours)} (step {mine['steps']}, whole-split val "
            f"{mine['final_val_loss']:.4f}, {mine['whole_split_evaluations']} whole-split "
            f"evaluations; its own clock {seconds(mine['cli_time_to_target_s']).strip()})  "
            f"ratio {'–' if ratio is None else f'{ratio:.2f}'}  [{before}; {load()}]",
            flush=True,
        )
    result = {
        "corpus": str(corpus),
        "target": target,
        "nanogpt_s": theirs,
        "ours_s": ours,
        "ratios": ratios,
        "median_ratio": statistics.median(ratios) if len(ratios) == runs else None,
    }
    median = result["median_ratio"]
    print(
        f"  median ratio ours / nanoGPT: {'– (a run missed the target)' if median is None else f'{median:.2f}'}"
        f" (goal ≤ {GOAL}); median times nanoGPT "
        f"{statistics.median([t for t in theirs if t] or [math.nan]):.1f} s, ours "
        f"{statistics.median([t for t in ours if t] or [math.nan]):.1f} s",
        flush=True,
    )
    return result


def parse_corpus(value: str) -> tuple[Path, float | None]:
    path, _, target = value.partition("=")
    return Path(path), float(target) if target else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        action="append",
        help="PATH or PATH=TARGET (repeatable; default: tinyshakespeare=1.89)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--ours", nargs=argparse.REMAINDER, default=[], help="extra `tinyformers train` options"
    )
    args = parser.parse_args()
    if not NANOGPT.is_file():
        print(f"the reference is not there: {NANOGPT}", file=sys.stderr)
        return 2
    corpora = [parse_corpus(c) for c in (args.corpus or [DEFAULT_CORPUS])]
    for path, _ in corpora:
        if not path.is_file():
            print(f"corpus not found: {path}", file=sys.stderr)
            return 2
    import torch

    print(f"torch {torch.__version__}, {os.cpu_count()} cores, {load()}")
    results = [bench_corpus(path, target, args.runs, args.ours) for path, target in corpora]
    print("\n" + json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
