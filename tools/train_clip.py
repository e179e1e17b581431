#!/usr/bin/env python
"""Pretrain a CLIP (any open_clip architecture) on image–text pairs, then test it zero-shot.

    python tools/train_clip.py --config-file configs/ov_shapes/clip_tiny.yaml
    python tools/train_clip.py --config-file CFG --num-gpus 2 MODEL.DEVICE cpu   # 2 gloo procs
    python tools/train_clip.py --config-file CFG --resume                         # continue a run
    python tools/train_clip.py --config-file CFG --eval-only \\
        MODEL.TEXT_ENCODER.PRETRAINED out/model_final.pt

Training data are the registered datasets of ``DATASETS.TRAIN`` (OV-Shapes pretraining pairs or
COCO-format captions); the loss is open_clip's ``ClipLoss``. The run's checkpoints are the
engine's (``model_*.pth``, for ``--resume``); at the end the CLIP weights are also written in
open_clip's format to ``OUTPUT_DIR/model_final.pt``, which
``create_text_encoder(MODEL.TEXT_ENCODER.NAME, pretrained=path)`` loads. Zero-shot top-1 on the
object crops of ``DATASETS.TEST[0]`` is written to ``OUTPUT_DIR/zero_shot.json`` (``top1_all``,
``top1_base``, ``top1_novel``, per class) and printed as a per-class table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from typing import Any

import torch

from ovvision.checkpoint import Checkpointer
from ovvision.clip_pretraining import (
    ContrastiveImageTextModel,
    ImagePreprocessor,
    ImageTextPairDataset,
    build_pair_loader,
    evaluate_zero_shot,
    format_zero_shot_table,
    load_object_crops,
    pairs_from_dataset_dicts,
)
from ovvision.config import CfgNode, load_config
from ovvision.data import DatasetCatalog
from ovvision.engine import (
    AMPTrainer,
    SimpleTrainer,
    create_ddp_model,
    default_argument_parser,
    default_hooks,
    default_setup,
    launch_from_args,
    resume_or_load,
)
from ovvision.modeling.text import TextEncoder, create_text_encoder
from ovvision.solver import build_gradient_clipper, build_lr_scheduler, build_optimizer
from ovvision.utils import comm
from ovvision.utils.file_io import atomic_write

logger = logging.getLogger("ovvision.train_clip")
OPEN_CLIP_WEIGHTS = "model_final.pt"  # open_clip format; the engine's model_final.pth is not
ZERO_SHOT_RESULTS = "zero_shot.json"


def setup(args: argparse.Namespace) -> CfgNode:
    """The run's config: defaults, then ``--config-file``, then command-line ``opts``."""
    cfg = load_config(args.config_file, args.opts or [])
    cfg.freeze()
    default_setup(cfg, args)
    return cfg


class ZeroShotEvaluation:
    """Zero-shot top-1 on the object crops of ``DATASETS.TEST[0]`` (main process only).

    Crops are loaded on first use; results are written to ``OUTPUT_DIR/zero_shot.json``.
    """

    def __init__(self, cfg: CfgNode, encoder: TextEncoder, preprocessor: ImagePreprocessor):
        self.cfg = cfg
        self.encoder = encoder
        self.preprocessor = preprocessor
        self._crops = None

    def __call__(self) -> dict[str, Any]:
        if not comm.is_main_process():
            return {}
        cfg = self.cfg
        if self._crops is None:
            self._crops = load_object_crops(
                cfg.DATASETS.TEST[0],
                self.preprocessor,
                context=cfg.CLIP.ZERO_SHOT_CONTEXT,
                max_objects=cfg.CLIP.ZERO_SHOT_MAX_OBJECTS,
            )
        templates = list(cfg.VOCABULARY.CUSTOM_TEMPLATES) or cfg.VOCABULARY.TEMPLATES
        results = evaluate_zero_shot(self.encoder, self._crops, self.preprocessor, templates)
        results["dataset"] = cfg.DATASETS.TEST[0]
        text = json.dumps(results, indent=1, sort_keys=True) + "\n"
        path = os.path.join(cfg.OUTPUT_DIR, ZERO_SHOT_RESULTS)
        atomic_write(path, lambda f: f.write(text.encode()))
        logger.info("Zero-shot results (%s):\n%s", path, format_zero_shot_table(results))
        return {"zero_shot": {k: v for k, v in results.items() if k.startswith("top1_")}}


