"""Proxy-novel classwise mixup (ProxyDet): the loss by hand, zero cases, DDP, seen rule, fusion."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch
import torch.nn.functional as F

from ovvision.engine import create_ddp_model, launch
from ovvision.modeling import build_model
from ovvision.modeling.clip_regions import fuse_scores
from ovvision.modeling.losses.proxy_mixup import class_prototypes, mixup_l1, random_pairs
from ovvision.utils import comm

from ..helpers import make_item, tiny_config

MIXUP = ("MODEL.ROI_HEADS.AUXILIARY_LOSSES", '["ProxyNovelMixupLoss"]')


def _unit(*values: float) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def _l1(a: list[float], b: list[float]) -> float:
    return sum(abs(x - y) for x, y in zip(a, b))


def _mix(lam: float, a: list[float], b: list[float]) -> list[float]:
    return _unit(*[lam * x + (1 - lam) * y for x, y in zip(a, b)])


@pytest.mark.parametrize("weighting", ["objectness", "uniform", "iou"])
def test_the_loss_equals_a_hand_computation(weighting):
    # 3 classes in 2-D; class 0 has two regions, classes 1 and 2 one each
    e = [_unit(1, 0), _unit(1, 1), _unit(0, 1), _unit(-1, 1)]
    labels = [0, 0, 1, 2]
    logits = [0.0, math.log(3.0), 2.0, -1.0]  # softmax within class 0: 1/4, 3/4
    ious = [0.6, 0.9, 0.7, 0.5]  # within class 0: 0.4, 0.6
    w0 = {"objectness": [0.25, 0.75], "uniform": [0.5, 0.5], "iou": [0.4, 0.6]}[weighting]
    p0 = [w0[0] * e[0][i] + w0[1] * e[1][i] for i in range(2)]
    prototypes_by_hand = [p0, e[2], e[3]]
    text = [_unit(2, 1), _unit(1, 3), _unit(-2, 1)]
    pairs, lam = [(0, 1), (1, 2), (2, 0)], 0.3
    expected = sum(
        _l1(_mix(lam, prototypes_by_hand[a], prototypes_by_hand[b]), _mix(lam, text[a], text[b]))
        for a, b in pairs
    ) / len(pairs)

    scores = torch.tensor(ious if weighting == "iou" else logits)
    present, prototypes = class_prototypes(torch.tensor(e), torch.tensor(labels), scores, weighting)
    assert present.tolist() == [0, 1, 2]
    assert torch.allclose(prototypes, torch.tensor(prototypes_by_hand), atol=1e-6)
    loss = mixup_l1(prototypes, torch.tensor(text), torch.tensor(pairs), lam)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_random_pairs_never_pair_a_class_with_itself():
    generator = torch.Generator().manual_seed(0)
    for n in range(2, 7):
        pairs = random_pairs(n, generator)
        assert len(pairs) == n and (pairs[:, 0] != pairs[:, 1]).all()
        assert sorted(pairs[:, 0].tolist()) == list(range(n))
    assert random_pairs(1).shape == (0, 2) and random_pairs(0).shape == (0, 2)


@pytest.mark.parametrize("separate", ["False", "True"])
def test_no_pair_gives_an_exact_zero_that_reaches_every_parameter(separate):
    torch.manual_seed(0)
    model = build_model(tiny_config(*MIXUP, "MODEL.PROXY_MIXUP.SEPARATE_HEAD", separate))
    model.train()
    batches = {
        "one class": [make_item(boxes=[[4, 6, 40, 30], [30, 20, 70, 60]], classes=[1, 1])],
        "empty images": [make_item(seed=1), make_item(seed=2, height=48)],
    }
    for what, batch in batches.items():
        model.zero_grad(set_to_none=True)
        losses = model(batch)
        assert losses["loss_proxy_mixup"].item() == 0.0, what
        sum(losses.values()).backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert missing == [], what
    two_classes = [make_item(boxes=[[4, 6, 40, 30], [30, 20, 70, 60]], classes=[0, 2])]
    loss = model(two_classes)["loss_proxy_mixup"]
    assert torch.isfinite(loss) and loss.item() > 0
    if separate == "True":
        head = model.roi_heads.auxiliary_losses[0].separate_head
        model.zero_grad(set_to_none=True)
        loss.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
        # the classifier's own embedding is not trained by the mixup loss
        assert model.roi_heads.classifier.embed.weight.grad is None


def _ddp_worker(output_dir: str) -> None:
    torch.manual_seed(0)
    cfg = tiny_config(*MIXUP, "MODEL.PROXY_MIXUP.SEPARATE_HEAD", "True")
    model = create_ddp_model(build_model(cfg), broadcast_buffers=False)  # no unused parameters
    # rank 0 has two classes to mix, rank 1 only empty images: both must reach every parameter
    batch = (
        [make_item(boxes=[[4, 6, 40, 30], [30, 20, 70, 60]], classes=[0, 2])]
        if comm.get_rank() == 0
        else [make_item(seed=5)]
    )
    model.train()
    for _ in range(2):
        model.zero_grad()
        losses = model(batch)
        sum(losses.values()).backward()
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    head = model.module.roi_heads.auxiliary_losses[0].separate_head
    grads = torch.cat([p.grad.flatten() for p in head.parameters()])
    gathered = comm.all_gather(
        {"loss": float(losses["loss_proxy_mixup"]), "sum": float(flat.sum()),
         "head_grad": float(grads.abs().sum())}
    )  # fmt: skip
    if comm.is_main_process():
        with open(os.path.join(output_dir, "ddp.json"), "w") as f:
            json.dump(gathered, f)


def test_two_gloo_processes_train_with_the_mixup_loss(tmp_path):
    launch(_ddp_worker, num_gpus_per_machine=2, args=(str(tmp_path),), backend="gloo")
    ranks = json.loads((tmp_path / "ddp.json").read_text())
    assert ranks[0]["loss"] > 0 and ranks[1]["loss"] == 0.0
    # gradients were averaged: the zero rank's head gradient equals the other's
    assert (
        ranks[0]["head_grad"] == pytest.approx(ranks[1]["head_grad"]) and ranks[0]["head_grad"] > 0
    )


def test_a_class_counts_as_seen_by_text_similarity_above_the_threshold():
    torch.manual_seed(0)
    by_name = build_model(tiny_config())
    by_cosine = build_model(tiny_config("MODEL.PROXY_MIXUP.SEEN_COSINE_THRESHOLD", "0.9"))
    names = ["Star", "STAR|stars", "circle", "circle shape", "kettle"]
    with pytest.warns(UserWarning, match="duplicate class name"):
        by_name.set_vocabulary(names)
    with pytest.warns(UserWarning, match="duplicate class name"):
        by_cosine.set_vocabulary(names)
    # "STAR|stars" merges into "Star" (case-insensitive duplicates)
    assert by_name.class_names == ["Star", "circle", "circle shape", "kettle"]
    assert by_name.classes.seen.tolist() == [True, True, False, False]
    embeddings = by_cosine.vocabulary.embeddings
    trained = by_cosine._trained_embeddings
    expected = (embeddings @ trained.t()).max(dim=1).values > 0.9
    assert by_cosine.classes.seen.tolist() == (expected | by_name.classes.seen).tolist()
    # a class marked novel never counts as seen, however similar
    from ovvision.structures import ClassList

    by_cosine.set_vocabulary(ClassList(["circle", "star"], is_novel=[True, False]))
    assert by_cosine.classes.seen.tolist() == [False, True]


def test_fused_scores_follow_the_formula_and_weight_zero_is_the_plain_detector():
    probs = torch.tensor([[0.8, 0.1, 0.4]])
    mixed = torch.tensor([[0.2, 0.9, 0.5]])
    seen = torch.tensor([True, False, True])
    fused = fuse_scores(probs, mixed, seen, 0.15, 0.35)
    expected = [0.8**0.85 * 0.2**0.15, 0.1**0.65 * 0.9**0.35, 0.4**0.85 * 0.5**0.15]
    assert fused[0].tolist() == pytest.approx(expected, rel=1e-6)

    torch.manual_seed(0)
    cfg = (*MIXUP, "MODEL.PROXY_MIXUP.SEPARATE_HEAD", "True",
           "MODEL.PROXY_MIXUP.FUSION_WEIGHT_SEEN", "0.0",
           "MODEL.PROXY_MIXUP.FUSION_WEIGHT_UNSEEN", "0.0")  # fmt: skip
    with_head = build_model(tiny_config(*cfg)).eval()
    torch.manual_seed(0)
    plain = build_model(tiny_config()).eval()
    plain.load_state_dict(
        {k: v for k, v in with_head.state_dict().items() if "auxiliary_losses.0.separate" not in k},
        strict=False,
    )
    item = make_item(seed=13)
    with torch.no_grad():
        a = with_head([item])[0]["instances"]
        b = plain([item])[0]["instances"]
    assert len(a) > 0
    assert torch.equal(a.scores, b.scores) and torch.equal(a.pred_boxes.tensor, b.pred_boxes.tensor)
    # a non-zero weight brings the separate head's probabilities in
    loss = with_head.roi_heads.auxiliary_losses[0]
    roi = torch.randn(5, 64, 7, 7)
    classes = with_head.classes
    classifier = with_head.roi_heads.classifier
    with torch.no_grad():
        base = classifier.class_probs(
            classifier.class_logits(classifier(roi)[0], classes.embeddings)
        )
        assert torch.equal(loss.fuse_inference_probs(roi, base, classes, classifier), base)
        loss.fusion_seen = loss.fusion_unseen = 0.5
        loss.separate_head[-1].weight.add_(0.5)  # a copy at first; training makes it differ
        mixed_emb = F.normalize(loss.separate_head(roi), dim=-1)
        mixed = classifier.class_probs(classifier.class_logits(mixed_emb, classes.embeddings))
        fused = loss.fuse_inference_probs(roi, base, classes, classifier)
    assert torch.allclose(fused, (base * mixed).sqrt())
    assert not torch.allclose(fused, base)


def test_unknown_prototype_weighting_names_the_key():
    with pytest.raises(ValueError, match="MODEL.PROXY_MIXUP.PROTOTYPE_WEIGHTING"):
        build_model(tiny_config(*MIXUP, "MODEL.PROXY_MIXUP.PROTOTYPE_WEIGHTING", "area"))
