"""``relight-convert weight.pkl OUT.pt``: port the authors' S3Net checkpoint to relight's."""

from __future__ import annotations

from pathlib import Path

import torch

from relight.cli.errors import Parser, console_script
from relight.files import atomic_write
from relight.models.authors_checkpoint import convert_authors_checkpoint


@console_script("relight-convert")
def main(argv: list[str] | None = None) -> None:
    """``relight-convert weight.pkl s3net_authors.pt``: port the authors' checkpoint."""
    parser = Parser(
        prog="relight-convert",
        description="Convert the authors' S3Net checkpoint (weight.pkl) to relight's S3Net.",
    )
    parser.add_argument("source", type=Path, help="the authors' weight.pkl")
    parser.add_argument("output", type=Path, help="where to write our state dict (.pt)")
    args = parser.parse_args(argv)
    state = convert_authors_checkpoint(args.source)
    payload = {"state_dict": state, "source": str(args.source)}
    atomic_write(args.output, lambda tmp: torch.save(payload, tmp))
    print(f"wrote {len(state)} tensors to {args.output}")


if __name__ == "__main__":
    main()
