#!/usr/bin/env python
"""Make the LVIS v1 open-vocabulary training json (novel = rare) from the official file.

    python datasets/prepare_lvis_ov.py [--lvis-root datasets/lvis]

reads <lvis-root>/lvis_v1_train.json and writes <lvis-root>/lvis_v1_train_base.json: the common
and frequent categories ("split": "base") with their annotations; the rare categories, their
annotations and their ids in neg_category_ids / not_exhaustive_category_ids are removed, and the
rare categories are listed under "novel_categories". Evaluation uses the official
lvis_v1_val.json unchanged (novel = its rare categories).
"""

from __future__ import annotations

import argparse
import os

from ovvision.data.datasets import make_lvis_base_json
from ovvision.data.datasets.builtin import default_data_root
from ovvision.data.datasets.json_io import read_json, write_json


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--lvis-root",
        default=os.path.join(default_data_root(), "lvis"),
        help="folder holding lvis_v1_train.json (default: $OVVISION_DATASETS/lvis)",
    )
    args = parser.parse_args(argv)
    data = read_json(os.path.join(args.lvis_root, "lvis_v1_train.json"))
    out = make_lvis_base_json(data)
    write_json(os.path.join(args.lvis_root, "lvis_v1_train_base.json"), out)
    print(
        f"lvis_v1_train_base.json: {len(out['categories'])} base categories, "
        f"{len(out['novel_categories'])} rare held out, "
        f"{len(out['annotations'])} of {len(data['annotations'])} annotations kept"
    )


if __name__ == "__main__":
    main()
