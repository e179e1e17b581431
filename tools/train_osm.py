#!/usr/bin/env python
"""Train the OSM generative mask classifier in its three stages, then evaluate it.

    python tools/train_osm.py --config-file configs/ov_shapes/osm_tiny.yaml
    python tools/train_osm.py --config-file configs/ov_shapes/osm_tiny.yaml --eval-only

Stages (each in ``OUTPUT_DIR/<stage>``, checkpointed through the project's Checkpointer with
atomic writes; a rerun skips finished stages and resumes an interrupted one):

1. ``lm``: a word-level tokenizer and a tiny GPT-2 learnt from the caption text of
   ``MODEL.OSM.TEXT_DATASETS``, saved with ``save_pretrained`` (then loaded by path, like any
   Hugging Face causal LM).
2. ``pretrain``: the MaskQ-Former (LM frozen) learns to caption the regions of
   ``MODEL.OSM.PAIR_DATASET``: object crops (OV-Shapes: crop box -> caption; the captions name
   novel shapes too) or whole images of a caption dataset (COCO Captions).
3. ``instruct``: instruction tuning on the base-class masks of ``DATASETS.TRAIN[0]`` with the
   naming prompts, mixed with caption regions (``MODEL.OSM.INSTRUCT_CAPTION_FRACTION``), a share
   of which (``MODEL.OSM.INSTRUCT_CAPTION_NAMING``) is asked the naming prompt and answered with
   the caption's object name (read from the caption's words, no class list). No novel-class
   mask label is read: the dataset's novel classes are dropped.

``OUTPUT_DIR/osm_inference.yaml`` is the config to run the trained model with (Predictor,
``tools/demo.py --open-ended``). Evaluation on ``DATASETS.TEST``: naming accuracy on ground-truth
masks in every mode of ``MODEL.OSM.MODES`` (``OUTPUT_DIR/naming/<dataset>/<mode>``), then
vocabulary-ranking box/mask AP on the detector's proposals through the dataset's own evaluator
(``OUTPUT_DIR/eval_results.json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ovvision.checkpoint import Checkpointer
from ovvision.config import CfgNode
from ovvision.data import (
    DatasetCatalog,
    MetadataCatalog,
    build_detection_test_loader,
    dataset_novel_flags,
    read_image,
)
from ovvision.data.transforms import segmentation_to_mask
from ovvision.engine import SimpleTrainer, dataset_vocabulary, default_hooks, default_setup
from ovvision.engine.defaults import load_tool_config, resume_or_load, run_tool
from ovvision.evaluation import (
    NamingEvaluator,
    build_evaluator,
    inference_on_dataset,
    save_eval_results,
    write_json_atomic,
)
from ovvision.modeling import build_model
from ovvision.modeling.osm import (
    CAPTION_PROMPTS,
    NAMING_PROMPTS,
    LanguageModel,
    build_tiny_gpt2,
    sample_prompt,
    train_word_tokenizer,
)
from ovvision.modeling.text.caption_nouns import caption_object_name
from ovvision.solver import build_lr_scheduler, build_optimizer
from ovvision.structures import Instances

logger = logging.getLogger("ovvision.train_osm")

STAGES = ("lm", "pretrain", "instruct")
FINAL = "model_final.pth"
INFERENCE_CONFIG = "osm_inference.yaml"
EVAL_BATCH = 8  # images per naming-evaluation batch


# -- stage 1: the language model ---------------------------------------------------------------
def caption_texts(dataset_names: list[str]) -> list[str]:
    """Every caption of the datasets (``captions`` lists and pair ``caption`` fields)."""
    texts = []
    for name in dataset_names:
        for record in DatasetCatalog.get(name):
            texts.extend(record.get("captions", []))
            if record.get("caption"):
                texts.append(record["caption"])
    if not texts:
        raise ValueError(f"MODEL.OSM.TEXT_DATASETS {dataset_names} hold no caption text")
    return texts


class _CaptionLM(nn.Module):
    """Stage 1 as a trainer model: a batch of texts -> ``{"loss_lm"}`` (next-token CE)."""

    def __init__(self, lm: LanguageModel):
        super().__init__()
        self.lm = lm

    def forward(self, texts: list[str]) -> dict[str, torch.Tensor]:
        seqs = [[self.lm.bos_id, *self.lm.encode(t), self.lm.eos_id] for t in texts]
        width = min(max(len(s) for s in seqs), self.lm.model.config.n_positions)
        ids = torch.zeros(len(seqs), width, dtype=torch.int64)
        labels = torch.full_like(ids, -100)
        for i, s in enumerate(seqs):
            s = s[:width]
            ids[i, : len(s)] = torch.tensor(s)
            labels[i, : len(s)] = torch.tensor(s)
        out = self.lm.model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels)
        return {"loss_lm": out.loss}


def _texts_forever(texts: list[str], batch: int, seed: int) -> Iterator[list[str]]:
    rng = random.Random(seed)
    while True:
        yield [texts[rng.randrange(len(texts))] for _ in range(batch)]


def train_language_model(cfg: CfgNode) -> str:
    """Stage 1; returns the folder of the saved LM (skipped when it exists)."""
    o = cfg.MODEL.OSM
    final = os.path.join(cfg.OUTPUT_DIR, "lm")
    if os.path.isfile(os.path.join(final, "config.json")):
        logger.info("Stage 1 (lm) done before: %s", final)
        return final
    work = os.path.join(cfg.OUTPUT_DIR, "lm_train")
    texts = caption_texts(list(o.TEXT_DATASETS))
    tok_dir = os.path.join(work, "tokenizer")
    if os.path.isfile(os.path.join(tok_dir, "tokenizer.json")):  # resuming: same token ids
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    else:
        extra = list(NAMING_PROMPTS) + list(CAPTION_PROMPTS)
        tokenizer = train_word_tokenizer(texts + extra)
        _save_pretrained_atomic(tokenizer, tok_dir)
    lm = LanguageModel(
        build_tiny_gpt2(
            tokenizer, dim=o.TINY_LM_DIM, layers=o.TINY_LM_LAYERS, heads=o.TINY_LM_HEADS
        ),
        tokenizer,
        source=final,
    )
    params = sum(p.numel() for p in lm.parameters())
    logger.info("Stage 1: GPT-2 of %.2f M parameters, %d tokens", params / 1e6, len(tokenizer))
    model = _CaptionLM(lm)
    _run_stage(cfg, 0, model, _texts_forever(texts, o.STAGE_BATCH[0], cfg.SEED), work, "")
    _save_pretrained_atomic(lm.model, final, tokenizer)
    return final


def _save_pretrained_atomic(obj: Any, folder: str, tokenizer: Any = None) -> None:
    """``save_pretrained`` into a temporary folder renamed into place (never half written)."""
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    obj.save_pretrained(tmp)
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


# -- stages 2 and 3: the MaskQ-Former ----------------------------------------------------------
class _Images:
    """uint8 ``Tensor[3, H, W]`` images by file name; the most recently read ones are kept up to
    ``max_bytes`` (all of OV-Shapes' 200 MB, a few thousand of COCO's 118k images)."""

    def __init__(self, max_bytes: int = 2 << 30) -> None:
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._bytes = 0
        self.max_bytes = max_bytes

    def __call__(self, file_name: str) -> torch.Tensor:
        image = self._cache.get(file_name)
        if image is not None:
            self._cache.move_to_end(file_name)
            return image
        image = torch.from_numpy(read_image(file_name)).permute(2, 0, 1).contiguous()
        self._cache[file_name] = image
        self._bytes += image.numel()
        while self._bytes > self.max_bytes and len(self._cache) > 1:
            self._bytes -= self._cache.popitem(last=False)[1].numel()
        return image


def object_box(crop_box: list[float], crop_scale: float) -> list[float]:
    """The region of a pair: the square (XYXY) whose CLIP crop, ``crop_scale`` times its side as
    the crop token cuts it, is the pair's ``crop_box`` (XYWH, the object with context)."""
    x, y, w, h = crop_box
    cx, cy, half = x + w / 2, y + h / 2, max(w, h) / crop_scale / 2
    return [cx - half, cy - half, cx + half, cy + half]


