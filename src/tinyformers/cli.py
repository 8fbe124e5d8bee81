"""The ``tinyformers`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
