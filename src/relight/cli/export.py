"""``relight-export --checkpoint CKPT --output OUT.onnx``: S3Net to ONNX (:mod:`relight.export`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from relight.checkpoints import ANY_CHECKPOINT_HELP, net_from_any_checkpoint
from relight.cli.errors import Parser, console_script
from relight.export import DEFAULT_OPSET, export_onnx, onnx_max_abs_difference


@console_script("relight-export")
def main(argv: list[str] | None = None) -> None:
    """Entry point of ``relight-export``."""
    parser = Parser(
        prog="relight-export",
        description="Export S3Net to ONNX (dynamic batch, height and width in multiples of 16).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help=ANY_CHECKPOINT_HELP)
    parser.add_argument("--output", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset version")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="run the export in onnxruntime (CPU) at two sizes and compare with PyTorch",
    )
    args = parser.parse_args(argv)
    net, _, kind = net_from_any_checkpoint(args.checkpoint)
    export_onnx(net, args.output, args.opset)
    print(f"wrote {args.output} ({kind} checkpoint {args.checkpoint}, opset {args.opset})")
    if args.verify:
        sizes = [(1, 64, 96), (2, 128, 80)]
        difference = onnx_max_abs_difference(net, args.output, sizes)
        print(f"onnxruntime vs PyTorch at {sizes}: max abs difference {difference:.2e}")
        if difference > 1e-4:
            sys.exit(f"{args.output}: ONNX output differs from PyTorch by {difference:.2e}")


if __name__ == "__main__":
    main()
