"""Training and inference samplers, simulated for several ranks."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
import torch

from ovvision.data import InferenceSampler, RepeatFactorTrainingSampler, TrainingSampler


def _take(sampler, n: int) -> list[int]:
    return list(itertools.islice(iter(sampler), n))


@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 10, 11, 100])
def test_inference_sampler_gives_every_index_to_exactly_one_rank(size):
    shards = [list(InferenceSampler(size, rank=r, world_size=3)) for r in range(3)]
    assert sorted(itertools.chain(*shards)) == list(range(size))
    assert [len(s) for s in shards] == [len(InferenceSampler(size, r, 3)) for r in range(3)]
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert list(itertools.chain(*shards)) == list(range(size))  # contiguous, in order


def test_inference_sampler_rejects_bad_rank():
    with pytest.raises(ValueError, match="rank"):
        InferenceSampler(5, rank=3, world_size=3)


def test_training_sampler_is_reproducible_and_endless():
    a = _take(TrainingSampler(10, seed=3), 55)
    assert a == _take(TrainingSampler(10, seed=3), 55)
    assert a != _take(TrainingSampler(10, seed=4), 55)
    for epoch in range(5):  # each epoch is a permutation
        assert sorted(a[10 * epoch : 10 * epoch + 10]) == list(range(10))
    assert _take(TrainingSampler(4, shuffle=False, seed=0), 9) == [0, 1, 2, 3, 0, 1, 2, 3, 0]


def test_training_sampler_shards_one_stream_across_ranks():
    stream = _take(TrainingSampler(12, seed=7), 36)
    per_rank = [_take(TrainingSampler(12, seed=7, rank=r, world_size=3), 12) for r in range(3)]
    assert [stream[r::3] for r in range(3)] == per_rank
    first_epoch = [per_rank[r][:4] for r in range(3)]
    assert sorted(itertools.chain(*first_epoch)) == list(range(12))  # ranks split each epoch


def test_repeat_factor_sampler_expected_counts():
    factors = torch.tensor([1.0, 2.5, 1.0, 4.0])
    sampler = RepeatFactorTrainingSampler(factors, seed=0)
    epoch_length_mean = float(factors.sum())
    counts = Counter(_take(sampler, int(epoch_length_mean * 400)))
    total = sum(counts.values())
    for index, factor in enumerate(factors.tolist()):
        assert counts[index] / total == pytest.approx(factor / epoch_length_mean, rel=0.05)
    assert _take(RepeatFactorTrainingSampler(factors, seed=0), 40) == _take(sampler, 40)
