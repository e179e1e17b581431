#!/usr/bin/env python
"""Make the COCO open-vocabulary jsons (48 base / 17 novel) from the official COCO 2017 files.

    python datasets/prepare_coco_ov.py [--coco-root datasets/coco]

reads   <coco-root>/annotations/instances_{train,val}2017.json and writes
  instances_train2017_ov_base.json  the 48 base categories and their annotations only; every
                                    image stays (novel objects remain, unannotated); the 17 novel
                                    categories are listed under "novel_categories"
  instances_val2017_ov_all.json     the 65 categories (48 base + 17 novel) for generalized
                                    evaluation
Each kept category gains "split": "base" | "novel".
"""

from __future__ import annotations

import argparse
import os

from ovvision.data.datasets import COCO_OV_BASE_CLASSES, COCO_OV_NOVEL_CLASSES, make_ov_split_json
from ovvision.data.datasets.builtin import default_data_root
from ovvision.data.datasets.json_io import read_json, write_json

OUTPUTS = (
    ("instances_train2017.json", "instances_train2017_ov_base.json", "base"),
    ("instances_val2017.json", "instances_val2017_ov_all.json", "all"),
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--coco-root",
        default=os.path.join(default_data_root(), "coco"),
        help="folder holding annotations/ (default: $OVVISION_DATASETS/coco)",
    )
    args = parser.parse_args(argv)
    folder = os.path.join(args.coco_root, "annotations")
    for source, target, keep in OUTPUTS:
        data = read_json(os.path.join(folder, source))
        out = make_ov_split_json(data, COCO_OV_BASE_CLASSES, COCO_OV_NOVEL_CLASSES, keep)
        write_json(os.path.join(folder, target), out)
        print(
            f"{target}: {len(out['images'])} images, {len(out['categories'])} categories, "
            f"{len(out['annotations'])} of {len(data['annotations'])} annotations kept"
        )


if __name__ == "__main__":
    main()
