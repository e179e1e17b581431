"""OVGrounder on random weights: every grounder config trains a step and grounds; padding and
batching do not change results; bad expressions are named; detector weights load strictly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ovvision.config import get_cfg
from ovvision.modeling import build_model
from ovvision.modeling.meta_arch import OVGrounder
from ovvision.modeling.text import ExpressionTooLongError

from ..helpers import CONFIG_DIR, load_config, make_item

SMALL = ["MODEL.GROUNDER.DETECTOR_WEIGHTS", "", "MODEL.GROUNDER.NUM_QUERIES", "6",
         "MODEL.GROUNDER.TOP_K_TEST", "3"]  # fmt: skip


def _grounder_configs() -> list[Path]:
    found = []
    for path in sorted(CONFIG_DIR.rglob("*.yaml")):
        cfg = get_cfg()
        cfg.merge_from_file(str(path))
        if cfg.MODEL.META_ARCHITECTURE == "OVGrounder":
            found.append(path)
    return found


CONFIGS = _grounder_configs()
GROUNDER_CONFIG = CONFIG_DIR / "ov_shapes" / "ovgrounder.yaml"


def _item(seed: int, texts: list[str], boxes: list[list[float]] | None = None) -> dict:
    boxes = boxes or [[6, 6, 46, 38], [50, 20, 76, 60]]
    item = make_item(boxes=boxes, classes=[0, 1][: len(boxes)], seed=seed)
    item["expressions"] = [
        {"text": t, "box": torch.tensor(boxes[i % len(boxes)], dtype=torch.float32)}
        for i, t in enumerate(texts)
    ]
    return item


@pytest.fixture(scope="module")
def grounder() -> OVGrounder:
    torch.manual_seed(0)
    model = build_model(load_config(GROUNDER_CONFIG, *SMALL))
    model.eval()
    return model


def test_grounder_configs_exist():
    assert GROUNDER_CONFIG in CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_config_trains_one_step_and_grounds(path: Path):
    torch.manual_seed(0)
    cfg = load_config(path, *SMALL, "MODEL.GROUNDER.SCORING", "learned")
    model = build_model(cfg)
    trained = [p for p in model.parameters() if p.requires_grad]
    detector = [p.detach().clone() for p in model.detector.parameters()]
    assert trained and not any(p.requires_grad for p in model.detector.parameters())
    model.train()
    assert not model.detector.training  # frozen: stays in eval mode
    # POSITIVE_IOU 0 makes a positive of whatever the random detector proposes
    model.positive_iou = 0.0
    losses = model([_item(1, ["the red circle", "a square"]), _item(2, ["the square"])])
    assert set(losses) == {"loss_ground_cls", "loss_ground_box"}
    assert all(torch.isfinite(v) for v in losses.values())
    before = [p.detach().clone() for p in trained]
    sum(losses.values()).backward()
    torch.optim.SGD(trained, lr=0.1).step()
    assert any(not torch.equal(b, p) for b, p in zip(before, trained))
    assert all(torch.equal(b, p) for b, p in zip(detector, model.detector.parameters()))
    model.eval()
    (out,) = model([_item(3, ["the circle", "square"])])
    assert [e["text"] for e in out["expressions"]] == ["the circle", "square"]
    for expr in out["expressions"]:
        inst = expr["instances"]
        assert inst.image_size == (64, 80) and 1 <= len(inst) <= 3
        assert torch.all(inst.scores[:-1] >= inst.scores[1:])  # best first
        assert inst.pred_masks.shape[1:] == (64, 80)


def test_batch_without_expressions_gives_exact_zeros_reaching_every_parameter():
    torch.manual_seed(0)
    model = build_model(load_config(GROUNDER_CONFIG, *SMALL)).train()
    losses = model([_item(1, [])])
    total = sum(losses.values())
    assert total.item() == 0.0
    total.backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and not p.grad.any(), name


def test_results_do_not_depend_on_the_other_expressions_of_the_batch(grounder):
    (alone,) = grounder([_item(4, ["the red circle"])])
    (together,) = grounder(
        [_item(4, ["a much longer expression about a square", "the red circle"])]
    )
    a, b = alone["expressions"][0]["instances"], together["expressions"][1]["instances"]
    torch.testing.assert_close(a.pred_boxes.tensor, b.pred_boxes.tensor)
    torch.testing.assert_close(a.scores, b.scores)


def test_cosine_scoring_returns_the_most_similar_region_first(grounder):
    item = _item(5, ["the red circle"])
    grounder.scoring = "cosine"
    try:
        (out,) = grounder([item])
        candidates, _, _ = grounder.candidates([item])
        selected, logits, _ = grounder._score(candidates, ["the red circle"], [0])
    finally:
        grounder.scoring = "learned"
    best = candidates[0].boxes[selected[0][logits[0].argmax()]]
    torch.testing.assert_close(out["expressions"][0]["instances"].pred_boxes.tensor[0], best)
    assert torch.all(logits[0][:-1] >= logits[0][1:])  # selection order = similarity order


def test_bad_expressions_are_named(grounder):
    with pytest.raises(ValueError, match="expression 1 is empty"):
        grounder([_item(6, ["a circle", "  "])])
    too_long = " ".join(["red"] * 30)
    with pytest.raises(ExpressionTooLongError, match="context length 16"):
        grounder([_item(6, [too_long])])
    grounder.truncate_text = True
    try:
        (out,) = grounder([_item(6, [too_long])])
    finally:
        grounder.truncate_text = False
    assert len(out["expressions"][0]["instances"]) >= 1


def test_detector_weights_load_strictly(tmp_path, grounder):
    path = tmp_path / "detector.pth"
    torch.save({"model": grounder.detector.state_dict()}, path)
    torch.manual_seed(1)
    cfg = load_config(GROUNDER_CONFIG, *SMALL, "MODEL.GROUNDER.DETECTOR_WEIGHTS", str(path))
    loaded = build_model(cfg)
    for (name, a), b in zip(
        grounder.detector.state_dict().items(), loaded.detector.state_dict().values()
    ):
        assert torch.equal(a, b), name
    missing = load_config(GROUNDER_CONFIG, *SMALL, "MODEL.GROUNDER.DETECTOR_WEIGHTS", "nope.pth")
    with pytest.raises(FileNotFoundError, match="MODEL.GROUNDER.DETECTOR_WEIGHTS"):
        build_model(missing)


def test_unfrozen_detector_is_trained_by_the_grounding_loss():
    """MODEL.GROUNDER.FREEZE_DETECTOR False: the detector (run as at inference) gets gradients
    from the grounding loss in its region head (its candidates were computed without gradients
    before, so the option changed nothing)."""
    torch.manual_seed(0)
    cfg = load_config(GROUNDER_CONFIG, *SMALL, "MODEL.GROUNDER.FREEZE_DETECTOR", "False")
    model = build_model(cfg).train()
    model.positive_iou = 0.0
    assert not model.detector.training
    assert all(p.requires_grad for p in model.detector.roi_heads.classifier.parameters())
    losses = model([_item(1, ["the red circle", "a square"])])
    sum(losses.values()).backward()
    grads = [p.grad for p in model.detector.roi_heads.classifier.parameters() if p.requires_grad]
    assert grads and any(g is not None and g.abs().sum() > 0 for g in grads)
