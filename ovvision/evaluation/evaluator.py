"""The evaluator protocol, running a model over a dataset, and building evaluators by name.

An evaluator sees every (input, output) pair of the images its process handles, then computes
metrics once at the end. In distributed inference each process handles its own shard of the
dataset; the evaluator gathers what all processes saw onto the main process, which alone returns
metrics (the others return ``{}``).
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import nn

from ovvision.utils import comm
from ovvision.utils.registry import Registry

logger = logging.getLogger(__name__)

EVALUATOR_REGISTRY = Registry("EVALUATOR")
EVALUATOR_REGISTRY.__doc__ = """
Builders of dataset evaluators, registered under the ``evaluator_type`` that a dataset's metadata
names ("coco_ov", "lvis_ov", ...). Each returns a :class:`DatasetEvaluator` and is called either
as ``builder(cfg, dataset_name, output_dir)`` or with the evaluator's keyword arguments.
"""

_PROGRESS_PERIOD_S = 5.0  # seconds between progress lines
_WARMUP_ITERS = 5  # iterations left out of the per-image timing (allocator, cudnn warm-up)


class DatasetEvaluator:
    """Accumulates a model's outputs over a dataset and computes metrics from them.

    Subclasses override the three methods. ``process`` may be called on several processes, each
    with its own images; ``evaluate`` is called on every process, gathers across processes and
    returns the metrics on the main process and ``{}`` on the others.
    """

    def reset(self) -> None:
        """Forget everything processed so far; called before a new round of inference."""

    def process(self, inputs: list[dict[str, Any]], outputs: list[Any]) -> None:
        """Record one batch.

        Args:
            inputs: the batch given to the model, one mapper dict per image.
            outputs: the model's outputs, one per image, in the same order.
        """

    def process_unreadable(self, inputs: list[dict[str, Any]]) -> None:
        """Record images of the dataset whose files could not be read.

        They stay in the evaluated set with no predictions (their ground truth counts as missed),
        so that a bad file lowers the score rather than silently raising it. An evaluator that
        cannot do this raises rather than drop them.

        Args:
            inputs: one dict per image with ``image_id`` and ``file_name`` (and ``height`` and
                ``width`` when the dataset knows them).
        """
        raise NotImplementedError(
            f"{type(self).__name__} cannot score unreadable images (the first is "
            f"'{inputs[0].get('file_name')}'); fix or remove the files"
        )

    def evaluate(self) -> dict[str, Any]:
        """Metrics over everything processed (on all processes), e.g.
        ``{"bbox": {"AP": 41.2, ...}}``; ``{}`` on processes other than the main one."""
        return {}


class DatasetEvaluators(DatasetEvaluator):
    """Several evaluators fed with the same batches; their metrics are merged into one dict.

    Args:
        evaluators: the evaluators; their result dicts must not share top-level keys.
    """

    def __init__(self, evaluators: Sequence[DatasetEvaluator]):
        super().__init__()
        self._evaluators = list(evaluators)

    def reset(self) -> None:
        for evaluator in self._evaluators:
            evaluator.reset()

    def process(self, inputs: list[dict[str, Any]], outputs: list[Any]) -> None:
        for evaluator in self._evaluators:
            evaluator.process(inputs, outputs)

    def process_unreadable(self, inputs: list[dict[str, Any]]) -> None:
        for evaluator in self._evaluators:
            evaluator.process_unreadable(inputs)

    def evaluate(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for evaluator in self._evaluators:
            for key, value in (evaluator.evaluate() or {}).items():
                if key in merged:
                    raise KeyError(
                        f"Two evaluators returned results under the same key '{key}' "
                        f"(the second is {type(evaluator).__name__})"
                    )
                merged[key] = value
        return merged


def build_evaluator(cfg: Any, dataset_name: str, output_dir: str | None = None) -> DatasetEvaluator:
    """The evaluator that the dataset's metadata asks for through its ``evaluator_type``.

    Args:
        cfg: the config (evaluators read their ``TEST.*`` keys from it).
        dataset_name: a name registered in ``ovvision.data.MetadataCatalog``.
        output_dir: where the evaluator writes its results file (None: nowhere).
    """
    from ovvision.data.catalog import MetadataCatalog

    evaluator_type = getattr(MetadataCatalog.get(dataset_name), "evaluator_type", None)
    if not evaluator_type:
        raise KeyError(f"Dataset '{dataset_name}' has no 'evaluator_type' in its metadata")
    if evaluator_type not in EVALUATOR_REGISTRY:
        known = sorted(name for name, _ in EVALUATOR_REGISTRY)
        raise KeyError(
            f"Dataset '{dataset_name}' asks for evaluator_type '{evaluator_type}', "
            f"which is not registered; known types: {known}"
        )
    builder: Callable[..., DatasetEvaluator] = EVALUATOR_REGISTRY.get(evaluator_type)
    return builder(cfg, dataset_name, output_dir)


@contextmanager
def _eval_mode(model: nn.Module):
    """Put the model in eval mode for the duration, then restore its previous mode."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _sync_device() -> None:
    """Wait for queued CUDA work so that wall-clock timings measure the model, not the launch."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _loader_length(data_loader: Iterable) -> int | None:
    try:
        return len(data_loader)  # type: ignore[arg-type]
    except TypeError:
        return None


class _Timer:
    """Splits each iteration's time into data loading, model, and evaluator."""

    def __init__(self, total: int | None):
        self.total = total
        self.start = time.perf_counter()
        self.timed_start = self.start
        self.data = self.model = self.eval = 0.0
        self.timed_iters = 0
        self.last_log = self.start

    def restart_after_warmup(self, now: float) -> None:
        self.timed_start = now
        self.data = self.model = self.eval = 0.0
        self.timed_iters = 0

    def add(self, data: float, model: float, evaluation: float) -> None:
        self.data += data
        self.model += model
        self.eval += evaluation
        self.timed_iters += 1

    def maybe_log(self, idx: int) -> None:
        now = time.perf_counter()
        if now - self.last_log < _PROGRESS_PERIOD_S or self.timed_iters == 0:
            return
        self.last_log = now
        n = self.timed_iters
        per_iter = (now - self.timed_start) / n
        eta = ""
        if self.total is not None:
            remaining = datetime.timedelta(seconds=int(per_iter * (self.total - idx - 1)))
            eta = f" ETA={remaining}"
        total_str = f"/{self.total}" if self.total is not None else ""
        logger.info(
            f"Inference done {idx + 1}{total_str}. Data loading: {self.data / n:.4f} s/iter. "
            f"Inference: {self.model / n:.4f} s/iter. Eval: {self.eval / n:.4f} s/iter. "
            f"Total: {per_iter:.4f} s/iter.{eta}"
        )


