#!/usr/bin/env python
"""Train and evaluate ovvision detectors with detectron2's command-line flags.

    python tools/train_net.py --config-file configs/ov_shapes/ovrcnn_clip_rn_frozen.yaml
    python tools/train_net.py --config-file CFG --num-gpus 2 MODEL.DEVICE cpu   # 2 gloo procs
    python tools/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS out/model_final.pth
    python tools/train_net.py --config-file CFG --resume                         # continue a run
    python tools/train_net.py --config-file CFG --eval-only --report out/report MODEL.WEIGHTS W

Evaluation runs every ``TEST.EVAL_PERIOD`` iterations and at the end on each of
``DATASETS.TEST``, with the vocabulary set to that dataset's classes; the final metrics are
written to ``OUTPUT_DIR/eval_results.json``. With ``--report DIR`` (or ``TEST.REPORT True``) each
evaluation also writes a report people can read (``report.md`` and PNG figures, see
:mod:`ovvision.reports`) into DIR (a subfolder per dataset when there are several).
"""

from __future__ import annotations

import argparse
import logging
import os
from collections import OrderedDict
from typing import Any

from torch import nn

from ovvision.checkpoint import Checkpointer, unwrap_model
from ovvision.config import CfgNode
from ovvision.data import (
    DatasetCatalog,
    build_detection_test_loader,
    build_detection_train_loader,
)
from ovvision.engine import (
    AMPTrainer,
    SimpleTrainer,
    create_ddp_model,
    dataset_vocabulary,
    default_argument_parser,
    default_hooks,
    default_setup,
    launch_from_args,
    resume_or_load,
    use_training_vocabulary,
)
from ovvision.engine.defaults import load_tool_config, prepare_datasets_and_files, run_tool
from ovvision.evaluation import (
    CaptionEvaluator,
    build_evaluator,
    inference_on_dataset,
    save_eval_results,
)
from ovvision.modeling import build_model
from ovvision.reports import write_evaluator_report
from ovvision.solver import build_gradient_clipper, build_lr_scheduler, build_optimizer
from ovvision.structures import Vocabulary
from ovvision.utils import comm

logger = logging.getLogger("ovvision.train_net")


def setup(args: argparse.Namespace) -> CfgNode:
    """The run's config: defaults, then ``--config-file``, then command-line ``opts``.

    Registers the datasets of ``DATASETS.REGISTER`` and checks that every file the run reads
    exists (a missing one raises an error naming its config key).
    """
    cfg = load_tool_config(args.config_file, args.opts or [])
    prepare_datasets_and_files(cfg)
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


def report_folder(cfg: CfgNode, report: str | None) -> str | None:
    """Where evaluation reports go: ``--report``, else ``TEST.REPORT_DIR`` or
    ``OUTPUT_DIR/report`` when ``TEST.REPORT`` is on, else None (no report)."""
    if report:
        return report
    if cfg.TEST.REPORT:
        return cfg.TEST.REPORT_DIR or os.path.join(cfg.OUTPUT_DIR, "report")
    return None


def do_test(
    cfg: CfgNode,
    model: nn.Module,
    configured_vocabulary: Vocabulary,
    report_dir: str | None = None,
) -> dict[str, Any]:
    """Evaluate on every dataset of ``DATASETS.TEST`` with its own class vocabulary.

    ``configured_vocabulary`` is the model's vocabulary before it was narrowed to the training
    classes; each test dataset's classes are taken from it (synonyms and novel flags included).
    With ``report_dir``, the main process writes each dataset's evaluation report there.

    Returns ``{dataset: {"bbox": {...}, "segm": {...}}}`` (one dataset: its metrics directly),
    and writes them to ``OUTPUT_DIR/eval_results.json`` on the main process.
    """
    detector = unwrap_model(model)
    trained_vocabulary = detector.vocabulary
    results: dict[str, Any] = OrderedDict()
    for name in cfg.DATASETS.TEST:
        detector.set_vocabulary(dataset_vocabulary(configured_vocabulary, name))
        loader = build_detection_test_loader(cfg, name)
        inference_dir = os.path.join(cfg.OUTPUT_DIR, "inference", name)
        evaluator = build_evaluator(cfg, name, inference_dir)
        evaluators = [evaluator]
        if cfg.TEST.CAPTIONS:  # the model writes a caption per image: score it too
            dicts = DatasetCatalog.get(name)
            evaluators.append(
                CaptionEvaluator.from_dataset_dicts(dicts, detector.vocabulary, inference_dir)
            )
        results[name] = inference_on_dataset(model, loader, evaluators)
        if report_dir and comm.is_main_process():
            folder = os.path.join(report_dir, name) if len(cfg.DATASETS.TEST) > 1 else report_dir
            write_evaluator_report(
                evaluator, results[name], folder, dataset_name=name,
                min_score=cfg.TEST.REPORT_MIN_SCORE,
            )  # fmt: skip
    detector.set_vocabulary(trained_vocabulary)
    if len(results) == 1:
        results = next(iter(results.values()))
    if comm.is_main_process() and results:
        path = save_eval_results(results, cfg.OUTPUT_DIR)
        logger.info("Evaluation results written to %s", path)
    return results