def caption_regions(dataset_name: str, crop_scale: float) -> dict[str, list[dict[str, Any]]]:
    """Captioned regions by image file; each region's mask is its box.

    Two kinds of dataset serve: object crop pairs (OV-Shapes' ``pretrain_pairs``: the region is
    :func:`object_box` of the pair's ``crop_box``; scene pairs are left out) and image caption
    datasets (records with ``captions``, e.g. ``coco_captions_train``: the region is the whole
    image, once per caption), the image-text pairs OSM's captioner learns from on real data.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for record in DatasetCatalog.get(dataset_name):
        if "captions" in record:
            whole = [0.0, 0.0, float(record["width"]), float(record["height"])]
            out.setdefault(record["file_name"], []).extend(
                {"box": whole, "mask": None, "answer": c} for c in record["captions"] if c
            )
            continue
        if record.get("kind", "object") != "object" or not record.get("crop_box"):
            continue
        box = object_box(record["crop_box"], crop_scale)
        out.setdefault(record["file_name"], []).append(
            {"box": box, "mask": None, "answer": record["caption"]}
        )
    out = {file_name: regions for file_name, regions in out.items() if regions}
    if not out:
        raise ValueError(
            f"MODEL.OSM.PAIR_DATASET '{dataset_name}' has no object crop pair and no image caption"
        )
    return out


def naming_regions(dataset_name: str) -> dict[str, list[dict[str, Any]]]:
    """The base-class masks of a dataset with their class names, by image file. Annotations of
    the dataset's novel classes are dropped (and counted), whatever the json holds."""
    records = DatasetCatalog.get(dataset_name)
    names = list(MetadataCatalog.get(dataset_name).thing_classes)
    novel = dataset_novel_flags(dataset_name)
    out: dict[str, list[dict[str, Any]]] = {}
    dropped = 0
    for r in records:
        for ann in r.get("annotations", []):
            if ann.get("iscrowd", 0) or "segmentation" not in ann:
                continue
            if novel[ann["category_id"]]:
                dropped += 1
                continue
            x, y, w, h = ann["bbox"]
            out.setdefault(r["file_name"], []).append(
                {
                    "box": [x, y, x + w, y + h],
                    "segmentation": ann["segmentation"],
                    "size": (r["height"], r["width"]),
                    "answer": names[ann["category_id"]],
                }
            )
    logger.info("Stage 3: %d images with base masks; %d novel masks dropped", len(out), dropped)
    return out


