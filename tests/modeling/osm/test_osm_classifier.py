"""OSMClassifier: every OSM config builds, trains one step and infers (random weights), with
ground-truth masks and with a detector's class-agnostic masks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ovvision.checkpoint import Checkpointer
from ovvision.modeling import build_model
from ovvision.modeling.meta_arch import OVRCNN
from ovvision.structures import ClassList

from ..helpers import CONFIG_DIR, load_config, make_item

OSM_CONFIGS = sorted((CONFIG_DIR / "ov_shapes").glob("osm_tiny*.yaml"))
# The COCO-OV and LVIS-OV configs as shipped (ViT-B/16 CLIP, InstructBLIP-wide MaskQ-Former),
# with random weights and the tiny LM: seconds each on CPU, so run by `make test` only.
GPU_OSM_CONFIGS = sorted(CONFIG_DIR.glob("*_ov/osm_*.yaml"))


def _config(path: Path, lm_dir: Path, *overrides: str):
    return load_config(
        path, "MODEL.OSM.LANGUAGE_MODEL", str(lm_dir), "MODEL.OSM.MAX_PROPOSALS", "5", *overrides
    )


@pytest.fixture(scope="module")
def detector_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random OV-RCNN of the OSM config's architecture, saved as a project checkpoint."""
    folder = tmp_path_factory.mktemp("osm_detector")
    torch.manual_seed(0)
    cfg = load_config(OSM_CONFIGS[0], "MODEL.META_ARCHITECTURE", "OVRCNN")
    Checkpointer(OVRCNN(cfg), str(folder), save_to_disk=True).save("model_final")
    return folder / "model_final.pth"


def test_there_is_an_osm_config():
    assert any(p.name == "osm_tiny.yaml" for p in OSM_CONFIGS)
    assert {p.parent.name for p in GPU_OSM_CONFIGS} == {"coco_ov", "lvis_ov"}


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=p.name) for p in OSM_CONFIGS]
    + [pytest.param(p, id=f"{p.parent.name}/{p.name}", marks=pytest.mark.slow)
       for p in GPU_OSM_CONFIGS],
)  # fmt: skip
def test_config_trains_one_step_and_names_ground_truth_masks(path: Path, tiny_lm_dir: Path):
    torch.manual_seed(0)
    cfg = _config(path, tiny_lm_dir, "MODEL.OSM.PROPOSALS", "ground_truth")
    model = build_model(cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    lm_trained = any(p.requires_grad for p in model.lm.parameters())
    assert params and lm_trained == (cfg.MODEL.OSM.TRAIN_LM_LAYERS > 0)
    assert not any(p.requires_grad for p in model.tower.parameters())
    model.train()
    item = make_item(boxes=[[6, 6, 46, 38], [50, 10, 70, 30]], classes=[0, 1], seed=1)
    regions = [
        {"box": [6, 6, 46, 38], "mask": item["instances"].gt_masks[0], "prompt": "what is in "
         "the segmentation mask ?", "answer": "circle", "mode": "any"},
        {"box": [50, 10, 70, 30], "mask": None, "prompt": "describe the masked region .",
         "answer": "a red circle", "mode": model.qformer.modes[-1]},
    ]  # fmt: skip
    losses = model([{"image": item["image"], "regions": regions}, {"image": item["image"]}])
    assert set(losses) == {"loss_osm_lm"} and torch.isfinite(losses["loss_osm_lm"])
    before = [p.detach().clone() for p in params]
    optimizer = torch.optim.SGD(params, lr=0.1)
    losses["loss_osm_lm"].backward()
    optimizer.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, params))
    empty = model([{"image": item["image"], "regions": []}])["loss_osm_lm"]
    assert empty.item() == 0.0 and empty.requires_grad

    model.eval()
    model.set_vocabulary(ClassList(["circle", "square", "star"], synonyms=[["ring"], [], []]))
    item["height"], item["width"] = 128, 160  # outputs at the original size
    (out,) = model([item])
    inst = out["instances"]
    # detections per mask: its k best-ranked classes, at most the vocabulary's 3
    k = min(cfg.MODEL.OSM.CLASSES_PER_MASK, 3)
    assert inst.image_size == (128, 160) and len(inst) == 2 * k
    assert inst.pred_masks.shape == (2 * k, 128, 160) and inst.pred_classes.max() < 3
    assert torch.equal(inst.proposal_index, torch.tensor([0, 1]).repeat_interleave(k))
    assert len(inst.pred_names) == 2 * k and all(isinstance(n, str) for n in inst.pred_names)
    assert ((inst.scores > 0) & (inst.scores <= 1)).all()


