"""The ``tinyformers`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def cmd_export_hf(args: argparse.Namespace) -> int:
    from tinyformers.hub.checkpoint import CheckpointError
    from tinyformers.hub.interop import export_hf

    try:
        out = export_hf(args.model_dir, args.out_dir)
    except (CheckpointError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote a transformers model folder to {out}")
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    from tinyformers.training import zoo

    names = args.names or list(zoo.ZOO)
    unknown = [n for n in names if n not in zoo.ZOO]
    if unknown:
        print(
            f"error: unknown model {unknown[0]!r}; choose from {', '.join(zoo.ZOO)}",
            file=sys.stderr,
        )
        return 2
    models_dir = Path(args.models_dir) if args.models_dir else zoo.MODELS_DIR
    failures = []
    for name in names:
        if args.action == "build":
            meta = zoo.build_one(name, models_dir)
            print(
                json.dumps(
                    {
                        "model": name,
                        "train_wall_time_s": meta["train_wall_time_s"],
                        **meta["metrics"],
                    }
                )
            )
        else:
            measured, problems = zoo.check_one(name, models_dir)
            print(json.dumps({"model": name, "ok": not problems, **measured}))
            failures += problems
    for problem in failures:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if failures else 0


def cores_given() -> int:
    """The CPU cores this process may run on (its affinity), else all of the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on every platform
        return max(1, os.cpu_count() or 1)


def cmd_train(args: argparse.Namespace) -> int:
    """Train with ``--threads`` torch threads (every core given by default), then put the
    process's own count back: ``main`` may run inside a longer-lived process."""
    import torch

    if args.threads is not None and args.threads < 1:
        print(f"error: threads must be at least 1, got {args.threads}", file=sys.stderr)
        return 2
    before = torch.get_num_threads()
    torch.set_num_threads(args.threads or cores_given())
    try:
        return _train(args)
    finally:
        torch.set_num_threads(before)


