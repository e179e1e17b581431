#!/usr/bin/env python
"""Label a collection of images with a trained detector and your class names: a COCO dataset.

    python tools/autolabel.py --config-file configs/ov_shapes/ovrcnn_clip_rn_frozen.yaml \\
        --weights output/quickstart/ovrcnn/model_final.pth --input photos/ "more/*.png" list.txt \\
        --vocabulary "star,heart,moon|crescent" --output output/labels [--ray]

--input takes folders (image files below them), globs, .txt files of paths or URLs, and single
images; each may be a local path or an fsspec URL (s3://bucket/photos/). Writes into --output:
  shards/          the labelled images, JSON-lines (or --format parquet) files; a re-run labels
                   only the images they do not hold yet, so a killed run resumes by running again
  job.json         the settings of the labels; a re-run with other settings is refused
  instances.json   the merged COCO dataset (the final step): images (file_name relative to
                   info.image_root), categories from the vocabulary, annotations with boxes, RLE
                   masks, areas and scores
  classes.txt      the vocabulary, one name|synonyms per line (VOCABULARY.CUSTOM for training)
  skipped.txt      one "image<TAB>reason" line per image that could not be labelled
The command to train a detector on the labels is printed at the end.

--ray runs on Ray Data: Ray tasks read and decode the images, --ray-actors actors each load the
model once and label batches (--ray-gpus-per-actor on GPU clusters). Without --ray-address a local
Ray instance is started (dashboard and usage statistics off). Needs `pip install ovvision[ray]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from typing import NoReturn

from ovvision.autolabel import (
    ANNOTATIONS_FILE,
    CLASSES_FILE,
    FORMATS,
    JobMismatchError,
    Labeller,
    LabelSettings,
    list_images,
    merge_shards,
    open_job,
    pending_keys,
    run_local,
    run_ray,
)
from ovvision.engine.config_paths import absolute_config_paths, require_file
from ovvision.engine.defaults import USER_ERRORS, exit_with_error, load_tool_config, run_tool
from ovvision.structures import ClassList
from ovvision.utils.logger import setup_logger

logger = logging.getLogger("ovvision.autolabel")
PROG = "autolabel.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True, metavar="FILE")
    p.add_argument("--weights", required=True, help="detector checkpoint (.pth)")
    p.add_argument("--input", nargs="+", required=True, help="folders, globs, .txt lists, images")
    p.add_argument("--vocabulary", required=True, help='"cat,dog|puppy,teapot" or a .txt file')
    p.add_argument("--output", required=True, help="output folder (see above)")
    p.add_argument("--score-threshold", type=float, default=0.5, help="lowest score labelled")
    p.add_argument("--max-per-class", type=int, default=0, help="per image and class (0: all)")
    p.add_argument("--max-per-image", type=int, default=0, help="per image (0: all)")
    p.add_argument("--format", choices=sorted(FORMATS), default="jsonl", help="shard format")
    p.add_argument("--shard-size", type=int, default=64, help="images per shard without --ray")
    p.add_argument("--retry-skipped", action="store_true", help="relabel skipped images too")
    p.add_argument("--merge-only", action="store_true", help="only merge the existing shards")
    p.add_argument("--num-threads", type=int, default=0, help="torch threads per process")
    p.add_argument("--ray", action="store_true", help="run on Ray Data (local unless an address)")
    p.add_argument("--ray-address", default="", help="an existing Ray cluster (implies --ray)")
    p.add_argument("--ray-actors", type=int, default=2, help="model actors")
    p.add_argument("--ray-batch-size", type=int, default=8, help="images per actor call")
    p.add_argument("--ray-cpus-per-actor", type=float, default=0.75)
    p.add_argument("--ray-gpus-per-actor", type=float, default=0.0)
    p.add_argument("--ray-cpus-per-read", type=float, default=0.25, help="per read or write task")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE overrides")
    args = p.parse_args(argv)
    for name in ("shard_size", "ray_actors", "ray_batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("max_per_class", "max_per_image", "num_threads"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be 0 or more")
    return args


def _fail(message: str) -> NoReturn:
    exit_with_error(message, PROG)


def build_settings(args: argparse.Namespace) -> LabelSettings:
    """The job's settings from the command line, with every path absolute."""
    try:
        classes = ClassList.parse(args.vocabulary)
    except (ValueError, OSError) as e:
        _fail(f"--vocabulary: {e}")
    require_file(args.weights, "--weights")
    cfg = absolute_config_paths(load_tool_config(args.config_file, args.opts))
    return LabelSettings(
        config=cfg,
        weights=os.path.abspath(args.weights),
        classes=classes,
        score_threshold=args.score_threshold,
        max_per_class=args.max_per_class,
        max_per_image=args.max_per_image,
        num_threads=args.num_threads,
    )


