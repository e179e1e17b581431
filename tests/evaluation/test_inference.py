"""inference_on_dataset and DatasetEvaluators; distributed evaluation over 2 gloo processes."""

from __future__ import annotations

import logging
import os
import traceback

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from ovvision.evaluation import (
    COCOOpenVocabEvaluator,
    DatasetEvaluator,
    DatasetEvaluators,
    inference_on_dataset,
    save_eval_results,
)
from ovvision.evaluation import evaluator as evaluator_module

from ._fixtures import (
    inputs_of,
    make_coco_gt,
    make_predictions,
    read_json,
    results_to_outputs,
    write_json,
)


class LookupModel(nn.Module):
    """A stand-in detector: returns precomputed outputs by image id, and records how it ran."""

    def __init__(self, outputs: dict):
        super().__init__()
        self.outputs = outputs
        self.layer = nn.Linear(1, 1)
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, batch):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return [self.outputs[d["image_id"]] for d in batch]


class CountingEvaluator(DatasetEvaluator):
    def __init__(self, key):
        self.key = key
        self.resets = 0
        self.images = []

    def reset(self):
        self.resets += 1
        self.images = []

    def process(self, inputs, outputs):
        assert len(inputs) == len(outputs)
        self.images += [d["image_id"] for d in inputs]

    def evaluate(self):
        return {self.key: {"images": len(self.images)}}


def batches(inputs, size):
    return [inputs[i : i + size] for i in range(0, len(inputs), size)]


def test_runs_in_eval_mode_without_grad_and_restores_training(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(evaluator_module, "_PROGRESS_PERIOD_S", 0.0)  # a progress line per batch
    gt = make_coco_gt(0, num_images=7)
    model = LookupModel(results_to_outputs(gt, make_predictions(gt, seed=0)))
    model.train()
    first, second = CountingEvaluator("a"), CountingEvaluator("b")
    with caplog.at_level(logging.INFO, logger="ovvision.evaluation.evaluator"):
        results = inference_on_dataset(model, batches(inputs_of(gt), 2), [first, second])
    assert results == {"a": {"images": 7}, "b": {"images": 7}}
    assert model.calls == [(False, False)] * 4
    assert model.training
    assert first.resets == second.resets == 1
    assert "Total inference time" in caplog.text
    assert "Inference done 4/4" in caplog.text and "ETA=0:00:00" in caplog.text


def test_evaluators_with_the_same_key_raise():
    evaluators = DatasetEvaluators([CountingEvaluator("a"), CountingEvaluator("a")])
    with pytest.raises(KeyError, match="'a'"):
        evaluators.evaluate()


def test_loader_without_length_and_no_evaluator():
    gt = make_coco_gt(0, num_images=3)
    model = LookupModel(results_to_outputs(gt, []))
    assert inference_on_dataset(model, iter(batches(inputs_of(gt), 1)), None) == {}
    assert len(model.calls) == 3


def _spawn_with_store(worker, nprocs, *args):
    """mp.spawn with a TCPStore that this process hosts on a free localhost port (port 0: the OS
    picks one, so no other process can take it first); hosting it here keeps it alive until every
    worker has torn down its process group."""
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    mp.spawn(worker, args=(nprocs, store.port, *args), nprocs=nprocs, join=True)


def _evaluate_shards(gt_path, shards, output_dir):
    """Run the COCO evaluator on this process's shard; the main process saves the metrics."""
    gt = read_json(gt_path)
    model = LookupModel(results_to_outputs(gt, make_predictions(gt, seed=11)))
    evaluator = COCOOpenVocabEvaluator(gt_json=gt_path, output_dir=output_dir)
    metrics = inference_on_dataset(model, batches(shards, 2), evaluator)
    if dist.is_initialized() and dist.get_rank() != 0:
        assert metrics == {}
    else:
        save_eval_results(metrics, output_dir)


def _worker(rank, world, port, gt_path, out_dir):
    store = dist.TCPStore("127.0.0.1", port, is_master=False)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    try:
        inputs = inputs_of(read_json(gt_path))
        _evaluate_shards(gt_path, inputs[rank::world], os.path.join(out_dir, "sharded"))
        # A padding sampler would give rank 1 the first image again.
        padded = inputs[rank::world] + (inputs[:1] if rank == 1 else [])
        try:
            _evaluate_shards(gt_path, padded, os.path.join(out_dir, "padded"))
        except ValueError as e:
            with open(os.path.join(out_dir, f"padded_error_{rank}.txt"), "w") as f:
                f.write(str(e))
    except BaseException:
        with open(os.path.join(out_dir, f"crash_{rank}.txt"), "w") as f:
            f.write(traceback.format_exc())
        raise
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(300)
def test_two_processes_equal_one_and_score_each_image_once(tmp_path):
    gt = make_coco_gt(12, num_images=11)
    gt_path = write_json(tmp_path / "gt.json", gt)
    single = tmp_path / "single"
    _evaluate_shards(gt_path, inputs_of(gt), str(single))

    _spawn_with_store(_worker, 2, gt_path, str(tmp_path))

    one, two = (
        read_json(single / "eval_results.json"),
        read_json(tmp_path / "sharded" / "eval_results.json"),
    )
    assert one == two
    assert two["bbox"]["num_images"] == 11 and 5 < two["segm"]["AP"] < 95
    results = "coco_instances_results.json"
    assert (single / results).read_bytes() == (tmp_path / "sharded" / results).read_bytes()
    error = (tmp_path / "padded_error_0.txt").read_text()
    assert f"[{gt['images'][0]['id']}]" in error and "more than once" in error
    assert not (tmp_path / "padded").exists()
