#!/usr/bin/env python
"""Generate the OV-Shapes benchmark.

Example::

    python tools/make_ov_shapes.py --output datasets/ov_shapes --seed 0
"""

from __future__ import annotations

import argparse
import time

from ovvision.data.datasets.ov_shapes import (
    DEFAULT_NOVEL_CLASSES,
    SHAPE_CLASSES,
    generate_ov_shapes,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--output", default="datasets/ov_shapes", help="destination folder")
    parser.add_argument("--seed", type=int, default=0, help="same seed -> byte-identical files")
    parser.add_argument("--num-train", type=int, default=4000, help="training images")
    parser.add_argument("--num-val", type=int, default=500, help="validation images")
    parser.add_argument("--image-size", type=int, default=128, help="side of the square images")
    parser.add_argument(
        "--max-objects", type=int, default=8, help="1 to this many objects per image"
    )
    parser.add_argument(
        "--novel",
        default=",".join(DEFAULT_NOVEL_CLASSES),
        help=f"comma-separated novel classes, from: {', '.join(SHAPE_CLASSES)}",
    )
    parser.add_argument("--workers", type=int, default=None, help="processes (default: up to 2)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    novel = [name.strip() for name in args.novel.split(",") if name.strip()]
    files = generate_ov_shapes(
        args.output,
        seed=args.seed,
        num_train=args.num_train,
        num_val=args.num_val,
        image_size=args.image_size,
        max_objects=args.max_objects,
        novel_classes=novel,
        workers=args.workers,
        progress=not args.no_progress,
    )
    print(
        f"Wrote {len(files)} json files and the images under {args.output} "
        f"in {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
