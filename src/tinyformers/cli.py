"""The ``tinyformers`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def cmd_export_hf(args: argparse.Namespace) -> int:
    from tinyformers.checkpoint import CheckpointError
    from tinyformers.interop import export_hf

    try:
        out = export_hf(args.model_dir, args.out_dir)
    except (CheckpointError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote a transformers model folder to {out}")
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    from tinyformers import zoo

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