def inference_on_dataset(
    model: nn.Module | Callable[[list[dict[str, Any]]], list[Any]],
    data_loader: Iterable[list[dict[str, Any]]],
    evaluator: DatasetEvaluator | Sequence[DatasetEvaluator] | None,
) -> dict[str, Any]:
    """Run ``model`` on every batch of ``data_loader`` and evaluate its outputs.

    The model runs in eval mode (its previous mode is restored afterwards) under
    ``torch.no_grad()``. Progress with an ETA is logged every few seconds, and the total and
    per-iteration time at the end. In distributed inference every process calls this with its
    own shard of the dataset (each image in exactly one shard); the evaluator gathers across
    processes.

    Images the loader could not read (its ``unreadable`` list after the pass, as
    :func:`~ovvision.data.build_detection_test_loader` keeps it) go to the evaluator's
    ``process_unreadable``, so their ground truth counts as missed.

    Args:
        model: called as ``model(batch)`` with the loader's list of mapper dicts; returns one
            output per image.
        data_loader: yields batches (lists of mapper dicts); may list unreadable images in an
            ``unreadable`` attribute (objects with ``as_input()``).
        evaluator: one evaluator, several (combined with :class:`DatasetEvaluators`), or None to
            only run the model.

    Returns:
        The evaluator's metrics on the main process, ``{}`` on other processes or without one.
    """
    if evaluator is None:
        evaluator = DatasetEvaluators([])
    elif not isinstance(evaluator, DatasetEvaluator):
        evaluator = DatasetEvaluators(list(evaluator))
    evaluator.reset()

    total = _loader_length(data_loader)
    logger.info(
        f"Start inference on {total if total is not None else 'an unknown number of'} batches "
        f"in {comm.get_world_size()} process(es)"
    )
    timer = _Timer(total)
    num_batches = 0
    context = _eval_mode(model) if isinstance(model, nn.Module) else nullcontext()
    with context, torch.no_grad():
        tick = time.perf_counter()
        for idx, inputs in enumerate(data_loader):
            if idx == _WARMUP_ITERS:
                timer.restart_after_warmup(tick)
            loaded = time.perf_counter()
            outputs = model(inputs)
            _sync_device()
            computed = time.perf_counter()
            evaluator.process(inputs, outputs)
            done = time.perf_counter()
            timer.add(loaded - tick, computed - loaded, done - computed)
            timer.maybe_log(idx)
            num_batches += 1
            tick = time.perf_counter()
        unreadable = [u.as_input() for u in getattr(data_loader, "unreadable", ())]
        if unreadable:
            logger.warning(
                f"{len(unreadable)} image(s) could not be read in this process and are scored "
                f"with no detections: {[u['file_name'] for u in unreadable]}"
            )
            evaluator.process_unreadable(unreadable)

    elapsed = time.perf_counter() - timer.start
    timed = max(timer.timed_iters, 1)
    warmup = f" after {_WARMUP_ITERS} warm-up batches" if num_batches > _WARMUP_ITERS else ""
    logger.info(
        f"Total inference time: {datetime.timedelta(seconds=int(elapsed))} for {num_batches} "
        f"batches; model time {timer.model / timed:.4f} s/batch{warmup}, per process, "
        f"{comm.get_world_size()} process(es)"
    )
    results = evaluator.evaluate()
    return results if results is not None else {}
