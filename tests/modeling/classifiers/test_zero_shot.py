"""The zero-shot region classifier: cosine logits, losses over seen classes, federated sampling."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from ovvision.modeling.classifiers import FederatedClassSampler, ZeroShotRegionClassifier
from ovvision.modeling.classifiers.federated_loss import load_class_image_counts


def _head(**kwargs) -> ZeroShotRegionClassifier:
    args = dict(in_channels=4, pooler_resolution=2, fc_dims=[8], embed_dim=6, temperature=10.0)
    return ZeroShotRegionClassifier(**{**args, **kwargs})


def test_region_head_logits_are_scaled_cosines_with_background_last():
    torch.manual_seed(0)
    head = _head()
    emb, deltas = head(torch.randn(5, 4, 2, 2))
    assert emb.shape == (5, 6) and deltas.shape == (5, 4)
    assert torch.allclose(emb.norm(dim=1), torch.ones(5))
    classes = F.normalize(torch.randn(3, 6), dim=1)
    logits = head.class_logits(emb, classes)
    bg = F.normalize(head.background_embedding, dim=0)
    assert torch.allclose(logits[:, :3], 10.0 * emb @ classes.t(), atol=1e-6)
    assert torch.allclose(logits[:, 3], 10.0 * emb @ bg, atol=1e-6)
    assert torch.allclose(head.class_probs(logits).sum(1) + logits.softmax(1)[:, 3], torch.ones(5))


@pytest.mark.parametrize("loss_type", ["softmax", "sigmoid"])
def test_unseen_classes_take_no_part_in_the_classification_loss(loss_type):
    torch.manual_seed(0)
    head = _head(loss_type=loss_type)
    emb, _ = head(torch.randn(6, 4, 2, 2))
    classes = F.normalize(torch.randn(4, 6), dim=1)
    labels = torch.tensor([0, 1, 4, 4, 0, 4])
    seen = torch.tensor([True, True, True, False])
    loss = head.classification_loss(head.class_logits(emb, classes), labels, seen)
    moved = classes.clone()
    moved[3] = F.normalize(torch.randn(6), dim=0)
    moved_loss = head.classification_loss(head.class_logits(emb, moved), labels, seen)
    assert torch.isfinite(loss) and torch.allclose(loss, moved_loss)
    all_seen = head.classification_loss(head.class_logits(emb, classes), labels, seen | True)
    assert not torch.allclose(loss, all_seen)


def test_softmax_loss_equals_cross_entropy_and_box_loss_is_zero_without_foreground():
    torch.manual_seed(0)
    head = _head()
    logits = torch.randn(4, 3)
    labels = torch.tensor([0, 2, 1, 2])
    loss = head.classification_loss(logits, labels, torch.ones(2, dtype=torch.bool))
    assert torch.allclose(loss, F.cross_entropy(logits, labels))
    deltas = torch.randn(4, 4, requires_grad=True)
    zero = head.box_regression_loss(deltas, torch.randn(4, 4), torch.zeros(4, dtype=torch.bool))
    assert zero.item() == 0.0
    zero.backward()
    assert deltas.grad is not None and (deltas.grad == 0).all()
    fg = torch.tensor([True, False, True, False])
    targets = torch.randn(4, 4)
    l1 = head.box_regression_loss(deltas, targets, fg)
    assert torch.allclose(l1, (deltas[fg] - targets[fg]).abs().sum() / 4)


def test_federated_sampler_keeps_annotated_classes_and_draws_frequent_negatives(tmp_path):
    counts = [1000, 1, 1, 1, 1000, 1, 1, 1]
    freq = tmp_path / "lvis_like.json"
    cats = [{"id": 10 + i, "name": f"c{i}", "image_count": c} for i, c in enumerate(counts)]
    freq.write_text(json.dumps({"categories": list(reversed(cats))}))
    assert load_class_image_counts(str(freq)).tolist() == counts
    sampler = FederatedClassSampler(num_classes=3, freq_weight_power=1.0, class_freq_file=str(freq))
    seen = torch.tensor([True] * 7 + [False])
    torch.manual_seed(0)
    hits = torch.zeros(8)
    for _ in range(200):
        chosen = sampler.sample(torch.tensor([2, 2]), seen)
        assert chosen.sum() == 3 and chosen[2] and not chosen[7]
        hits += chosen.float()
    assert hits[0] > 150 and hits[4] > 150 and hits[1] < 30
    with pytest.raises(ValueError, match="cover 8 classes but the vocabulary has 5"):
        sampler.sample(torch.tensor([0]), torch.ones(5, dtype=torch.bool))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"categories": [{"id": 1, "name": "x"}]}))
    with pytest.raises(ValueError, match="image_count"):
        load_class_image_counts(str(bad))
