#!/usr/bin/env python
"""The closed-vocabulary control: evaluate a detector with its novel-class text embeddings replaced
by random unit vectors, so the open-vocabulary gain (real minus random novel AP50) is visible.

    python tools/closed_vocab_control.py --config-file CFG --weights model_final.pth \\
        --dataset ov_shapes_val --output control.json [--seed 0] [KEY VALUE ...]
"""

from __future__ import annotations

import argparse
import logging
import os

import torch
import torch.nn.functional as F

from ovvision.data import MetadataCatalog, build_detection_test_loader
from ovvision.engine import dataset_vocabulary
from ovvision.engine.config_paths import check_dataset_files, require_file
from ovvision.engine.defaults import run_tool
from ovvision.engine.predictor import Predictor
from ovvision.evaluation import build_evaluator, inference_on_dataset, write_metrics_json
from ovvision.structures import Vocabulary
from ovvision.utils.logger import setup_logger

logger = logging.getLogger("ovvision.control")


def random_novel_vocabulary(vocabulary: Vocabulary, novel: list[str], seed: int) -> Vocabulary:
    """A copy of ``vocabulary`` whose rows for ``novel`` names are random unit vectors."""
    generator = torch.Generator().manual_seed(seed)
    embeddings = vocabulary.embeddings.detach().cpu().clone()
    rows = [vocabulary.index(name) for name in novel]
    random = torch.randn(len(rows), embeddings.shape[1], generator=generator)
    embeddings[rows] = F.normalize(random, dim=1)
    return Vocabulary(
        vocabulary.names,
        embeddings,
        synonyms=vocabulary.synonyms,
        is_novel=vocabulary.is_novel.cpu(),
        templates=vocabulary.templates,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--dataset", required=True, help="registered evaluation dataset")
    p.add_argument("--output", required=True, help="metrics json to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides")
    args = p.parse_args()
    setup_logger(None)

    require_file(args.config_file, "--config-file")
    require_file(args.weights, "--weights")
    predictor = Predictor(args.config_file, args.weights, opts=args.opts)  # registers datasets
    check_dataset_files(args.dataset, "--dataset")
    metadata = MetadataCatalog.get(args.dataset)
    predictor.set_vocabulary(dataset_vocabulary(predictor.configured_vocabulary, args.dataset))
    vocabulary = predictor.vocabulary
    predictor.set_vocabulary(random_novel_vocabulary(vocabulary, metadata.novel_classes, args.seed))
    cfg = predictor.cfg
    evaluator = build_evaluator(cfg, args.dataset, os.path.dirname(os.path.abspath(args.output)))
    results = inference_on_dataset(
        predictor.model, build_detection_test_loader(cfg, args.dataset), evaluator
    )
    write_metrics_json(results, args.output)
    logger.info("Control metrics written to %s", args.output)


if __name__ == "__main__":
    run_tool(main, prog="closed_vocab_control.py")
