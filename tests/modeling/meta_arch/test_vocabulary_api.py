"""What users pass as a vocabulary reaches the model whole: synonyms, class lists, one CLIP."""

from __future__ import annotations

import pytest
import torch

from ovvision.modeling import build_model
from ovvision.structures import ClassList, Vocabulary

from ..helpers import TINY_CLIP, make_item, tiny_config


def test_every_synonym_is_embedded_and_changes_the_detections(tiny_model):
    encoder = tiny_model.name_embedder.encoder
    templates = tiny_model.name_embedder.templates
    cache = tiny_model.name_embedder.cache_dir
    try:
        tiny_model.set_vocabulary(["mug|cup", "lamp"])
        with_synonym = tiny_model.vocabulary
        expected = Vocabulary.from_names(
            ["mug", "lamp"], encoder, synonyms=[["cup"], []], templates=templates, cache_dir=cache
        )
        assert with_synonym.names == ["mug", "lamp"] and with_synonym.synonyms == [["cup"], []]
        assert torch.allclose(with_synonym.embeddings, expected.embeddings, atol=1e-6)
        tiny_model.eval()
        item = make_item(seed=21)
        with torch.no_grad():
            scores_with = tiny_model([item])[0]["instances"].scores
        tiny_model.set_vocabulary(["mug", "lamp"])
        plain = tiny_model.vocabulary.embeddings
        assert not torch.allclose(plain[0], with_synonym.embeddings[0], atol=1e-3)
        assert torch.equal(plain[1], with_synonym.embeddings[1])
        with torch.no_grad():
            scores_without = tiny_model([item])[0]["instances"].scores
        assert len(scores_with) > 0 and len(scores_without) > 0
        assert not torch.equal(scores_with, scores_without)  # the synonym reached detection
        # the same classes given as a ClassList or a parsed spec give the same vocabulary
        tiny_model.set_vocabulary(ClassList.parse("mug|cup, lamp"))
        assert torch.equal(tiny_model.vocabulary.embeddings, with_synonym.embeddings)
        tiny_model.set_vocabulary(ClassList(["mug", "lamp"], [["cup"], []], [False, True]))
        assert tiny_model.vocabulary.is_novel.tolist() == [False, True]
        assert tiny_model.classes.seen.tolist() == [False, False]  # neither was trained on
    finally:
        tiny_model.set_vocabulary(["circle", "square", "triangle", "star"])


def test_a_model_loads_its_clip_once_and_shares_it():
    torch.manual_seed(0)
    model = build_model(tiny_config())  # timm backbone, CLIP crops for fusion and distillation
    clip = model.name_embedder.encoder
    fusion_tower = model.roi_heads.fusion.box_embedder.tower
    (distillation,) = model.roi_heads.auxiliary_losses
    assert fusion_tower.visual is clip.model.visual
    assert distillation.box_embedder is model.roi_heads.fusion.box_embedder
    clip_backbone = build_model(
        tiny_config(
            "MODEL.BACKBONE.NAME", "ClipImageBackbone",
            "MODEL.PIXEL_MEAN", "[122.7709383, 116.7460125, 104.09373615]",
            "MODEL.PIXEL_STD", "[68.5005327, 66.6321579, 70.32316305]",
            "MODEL.TEXT_ENCODER.NAME", TINY_CLIP,
        )
    )  # fmt: skip
    clip = clip_backbone.name_embedder.encoder
    assert clip_backbone.backbone.tower.visual is clip.model.visual
    assert clip_backbone.roi_heads.fusion.box_embedder.tower is clip_backbone.backbone.tower


def test_the_training_vocabulary_decides_which_classes_are_seen():
    torch.manual_seed(0)
    model = build_model(tiny_config())
    assert model.classes.seen.tolist() == [True, True, True, True]
    model.set_training_vocabulary(ClassList(["circle", "star"], is_novel=[False, True]))
    assert model.class_names == ["circle", "star"]
    assert model.classes.seen.tolist() == [True, False]
    model.set_vocabulary(["star", "square", "circle"])
    assert model.classes.seen.tolist() == [False, False, True]
    with pytest.raises(ValueError, match="empty"):
        model.set_vocabulary([])
