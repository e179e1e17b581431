#!/usr/bin/env python
"""Export a trained detector to ONNX, with the class embeddings as a graph input.

    python tools/export_onnx.py --config-file configs/ov_shapes/ovrcnn_clip_rn_frozen.yaml \\
        --weights output/quickstart/ovrcnn/model_final.pth --output out/onnx/model.onnx \\
        --vocabulary "star,heart,moon|crescent"

Writes --output (the graph: inputs ``image`` uint8 [3, H, W], ``class_embeddings`` [C, D],
``class_seen`` bool [C]; outputs ``boxes`` [N, 4], ``scores`` [N], ``classes`` [N],
``mask_probs`` [N, M, M]) and ``vocabulary.npz`` beside it (names, embeddings, seen flags of
--vocabulary, or of the config's vocabulary without it). Images go in already resized as the
config's test transform does; boxes come out in that image's pixels.

A new vocabulary for an existing export: ``--vocabulary NAMES --vocabulary-only`` writes only the
vocabulary file (--vocabulary-file, default: beside --output).

``--benchmark DATASET`` then runs PyTorch eager and onnxruntime side by side on every image of a
registered dataset (e.g. ov_shapes_val) on --threads threads, and writes benchmark.json beside
--output: output parity, box/mask AP of both, latency per image.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from ovvision.engine.config_paths import require_file
from ovvision.engine.defaults import USER_ERRORS, exit_with_error, run_tool
from ovvision.engine.predictor import Predictor
from ovvision.export.vocabulary_file import VOCABULARY_FILE, VocabularyArrays, save_vocabulary
from ovvision.structures import ClassList
from ovvision.utils.logger import setup_logger

logger = logging.getLogger("ovvision.export_onnx")
PROG = "export_onnx.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config-file", required=True, metavar="FILE")
    p.add_argument("--weights", required=True, help="model checkpoint (.pth)")
    p.add_argument("--output", required=True, help="the .onnx file to write")
    p.add_argument(
        "--vocabulary",
        default="",
        help='class names, comma-separated, synonyms after "|": "cat,dog|puppy" '
        "(default: the config's vocabulary)",
    )
    p.add_argument("--vocabulary-file", default="", help=f"default: {VOCABULARY_FILE} by --output")
    p.add_argument("--vocabulary-only", action="store_true", help="write only the vocabulary file")
    p.add_argument(
        "--no-clip-fusion",
        action="store_true",
        help="leave the CLIP crop-score fusion out of the graph (detector scores only)",
    )
    p.add_argument(
        "--sample-image",
        default="",
        help="image to trace with (default: the first image of DATASETS.TEST[0]); it must give "
        "detections so that every branch is recorded",
    )
    p.add_argument("--benchmark", default="", metavar="DATASET", help="compare on this dataset")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for --benchmark")
    p.add_argument("--max-images", type=int, default=0, help="--benchmark: first N (0 = all)")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE overrides")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logger(None)
    require_file(args.config_file, "--config-file")
    require_file(args.weights, "--weights")
    try:
        predictor = Predictor(args.config_file, args.weights, opts=args.opts, device="cpu")
    except USER_ERRORS:
        raise
    except (KeyError, ValueError, RuntimeError) as e:
        exit_with_error(f"weights {args.weights} do not match config {args.config_file}: {e}", PROG)
    model = predictor.model
    try:
        if args.vocabulary:
            model.set_vocabulary(ClassList.parse(args.vocabulary))
        else:
            model.set_vocabulary(predictor.configured_vocabulary)
    except (ValueError, TypeError) as e:
        exit_with_error(f"--vocabulary: {e}", PROG)
    vocab_path = Path(args.vocabulary_file or Path(args.output).parent / VOCABULARY_FILE)
    arrays = VocabularyArrays.from_vocabulary(model.vocabulary, model.classes.seen.cpu().numpy())
    save_vocabulary(vocab_path, arrays)
    logger.info("Vocabulary of %d classes written to %s", len(arrays.names), vocab_path)
    if args.vocabulary_only:
        return 0
    export_and_check(predictor, args)
    if args.benchmark:
        benchmark(predictor, args)
    return 0


def export_and_check(predictor: Predictor, args: argparse.Namespace) -> None:
    """Export, then run the sample image in onnxruntime and PyTorch and compare."""
    from ovvision.export.compare import Parity
    from ovvision.export.onnx_export import export_onnx
    from ovvision.export.onnx_runtime import OnnxDetector

    model = predictor.model
    sample = _sample_input(predictor, args.sample_image)
    with torch.no_grad():
        reference = model.inference([sample], do_postprocess=False)[0]
    if len(reference) == 0:
        exit_with_error(
            "the tracing image gives no detection, so the graph would record the empty "
            "branches only; pass --sample-image with objects of the vocabulary",
            PROG,
        )
    resize = {
        "ovvision.min_size_test": str(predictor.cfg.INPUT.MIN_SIZE_TEST),
        "ovvision.max_size_test": str(predictor.cfg.INPUT.MAX_SIZE_TEST),
        "ovvision.max_image_pixels": str(predictor.cfg.INPUT.MAX_IMAGE_PIXELS),
    }
    export_onnx(model, args.output, sample["image"], not args.no_clip_fusion, metadata=resize)
    logger.info("ONNX graph written to %s", args.output)
    arrays = VocabularyArrays.from_vocabulary(model.vocabulary, model.classes.seen.cpu().numpy())
    if args.no_clip_fusion:
        return  # PyTorch fuses CLIP scores: nothing equal to compare with
    detector = OnnxDetector(args.output, arrays)
    parity = Parity()
    if parity.add("sample", reference, detector.instances(sample["image"])):
        logger.info(
            "onnxruntime equals PyTorch on the sample image (%d detections)", len(reference)
        )
    else:
        logger.warning("onnxruntime differs from PyTorch on the sample image: %s", parity.as_dict())


def _sample_input(predictor: Predictor, path: str) -> dict:
    """The model input to trace with: ``path``, or the first image of ``DATASETS.TEST[0]``."""
    if not path:
        from ovvision.data import DatasetCatalog

        tests = predictor.cfg.DATASETS.TEST
        if not tests:
            exit_with_error("no DATASETS.TEST in the config: pass --sample-image", PROG)
        path = DatasetCatalog.get(tests[0])[0]["file_name"]
    require_file(path, "--sample-image")
    return predictor.prepare(path)


def benchmark(predictor: Predictor, args: argparse.Namespace) -> None:
    """PyTorch eager vs onnxruntime on a dataset; writes benchmark.json beside --output."""
    from ovvision.data import build_detection_test_loader
    from ovvision.engine.dataset_vocabulary import dataset_vocabulary
    from ovvision.evaluation import build_evaluator
    from ovvision.export.compare import compare_on_loader
    from ovvision.export.onnx_runtime import OnnxDetector

    cfg, model = predictor.cfg, predictor.model
    model.set_vocabulary(dataset_vocabulary(predictor.configured_vocabulary, args.benchmark))
    arrays = VocabularyArrays.from_vocabulary(model.vocabulary, model.classes.seen.cpu().numpy())
    torch.set_num_threads(args.threads)
    detector = OnnxDetector(args.output, arrays, num_threads=args.threads)
    out_dir = Path(args.output).parent
    loader = build_detection_test_loader(cfg, args.benchmark)
    if args.max_images > 0:
        loader = _first(loader, args.max_images)
    evaluators = tuple(
        build_evaluator(cfg, args.benchmark, str(out_dir / f"benchmark_{name}"))
        for name in ("pytorch", "onnxruntime")
    )
    result = compare_on_loader(model, detector, loader, evaluators)
    result.update(
        dataset=args.benchmark,
        threads=args.threads,
        clip_fusion=not args.no_clip_fusion,
        loadavg=_loadavg(),
    )
    path = out_dir / "benchmark.json"
    path.write_text(json.dumps(result, indent=1, sort_keys=True, default=_jsonable))
    logger.info("Benchmark written to %s:\n%s", path, json.dumps(_headline(result), indent=1))


def _first(loader, count: int):
    seen = 0
    for batch in loader:
        if seen >= count:
            return
        batch = batch[: count - seen]
        seen += len(batch)
        yield batch


def _headline(result: dict) -> dict:
    """Parity, box/mask AP and AP50 of each runtime, and latency."""
    metrics = {
        runtime: {
            task: {
                k: v for k, v in values.items() if k in ("AP", "AP50", "AP50-base", "AP50-novel")
            }
            for task, values in result.get("metrics", {}).get(runtime, {}).items()
            if isinstance(values, dict)
        }
        for runtime in ("pytorch", "onnxruntime")
    }
    return {"parity": result["parity"], "metrics": metrics, "latency_ms": result["latency_ms"]}


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return ""


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


if __name__ == "__main__":
    run_tool(main, PROG)