def _check_model(settings: LabelSettings) -> None:
    """Load the model once here, on the CPU, so a bad checkpoint or vocabulary fails in one line
    before Ray starts actors that would fail the same way."""
    cfg = settings.config.clone()
    cfg.defrost()
    cfg.MODEL.DEVICE = "cpu"
    Labeller(dataclasses.replace(settings, config=cfg))


def label(args: argparse.Namespace, settings: LabelSettings, shard_dir: str) -> None:
    keys = list_images(args.input)
    if not keys:
        _fail(f"--input {' '.join(args.input)} names no image")
    todo = pending_keys(keys, shard_dir, args.retry_skipped)
    logger.info("%d images, %d already in %s, %d to label", len(keys), len(keys) - len(todo),
                shard_dir, len(todo))  # fmt: skip
    if not todo:
        return
    if not (args.ray or args.ray_address):
        run_local(settings, todo, shard_dir, args.format, args.shard_size)
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network calls from Ray
    import ray

    _check_model(settings)
    started = not ray.is_initialized()
    if started:
        ray.init(address=args.ray_address or None, include_dashboard=False)
    try:
        run_ray(
            settings, todo, shard_dir, args.format, num_actors=args.ray_actors,
            batch_size=args.ray_batch_size, cpus_per_actor=args.ray_cpus_per_actor,
            gpus_per_actor=args.ray_gpus_per_actor, cpus_per_read=args.ray_cpus_per_read,
        )  # fmt: skip
    finally:
        if started:
            ray.shutdown()


def train_hint(output: str, image_root: str) -> str:
    """The train_net.py overrides that train on the merged dataset (list values in double
    quotes, as a shell needs them)."""
    entry = (
        f"name=autolabel_train,json={os.path.join(output, ANNOTATIONS_FILE)},images={image_root}"
    )
    return (
        f"DATASETS.REGISTER \"('{entry}',)\" DATASETS.TRAIN \"('autolabel_train',)\" "
        f'DATASETS.TEST "()" VOCABULARY.NAME custom '
        f"VOCABULARY.CUSTOM {os.path.join(output, CLASSES_FILE)}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logger(None)
    settings = build_settings(args)
    try:
        shard_dir = open_job(args.output, settings)
    except JobMismatchError as e:
        _fail(str(e))
    if not args.merge_only:
        try:
            label(args, settings, shard_dir)
        except USER_ERRORS:
            raise
        except (KeyError, RuntimeError) as e:
            _fail(f"weights {args.weights} do not match config {args.config_file}: {e}")
    counts = merge_shards(shard_dir, args.output, settings.classes)
    logger.info(
        "%s: %d images, %d annotations; %d skipped (skipped.txt)",
        os.path.join(args.output, ANNOTATIONS_FILE),
        counts["images"],
        counts["annotations"],
        counts["skipped"],
    )
    if counts["images"] == 0:
        _fail(f"no image could be labelled; the reasons are in {args.output}/skipped.txt")
    if not counts["image_root"]:
        logger.info("The images are URLs: copy them to a folder to train on them")
        return 0
    logger.info(
        "Train on it: python tools/train_net.py --config-file CONFIG %s",
        train_hint(os.path.abspath(args.output), counts["image_root"]),
    )
    return 0


if __name__ == "__main__":
    run_tool(main, prog=PROG)
