"""Benchmark the whole OV-RCNN against torchvision's Mask R-CNN, side by side on the same inputs.

Cases (``--size full``; ``--size tiny`` runs the same cases on small images, for the tests):

- ``inference_800x1333``: OV-RCNN R50-FPN (the COCO/LVIS configs' structure, random weights)
  with a 1,203-class vocabulary (LVIS size, random unit text embeddings), CLIP crop-score fusion
  off, against torchvision's Mask R-CNN R50-FPN (random weights), one 800x1333 image;
  ``inference_800x1333_fusion``: the same with fusion on (CLIP ViT-B/16 crops of the
  configs' 300 regions per image) against the same torchvision run.
- ``train_step_800x1333``: forward, backward and SGD step on 2 images of 800x1333 with 512
  sampled regions per image in both.
- ``inference_ov_shapes`` / ``train_step_ov_shapes``: the quickstart detector
  (configs/ov_shapes/ovrcnn_clip_rn_frozen.yaml, 128x128, fusion on as configured) against a
  torchvision Mask R-CNN on the same backbone with the same head sizes.

Both models get the same settings where they differ by default (RPN top-k, regions per image,
detections per image); random weights score every class near chance, so each model's score
threshold is set so that the same number of (region, class) candidates reach NMS
(``--candidates`` per image). ovvision and torchvision alternate, medians are taken after a
warm-up, and ovvision's inference is also split into stages (backbone, RPN, ROI pooling, region
head and vocabulary scoring, CLIP fusion, NMS, mask head, paste; ``other`` is the rest).

Memory layout (``--layout``): ``default`` compares each as shipped (ovvision's
``MODEL.CHANNELS_LAST`` on, torchvision's model contiguous); ``channels_last`` and
``contiguous`` put both models in that layout, the like-for-like comparison.

    python tools/benchmark_model.py --json output/benchmark_model.json [--device cpu|cuda]
        [--size full|tiny] [--threads 2] [--amp bf16] [--layout default]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.misc import FrozenBatchNorm2d

from ovvision import ops
from ovvision.config import CfgNode, get_cfg
from ovvision.modeling import build_model
from ovvision.modeling.meta_arch import ovrcnn as ovrcnn_module
from ovvision.structures import Boxes, Instances
from ovvision.structures.builtin_classes import OV_SHAPES_CLASSES

ROOT = Path(__file__).resolve().parents[1]
R50_CONFIG = ROOT / "configs" / "coco_ov" / "ovrcnn_R50_FPN_1x.yaml"
OV_SHAPES_CONFIG = ROOT / "configs" / "ov_shapes" / "ovrcnn_clip_rn_frozen.yaml"
LVIS_CLASSES = 1203
COCO_TORCHVISION_CLASSES = 91  # torchvision's COCO head: 90 category ids + background
STAGES = (
    "backbone",
    "rpn",
    "roi_pooling",
    "region_head_and_vocabulary_scoring",
    "clip_fusion",
    "nms",
    "mask_head",
    "paste",
)


@dataclasses.dataclass(frozen=True)
class Size:
    """Input sizes and repetitions of one benchmark size."""

    image_hw: tuple[int, int]  # the 800x1333 cases
    ov_shapes_hw: tuple[int, int]
    train_images: int
    gt_per_image: int
    fusion_regions: int  # CLIP crops per image with fusion on (the configs' MAX_REGIONS_PER_IMAGE)
    detections: int  # detections per image (TEST.DETECTIONS_PER_IMAGE)
    candidates: int  # (region, class) pairs per image above the score threshold
    repeats: int
    warmup: int
    overrides: tuple[str, ...] = ()  # config overrides of every ovvision model (and torchvision's)
    fusion_overrides: tuple[str, ...] = ()  # further overrides of the R50 fusion case


# The tiny size only checks the plumbing: fewer regions, and the OV-Shapes CLIP for fusion.
TINY_OVERRIDES = (
    "MODEL.RPN.PRE_NMS_TOPK_TEST", "100",
    "MODEL.RPN.POST_NMS_TOPK_TEST", "30",
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN", "100",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN", "40",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "16",
)  # fmt: skip
TINY_CLIP = (
    "MODEL.TEXT_ENCODER.NAME",
    "OVShapes-CLIP-Tiny",
    "MODEL.ZERO_SHOT_CLASSIFIER.EMBED_DIM",
    "128",
)
SIZES = {
    "full": Size((800, 1333), (128, 128), 2, 12, 300, 100, 1000, 3, 1),
    "tiny": Size((96, 128), (64, 64), 2, 3, 2, 5, 20, 1, 0, TINY_OVERRIDES, TINY_CLIP),
}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class StageTimer:
    """Wall time per stage of a forward, from wrappers around its modules and methods."""

    def __init__(self, device: str):
        self.device = device
        self.totals: dict[str, float] = defaultdict(float)

    def _timed(self, stage: str, fn: Callable) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            _sync(self.device)
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            _sync(self.device)
            self.totals[stage] += (time.perf_counter() - start) * 1e3
            return out

        return timed

    def method(self, obj: Any, name: str, stage: str) -> None:
        """Time calls of ``obj.name`` (an instance attribute shadows the bound method)."""
        setattr(obj, name, self._timed(stage, getattr(obj, name)))

    @contextlib.contextmanager
    def module_function(self, module: Any, name: str, stage: str) -> Iterator[None]:
        """Time calls of the function ``module.name`` while the context is open."""
        original = getattr(module, name)
        setattr(module, name, self._timed(stage, original))
        try:
            yield
        finally:
            setattr(module, name, original)

    def take(self) -> dict[str, float]:
        totals, self.totals = dict(self.totals), defaultdict(float)
        return totals


def instrument_ovrcnn(model: nn.Module, timer: StageTimer) -> None:
    """Attach ``timer`` to the stages of an OVRCNN's inference."""
    heads = model.roi_heads
    for obj, name, stage in (
        (model.backbone, "forward", "backbone"),
        (model.proposal_generator, "forward", "rpn"),
        (heads.box_pooler, "forward", "roi_pooling"),
        (heads.classifier, "forward", "region_head_and_vocabulary_scoring"),
        (heads.classifier, "class_logits", "region_head_and_vocabulary_scoring"),
        (heads.classifier, "class_probs", "region_head_and_vocabulary_scoring"),
        (heads, "_select", "nms"),
    ):
        timer.method(obj, name, stage)
    if heads.fusion is not None:
        timer.method(heads.fusion, "forward", "clip_fusion")
    if heads.mask_head is not None:
        timer.method(heads.mask_pooler, "forward", "roi_pooling")
        timer.method(heads.mask_head, "forward", "mask_head")


