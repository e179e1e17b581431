"""Data loaders: dataset names → dataset dicts → mapped, batched model inputs."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import pickle
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, get_worker_info

from ..utils import comm
from .catalog import DatasetCatalog, MetadataCatalog
from .mapper import DatasetMapper
from .open_vocab import drop_novel_annotations
from .samplers import InferenceSampler, RepeatFactorTrainingSampler, TrainingSampler

logger = logging.getLogger(__name__)

__all__ = [
    "UnreadableImage",
    "build_detection_test_loader",
    "build_detection_train_loader",
    "get_detection_dataset_dicts",
]

Mapper = Callable[[dict[str, Any]], dict[str, Any] | None]


def get_detection_dataset_dicts(
    names: str | Sequence[str], filter_empty: bool = True, drop_novel: bool = False
) -> list[dict[str, Any]]:
    """The dicts of one or more registered datasets, concatenated.

    Args:
        names: dataset name(s). Several names must share ``thing_classes`` (their category ids
            would otherwise mean different classes).
        filter_empty: drop images without a non-crowd annotation (only for datasets whose dicts
            have ``annotations``); the count is logged.
        drop_novel: drop the annotations of each dataset's ``novel_classes`` first (training).

    Raises:
        ValueError: no names, an empty dataset, or names with different ``thing_classes``.
    """
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise ValueError("No dataset names given (DATASETS.TRAIN / DATASETS.TEST is empty)")
    _check_same_classes(names)
    dicts = []
    for name in names:
        part = DatasetCatalog.get(name)
        if not part:
            raise ValueError(f"Dataset '{name}' is empty")
        dicts.extend(drop_novel_annotations(part, name) if drop_novel else part)
    if filter_empty and "annotations" in dicts[0]:
        before = len(dicts)
        dicts = [d for d in dicts if any(not a.get("iscrowd", 0) for a in d["annotations"])]
        if len(dicts) < before:
            logger.warning(
                "Removed %d of %d images of %s with no usable annotations",
                before - len(dicts),
                before,
                names,
            )
        if not dicts:
            raise ValueError(f"Datasets {names} have no image with a usable annotation")
    return dicts


def _check_same_classes(names: list[str]) -> None:
    classes = {name: MetadataCatalog.get(name).get("thing_classes") for name in names}
    distinct = {tuple(c) for c in classes.values() if c is not None}
    if len(distinct) > 1:
        raise ValueError(f"Datasets {names} have different thing_classes; they cannot be mixed")


class _SerializedList(Sequence):
    """A list of dicts stored as one pickled byte buffer.

    DataLoader workers then share a few numpy arrays instead of touching (and so copying) the
    reference counts of millions of Python objects.
    """

    def __init__(self, items: Sequence[Any]):
        blobs = [
            np.frombuffer(pickle.dumps(x, protocol=pickle.HIGHEST_PROTOCOL), np.uint8)
            for x in items
        ]
        self._ends = np.cumsum([len(b) for b in blobs], dtype=np.int64)
        self._buffer = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, index: int) -> Any:
        start = int(self._ends[index - 1]) if index > 0 else 0
        return pickle.loads(self._buffer[start : int(self._ends[index])].tobytes())


class _MappedBatches(IterableDataset):
    """Endless batches: each worker maps its share of the sampler's stream and groups images.

    With ``group_by_aspect``, landscape and portrait images go to separate batches (less
    padding); an image the mapper cannot read (``None``) is skipped.
    """

    def __init__(
        self,
        dataset: Sequence[dict],
        mapper: Mapper,
        sampler: Sampler[int],
        batch_size: int,
        group_by_aspect: bool,
    ):
        self.dataset, self.mapper, self.sampler = dataset, mapper, sampler
        self.batch_size, self.group_by_aspect = batch_size, group_by_aspect
        # This many unreadable images in a row means the dataset is unusable, not unlucky.
        self.max_consecutive_failures = 2 * len(dataset) + 10

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        worker = get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker else (0, 1)
        buckets: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        failures = 0
        for index in itertools.islice(iter(self.sampler), worker_id, None, num_workers):
            mapped = self.mapper(self.dataset[index])
            if mapped is None:
                failures += 1
                if failures >= self.max_consecutive_failures:
                    raise RuntimeError(f"{failures} unreadable images in a row; check the dataset")
                continue
            failures = 0
            height, width = mapped["image"].shape[-2:]
            bucket = buckets[self.group_by_aspect and width < height]
            bucket.append(mapped)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                bucket.clear()


@dataclasses.dataclass(frozen=True)
class UnreadableImage:
    """An image of an inference dataset that could not be read (the mapper logged why).

    It stays part of the dataset: :func:`~ovvision.evaluation.inference_on_dataset` hands it to
    the evaluator, which counts its ground truth as missed.
    """

    image_id: Any
    file_name: str
    height: int | None = None
    width: int | None = None

    def as_input(self) -> dict[str, Any]:
        """A mapper-like dict without pixels: ``image_id``, ``file_name``, and the size if known."""
        out = {"image_id": self.image_id, "file_name": self.file_name}
        if self.height is not None and self.width is not None:
            out.update(height=self.height, width=self.width)
        return out


class _MappedList(Dataset):
    def __init__(self, dataset: Sequence[dict], mapper: Mapper):
        self.dataset, self.mapper = dataset, mapper

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any] | UnreadableImage:
        record = self.dataset[index]
        mapped = self.mapper(record)
        if mapped is None:
            return UnreadableImage(
                record.get("image_id"),
                record["file_name"],
                record.get("height"),
                record.get("width"),
            )
        return mapped


class _InferenceBatches:
    """Batches of one readable image. Unreadable images are not yielded: they are collected in
    :attr:`unreadable` (this pass's, in dataset order), for the evaluator to score as missed."""

    def __init__(self, loader: DataLoader):
        self.loader = loader
        self.dataset = loader.dataset
        self.unreadable: list[UnreadableImage] = []

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        self.unreadable = []
        for batch in self.loader:
            readable = [d for d in batch if not isinstance(d, UnreadableImage)]
            self.unreadable.extend(d for d in batch if isinstance(d, UnreadableImage))
            if readable:
                yield readable


def _identity(batch: Any) -> Any:
    return batch


def _seed_worker(worker_id: int) -> None:
    """Seed Python's and numpy's generators from the worker's torch seed (set by DataLoader)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def build_train_sampler(cfg: Any, dataset: Sequence[dict[str, Any]]) -> TrainingSampler:
    """``cfg.DATALOADER.SAMPLER_TRAIN`` for ``dataset``, seeded by ``cfg.SEED`` (random if < 0)."""
    seed = cfg.SEED if cfg.SEED >= 0 else None
    name = cfg.DATALOADER.SAMPLER_TRAIN
    if name == "TrainingSampler":
        return TrainingSampler(len(dataset), seed=seed)
    if name == "RepeatFactorTrainingSampler":
        factors = RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(
            dataset, cfg.DATALOADER.REPEAT_THRESHOLD
        )
        return RepeatFactorTrainingSampler(factors, seed=seed)
    raise ValueError(
        f"DATALOADER.SAMPLER_TRAIN must be 'TrainingSampler' or 'RepeatFactorTrainingSampler', "
        f"got {name!r}"
    )


def build_detection_train_loader(
    cfg: Any,
    mapper: Mapper | None = None,
    *,
    dataset: Sequence[dict[str, Any]] | None = None,
    sampler: Sampler[int] | None = None,
) -> DataLoader:
    """An endless loader of training batches: lists of ``SOLVER.IMS_PER_BATCH // world_size``
    mapped dicts.

    Args:
        cfg: reads ``DATASETS.TRAIN``, ``DATALOADER.*``, ``SOLVER.IMS_PER_BATCH``, ``SEED`` (and
            ``INPUT.*`` through the default mapper).
        mapper: dataset dict → model input (default: ``DatasetMapper(cfg, is_train=True)``).
        dataset: dataset dicts to use instead of ``DATASETS.TRAIN``.
        sampler: index stream (default: from ``DATALOADER.SAMPLER_TRAIN``).

    Raises:
        ValueError: ``SOLVER.IMS_PER_BATCH`` is not a multiple of the world size.
    """
    world_size = comm.get_world_size()
    total = cfg.SOLVER.IMS_PER_BATCH
    if total <= 0 or total % world_size:
        raise ValueError(
            f"SOLVER.IMS_PER_BATCH={total} must be a positive multiple of the number of "
            f"processes ({world_size})"
        )
    if dataset is None:
        dataset = get_detection_dataset_dicts(
            cfg.DATASETS.TRAIN,
            filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
            drop_novel=True,
        )
    sampler = build_train_sampler(cfg, dataset) if sampler is None else sampler
    batches = _MappedBatches(
        _SerializedList(dataset),
        DatasetMapper(cfg, is_train=True) if mapper is None else mapper,
        sampler,
        total // world_size,
        cfg.DATALOADER.ASPECT_RATIO_GROUPING,
    )
    generator = torch.Generator().manual_seed(cfg.SEED + comm.get_rank()) if cfg.SEED >= 0 else None
    return DataLoader(
        batches,
        batch_size=None,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        collate_fn=_identity,
        worker_init_fn=_seed_worker,
        generator=generator,
    )


def build_detection_test_loader(
    cfg: Any, dataset_name: str | Sequence[str], mapper: Mapper | None = None
) -> _InferenceBatches:
    """A loader of batches of one mapped dict over this rank's shard of the dataset(s).

    Every image goes to exactly one rank (no padding duplicates). An image the mapper cannot read
    is logged and not yielded, so one bad file does not stop an evaluation; it is listed in the
    loader's ``unreadable`` (:class:`UnreadableImage`), which ``inference_on_dataset`` passes to
    the evaluator so that its ground truth still counts (as missed).

    Args:
        cfg: reads ``DATALOADER.NUM_WORKERS`` (and ``INPUT.*`` through the default mapper).
        dataset_name: registered name(s).
        mapper: default ``DatasetMapper(cfg, is_train=False)``.
    """
    dataset = get_detection_dataset_dicts(dataset_name, filter_empty=False)
    loader = DataLoader(
        _MappedList(
            _SerializedList(dataset),
            DatasetMapper(cfg, is_train=False) if mapper is None else mapper,
        ),
        sampler=InferenceSampler(len(dataset)),
        batch_size=1,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        collate_fn=_identity,
    )
    return _InferenceBatches(loader)