def export_open_clip_weights(encoder: TextEncoder, output_dir: str) -> str:
    """Write the CLIP's state dict in open_clip's checkpoint format; returns the path."""
    path = os.path.join(output_dir, OPEN_CLIP_WEIGHTS)
    state = {"name": encoder.name, "state_dict": encoder.model.state_dict()}
    atomic_write(path, lambda f: torch.save(state, f))
    return path


def build_train_loader(cfg: CfgNode, encoder: TextEncoder, preprocessor: ImagePreprocessor):
    """The endless stream of training batches of ``DATASETS.TRAIN``, sharded over ranks."""
    pairs = []
    for name in cfg.DATASETS.TRAIN:
        pairs.extend(pairs_from_dataset_dicts(DatasetCatalog.get(name), name))
    if not cfg.CLIP.SCENE_PAIRS:
        pairs = [p for p in pairs if p.is_object]
    dataset = ImageTextPairDataset(
        pairs,
        preprocessor,
        augment=cfg.CLIP.AUGMENT,
        jitter=cfg.CLIP.CROP_JITTER,
        seed=max(cfg.SEED, 0) + comm.get_rank(),
    )
    world_size = comm.get_world_size()
    if cfg.SOLVER.IMS_PER_BATCH % world_size:
        raise ValueError(
            f"SOLVER.IMS_PER_BATCH={cfg.SOLVER.IMS_PER_BATCH} is not divisible by the "
            f"{world_size} processes"
        )
    logger.info("CLIP pretraining on %d image-text pairs of %s", len(pairs), cfg.DATASETS.TRAIN)
    return build_pair_loader(
        dataset,
        encoder.tokenizer,
        cfg.SOLVER.IMS_PER_BATCH // world_size,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        seed=cfg.SEED if cfg.SEED >= 0 else None,
    )


def do_train(cfg: CfgNode, encoder: TextEncoder, preprocessor: ImagePreprocessor, resume: bool):
    """Contrastive training with the engine's standard hooks; zero-shot test at the end."""
    model = ContrastiveImageTextModel(encoder.model, max_logit_scale=cfg.CLIP.MAX_LOGIT_SCALE)
    optimizer = build_optimizer(cfg, model)
    scheduler = build_lr_scheduler(cfg, optimizer)
    ddp_model = create_ddp_model(model, broadcast_buffers=False)
    trainer_cls = AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer
    trainer = trainer_cls(
        ddp_model,
        build_train_loader(cfg, encoder, preprocessor),
        optimizer,
        build_gradient_clipper(cfg),
    )
    checkpointer = Checkpointer(model, cfg.OUTPUT_DIR, trainer=trainer, optimizer=optimizer)
    eval_function = ZeroShotEvaluation(cfg, encoder, preprocessor) if cfg.DATASETS.TEST else None
    trainer.register_hooks(default_hooks(cfg, optimizer, scheduler, checkpointer, eval_function))
    start_iter = resume_or_load(checkpointer, cfg.MODEL.WEIGHTS, resume=resume)
    trainer.train(start_iter, cfg.SOLVER.MAX_ITER)
    if comm.is_main_process():
        logger.info(
            "open_clip weights written to %s", export_open_clip_weights(encoder, cfg.OUTPUT_DIR)
        )


def main(args: argparse.Namespace) -> dict[str, Any] | None:
    cfg = setup(args)
    encoder = create_text_encoder(
        cfg.MODEL.TEXT_ENCODER.NAME,
        pretrained=cfg.MODEL.TEXT_ENCODER.PRETRAINED or None,
        device=cfg.MODEL.DEVICE,
    )
    preprocessor = ImagePreprocessor.for_model(encoder.image_preprocess_cfg)
    logger.info("CLIP model:\n%s", encoder)
    if args.eval_only:
        if not cfg.DATASETS.TEST:
            raise SystemExit("--eval-only needs DATASETS.TEST (the zero-shot dataset)")
        return ZeroShotEvaluation(cfg, encoder, preprocessor)()
    do_train(cfg, encoder, preprocessor, args.resume)
    return None


if __name__ == "__main__":
    launch_from_args(main, default_argument_parser().parse_args())