# ----------------------------------------------------------------------------------- inputs


def synthetic_items(hw: tuple[int, int], count: int, gt: int, classes: int, seed: int) -> list:
    """``count`` images of noise with ``gt`` flat-coloured boxes each, and their targets."""
    g = torch.Generator().manual_seed(seed)
    h, w = hw
    items = []
    for _ in range(count):
        image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
        xy = torch.rand(gt, 2, generator=g) * torch.tensor([w * 0.7, h * 0.7])
        wh = (torch.rand(gt, 2, generator=g) * 0.25 + 0.05) * torch.tensor([w, h])
        boxes = torch.cat([xy, xy + wh], 1).floor()
        masks = torch.zeros(gt, h, w, dtype=torch.bool)
        for i, (x1, y1, x2, y2) in enumerate(boxes.long().tolist()):
            masks[i, y1:y2, x1:x2] = True
            image[:, y1:y2, x1:x2] = torch.randint(0, 256, (3, 1, 1), generator=g).to(torch.uint8)
        labels = torch.randint(0, classes, (gt,), generator=g)
        items.append({"image": image, "boxes": boxes, "labels": labels, "masks": masks})
    return items


def ovvision_batch(items: list[dict], device: str, train: bool) -> list[dict]:
    batch = []
    for it in items:
        h, w = it["image"].shape[-2:]
        x = {"image": it["image"].to(device), "height": h, "width": w}
        if train:
            x["instances"] = Instances(
                (h, w),
                gt_boxes=Boxes(it["boxes"]),
                gt_classes=it["labels"],
                gt_masks=it["masks"],
            )
        batch.append(x)
    return batch