def _train(args: argparse.Namespace) -> int:
    from tinyformers.hub.checkpoint import save_checkpoint
    from tinyformers.text.corpora.user_text import UserTextError, decode_upload
    from tinyformers.training.loop import TrainSettings
    from tinyformers.training.runs import CHAR_SETTINGS, Run, RunSpec

    try:
        path = Path(args.corpus)
        text = decode_upload(path.read_bytes(), path.name, max_chars=args.max_corpus_chars)
        settings = TrainSettings(
            max_steps=args.max_steps,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            warmup_steps=args.warmup_steps,
            eval_interval=args.eval_interval,
            check_interval=args.check_interval,
            check_tokens=CHAR_SETTINGS.check_tokens,
            check_margin=CHAR_SETTINGS.check_margin,
            seed=args.seed,
            max_seconds=args.max_seconds,
        )
        spec = RunSpec(
            family=args.family,
            tokenizer=args.tokenizer,
            vocab_size=args.vocab_size,
            preset=args.preset,
            settings=settings,
            target_val_loss=args.target_val_loss,
        )
        run = Run(spec, text)
    except (OSError, UserTextError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    def report(update) -> bool:
        p = update.progress
        line = {
            "step": p.step,
            "train_loss": round(p.train_loss, 4),
            "val_loss": None if p.val_loss is None else round(p.val_loss, 4),
            "val_estimate": None if p.val_estimate is None else round(p.val_estimate, 4),
            "lr": p.learning_rate,
            "tokens_per_s": round(p.tokens_per_s),
            "elapsed_s": round(p.elapsed_s, 2),
        }
        print(json.dumps(line), flush=True)
        return True

    run.train(report, log_interval=args.log_interval, snapshots=False)
    summary = {"summary": True, **run.summary()}
    if args.out:
        out = save_checkpoint(run.model, args.out, run.tokenizer, metadata=run.summary())
        summary["out"] = str(out)
    print(json.dumps(summary), flush=True)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from tinyformers.serve import serve

    return serve(args.replicas, args.port, args.address, args.nginx, warm_up=args.warm_up)


SERVE_HELP = {
    "help": "serve a class from one machine: web replicas behind Debian's nginx",
    "description": "Starts N `streamlit run app` processes on free local ports and nginx in "
    "front of them (deploy/nginx.conf, deploy/hosting.env); Ctrl-C stops them all.",
}


def serve_arguments(serve: argparse.ArgumentParser) -> argparse.ArgumentParser:
    serve.add_argument("--replicas", type=int, default=2, help="web processes (default: 2)")
    serve.add_argument("--port", type=int, default=8080, help="nginx's port (default: 8080)")
    serve.add_argument("--address", default="0.0.0.0", help="nginx's address (default: all)")
    serve.add_argument("--nginx", default="/usr/sbin/nginx", help="the nginx binary")
    serve.add_argument(
        "--no-warm-up",
        dest="warm_up",
        action="store_false",
        help="let browsers in as soon as the replicas answer, without first opening every page "
        "on each (deploy/warm_up.py)",
    )
    serve.set_defaults(run=cmd_serve)
    return serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinyformers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    export = commands.add_parser(
        "export-hf", help="convert a model folder into one transformers loads with from_pretrained"
    )
    export.add_argument(
        "model_dir", help="a Tinyformers model folder (config.json, model.safetensors)"
    )
    export.add_argument("out_dir", help="where to write the transformers folder")
    export.set_defaults(run=cmd_export_hf)

    zoo = commands.add_parser("zoo", help="build or check the shipped models in models/")
    zoo.add_argument("action", choices=["build", "check"])
    zoo.add_argument("names", nargs="*", help="models to build or check (default: all)")
    zoo.add_argument("--models-dir", help="folder holding the model folders (default: models/)")
    zoo.set_defaults(run=cmd_zoo)

    serve_arguments(commands.add_parser("serve", **SERVE_HELP))

    from tinyformers.model.config import PRESETS
    from tinyformers.training.runs import CHAR_SETTINGS, FAMILIES, TOKENIZERS

    train = commands.add_parser(
        "train",
        help="train a model on a text file; prints one JSON line per log step and a summary",
        description="Defaults are the settings the `char` preset is tuned for.",
    )
    train.add_argument("--corpus", required=True, help="a UTF-8 .txt file")
    train.add_argument("--family", choices=FAMILIES, default="gpt")
    train.add_argument("--tokenizer", choices=TOKENIZERS, default="char")
    train.add_argument("--vocab-size", type=int, help="for bpe and wordpiece")
    train.add_argument("--preset", choices=list(PRESETS), default="char")
    train.add_argument("--target-val-loss", type=float, help="stop when validation reaches it")
    train.add_argument("--max-steps", type=int, default=CHAR_SETTINGS.max_steps)
    train.add_argument("--max-seconds", type=float, help="wall-clock budget")
    train.add_argument("--batch-size", type=int, default=CHAR_SETTINGS.batch_size)
    train.add_argument(
        "--lr", type=float, default=CHAR_SETTINGS.learning_rate, help="peak learning rate"
    )
    train.add_argument("--warmup-steps", type=int, default=CHAR_SETTINGS.warmup_steps)
    train.add_argument(
        "--eval-interval",
        type=int,
        default=CHAR_SETTINGS.eval_interval,
        help="steps between whole-split evaluations (0: only at the end)",
    )
    train.add_argument(
        "--check-interval",
        type=int,
        default=CHAR_SETTINGS.check_interval,
        help="with a target: steps between cheap checks on part of the validation split, "
        "which call a whole-split evaluation when the target is near (0: none)",
    )
    train.add_argument(
        "--threads", type=int, help="torch threads (default: every core this process is given)"
    )
    train.add_argument("--log-interval", type=int, default=50)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--max-corpus-chars", type=int, default=20_000_000)
    train.add_argument("--out", help="save the trained model folder here")
    train.set_defaults(run=cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["serve"]:
        # the parent of the web processes runs as long as they do: it never loads torch, which
        # the train command's options need (about 0.3 GB resident)
        parser = argparse.ArgumentParser(
            prog="tinyformers serve", description=SERVE_HELP["description"]
        )
        args = serve_arguments(parser).parse_args(argv[1:])
    else:
        args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
