"""Labelling jobs: one output folder, resumable, run in one process or on Ray Data.

An output folder holds ``job.json`` (the settings it was labelled with), ``shards/`` (the
labelled images, see :mod:`~ovvision.autolabel.shards`) and, after the merge, the COCO dataset.
A run labels only the images no shard holds yet, so a killed run is resumed by running it again.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from typing import Any

import numpy as np

from ovvision.utils.file_io import atomic_write

from .inputs import load_image
from .labeller import Labeller, LabelSettings
from .shards import FORMATS, labelled_keys, read_shards, write_shard

logger = logging.getLogger(__name__)

__all__ = [
    "JOB_FILE",
    "SHARDS_DIR",
    "JobMismatchError",
    "open_job",
    "pending_keys",
    "run_local",
    "run_ray",
]

JOB_FILE = "job.json"
SHARDS_DIR = "shards"


class JobMismatchError(ValueError):
    """An output folder was labelled with other settings than this run's."""


def open_job(output_dir: str, settings: LabelSettings) -> str:
    """Create ``output_dir`` (or check that its ``job.json`` matches ``settings``); returns its
    shard folder.

    Raises:
        JobMismatchError: the folder holds labels made with other settings; the message names
            the first setting that differs.
    """
    shard_dir = os.path.join(output_dir, SHARDS_DIR)
    os.makedirs(shard_dir, exist_ok=True)
    path = os.path.join(output_dir, JOB_FILE)
    wanted = settings.fingerprint()
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            found = json.load(f)
        for key, value in wanted.items():
            if found.get(key) != value:
                raise JobMismatchError(
                    f"{path}: the folder was labelled with {key}={found.get(key)!r}, this run "
                    f"asks {key}={value!r}; use another --output, or the same settings to resume"
                )
    else:
        text = json.dumps(wanted, indent=1, sort_keys=True)
        atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return shard_dir


def pending_keys(keys: list[str], shard_dir: str, retry_skipped: bool = False) -> list[str]:
    """The keys no shard of ``shard_dir`` holds yet (with ``retry_skipped``, skipped ones too)."""
    done = labelled_keys(read_shards(shard_dir), retry_skipped)
    return [k for k in keys if k not in done]


def _shard_name(stamp: str, runner: str, run_id: str, index: int, suffix: str) -> str:
    """A shard's file name: names sort by the run's start ``stamp``, so shards read back in the
    order runs wrote them."""
    return f"{stamp}-{runner}-{run_id}-{index:06d}{suffix}"


def run_local(
    settings: LabelSettings,
    keys: list[str],
    shard_dir: str,
    fmt: str = "jsonl",
    shard_size: int = 64,
) -> int:
    """Label ``keys`` in this process, writing a shard after every ``shard_size`` images.

    Returns:
        The number of rows written (labelled and skipped images).
    """
    if not keys:
        return 0
    labeller = Labeller(settings)
    stamp, run_id = time.strftime("%Y%m%dT%H%M%S"), uuid.uuid4().hex
    written = 0
    for index, start in enumerate(range(0, len(keys), shard_size)):
        rows = [labeller.label_key(key) for key in keys[start : start + shard_size]]
        name = _shard_name(stamp, "local", run_id, index, FORMATS[fmt])
        write_shard(rows, os.path.join(shard_dir, name))
        written += len(rows)
        logger.info("Labelled %d of %d images", written, len(keys))
    return written


def decode_row(row: dict[str, Any], max_pixels: int | None) -> dict[str, Any]:
    """A Ray task's work: the decoded image of ``row["key"]``, or why it could not be read."""
    from ovvision.data import ImageReadError

    key = row["key"]
    try:
        return {"key": key, "image": load_image(key, max_pixels), "error": ""}
    except ImageReadError as e:
        return {"key": key, "image": np.zeros((0, 0, 3), dtype=np.uint8), "error": str(e)}


def run_ray(
    settings: LabelSettings,
    keys: list[str],
    shard_dir: str,
    fmt: str = "jsonl",
    num_actors: int = 2,
    batch_size: int = 8,
    cpus_per_actor: float = 0.75,
    gpus_per_actor: float = 0.0,
    cpus_per_read: float = 0.25,
) -> int:
    """Label ``keys`` on the running Ray instance (``ray.init`` first; the local one if none).

    Ray tasks (``cpus_per_read`` CPUs each) read and decode the images and write the shards
    (files of ``fmt``); a pool of ``num_actors`` actors (``cpus_per_actor`` CPUs and
    ``gpus_per_actor`` GPUs each), each with one :class:`Labeller` (so one model), labels them in
    batches of ``batch_size``. Ray Data restarts a dead actor and retries its batches, so a
    worker lost mid-run costs time, not images.

    Returns:
        The number of images sent (labelled and skipped).
    """
    import ray
    from ray.data.datasource import FilenameProvider

    if not keys:
        return 0
    if not ray.is_initialized():
        ray.init(include_dashboard=False)
    max_pixels = settings.config.INPUT.MAX_IMAGE_PIXELS
    items = [{"key": k} for k in keys]
    dataset = ray.data.from_items(items, override_num_blocks=max(1, -(-len(keys) // batch_size)))
    # Other resources than the actors' keep the reading tasks a stage of their own (Ray fuses
    # stages with equal resources into the actors).
    dataset = dataset.map(decode_row, fn_kwargs={"max_pixels": max_pixels}, num_cpus=cpus_per_read)
    dataset = dataset.map_batches(
        Labeller,
        fn_constructor_kwargs={"settings": settings},
        batch_size=batch_size,
        zero_copy_batch=False,  # the model gets writable arrays
        concurrency=num_actors,
        num_cpus=cpus_per_actor,
        num_gpus=gpus_per_actor,
    )
    stamp = time.strftime("%Y%m%dT%H%M%S")

    class ShardNames(FilenameProvider):
        # Ray's writers want the write's id in each name (a retried task rewrites its own file)
        def get_filename_for_task(self, write_uuid: str, task_index: int) -> str:
            return _shard_name(stamp, "ray", write_uuid, task_index, FORMATS[fmt])

    # Writers as light as readers: with a whole CPU each they would wait for the actors to
    # finish, and a driver killed before then would leave no shard to resume from.
    write = dataset.write_parquet if fmt == "parquet" else dataset.write_json
    write(shard_dir, filename_provider=ShardNames(), ray_remote_args={"num_cpus": cpus_per_read})
    return len(keys)