def _regions_forever(
    naming: dict[str, list[dict[str, Any]]],
    captions: dict[str, list[dict[str, Any]]],
    cfg: CfgNode,
    batch: int,
    caption_fraction: float,
    caption_naming: float = 0.0,
) -> Iterator[list[dict[str, Any]]]:
    """Batches of ``{"image", "regions"}``: per image up to ``REGIONS_PER_IMAGE`` regions, each
    a caption task with probability ``caption_fraction`` (when the image has pairs), else a
    naming task in the ``any`` or the dataset mode. A caption task is asked as a naming task in
    the ``any`` mode, answered with the caption's object name (:func:`caption_object_name`, no
    class list read), with probability ``caption_naming`` (when the caption has one)."""
    o = cfg.MODEL.OSM
    rng = random.Random(cfg.SEED)
    images = _Images()
    files = sorted(naming or captions)
    dataset_mode = o.MODES[1] if len(o.MODES) > 1 else o.MODES[0]
    while True:
        items = []
        for _ in range(batch):
            file_name = files[rng.randrange(len(files))]
            regions = []
            for _ in range(o.REGIONS_PER_IMAGE):
                pairs, masks = captions.get(file_name, []), naming.get(file_name, [])
                if pairs and (not masks or rng.random() < caption_fraction):
                    r = dict(pairs[rng.randrange(len(pairs))])
                    name = caption_object_name(r["answer"])
                    if name and rng.random() < caption_naming:
                        r.update(answer=name, prompt=sample_prompt(NAMING_PROMPTS, rng))
                    else:
                        r["prompt"] = sample_prompt(CAPTION_PROMPTS, rng)
                    r["mode"] = o.MODES[0]
                elif masks:
                    r = dict(masks[rng.randrange(len(masks))])
                    r["mask"] = torch.from_numpy(
                        segmentation_to_mask(r.pop("segmentation"), *r.pop("size"))
                    )
                    mode = dataset_mode if rng.random() < o.DATASET_MODE_FRACTION else o.MODES[0]
                    r.update(prompt=sample_prompt(NAMING_PROMPTS, rng), mode=mode)
                else:
                    continue
                regions.append(r)
            items.append({"image": images(file_name), "file_name": file_name, "regions": regions})
        yield items


def train_cfg(cfg: CfgNode, lm_path: str) -> CfgNode:
    """The config models are trained with: ground-truth regions, the stage 1 LM."""
    c = cfg.clone()
    c.defrost()
    c.MODEL.OSM.PROPOSALS = "ground_truth"
    c.MODEL.OSM.LANGUAGE_MODEL = lm_path
    c.freeze()
    return c


