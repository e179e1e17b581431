"""Index samplers: endless seeded training streams (plain or repeat-factor), inference shards."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Sampler

from ..utils import comm

__all__ = ["InferenceSampler", "RepeatFactorTrainingSampler", "TrainingSampler"]


def _resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    rank = comm.get_rank() if rank is None else rank
    world_size = comm.get_world_size() if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
    return rank, world_size


class TrainingSampler(Sampler[int]):
    """An endless stream of dataset indices, shuffled epoch by epoch, sharded across ranks.

    All ranks draw the same stream from the same seed and rank ``r`` keeps the elements at
    positions ``r, r + world_size, ...``, so every epoch is split evenly between ranks.

    Args:
        size: dataset length.
        shuffle: a new random permutation each epoch (else ``0, 1, ..., size - 1`` repeated).
        seed: the stream's seed; ``None`` draws one on rank 0 and shares it with all ranks.
        rank: this process's rank (default: from ``torch.distributed``).
        world_size: number of processes (default: from ``torch.distributed``).
    """

    def __init__(
        self,
        size: int,
        shuffle: bool = True,
        seed: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        if size <= 0:
            raise ValueError(f"TrainingSampler needs a non-empty dataset, got size={size}")
        self._size = size
        self._shuffle = shuffle
        self._seed = comm.shared_random_seed() if seed is None else int(seed)
        self._rank, self._world_size = _resolve_rank(rank, world_size)

    def __iter__(self) -> Iterator[int]:
        yield from itertools.islice(self._infinite_indices(), self._rank, None, self._world_size)

    def _infinite_indices(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self._seed)
        while True:
            if self._shuffle:
                yield from torch.randperm(self._size, generator=generator).tolist()
            else:
                yield from range(self._size)


class RepeatFactorTrainingSampler(TrainingSampler):
    """Like :class:`TrainingSampler`, but image ``i`` appears about ``repeat_factors[i]`` times
    per epoch (LVIS's repeat-factor sampling, Gupta et al. 2019).

    The fractional part of a factor is resolved anew each epoch by a random draw, so the expected
    count is exact.

    Args:
        repeat_factors: ``Tensor[N]`` float factors (≥ 1 in LVIS's scheme).
        shuffle, seed, rank, world_size: as for :class:`TrainingSampler`.
    """

    def __init__(
        self,
        repeat_factors: torch.Tensor,
        shuffle: bool = True,
        seed: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        super().__init__(len(repeat_factors), shuffle, seed, rank, world_size)
        self._integer = torch.floor(repeat_factors.double())
        self._fraction = repeat_factors.double() - self._integer

    @staticmethod
    def repeat_factors_from_category_frequency(
        dataset_dicts: Sequence[dict[str, Any]], repeat_thresh: float
    ) -> torch.Tensor:
        """``Tensor[N]`` per-image factors ``max over its classes c of max(1, sqrt(t / f(c)))``.

        ``f(c)`` is the fraction of images that contain class ``c`` and ``t`` is
        ``repeat_thresh``; images without annotations get 1.
        """
        images_with = defaultdict(int)
        for d in dataset_dicts:
            for c in {a["category_id"] for a in d.get("annotations", [])}:
                images_with[c] += 1
        n = len(dataset_dicts)
        category_factor = {
            c: max(1.0, math.sqrt(repeat_thresh / (count / n))) for c, count in images_with.items()
        }
        factors = [
            max((category_factor[a["category_id"]] for a in d.get("annotations", [])), default=1.0)
            for d in dataset_dicts
        ]
        return torch.tensor(factors, dtype=torch.float32)

    def _infinite_indices(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self._seed)
        while True:
            draws = torch.rand(len(self._fraction), generator=generator, dtype=torch.float64)
            counts = (self._integer + (draws < self._fraction).double()).long()
            indices = torch.repeat_interleave(torch.arange(len(counts)), counts)
            if self._shuffle:
                indices = indices[torch.randperm(len(indices), generator=generator)]
            yield from indices.tolist()


class InferenceSampler(Sampler[int]):
    """The indices of rank ``r``'s contiguous shard; every index goes to exactly one rank.

    Shard sizes differ by at most one; no index is padded or duplicated, so a distributed
    evaluation scores every image exactly once.

    Args:
        size: dataset length.
        rank, world_size: as for :class:`TrainingSampler`.
    """

    def __init__(self, size: int, rank: int | None = None, world_size: int | None = None):
        rank, world_size = _resolve_rank(rank, world_size)
        per_rank, extra = divmod(size, world_size)
        begin = rank * per_rank + min(rank, extra)
        self._indices = range(begin, begin + per_rank + (1 if rank < extra else 0))

    def __iter__(self) -> Iterator[int]:
        yield from self._indices

    def __len__(self) -> int:
        return len(self._indices)