def torchvision_batch(items: list[dict], device: str) -> tuple[list, list]:
    images = [it["image"].to(device).float() / 255 for it in items]
    targets = [
        {
            "boxes": it["boxes"].to(device),
            "labels": (it["labels"] + 1).to(device),  # 0 is background
            "masks": it["masks"].to(device, torch.uint8),
        }
        for it in items
    ]
    return images, targets


# ----------------------------------------------------------------------------------- models


def _vocabulary_overrides(tmp: Path, classes: int, dim: int, seed: int) -> list[str]:
    """Config overrides for a ``classes``-name vocabulary of random unit embeddings."""
    g = np.random.default_rng(seed)
    emb = g.standard_normal((classes, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    path = tmp / f"vocabulary_{classes}x{dim}_{seed}.npy"
    np.save(path, emb)
    names = tmp / f"names_{classes}.txt"
    names.write_text("".join(f"class {i}\n" for i in range(classes)))
    return [
        "VOCABULARY.NAME", "custom",
        "VOCABULARY.CUSTOM", str(names),
        "VOCABULARY.EMBEDDINGS", str(path),
        "VOCABULARY.ANNOTATION_JSON", "",
    ]  # fmt: skip


def ovvision_config(path: Path, device: str, tmp: Path, classes: int, size: Size, *extra: str):
    """The config at ``path``, offline (random weights), with a ``classes``-class vocabulary of
    random unit embeddings and ``size``'s and ``extra`` overrides."""
    cfg = get_cfg()
    cfg.merge_from_file(str(path))
    cfg.merge_from_list([*size.overrides, *extra])
    dim = cfg.MODEL.ZERO_SHOT_CLASSIFIER.EMBED_DIM
    cfg.merge_from_list(
        [
            "MODEL.DEVICE", device,
            "MODEL.TIMM.PRETRAINED", "",
            "MODEL.TEXT_ENCODER.PRETRAINED", "",
            "DATASETS.TRAIN", "()",
            "DATASETS.TEST", "()",
            "TEST.DETECTIONS_PER_IMAGE", str(size.detections),
            *_vocabulary_overrides(tmp, classes, dim, 0),
        ]
    )  # fmt: skip
    return cfg


def build_ovrcnn(cfg: CfgNode) -> nn.Module:
    torch.manual_seed(0)
    return build_model(cfg).to(cfg.MODEL.DEVICE)


def _torchvision_r50(cfg: CfgNode, device: str, hw: tuple[int, int]) -> nn.Module:
    """torchvision's Mask R-CNN R50-FPN as a user fine-tunes it (frozen BN, 3 trainable stages),
    random weights, with ovvision's RPN and region settings."""
    torch.manual_seed(0)
    backbone = resnet_fpn_backbone(
        backbone_name="resnet50", weights=None, norm_layer=FrozenBatchNorm2d, trainable_layers=3
    )
    return MaskRCNN(backbone, COCO_TORCHVISION_CLASSES, **_shared_settings(cfg, hw)).to(device)


class _TorchvisionBackbone(nn.Module):
    """An ovvision backbone behind torchvision's interface (``out_channels``, ordered dict)."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.body = backbone
        self.out_channels = backbone.out_channels

    def forward(self, x: torch.Tensor) -> OrderedDict:
        features = self.body(x)
        return OrderedDict((name, features[name]) for name in self.body.output_names)


def _torchvision_on_ovvision_backbone(
    cfg: CfgNode, device: str, classes: int, hw: tuple[int, int]
) -> nn.Module:
    """torchvision's Mask R-CNN on a fresh copy of the OV-Shapes detector's backbone, with its
    anchors, pooler sizes, box-head width and mask-head convolutions."""
    ov = build_ovrcnn(cfg)
    backbone = _TorchvisionBackbone(ov.backbone)
    names = list(ov.backbone.output_names)
    c = backbone.out_channels
    box_res, mask_res = (
        cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION,
        cfg.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION,
    )
    fc, conv = cfg.MODEL.ROI_BOX_HEAD.FC_DIM, cfg.MODEL.ROI_MASK_HEAD.CONV_DIM
    sizes = [tuple(s) for s in cfg.MODEL.ANCHOR_GENERATOR.SIZES]
    ratios = [tuple(cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS[0])] * len(sizes)
    torch.manual_seed(0)
    return MaskRCNN(
        backbone,
        None,  # the predictors below set the class count
        rpn_anchor_generator=AnchorGenerator(tuple(sizes), tuple(ratios)),
        box_roi_pool=MultiScaleRoIAlign(names, box_res, 2),
        box_head=TwoMLPHead(c * box_res**2, fc),
        box_predictor=FastRCNNPredictor(fc, classes + 1),
        mask_roi_pool=MultiScaleRoIAlign(names, mask_res, 2),
        mask_head=MaskRCNNHeads(c, [conv] * cfg.MODEL.ROI_MASK_HEAD.NUM_CONV, 1),
        mask_predictor=MaskRCNNPredictor(conv, conv, classes + 1),
        image_mean=[m / 255 for m in cfg.MODEL.PIXEL_MEAN],
        image_std=[s / 255 for s in cfg.MODEL.PIXEL_STD],
        **_shared_settings(cfg, hw),
    ).to(device)


def _shared_settings(cfg: CfgNode, hw: tuple[int, int]) -> dict[str, Any]:
    """torchvision Mask R-CNN keyword arguments that give it ovvision's config values; its
    resizing keeps ``hw`` images at their size (ovvision's mapper resizes outside the model)."""
    r, h = cfg.MODEL.RPN, cfg.MODEL.ROI_HEADS
    return {
        "min_size": min(hw),
        "max_size": max(hw),
        "rpn_pre_nms_top_n_train": r.PRE_NMS_TOPK_TRAIN,
        "rpn_post_nms_top_n_train": r.POST_NMS_TOPK_TRAIN,
        "rpn_pre_nms_top_n_test": r.PRE_NMS_TOPK_TEST,
        "rpn_post_nms_top_n_test": r.POST_NMS_TOPK_TEST,
        "rpn_batch_size_per_image": r.BATCH_SIZE_PER_IMAGE,
        "box_batch_size_per_image": h.BATCH_SIZE_PER_IMAGE,
        "box_nms_thresh": h.NMS_THRESH_TEST,
        "box_detections_per_img": cfg.TEST.DETECTIONS_PER_IMAGE,
    }


def calibrate_thresholds(
    ov: nn.Module, tv: nn.Module, ov_batch: list, tv_images: list, candidates: int
) -> dict[str, float]:
    """Set both score thresholds so that about ``candidates`` (region, class) pairs per image
    pass them (the lowest of the images' ``candidates``-th highest class probabilities, as NMS
    sees them: after CLIP fusion in ovvision)."""
    captured: dict[str, list[torch.Tensor]] = {"ovvision": [], "torchvision": []}
    heads = ov.roi_heads
    select = heads._select

    def capture(boxes: torch.Tensor, probs: torch.Tensor, image_size: tuple[int, int]) -> Any:
        captured["ovvision"].append(probs.detach().float().flatten())
        return select(boxes, probs, image_size)

    tv_counts: list[int] = []  # proposals per image (RPN NMS keeps a different number in each)

    def tv_proposals(_module: nn.Module, inputs: tuple[Any, ...]) -> None:
        tv_counts[:] = [len(p) for p in inputs[1]]  # RoIHeads.forward(features, proposals, ...)

    def tv_capture(_module: nn.Module, _inputs: Any, out: tuple[torch.Tensor, ...]) -> None:
        probs = out[0].float().softmax(-1)[:, 1:]
        captured["torchvision"].extend(p.flatten() for p in probs.split(tv_counts))

    heads._select = capture
    hooks = [
        tv.roi_heads.register_forward_pre_hook(tv_proposals),
        tv.roi_heads.box_predictor.register_forward_hook(tv_capture),
    ]
    try:
        with torch.no_grad():
            ov(ov_batch)
            tv(tv_images)
    finally:
        del heads._select
        for hook in hooks:
            hook.remove()
    thresholds = {}
    for name, per_image in captured.items():
        thresholds[name] = min(float(p.topk(min(candidates, len(p))).values[-1]) for p in per_image)
    heads.detection = dataclasses.replace(heads.detection, score_thresh=thresholds["ovvision"])
    tv.roi_heads.score_thresh = thresholds["torchvision"]
    return thresholds


# ----------------------------------------------------------------------------------- timing


def side_by_side(
    ours: Callable[[], object],
    theirs: Callable[[], object],
    device: str,
    size: Size,
    timer: StageTimer | None = None,
) -> dict[str, Any]:
    """Median wall ms of both after ``size.warmup`` untimed runs, alternating which goes first
    (and median process CPU ms); with a ``timer`` attached to ``ours``, each stage's median."""
    for _ in range(size.warmup):
        ours(), theirs()
    if timer is not None:
        timer.take()
    wall: dict[str, list[float]] = {"ovvision": [], "torchvision": []}
    cpu: dict[str, list[float]] = {"ovvision": [], "torchvision": []}
    stages: dict[str, list[float]] = defaultdict(list)
    for rep in range(size.repeats):
        order = ("ovvision", "torchvision") if rep % 2 == 0 else ("torchvision", "ovvision")
        for name in order:
            _sync(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            (ours if name == "ovvision" else theirs)()
            _sync(device)
            wall[name].append((time.perf_counter() - start) * 1e3)
            cpu[name].append((time.process_time() - start_cpu) * 1e3)
            if name == "ovvision" and timer is not None:
                run = timer.take()
                run["other"] = wall[name][-1] - sum(run.values())
                for stage, ms in run.items():
                    stages[stage].append(ms)
    ours_ms, theirs_ms = statistics.median(wall["ovvision"]), statistics.median(wall["torchvision"])
    result: dict[str, Any] = {
        "ovvision_ms": round(ours_ms, 1),
        "torchvision_ms": round(theirs_ms, 1),
        "ratio": round(ours_ms / theirs_ms, 3),
        # Process CPU time (all threads): other programs on a shared machine disturb it less.
        "process_cpu_ms": {k: round(statistics.median(v), 1) for k, v in cpu.items()},
    }
    if timer is not None:
        order = [s for s in (*STAGES, "other") if s in stages]
        result["ovvision_stages_ms"] = {s: round(statistics.median(stages[s]), 1) for s in order}
    return result


def _autocast(device: str, amp: str | None) -> contextlib.AbstractContextManager:
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[amp])


def inference_case(
    ov: nn.Module, tv: nn.Module, items: list, args: argparse.Namespace, size: Size
) -> dict[str, Any]:
    ov.eval(), tv.eval()
    batch = ovvision_batch(items, args.device, train=False)
    images, _ = torchvision_batch(items, args.device)
    thresholds = calibrate_thresholds(ov, tv, batch, images, size.candidates)
    timer = StageTimer(args.device)
    instrument_ovrcnn(ov, timer)

    def ours() -> None:
        with torch.no_grad(), _autocast(args.device, args.amp):
            out = ov(batch)
        ours.detections = sum(len(o["instances"]) for o in out)

    def theirs() -> None:
        with torch.no_grad(), _autocast(args.device, args.amp):
            out = tv(images)
        theirs.detections = sum(len(o["boxes"]) for o in out)

    with timer.module_function(ovrcnn_module, "detector_postprocess", "paste"):
        result = side_by_side(ours, theirs, args.device, size, timer)
    result["detections"] = {"ovvision": ours.detections, "torchvision": theirs.detections}
    result["score_thresholds"] = {k: float(f"{v:.3g}") for k, v in thresholds.items()}
    return result


def train_step_case(
    ov: nn.Module, tv: nn.Module, items: list, args: argparse.Namespace, size: Size
) -> dict[str, Any]:
    ov.train(), tv.train()
    batch = ovvision_batch(items, args.device, train=True)
    images, targets = torchvision_batch(items, args.device)
    opt_ov = torch.optim.SGD([p for p in ov.parameters() if p.requires_grad], lr=1e-5)
    opt_tv = torch.optim.SGD([p for p in tv.parameters() if p.requires_grad], lr=1e-5)

    def step(model: nn.Module, opt: torch.optim.Optimizer, *inputs: Any) -> None:
        opt.zero_grad(set_to_none=True)
        with _autocast(args.device, args.amp):
            losses = model(*inputs)
        sum(losses.values()).backward()
        opt.step()

    return side_by_side(
        lambda: step(ov, opt_ov, batch),
        lambda: step(tv, opt_tv, images, targets),
        args.device,
        size,
    )


# ----------------------------------------------------------------------------------- main


def clip_models_built(fn: Callable[[], nn.Module]) -> tuple[nn.Module, int]:
    """``fn()`` and how many open_clip models it created (one CLIP should serve everything)."""
    import open_clip

    calls = {"n": 0}
    original = open_clip.create_model

    def counting(*a: Any, **k: Any) -> nn.Module:
        calls["n"] += 1
        return original(*a, **k)

    open_clip.create_model = counting
    try:
        return fn(), calls["n"]
    finally:
        open_clip.create_model = original


# --layout -> (ovvision's MODEL.CHANNELS_LAST, None = its config default; torchvision channels-last)
LAYOUTS: dict[str, tuple[bool | None, bool]] = {
    "default": (None, False),  # each as shipped (torchvision's models come contiguous)
    "channels_last": (True, True),
    "contiguous": (False, False),
}


def _in_layout(build: Callable[..., nn.Module], channels_last: bool) -> Callable:
    """``build`` whose torchvision model is put in one layout (also the ovvision backbone that
    ``_torchvision_on_ovvision_backbone`` borrows)."""

    def built(*args: Any) -> nn.Module:
        layout = torch.channels_last if channels_last else torch.contiguous_format
        return build(*args).to(memory_format=layout)

    return built


def run_cases(args: argparse.Namespace, size: Size, tmp: Path) -> dict[str, dict]:
    results: dict[str, dict] = {}
    wanted = set(args.cases or [])

    def want(name: str) -> bool:
        return not wanted or name in wanted

    def report(name: str, result: dict) -> None:
        results[name] = result
        print(
            f"{name:28s} ovvision {result['ovvision_ms']:9.1f} ms   "
            f"torchvision {result['torchvision_ms']:9.1f} ms   ratio {result['ratio']:.2f}",
            flush=True,
        )
        if "ovvision_stages_ms" in result:
            print("    stages (ms): " + json.dumps(result["ovvision_stages_ms"]), flush=True)

    d = args.device
    no_fusion = ["MODEL.CLIP_BOX_EMBEDDER.SOURCE", "", "MODEL.CLIP_SCORE_FUSION.ENABLED", "False"]
    ours, theirs = LAYOUTS[args.layout]
    in_layout = [] if ours is None else ["MODEL.CHANNELS_LAST", str(ours)]
    torchvision_r50 = _in_layout(_torchvision_r50, theirs)
    torchvision_on_ovvision_backbone = _in_layout(_torchvision_on_ovvision_backbone, theirs)
    cfg = ovvision_config(R50_CONFIG, d, tmp, LVIS_CLASSES, size, *no_fusion, *in_layout)
    r50_items = synthetic_items(size.image_hw, 1, size.gt_per_image, LVIS_CLASSES, 1)
    if want("inference_800x1333") or want("train_step_800x1333"):
        ov, clips = clip_models_built(lambda: build_ovrcnn(cfg))
        tv = torchvision_r50(cfg, d, size.image_hw)
        if want("inference_800x1333"):
            report("inference_800x1333", inference_case(ov, tv, r50_items, args, size) | {
                "clip_models_built": clips})  # fmt: skip
        if want("train_step_800x1333"):
            train_items = synthetic_items(
                size.image_hw, size.train_images, size.gt_per_image, COCO_TORCHVISION_CLASSES - 1, 2
            )
            ov, tv = build_ovrcnn(cfg), torchvision_r50(cfg, d, size.image_hw)
            report("train_step_800x1333", train_step_case(ov, tv, train_items, args, size))
        del ov, tv
    if want("inference_800x1333_fusion"):
        fusion_cfg = ovvision_config(
            R50_CONFIG, d, tmp, LVIS_CLASSES, size,
            "MODEL.CLIP_SCORE_FUSION.MAX_REGIONS_PER_IMAGE", str(size.fusion_regions),
            *size.fusion_overrides, *in_layout,
        )  # fmt: skip
        ov, clips = clip_models_built(lambda: build_ovrcnn(fusion_cfg))
        tv = torchvision_r50(fusion_cfg, d, size.image_hw)
        result = inference_case(ov, tv, r50_items, args, size)
        report("inference_800x1333_fusion", result | {"clip_models_built": clips})
        del ov, tv
    classes = len(OV_SHAPES_CLASSES)
    shapes_cfg = ovvision_config(OV_SHAPES_CONFIG, d, tmp, classes, size, *in_layout)
    shapes_cfg.merge_from_list(
        [
            "INPUT.MIN_SIZE_TEST",
            min(size.ov_shapes_hw),
            "INPUT.MAX_SIZE_TEST",
            max(size.ov_shapes_hw),
        ]
    )
    shapes_items = synthetic_items(size.ov_shapes_hw, 1, 3, classes, 3)
    if want("inference_ov_shapes"):
        ov, clips = clip_models_built(lambda: build_ovrcnn(shapes_cfg))
        tv = torchvision_on_ovvision_backbone(shapes_cfg, d, classes, size.ov_shapes_hw)
        result = inference_case(ov, tv, shapes_items, args, size)
        report("inference_ov_shapes", result | {"clip_models_built": clips})
    if want("train_step_ov_shapes"):
        ov = build_ovrcnn(shapes_cfg)
        tv = torchvision_on_ovvision_backbone(shapes_cfg, d, classes, size.ov_shapes_hw)
        items = synthetic_items(size.ov_shapes_hw, 8, 3, classes, 4)  # IMS_PER_BATCH of the config
        report("train_step_ov_shapes", train_step_case(ov, tv, items, args, size))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, type=Path, help="where to write the results")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--size", default="full", choices=sorted(SIZES))
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch)")
    parser.add_argument("--amp", choices=["bf16", "fp16"], help="autocast dtype (default: off)")
    parser.add_argument(
        "--layout", default="default", choices=sorted(LAYOUTS),
        help="memory layout: each library's default, or both channels_last / contiguous",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, help="timed runs per case (default: by --size)")
    parser.add_argument("--warmup", type=int, help="untimed runs per case (default: by --size)")
    parser.add_argument(
        "--candidates", type=int,
        help="(region, class) pairs per image above the score threshold (default: by --size)",
    )  # fmt: skip
    parser.add_argument("--cases", nargs="+", help="run only these cases (default: all)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("benchmark_model.py: --device cuda: no CUDA device is available", file=sys.stderr)
        return 1
    size = SIZES[args.size]
    size = dataclasses.replace(
        size,
        repeats=args.repeats if args.repeats is not None else size.repeats,
        warmup=args.warmup if args.warmup is not None else size.warmup,
        candidates=args.candidates if args.candidates is not None else size.candidates,
    )
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results = run_cases(args, size, Path(tmp))
    results["meta"] = {
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "size": args.size,
        "amp": args.amp or "off",
        "layout": args.layout,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu_isa": ops.cpu_isa(),
        "ovvision_ops_compiled": ops.has_ops(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "repeats": size.repeats,
        "warmup": size.warmup,
        "candidates_per_image": size.candidates,
        "detections_per_image": size.detections,
        "statistic": "median wall time; ovvision and torchvision alternate on the same inputs",
        "ratio": "ovvision_ms / torchvision_ms",
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "total_s": round(time.perf_counter() - start, 1),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