def test_detector_proposals_give_ordinary_detections(tiny_lm_dir: Path, detector_weights: Path):
    torch.manual_seed(0)
    cfg = _config(
        OSM_CONFIGS[0], tiny_lm_dir, "MODEL.OSM.DETECTOR_WEIGHTS", str(detector_weights),
        "MODEL.OSM.CLASSES_PER_MASK", "2",
    )  # fmt: skip
    model = build_model(cfg).eval()
    assert model.detector is not None and model.tower is model.detector.backbone.tower
    assert not any(k.startswith("detector.") for k in model.state_dict())
    (out,) = model([make_item(seed=3)])
    inst = out["instances"]
    assert inst.image_size == (64, 80) and len(inst) <= 10
    assert {"pred_boxes", "scores", "pred_classes", "pred_masks", "pred_names"} <= set(
        inst.get_fields()
    )
    assert inst.pred_masks.shape[1:] == (64, 80) and len(inst.pred_names) == len(inst)
    assert len(inst) == 2 * len(set(inst.proposal_index.tolist()))  # CLASSES_PER_MASK 2

    (named,) = model.name_masks([make_item(seed=3)])  # open-ended: one row per proposal
    named = named["instances"]
    assert torch.equal(named.proposal_index, torch.arange(len(named)))
    assert len(named) == len(inst) // 2 and (named.pred_classes == 0).all()
    assert ((named.scores > 0) & (named.scores <= 1)).all()
    assert named.pred_masks.shape[1:] == (64, 80) and len(named.pred_names) == len(named)


def test_bad_settings_name_their_key(tiny_lm_dir: Path, tmp_path: Path):
    path = OSM_CONFIGS[0]
    with pytest.raises(FileNotFoundError, match="MODEL.OSM.DETECTOR_WEIGHTS"):
        build_model(_config(path, tiny_lm_dir, "MODEL.OSM.DETECTOR_WEIGHTS", str(tmp_path / "x")))
    with pytest.raises(ValueError, match="MODEL.OSM.FEATURE_LEVELS"):
        build_model(_config(path, tiny_lm_dir, "MODEL.OSM.PROPOSALS", "ground_truth",
                            "MODEL.OSM.FEATURE_LEVELS", "['p9']"))  # fmt: skip
    with pytest.raises(ValueError, match="MODEL.OSM.PROPOSALS"):
        build_model(_config(path, tiny_lm_dir, "MODEL.OSM.PROPOSALS", "boxes"))
    model = build_model(_config(path, tiny_lm_dir, "MODEL.OSM.PROPOSALS", "ground_truth")).eval()
    with pytest.raises(ValueError, match="no instances with gt_masks"):
        model([{"image": make_item()["image"], "file_name": "a.png"}])


def test_frozen_lm_stays_frozen_and_in_eval_mode(tiny_lm_dir: Path):
    cfg = _config(
        OSM_CONFIGS[0], tiny_lm_dir, "MODEL.OSM.PROPOSALS", "ground_truth",
        "MODEL.OSM.TRAIN_LM_LAYERS", "0",
    )  # fmt: skip
    model = build_model(cfg).train()
    assert not any(p.requires_grad for p in model.lm.parameters())
    assert not model.lm.training and not model.tower.training and model.qformer.training
    model = build_model(_config(OSM_CONFIGS[0], tiny_lm_dir, "MODEL.OSM.PROPOSALS", "ground_truth",
                                "MODEL.OSM.TRAIN_LM_LAYERS", "1")).train()  # fmt: skip
    assert model.lm.training