def _checkpointer(cfg: CfgNode, model: nn.Module, **checkpointables: Any) -> Checkpointer:
    return Checkpointer(
        model,
        cfg.OUTPUT_DIR,
        allowed_missing_keys=cfg.MODEL.WEIGHTS_ALLOWED_MISSING,
        allowed_unexpected_keys=cfg.MODEL.WEIGHTS_ALLOWED_UNEXPECTED,
        **checkpointables,
    )


def do_train(
    cfg: CfgNode,
    model: nn.Module,
    resume: bool,
    configured_vocabulary: Vocabulary,
    report_dir: str | None = None,
) -> None:
    """Train with the standard hooks, evaluating periodically and at the end."""
    optimizer = build_optimizer(cfg, model)
    scheduler = build_lr_scheduler(cfg, optimizer)
    model = create_ddp_model(model, broadcast_buffers=False, find_unused_parameters=True)
    trainer_cls = AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer
    trainer = trainer_cls(
        model, build_detection_train_loader(cfg), optimizer, build_gradient_clipper(cfg)
    )
    checkpointer = _checkpointer(cfg, model, trainer=trainer, optimizer=optimizer)
    eval_function = (
        (lambda: do_test(cfg, model, configured_vocabulary, report_dir))
        if cfg.DATASETS.TEST
        else None
    )
    trainer.register_hooks(default_hooks(cfg, optimizer, scheduler, checkpointer, eval_function))
    # After the hooks exist, so that resuming restores their state (the LR schedule) too.
    start_iter = resume_or_load(checkpointer, cfg.MODEL.WEIGHTS, resume=resume)
    trainer.train(start_iter, cfg.SOLVER.MAX_ITER)


def main(args: argparse.Namespace) -> dict[str, Any] | None:
    cfg = setup(args)
    model = build_model(cfg)
    logger.info("Model:\n%s", model)
    configured_vocabulary = use_training_vocabulary(model, cfg)
    report_dir = report_folder(cfg, getattr(args, "report", None))
    if args.eval_only:
        # a model with nothing trained of its own (the grounder's cosine baseline) needs none
        if (
            not cfg.MODEL.WEIGHTS
            and not getattr(model, "evaluable_without_weights", False)
            and not (args.resume and _checkpointer(cfg, model).has_checkpoint())
        ):
            raise SystemExit("--eval-only needs MODEL.WEIGHTS (or --resume with a checkpoint)")
        resume_or_load(_checkpointer(cfg, model), cfg.MODEL.WEIGHTS, resume=args.resume)
        return do_test(cfg, model, configured_vocabulary, report_dir)
    do_train(cfg, model, args.resume, configured_vocabulary, report_dir)
    return None


def _check_then_launch(args: argparse.Namespace) -> None:
    # Checked here too, so that a bad config ends before any worker process starts.
    prepare_datasets_and_files(load_tool_config(args.config_file, args.opts or []))
    launch_from_args(main, args)


if __name__ == "__main__":
    parser = default_argument_parser()
    parser.add_argument(
        "--report",
        metavar="DIR",
        help="write each evaluation's report (report.md + PNG figures) into DIR "
        "(like TEST.REPORT True TEST.REPORT_DIR DIR)",
    )
    arguments = parser.parse_args()
    run_tool(lambda: _check_then_launch(arguments), prog="train_net.py")
