"""CLIP pretraining pieces: pairs, crops, augmentation, the contrastive loss, zero-shot metrics."""

from __future__ import annotations

import json
import math
import uuid

import pytest
import torch
from torch.nn import functional as F

from ovvision.clip_pretraining import (
    ContrastiveImageTextModel,
    ImagePreprocessor,
    ImageTextPairDataset,
    ObjectCrops,
    build_pair_loader,
    evaluate_zero_shot,
    format_zero_shot_table,
    load_object_crops,
    pairs_from_dataset_dicts,
)
from ovvision.data import DatasetCatalog
from ovvision.data.datasets import register_ov_shapes
from ovvision.data.datasets.ov_shapes import DEFAULT_NOVEL_CLASSES, generate_ov_shapes
from ovvision.modeling.text import create_text_encoder

TINY = "OVShapes-CLIP-Tiny"


@pytest.fixture(scope="module")
def shapes_prefix(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny OV-Shapes (6 train / 3 val images) registered under a unique prefix."""
    root = tmp_path_factory.mktemp("datasets")
    generate_ov_shapes(str(root / "ov_shapes"), seed=5, num_train=6, num_val=3, progress=False)
    prefix = f"clip_test_{uuid.uuid4().hex[:8]}"
    register_ov_shapes(str(root), prefix=prefix)
    return prefix


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return create_text_encoder(TINY)


@pytest.fixture(scope="module")
def preprocessor(encoder) -> ImagePreprocessor:
    return ImagePreprocessor.for_model(encoder.image_preprocess_cfg)


def test_pairs_from_pretraining_pairs_and_captions(shapes_prefix: str) -> None:
    pairs = pairs_from_dataset_dicts(DatasetCatalog.get(f"{shapes_prefix}_pretrain_train"), "p")
    objects = [p for p in pairs if p.is_object]
    scenes = [p for p in pairs if not p.is_object]
    assert objects and scenes
    assert all(p.crop_box is not None for p in objects)
    assert all(p.crop_box is None for p in scenes)
    captions = DatasetCatalog.get(f"{shapes_prefix}_captions_train")
    caption_pairs = pairs_from_dataset_dicts(captions, "c")
    assert len(caption_pairs) == sum(len(d["captions"]) for d in captions)
    assert not any(p.is_object or p.crop_box for p in caption_pairs)
    with pytest.raises(ValueError, match="'inst' is not an image-text dataset"):
        pairs_from_dataset_dicts([{"file_name": "a.png", "annotations": []}], "inst")
    with pytest.raises(ValueError, match="'empty' has no image-text pairs"):
        pairs_from_dataset_dicts([{"file_name": "a.png", "captions": []}], "empty")


def test_crop_cuts_the_box_and_pads_outside() -> None:
    pre = ImagePreprocessor(8, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    image = torch.zeros(3, 20, 20, dtype=torch.uint8)
    image[:, 4:12, 6:14] = 200
    inside = pre.crop(image, (6, 4, 8, 8))
    assert inside.shape == (3, 8, 8) and inside.dtype == torch.uint8
    assert (inside == 200).all()
    half_out = pre.crop(image, (-8, 4, 16, 16))  # left half lies outside the image
    assert (half_out[:, :, :3] == 0).all()
    whole = pre.crop(image, None)
    assert whole.shape == (3, 8, 8)
    normalized = pre.normalize(inside[None])
    torch.testing.assert_close(normalized, torch.full((1, 3, 8, 8), (200 / 255 - 0.5) / 0.5))


def test_square_boxes() -> None:
    from ovvision.structures.boxes import square_boxes

    box = torch.tensor([[10.0, 20.0, 14.0, 28.0]])
    # side = longer side 8 x 1.5, centred on (12, 24)
    assert square_boxes(box, 1.5).tolist() == [[6.0, 18.0, 18.0, 30.0]]
    # inside a 32 x 32 image the square shifts to fit
    assert square_boxes(box, 1.5, (25, 32)).tolist() == [[6.0, 13.0, 18.0, 25.0]]


def test_augmentation_moves_object_crops_only(shapes_prefix: str, preprocessor) -> None:
    pairs = pairs_from_dataset_dicts(DatasetCatalog.get(f"{shapes_prefix}_pretrain_train"), "p")
    obj = next(i for i, p in enumerate(pairs) if p.is_object)
    scene = next(i for i, p in enumerate(pairs) if not p.is_object)
    plain = ImageTextPairDataset(pairs, preprocessor)
    augmented = ImageTextPairDataset(pairs, preprocessor, augment=True, jitter=0.2, seed=3)
    draws = [augmented[obj][0] for _ in range(4)]
    assert all(d.shape == plain[obj][0].shape for d in draws)
    assert any(not torch.equal(d, plain[obj][0]) for d in draws)
    assert torch.equal(augmented[scene][0], plain[scene][0])
    assert augmented[obj][1] == plain[obj][1] == pairs[obj].caption


def test_pair_loader_batches(shapes_prefix: str, encoder, preprocessor) -> None:
    pairs = pairs_from_dataset_dicts(DatasetCatalog.get(f"{shapes_prefix}_pretrain_train"), "p")
    loader = build_pair_loader(
        ImageTextPairDataset(pairs, preprocessor), encoder.tokenizer, batch_size=4, seed=0
    )
    batch = next(loader)
    size = preprocessor.size
    assert batch["images"].shape == (4, 3, size, size) and batch["images"].dtype == torch.float32
    assert batch["tokens"].shape == (4, encoder.context_length)
    again = next(
        build_pair_loader(
            ImageTextPairDataset(pairs, preprocessor), encoder.tokenizer, batch_size=4, seed=0
        )
    )
    assert torch.equal(batch["tokens"], again["tokens"])  # seeded shuffling


def test_contrastive_loss_is_symmetric_cross_entropy_with_capped_scale() -> None:
    encoder = create_text_encoder(TINY)
    model = ContrastiveImageTextModel(encoder.model, max_logit_scale=50.0)
    with torch.no_grad():
        encoder.model.logit_scale.fill_(math.log(1000.0))  # above the cap
    images = torch.randn(3, 3, 48, 48)
    tokens = encoder.tokenize(["a red circle", "a blue star", "two squares"])
    loss = model({"images": images, "tokens": tokens})["loss_contrastive"]
    image_features = encoder.model.encode_image(images, normalize=True)
    text_features = encoder.model.encode_text(tokens, normalize=True)
    logits = 50.0 * image_features @ text_features.T
    labels = torch.arange(3)
    expected = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert encoder.model.visual.conv1.weight.grad.abs().sum() > 0
    assert encoder.model.token_embedding.weight.grad.abs().sum() > 0


def test_object_crops_of_pairs_and_instances(shapes_prefix: str, preprocessor) -> None:
    from_pairs = load_object_crops(f"{shapes_prefix}_pretrain_val", preprocessor)
    num_object_pairs = sum(
        d["kind"] == "object" for d in DatasetCatalog.get(f"{shapes_prefix}_pretrain_val")
    )
    assert len(from_pairs.labels) == num_object_pairs
    assert len(from_pairs.class_names) == 24
    assert {n for n, v in zip(from_pairs.class_names, from_pairs.is_novel) if v} == set(
        DEFAULT_NOVEL_CLASSES
    )
    from_instances = load_object_crops(f"{shapes_prefix}_val", preprocessor, max_objects=5)
    assert from_instances.images.shape == (5, 3, preprocessor.size, preprocessor.size)
    with pytest.raises(ValueError, match="no objects"):
        load_object_crops(f"{shapes_prefix}_captions_val", preprocessor)


def test_zero_shot_metrics_are_consistent_and_deterministic(encoder, preprocessor) -> None:
    generator = torch.Generator().manual_seed(0)
    crops = ObjectCrops(
        images=torch.randint(0, 256, (30, 3, 48, 48), generator=generator, dtype=torch.uint8),
        labels=torch.arange(30) % 3,
        class_names=["circle", "square", "heart"],
        is_novel=torch.tensor([False, False, True]),
    )
    encoder.train()
    results = evaluate_zero_shot(encoder, crops, preprocessor, templates=["a {}"])
    assert encoder.training  # restored after evaluating in eval mode
    again = evaluate_zero_shot(encoder, crops, preprocessor, templates=["a {}"])
    assert json.dumps(results, sort_keys=True) == json.dumps(again, sort_keys=True)
    per_class = results["per_class"]
    assert [per_class[c]["num"] for c in crops.class_names] == [10, 10, 10]
    assert per_class["heart"]["split"] == "novel"
    base_mean = (per_class["circle"]["top1"] + per_class["square"]["top1"]) / 2
    assert results["top1_base"] == pytest.approx(base_mean)
    assert results["top1_novel"] == pytest.approx(per_class["heart"]["top1"])
    assert results["top1_all"] == pytest.approx((2 * base_mean + per_class["heart"]["top1"]) / 3)
    table = format_zero_shot_table(results)
    assert "heart" in table and "top1_novel=" in table
    encoder.eval()