def train_qformer(cfg: CfgNode, lm_path: str, stage: int) -> str:
    """Stage 2 (``pretrain``) or 3 (``instruct``); returns its final checkpoint (skipped when it
    exists). Stage 3 starts from stage 2's weights."""
    name = STAGES[stage]
    folder = os.path.join(cfg.OUTPUT_DIR, name)
    final = os.path.join(folder, FINAL)
    if os.path.isfile(final):
        logger.info("Stage %d (%s) done before: %s", stage + 1, name, final)
        return final
    o = cfg.MODEL.OSM
    model = build_model(train_cfg(cfg, lm_path))
    captions = caption_regions(o.PAIR_DATASET, cfg.MODEL.CLIP_BOX_EMBEDDER.CROP_SCALE)
    if stage == 1:
        data = _regions_forever({}, captions, cfg, o.STAGE_BATCH[1], 1.0)
        init = ""
    else:
        naming = naming_regions(cfg.DATASETS.TRAIN[0])
        data = _regions_forever(
            naming,
            captions,
            cfg,
            o.STAGE_BATCH[2],
            o.INSTRUCT_CAPTION_FRACTION,
            o.INSTRUCT_CAPTION_NAMING,
        )
        init = os.path.join(cfg.OUTPUT_DIR, STAGES[1], FINAL)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info("Stage %d (%s): %.2f M trained parameters", stage + 1, name, trained / 1e6)
    _run_stage(cfg, stage, model, data, folder, init)
    return final


def _run_stage(
    cfg: CfgNode, stage: int, model: nn.Module, data: Iterator, folder: str, init: str
) -> None:
    """Train ``model`` with the project's trainer and hooks for the stage's iterations; resume
    from ``folder``'s last checkpoint when there is one, else start from ``init`` weights."""
    o = cfg.MODEL.OSM
    c = cfg.clone()
    c.defrost()
    c.OUTPUT_DIR = folder
    c.SOLVER.MAX_ITER = int(o.STAGE_ITERS[stage])
    c.SOLVER.BASE_LR = float(o.STAGE_LR[stage])
    c.SOLVER.WARMUP_ITERS = min(c.SOLVER.WARMUP_ITERS, c.SOLVER.MAX_ITER // 10)
    c.freeze()
    os.makedirs(folder, exist_ok=True)
    model.train()
    optimizer = build_optimizer(c, model)
    scheduler = build_lr_scheduler(c, optimizer)
    trainer = SimpleTrainer(model, data, optimizer)
    checkpointer = Checkpointer(model, folder, trainer=trainer, optimizer=optimizer)
    trainer.register_hooks(default_hooks(c, optimizer, scheduler, checkpointer))
    start = resume_or_load(checkpointer, init, resume=True)
    logger.info(
        "Stage %d (%s): iterations %d..%d", stage + 1, STAGES[stage], start, c.SOLVER.MAX_ITER
    )
    began = time.perf_counter()
    trainer.train(start, c.SOLVER.MAX_ITER)
    logger.info("Stage %d took %.1f s", stage + 1, time.perf_counter() - began)


# -- evaluation ---------------------------------------------------------------------------------
def ground_truth_batches(dataset_name: str, batch: int) -> Iterator[list[dict[str, Any]]]:
    """The dataset's images with their ground-truth masks as ``instances``, in batches."""
    images = _Images()
    records = DatasetCatalog.get(dataset_name)
    for start in range(0, len(records), batch):
        items = []
        for r in records[start : start + batch]:
            anns = [a for a in r.get("annotations", []) if not a.get("iscrowd", 0)]
            h, w = r["height"], r["width"]
            masks = [torch.from_numpy(segmentation_to_mask(a["segmentation"], h, w)) for a in anns]
            instances = Instances(
                (h, w),
                gt_masks=torch.stack(masks).bool()
                if masks
                else torch.zeros(0, h, w, dtype=torch.bool),
                gt_classes=torch.tensor([a["category_id"] for a in anns], dtype=torch.int64),
            )
            items.append(
                {
                    "image": images(r["file_name"]),
                    "instances": instances,
                    **{k: r[k] for k in ("file_name", "image_id", "height", "width")},
                }
            )
        yield items


def evaluate(cfg: CfgNode, lm_path: str, weights: str) -> dict[str, Any]:
    """Naming on ground-truth masks (every mode), then vocabulary ranking on proposals."""
    results: dict[str, Any] = {}
    model = build_model(train_cfg(cfg, lm_path))
    Checkpointer(model, save_to_disk=False).load(weights, checkpointables=[])
    model.eval()
    for name in cfg.DATASETS.TEST:
        for mode in cfg.MODEL.OSM.MODES:
            model.set_mode(mode)
            folder = os.path.join(cfg.OUTPUT_DIR, "naming", name, mode)
            evaluator = NamingEvaluator.from_dataset(name, folder, key=f"naming-{mode}")
            evaluator.reset()
            masks, seconds = 0, 0.0
            with torch.no_grad():
                for batch in ground_truth_batches(name, EVAL_BATCH):
                    began = time.perf_counter()
                    outputs = model.name_masks(batch)
                    seconds += time.perf_counter() - began
                    masks += sum(len(x["instances"]) for x in batch)
                    evaluator.process(batch, outputs)
            metrics = evaluator.evaluate()
            metrics[f"naming-{mode}"]["ms_per_mask"] = 1000.0 * seconds / max(masks, 1)
            results.setdefault(name, {}).update(metrics)
    if cfg.MODEL.OSM.PROPOSALS == "detector":
        # names do not change the ranking's AP: not generated here (the naming runs above)
        model = build_model(_with_lm(cfg, lm_path, "MODEL.OSM.GENERATE_NAMES", False))
        Checkpointer(model, save_to_disk=False).load(weights, checkpointables=[])
        configured = model.vocabulary
        for name in cfg.DATASETS.TEST:
            model.set_vocabulary(dataset_vocabulary(configured, name))
            evaluator = build_evaluator(cfg, name, os.path.join(cfg.OUTPUT_DIR, "inference", name))
            began = time.perf_counter()
            metrics = inference_on_dataset(model, build_detection_test_loader(cfg, name), evaluator)
            metrics["seconds"] = time.perf_counter() - began
            results.setdefault(name, {}).update(metrics)
    save_eval_results(results, cfg.OUTPUT_DIR)
    return results


def _with_lm(cfg: CfgNode, lm_path: str, *overrides: Any) -> CfgNode:
    c = cfg.clone()
    c.defrost()
    c.MODEL.OSM.LANGUAGE_MODEL = lm_path
    c.merge_from_list(list(overrides))
    c.freeze()
    return c


def write_inference_config(cfg: CfgNode, lm_path: str, weights: str) -> str:
    """``OUTPUT_DIR/osm_inference.yaml``: the config with the trained LM's folder and the final
    weights as absolute paths, for the Predictor and ``tools/demo.py --open-ended``."""
    c = _with_lm(cfg, os.path.abspath(lm_path), "MODEL.WEIGHTS", os.path.abspath(weights))
    path = os.path.join(cfg.OUTPUT_DIR, INFERENCE_CONFIG)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(c.dump())
    os.replace(path + ".tmp", path)
    logger.info("Inference config written to %s", path)
    return path


def main(args: argparse.Namespace) -> int:
    cfg = load_tool_config(args.config_file, args.opts or [])
    cfg.freeze()
    default_setup(cfg, args)
    if cfg.MODEL.META_ARCHITECTURE != "OSMClassifier":
        raise ValueError(
            f"MODEL.META_ARCHITECTURE must be 'OSMClassifier', got {cfg.MODEL.META_ARCHITECTURE!r}"
        )
    times: dict[str, float] = {}
    began = time.perf_counter()
    lm_path = cfg.MODEL.OSM.LANGUAGE_MODEL or train_language_model(cfg)
    times["lm"] = time.perf_counter() - began
    weights = ""
    for stage in (1, 2):
        began = time.perf_counter()
        weights = (
            train_qformer(cfg, lm_path, stage)
            if not args.eval_only
            else os.path.join(cfg.OUTPUT_DIR, STAGES[stage], FINAL)
        )
        times[STAGES[stage]] = time.perf_counter() - began
    logger.info("Stage times (s): %s", json.dumps({k: round(v, 1) for k, v in times.items()}))
    if not args.eval_only:
        write_json_atomic(os.path.join(cfg.OUTPUT_DIR, "stage_seconds.json"), times)
        write_inference_config(cfg, lm_path, weights)
    if cfg.DATASETS.TEST and not args.skip_eval:
        results = evaluate(cfg, lm_path, weights)
        logger.info("Results: %s", json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--eval-only", action="store_true", help="evaluate the finished stages")
    parser.add_argument("--skip-eval", action="store_true", help="train only")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    arguments = parser.parse_args()
    run_tool(lambda: main(arguments), prog="train_osm.py")
